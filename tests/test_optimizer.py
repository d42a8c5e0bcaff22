import json
from typing import Any

import pytest

from gpo_core.errors import ConfigError, EndpointDownError
from gpo_core.optimizer.session import GPOSession, Models
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import fake_models, parity_splits, parity_task, run_settings

CFG: dict[str, Any] = dict(steps=4, candidates=4, k=3, dev_size=None, test_size=None)


def new_session(tmp_path=None, models=None, **cfg):
    models = models or fake_models()
    s = GPOSession.create(parity_task(), run_settings(**(CFG | cfg)), models, splits=parity_splits(),
                          run_dir=tmp_path)
    return s, models


def test_start_scores_the_starting_prompt_on_dev_and_test(tmp_path):
    s, _ = new_session(tmp_path)
    init = s.start()
    assert init["dev_accuracy"] == pytest.approx(3 / 8)
    assert init["test_accuracy"] is not None
    assert s.state.trajectory[0].prompt == "Let's think step by step." and s.state.trajectory[0].chosen
    assert len(s.records("initial", "dev")) == 8


def test_a_step_shows_budget_retrieval_candidates_and_scores(tmp_path):
    s, models = new_session(tmp_path)
    s.start()
    step = s.propose()
    assert step.step == 1 and step.budget == s.budgets()[0]
    assert f"at most {step.budget} words" in step.meta_prompt
    assert [r.prompt for r in step.retrieved] == ["Let's think step by step."]
    texts = [c.text for c in step.candidates]
    assert texts == ["Let's think step by step carefully.", "Answer with yes or no.",
                     "Solve the problem and reply with one word."]
    by_text = {c.text: c for c in step.candidates}
    assert by_text["Let's think step by step carefully."].edit_distance == 2   # "step." -> "step", + "carefully."
    assert by_text["Let's think step by step carefully."].dev_accuracy == 1.0
    assert by_text["Answer with yes or no."].dev_accuracy == pytest.approx(3 / 8)
    # the empty reply is recorded with its reason, not silently dropped
    empty = [c for c in step.optimizer_calls if not c.candidate_ids]
    assert len(empty) == 1 and "empty" in empty[0].reason
    assert step.usage_dev.calls == 3 * 8 and step.usage_optimizer.calls == 4
    assert step.pending


def test_auto_decision_takes_the_best_and_scores_it_on_test(tmp_path):
    s, _ = new_session(tmp_path)
    s.start()
    s.propose()
    step = s.decide_auto()
    assert step.decision.kind == "auto"
    assert s.state.current_prompt == "Let's think step by step carefully."
    assert step.chosen_test_accuracy == 1.0
    assert s.next_step_number == 2


def test_duplicates_are_never_rescored(tmp_path):
    s, models = new_session(tmp_path)
    s.start()
    s.propose()
    s.reject_all()
    calls_before = len(models.task.calls)
    step = s.propose()   # attempt 2 resamples with fresh sample indices 4..7
    assert step.attempt == 2 and [c.sample_index for c in step.candidates] == [4, 5, 6, 7]
    dup = {c.sample_index: c for c in step.candidates}
    assert dup[4].status == "duplicate" and dup[4].dev_accuracy == pytest.approx(3 / 8)
    assert dup[5].status == "duplicate" and dup[5].duplicate_of == "initial"
    assert len(models.task.calls) - calls_before == 2 * 8    # only samples 6 and 7 were scored


def test_accept_hand_edited_text_scores_it_first(tmp_path):
    s, models = new_session(tmp_path)
    s.start()
    step = s.propose()
    cid = step.candidates[1].id
    s.accept(cid, text="Answer carefully with yes or no.")
    assert step.decision.kind == "accept_edited"
    edited = step.candidates[-1]
    assert edited.origin == "edited" and edited.dev_accuracy == 1.0
    assert s.state.current_prompt == "Answer carefully with yes or no."


