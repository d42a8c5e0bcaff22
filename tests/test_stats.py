"""gpo_core.stats against known values (Wilson 1927; McNemar 1947)."""

import pytest

from gpo_core.stats import mcnemar_exact, paired_counts, wilson_interval


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
