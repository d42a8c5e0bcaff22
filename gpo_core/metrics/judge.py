"""The LLM judge: a third model role, the judge model, grades each output against a rubric.

``llm_judge`` sends the judge model one request per answered example (rubric, task input,
reference answer(s), the output; :mod:`gpo_core.metrics.judge_template`), at temperature and
token cap of the run's judge-model settings, through the same response cache and spend meter
as the other roles. The reply's grade is normalized to [0, 1]: on the "1-10" scale
``(score - 1) / 9`` (partial credit), on "pass-fail" 1 or 0 (binary, so Wilson intervals and
McNemar tests apply). The judge prompt, its reply and its tokens are kept on every
per-example record (:class:`gpo_core.metrics.base.MetricResult`).

A judge call that fails, or a reply without a readable grade, scores the example 0 with the
reason recorded in ``error`` (shown per example, never hidden), as for any metric that fails
on one example (issue 12).

Options (``--metric-option KEY=VALUE``, the Task page's metric options): ``rubric`` (text;
default :data:`~gpo_core.metrics.judge_template.DEFAULT_RUBRIC`, "matches the reference
answer") and ``scale`` ("1-10", default, or "pass-fail"). The judge model itself and its
temperature / token cap are injected by the run (:func:`gpo_core.metrics.build_metric`), not
options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.metrics.base import MetricResult, register_metric
from gpo_core.metrics.common import references
from gpo_core.metrics.judge_template import DEFAULT_RUBRIC, JUDGE_SYSTEM, JUDGE_USER, SCALE_INSTRUCTIONS, SCALES
from gpo_core.metrics.options import refuse_unknown
from gpo_core.models.base import ChatModel, ChatRequest
from gpo_core.tasks.task import Example

__all__ = ["JUDGE_METRIC", "LLMJudgeMetric", "judge_messages", "parse_grade"]

JUDGE_METRIC = "llm_judge"
_SCORE = re.compile(r"score\W{0,6}(\d+(?:\.\d+)?)", re.IGNORECASE)
_LOOSE_SCORE = re.compile(r"(?<![\d.])(10|[1-9])(?:\s*/\s*10)?(?![\d.])")
_VERDICT = re.compile(r"verdict\W{0,6}(pass|fail)", re.IGNORECASE)
_LOOSE_VERDICT = re.compile(r"\b(pass|fail)(?:ed|es)?\b", re.IGNORECASE)
_REASON = re.compile(r"reason\s*[:=]\s*(.+)", re.IGNORECASE)


def parse_grade(reply: str, scale: str) -> tuple[float | None, str | None]:
    """``(score in [0, 1], reason)`` read from a judge ``reply`` on ``scale``; score None when
    the reply holds no readable grade.

    "1-10": the number after "Score" (else the last whole number 1-10 standing alone, "7/10"
    counted), clipped to [1, 10], mapped by ``(s - 1) / 9``. "pass-fail": the word after
    "Verdict" (else the only one of PASS / FAIL the reply uses), 1.0 or 0.0. reason: the text
    after "Reason:" on its line, or None."""
    m = _REASON.search(reply or "")
    reason = m.group(1).strip().rstrip(".") if m else None
    text = reply or ""
    if scale == "pass-fail":
        v = _VERDICT.search(text)
        if v:
            return (1.0 if v.group(1).lower() == "pass" else 0.0), reason
        words = {w.lower() for w in _LOOSE_VERDICT.findall(text)}
        if len(words) == 1:
            return (1.0 if words == {"pass"} else 0.0), reason
        return None, reason
    s = _SCORE.search(text)
    value: float | None = float(s.group(1)) if s else None
    if value is None:
        loose = _LOOSE_SCORE.findall(text)
        value = float(loose[-1]) if loose else None
    if value is None:
        return None, reason
    value = min(10.0, max(1.0, value))
    return (value - 1.0) / 9.0, reason


def judge_messages(rubric: str, scale: str, ex: Example, output: str) -> tuple[tuple[str, str], ...]:
    """The judge request's messages for one example: ``(("system", ...), ("user", ...))``."""
    refs = references(ex.target)
    user = JUDGE_USER.format(rubric=rubric, input=ex.input, output=output,
                             reference_heading="Reference answer" if len(refs) == 1 else "Reference answers (any one "
                                                                                          "is right)",
                             reference="\n".join(f"- {r}" for r in refs) if len(refs) > 1 else refs[0],
                             scale_instruction=SCALE_INSTRUCTIONS[scale])
    return ("system", JUDGE_SYSTEM), ("user", user)


