"""The honest final prompt (gpo_core.runs.final): the best dev accuracy among the start and the
chosen prompts, ties going to the EARLIER prompt, and every export saying how it compares with
the start (paired counts, McNemar p, Wilson intervals).

Scripted run (engine_fakes): "Is N even?" on 8 dev examples (5 odd, 3 even). An instruction
with "carefully" answers right (8/8); any other answers "yes" (3/8)."""

import json
from typing import Any

import pytest
from demo_cli import SMALL, run_demo_cli, sums_csv

from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
from gpo_core.runs.final import compare_final_with_start, final_entry
from gpo_core.runs.records import RunState, RunTask
from gpo_core.settings import RunSettings
from gpo_core.stats import mcnemar_exact, wilson_interval
from gpo_core.tasks.task import Task
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import ScriptedModels, fake_models, parity_splits, parity_task, run_settings, task_answer

CFG: dict[str, Any] = dict(steps=2, candidates=4, k=3, dev_size=None, test_size=None, policy="paper")
CAREFUL = "Let's think step by step carefully."


def _state(*entries: tuple[float, bool]) -> RunState:
    """A run whose trajectory has entries (dev accuracy, chosen); entry 0 is the start."""
    traj = [TrajectoryEntry(i, f"prompt {i}", acc, i, None if i == 0 else i - 1, chosen,
                            "initial" if i == 0 else f"s{i}c{i}") for i, (acc, chosen) in enumerate(entries)]
    return RunState(run_id="r", created_at="", task=RunTask("t", "yes_no", "Q_end"), splits={"dev": [], "test": []},
                    settings=RunSettings(), initial={"prompt": "prompt 0", "dev_accuracy": entries[0][0]},
                    trajectory=traj, current_prompt=traj[-1].prompt)


def test_ties_go_to_the_earlier_prompt():
    assert final_entry(_state((0.5, True), (0.75, True), (0.75, True))).id == 1
    assert final_entry(_state((0.75, True), (0.75, True))).id == 0           # the start wins a tie
    assert final_entry(_state((0.5, True), (0.875, False), (0.75, True))).id == 2   # only chosen prompts count


def test_the_start_is_always_a_contender():
    assert final_entry(_state((0.625, True), (0.5, True), (0.25, True))).id == 0
    # even when the trajectory lost entry 0's chosen mark (an old run file)
    state = _state((0.625, False), (0.5, True))
    assert final_entry(state).id == 0 and final_entry(state).prompt == "prompt 0"


def _session(tmp_path, models: ScriptedModels | None = None, task: Task | None = None, **cfg) -> GPOSession:
    s = GPOSession.create(task or parity_task(), run_settings(**(CFG | cfg)), models or fake_models(),
                          splits=parity_splits(), run_dir=tmp_path)
    s.start()
    return s


def test_a_chosen_prompt_that_only_ties_the_start_is_not_exported(tmp_path):
    # the optimizer only ever proposes "Answer with yes or no." (3/8, like the start): the paper
    # policy takes it, but the final prompt stays the start (before: ties went to the latest)
    models = fake_models()
    models.optimizer = ScriptedChatModel(["<INS>Answer with yes or no.</INS>"], name="fake-optimizer")
    s = _session(tmp_path, models, steps=1)
    s.run_auto()
    assert s.state.current_prompt == "Answer with yes or no."
    assert s.best_prompt().id == 0 and final_prompt_text(s) == "Let's think step by step.\n"
    cmp = s.final_comparison()
    assert cmp.is_start and cmp.summary().startswith("final prompt = the starting prompt")


def test_the_start_is_exported_when_every_chosen_prompt_is_worse(tmp_path):
    # the start "Always say no." scores 5/8; the only proposal answers "yes" (3/8); paper takes it
    def task(req):
        return "no" if "Always say no." in req.messages[-1][1] else task_answer(req)

    models = fake_models()
    models.task = ScriptedChatModel(task, name="fake-task")
    models.optimizer = ScriptedChatModel(["<INS>Answer with yes or no.</INS>"], name="fake-optimizer")
    base = parity_task()
    start = Task(name=base.name, examples=base.examples, answer_type=base.answer_type,
                 instruction_position=base.instruction_position, initial_instruction="Always say no.")
    s = _session(tmp_path, models, start, steps=1)
    s.run_auto()
    assert s.state.steps[0].decision.text == "Answer with yes or no."    # chosen, and worse
    assert s.best_prompt().prompt == "Always say no."
    assert s.final_comparison().dev.final.value == 5 / 8


