"""Racing (gpo_core.optimizer.racing): candidates scored on dev in rounds, the hopeless ones
dropped once they cannot beat the leader; never the eventual winner on scripted scores; the
calls it saves are counted per step and match the calls not made.

Scripted run: the parity task (engine_fakes.task_answer: an instruction with "carefully"
answers right, any other always says "yes"), 16 dev examples, odd numbers first, so a
"yes" instruction gets the first round of 4 all wrong."""

import random

import pytest

from gpo_core.models.base import ChatRequest, TokenUsage
from gpo_core.optimizer.racing import RacerState, race, race_round
from gpo_core.optimizer.session import GPOSession
from gpo_core.scoring.evaluation import EvalResult, ExampleRecord
from gpo_core.tasks.task import Example, TaskSplits
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import ScriptedModels, parity_task, run_settings, task_answer

# --------------------------------------------------------------------------- the rule


def test_a_hopeless_candidate_is_dropped_after_one_round():
    racers = [RacerState(4, 4, 4), RacerState(4, 4, 0)]  # 4/4 right vs 0/4 right
    assert race_round(racers, 16, 0.05) == [1]
    out = racers[1]
    assert out.out_after == 4 and out.reason == "statistical"
    # Wilson 95%: 0/4 -> upper 0.490; 4/4 -> lower 0.510
    assert out.upper == pytest.approx(0.4899, abs=1e-3) and out.threshold == pytest.approx(0.5101, abs=1e-3)
    assert racers[0].racing


def test_close_candidates_race_on_and_ties_are_never_dropped():
    assert race_round([RacerState(4, 4, 3), RacerState(4, 4, 1)], 16, 0.05) == []
    assert race_round([RacerState(8, 8, 8), RacerState(8, 8, 8)], 16, 0.05) == []


def test_certain_rule_drops_a_candidate_that_cannot_catch_up_even_at_tiny_alpha():
    # 14 of 16 scored: 0/14 can reach at most 2/16; the leader has at least 14/16
    racers = [RacerState(14, 14, 14), RacerState(14, 14, 0)]
    assert race_round(racers, 16, 1e-12) == [1]
    assert racers[1].reason == "certain" and racers[1].upper == pytest.approx(2 / 16)


@pytest.mark.parametrize("seed", range(200))
def test_the_certain_rule_never_drops_the_full_dev_winner(seed):
    """With alpha so small that the Wilson bounds never separate, only the certain rule acts:
    it must never drop a candidate whose full-dev score would have been the best."""
    rng = random.Random(seed)
    n, k = rng.choice([8, 16, 24]), rng.randint(2, 6)
    outcomes = [[rng.random() < rng.random() for _ in range(n)] for _ in range(k)]
    finals = [sum(o) for o in outcomes]
    best = max(finals)
    results = race([f"p{i}" for i in range(k)], _examples(n), _scripted_evaluate(outcomes), alpha=1e-12,
                   batch=rng.choice([1, 2, 4]))
    for i, r in enumerate(results):
        if finals[i] == best:
            assert r.raced_out_after is None, (seed, finals, i)


def test_race_never_drops_the_eventual_winner_and_saves_calls_on_scripted_scores():
    n = 16
    winner = [True] * 14 + [False] * 2                       # 14/16
    runner_up = [True, False] * 8                            # 8/16, never hopeless early
    hopeless = [False] * 16                                  # 0/16
    calls: list[int] = []
    results = race(["win", "mid", "lose"], _examples(n), _scripted_evaluate([winner, runner_up, hopeless], calls),
                   alpha=0.05, batch=4)
    assert results[0].raced_out_after is None and results[0].result.n == n
    assert results[2].raced_out_after == 4 and results[2].note.startswith("raced out after 4 of 16 dev examples")
    assert results[2].result.n == 4 and results[2].result.accuracy == 0.0
    # scored examples = calls made; the hopeless one spared 12
    assert sum(calls) == sum(r.result.n for r in results) == 3 * n - 12 - (n - results[1].result.n)


def test_race_merges_the_rounds_into_one_result_in_dev_order():
    outcomes = [[True, False, True, True, False, True], [False] * 6]
    results = race(["a", "b"], _examples(6), _scripted_evaluate(outcomes), alpha=0.5, batch=2)
    a = results[0].result
    assert [r.input for r in a.records] == [f"q{i}" for i in range(6)]
    assert (a.n, a.n_correct, a.accuracy) == (6, 4, pytest.approx(4 / 6))
    assert a.usage.calls == 6


# --------------------------------------------------------------------------- in a run


def _racing_splits() -> TaskSplits:
    ex = parity_task().examples
    odd = [e for e in ex if int(e.input.split()[1]) % 2]
    even = [e for e in ex if not int(e.input.split()[1]) % 2]
    dev = odd[:12] + even[:4]                                # "always yes" scores 4/16, all in the last round
    rest = [e for e in ex if e not in dev]
    return TaskSplits(train=rest[:12], dev=dev, test=rest[12:20], exemplars=rest[:12])


def _optimizer(req: ChatRequest) -> str:
    i = req.sample_index
    return f"<INS>Check carefully whether it is even, variant {i}.</INS>" if i % 2 == 0 else \
        f"<INS>Answer yes, variant {i}.</INS>"


def _models() -> ScriptedModels:
    return ScriptedModels(ScriptedChatModel(task_answer, name="fake-task"),
                          ScriptedChatModel(_optimizer, name="fake-optimizer"), HashingEmbedder())


