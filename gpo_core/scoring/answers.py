"""Answer extraction and scoring for the task model's outputs.

Rules follow the paper's scorer (OPRO ``metrics.get_normalized_prediction``, reused by GPO):
cut a run-on next question (``"Q:"``), prefer the text after an answer marker ("the answer
is", "Answer:"), otherwise look at the end of the output. They are made tolerant for small
models that ramble:

* With an answer marker ("answer is", "answer:", "answer would be", ...), the FIRST answer
  after the LAST marker wins ("The answer is (C). Not (A)" -> "(C)"); if that marker is
  followed by no answer, earlier markers are tried.
* Else, with a trailing marker ("(C) is the correct answer"), the last answer before it.
* Else the LAST answer anywhere in the output ("I think 12, no wait, 15" -> "15").

Canonical forms returned by :func:`extract_answer` and :func:`normalize_target`:

==============  ===============================================  ==================
answer_type     accepted in the output                           canonical
==============  ===============================================  ==================
multiple_choice "(B)", "(b)", "B)", "option B", "answer is B"     "(B)"  (A..R)
number          "-1,234.50", "$12", "12.0", "seven" (0..20)       "-1234.5", "12", "7"
yes_no          word "yes" / "no" (any case)                      "yes" / "no"
true_false      word "true" / "false"                             "true" / "false"
valid_invalid   word "valid" / "invalid"                          "valid" / "invalid"
exact_match     text after the marker up to end of line, else     normalized text
                the last non-empty line
contains        the whole output                                  normalized text
==============  ===============================================  ==================

Normalized text (exact_match, contains): lowercase, commas treated as spaces, whitespace
collapsed, surrounding quotes / backticks / ``*`` and trailing ``. ! ? ; :`` removed.
Brackets are kept, so BBH dyck_languages targets like ``") ]"`` survive.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from gpo_core.errors import ConfigError
from gpo_core.tasks.task import ANSWER_TYPES

# --- markers -------------------------------------------------------------------------

#: "... answer is X" / "Answer: X": the answer follows the marker.
ANSWER_BEHIND_RE = re.compile(
    r"\banswers?\s*(?:is\b|was\b|would\s+be\b|should\s+be\b|will\s+be\b|[:=])\s*:?",
    re.IGNORECASE,
)
#: "X is the correct answer": the answer precedes the marker.
ANSWER_AHEAD_RE = re.compile(
    r"\bis\s+the\s+(?:correct\s+|right\s+|final\s+|best\s+)?answer\b", re.IGNORECASE
)
#: The model starts a new question on its own: everything from here on is dropped.
NEXT_QUESTION_RE = re.compile(r"\n\s*Q:")

# --- per-type patterns -----------------------------------------------------------------

_MC_LETTERS = "A-R"
#: "(B)" (any case), "B)" (capital, not inside a word), "option B" / "choice (b)".
MC_RE = re.compile(
    rf"(?i:\(([{_MC_LETTERS}])\))"
    rf"|(?<![A-Za-z(])([{_MC_LETTERS}])\)"
    rf"|(?i:\b(?:option|choice)\s*\(?([{_MC_LETTERS}])\b)"
)
#: A bare capital letter right after an answer marker: "The answer is B."
MC_BARE_AFTER_MARKER_RE = re.compile(
    rf"[\s*\"']*([{_MC_LETTERS}])(?=[\s*\"']*(?:$|[.,;!\n]))"
)

_WORD_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()
WORD_TO_NUMBER = {w: i for i, w in enumerate(_WORD_NUMBERS)}
#: Digits: optional sign (not a binary minus "5-3"), thousands groups, decimals (".5").
NUMBER_RE = re.compile(
    r"(?:(?<![\w)])[-\u2212])?"
    r"(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<![\w.])\.\d+)"
)
WORD_NUMBER_RE = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)

#: answer_type -> (word for false/no, word for true/yes).
BOOLEAN_WORDS = {
    "yes_no": ("no", "yes"),
    "true_false": ("false", "true"),
    "valid_invalid": ("invalid", "valid"),
}
BOOLEAN_RE = {
    kind: re.compile(rf"\b({neg}|{pos})\b", re.IGNORECASE)
    for kind, (neg, pos) in BOOLEAN_WORDS.items()
}

_EDGE_CHARS = "\"'`*\u201c\u201d\u2018\u2019 "
_TRAILING_PUNCT = ".!?;:"
_SPACE_RE = re.compile(r"\s+")
_COMMA_RE = re.compile(r"\s*,\s*")
_LEADING_A_RE = re.compile(r"^\s*A:\s*")


def _check_type(answer_type: str) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ConfigError(
            "answer_type",
            f"unknown answer type {answer_type!r}; expected one of {', '.join(ANSWER_TYPES)}",
        )


def normalize_text(text: str) -> str:
    """Normalized free text for exact_match / contains (see the module docstring)."""
    text = _COMMA_RE.sub(" ", text.lower())
    text = _SPACE_RE.sub(" ", text)
    prev = None
    while prev != text:
        prev = text
        text = text.strip(_EDGE_CHARS).rstrip(_TRAILING_PUNCT)
    return text


def _canonical_number(raw: str) -> str | None:
    raw = raw.replace(",", "").replace("\u2212", "-").replace("$", "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def _cut_next_question(output: str) -> str:
    m = NEXT_QUESTION_RE.search(output)
    if m and output[: m.start()].strip():
        return output[: m.start()]
    return output


# Candidate = (start offset, priority (lower wins), canonical answer)
def _candidates(text: str, answer_type: str) -> list[tuple[int, int, str]]:
    if answer_type == "multiple_choice":
        return [
            (m.start(), 0, f"({(m.group(1) or m.group(2) or m.group(3)).upper()})")
            for m in MC_RE.finditer(text)
        ]
    if answer_type == "number":
        found = []
        for m in NUMBER_RE.finditer(text):
            value = _canonical_number(m.group(0))
            if value is not None:
                found.append((m.start(), 0, value))
        for m in WORD_NUMBER_RE.finditer(text):
            found.append((m.start(), 1, str(WORD_TO_NUMBER[m.group(1).lower()])))
        found.sort()
        return found
    pattern = BOOLEAN_RE[answer_type]
    return [(m.start(), 0, m.group(1).lower()) for m in pattern.finditer(text)]


def _pick(cands: list[tuple[int, int, str]], lo: int, hi: int, first: bool) -> str | None:
    inside = [c for c in cands if lo <= c[0] < hi]
    if not inside:
        return None
    best = min(c[1] for c in inside)
    inside = [c for c in inside if c[1] == best]
    return inside[0][2] if first else inside[-1][2]


def _extract_line(text: str) -> str | None:
    markers = list(ANSWER_BEHIND_RE.finditer(text))
    for m in reversed(markers):
        line = text[m.end():].strip().split("\n", 1)[0]
        norm = normalize_text(line)
        if norm:
            return norm
    lines = [ln for ln in text.split("\n") if normalize_text(ln)]
    if not lines:
        return None
    return normalize_text(_LEADING_A_RE.sub("", lines[-1])) or None


def extract_answer(output: str, answer_type: str) -> str | None:
    """The task model's answer in canonical form, or ``None`` when none is found.

    output: the raw completion text. answer_type: one of :data:`gpo_core.tasks.task.ANSWER_TYPES`.
    Returns e.g. ``"(C)"``, ``"15"``, ``"yes"``, or normalized text (exact_match; the whole
    normalized output for contains). Raises :class:`ConfigError` for an unknown answer type.
    Source: OPRO ``metrics.get_normalized_prediction`` (marker handling, number parsing),
    adapted as described in the module docstring.
    """
    _check_type(answer_type)
    if not output:
        return None
    text = _cut_next_question(output)
    if answer_type == "contains":
        return normalize_text(text) or None
    if answer_type == "exact_match":
        return _extract_line(text)

    cands = _candidates(text, answer_type)
    markers = list(ANSWER_BEHIND_RE.finditer(text))
    for m in reversed(markers):
        if answer_type == "multiple_choice":
            bare = MC_BARE_AFTER_MARKER_RE.match(text, m.end())
            if bare:
                return f"({bare.group(1)})"
        found = _pick(cands, m.end(), len(text), first=True)
        if found is not None:
            return found
    ahead = ANSWER_AHEAD_RE.search(text)
    if ahead:
        found = _pick(cands, 0, ahead.start(), first=False)
        if found is not None:
            return found
    return _pick(cands, 0, len(text), first=False)


#: A gold target that is a choice: "(B)" / "(b)" / "B)" / "B" / "B." / "option B".
_MC_TARGET_RE = re.compile(
    rf"(?:(?:option|choice)\s*)?(?:\(\s*([{_MC_LETTERS}])\s*\)|([{_MC_LETTERS}])\)?)\.?",
    re.IGNORECASE,
)
#: A gold target that is a number: optional sign and ``$``, thousands groups, decimals, an
#: optional trailing period ("-1,234.50", "$12", "+3", ".5", "12.").
_NUMBER_TARGET_RE = re.compile(
    r"([-+\u2212]?)\$?([-+\u2212]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)\.?"
)


def _target_choice(raw: str) -> str | None:
    m = _MC_TARGET_RE.fullmatch(raw)
    if not m:
        return None
    if m.group(2) is not None and not m.group(2).isupper() and not raw.lower().startswith(("option", "choice")):
        return None  # a bare lowercase letter ("a") is a word, not a choice
    return f"({(m.group(1) or m.group(2)).upper()})"


def _target_number(raw: str) -> str | None:
    m = _NUMBER_TARGET_RE.fullmatch(raw)
    if m:
        if m.group(1) and m.group(2):
            return None  # two signs ("-$-3")
        sign = "-" if (m.group(1) or m.group(2)) in ("-", "\u2212") else ""
        return _canonical_number(sign + m.group(3))
    word = WORD_TO_NUMBER.get(normalize_text(raw))
    return None if word is None else str(word)


def normalize_target(target: str, answer_type: str) -> str:
    """The canonical form of a gold target, comparable with :func:`extract_answer`.

    This is the one grammar for gold targets: scoring uses it, and answer-type inference
    (:func:`gpo_core.tasks.infer.infer_answer_type`) counts the targets it accepts per type.

    * multiple_choice: ``"(B)"``, ``"(b)"``, ``"B)"``, ``"B"``, ``"B."``, ``"option B"`` ->
      ``"(B)"`` (letters A..R; a bare letter must be a capital: ``"a"`` is a word).
    * number: ``"1,234"`` / ``"1234.0"`` -> ``"1234"``; ``"$12"`` -> ``"12"``; ``"+3"`` -> ``"3"``;
      ``"12."`` -> ``"12"``; number words ``"zero"``..``"twenty"`` (any case) -> ``"0"``..``"20"``.
    * yes_no / true_false / valid_invalid: the word in any case, with surrounding quotes and
      trailing ``. ! ? ; :`` removed: ``"Yes."`` -> ``"yes"``, ``"True"`` -> ``"true"``.
    * exact_match / contains: normalized text (see the module docstring).

    Raises :class:`ConfigError` for an unknown answer type and :class:`ValueError` when the
    target is blank or is not an answer of that type (callers add file/line context).
    """
    _check_type(answer_type)
    raw = str(target).strip()
    if not raw:
        raise ValueError("target is blank")
    if answer_type == "multiple_choice":
        choice = _target_choice(raw)
        if choice is None:
            raise ValueError(f"target {raw!r} is not a choice (A)..(R)")
        return choice
    if answer_type == "number":
        value = _target_number(raw)
        if value is None:
            raise ValueError(f"target {raw!r} is not a number")
        return value
    if answer_type in BOOLEAN_WORDS:
        low = normalize_text(raw)
        if low not in BOOLEAN_WORDS[answer_type]:
            neg, pos = BOOLEAN_WORDS[answer_type]
            raise ValueError(f"target {raw!r} is neither {pos!r} nor {neg!r}")
        return low
    norm = normalize_text(raw)
    if not norm:
        raise ValueError(f"target {raw!r} is blank after normalization")
    return norm


def target_parses(target: str, answer_type: str) -> bool:
    """Whether :func:`normalize_target` accepts ``target`` as an answer of ``answer_type``."""
    try:
        normalize_target(target, answer_type)
    except ValueError:
        return False
    return True


def matches_target(parsed: str | None, normalized_target: str, answer_type: str) -> bool:
    """Whether an extracted answer equals an already-normalized target (no re-normalizing).

    For contains, the target must appear in the normalized output not glued to letters or
    digits ("5" is not found in "15"). Used by :mod:`gpo_core.scoring.evaluation` with targets
    normalized once per example.
    """
    if parsed is None:
        return False
    if answer_type == "contains":
        pattern = r"(?<![a-z0-9])" + re.escape(normalized_target) + r"(?![a-z0-9])"
        return re.search(pattern, parsed) is not None
    return parsed == normalized_target


def is_correct(parsed: str | None, target: str, answer_type: str) -> bool:
    """Whether the extracted answer ``parsed`` (from :func:`extract_answer`) scores 1.

    target: the raw gold target. ``None`` (no answer found) is always wrong.
    Numbers compare by exact decimal value (``"12.0" == "12"``).
    Raises :class:`ConfigError` for an unknown answer type and :class:`ValueError` for a
    target that is not an answer of that type.
    """
    return matches_target(parsed, normalize_target(target, answer_type), answer_type)
