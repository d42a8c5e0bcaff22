"""GPO Studio's facade for the web app: one method per user action, no Streamlit import.

The pages in ``pages/`` read their widgets, call one method of :class:`Studio` (or a
function of :mod:`gpo_core.studio.views` / :mod:`gpo_core.studio.charts`) and show the
result. A ``Studio`` holds the state of ONE browser session: the loaded task, the draft
:class:`~gpo_core.settings.RunSettings` of the next run, the API key typed in the page
(kept in memory only, never written anywhere) and the open
:class:`~gpo_core.optimizer.session.GPOSession`. The app keeps it in
``st.session_state``, so two browser sessions never share a run.

Models come from a :class:`~gpo_core.models.provider.ModelProvider`; the app passes one
whose memo is ``st.cache_resource`` so heavy objects are built once per process, lazily.

Long actions (scoring, a step, accepting, resampling, automatic steps) have ``submit_*``
twins that run them as a background :class:`~gpo_core.studio.worker.Job` in the
process-wide :data:`~gpo_core.studio.worker.REGISTRY`, keyed by run id: a reload or a page
change never cancels or loses them. The plain methods (``start``, ``next_step``, ...) run the
same work in the caller's thread (tests, benchmarks).

Test seam: ``Studio(models_override=Models(...))`` makes every run use those models. The
app's demo mode (``GPO_STUDIO_FAKE_MODELS=1``, for the browser tests) instead sets both
roles to the ``demo`` backend, which the provider builds like any other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gpo_core.errors import ConfigError, GPOError, TaskFormatError
from gpo_core.models.base import ChatModel
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.edits import DiffSegment, word_diff
from gpo_core.optimizer.session import GPOSession, Models, Progress
from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
from gpo_core.runs.records import CandidateRecord, StepRecord
from gpo_core.runs.repository import RunInUseError, RunStore, default_runs_root, load_run
from gpo_core.settings import (
    BACKENDS,
    LOCAL_DEFAULT_MODEL,
    ROLES,
    ModelSettings,
    RunSettings,
    SplitSettings,
    default_model_settings,
    default_run_settings,
)
from gpo_core.studio.worker import REGISTRY, Job, JobBusyError, JobRegistry, JobView
from gpo_core.tasks.io import guess_columns, list_sample_tasks, load_task, load_task_bytes, preview_columns
from gpo_core.tasks.splits import split_task
from gpo_core.tasks.task import ANSWER_TYPES, INSTRUCTION_POSITIONS, Example, Task, TaskSplits

#: Environment variable that switches the app to the scripted demo models (browser tests).
FAKE_MODELS_ENV = "GPO_STUDIO_FAKE_MODELS"
#: Human names of the backends (ModelSettings.backend values).
BACKEND_LABELS = {"local": "Embedded (offline)", "openai": "OpenAI", "compatible": "OpenAI-compatible server",
                  "demo": "Scripted demo"}
#: Backends a user can pick on the Models page (the demo backend is set by the environment).
USER_BACKENDS = ("local", "openai", "compatible")
#: The seconds a "Test connection" call may take at most.
CONNECTION_TIMEOUT_S = 10.0
#: Default OpenAI model name offered when the user switches a role to OpenAI.
DEFAULT_OPENAI_MODEL = default_model_settings("task", "openai").model
#: Seconds a submit waits for its job before the page renders: short jobs (cached or fast
#: models) then show their result in the same page run instead of a progress box first.
QUICK_WAIT_S = 0.3
#: What a lease-owner token looks like (it travels in the page address as ``sid``).
OWNER_PATTERN = re.compile(r"^studio-[0-9a-f]{32}$")

assert set(BACKEND_LABELS) == set(BACKENDS)


def demo_mode() -> bool:
    """Whether the app runs on the scripted demo models (``GPO_STUDIO_FAKE_MODELS=1``)."""
    return os.environ.get(FAKE_MODELS_ENV) == "1"


def initial_settings() -> RunSettings:
    """The draft settings of a new browser session: the defaults for the embedded model,
    or the demo models in demo mode."""
    settings = default_run_settings("local")
    if demo_mode():
        settings = settings.replace(
            task_model=settings.task_model.replace(backend="demo", model="scripted-task", concurrency=8),
            optimizer_model=settings.optimizer_model.replace(backend="demo", model="scripted-optimizer", concurrency=8))
    return settings


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def one_column_error(filename: str, columns: list[str]) -> TaskFormatError:
    """The error for an upload with fewer than two columns: it names the file and its only
    column, says a task needs an input and a target column, and guesses the delimiter."""
    if not columns:
        return TaskFormatError(filename, "the file has no columns; a task needs an input column and a target "
                                         "column", line=1)
    col = columns[0]
    hint = ""
    for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep in col:
            hint = (f" The header looks like several columns joined by {name}: save the file comma-separated "
                    "(or tab-separated as .tsv).")
            break
    return TaskFormatError(filename, f"the file has only one column ({col!r}); a task needs two: an input column "
                                     f"and a target column.{hint}", line=1, field=col)


# ----------------------------------------------------------------------------- state


@dataclass
class UploadPreview:
    """A parsed upload waiting for its column mapping: file name, bytes, column names,
    first rows (dicts column -> text) and the guessed input/target columns."""

    filename: str
    data: bytes
    digest: str
    columns: list[str]
    rows: list[dict]
    guessed_input: str | None
    guessed_target: str | None


@dataclass
class Flash:
    """A message to show once after the page reruns: kind in success|info|warning|error."""

    kind: str
    text: str


def new_run_id() -> str:
    """A fresh run id: local time plus 6 random hex digits (unique per browser session)."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def new_owner() -> str:
    """A fresh lease-owner token for a browser session (not a secret)."""
    return f"studio-{uuid.uuid4().hex}"


