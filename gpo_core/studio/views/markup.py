"""Text for Streamlit Markdown: escaping user text, word diffs, percentages, progress lines.

Every piece of user text that goes into Markdown is escaped by :func:`escape_markdown`, so a
prompt or an uploaded value is shown as text, never interpreted as Markdown or HTML.
"""

from __future__ import annotations

import string

from gpo_core.optimizer.edits import DiffSegment, diff_text

_MD_SPECIAL = set(string.punctuation)

#: What each progress phase of the engine means, for progress bars.
PHASE_LABELS = {
    "optimizer": "Sampling candidates from the optimizer model",
    "dev": "Scoring on the dev set",
    "test": "Scoring the chosen prompt on the test set",
}


def pct(x: float | None, digits: int = 1) -> str:
    """Accuracy in [0, 1] as a percentage string ("62.5%"), or "–" for None."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def escape_markdown(text: str) -> str:
    """Backslash-escape every ASCII punctuation character (CommonMark allows escaping all of
    them) and fold newlines into spaces, so Streamlit Markdown shows ``text`` literally:
    no emphasis, links, HTML, LaTeX or ``:color[...]`` directives from user text."""
    out = []
    for ch in text.replace("\r", " ").replace("\n", " "):
        out.append("\\" + ch if ch in _MD_SPECIAL else ch)
    return "".join(out)


def diff_markdown(segments: list[DiffSegment]) -> str:
    """A word diff as Streamlit Markdown: deleted words red and struck through, inserted
    words green and bold, unchanged words plain. Every segment's text is escaped first."""
    parts = []
    for seg in segments:
        text = escape_markdown(seg.text)
        if not text:
            continue
        if seg.op == "delete":
            parts.append(f":red-background[~~{text}~~]")
        elif seg.op == "insert":
            parts.append(f":green-background[**{text}**]")
        else:
            parts.append(text)
    return " ".join(parts) if parts else "*(no change)*"


diff_plain = diff_text  # the plain-text form lives with the diff (gpo_core.optimizer.edits)


def progress_text(phase: str, done: int, total: int) -> str:
    """A progress line such as "Scoring on the dev set: 12 / 64 calls"."""
    label = PHASE_LABELS.get(phase, phase)
    return f"{label}: {done} / {total} calls"


def progress_fraction(done: int, total: int) -> float:
    """done / total clipped to [0, 1] (0 when total is 0)."""
    return 0.0 if total <= 0 else max(0.0, min(1.0, done / total))


def job_progress_text(phase: str | None, done: int, total: int) -> str:
    """The progress line of a running job ("Starting…" before its first report)."""
    if phase is None:
        return "Starting (the first call may load the models)…"
    return progress_text(phase, done, total)
