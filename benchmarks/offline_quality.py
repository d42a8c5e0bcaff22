"""Issue 14: does GPO improve prompts offline, on the default embedded preset, at app-like sizes?

For each task and seed it runs GPO exactly as a user of the command line would
(``python -m gpo_core run``, the default model preset, the candidates a step and the dev and
dev examples of the app's "quick" sizes of :data:`gpo_core.settings.PRESETS`, except the step count,
which ``--steps`` sets, and the test size: the app's 12 test examples cannot show a gain of a third
as significant, so the test split is measured on ``--test-size`` 36 by default) and compares
the run's honest final prompt (:func:`gpo_core.runs.final.compare_final_with_start`: the best
dev accuracy among the start and the chosen prompts) with the starting instruction on the
test split: both accuracies with 95% Wilson intervals, the examples fixed and broken, and the
exact McNemar p (:mod:`gpo_core.stats`). Goal (issue 14): the final prompt beats the start
significantly (p < 0.05, more fixed than broken) on at least 3 tasks.

Tasks: the sample tasks whose conventions only an instruction conveys (``sample_tasks/``) and
the six BIG-Bench Hard tasks of the quality benchmark, named ``bbh/<task>`` and read in place
from ``../shared/data/bbh`` (never copied; ``object_counting`` alone is the generated sample task
of that name, not BBH's). Every run folder is kept under ``--work``; a finished run is not run again
and an interrupted one is resumed (``--resume``), so the script can be stopped and restarted.
Results are rewritten after every run: ``offline_quality.md`` (table), ``.json`` (rows,
settings, machine) and ``.png`` (chart, when plotly's kaleido finds Chromium).

Usage (from the repository root)::

    python benchmarks/offline_quality.py                                   # everything, hours of CPU
    python benchmarks/offline_quality.py --tasks review_sentiment --seeds 0 --steps 1
    python benchmarks/offline_quality.py --tasks bbh/sports_understanding,bbh/navigate --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gpo_core.runs.final import compare_final_with_start  # noqa: E402
from gpo_core.runs.repository import load_records, load_run  # noqa: E402
from gpo_core.settings import DEFAULT_MODEL_PRESET, MODEL_PRESETS, PRESETS  # noqa: E402

#: The app's defaults for the embedded models ("quick"), except the step count.
QUICK_OPT, QUICK_SPLITS = PRESETS["quick"]
APP_TEST_SIZE = QUICK_SPLITS.test_size or 12

SAMPLE_TASKS = ("review_sentiment", "date_normalization", "ticket_triage", "contact_extraction")
BBH_TASKS = ("navigate", "object_counting", "date_understanding", "sports_understanding",
             "boolean_expressions", "word_sorting")
BBH_DIR = Path("..") / "shared" / "data" / "bbh"
ALPHA = 0.05


def task_path(name: str) -> Path:
    """The task folder of ``name``: "bbh/<task>" is a BIG-Bench Hard task (``BBH_DIR``, relative
    to the repo root), any other name a folder of ``sample_tasks/``. Three sample tasks share a
    BBH task's name (object_counting, boolean_expressions, word_sorting: generated look-alikes,
    not BBH), so the prefix is required. Raises ValueError for a folder that does not exist."""
    path = REPO / BBH_DIR / name.removeprefix("bbh/") if name.startswith("bbh/") else REPO / "sample_tasks" / name
    if not path.is_dir():
        raise ValueError(f"--tasks: no task folder {path} for {name!r} (BBH tasks are written bbh/<name>)")
    return path


def run_one(name: str, seed: int, a: argparse.Namespace, work: Path) -> dict:
    """Run (or resume, or reuse) one GPO run; returns its row."""
    out = work / "runs" / (f"{name.replace('/', '-')}-seed{seed}" + (f"-fb{a.feedback}" if a.feedback else "")
                           + (f"-t{a.test_size}" if a.test_size != APP_TEST_SIZE else ""))
    done = (out / "final_prompt.txt").exists()
    seconds = 0.0
    if not done:
        cmd = [sys.executable, "-m", "gpo_core", "run", "--out", str(out), "--quiet",
               "--cache-dir", str(work / "cache")]
        if (out / "run.json").exists():
            cmd += ["--resume", "--take-over"]
        else:
            cmd += ["--task", str(task_path(name)), "--steps", str(a.steps), "--candidates", str(a.candidates),
                    "--dev-size", str(a.dev_size), "--test-size", str(a.test_size), "--seed", str(seed),
                    "--model-preset", a.model_preset]
            if a.feedback:
                cmd += ["--failure-feedback", str(a.feedback)]
        print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: {' '.join(cmd[3:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, text=True,
                              capture_output=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"task": name, "seed": seed, "feedback": a.feedback, "test_size": a.test_size,
                    "error": (proc.stderr or proc.stdout).strip()[-600:], "seconds": round(seconds, 1)}
    state = load_run(out)
    cmp = compare_final_with_start(state, lambda key, split: load_records(out, key, split) or [])
    test = cmp.test
    row = {"task": name, "seed": seed, "feedback": a.feedback, "test_size": a.test_size, "final_prompt": cmp.prompt,
           "start_prompt": state.trajectory[0].prompt,
           "final_is_start": cmp.is_start, "steps_done": len(state.steps),
           "step_seconds": [round(s.seconds, 1) for s in state.steps], "seconds": round(seconds, 1)}
    if test is not None:
        row.update(start=test.start.to_dict(), final=test.final.to_dict(), shared=test.shared, fixed=test.fixed,
                   broken=test.broken, p=test.p_value,
                   significant=bool(test.p_value is not None and test.p_value < ALPHA
                                    and (test.fixed or 0) > (test.broken or 0)))
    if cmp.dev is not None:
        row["dev"] = {"start": cmp.dev.start.to_dict(), "final": cmp.dev.final.to_dict()}
    return row


def _key(row: dict) -> tuple:
    return row["task"], row["seed"], row.get("feedback", 0), _test_size(row)


def _test_size(row: dict) -> int:
    """The test size a row was measured with (rows written before the column existed used 12)."""
    return int(row.get("test_size") or APP_TEST_SIZE)


def _earlier_rows(path: Path) -> list[dict]:
    """Rows of earlier invocations (other tasks, seeds or feedback settings) kept in the results."""
    try:
        return list(json.loads(path.read_text())["rows"])
    except (OSError, ValueError, KeyError):
        return []


def _pct(d: dict | None) -> str:
    if not d or d.get("accuracy") is None:
        return "–"
    lo, hi = d["ci95"]
    correct = f"{d['correct']:.1f}".removesuffix(".0")  # a sum of scores: partial credit (JSON keys) is fractional
    return f"{100 * d['accuracy']:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}] ({correct}/{d['answered']})"


def markdown(rows: list[dict], a: argparse.Namespace, meta: dict) -> str:
    """The results table and the goal line."""
    lines = ["# Offline quality: start vs GPO's final prompt (test split)\n",
             f"Preset `{a.model_preset}` ({MODEL_PRESETS[a.model_preset].describe()}); {a.steps} steps x "
             f"{a.candidates} candidates, dev {a.dev_size}, test {a.test_size}; seeds {a.seeds}. "
             f"Machine: {meta['machine']}. Generated by `benchmarks/offline_quality.py`.\n",
             "Rows with failure feedback N > 0 ran with `--failure-feedback N` (ours, not the paper setting).\n",
             "Rows are measured on the test size shown in their counts (earlier rows on 12, later on 36).\n",
             "| task | seed | feedback | start (test) | final (test) | fixed / broken | McNemar p | significant "
             "| minutes | final prompt |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['seed']} | {r.get('feedback', 0)} | failed: {r['error'][:120]!r} "
                         "| | | | | | |")
            continue
        p = "–" if r.get("p") is None else f"{r['p']:.3g}"
        prompt = r["final_prompt"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['task']} | {r['seed']} | {r.get('feedback', 0)} | {_pct(r.get('start'))} | "
                     f"{_pct(r.get('final'))} | "
                     f"{r.get('fixed', '–')} / {r.get('broken', '–')} | {p} | {'yes' if r.get('significant') else 'no'}"
                     f" | {sum(r['step_seconds']) / 60:.1f} | {prompt[:90]} |")
    lines.append("")
    for fb, n in sorted({(r.get("feedback", 0), _test_size(r)) for r in rows}):
        mine = [r for r in rows if r.get("feedback", 0) == fb and _test_size(r) == n]
        tasks_sig = sorted({r["task"] for r in mine if r.get("significant")})
        tasks_all = sorted({r["task"] for r in mine if "error" not in r})
        label = ("default settings (no failure feedback)" if not fb else f"failure feedback {fb} (ours)") + \
            f", test {n}"
        lines.append(f"{label}: tasks where the final prompt beats the start significantly (p < {ALPHA}) in at "
                     f"least one seed: {len(tasks_sig)} of {len(tasks_all)} run ({', '.join(tasks_sig) or 'none'}); "
                     "goal: at least 3.")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], path: Path) -> str | None:
    """Start vs final test accuracy per task and seed with interval bars (plotly PNG)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        return "plotly missing"
    ok = [r for r in rows if "final" in r]
    if not ok:
        return None
    fig = go.Figure()
    for key, name in (("start", "start"), ("final", "GPO final")):
        xs = [f"{r['task']} s{r['seed']}" + (f" fb{r['feedback']}" if r.get("feedback") else "")
              + (f" t{_test_size(r)}" if _test_size(r) != APP_TEST_SIZE else "") for r in ok]
        ys = [100 * (r[key]["accuracy"] or 0) for r in ok]
        lo = [100 * r[key]["ci95"][0] for r in ok]
        hi = [100 * r[key]["ci95"][1] for r in ok]
        fig.add_bar(x=xs, y=ys, name=name, error_y={"type": "data", "symmetric": False,
                                                     "array": [h - y for h, y in zip(hi, ys)],
                                                     "arrayminus": [y - low for y, low in zip(ys, lo)]})
    fig.update_layout(barmode="group", title="Test accuracy, start vs GPO final (95% Wilson intervals)",
                      yaxis_title="test accuracy (%)", yaxis_range=[0, 105], width=1000, height=450)
    try:
        fig.write_image(str(path))
    except Exception as exc:  # kaleido without a browser: the table is the result
        return f"no PNG: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(SAMPLE_TASKS + tuple(f"bbh/{t}" for t in BBH_TASKS)),
                    help="comma-separated: sample task folder names, and bbh/<name> for BIG-Bench Hard tasks")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=QUICK_OPT.candidates)
    ap.add_argument("--dev-size", type=int, default=QUICK_SPLITS.dev_size)
    ap.add_argument("--test-size", type=int, default=36,
                    help="test examples measured (the app's quick preset uses 12; 36 lets a gain of a third show)")
    ap.add_argument("--model-preset", default=DEFAULT_MODEL_PRESET, choices=list(MODEL_PRESETS))
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "gpo_offline_quality"),
                    help="run folders and the response cache (kept; finished runs are reused)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "offline_quality"))
    ap.add_argument("--feedback", type=int, default=QUICK_OPT.failure_feedback, metavar="N",
                    help="failure feedback (ours, off in the paper setting; the app's quick preset uses "
                         f"{QUICK_OPT.failure_feedback}): N wrong dev examples of the current prompt with the task "
                         "model's answers in each meta-prompt; 0 for the paper setting")
    a = ap.parse_args(argv)
    for name in a.tasks.split(","):
        try:
            task_path(name)
        except ValueError as e:
            ap.error(str(e))
    work, out = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
            "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows = _earlier_rows(Path(f"{out}.json"))
    for name in a.tasks.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            r = run_one(name, seed, a, work)
            rows = [x for x in rows if _key(x) != _key(r)] + [r]
            summary = r.get("error") or f"{_pct(r.get('start'))} -> {_pct(r.get('final'))}, p = {r.get('p')}"
            print(f"  -> {summary}", flush=True)
            Path(f"{out}.json").write_text(json.dumps({"meta": meta, "settings": vars(a), "rows": rows}, indent=1))
            Path(f"{out}.md").write_text(markdown(rows, a, meta))
    note = chart(rows, Path(f"{out}.png"))
    if note:
        print(note)
    print(Path(f"{out}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
