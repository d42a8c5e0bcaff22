"""The scoring protocols: how a prompt's answer to one example is obtained.

- ``reference`` (GPO's reference code, ``src/evaluation/eval_utils.py`` with
  ``include_qa=False`` and ``extract_final_answer_by_prompting_again``): the question and
  the instruction with no "Q:"/"A:" labels (``question\\ninstruction`` at Q_end), then a
  second turn that asks the task model for its final answer in the task's answer format
  ("answer re-prompt", at most :data:`SECOND_TURN_MAX_TOKENS` tokens); the second reply is
  parsed. Two calls per example. Default for BBH-style task folders.
- ``single``: the labelled prompt of :func:`gpo_core.scoring.task_prompt.render_task_prompt`
  and the first reply parsed. Half the calls. Default for uploaded files.

The second-turn wording is ours, after the reference's ``get_second_round_prompt``.
"""

from __future__ import annotations

import re

__all__ = ["PROTOCOLS", "SECOND_TURN_MAX_TOKENS", "plain_prompt", "second_turn"]

#: Scoring protocols by name (OptimizerSettings.protocol; "auto" picks by task source).
PROTOCOLS: tuple[str, ...] = ("reference", "single")
#: Completion cap of the answer re-prompt (the reference's ``max_decode_steps=100``).
SECOND_TURN_MAX_TOKENS = 100

_OPTION = re.compile(r"\(([A-R])\)")


def plain_prompt(instruction: str, question: str, position: str) -> str:
    """The reference protocol's first-turn prompt: ``question\\ninstruction`` at Q_end,
    ``instruction\\nquestion`` at Q_begin and before_Q (the reference has no before_Q
    without labels), ``Q: question\\nA: instruction`` at A_begin (labels kept: the
    instruction opens the answer). An empty instruction gives the question alone."""
    if not instruction:
        return question
    if position == "A_begin":
        return f"Q: {question}\nA: {instruction}"
    if position in ("Q_begin", "before_Q"):
        return f"{instruction}\n{question}"
    return f"{question}\n{instruction}"


def second_turn(answer_type: str, question: str) -> str:
    """The answer re-prompt for ``answer_type``: ask for the final answer alone, in the
    task's format (multiple choice: "an option among (A) and (<last option of the
    question>)", as the reference reads the last option from the question)."""
    if answer_type == "true_false":
        return 'Give your answer directly, using only "True" or "False".'
    if answer_type == "yes_no":
        return 'Give your answer directly, using only "Yes" or "No".'
    if answer_type == "valid_invalid":
        return 'Give your answer directly, using only "valid" or "invalid".'
    if answer_type == "multiple_choice":
        options = _OPTION.findall(question)
        last = f"({max(options)})" if options else "the last option"
        return f"So, sum up your answer as one option among (A) and {last}."
    if answer_type == "number":
        return "So, sum up your final answer as a single number and nothing else."
    return "So, give only your final answer, with nothing else."
