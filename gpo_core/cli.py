"""Command line: ``python -m gpo_core run|schedule``.

``run`` optimizes a prompt automatically and writes DIR/run.json (saved after every step)
and DIR/final_prompt.txt; ``schedule`` prints edit budgets one per line. A bad task file
or setting exits with status 2 and a one-line message, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gpo_core.settings import (ModelSettings, OptimizerSettings, RunSettings, SplitSettings,
                               default_model_settings, default_run_settings)
from gpo_core.errors import ConfigError, GPOError
from gpo_core.optimizer.schedule import SCHEDULE_KINDS, budget_schedule
from gpo_core.optimizer.direction import SELECTION_STRATEGIES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gpo_core", description="GPO Studio engine: optimize a prompt against labeled data (GPO, arXiv 2402.17564).")
    sub = p.add_subparsers(dest="command", required=True)
    d = OptimizerSettings()
    dt, do = default_model_settings("task", "openai"), default_model_settings("optimizer", "openai")

    r = sub.add_parser("run", help="run GPO automatically on a task", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--task", required=True, help="task file (.csv/.jsonl/.json) or folder with train/eval/test files")
    r.add_argument("--out", required=True, help="output folder: run.json, records/, final_prompt.txt")
    r.add_argument("--steps", type=int, default=d.steps, help="total optimization steps T (paper: 18)")
    r.add_argument("--candidates", type=int, default=d.candidates, help="candidates sampled per step (paper: 8)")
    r.add_argument("--dev-size", type=int, default=None, help="dev examples that score candidates (default: a folder's whole eval split, else min(48, n/4))")
    r.add_argument("--test-size", type=int, default=None, help="test examples scored for each chosen prompt (0 = none; default: a folder's whole test split, else up to 144)")
    r.add_argument("--train-size", type=int, default=None, help="cap on train examples (exemplar pool)")
    r.add_argument("--k", type=int, default=d.k, help="trajectory prompts retrieved per step")
    r.add_argument("--selection", choices=SELECTION_STRATEGIES, default=d.selection, help="update-direction strategy")
    r.add_argument("--schedule", choices=SCHEDULE_KINDS, default=d.schedule, help="edit budget schedule")
    r.add_argument("--budget-initial", type=int, default=d.budget_initial, help="edit budget at step 1 (words)")
    r.add_argument("--budget-final", type=int, default=d.budget_final, help="edit budget at step T (words)")
    r.add_argument("--warmup", type=int, default=d.warmup, help="warmup steps of the schedule")
    r.add_argument("--no-budget", action="store_true", help="leave the edit budget out of the meta-prompt (ablation)")
    r.add_argument("--enforce-budget", action="store_true", help="drop candidates whose edit distance exceeds the budget")
    r.add_argument("--exemplars", type=int, default=d.n_exemplars, help="task exemplars in the meta-prompt")
    r.add_argument("--instruction", default=None, help="starting instruction (default: the task's, else \"Let's think step by step.\")")
    r.add_argument("--position", default=None, choices=["before_Q", "Q_begin", "Q_end", "A_begin"], help="instruction position (default: the task's)")
    r.add_argument("--answer-type", default=None, help="answer type (default: the task's or inferred)")
    r.add_argument("--input-column", default=None, help="input column/key (default: guessed)")
    r.add_argument("--target-column", default=None, help="target column/key (default: guessed)")
    r.add_argument("--backend", choices=["local", "openai"], default="local", help="local = embedded SmolLM2-135M-Instruct; openai = OpenAI or any compatible server")
    r.add_argument("--model", default=None, help="model name for both task and optimizer model (openai backend)")
    r.add_argument("--task-model", default=None, help="task model (scorer) name, overrides --model")
    r.add_argument("--optimizer-model", default=None, help="optimizer model name, overrides --model")
    r.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or OpenAI); key from $OPENAI_API_KEY")
    r.add_argument("--task-temperature", type=float, default=dt.temperature, help="sampling temperature of the task model")
    r.add_argument("--optimizer-temperature", type=float, default=do.temperature, help="sampling temperature of the optimizer model")
    r.add_argument("--task-max-tokens", type=int, default=None, help="completion cap of task-model calls (tokens; default 128 embedded, 256 otherwise)")
    r.add_argument("--optimizer-max-tokens", type=int, default=do.max_tokens, help="completion cap of optimizer calls (tokens)")
    r.add_argument("--concurrency", type=int, default=dt.concurrency, help="model calls in flight at once (openai backend; the embedded model runs 1)")
    r.add_argument("--timeout", type=float, default=dt.timeout_s, help="per-request timeout, seconds (openai backend)")
    r.add_argument("--policy", default=d.policy, help="decision policy (paper: best candidate not chosen before)")
    r.add_argument("--seed", type=int, default=SplitSettings().seed, help="seed of splits and exemplar draws")
    r.add_argument("--cache-dir", default=None, help="response cache folder (default: $GPO_HOME or the per-user data folder)")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    r.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    r.add_argument("--quiet", action="store_true", help="print only the final line")

    s = sub.add_parser("schedule", help="print edit budgets, one per line", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--kind", choices=SCHEDULE_KINDS, default="cosine", help="schedule kind")
    s.add_argument("--initial", type=int, default=50, help="budget at step 1 (words)")
    s.add_argument("--final", type=int, default=10, help="budget at the last step (words)")
    s.add_argument("--steps", type=int, default=18, help="total steps T")
    s.add_argument("--warmup", type=int, default=0, help="warmup steps")
    return p


def _cmd_schedule(a) -> int:
    for b in budget_schedule(kind=a.kind, initial=a.initial, final=a.final, total_steps=a.steps, warmup=a.warmup):
        print(b)
    return 0


def settings_from_args(a: argparse.Namespace) -> RunSettings:
    """The run's settings from the parsed ``run`` flags, validated so that an error names
    the flag (``--optimizer-temperature``), not an internal field."""
    base = default_run_settings(a.backend, preset="paper")

    def model(role: str, name: str | None) -> ModelSettings:
        d = base.model(role)
        if a.backend == "local":
            kw = dict(backend="local", model=name or d.model, concurrency=1)
        else:
            if not name:
                raise ConfigError("--model", "the openai backend needs --model (or --task-model and --optimizer-model)")
            kw = dict(backend="compatible" if a.base_url else "openai", model=name, base_url=a.base_url,
                      concurrency=a.concurrency)
        max_tokens = getattr(a, f"{role}_max_tokens")
        return d.replace(temperature=getattr(a, f"{role}_temperature"),
                         max_tokens=d.max_tokens if max_tokens is None else max_tokens,
                         timeout_s=a.timeout, **kw).validate("cli", role)

    if a.concurrency < 1:
        raise ConfigError("--concurrency", f"must be a whole number >= 1, got {a.concurrency}")
    settings = RunSettings(
        splits=SplitSettings(dev_size=a.dev_size, test_size=a.test_size, train_size=a.train_size, seed=a.seed),
        task_model=model("task", a.task_model or a.model),
        optimizer_model=model("optimizer", a.optimizer_model or a.model),
        optimizer=OptimizerSettings(steps=a.steps, candidates=a.candidates, k=a.k, selection=a.selection,
                                    schedule=a.schedule, budget_initial=a.budget_initial, budget_final=a.budget_final,
                                    warmup=a.warmup, use_budget=not a.no_budget, enforce_budget=a.enforce_budget,
                                    n_exemplars=a.exemplars, policy=a.policy))
    return settings.validate("cli")


def _cmd_run(a) -> int:
    from .runs.runner import RunRequest, run_cli

    a.base_url = a.base_url or os.environ.get("OPENAI_BASE_URL")
    req = RunRequest(
        task_path=Path(a.task), out_dir=Path(a.out), resume=a.resume, settings=settings_from_args(a),
        cache_dir=Path(a.cache_dir) if a.cache_dir else None, use_cache=not a.no_cache,
        instruction=a.instruction, position=a.position, answer_type=a.answer_type,
        input_column=a.input_column, target_column=a.target_column,
    )
    printer = (lambda line: None) if a.quiet else (lambda line: print(line, flush=True))
    result = run_cli(req, printer)
    print(result, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _cmd_schedule(args) if args.command == "schedule" else _cmd_run(args)
    except GPOError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every finished step is saved; rerun with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
