"""Records of a run: candidates, optimizer calls, decisions, steps and the run itself.

One module because these records are one schema (SCHEMA_VERSION), saved together in run.json.

Everything the app shows comes from these dataclasses; :mod:`gpo_core.runs.repository` saves them.
Per-example records are kept apart (one file per scored prompt and split) so the run
file stays small and is cheap to rewrite after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from gpo_core.costs.spend import RoleSpend, spend_from_usage
from gpo_core.errors import ConfigError
from gpo_core.models.base import TokenUsage
from gpo_core.optimizer.direction import Retrieved, TrajectoryEntry
from gpo_core.settings import ModelSettings, OptimizerSettings, RunSettings, SplitSettings

#: 1: settings as untyped "config"/"models" dicts; 2: typed "settings", "task" record,
#: per-step models, rejections, run-wide candidate ids; 3: the examples live in the run
#: folder's data.json (written once), not in run.json, and "exemplars" only when they differ
#: from "train" (see :mod:`gpo_core.runs.repository`).
SCHEMA_VERSION = 3

#: The splits a run keeps: train (exemplar pool), dev, test; "exemplars" (a task folder's
#: format split) only when it differs from train.
SPLIT_KEYS: tuple[str, ...] = ("train", "dev", "test")


def compact_splits(splits: dict) -> dict:
    """``splits`` as saved: train, dev and test, plus "exemplars" only when they differ from
    train (they are the same examples unless the task has a format split), so no example
    is stored twice. Inverse: :func:`full_splits`."""
    out = {k: splits.get(k, []) for k in SPLIT_KEYS}
    exemplars = splits.get("exemplars")
    if exemplars is not None and exemplars is not out["train"] and exemplars != out["train"]:
        out["exemplars"] = exemplars
    return out


def full_splits(splits: dict) -> dict:
    """``splits`` with "exemplars" (the train list itself when not saved apart)."""
    out = dict(splits)
    for k in SPLIT_KEYS:
        out.setdefault(k, [])
    if out.get("exemplars") is None:
        out["exemplars"] = out.get("train", [])
    return out


def _shallow(obj) -> dict:
    """``dataclasses.asdict`` for a record whose fields are scalars (str, int, float, bool,
    None): same keys, same order, same values, without asdict's per-value deepcopy (which
    made saving run.json cost ~1 ms per step of history)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _usage_from(d: dict | None) -> TokenUsage:
    known = {f.name for f in fields(TokenUsage)}
    return TokenUsage(**{k: v for k, v in (d or {}).items() if k in known})


