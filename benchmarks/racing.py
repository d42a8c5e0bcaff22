"""Racing against full scoring on BIG-Bench Hard with the embedded model (issue 11, item 4):
how many dev calls racing saves, and whether it picks the candidate full scoring picks.

Per task (``../shared/data/bbh``) and seed, one GPO step of N candidates through the engine
(:class:`gpo_core.optimizer.session.GPOSession`, embedded SmolLM2-135M):

1. full scoring: every candidate on all dev examples (racing off);
2. racing (``--racing``, rounds of ``--racing-batch`` examples at ``--racing-alpha``): the SAME
   step again in a second run sharing the response cache, so the optimizer replies and every
   task answer are the same ones (cache hits); only what racing scores differs;
3. a replay of :func:`gpo_core.optimizer.racing.race` on the full run's per-example outcomes
   at other significance levels (no model call).

Agreement: racing keeps the candidate the paper's policy picks under full scoring (the best
dev accuracy, ties to the earlier), or one tied with it. Calls saved: the step's
``calls_saved`` over the calls full scoring made on dev. Prints one line per task and seed,
the totals beside the goals, and JSON on the last line. Small by default; the load average
is printed (other jobs share the 2 cores).

Usage: ``.venv/bin/python benchmarks/racing.py [--tasks navigate,sports_understanding]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make gpo_core importable
    sys.path.insert(0, str(REPO))

from gpo_core.optimizer.racing import race
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import CandidateRecord, StepRecord
from gpo_core.runs.runner import provider_for
from gpo_core.scoring.evaluation import EvalResult, ExampleRecord
from gpo_core.settings import SMOLLM2_135M, default_run_settings
from gpo_core.tasks.io import load_task
from gpo_core.tasks.task import Example

from benchlib import BBH_DIR, emit

DEFAULT_TASKS = "navigate,sports_understanding,boolean_expressions"


def _settings(args: argparse.Namespace, seed: int, racing: bool):
    base = default_run_settings("local")
    opt = base.optimizer.replace(steps=1, candidates=args.candidates, epochs=None, protocol="single",
                                 racing=racing, racing_alpha=args.racing_alpha, racing_batch=args.racing_batch)
    return base.replace(splits=base.splits.replace(dev_size=args.dev, test_size=0, seed=seed),
                        task_model=base.task_model.replace(model=SMOLLM2_135M, max_tokens=args.task_max_tokens),
                        optimizer_model=base.optimizer_model.replace(model=SMOLLM2_135M), optimizer=opt)


def _step(task, settings, provider, run_dir: Path) -> tuple[GPOSession, StepRecord]:
    models = provider.models(settings, None, need_embedder=settings.optimizer.selection == "relevance")
    s = GPOSession.create(task, settings, models, run_dir=run_dir)
    s.start()
    return s, s.propose()


def _agrees(full: StepRecord, pick_full: CandidateRecord | None, pick_race: CandidateRecord | None) -> bool:
    if pick_full is None or pick_race is None:
        return pick_full is None and pick_race is None
    return pick_full.text == pick_race.text or pick_full.dev_accuracy == next(
        (c.dev_accuracy for c in full.candidates if c.text == pick_race.text), None)


def _replay(session: GPOSession, step: StepRecord, alpha: float, batch: int) -> tuple[int, int, bool]:
    """(dev calls made, dev calls of full scoring, agrees) of racing replayed on the full
    step's kept per-example outcomes."""
    scored = [c for c in step.candidates if c.status == "scored"]
    if len(scored) < 2:
        return 0, 0, True
    outcomes = {c.text: [bool(r["correct"]) for r in session.records(c.id)] for c in scored}
    dev = [Example(f"q{i}", "x") for i in range(len(session.splits.dev))]

    def evaluate(prompts, examples, cb):
        out = []
        for p in prompts:
            recs = [ExampleRecord(e.input, e.target, "", "", None, outcomes[p][int(e.input[1:])], 0, 0, None, 1, False)
                    for e in examples]
            k = sum(r.correct for r in recs)
            out.append(EvalResult(p, "dev", k / len(recs), len(recs), k, 0, _usage(len(recs)), recs))
        return out

    results = race([c.text for c in scored], dev, evaluate, alpha=alpha, batch=batch)
    made = sum(r.result.n for r in results)
    alive = [(c, r) for c, r in zip(scored, results) if r.raced_out_after is None]
    best_full = max(c.dev_accuracy or 0.0 for c in scored)
    best_alive = max((c.dev_accuracy or 0.0) for c, _ in alive)
    return made, len(scored) * len(dev), best_alive == best_full


