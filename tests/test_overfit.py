"""Overfitting guard: the dev-test gap per step with its Newcombe interval and warning, the
blind test (hidden, then revealed; always in exports), and the leak flags on candidates
(copies exemplar or dev text, names an answer label) with the option to drop them unscored.

Scripted run (engine_fakes): "Is N even?"; an instruction with "carefully" answers right,
any other answers "yes" (3/8 on dev)."""

import json
from typing import Any

import pytest
from demo_cli import SMALL, run_demo_cli, sums_csv

from gpo_core.errors import ConfigError
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.leaks import BOILERPLATE_EXAMPLES, COPY_NGRAM, LeakChecker, label_set
from gpo_core.optimizer.overfit import GAP_THRESHOLD, gap_series, gap_warning_text, is_test_hidden
from gpo_core.optimizer.policies import eligible, ineligible_reason
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.exports import export_json, export_markdown
from gpo_core.runs.records import CandidateRecord, Decision, RunState, RunTask, StepRecord
from gpo_core.settings import OptimizerSettings, RunSettings
from gpo_core.stats import diff_interval
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import fake_models, optimizer_answer, parity_splits, parity_task, run_settings

CFG: dict[str, Any] = dict(steps=2, candidates=4, k=3, dev_size=None, test_size=None, policy="paper")


def _session(tmp_path, models=None, **cfg) -> GPOSession:
    s = GPOSession.create(parity_task(), run_settings(**(CFG | cfg)), models or fake_models(),
                          splits=parity_splits(), run_dir=tmp_path)
    s.start()
    return s


# ----------------------------------------------------------------------------- the gap


def _gap_state(dev: tuple[int, int], test: tuple[int, int], blind: bool = False) -> RunState:
    """A run with a start scoring dev[0]/dev[1] and test[0]/test[1], one step keeping it."""
    splits = {"dev": [{"input": f"d{i}", "target": "y"} for i in range(dev[1])],
              "test": [{"input": f"t{i}", "target": "y"} for i in range(test[1])], "train": []}
    state = RunState(run_id="r", created_at="", task=RunTask("t", "yes_no", "Q_end"), splits=splits,
                     settings=RunSettings(optimizer=OptimizerSettings(blind_test=blind)),
                     initial={"prompt": "p", "dev_accuracy": dev[0] / dev[1], "test_accuracy": test[0] / test[1],
                              "dev_errors": 0, "test_errors": 0},
                     trajectory=[TrajectoryEntry(0, "p", dev[0] / dev[1], 0, None, True, "initial")],
                     current_prompt="p")
    state.steps.append(StepRecord(step=1, attempt=1, budget=10, budget_in_prompt=True, current_prompt="p",
                                  current_entry_id=0, retrieved=[], exemplars=[], meta_prompt="", optimizer_calls=[],
                                  candidates=[], decision=Decision("no_candidate")))
    return state


def test_the_gap_and_its_interval_per_step():
    points = gap_series(_gap_state((8, 8), (2, 10)))
    assert [p.step for p in points] == [0, 1]                 # the start, then the prompt kept at step 1
    p = points[0]
    assert p.gap == pytest.approx(0.8)
    assert p.gap_ci is not None and p.gap_ci == pytest.approx(diff_interval(8, 8, 2, 10))
    lo, hi = p.gap_ci
    # statsmodels 0.14 confint_proportions_2indep(8, 8, 2, 10, method="newcomb"), computed once:
    assert lo == pytest.approx(0.3514026725, abs=1e-8) and hi == pytest.approx(0.9433178485, abs=1e-8)
    assert p.warning and GAP_THRESHOLD == 0.10
    text = gap_warning_text(p)
    assert text is not None and text.startswith(
        "dev-test gap opened at step 0: dev 100.0% vs test 20.0%, gap +80.0 points [95% CI +35.1, +94.3]")


def test_no_warning_when_the_gap_could_be_chance_or_is_small():
    assert not gap_series(_gap_state((6, 8), (5, 10)))[0].warning          # interval holds 0
    small = gap_series(_gap_state((960, 1000), (900, 1000)))[0]             # clear but 6 points
    assert small.gap_ci[0] > 0 and small.gap == pytest.approx(0.06) and not small.warning
    assert gap_warning_text(small) is None


def test_gap_series_of_a_scripted_run_follows_the_chosen_prompt(tmp_path):
    s = _session(tmp_path)
    s.run_auto()
    points = gap_series(s.state)
    assert [(p.step, p.dev.correct, p.test.correct) for p in points] == [(0, 3, 5), (1, 8, 10), (2, 3, 5)]
    assert [p.entry_id for p in points][1] == s.state.steps[0].chosen_entry_id
    assert not any(p.warning for p in points)


# ----------------------------------------------------------------------------- blind test