@dataclass
class CandidateRecord:
    """One candidate prompt of a step.

    id: unique in the run and never reused (not even after undo): "s3c17" (step 3, run-wide
    serial 17) or "s3e18" (hand-edited). origin: "optimizer" | "edited". extraction: the
    rule that found it (see extraction.py). edit_distance: measured word-level Levenshtein
    distance from the step's current prompt (words). within_budget: edit_distance <= the
    step's budget. status: "scored"; "duplicate" (same text already scored: score reused, no
    model call); "over_budget" (dropped unscored because enforce_budget is on); "incomplete"
    (some dev calls still failed after the step's retry pass: dev_accuracy covers only the
    answered examples, and no decision may choose it); "failed" (every dev call failed).
    dev_accuracy in [0, 1] over the answered dev examples, or None when unscored. dev_n:
    dev examples; dev_errors: dev calls that failed (no answer, not counted wrong). usage:
    tokens of its dev scoring (cache hits in ``usage.cached_calls`` / ``cached_tokens``).
    test_accuracy / test_errors: set when chosen, same rule. rejected: the user rejected it;
    no decision path may choose it (nor its text), and later meta-prompts list it as
    "rejected by the user" (OptimizerSettings.show_rejections). dev_correct: dev examples
    answered correctly (so the Wilson interval of ``dev_correct`` of ``dev_answered`` can be
    shown, :func:`gpo_core.stats.wilson_interval`; with a partial-credit metric: the dev score
    sum), None when unscored or unknown (older runs).
    fixed / broken: dev examples the step's current prompt got wrong and this candidate right
    (fixed), or the other way round (broken), over the examples both answered; p_value: the
    exact two-sided McNemar p of fixed vs broken (:func:`gpo_core.stats.mcnemar_exact`);
    all three None when not compared (no records of the current prompt, older runs).
    raced_out_after: with racing on (:mod:`gpo_core.optimizer.racing`), the dev examples it
    was scored on when it was dropped (status "raced_out"; dev_* and the paired counts cover
    those examples only; no policy may choose it), else None; race_note: why, for people
    ("raced out after 8 of 16 dev examples: ..."), kept when the user later accepts it (which
    scores it on all of dev first and clears ``raced_out_after``).
    flags: what the leak check found (:mod:`gpo_core.optimizer.leaks`): "copies-data" (shares
    8 words in a row with an exemplar or dev example), "names-label" (names one answer label
    as the answer, "The answer is (D)"); flag_notes: one line per flag saying what matched.
    status "flagged": dropped unscored because ``OptimizerSettings.drop_flagged`` is on (no
    policy may choose it; accepting it by hand scores it first).
    """

    id: str
    text: str
    origin: str = "optimizer"
    sample_index: int | None = None
    extraction: str = "tags"
    edit_distance: int = 0
    within_budget: bool = True
    status: str = "scored"
    duplicate_of: str | None = None
    dev_accuracy: float | None = None
    dev_n: int = 0
    dev_errors: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    test_accuracy: float | None = None
    rejected: bool = False
    test_errors: int = 0
    dev_correct: float | None = None
    fixed: int | None = None
    broken: int | None = None
    p_value: float | None = None
    raced_out_after: int | None = None
    race_note: str | None = None
    flags: list[str] = field(default_factory=list)
    flag_notes: list[str] = field(default_factory=list)

    @property
    def dev_answered(self) -> int:
        """Dev examples whose call succeeded: ``dev_n - dev_errors``."""
        return max(0, self.dev_n - self.dev_errors)

    @property
    def score(self) -> int | None:
        """Dev accuracy on the 0-100 scale of the meta-prompt, or None."""
        return None if self.dev_accuracy is None else round(100 * self.dev_accuracy)

    def to_dict(self) -> dict:
        d = _shallow(self)
        d["usage"] = _shallow(self.usage)
        d["flags"], d["flag_notes"] = list(self.flags), list(self.flag_notes)
        return d

    @staticmethod
    def from_dict(d: dict) -> CandidateRecord:
        known = {f.name for f in fields(CandidateRecord)}
        d = {k: v for k, v in d.items() if k in known}
        d["usage"] = _usage_from(d.get("usage"))
        return CandidateRecord(**d)


@dataclass
class OptimizerCall:
    """One optimizer-model sample: its reply, how candidates were extracted (method, and the
    reason when none was usable), the candidate ids it produced, tokens, attempts, error.
    dropped: candidates found in the reply but dropped because a step keeps at most N
    (``OptimizerSettings.candidates``) of them (the reason says so)."""

    sample_index: int
    reply: str
    extraction: str
    reason: str | None
    candidate_ids: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    cached: bool = False
    error: str | None = None
    dropped: int = 0

    def to_dict(self) -> dict:
        d = _shallow(self)
        d["candidate_ids"] = list(self.candidate_ids)
        return d

    @staticmethod
    def from_dict(d: dict) -> OptimizerCall:
        return OptimizerCall(**d)


@dataclass
class Decision:
    """What was done with a step. kind: "auto" (best not-yet-chosen, as the paper),
    "accept" (by hand), "accept_edited" (hand-edited text, scored first), "reject_all",
    or "no_candidate" (auto mode found nothing usable; the prompt stays)."""

    kind: str
    candidate_id: str | None = None
    text: str | None = None
    at: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        return _shallow(self)

    @staticmethod
    def from_dict(d: dict | None) -> Decision | None:
        return None if d is None else Decision(**d)


