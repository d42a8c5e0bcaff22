"""Figure 3 - re-running the same step with the same seed is served by the response cache.

First run: a new session (seed 0) on BBH date_understanding scores the starting prompt and
runs one step (8 candidates x 48 dev, 144 test) through CachedChatModel(OpenAIChatModel)
with a ResponseCache (SQLite) in a temp folder, against the loopback fake server (100 ms
latency, own process). Re-run: a NEW session with the same seed and settings, same cache
file (reopened, as after a restart), does the same (start + step). Reported: the server's
request counter during the re-run (goal 0) and the re-run's wall time (goal < 0.5 s), for
the step alone and for start + step.

Usage: .venv/bin/python benchmarks/cache.py
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchlib import ServerProcess, bbh_task, bench_settings, emit, openai_model, r, timer

GOAL_S = 0.5


def run_once(task, base_url: str, cache_path: Path, run_dir: Path, conc: int) -> dict:
    from gpo_core.models.cache import CachedChatModel, ResponseCache
    from gpo_core.optimizer.session import GPOSession, Models
    from gpo_testkit.embedders import HashingEmbedder

    cache = ResponseCache(cache_path)
    ns = f"compatible|{base_url}|fake-model"
    task_m = openai_model(base_url, conc)
    opt_m = openai_model(base_url, conc)
    models = Models(CachedChatModel(task_m, cache, namespace=ns), CachedChatModel(opt_m, cache, namespace=ns),
                    HashingEmbedder())
    settings = bench_settings(conc, base_url, steps=18, candidates=8, k=3, dev_size=48, seed=0)
    t0 = timer()
    s = GPOSession.create(task, settings, models, run_dir=run_dir)
    s.start()
    t1 = timer()
    step = s.propose()
    s.decide_auto()
    t2 = timer()
    out = {"start_plus_step_s": t2 - t0, "step_s": t2 - t1,
           "calls": step.usage.calls, "cached_calls": step.usage.cached_calls,
           "chosen": step.decision.text if step.decision else None}
    task_m.close()
    opt_m.close()
    cache.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="date_understanding")
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=32)
    a = ap.parse_args()

    task = bbh_task(a.task)
    tmp = Path(tempfile.mkdtemp(prefix="gpo-bench-cache-"))
    try:
        with ServerProcess(latency_s=a.latency_ms / 1000.0) as server:
            cache_path = tmp / "cache" / "responses.sqlite"
            first = run_once(task, server.base_url, cache_path, tmp / "run1", a.concurrency)
            first_requests = server.stats()["chat_requests"]
            server.reset()
            again = run_once(task, server.base_url, cache_path, tmp / "run2", a.concurrency)
            rerun_requests = server.stats()["chat_requests"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"first run: {first_requests} requests, {first['start_plus_step_s']:.2f}s; "
          f"re-run: {rerun_requests} requests, step {again['step_s'] * 1000:.0f} ms, "
          f"start+step {again['start_plus_step_s'] * 1000:.0f} ms", flush=True)
    same = first["chosen"] == again["chosen"]
    emit({
        "figure": "cache",
        "goal": f"re-run of the same step (same seed): 0 server requests, < {GOAL_S:g} s",
        "measured": f"{rerun_requests} requests, step {again['step_s']:.3f} s "
                    f"(start+step {again['start_plus_step_s']:.3f} s)",
        "met": rerun_requests == 0 and again["start_plus_step_s"] < GOAL_S and same,
        "rerun_requests": rerun_requests, "rerun_step_s": r(again["step_s"]),
        "rerun_start_plus_step_s": r(again["start_plus_step_s"]),
        "first_run_requests": first_requests, "first_run_start_plus_step_s": r(first["start_plus_step_s"]),
        "rerun_cached_calls": again["cached_calls"], "step_calls": again["calls"],
        "same_decision": same, "task": a.task, "latency_ms": a.latency_ms,
    })


if __name__ == "__main__":
    main()
