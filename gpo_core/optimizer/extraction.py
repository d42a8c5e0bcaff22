"""Candidate extraction from optimizer-model replies, and the filter that refuses echoes.

:func:`extract_for_layout` is what a step uses: the layout's answer tags first; then the
layout's fallback: ``whole_reply`` (GPO's reference code, ``extract_text`` in
``src/optimization/optimize.py``: without tags the whole reply is the prompt) or
``graceful`` (the rules of :func:`extract_candidates`). GPO layout replies give at most one
candidate (the first tagged span, as the reference); extra spans are dropped and counted.
Every candidate then passes :func:`echo_refusal`, which refuses text that reproduces the
meta-prompt's scaffolding, a field label ("Q:", "Output:", "Score:", "Current
instruction:"), a broken tag, or an exemplar's text; the rule and any refusal are recorded
per reply.

The graceful rules, for replies that ignore the tags (tiny models such as SmolLM2-135M
rarely use them), tried in order:

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
from collections.abc import Sequence
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
    reply holds several tagged spans, at most the ``limit`` asked for), method (rule used,
    or "none"), reason (why nothing was usable, or what was dropped, else None) and dropped
    (usable candidates left out because of the limit)."""

    candidates: list[str]
    method: str
    reason: str | None = None
    dropped: int = 0


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


def _dropped_note(n: int, limit: int) -> str:
    return f"{n} more candidate(s) in the reply dropped: at most {limit} a step"


def extract_candidates(reply: str, limit: int | None = None) -> Extraction:
    """Parse an optimizer reply into candidate instructions (see module doc for the rules);
    with ``limit``, at most that many (the first ones), the rest counted in ``dropped``."""
    if not reply or not reply.strip():
        return Extraction([], "none", "empty reply")
    last_problem = None
    for open_re, close_re in _TAG_PAIRS:
        spans = re.findall(open_re + r"(.*?)" + close_re, reply, flags=re.IGNORECASE | re.DOTALL)
        good: list[str] = []
        for s in spans:
            c = clean_candidate(s)
            problem = _usable(c)
            if problem is None and c not in good:
                good.append(c)
            last_problem = problem or last_problem
        if good:
            if limit is not None and len(good) > limit:
                extra = len(good) - limit
                return Extraction(good[:limit], "tags", _dropped_note(extra, limit), extra)
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


# ----------------------------------------------------------------------------- layouts and echoes

_LEADING_LABEL = re.compile(r"^\s*(?:\*\*)?\s*(?:new|improved|updated|revised|better)\s+(?:instruction|prompt)\s*"
                            r"(?:\*\*)?\s*[:：]\s*", re.IGNORECASE)
# Labels of the meta-prompt's and task prompt's fields. The short ones that an instruction
# may use in prose ("Prompt:", "Instruction:", "text:") count only at the start of the text, of
# a line or of a sentence; the others anywhere after a space ("... Output: (B)").
_FIELD_LABEL = re.compile(r"(?:(?:^|\n|[.!?]\s+)[*#>_`\s]*(Prompt|Instruction|text)"
                          r"|(?:^|\s)[*#>_`]*(Q|A|Input|Output|Score|Correct answer|Ground truth answer|"
                          r"Wrong answer|Why it is wrong|Current instruction|Current prompt))\s*[:：]", re.IGNORECASE)
