"""The runs of a browser session: the open run (a :class:`GPOSession`), creating one from the
draft settings, listing the saved runs and reopening one, with this session's lease token.

When this process has a background job on a run (:mod:`gpo_core.studio.worker`), reopening
that run attaches the job's live session instead of a copy from disk, so a reload sees the
job's progress and result.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeGuard

from gpo_core.errors import ConfigError, GPOError
from gpo_core.models.cache import default_cache_path
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.compare import RunComparison, compare_runs
from gpo_core.runs.labels import RunLabel, delete_run, load_label, parse_tags, save_label
from gpo_core.runs.records import StepRecord
from gpo_core.runs.repository import RunInUseError, RunStore, default_runs_root, load_run_and_data
from gpo_core.runs.storage import preflight
from gpo_core.runs.warm_start import WarmStart
from gpo_core.studio.draft import DraftSettings
from gpo_core.studio.messages import Messages
from gpo_core.studio.model_config import ModelConfig
from gpo_core.studio.task_loader import TaskDraft
from gpo_core.studio.worker import JobRegistry
from gpo_core.tasks.task import TaskSplits

#: What a lease-owner token looks like (it travels in the page address as ``sid``).
OWNER_PATTERN = re.compile(r"^studio-[0-9a-f]{32}$")


def new_run_id() -> str:
    """A fresh run id: local time plus 6 random hex digits (unique per browser session)."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def new_owner() -> str:
    """A fresh lease-owner token for a browser session (not a secret)."""
    return f"studio-{uuid.uuid4().hex}"


def valid_owner(token: object) -> TypeGuard[str]:
    """Whether ``token`` looks like a token :func:`new_owner` made (the page address may
    carry anything)."""
    return isinstance(token, str) and bool(OWNER_PATTERN.match(token))