@dataclass
class StepRecord:
    """One optimization step (t = 1..T). A step rejected by hand stays in the run with
    decision "reject_all"; the next attempt at the same t has attempt + 1.

    budget: edit budget in words from the schedule; budget_in_prompt: whether the
    meta-prompt stated it. current_prompt: the prompt being edited. retrieved: the update
    direction. exemplars: list of {"input", "target"}. usage_*: tokens of the optimizer
    calls, dev scoring and test scoring. seconds: wall time of the step's model work.
    models: the models that produced the step: per role ("task", "optimizer") the model as
    configured (one line), and under "<role>_reported" the name(s) the server reported in
    its replies when that differs from the configured model name. warnings: what the user
    should know about the step, e.g. "task model: asked for X, server answered as Y".
    calls_saved: task-model calls racing spared in this step (raced-out candidates' dev
    examples not scored, times the protocol's calls per example); 0 without racing.
    optimizer_system: the system message sent before the meta-prompt (embedded optimizer
    models only, which also reply under the layout's grammar); None when there was none.
    failures: failure feedback shown in the meta-prompt (OptimizerSettings.failure_feedback):
    {"index", "input", "answer", "target", "reason"} per wrong dev example of the current
    prompt (index: its position in that prompt's dev records); [] when off.
    """

    step: int
    attempt: int
    budget: int
    budget_in_prompt: bool
    current_prompt: str
    current_entry_id: int
    retrieved: list[Retrieved]
    exemplars: list[dict]
    meta_prompt: str
    optimizer_calls: list[OptimizerCall]
    candidates: list[CandidateRecord]
    decision: Decision | None = None
    chosen_entry_id: int | None = None
    chosen_test_accuracy: float | None = None
    usage_optimizer: TokenUsage = field(default_factory=TokenUsage)
    usage_dev: TokenUsage = field(default_factory=TokenUsage)
    usage_test: TokenUsage = field(default_factory=TokenUsage)
    seconds: float = 0.0
    added_entry_ids: list[int] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    calls_saved: int = 0
    optimizer_system: str | None = None
    failures: list[dict] = field(default_factory=list)

    @property
    def usage(self) -> TokenUsage:
        """Tokens and calls of the whole step."""
        return self.usage_optimizer.merge(self.usage_dev).merge(self.usage_test)

    @property
    def pending(self) -> bool:
        return self.decision is None

    @property
    def unanswered(self) -> int:
        """Dev calls of this step still failed after the retry pass: the failed calls of
        its candidates that are "incomplete" or "failed" and not rejected by the user. While
        > 0 the step is not decided by any policy (``IncompleteStepError``) and the session
        completes it first (:meth:`gpo_core.optimizer.session.GPOSession.complete_step`)."""
        return sum(c.dev_errors or 0 for c in self.candidates
                   if c.status in ("incomplete", "failed") and not c.rejected)

    def candidate(self, candidate_id: str) -> CandidateRecord:
        """The candidate with this id; KeyError if absent."""
        for c in self.candidates:
            if c.id == candidate_id:
                return c
        raise KeyError(candidate_id)

    def to_dict(self) -> dict:
        d = _shallow(self)
        d["retrieved"] = [r.to_dict() for r in self.retrieved]
        d["exemplars"] = [dict(e) for e in self.exemplars]
        d["optimizer_calls"] = [c.to_dict() for c in self.optimizer_calls]
        d["candidates"] = [c.to_dict() for c in self.candidates]
        d["decision"] = self.decision.to_dict() if self.decision is not None else None
        for k in ("usage_optimizer", "usage_dev", "usage_test"):
            d[k] = _shallow(getattr(self, k))
        d["added_entry_ids"] = list(self.added_entry_ids)
        d["models"] = dict(self.models)
        d["warnings"] = list(self.warnings)
        d["failures"] = [dict(f) for f in self.failures]
        return d

    @staticmethod
    def from_dict(d: dict) -> StepRecord:
        d = dict(d)
        d["retrieved"] = [Retrieved.from_dict(r) for r in d["retrieved"]]
        d["optimizer_calls"] = [OptimizerCall.from_dict(c) for c in d["optimizer_calls"]]
        d["candidates"] = [CandidateRecord.from_dict(c) for c in d["candidates"]]
        d["decision"] = Decision.from_dict(d.get("decision"))
        for k in ("usage_optimizer", "usage_dev", "usage_test"):
            d[k] = _usage_from(d.get(k))
        return StepRecord(**d)


