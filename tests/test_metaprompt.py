import random
from typing import Any

import pytest

from gpo_core.optimizer.direction import Retrieved
from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
from gpo_core.tasks.task import Example

RETRIEVED = [Retrieved(0, "Let's think step by step.", 0.4, 0, 1.0, "newest"),
             Retrieved(3, "Count carefully.", 0.65, 1, 0.3, "most similar")]
EXEMPLARS = [Example("How many legs do 2 cats have?", "8"), Example("Is 7 odd?", "yes")]


def test_gpo_meta_prompt_has_the_reference_parts_in_the_reference_order():
    # generate_without_gradient.py + k_update.py + w_lr.py: task line naming the placeholder,
    # retrieved prompts with scores, current prompt, how to read the exemplars, the exemplars
    # (input with <Prompt> at the instruction position, then the output), the request, the
    # edit-budget sentence, the <START>/<END> answer tags
    mp = build_meta_prompt(retrieved=RETRIEVED, current_prompt="Count carefully.", exemplars=EXEMPLARS,
                           position="Q_end", budget=37)
    parts = [
        "take the place of <Prompt>",                              # task line
        "Prompt: Let's think step by step.\nScore: 40",           # retrieved, in the given order
        "Prompt: Count carefully.\nScore: 65",
        "The prompt in use now:\nCount carefully.",               # current prompt
        "<Prompt> marks where your prompt goes, at the end of the question",   # how to read
        "Input:\nHow many legs do 2 cats have?\n<Prompt>\nOutput:\n8",       # exemplar, no Q:/A:
        "Input:\nIs 7 odd?\n<Prompt>\nOutput:\nyes",
        "write a better prompt",                                   # request
        "Change no more than 37 words",                            # edit budget
        "between <START> and <END>",                               # answer tags
    ]
    at = [mp.index(p) for p in parts]
    assert at == sorted(at), [p for p, a in zip(parts, at)]
    assert "<INS>" not in mp


@pytest.mark.parametrize("position,rendered", [
    ("Q_end", "Input:\nIs 7 odd?\n<Prompt>\nOutput"),
    ("Q_begin", "Input:\n<Prompt>\nIs 7 odd?\nOutput"),
    ("A_begin", "Input:\nQ: Is 7 odd?\nA: <Prompt>\nOutput"),
])
def test_gpo_exemplars_put_the_placeholder_where_the_reference_does(position, rendered):
    mp = build_meta_prompt(retrieved=[], current_prompt="c", exemplars=EXEMPLARS[1:], position=position, budget=5)
    assert rendered in mp


def test_short_layout_keeps_our_wording_and_tags():
    mp = build_meta_prompt(retrieved=RETRIEVED, current_prompt="Count carefully.", exemplars=EXEMPLARS,
                           position="Q_end", budget=37, layout="short")
    assert "Q: How many legs do 2 cats have?\n<Prompt>\n\nA:" in mp and "Correct answer: 8" in mp
    assert "Current instruction: Count carefully." in mp and "at most 37 words" in mp
    assert "<INS>" in mp and "</INS>" in mp


def test_placeholder_follows_the_position_in_the_short_layout():
    mp = build_meta_prompt(retrieved=[], current_prompt="c", exemplars=EXEMPLARS[:1], position="before_Q", budget=5,
                           layout="short")
    assert "<Prompt>\nQ: How many legs" in mp


@pytest.mark.parametrize("layout", ["gpo", "opro", "short"])
def test_no_budget_ablation_drops_the_budget_sentence(layout):
    with_budget = build_meta_prompt(retrieved=RETRIEVED, current_prompt="c", exemplars=[], position="Q_end",
                                    budget=12, layout=layout)
    mp = build_meta_prompt(retrieved=RETRIEVED, current_prompt="c", exemplars=[], position="Q_end", budget=None,
                           layout=layout)
    assert "12 words" in with_budget and "words" not in mp


def test_the_short_layout_is_the_shortest():
    kw: dict[str, Any] = dict(retrieved=RETRIEVED, current_prompt="Count carefully.", exemplars=EXEMPLARS,
                              position="Q_end", budget=30)
    words = {lay: len(build_meta_prompt(layout=lay, **kw).split()) for lay in ("gpo", "opro", "short")}
    assert words["short"] < words["gpo"] and words["short"] < words["opro"], words


def test_exemplar_draw_is_seeded():
    pool = [Example(str(i), str(i)) for i in range(20)]
    a = pick_exemplars(pool, 3, random.Random("0:1:1"))
    b = pick_exemplars(pool, 3, random.Random("0:1:1"))
    assert a == b and len(set(a)) == 3