_BROKEN_TAG = re.compile(r"</?\s*(?:INS|START|END|Prompt)\b|</|\[/?INS", re.IGNORECASE)
#: Words in a row a candidate may share with an exemplar or the meta-prompt's fixed wording.
MAX_SHARED_WORDS = 7


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def echo_refusal(candidate: str, *, scaffolding: Sequence[str] = (), exemplars: Sequence[str] = ()) -> str | None:
    """Why ``candidate`` must not be scored, or None when it is a plain instruction.

    Refused: a field label of a meta-prompt or task prompt at the start of the text, of a
    line or of a sentence ("Q:", "A:",
    "Input:", "Output:", "Score:", "Prompt:", "Correct answer:", "Current instruction:", and the
    failure feedback's "Wrong answer:", "Ground truth answer:", "Why it is wrong:");
    a leftover or broken answer tag ("</INS.", "<START"); more than
    :data:`MAX_SHARED_WORDS` words in a row copied from ``scaffolding`` (the layout's fixed
    sentences) or from ``exemplars`` (the exemplars' inputs and outputs shown to the
    optimizer model). A run of words that two or more exemplars share is the task's own
    wording (BBH navigate asks every example "If you follow these instructions, do you
    return to the starting point?"), not one example's content, so repeating it is no copy."""
    m = _FIELD_LABEL.search(candidate)
    if m:
        return f"echoes the field label '{m.group(1) or m.group(2)}:'"
    if _BROKEN_TAG.search(candidate):
        return "holds a leftover or broken tag"
    n = MAX_SHARED_WORDS + 1
    mine = _shingles(candidate, n)
    if mine:
        per_exemplar = [_shingles(text, n) for text in exemplars]
        seen: set[tuple[str, ...]] = set()
        task_wording: set[tuple[str, ...]] = set()
        for sh in per_exemplar:
            task_wording |= sh & seen
            seen |= sh
        for sh in per_exemplar:
            if (mine & sh) - task_wording:
                return f"copies more than {MAX_SHARED_WORDS} words in a row of an exemplar"
        for text in scaffolding:
            if mine & _shingles(text, n):
                return f"copies more than {MAX_SHARED_WORDS} words in a row of the meta-prompt's wording"
    return None


def extract_for_layout(reply: str, layout: str, *, scaffolding: Sequence[str] = (),
                       exemplars: Sequence[str] = (), limit: int | None = None) -> Extraction:
    """Extract the candidate(s) of one optimizer reply as the meta-prompt's ``layout``
    asked (see the module docstring), then refuse echoes (:func:`echo_refusal`).

    limit: at most this many candidates from the reply (a step keeps at most N, the
    ``--candidates`` setting); the others are counted in ``dropped`` and named in ``reason``.
    Returns an :class:`Extraction`: ``method`` is the rule used ("tags", "whole_reply" or a
    graceful rule; "refused" when every candidate was refused, "none" when nothing was
    found) and ``reason`` says why nothing is usable or what was dropped."""
    from gpo_core.optimizer.templates import LAYOUTS

    lay = LAYOUTS[layout]
    if not reply or not reply.strip():
        return Extraction([], "none", "empty reply")
    notes: list[str] = []
    if lay.fallback == "whole_reply":
        spans = re.findall(re.escape(lay.open_tag) + r"(.*?)" + re.escape(lay.close_tag), reply, flags=re.DOTALL)
        if spans:
            found, method = [clean_candidate(spans[0])], "tags"
            if len(spans) > 1:
                notes.append(f"{len(spans) - 1} more tagged span(s) dropped: one candidate per reply")
        else:
            start = reply.find(lay.open_tag)
            body = reply[start + len(lay.open_tag):] if start >= 0 else reply
            end = body.find(lay.close_tag)
            found, method = [clean_candidate(body if end < 0 else body[:end])], "whole_reply"
        found = [_LEADING_LABEL.sub("", c).strip() for c in found]
        problem = _usable(found[0])
        if problem:
            return Extraction([], "none", f"no usable instruction in reply ({problem})")
    else:
        ext = extract_candidates(reply)
        if not ext.candidates:
            return ext
        found, method = ext.candidates, ext.method
    kept, refusals = [], []
    for c in found:
        why = echo_refusal(c, scaffolding=scaffolding, exemplars=exemplars)
        if why is None:
            kept.append(c)
        elif len(refusals) < 3:
            refusals.append(f"refused {c[:60]!r}: {why}")
        else:
            refusals.append("refused")
    if len(refusals) > 3:  # one line per refusal for the first three, then a count
        refusals = refusals[:3] + [f"{len(refusals) - 3} more refused"]
    dropped = 0
    if limit is not None and len(kept) > limit:
        dropped = len(kept) - limit
        kept = kept[:limit]
        notes.append(_dropped_note(dropped, limit))
    if not kept:
        return Extraction([], "refused", "; ".join(refusals + notes))
    return Extraction(kept, method, "; ".join(refusals + notes) or None, dropped)
