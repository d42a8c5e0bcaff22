"""A task's answer type inferred from its gold targets (when neither the caller nor task.json
names one)."""

from __future__ import annotations

import re

_MC_RE = re.compile(r"^\([A-R]\)$")
_NUMBER_RE = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[-+]?\.\d+$")


def infer_answer_type(targets: list[str]) -> str:
    """Answer type from the gold targets (one of :data:`gpo_core.tasks.task.ANSWER_TYPES`).

    All ``"(A)"``..``"(R)"`` -> ``multiple_choice``; all numbers (``-3``, ``2.5``, ``1,000``)
    -> ``number``; all yes/no -> ``yes_no``; all true/false -> ``true_false``; all
    valid/invalid -> ``valid_invalid`` (case-insensitive); otherwise ``exact_match``.
    An empty list gives ``exact_match``.
    """
    ts = [t.strip() for t in targets]
    if not ts:
        return "exact_match"
    low = {t.lower() for t in ts}
    if all(_MC_RE.match(t) for t in ts):
        return "multiple_choice"
    if all(_NUMBER_RE.match(t) for t in ts):
        return "number"
    for kind, words in (
        ("yes_no", {"yes", "no"}),
        ("true_false", {"true", "false"}),
        ("valid_invalid", {"valid", "invalid"}),
    ):
        if low <= words:
            return kind
    return "exact_match"
