"""Metrics on text: regex match, numeric with tolerance, token F1 and ROUGE-L.

* ``regex`` (binary): Python ``re`` (stdlib). Option ``pattern`` (required). With
  ``compare=true`` (default) the first match (its group 1 when the pattern has a group) is
  the answer, compared with the target as normalized text (as exact_match); with
  ``compare=false`` the score is 1 when the pattern matches the output at all (promptfoo's
  ``regex`` assertion).
* ``numeric`` (binary): the number read as the ``number`` answer type reads it, right when
  ``math.isclose(answer, target, rel_tol, abs_tol)`` (PEP 485). Options ``abs_tol`` (default
  0) and ``rel_tol`` (default 0.01, i.e. 1%).
* ``token_f1``: SQuAD's token F1 (Rajpurkar et al. 2016, the official ``evaluate-v1.1.py``):
  lowercase, drop punctuation and articles, F1 of the token multisets; the best over the
  references.
* ``rouge_l``: ROUGE-L F-measure (Lin 2004) by Google's ``rouge-score`` library
  (``rouge_scorer.RougeScorer(["rougeL"], use_stemmer=...)``, ``score_multi`` for several
  references: the best). Option ``stemmer`` (default true, Porter stemmer).

Text metrics read the target as one reference or, when it is a JSON list of texts, as a
list of references (:func:`gpo_core.metrics.common.references`).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.metrics.base import MetricResult, register_metric
from gpo_core.metrics.common import references, score_each
from gpo_core.metrics.options import example_where, opt_bool, opt_float, refuse_unknown
from gpo_core.scoring.answers import extract_answer, normalize_target, normalize_text
from gpo_core.tasks.task import Example

__all__ = ["NumericMetric", "RegexMetric", "RougeLMetric", "TokenF1Metric", "token_f1"]


class RegexMetric:
    """Regex match (binary). Raises ConfigError (field ``metric_options.pattern``) when the
    pattern is missing or does not compile."""

    name = "regex"
    binary = True

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("pattern", "compare", "ignore_case"))
        pattern = options.get("pattern")
        if not pattern:
            raise ConfigError("metric_options.pattern", "the regex metric needs a pattern, e.g. pattern=Answer: (\\w+)")
        flags = re.IGNORECASE if opt_bool(options, "ignore_case", True) else 0
        try:
            self.regex = re.compile(str(pattern), flags)
        except re.error as exc:
            raise ConfigError("metric_options.pattern", f"{pattern!r} is not a valid regular expression: {exc}") \
                from None
        self.compare = opt_bool(options, "compare", True)

    def definition(self) -> str:
        """One paragraph for the Task page."""
        if not self.compare:
            return f"Scores 1 when the regular expression {self.regex.pattern!r} matches the output, else 0."
        return (f"Reads the first match of {self.regex.pattern!r} in the output (its first group when it has one) "
                "and scores 1 when it equals the target (or one of its references) as normalized text, else 0.")

    def check(self, examples: Sequence[Example]) -> None:
        """Nothing to check: every target is text."""

    def _one(self, output: str, ex: Example) -> MetricResult:
        m = self.regex.search(output or "")
        if not self.compare:
            return MetricResult(1.0 if m else 0.0, parsed=m.group(0) if m else None,
                                reason=None if m else f"the output does not match {self.regex.pattern!r}")
        if m is None:
            return MetricResult(0.0, reason=f"no match of {self.regex.pattern!r} in the output")
        found = m.group(1) if self.regex.groups and m.group(1) is not None else m.group(0)
        parsed = normalize_text(found)
        refs = [normalize_text(r) for r in references(ex.target)]
        ok = parsed in refs
        return MetricResult(1.0 if ok else 0.0, parsed=parsed, reason=None if ok else f"matched {parsed!r}; "
                                                                                      f"expected {refs[0]!r}")

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """1.0 / 0.0 per output (see the module docstring)."""
        return score_each(self._one, outputs, examples)


class NumericMetric:
    """A number within a tolerance of the target's (binary). Raises ConfigError for a
    negative or non-numeric tolerance."""

    name = "numeric"
    binary = True

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("abs_tol", "rel_tol"))
        self.abs_tol = opt_float(options, "abs_tol", 0.0)
        self.rel_tol = opt_float(options, "rel_tol", 0.01)

    def definition(self) -> str:
        """One paragraph for the Task page."""
        return ("Reads a number from the output (after 'the answer is' when present, else the last number) and "
                f"scores 1 when it is within {self.abs_tol:g} (absolute) or {100 * self.rel_tol:g}% (relative) of "
                "the target's number, else 0.")

    def check(self, examples: Sequence[Example]) -> None:
        """ConfigError (field "target", naming the line) for a target that is not a number."""
        for i, ex in enumerate(examples):
            try:
                normalize_target(ex.target, "number")
            except ValueError as exc:
                raise ConfigError("target", f"{example_where(ex, i)}: {exc}; the numeric metric needs numbers") \
                    from None

    def _one(self, output: str, ex: Example) -> MetricResult:
        target = float(Decimal(normalize_target(ex.target, "number")))
        parsed = extract_answer(output, "number")
        if parsed is None:
            return MetricResult(0.0, reason=f"no number found; expected {target:g}")
        ok = math.isclose(float(Decimal(parsed)), target, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return MetricResult(1.0 if ok else 0.0, parsed=parsed,
                            reason=None if ok else f"answered {parsed}; expected {target:g} (outside the tolerance)")

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """1.0 / 0.0 per output."""
        return score_each(self._one, outputs, examples)


_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _squad_tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of ``prediction`` against one ``reference`` in [0, 1] (both empty after
    normalization: 1.0). Source: SQuAD v1.1 ``evaluate-v1.1.py`` (``f1_score``)."""
    p, r = _squad_tokens(prediction), _squad_tokens(reference)
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


