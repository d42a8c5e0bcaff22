"""Optimize page: score the start, step by hand (accept, edit, reject, resample, undo),
run steps automatically, and keep finished steps when a run is interrupted."""

from __future__ import annotations

import pytest

from gpo_core.models.demo import HashingEmbedder
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.edits import word_edit_distance
from gpo_core.runs.repository import RunStore, load_run
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import uncertainty

from app_support import (
    app_for,
    arithmetic_csv,
    arithmetic_studio,
    chart_traces,
    click,
    no_exception,
    saved_copy,
    started_run,
    texts,
)


def _started(tmp_path, **config):
    """The Optimize page after "Create the run and score the starting prompt"."""
    studio = arithmetic_studio(tmp_path)
    studio.draft.update_optimizer(**({"steps": 3, "candidates": 2} | config))
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    no_exception(at)
    return studio, at


def _stepped(tmp_path, **config):
    studio, at = _started(tmp_path, **config)
    click(at, "next_step")
    no_exception(at)
    return studio, at


def _metrics(at) -> dict[str, str]:
    """Each metric as a user reads it: its value, then its caption when it has one."""
    return {m.label: m.value + (f" · {m.delta}" if m.delta else "") for m in at.metric}


def _shown(acc) -> str:
    """An accuracy as the app shows it in text: value and 95% interval ("62.5% [41–79%]")."""
    return acc.text()


def _metric_shown(acc) -> str:
    """An accuracy as a metric shows it: the value captioned with its 95% interval."""
    value, interval = acc.metric()
    return f"{value} · {interval}"


def _accept(at, key: str) -> None:
    """Click an accept button (``accept_<id>`` or ``accept_best``) and, when the app asks
    whether to accept a candidate the numbers do not support, answer "Accept anyway"."""
    click(at, key)
    if any(b.key == "confirm_yes" for b in at.button):
        click(at, "confirm_yes")


