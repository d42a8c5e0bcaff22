"""Decision policies: which candidate of a step becomes the next prompt.

A policy is the seam between proposing candidates and moving the run: auto-run, "Accept
best" and the CLI all ask the run's policy (``OptimizerSettings.policy``), so every
decision path honours the same rules. Candidates that can never be chosen, by any policy:
rejected by the user (or whose text the user rejected), dropped unscored as flagged
(:mod:`gpo_core.optimizer.leaks`, ``drop_flagged``), not scored on dev, still missing
answers after the step's retries (``incomplete``), or chosen before; see :func:`eligible`.

Registered by name in :data:`POLICIES`:

- ``paper``: the best-scoring candidate whose text was never chosen before, even if it
  scores below the current prompt (GPO, Tang et al. 2024, Sec. 3; reference code
  ``src/optimization/optimize.py`` keeps the best new prompt of each step). Ties go to the
  earlier candidate.
- ``better`` (ours): as ``paper``, but only among candidates whose dev accuracy is higher
  than the step's current prompt's; with none the prompt stays ("no_candidate", with a note
  from :meth:`BetterPolicy.explain`).
- ``significant`` (ours): as ``better``, and only among candidates whose exact McNemar test
  against the current prompt on the dev examples both answered (``CandidateRecord.p_value``,
  :func:`gpo_core.stats.mcnemar_exact`) gives p < ``OptimizerSettings.alpha``. A candidate
  without a comparison (no kept records) is never significant.

A policy may have an ``explain(step, state)`` method: why it kept the prompt although some
candidate was eligible (the step's "no_candidate" note); :func:`explain_keep` asks it.

Early stopping (ours, ``OptimizerSettings.patience``): automatic runs stop once the last
``patience`` decided steps brought no significant gain (:func:`significant_gain`: the step
chose a prompt that fixed more dev examples than it broke against the prompt before it, with
exact McNemar p < alpha); :func:`early_stop_reason` says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gpo_core.runs.records import CandidateRecord, RunState, StepRecord

__all__ = ["BetterPolicy", "DecisionPolicy", "POLICIES", "PaperPolicy", "SignificantPolicy", "current_accuracy",
           "early_stop_reason", "eligible", "explain_keep", "explain_none", "get_policy", "ineligible_reason",
           "norm_text", "rejected_texts", "significant_gain", "steps_without_gain", "why_not"]


def norm_text(text: str) -> str:
    """Text as compared for "the same prompt": whitespace collapsed, lower case."""
    return " ".join(text.split()).lower()


def rejected_texts(state: RunState) -> list[str]:
    """Texts of every candidate the user rejected in the run (by hand or with "reject all"),
    each once (first spelling kept), oldest first."""
    seen: dict[str, str] = {}
    for s in state.steps:
        for c in s.candidates:
            if c.rejected:
                seen.setdefault(norm_text(c.text), c.text)
    return list(seen.values())


def why_not(c: CandidateRecord, chosen: set[str], refused: set[str]) -> str | None:
    """Why no policy may choose candidate ``c`` (None: it is eligible). ``chosen`` /
    ``refused``: normalized texts chosen before / rejected by the user in the run."""
    if c.rejected or norm_text(c.text) in refused:
        return "rejected by the user"
    if c.status == "flagged":
        return "dropped unscored: " + ("; ".join(c.flag_notes) or ", ".join(c.flags) or "flagged")
    if c.raced_out_after is not None:  # racing (gpo_core.optimizer.racing): scored on part of dev only
        return c.race_note or f"raced out after {c.raced_out_after} dev examples"
    if c.status in ("incomplete", "failed") or c.dev_errors:
        return f"{c.dev_errors} of {c.dev_n} dev calls failed" if c.dev_n else "its dev calls failed"
    if c.dev_accuracy is None or c.status not in ("scored", "duplicate"):
        return "not scored on dev"
    if norm_text(c.text) in chosen:
        return "chosen before"
    return None


def ineligible_reason(c: CandidateRecord, state: RunState) -> str | None:
    """Why no policy may choose candidate ``c`` in ``state`` ("rejected by the user",
    "1 of 8 dev calls failed", "not scored on dev", "chosen before"), or None."""
    chosen = {norm_text(e.prompt) for e in state.trajectory if e.chosen}
    return why_not(c, chosen, {norm_text(t) for t in rejected_texts(state)})


def eligible(step: StepRecord, state: RunState) -> list[CandidateRecord]:
    """Candidates of ``step`` any policy may choose: scored on dev with every dev call
    answered (not failed, not incomplete, not a duplicate, over-budget or flagged drop
    without a score), neither it nor its text rejected by the user anywhere in the run, and whose
    text was never chosen before in this run. Order: as proposed."""
    chosen = {norm_text(e.prompt) for e in state.trajectory if e.chosen}
    refused = {norm_text(t) for t in rejected_texts(state)}
    return [c for c in step.candidates if why_not(c, chosen, refused) is None]


def explain_none(step: StepRecord, state: RunState) -> str:
    """Why no candidate of ``step`` is eligible, for the step's decision note: e.g.
    "no eligible candidate (2 with failed dev calls, 1 rejected by the user); prompt unchanged"."""
    chosen = {norm_text(e.prompt) for e in state.trajectory if e.chosen}
    refused = {norm_text(t) for t in rejected_texts(state)}
    counts: dict[str, int] = {}
    for c in step.candidates:
        reason = why_not(c, chosen, refused) or "eligible"
        key = ("with failed dev calls" if "failed" in reason else
               "dropped as flagged" if reason.startswith("dropped unscored") else
               "raced out" if reason.startswith("raced out") else reason)
        counts[key] = counts.get(key, 0) + 1
    detail = ", ".join(f"{n} {why}" for why, n in counts.items())
    return f"no eligible candidate ({detail or 'none proposed'}); prompt unchanged"


class DecisionPolicy(Protocol):
    """Chooses the next prompt of a step. ``name``: registry key; ``label``: what the app
    shows; ``choose(step, state)``: the candidate to accept, or None to keep the prompt."""

    name: str
    label: str

    def choose(self, step: StepRecord, state: RunState) -> CandidateRecord | None: ...


class PaperPolicy:
    """GPO's rule: the best not-yet-chosen candidate by dev accuracy (ties: the earlier)."""

    name = "paper"
    label = "paper: best candidate not chosen before"

    def choose(self, step: StepRecord, state: RunState) -> CandidateRecord | None:
        """The eligible candidate with the highest dev accuracy, or None when none is."""
        return _best(eligible(step, state))


