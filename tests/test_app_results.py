"""Results page: curves, trajectory, per-example results, exports, saved runs to reopen."""

from __future__ import annotations

import pytest

from gpo_core.runs.records import CandidateRecord, StepRecord

from app_support import app_for, arithmetic_studio, chart_traces, make_studio, no_exception, started_run, texts


def _chosen(step: StepRecord) -> CandidateRecord:
    """The candidate a decided step chose."""
    assert step.decision is not None and step.decision.candidate_id is not None
    return step.candidate(step.decision.candidate_id)


def _ran(tmp_path, steps_done=2, total=3):
    studio = started_run(arithmetic_studio(tmp_path), steps=total, candidates=2)
    studio.actions.run_auto(steps_done)
    return studio


def test_results_show_curves_trajectory_and_final_prompt(tmp_path):
    studio = _ran(tmp_path)
    at = app_for(studio, "pages/results.py")
    no_exception(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # accuracy, budget, dev-test gap
    acc = chart_traces(charts[0])
    assert list(acc) == ["chosen prompt (dev): 95% interval (upper)", "chosen prompt (dev): 95% interval",
                         "chosen prompt (test): 95% interval (upper)", "chosen prompt (test): 95% interval",
                         "candidates (dev)", "chosen prompt (dev)", "best so far (dev)", "chosen prompt (test)"]
    state = studio.runs.session.state
    chosen = [state.initial["dev_accuracy"]] + [_chosen(s).dev_accuracy
                                                for s in state.decided_steps]
    assert acc["chosen prompt (dev)"]["x"] == [0, 1, 2]
    assert acc["chosen prompt (dev)"]["y"] == pytest.approx([100 * d for d in chosen])
    assert acc["best so far (dev)"]["y"] == pytest.approx([100 * max(chosen[: i + 1]) for i in range(3)])
    assert acc["chosen prompt (test)"]["y"] == pytest.approx(
        [100 * state.initial["test_accuracy"]] + [100 * s.chosen_test_accuracy for s in state.decided_steps])
    n_scored = sum(c.dev_accuracy is not None for s in state.steps for c in s.candidates)
    assert len(acc["candidates (dev)"]["y"]) == n_scored
    budget = chart_traces(charts[1])
    assert budget["edit budget"]["y"] == studio.runs.session.budgets()
    assert budget["chosen candidate"]["y"] == [_chosen(s).edit_distance
                                               for s in state.decided_steps]
    steps = next(d.value for d in at.dataframe if "decision" in d.value.columns)
    assert list(steps["step"]) == ["1.1", "2.1"]
    assert at.code[0].value == studio.runs.session.best_prompt().prompt


def test_per_example_results_filter_to_wrong_answers(tmp_path):
    studio = _ran(tmp_path)
    at = app_for(studio, "pages/results.py")
    at.selectbox(key="records_a").set_value("initial").run()
    records = studio.runs.records("initial", "dev")
    table = next(d.value for d in at.dataframe if "answer" in d.value.columns)
    assert len(table) == len(records)
    at.checkbox(key="records_wrong").check().run()
    table = next(d.value for d in at.dataframe if "answer" in d.value.columns)
    assert len(table) == sum(not r["correct"] for r in records)
    assert not bool(table["correct"].any())


def test_two_prompts_side_by_side(tmp_path):
    studio = _ran(tmp_path)
    at = app_for(studio, "pages/results.py")
    last = _chosen(studio.runs.session.state.decided_steps[-1]).id
    at.selectbox(key="cmp_a").set_value("initial")
    at.selectbox(key="cmp_b").set_value(last).run()
    both = next(d.value for d in at.dataframe if "B correct" in d.value.columns)
    a, b = studio.runs.records("initial", "dev"), studio.runs.records(last, "dev")
    assert len(both) == len(a) == len(b)
    assert list(both["A correct"]) == [r["correct"] for r in a]
    assert list(both["B correct"]) == [r["correct"] for r in b]


def test_three_exports_are_offered(tmp_path):
    studio = _ran(tmp_path)
    at = app_for(studio, "pages/results.py")
    labels = [b.label for b in at.download_button]
    assert labels[:3] == ["Final prompt (.txt)", "Run (.json, no keys)", "Report (.md)"]
    assert labels[3:7] == ["Report (.html, offline)", "Chat messages (.json)", "OpenAI snippet (.py)",
                           "promptfoo config (.yaml)"]
    assert "api_key" not in studio.exports.messages() and '"placeholder": "{input}"' in studio.exports.messages()
    assert studio.exports.final_prompt() == studio.runs.session.best_prompt().prompt + "\n"


def test_a_reloaded_browser_reopens_and_resumes_a_saved_run(tmp_path):
    studio = _ran(tmp_path, steps_done=1, total=3)
    run_id = studio.runs.session.state.run_id
    fresh = make_studio(tmp_path)  # a browser reload: new session, empty session_state
    at = app_for(fresh, "pages/results.py")
    runs = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(runs["run"]) == [run_id] and list(runs["steps"]) == ["1 / 3"]
    at.selectbox(key="open_run_id").set_value(run_id)
    at.button(key="open_run").click().run()
    no_exception(at)
    # the reloaded tab's old session still holds the run: say so, and take it over on request
    assert fresh.runs.session is None
    assert any("open in another session" in t for t in texts(at.warning))
    assert at.button(key="open_run").label == "Open anyway"
    at.button(key="open_run").click().run()
    no_exception(at)
    assert fresh.runs.require_session().state.run_id == run_id
    assert any(t.startswith(f"Opened run {run_id} (1 of 3 steps done)") for t in texts(at.success))
    at.switch_page("pages/optimize.py").run()
    at.button(key="next_step").click().run()
    no_exception(at)
    assert fresh.runs.require_session().state.pending_step.step == 2


def test_no_run_lists_saved_runs_only(tmp_path):
    at = app_for(make_studio(tmp_path), "pages/results.py")
    no_exception(at)
    assert "No saved runs yet." in texts(at.info)


def test_exports_are_built_when_downloaded_not_on_every_page_run(tmp_path, monkeypatch):
    studio = _ran(tmp_path)
    built = []
    for name in ("final_prompt", "run_json", "report_md", "report_html", "messages", "snippet", "promptfoo"):
        original = getattr(studio.exports, name)
        monkeypatch.setattr(studio.exports, name, lambda original=original, name=name: built.append(name) or original())
    at = app_for(studio, "pages/results.py")
    at.run()
    no_exception(at)
    assert [b.label for b in at.download_button][:4] == ["Final prompt (.txt)", "Run (.json, no keys)", "Report (.md)",
                                                         "Report (.html, offline)"]
    assert built == []  # nothing was built to draw the page twice
