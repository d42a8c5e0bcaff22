"""The run's final prompt, chosen honestly, and how it compares with the starting prompt.

The final prompt (what ``final_prompt.txt`` and every export hold) is the prompt with the
highest dev accuracy among the STARTING prompt and the prompts chosen at each step; a tie
goes to the EARLIER prompt, so a run whose steps never beat the start on dev returns the
start. (The paper reports the best prompt on dev; before issue 11 ties went to the latest,
and on 8 dev examples that exported prompts worse than the start.)

Every export says how the final prompt compares with the start, on the dev examples and,
when scored, the test examples: each accuracy with its 95% Wilson interval
(:func:`gpo_core.stats.wilson_interval`), and the examples both prompts answered paired
(:func:`gpo_core.stats.paired_counts`: fixed, broken) with the exact McNemar p
(:func:`gpo_core.stats.mcnemar_exact`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.runs.records import CandidateRecord, RunState
from gpo_core.stats import Proportion, mcnemar_exact, paired_counts

__all__ = ["FINAL_RULE", "FinalComparison", "SplitComparison", "candidates_by_id", "compare_final_with_start",
           "entry_score", "final_entry", "records_key"]

#: The rule, as exports state it.
FINAL_RULE = ("the highest dev accuracy among the starting prompt and the prompts chosen at each step; "
              "ties go to the earlier prompt")

#: ``(key, split) -> per-example records`` (``GPOSession.records``): key "initial" or a candidate id.
LoadRecords = Callable[[str, str], list[dict]]


def candidates_by_id(state: RunState) -> dict[str, CandidateRecord]:
    """Every candidate of the run's steps by id."""
    return {c.id: c for s in state.steps for c in s.candidates}


def _contenders(state: RunState) -> list[TrajectoryEntry]:
    chosen = [e for e in state.trajectory if e.chosen]
    if state.initial is not None and not any(e.id == 0 for e in chosen):
        chosen.insert(0, TrajectoryEntry(0, state.initial.get("prompt", ""),
                                         float(state.initial.get("dev_accuracy") or 0.0), 0, None, True, "initial"))
    return chosen


def final_entry(state: RunState) -> TrajectoryEntry:
    """The run's final prompt: the highest dev accuracy among the starting prompt (always a
    contender) and the prompts chosen at each step; ties go to the earlier prompt (lower
    trajectory id). A run not started yet: its current prompt, accuracy 0."""
    chosen = _contenders(state)
    if not chosen:
        return TrajectoryEntry(0, state.current_prompt, 0.0, 0)
    return max(chosen, key=lambda e: (e.dev_accuracy, -e.id))


def _split_n(state: RunState, split: str) -> int:
    return len(state.splits.get(split) or [])


def entry_score(state: RunState, entry: TrajectoryEntry, split: str,
                cands: dict[str, CandidateRecord] | None = None) -> Proportion | None:
    """Correct of answered of a trajectory entry's prompt on ``split`` ("dev" or "test"),
    from the run's records (no per-example file read), or None when it was not scored there
    (test: only the start and chosen prompts are)."""
    if entry.candidate_id is None or entry.id == 0:
        init = state.initial or {}
        acc = init.get(f"{split}_accuracy")
        return Proportion.of(acc, _split_n(state, split) - int(init.get(f"{split}_errors") or 0))
    c = (cands if cands is not None else candidates_by_id(state)).get(entry.candidate_id)
    if c is None:
        return Proportion.of(entry.dev_accuracy, _split_n(state, "dev")) if split == "dev" else None
    if split == "test":
        return Proportion.of(c.test_accuracy, _split_n(state, "test") - c.test_errors)
    if c.dev_accuracy is None:
        return None
    if c.dev_correct is not None:
        return Proportion(c.dev_correct, c.dev_answered)
    return Proportion.of(c.dev_accuracy, c.dev_answered or _split_n(state, "dev"))


def records_key(state: RunState, entry: TrajectoryEntry, split: str,
                cands: dict[str, CandidateRecord] | None = None) -> str:
    """The per-example records key of an entry's prompt on ``split``: "initial" for the
    start; a candidate's id, or for a duplicate's dev records the prompt it duplicates
    (followed to the scored one; "entry0" is the start)."""
    if entry.candidate_id is None or entry.id == 0:
        return "initial"
    key = entry.candidate_id
    if split != "dev":
        return key
    cands = cands if cands is not None else candidates_by_id(state)
    for _ in range(len(cands) + 1):
        c = cands.get(key)
        if c is None or c.status != "duplicate" or not c.duplicate_of:
            break
        key = c.duplicate_of
        if key.startswith("entry"):
            return "initial"
    return key


