"""GPO Studio's per-browser-session object for the web app: small components, no Streamlit.

A :class:`Studio` holds the state of ONE browser session; the app keeps it in
``st.session_state``, so two browser sessions never share a run. It is composed of one
component per responsibility, which the pages in ``pages/`` call directly:

- ``studio.draft`` (:class:`~gpo_core.studio.draft.DraftSettings`): the settings of the next
  run; the optimizer settings are set here.
- ``studio.tasks`` (:class:`~gpo_core.studio.task_loader.TaskDraft`): the loaded task (sample,
  upload with column mapping, or a reopened run's), its prompting and its split.
- ``studio.models`` (:class:`~gpo_core.studio.model_config.ModelConfig`): the model settings per
  role, the typed API key (memory only), "Test connection", the models built from them.
- ``studio.runs`` (:class:`~gpo_core.studio.runs.Runs`): the open run; create, list, reopen.
- ``studio.actions`` (:class:`~gpo_core.studio.actions.RunActions`): the work on the open run,
  as background jobs (``submit_*``, stop, outcome) or in the caller's thread.
- ``studio.exports`` (:class:`~gpo_core.studio.exports.RunExports`): the open run's downloads.

The tables and texts the pages show come from :mod:`gpo_core.studio.views` and
:mod:`gpo_core.studio.charts`. Not thread-safe (Streamlit runs one script thread per
session); the long work runs in jobs (:mod:`gpo_core.studio.worker`).
"""

from __future__ import annotations

from pathlib import Path

from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.session import Models
from gpo_core.studio.actions import RunActions
from gpo_core.studio.draft import DraftSettings
from gpo_core.studio.exports import RunExports
from gpo_core.studio.messages import Flash, Messages
from gpo_core.studio.model_config import ModelConfig
from gpo_core.studio.runs import Runs
from gpo_core.studio.task_loader import TaskDraft
from gpo_core.studio.worker import REGISTRY, JobRegistry


class Studio:
    """Everything one browser session of GPO Studio does, by component (see the module
    docstring).

    runs_root: folder of saved runs (default ``gpo_home()/runs``). provider: the model
    provider (default: a plain :class:`ModelProvider`). models_override: use these models
    for every run instead of building them from the settings (test seam). owner: this
    browser session's lease token (the app keeps it in the page address so a reload is the
    same owner; default: a new one). jobs: the job registry (default: the process-wide one).
    """

    def __init__(self, runs_root: Path | None = None, provider: ModelProvider | None = None,
                 models_override: Models | None = None, owner: str | None = None,
                 jobs: JobRegistry | None = None):
        self.messages = Messages()
        self.draft = DraftSettings()
        self.tasks = TaskDraft(self.draft)
        self.models = ModelConfig(self.draft, provider, models_override)
        self.runs = Runs(runs_root, self.draft, self.tasks, self.models, self.messages,
                         jobs if jobs is not None else REGISTRY, owner)
        self.actions = RunActions(self.runs, self.models, self.draft)
        self.exports = RunExports(self.runs)

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page run."""
        self.messages.flash(kind, text)

    def pop_flashes(self, outcome: bool = True) -> list[Flash]:
        """The queued messages, emptied; with ``outcome`` the last job's outcome too (the
        Optimize page shows that one where the job's progress was, see
        :meth:`RunActions.pop_outcome`)."""
        out = self.messages.pop()
        if outcome:
            last = self.actions.pop_outcome()
            if last is not None:
                out.append(last)
        return out
