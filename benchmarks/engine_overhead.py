"""Figure 4 - the engine's own time per model call, and the run-file save time per step.

Models: ScriptedChatModel (in-process, zero latency): the optimizer answers a distinct
``<INS>...</INS>`` per sample, the task model answers "The answer is (X).". So all the
time measured is the engine's: building requests and the meta-prompt, the thread pool,
answer extraction and scoring, records, dedupe, and saving the run (to a temp folder).

Per call = (propose + decide_auto wall time) / model calls of the step, over the paper's
18 steps of 8 candidates on BBH date_understanding (48 dev, 144 test examples).
Save per step = time spent in store.save_run + store.save_records during the step
(run.json twice, 8 dev record files of 48 records, 1 test record file of 144).

Usage: .venv/bin/python benchmarks/engine_overhead.py [--steps 18] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import bbh_task, bench_settings, emit, median, r, timer

GOAL_PER_CALL_MS = 1.0
GOAL_SAVE_MS = 50.0

_PARTS = (("Let's think step by step.", "Think carefully.", "Read the question twice.", "Work slowly."),
          ("Check each option.", "Eliminate wrong options.", "Write the key facts first.", "Track every date."),
          ("Then answer.", "Give the final answer.", "State the answer at the end.", "Be concise."))


def optimizer_reply(req) -> str:
    """A new candidate per (meta-prompt, sample): the meta-prompt changes every step, so every
    step scores 8 new candidates (8 x 48 dev calls), as with a real optimizer model."""
    i = req.sample_index
    h = int(hashlib.sha256(f"{req.messages[-1][1]}|{i}".encode()).hexdigest()[:8], 16)
    words = [p[(h >> (2 * j)) % 4] for j, p in enumerate(_PARTS)]
    return f"Here is a better instruction.\n<INS>{' '.join(words)} Variant {h % 100000}.</INS>"


def task_reply(req) -> str:
    text = req.messages[-1][1]
    return f"Let me check. The answer is ({'ABCDEF'[len(text) % 6]})."


class Timed:
    """Wraps a function and sums its wall time (seconds)."""

    def __init__(self, fn):
        self.fn, self.total, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = timer()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.total += timer() - t0
            self.calls += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--task", default="date_understanding")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one step")
    a = ap.parse_args()

    import gpo_core.runs.repository as repo_mod  # the run folder's writers, timed in place
    from gpo_core.optimizer.session import GPOSession, Models
    from gpo_testkit.embedders import HashingEmbedder
    from gpo_testkit.scripted import ScriptedChatModel

    task = bbh_task(a.task)
    tmp = Path(tempfile.mkdtemp(prefix="gpo-bench-overhead-"))
    save_run, save_records = Timed(repo_mod.save_run), Timed(repo_mod.save_records)
    repo_mod.save_run, repo_mod.save_records = save_run, save_records
    per_call_ms, save_ms, step_rows, cpu_ms = [], [], [], []
    try:
        task_model = ScriptedChatModel(task_reply, name="scripted-task", max_concurrency=a.concurrency)
        opt_model = ScriptedChatModel(optimizer_reply, name="scripted-optimizer", max_concurrency=a.concurrency)
        models = Models(task_model, opt_model, HashingEmbedder())
        settings = bench_settings(a.concurrency, steps=a.steps, candidates=8, k=3, dev_size=48, seed=0)
        s = GPOSession.create(task, settings, models, run_dir=tmp / "run")
        s.start()
        for t in range(1, a.steps + 1):
            n0 = task_model.call_count + opt_model.call_count
            save_run.total = save_records.total = 0.0
            t0, c0 = timer(), time.process_time()
            s.propose()
            s.decide_auto()
            dt = timer() - t0
            cpu_ms.append(1000 * (time.process_time() - c0))
            calls = task_model.call_count + opt_model.call_count - n0
            saved = save_run.total + save_records.total
            per_call_ms.append(1000 * dt / calls)
            cpu_ms[-1] /= calls
            save_ms.append(1000 * saved)
            run_kb = (tmp / "run" / "run.json").stat().st_size / 1024
            step_rows.append({"step": t, "calls": calls, "step_ms": r(1000 * dt, 1), "save_ms": r(1000 * saved, 1),
                              "run_json_kb": r(run_kb, 1)})
            print(f"step {t}: {calls} calls in {dt * 1000:.1f} ms = {per_call_ms[-1]:.3f} ms/call; "
                  f"save {save_ms[-1]:.1f} ms (run.json {run_kb:.0f} KB)", flush=True)

        # The same saves alone, at the end of the run (largest run.json), 5 times: run.json twice
        # (after propose and after the decision) + the step's 9 record files (8 dev, 1 test).
        last = s.state.steps[-1]
        recs = [(cd.id, sp, s.records(cd.id, sp)) for cd in last.candidates for sp in ("dev", "test")
                if s.records(cd.id, sp)]
        iso = []
        for _ in range(5):
            t0 = timer()
            s._save()
            s._save()
            assert s.run_dir is not None
            for cid, sp, rec in recs:
                save_records.fn(s.run_dir, cid, sp, rec)
            iso.append(1000 * (timer() - t0))
        iso_save_ms = median(iso)

        profile_text = None
        if a.profile:
            settings2 = bench_settings(a.concurrency, steps=2, candidates=8, k=3, dev_size=48, seed=1)
            s2 = GPOSession.create(task, settings2, models, run_dir=tmp / "prof")
            s2.start()
            pr = cProfile.Profile()
            pr.enable()
            s2.propose()
            s2.decide_auto()
            pr.disable()
            buf = io.StringIO()
            pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(18)
            profile_text = buf.getvalue()
            print(profile_text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    pc = median(per_call_ms)
    sv_max = max(save_ms)
    sv_med = median(save_ms)
    emit({
        "figure": "engine_overhead",
        "goal": f"< {GOAL_PER_CALL_MS:g} ms engine time per model call; run save < {GOAL_SAVE_MS:g} ms per step",
        "measured": (f"{pc:.3f} ms/call; save {sv_med:.1f} ms/step (median of {a.steps} steps; max {sv_max:.1f}; "
                     f"at step {a.steps} alone {iso_save_ms:.1f})"),
        "met": pc < GOAL_PER_CALL_MS and sv_med < GOAL_SAVE_MS and iso_save_ms < GOAL_SAVE_MS,
        "per_call_ms_median": r(pc), "per_call_ms_max": r(max(per_call_ms)),
        "per_call_cpu_ms_median": r(median(cpu_ms)),
        "save_ms_per_step_median": r(median(save_ms), 2), "save_ms_per_step_max": r(sv_max, 2),
        "save_ms_at_last_step_alone": r(iso_save_ms, 2),
        "calls_per_step": step_rows[0]["calls"], "steps": a.steps, "concurrency": a.concurrency,
        "first_and_last_step": [step_rows[0], step_rows[-1]],
    })


if __name__ == "__main__":
    main()
