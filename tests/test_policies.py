"""Decision policies (gpo_core.optimizer.policies): paper, better, significant; and the
paired comparison every candidate gets against the step's current prompt.

Scripted run (engine_fakes): the starting prompt scores 3/8 on dev (always "yes"); any
instruction with "carefully" scores 8/8, fixing the 5 odd numbers and breaking none, so its
exact McNemar p is 2 / 2**5 = 0.0625."""

from typing import Any

import pytest

from gpo_core.errors import ConfigError
from gpo_core.optimizer.choices import CHOICES
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.policies import POLICIES, explain_keep, get_policy
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import CandidateRecord, RunState, RunTask, StepRecord
from gpo_core.settings import OptimizerSettings, RunSettings

from engine_fakes import fake_models, parity_splits, parity_task, run_settings

CFG: dict[str, Any] = dict(steps=4, candidates=4, k=3, dev_size=None, test_size=None)
CAREFUL = "Let's think step by step carefully."


def new_session(tmp_path, **cfg) -> GPOSession:
    s = GPOSession.create(parity_task(), run_settings(**(CFG | cfg)), fake_models(), splits=parity_splits(),
                          run_dir=tmp_path)
    s.start()
    return s


def test_every_candidate_is_compared_with_the_current_prompt(tmp_path):
    s = new_session(tmp_path)
    step = s.propose()
    by_text = {c.text: c for c in step.candidates}
    careful = by_text[CAREFUL]
    assert (careful.dev_correct, careful.dev_answered) == (8, 8)
    assert (careful.fixed, careful.broken) == (5, 0) and careful.p_value == pytest.approx(0.0625)
    same = by_text["Answer with yes or no."]   # answers like the starting prompt: nothing changes
    assert (same.dev_correct, same.fixed, same.broken, same.p_value) == (3, 0, 0, 1.0)
    # kept in run.json and read back
    again = GPOSession.open(tmp_path, fake_models(), take_over=True)
    back = again.state.steps[-1].candidate(careful.id)
    assert (back.dev_correct, back.fixed, back.broken, back.p_value) == (8, 5, 0, pytest.approx(0.0625))


def test_the_comparison_is_against_the_current_prompt_not_the_start(tmp_path):
    s = new_session(tmp_path)
    s.propose()
    s.decide_auto()                        # CAREFUL (8/8) becomes the current prompt
    step = s.propose()                     # the same replies again: duplicates of step 1's candidates
    by_text = {c.text: c for c in step.candidates}
    # duplicates of earlier prompts: compared from their kept records with CAREFUL
    same = by_text["Answer with yes or no."]
    assert (same.status, same.dev_correct, same.dev_answered) == ("duplicate", 3, 8)
    assert (same.fixed, same.broken, same.p_value) == (0, 5, pytest.approx(0.0625))
    assert (by_text[CAREFUL].fixed, by_text[CAREFUL].broken, by_text[CAREFUL].p_value) == (0, 0, 1.0)


def test_paper_takes_the_best_even_when_it_is_no_better(tmp_path):
    s = new_session(tmp_path, policy="paper")
    s.propose()
    assert s.decide_auto().decision.kind == "auto"
    s.propose()
    step = s.decide_auto()
    assert step.decision.kind == "auto" and step.decision.text == "Answer with yes or no."   # 3/8 < 8/8


def test_better_takes_only_a_better_candidate(tmp_path):
    s = new_session(tmp_path, policy="better")
    s.propose()
    assert s.decide_auto().decision.text == CAREFUL        # 8/8 > 3/8
    s.propose()
    step = s.decide_auto()                                  # step 1's replies again: none above 8/8
    assert step.decision.kind == "no_candidate"
    assert "no candidate scores above the current prompt" in step.decision.note
    assert s.state.current_prompt == CAREFUL
    s.propose()                                             # the next step proposes from the same prompt
    with pytest.raises(ConfigError, match="scores above"):
        s.accept_best()


def test_significant_needs_p_below_alpha(tmp_path):
    s = new_session(tmp_path, policy="significant")          # alpha 0.05: p = 0.0625 is not enough
    s.propose()
    step = s.decide_auto()
    assert step.decision.kind == "no_candidate"
    assert "5 fixed / 0 broken, McNemar p = 0.0625 >= alpha = 0.05" in step.decision.note
    assert s.state.current_prompt == "Let's think step by step."


def test_significant_takes_it_at_a_looser_alpha(tmp_path):
    s = new_session(tmp_path / "loose", policy="significant", alpha=0.1)
    s.propose()
    assert s.decide_auto().decision.text == CAREFUL


