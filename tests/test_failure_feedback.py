"""Failure feedback (issue 12, item 4): wrong dev examples of the current prompt in the
meta-prompt, with the task model's answers, the gold targets and the metric's reasons."""

import random
import re
from typing import Any

import pytest

from gpo_core.errors import ConfigError
from gpo_core.optimizer.failure_feedback import format_failures, pick_failures, wrong_records
from gpo_core.optimizer.metaprompt import build_meta_prompt
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import StepRecord
from gpo_core.tasks.task import Example
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import ScriptedModels, parity_splits, parity_task, run_settings, task_answer

CFG: dict[str, Any] = dict(steps=3, candidates=2, k=3, dev_size=None, test_size=None)


def _models() -> ScriptedModels:
    # no candidate says "carefully": every prompt answers "yes" to all, so the chosen prompt
    # of step 1 gets the 5 odd dev numbers wrong
    opt = ScriptedChatModel(lambda req: f"<INS>Answer with yes or no, variant {req.sample_index}.</INS>",
                            name="fake-optimizer", max_concurrency=8)
    return ScriptedModels(ScriptedChatModel(task_answer, name="fake-task", max_concurrency=8), opt, HashingEmbedder())


def _two_steps(tmp_path, n: int, seed: int = 0) -> tuple[GPOSession, StepRecord]:
    s = GPOSession.create(parity_task(), run_settings(**(CFG | dict(failure_feedback=n, seed=seed))), _models(),
                          splits=parity_splits(), run_dir=tmp_path)
    s.start()
    s.propose()
    s.decide_auto()
    return s, s.propose()


def _shown_inputs(meta: str) -> list[str]:
    return re.findall(r"Input: (Is \d+ even\?)\nWrong answer: (\S+)\nGround truth answer: (\S+)", meta)


@pytest.mark.parametrize("n", [1, 3])
def test_step_two_shows_exactly_n_wrong_examples_of_the_current_prompt(tmp_path, n):
    s, step = _two_steps(tmp_path, n)
    current = next(e for e in s.state.trajectory if e.id == step.current_entry_id)
    assert current.candidate_id is not None  # step 2 edits the prompt chosen at step 1
    wrong = {r["input"] for r in s.records(current.candidate_id, "dev") if not r["correct"]}
    assert len(wrong) == 5
    shown = _shown_inputs(step.meta_prompt)
    assert len(shown) == n and step.meta_prompt.count("Wrong answer:") == n
    for inp, answer, target in shown:
        assert inp in wrong and answer == "yes" and target == "no"
    assert [f["input"] for f in step.failures] == [inp for inp, _, _ in shown]
    assert f"at most {step.budget} words" in step.meta_prompt  # the budget sentence is unchanged
    # kept in run.json and read back
    assert StepRecord.from_dict(step.to_dict()).failures == step.failures


def test_more_than_the_wrong_examples_shows_them_all(tmp_path):
    _, step = _two_steps(tmp_path, 50)
    assert len(_shown_inputs(step.meta_prompt)) == 5


def test_off_by_default_shows_none_and_keeps_the_paper_meta_prompt(tmp_path):
    _, step = _two_steps(tmp_path, 0)
    assert "Wrong answer:" not in step.meta_prompt and step.failures == []
    assert run_settings().optimizer.failure_feedback == 0


def test_same_seed_draws_the_same_examples(tmp_path):
    draws = [_two_steps(tmp_path / f"r{i}", 2, seed=7)[1] for i in range(2)]
    assert draws[0].meta_prompt == draws[1].meta_prompt and draws[0].failures == draws[1].failures
    others = {tuple(f["input"] for f in _two_steps(tmp_path / f"s{seed}", 2, seed=seed)[1].failures)
              for seed in range(4)}
    assert len(others) > 1  # the seed matters


def _rec(inp: str, target: str, answer: str | None, correct: bool, **kw: Any) -> dict:
    return dict(input=inp, target=target, parsed_answer=answer, raw_output=answer or "", correct=correct,
                error=None, score=None) | kw


def test_pick_leaves_out_failed_calls_and_counts_partial_credit_as_wrong():
    recs = [_rec("a", "x", "x", True), _rec("b", "x", None, False, error="HTTP 500"),
            _rec("c", "x", "y", False, score=0.5, reason="half the keys match"),
            _rec("d", "x", None, False, raw_output="I cannot tell", metric_error="ValueError: bad JSON")]
    assert wrong_records(recs) == [2, 3]
    picked = pick_failures(recs, 5, random.Random(0))
    assert [f.index for f in picked] == [2, 3]
    assert picked[0].reason == "half the keys match" and picked[1].reason == "ValueError: bad JSON"
    assert picked[1].answer == "(no answer found) I cannot tell"
    text = format_failures(picked)
    assert "Why it is wrong: half the keys match" in text and "Wrong answer: y" in text
    assert pick_failures(recs, 0, random.Random(0)) == []


