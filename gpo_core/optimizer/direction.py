"""The optimization trajectory and the update direction (which earlier prompts to show).

GPO (Tang et al. 2024, Sec. 3.2): the update direction is the set of trajectory prompts
put into the meta-prompt. Strategies compared in the paper:

- relevance (GPO's choice): the newest prompt plus the k-1 earlier prompts most similar
  to the current prompt by sentence-embedding cosine similarity;
- recency: the k most recently added prompts;
- importance: the k prompts with the highest dev accuracy.

Strategies are registered by name in :data:`STRATEGIES`; :data:`SELECTION_STRATEGIES` lists
the names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from gpo_core.errors import ConfigError
from gpo_core.models.embeddings import Embedder


@dataclass
class TrajectoryEntry:
    """One scored prompt. id: position in the trajectory (0 = starting prompt).
    dev_accuracy in [0, 1]; step: the step that produced it (0 = start); parent: id of the
    prompt it was edited from (None for the start); chosen: it became the current prompt."""

    id: int
    prompt: str
    dev_accuracy: float
    step: int
    parent: int | None = None
    chosen: bool = False
    candidate_id: str | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: dict) -> TrajectoryEntry:
        return TrajectoryEntry(**d)


@dataclass
class Retrieved:
    """A trajectory entry selected for the meta-prompt, with why: similarity is the cosine
    similarity (in [-1, 1]) of its embedding to the current prompt's (None when the
    strategy does not compute it); reason is a short human-readable explanation."""

    entry_id: int
    prompt: str
    dev_accuracy: float
    step: int
    similarity: float | None
    reason: str

    @property
    def score(self) -> int:
        """Dev accuracy on the meta-prompt's 0-100 scale."""
        return round(100 * self.dev_accuracy)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: dict) -> Retrieved:
        return Retrieved(**d)


def _similarities(entries: list[TrajectoryEntry], current: str, embedder: Embedder) -> np.ndarray:
    vecs = embedder.embed([current] + [e.prompt for e in entries])
    return vecs[1:] @ vecs[0]


#: A selection strategy: ``(pool, k, newest, similarity by entry id) -> [(entry, reason)]``.
#: pool holds one entry per distinct prompt text; newest is the entry counted as "newest".
Strategy = Callable[[list[TrajectoryEntry], int, TrajectoryEntry, dict[int, "float | None"]],
                    list[tuple[TrajectoryEntry, str]]]


def _relevance(pool: list[TrajectoryEntry], k: int, newest: TrajectoryEntry,
               sim_of: dict[int, float | None]) -> list[tuple[TrajectoryEntry, str]]:
    """GPO's choice: the newest prompt plus the k-1 others most similar to the current one."""
    rest = sorted((e for e in pool if e.id != newest.id), key=lambda e: (-(sim_of[e.id] or 0.0), -e.id))
    return [(newest, "newest")] + [(e, "most similar") for e in rest[: k - 1]]


def _recency(pool: list[TrajectoryEntry], k: int, newest: TrajectoryEntry,
             sim_of: dict[int, float | None]) -> list[tuple[TrajectoryEntry, str]]:
    """The k most recently added prompts."""
    return [(e, "most recent") for e in sorted(pool, key=lambda e: -e.id)[:k]]


def _importance(pool: list[TrajectoryEntry], k: int, newest: TrajectoryEntry,
                sim_of: dict[int, float | None]) -> list[tuple[TrajectoryEntry, str]]:
    """The k prompts with the highest dev accuracy (ties: the later)."""
    return [(e, "highest dev accuracy") for e in sorted(pool, key=lambda e: (-e.dev_accuracy, -e.id))[:k]]


#: Selection strategies by name (the settings' ``selection``, ``--selection``).
STRATEGIES: dict[str, Strategy] = {"relevance": _relevance, "recency": _recency, "importance": _importance}
#: The strategy names, in the order the UI lists them.
SELECTION_STRATEGIES: tuple[str, ...] = tuple(STRATEGIES)
#: Strategies that cannot run without an embedder.
NEEDS_EMBEDDER: frozenset[str] = frozenset({"relevance"})


def _distinct(entries: list[TrajectoryEntry], newest_id: int | None) -> list[TrajectoryEntry]:
    """One entry per prompt text (duplicates are never re-scored, so several entries may
    share a text): the ``newest_id`` entry for its own text, else the earliest."""
    unique: dict[str, TrajectoryEntry] = {}
    for e in sorted(entries, key=lambda e: e.id):
        if e.prompt not in unique or e.id == newest_id:
            unique[e.prompt] = e
    return sorted(unique.values(), key=lambda e: e.id)


def select_update_direction(entries: list[TrajectoryEntry], current_prompt: str, *, k: int,
                            strategy: str = "relevance", embedder: Embedder | None = None,
                            newest_id: int | None = None, pool: str = "chosen",
                            order: str = "reference") -> list[Retrieved]:
    """Choose up to ``k`` trajectory entries to show the optimizer model.

    entries: the whole trajectory (any order). newest_id: the entry counted as "newest" for
    relevance, normally the current (chosen) prompt; it is kept even when an earlier entry
    has the same text (default: the highest id, i.e. the last prompt added).
    pool: "chosen" retrieves from the start prompt plus the prompt chosen at each step (the
    reference code's ``old_instructions_and_scores_eval``: the default), "all" from every
    scored prompt (ours). order: "reference" keeps the strategy's order (relevance: newest
    first, then by similarity, as ``relavance_selection.py``; recency: newest first;
    importance: best first), "score" lists by dev accuracy ascending (best last).
    Returns Retrieved items, one per distinct text. Similarity is computed for every
    strategy when an embedder is given, so the UI can show it. Raises ConfigError for
    k < 1, an unknown strategy (see :data:`STRATEGIES`), pool or order, or relevance
    without an embedder.
    """
    if k < 1:
        raise ConfigError("k", f"must be at least 1 (got {k})")
    if strategy not in STRATEGIES:
        raise ConfigError("selection",
                          f"unknown strategy {strategy!r}; choose one of {', '.join(SELECTION_STRATEGIES)}")
    if pool not in ("chosen", "all"):
        raise ConfigError("direction_pool", f"must be chosen or all, got {pool!r}")
    if order not in ("reference", "score"):
        raise ConfigError("direction_order", f"must be reference or score, got {order!r}")
    if pool == "chosen":
        entries = [e for e in entries if e.chosen or e.id == newest_id]
    if not entries:
        return []
    distinct = _distinct(entries, newest_id)
    if strategy in NEEDS_EMBEDDER and embedder is None:
        raise ConfigError("selection", f"{strategy} needs an embedder")
    sims = _similarities(distinct, current_prompt, embedder) if embedder is not None else None
    sim_of = {e.id: (float(sims[i]) if sims is not None else None) for i, e in enumerate(distinct)}
    newest = next((e for e in distinct if e.id == newest_id), distinct[-1])
    picked = STRATEGIES[strategy](distinct, k, newest, sim_of)
    out = [Retrieved(e.id, e.prompt, e.dev_accuracy, e.step, sim_of[e.id], reason) for e, reason in picked]
    if order == "score":
        out.sort(key=lambda r: (r.dev_accuracy, r.entry_id))
    return out
