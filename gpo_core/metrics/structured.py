"""Metrics on structured answers: JSON fields and label sets.

* ``json_keys`` (partial credit): the output is parsed as JSON (a fenced ```json block is
  taken when there is one, else the first ``{...}`` object in the text; stdlib ``json``);
  the target is a JSON object. The score is the share of the chosen keys (option ``keys``,
  comma-separated; default: every key of the target) whose value in the output equals the
  target's; texts compare as normalized text (case, spaces, final punctuation), numbers by
  value. Per-key partial credit as in field-level extraction scoring (e.g. the
  "field accuracy" of information-extraction benchmarks such as SROIE, Huang et al. 2019).
* ``set_f1`` (partial credit): example-based multi-label F1 (Godbole & Sarawagi 2004;
  scikit-learn ``f1_score(average="samples")``): the labels of the output (a JSON list, or
  the answer line split at ``separator``, default ``,``) against the target's labels (a JSON
  list or text split the same way), each normalized; ``2|P ∩ G| / (|P| + |G|)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.metrics.base import MetricResult, register_metric
from gpo_core.metrics.common import score_each
from gpo_core.metrics.options import example_where, opt_list, refuse_unknown
from gpo_core.scoring.answers import ANSWER_BEHIND_RE, normalize_text
from gpo_core.tasks.task import Example

__all__ = ["JsonKeysMetric", "SetF1Metric", "parse_json_output"]

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def parse_json_output(text: str) -> Any:
    """The JSON value in a model's output: the first fenced ```json block that parses, else
    the first ``{...}`` or ``[...]`` that parses as JSON (text around it ignored). Raises
    ValueError when none does."""
    for m in _FENCE_RE.finditer(text or ""):
        try:
            return json.loads(m.group(1))
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text or ""):
        if ch in "{[":
            try:
                return decoder.raw_decode(text, i)[0]
            except ValueError:
                continue
    raise ValueError("no JSON object found in the output")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else normalize_text(str(a)) == normalize_text(
            str(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    return normalize_text(str(a)) == normalize_text(str(b))


class JsonKeysMetric:
    """Share of the chosen keys the output's JSON gets right (not binary). Option ``keys``:
    comma-separated key names (default: all keys of each target)."""

    name = "json_keys"
    binary = False

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("keys",))
        self.keys = opt_list(options, "keys")

    def definition(self) -> str:
        """One paragraph for the Task page."""
        which = f"the keys {', '.join(self.keys)}" if self.keys else "every key of the target"
        return ("Parses the output as JSON (a fenced json code block, else the first {...} object in the text) and "
                f"compares {which} with the target's JSON object: the score is the share of those keys whose value "
                "matches (texts compared case- and space-insensitively, numbers by value), so 2 of 3 keys right "
                "scores 0.67. Output that is not JSON scores 0.")

    def _target(self, ex: Example, i: int) -> dict[str, Any]:
        try:
            value = json.loads(ex.target)
        except ValueError as exc:
            raise ConfigError("target", f"{example_where(ex, i)}: the target is not a JSON object ({exc}); the "
                                        "json_keys metric needs targets like {\"name\": \"Ada\"}") from None
        if not isinstance(value, dict):
            raise ConfigError("target", f"{example_where(ex, i)}: the target is not a JSON object; the json_keys "
                                        "metric needs targets like {\"name\": \"Ada\"}")
        return value

    def check(self, examples: Sequence[Example]) -> None:
        """ConfigError naming the line: field "target" for a target that is not a JSON object,
        field "metric_options.keys" for a chosen key a target lacks."""
        for i, ex in enumerate(examples):
            target = self._target(ex, i)
            missing = [k for k in self.keys if k not in target]
            if missing:
                raise ConfigError("metric_options.keys",
                                  f"{example_where(ex, i)}: the target has no key {missing[0]!r} (its keys: "
                                  f"{', '.join(target) or 'none'})")

    def _one(self, output: str, ex: Example) -> MetricResult:
        target = self._target(ex, 0)
        keys = self.keys or list(target)
        try:
            got = parse_json_output(output)
        except ValueError:
            return MetricResult(0.0, reason="the output holds no JSON object")
        parsed = json.dumps(got, ensure_ascii=False, sort_keys=True)
        if not isinstance(got, dict):
            return MetricResult(0.0, parsed=parsed, reason="the output's JSON is not an object")
        if not keys:
            return MetricResult(1.0, parsed=parsed)
        wrong = [k for k in keys if k not in got or not _same(got[k], target[k])]
        score = (len(keys) - len(wrong)) / len(keys)
        reason = None if not wrong else (f"{len(keys) - len(wrong)} of {len(keys)} keys right; wrong or missing: "
                                         f"{', '.join(wrong)}")
        return MetricResult(score, parsed=parsed, reason=reason)

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """Share of keys right, in [0, 1], per output."""
        return score_each(self._one, outputs, examples)


class SetF1Metric:
    """Multi-label F1 of the output's labels against the target's (not binary). Option
    ``separator`` (default ``,``)."""

    name = "set_f1"
    binary = False

    def __init__(self, **options: Any):
        refuse_unknown(self.name, options, ("separator",))
        sep = options.get("separator")
        self.separator = "," if sep in (None, "") else str(sep)

    def definition(self) -> str:
        """One paragraph for the Task page."""
        return ("Reads a set of labels from the output (a JSON list, else the text after 'Answer:' or the last line, "
                f"split at {self.separator!r}) and from the target the same way, and scores the F1 of the two sets: "
                "2 x shared / (labels answered + labels expected); partial credit in [0, 1], order and case ignored.")

    def _labels(self, text: str, answer_line: bool) -> set[str]:
        stripped = (text or "").strip()
        if stripped.startswith("[") or "```" in stripped:
            try:
                value = parse_json_output(stripped)
                if isinstance(value, list):
                    return {normalize_text(str(v)) for v in value if normalize_text(str(v))}
            except ValueError:
                pass
        if answer_line:
            markers = list(ANSWER_BEHIND_RE.finditer(stripped))
            if markers:
                stripped = stripped[markers[-1].end():].strip().split("\n", 1)[0]
            else:
                lines = [ln for ln in stripped.split("\n") if ln.strip()]
                stripped = lines[-1] if lines else ""
        return {normalize_text(p) for p in stripped.split(self.separator) if normalize_text(p)}

    def check(self, examples: Sequence[Example]) -> None:
        """ConfigError (field "target", naming the line) for a target with no label."""
        for i, ex in enumerate(examples):
            if not self._labels(ex.target, answer_line=False):
                raise ConfigError("target", f"{example_where(ex, i)}: the target holds no label")

    def _one(self, output: str, ex: Example) -> MetricResult:
        gold = self._labels(ex.target, answer_line=False)
        got = self._labels(output, answer_line=True)
        parsed = ", ".join(sorted(got)) or None
        if not got:
            return MetricResult(0.0, reason="no label found in the output")
        shared = len(gold & got)
        score = 2 * shared / (len(gold) + len(got))
        reason = None
        if score < 1.0:
            missing, extra = sorted(gold - got), sorted(got - gold)
            reason = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                           f"extra {', '.join(extra)}" if extra else "") if x)
        return MetricResult(score, parsed=parsed, reason=reason)

    def score_many(self, outputs: Sequence[str], examples: Sequence[Example]) -> list[MetricResult]:
        """F1 in [0, 1] per output."""
        return score_each(self._one, outputs, examples)


register_metric("json_keys", JsonKeysMetric)
register_metric("set_f1", SetF1Metric)
