"""Scoring prompts on a run's dev or test split with the run's task model and settings.

Every score of a run (the starting prompt, a step's candidates, a hand-edited prompt, the
chosen prompt on test) goes through :class:`Scorer`, so all of them follow the same rules:
accuracy over the ANSWERED examples, calls that failed sent once more after all the others
(:func:`gpo_core.scoring.evaluation.evaluate_many` with ``retry_failed``), and an
:class:`~gpo_core.errors.EndpointDownError` when not a single call was answered.
"""

from __future__ import annotations

from collections.abc import Callable

from gpo_core.errors import EndpointDownError
from gpo_core.models.base import ChatModel
from gpo_core.runs.records import RunState
from gpo_core.scoring.evaluation import EvalResult, evaluate_many
from gpo_core.tasks.task import TaskSplits

__all__ = ["Progress", "Scorer", "check_endpoint"]

#: Progress callback: (phase, done, total). Phases: "dev", "test", "optimizer".
Progress = Callable[[str, int, int], None]


def resolved_protocol(protocol: str, task_has_splits: bool = False) -> str:
    """The scoring protocol a setting means: "auto" is "reference" for a task folder with its
    own splits (BBH, MMLU) and "single" otherwise; other values stand."""
    if protocol == "auto":
        return "reference" if task_has_splits else "single"
    return protocol


def check_endpoint(results: list[EvalResult], what: str) -> None:
    """Raise EndpointDownError (one line, with the first error) when every call of
    ``results`` failed: the endpoint looks down and no score means anything."""
    total = sum(r.n for r in results)
    if total and sum(r.n_errors for r in results) == total:
        err = next((rec.error for r in results for rec in r.records if rec.error), "unknown error")
        raise EndpointDownError(f"every {what} call failed; the task model endpoint looks down ({err})")


class Scorer:
    """Scores prompts for one run.

    state: the run (task answer type, instruction position, task-model settings).
    splits: its examples. task_model: the model answering. concurrency: calls in flight.
    """

    def __init__(self, state: RunState, splits: TaskSplits, task_model: ChatModel, concurrency: int):
        self.state = state
        self.splits = splits
        self.task_model = task_model
        self.concurrency = concurrency

    def score(self, prompts: list[str], split: str, on_progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[EvalResult]:
        """One :class:`EvalResult` per prompt on ``split`` ("dev" or "test"), failed calls
        retried once at the end. Raises EndpointDownError when every call failed,
        EvaluationCancelled on ``should_stop``, ConfigError for a target of the wrong type."""
        examples = self.splits.dev if split == "dev" else self.splits.test
        cb = (lambda d, n: on_progress(split, d, n)) if on_progress else None
        tm = self.state.settings.task_model
        results = evaluate_many(prompts, examples, self.task_model, answer_type=self.state.task.answer_type,
                                position=self.state.task.instruction_position, max_tokens=tm.max_tokens,
                                temperature=tm.temperature, concurrency=self.concurrency, split=split,
                                on_progress=cb, should_stop=should_stop, retry_failed=True,
                                protocol=resolved_protocol(self.state.settings.optimizer.protocol))
        check_endpoint(results, split)
        return results
