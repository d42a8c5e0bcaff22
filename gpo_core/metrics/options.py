"""Metric options as the user types them: ``--metric-option KEY=VALUE`` on the command line,
text fields in the app, a JSON object in run.json. Every value arrives as text or as its JSON
type; the helpers here read one option and raise :class:`ConfigError` naming
``--metric-option KEY`` (the CLI) / "Metric options" (the app) when it is not what the metric
needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.tasks.task import Example

__all__ = ["example_where", "opt_bool", "opt_float", "opt_list", "parse_metric_options", "refuse_unknown"]


def parse_metric_options(items: Iterable[str]) -> dict[str, str]:
    """``["keys=name,date", "pattern=^A"]`` -> ``{"keys": "name,date", "pattern": "^A"}`` (split
    at the first ``=``; a later repeat of a key wins). Raises ConfigError naming
    ``--metric-option`` for an item without ``=`` or with an empty key."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError("--metric-option", f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def refuse_unknown(metric: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """ConfigError (field ``metric_options.KEY``) for an option ``metric`` does not take."""
    allowed = list(known)
    for key in options:
        if key not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes no options"
            raise ConfigError(f"metric_options.{key}", f"metric {metric!r} has no option {key!r}; {takes}")


def opt_float(options: Mapping[str, Any], key: str, default: float, lo: float = 0.0) -> float:
    """Option ``key`` as a finite number >= ``lo`` (``default`` when absent)."""
    if key not in options or options[key] in (None, ""):
        return default
    raw = options[key]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"metric_options.{key}", f"must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < lo:
        raise ConfigError(f"metric_options.{key}", f"must be a number >= {lo:g}, got {raw!r}")
    return value


def opt_bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    """Option ``key`` as true/false ("true", "1", "yes" / "false", "0", "no"; any case)."""
    if key not in options or options[key] in (None, ""):
        return default
    raw = options[key]
    if isinstance(raw, bool):
        return raw
    low = str(raw).strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"metric_options.{key}", f"must be true or false, got {raw!r}")


def opt_list(options: Mapping[str, Any], key: str) -> list[str]:
    """Option ``key`` as a list of names: a JSON list, or text split at commas (blank items
    dropped). Empty list when absent."""
    raw = options.get(key)
    if raw is None:
        return []
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def example_where(ex: Example, i: int) -> str:
    """"line 12" (the example's line in its file) or "example 3" (1-based position)."""
    return f"line {ex.line}" if ex.line is not None else f"example {i + 1}"
