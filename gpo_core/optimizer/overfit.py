"""Overfitting guard: the dev-test gap per step with its interval, and the blind test.

Candidates are chosen on dev, so the prompt in use scores higher on dev than on test when
the optimizer fits the dev examples rather than the task (a selection effect that grows
with the candidates tried on a small dev set). :func:`gap_series` gives, for step 0 (the
start) and every decided step, the prompt in use after the step with its dev and test
accuracy, the gap dev - test and the 95% interval of that gap. Dev and test are different
examples, so the gap is a difference of independent proportions and its interval is
Newcombe's hybrid score interval (:func:`gpo_core.stats.diff_interval`; Newcombe 1998,
method 10). A point carries a warning when the gap has opened: its interval lies above 0
(the gap is not chance at 95%) AND the gap exceeds :data:`GAP_THRESHOLD` (10 points), so a
statistically clear but tiny gap on a big split does not alarm anyone.

Blind test (``OptimizerSettings.blind_test``, ours): every chosen prompt is still scored on
test and stored, but the display layer hides every test number while :func:`is_test_hidden`
is true, i.e. until the user reveals them (:func:`reveal`, ``GPOSession.reveal_test``; the
CLI reveals at the end of the run). Exports always include test scores, marked as blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.transitions import now
from gpo_core.runs.final import candidates_by_id, entry_score
from gpo_core.runs.records import CandidateRecord, RunState
from gpo_core.stats import Proportion, diff_interval

__all__ = ["GAP_THRESHOLD", "GapPoint", "blind_note", "gap_series", "gap_warning_text", "reveal", "is_test_hidden"]

#: A gap (dev minus test accuracy, as a share) above this, with its interval above 0, warns.
GAP_THRESHOLD = 0.10


def is_test_hidden(state: RunState) -> bool:
    """True while the run's test scores must not be shown: a blind test not yet revealed."""
    return bool(state.settings.optimizer.blind_test) and not state.test_revealed


def reveal(state: RunState, by: str = "user") -> bool:
    """Reveal a blind test's scores from now on: records ``state.test_revealed`` =
    {"at": now, "by": by}. Returns True when something changed (False: not blind, or already
    revealed). ``by``: "user" (the app's Reveal button), "cli" (end of a CLI run), "export"."""
    if not is_test_hidden(state):
        return False
    state.test_revealed = {"at": now(), "by": str(by)}
    return True


def blind_note(state: RunState) -> str | None:
    """What an export says about a blind test, or None when the test is not blind:
    "blind test: test scores were hidden during the run and revealed by user at ..." or
    "blind test: test scores are hidden in the app (not revealed yet); this export includes them"."""
    if not state.settings.optimizer.blind_test:
        return None
    if state.test_revealed:
        return (f"blind test: test scores were hidden during the run and revealed by "
                f"{state.test_revealed.get('by', '?')} at {state.test_revealed.get('at', '?')}")
    return "blind test: test scores are hidden in the app (not revealed yet); this export includes them"


@dataclass(frozen=True)
class GapPoint:
    """The prompt in use after ``step`` (0: the start) and its dev-test gap.

    entry_id / prompt: its trajectory entry. dev / test: correct of answered (test None when
    not scored, or hidden by a blind test: then ``hidden`` is True). gap: dev - test accuracy
    as a share in [-1, 1]; gap_ci: its 95% Newcombe interval; both None without a test score.
    warning: the gap has opened (gap_ci low > 0 and gap > :data:`GAP_THRESHOLD`)."""

    step: int
    entry_id: int
    prompt: str
    dev: Proportion | None
    test: Proportion | None
    gap: float | None
    gap_ci: tuple[float, float] | None
    warning: bool
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: step, entry_id, dev {...}, test {...}, gap, gap_ci95 [low, high], warning, hidden."""
        return {"step": self.step, "entry_id": self.entry_id, "dev": self.dev.to_dict() if self.dev else None,
                "test": self.test.to_dict() if self.test else None, "gap": self.gap,
                "gap_ci95": list(self.gap_ci) if self.gap_ci else None, "warning": self.warning,
                "hidden": self.hidden}


def _point(state: RunState, step: int, entry: TrajectoryEntry, hide: bool, threshold: float,
           cands: dict[str, CandidateRecord]) -> GapPoint:
    dev = entry_score(state, entry, "dev", cands)
    test = None if hide else entry_score(state, entry, "test", cands)
    if dev is None or test is None or dev.value is None or test.value is None:
        return GapPoint(step, entry.id, entry.prompt, dev, test, None, None, False, hide)
    gap = dev.value - test.value
    ci = diff_interval(dev.correct, dev.answered, test.correct, test.answered)
    return GapPoint(step, entry.id, entry.prompt, dev, test, gap, ci, ci[0] > 0 and gap > threshold, hide)


def gap_series(state: RunState, *, include_hidden: bool = False, threshold: float = GAP_THRESHOLD) -> list[GapPoint]:
    """One :class:`GapPoint` for the start (step 0) and each decided step (the prompt in use
    after it: the chosen one, or the kept one), in order. While a blind test is hidden
    (:func:`is_test_hidden`) the test side is left out (``hidden`` True, no gap, no warning)
    unless ``include_hidden`` (exports). [] before the start is scored."""
    if state.initial is None or not state.trajectory:
        return []
    hide = is_test_hidden(state) and not include_hidden
    cands = candidates_by_id(state)
    by_id = {e.id: e for e in state.trajectory}
    entry = by_id.get(0, state.trajectory[0])
    points = [_point(state, 0, entry, hide, threshold, cands)]
    for step in state.decided_steps:
        if step.chosen_entry_id is not None and step.chosen_entry_id in by_id:
            entry = by_id[step.chosen_entry_id]
        points.append(_point(state, step.step, entry, hide, threshold, cands))
    return points


def gap_warning_text(point: GapPoint) -> str | None:
    """The warning of a point, or None: "dev-test gap opened at step 3: dev 87.5% vs test
    50.0%, gap +37.5 points [95% CI +5.2, +61.0]: the prompt may fit the dev examples rather
    than the task"."""
    if not point.warning or point.gap is None or point.gap_ci is None or point.dev is None or point.test is None:
        return None
    lo, hi = point.gap_ci
    return (f"dev-test gap opened at step {point.step}: dev {100 * (point.dev.value or 0):.1f}% vs test "
            f"{100 * (point.test.value or 0):.1f}%, gap {100 * point.gap:+.1f} points [95% CI {100 * lo:+.1f}, "
            f"{100 * hi:+.1f}]: the prompt may fit the dev examples rather than the task")