@dataclass
class RunTask:
    """The task of a run as it was prompted and scored: name, answer type, instruction
    position (see :mod:`gpo_core.tasks.task`), description, source (file or folder) and
    the starting instruction. start_from: a warm start, where the starting instruction came
    from (another run's final prompt: :mod:`gpo_core.runs.warm_start`), None otherwise."""

    name: str
    answer_type: str
    instruction_position: str
    description: str = ""
    source: str = ""
    initial_instruction: str = ""
    start_from: dict | None = None

    def to_dict(self) -> dict:
        d = _shallow(self)
        if d["start_from"] is None:  # runs without a warm start keep their run.json as before
            del d["start_from"]
        return d

    @staticmethod
    def from_dict(d: dict) -> RunTask:
        if not isinstance(d, dict):
            raise ConfigError("task", f"expected an object, got {type(d).__name__}")
        known = {f.name for f in fields(RunTask)}
        return RunTask(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunState:
    """Everything about a run but per-example records. Serialized as run.json.

    task: the :class:`RunTask`. settings: the typed :class:`~gpo_core.settings.RunSettings`
    (never an API key). splits: {"train"|"dev"|"test"|"exemplars": [{"input", "target"}]} so
    a run resumes without its source file (saved once, in the run folder's data.json).
    initial: the starting prompt's {"prompt", "dev_accuracy", "test_accuracy", "dev_errors",
    "test_errors", "usage"} (accuracy over the answered examples, failed calls counted in
    ``*_errors``); None until scored. next_serial: the run-wide counter behind candidate ids
    (never reused, not even after undo). stopped_early: why the last automatic run stopped
    before its steps were done, {"after_step", "reason", "at"}
    (:func:`gpo_core.optimizer.policies.early_stop_reason`); None once a later step is
    proposed or a step undone. test_revealed: when a blind test's scores were shown,
    {"at", "by"} ("user", "cli", "export"); None while hidden (see
    :mod:`gpo_core.optimizer.overfit`).
    spend: per model role ("task", "optimizer") what the run's calls spent
    (:class:`~gpo_core.costs.spend.RoleSpend`: tokens, calls, cache hits free, latency), counted
    live as each call ends, work later discarded or undone included (runs saved before it was
    metered: summed from their steps). stop_reason: why work stopped on the spend cap
    ("spend cap reached: ..."), None while under it or once work goes on.
    """

    run_id: str
    created_at: str
    task: RunTask
    splits: dict
    settings: RunSettings
    initial: dict | None = None
    trajectory: list[TrajectoryEntry] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    current_prompt: str = ""
    current_entry_id: int = 0
    updated_at: str = ""
    schema_version: int = SCHEMA_VERSION
    next_serial: int = 1
    stopped_early: dict | None = None
    test_revealed: dict | None = None
    spend: dict[str, RoleSpend] = field(default_factory=dict)
    stop_reason: str | None = None

    def new_serial(self) -> int:
        """The next run-wide serial number (for candidate ids)."""
        n = self.next_serial
        self.next_serial += 1
        return n

    def to_dict(self, include_splits: bool = True) -> dict:
        """The run as one JSON-ready dict (the JSON export); ``include_splits=False`` leaves
        the examples out (run.json: they are saved once, in data.json)."""
        d = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "task": self.task.to_dict(),
            "settings": self.settings.to_dict(),
            "initial": self.initial,
            "current_prompt": self.current_prompt,
            "current_entry_id": self.current_entry_id,
            "next_serial": self.next_serial,
            "trajectory": [e.to_dict() for e in self.trajectory],
            "steps": [s.to_dict() for s in self.steps],
            "stopped_early": dict(self.stopped_early) if self.stopped_early else None,
            "test_revealed": dict(self.test_revealed) if self.test_revealed else None,
            "spend": {role: rs.to_dict() for role, rs in self.spend.items()},
            "stop_reason": self.stop_reason,
        }
        if include_splits:
            d["splits"] = compact_splits(self.splits)
        return d

    @staticmethod
    def from_dict(d: dict) -> RunState:
        """Inverse of :meth:`to_dict`; reads schema 1 files too (settings rebuilt from their
        "config" and "models" dicts). A dict without "splits" (a schema-3 run.json, whose
        examples are in data.json) gets empty splits. Raises KeyError/TypeError/ConfigError on
        a bad file (:func:`gpo_core.runs.repository.load_run` checks the types first)."""
        settings = RunSettings.from_dict(d["settings"]) if "settings" in d else _settings_v1(d["config"], d["models"])
        steps = [StepRecord.from_dict(s) for s in d.get("steps", [])]
        serial = d.get("next_serial") or 1 + sum(len(s.candidates) for s in steps)
        return RunState(
            run_id=d["run_id"], created_at=d["created_at"], updated_at=d.get("updated_at", ""),
            task=RunTask.from_dict(d["task"]), splits=full_splits(d.get("splits") or {}), settings=settings,
            initial=d.get("initial"), current_prompt=d.get("current_prompt", ""),
            current_entry_id=d.get("current_entry_id", 0),
            trajectory=[TrajectoryEntry.from_dict(e) for e in d.get("trajectory", [])],
            steps=steps, schema_version=SCHEMA_VERSION, next_serial=int(serial),
            stopped_early=d.get("stopped_early"), test_revealed=d.get("test_revealed"),
            spend=_spend_from(d.get("spend"), d.get("initial"), steps), stop_reason=d.get("stop_reason"),
        )

    # Derived views -------------------------------------------------------------------
    @property
    def decided_steps(self) -> list[StepRecord]:
        """Steps that moved the run forward (accepted, auto-chosen or no_candidate)."""
        return [s for s in self.steps if s.decision is not None and s.decision.kind != "reject_all"]

    @property
    def pending_step(self) -> StepRecord | None:
        return self.steps[-1] if self.steps and self.steps[-1].pending else None