class TokenF1Metric:
    """Token F1 against the best reference (not binary). Takes no options."""

    name = "token_f1"
    binary = False

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ())

    def definition(self) -> str:
        """One paragraph for the Task page."""
        return ("Token F1 (SQuAD): the output and the target are lowercased, stripped of punctuation and the "
                "articles a/an/the, and split into words; the score is the F1 of the shared words (partial "
                "credit in [0, 1]); with several references, the best.")

    def check(self, examples: Sequence[Example]) -> None:
        """Nothing to check: every target is text."""

    def _one(self, output: str, ex: Example) -> MetricResult:
        refs = references(ex.target)
        score = max(token_f1(output, r) for r in refs)
        return MetricResult(score, parsed=" ".join(_squad_tokens(output)) or None,
                            reason=None if score == 1.0 else f"token F1 {score:.2f} against the closest reference")

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """F1 in [0, 1] per output."""
        return score_each(self._one, outputs, examples)


class RougeLMetric:
    """ROUGE-L F-measure against the best reference (not binary), via ``rouge-score``."""

    name = "rouge_l"
    binary = False

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("stemmer",))
        from rouge_score import rouge_scorer

        self.stemmer = opt_bool(options, "stemmer", True)
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=self.stemmer)

    def definition(self) -> str:
        """One paragraph for the Task page."""
        stem = " with Porter stemming" if self.stemmer else ""
        return ("ROUGE-L F-measure (Lin 2004, Google's rouge-score library): the longest common subsequence of "
                f"words between the output and the target{stem}, as an F1 of its precision and recall (partial "
                "credit in [0, 1]); with several references, the best. Only letters and digits count as words.")

    def check(self, examples: Sequence[Example]) -> None:
        """Nothing to check: every target is text."""

    def _one(self, output: str, ex: Example) -> MetricResult:
        refs = references(ex.target)
        scores = self._scorer.score_multi(refs, output or "")
        score = float(scores["rougeL"].fmeasure)
        return MetricResult(score, parsed=(output or "").strip() or None,
                            reason=None if score >= 1.0 else f"ROUGE-L {score:.2f} against the closest reference")

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """F-measure in [0, 1] per output."""
        return score_each(self._one, outputs, examples)



register_metric("regex", RegexMetric)
register_metric("numeric", NumericMetric)
register_metric("token_f1", TokenF1Metric)
register_metric("rouge_l", RougeLMetric)
