"""Decision policies (gpo_core.optimizer.policies): paper, better, significant; and the
paired comparison every candidate gets against the step's current prompt.

Scripted run (engine_fakes): the starting prompt scores 3/8 on dev (always "yes"); any
instruction with "carefully" scores 8/8, fixing the 5 odd numbers and breaking none, so its
exact McNemar p is 2 / 2**5 = 0.0625."""

import json
from typing import Any

import pytest
from demo_cli import SMALL, run_demo_cli, sums_csv

from gpo_core.errors import ConfigError
from gpo_core.optimizer.choices import CHOICES
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.policies import (
    POLICIES,
    early_stop_reason,
    explain_keep,
    get_policy,
    significant_gain,
    steps_without_gain,
)
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import CandidateRecord, Decision, RunState, RunTask, StepRecord
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


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_stops_after_patience_steps_without_a_significant_gain(tmp_path):
    # step 1 takes CAREFUL (5 fixed, 0 broken, p = 0.0625: not significant at 0.05); step 2 the
    # paper's best new prompt, 3/8 (breaks 5): no gain twice -> stop with 2 of the 4 steps run
    s = new_session(tmp_path, policy="paper", patience=2)
    done = s.run_auto()
    assert [st.step for st in done] == [1, 2] and len(s.state.decided_steps) == 2 and not s.finished
    reason = ("stopped early: 2 steps without a significant gain (p < 0.05): steps 1-2 kept a prompt or chose "
              "one not significantly better than the prompt before it; 2 of 4 steps not run")
    assert s.stop_note == reason and s.state.stopped_early["after_step"] == 2
    assert steps_without_gain(s.state) == 2
    models = fake_models()
    again = GPOSession.open(tmp_path, models, take_over=True)    # recorded in run.json
    assert again.stop_note == reason
    assert again.run_auto() == [] and len(models.optimizer.calls) + len(models.task.calls) == 0
    again.propose()                    # the user goes on by hand: the early stop no longer holds
    assert again.stop_note is None and again.state.stopped_early is None


def test_a_significant_gain_resets_the_count(tmp_path):
    # at alpha 0.1, CAREFUL's p = 0.0625 is a significant gain: the count starts after step 1
    s = new_session(tmp_path, policy="paper", patience=2, alpha=0.1)
    s.propose()
    s.decide_auto()
    assert significant_gain(s.state.steps[-1], s.state) and steps_without_gain(s.state) == 0
    done = s.run_auto()
    assert [st.step for st in done] == [2, 3]
    assert s.stop_note.startswith("stopped early: 2 steps without a significant gain (p < 0.1): steps 2-3")
    assert "1 of 4 steps not run" in s.stop_note


def test_patience_zero_never_stops_and_the_cli_flag_is_checked(tmp_path):
    s = new_session(tmp_path, policy="paper", patience=0)
    s.run_auto()
    assert s.finished and s.stop_note is None and early_stop_reason(s.state) is None
    assert OptimizerSettings(patience=3).validate().patience == 3
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ConfigError) as e:
            OptimizerSettings(patience=bad).validate("cli")  # type: ignore[arg-type]
        assert e.value.setting == "--patience"


def _decided(*cands: CandidateRecord, chosen: str | None, t: int = 1) -> StepRecord:
    st = _step(*cands)
    st.step = t
    st.decision = Decision("auto" if chosen else "no_candidate", chosen)
    return st


def test_significant_gain_on_scripted_scores():
    state = _state(0.5, alpha=0.05, policy="paper")
    gain = _cand("g", 0.8, 0.03, fixed=6, broken=0)
    lucky = _cand("l", 0.8, 0.20, fixed=3, broken=1)
    worse = _cand("w", 0.2, 0.01, fixed=0, broken=6)      # significant, but the wrong way
    unpaired = _cand("u", 0.9, None)
    assert significant_gain(_decided(gain, chosen="g"), state)
    assert not significant_gain(_decided(lucky, chosen="l"), state)
    assert not significant_gain(_decided(worse, chosen="w"), state)
    assert not significant_gain(_decided(unpaired, chosen="u"), state)
    assert not significant_gain(_decided(gain, chosen=None), state)      # kept the prompt
    state.steps = [_decided(gain, chosen="g", t=1), _decided(lucky, chosen="l", t=2), _decided(worse, chosen="w", t=3)]
    assert steps_without_gain(state) == 2
    state.settings = RunSettings(optimizer=OptimizerSettings(policy="paper", patience=3, steps=6))
    assert early_stop_reason(state) is None                               # 2 < 3
    state.settings = RunSettings(optimizer=OptimizerSettings(policy="paper", patience=2, steps=6))
    assert early_stop_reason(state).startswith("stopped early: 2 steps without a significant gain (p < 0.05): "
                                               "steps 2-3")
    # "reject all" attempts do not count as steps
    rejected = _decided(lucky, chosen=None, t=4)
    rejected.decision = Decision("reject_all")
    state.steps.append(rejected)
    assert steps_without_gain(state) == 2


def test_cli_stops_early_says_why_and_resumes_with_another_patience(tmp_path, monkeypatch, capsys):
    out, task = tmp_path / "out", str(sums_csv(tmp_path / "sums.csv"))
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", task, "--steps", "3", *SMALL,
                                    "--patience", "1", "--out", str(out))
    assert code == 0, err
    stop = [line for line in lines if line.startswith("stopped early: 1 step without a significant gain (p < 0.05)")]
    assert len(stop) == 1 and "2 of 3 steps not run" in stop[0]
    assert lines[-1].startswith("done: 1 of 3 steps (stopped early) in ")
    assert json.loads((out / "run.json").read_text())["stopped_early"]["reason"] == stop[0]
    # the same command with --resume stops again at once; --patience 0 lets it run on
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", task, "--steps", "3", *SMALL,
                                    "--patience", "1", "--out", str(out), "--resume")
    assert code == 0 and lines[-1].startswith("done: 1 of 3 steps (stopped early)"), err
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--out", str(out), "--resume", "--patience", "0")
    assert code == 0, err
    assert "--patience: 1 -> 0" in lines and lines[-1].startswith("done: 3 of 3 steps in ")
    assert json.loads((out / "run.json").read_text())["stopped_early"] is None