def _spend_from(saved: dict | None, initial: dict | None, steps: list[StepRecord]) -> dict[str, RoleSpend]:
    """A run's spend per role: as saved, or for a run saved before spend was metered, summed
    from its starting prompt's and its steps' usage."""
    if isinstance(saved, dict):
        return {str(role): RoleSpend.from_dict(v) for role, v in saved.items() if isinstance(v, dict)}
    task = _usage_from((initial or {}).get("usage"))
    opt = TokenUsage()
    for s in steps:
        task = task.merge(s.usage_dev).merge(s.usage_test)
        opt = opt.merge(s.usage_optimizer)
    return {"task": spend_from_usage(task), "optimizer": spend_from_usage(opt)}


def _settings_v1(config: dict, models: dict) -> RunSettings:
    """RunSettings from a schema-1 run file's flat "config" and "models" dicts."""
    opt_names = {f.name for f in fields(OptimizerSettings)}
    split_names = {f.name for f in fields(SplitSettings)}
    model_names = {f.name for f in fields(ModelSettings)}

    def model(role: str) -> ModelSettings:
        spec = {k: v for k, v in (models.get(role) or {}).items() if k in model_names}
        if spec.get("backend") == "scripted":
            spec["backend"] = "demo"
        spec.setdefault("backend", "local")
        spec["temperature"] = config.get(f"{role}_temperature", spec.get("temperature", 0.0))
        spec["max_tokens"] = config.get(f"{role}_max_tokens", spec.get("max_tokens", 256))
        return ModelSettings(**spec)

    settings = RunSettings(splits=SplitSettings(**{k: v for k, v in config.items() if k in split_names}),
                           task_model=model("task"), optimizer_model=model("optimizer"),
                           optimizer=OptimizerSettings(**{k: v for k, v in config.items() if k in opt_names}))
    return settings.validate("file")
