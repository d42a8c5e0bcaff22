import pytest

from gpo_core.errors import ConfigError
from gpo_core.optimizer.direction import TrajectoryEntry, select_update_direction
from gpo_testkit.embedders import HashingEmbedder


def traj():
    texts = [
        ("Let's think step by step.", 0.40),
        ("Count the objects one by one.", 0.55),
        ("Let's think step by step and check the answer.", 0.50),
        ("Answer quickly.", 0.20),
        ("Read carefully, then count the objects one by one.", 0.60),
    ]
    # a chosen path: the start prompt and the prompt chosen at each of 4 steps
    return [TrajectoryEntry(i, t, a, i, chosen=True) for i, (t, a) in enumerate(texts)]


def test_relevance_is_newest_then_most_similar_in_the_reference_order():
    got = select_update_direction(traj(), "Let's think step by step.", k=3, strategy="relevance",
                                  embedder=HashingEmbedder(), newest_id=4)
    # relavance_selection.py: the newest first, then the k-1 others by similarity, descending
    assert [r.entry_id for r in got] == [4, 0, 2]
    assert 3 not in {r.entry_id for r in got}
    by_score = select_update_direction(traj(), "Let's think step by step.", k=3, strategy="relevance",
                                       embedder=HashingEmbedder(), newest_id=4, order="score")
    assert [r.entry_id for r in by_score] == [0, 2, 4]     # our option: ascending, best last
    sim = {r.entry_id: r.similarity for r in got}
    assert sim[0] == pytest.approx(1.0, abs=1e-5) and sim[0] > sim[2] > sim[4]
    assert {r.reason for r in got} == {"newest", "most similar"}


def test_recency_and_importance():
    rec = select_update_direction(traj(), "x y", k=2, strategy="recency", embedder=HashingEmbedder())
    assert {r.entry_id for r in rec} == {3, 4}
    imp = select_update_direction(traj(), "x y", k=2, strategy="importance", embedder=None)
    assert {r.entry_id for r in imp} == {4, 1}
    assert all(r.similarity is None for r in imp)


def test_k_larger_than_trajectory_returns_everything_once():
    got = select_update_direction(traj()[:2], "a", k=5, strategy="relevance", embedder=HashingEmbedder())
    assert sorted(r.entry_id for r in got) == [0, 1]


def test_scores_are_on_the_0_100_scale():
    got = select_update_direction(traj(), "a", k=1, strategy="importance")
    assert got[0].score == 60


@pytest.mark.parametrize("kw", [dict(k=0), dict(strategy="random"), dict(strategy="relevance", embedder=None)])
def test_bad_settings(kw):
    args = dict(k=3, strategy="recency", embedder=HashingEmbedder()) | kw
    with pytest.raises(ConfigError):
        select_update_direction(traj(), "a", **args)


def test_newest_is_the_current_prompt_even_when_its_text_was_scored_before():
    # entry 1 was a sibling candidate of a rejected attempt; entry 3, the same text, was then
    # chosen (a duplicate is never re-scored, so it shares the text) and is the current prompt
    entries = [TrajectoryEntry(0, "Let's think step by step.", 0.40, 0, chosen=True),
               TrajectoryEntry(1, "Count the objects one by one.", 0.55, 1),
               TrajectoryEntry(2, "Answer quickly.", 0.20, 1),
               TrajectoryEntry(3, "Count the objects one by one.", 0.55, 1, chosen=True)]
    got = select_update_direction(entries, "Count the objects one by one.", k=2, strategy="relevance",
                                  embedder=HashingEmbedder(), newest_id=3)
    newest = [r for r in got if r.reason == "newest"]
    assert len(newest) == 1 and newest[0].entry_id == 3 and newest[0].prompt == "Count the objects one by one."
    assert len({r.prompt for r in got}) == len(got) == 2      # each text shown once


def test_strategies_are_registered_by_name():
    from gpo_core.optimizer.direction import SELECTION_STRATEGIES, STRATEGIES

    assert SELECTION_STRATEGIES == tuple(STRATEGIES) == ("relevance", "recency", "importance")


def test_the_chosen_path_leaves_out_siblings_that_were_never_chosen():
    # step 1 scored three candidates and chose entry 2; entry 1 (never chosen) is closer in
    # wording to the current prompt than the start, so "all" retrieves it and "chosen" must not
    entries = [TrajectoryEntry(0, "Answer the question.", 0.40, 0, chosen=True),
               TrajectoryEntry(1, "Count the objects one by one, carefully.", 0.30, 1),
               TrajectoryEntry(2, "Count the objects one by one.", 0.55, 1, parent=0, chosen=True),
               TrajectoryEntry(3, "Answer quickly.", 0.20, 1)]
    emb = HashingEmbedder()
    chosen = select_update_direction(entries, "Count the objects one by one.", k=2, strategy="relevance",
                                     embedder=emb, newest_id=2)
    assert [r.entry_id for r in chosen] == [2, 0]
    every = select_update_direction(entries, "Count the objects one by one.", k=2, strategy="relevance",
                                    embedder=emb, newest_id=2, pool="all")
    assert [r.entry_id for r in every] == [2, 1]


@pytest.mark.parametrize("kw", [dict(pool="best"), dict(order="random")])
def test_unknown_pool_or_order_is_refused(kw):
    with pytest.raises(ConfigError):
        select_update_direction(traj(), "a", k=2, strategy="recency", **kw)
