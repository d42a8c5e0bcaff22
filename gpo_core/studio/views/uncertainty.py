"""How sure each accuracy the app shows is: the counts behind it and its 95% Wilson interval.

Every accuracy in the app is a share of examples (correct of answered) on a small split, so
it is shown with its interval ("62.5% [41–79%]"), computed by
:func:`gpo_core.stats.wilson_interval` (Wilson 1927, via ``scipy.stats``). The counts come
from the run records (:func:`gpo_core.runs.final.entry_score` for trajectory prompts): a
candidate's ``dev_correct`` / ``dev_answered``, the starting prompt's accuracy over its split
minus failed calls, a chosen prompt's test accuracy over the test split minus its failed
test calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.runs.final import entry_score
from gpo_core.runs.records import CandidateRecord, RunState, StepRecord
from gpo_core.stats import Proportion, mean_interval, record_score

__all__ = ["Accuracy", "accuracy_from", "candidate_dev", "candidate_test", "chosen_test", "entry_accuracy",
           "explainer", "initial_accuracy", "records_accuracy", "split_size"]


@dataclass(frozen=True)
class Accuracy(Proportion):
    """``correct`` of ``answered`` examples, as the app writes it: :meth:`text` "62.5%
    [41–79%]" (the 95% Wilson interval in whole percent), :meth:`band` "41–79%",
    :meth:`sized` "62.5% [41–79%] on 16 dev examples". ``interval()`` and ``value`` as
    :class:`gpo_core.stats.Proportion`."""

    def band(self) -> str:
        """The 95% interval in percent, whole numbers: "41–79%" ("–" when nothing was answered)."""
        if not self.answered:
            return "–"
        lo, hi = self.interval()
        return f"{100 * lo:.0f}–{100 * hi:.0f}%"

    def text(self, digits: int = 1) -> str:
        """The accuracy with its interval: "62.5% [41–79%]" ("–" when nothing was answered)."""
        if self.value is None:
            return "–"
        return f"{100 * self.value:.{digits}f}% [{self.band()}]"

    def metric(self) -> tuple[str, str | None]:
        """For ``st.metric``: the value ("62.5%") and, as its caption below it, the interval
        ("95% interval 41–79%"); ("–", None) when nothing was answered."""
        if self.value is None:
            return "–", None
        return f"{100 * self.value:.1f}%", f"95% interval {self.band()}"

    def sized(self, split: str = "dev") -> str:
        """:meth:`text` with its sample size: "62.5% [41–79%] on 16 dev examples"."""
        return f"{self.text()} on {self.answered} {split} example{'s' if self.answered != 1 else ''}"


def _of(p: Proportion | None) -> Accuracy | None:
    return None if p is None else Accuracy(p.correct, p.answered)


def accuracy_from(value: float | None, answered: int) -> Accuracy | None:
    """An :class:`Accuracy` from a share in [0, 1] of ``answered`` examples (the correct count
    is ``round(value * answered)``), or None when ``value`` is None."""
    return _of(Proportion.of(value, answered))


def split_size(state: RunState, split: str) -> int:
    """Examples in the run's ``split`` ("dev" or "test")."""
    return len(state.splits.get(split) or [])


def candidate_dev(cand: CandidateRecord) -> Accuracy | None:
    """A candidate's dev accuracy with its counts (``dev_correct`` of ``dev_answered``;
    rebuilt from ``dev_accuracy`` for older runs), or None when it was not scored."""
    if cand.dev_accuracy is None:
        return None
    if cand.dev_correct is not None:
        return Accuracy(cand.dev_correct, cand.dev_answered)
    return accuracy_from(cand.dev_accuracy, cand.dev_answered)


def candidate_test(cand: CandidateRecord, state: RunState) -> Accuracy | None:
    """A chosen candidate's test accuracy over the test examples answered, or None."""
    return accuracy_from(cand.test_accuracy, split_size(state, "test") - cand.test_errors)


def initial_accuracy(state: RunState, split: str = "dev") -> Accuracy | None:
    """The starting prompt's accuracy on ``split`` with its counts, or None before it is scored."""
    init = state.initial
    if init is None:
        return None
    n = init.get(f"{split}_n") or split_size(state, split)  # "dev_n" / "test_n": runs from issue 11 on
    return accuracy_from(init.get(f"{split}_accuracy"), int(n) - int(init.get(f"{split}_errors") or 0))


def entry_accuracy(state: RunState, entry: TrajectoryEntry, split: str = "dev") -> Accuracy | None:
    """A trajectory entry's accuracy on ``split`` with its counts (the starting prompt's, or
    its candidate's; :func:`gpo_core.runs.final.entry_score`), or None when not scored there."""
    if entry.candidate_id is None or entry.id == 0:
        return initial_accuracy(state, split)
    return _of(entry_score(state, entry, split))


def chosen_test(state: RunState, step: StepRecord) -> Accuracy | None:
    """The test accuracy of the prompt chosen in ``step`` with its counts, or None."""
    if step.decision is None or not step.decision.candidate_id or step.chosen_test_accuracy is None:
        return None
    try:
        cand = step.candidate(step.decision.candidate_id)
    except KeyError:
        return None
    return accuracy_from(step.chosen_test_accuracy, split_size(state, "test") - cand.test_errors)


def records_accuracy(records: list[dict]) -> Accuracy | None:
    """Accuracy of per-example records over the answered ones (failed calls left out), or
    None when there are no records. Records with partial-credit scores give the mean score
    with its bootstrap interval (:func:`gpo_core.stats.mean_interval`, seeded)."""
    if not records:
        return None
    scores = [record_score(r) for r in records if not r.get("error")]
    if all(x in (0.0, 1.0) for x in scores):
        return Accuracy(int(sum(scores)), len(scores))
    # partial credit: the mean score with the seeded bootstrap interval of the scores
    return Accuracy(sum(scores), len(scores), ci=mean_interval(scores))


def explainer(acc: Accuracy | None, split: str = "dev") -> str:
    """The one line for first-time users under the first accuracy shown: "62.5% [41–79%] on
    16 dev examples: the true accuracy is probably in this range (95% Wilson interval);
    differences inside it may be luck." A generic line when ``acc`` is None."""
    head = acc.sized(split) if acc is not None and acc.answered else "An accuracy like 62.5% [41–79%]"
    return (f"{head}: the true accuracy is probably in this range (95% Wilson interval); "
            "differences inside it may be luck.")
