"""Run every benchmark (each in its own process), collect the JSON figure each prints on its
last line, and write benchmarks/RESULTS.md (figure, goal, measured, met?) plus
benchmarks/results/latest.json (every figure in full).

Usage: .venv/bin/python benchmarks/run_all.py [--only step_time,cache] [--skip embedded]
Each benchmark has a time limit; one that fails or times out is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

#: (figure, script, extra args, time limit in seconds)
BENCHMARKS = [
    ("step_time", "step_time.py", [], 240),
    ("peer", "peer.py", [], 600),  # the first run may create the DSPy venv (a few minutes)
    ("cache", "cache.py", [], 180),
    ("engine_overhead", "engine_overhead.py", [], 180),
    ("retrieval", "retrieval.py", [], 300),
    ("embedded", "embedded.py", [], 420),
    ("tokens", "tokens.py", [], 180),
    ("app", "app_latency.py", [], 300),
]


def run_one(name: str, script: str, args: list[str], limit: int) -> dict:
    t0 = time.perf_counter()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=str(REPO), env=env,
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        return {"figure": name, "goal": "", "measured": f"timed out after {limit} s", "met": False,
                "error": (exc.stderr or b"")[-2000:].decode("utf-8", "replace") if isinstance(exc.stderr, bytes)
                else str(exc.stderr or "")[-2000:], "wall_s": limit}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        fig = json.loads(lines[-1])
        if not isinstance(fig, dict) or "figure" not in fig:
            raise ValueError("not a figure")
    except (IndexError, ValueError):
        fig = {"figure": name, "goal": "", "measured": f"failed (exit {proc.returncode})", "met": False,
               "error": (proc.stderr or proc.stdout)[-2000:]}
    fig["wall_s"] = round(time.perf_counter() - t0, 1)
    fig["log"] = lines[:-1][-40:]
    return fig


def cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def write_results(figs: list[dict]) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = ["| # | figure | goal | measured | met? | load (1 min) at end |", "|---|---|---|---|---|---|"]
    for i, f in enumerate(figs, 1):
        met = "yes" if f.get("met") else "**no**"
        rows.append(f"| {i} | {cell(f['figure'])} | {cell(f.get('goal', ''))} | {cell(f.get('measured', ''))} | {met} "
                    f"| {f.get('loadavg_1m_at_end', '')} |")
    text = "\n".join([
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py` on {now}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average at the end {load}. Full figures: "
        "`benchmarks/results/latest.json`. How each is measured, and why a goal is missed: "
        "[README.md](README.md).",
        "",
        *rows,
        "",
    ])
    (BENCH / "RESULTS.md").write_text(text, encoding="utf-8")
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"written": now, "figures": figs}, indent=1), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated figure names")
    ap.add_argument("--skip", default="", help="comma-separated figure names")
    a = ap.parse_args()
    only = {x for x in a.only.split(",") if x}
    skip = {x for x in a.skip.split(",") if x}
    previous = {}
    latest = BENCH / "results" / "latest.json"
    if latest.exists() and only:  # keep the other figures from the last full run
        try:
            previous = {f["figure"]: f for f in json.loads(latest.read_text())["figures"]}
        except (ValueError, KeyError):
            previous = {}
    figs = []
    for name, script, args, limit in BENCHMARKS:
        if (only and name not in only) or name in skip:
            if name in previous:
                figs.append(previous[name])
            continue
        print(f"== {name} ({script}) ...", flush=True)
        fig = run_one(name, script, args, limit)
        print(f"   {fig.get('measured')}  met={fig.get('met')}  ({fig['wall_s']} s)", flush=True)
        figs.append(fig)
    write_results(figs)
    print(f"wrote {BENCH / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
