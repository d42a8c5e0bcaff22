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
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpo_core.errors import ConfigError, GPOError
from gpo_core.optimizer.direction import SELECTION_STRATEGIES
from gpo_core.optimizer.schedule import SCHEDULE_KINDS, budget_schedule
from gpo_core.settings import (
    LOCAL_DEFAULT_MODEL,
    ModelSettings,
    OptimizerSettings,
    RunSettings,
    SplitSettings,
    default_model_settings,
    default_run_settings,
    label_for,
    label_of,
)

if TYPE_CHECKING:
    from gpo_core.runs.records import RunState

#: The engine's names of the task-loading settings -> their flags.
_TASK_FLAGS = {"answer_type": "--answer-type", "instruction_position": "--position",
               "initial_instruction": "--instruction", "input_column": "--input-column",
               "target_column": "--target-column", "task": "--task", "out": "--out"}
#: Model flags (dest names); each applies to the model roles it names.
_MODEL_DESTS = ("backend", "model", "task_model", "optimizer_model", "base_url", "task_temperature",
                "optimizer_temperature", "task_max_tokens", "optimizer_max_tokens", "concurrency", "timeout")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _flagged_fields(cls: type) -> dict[str, str]:
    """dest -> field name of every field of ``cls`` that carries a CLI flag."""
    return {_dest(f.metadata["flag"]): f.name for f in fields(cls) if f.metadata.get("flag")}


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
    r.add_argument("--steps", type=int, default=None, help=f"total optimization steps T (default {d.steps}, "
                   "the paper's); with --resume: extend or shorten the run")
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
    r.add_argument("--policy", default=None, help=f"decision policy (default {d.policy}: the best candidate "
                   "not chosen before)")
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


def given_flags(a: argparse.Namespace) -> set[str]:
    """The dests of the ``run`` flags the user typed (every settings flag defaults to None)."""
    return {k for k, v in vars(a).items() if v is not None and k not in ("command", "out", "resume", "quiet",
                                                                          "no_cache")}


def _part_from_args(cls: type, base: Any, a: argparse.Namespace, given: set[str]) -> Any:
    """``base`` (SplitSettings or OptimizerSettings) with the flags the user gave."""
    changes = {}
    for dest, name in _flagged_fields(cls).items():
        if dest in given:
            value = getattr(a, dest)
            if isinstance(getattr(base, name), bool):  # a switch: --no-budget, --enforce-budget
                value = not dest.startswith("no_")
            changes[name] = value
    return base.replace(**changes) if changes else base


def _kind(backend: str) -> str:
    """The CLI's --backend choice a saved backend belongs to."""
    return "openai" if backend in ("openai", "compatible") else backend


def _model_from_args(role: str, base: ModelSettings, a: argparse.Namespace, given: set[str],
                     fresh: bool) -> ModelSettings:
    """The ``role`` model's settings: ``base`` with the model flags the user gave. ``fresh``:
    a new run (the environment's OPENAI_BASE_URL applies and the openai backend needs a
    model name); on resume, a flag not given keeps the saved value."""
    kind = a.backend if "backend" in given else _kind(base.backend)
    switched = kind != _kind(base.backend)
    if switched:
        base = default_model_settings(role, kind)
    name = getattr(a, f"{role}_model") or a.model
    if "concurrency" in given and a.concurrency < 1:
        raise ConfigError("--concurrency", f"must be a whole number >= 1, got {a.concurrency}")
    changes: dict[str, Any] = {}
    if kind == "local":
        if "base_url" in given:
            raise ConfigError("--base-url", "only the openai backend has a base URL; add --backend openai")
        changes.update(backend="local", model=name or base.model or LOCAL_DEFAULT_MODEL, base_url=None, concurrency=1)
    elif kind == "openai":
        if not name and (fresh or switched):
            raise ConfigError("--model", "the openai backend needs --model (or --task-model and --optimizer-model)")
        if "base_url" in given:
            base_url = a.base_url
        elif fresh or switched:
            base_url = os.environ.get("OPENAI_BASE_URL") or None
        else:
            base_url = base.base_url
        changes.update(backend="compatible" if base_url else "openai", model=name or base.model, base_url=base_url)
        if "concurrency" in given:
            changes["concurrency"] = a.concurrency
    elif name:  # a saved "demo" run: only the model name can change
        changes["model"] = name
    for dest, fname in ((f"{role}_temperature", "temperature"), (f"{role}_max_tokens", "max_tokens"),
                        ("timeout", "timeout_s")):
        if dest in given:
            changes[fname] = getattr(a, dest)
    settings = base.replace(**changes)
    try:
        return settings.validate("cli", role)
    except ConfigError as e:  # name the flag the user typed: --model rather than --task-model
        if e.setting == f"--{role}-model" and getattr(a, f"{role}_model") is None and a.model is not None:
            raise e.relabeled("--model") from None
        raise


