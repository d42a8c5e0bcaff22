"""What a resumed run continues on: its SAVED settings, changed only by the flags the user
gave, each one applied or refused out loud (no argparse here).

``given`` maps each flag the user typed to its value, keyed by dest name (see
:mod:`gpo_core.runs.flags`). Model flags switch the models from the next request on
(noted as ``--optimizer-model: a -> b``); ``--steps`` extends the run, or trims it down to
the steps already done; every flag that cannot change mid-run (the task, the splits, the
other optimizer settings) is refused by name unless it repeats the saved value, so the
command that made a run can be rerun with ``--resume`` added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpo_core.errors import ConfigError
from gpo_core.models.redact import redact_url
from gpo_core.runs.flags import given_by_dest, settings_from_flags
from gpo_core.settings import ModelSettings, OptimizerSettings, RunSettings, SplitSettings, label_of

if TYPE_CHECKING:
    from gpo_core.runs.records import RunState


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return str(a) == str(b)


def _show(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def resume_settings(given: Mapping[str, Any], state: RunState) -> tuple[RunSettings, list[str]]:
    """The settings a resumed run continues on, and one line per flag the user gave saying
    what it changed. Raises ConfigError naming a flag that cannot change on resume.

    The saved settings apply unless a flag is given. Model flags switch the models from
    the next request on; ``--steps`` sets the new total (not below the steps done). The
    task, the splits and every other optimizer setting are fixed by the steps already made:
    such a flag is refused unless it repeats the saved value."""
    given = given_by_dest(given)
    saved = state.settings
    notes: list[str] = []
    task = state.task
    if "task" in given and not _same_path(given["task"], task.source or ""):
        raise ConfigError("--task", f"this run was made on {task.source or task.name!r}; resume uses its saved "
                                    "data (drop --task, or start a new run with another --out)")
    for dest, saved_value in (("instruction", task.initial_instruction), ("position", task.instruction_position),
                              ("answer_type", task.answer_type)):
        if dest in given and given[dest] != saved_value:
            raise ConfigError(f"--{dest.replace('_', '-')}", f"this run was made with {saved_value!r}; it cannot "
                              "change on resume (start a new run with another --out)")
    for dest in ("input_column", "target_column"):
        if dest in given:
            notes.append(f"--{dest.replace('_', '-')}: not used: resume continues on the run's saved examples")

    new = settings_from_flags(given, saved)
    new = _check_splits(saved, new, state)
    notes += _steps_notes(saved, new, len(state.decided_steps))
    notes += _model_notes(saved, new)
    return new, notes


def _check_splits(saved: RunSettings, new: RunSettings, state: RunState) -> RunSettings:
    """``new`` with the saved splits; a split flag is refused unless it repeats the saved
    setting or the size the split actually got."""
    actual = {"dev_size": len(state.splits.get("dev", [])), "test_size": len(state.splits.get("test", [])),
              "train_size": len(state.splits.get("train", []))}
    for f in fields(SplitSettings):
        old, value = getattr(saved.splits, f.name), getattr(new.splits, f.name)
        if value != old and value != actual.get(f.name, old):
            flag = label_of(SplitSettings, f.name, "cli")
            was = _show(old if old is not None else actual.get(f.name))
            raise ConfigError(flag, f"this run was split with {flag} {was}; its examples are saved and cannot "
                                    "change on resume (start a new run with another --out)")
    return new.replace(splits=saved.splits)


def _steps_notes(saved: RunSettings, new: RunSettings, done: int) -> list[str]:
    """The note of a changed ``--steps`` (not below ``done``) or ``--patience``; any other
    changed optimizer setting is refused."""
    notes: list[str] = []
    for f in fields(OptimizerSettings):
        old, value = getattr(saved.optimizer, f.name), getattr(new.optimizer, f.name)
        if value == old:
            continue
        flag = label_of(OptimizerSettings, f.name, "cli")
        if f.name == "patience":  # when automatic runs stop, not how steps are made: it may change
            notes.append(f"{flag}: {old} -> {value}")
            continue
        if f.name in ("max_cost", "max_spend_tokens"):  # a spend cap: a higher one continues a run stopped on it
            notes.append(f"{flag}: {_show(old)} -> {_show(value)}")
            continue
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
    return notes


def _model_notes(saved: RunSettings, new: RunSettings) -> list[str]:
    """One note per changed model setting, and one per model switched."""
    notes: list[str] = []
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
                if f.name == "base_url":  # credentials in a URL are never shown (issue 15)
                    old, value = redact_url(old), redact_url(value)
                    if old == value:
                        notes.append(f"{flag}: credentials given again for {_show(value)}{which}")
                        continue
                notes.append(f"{flag}: {_show(old)} -> {_show(value)}{which}")
        if before.describe() != after.describe():
            notes.append(f"switching the {role} model: {before.describe()} -> {after.describe()}")
    return notes