def test_the_comparison_pairs_dev_and_test_examples_with_the_start(tmp_path):
    s = _session(tmp_path)
    s.run_auto()
    assert s.best_prompt().prompt == CAREFUL                            # step 1's 8/8, not step 2's 3/8
    cmp = s.final_comparison()
    assert not cmp.is_start
    assert (cmp.dev.start.correct, cmp.dev.start.answered, cmp.dev.final.correct) == (3, 8, 8)
    assert (cmp.dev.fixed, cmp.dev.broken, cmp.dev.shared) == (5, 0, 8)
    assert cmp.dev.p_value == pytest.approx(0.0625)
    test = parity_splits().test
    odd = sum(1 for e in test if e.target == "no")
    assert (cmp.test.start.correct, cmp.test.final.correct, cmp.test.final.answered) == (len(test) - odd, 10, 10)
    assert (cmp.test.fixed, cmp.test.broken) == (odd, 0) and cmp.test.p_value == pytest.approx(mcnemar_exact(odd, 0))
    assert cmp.dev.start.interval() == wilson_interval(3, 8)
    assert cmp.summary() == (
        "final prompt vs start: dev 100.0% [67.6–100.0%] (8/8) vs start 37.5% [13.7–69.4%] (3/8): "
        "5 fixed, 0 broken of 8 shared examples, McNemar p = 0.0625; "
        f"test {cmp.test.final.text()} vs start {cmp.test.start.text()}: {odd} fixed, 0 broken of 10 shared "
        f"examples, McNemar p = {mcnemar_exact(odd, 0):.3g}")
    # without per-example records the accuracies are still compared, and said to be unpaired
    bare = compare_final_with_start(s.state)
    assert bare.dev.final.correct == 8 and bare.dev.p_value is None
    assert "no per-example records to pair" in bare.summary()


def test_exports_give_every_accuracy_its_interval_and_the_comparison(tmp_path):
    s = _session(tmp_path)
    s.run_auto()
    data = json.loads(export_json(s))
    assert data["final_prompt"] == CAREFUL and data["final"]["is_start"] is False
    assert data["final"]["dev"]["fixed"] == 5 and data["final"]["dev"]["mcnemar_p"] == pytest.approx(0.0625)
    assert data["final"]["dev"]["start"]["ci95"] == pytest.approx(list(wilson_interval(3, 8)), abs=1e-6)
    assert "ties go to the earlier prompt" in data["final"]["rule"]
    assert data["initial"]["dev_ci95"] == pytest.approx(list(wilson_interval(3, 8)), abs=1e-6)
    assert data["initial"]["test_ci95"] is not None
    for st in data["steps"]:
        assert st["chosen_test_ci95"] is not None
        for c in st["candidates"]:
            assert (c["dev_ci95"] is None) == (c["dev_accuracy"] is None)
            assert (c["test_ci95"] is None) == (c["test_accuracy"] is None)
    assert all(e["dev_ci95"] is not None for e in data["trajectory"])
    md = export_markdown(s)
    assert "| starting | 37.5% [13.7–69.4%] (3/8) |" in md
    assert "| final | 100.0% [67.6–100.0%] (8/8) | 100.0% [72.2–100.0%] (10/10) |" in md
    assert "How it compares with the start: final prompt vs start: dev 100.0% [67.6–100.0%] (8/8)" in md
    assert "5 fixed, 0 broken of 8 shared examples, McNemar p = 0.0625" in md
    assert final_prompt_text(s) == CAREFUL + "\n"                   # the bare prompt, nothing else


def test_the_cli_summary_line_compares_the_final_prompt_with_the_start(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "sums.csv")),
                                    "--steps", "2", *SMALL, "--out", str(out))
    assert code == 0, err
    last = lines[-1]
    assert last.startswith("done: 2 of 2 steps in ")
    assert "vs start" in last and "fixed" in last and "McNemar p = " in last and "[" in last
    state = json.loads((out / "run.json").read_text())
    final = (out / "final_prompt.txt").read_text()
    assert final.endswith("\n") and "\n" not in final[:-1] and not final.startswith("#")
    assert final[:-1] in {e["prompt"] for e in state["trajectory"] if e["chosen"]}
