"""Candidate extraction from optimizer-model replies, degrading gracefully.

The meta-prompt asks for the new instruction between ``<INS>`` and ``</INS>``; strong
models comply, tiny ones (SmolLM2-135M) rarely do. We try, in order, and record which
rule produced the candidate so the UI can show it:

1. ``tags``        -- text between <INS> and </INS> (also <START>/<END>, [INS]/[/INS])
2. ``open_tag``    -- an opening tag without its closing tag: the text after it
3. ``labelled``    -- a line such as "New instruction: ..." / "Instruction: ..."
4. ``quoted``      -- the longest double-quoted span of at least 3 words
5. ``first_line``  -- the first non-empty line that is neither chatter ("Sure, here is ...")
                      nor an echo of the meta-prompt's scaffolding ("Q: ...", "Correct answer: ...")

A reply yielding nothing usable gives no candidate and a recorded reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpo_core.optimizer.templates import PLACEHOLDER

MIN_WORDS = 2
MAX_WORDS = 300

_TAG_PAIRS = [(r"<\s*INS\s*>", r"<\s*/\s*INS\s*>"), (r"<\s*START\s*>", r"<\s*/?\s*END\s*>"),
              (r"\[\s*INS\s*\]", r"\[\s*/\s*INS\s*\]")]
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:new|improved|updated|revised|better)?\s*(?:instruction|prompt)s?"
                    r"\s*(?:\*\*)?\s*[:：]\s*(.+)$", re.IGNORECASE)
_CHATTER = re.compile(r"^(sure|here|okay|ok|certainly|of course|i (?:have|would|will|can)"
                      r"|the (?:new|improved) instruction is)\b[^:]*[:.!]?\s*$", re.IGNORECASE)
# Lines that echo the meta-prompt's own scaffolding (exemplar questions, answers, scores)
# rather than propose an instruction; the tiny embedded model often does this.
_ECHO = re.compile(r"^\s*(?:Q|A|Score|Correct answer|Incorrect answer|Options?|Question|Answer|Task examples)\s*[:：]",
                   re.IGNORECASE)
_ANY_TAG = re.compile(r"</?\s*(?:INS|START|END)\s*>|\[/?\s*INS\s*\]", re.IGNORECASE)


@dataclass
class Extraction:
    """Result of parsing one optimizer reply: candidates (0 or 1 normally; several if the
    reply holds several tagged spans), method (rule used, or "none") and reason (why
    nothing was usable, else None)."""

    candidates: list[str]
    method: str
    reason: str | None = None


def clean_candidate(text: str) -> str:
    """Strip leftover tags, the placeholder, surrounding quotes/markdown and whitespace."""
    text = _ANY_TAG.sub(" ", text).replace(PLACEHOLDER, " ")
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip("*`").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _usable(text: str) -> str | None:
    n = len(text.split())
    if n < MIN_WORDS:
        return f"too short ({n} word{'s' if n != 1 else ''})"
    if n > MAX_WORDS:
        return f"too long ({n} words > {MAX_WORDS})"
    return None


def extract_candidates(reply: str) -> Extraction:
    """Parse an optimizer reply into candidate instructions (see module doc for the rules)."""
    if not reply or not reply.strip():
        return Extraction([], "none", "empty reply")
    last_problem = None
    for open_re, close_re in _TAG_PAIRS:
        spans = re.findall(open_re + r"(.*?)" + close_re, reply, flags=re.IGNORECASE | re.DOTALL)
        good = []
        for s in spans:
            c = clean_candidate(s)
            problem = _usable(c)
            if problem is None and c not in good:
                good.append(c)
            last_problem = problem or last_problem
        if good:
            return Extraction(good, "tags")
    for open_re, _ in _TAG_PAIRS:
        m = re.search(open_re + r"(.*)", reply, flags=re.IGNORECASE | re.DOTALL)
        if m:
            para = re.split(r"\n\s*\n", m.group(1).strip(), maxsplit=1)[0]
            c = clean_candidate(para)
            if _usable(c) is None:
                return Extraction([c], "open_tag")
    lines = [ln for ln in reply.splitlines() if ln.strip()]
    for ln in lines:
        m = _LABEL.match(ln)
        if m:
            c = clean_candidate(m.group(1))
            if _usable(c) is None:
                return Extraction([c], "labelled")
    quoted = [clean_candidate(q) for q in re.findall(r"\"([^\"\n]{3,})\"", reply)]
    quoted = [q for q in quoted if _usable(q) is None and len(q.split()) >= 3]
    if quoted:
        return Extraction([max(quoted, key=len)], "quoted")
    for ln in lines:
        if _CHATTER.match(ln.strip()) or _ECHO.match(ln):
            continue
        c = clean_candidate(ln)
        problem = _usable(c)
        if problem is None:
            return Extraction([c], "first_line")
        last_problem = problem
    return Extraction([], "none", f"no usable instruction in reply ({last_problem or 'only chatter'})")
