import random
from typing import Any

from gpo_core.optimizer.direction import Retrieved
from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
from gpo_core.tasks.task import Example

RETRIEVED = [Retrieved(0, "Let's think step by step.", 0.4, 0, 1.0, "newest"),
             Retrieved(3, "Count carefully.", 0.65, 1, 0.3, "most similar")]
EXEMPLARS = [Example("How many legs do 2 cats have?", "8"), Example("Is 7 odd?", "yes")]


def test_meta_prompt_has_every_part_of_the_update():
    mp = build_meta_prompt(retrieved=RETRIEVED, current_prompt="Count carefully.", exemplars=EXEMPLARS,
                           position="Q_end", budget=37)
    assert "Let's think step by step." in mp and "Score: 40" in mp and "Score: 65" in mp
    assert "Q: How many legs do 2 cats have?\n<Prompt>\n\nA:" in mp   # placeholder at the instruction position
    assert "Correct answer: 8" in mp
    assert "Current instruction: Count carefully." in mp
    assert "at most 37 words" in mp
    assert "<INS>" in mp and "</INS>" in mp
    assert mp.index("Score: 40") < mp.index("Score: 65")   # ascending, best last


def test_placeholder_follows_the_position():
    mp = build_meta_prompt(retrieved=[], current_prompt="c", exemplars=EXEMPLARS[:1], position="before_Q", budget=5)
    assert "<Prompt>\nQ: How many legs" in mp


def test_no_budget_ablation_drops_the_budget_sentence():
    mp = build_meta_prompt(retrieved=RETRIEVED, current_prompt="c", exemplars=[], position="Q_end", budget=None)
    assert "at most" not in mp


def test_our_layout_is_not_longer_than_the_papers():
    kw: dict[str, Any] = dict(retrieved=RETRIEVED, current_prompt="Count carefully.", exemplars=EXEMPLARS,
                              position="Q_end", budget=30)
    assert len(build_meta_prompt(**kw).split()) < len(build_meta_prompt(layout="paper", **kw).split())


def test_exemplar_draw_is_seeded():
    pool = [Example(str(i), str(i)) for i in range(20)]
    a = pick_exemplars(pool, 3, random.Random("0:1:1"))
    b = pick_exemplars(pool, 3, random.Random("0:1:1"))
    assert a == b and len(set(a)) == 3
