"""Candidates that win by leaking data: copying exemplar or dev text, or naming an answer label.

On a small dev set a candidate can score well for the wrong reason. On real MMLU subjects
"The answer is (D)" won by making the task model answer D to everything; an optimizer that
sees exemplars may paste one of them into the instruction. Each candidate is checked when
it is proposed and gets flags (``CandidateRecord.flags``, with one line each in
``flag_notes``); with ``OptimizerSettings.drop_flagged`` a flagged candidate is dropped
unscored (status "flagged"), never silently: it stays in the step with its reason.

The rules (ours):

- ``copies-data``: the candidate shares a run of :data:`COPY_NGRAM` (8) words with the input
  or target of an exemplar (the run's exemplar pool) or a dev example. Words are lower-cased
  ``\\w+`` tokens, so case and punctuation do not hide a copy. Not counted: word runs of the
  starting instruction (the user wrote them) and task boilerplate, i.e. runs found in
  :data:`BOILERPLATE_EXAMPLES` (3) or more of those examples (a question template or a table
  header the examples share is the task's format, not an example). 8 words is long enough
  that an instruction rarely shares it with one example by chance, and short enough to catch
  a pasted sentence. On BIG-Bench Hard (benchmarks/leak_flags.py) this flags none of 27 task
  templates and common instructions and catches every planted copy and label.
- ``names-label``: the candidate names one answer label as THE answer: an answering word
  ("answer", "output", "respond", "reply", "choose", "select", "pick", "say", "return",
  "label", "go with"), up to four filler words ("is", "with", "always", "the", "option",
  "letter", ...), then one label of the task's label set, and neither a list of labels
  ("(A) or (B)", "yes or no", "A, B, C") nor a condition ("yes if ...") after it.
  "The answer is (D)", "Answer B.", "always say yes" are flagged; "Answer with yes or no",
  "Choose (A), (B), (C) or (D)", "Say yes if the number is even" are not. The label set is
  the distinct targets of the run's exemplar pool and dev examples when there are at most
  :data:`MAX_LABELS` of them (a classification task); letter labels ("(A)", "D") match
  upper case only, word labels ("yes", "valid") in any case. Numeric labels are skipped
  ("Answer with 2 decimals" is no leak), so number tasks get no label check.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["BOILERPLATE_EXAMPLES", "COPIES_DATA", "COPY_NGRAM", "FLAG_LABELS", "LeakChecker", "MAX_LABELS",
           "NAMES_LABEL", "label_set", "words"]

#: Words in a row a candidate must share with one example's text to count as copying it.
COPY_NGRAM = 8
#: A word run found in at least this many examples is the task's format (boilerplate), not a copy.
BOILERPLATE_EXAMPLES = 3
#: A task with more distinct targets than this has no label set (not a classification task).
MAX_LABELS = 12
COPIES_DATA = "copies-data"
NAMES_LABEL = "names-label"
#: Each flag as the app shows it (badge text).
FLAG_LABELS = {COPIES_DATA: "copies exemplar or dev text", NAMES_LABEL: "names an answer label"}

_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"^\(?([A-Z])\)?$")
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(\.\d+)?$")
_CUE = r"(?i:\b(?:answers?|output|respond|response|reply|choose|select|pick|say|return|label|go\s+with)\b)"
_FILLER = (r"(?i:is|was|should|must|will|be|always|only|just|simply|with|the|a|an|option|choice|letter|final|"
           r"correct|right|best|as)")
_QUOTE = "[\"'\u201c\u201d\u2018\u2019]?"


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``) of ``text``, the unit of the copy check."""
    return [w.lower() for w in _WORD.findall(text)]