def test_reject_all_then_undo_restores_the_prompt_and_trajectory(tmp_path):
    s, _ = new_session(tmp_path)
    s.start()
    s.propose()
    s.decide_auto()
    n_traj = len(s.state.trajectory)
    s.propose()
    s.reject_all()
    assert s.next_step_number == 2
    s.undo()   # removes the rejected attempt
    s.undo()   # removes step 1
    assert s.state.current_prompt == "Let's think step by step." and len(s.state.trajectory) == 1
    assert n_traj > 1
    with pytest.raises(ConfigError, match="no step to undo"):
        s.undo()


def test_best_not_yet_chosen_skips_a_prompt_chosen_before(tmp_path):
    s, _ = new_session(tmp_path)
    s.start()
    s.propose()
    s.decide_auto()
    step2 = s.propose()
    best = s.best_candidate(step2)
    assert best.text != "Let's think step by step carefully."


def test_enforce_budget_drops_over_budget_candidates_unscored(tmp_path):
    s, models = new_session(tmp_path, budget_initial=2, budget_final=1, schedule="fixed", enforce_budget=True)
    s.start()
    step = s.propose()
    over = [c for c in step.candidates if not c.within_budget]
    assert over and all(c.status == "over_budget" and c.dev_accuracy is None for c in over)
    assert step.usage_dev.calls == 8 * sum(c.status == "scored" for c in step.candidates)


def test_run_auto_saves_every_step_and_reopens(tmp_path):
    s, models = new_session(tmp_path)
    seen = []
    s.run_auto(on_step=seen.append)
    assert len(seen) == 4 and s.finished
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["schema_version"] == 3 and len(saved["steps"]) == 4
    for st in saved["steps"]:
        assert st["budget"] and st["meta_prompt"] and st["retrieved"] and st["decision"]
        assert all("edit_distance" in c and "dev_accuracy" in c for c in st["candidates"])
    reopened = GPOSession.open(tmp_path, fake_models(), take_over=True)
    assert reopened.state.current_prompt == s.state.current_prompt
    assert reopened.records("initial", "dev") == s.records("initial", "dev")


def test_stop_keeps_finished_steps(tmp_path):
    s, _ = new_session(tmp_path)
    done = []
    s.run_auto(on_step=done.append, should_stop=lambda: len(done) >= 2)
    assert len(s.state.decided_steps) == 2
    assert len(GPOSession.open(tmp_path, fake_models(), take_over=True).state.decided_steps) == 2


def test_endpoint_down_raises_and_keeps_the_run(tmp_path):
    s, models = new_session(tmp_path)
    s.start()
    down = ScriptedChatModel(lambda r: "yes", name="fake-task", fail_when=lambda r: "connection refused")
    s.models = Models(down, models.optimizer, models.embedder)
    with pytest.raises(EndpointDownError, match="connection refused"):
        s.propose()
    assert s.state.pending_step is None and s.state.steps == []
    reopened = GPOSession.open(tmp_path, fake_models(), take_over=True)
    assert reopened.started and reopened.next_step_number == 1
    assert reopened.propose().candidates   # the run resumes once the endpoint is back


def test_failing_examples_are_kept_with_their_error_and_not_counted(tmp_path):
    flaky = ScriptedChatModel(lambda r: "yes", name="flaky",
                              fail_when=lambda r: "HTTP 500" if "Is 3 even" in r.messages[-1][1] else None)
    models = fake_models()
    s, _ = new_session(tmp_path, models=Models(flaky, models.optimizer, HashingEmbedder()))
    s.start()
    recs = s.records("initial", "dev")
    bad = [r for r in recs if r["error"]]
    assert len(bad) == 1 and not bad[0]["correct"] and "500" in bad[0]["error"]
    assert len(recs) == 8
    # "always yes": 3 of the 7 answered examples are even (the failed one, 3, is not counted)
    assert s.state.initial["dev_errors"] == 1 and s.state.initial["dev_accuracy"] == pytest.approx(3 / 7)


def test_bad_settings_refused_before_any_call():
    models = fake_models()
    for bad in (dict(k=0), dict(candidates=100), dict(budget_initial=10, budget_final=50), dict(task_temperature=-1)):
        with pytest.raises(ConfigError):
            GPOSession.create(parity_task(), run_settings(**(CFG | bad)), models, splits=parity_splits())
    assert models.task.calls == [] and models.optimizer.calls == []
