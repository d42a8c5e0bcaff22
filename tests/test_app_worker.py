"""Issue 9, "an app that never drops work": long work runs in a background job per run.

The Optimize page submits jobs from button callbacks and shows the running job (progress,
finished steps, Stop); the job lives in a process-wide registry keyed by run id, so a reload
or a page change neither cancels nor loses it. AppTest runs a page script synchronously and
does not fire ``st.fragment(run_every=...)``: these tests wait for the job, then run the page
again, as the polling fragment would.
"""

from __future__ import annotations

import time

import pytest

from gpo_core.models.base import ChatRequest, Completion
from gpo_core.models.demo import demo_models
from gpo_core.optimizer.session import Models
from gpo_core.studio.studio import Studio
from gpo_core.studio.worker import JobBusyError, JobRegistry

from app_support import (
    app_for,
    arithmetic_studio,
    click,
    no_exception,
    open_run_id,
    saved_copy,
    settle,
    started_run,
    texts,
    wait_idle,
)

LATENCY_S = 0.03


def _slow_studio(tmp_path, steps: int = 3, latency_s: float = LATENCY_S, **kwargs) -> Studio:
    """A started run on demo models that take ``latency_s`` per call; submits return at once."""
    studio = arithmetic_studio(tmp_path, **kwargs)
    studio.models.override = demo_models(latency_s=latency_s)
    studio.actions.quick_wait_s = 0  # show the running job, however quick
    return started_run(studio, steps=steps, candidates=2)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_next_step_runs_in_the_background_with_progress_and_conflicting_buttons_disabled(tmp_path):
    studio = _slow_studio(tmp_path)
    at = app_for(studio, "pages/optimize.py")
    at.button(key="next_step").click().run()
    no_exception(at)
    assert studio.actions.busy()
    assert any(t.startswith("**Running step 1 of 3") for t in texts(at.markdown)), texts(at.markdown)
    assert any("The work goes on if you leave this page or reload it." in t for t in texts(at.caption))
    for key in ("next_step", "run_auto"):
        assert at.button(key=key).disabled, key
    assert not at.button(key="stop_auto").disabled
    at.session_state["settings_box_run"] = True  # "Start a new run" waits too
    at.run()
    assert at.button(key="new_run").disabled or not studio.actions.busy()
    settle(at)
    no_exception(at)
    assert not studio.actions.busy()
    assert "Step 1: 2 candidates ready. Accept one or reject all." in texts(at.success)
    assert texts(at.subheader)[0].startswith("Step 1 of 3")
    assert not at.button(key="accept_best").disabled


def test_stop_during_an_automatic_run_keeps_every_finished_step(tmp_path):
    # slow enough (about 2 s a step) that Stop lands before the 4 steps are done, even on a
    # loaded machine
    studio = _slow_studio(tmp_path, steps=4, latency_s=0.15)
    at = app_for(studio, "pages/optimize.py")
    at.number_input(key="auto_n").set_value(4)
    at.button(key="run_auto").click().run()
    no_exception(at)
    job = studio.runs.registry.get(studio.runs.run_id)
    _wait_for(lambda: len(job.view().log) >= 1)
    at.run()  # the page shows the finished step in the job's log
    assert any(t.startswith("Step 1: auto") for t in texts(at.text)), texts(at.text)
    at.button(key="stop_auto").click().run()
    assert job.view().stop_requested
    settle(at)
    no_exception(at)
    decided = len(studio.runs.session.state.decided_steps)
    assert 1 <= decided < 4 and studio.runs.session.state.pending_step is None
    assert f"Stopped. Every finished step is kept: {decided} of 4 steps done." in texts(at.info), job.view()
    saved = saved_copy(studio)
    assert len(saved.state.decided_steps) == decided  # every finished step is on disk
    assert not at.button(key="run_auto").disabled  # the run resumes from here


class _DownOptimizer:
    """An optimizer endpoint that fails every call."""

    name, max_concurrency = "down-optimizer", 4

    def complete(self, request: ChatRequest) -> Completion:
        return Completion(text="", attempts=3, error="connection refused (gave up after 3 attempts)")