class Runs:
    """The open run of one browser session and the saved runs it can open.

    root: folder of saved runs. owner: this browser session's lease token on the runs it
    writes (the app keeps it in the page address so a reload is the same owner; an invalid
    one is replaced by a new one). registry: the process's jobs, to attach a live session.
    on_switch: called whenever another run becomes the open one.
    """

    def __init__(self, root: Path | None, draft: DraftSettings, tasks: TaskDraft, models: ModelConfig,
                 messages: Messages, registry: JobRegistry, owner: str | None = None):
        self.root = Path(root) if root else default_runs_root()
        self.draft, self.tasks, self.models, self.messages = draft, tasks, models, messages
        self.registry = registry
        self.owner = owner if valid_owner(owner) else new_owner()
        self.session: GPOSession | None = None
        self.on_switch: Callable[[], None] | None = None

    @property
    def run_id(self) -> str | None:
        """Id of the open run, or None."""
        return self.session.state.run_id if self.session is not None else None

    def require_session(self) -> GPOSession:
        if self.session is None:
            raise ConfigError("run", "create a run first (Optimize page) or open a saved one (Results page)")
        return self.session

    def store(self) -> RunStore:
        return RunStore(self.root)

    def _switch(self, session: GPOSession) -> GPOSession:
        self.session = session
        if self.on_switch is not None:
            self.on_switch()
        return session

    # Creating and opening --------------------------------------------------------------
    def create(self, start_from: WarmStart | None = None) -> GPOSession:
        """Create a run of the loaded task with the draft settings (a new run id; the
        previous run stays saved, and a job still running on it goes on). ConfigError on
        impossible settings. start_from: a warm start (another run's final prompt is the
        starting instruction; the run records where it came from)."""
        task = self.tasks.task
        if task is None:
            raise ConfigError("task", "load a task first (Task page)")
        if start_from is not None:
            task = dataclasses.replace(task, initial_instruction=start_from.prompt)
        settings = self.draft.settings.validate("app")
        if not settings.uses_judge:  # a judge chosen on the Models page is not part of a run that calls none
            settings = settings.replace(judge_model=None)
        splits = self.tasks.splits()
        self.check_storage(splits)
        models = self.models.build(settings)
        run_id = new_run_id()
        session = GPOSession.create(task, settings, models, splits=splits, run_id=run_id,
                                    run_dir=self.store().run_dir(run_id), owner=self.owner)
        if start_from is not None:
            session.state.task.start_from = start_from.record(settings.task_model, task.name)
        return self._switch(session)

    def check_storage(self, splits: TaskSplits | None = None) -> None:
        """Before a run is created (and any model call spent): the runs folder and, when
        responses are cached, the cache folder can be written and have room for the run's
        examples. StorageError naming the folder and the fix otherwise."""
        groups = [splits.train, splits.dev, splits.test] if splits is not None else []
        need = 2 * sum(len(e.input) + len(e.target) for g in groups for e in g)
        preflight(self.root, need, what="the run",
                  fix="Make it writable, or set GPO_HOME to a writable folder and restart the app.")
        if self.models.override is None and self.models.use_cache:
            cache_dir = Path(self.models.provider.cache_path or default_cache_path()).parent
            preflight(cache_dir, what="the response cache",
                      fix="Make it writable, set GPO_HOME to a writable folder, or untick \"Reuse cached "
                          "responses\" on the Models page.")

    def saved(self) -> list[dict]:
        """Saved runs, newest first (see RunStore.list_runs), each with its label's "name"
        and "tags" (a damaged label.json: "label_error" instead; the run stays listed)."""
        rows = self.store().list_runs()
        for r in rows:
            if "error" in r:
                continue
            try:
                label = load_label(self.store().run_dir(r["run_id"]))
            except GPOError as e:
                r["label_error"] = str(e)
                continue
            r["name"], r["tags"] = label.name, list(label.tags)
        return rows

    def compare(self, run_ids: list[str]) -> RunComparison:
        """Compare saved runs by id (see :func:`gpo_core.runs.compare.compare_runs`): ConfigError
        for fewer than 2 or more than 6, RunFileError for an unreadable run."""
        return compare_runs([self.store().run_dir(i) for i in run_ids])

    # Names, tags, notes; deleting ------------------------------------------------------------
    def label(self, run_id: str) -> RunLabel:
        """The saved run's name, tags and note (RunFileError for a damaged label.json)."""
        return load_label(self.store().run_dir(run_id))

    def set_label(self, run_id: str, name: str, tags: str, note: str) -> RunLabel:
        """Save the run's label from the page's fields (tags separated by commas or spaces).
        ConfigError naming the field ("label.name", "label.tags", "label.note"); nothing is
        written then."""
        label = RunLabel(name.strip(), parse_tags(tags), note).validate()
        save_label(self.store().run_dir(run_id), label)
        return label

    def delete(self, run_id: str) -> Path:
        """Delete a saved run's folder (only it: see :func:`gpo_core.runs.labels.delete_run`).
        Refused while a job of this process works on it or another live session holds it
        (RunInUseError). When it is the open run, no run is open afterwards."""
        folder = self.store().run_dir(run_id).resolve()

        def works_on(session: GPOSession | None) -> bool:
            return session is not None and session.run_dir is not None and Path(session.run_dir).resolve() == folder

        busy = {run_id} if any(j.run_id == run_id or works_on(j.session) for j in self.registry.active()) else set()
        gone = delete_run(self.store(), run_id, self.owner, busy_run_ids=busy)
        if works_on(self.session):
            self.session = None
            if self.on_switch is not None:
                self.on_switch()
        return gone

    def open(self, run_id: str, take_over: bool = False) -> GPOSession:
        """Reopen a saved run to inspect or resume it, on the models saved with it, and load
        its task (rebuilt from the run: a new run on the same data needs no upload).

        When this process has a job on the run (running, or finished and not yet shown), the
        live session of that job is attached instead of a copy from disk, so its progress
        and result are seen here. RunInUseError when another live session holds the run
        (``take_over`` to take it), RunFileError for an unreadable run or an id outside the
        runs folder."""
        run_dir = self.store().run_dir(run_id)
        live: GPOSession | None = self.registry.session_for(run_id)
        if live is not None and live.run_dir is not None and Path(live.run_dir).resolve() == run_dir.resolve():
            # The same browser (a reload keeps the owner token) attaches at once; another one
            # only when it asks to take the run over, and then shares the live session.
            if live.owner != self.owner and not take_over:
                raise RunInUseError(f"run {run_id} is open in another session, which is working on it now; "
                                    "open it anyway to take it over")
            session = live
        else:
            # the run continues on the models it was made with (run.json only: data.json is read once, below)
            saved = load_run_and_data(run_dir, with_data=False)[0].settings
            session = GPOSession.open(run_dir, self.models.build(saved), owner=self.owner, take_over=take_over)
        self._switch(session)
        self.tasks.load_from_run(session.state, seed=session.settings.splits.seed)
        return session

    def reopen_from_address(self, run_id: str) -> bool:
        """Open the run named in the page address (a reload, a bookmarked link). Never
        raises: a problem becomes a message; returns whether the run is open."""
        try:
            self.open(run_id)
        except RunInUseError as e:
            self.messages.flash("warning", f"{e}. Open it on the Results page to take it over.")
            return False
        except GPOError as e:
            self.messages.flash("error", f"The run in the address ({run_id}) cannot be opened: {e}")
            return False
        return True

    # What the open run shows -------------------------------------------------------------
    def shown_step(self) -> StepRecord | None:
        """The step the Optimize page shows: the pending one, else the last one."""
        if self.session is None or not self.session.state.steps:
            return None
        return self.session.state.pending_step or self.session.state.steps[-1]

    def records(self, key: str, split: str = "dev") -> list[dict]:
        """Per-example records of a scored prompt ("initial" or a candidate id); [] when none
        were kept or their file cannot be read (then :meth:`records_problem` says why)."""
        return self.require_session().records(key, split)

    def records_problem(self, key: str, split: str = "dev") -> str | None:
        """Why the records of ``key`` on ``split`` cannot be shown (a damaged file, a link, a
        disk fault: one line naming the file), or None. The page still draws; only those
        per-example results are marked unreadable."""
        return self.require_session().repo.records_problem(key, split)