def _usage(n: int):
    from gpo_core.models.base import TokenUsage

    return TokenUsage(calls=n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=DEFAULT_TASKS)
    p.add_argument("--seeds", default="0")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--dev", type=int, default=16)
    p.add_argument("--task-max-tokens", type=int, default=32)
    p.add_argument("--racing-alpha", type=float, default=0.05)
    p.add_argument("--racing-batch", type=int, default=4)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gpo-racing-"))
    os.environ["GPO_HOME"] = str(home)
    provider = provider_for(home / "cache")
    print(f"load average at start {os.getloadavg()[0]:.2f}; {args.candidates} candidates, dev {args.dev}, "
          f"racing alpha {args.racing_alpha}, batch {args.racing_batch}", flush=True)
    rows = []
    replays: dict[float, list[tuple[int, int, bool]]] = {0.05: [], 0.2: [], 0.5: []}
    t0 = time.perf_counter()
    for name in args.tasks.split(","):
        task = load_task((REPO / BBH_DIR / name).resolve())
        for seed in (int(x) for x in args.seeds.split(",")):
            full_s, full = _step(task, _settings(args, seed, False), provider, home / f"{name}-{seed}-full")
            race_s, raced = _step(task, _settings(args, seed, True), provider, home / f"{name}-{seed}-race")
            dev_calls = sum(c.dev_n for c in full.candidates if c.status == "scored")
            pick_full, pick_race = full_s.best_candidate(), race_s.best_candidate()
            agree = _agrees(full, pick_full, pick_race)
            out = sum(1 for c in raced.candidates if c.status == "raced_out")
            accs = sorted(((c.dev_accuracy or 0.0) for c in full.candidates if c.status == "scored"), reverse=True)
            rows.append({"task": name, "seed": seed, "dev_calls_full": dev_calls, "calls_saved": raced.calls_saved,
                         "raced_out": out, "agree": agree, "dev_accuracies": [round(a, 3) for a in accs]})
            print(f"{name} seed {seed}: full dev accuracies {[f'{a:.2f}' for a in accs]}; racing dropped {out}, "
                  f"saved {raced.calls_saved} of {dev_calls} dev calls; same choice: {agree}", flush=True)
            for alpha, bucket in replays.items():
                bucket.append(_replay(full_s, full, alpha, args.racing_batch))
    total = sum(r["dev_calls_full"] for r in rows)
    saved = sum(r["calls_saved"] for r in rows)
    agree_n = sum(r["agree"] for r in rows)
    print(f"racing (engine, alpha {args.racing_alpha}): saved {saved} of {total} dev calls "
          f"({saved / max(1, total):.0%}); same choice as full scoring in {agree_n} of {len(rows)} steps "
          "(goal: all; calls saved reported, no goal)")
    replay_out = {}
    for alpha, bucket in replays.items():
        made, full_calls = sum(b[0] for b in bucket), sum(b[1] for b in bucket)
        ok = sum(b[2] for b in bucket)
        replay_out[str(alpha)] = {"saved": full_calls - made, "of": full_calls, "agree": ok, "steps": len(bucket)}
        print(f"replay alpha {alpha}: saved {full_calls - made} of {full_calls} dev calls "
              f"({(full_calls - made) / max(1, full_calls):.0%}); keeps a full-dev best in {ok} of {len(bucket)}")
    print(f"{time.perf_counter() - t0:.0f}s; load average at end {os.getloadavg()[0]:.2f}")
    emit({"figure": "racing", "rows": rows, "calls_saved": saved, "dev_calls_full": total, "agree": agree_n,
          "steps": len(rows), "replay": replay_out, "goal": "same choice as full scoring in every step"})


if __name__ == "__main__":
    main()