def _best(pool: list[CandidateRecord]) -> CandidateRecord | None:
    """The candidate of ``pool`` with the highest dev accuracy (ties: the earlier), or None."""
    if not pool:
        return None
    best = max(c.dev_accuracy or 0.0 for c in pool)
    return next(c for c in pool if (c.dev_accuracy or 0.0) == best)


def current_accuracy(step: StepRecord, state: RunState) -> float | None:
    """Dev accuracy in [0, 1] of ``step``'s current prompt (trajectory entry
    ``current_entry_id``), or None when the run has no such entry."""
    entry = next((e for e in state.trajectory if e.id == step.current_entry_id), None)
    return None if entry is None else entry.dev_accuracy


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.1f}%"


class BetterPolicy:
    """Only a candidate that beats the current prompt's dev accuracy (then the best such)."""

    name = "better"
    label = "better: only if better than the current prompt (ours)"

    def _better(self, step: StepRecord, state: RunState) -> list[CandidateRecord]:
        cur = current_accuracy(step, state)
        return [c for c in eligible(step, state)
                if c.dev_accuracy is not None and (cur is None or c.dev_accuracy > cur)]

    def choose(self, step: StepRecord, state: RunState) -> CandidateRecord | None:
        """The best eligible candidate scoring above the current prompt on dev, or None."""
        return _best(self._better(step, state))

    def explain(self, step: StepRecord, state: RunState) -> str:
        """Why the prompt stays: no eligible candidate beats the current prompt."""
        best = _best(eligible(step, state))
        return (f"no candidate scores above the current prompt on dev ({_pct(current_accuracy(step, state))}; "
                f"best eligible {_pct(best.dev_accuracy if best else None)}); prompt unchanged")


