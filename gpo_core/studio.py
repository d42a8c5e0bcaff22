"""GPO Studio's facade for the web app: one method per user action, no Streamlit import.

The pages in ``pages/`` read their widgets, call one method of :class:`Studio` (or a
function of :mod:`gpo_core.views` / :mod:`gpo_core.charts`) and show the result. A
``Studio`` holds the state of ONE browser session: the loaded task and its settings, the
two model settings, the API key typed in the page (kept in memory only, never written
anywhere), the draft run settings and the :class:`~gpo_core.optimizer.GPOSession`. The app
keeps it in ``st.session_state``, so two browser sessions never share a run.

Heavy, immutable objects (the embedded llama.cpp model, the sentence-transformers embedder,
OpenAI clients, the response cache) come from a :class:`ModelResources` provider; the app
passes one backed by ``st.cache_resource`` so they are built once per process, and lazily:
nothing is loaded until a model is first called.

Test seam: ``Studio(models_override=Models(...))`` makes every run use those models (tests
inject a :class:`~gpo_core.models.scripted.ScriptedChatModel` and a hashing embedder through
``st.session_state["studio"]``). For the browser end-to-end test only, the environment
variable ``GPO_STUDIO_FAKE_MODELS=1`` makes :func:`models_override_from_env` return
:func:`demo_models` (scripted, instant, deterministic); it is read nowhere else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol

from .config import RunConfig
from .edits import DiffSegment, word_diff
from .embeddings import Embedder
from .errors import ConfigError, GPOError
from .exports import export_json, export_markdown, final_prompt_text
from .models.base import ChatModel
from .models.factory import BACKENDS, LOCAL_DEFAULT_MODEL, ModelSpec
from .optimizer import GPOSession, Models, Progress
from .records import CandidateRecord, StepRecord
from .splits import split_task
from .store import RunStore, default_runs_root
from .task import ANSWER_TYPES, INSTRUCTION_POSITIONS, Task, TaskSplits
from .task_io import guess_columns, list_sample_tasks, load_task, load_task_bytes, preview_columns

#: Environment variable that switches the app to scripted models (browser test only).
FAKE_MODELS_ENV = "GPO_STUDIO_FAKE_MODELS"
#: Model roles shown on the Models page.
ROLES = ("task", "optimizer")
#: Human names of the backends (ModelSpec.backend values).
BACKEND_LABELS = {"local": "Embedded (offline)", "openai": "OpenAI", "compatible": "OpenAI-compatible server"}
#: The seconds a "Test connection" call may take at most.
CONNECTION_TIMEOUT_S = 10.0
#: Default OpenAI model name offered when the user switches a role to OpenAI.
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

assert set(BACKEND_LABELS) == set(BACKENDS)


# ----------------------------------------------------------------------------- resources


class ModelResources(Protocol):
    """Where the studio gets models: ``chat_model(spec, api_key, use_cache)`` and
    ``embedder()``. The app's implementation caches them per process (st.cache_resource)."""

    def chat_model(self, spec: ModelSpec, api_key: str | None, use_cache: bool = True) -> ChatModel: ...

    def embedder(self) -> Embedder: ...


def resource_spec(spec: ModelSpec) -> ModelSpec:
    """The part of a spec that identifies the model OBJECT (what a resource cache should key
    on): temperature and max_tokens travel in each request, so they are reset to defaults.
    For the embedded model only the model file matters (one llama.cpp model per process)."""
    if spec.backend == "local":
        return ModelSpec(backend="local", model=spec.model or LOCAL_DEFAULT_MODEL, concurrency=1)
    return ModelSpec(backend=spec.backend, model=spec.model.strip(), base_url=spec.base_url,
                     concurrency=spec.concurrency, timeout_s=spec.timeout_s)


def key_fingerprint(api_key: str | None) -> str:
    """A short, irreversible id of an API key for cache keys ("env" when none was typed and
    the environment's OPENAI_API_KEY applies). The key itself is never part of a key."""
    if not api_key:
        return "env"
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


