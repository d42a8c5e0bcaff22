"""Tables and counts about the setup of the next run: an upload preview, the task's examples
and size, the split sizes, and the active models."""

from __future__ import annotations

import pandas as pd

from gpo_core.tasks.task import Task, TaskSplits


def preview_frame(columns: list[str], rows: list[dict]) -> pd.DataFrame:
    """The first rows of an uploaded file, one column per file column (text)."""
    return pd.DataFrame([{c: r.get(c, "") for c in columns} for r in rows], columns=columns)


def examples_frame(task: Task, limit: int = 200) -> pd.DataFrame:
    """Up to ``limit`` examples of a task: input, target, source line (all splits of a
    split folder, with a "split" column)."""
    rows = []
    if task.explicit_splits:
        for split, exs in task.explicit_splits.items():
            rows += [{"split": split, "input": e.input, "target": e.target, "line": e.line} for e in exs]
    else:
        rows = [{"input": e.input, "target": e.target, "line": e.line} for e in task.examples]
    return pd.DataFrame(rows[:limit])


def task_size(task: Task) -> int:
    """Number of examples in the task (all splits)."""
    return len(task.examples) + sum(len(v) for v in task.explicit_splits.values())


def split_counts(splits: TaskSplits) -> dict[str, int]:
    """Examples per split: train (exemplar pool), dev (scores candidates), test (reported)."""
    return {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)}


def models_frame(active: list[dict]) -> pd.DataFrame:
    """The active models (rows from ModelConfig.active)."""
    return pd.DataFrame(active, columns=["role", "backend", "model", "where"])


def embedded_frame(rows: list[dict]) -> pd.DataFrame:
    """The embedded models (rows from ModelConfig.embedded_models): size, licence, status, weights."""
    return pd.DataFrame(rows, columns=["model", "size", "licence", "status", "weights"])