class LLMJudgeMetric:
    """The ``llm_judge`` metric (see the module docstring). judge: the judge model (a
    :class:`~gpo_core.models.base.ChatModel`; None only to read the definition, scoring then
    raises ConfigError). temperature / max_tokens: the judge-model settings' (degrees,
    tokens). Options: rubric, scale. ConfigError (field ``metric_options.KEY``) for an unknown
    option, an empty rubric or an unknown scale."""

    name = JUDGE_METRIC

    def __init__(self, judge: ChatModel | None = None, temperature: float = 0.0, max_tokens: int = 256,
                 **options: Any):
        refuse_unknown(self.name, options, ("rubric", "scale"))
        rubric = options.get("rubric")
        self.rubric = DEFAULT_RUBRIC if rubric is None else str(rubric).strip()
        if not self.rubric:
            raise ConfigError("metric_options.rubric", "the judge's rubric is empty; write one or leave it out for "
                                                       "the default (matches the reference answer)")
        self.scale = str(options.get("scale") or "1-10").strip().lower()
        if self.scale not in SCALES:
            raise ConfigError("metric_options.scale", f"must be one of {', '.join(SCALES)}, got {self.scale!r}")
        self.judge, self.temperature, self.max_tokens = judge, float(temperature), int(max_tokens)
        #: pass/fail grades are 0 or 1; a 1-10 grade is partial credit
        self.binary: bool = self.scale == "pass-fail"

    def definition(self) -> str:
        """One paragraph for the Task page."""
        scale = ("PASS scores 1 and FAIL 0" if self.binary
                 else "a grade from 1 to 10 becomes (grade - 1) / 9, so 1 -> 0 and 10 -> 1 (partial credit)")
        who = f" ({self.judge.name})" if self.judge is not None else ""
        return (f"LLM judge: the judge model{who} reads the rubric, the input, the reference answer and the output, "
                f"and grades it; {scale}. Rubric: \"{self.rubric}\". One extra model call per scored example "
                "(cached, counted in tokens and cost); the judge's prompt and reply are kept per example. A failed "
                "judge call or a reply without a grade scores 0, with the reason recorded.")

    def check(self, examples: Sequence[Example]) -> None:
        """Nothing to check per example: any target can be a reference (rubric and scale are
        checked when the metric is built)."""

    def _one(self, output: str, ex: Example) -> MetricResult:
        assert self.judge is not None
        messages = judge_messages(self.rubric, self.scale, ex, output or "")
        prompt = "\n\n".join(f"[{role}]\n{text}" for role, text in messages)
        try:
            c = self.judge.complete(ChatRequest(messages, temperature=self.temperature, max_tokens=self.max_tokens))
        except Exception as e:  # noqa: BLE001 - a judge that raises scores this example 0, recorded
            return MetricResult(0.0, error=f"judge call raised {type(e).__name__}: {e}", judge_prompt=prompt)
        spent = (0, 0) if c.cached else (c.prompt_tokens, c.completion_tokens)
        if c.error is not None:
            return MetricResult(0.0, error=f"judge call failed: {c.error}", judge_prompt=prompt,
                                judge_prompt_tokens=spent[0], judge_completion_tokens=spent[1])
        score, reason = parse_grade(c.text, self.scale)
        if score is None:
            return MetricResult(0.0, error=f"the judge's reply holds no {self.scale} grade: {c.text.strip()[:120]!r}",
                                judge_prompt=prompt, judge_output=c.text, judge_prompt_tokens=spent[0],
                                judge_completion_tokens=spent[1])
        grade = ("PASS" if score else "FAIL") if self.binary else f"{round(1 + 9 * score)}/10"
        return MetricResult(score, parsed=(output or "").strip() or None,
                            reason=f"judge: {grade}" + (f" ({reason})" if reason else ""),
                            judge_prompt=prompt, judge_output=c.text, judge_prompt_tokens=spent[0],
                            judge_completion_tokens=spent[1])

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """One judge call per pair, ``judge.max_concurrency`` in flight; results in order.
        ConfigError ("judge_model") when the metric was built without a judge model."""
        if self.judge is None:
            raise ConfigError("judge_model", "the LLM judge needs a judge model to score with")
        workers = max(1, min(int(getattr(self.judge, "max_concurrency", 1) or 1), len(outputs) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._one, outputs, examples))


register_metric(JUDGE_METRIC, LLMJudgeMetric)
