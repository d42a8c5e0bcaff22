"""The Optimize page's "Start from" choice (no Streamlit): the task's starting instruction, or
the final prompt of a saved run (a warm start, :mod:`gpo_core.runs.warm_start`)."""

from __future__ import annotations

from gpo_core.runs.repository import load_run
from gpo_core.runs.warm_start import WarmStart, warm_start_from, warm_start_text

__all__ = ["FROM_TASK", "WIDGET", "choices", "preview", "warm_start"]

#: The choice that means "no warm start".
FROM_TASK = "the task's starting instruction"
#: The widget's label (errors name it).
WIDGET = "Start from"


def choices(studio) -> list[str]:
    """FROM_TASK, then the ids of saved runs whose start is scored (newest first)."""
    ids = [r["run_id"] for r in studio.runs.saved() if "error" not in r]
    return [FROM_TASK, *ids]


def warm_start(studio, choice: str | None) -> WarmStart | None:
    """The warm start ``choice`` means (None for FROM_TASK). ConfigError naming "Start from"
    when the run has no final prompt; RunFileError when it cannot be read."""
    if not choice or choice == FROM_TASK:
        return None
    return warm_start_from(load_run(studio.runs.store().run_dir(choice)), WIDGET)


def preview(studio, choice: str | None) -> str:
    """What the new run will record, in words, with the next run's task model ("" for FROM_TASK)."""
    ws = warm_start(studio, choice)
    if ws is None:
        return ""
    task = studio.tasks.task
    return warm_start_text(ws.record(studio.draft.settings.task_model, task.name if task else ""))