def valid_owner(token: str | None) -> bool:
    """Whether ``token`` looks like a token :func:`new_owner` made (the page address may
    carry anything)."""
    return isinstance(token, str) and bool(OWNER_PATTERN.match(token))


def task_from_run(state) -> Task:
    """The task of a saved run, rebuilt from its :class:`RunTask` and saved splits, so a new
    run on the same data needs no upload: train, dev and test are explicit splits in the
    run's order (a new run with the same sizes gets exactly the same examples)."""
    def examples(key: str) -> list[Example]:
        return [Example(d["input"], d["target"]) for d in state.splits.get(key, [])]

    train, exemplars = examples("train"), examples("exemplars")
    t = state.task
    return Task(name=t.name, examples=[], answer_type=t.answer_type, instruction_position=t.instruction_position,
                initial_instruction=t.initial_instruction or state.current_prompt, description=t.description,
                explicit_splits={"train": train, "eval": examples("dev"), "test": examples("test")},
                format_examples=exemplars if exemplars and exemplars != train else [], source=t.source)


class Studio:
    """Everything one browser session of GPO Studio does. Not thread-safe (Streamlit runs
    one script thread per session); the long work runs in jobs (see the module docstring).

    runs_root: folder of saved runs (default ``gpo_home()/runs``). provider: the model
    provider (default: a plain :class:`ModelProvider`). models_override: use
    these models for every run instead of building them from the settings (test seam).
    owner: this browser session's lease token (the app keeps it in the page address so a
    reload is the same owner; default: a new one). jobs: the job registry (default: the
    process-wide one).
    """

    def __init__(self, runs_root: Path | None = None, provider: ModelProvider | None = None,
                 models_override: Models | None = None, owner: str | None = None,
                 jobs: JobRegistry | None = None):
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self.provider: ModelProvider = provider or ModelProvider()
        self.models_override = models_override
        self.task: Task | None = None
        self.task_origin: str = ""
        self.task_version: int = 0
        self.upload: UploadPreview | None = None
        self.settings: RunSettings = initial_settings()
        self.api_key: str | None = None
        self.use_cache: bool = True
        self.session: GPOSession | None = None
        self.flashes: list[Flash] = []
        #: The outcome of the open run's last job (shown once where the job was shown).
        self.outcome: Flash | None = None
        self.auto_steps: int = 1
        #: This browser session's lease token on the runs it writes (not a secret).
        self.owner = owner if valid_owner(owner) else new_owner()
        self.jobs: JobRegistry = jobs if jobs is not None else REGISTRY
        #: Seconds a submit waits for its job before returning (see QUICK_WAIT_S).
        self.quick_wait_s: float = QUICK_WAIT_S

    # Messages --------------------------------------------------------------------------
    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page run."""
        self.flashes.append(Flash(kind, text))

    def pop_flashes(self, outcome: bool = True) -> list[Flash]:
        """The queued messages, emptied; with ``outcome`` the last job's outcome too (the
        Optimize page shows that one where the job's progress was, see :meth:`pop_outcome`)."""
        out, self.flashes = self.flashes, []
        if outcome:
            last = self.pop_outcome()
            if last is not None:
                out.append(last)
        return out

    def pop_outcome(self) -> Flash | None:
        """The outcome of the open run's last finished job (collected first when it has just
        finished), once."""
        self.collect_outcome()
        out, self.outcome = self.outcome, None
        return out

    # Task ------------------------------------------------------------------------------
    @staticmethod
    def sample_tasks() -> list[tuple[str, Path, str]]:
        """The bundled sample tasks: (name, folder, description)."""
        return list_sample_tasks()

    def load_sample(self, name: str) -> Task:
        """Load a bundled sample task by name (TaskFormatError if it cannot be read; the
        previous task stays loaded then)."""
        for n, path, _ in self.sample_tasks():
            if n == name:
                task = load_task(path)
                self._set_task(task, f"sample task {n}")
                return task
        raise ConfigError("sample task", f"no sample task named {name!r}")

    def preview_upload(self, data: bytes, filename: str) -> UploadPreview:
        """Parse an uploaded file's columns and first rows for the mapping step.
        Raises TaskFormatError naming file, line and field; the loaded task is unchanged."""
        digest = hashlib.sha256(data).hexdigest()
        if self.upload is not None and self.upload.digest == digest and self.upload.filename == filename:
            return self.upload
        self.upload = None
        try:
            columns, rows = preview_columns(data, filename)
        except ValueError as e:  # a loader slip (e.g. a NaN in the first rows): still name the file
            raise TaskFormatError(filename, str(e)) from None
        if len(columns) < 2:
            raise one_column_error(filename, columns)
        gi, gt = guess_columns(columns)
        self.upload = UploadPreview(filename, data, digest, columns, rows, gi, gt)
        return self.upload

    def clear_upload(self) -> None:
        self.upload = None

    def load_upload(self, input_column: str, target_column: str, answer_type: str | None = None) -> Task:
        """Load the previewed upload as the task with this column mapping. answer_type None
        infers it from the targets. Raises TaskFormatError (file, line, field) or
        ConfigError; the previous task stays loaded then."""
        if self.upload is None:
            raise ConfigError("upload", "upload a file first")
        if len(self.upload.columns) < 2:
            raise one_column_error(self.upload.filename, self.upload.columns)
        if input_column == target_column:
            raise ConfigError("Target column", f"the input and target columns are both {input_column!r}; "
                                               "choose two different columns")
        task = load_task_bytes(self.upload.data, self.upload.filename, input_column=input_column,
                               target_column=target_column, answer_type=answer_type or None)
        self._set_task(task, f"uploaded file {self.upload.filename}")
        return task

    def _set_task(self, task: Task, origin: str, splits: SplitSettings | None = None) -> None:
        self.task = task
        self.task_origin = origin
        self.task_version += 1  # pages key their task widgets on it, so they reset
        n = len(task.examples)
        seed = self.settings.splits.seed
        if splits is not None:
            pass
        elif task.explicit_splits:
            splits = SplitSettings(dev_size=len(task.explicit_splits.get("eval", [])),
                                   test_size=len(task.explicit_splits.get("test", [])), seed=seed)
        else:
            quick = default_run_settings("local").splits
            cap_dev, cap_test = quick.dev_size or 16, quick.test_size or 16
            dev = min(cap_dev, max(1, n // 4)) if n else cap_dev
            test = min(cap_test, max(0, n - dev - 3)) if n else cap_test
            splits = SplitSettings(dev_size=dev, test_size=test, seed=seed)
        self.settings = self.settings.replace(splits=splits)

    def update_task(self, *, answer_type: str, instruction_position: str, initial_instruction: str) -> Task:
        """Change how the loaded task is prompted and scored (ConfigError on a bad value)."""
        if self.task is None:
            raise ConfigError("task", "load a task first")
        if answer_type not in ANSWER_TYPES:
            raise ConfigError("answer_type", f"must be one of {', '.join(ANSWER_TYPES)}")
        if instruction_position not in INSTRUCTION_POSITIONS:
            raise ConfigError("instruction_position", f"must be one of {', '.join(INSTRUCTION_POSITIONS)}")
        if not initial_instruction.strip():
            raise ConfigError("initial_instruction", "the starting instruction is empty")
        self.task = dataclasses.replace(self.task, answer_type=answer_type, instruction_position=instruction_position,
                                        initial_instruction=initial_instruction.strip())
        return self.task

    def update_splits(self, *, dev_size: int | None, test_size: int | None, train_size: int | None = None,
                      seed: int = 0) -> TaskSplits:
        """Set split sizes (examples) and seed; returns the resulting split (ConfigError
        naming the size when the task is too small)."""
        splits = SplitSettings(dev_size, test_size, train_size, seed).validate("app")
        previous = self.settings
        self.settings = self.settings.replace(splits=splits)
        try:
            return self.splits()
        except GPOError:
            self.settings = previous
            raise

    def splits(self) -> TaskSplits:
        """The train/dev/test split the next run will use (ConfigError if impossible)."""
        if self.task is None:
            raise ConfigError("task", "load a task first")
        s = self.settings.splits
        return split_task(self.task, dev_size=s.dev_size, test_size=s.test_size, train_size=s.train_size, seed=s.seed)

    # Models ----------------------------------------------------------------------------
    def set_model(self, role: str, *, backend: str, model: str, base_url: str | None, temperature: float,
                  max_tokens: int, concurrency: int, timeout_s: float) -> ModelSettings:
        """Validate and keep the settings of one role ("task" or "optimizer") for the next
        run. Raises ConfigError naming the widget (the previous settings stay then)."""
        if role not in ROLES:
            raise ConfigError("role", f"unknown model role {role!r}")
        if backend == "local":
            model = model.strip() or LOCAL_DEFAULT_MODEL
            base_url, concurrency = None, 1
        new = ModelSettings(backend=backend, model=model.strip(), base_url=(base_url or "").strip() or None,
                            temperature=float(temperature), max_tokens=int(max_tokens), concurrency=int(concurrency),
                            timeout_s=float(timeout_s)).validate("app", role)
        self.settings = self.settings.with_model(role, new)
        return new

    def set_api_key(self, key: str | None) -> None:
        """Keep the typed API key for this browser session only (never saved)."""
        self.api_key = (key or "").strip() or None

    @staticmethod
    def env_key_present() -> bool:
        return bool(os.environ.get("OPENAI_API_KEY"))

    def _chat(self, settings: ModelSettings, use_cache: bool) -> ChatModel:
        key = self.api_key if settings.backend in ("openai", "compatible") else None
        return self.provider.chat_model(settings, key, use_cache)

    def build_models(self, settings: RunSettings | None = None) -> Models:
        """The models for ``settings`` (default: the draft settings of the next run): the
        override when set, else built by the provider (nothing loads until first use)."""
        if self.models_override is not None:
            return self.models_override
        s = settings or self.settings
        return Models(self._chat(s.task_model, self.use_cache), self._chat(s.optimizer_model, self.use_cache),
                      self.provider.embedder())

    def use_models_in_current_run(self) -> RunSettings:
        """Switch the open run to the model settings of the Models page: every later request
        uses them (temperature and max tokens included) and run.json records them. Refused
        (JobBusyError) while a job runs on the run."""
        session = self.require_session()
        self._require_idle()
        new = session.settings.replace(task_model=self.settings.task_model,
                                       optimizer_model=self.settings.optimizer_model)
        session.use_models(self.build_models(new), new)
        return new

    def test_connection(self, role: str) -> tuple[bool, str, float]:
        """One tiny uncached call to the role's model: (ok, message, seconds). Never raises;
        a bad setting or missing key comes back as (False, message, 0)."""
        if self.models_override is not None:
            model = self.models_override.task if role == "task" else self.models_override.optimizer
        else:
            try:
                model = self._chat(self.settings.model(role), use_cache=False)
            except GPOError as e:
                return False, str(e), 0.0
        from gpo_core.models.openai_chat import check_connection

        timeout = min(CONNECTION_TIMEOUT_S, self.settings.model(role).timeout_s)
        return check_connection(model, timeout_s=timeout)

    def active_models(self) -> list[dict]:
        """The models of the next run, per role: role, backend label, model, where."""
        out = []
        for role in ROLES:
            if self.models_override is not None:
                m = self.models_override.task if role == "task" else self.models_override.optimizer
                out.append({"role": f"{role} model", "backend": "scripted (test)", "model": m.name,
                            "where": "in process"})
                continue
            s = self.settings.model(role)
            where = {"local": "offline, on this CPU", "demo": "in process"}.get(
                s.backend, s.base_url or os.environ.get("OPENAI_BASE_URL") or "api.openai.com")
            out.append({"role": f"{role} model", "backend": BACKEND_LABELS[s.backend], "model": s.model,
                        "where": where})
        return out

    # Runs ------------------------------------------------------------------------------
    def update_config(self, **values) -> RunSettings:
        """Set draft optimizer settings (OptimizerSettings field names); validated, with
        ConfigError naming the widget otherwise (the previous draft stays)."""
        opt = self.settings.optimizer.replace(**values).validate("app")
        self.settings = self.settings.replace(optimizer=opt)
        return self.settings

    @property
    def config(self):
        """The draft optimizer settings of the next run."""
        return self.settings.optimizer

    def draft_budgets(self) -> list[int]:
        """The edit-budget schedule of the draft settings, steps 1..T (words)."""
        from gpo_core.optimizer.schedule import budget_schedule

        c = self.settings.optimizer
        return budget_schedule(kind=c.schedule, initial=c.budget_initial, final=c.budget_final,
                               total_steps=c.steps, warmup=c.warmup)

    def store(self) -> RunStore:
        return RunStore(self.runs_root)

    def new_run(self) -> GPOSession:
        """Create a run of the loaded task with the draft settings (a new run id; the
        previous run stays saved, and a job still running on it goes on). ConfigError on
        impossible settings."""
        if self.task is None:
            raise ConfigError("task", "load a task first (Task page)")
        settings = self.settings.validate("app")
        splits = self.splits()
        models = self.build_models(settings)
        run_id = new_run_id()
        session = GPOSession.create(self.task, settings, models, splits=splits, run_id=run_id,
                                    run_dir=self.store().run_dir(run_id), owner=self.owner)
        self.session = session
        self.outcome = None
        return session

    def require_session(self) -> GPOSession:
        if self.session is None:
            raise ConfigError("run", "create a run first (Optimize page) or open a saved one (Results page)")
        return self.session

    @property
    def run_id(self) -> str | None:
        """Id of the open run, or None."""
        return self.session.state.run_id if self.session is not None else None

    # Work in the caller's thread (tests, benchmarks) -----------------------------------
    def start(self, on_progress: Progress | None = None) -> dict:
        """Score the starting prompt on dev (and test). Returns the run's initial record."""
        return self.require_session().start(on_progress)

    def next_step(self, on_progress: Progress | None = None) -> StepRecord:
        """Run the next step's model work (retrieve, meta-prompt, sample, score on dev) and
        leave it pending a decision; returns the pending step if there is one already."""
        return self.require_session().propose(on_progress)

    def accept(self, candidate_id: str, text: str | None = None, on_progress: Progress | None = None) -> StepRecord:
        """Accept a candidate, optionally with edited text (scored on dev first)."""
        return self.require_session().accept(candidate_id, text=text, on_progress=on_progress)

    def accept_best(self, on_progress: Progress | None = None) -> StepRecord:
        """Accept the best not-yet-chosen candidate of the pending step."""
        return self.require_session().accept_best(on_progress)

    def reject(self, candidate_id: str, rejected: bool = True) -> CandidateRecord:
        """Reject one candidate of the pending step (``rejected=False``: restore it). The
        engine saves it at once and no decision path (auto, Accept best) chooses it."""
        self._require_idle()
        return self.require_session().reject(candidate_id, rejected=rejected)

    def unreject(self, candidate_id: str) -> CandidateRecord:
        """Restore a rejected candidate of the pending step."""
        return self.reject(candidate_id, rejected=False)

    def reject_all_and_resample(self, on_progress: Progress | None = None) -> StepRecord:
        """Reject every candidate of the pending step and sample the step again."""
        session = self.require_session()
        session.reject_all()
        return session.propose(on_progress)

    def undo(self) -> StepRecord:
        """Remove the last step record and restore the prompt from before it."""
        self._require_idle()
        return self.require_session().undo()

    def run_auto(self, n_steps: int, on_step: Callable[[StepRecord], None] | None = None,
                 on_progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[StepRecord]:
        """Run up to n_steps steps with the paper's automatic choice. Every finished step is
        saved at once, so an interrupted run keeps them."""
        session = self.require_session()
        if n_steps < 1:
            raise ConfigError("steps", "run at least 1 step")
        # A pending step is decided by the paper's rule first and counts as one of the n.
        return session.run_auto(n_steps, on_step=on_step, on_progress=on_progress, should_stop=should_stop)

    # Work in the background (the app) ------------------------------------------------------
    def job(self) -> JobView | None:
        """The open run's job (running, or finished and not collected), as a snapshot."""
        job = self.jobs.get(self.run_id)
        return job.view() if job is not None else None

    def busy(self) -> bool:
        """Whether a job is running on the open run (conflicting actions are refused)."""
        return self.jobs.running(self.run_id) is not None

    def _require_idle(self) -> None:
        job = self.jobs.running(self.run_id)
        if job is not None:
            raise JobBusyError(f"{job.label.rstrip('…')} is still running: wait for it or press Stop")

    def _submit(self, kind: str, label: str, work: Callable[[GPOSession, Job], object],
                describe: Callable[[object], str] | None = None, *, stoppable: bool = True) -> Job:
        session = self.require_session()
        job = self.jobs.submit(session.state.run_id, kind, label, lambda j: work(session, j), session=session,
                               describe=describe, stoppable=stoppable)
        self.outcome = None
        if self.quick_wait_s > 0 and job.wait(self.quick_wait_s):
            self.collect_outcome()
        return job

    def submit_start(self) -> Job:
        """Score the starting prompt on dev and test, in the background."""
        def describe(init: dict) -> str:
            test = f", test {_pct(init['test_accuracy'])}" if init.get("test_accuracy") is not None else ""
            return f"Starting prompt scored: dev {_pct(init['dev_accuracy'])}{test}."

        return self._submit("start", "Scoring the starting prompt on dev and test…",
                            lambda s, j: s.start(j.on_progress, j.should_stop), describe)

    def submit_new_run(self) -> Job:
        """Create a run with the draft settings and score its starting prompt in the background."""
        self.new_run()
        return self.submit_start()

    def submit_next_step(self) -> Job:
        """The next step's model work (sampling, scoring on dev), in the background."""
        session = self.require_session()
        t, total = session.next_step_number, session.config.steps
        return self._submit("step",
                            f"Running step {t} of {total}: retrieving, sampling candidates, scoring them on dev…",
                            lambda s, j: s.propose(j.on_progress, j.should_stop),
                            lambda step: f"Step {step.step}: {len(step.candidates)} candidates ready. "
                                         "Accept one or reject all.")

    def submit_accept(self, candidate_id: str, text: str | None = None) -> Job:
        """Accept a candidate (hand-edited ``text``: scored on dev first); the chosen prompt
        is scored on test, in the background."""
        label = (f"Scoring the edited {candidate_id} on dev, then test…" if text is not None
                 else f"Accepting {candidate_id}: scoring it on test…")
        return self._submit("accept", label, lambda s, j: s.accept(candidate_id, text=text, on_progress=j.on_progress),
                            stoppable=False)

    def submit_accept_best(self) -> Job:
        """Accept the best not-yet-chosen candidate (scored on test), in the background."""
        return self._submit("accept", "Accepting the best candidate…",
                            lambda s, j: s.accept_best(j.on_progress), stoppable=False)

    def submit_reject_all(self) -> Job:
        """Reject every candidate of the pending step now; sample the step again in the background."""
        self._require_idle()
        session = self.require_session()
        step = session.reject_all()
        return self._submit("resample", f"Rejected all; sampling step {step.step} again…",
                            lambda s, j: s.propose(j.on_progress, j.should_stop),
                            lambda st: f"Step {st.step}, attempt {st.attempt}: {len(st.candidates)} new candidates.")

    def submit_run_auto(self, n_steps: int) -> Job:
        """Run up to ``n_steps`` steps with the paper's automatic choice, in the background;
        each finished step is logged in the job and saved at once."""
        if n_steps < 1:
            raise ConfigError("Steps", "run at least 1 step")
        self.require_session()
        self.auto_steps = int(n_steps)

        def work(session: GPOSession, job: Job) -> list[StepRecord]:
            from gpo_core.studio.views import decision_text

            return session.run_auto(int(n_steps), on_step=lambda st: job.add_log(decision_text(st)),
                                    on_progress=job.on_progress, should_stop=job.should_stop)

        return self._submit("auto", f"Running {int(n_steps)} steps automatically…", work,
                            lambda done: f"Ran {len(done)} steps automatically.")

    def stop(self) -> bool:
        """Ask the open run's job to stop after the model call in flight (every finished step
        is kept). False when nothing is running."""
        job = self.jobs.running(self.run_id)
        return job.request_stop() if job is not None else False

    def collect_outcome(self) -> Flash | None:
        """When the open run's job has finished: take it out of the registry and keep its
        outcome (success message, "stopped" note or error) in :attr:`outcome`, to show once."""
        job = self.jobs.collect(self.run_id)
        if job is None:
            return None
        v = job.view()
        session = job.session or self.session
        done = len(session.state.decided_steps) if session is not None else 0
        total = session.config.steps if session is not None else 0
        what = v.label.split(":")[0].rstrip("…").rstrip(".")
        if v.state == "stopped":
            flash = Flash("info", f"Stopped. Every finished step is kept: {done} of {total} steps done.")
        elif v.state == "failed":
            kept = f" Every finished step is kept: {done} of {total} steps done." if v.kind != "start" else ""
            flash = Flash("error", f"{what} failed: {(v.error or 'unknown error').rstrip('.')}.{kept}")
        elif v.message:
            flash = Flash("success", v.message)
        else:
            flash = None
        self.outcome = flash
        return flash

    # Saved runs ------------------------------------------------------------------------
    def saved_runs(self) -> list[dict]:
        """Saved runs, newest first (see RunStore.list_runs)."""
        return self.store().list_runs()

    def open_run(self, run_id: str, take_over: bool = False) -> GPOSession:
        """Reopen a saved run to inspect or resume it, on the models saved with it, and load
        its task (rebuilt from the run: a new run on the same data needs no upload).

        When this process has a job on the run (running, or finished and not yet shown), the
        live session of that job is attached instead of a copy from disk, so its progress
        and result are seen here. RunInUseError when another live session holds the run
        (``take_over`` to take it), RunFileError for an unreadable run or an id outside the
        runs folder."""
        store = self.store()
        run_dir = store.run_dir(run_id)
        live = self.jobs.session_for(run_id)
        if live is not None and live.run_dir is not None and Path(live.run_dir).resolve() == run_dir.resolve():
            # The same browser (a reload keeps the owner token) attaches at once; another one
            # only when it asks to take the run over, and then shares the live session.
            if live.owner != self.owner and not take_over:
                raise RunInUseError(f"run {run_id} is open in another session, which is working on it now; "
                                    "open it anyway to take it over")
            session = live
        else:
            saved = load_run(run_dir).settings  # the run continues on the models it was made with
            session = GPOSession.open(run_dir, self.build_models(saved), owner=self.owner, take_over=take_over)
        self.session = session
        self.outcome = None
        state = session.state
        self._set_task(task_from_run(state), f"run {state.run_id} (its saved examples)",
                       SplitSettings(dev_size=len(state.splits.get("dev", [])),
                                     test_size=len(state.splits.get("test", [])),
                                     seed=session.settings.splits.seed))
        return session

    def reopen_from_address(self, run_id: str) -> bool:
        """Open the run named in the page address (a reload, a bookmarked link). Never
        raises: a problem becomes a message; returns whether the run is open."""
        try:
            self.open_run(run_id)
        except RunInUseError as e:
            self.flash("warning", f"{e}. Open it on the Results page to take it over.")
            return False
        except GPOError as e:
            self.flash("error", f"The run in the address ({run_id}) cannot be opened: {e}")
            return False
        return True

    # Views of the current run ----------------------------------------------------------
    def shown_step(self) -> StepRecord | None:
        """The step the Optimize page shows: the pending one, else the last one."""
        if self.session is None or not self.session.state.steps:
            return None
        return self.session.state.pending_step or self.session.state.steps[-1]

    @staticmethod
    def candidate_diff(step: StepRecord, cand: CandidateRecord) -> list[DiffSegment]:
        """Word diff from the step's current prompt to the candidate."""
        return word_diff(step.current_prompt, cand.text)

    def records(self, key: str, split: str = "dev") -> list[dict]:
        """Per-example records of a scored prompt ("initial" or a candidate id)."""
        return self.require_session().records(key, split)

    # Exports ---------------------------------------------------------------------------
    def export_final_prompt(self) -> str:
        return final_prompt_text(self.require_session())

    def export_run_json(self) -> str:
        return export_json(self.require_session())

    def export_report_md(self) -> str:
        return export_markdown(self.require_session())

    def export_name(self, suffix: str) -> str:
        """A download file name such as ``<run id>-final-prompt.txt``."""
        return f"{self.require_session().state.run_id}-{suffix}"