def _run(tmp_path, racing: bool) -> tuple[GPOSession, ScriptedModels]:
    models = _models()
    settings = run_settings(steps=1, candidates=4, racing=racing, racing_batch=4, test_size=None)
    s = GPOSession.create(parity_task(), settings, models, splits=_racing_splits(), run_dir=tmp_path)
    s.start()
    return s, models


def test_racing_in_a_step_drops_the_hopeless_keeps_the_winner_and_counts_calls_saved(tmp_path):
    full, full_models = _run(tmp_path / "full", racing=False)
    raced, raced_models = _run(tmp_path / "raced", racing=True)
    calls_before = (len(full_models.task.calls), len(raced_models.task.calls))
    step_full, step = full.propose(), raced.propose()

    out = [c for c in step.candidates if c.status == "raced_out"]
    assert [c.text for c in out] == ["Answer yes, variant 1.", "Answer yes, variant 3."]
    for c in out:
        assert (c.raced_out_after, c.dev_n, c.dev_correct) == (4, 4, 0)
        assert c.race_note.startswith("raced out after 4 of 16 dev examples")
        assert c.fixed == 0 and c.broken == 0             # paired on the 4 examples it was scored on
        assert raced.ineligible_reason(c.id) == c.race_note
    # calls saved = the dev calls racing did not make
    made_full = len(full_models.task.calls) - calls_before[0]
    made_raced = len(raced_models.task.calls) - calls_before[1]
    assert step.calls_saved == 2 * 12 == made_full - made_raced
    assert step_full.calls_saved == 0
    # the same winner either way
    assert raced.best_candidate().text == full.best_candidate().text
    raced.decide_auto()
    assert raced.state.current_prompt == "Check carefully whether it is even, variant 0."
    # raced-out candidates never join the trajectory with their partial score
    assert all(e.candidate_id not in {c.id for c in out} for e in raced.state.trajectory)


def test_a_raced_out_candidate_accepted_by_hand_is_scored_on_all_of_dev_first(tmp_path):
    s, models = _run(tmp_path, racing=True)
    step = s.propose()
    loser = next(c for c in step.candidates if c.status == "raced_out")
    s.accept(loser.id)
    assert (loser.status, loser.dev_n, loser.raced_out_after) == ("scored", 16, None)
    assert loser.dev_accuracy == pytest.approx(4 / 16)
    assert "when accepted by hand" in loser.race_note
    assert s.state.current_prompt == loser.text


def test_racing_fields_survive_a_save_and_reload(tmp_path):
    s, _ = _run(tmp_path, racing=True)
    step = s.propose()
    again = GPOSession.open(tmp_path, _models(), take_over=True)
    saved = again.state.steps[-1]
    assert saved.calls_saved == step.calls_saved == 24
    assert [(c.status, c.raced_out_after, c.race_note) for c in saved.candidates] == \
        [(c.status, c.raced_out_after, c.race_note) for c in step.candidates]


def test_racing_settings_are_checked_by_name():
    from gpo_core.errors import ConfigError

    with pytest.raises(ConfigError, match="racing_alpha"):
        run_settings(racing=True, racing_alpha=1.5).validate()
    with pytest.raises(ConfigError, match="--racing-batch"):
        run_settings(racing=True, racing_batch=0).validate("cli")


# --------------------------------------------------------------------------- helpers


def _examples(n: int) -> list[Example]:
    return [Example(f"q{i}", "yes") for i in range(n)]


def _scripted_evaluate(outcomes: list[list[bool]], calls: list[int] | None = None):
    """An Evaluate for prompts "p0".. / named ones, answering example qi right per outcomes."""
    names: dict[str, int] = {}

    def evaluate(prompts, examples, cb):
        out = []
        for p in prompts:
            idx = names.setdefault(p, len(names)) if not p.startswith("p") else int(p[1:])
            recs = []
            for ex in examples:
                right = outcomes[idx][int(ex.input[1:])]
                recs.append(ExampleRecord(ex.input, ex.target, ex.input, "", None, right, 1, 1, None, 1, False))
            usage = TokenUsage(calls=len(recs), prompt_tokens=len(recs))
            out.append(EvalResult(p, "dev", sum(r.correct for r in recs) / len(recs), len(recs),
                                  sum(r.correct for r in recs), 0, usage, recs))
            if calls is not None:
                calls.append(len(recs))
        if cb:
            cb(1, 1)
        return out

    return evaluate


def test_a_duplicate_of_a_raced_out_candidate_is_not_chosen_either(tmp_path):
    models = ScriptedModels(ScriptedChatModel(task_answer, name="fake-task"),
                            ScriptedChatModel(lambda r: "<INS>Check carefully, variant 0.</INS>" if r.sample_index == 0
                                              else "<INS>Answer yes.</INS>", name="fake-optimizer"),
                            HashingEmbedder())
    settings = run_settings(steps=1, candidates=3, racing=True, racing_batch=4, test_size=None)
    s = GPOSession.create(parity_task(), settings, models, splits=_racing_splits(), run_dir=tmp_path)
    s.start()
    step = s.propose()
    raced, dup = [c for c in step.candidates if c.text == "Answer yes."]
    assert raced.status == "raced_out" and dup.status == "duplicate"
    assert dup.raced_out_after == 4 and s.ineligible_reason(dup.id) == raced.race_note
    assert s.best_candidate().text == "Check carefully, variant 0."