class SignificantPolicy(BetterPolicy):
    """Only a candidate significantly better than the current prompt: higher dev accuracy
    and exact McNemar p < alpha on the paired dev examples (then the best such)."""

    name = "significant"
    label = "significant: only if significantly better, McNemar p < alpha (ours)"

    def choose(self, step: StepRecord, state: RunState) -> CandidateRecord | None:
        """The best eligible candidate that is better and has p_value < alpha, or None."""
        alpha = state.settings.optimizer.alpha
        return _best([c for c in self._better(step, state) if c.p_value is not None and c.p_value < alpha])

    def explain(self, step: StepRecord, state: RunState) -> str:
        """Why the prompt stays: no better candidate, or none significantly better."""
        better = self._better(step, state)
        if not better:
            return super().explain(step, state)
        alpha = state.settings.optimizer.alpha
        tested = [c for c in better if c.p_value is not None]
        if not tested:
            return ("no better candidate could be compared example by example with the current prompt; "
                    "prompt unchanged")
        c = min(tested, key=lambda x: x.p_value or 1.0)
        return (f"no candidate is significantly better than the current prompt (best: {c.id}, "
                f"{c.fixed} fixed / {c.broken} broken, McNemar p = {c.p_value:.3g} >= alpha = {alpha:g}); "
                "prompt unchanged")


def explain_keep(policy: DecisionPolicy, step: StepRecord, state: RunState) -> str:
    """The note of a step where ``policy`` chose nothing: the policy's own reason when some
    candidate was eligible and it has ``explain``, else :func:`explain_none`."""
    explain = getattr(policy, "explain", None)
    if explain is not None and eligible(step, state):
        return explain(step, state)
    return explain_none(step, state)


def significant_gain(step: StepRecord, state: RunState) -> bool:
    """Whether decided ``step`` brought a significant gain: it chose a prompt (auto or by
    hand) that, on the dev examples both answered, fixed more than it broke against the
    step's current prompt with exact McNemar p < ``alpha`` (``CandidateRecord.fixed``,
    ``broken``, ``p_value``). A kept prompt, "reject all", or a choice without a paired
    comparison is no gain."""
    d = step.decision
    if d is None or not d.candidate_id:
        return False
    try:
        c = step.candidate(d.candidate_id)
    except KeyError:
        return False
    if c.p_value is None or c.fixed is None or c.broken is None:
        return False
    return c.fixed > c.broken and c.p_value < state.settings.optimizer.alpha


def steps_without_gain(state: RunState) -> int:
    """How many of the run's last decided steps in a row brought no significant gain
    (:func:`significant_gain`); 0 when the last one did or no step is decided."""
    n = 0
    for step in reversed(state.decided_steps):
        if significant_gain(step, state):
            break
        n += 1
    return n


def early_stop_reason(state: RunState) -> str | None:
    """Why an automatic run must stop now, or None: with ``patience`` N > 0, the last N
    decided steps brought no significant gain. One line, e.g. "stopped early: 3 steps
    without a significant gain (p < 0.05): steps 2-4 kept a prompt or chose one not
    significantly better than the prompt before it; 2 of 6 steps not run"."""
    cfg = state.settings.optimizer
    if cfg.patience <= 0:
        return None
    n = steps_without_gain(state)
    if n < cfg.patience:
        return None
    decided = state.decided_steps
    first, last = decided[-n].step, decided[-1].step
    span = f"step {last}" if first == last else f"steps {first}-{last}"
    left = max(0, cfg.steps - len(decided))
    return (f"stopped early: {n} step{'s' if n != 1 else ''} without a significant gain (p < {cfg.alpha:g}): "
            f"{span} kept a prompt or chose one not significantly better than the prompt before it; "
            f"{left} of {cfg.steps} steps not run")


#: Decision policies by name (the settings' ``policy`` field and ``--policy``).
POLICIES: dict[str, Callable[[], DecisionPolicy]] = {"paper": PaperPolicy, "better": BetterPolicy,
                                                    "significant": SignificantPolicy}


def get_policy(name: str) -> DecisionPolicy:
    """The registered policy ``name``; KeyError names the known ones."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise KeyError(f"unknown decision policy {name!r}; known: {', '.join(POLICIES)}") from None
