"""The metric seam: how one task-model output is scored against its example.

A :class:`Metric` maps (model output, example) to a :class:`MetricResult`: a score in [0, 1],
the canonical answer it read from the output (shown in the per-example view) and an optional
reason in words. A prompt's accuracy on a split is the mean score over the answered examples
(failed calls are left out, as before). Metrics are strategies registered by name
(:func:`register_metric`, :func:`get_metric`); the seven answer types of
:mod:`gpo_core.scoring.answers` are metrics on this protocol, so the paper's exact-match
scoring is the default.

``binary`` says every score is 0 or 1: then intervals are Wilson's and paired tests McNemar's
(:mod:`gpo_core.stats`); otherwise the mean gets a bootstrap interval and the paired test is
the sign test on the per-example differences (which is McNemar's test when scores are 0/1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gpo_core.errors import ConfigError
from gpo_core.tasks.task import Example

__all__ = ["Metric", "MetricResult", "get_metric", "metric_names", "register_metric"]


@dataclass(frozen=True)
class MetricResult:
    """The score of one output.

    score: in [0, 1] (1 = fully right). parsed: the answer the metric read from the output,
    in canonical form, or None when it found none. reason: one short sentence saying why the
    score is what it is (shown per example and, with failure feedback, to the optimizer), or
    None. error: set when the metric itself raised on this example (the score is then 0 and
    the error is recorded, never hidden). judge_prompt / judge_output: the judge model's
    prompt and reply (LLM-judge metrics only). judge_prompt_tokens / judge_completion_tokens:
    the judge call's usage in tokens (0 when cached or not a judge).
    """

    score: float
    parsed: str | None = None
    reason: str | None = None
    error: str | None = None
    judge_prompt: str | None = None
    judge_output: str | None = None
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0


@runtime_checkable
class Metric(Protocol):
    """A scoring rule. ``name``: its registry name (e.g. "exact_match", "rouge_l").
    ``binary``: every score is 0 or 1. ``definition()``: one paragraph in words, shown on the
    Task page. ``score_many(outputs, examples)``: one :class:`MetricResult` per (output,
    example) pair, in order (len(outputs) == len(examples)); a metric raising on one example
    must return score 0 with ``error`` set for it instead of raising. ``check(examples)``:
    raise :class:`ConfigError` naming the file line and field for a setting or target the
    metric cannot use (called before any model call)."""

    name: str
    binary: bool

    def definition(self) -> str: ...

    def check(self, examples: Sequence[Example]) -> None: ...

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]: ...


MetricFactory = Callable[..., Metric]
_REGISTRY: dict[str, MetricFactory] = {}


def register_metric(name: str, factory: MetricFactory) -> None:
    """Register a metric factory under ``name`` (keyword options -> :class:`Metric`).
    Raises ValueError when the name is taken."""
    if name in _REGISTRY:
        raise ValueError(f"metric {name!r} is already registered")
    _REGISTRY[name] = factory


def metric_names() -> list[str]:
    """Registered metric names, in registration order."""
    return list(_REGISTRY)


def get_metric(name: str, **options) -> Metric:
    """Build the metric registered as ``name`` with its options. Raises :class:`ConfigError`
    (field "metric") for an unknown name or options the metric refuses."""
    if name not in _REGISTRY:
        raise ConfigError("metric", f"unknown metric {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name](**options)