class DirectResources:
    """Uncached resources for scripts and tests outside Streamlit: builds a new model per
    call (the embedded model still loads lazily) and one embedder per instance."""

    def __init__(self, cache_path: Path | None = None):
        self._embedder: Embedder | None = None
        self._cache_path = cache_path
        self._cache = None

    def chat_model(self, spec: ModelSpec, api_key: str | None, use_cache: bool = True) -> ChatModel:
        from .models.cache import ResponseCache
        from .models.factory import build_chat_model

        if use_cache and self._cache_path and self._cache is None:
            self._cache = ResponseCache(self._cache_path)
        return build_chat_model(spec, api_key=api_key, cache=self._cache if use_cache else None)

    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embeddings import CachedEmbedder, SentenceTransformerEmbedder

            self._embedder = CachedEmbedder(SentenceTransformerEmbedder())
        return self._embedder


def models_override_from_env() -> Models | None:
    """:func:`gpo_core.testing.demo.demo_models` when ``GPO_STUDIO_FAKE_MODELS=1`` (browser test seam), else None."""
    if os.environ.get(FAKE_MODELS_ENV) != "1":
        return None
    from .testing.demo import demo_models

    return demo_models()


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
class TaskSettings:
    """How the loaded task is split (sizes in examples; None = all for a split folder)."""

    dev_size: int | None = 16
    test_size: int | None = 16
    train_size: int | None = None
    seed: int = 0


@dataclass
class Flash:
    """A message to show once after the page reruns: kind in success|info|warning|error."""

    kind: str
    text: str


