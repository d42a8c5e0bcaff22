"""A candidate against the current prompt on the same dev examples: what it fixed, what it
broke, the exact McNemar p-value, the question asked before a hand accept that the numbers do
not support, and the per-example regression view.

The counts are the engine's (``CandidateRecord.fixed`` / ``broken`` / ``p_value``, from
:func:`gpo_core.stats.paired_counts` and :func:`gpo_core.stats.mcnemar_exact`); the
regression view pairs the records the same way (by input and target, each used once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from gpo_core.optimizer.policies import current_accuracy
from gpo_core.optimizer.proposer import current_key
from gpo_core.runs.records import CandidateRecord, RunState, StepRecord
from gpo_core.stats import paired_examples, record_score

__all__ = ["REGRESSION_COLUMNS", "accept_question", "p_text", "paired_text", "records_key", "regression_for",
           "regression_frame", "verdict"]

REGRESSION_COLUMNS = ["change", "input", "target", "current prompt's answer", "candidate's answer",
                      "current prompt's reply", "candidate's reply"]


def p_text(p: float) -> str:
    """A p-value for people: "p = 0.07", "p = 0.0078", "p < 0.001", "p = 1"."""
    if p < 0.001:
        return "p < 0.001"
    if p >= 0.9995:
        return "p = 1"
    return f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def verdict(cand: CandidateRecord, alpha: float) -> str:
    """How the candidate compares with the current prompt on dev: "significantly better",
    "significantly worse", "not distinguishable" (p >= alpha), or "not compared"."""
    if cand.p_value is None or cand.fixed is None or cand.broken is None:
        return "not compared"
    if cand.p_value < alpha:
        return "significantly better" if cand.fixed > cand.broken else "significantly worse"
    return "not distinguishable"


def paired_text(cand: CandidateRecord, alpha: float) -> str:
    """The card's paired line (plain text): "vs the current prompt on the same dev examples:
    fixes 3, breaks 1 · McNemar p = 0.62 · not distinguishable at alpha = 0.05"."""
    if cand.p_value is None or cand.fixed is None or cand.broken is None:
        return "vs the current prompt: not compared (no per-example results of both on dev)"
    return (f"vs the current prompt on the same dev examples: fixes {cand.fixed}, breaks {cand.broken} · "
            f"McNemar {p_text(cand.p_value)} · {verdict(cand, alpha)} at alpha = {alpha:g}")


def _examples(n: int) -> str:
    return f"{n} example{'s' if n != 1 else ''}"


def _numbers_question(step: StepRecord, cand: CandidateRecord, state: RunState) -> str | None:
    """What the dev numbers say against accepting ``cand`` (one sentence), or None."""
    alpha = state.settings.optimizer.alpha
    cur = current_accuracy(step, state)
    acc = cand.dev_accuracy
    if acc is None:
        return None
    compared = cand.p_value is not None and cand.fixed is not None and cand.broken is not None
    scores = f"{100 * acc:.1f}% vs {100 * cur:.1f}%" if cur is not None else f"{100 * acc:.1f}%"
    if cur is not None and acc < cur:
        if compared:
            assert cand.broken is not None and cand.fixed is not None
            return (f"{cand.id} scores lower than the current prompt on dev ({scores}): it gets "
                    f"{_examples(cand.broken)} wrong that the current prompt got right, and fixes {cand.fixed}.")
        return f"{cand.id} scores lower than the current prompt on dev ({scores})."
    if not compared:
        return None
    assert cand.p_value is not None and cand.fixed is not None and cand.broken is not None
    if cand.p_value < alpha and cand.fixed > cand.broken:
        return None
    if cand.fixed == cand.broken == 0:
        return (f"{cand.id} answers every dev example as the current prompt does ({scores}): it is not "
                "distinguishable from it on dev.")
    return (f"{cand.id} is not distinguishable from the current prompt on dev ({scores}): it fixes "
            f"{cand.fixed} and breaks {cand.broken} of the dev examples (McNemar {p_text(cand.p_value)}, not below "
            f"alpha = {alpha:g}), so the difference may be luck.")


def accept_question(step: StepRecord, cand: CandidateRecord, state: RunState) -> str | None:
    """The question to ask once before accepting ``cand`` by hand, or None when nothing speaks
    against it (significantly better than the current prompt at the run's alpha, not flagged).

    Worse on dev: "s1c1 scores lower than the current prompt on dev (50.0% vs 62.5%): it gets 3
    examples wrong that the current prompt got right, and fixes 1. Accept anyway?" Not worse
    but not significantly better: "s1c1 is not distinguishable from the current prompt on dev
    (...): it fixes 2 and breaks 1 of the dev examples (McNemar p = 1, not below alpha = 0.05),
    so the difference may be luck. Accept anyway?". Not compared (no per-example results):
    asked only when it scores lower. A candidate racing dropped is judged on the examples it
    was scored on, and the question says so; a flagged candidate (copies data, names a label)
    is always asked about, with what matched.
    """
    parts = []
    if cand.flags:
        parts.append(f"{cand.id} is flagged: {'; '.join(cand.flag_notes) or ', '.join(cand.flags)}.")
    numbers = _numbers_question(step, cand, state)
    if numbers:
        if cand.raced_out_after:
            numbers = numbers[:-1] + (f" (on the {cand.raced_out_after} dev examples racing scored it on; "
                                      "accepting scores the rest first).")
        parts.append(numbers)
    return " ".join(parts) + " Accept anyway?" if parts else None


def _answer(r: Mapping[str, Any]) -> str:
    a = r.get("parsed_answer")
    return "(no answer)" if a is None or a == "" else str(a)


def regression_frame(base_records: list[dict], cand_records: list[dict]) -> pd.DataFrame:
    """The dev examples a candidate changed against the current prompt, both answers side by
    side: change ("fixed": wrong before, right now, or a higher score; "broken": the other
    way), input, target,
    each prompt's parsed answer and its raw reply. Fixed first, then broken, in dev order.
    Examples are paired as :func:`gpo_core.stats.paired_counts` pairs them (by input and
    target, each used once); failed calls are left out. Empty when nothing changed."""
    fixed, broken = [], []
    for base, r in paired_examples(base_records, cand_records):
        was, now = record_score(base), record_score(r)  # 0/1, or partial credit
        if was == now:
            continue
        row = {"change": "fixed" if now > was else "broken", "input": r.get("input", ""), "target": r.get("target", ""),
               "current prompt's answer": _answer(base), "candidate's answer": _answer(r),
               "current prompt's reply": str(base.get("raw_output") or ""),
               "candidate's reply": str(r.get("raw_output") or "")}
        (fixed if now > was else broken).append(row)
    return pd.DataFrame(fixed + broken, columns=REGRESSION_COLUMNS)


def records_key(cand: CandidateRecord) -> str:
    """Whose kept dev records hold ``cand``'s answers: its own id, or for a duplicate (scored
    once, under its twin) the twin's id ("initial" for the starting prompt's "entry0")."""
    if cand.status == "duplicate" and cand.duplicate_of:
        return "initial" if cand.duplicate_of == "entry0" else cand.duplicate_of
    return cand.id


def regression_for(load_records: Callable[[str, str], list[dict]], state: RunState, step: StepRecord,
                   cand: CandidateRecord) -> pd.DataFrame:
    """:func:`regression_frame` of ``cand`` against ``step``'s current prompt, from the run's
    kept dev records (``load_records(key, split)``, e.g. ``Runs.records``)."""
    return regression_frame(load_records(current_key(state, step), "dev"), load_records(records_key(cand), "dev"))
