"""What a prompt x model matrix is scored on: the examples of each split and how prompts are
rendered and scored, from a task file/folder or from a saved run (shared by the CLI's
``evaluate`` and the app's Prompt x model page).

From a task: the examples are split exactly as a new run with the same ``--dev-size``,
``--test-size`` and ``--seed`` splits them (:func:`gpo_core.tasks.splits.split_task` with
:func:`~gpo_core.tasks.splits.default_split_sizes`), so a matrix scores the examples a run on
that task scores. From a run: the run's saved dev and test examples, answer type, position,
metric and scoring protocol, so the run's own prompts are scored as the run scored them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpo_core.errors import ConfigError
from gpo_core.metrics import Metric, build_metric
from gpo_core.optimizer.scorer import resolved_protocol
from gpo_core.runs.matrix import SPLITS
from gpo_core.tasks.splits import default_split_sizes, split_task
from gpo_core.tasks.task import Example, Task

__all__ = ["MatrixInputs", "check_splits", "inputs_from_run", "inputs_from_task"]


@dataclass
class MatrixInputs:
    """task / source: names shown with the matrix. answer_type, position: how each prompt is
    rendered and answers parsed. metric: how answers are scored. protocol: "single" or
    "reference" (:mod:`gpo_core.scoring.reprompt`). splits: split name -> examples."""

    task: str
    source: str
    answer_type: str
    position: str
    metric: Metric
    protocol: str
    splits: dict[str, list[Example]]


def check_splits(splits: Sequence[str] | None, flag: str = "--split") -> list[str]:
    """The chosen splits in their order dev, test (default both). ConfigError naming ``flag``."""
    chosen = list(dict.fromkeys(splits or SPLITS))
    bad = [s for s in chosen if s not in SPLITS]
    if bad:
        raise ConfigError(flag, f"unknown split {bad[0]!r}; choose from {', '.join(SPLITS)}")
    return [s for s in SPLITS if s in chosen]


def inputs_from_task(task: Task, *, splits: Sequence[str] | None = None, dev_size: int | None = None,
                     test_size: int | None = None, seed: int = 0, metric: str = "",
                     metric_options: Mapping[str, str] | None = None, protocol: str = "auto") -> MatrixInputs:
    """The inputs of a matrix on ``task`` (loaded by :func:`gpo_core.tasks.io.load_task`).
    metric "": the task's (task.json) else its answer type's. ConfigError for bad sizes (naming
    ``dev_size`` / ``test_size``), a bad metric or split."""
    chosen = check_splits(splits)
    dev_n, test_n = default_split_sizes(task, dev_size, test_size)
    parts = split_task(task, dev_size=dev_n, test_size=test_n, seed=seed)
    name = metric or task.metric
    m = build_metric(name, metric_options if metric else (metric_options or task.metric_options), task.answer_type)
    by = {"dev": parts.dev, "test": parts.test}
    return MatrixInputs(task.name, task.source, task.answer_type, task.instruction_position, m,
                        resolved_protocol(protocol, bool(task.explicit_splits)), {s: by[s] for s in chosen})


def inputs_from_run(state, *, splits: Sequence[str] | None = None, run_dir: Path | None = None,
                    metric: str = "") -> MatrixInputs:
    """The inputs of a matrix on a saved run's examples (``state``: a
    :class:`~gpo_core.runs.records.RunState` loaded with its data); metric "": the run's."""
    chosen = check_splits(splits)
    opt = state.settings.optimizer
    m = build_metric(metric or opt.metric, {} if metric else opt.metric_options, state.task.answer_type)
    by = {s: [Example(d["input"], d["target"]) for d in state.splits.get(s) or []] for s in SPLITS}
    if not any(by[s] for s in chosen):
        raise ConfigError("--prompts", f"run {state.run_id} keeps no {' or '.join(chosen)} examples; give --task")
    source = f"run {state.run_id}" + (f" ({run_dir})" if run_dir else "")
    return MatrixInputs(state.task.name, source, state.task.answer_type, state.task.instruction_position, m,
                        resolved_protocol(opt.protocol), {s: by[s] for s in chosen})