def test_meta_prompt_without_failures_is_unchanged():
    kw: dict[str, Any] = dict(retrieved=[], current_prompt="Be brief.", exemplars=[Example("Is 2 even?", "yes")],
                              position="Q_end", budget=10)
    plain = build_meta_prompt(**kw)
    assert build_meta_prompt(**kw, failures=[]) == plain
    recs = [_rec("Is 3 even?", "no", "yes", False)]
    with_f = build_meta_prompt(**kw, failures=pick_failures(recs, 1, random.Random(0)))
    assert "Input: Is 3 even?\nWrong answer: yes\nGround truth answer: no" in with_f
    assert with_f.endswith(plain.split("\n\n")[-1])  # request, budget sentence and answer format last


def test_bad_value_is_refused_naming_the_flag():
    with pytest.raises(ConfigError, match="failure"):
        run_settings(failure_feedback=-1).validate("cli")


def test_the_cost_estimate_counts_the_failures_in_each_meta_prompt():
    from gpo_core.costs.estimate import estimate_run

    def opt_tokens(n: int) -> int:
        return estimate_run(run_settings(**(CFG | dict(failure_feedback=n))), parity_task(),
                            splits=parity_splits()).roles["optimizer"].prompt_tokens

    assert opt_tokens(3) > opt_tokens(0)


def test_the_optimize_page_sets_it_and_the_step_view_shows_the_examples_shown(tmp_path):
    from app_support import app_for, arithmetic_studio, no_exception, texts, wait_idle

    studio = arithmetic_studio(tmp_path)
    at = app_for(studio, "pages/optimize.py")
    at.number_input(key="cfg_failure_feedback").set_value(2).run()
    no_exception(at)
    assert studio.draft.optimizer.failure_feedback == 2
    studio.draft.update_optimizer(steps=2, candidates=2)
    studio.runs.create()
    studio.actions.start()
    studio.actions.run_auto(1)
    wait_idle(studio)
    step = studio.runs.session.state.steps[0]
    assert 1 <= len(step.failures) <= 2
    at = app_for(studio, "pages/optimize.py")
    at.session_state["meta_box"] = True
    at.run()
    no_exception(at)
    meta = next(e for e in at.expander if e.label.startswith("Meta-prompt"))
    assert any(f"Failure feedback: {len(step.failures)} wrong dev example" in t for t in texts(meta.caption))
    table = next(d.value for d in meta.dataframe if "target" in d.value.columns)
    assert list(table["input"]) == [f["input"] for f in step.failures]


def test_the_app_default_shows_three_failures_and_the_cli_paper_setting_none(tmp_path):
    # the app's "quick" preset turns failure feedback on (issue 14: it helped offline and never
    # hurt); the command line's default is the paper setting, which has none
    from gpo_core.runs.flags import settings_from_flags

    from app_support import app_for, arithmetic_studio, no_exception, wait_idle

    studio = arithmetic_studio(tmp_path)
    at = app_for(studio, "pages/optimize.py")
    no_exception(at)
    assert at.number_input(key="cfg_failure_feedback").value == 3
    studio.draft.update_optimizer(steps=2, candidates=2)
    studio.runs.create()
    studio.actions.start()
    studio.actions.run_auto(1)
    wait_idle(studio)
    state = studio.runs.session.state
    wrong = [r for r in studio.runs.records("initial", "dev") if not r["correct"]]
    assert wrong, "the demo task model must miss some dev examples for this test to say anything"
    assert len(state.steps[0].failures) == min(3, len(wrong))
    assert settings_from_flags({}).optimizer.failure_feedback == 0


@pytest.mark.parametrize("reply", [
    "<INS>The current prompt gets the following examples wrong. Analyze the differences between them.</INS>",
    "<INS>Decide the parity. Wrong answer: yes</INS>",
    "<INS>Decide the parity. Why it is wrong: it is odd</INS>",
])
def test_a_candidate_copying_the_failure_feedback_is_refused(tmp_path, reply):
    # the failure block's header and labels are the meta-prompt's wording, not an instruction
    opt = ScriptedChatModel(lambda req: reply if "Wrong answer:" in req.messages[-1][1]
                            else f"<INS>Answer with yes or no, variant {req.sample_index}.</INS>",
                            name="fake-optimizer", max_concurrency=8)
    models = ScriptedModels(ScriptedChatModel(task_answer, name="fake-task", max_concurrency=8), opt, HashingEmbedder())
    s = GPOSession.create(parity_task(), run_settings(**(CFG | dict(failure_feedback=2))), models,
                          splits=parity_splits(), run_dir=tmp_path)
    s.start()
    s.propose()
    s.decide_auto()
    step = s.propose()
    assert step.failures and not step.candidates
    assert all(c.extraction == "refused" for c in step.optimizer_calls), [c.reason for c in step.optimizer_calls]
