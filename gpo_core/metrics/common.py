"""Helpers shared by the metrics: reading a target as references, and scoring one example
at a time so that a metric raising on one example scores it 0 with the error recorded
(the :class:`~gpo_core.metrics.base.Metric` contract) instead of failing the whole step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from gpo_core.metrics.base import MetricResult
from gpo_core.tasks.task import Example

__all__ = ["error_line", "references", "score_each"]


def references(target: str) -> list[str]:
    """The reference texts of a target: a target that is a JSON list of texts (how task
    loading stores a list of references, see :func:`gpo_core.tasks.values.field_text`) gives
    its items; any other target is one reference. Example: ``'["a b", "c"]'`` -> ``["a b", "c"]``."""
    text = target.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = json.loads(text)
        except ValueError:
            return [target]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
    return [target]


def error_line(exc: BaseException) -> str:
    """``"ValueError: bad value"``: one line naming the exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def score_each(one: Callable[[str, Example], MetricResult], outputs: Sequence[str],
               examples: Sequence[Example]) -> list[MetricResult]:
    """``[one(output, example) ...]`` in order; an exception on one example gives
    ``MetricResult(0.0, error=...)`` for it (never raised)."""
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} examples")
    out = []
    for output, ex in zip(outputs, examples):
        try:
            out.append(one(output, ex))
        except Exception as exc:  # noqa: BLE001 - one bad example is recorded, never fatal
            msg = error_line(exc)
            out.append(MetricResult(score=0.0, reason=f"the metric failed: {msg}", error=msg))
    return out