def settings_from_args(a: argparse.Namespace, base: RunSettings | None = None) -> RunSettings:
    """The run's settings from the parsed ``run`` flags, validated so that an error names
    the flag (``--optimizer-temperature``), not an internal field.

    base: the settings the flags change; None for a new run (the defaults of ``--backend``,
    the paper's optimizer settings). On resume, the run's saved settings: only the flags
    the user typed change them."""
    given = given_flags(a)
    fresh = base is None
    if base is None:
        base = default_run_settings(a.backend or "local", preset="paper")
    settings = base.replace(
        splits=_part_from_args(SplitSettings, base.splits, a, given),
        task_model=_model_from_args("task", base.task_model, a, given, fresh),
        optimizer_model=_model_from_args("optimizer", base.optimizer_model, a, given, fresh),
        optimizer=_part_from_args(OptimizerSettings, base.optimizer, a, given))
    return settings.validate("cli")


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return str(a) == str(b)


def _show(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def resume_settings(a: argparse.Namespace, state: RunState) -> tuple[RunSettings, list[str]]:
    """The settings a resumed run continues on, and one line per flag the user gave saying
    what it changed. Raises ConfigError naming a flag that cannot change on resume.

    The saved settings apply unless a flag is given. Model flags switch the models from
    the next request on; ``--steps`` sets the new total (not below the steps done). The
    task, the splits and every other optimizer setting are fixed by the steps already made:
    such a flag is refused unless it repeats the saved value."""
    given = given_flags(a)
    saved = state.settings
    notes: list[str] = []
    task = state.task
    if "task" in given and not _same_path(a.task, task.source or ""):
        raise ConfigError("--task", f"this run was made on {task.source or task.name!r}; resume uses its saved "
                                    "data (drop --task, or start a new run with another --out)")
    for dest, saved_value in (("instruction", task.initial_instruction), ("position", task.instruction_position),
                              ("answer_type", task.answer_type)):
        if dest in given and getattr(a, dest) != saved_value:
            raise ConfigError(f"--{dest.replace('_', '-')}", f"this run was made with {saved_value!r}; it cannot "
                              "change on resume (start a new run with another --out)")
    for dest in ("input_column", "target_column"):
        if dest in given:
            notes.append(f"--{dest.replace('_', '-')}: not used: resume continues on the run's saved examples")

    new = settings_from_args(a, saved)

    actual = {"dev_size": len(state.splits.get("dev", [])), "test_size": len(state.splits.get("test", [])),
              "train_size": len(state.splits.get("train", []))}
    for f in fields(SplitSettings):
        old, value = getattr(saved.splits, f.name), getattr(new.splits, f.name)
        if value != old and value != actual.get(f.name, old):
            flag = label_of(SplitSettings, f.name, "cli")
            was = _show(old if old is not None else actual.get(f.name))
            raise ConfigError(flag, f"this run was split with {flag} {was}; its examples are saved and cannot "
                                    "change on resume (start a new run with another --out)")
    new = new.replace(splits=saved.splits)

    done = len(state.decided_steps)
    for f in fields(OptimizerSettings):
        old, value = getattr(saved.optimizer, f.name), getattr(new.optimizer, f.name)
        if value == old:
            continue
        flag = label_of(OptimizerSettings, f.name, "cli")
        if f.name != "steps":
            if isinstance(old, bool):  # a switch: on when the flag was given
                made = "with" if old != flag.startswith("--no-") else "without"
                was = f"{made} {flag}"
            else:
                was = f"with {flag} {_show(old)}"
            raise ConfigError(flag, f"this run's steps were made {was}; it cannot change on resume (start a new "
                                    "run with another --out)")
        if value < done:
            raise ConfigError(flag, f"this run has already done {done} steps; give at least {done}")
        notes.append(f"{flag}: {old} -> {value}")

    shared = {"backend", "base_url", "concurrency", "timeout_s"}
    for role in ("task", "optimizer"):
        before, after = saved.model(role), new.model(role)
        if before == after:
            continue
        for f in fields(ModelSettings):
            old, value = getattr(before, f.name), getattr(after, f.name)
            if old != value:
                flag = label_of(ModelSettings, f.name, "cli", role)
                which = f" ({role} model)" if f.name in shared else ""
                notes.append(f"{flag}: {_show(old)} -> {_show(value)}{which}")
        if before.describe() != after.describe():
            notes.append(f"switching the {role} model: {before.describe()} -> {after.describe()}")
    return new, notes


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
    req = RunRequest(
        task_path=Path(a.task) if a.task else None, out_dir=out, resume=a.resume,
        settings=None if resuming else settings_from_args(a),
        resume_settings=(lambda state: resume_settings(a, state)) if a.resume else None,
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
