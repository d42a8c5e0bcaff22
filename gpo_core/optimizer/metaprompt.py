"""Builds the meta-prompt of GPO's generation-based update method (Tang et al. 2024,
Sec. 3.3) in one of the layouts of :mod:`gpo_core.optimizer.templates`.

GPO layout, parts in the reference code's order (``generate_without_gradient.py``, with the
``w_lr`` step-size sentence inserted before the last line): task line, retrieved prompts
with scores, current prompt, how to read the exemplars, the exemplars, the request, the
edit budget, the answer tags.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gpo_core.optimizer import templates as T
from gpo_core.optimizer.direction import Retrieved
from gpo_core.optimizer.failure_feedback import Failure, format_failures
from gpo_core.scoring.task_prompt import render_task_prompt
from gpo_core.tasks.task import Example

__all__ = ["build_meta_prompt", "exemplar_input", "pick_exemplars"]


def pick_exemplars(pool: list[Example], n: int, rng: random.Random) -> list[Example]:
    """``n`` exemplars drawn without replacement from ``pool`` with the given seeded rng
    (fewer if the pool is smaller). The order is the pool's (as the reference sorts its
    sampled format indices)."""
    if n <= 0 or not pool:
        return []
    picked = set(rng.sample(range(len(pool)), min(n, len(pool))))
    return [e for i, e in enumerate(pool) if i in picked]


def exemplar_input(question: str, position: str, layout: str) -> str:
    """The exemplar input with ``<Prompt>`` at the instruction position. GPO layout: as
    the reference renders it without "Q:"/"A:" labels except at A_begin ("question\\n<Prompt>"
    at Q_end, "<Prompt>\\nquestion" at Q_begin and before_Q, "Q: question\\nA: <Prompt>" at
    A_begin); other layouts: as the task model sees it (:func:`render_task_prompt`)."""
    if layout != "gpo":
        return render_task_prompt(T.PLACEHOLDER, question, position)
    if position == "A_begin":
        return f"Q: {question}\nA: {T.PLACEHOLDER}"
    if position in ("Q_begin", "before_Q"):
        return f"{T.PLACEHOLDER}\n{question}"
    return f"{question}\n{T.PLACEHOLDER}"


def build_meta_prompt(*, retrieved: list[Retrieved], current_prompt: str, exemplars: list[Example],
                      position: str, budget: int | None, layout: str = "gpo",
                      rejected: Sequence[str] = (), failures: Sequence[Failure] = ()) -> str:
    """The meta-prompt text sent to the optimizer model.

    retrieved: trajectory prompts in display order (scores shown 0-100); exemplars: task
    examples, their input with ``<Prompt>`` at ``position`` (see :func:`exemplar_input`);
    budget: edit budget in words, or None for no budget sentence (the "no edit budget"
    ablation). layout: a name of :data:`gpo_core.optimizer.templates.LAYOUTS`. rejected:
    texts of candidates the user rejected (empty: none shown); a retrieved prompt among
    them is marked "(rejected by the user)" in place, the others are listed after the
    trajectory, each once. failures: wrong dev examples of the current prompt (failure
    feedback, :mod:`gpo_core.optimizer.failure_feedback`), placed after the current prompt and
    the exemplars, before the request; empty: none (the paper's setting, text unchanged).
    Raises KeyError for an unknown layout.
    """
    lay = T.LAYOUTS[layout]
    where = T.POSITION_WORDS.get(position, "")
    refused = {_norm(t): t for t in rejected}
    parts = [lay.header.format(placeholder=T.PLACEHOLDER)]
    trajectory = []
    for r in retrieved:
        mark = T.REJECTED_MARK if refused.pop(_norm(r.prompt), None) is not None else ""
        trajectory.append(lay.trajectory_item.format(prompt=r.prompt + mark, score=r.score))
    if trajectory:
        parts.append("\n\n".join(([lay.trajectory_header] if lay.trajectory_header else []) + trajectory))
    if refused:
        parts.append("\n".join([T.REJECTED_HEADER] + [T.REJECTED_ITEM.format(prompt=t) for t in refused.values()]))
    current = lay.current.format(current=current_prompt)
    examples = []
    if exemplars:
        examples.append(lay.exemplars_header.format(placeholder=T.PLACEHOLDER, where=where))
        examples += [lay.exemplar_item.format(rendered=exemplar_input(e.input, position, layout), target=e.target)
                     for e in exemplars]
    parts += (examples + [current]) if lay.exemplars_first else ([current] + examples)
    if failures:
        parts.append(format_failures(failures))
    closing = [lay.request.format(placeholder=T.PLACEHOLDER, where=where)]
    if budget is not None:
        closing.append(lay.budget.format(budget=budget))
    closing.append(lay.answer_format)
    parts.append("\n".join(closing))
    return "\n\n".join(parts)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()