def _frame(at, column: str):
    """The page's table with ``column``; the candidates table sits in a lazy expander, which
    is opened first (as a click on it would)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    if not found:
        at.session_state["candidates_box"] = True
        at.run()
        found = [d.value for d in at.dataframe if column in d.value.columns]
    return found[0]


def test_starting_prompt_is_scored_first(tmp_path):
    studio, at = _started(tmp_path)
    state = studio.runs.session.state
    init = state.initial
    expected = f"{100 * init['dev_accuracy']:.1f}%"
    assert any(t.startswith(f"Starting prompt scored: dev {expected}") for t in texts(at.success))
    m = _metrics(at)
    acc = uncertainty.initial_accuracy(state, "dev")
    assert acc is not None and acc.answered == 6
    assert m["Steps done"] == "0 / 3" and m["Starting prompt (dev)"] == _metric_shown(acc)
    assert m["Starting prompt (dev)"].startswith(expected + " · 95% interval ")
    assert at.code[0].value == "Let's think step by step."
    assert not at.button(key="next_step").disabled


def test_the_meta_prompt_box_shows_the_system_message_an_embedded_optimizer_got(tmp_path):
    studio, at = _stepped(tmp_path)
    step = studio.runs.session.state.pending_step
    step.optimizer_system = "You write instructions for a language model."  # as an embedded optimizer's step records
    at.session_state["meta_box"] = True
    at.run()
    meta = next(e for e in at.expander if e.label.startswith("Meta-prompt"))
    assert [c.value for c in meta.code[:2]] == [step.optimizer_system, step.meta_prompt]
    assert any("System message sent before the meta-prompt" in c.value for c in meta.caption)


def test_next_step_shows_budget_retrieved_prompts_and_candidates(tmp_path):
    studio, at = _stepped(tmp_path)
    at.session_state["schedule_box"] = True  # open the schedule chart and the meta-prompt
    at.session_state["meta_box"] = True
    at.run()
    session = studio.runs.session
    step = session.state.pending_step
    budget = session.budget_for(1)
    assert texts(at.subheader) == [f"Step 1 of 3 · edit budget {budget} words"]
    # the schedule plot of the whole run, current step marked
    schedule = chart_traces(at.get("plotly_chart")[-1])
    assert schedule["edit budget"]["y"] == session.budgets()
    assert schedule["step 1"]["x"] == [1] and schedule["step 1"]["y"] == [budget]
    # retrieved trajectory prompts with their dev score and similarity
    retrieved = _frame(at, "similarity")
    assert list(retrieved["prompt"]) == ["Let's think step by step."]
    assert list(retrieved["dev score"]) == [round(100 * session.state.initial["dev_accuracy"])]
    assert retrieved["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    # meta-prompt, collapsed
    meta = next(e for e in at.expander if e.label.startswith("Meta-prompt"))
    assert "Let's think step by step." in meta.code[-1].value  # the current prompt (wording: the template's)
    # candidates with measured edit distances vs the budget and dev accuracy
    cands = _frame(at, "edit distance")
    assert len(cands) == 2
    for row in cands.to_dict("records"):
        assert row["text"].startswith("Let's think step by step. ")
        assert row["edit distance"] == word_edit_distance("Let's think step by step.", row["text"])
        assert row["budget"] == budget and not row["over budget"]
        assert row["dev accuracy"] == pytest.approx(100 * step.candidate(row["candidate"]).dev_accuracy, abs=0.05)
    md = texts(at.markdown)
    assert any(":green-background[**Check each step carefully.**]" in t for t in md), md
    assert any(":green-badge[within budget:" in t for t in md)
    assert any(f"**{budget}**" in t for t in texts(at.caption))  # the schedule line marks this step


def test_accept_a_candidate_shows_its_scores_and_moves_the_prompt(tmp_path):
    studio, at = _stepped(tmp_path)
    step = studio.runs.session.state.pending_step
    assert step is not None
    cand = step.candidates[1]
    _accept(at, f"accept_{cand.id}")
    no_exception(at)
    state = studio.runs.session.state
    assert state.current_prompt == cand.text
    dev = uncertainty.candidate_dev(cand)
    test = uncertainty.chosen_test(state, step)
    assert dev is not None and test is not None and test.answered == 6
    shown = texts(at.success)
    assert any(f"Step 1: accepted {cand.id} (dev {_shown(dev)}, test {_shown(test)}" in t for t in shown), shown
    assert _metrics(at)["Steps done"] == "1 / 3"
    assert _metrics(at)["Current prompt (dev)"] == _metric_shown(dev)
    assert at.code[0].value == cand.text
    assert not at.button(key="next_step").disabled


def test_edit_a_candidate_then_accept_scores_the_edited_text(tmp_path):
    studio, at = _stepped(tmp_path)
    cand = studio.runs.session.state.pending_step.candidates[0]
    edited = "Let's think step by step. Verify the arithmetic and give the final number."
    at.session_state["edit_box"] = True
    at.run()
    at.selectbox(key="edit_candidate").set_value(cand.id).run()
    at.text_area(key=f"edit_{cand.id}").set_value(edited)
    click(at, "accept_edit")
    no_exception(at)
    step = studio.runs.session.state.steps[-1]
    chosen_id = step.decision.candidate_id
    assert chosen_id is not None
    chosen = step.candidate(chosen_id)
    assert step.decision.kind == "accept_edited" and chosen.text == edited and chosen.origin == "edited"
    assert chosen.dev_accuracy is not None
    assert studio.runs.session.state.current_prompt == edited
    assert any(f"accepted after editing {chosen.id} (dev {100 * chosen.dev_accuracy:.1f}% [" in t
               for t in texts(at.success))
    assert chosen.id in list(_frame(at, "edit distance")["candidate"])


def test_reject_one_then_reject_all_and_resample_then_undo(tmp_path):
    studio, at = _stepped(tmp_path)
    first = studio.runs.session.state.pending_step.candidates[0]
    click(at, f"reject_{first.id}")
    states = dict(zip(_frame(at, "edit distance")["candidate"], _frame(at, "edit distance")["state"]))
    assert states[first.id] == "rejected"
    click(at, "reject_all")
    no_exception(at)
    steps = studio.runs.session.state.steps
    assert [(s.step, s.attempt) for s in steps] == [(1, 1), (1, 2)]
    assert steps[0].decision.kind == "reject_all" and steps[1].pending
    assert "Attempt 2 of this step (earlier attempts were rejected)." in texts(at.caption)
    assert set(_frame(at, "edit distance")["candidate"]) == {c.id for c in steps[1].candidates}
    click(at, "undo")
    no_exception(at)
    assert studio.runs.session.state.steps == []  # undo removes the whole step, every attempt of it
    assert any(t.startswith("Undid step 1; the prompt is back to: Let's think step by step.") for t in texts(at.info))


def test_accept_best_takes_the_highest_dev_accuracy(tmp_path):
    studio, at = _stepped(tmp_path)
    step = studio.runs.session.state.pending_step
    best = max(step.candidates, key=lambda c: c.dev_accuracy or 0.0)
    _accept(at, "accept_best")
    assert step.decision.candidate_id == best.id
    assert studio.runs.session.state.current_prompt == best.text


def test_over_budget_candidates_are_marked(tmp_path):
    studio, at = _stepped(tmp_path, schedule="fixed", budget_initial=2, budget_final=2)
    cands = _frame(at, "edit distance")
    assert bool((cands["budget"] == 2).all()) and bool(cands["over budget"].all())
    badges = [t for t in texts(at.markdown) if ":red-badge[over budget" in t]
    assert len(badges) == 2
    assert texts(at.subheader) == ["Step 1 of 3 · edit budget 2 words"]


def test_run_steps_automatically_to_the_end(tmp_path):
    studio, at = _started(tmp_path)
    at.number_input(key="auto_n").set_value(3)
    click(at, "run_auto")
    no_exception(at)
    assert len(studio.runs.session.state.decided_steps) == 3
    assert _metrics(at)["Steps done"] == "3 / 3"
    assert "Ran 3 steps automatically." in texts(at.success)
    assert "All 3 steps are done." in texts(at.success)
    assert at.button(key="next_step").disabled and at.button(key="run_auto").disabled


class _Interrupt(Exception):
    """Stands in for Streamlit's rerun/stop exception raised inside a progress callback."""


