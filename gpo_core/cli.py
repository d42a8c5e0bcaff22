"""Command line: ``gpo-studio run|schedule`` (or ``python -m gpo_core run|schedule``).

``run`` optimizes a prompt automatically and writes DIR/run.json (saved after every step)
and DIR/final_prompt.txt; ``schedule`` prints edit budgets one per line. A bad task file
or setting exits with status 2 and a one-line message naming the flag, no traceback.

``run --resume`` continues the run saved in ``--out`` on its SAVED settings: models, splits
and optimizer settings come from run.json, not from the flags' defaults. A flag the user
gives explicitly is applied or refused, out loud: model flags switch the models from the
next request on (printed as ``--optimizer-model: a -> b``), ``--steps`` extends (or trims
down to the steps already done) the run, and every flag that cannot change mid-run (the
task, the splits, the other optimizer settings) is refused by name unless it repeats the
saved value, so the command that made a run can be rerun with ``--resume`` added.

This module is the argument parser and the dispatch only: settings from the given flags
are made by :mod:`gpo_core.runs.flags`, the resume rules live in :mod:`gpo_core.runs.resume`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError, GPOError
from gpo_core.optimizer.direction import SELECTION_STRATEGIES
from gpo_core.optimizer.schedule import SCHEDULE_KINDS, budget_schedule
from gpo_core.runs.flags import settings_from_flags
from gpo_core.runs.resume import resume_settings
from gpo_core.settings import (
    DIRECTION_ORDERS,
    DIRECTION_POOLS,
    EXEMPLAR_DRAWS,
    PRESETS,
    OptimizerSettings,
    SplitSettings,
    default_model_settings,
    label_for,
)

#: The engine's names of the task-loading settings -> their flags.
_TASK_FLAGS = {"answer_type": "--answer-type", "instruction_position": "--position",
               "initial_instruction": "--instruction", "input_column": "--input-column",
               "target_column": "--target-column", "task": "--task", "out": "--out"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpo-studio", description="GPO Studio engine: optimize a prompt against "
                                "labeled data (GPO, arXiv 2402.17564).")
    sub = p.add_subparsers(dest="command", required=True)
    d, sp = OptimizerSettings(), SplitSettings()
    dt, do = default_model_settings("task", "openai"), default_model_settings("optimizer", "openai")

    # Every settings flag defaults to None: a value that is not None was typed by the user,
    # which --resume needs to know (the saved settings apply unless a flag is given).
    r = sub.add_parser("run", help="run GPO automatically on a task",
                       description="Run GPO automatically on a task. With --resume, the run saved in --out "
                                   "continues on its saved settings; flags given explicitly are applied "
                                   "(models, --steps) or refused by name.")
    r.add_argument("--task", default=None, help="task file (.csv/.jsonl/.json) or folder with train/eval/test "
                   "files (required for a new run; resume uses the run's saved examples)")
    r.add_argument("--out", required=True, help="output folder: run.json, records/, final_prompt.txt")
    r.add_argument("--steps", type=int, default=None, help="total optimization steps T (default: set by "
                   "--epochs, the paper's); with --resume: extend or shorten the run")
    r.add_argument("--candidates", type=int, default=None, help=f"candidates sampled per step (default {d.candidates})")
    r.add_argument("--dev-size", type=int, default=None, help="dev examples that score candidates (default: a "
                   "folder's whole eval split, else min(48, n/4))")
    r.add_argument("--test-size", type=int, default=None, help="test examples scored for each chosen prompt "
                   "(0 = none; default: a folder's whole test split, else up to 144)")
    r.add_argument("--train-size", type=int, default=None, help="cap on train examples (exemplar pool; default: all)")
    r.add_argument("--k", type=int, default=None, help=f"trajectory prompts retrieved per step (default {d.k})")
    r.add_argument("--selection", choices=SELECTION_STRATEGIES, default=None,
                   help=f"update-direction strategy (default {d.selection})")
    r.add_argument("--schedule", choices=SCHEDULE_KINDS, default=None,
                   help=f"edit budget schedule (default {d.schedule})")
    r.add_argument("--budget-initial", type=int, default=None,
                   help=f"edit budget at step 1, words (default {d.budget_initial})")
    r.add_argument("--budget-final", type=int, default=None,
                   help=f"edit budget at step T, words (default {d.budget_final})")
    r.add_argument("--warmup", type=int, default=None, help=f"warmup steps of the schedule (default {d.warmup})")
    r.add_argument("--no-budget", action="store_true", default=None,
                   help="leave the edit budget out of the meta-prompt (ablation)")
    r.add_argument("--enforce-budget", action="store_true", default=None,
                   help="drop candidates whose edit distance exceeds the budget")
    r.add_argument("--exemplars", type=int, default=None,
                   help=f"task exemplars in the meta-prompt (default {d.n_exemplars})")
    r.add_argument("--policy", default=None, help=f"decision policy: paper = the best candidate not chosen "
                   "before, better = only if better than the current prompt on dev, significant = only if "
                   f"significantly better (exact McNemar p < --alpha) (default {d.policy})")
    r.add_argument("--alpha", type=float, default=None,
                   help=f"significance level of --policy significant, in (0, 1) (default {d.alpha})")
    r.add_argument("--direction-pool", choices=DIRECTION_POOLS, default=None,
                   help="prompts the update direction retrieves from: chosen = the start prompt and each step's "
                        "chosen prompt (the reference code), all = every scored candidate "
                        f"(default {d.direction_pool})")
    r.add_argument("--direction-order", choices=DIRECTION_ORDERS, default=None,
                   help="order of the retrieved prompts in the meta-prompt: reference = as the strategy picks them, "
                        f"score = ascending, best last (default {d.direction_order})")
    r.add_argument("--layout", default=None, help=f"meta-prompt layout: gpo (the reference code's), opro or short "
                   f"(default {d.layout})")
    r.add_argument("--exemplar-draw", choices=EXEMPLAR_DRAWS, default=None,
                   help=f"task exemplars drawn once per run or at each step (default {d.exemplar_draw})")
    r.add_argument("--epochs", type=int, default=None,
                   help="set T from the data: epochs x steps per epoch (train examples / --batch-size); "
                        f"default {PRESETS['paper'][0].epochs} (the paper's) unless --steps is given")
    r.add_argument("--batch-size", type=int, default=None,
                   help=f"train examples per step when --epochs sets T (default {d.batch_size})")
    r.add_argument("--protocol", choices=("auto", "reference", "single"), default=None,
                   help="scoring protocol: reference = question and instruction without labels, then an answer "
                        "re-prompt (the reference code; 2 calls an example); single = labelled prompt, one call; "
                        f"auto = reference for task folders, single for files (default {d.protocol})")
    r.add_argument("--seed", type=int, default=None, help=f"seed of splits and exemplar draws (default {sp.seed})")
    r.add_argument("--instruction", default=None,
                   help="starting instruction (default: the task's, else \"Let's think step by step.\")")
    r.add_argument("--position", default=None, choices=["before_Q", "Q_begin", "Q_end", "A_begin"],
                   help="instruction position (default: the task's)")
    r.add_argument("--answer-type", default=None, help="answer type (default: the task's or inferred)")
    r.add_argument("--input-column", default=None, help="input column/key (default: guessed)")
    r.add_argument("--target-column", default=None, help="target column/key (default: guessed)")
    r.add_argument("--backend", choices=["local", "openai"], default=None,
                   help="local (default) = embedded SmolLM2-135M-Instruct; openai = OpenAI or any compatible server")
    r.add_argument("--model", default=None, help="model name for both task and optimizer model (openai backend)")
    r.add_argument("--task-model", default=None, help="task model (scorer) name, overrides --model")
    r.add_argument("--optimizer-model", default=None, help="optimizer model name, overrides --model")
    r.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or "
                   "OpenAI); key from $OPENAI_API_KEY")
    r.add_argument("--task-temperature", type=float, default=None,
                   help=f"sampling temperature of the task model (default {dt.temperature:g})")
    r.add_argument("--optimizer-temperature", type=float, default=None,
                   help=f"sampling temperature of the optimizer model (default {do.temperature:g})")
    r.add_argument("--task-max-tokens", type=int, default=None,
                   help="completion cap of task-model calls (tokens; default 128 embedded, 256 otherwise)")
    r.add_argument("--optimizer-max-tokens", type=int, default=None,
                   help=f"completion cap of optimizer calls (tokens; default {do.max_tokens})")
    r.add_argument("--concurrency", type=int, default=None,
                   help=f"model calls in flight at once (openai backend, default {dt.concurrency}; "
                        "the embedded model runs 1)")
    r.add_argument("--timeout", type=float, default=None,
                   help=f"per-request timeout, seconds (openai backend, default {dt.timeout_s:g})")
    r.add_argument("--cache-dir", default=None,
                   help="response cache folder (default: $GPO_HOME or the per-user data folder)")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    r.add_argument("--resume", action="store_true", help="continue the run saved in --out on its saved settings")
    r.add_argument("--quiet", action="store_true", help="print only the final line")

    s = sub.add_parser("schedule", help="print edit budgets, one per line",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--kind", choices=SCHEDULE_KINDS, default="cosine", help="schedule kind")
    s.add_argument("--initial", type=int, default=50, help="budget at step 1 (words)")
    s.add_argument("--final", type=int, default=10, help="budget at the last step (words)")
    s.add_argument("--steps", type=int, default=18, help="total steps T")
    s.add_argument("--warmup", type=int, default=0, help="warmup steps")
    return p


def _cmd_schedule(a: argparse.Namespace) -> int:
    for b in budget_schedule(kind=a.kind, initial=a.initial, final=a.final, total_steps=a.steps, warmup=a.warmup):
        print(b)
    return 0


def given_flags(a: argparse.Namespace) -> dict[str, Any]:
    """The ``run`` flags the user typed, dest -> value (every settings flag defaults to None)."""
    return {k: v for k, v in vars(a).items() if v is not None and k not in ("command", "out", "resume", "quiet",
                                                                            "no_cache")}


#: The engine's names of the schedule settings -> the ``schedule`` command's flags.
_SCHEDULE_FLAGS = {"schedule": "--kind", "budget_initial": "--initial", "budget_final": "--final",
                   "steps": "--steps", "warmup": "--warmup"}


def _cli_name(setting: str, command: str = "run") -> str:
    """The flag of a setting the engine named by its field (``dev_size`` -> ``--dev-size``)."""
    if setting.startswith("--"):
        return setting
    if command == "schedule":
        return _SCHEDULE_FLAGS.get(setting, setting)
    label = label_for(setting, "cli")
    return label if label.startswith("--") else _TASK_FLAGS.get(setting, setting)


def _cmd_run(a: argparse.Namespace) -> int:
    from gpo_core.runs.repository import RUN_FILE
    from gpo_core.runs.runner import RunRequest, run_cli

    out = Path(a.out)
    resuming = a.resume and (out / RUN_FILE).exists()
    if not resuming and a.task is None:
        raise ConfigError("--task", "a new run needs a task file or folder")
    given = given_flags(a)
    req = RunRequest(
        task_path=Path(a.task) if a.task else None, out_dir=out, resume=a.resume,
        settings=None if resuming else settings_from_flags(given),
        resume_settings=(lambda state: resume_settings(given, state)) if a.resume else None,
        cache_dir=Path(a.cache_dir) if a.cache_dir else None, use_cache=not a.no_cache,
        instruction=a.instruction, position=a.position, answer_type=a.answer_type,
        input_column=a.input_column, target_column=a.target_column,
    )
    printer = (lambda line: None) if a.quiet else (lambda line: print(line, flush=True))
    result = run_cli(req, printer)
    print(result, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gpo-studio`` and ``python -m gpo_core``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _cmd_schedule(args) if args.command == "schedule" else _cmd_run(args)
    except ConfigError as e:
        print(f"error: {e.relabeled(_cli_name(e.setting, args.command))}", file=sys.stderr)
        return 2
    except GPOError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every finished step is saved; rerun with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
