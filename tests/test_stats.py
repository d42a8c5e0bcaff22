"""gpo_core.stats against known values (Wilson 1927; McNemar 1947; Newcombe 1998)."""

import math
import statistics

import pytest

from gpo_core.stats import (
    Proportion,
    correct_count,
    diff_interval,
    mcnemar_exact,
    mean_spread,
    paired_counts,
    wilson_interval,
)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(5, 8)
    assert lo == pytest.approx(0.3057, abs=1e-4) and hi == pytest.approx(0.8632, abs=1e-4)
    lo, hi = wilson_interval(0, 16)
    assert lo == 0.0 and hi == pytest.approx(0.1936, abs=1e-4)
    lo, hi = wilson_interval(16, 16)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.1936, abs=1e-4)


def test_wilson_interval_widens_with_confidence_and_knows_nothing_of_nothing():
    lo95, hi95 = wilson_interval(5, 8)
    lo99, hi99 = wilson_interval(5, 8, confidence=0.99)
    assert lo99 < lo95 < 5 / 8 < hi95 < hi99
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(9, 8)
    with pytest.raises(ValueError):
        wilson_interval(1, 8, confidence=1.0)


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(7, 1) == pytest.approx(0.0703125)
    assert mcnemar_exact(1, 7) == pytest.approx(0.0703125)
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)
    assert mcnemar_exact(6, 0) == pytest.approx(0.03125)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def _rec(i, correct, error=None, target="yes"):
    return {"input": f"q{i}", "target": target, "correct": correct, "error": error}


def test_paired_counts_matches_by_example_and_skips_failed_calls():
    base = [_rec(1, False), _rec(2, False), _rec(3, True), _rec(4, True), _rec(5, False), _rec(6, True, "timeout"),
            _rec(7, False)]
    cand = [_rec(7, True, "HTTP 500"),  # failed with the candidate: left out
            _rec(5, False), _rec(4, False), _rec(3, True), _rec(2, True), _rec(1, True),
            _rec(6, False),  # failed with the base: left out
            _rec(8, True)]   # only the candidate scored it: left out
    assert paired_counts(base, cand) == (2, 1, 5)


def test_paired_counts_needs_the_same_target_and_pairs_repeats_once():
    base = [_rec(1, False), _rec(1, True)]
    cand = [_rec(1, True), _rec(1, True), _rec(1, True, target="no")]
    assert paired_counts(base, cand) == (1, 0, 2)
    assert paired_counts([], cand) == (0, 0, 0)


# ----------------------------------------------------------------------------- Newcombe


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) in closed form: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_diff_interval_matches_newcombes_published_example_and_statsmodels():
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80, method 10 (hybrid score): 0.0524 to 0.3339
    lo, hi = diff_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    # statsmodels 0.14 confint_proportions_2indep(..., method="newcomb", compare="diff"), computed once:
    assert diff_interval(7, 8, 2, 8) == pytest.approx((0.1394777379, 0.8308952222), abs=1e-8)
    assert diff_interval(8, 8, 8, 16) == pytest.approx((0.1080278220, 0.7200043639), abs=1e-8)
    assert diff_interval(0, 8, 0, 16) == pytest.approx((-0.1936076805, 0.3244075649), abs=1e-8)


def test_diff_interval_is_newcombes_formula_on_wilson_bounds_computed_by_hand():
    k1, n1, k2, n2 = 7, 8, 3, 10
    l1, u1 = _wilson_by_hand(k1, n1)
    l2, u2 = _wilson_by_hand(k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    expected = (p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2))
    assert diff_interval(k1, n1, k2, n2) == pytest.approx(expected, abs=1e-9)
    # it contains the difference, and is the mirror image when the sides swap
    lo, hi = diff_interval(k2, n2, k1, n1)
    assert (lo, hi) == pytest.approx((-expected[1], -expected[0]), abs=1e-12)
    assert lo < p2 - p1 < hi


def test_diff_interval_of_an_empty_side_knows_little():
    lo, hi = diff_interval(4, 8, 0, 0)
    assert lo < -0.4 and hi > 0.4
    with pytest.raises(ValueError):
        diff_interval(9, 8, 1, 2)


def test_correct_count_proportion_and_mean_spread():
    assert correct_count(0.625, 8) == 5 and correct_count(1 / 3, 3) == 1 and correct_count(1.2, 4) == 4
    p = Proportion(5, 8)
    assert p.value == 0.625 and p.interval() == wilson_interval(5, 8)
    assert p.text() == "62.5% [30.6–86.3%] (5/8)"
    assert p.to_dict() == {"accuracy": 0.625, "correct": 5, "answered": 8,
                           "ci95": [pytest.approx(0.305742, abs=1e-6), pytest.approx(0.863156, abs=1e-6)]}
    assert Proportion.of(None, 8) is None and Proportion.of(0.5, 6) == Proportion(3, 6)
    assert Proportion(0, 0).value is None and Proportion(0, 0).interval() == (0.0, 1.0)
    xs = [0.625, 0.875, 0.75]
    assert mean_spread(xs) == pytest.approx((statistics.mean(xs), statistics.stdev(xs), 0.625, 0.875))
    assert mean_spread([0.5]) == (0.5, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError):
        mean_spread([])