def test_an_interrupted_automatic_run_keeps_every_finished_step(tmp_path):
    studio = arithmetic_studio(tmp_path)
    started_run(studio, steps=4, candidates=2)
    finished = []

    def on_progress(phase, done, total):
        if len(finished) == 2 and phase == "dev":  # Stop pressed while step 3 is being scored
            raise _Interrupt()

    with pytest.raises(_Interrupt):
        studio.actions.run_auto(4, on_step=finished.append, on_progress=on_progress)
    state = studio.runs.session.state
    assert len(state.decided_steps) == 2 and state.pending_step is None
    # the saved run has the two finished steps and resumes from there
    run_dir = RunStore(studio.runs.root).run_dir(state.run_id)
    saved = load_run(run_dir)  # read from disk, without taking the run's lease
    assert len(saved.decided_steps) == 2
    assert saved.current_prompt == state.current_prompt
    at = app_for(studio, "pages/optimize.py")
    assert _metrics(at)["Steps done"] == "2 / 4"
    click(at, "next_step")
    no_exception(at)
    assert studio.runs.session.state.pending_step.step == 3


def test_stop_when_nothing_runs_says_nothing_is_running(tmp_path):
    """Defect 9: Stop with no work running claimed "Stopped. Every finished step is kept"."""
    studio, at = _stepped(tmp_path)
    click(at, "stop_auto")
    shown = texts(at.info)
    assert "Nothing is running, so there is nothing to stop." in shown, shown
    assert not any(t.startswith("Stopped.") for t in shown + texts(at.success))
    assert studio.runs.session.state.pending_step is not None  # nothing was touched


