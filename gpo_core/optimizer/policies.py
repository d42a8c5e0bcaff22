"""Decision policies: which candidate of a step becomes the next prompt.

A policy is the seam between proposing candidates and moving the run: auto-run, "Accept
best" and the CLI all ask the run's policy (``OptimizerSettings.policy``), so every
decision path honours the same rules. Candidates that can never be chosen, by any policy:
rejected by the user, not scored on dev, or still missing answers after the step's retries
(``incomplete``); see :func:`eligible`.

Registered by name in :data:`POLICIES`:

- ``paper``: the best-scoring candidate whose text was never chosen before, even if it
  scores below the current prompt (GPO, Tang et al. 2024, Sec. 3; reference code
  ``src/optimization/optimize.py`` keeps the best new prompt of each step). Ties go to the
  earlier candidate.
"""

from __future__ import annotations

from typing import Callable, Protocol

from gpo_core.runs.records import CandidateRecord, RunState, StepRecord

__all__ = ["DecisionPolicy", "POLICIES", "PaperPolicy", "eligible", "get_policy", "norm_text"]


def norm_text(text: str) -> str:
    """Text as compared for "the same prompt": whitespace collapsed, lower case."""
    return " ".join(text.split()).lower()


def eligible(step: StepRecord, state: RunState) -> list[CandidateRecord]:
    """Candidates of ``step`` any policy may choose: scored on dev (not failed, not
    incomplete, not a duplicate or over-budget drop without a score), not rejected by the
    user, and whose text was never chosen before in this run. Order: as proposed."""
    chosen = {norm_text(e.prompt) for e in state.trajectory if e.chosen}
    return [c for c in step.candidates
            if c.dev_accuracy is not None and c.status in ("scored", "duplicate") and not c.rejected
            and norm_text(c.text) not in chosen]


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
        pool = eligible(step, state)
        if not pool:
            return None
        best = max(c.dev_accuracy or 0.0 for c in pool)
        return next(c for c in pool if (c.dev_accuracy or 0.0) == best)


#: Decision policies by name (the settings' ``policy`` field and ``--policy``).
POLICIES: dict[str, Callable[[], DecisionPolicy]] = {"paper": PaperPolicy}


def get_policy(name: str) -> DecisionPolicy:
    """The registered policy ``name``; KeyError names the known ones."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise KeyError(f"unknown decision policy {name!r}; known: {', '.join(POLICIES)}") from None
