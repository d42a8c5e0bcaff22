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

Metrics with partial credit (:mod:`gpo_core.metrics`, scores in [0, 1], not only 0 or 1):

- :func:`paired_counts` counts the examples whose score went up / down (for 0/1 scores:
  fixed / broken); :func:`mcnemar_exact` on those counts is the exact sign test (Dixon & Mood
  1946), which is McNemar's test when scores are 0/1.
- :func:`mean_interval` / :class:`MeanScore`: the mean score with a seeded percentile
  bootstrap interval (``scipy.stats.bootstrap``; Efron & Tibshirani 1993) when the
  per-example scores are at hand.
- :class:`Proportion` also holds a score SUM (a float ``correct``) when only the mean and the
  count were saved: its interval is then Wilson's formula on the mean, which is conservative
  for scores in [0, 1] (their variance is at most mean x (1 - mean), the Bernoulli variance:
  Bhatia & Davis 2000), and equals Wilson's interval for 0/1 scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MeanScore", "Proportion", "correct_count", "diff_interval", "mean_interval", "mean_spread",
           "mcnemar_exact", "paired_counts", "paired_examples", "record_score", "wilson_interval"]


def _wilson_formula(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson's closed form for a mean ``p`` in [0, 1] of ``n`` observations (Wilson 1927)."""
    from scipy.stats import norm

    z = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, center - half), min(1.0, center + half)


