"""User code as a metric: ``--metric path.py:function`` on the command line; in the app only
when the server was started with ``GPO_ALLOW_USER_METRICS=1`` (it runs the user's Python
code in the server process).

The function is called once per answered example as ``function(output, target, input)``:
output is the model's text, target the example's target (a list of texts when the target is
a JSON list of references), input the example's input. It returns a score: a bool, a number
in [0, 1], a ``(score, reason)`` pair or a dict ``{"score": ..., "reason": ...}``. A call
that raises or returns anything else scores that example 0 with the error recorded. The
file is imported when the metric is built and the function is tried on the first example
(its own target as the output) by :meth:`UserCodeMetric.check`: a file that does not
import, a missing function, or a function that raises there is refused before any model
call. Source: the custom-metric convention of DSPy (``metric(example, pred)``) and
promptfoo's ``python`` assertion, with arguments named for this app.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.metrics.base import MetricResult, register_metric
from gpo_core.metrics.common import error_line, references, score_each
from gpo_core.metrics.options import opt_bool, refuse_unknown
from gpo_core.tasks.task import Example

__all__ = ["USER_METRICS_ENV", "UserCodeMetric", "is_user_code", "user_metrics_allowed"]

#: Environment variable that lets the app run user-code metrics (``1`` to allow).
USER_METRICS_ENV = "GPO_ALLOW_USER_METRICS"


def user_metrics_allowed() -> bool:
    """Whether the app server was started with ``GPO_ALLOW_USER_METRICS=1``."""
    return os.environ.get(USER_METRICS_ENV) == "1"


def is_user_code(metric: str) -> bool:
    """Whether a metric setting names user code (``"path/to/file.py:function"``)."""
    path, sep, func = metric.rpartition(":")
    return bool(sep) and path.endswith(".py") and func.isidentifier()


def _load(spec_text: str) -> Callable[..., Any]:
    path_text, _, func_name = spec_text.rpartition(":")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ConfigError("metric", f"user metric file not found: {path}")
    name = f"gpo_user_metric_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("metric", f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is refused with its message
        raise ConfigError("metric", f"{path} raised on import: {error_line(exc)}") from None
    finally:
        sys.modules.pop(name, None)
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError("metric", f"{path} has no function {func_name!r}")
    return fn


def _result(value: Any) -> MetricResult:
    reason = None
    if isinstance(value, dict):
        reason = value.get("reason")
        value = value.get("score")
    elif isinstance(value, tuple) and len(value) == 2:
        value, reason = value
    if isinstance(value, bool):
        score = float(value)
    elif isinstance(value, (int, float)) and math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0:
        score = float(value)
    else:
        raise ValueError(f"the metric returned {value!r}; expected a bool or a number in [0, 1]")
    return MetricResult(score, reason=None if reason is None else str(reason))


class UserCodeMetric:
    """A metric written by the user (see the module docstring). Options: ``path``
    ("file.py:function", required) and ``binary`` (default false: true declares every score
    0 or 1, so Wilson intervals and McNemar apply). Raises ConfigError (field "metric") when
    the file does not import or has no such function."""

    name = "user_code"

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("path", "binary"))
        spec = str(options.get("path") or "")
        if not is_user_code(spec):
            raise ConfigError("metric", f"user code is named path/to/file.py:function, got {spec!r}")
        self.spec = spec
        self.binary = opt_bool(options, "binary", False)
        self._fn = _load(spec)

    def definition(self) -> str:
        """One paragraph for the Task page."""
        kind = "0 or 1" if self.binary else "a number in [0, 1]"
        return (f"User code: {self.spec} is called as function(output, target, input) for each answered example "
                f"and returns {kind} (optionally with a reason). An example on which it raises scores 0 and the "
                "error is recorded.")

    def _one(self, output: str, ex: Example) -> MetricResult:
        refs = references(ex.target)
        target: str | list[str] = refs if len(refs) > 1 or refs[0] != ex.target else ex.target
        result = _result(self._fn(output, target, ex.input))
        if self.binary and result.score not in (0.0, 1.0):
            raise ValueError(f"returned {result.score} but the metric is declared binary (0 or 1)")
        return result

    def check(self, examples: Sequence[Example]) -> None:
        """Try the function on the first example with its own target as the output;
        ConfigError (field "metric") when it raises or returns no score."""
        if not examples:
            return
        ex = examples[0]
        try:
            self._one(references(ex.target)[0], ex)
        except Exception as exc:  # noqa: BLE001 - refused aloud before any model call
            where = f"line {ex.line}" if ex.line is not None else "the first example"
            raise ConfigError("metric", f"{self.spec} failed on {where} (its target as the output): "
                                        f"{error_line(exc)}") from None

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """The function's score per output; 0 with ``error`` set where it raised."""
        return score_each(self._one, outputs, examples)


register_metric("user_code", UserCodeMetric)