def test_a_failed_job_shows_its_error_on_the_page_not_in_a_collapsed_box(tmp_path):
    studio = arithmetic_studio(tmp_path)
    demo = demo_models()
    studio.models.override = Models(demo.task, _DownOptimizer(), demo.embedder)
    studio.draft.update_optimizer(steps=3, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    click(at, "next_step")
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Running step 1 of 3 failed: every optimizer call failed"), errors
    assert "Every finished step is kept: 0 of 3 steps done." in errors[0]
    assert all(not e.error for e in at.expander)  # shown on the page itself, not inside a box
    assert not at.button(key="next_step").disabled  # try again


def test_navigating_away_and_back_does_not_cancel_the_job(tmp_path):
    studio = _slow_studio(tmp_path)
    at = app_for(studio, "pages/optimize.py")
    at.number_input(key="auto_n").set_value(3)
    at.button(key="run_auto").click().run()
    at.switch_page("pages/results.py").run()
    no_exception(at)
    if studio.actions.busy():  # the sidebar tells the work goes on
        assert "Working in the background" in texts(at.sidebar.caption)
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/optimize.py").run()
    settle(at)
    no_exception(at)
    assert len(studio.runs.session.state.decided_steps) == 3
    assert "Ran 3 steps automatically." in texts(at.success)


def test_a_reloaded_tab_attaches_to_the_job_still_running_on_its_run(tmp_path):
    first = _slow_studio(tmp_path)
    first.actions.submit_run_auto(3)
    assert first.actions.busy()
    # the reload: a new browser session with the owner token and run id from the address
    again = Studio(runs_root=first.runs.root, models_override=first.models.override, owner=first.runs.owner)
    again.runs.open(open_run_id(first))
    assert again.runs.session is first.runs.session and again.actions.busy()  # the live session, not a copy from disk
    at = app_for(again, "pages/optimize.py")
    assert any(t.startswith("**Running 3 steps automatically") for t in texts(at.markdown))
    settle(at)
    assert len(again.runs.session.state.decided_steps) == 3
    assert "Ran 3 steps automatically." in texts(at.success)


def test_a_reload_after_the_job_ended_and_was_shown_still_shows_its_outcome(tmp_path):
    """CI caught this race in the browser: the job ended while the user was on another page
    (its outcome shown there once), then a reload drew Optimize with the run done but no
    word of what the job did. The outcome stays where the job ran until the next action."""
    first = _slow_studio(tmp_path)
    first.actions.submit_run_auto(3)
    wait_idle(first)
    assert [f.text for f in first.pop_flashes()] == ["Ran 3 steps automatically."]  # shown on another page
    again = Studio(runs_root=first.runs.root, models_override=first.models.override, owner=first.runs.owner)
    again.runs.open(open_run_id(first))
    at = app_for(again, "pages/optimize.py")
    no_exception(at)
    assert "Ran 3 steps automatically." in texts(at.success)
    at.run()  # and on the next page run too, until the user acts
    assert "Ran 3 steps automatically." in texts(at.success)
    at.button(key="undo").click().run()
    no_exception(at)
    assert "Ran 3 steps automatically." not in texts(at.success)
    assert any(t.startswith("Undid step 3") for t in texts(at.info)), texts(at.info)
    at.run()
    assert "Ran 3 steps automatically." not in texts(at.success)


def test_one_automatic_step_is_said_in_the_singular(tmp_path):
    # seen on a screenshot: "Ran 1 steps automatically."
    studio = _slow_studio(tmp_path)
    assert studio.actions.submit_run_auto(1).label == "Running 1 step automatically…"
    wait_idle(studio)
    assert studio.actions.collect_outcome().text == "Ran 1 step automatically."


def test_another_browser_cannot_silently_take_a_run_that_is_working(tmp_path):
    first = _slow_studio(tmp_path)
    first.actions.submit_run_auto(3)
    other = Studio(runs_root=first.runs.root, models_override=first.models.override)
    from gpo_core.runs.repository import RunInUseError

    with pytest.raises(RunInUseError, match="open it anyway"):
        other.runs.open(open_run_id(first))
    wait_idle(first)


def test_one_job_per_run_at_a_time(tmp_path):
    studio = _slow_studio(tmp_path)
    studio.actions.submit_run_auto(2)
    with pytest.raises(JobBusyError, match="still running"):
        studio.actions.submit_next_step()
    with pytest.raises(JobBusyError):
        studio.actions.undo()
    wait_idle(studio)
    assert len(studio.runs.session.state.decided_steps) == 2


def test_a_job_survives_its_browser_session(tmp_path):
    """The registry holds the job, not the page: dropping every reference to the Studio that
    submitted it (a closed tab) leaves the work running and its outcome collectable."""
    registry = JobRegistry()
    studio = _slow_studio(tmp_path)
    studio.runs.registry = registry
    run_id, owner = open_run_id(studio), studio.runs.owner
    studio.actions.submit_run_auto(2)
    del studio
    job = registry.get(run_id)
    assert job is not None and job.wait(60)
    again = Studio(runs_root=tmp_path / "runs", models_override=demo_models(), owner=owner, jobs=registry)
    again.runs.open(run_id)
    assert again.actions.collect_outcome().text == "Ran 2 steps automatically."
    assert len(again.runs.session.state.decided_steps) == 2


def test_a_job_reports_progress_log_result_and_errors():
    registry = JobRegistry()

    def work(job):
        job.on_progress("dev", 3, 4)
        job.add_log("Step 1: done.")
        return 42

    ok = registry.submit("run-a", "auto", "Working…", work, describe=lambda r: f"got {r}")
    assert ok.wait(10)
    v = ok.view()
    assert (v.state, v.phase, v.done, v.total, v.log, v.message, v.error) == \
        ("done", "dev", 3, 4, ("Step 1: done.",), "got 42", None)
    assert registry.collect("run-a") is ok and registry.get("run-a") is None  # shown once

    def boom(job):
        raise RuntimeError("disk full")

    bad = registry.submit("run-b", "step", "Running step 1 of 3: …", boom)
    assert bad.wait(10) and bad.view().state == "failed"
    assert bad.view().error == "unexpected RuntimeError: disk full"

    def until_stopped(job):
        while not job.should_stop():
            time.sleep(0.01)
        return []

    slow = registry.submit("run-c", "auto", "Running…", until_stopped)
    with pytest.raises(JobBusyError):
        registry.submit("run-c", "step", "again", until_stopped)
    assert slow.request_stop() and slow.wait(10) and slow.view().state == "stopped"
    assert not slow.request_stop()  # nothing to stop any more


# Issue 15, item 7: after another session takes a run over, the page says exactly what is
# saved, and no model call is spent on a step that could not be saved.
def _calls(models) -> int:
    return models.task.calls + models.optimizer.calls  # the demo models count their requests


def test_after_a_take_over_the_page_says_what_is_saved_and_no_call_is_spent(tmp_path):
    studio = started_run(arithmetic_studio(tmp_path), steps=3, candidates=2)
    studio.actions.run_auto(1)
    run_id = open_run_id(studio)
    other = Studio(runs_root=studio.runs.root, models_override=demo_models(), jobs=JobRegistry())  # another server
    other.runs.open(run_id, take_over=True)
    spent = _calls(studio.models.override)
    at = app_for(studio, "pages/optimize.py")
    click(at, "next_step")
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"Running step 2 of 3 failed: run {run_id} is open in another session: an app "
                                f"session {other.runs.owner[:15]}…, which last saved it "), errors
    assert errors[0].endswith("ago; open it anyway to take it over. Nothing was sent to a model. Step 1 is saved.")
    assert "Every finished step is kept" not in errors[0]
    assert _calls(studio.models.override) == spent  # the lease was checked before any call
    assert all(not e.error for e in at.expander)  # on the page, not inside a box


