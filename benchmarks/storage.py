"""Issue 15, item 8 - what saving a run costs on a large task: run.json size and save time.

A 19 MB task (4,000 rows of about 4.7 KB) made a 39 MB run.json (the training examples
twice: "train" and "exemplars") that was rewritten whole after every save, and 4 steps took
13.0 s against 8.2 s on a small task. Since schema 3 the examples are written once, to
data.json, and run.json holds only the settings, the trajectory and the step log.

The script runs the command line's code path (``run_cli``: load the CSV, split, score the
start, 4 steps of 4 candidates, dev 16, test 16) on the scripted demo models (instant, no
response cache), so the time measured is the engine's and the disk's:

- ``small``: the same rows, 400 of them (1.9 MB): the baseline;
- ``before``: the 19 MB task with the old save (schema 2: every save rewrites run.json
  with the examples inside, train and exemplars), patched in for this run only;
- ``after``: the 19 MB task with the current save.

Per run it prints the wall time, the time spent inside saves (run.json, data.json and
per-example records), and the sizes of run.json and data.json, beside the goals.

Usage: .venv/bin/python benchmarks/storage.py [--rows 4000] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from benchlib import bench_settings, emit, r, timer

GOAL_RUN_JSON_MB = 1.0        # run.json does not grow with the data
GOAL_SAVE_MS = 50.0           # one run.json save (as benchmarks/engine_overhead.py's save goal)

WORDS = ("apple", "river", "stone", "cloud", "seven", "orange", "window", "garden", "silver", "market", "winter",
         "planet", "candle", "forest", "button", "mirror", "pencil", "ladder", "basket", "engine")


def write_task(path: Path, rows: int, row_bytes: int, seed: int = 0) -> int:
    """A CSV of ``rows`` arithmetic questions, each padded with ``row_bytes`` of context."""
    rng = random.Random(seed)
    lines = ["question,answer"]
    for i in range(rows):
        a, b = 3 + 7 * i, 11 + 5 * i
        context = []
        size = 0
        while size < row_bytes:
            w = rng.choice(WORDS)
            context.append(w)
            size += len(w) + 1
        lines.append(f"\"Context: {' '.join(context)}. What is {a} + {b}?\",{a + b}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path.stat().st_size


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


def schema2_save(state, run_dir, data_ref=None):
    """The save before issue 15: the whole state, the examples inside (train and
    exemplars), rewritten after every change."""
    import gpo_core.runs.repository as repo

    d = state.to_dict(include_splits=False)
    d["schema_version"] = 2
    d["splits"] = {**{k: state.splits.get(k, []) for k in ("train", "dev", "test")},
                   "exemplars": state.splits.get("exemplars") or state.splits.get("train", [])}
    path = Path(run_dir) / repo.RUN_FILE
    repo.atomic_write_text(path, json.dumps(d, ensure_ascii=False, separators=(",", ":")), base=Path(run_dir))
    return path


def one_run(task: Path, out: Path, steps: int, old_save: bool) -> dict:
    import gpo_core.runs.repository as repo
    from gpo_core.runs.runner import RunRequest, run_cli

    originals = (repo.save_run, repo.save_data, repo.save_records)
    save_run = Timed(schema2_save if old_save else repo.save_run)
    save_data = Timed((lambda run_dir, splits: {"file": "-", "sha256": "-", "sizes": {}}) if old_save
                      else repo.save_data)
    save_records = Timed(repo.save_records)
    repo.save_run, repo.save_data, repo.save_records = save_run, save_data, save_records
    try:
        settings = bench_settings(8, steps=steps, candidates=4, dev_size=16, test_size=16, seed=0, epochs=None,
                                  selection="recency")  # no embedder to load: the time is the engine's
        req = RunRequest(task_path=task, out_dir=out, settings=settings, use_cache=False)
        t0 = timer()
        run_cli(req, printer=lambda line: None)
        wall = timer() - t0
    finally:
        repo.save_run, repo.save_data, repo.save_records = originals
    data = out / repo.DATA_FILE
    return {"wall_s": r(wall, 2), "save_s": r(save_run.total + save_data.total + save_records.total, 3),
            "run_json_save_s": r(save_run.total, 3), "run_json_saves": save_run.calls,
            "records_save_s": r(save_records.total, 3), "data_json_save_s": r(save_data.total, 3),
            "run_json_mb": r((out / repo.RUN_FILE).stat().st_size / 1e6, 3),
            "data_json_mb": r(data.stat().st_size / 1e6, 3) if data.exists() else 0.0}


def load_seconds(task: Path) -> float:
    from gpo_core.tasks.io import load_task

    t0 = timer()
    load_task(task)
    return timer() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--row-bytes", type=int, default=4700)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gpo-bench-storage-"))
    try:
        big, small = tmp / "big.csv", tmp / "small.csv"
        big_mb = write_task(big, a.rows, a.row_bytes) / 1e6
        small_mb = write_task(small, max(40, a.rows // 10), a.row_bytes) / 1e6
        print(f"task: {a.rows} rows, {big_mb:.1f} MB (small: {small_mb:.1f} MB); {a.steps} steps of 4 candidates, "
              "dev 16, test 16, scripted models, no cache", flush=True)
        loads = {"small": load_seconds(small), "big": load_seconds(big)}
        rows = {}
        for name, task, old in (("small", small, False), ("before", big, True), ("after", big, False)):
            rows[name] = one_run(task, tmp / name, a.steps, old)
            rows[name]["task_load_s"] = r(loads["small" if name == "small" else "big"], 2)
            print(f"{name:>6}: {json.dumps(rows[name])}", flush=True)
        beyond = {k: rows[k]["wall_s"] - rows[k]["task_load_s"] for k in rows}
        ratio_before = beyond["before"] / max(beyond["small"], 1e-9)
        ratio_after = beyond["after"] / max(beyond["small"], 1e-9)
        print(f"run.json: before {rows['before']['run_json_mb']:.1f} MB, after {rows['after']['run_json_mb']:.3f} MB "
              f"(goal < {GOAL_RUN_JSON_MB} MB; the examples: data.json {rows['after']['data_json_mb']:.1f} MB, "
              "written once)")
        n = rows["after"]["run_json_saves"]
        print(f"time in saves over the run: before {rows['before']['save_s']:.2f} s "
              f"({rows['before']['run_json_save_s'] / n * 1000:.0f} ms per run.json save), after "
              f"{rows['after']['save_s']:.2f} s ({rows['after']['run_json_save_s'] / n * 1000:.1f} ms per run.json "
              f"save, data.json once {rows['after']['data_json_save_s']:.2f} s) (goal < {GOAL_SAVE_MS:.0f} ms per "
              "run.json save)")
        print(f"run time beyond loading the task, 19 MB / small: before {ratio_before:.2f}x, after "
              f"{ratio_after:.2f}x (not a storage figure: what remains grows with the train split elsewhere "
              "in the step, e.g. the leak check's index)")
        emit({"figure": "storage", "task_mb": r(big_mb, 1), "steps": a.steps, **{f"{k}": v for k, v in rows.items()},
              "ratio_before": r(ratio_before, 2), "ratio_after": r(ratio_after, 2),
              "goal_run_json_mb": GOAL_RUN_JSON_MB, "goal_save_ms": GOAL_SAVE_MS,
              "met": rows["after"]["run_json_mb"] < GOAL_RUN_JSON_MB
              and 1000 * rows["after"]["run_json_save_s"] / n < GOAL_SAVE_MS})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
