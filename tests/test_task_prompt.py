"""Task-prompt rendering matches the paper's code (OPRO/GPO gen_prompt, include_qa=True)."""

import pytest

from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatRequest
from gpo_core.scoring.task_prompt import render_task_prompt, task_messages
from gpo_core.tasks.task import DEFAULT_INSTRUCTION, INSTRUCTION_POSITIONS

QUESTION = "Sort the following words alphabetically: List: oven {brace} apple"


def paper_gen_prompt(question: str, instruction: str, instruction_pos: str) -> str:
    """The branch structure of OPRO/GPO eval_utils.gen_prompt with include_qa=True."""
    prompt = ""
    if instruction_pos == "before_Q":
        if instruction:
            prompt += instruction + "\n"
        prompt += "Q: " + question
        prompt += "\n\nA:"
    elif instruction_pos == "Q_begin":
        if instruction:
            prompt += "Q: " + instruction + "\n"
        else:
            prompt += "Q: "
        prompt += question
        prompt += "\n\nA:"
    elif instruction_pos == "Q_end":
        prompt += "Q: " + question
        if instruction:
            prompt += "\n" + instruction + "\n\nA:"
        else:
            prompt += "\n\nA:"
    else:
        assert instruction_pos == "A_begin"
        prompt += f"Q: {question}\n\n"
        prompt += "A:"
        if instruction:
            prompt += f" {instruction}"
    return prompt


@pytest.mark.parametrize(
    "position, expected",
    [
        ("before_Q", "Let's think step by step.\nQ: What is 2+2?\n\nA:"),
        ("Q_begin", "Q: Let's think step by step.\nWhat is 2+2?\n\nA:"),
        ("Q_end", "Q: What is 2+2?\nLet's think step by step.\n\nA:"),
        ("A_begin", "Q: What is 2+2?\n\nA: Let's think step by step."),
    ],
)
def test_each_position_literal(position, expected):
    assert render_task_prompt(DEFAULT_INSTRUCTION, "What is 2+2?", position) == expected


@pytest.mark.parametrize("position", INSTRUCTION_POSITIONS)
@pytest.mark.parametrize("instruction", ["", DEFAULT_INSTRUCTION, "Answer with {x} only.\nBe brief."])
def test_matches_paper_code(position, instruction):
    assert render_task_prompt(instruction, QUESTION, position) == paper_gen_prompt(
        QUESTION, instruction, position
    )


@pytest.mark.parametrize("position", INSTRUCTION_POSITIONS)
def test_empty_instruction_is_plain_qa(position):
    assert render_task_prompt("", "Is it?", position) == "Q: Is it?\n\nA:"


def test_unknown_position_names_setting():
    with pytest.raises(ConfigError) as err:
        render_task_prompt("x", "q", "after_A")
    assert "instruction_position" in str(err.value)
    assert "after_A" in str(err.value)


def test_task_messages_single_user_message():
    msgs = task_messages("Be brief.", "What is 2+2?", "Q_end")
    assert msgs == (("user", "Q: What is 2+2?\nBe brief.\n\nA:"),)
    # usable as a ChatRequest (hashable tuple of pairs)
    assert ChatRequest(messages=msgs).messages[0][0] == "user"


def test_task_messages_with_system_prompt():
    msgs = task_messages("Be brief.", "Q?", "before_Q", system_prompt="You are terse.")
    assert msgs == (("system", "You are terse."), ("user", "Be brief.\nQ: Q?\n\nA:"))


def test_task_messages_unknown_position():
    with pytest.raises(ConfigError):
        task_messages("x", "q", "nowhere")
