"""Builds the meta-prompt for GPO's generation-based update method (Tang et al. 2024, Sec. 3.3)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from gpo_core.optimizer import templates as T
from gpo_core.optimizer.direction import Retrieved
from gpo_core.scoring.task_prompt import render_task_prompt
from gpo_core.tasks.task import Example


def pick_exemplars(pool: list[Example], n: int, rng: random.Random) -> list[Example]:
    """``n`` exemplars drawn without replacement from ``pool`` with the given seeded rng
    (fewer if the pool is smaller)."""
    if n <= 0 or not pool:
        return []
    return rng.sample(pool, min(n, len(pool)))


def build_meta_prompt(*, retrieved: list[Retrieved], current_prompt: str, exemplars: list[Example],
                      position: str, budget: int | None, layout: str = "gpo_studio",
                      rejected: Sequence[str] = ()) -> str:
    """The meta-prompt text sent to the optimizer model.

    retrieved: trajectory prompts in display order (scores shown 0-100); exemplars: task
    examples rendered with the ``<Prompt>`` placeholder at ``position``; budget: edit budget
    in words, or None for no budget sentence (the "no edit budget" ablation).
    layout: "gpo_studio" (our short wording) or "paper" (the reference code's, for benchmarks).
    rejected: texts of candidates the user rejected (empty: none shown). A retrieved prompt
    among them is marked "(rejected by the user)" in place; the others are listed under
    :data:`~gpo_core.optimizer.templates.REJECTED_HEADER` after the trajectory, each once.
    """
    paper = layout == "paper"
    header = T.PAPER_HEADER if paper else T.HEADER
    item = T.PAPER_TRAJECTORY_ITEM if paper else T.TRAJECTORY_ITEM
    ex_header = T.PAPER_EXEMPLARS_HEADER if paper else T.EXEMPLARS_HEADER
    ex_item = T.PAPER_EXEMPLAR_ITEM if paper else T.EXEMPLAR_ITEM
    current = T.PAPER_CURRENT if paper else T.CURRENT
    refused = {_norm(t): t for t in rejected}
    parts = [header]
    for r in retrieved:
        mark = T.REJECTED_MARK if refused.pop(_norm(r.prompt), None) is not None else ""
        parts.append(item.format(prompt=r.prompt + mark, score=r.score))
    if refused:
        parts.append(T.REJECTED_HEADER)
        parts += [T.REJECTED_ITEM.format(prompt=t) for t in refused.values()]
    if exemplars:
        parts.append(ex_header)
        parts += [ex_item.format(rendered=render_task_prompt(T.PLACEHOLDER, e.input, position), target=e.target)
                  for e in exemplars]
    parts.append(current.format(current=current_prompt))
    if paper:
        parts.append(T.PAPER_BUDGET.format(budget=budget if budget is not None else "any number of"))
    else:
        parts.append(T.BUDGET.format(budget=budget) if budget is not None else T.NO_BUDGET)
        parts.append(T.ANSWER_FORMAT)
    return "\n\n".join(parts)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()