# ----------------------------------------------------------------------------- by hand


def _state(current_acc: float, alpha: float = 0.05, policy: str = "significant") -> RunState:
    settings = RunSettings(optimizer=OptimizerSettings(policy=policy, alpha=alpha))
    return RunState(run_id="r", created_at="", task=RunTask("t", "yes_no", "Q_end"), splits={}, settings=settings,
                    trajectory=[TrajectoryEntry(0, "start", current_acc, 0, chosen=True)], current_prompt="start")


def _step(*cands: CandidateRecord) -> StepRecord:
    return StepRecord(step=1, attempt=1, budget=10, budget_in_prompt=True, current_prompt="start",
                      current_entry_id=0, retrieved=[], exemplars=[], meta_prompt="", optimizer_calls=[],
                      candidates=list(cands))


def _cand(cid: str, acc: float, p: float | None, **kw: Any) -> CandidateRecord:
    return CandidateRecord(id=cid, text=f"prompt {cid}", dev_accuracy=acc, dev_n=40, p_value=p, **kw)


def test_each_policy_on_scripted_scores():
    step = _step(_cand("a", 0.55, 0.60), _cand("b", 0.70, 0.20), _cand("c", 0.65, 0.01), _cand("d", 0.40, 0.001),
                 _cand("e", 0.90, None, rejected=True))
    state = _state(0.5)
    assert get_policy("paper").choose(step, state).id == "b"          # best eligible (e is rejected)
    assert get_policy("better").choose(step, state).id == "b"         # best of those above 0.5
    assert get_policy("significant").choose(step, state).id == "c"    # better and p < 0.05
    assert get_policy("significant").choose(step, _state(0.5, alpha=0.5)).id == "b"
    assert get_policy("better").choose(step, _state(0.7)) is None     # nothing above 0.7
    assert get_policy("paper").choose(step, _state(0.7)).id == "b"    # the paper takes it anyway
    assert get_policy("significant").choose(step, _state(0.66)) is None


def test_significant_never_takes_an_uncompared_candidate_and_says_why():
    step = _step(_cand("a", 0.9, None))
    state = _state(0.5)
    assert get_policy("significant").choose(step, state) is None
    assert "could be compared" in explain_keep(get_policy("significant"), step, state)
    assert get_policy("better").choose(step, state).id == "a"
    # nothing eligible at all: the common reason, whatever the policy
    none = _step(_cand("a", 0.9, 0.01, rejected=True))
    assert explain_keep(get_policy("significant"), none, state).startswith("no eligible candidate")


def test_policies_are_registered_labelled_and_alpha_is_checked():
    assert set(POLICIES) == {"paper", "better", "significant"} == set(CHOICES["policy"])
    for name in POLICIES:
        assert get_policy(name).label == CHOICES["policy"][name]
    assert OptimizerSettings(alpha=0.01).validate().alpha == 0.01
    for bad in (0, 1, 1.5, -0.1, "0.05", float("nan")):
        with pytest.raises(ConfigError) as e:
            OptimizerSettings(alpha=bad).validate("cli")  # type: ignore[arg-type]
        assert e.value.setting == "--alpha"
    with pytest.raises(ConfigError, match="Significance level"):
        OptimizerSettings(alpha=2.0).validate("app")


def test_old_candidate_records_read_back_without_the_new_fields():
    old = {"id": "s1c1", "text": "x", "dev_accuracy": 0.5, "dev_n": 8, "usage": {}}
    c = CandidateRecord.from_dict(old)
    assert (c.dev_correct, c.fixed, c.broken, c.p_value, c.dev_answered) == (None, None, None, None, 8)
    assert CandidateRecord.from_dict(c.to_dict() | {"some_future_field": 1}) == c


def test_duplicates_in_the_step_and_of_the_start_prompt_carry_their_comparison(tmp_path):
    s = new_session(tmp_path, candidates=6)   # sample 4 repeats sample 1; sample 5 is the starting prompt
    step = s.propose()
    twins = [c for c in step.candidates if c.text == "Answer with yes or no."]
    assert [c.status for c in twins] == ["scored", "duplicate"]
    assert {(c.dev_correct, c.fixed, c.broken, c.p_value) for c in twins} == {(3, 0, 0, 1.0)}
    start = next(c for c in step.candidates if c.text == "Let's think step by step.")
    assert (start.duplicate_of, start.dev_correct, start.dev_answered, start.p_value) == ("initial", 3, 8, 1.0)