def test_a_take_over_during_a_step_says_that_step_was_not_saved(tmp_path):
    studio = _slow_studio(tmp_path, steps=3, latency_s=0.3)
    studio.actions.run_auto(1)
    run_id = open_run_id(studio)
    at = app_for(studio, "pages/optimize.py")
    at.button(key="next_step").click().run()
    job = studio.runs.registry.get(run_id)
    _wait_for(lambda: job.view().phase is not None)  # the step's model calls are under way
    other = Studio(runs_root=studio.runs.root, models_override=demo_models(), jobs=JobRegistry())
    other.runs.open(run_id, take_over=True)
    settle(at)
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert errors[0].startswith("Running step 2 of 3 failed: run "), errors
    assert errors[0].endswith("Step 1 is saved; step 2 was not saved."), errors
    assert "Every finished step is kept" not in errors[0]
    saved = saved_copy(other)
    assert len(saved.state.decided_steps) == 1 and saved.state.pending_step is None
    assert not list((studio.runs.root / run_id / "records").glob("s2*"))  # nothing written into the taken run


def test_a_disk_fault_no_layer_named_is_still_one_line_with_the_fix():
    import errno

    registry = JobRegistry()

    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/r/final_prompt.txt")

    job = registry.submit("run-d", "auto", "Running 2 steps automatically…", full)
    assert job.wait(10) and job.view().state == "failed"
    assert job.view().error == ("/data/runs/r/final_prompt.txt: no space left on device. Free some space on "
                                "that disk, then continue the run (Results page, or run --resume).")
