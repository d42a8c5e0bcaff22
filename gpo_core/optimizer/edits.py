"""Word-level edit distance and diff between prompts (rapidfuzz Levenshtein over word tokens).

GPO measures the step size of an update in words (Tang et al. 2024, Sec. 3.3); we measure
what each candidate actually changed so it can be compared with the edit budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


def words(text: str) -> list[str]:
    """Whitespace word tokens of ``text`` (punctuation stays attached to its word)."""
    return text.split()


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b`` counted in words (insert, delete,
    substitute one word = 1). Source: rapidfuzz.distance.Levenshtein on token lists."""
    return Levenshtein.distance(words(a), words(b))


@dataclass(frozen=True)
class DiffSegment:
    """One run of a word diff: op in {"equal", "insert", "delete"}; text is space-joined words."""

    op: str
    text: str


def word_diff(old: str, new: str) -> list[DiffSegment]:
    """Word-level diff turning ``old`` into ``new`` (replacements split into delete + insert),
    from rapidfuzz's Levenshtein opcodes."""
    a, b = words(old), words(new)
    out: list[DiffSegment] = []
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            out.append(DiffSegment("equal", " ".join(a[op.src_start:op.src_end])))
        else:
            if op.src_end > op.src_start:
                out.append(DiffSegment("delete", " ".join(a[op.src_start:op.src_end])))
            if op.dest_end > op.dest_start:
                out.append(DiffSegment("insert", " ".join(b[op.dest_start:op.dest_end])))
    return out


def diff_text(segments: list[DiffSegment]) -> str:
    """A word diff as plain text: ``[-deleted-]`` and ``{+inserted+}`` (git word-diff style),
    unchanged words as they are."""
    out = []
    for seg in segments:
        if seg.op == "delete":
            out.append(f"[-{seg.text}-]")
        elif seg.op == "insert":
            out.append(f"{{+{seg.text}+}}")
        else:
            out.append(seg.text)
    return " ".join(out)
