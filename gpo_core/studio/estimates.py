"""The cost estimate of the next run (before "Create the run") and of the rest of the open
run, for the app: :func:`gpo_core.costs.estimate.estimate_run` on the draft settings and the
loaded task, learning completion lengths and latency from the recent runs in the runs folder.

A few milliseconds (the prompts are built and counted, no model is called), so the Optimize
page recomputes it whenever a setting changes.
"""

from __future__ import annotations

from pathlib import Path

from gpo_core.costs.estimate import RunEstimate, estimate_run, recent_runs
from gpo_core.optimizer.session import GPOSession
from gpo_core.studio.draft import DraftSettings
from gpo_core.studio.task_loader import TaskDraft

__all__ = ["draft_estimate", "rest_of_run_estimate"]


def draft_estimate(draft: DraftSettings, tasks: TaskDraft, runs_root: Path | None) -> RunEstimate | None:
    """What a run of the loaded task with the draft settings will cost (calls, tokens,
    minutes, dollars; see :class:`RunEstimate`), or None when no task is loaded. Raises
    ConfigError for settings the run could not be created with (naming the widget)."""
    task = tasks.task
    if task is None:
        return None
    settings = draft.settings.validate("app")
    return estimate_run(settings, task, splits=tasks.splits(), history=recent_runs(runs_root))


def rest_of_run_estimate(session: GPOSession, runs_root: Path | None) -> RunEstimate:
    """What the steps of ``session``'s run still to do will cost (steps decided and the
    starting prompt once scored are not counted), at the run's own prices."""
    return estimate_run(state=session.state, prices=session.prices, history=recent_runs(runs_root))
