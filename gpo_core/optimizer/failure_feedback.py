"""Failure feedback: a few dev examples the current prompt gets wrong, shown in the
meta-prompt with the task model's answer, the gold target and the metric's reason (issue 12,
item 4). Optional and off by default (``OptimizerSettings.failure_feedback = 0``, the paper's
setting); the edit-budget sentence is unchanged.

Source: the reference code's "feedback" gradient (RUCAIBox/GPO
``src/optimization/gradient/feedback_gradient.py``: the wrong examples of the current prompt as
"Question / Wrong prediction / Ground truth answer", chosen by ``--gradient_name feedback`` in
``src/optimization/args.py``). The reference asks the optimizer model for a separate "reason"
first; here the wrong examples go straight into the meta-prompt (one call per candidate, as
without feedback). Template text: :mod:`gpo_core.optimizer.templates` (``FAILURE_*``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gpo_core.optimizer import templates as T

__all__ = ["ANSWER_CHARS", "Failure", "failure_rng", "format_failures", "pick_failures", "wrong_records"]

#: A raw output shown in place of an answer (none could be extracted) is cut to this many characters.
ANSWER_CHARS = 300


@dataclass(frozen=True)
class Failure:
    """One wrong dev example as shown to the optimizer model. input: the example's input
    (without the prompt); answer: the task model's extracted answer, or its raw output (cut to
    :data:`ANSWER_CHARS`) marked "no answer found"; target: the gold target; reason: the
    metric's reason or error, None when it gave none. index: the record's position in the
    prompt's dev records (0-based), so a view can point at it."""

    index: int
    input: str
    answer: str
    target: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (kept in ``StepRecord.failures``)."""
        return asdict(self)


def _wrong(r: Mapping[str, Any]) -> bool:
    if r.get("error"):  # a failed call is not an answer: not scored, not shown
        return False
    score = r.get("score")
    return not r.get("correct") if score is None else float(score) < 1.0


def wrong_records(records: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions of the scored records (dicts of :class:`gpo_core.scoring.results.ExampleRecord`)
    that are wrong: score below 1 (``correct`` False on records without a score); failed calls
    are left out."""
    return [i for i, r in enumerate(records) if _wrong(r)]


def _answer(r: Mapping[str, Any]) -> str:
    parsed = r.get("parsed_answer")
    if parsed is not None and str(parsed).strip():
        return str(parsed)
    raw = " ".join(str(r.get("raw_output") or "").split())
    if len(raw) > ANSWER_CHARS:
        raw = raw[:ANSWER_CHARS].rstrip() + " ..."
    return f"(no answer found) {raw}".rstrip()


def failure_rng(seed: int, step: int, attempt: int = 1) -> random.Random:
    """The seeded generator of step ``step`` (attempt ``attempt``) of a run with split seed
    ``seed``: the same run draws the same failures, and each step draws anew."""
    return random.Random(f"{seed}:failures:{step}:{attempt}")


def pick_failures(records: Sequence[Mapping[str, Any]], n: int, rng: random.Random) -> list[Failure]:
    """Up to ``n`` wrong records drawn without replacement by ``rng`` (``random.Random``),
    returned in record order; [] when ``n <= 0`` or nothing is wrong. reason: the record's
    ``reason``, else its ``metric_error``."""
    wrong = wrong_records(records)
    if n <= 0 or not wrong:
        return []
    chosen = sorted(rng.sample(wrong, min(n, len(wrong))))
    out = []
    for i in chosen:
        r = records[i]
        reason = r.get("reason") or r.get("metric_error") or None
        out.append(Failure(index=i, input=str(r.get("input", "")), answer=_answer(r),
                           target=str(r.get("target", "")), reason=str(reason) if reason else None))
    return out


def format_failures(failures: Sequence[Failure | Mapping[str, Any]]) -> str:
    """The meta-prompt block of ``failures`` ("" when empty): :data:`templates.FAILURES_HEADER`
    then one :data:`templates.FAILURE_ITEM` each (with :data:`templates.FAILURE_REASON` when the
    metric gave a reason)."""
    items = []
    for f in failures:
        d = f.to_dict() if isinstance(f, Failure) else dict(f)
        item = T.FAILURE_ITEM.format(input=d["input"], answer=d["answer"], target=d["target"])
        if d.get("reason"):
            item += T.FAILURE_REASON.format(reason=d["reason"])
        items.append(item)
    return "\n\n".join([T.FAILURES_HEADER, *items]) if items else ""
