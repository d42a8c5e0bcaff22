"""Render the task model's prompt: the instruction placed around one question.

Source: the paper's reference code (GPO, Tang et al. 2024, arXiv 2402.17564), which reuses
OPRO's ``eval_utils.gen_prompt`` with ``include_qa=True``. The four instruction positions
(:data:`gpo_core.tasks.task.INSTRUCTION_POSITIONS`) produce, for instruction ``I`` and question ``Q``:

=========  ==========================================
before_Q   ``"I\\nQ: Q\\n\\nA:"``
Q_begin    ``"Q: I\\nQ\\n\\nA:"``
Q_end      ``"Q: Q\\nI\\n\\nA:"``   (the paper's BBH setting)
A_begin    ``"Q: Q\\n\\nA: I"``
=========  ==========================================

With an empty instruction every position gives ``"Q: Q\\n\\nA:"``.
"""

from __future__ import annotations

from gpo_core.errors import ConfigError
from gpo_core.tasks.task import INSTRUCTION_POSITIONS

#: Prompt with the instruction, per position (``str.format`` fields: instruction, question).
POSITION_TEMPLATES: dict[str, str] = {
    "before_Q": "{instruction}\nQ: {question}\n\nA:",
    "Q_begin": "Q: {instruction}\n{question}\n\nA:",
    "Q_end": "Q: {question}\n{instruction}\n\nA:",
    "A_begin": "Q: {question}\n\nA: {instruction}",
}

#: Prompt when the instruction is empty (identical for every position in the paper's code).
NO_INSTRUCTION_TEMPLATE = "Q: {question}\n\nA:"

assert set(POSITION_TEMPLATES) == set(INSTRUCTION_POSITIONS)


def render_task_prompt(instruction: str, question: str, position: str) -> str:
    """The task-model prompt for one question, exactly as the paper's code builds it.

    instruction: the prompt being scored (may be ``""``: no instruction).
    question: the example's input text. position: one of ``INSTRUCTION_POSITIONS``.
    Returns the prompt text ending in ``"A:"`` (or in the instruction for ``A_begin``).
    Raises :class:`ConfigError` (setting ``instruction_position``) for an unknown position.
    Source: OPRO/GPO ``gen_prompt(..., include_qa=True)``.
    """
    template = POSITION_TEMPLATES.get(position)
    if template is None:
        raise ConfigError(
            "instruction_position",
            f"unknown position {position!r}; expected one of {', '.join(INSTRUCTION_POSITIONS)}",
        )
    if not instruction:
        return NO_INSTRUCTION_TEMPLATE.format(question=question)
    return template.format(instruction=instruction, question=question)


def task_messages(
    instruction: str, question: str, position: str, system_prompt: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Chat messages for the task model: one user message holding the rendered prompt.

    Returns ``(("user", prompt),)``, or ``(("system", system_prompt), ("user", prompt))``
    when a non-empty ``system_prompt`` is given; ready for
    :class:`gpo_core.models.base.ChatRequest`.
    Raises :class:`ConfigError` for an unknown position (see :func:`render_task_prompt`).
    """
    prompt = render_task_prompt(instruction, question, position)
    if system_prompt:
        return (("system", system_prompt), ("user", prompt))
    return (("user", prompt),)