def test_two_sessions_never_share_a_run(tmp_path):
    a, _ = _started(tmp_path / "a")
    b = arithmetic_studio(tmp_path / "a")  # same runs folder, another browser session
    b.draft.update_optimizer(steps=3, candidates=2)
    b.runs.create()
    assert a.runs.session.state.run_id != b.runs.session.state.run_id
    assert a.runs.session.run_dir != b.runs.session.run_dir


def test_a_rejected_candidate_stays_rejected_after_a_reload_and_accept_best_skips_it(tmp_path):
    """Reject/Restore go through the engine: the rejection is saved with the run, a reopened
    run still shows it, and "Accept best" never picks it."""
    studio, at = _stepped(tmp_path)
    best = studio.runs.session.best_candidate()
    click(at, f"reject_{best.id}")
    assert at.button(key=f"restore_{best.id}")  # the card offers Restore instead of Accept
    states = dict(zip(_frame(at, "edit distance")["candidate"], _frame(at, "edit distance")["state"]))
    assert states[best.id] == "rejected"
    # another browser session opens the run from disk
    again = Studio(runs_root=studio.runs.root, models_override=studio.models.override)
    again.runs.open(studio.runs.session.state.run_id, take_over=True)
    assert again.runs.session is not studio.runs.session
    assert again.runs.session.state.pending_step.candidate(best.id).rejected
    at2 = app_for(again, "pages/optimize.py")
    states = dict(zip(_frame(at2, "edit distance")["candidate"], _frame(at2, "edit distance")["state"]))
    assert states[best.id] == "rejected"
    _accept(at2, "accept_best")
    decided = again.runs.session.state.steps[-1]
    assert decided.decision is not None and decided.decision.candidate_id != best.id


def test_restore_takes_a_rejection_back_in_the_saved_run(tmp_path):
    studio, at = _stepped(tmp_path)
    cand = studio.runs.session.state.pending_step.candidates[0]
    click(at, f"reject_{cand.id}")
    click(at, f"restore_{cand.id}")
    saved = saved_copy(studio)
    assert not saved.state.pending_step.candidate(cand.id).rejected
    assert at.button(key=f"accept_{cand.id}")


def test_a_cached_candidate_shows_cached_and_its_tokens_not_zero(tmp_path, monkeypatch):
    """Defect 10 (display): a candidate scored from the response cache showed "0" tokens."""
    monkeypatch.setenv("GPO_STUDIO_FAKE_MODELS", "1")
    provider = ModelProvider(cache_path=tmp_path / "cache.sqlite", embedder_factory=HashingEmbedder)

    def one_step() -> Studio:
        studio = Studio(runs_root=tmp_path / "runs", provider=provider)
        studio.tasks.preview_upload(arithmetic_csv(24), "arith.csv")
        studio.tasks.load_upload("question", "answer")
        studio.tasks.update_splits(dev_size=6, test_size=6, seed=0)
        started_run(studio, steps=2, candidates=2)
        studio.actions.next_step()
        return studio

    one_step()
    studio = one_step()  # the same step again: every request is answered from the cache
    scored = [c for c in studio.runs.session.state.pending_step.candidates if c.status == "scored"]
    assert scored and all(c.usage.cached_calls == c.usage.calls > 0 for c in scored)
    at = app_for(studio, "pages/optimize.py")
    tokens = dict(zip(_frame(at, "edit distance")["candidate"], _frame(at, "edit distance")["tokens"]))
    for c in scored:
        assert tokens[c.id].startswith("cached"), tokens
        assert tokens[c.id] != "0"
    cards = [t for t in texts(at.markdown) if "tokens (dev scoring)" in t]
    assert len(cards) == len(step_candidates := studio.runs.session.state.pending_step.candidates), cards
    for c, card in zip(step_candidates, cards):
        if c in scored:
            assert "tokens (dev scoring) cached" in card, card
