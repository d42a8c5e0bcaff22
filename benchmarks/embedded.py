"""Figure 6 - the embedded model (SmolLM2-135M-Instruct Q4_1 via llama-cpp-python).

Throughput: ``evaluate`` of the starting prompt on 10 examples of sample_tasks/navigation
with task_max_tokens 64 (the engine path: LocalLlamaChatModel, max_concurrency 1), after
the model is loaded (load time reported apart). What bounds it: llama.cpp's own perf
counters (llama_perf_context) split each call into prompt evaluation (prefill, tokens/s)
and generation (decode, tokens/s).

Peak memory: ``python -m gpo_core run --task sample_tasks/navigation --steps 1
--candidates 2 --dev-size 4 --test-size 2`` (embedded model + MiniLM embedder, fresh
cache) under /usr/bin/time -v, and the max RSS summed over its process tree polled
with psutil every 50 ms.

Usage: .venv/bin/python benchmarks/embedded.py [--examples 10]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO, emit, r, timer

GOAL_RSS_MB = 1536.0


def perf(llm) -> dict:
    import llama_cpp

    d = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return {"p_ms": d.t_p_eval_ms, "p_n": d.n_p_eval, "g_ms": d.t_eval_ms, "g_n": d.n_eval}


def throughput(n_examples: int) -> dict:
    import llama_cpp

    from gpo_core.models.local_llama import LocalLlamaChatModel
    from gpo_core.scoring.evaluation import evaluate
    from gpo_core.tasks.io import load_task

    task = load_task(REPO / "sample_tasks" / "navigation")
    examples = task.examples[:n_examples]
    model = LocalLlamaChatModel()
    t0 = timer()
    model.load()
    load_s = timer() - t0
    llm = model._llm
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    t0 = timer()
    res = evaluate(task.initial_instruction, examples, model, answer_type=task.answer_type,
                   position=task.instruction_position, max_tokens=64, concurrency=8)
    wall = timer() - t0
    p = perf(llm)
    n_prompt = sum(rec.prompt_tokens for rec in res.records)
    n_gen = sum(rec.completion_tokens for rec in res.records)
    model.close()
    other_ms = 1000 * wall - p["p_ms"] - p["g_ms"]
    return {
        "examples": len(examples), "wall_s": wall, "examples_per_s": len(examples) / wall, "load_s": load_s,
        "errors": res.n_errors, "accuracy": res.accuracy,
        "prompt_tokens": n_prompt, "completion_tokens": n_gen,
        "prefill_tok_per_s": 1000 * p["p_n"] / p["p_ms"] if p["p_ms"] else None,
        "decode_tok_per_s": 1000 * p["g_n"] / p["g_ms"] if p["g_ms"] else None,
        "prefill_s": p["p_ms"] / 1000, "decode_s": p["g_ms"] / 1000, "other_s": other_ms / 1000,
        "llama_counted_tokens": {"prefill": p["p_n"], "decode": p["g_n"]},
    }


def peak_rss() -> dict:
    import psutil

    tmp = Path(tempfile.mkdtemp(prefix="gpo-bench-rss-"))
    cmd = [sys.executable, "-m", "gpo_core", "run", "--task", "sample_tasks/navigation", "--steps", "1",
           "--candidates", "2", "--dev-size", "4", "--test-size", "2", "--out", str(tmp / "out"),
           "--cache-dir", str(tmp / "cache"), "--quiet"]
    timev = Path("/usr/bin/time")
    full = ([str(timev), "-v"] + cmd) if timev.exists() else cmd
    peak_tree = 0
    t0 = timer()
    try:
        proc = subprocess.Popen(full, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [ps] + ps.children(recursive=True)
                total = 0
                for p in procs:
                    if p.pid == proc.pid and timev.exists():
                        continue  # /usr/bin/time itself
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak_tree = max(peak_tree, total)
            except psutil.Error:
                pass
            time.sleep(0.05)
        out, err = proc.communicate()
        wall = timer() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return {"returncode": proc.returncode, "cli_wall_s": wall, "peak_rss_tree_mb": peak_tree / 2**20,
            "time_v_max_rss_mb": int(m.group(1)) / 1024 if m else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=10)
    a = ap.parse_args()
    tp = throughput(a.examples)
    print(f"throughput: {tp['examples_per_s']:.2f} examples/s; prefill {tp['prefill_tok_per_s']:.0f} tok/s "
          f"({tp['prefill_s']:.2f}s), decode {tp['decode_tok_per_s']:.0f} tok/s ({tp['decode_s']:.2f}s)", flush=True)
    mem = peak_rss()
    print(f"CLI run: {mem}", flush=True)
    peak = max(mem["peak_rss_tree_mb"], mem["time_v_max_rss_mb"] or 0)
    bound = "decode (generation)" if tp["decode_s"] > tp["prefill_s"] else "prefill (prompt evaluation)"
    emit({
        "figure": "embedded",
        "goal": f"peak RSS of a CLI run < {GOAL_RSS_MB:g} MB; report throughput and its bound",
        "measured": (f"peak {peak:.0f} MB; {tp['examples_per_s']:.2f} examples/s, bound by {bound}: "
                     f"prefill {tp['prefill_tok_per_s']:.0f} tok/s, decode {tp['decode_tok_per_s']:.0f} tok/s"),
        "met": mem["returncode"] == 0 and peak < GOAL_RSS_MB,
        "peak_rss_mb": r(peak, 1), "peak_rss_tree_mb": r(mem["peak_rss_tree_mb"], 1),
        "time_v_max_rss_mb": r(mem["time_v_max_rss_mb"], 1), "cli_wall_s": r(mem["cli_wall_s"], 1),
        "cli_returncode": mem["returncode"],
        "examples_per_s": r(tp["examples_per_s"], 3), "examples": tp["examples"], "eval_wall_s": r(tp["wall_s"], 2),
        "model_load_s": r(tp["load_s"], 2), "prefill_tok_per_s": r(tp["prefill_tok_per_s"], 1),
        "decode_tok_per_s": r(tp["decode_tok_per_s"], 1), "prefill_s": r(tp["prefill_s"], 2),
        "decode_s": r(tp["decode_s"], 2), "other_s": r(tp["other_s"], 2),
        "prompt_tokens": tp["prompt_tokens"], "completion_tokens": tp["completion_tokens"],
        "llama_counted_tokens": tp["llama_counted_tokens"], "bound_by": bound, "errors": tp["errors"],
    })


if __name__ == "__main__":
    main()
