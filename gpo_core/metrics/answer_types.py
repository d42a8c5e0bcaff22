"""The seven answer types of :mod:`gpo_core.scoring.answers` as metrics (the paper's exact
scoring, the default): score 1 when the answer extracted from the output equals the
normalized target, else 0.

Source: OPRO ``metrics.get_normalized_prediction`` as adapted in
:mod:`gpo_core.scoring.answers` (extraction and target grammar unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpo_core.errors import ConfigError
from gpo_core.metrics.base import MetricResult, register_metric
from gpo_core.metrics.options import example_where, refuse_unknown
from gpo_core.scoring.answers import extract_answer, matches_target, normalize_target
from gpo_core.tasks.task import ANSWER_TYPES, Example

__all__ = ["AnswerTypeMetric"]

_DEFINITIONS = {
    "multiple_choice": "Reads the chosen option (A)..(R) from the output (after 'the answer is' when present, "
                       "else the last option named) and scores 1 when it is the target's option, else 0.",
    "number": "Reads a number from the output (after 'the answer is' when present, else the last number; "
              "'1,234.50', '$12' and 'seven' are read) and scores 1 when it equals the target's value exactly, "
              "else 0.",
    "yes_no": "Reads 'yes' or 'no' from the output and scores 1 when it is the target's word, else 0.",
    "true_false": "Reads 'true' or 'false' from the output and scores 1 when it is the target's word, else 0.",
    "valid_invalid": "Reads 'valid' or 'invalid' from the output and scores 1 when it is the target's word, "
                     "else 0.",
    "exact_match": "Reads the text after 'Answer:' / 'the answer is' (else the last line) and scores 1 when, "
                   "lowercased with spaces, commas, quotes and final punctuation normalized, it equals the "
                   "target, else 0.",
    "contains": "Scores 1 when the normalized target appears in the normalized output as a whole word or "
                "phrase ('5' is not found in '15'), else 0.",
}


class AnswerTypeMetric:
    """Exact scoring by answer type (binary). answer_type: one of
    :data:`gpo_core.tasks.task.ANSWER_TYPES`. Raises ConfigError (field "answer_type") for an
    unknown type or any option (these metrics take none)."""

    binary = True

    def __init__(self, answer_type: str, **options: object):
        if answer_type not in ANSWER_TYPES:
            raise ConfigError("answer_type", f"unknown answer type {answer_type!r}; expected one of "
                                             f"{', '.join(ANSWER_TYPES)}")
        refuse_unknown(answer_type, options, ())
        self.name = answer_type
        self.answer_type = answer_type

    def definition(self) -> str:
        """One paragraph for the Task page."""
        return _DEFINITIONS[self.answer_type]

    def _targets(self, examples: Sequence[Example]) -> list[str]:
        out = []
        for i, ex in enumerate(examples):
            try:
                out.append(normalize_target(ex.target, self.answer_type))
            except ValueError as exc:
                raise ConfigError("answer_type", f"{example_where(ex, i)}: {exc}; is {self.answer_type!r} the "
                                                 "right answer type?") from None
        return out

    def check(self, examples: Sequence[Example]) -> None:
        """ConfigError (field "answer_type", naming the line) for a target that is not an
        answer of this type."""
        self._targets(examples)

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """1.0 / 0.0 per output; parsed = the canonical answer read (None: none found)."""
        targets = self._targets(examples)
        results = []
        for out, target in zip(outputs, targets):
            parsed = extract_answer(out, self.answer_type)
            ok = matches_target(parsed, target, self.answer_type)
            if ok:
                reason = None
            elif parsed is None:
                reason = f"no {self.answer_type.replace('_', ' ')} answer found; expected {target!r}"
            else:
                reason = f"answered {parsed!r}; expected {target!r}"
            results.append(MetricResult(score=1.0 if ok else 0.0, parsed=parsed, reason=reason))
        return results


def _factory(answer_type: str):
    return lambda **options: AnswerTypeMetric(answer_type, **options)


for _t in ANSWER_TYPES:
    register_metric(_t, _factory(_t))