def _ngrams(ws: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def label_set(targets: Iterable[str]) -> tuple[list[str], list[str]]:
    """The task's answer labels from its targets: ``(letters, word_labels)``. Letters are
    option letters ("(D)" or "D" -> "D"); word labels are lower-cased ("Yes" -> "yes").
    Both empty when there are more than :data:`MAX_LABELS` distinct targets; numeric targets
    are left out."""
    distinct = {" ".join(t.split()) for t in targets if t and t.strip()}
    if not distinct or len(distinct) > MAX_LABELS:
        return [], []
    letters, labels = set(), set()
    for t in distinct:
        m = _LETTER.match(t)
        if m:
            letters.add(m.group(1))
        elif not _NUMBER.match(t):
            labels.add(t.lower())
    return sorted(letters), sorted(labels)


def _label_alternation(letters: list[str], labels: list[str]) -> str | None:
    alts = []
    if letters:
        cls = "".join(letters)
        alts.append(rf"\([{cls}]\)|\b[{cls}]\b")
    for lab in sorted(labels, key=len, reverse=True):
        alts.append(r"(?i:\b" + r"\s+".join(re.escape(w) for w in lab.split()) + r"\b)")
    return "|".join(alts) if alts else None


@dataclass(frozen=True)
class _Source:
    where: str
    text: str


#: The checkers of the last few runs seen by :meth:`LeakChecker.for_run`, newest first.
_RECENT: list[tuple[list, list, str, LeakChecker]] = []
_RECENT_LOCK = threading.Lock()


class LeakChecker:
    """Checks candidates of one run for the two leaks (see the module docstring).

    examples: ``{"input", "target"}`` dicts of the run's exemplar pool and dev split, each
    with a ``where`` label for the notes ("exemplar 3", "dev example 5"), given as
    ``(where, example)`` pairs. initial_instruction: the user's starting instruction (its word
    runs never count as copied). n: words in a row (default :data:`COPY_NGRAM`).
    """

    def __init__(self, examples: Iterable[tuple[str, Mapping[str, str]]], initial_instruction: str = "",
                 n: int = COPY_NGRAM):
        self.n = n
        seen: dict[tuple[str, ...], str] = {}
        counts: dict[tuple[str, ...], int] = {}
        targets: list[str] = []
        for where, ex in examples:
            grams: set[tuple[str, ...]] = set()
            for part in ("input", "target"):
                text = str(ex.get(part, ""))
                for g in _ngrams(words(text), n):
                    grams.add(g)
                    seen.setdefault(g, f"{where} ({part})")
            for g in grams:
                counts[g] = counts.get(g, 0) + 1
            targets.append(str(ex.get("target", "")))
        own = _ngrams(words(initial_instruction), n)
        self._where = {g: w for g, w in seen.items() if g not in own and counts.get(g, 0) < BOILERPLATE_EXAMPLES}
        letters, labels = label_set(targets)
        alt = _label_alternation(letters, labels)
        self.labels = [f"({x})" for x in letters] + labels
        self._label_re = None
        if alt:
            label = rf"{_QUOTE}(?P<label>{alt}){_QUOTE}"
            not_list = rf"(?!\s*(?:,|/|\bor\b|\band\b|\bto\b|\bthrough\b|-|\u2013)\s*{_QUOTE}(?:{alt}))"
            not_cond = r"(?!\s*,?\s*(?i:if|when|unless|whenever|only\s+if)\b)"
            self._label_re = re.compile(rf"{_CUE}(?:\s*[:=\-]?\s*(?:{_FILLER})\b){{0,4}}\s*[:=\-]?\s*{label}"
                                        rf"{not_list}{not_cond}")

    @classmethod
    def for_run(cls, splits: Mapping[str, list], initial_instruction: str = "") -> LeakChecker:
        """The checker of a run from its saved splits (``RunState.splits``): the exemplar
        pool ("exemplars", else "train") and the dev split."""
        pool = splits.get("exemplars") or splits.get("train") or []
        dev = splits.get("dev") or []
        # The index over a large pool takes seconds to build: build it once per run. The
        # split lists are never changed in place during a run, so they are keyed by identity
        # (and held, so an id is never reused while its entry lives).
        with _RECENT_LOCK:
            for key_pool, key_dev, key_instr, checker in _RECENT:
                if key_pool is pool and key_dev is dev and key_instr == initial_instruction:
                    return checker
        pairs = [(f"exemplar {i + 1}", e) for i, e in enumerate(pool)]
        pairs += [(f"dev example {i + 1}", e) for i, e in enumerate(dev)]
        checker = cls(pairs, initial_instruction)
        with _RECENT_LOCK:
            _RECENT.insert(0, (pool, dev, initial_instruction, checker))
            del _RECENT[4:]
        return checker

    def copied(self, text: str) -> str | None:
        """The note of the first copied word run of ``text``, or None: 'shares "w1 ... w8"
        with dev example 3 (input)'."""
        ws = words(text)
        for i in range(len(ws) - self.n + 1):
            g = tuple(ws[i:i + self.n])
            where = self._where.get(g)
            if where is not None:
                return f'shares "{" ".join(g)}" ({self.n} words in a row) with {where}'
        return None

    def named_label(self, text: str) -> str | None:
        """The note of the first phrase of ``text`` naming one answer label as the answer, or
        None: 'names the label (D) as the answer: "The answer is (D)"'."""
        if self._label_re is None:
            return None
        m = self._label_re.search(text)
        if m is None:
            return None
        label = m.group("label").strip()
        return f'names the label {label} as the answer: "{" ".join(m.group(0).split())}"'

    def check(self, text: str) -> tuple[list[str], list[str]]:
        """``(flags, notes)`` of a candidate text: flags from :data:`COPIES_DATA` and
        :data:`NAMES_LABEL` (in that order, each at most once), one note per flag."""
        flags: list[str] = []
        notes: list[str] = []
        copy = self.copied(text)
        if copy:
            flags.append(COPIES_DATA)
            notes.append(f"{COPIES_DATA}: {copy}")
        label = self.named_label(text)
        if label:
            flags.append(NAMES_LABEL)
            notes.append(f"{NAMES_LABEL}: {label}")
        return flags, notes
