"""Scoring prompts on a run's dev or test split with the run's task model and settings.

Every score of a run (the starting prompt, a step's candidates, a hand-edited prompt, the
chosen prompt on test) goes through :class:`Scorer`, so all of them follow the same rules:
accuracy over the ANSWERED examples, calls that failed sent once more after all the others
(:func:`gpo_core.scoring.evaluation.evaluate_many` with ``retry_failed``), and an
:class:`~gpo_core.errors.EndpointDownError` when not a single dev call was answered (on
test, a score of no answers is kept as "not measured": its accuracy is saved as None).
:meth:`Scorer.complete` re-sends only the failed calls of a kept score (a step completed
on resume).
"""

from __future__ import annotations

from collections.abc import Callable

from gpo_core.errors import ConfigError, EndpointDownError
from gpo_core.metrics import Metric, build_metric
from gpo_core.models.base import ChatModel, TokenUsage
from gpo_core.optimizer.racing import RaceOutcome, race
from gpo_core.runs.records import RunState
from gpo_core.scoring.evaluation import EvalResult, ExampleRecord, evaluate_many, fill_failed
from gpo_core.tasks.task import Example, TaskSplits

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
        # a refused key or an unknown model is no outage: say what the server said
        looks = "" if any(f"HTTP {c}" in err for c in (401, 403, 404)) else "; the task model endpoint looks down"
        raise EndpointDownError(f"every {what} call failed{looks} ({err})")


class Scorer:
    """Scores prompts for one run.

    state: the run (task answer type, instruction position, task-model settings).
    splits: its examples. task_model: the model answering. concurrency: calls in flight.
    """

    def __init__(self, state: RunState, splits: TaskSplits, task_model: ChatModel, concurrency: int,
                 metric: Metric | None = None):
        self.state = state
        self.splits = splits
        self.task_model = task_model
        self.concurrency = concurrency
        self._metric = metric

    @property
    def metric(self) -> Metric:
        """The run's metric (``settings.optimizer.metric`` and its options; "" = the task's
        answer type), built once (:func:`gpo_core.metrics.build_metric`)."""
        if self._metric is None:
            opt = self.state.settings.optimizer
            self._metric = build_metric(opt.metric, opt.metric_options, self.state.task.answer_type)
        return self._metric

    def score(self, prompts: list[str], split: str, on_progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[EvalResult]:
        """One :class:`EvalResult` per prompt on ``split`` ("dev" or "test"), failed calls
        retried once at the end. Raises EndpointDownError when every dev call failed (on
        test the results come back: :attr:`EvalResult.measured_accuracy` is then None),
        EvaluationCancelled on ``should_stop``, ConfigError for a target of the wrong type."""
        examples = self.splits.dev if split == "dev" else self.splits.test
        cb = (lambda d, n: on_progress(split, d, n)) if on_progress else None
        results = self._evaluate(prompts, examples, split, cb, should_stop)
        if split == "dev":
            check_endpoint(results, split)
        return results

    def complete(self, prompt: str, split: str, records: list[dict], on_progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> EvalResult:
        """Complete a kept score of ``prompt`` on ``split``: ``records`` (its per-example record
        dicts, as saved) with the failed ones sent again and the answered ones kept
        (:func:`gpo_core.scoring.evaluation.fill_failed`). Without usable records (none kept,
        or not one per example) the prompt is scored again in full. The result's usage covers
        the new calls only. EvaluationCancelled on ``should_stop``."""
        examples = self.splits.dev if split == "dev" else self.splits.test
        cb = (lambda d, n: on_progress(split, d, n)) if on_progress else None
        if len(records) != len(examples) or any(r.get("input") != e.input for r, e in zip(records, examples)):
            return self._evaluate([prompt], examples, split, cb, should_stop)[0]
        recs = [ExampleRecord.from_dict(r) for r in records]
        errors = sum(1 for r in recs if r.error is not None)
        correct = sum(1 for r in recs if r.error is None and r.correct)
        total = sum(r.value for r in recs if r.error is None)
        answered = len(recs) - errors
        old = EvalResult(prompt, split, total / answered if answered else 0.0, len(recs), correct, errors,
                         TokenUsage(), recs, score_sum=total, binary=self.metric.binary, metric=self.metric.name)
        tm = self.state.settings.task_model
        return fill_failed(old, examples, self.task_model, answer_type=self.state.task.answer_type,
                           position=self.state.task.instruction_position, max_tokens=tm.max_tokens,
                           temperature=tm.temperature, concurrency=self.concurrency, on_progress=cb,
                           should_stop=should_stop, retry_failed=True,
                           protocol=resolved_protocol(self.state.settings.optimizer.protocol), metric=self.metric)

    def _evaluate(self, prompts: list[str], examples: list[Example], split: str,
                  cb: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None) -> list[EvalResult]:
        """The one scoring path: :func:`evaluate_many` with the run's task model settings."""
        tm = self.state.settings.task_model
        return evaluate_many(prompts, examples, self.task_model, answer_type=self.state.task.answer_type,
                             position=self.state.task.instruction_position, max_tokens=tm.max_tokens,
                             temperature=tm.temperature, concurrency=self.concurrency, split=split,
                             on_progress=cb, should_stop=should_stop, retry_failed=True,
                             protocol=resolved_protocol(self.state.settings.optimizer.protocol), metric=self.metric)

    def race(self, prompts: list[str], on_progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> list[RaceOutcome]:
        """Score ``prompts`` (distinct) on dev with racing (:func:`gpo_core.optimizer.racing.race`,
        rounds of ``racing_batch`` examples at ``racing_alpha``): one RaceOutcome per prompt,
        whose result covers the dev examples it was scored on. Same rules and errors as
        :meth:`score` (failed calls retried at the end of each round; EndpointDownError when
        every call so far failed; EvaluationCancelled on ``should_stop``)."""
        c = self.state.settings.optimizer
        if not self.metric.binary:
            raise ConfigError("racing", f"racing compares Wilson bounds of 0/1 scores; the metric "
                                        f"{self.metric.name!r} gives partial credit: turn racing off")
        cb = (lambda d, n: on_progress("dev", d, n)) if on_progress else None
        return race(prompts, self.splits.dev, lambda ps, exs, f: self._evaluate(ps, exs, "dev", f, should_stop),
                    alpha=c.racing_alpha, batch=c.racing_batch, on_progress=cb,
                    check=lambda results: check_endpoint(results, "dev"))
