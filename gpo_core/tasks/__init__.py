"""Tasks: labeled examples, loading them from files and folders, and train/dev/test splits.

Names load on first use (no import cycles between the subpackages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from gpo_core.tasks.io import guess_columns, list_sample_tasks, load_task, load_task_bytes, preview_columns
    from gpo_core.tasks.splits import default_split_sizes, split_task
    from gpo_core.tasks.task import ANSWER_TYPES, INSTRUCTION_POSITIONS, Example, Task, TaskSplits

_EXPORTS = {
    "ANSWER_TYPES": "gpo_core.tasks.task",
    "INSTRUCTION_POSITIONS": "gpo_core.tasks.task",
    "Example": "gpo_core.tasks.task",
    "Task": "gpo_core.tasks.task",
    "TaskSplits": "gpo_core.tasks.task",
    "load_task": "gpo_core.tasks.io",
    "load_task_bytes": "gpo_core.tasks.io",
    "list_sample_tasks": "gpo_core.tasks.io",
    "guess_columns": "gpo_core.tasks.io",
    "preview_columns": "gpo_core.tasks.io",
    "split_task": "gpo_core.tasks.splits",
    "default_split_sizes": "gpo_core.tasks.splits",
}
__all__ = ["ANSWER_TYPES", "Example", "INSTRUCTION_POSITIONS", "Task", "TaskSplits", "default_split_sizes",
    "guess_columns", "list_sample_tasks", "load_task", "load_task_bytes", "preview_columns", "split_task"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
