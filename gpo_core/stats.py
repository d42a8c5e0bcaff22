"""Statistics a prompt engineer needs to trust a decision: how sure an accuracy is, and
whether one prompt beats another on the same examples more than chance would.

The tests and intervals come from ``scipy.stats`` (a well-kept library, imported on first use):

- :func:`wilson_interval`: the Wilson score interval of a proportion (Wilson 1927,
  "Probable inference, the law of succession, and statistical inference", JASA 22:209-212;
  ``statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")``).
- :func:`mcnemar_exact`: the exact (binomial) two-sided McNemar test on paired outcomes
  (McNemar 1947, "Note on the sampling error of the difference between correlated
  proportions or percentages", Psychometrika 12:153-157; equal to
  ``scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue``).
- :func:`paired_counts`: the discordant pairs of two prompts scored on the same examples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["mcnemar_exact", "paired_counts", "wilson_interval"]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n`` (``k`` successes, e.g. correct
    answers, of ``n`` trials, e.g. answered examples), as ``(low, high)`` in [0, 1].

    ``confidence`` in (0, 1): 0.95 gives the 95% interval (z = 1.95996...). With ``n == 0``
    nothing is known: ``(0.0, 1.0)``. Raises ValueError when ``k`` is outside [0, n] or the
    confidence outside (0, 1). Examples: 5/8 -> (0.3057, 0.8632); 0/16 -> (0.0, 0.1936).
    Source: Wilson (1927), computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (examples the
    first prompt got right and the second wrong, and the other way round; concordant pairs
    do not matter). Under the null hypothesis each discordant pair goes either way with
    probability 1/2, so p = min(1, 2 * P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2).
    1.0 when there are no discordant pairs. Example: 7 vs 1 -> 0.0703125.
    Source: McNemar (1947), exact form, computed as ``scipy.stats.binomtest(min(b, c), b + c,
    0.5).pvalue``. Raises ValueError on negative counts."""
    if b < 0 or c < 0:
        raise ValueError(f"counts must be >= 0, got b={b!r}, c={c!r}")
    n = b + c
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(min(b, c), n, 0.5).pvalue))


def _key(r: Mapping[str, Any]) -> tuple[str, str]:
    return str(r.get("input", "")), str(r.get("target", ""))


def paired_counts(base_records: Iterable[Mapping[str, Any]],
                  cand_records: Iterable[Mapping[str, Any]]) -> tuple[int, int, int]:
    """Compare two prompts on the examples both answered: ``(fixed, broken, both_answered)``.

    Records are per-example dicts with "input", "target", "correct" and "error" (as saved by
    the scorer, see :class:`gpo_core.scoring.results.ExampleRecord`); examples are matched by
    (input, target), each used once in order (a repeated example pairs with its repeat).
    Examples where either call failed ("error" set) or that only one side scored are left
    out. fixed: wrong with the base prompt, right with the candidate; broken: right with the
    base, wrong with the candidate; both_answered: examples compared (counts of examples).
    """
    pending: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in base_records:
        pending.setdefault(_key(r), []).append(r)
    fixed = broken = both = 0
    for r in cand_records:
        queue = pending.get(_key(r))
        if not queue:
            continue
        base = queue.pop(0)
        if base.get("error") or r.get("error"):
            continue
        both += 1
        was, now = bool(base.get("correct")), bool(r.get("correct"))
        fixed += int(now and not was)
        broken += int(was and not now)
    return fixed, broken, both