@dataclass(frozen=True)
class SplitComparison:
    """The final prompt against the start on one split. start / final: correct of answered
    over the whole split; shared: examples both answered (matched by input and target);
    fixed / broken: of those, wrong with the start and right with the final prompt / the
    other way round (with a partial-credit metric: a higher / lower score); p_value: exact
    two-sided McNemar p of fixed vs broken (the sign test). shared, fixed, broken and p_value
    are None without per-example records to pair."""

    split: str
    start: Proportion
    final: Proportion
    shared: int | None
    fixed: int | None
    broken: int | None
    p_value: float | None

    def text(self) -> str:
        """"dev 87.5% [52.9–97.8%] (7/8) vs start 37.5% [13.7–69.4%] (3/8): 5 fixed, 1 broken
        of 8 shared examples, McNemar p = 0.219"."""
        head = f"{self.split} {self.final.text()} vs start {self.start.text()}"
        if self.p_value is None:
            return head + " (no per-example records to pair)"
        if not (float(self.start.correct).is_integer() and float(self.final.correct).is_integer()):
            # partial-credit scores (gpo_core.metrics): examples whose score went up / down, sign test
            return (f"{head}: scores higher on {self.fixed}, lower on {self.broken} of {self.shared} shared "
                    f"examples, exact sign test p = {self.p_value:.3g}")
        return (f"{head}: {self.fixed} fixed, {self.broken} broken of {self.shared} shared examples, "
                f"McNemar p = {self.p_value:.3g}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"start": {...}, "final": {...}, "shared", "fixed", "broken", "mcnemar_p"}."""
        return {"start": self.start.to_dict(), "final": self.final.to_dict(), "shared": self.shared,
                "fixed": self.fixed, "broken": self.broken, "mcnemar_p": self.p_value}


@dataclass(frozen=True)
class FinalComparison:
    """The final prompt (:func:`final_entry`) against the starting prompt. entry: the final
    prompt's trajectory entry; is_start: it IS the starting prompt; dev / test: the
    comparison per split (test None when the run has no test scores)."""

    entry: TrajectoryEntry
    is_start: bool
    dev: SplitComparison | None
    test: SplitComparison | None

    @property
    def prompt(self) -> str:
        return self.entry.prompt

    def summary(self, show_test: bool = True) -> str:
        """One line for the CLI and the reports. ``show_test=False`` (a blind test not yet
        revealed) leaves the test numbers out and says so."""
        parts = [] if self.dev is None else [self.dev.text()]
        if self.test is not None:
            parts.append(self.test.text() if show_test else "test hidden (blind test)")
        body = "; ".join(parts) or "not scored"
        if self.is_start:
            return ("final prompt = the starting prompt (no chosen prompt scored higher on dev): "
                    + body.replace(" vs start ", " = start ", 2))
        return "final prompt vs start: " + body

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"rule", "entry_id", "prompt", "is_start", "dev", "test", "summary"}."""
        return {"rule": FINAL_RULE, "entry_id": self.entry.id, "prompt": self.entry.prompt,
                "is_start": self.is_start, "dev": self.dev.to_dict() if self.dev else None,
                "test": self.test.to_dict() if self.test else None, "summary": self.summary()}


def _compare(state: RunState, start: TrajectoryEntry, final: TrajectoryEntry, split: str,
             load: LoadRecords | None, cands: dict[str, CandidateRecord]) -> SplitComparison | None:
    s, f = entry_score(state, start, split, cands), entry_score(state, final, split, cands)
    if s is None or f is None:
        return None
    if final.id == start.id:
        return SplitComparison(split, s, f, s.answered, 0, 0, 1.0)
    base = load("initial", split) if load else []
    mine = load(records_key(state, final, split, cands), split) if load else []
    if not base or not mine:
        return SplitComparison(split, s, f, None, None, None, None)
    fixed, broken, shared = paired_counts(base, mine)
    return SplitComparison(split, s, f, shared, fixed, broken, mcnemar_exact(fixed, broken))


def compare_final_with_start(state: RunState, load_records: LoadRecords | None = None) -> FinalComparison:
    """The final prompt against the start on dev and test. ``load_records(key, split)``:
    the per-example records of a scored prompt (``GPOSession.records``); without it (or
    without records) the paired counts are None and only the accuracies are compared."""
    final = final_entry(state)
    start = next((e for e in _contenders(state) if e.id == 0), TrajectoryEntry(0, state.current_prompt, 0.0, 0))
    cands = candidates_by_id(state)
    return FinalComparison(final, final.id == start.id, _compare(state, start, final, "dev", load_records, cands),
                           _compare(state, start, final, "test", load_records, cands))
