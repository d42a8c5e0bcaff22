"""Warm start: begin a run from another run's final prompt, typically on a different task model
(issue 13, item 2: "a prompt found on model A, carried to model B").

The new run's starting instruction is the source run's final prompt
(:func:`gpo_core.runs.final.final_entry`), and the run records where it came from in
``RunTask.start_from`` (run.json's ``task.start_from``): the source run's id, task, task model,
the final prompt's dev (and test) accuracy there with its 95% Wilson interval, and the new
run's task model. :func:`warm_start_text` is the one line every surface shows beside the
starting prompt (CLI, Optimize page, JSON export), so a carried prompt is never passed off
as typed: no silent lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.runs.final import entry_score, final_entry
from gpo_core.runs.records import RunState
from gpo_core.settings import ModelSettings

__all__ = ["WarmStart", "warm_start_from", "warm_start_text"]


@dataclass(frozen=True)
class WarmStart:
    """A warm start chosen: prompt (the source run's final prompt) and ``source`` (the record
    without the new run's task model; see :meth:`record`)."""

    prompt: str
    source: dict[str, Any]

    def record(self, task_model: ModelSettings, task_name: str) -> dict[str, Any]:
        """What the new run keeps in ``task.start_from``: the source plus the new task model
        ("task_model_now") and whether the model or task differ."""
        now = task_model.describe()
        return {**self.source, "task_model_now": now, "same_task_model": now == self.source.get("task_model"),
                "same_task": task_name == self.source.get("task")}


def _proportion(state: RunState, split: str) -> dict | None:
    p = entry_score(state, final_entry(state), split)
    return p.to_dict() if p is not None and p.answered else None


def warm_start_from(state: RunState, where: str = "--start-from") -> WarmStart:
    """The warm start from the saved run ``state``: its final prompt and where it came from.
    Raises ConfigError naming ``where`` (the CLI flag or the app widget) when the run's start
    is not scored yet (it has no final prompt)."""
    if state.initial is None:
        raise ConfigError(where, f"run {state.run_id} has no final prompt yet (its starting prompt is not scored)")
    entry = final_entry(state)
    if not entry.prompt.strip():
        raise ConfigError(where, f"run {state.run_id}'s final prompt is empty")
    label = "start" if entry.id == 0 else f"step {entry.step} · {entry.candidate_id or entry.id}"
    source = {"run_id": state.run_id, "task": state.task.name, "task_model": state.settings.task_model.describe(),
              "final": label, "dev": _proportion(state, "dev"), "test": _proportion(state, "test"),
              "steps": len(state.decided_steps)}
    return WarmStart(entry.prompt, source)


def warm_start_from_dir(run_dir: Path, where: str = "--start-from") -> WarmStart:
    """:func:`warm_start_from` of the run saved in ``run_dir`` (RunFileError when unreadable)."""
    from gpo_core.runs.repository import load_run

    return warm_start_from(load_run(Path(run_dir)), where)


def _pct(p: dict | None) -> str:
    if not p or p.get("accuracy") is None:
        return "–"
    lo, hi = p["ci95"]
    return f"{100 * p['accuracy']:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}%]"


def warm_start_text(start_from: dict | None) -> str:
    """One line for people: "Warm start: the starting prompt is the final prompt (step 3 · s3a1c2)
    of run X on task T, task model A (dev 62.5% [..], test ...); this run's task model is B." ("" when
    there is no warm start)."""
    if not start_from:
        return ""
    s = start_from
    line = (f"Warm start: the starting prompt is the final prompt ({s.get('final', '?')}) of run {s.get('run_id')} "
            f"on task {s.get('task')}, task model {s.get('task_model')} (dev {_pct(s.get('dev'))}")
    line += f", test {_pct(s.get('test'))})" if s.get("test") else ")"
    if "task_model_now" in s:
        line += ("; this run uses the SAME task model" if s.get("same_task_model")
                 else f"; this run's task model is {s['task_model_now']}")
    if s.get("same_task") is False:
        line += " (a different task)"
    return line + "."
