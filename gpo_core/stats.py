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
- :func:`diff_interval`: the interval of a difference of two independent proportions (e.g. dev
  minus test accuracy of one prompt), Newcombe's hybrid score method built from two Wilson
  intervals (Newcombe 1998, "Interval estimation for the difference between independent
  proportions: comparison of eleven methods", Stat. Med. 17:873-890, method 10; equal to
  ``statsmodels.stats.proportion.confint_proportions_2indep(..., method="newcomb")``).
- :func:`correct_count`: the correct count behind an accuracy of ``answered`` examples;
  :class:`Proportion`: correct of answered, with its Wilson interval, as text and as JSON.
- :func:`mean_spread`: mean, sample standard deviation and range of a few numbers (seeds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Proportion", "correct_count", "diff_interval", "mean_spread", "mcnemar_exact", "paired_counts",
           "paired_examples", "wilson_interval"]


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


def paired_examples(base_records: Iterable[Mapping[str, Any]], cand_records: Iterable[Mapping[str, Any]]
                    ) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """The examples two prompts both answered, as ``(base_record, cand_record)`` pairs in the
    candidate's order.

    Records are per-example dicts with "input", "target", "correct" and "error" (as saved by
    the scorer, see :class:`gpo_core.scoring.results.ExampleRecord`); examples are matched by
    (input, target), each used once in order (a repeated example pairs with its repeat).
    Examples where either call failed ("error" set) or that only one side scored are left out.
    """
    pending: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in base_records:
        pending.setdefault(_key(r), []).append(r)
    pairs = []
    for r in cand_records:
        queue = pending.get(_key(r))
        if not queue:
            continue
        base = queue.pop(0)
        if base.get("error") or r.get("error"):
            continue
        pairs.append((base, r))
    return pairs


def paired_counts(base_records: Iterable[Mapping[str, Any]],
                  cand_records: Iterable[Mapping[str, Any]]) -> tuple[int, int, int]:
    """Compare two prompts on the examples both answered (:func:`paired_examples`):
    ``(fixed, broken, both_answered)``. fixed: wrong with the base prompt, right with the
    candidate; broken: right with the base, wrong with the candidate; both_answered: examples
    compared (counts of examples).
    """
    fixed = broken = both = 0
    for base, r in paired_examples(base_records, cand_records):
        both += 1
        was, now = bool(base.get("correct")), bool(r.get("correct"))
        fixed += int(now and not was)
        broken += int(was and not now)
    return fixed, broken, both


def diff_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of ``k1/n1 - k2/n2``, the difference of two INDEPENDENT proportions (e.g. a
    prompt's dev accuracy minus its test accuracy: different examples), as ``(low, high)`` in
    [-1, 1]. Newcombe's hybrid score method: with Wilson intervals (l1, u1) and (l2, u2),
    ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)`` and ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    An empty side (n = 0) knows nothing: its Wilson interval is (0, 1). Example: 56/70 vs
    48/80 -> (0.0524, 0.3339) (Newcombe 1998, Table II). Raises ValueError as
    :func:`wilson_interval`. Source: Newcombe (1998), method 10; statsmodels'
    ``confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")`` agrees."""
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    p1 = k1 / n1 if n1 else 0.5
    p2 = k2 / n2 if n2 else 0.5
    d = p1 - p2
    low = d - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5
    high = d + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5
    return max(-1.0, low), min(1.0, high)


def correct_count(accuracy: float, answered: int) -> int:
    """The number of correct answers behind ``accuracy`` (a share in [0, 1]) of ``answered``
    examples: ``round(accuracy * answered)``, clipped to [0, answered]. Accuracies are
    stored as shares; this recovers the count the Wilson interval needs."""
    n = max(0, int(answered))
    return min(n, max(0, round(float(accuracy) * n)))


def mean_spread(values: Iterable[float]) -> tuple[float, float, float, float]:
    """``(mean, sd, low, high)`` of a few numbers (e.g. final test accuracy over seeds): the
    mean, the SAMPLE standard deviation (n - 1 in the denominator; 0.0 for one value), and
    the smallest and largest value. Raises ValueError when ``values`` is empty.
    Source: ``statistics.mean`` / ``statistics.stdev`` of the standard library."""
    import statistics

    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_spread needs at least one value")
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return statistics.mean(xs), sd, min(xs), max(xs)


@dataclass(frozen=True)
class Proportion:
    """``correct`` of ``answered`` examples (counts; failed calls are not answered): an
    accuracy with its Wilson interval (:func:`wilson_interval`)."""

    correct: int
    answered: int

    @classmethod
    def of(cls, accuracy: float | None, answered: int) -> Proportion | None:
        """From a stored accuracy share of ``answered`` examples (:func:`correct_count`), or
        None when ``accuracy`` is None."""
        return None if accuracy is None else cls(correct_count(accuracy, answered), max(0, int(answered)))

    @property
    def value(self) -> float | None:
        """correct / answered in [0, 1], or None when nothing was answered."""
        return self.correct / self.answered if self.answered else None

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The Wilson interval ``(low, high)`` in [0, 1]; (0, 1) when nothing was answered."""
        return wilson_interval(self.correct, self.answered, confidence)

    def text(self) -> str:
        """"62.5% [30.6–86.3%] (5/8)": the accuracy, its 95% interval and the counts."""
        if self.value is None:
            return "– (0 answered)"
        lo, hi = self.interval()
        return f"{100 * self.value:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}%] ({self.correct}/{self.answered})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"accuracy", "correct", "answered", "ci95": [low, high]}."""
        lo, hi = self.interval()
        return {"accuracy": self.value, "correct": self.correct, "answered": self.answered,
                "ci95": [round(lo, 6), round(hi, 6)]}