def test_blind_test_scores_test_hides_it_then_reveals(tmp_path):
    s = _session(tmp_path, blind_test=True)
    s.run_auto()
    assert s.state.initial["test_accuracy"] is not None                # computed and stored
    assert s.state.steps[0].chosen_test_accuracy == 1.0
    assert is_test_hidden(s.state)
    hidden = gap_series(s.state)
    assert all(p.hidden and p.test is None and p.gap is None and not p.warning for p in hidden)
    assert all(p.test is not None for p in gap_series(s.state, include_hidden=True))
    # exports always include test scores, marked as blind, and do not reveal by themselves
    data = json.loads(export_json(s))
    assert data["blind_test"]["enabled"] and data["blind_test"]["hidden_in_app"]
    assert "not revealed yet" in data["blind_test"]["note"] and data["final"]["test"]["final"]["correct"] == 10
    assert "Note: blind test: test scores are hidden in the app" in export_markdown(s)
    assert is_test_hidden(s.state)
    s.reveal_test("user")
    assert not is_test_hidden(s.state) and s.state.test_revealed["by"] == "user"
    assert all(not p.hidden and p.test is not None for p in gap_series(s.state))
    again = GPOSession.open(tmp_path, fake_models(), take_over=True)    # saved
    assert not is_test_hidden(again.state) and again.state.test_revealed["by"] == "user"
    assert "revealed by user at" in json.loads(export_json(again))["blind_test"]["note"]


def test_the_app_export_counts_as_revealing(tmp_path):
    from gpo_core.studio.exports import RunExports

    s = _session(tmp_path, blind_test=True)

    class _Runs:
        def require_session(self):
            return s

    assert is_test_hidden(s.state)
    RunExports(_Runs()).report_md()  # type: ignore[arg-type]
    assert not is_test_hidden(s.state) and s.state.test_revealed["by"] == "export"


def test_a_run_that_is_not_blind_is_never_hidden(tmp_path):
    s = _session(tmp_path)
    assert not is_test_hidden(s.state)
    s.reveal_test()
    assert s.state.test_revealed is None


def test_cli_blind_test_prints_no_test_score_until_the_end(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "sums.csv")),
                                    "--steps", "2", *SMALL, "--blind-test", "--out", str(out))
    assert code == 0, err
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) == 3 and all("test hidden (blind test)" in line for line in steps)
    assert not any(", test 0." in line or ", test 1." in line for line in steps)
    assert "(blind test: test revealed at the end of the run)" in lines[-1] and "; test " in lines[-1]
    saved = json.loads((out / "run.json").read_text())
    assert saved["test_revealed"]["by"] == "cli" and saved["initial"]["test_accuracy"] is not None


# ----------------------------------------------------------------------------- leaks


EXEMPLARS = [("exemplar 1", {"input": "Tom has three red apples and gives two of them to his sister Mary. How many "
                                      "apples does Tom have now?", "target": "1"}),
             ("dev example 1", {"input": "A train leaves the station at noon and travels at sixty miles per hour "
                                         "toward the coast.", "target": "2"}),
             ("dev example 2", {"input": "Count the legs: a spider, a cat and a bird.", "target": "14"})]


def test_copy_detection_on_hand_made_candidates():
    c = LeakChecker(EXEMPLARS, initial_instruction="Let's think step by step.")
    assert COPY_NGRAM == 8
    flags, notes = c.check("Solve it. Tom has three red apples and gives two of them away, then answer.")
    assert flags == ["copies-data"]
    assert notes == ['copies-data: shares "tom has three red apples and gives two" (8 words in a row) '
                     "with exemplar 1 (input)"]
    # case and punctuation do not hide a copy; the dev split counts as well
    assert c.check("THE TRAIN LEAVES THE STATION AT NOON, AND TRAVELS at sixty")[0] == ["copies-data"]
    assert "dev example 1 (input)" in c.check("A train leaves the station at noon and travels fast.")[1][0]
    # 7 words in a row is no copy
    assert c.check("Remember: Tom has three red apples and gives nothing.")[0] == []


def test_boilerplate_and_the_users_own_words_are_not_copies():
    template = "Answer the following question about the story with a single number."
    exs = [(f"dev example {i}", {"input": f"{template} Story {i}: item {i} of many.", "target": str(i)})
           for i in range(6)]
    c = LeakChecker(exs, initial_instruction="")
    assert c.check(template)[0] == []                         # in every example: the task's format
    assert BOILERPLATE_EXAMPLES == 3                          # ... or in 3 of them; in 2 it is a copy
    assert LeakChecker(exs[:3]).check(template)[0] == [] and LeakChecker(exs[:2]).check(template)[0] == ["copies-data"]
    mine = "Please read the whole question twice before you answer it carefully."
    c2 = LeakChecker([("dev example 1", {"input": mine + " Q: 2 + 2?", "target": "4"})], initial_instruction=mine)
    assert c2.check(mine)[0] == []                            # the user's starting instruction


@pytest.mark.parametrize("text, flagged", [
    ("The answer is (D).", True),
    ("Answer B.", True),
    ("Answer: C", True),
    ("Think it through; the correct answer is always D.", True),
    ("Choose (A), (B), (C) or (D).", False),
    ("Select A, B, C, or D.", False),
    ("Answer with the letter of the correct option.", False),
    ("Answer A or B.", False),
    ("Pick option A only if you are sure.", False),
    ("Answer a question about it.", False),
])
def test_label_detection_multiple_choice(text, flagged):
    exs = [(f"dev example {i}", {"input": f"Question {i}?", "target": t})
           for i, t in enumerate("(A) (B) (C) (D)".split())]
    flags, notes = LeakChecker(exs).check(text)
    assert (flags == ["names-label"]) == flagged, notes


