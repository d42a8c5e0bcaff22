"""One optimization step as the Optimize page shows it: the update direction (retrieved
trajectory prompts), the candidates with their edit distance, budget, tokens and state, the
optimizer's replies, and what was decided."""

from __future__ import annotations

import pandas as pd

from gpo_core.optimizer.edits import DiffSegment, word_diff
from gpo_core.runs.records import CandidateRecord, StepRecord
from gpo_core.studio.views.markup import pct

#: How each decision kind reads in tables.
DECISION_LABELS = {
    "auto": "auto (best not yet chosen)",
    "accept": "accepted",
    "accept_edited": "accepted after editing",
    "reject_all": "rejected all, resampled",
    "no_candidate": "no usable candidate",
}


def decision_label(kind: str) -> str:
    """How a decision kind reads in tables ("accepted", "rejected all, resampled", ...)."""
    return DECISION_LABELS.get(kind, kind)


def retrieved_frame(step: StepRecord) -> pd.DataFrame:
    """The update direction of a step: each retrieved trajectory prompt with its dev score
    (0-100, as the meta-prompt shows it), its cosine similarity to the current prompt and
    why it was picked. Ordered as in the meta-prompt (best last)."""
    rows = [{"prompt": r.prompt, "dev score": r.score,
             "similarity": None if r.similarity is None else round(r.similarity, 3),
             "from step": r.step, "why": r.reason, "entry": r.entry_id} for r in step.retrieved]
    return pd.DataFrame(rows, columns=["prompt", "dev score", "similarity", "from step", "why", "entry"])


def candidate_diff(step: StepRecord, cand: CandidateRecord) -> list[DiffSegment]:
    """Word diff from the step's current prompt to the candidate."""
    return word_diff(step.current_prompt, cand.text)


def candidate_tokens(cand: CandidateRecord) -> int:
    """Tokens spent scoring the candidate on dev (prompt + completion)."""
    return cand.usage.total_tokens


def candidate_cached(cand: CandidateRecord) -> bool:
    """Whether the candidate's dev scoring was answered (at least partly) from the response
    cache: its usage counts cached calls."""
    return cand.usage.cached_calls > 0


def candidate_tokens_text(cand: CandidateRecord) -> str:
    """The candidate's dev-scoring tokens for people: "1,234" when the model answered every
    call; "cached · 1,234" when the response cache did (the tokens those calls cost when they
    were made: nothing is spent again); "1,234 + 800 cached (3 of 8 calls cached)" when it
    answered some. A cached candidate never reads as a free "0"."""
    u = cand.usage
    cached_tokens = getattr(u, "cached_tokens", 0)
    if u.cached_calls <= 0:
        return f"{u.total_tokens:,}"
    if u.cached_calls >= u.calls:
        tokens = cached_tokens or u.total_tokens
        return f"cached · {tokens:,}" if tokens else "cached"
    return f"{u.total_tokens:,} + {cached_tokens:,} cached ({u.cached_calls} of {u.calls} calls cached)"


def budget_badge(cand: CandidateRecord, step: StepRecord) -> str:
    """A Markdown badge: the candidate's measured edit distance against the step's budget."""
    if cand.edit_distance > step.budget:
        return f":red-badge[over budget: {cand.edit_distance} > {step.budget} words]"
    return f":green-badge[within budget: {cand.edit_distance} ≤ {step.budget} words]"


def schedule_text(budgets: list[int], current: int | None = None) -> str:
    """The edit-budget schedule as one Markdown line ("50 · 48 · **43** · …"), the budget of
    step ``current`` (1-based) in bold."""
    return " · ".join(f"**{b}**" if i == current else str(b) for i, b in enumerate(budgets, start=1))


def candidate_state(cand: CandidateRecord, step: StepRecord) -> str:
    """How a candidate stands: "chosen", "rejected" (by the user, or the whole attempt),
    "duplicate of …", "over budget (not scored)", "failed", or "scored"."""
    if step.decision is not None and step.decision.candidate_id == cand.id:
        return "chosen"
    if cand.rejected or (step.decision is not None and step.decision.kind == "reject_all"):
        return "rejected"
    if cand.status == "duplicate":
        return f"duplicate of {cand.duplicate_of}"
    if cand.status == "over_budget":
        return "over budget (not scored)"
    if cand.status == "failed":
        return "failed (every dev call failed)"
    return "scored"


def candidates_frame(step: StepRecord) -> pd.DataFrame:
    """One row per candidate: id, dev accuracy (%), edit distance (words), budget (words),
    whether it is over budget, tokens (text: "cached · …" for cached scoring), state,
    origin and the text."""
    rows = []
    for c in step.candidates:
        rows.append({"candidate": c.id,
                     "dev accuracy": None if c.dev_accuracy is None else round(100 * c.dev_accuracy, 1),
                     "edit distance": c.edit_distance, "budget": step.budget,
                     "over budget": c.edit_distance > step.budget, "tokens": candidate_tokens_text(c),
                     "state": candidate_state(c, step), "origin": c.origin, "text": c.text})
    return pd.DataFrame(rows, columns=["candidate", "dev accuracy", "edit distance", "budget", "over budget",
                                       "tokens", "state", "origin", "text"])


def optimizer_calls_frame(step: StepRecord) -> pd.DataFrame:
    """The optimizer samples of a step: reply, how candidates were extracted (or why not)."""
    rows = [{"sample": c.sample_index, "extraction": c.extraction, "reason": c.reason or "",
             "candidates": ", ".join(c.candidate_ids), "tokens": c.prompt_tokens + c.completion_tokens,
             "error": c.error or "", "reply": c.reply} for c in step.optimizer_calls]
    return pd.DataFrame(rows, columns=["sample", "extraction", "reason", "candidates", "tokens", "error", "reply"])


def decision_text(step: StepRecord) -> str:
    """One line (plain text) about what was decided in a step."""
    if step.decision is None:
        return f"Step {step.step} is waiting for your decision."
    d = step.decision
    label = decision_label(d.kind)
    if d.candidate_id:
        c = step.candidate(d.candidate_id)
        test = f", test {pct(step.chosen_test_accuracy)}" if step.chosen_test_accuracy is not None else ""
        return f"Step {step.step}: {label} {c.id} (dev {pct(c.dev_accuracy)}{test}, {c.edit_distance} words edited)."
    return f"Step {step.step}: {label}."