def new_run_id() -> str:
    """A fresh run id: local time plus 6 random hex digits (unique per browser session)."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def default_specs() -> dict[str, ModelSpec]:
    """Embedded model for both roles; task model greedy, optimizer sampling at 1.0 (paper)."""
    return {
        "task": ModelSpec(backend="local", model=LOCAL_DEFAULT_MODEL, temperature=0.0, max_tokens=128, concurrency=1),
        "optimizer": ModelSpec(backend="local", model=LOCAL_DEFAULT_MODEL, temperature=1.0, max_tokens=96,
                               concurrency=1),
    }


def default_run_config() -> RunConfig:
    """Run settings sized for the embedded CPU model: 6 steps x 4 candidates (the paper
    uses 18 x 8; raise them on a fast endpoint), k = 3 by relevance, cosine 50 -> 10."""
    return RunConfig(steps=6, candidates=4, k=3, selection="relevance", schedule="cosine", budget_initial=50,
                     budget_final=10)


class Studio:
    """Everything one browser session of GPO Studio does. Not thread-safe (Streamlit runs
    one script thread per session).

    runs_root: folder of saved runs (default ``gpo_home()/runs``). resources: model provider
    (see :class:`ModelResources`; default :class:`DirectResources`). models_override: use
    these models for every run instead of building them from the settings (test seam).
    """

    def __init__(self, runs_root: Path | None = None, resources: ModelResources | None = None,
                 models_override: Models | None = None):
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self.resources: ModelResources = resources or DirectResources()
        self.models_override = models_override
        self.task: Task | None = None
        self.task_origin: str = ""
        self.task_version: int = 0
        self.upload: UploadPreview | None = None
        self.settings = TaskSettings()
        self.specs = default_specs()
        self.api_key: str | None = None
        self.use_cache: bool = True
        self.config = default_run_config()
        self.session: GPOSession | None = None
        self.rejected: set[str] = set()
        self.flashes: list[Flash] = []
        self.auto_steps: int = 1
        #: This browser session's lease token on the runs it writes (not a secret).
        self.owner = f"studio-{uuid.uuid4().hex}"

    # Messages --------------------------------------------------------------------------
    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page run."""
        self.flashes.append(Flash(kind, text))

    def pop_flashes(self) -> list[Flash]:
        """The queued messages, emptied."""
        out, self.flashes = self.flashes, []
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
        columns, rows = preview_columns(data, filename)
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
            load_task_bytes(self.upload.data, self.upload.filename)  # raises the loader's own error
        if input_column == target_column:
            raise ConfigError("columns", "the input and target columns must differ")
        task = load_task_bytes(self.upload.data, self.upload.filename, input_column=input_column,
                               target_column=target_column, answer_type=answer_type or None)
        self._set_task(task, f"uploaded file {self.upload.filename}")
        return task

    def _set_task(self, task: Task, origin: str) -> None:
        self.task = task
        self.task_origin = origin
        self.task_version += 1  # pages key their task widgets on it, so they reset
        n = len(task.examples)
        if task.explicit_splits:
            self.settings = TaskSettings(dev_size=len(task.explicit_splits.get("eval", [])),
                                         test_size=len(task.explicit_splits.get("test", [])), seed=self.settings.seed)
        else:
            dev = min(16, max(1, n // 4)) if n else 16
            test = min(16, max(0, n - dev - 3)) if n else 16
            self.settings = TaskSettings(dev_size=dev, test_size=test, seed=self.settings.seed)

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
        self.settings = TaskSettings(dev_size, test_size, train_size, seed)
        return self.splits()

    def splits(self) -> TaskSplits:
        """The train/dev/test split the next run will use (ConfigError if impossible)."""
        if self.task is None:
            raise ConfigError("task", "load a task first")
        s = self.settings
        return split_task(self.task, dev_size=s.dev_size, test_size=s.test_size, train_size=s.train_size, seed=s.seed)

    # Models ----------------------------------------------------------------------------
    def set_model(self, role: str, *, backend: str, model: str, base_url: str | None, temperature: float,
                  max_tokens: int, concurrency: int, timeout_s: float = 30.0) -> ModelSpec:
        """Validate and keep the settings of one role ("task" or "optimizer"). Raises
        ConfigError naming the setting (the previous settings stay then)."""
        if role not in ROLES:
            raise ConfigError("role", f"unknown model role {role!r}")
        if backend == "local":
            model = model.strip() or LOCAL_DEFAULT_MODEL
            base_url, concurrency = None, 1
        spec = ModelSpec(backend=backend, model=model.strip(), base_url=(base_url or "").strip() or None,
                         temperature=float(temperature), max_tokens=int(max_tokens), concurrency=int(concurrency),
                         timeout_s=float(timeout_s)).validate(f"{role}_model")
        self.specs[role] = spec
        return spec

    def set_api_key(self, key: str | None) -> None:
        """Keep the typed API key for this browser session only (never saved)."""
        self.api_key = (key or "").strip() or None

    @staticmethod
    def env_key_present() -> bool:
        return bool(os.environ.get("OPENAI_API_KEY"))

    def _chat(self, role: str, use_cache: bool) -> ChatModel:
        spec = self.specs[role]
        return self.resources.chat_model(spec, self.api_key if spec.backend != "local" else None, use_cache)

    def build_models(self) -> Models:
        """The models of the next run (or of a reopened run): the override when set, else
        built from the settings through the resources (nothing loads until first use)."""
        if self.models_override is not None:
            return self.models_override
        return Models(self._chat("task", self.use_cache), self._chat("optimizer", self.use_cache),
                      self.resources.embedder(), self.specs["task"].to_dict(), self.specs["optimizer"].to_dict())

    def use_models_in_current_run(self) -> None:
        """Switch the open run to the current model settings (its saved settings record the
        models it was created with)."""
        self.require_session().use_models(self.build_models())

    def test_connection(self, role: str) -> tuple[bool, str, float]:
        """One tiny uncached call to the role's model: (ok, message, seconds). Never raises;
        a bad setting or missing key comes back as (False, message, 0)."""
        if self.models_override is not None:
            model = self.models_override.task if role == "task" else self.models_override.optimizer
        else:
            try:
                model = self._chat(role, use_cache=False)
            except GPOError as e:
                return False, str(e), 0.0
        from .models.openai_chat import check_connection

        timeout = min(CONNECTION_TIMEOUT_S, self.specs[role].timeout_s)
        return check_connection(model, timeout_s=timeout)

    def active_models(self) -> list[dict]:
        """What runs now, per role: role, backend label, model, where (URL/offline)."""
        out = []
        specs = self.specs
        for role in ROLES:
            if self.models_override is not None:
                m = self.models_override.task if role == "task" else self.models_override.optimizer
                out.append({"role": f"{role} model", "backend": "scripted (test)", "model": m.name, "where": "in process"})
                continue
            s = specs[role]
            where = "offline, on this CPU" if s.backend == "local" else (s.base_url or os.environ.get("OPENAI_BASE_URL")
                                                                        or "api.openai.com")
            out.append({"role": f"{role} model", "backend": BACKEND_LABELS[s.backend], "model": s.model, "where": where})
        return out

    # Runs ------------------------------------------------------------------------------
    def update_config(self, **values) -> RunConfig:
        """Set draft run settings (RunConfig field names); validated, ConfigError otherwise
        (the previous draft stays)."""
        cfg = dataclasses.replace(self.config, **values)
        cfg.validate()
        self.config = cfg
        return cfg

    def draft_budgets(self) -> list[int]:
        """The edit-budget schedule of the draft settings, steps 1..T (words)."""
        from .schedule import budget_schedule

        c = self.config
        return budget_schedule(kind=c.schedule, initial=c.budget_initial, final=c.budget_final,
                               total_steps=c.steps, warmup=c.warmup)

    def store(self) -> RunStore:
        return RunStore(self.runs_root)

    def new_run(self) -> GPOSession:
        """Create a run of the loaded task with the draft settings and the current models
        (a new run id; the previous run stays saved). ConfigError on impossible settings."""
        if self.task is None:
            raise ConfigError("task", "load a task first (Task page)")
        t, o = self.specs["task"], self.specs["optimizer"]
        s = self.settings
        cfg = dataclasses.replace(self.config, dev_size=s.dev_size, test_size=s.test_size, train_size=s.train_size,
                                  seed=s.seed, task_temperature=t.temperature, task_max_tokens=t.max_tokens,
                                  optimizer_temperature=o.temperature, optimizer_max_tokens=o.max_tokens)
        cfg.validate()
        splits = self.splits()
        models = self.build_models()
        run_id = new_run_id()
        session = GPOSession.create(self.task, cfg, models, splits=splits, run_id=run_id,
                                    run_dir=self.store().run_dir(run_id),
                                    concurrency=max(t.concurrency, o.concurrency), owner=self.owner)
        self.session = session
        self.rejected = set()
        return session

    def require_session(self) -> GPOSession:
        if self.session is None:
            raise ConfigError("run", "create a run first (Optimize page) or open a saved one (Results page)")
        return self.session

    def start(self, on_progress: Progress | None = None) -> dict:
        """Score the starting prompt on dev (and test). Returns the run's initial record."""
        return self.require_session().start(on_progress)

    def next_step(self, on_progress: Progress | None = None) -> StepRecord:
        """Run the next step's model work (retrieve, meta-prompt, sample, score on dev) and
        leave it pending a decision; returns the pending step if there is one already."""
        return self.require_session().propose(on_progress)

    def accept(self, candidate_id: str, text: str | None = None, on_progress: Progress | None = None) -> StepRecord:
        """Accept a candidate, optionally with edited text (scored on dev first)."""
        session = self.require_session()
        step = session.accept(candidate_id, text=text, on_progress=on_progress)
        self.rejected = set()
        return step

    def accept_best(self, on_progress: Progress | None = None) -> StepRecord:
        """Accept the best not-yet-chosen candidate of the pending step."""
        step = self.require_session().accept_best(on_progress)
        self.rejected = set()
        return step

    def reject(self, candidate_id: str) -> None:
        """Mark one candidate rejected in this page (the engine keeps it in the record)."""
        self.rejected.add(candidate_id)

    def unreject(self, candidate_id: str) -> None:
        self.rejected.discard(candidate_id)

    def reject_all_and_resample(self, on_progress: Progress | None = None) -> StepRecord:
        """Reject every candidate of the pending step and sample the step again."""
        session = self.require_session()
        session.reject_all()
        self.rejected = set()
        return session.propose(on_progress)

    def undo(self) -> StepRecord:
        """Remove the last step record and restore the prompt from before it."""
        step = self.require_session().undo()
        self.rejected = set()
        return step

    def run_auto(self, n_steps: int, on_step: Callable[[StepRecord], None] | None = None,
                 on_progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[StepRecord]:
        """Run up to n_steps steps with the paper's automatic choice. Every finished step is
        saved at once, so an interrupted run keeps them."""
        session = self.require_session()
        if n_steps < 1:
            raise ConfigError("steps", "run at least 1 step")
        # A pending step is decided by the paper's rule first and counts as one of the n.
        done = session.run_auto(n_steps, on_step=on_step, on_progress=on_progress, should_stop=should_stop)
        self.rejected = set()
        return done

    def saved_runs(self) -> list[dict]:
        """Saved runs, newest first (see RunStore.list_runs)."""
        return self.store().list_runs()

    def open_run(self, run_id: str, take_over: bool = False) -> GPOSession:
        """Reopen a saved run to inspect or resume it, with the current model settings.
        RunInUseError when another live session holds the run (``take_over`` to take it),
        RunFileError for an unreadable run or an id outside the runs folder."""
        store = self.store()
        run_dir = store.run_dir(run_id)
        t, o = self.specs["task"], self.specs["optimizer"]
        self.session = GPOSession.open(run_dir, self.build_models(), concurrency=max(t.concurrency, o.concurrency),
                                       owner=self.owner, take_over=take_over)
        self.rejected = set()
        return self.session

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