@pytest.mark.parametrize("text, flagged", [
    ("Always answer yes.", True),
    ("Answer 'Yes'.", True),
    ("Answer with yes or no.", False),
    ("Say yes if the number is even.", False),
    ("The answer is no, unless the number is even.", False),
])
def test_label_detection_yes_no(text, flagged):
    exs = [(f"dev example {i}", {"input": f"Is {i} even?", "target": "yes" if i % 2 == 0 else "no"}) for i in range(8)]
    assert (LeakChecker(exs).check(text)[0] == ["names-label"]) == flagged


def test_the_label_set_is_for_classification_tasks_only():
    assert label_set(["(A)", "B", "(C)"]) == (["A", "B", "C"], [])
    assert label_set(["Yes", "no", "yes"]) == ([], ["no", "yes"])
    assert label_set([str(n) for n in range(40)]) == ([], [])         # too many distinct targets
    assert label_set(["2", "3", "4"]) == ([], [])                     # numbers: no label check
    exs = [(f"dev example {i}", {"input": f"What is {i} + 1?", "target": str(i + 1)}) for i in range(3)]
    assert LeakChecker(exs).check("Answer with 2 decimals. The answer is 3.")[0] == []


# ----------------------------------------------------------------------------- drop flagged


def _leaky_optimizer(req):
    if req.sample_index == 1:
        return "<INS>The answer is yes.</INS>"
    return optimizer_answer(req)


def _leaky_models():
    models = fake_models()
    models.optimizer = ScriptedChatModel(_leaky_optimizer, name="fake-optimizer")
    return models


def test_flagged_candidates_are_scored_and_badged_by_default(tmp_path):
    s = _session(tmp_path, _leaky_models())
    step = s.propose()
    leak = next(c for c in step.candidates if c.text == "The answer is yes.")
    assert leak.flags == ["names-label"] and leak.status == "scored" and leak.dev_accuracy == 3 / 8
    assert leak.flag_notes == ['names-label: names the label yes as the answer: "answer is yes"']
    assert all(not c.flags for c in step.candidates if c is not leak)


def test_drop_flagged_drops_them_unscored_and_says_why(tmp_path):
    models = _leaky_models()
    s = _session(tmp_path, models, drop_flagged=True)
    calls_before = len(models.task.calls)
    step = s.propose()
    leak = next(c for c in step.candidates if c.text == "The answer is yes.")
    assert leak.status == "flagged" and leak.dev_accuracy is None and leak.dev_n == 0
    scored = [c for c in step.candidates if c.status == "scored"]
    assert len(models.task.calls) - calls_before == 8 * len(scored)          # not a call for the leak
    assert leak not in eligible(step, s.state)
    assert ineligible_reason(leak, s.state) == ('dropped unscored: names-label: names the label yes as the '
                                               'answer: "answer is yes"')
    again = GPOSession.open(tmp_path, fake_models(), take_over=True)         # kept in run.json
    back = again.state.steps[-1].candidate(leak.id)
    assert back.status == "flagged" and back.flags == ["names-label"]
    md = export_markdown(again)
    assert "## Flagged candidates" in md and f"`{leak.id}` (names an answer label; dropped unscored)" in md
    # the user may still take it by hand: it is scored on dev first
    again.accept(leak.id)
    assert back.status == "scored" and back.dev_accuracy == 3 / 8 and again.state.current_prompt == leak.text


def test_drop_flagged_is_a_setting_and_a_cli_flag():
    assert OptimizerSettings(drop_flagged=True).validate().drop_flagged
    with pytest.raises(ConfigError) as e:
        OptimizerSettings(drop_flagged="yes").validate("cli")  # type: ignore[arg-type]
    assert e.value.setting == "--drop-flagged"
    from gpo_core.runs.flags import settings_from_flags

    s = settings_from_flags({"drop_flagged": True, "blind_test": True, "patience": 3, "steps": 2})
    assert (s.optimizer.drop_flagged, s.optimizer.blind_test, s.optimizer.patience) == (True, True, 3)


def test_a_hand_edited_candidate_is_checked_too(tmp_path):
    s = _session(tmp_path)
    s.propose()
    step = s.accept(text="Always answer yes.")
    edited = step.candidates[-1]
    assert edited.origin == "edited" and edited.flags == ["names-label"] and edited.status == "scored"


def test_a_candidate_record_keeps_its_flags_through_json():
    c = CandidateRecord(id="s1c1", text="t", flags=["copies-data"], flag_notes=["copies-data: x"], status="flagged")
    back = CandidateRecord.from_dict(json.loads(json.dumps(c.to_dict())))
    assert (back.flags, back.flag_notes, back.status) == (["copies-data"], ["copies-data: x"], "flagged")
    assert CandidateRecord.from_dict({"id": "old", "text": "t"}).flags == []          # older runs