def wilson_interval(k: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n`` (``k`` successes, e.g. correct
    answers, of ``n`` trials, e.g. answered examples), as ``(low, high)`` in [0, 1].

    ``confidence`` in (0, 1): 0.95 gives the 95% interval (z = 1.95996...). With ``n == 0``
    nothing is known: ``(0.0, 1.0)``. Raises ValueError when ``k`` is outside [0, n] or the
    confidence outside (0, 1). Examples: 5/8 -> (0.3057, 0.8632); 0/16 -> (0.0, 0.1936).
    Source: Wilson (1927), computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.
    A non-integer ``k`` (a sum of partial-credit scores) gets Wilson's closed form on ``k / n``
    (conservative for scores in [0, 1], see the module docstring).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return 0.0, 1.0
    if not float(k).is_integer():  # a score sum (partial credit): Wilson's formula on the mean
        return _wilson_formula(float(k) / n, n, confidence)
    from scipy.stats import binomtest

    ci = binomtest(int(k), n).proportion_ci(confidence_level=confidence, method="wilson")
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


def record_score(r: Mapping[str, Any]) -> float:
    """The score in [0, 1] of one saved record: its "score", or 1.0 / 0.0 from "correct" for
    records saved before metrics existed (score missing or None)."""
    score = r.get("score")
    return float(bool(r.get("correct"))) if score is None else float(score)


def paired_counts(base_records: Iterable[Mapping[str, Any]],
                  cand_records: Iterable[Mapping[str, Any]]) -> tuple[int, int, int]:
    """Compare two prompts on the examples both answered (:func:`paired_examples`):
    ``(fixed, broken, both_answered)``. fixed: examples whose score is higher with the
    candidate than with the base prompt (for 0/1 scores: wrong, then right); broken: lower
    (right, then wrong); both_answered: examples compared (counts of examples). Scores are
    :func:`record_score`. :func:`mcnemar_exact` of (fixed, broken) is the exact sign test.
    """
    fixed = broken = both = 0
    for base, r in paired_examples(base_records, cand_records):
        both += 1
        was, now = record_score(base), record_score(r)
        fixed += int(now > was)
        broken += int(now < was)
    return fixed, broken, both


def mean_interval(scores: Iterable[float], confidence: float = 0.95, seed: int = 0,
                  n_resamples: int = 2000) -> tuple[float, float]:
    """Interval ``(low, high)`` in [0, 1] of the mean of per-example ``scores`` (each in [0,
    1]): the percentile bootstrap of ``scipy.stats.bootstrap`` with ``n_resamples`` resamples
    drawn by ``numpy.random.default_rng(seed)`` (same scores and seed, same interval). Scores
    that are all 0 or 1 get the Wilson interval (:func:`wilson_interval`), as do fewer than 2
    scores or scores all equal (where a bootstrap has no spread to resample); no scores:
    (0, 1). Source: Efron & Tibshirani (1993), ``scipy.stats.bootstrap(method="percentile")``."""
    xs = [float(x) for x in scores]
    if not xs:
        return 0.0, 1.0
    if all(x in (0.0, 1.0) for x in xs) or len(xs) < 2 or len(set(xs)) == 1:
        return wilson_interval(sum(xs), len(xs), confidence)
    import numpy as np
    from scipy.stats import bootstrap

    res = bootstrap((np.asarray(xs),), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", rng=np.random.default_rng(seed))
    return max(0.0, float(res.confidence_interval.low)), min(1.0, float(res.confidence_interval.high))


@dataclass(frozen=True)
class MeanScore:
    """The mean of per-example scores in [0, 1] with its seeded bootstrap interval
    (:func:`mean_interval`). scores: the answered examples' scores."""

    scores: tuple[float, ...]

    @property
    def answered(self) -> int:
        """Examples scored."""
        return len(self.scores)

    @property
    def value(self) -> float | None:
        """The mean score, or None when nothing was answered."""
        return sum(self.scores) / len(self.scores) if self.scores else None

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """``(low, high)``: :func:`mean_interval` (seed 0)."""
        return mean_interval(self.scores, confidence)

    def text(self) -> str:
        """"61.3% [48.0–74.1%] (mean of 8)"."""
        if self.value is None:
            return "– (0 answered)"
        lo, hi = self.interval()
        return f"{100 * self.value:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}%] (mean of {self.answered})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"accuracy", "score_sum", "answered", "ci95": [low, high]}."""
        lo, hi = self.interval()
        return {"accuracy": self.value, "score_sum": sum(self.scores), "answered": self.answered,
                "ci95": [round(lo, 6), round(hi, 6)]}


def diff_interval(k1: float, n1: int, k2: float, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of ``k1/n1 - k2/n2``, the difference of two INDEPENDENT proportions (e.g. a
    prompt's dev accuracy minus its test accuracy: different examples), as ``(low, high)`` in
    [-1, 1]. Newcombe's hybrid score method: with Wilson intervals (l1, u1) and (l2, u2),
    ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)`` and ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    An empty side (n = 0) knows nothing: its Wilson interval is (0, 1). Example: 56/70 vs
    48/80 -> (0.0524, 0.3339) (Newcombe 1998, Table II). Raises ValueError as
    :func:`wilson_interval` (a score sum k gets its closed form). Source: Newcombe (1998), method 10; statsmodels'
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
    accuracy with its Wilson interval (:func:`wilson_interval`). With a partial-credit metric
    ``correct`` is the score sum (a float) and the interval Wilson's formula on the mean, or
    ``ci``: the 95% bootstrap interval of the per-example scores when they were at hand."""

    correct: float
    answered: int
    ci: tuple[float, float] | None = None

    @classmethod
    def of(cls, accuracy: float | None, answered: int) -> Proportion | None:
        """From a stored accuracy share of ``answered`` examples (:func:`correct_count`), or
        None when ``accuracy`` is None. A share that is no whole count of ``answered`` (a mean
        of partial-credit scores) keeps its score sum ``accuracy * answered`` as ``correct``."""
        if accuracy is None:
            return None
        n = max(0, int(answered))
        total = float(accuracy) * n
        if abs(total - round(total)) < 1e-6:
            return cls(correct_count(accuracy, answered), n)
        return cls(min(float(n), max(0.0, total)), n)

    @property
    def value(self) -> float | None:
        """correct / answered in [0, 1], or None when nothing was answered."""
        return self.correct / self.answered if self.answered else None

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The Wilson interval ``(low, high)`` in [0, 1]; (0, 1) when nothing was answered.
        ``ci`` when set (a bootstrap interval of per-example scores, :func:`mean_interval`)
        stands for the 95% interval."""
        if self.ci is not None and confidence == 0.95:
            return self.ci
        return wilson_interval(self.correct, self.answered, confidence)

    def text(self) -> str:
        """"62.5% [30.6–86.3%] (5/8)": the accuracy, its 95% interval and the counts."""
        if self.value is None:
            return "– (0 answered)"
        lo, hi = self.interval()
        counts = (f"{self.correct}/{self.answered}" if float(self.correct).is_integer()
                  else f"mean of {self.answered}")
        return f"{100 * self.value:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}%] ({counts})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"accuracy", "correct", "answered", "ci95": [low, high]}."""
        lo, hi = self.interval()
        return {"accuracy": self.value, "correct": self.correct, "answered": self.answered,
                "ci95": [round(lo, 6), round(hi, 6)]}
