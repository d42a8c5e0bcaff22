"""One optimization step as the Optimize page shows it: the update direction (retrieved
trajectory prompts), the candidates with their edit distance, budget, tokens and state, the
optimizer's replies, and what was decided."""

from __future__ import annotations

import pandas as pd

from gpo_core.optimizer.edits import DiffSegment, word_diff
from gpo_core.optimizer.overfit import is_test_hidden
from gpo_core.runs.records import CandidateRecord, RunState, StepRecord
from gpo_core.studio.views.markup import escape_markdown
from gpo_core.studio.views.paired_view import p_text, paired_text
from gpo_core.studio.views.paired_view import verdict as paired_verdict
from gpo_core.studio.views.uncertainty import accuracy_from, candidate_dev

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
    "duplicate of …", "over budget (not scored)", "failed", "flagged, dropped unscored",
    "raced out after N dev examples", "incomplete (…)", or "scored"."""
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
    if cand.status == "flagged":
        return "flagged, dropped unscored"
    if cand.status == "raced_out":
        return f"raced out after {cand.raced_out_after} dev examples" if cand.raced_out_after else "raced out"
    if cand.status == "incomplete":
        return f"incomplete ({cand.dev_errors} of {cand.dev_n} dev calls failed)"
    return "scored"


#: How each leak flag (gpo_core.optimizer.leaks) reads on a candidate's badge.
FLAG_LABELS = {"copies-data": "copies data", "names-label": "names a label"}


def flag_badges(cand: CandidateRecord) -> str:
    """Markdown badges of a candidate's leak flags (":orange-badge[copies data]",
    ":orange-badge[names a label]"), "" when it has none."""
    return " ".join(f":orange-badge[{FLAG_LABELS.get(f, escape_markdown(f))}]" for f in cand.flags)


def candidates_frame(step: StepRecord) -> pd.DataFrame:
    """One row per candidate: id, dev accuracy (%) with its 95% Wilson interval ("41–79%")
    and the dev examples answered, the paired comparison with the current prompt (fixed,
    broken, McNemar p), edit distance (words), budget (words), whether it is over budget,
    tokens (text: "cached · …" for cached scoring), state, origin and the text."""
    rows = []
    for c in step.candidates:
        acc = candidate_dev(c)
        rows.append({"candidate": c.id,
                     "dev accuracy": None if c.dev_accuracy is None else round(100 * c.dev_accuracy, 1),
                     "95% interval": acc.band() if acc is not None else "",
                     "dev n": acc.answered if acc is not None else None,
                     "fixed": c.fixed, "broken": c.broken,
                     "McNemar p": None if c.p_value is None else round(c.p_value, 4),
                     "edit distance": c.edit_distance, "budget": step.budget,
                     "over budget": c.edit_distance > step.budget, "tokens": candidate_tokens_text(c),
                     "state": candidate_state(c, step), "flags": ", ".join(FLAG_LABELS.get(f, f) for f in c.flags),
                     "origin": c.origin, "text": c.text})
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


CANDIDATE_COLUMNS = ["candidate", "dev accuracy", "95% interval", "dev n", "fixed", "broken", "McNemar p",
                     "edit distance", "budget", "over budget", "tokens", "state", "flags", "origin", "text"]


def optimizer_calls_frame(step: StepRecord) -> pd.DataFrame:
    """The optimizer samples of a step: reply, how candidates were extracted (or why not)."""
    rows = [{"sample": c.sample_index, "extraction": c.extraction, "reason": c.reason or "",
             "candidates": ", ".join(c.candidate_ids), "tokens": c.prompt_tokens + c.completion_tokens,
             "error": c.error or "", "reply": c.reply} for c in step.optimizer_calls]
    return pd.DataFrame(rows, columns=["sample", "extraction", "reason", "candidates", "tokens", "error", "reply"])


def decision_text(step: StepRecord, state: RunState | None = None) -> str:
    """One line (plain text) about what was decided in a step, accuracies with their 95%
    interval ("dev 62.5% [41–79%], test 50.0% [22–78%]"; the test interval needs ``state``
    for the test split's size; "test hidden (blind test)" while the run's blind test is)
    and, for a chosen candidate, its paired comparison with the
    prompt it replaced ("fixes 2, breaks 0, McNemar p = 0.5")."""
    if step.decision is None:
        return f"Step {step.step} is waiting for your decision."
    d = step.decision
    label = decision_label(d.kind)
    if d.candidate_id:
        c = step.candidate(d.candidate_id)
        acc = candidate_dev(c)
        test = ""
        if step.chosen_test_accuracy is not None and state is not None and is_test_hidden(state):
            test = ", test hidden (blind test)"
        elif step.chosen_test_accuracy is not None:
            n_test = (len(state.splits.get("test") or []) - c.test_errors) if state is not None else None
            t_acc = accuracy_from(step.chosen_test_accuracy, n_test) if n_test is not None else None
            test = f", test {t_acc.text()}" if t_acc is not None else f", test {100 * step.chosen_test_accuracy:.1f}%"
        paired = ""
        if c.p_value is not None and c.fixed is not None and c.broken is not None:
            paired = f"; vs the prompt before: fixes {c.fixed}, breaks {c.broken}, McNemar {p_text(c.p_value)}"
        dev = acc.text() if acc is not None else "–"
        return f"Step {step.step}: {label} {c.id} (dev {dev}{test}, {c.edit_distance} words edited{paired})."
    note = f": {d.note.rstrip('.')}" if d.note else ""
    return f"Step {step.step}: {label}{note}."


def candidate_numbers_markdown(step: StepRecord, cand: CandidateRecord, alpha: float) -> str:
    """The numbers of a candidate card as Streamlit Markdown, two lines: edit distance,
    budget, dev accuracy with its 95% interval and sample size, tokens; then the paired
    comparison with the step's current prompt (fixed, broken, McNemar p, verdict), green
    when significantly better, red when worse, gray otherwise. Every value is escaped."""
    acc = candidate_dev(cand)
    dev = acc.sized("dev") if acc is not None else "–"
    first = (f":gray[Edit distance {cand.edit_distance} words (budget {step.budget}) · dev accuracy "
             f"{escape_markdown(dev)} · tokens (dev scoring) {escape_markdown(candidate_tokens_text(cand))}]")
    verdict_ = paired_verdict(cand, alpha)
    color = {"significantly better": "green", "significantly worse": "red"}.get(verdict_, "gray")
    if color == "gray" and cand.fixed is not None and cand.broken is not None and cand.broken > cand.fixed:
        color = "orange"
    out = f"{first}  \n:{color}[{escape_markdown(paired_text(cand, alpha))}]"
    if cand.race_note:
        out += f"  \n:gray[Racing: {escape_markdown(cand.race_note)}]"
    for note in cand.flag_notes:
        out += f"  \n:orange[{escape_markdown(note)}]"
    return out
