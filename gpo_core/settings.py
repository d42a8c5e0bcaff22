"""Every setting of a run, in one place: its type, its default, its check, and the name the
user knows it by (the CLI flag, the app widget).

One module because every setting lives in one place (issue 9): over 300 lines for that reason.

A run's settings are one :class:`RunSettings`: how the task is split (:class:`SplitSettings`),
each model's settings (:class:`ModelSettings`, one per role: task model and optimizer model)
and the optimizer's (:class:`OptimizerSettings`). Each class validates itself once, on its
types, and raises :class:`~gpo_core.errors.ConfigError` naming the setting as the user
touched it: ``--optimizer-temperature`` on the command line, "Optimizer model · Temperature"
in the app, ``optimizer_model.temperature`` in a run file.

Defaults (paper: GPO.sh of RUCAIBox/GPO; Tang et al. 2024, Sec. 4.1): 18 steps (3 epochs x
6), 8 candidates, k = 3 by relevance, cosine edit budget 50 -> 10 words, temperature 1.0
for the optimizer model and 0 for the task model. :func:`default_run_settings` sizes the
run for the backend: the embedded CPU model gets the "quick" preset (6 steps x 4
candidates, dev and test 12 examples, failure feedback 3) so a step takes minutes, a remote
endpoint the paper's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from gpo_core.errors import ConfigError
from gpo_core.models.redact import redact_url

__all__ = [
    "BACKENDS", "DEFAULT_MODEL_PRESET", "EMBEDDED_MODELS", "LOCAL_DEFAULT_MODEL", "MODEL_PRESETS",
    "QWEN_CODER_1_5B", "SMOLLM2_135M", "ModelPreset", "model_preset", "MAX_CANDIDATES", "MAX_K", "MAX_STEPS",
    "JUDGE_ROLE", "PRESETS", "ROLES", "Surface",
    "ModelSettings", "OptimizerSettings", "RunSettings", "SplitSettings", "default_model_settings",
    "default_run_settings", "label_for", "label_of",
]

#: Where a setting came from, which decides how an error names it.
Surface = Literal["engine", "cli", "app", "file"]

#: ``local``: an embedded GGUF model (llama-cpp-python); ``openai``: api.openai.com (or
#: ``OPENAI_BASE_URL``); ``compatible``: any OpenAI-compatible server at ``base_url``;
#: ``demo``: the app's scripted demo models (``gpo_core.models.demo``).
BACKENDS: tuple[str, ...] = ("local", "openai", "compatible", "demo")
LOCAL_DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1"
#: The embedded models by name (``ModelSettings.model`` of the ``local`` backend; a path to
#: any ``.gguf`` file works too). Sizes, licences and where the weights come from:
#: :mod:`gpo_core.models.local_llama` and :mod:`gpo_core.models.weights`.
SMOLLM2_135M = LOCAL_DEFAULT_MODEL
QWEN_CODER_1_5B = "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M"
EMBEDDED_MODELS: tuple[str, ...] = (SMOLLM2_135M, QWEN_CODER_1_5B)
ROLES: tuple[str, ...] = ("task", "optimizer")
ROLE_TITLES = {"task": "Task model", "optimizer": "Optimizer model", "judge": "Judge model"}
#: The optional third role: the LLM judge of the ``llm_judge`` metric (issue 12).
JUDGE_ROLE = "judge"

MAX_CANDIDATES = 32
MAX_K = 20
MAX_STEPS = 200
#: Per-request timeout of remote models (seconds): one default for the app and the CLI.
DEFAULT_TIMEOUT_S = 60.0


def _meta(flag: str | None = None, widget: str | None = None) -> dict[str, Any]:
    return {"flag": flag, "widget": widget}


def label_of(obj: Any, name: str, surface: Surface, role: str | None = None) -> str:
    """The name of setting ``name`` of the settings object ``obj`` as the user knows it on
    ``surface``: a CLI flag ("--optimizer-temperature"), an app widget ("Optimizer model ·
    Temperature"), or a dotted field path ("optimizer_model.temperature") for run files and
    the engine. ``role`` fills the ``{role}`` of model settings."""
    f = next((f for f in fields(obj) if f.name == name), None)
    meta = f.metadata if f is not None else {}
    role_key = role or ""
    if surface == "cli" and meta.get("flag"):
        return meta["flag"].format(role=role_key)
    if surface == "app" and meta.get("widget"):
        return meta["widget"].format(role=ROLE_TITLES.get(role_key, role_key))
    return f"{role}_model.{name}" if role else name


def _bad(obj: Any, name: str, surface: Surface, reason: str, role: str | None = None) -> ConfigError:
    return ConfigError(label_of(obj, name, surface, role), reason)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _from_mapping(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build ``cls`` from a mapping, refusing unknown keys and wrong JSON types by name."""
    if not isinstance(data, Mapping):
        raise ConfigError(where, f"expected an object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key == "api_key":
            raise ConfigError(f"{where}.api_key", "API keys are never stored in settings; pass them separately")
        if key not in known:
            raise ConfigError(f"{where}.{key}", f"unknown setting; expected one of {', '.join(sorted(known))}")
    return cls(**dict(data))


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSettings:
    """Settings of one model role (task model or optimizer model). Holds no API key.

    backend: one of :data:`BACKENDS`. model: the model name the server knows (for ``local``:
    :data:`LOCAL_DEFAULT_MODEL` or a path to a ``.gguf`` file). base_url: endpoint for
    ``compatible`` (required) or ``openai`` (optional), e.g. ``http://localhost:8000/v1``.
    temperature: sampling temperature in [0, 2]. max_tokens: completion cap in tokens (>= 1).
    concurrency: calls in flight at once (>= 1; the embedded model runs 1). timeout_s:
    per-attempt timeout in seconds (> 0).
    """

    backend: str = field(default="local", metadata=_meta("--backend", "{role} · Backend"))
    model: str = field(default=LOCAL_DEFAULT_MODEL, metadata=_meta("--{role}-model", "{role} · Model"))
    base_url: str | None = field(default=None, metadata=_meta("--base-url", "{role} · Base URL"))
    temperature: float = field(default=0.0, metadata=_meta("--{role}-temperature", "{role} · Temperature"))
    max_tokens: int = field(default=256, metadata=_meta("--{role}-max-tokens", "{role} · Max tokens"))
    concurrency: int = field(default=8, metadata=_meta("--concurrency", "{role} · Concurrency"))
    timeout_s: float = field(default=DEFAULT_TIMEOUT_S, metadata=_meta("--timeout", "{role} · Timeout (s)"))

    def validate(self, surface: Surface = "engine", role: str | None = None) -> ModelSettings:
        """Check every field; returns self. Raises ConfigError naming the setting as the
        user touched it on ``surface`` (see :func:`label_of`)."""

        def bad(name: str, reason: str) -> ConfigError:
            return _bad(self, name, surface, reason, role)

        if self.backend not in BACKENDS:
            raise bad("backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not isinstance(self.model, str):
            raise bad("model", f"must be text, got {type(self.model).__name__}")
        if self.backend != "local" and not self.model.strip():
            raise bad("model", "the model name is empty")
        if self.backend == "local" and self.model.strip() not in ("", *EMBEDDED_MODELS):
            if not self.model.endswith(".gguf"):
                raise bad("model", f"an embedded model is one of {', '.join(EMBEDDED_MODELS)} or a path to a "
                                   f".gguf file, got {self.model!r}")
            if not Path(self.model).expanduser().is_file():
                raise bad("model", f"GGUF file not found: {self.model}")
        if self.backend == "compatible" and not self.base_url:
            raise bad("base_url", "an OpenAI-compatible backend needs a base URL such as http://localhost:8000/v1")
        if self.base_url is not None:
            if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
                raise bad("base_url", f"must start with http:// or https://, got {self.base_url!r}")
        if not _is_number(self.temperature) or not 0.0 <= float(self.temperature) <= 2.0:
            raise bad("temperature", f"must be a number in [0, 2], got {self.temperature!r}")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad("max_tokens", f"must be a whole number >= 1, got {self.max_tokens!r}")
        if not _is_int(self.concurrency) or self.concurrency < 1:
            raise bad("concurrency", f"must be a whole number >= 1, got {self.concurrency!r}")
        if not _is_number(self.timeout_s) or float(self.timeout_s) <= 0:
            raise bad("timeout_s", f"must be a number of seconds > 0, got {self.timeout_s!r}")
        return self

    def replace(self, **changes: Any) -> ModelSettings:
        """A copy with ``changes`` (not validated: call :meth:`validate`)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fields (never contains an API key; credentials in
        ``base_url`` are redacted, see :func:`gpo_core.models.redact.redact_url`)."""
        d = dataclasses.asdict(self)
        d["base_url"] = redact_url(self.base_url)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], role: str | None = None) -> ModelSettings:
        """Inverse of :meth:`to_dict`, validated (surface "file"). Raises ConfigError for an
        unknown key (an ``api_key`` is refused outright), a missing backend or a bad value."""
        where = f"{role}_model" if role else "model"
        if isinstance(data, Mapping) and "backend" not in data:
            raise ConfigError(f"{where}.backend", "missing")
        return _from_mapping(cls, data, where).validate("file", role)

    def cache_namespace(self) -> str:
        """The model's identity in response-cache keys: backend, endpoint (credentials
        redacted: the cache scopes entries by credential apart) and model name."""
        if self.backend == "local":
            return "local:" + (self.model or LOCAL_DEFAULT_MODEL)
        return f"{self.backend}|{redact_url(self.base_url) or ''}|{self.model}"

    def describe(self) -> str:
        """One line for people: "gpt-4o-mini (OpenAI)", "SmolLM2-135M-Instruct.Q4_1 (embedded)"."""
        where = {"local": "embedded", "openai": "OpenAI", "compatible": redact_url(self.base_url) or "compatible",
                 "demo": "scripted demo"}.get(self.backend, self.backend)
        return f"{self.model} ({where})"


@dataclass(frozen=True)
class ModelPreset:
    """A per-role choice of embedded models, one click away on the Models page and
    ``--model-preset`` on the command line.

    name: the preset's key. label: its name for people. task_model / optimizer_model: names
    of :data:`EMBEDDED_MODELS`. step_seconds: measured seconds of one step of the app's
    default run ("quick": 4 candidates, 12 dev and 12 test examples) on the machine named in
    ``measured`` (benchmarks/embedded_optimizer.py; see benchmarks/results/).
    """

    name: str
    label: str
    task_model: str
    optimizer_model: str
    step_seconds: float
    measured: str

    def describe(self) -> str:
        """One line: "capable: task Qwen2.5-Coder-1.5B-Instruct.Q4_K_M, optimizer ...; about 95 s a step"."""
        return (f"{self.label}: task model {self.task_model}, optimizer model {self.optimizer_model}; "
                f"about {self.step_seconds:.0f} s a step ({self.measured})")


#: Embedded model presets by name (benchmarks/embedded_optimizer.py measured them; the
#: default is the fastest task model with which GPO measurably improves the sample tasks).
MODEL_PRESETS: dict[str, ModelPreset] = {
    # step_seconds: benchmarks/embedded_optimizer.py --parts step, one step of the app's sizes (4 candidates x 12
    # dev examples, failure feedback 3, the chosen prompt on 12 test) on review_sentiment, 2 idle CPU cores
    # (2026-11-22; loaded by 4 other jobs, load 6-7, the same step took 210 s and 297 s).
    "fast": ModelPreset("fast", "Fast", task_model=SMOLLM2_135M, optimizer_model=QWEN_CODER_1_5B,
                        step_seconds=87.0, measured="2 idle CPU cores, 4 candidates x 12 dev + 12 test"),
    "capable": ModelPreset("capable", "Capable", task_model=QWEN_CODER_1_5B, optimizer_model=QWEN_CODER_1_5B,
                           step_seconds=83.0, measured="2 idle CPU cores, 4 candidates x 12 dev + 12 test"),
}
DEFAULT_MODEL_PRESET = "capable"


def model_preset(name: str) -> ModelPreset:
    """The embedded model preset ``name`` (ConfigError naming ``--model-preset`` otherwise)."""
    if name not in MODEL_PRESETS:
        raise ConfigError("--model-preset", f"unknown preset {name!r}; choose one of {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]


def default_model_settings(role: str, backend: str = "local", preset: str | None = None) -> ModelSettings:
    """The default settings of a role: the task model answers greedily (temperature 0), the
    optimizer model samples at 1.0 (paper). The embedded model runs one call at a time and
    is the role's model of the embedded ``preset`` (default :data:`DEFAULT_MODEL_PRESET`).
    Completion caps: 128 tokens for the task model on the embedded CPU model (its answers
    are short) and 256 elsewhere; 200 for the optimizer model."""
    if role not in (*ROLES, JUDGE_ROLE):
        raise ConfigError("role", f"unknown model role {role!r}; expected one of {', '.join(ROLES)}, judge")
    local = backend == "local"
    chosen = model_preset(preset or DEFAULT_MODEL_PRESET)
    if role in ("task", JUDGE_ROLE):  # the judge grades greedily too, by default on the task model
        return ModelSettings(backend=backend, model=chosen.task_model if local else "gpt-4o-mini",
                             temperature=0.0, max_tokens=128 if local else 256, concurrency=1 if local else 8)
    return ModelSettings(backend=backend, model=chosen.optimizer_model if local else "gpt-4o-mini",
                         temperature=1.0, max_tokens=200, concurrency=1 if local else 8)


# ----------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitSettings:
    """How the task's examples are split (sizes in examples). None: a split folder's whole
    eval/test split, else :func:`gpo_core.tasks.splits.default_split_sizes`. seed drives the
    split and the exemplar draws."""

    dev_size: int | None = field(default=None, metadata=_meta("--dev-size", "Dev examples"))
    test_size: int | None = field(default=None, metadata=_meta("--test-size", "Test examples"))
    train_size: int | None = field(default=None, metadata=_meta("--train-size", "Train examples"))
    seed: int = field(default=0, metadata=_meta("--seed", "Seed"))

    def validate(self, surface: Surface = "engine") -> SplitSettings:
        """Check every field; returns self (ConfigError naming the setting otherwise)."""
        for name in ("dev_size", "test_size", "train_size"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 0):
                raise _bad(self, name, surface, f"must be a whole number >= 0, got {v!r}")
        if self.dev_size == 0:
            raise _bad(self, "dev_size", surface, "must be at least 1: candidates are scored on dev")
        if not _is_int(self.seed):
            raise _bad(self, "seed", surface, f"must be a whole number, got {self.seed!r}")
        return self

    def replace(self, **changes: Any) -> SplitSettings:
        """A copy with ``changes`` (not validated: call :meth:`validate`)."""
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- optimizer


@dataclass(frozen=True)
class OptimizerSettings:
    """GPO's settings (defaults: the paper's GPO.sh).

    steps: total optimization steps T. candidates: N candidates sampled per step. k:
    trajectory prompts retrieved (the update direction). selection: a strategy registered
    in :data:`gpo_core.optimizer.direction.SELECTION_STRATEGIES`. schedule: cosine | linear |
    fixed; budget_initial / budget_final in words; warmup in steps. use_budget: state the
    edit budget in the meta-prompt ("no budget" ablation when False). enforce_budget: drop
    candidates whose measured word edit distance exceeds the budget, unscored.
    n_exemplars: task exemplars in the meta-prompt. policy: the decision policy registered
    in :data:`gpo_core.optimizer.policies.POLICIES` ("paper": the best not-yet-chosen;
    "better": only if better than the current prompt on dev; "significant": only if
    significantly better). alpha: the significance level in (0, 1) of the "significant"
    policy's exact McNemar test (default 0.05). patience: automatic runs (auto-run, the CLI)
    stop after this many steps in a row without a significant gain (a chosen prompt that beats
    the one before it with McNemar p < alpha); 0 = never (ours; see
    :func:`gpo_core.optimizer.policies.early_stop_reason`). blind_test: test scores are
    computed and stored but hidden from the user until revealed (ours; see
    :mod:`gpo_core.optimizer.overfit`). drop_flagged: drop, unscored, candidates that copy
    exemplar or dev text or name an answer label (ours; see :mod:`gpo_core.optimizer.leaks`).
    show_rejections: list candidates the user rejected in later meta-prompts, marked so.
    direction_pool: where the update direction retrieves from: "chosen" (the start prompt
    plus the prompt chosen at each step, as the reference code) or "all" (every scored
    candidate: ours). direction_order: "reference" (as the strategy picks them: for
    relevance the newest first, then by similarity) or "score" (ascending, best last).
    layout: the meta-prompt layout registered in :data:`gpo_core.optimizer.templates.LAYOUTS`
    ("gpo": the reference code's structure; "opro": OPRO's wording; "short": ours).
    exemplar_draw: "once" (drawn once per run from the format split, as the reference) or
    "per_step" (redrawn at each step). epochs / batch_size: when epochs is set, T = epochs x
    steps per epoch, a step per batch_size train examples (the reference's rounding, see
    :func:`steps_per_epoch`); None keeps the fixed ``steps``. protocol: how the task model
    is asked (:mod:`gpo_core.scoring.reprompt`): "reference" (question and instruction
    without labels, then an answer re-prompt; two calls an example), "single" (labelled
    prompt, one call), or "auto" (reference for a task folder with its own splits, as BBH;
    single for an uploaded file), resolved when the run is created.
    racing (ours, off by default): score the step's candidates on dev in rounds of
    ``racing_batch`` examples and stop scoring a candidate once its Wilson upper bound at
    ``racing_alpha`` falls below the leader's lower bound, or it could not catch the leader
    even if every remaining example were right (see :mod:`gpo_core.optimizer.racing`; Maron &
    Moore's Hoeffding races, irace's F-race). A raced-out candidate cannot be chosen.
    max_cost (US dollars) / max_spend_tokens (tokens spent, cache hits free): a hard spend cap;
    the run stops at the next call boundary once it is reached, keeping every finished step,
    and resumes with a higher cap (see :mod:`gpo_core.costs`). None: no cap.
    failure_feedback: wrong dev examples of the current prompt shown in the meta-prompt with the
    task model's answers and the metric's reasons (0 = off, the paper's setting; the reference
    code's "feedback" variant, see :mod:`gpo_core.optimizer.failure_feedback`).
    """

    steps: int = field(default=18, metadata=_meta("--steps", "Total steps T"))
    candidates: int = field(default=8, metadata=_meta("--candidates", "Candidates per step"))
    k: int = field(default=3, metadata=_meta("--k", "k (trajectory prompts retrieved)"))
    selection: str = field(default="relevance", metadata=_meta("--selection", "Selection strategy"))
    schedule: str = field(default="cosine", metadata=_meta("--schedule", "Edit budget schedule"))
    budget_initial: int = field(default=50, metadata=_meta("--budget-initial", "Initial budget (words)"))
    budget_final: int = field(default=10, metadata=_meta("--budget-final", "Final budget (words)"))
    warmup: int = field(default=0, metadata=_meta("--warmup", "Warmup steps"))
    use_budget: bool = field(default=True, metadata=_meta("--no-budget", "State the budget in the meta-prompt"))
    enforce_budget: bool = field(default=False, metadata=_meta("--enforce-budget", "Enforce budget"))
    n_exemplars: int = field(default=3, metadata=_meta("--exemplars", "Task exemplars in the meta-prompt"))
    policy: str = field(default="paper", metadata=_meta("--policy", "Decision policy"))
    alpha: float = field(default=0.05, metadata=_meta("--alpha", "Significance level"))
    patience: int = field(default=0, metadata=_meta("--patience",
                                                    "Stop after N steps without a significant gain (0 = never)"))
    blind_test: bool = field(default=False, metadata=_meta("--blind-test",
                                                           "Blind test (hide test scores until revealed)"))
    drop_flagged: bool = field(default=False, metadata=_meta("--drop-flagged",
                                                             "Drop candidates that copy data or name a label"))
    show_rejections: bool = field(default=True, metadata=_meta(None, "Show rejected candidates to the optimizer"))
    direction_pool: str = field(default="chosen", metadata=_meta("--direction-pool", "Retrieve from"))
    direction_order: str = field(default="reference", metadata=_meta("--direction-order", "Order of retrieved prompts"))
    layout: str = field(default="gpo", metadata=_meta("--layout", "Meta-prompt layout"))
    exemplar_draw: str = field(default="once", metadata=_meta("--exemplar-draw", "Exemplars"))
    epochs: int | None = field(default=None, metadata=_meta("--epochs", "Epochs"))
    batch_size: int = field(default=8, metadata=_meta("--batch-size", "Train examples per step"))
    protocol: str = field(default="auto", metadata=_meta("--protocol", "Scoring protocol"))
    racing: bool = field(default=False, metadata=_meta("--racing", "Racing: stop scoring hopeless candidates"))
    racing_alpha: float = field(default=0.05, metadata=_meta("--racing-alpha", "Racing · significance level"))
    racing_batch: int = field(default=4, metadata=_meta("--racing-batch", "Racing · dev examples per round"))
    max_cost: float | None = field(default=None, metadata=_meta("--max-cost", "Spend cap ($)"))
    max_spend_tokens: int | None = field(default=None, metadata=_meta("--max-tokens", "Spend cap (tokens)"))
    metric: str = field(default="", metadata=_meta("--metric", "Metric"))
    metric_options: dict[str, str] = field(default_factory=dict, metadata=_meta("--metric-option", "Metric options"))
    failure_feedback: int = field(default=0, metadata=_meta("--failure-feedback",
                                                            "Failure feedback (wrong dev examples shown, 0 = off)"))

    def validate(self, surface: Surface = "engine") -> OptimizerSettings:
        """Check every field; returns self (ConfigError naming the setting otherwise)."""
        from gpo_core.optimizer.direction import SELECTION_STRATEGIES
        from gpo_core.optimizer.policies import POLICIES
        from gpo_core.optimizer.schedule import SCHEDULE_KINDS

        def bad(name: str, reason: str) -> ConfigError:
            return _bad(self, name, surface, reason)

        for name, lo, hi in (("steps", 1, MAX_STEPS), ("candidates", 1, MAX_CANDIDATES), ("k", 1, MAX_K),
                             ("budget_initial", 1, 10_000), ("budget_final", 1, 10_000), ("warmup", 0, MAX_STEPS),
                             ("n_exemplars", 0, 50), ("patience", 0, MAX_STEPS), ("failure_feedback", 0, 50)):
            v = getattr(self, name)
            if not _is_int(v) or not lo <= v <= hi:
                raise bad(name, f"must be a whole number between {lo} and {hi}, got {v!r}")
        if self.selection not in SELECTION_STRATEGIES:
            raise bad("selection", f"unknown strategy {self.selection!r}; "
                                   f"choose one of {', '.join(SELECTION_STRATEGIES)}")
        if self.schedule not in SCHEDULE_KINDS:
            raise bad("schedule", f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
        if self.warmup >= self.steps and self.warmup > 0:
            raise bad("warmup", f"must be shorter than the {self.steps} steps, got {self.warmup}")
        if self.schedule != "fixed" and self.budget_final > self.budget_initial:
            raise bad("budget_final", f"final budget {self.budget_final} is larger than initial budget "
                                      f"{self.budget_initial}")
        if self.policy not in POLICIES:
            raise bad("policy", f"unknown decision policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        if not _is_number(self.alpha) or not 0.0 < float(self.alpha) < 1.0:
            raise bad("alpha", f"must be a number between 0 and 1 (exclusive), got {self.alpha!r}")
        for name in ("use_budget", "enforce_budget", "show_rejections", "blind_test", "drop_flagged"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, f"must be true or false, got {getattr(self, name)!r}")
        from gpo_core.optimizer.templates import LAYOUTS

        for name, allowed in (("direction_pool", DIRECTION_POOLS), ("direction_order", DIRECTION_ORDERS),
                              ("layout", tuple(LAYOUTS)), ("exemplar_draw", EXEMPLAR_DRAWS),
                              ("protocol", ("auto", "reference", "single"))):
            if getattr(self, name) not in allowed:
                raise bad(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.epochs is not None and (not _is_int(self.epochs) or not 1 <= self.epochs <= 50):
            raise bad("epochs", f"must be a whole number between 1 and 50, got {self.epochs!r}")
        if not _is_int(self.batch_size) or not 1 <= self.batch_size <= 10_000:
            raise bad("batch_size", f"must be a whole number >= 1, got {self.batch_size!r}")
        if not isinstance(self.racing, bool):
            raise bad("racing", f"must be true or false, got {self.racing!r}")
        if not _is_number(self.racing_alpha) or not 0.0 < float(self.racing_alpha) < 1.0:
            raise bad("racing_alpha", f"must be a number between 0 and 1 (exclusive), got {self.racing_alpha!r}")
        if not _is_int(self.racing_batch) or not 1 <= self.racing_batch <= 10_000:
            raise bad("racing_batch", f"must be a whole number >= 1, got {self.racing_batch!r}")
        if self.max_cost is not None and (not _is_number(self.max_cost) or float(self.max_cost) <= 0):
            raise bad("max_cost", f"must be a number of US dollars > 0, got {self.max_cost!r}")
        if self.max_spend_tokens is not None and (not _is_int(self.max_spend_tokens) or self.max_spend_tokens < 1):
            raise bad("max_spend_tokens", f"must be a whole number of tokens >= 1, got {self.max_spend_tokens!r}")
        if not isinstance(self.metric, str):
            raise bad("metric", f"must be a metric name or path/file.py:function, got {self.metric!r}")
        if not isinstance(self.metric_options, Mapping) or not all(
                isinstance(k, str) for k in self.metric_options):
            raise bad("metric_options", f"must be an object of option names to values, got {self.metric_options!r}")
        _check_metric(self, surface)
        return self

    def for_train_size(self, n_train: int) -> OptimizerSettings:
        """These settings with T resolved for ``n_train`` train examples: with ``epochs``
        set, ``steps = epochs x steps_per_epoch(n_train, batch_size)`` (at least 1, at most
        MAX_STEPS); without, unchanged. Source: reference ``src/optimization/optimize.py``."""
        if self.epochs is None:
            return self
        t = max(1, min(MAX_STEPS, self.epochs * steps_per_epoch(n_train, self.batch_size)))
        warmup = min(self.warmup, t - 1)
        return dataclasses.replace(self, steps=t, warmup=warmup)

    def replace(self, **changes: Any) -> OptimizerSettings:
        """A copy with ``changes`` (not validated: call :meth:`validate`)."""
        return dataclasses.replace(self, **changes)


def _check_metric(opt: OptimizerSettings, surface: Surface) -> None:
    """Build the metric once (:func:`gpo_core.metrics.build_metric`) so that an unknown name,
    a bad option (a regex that does not compile) or user code that does not import is refused
    by its flag or widget. The answer type's own metric ("") takes no options."""
    from gpo_core.metrics import USER_METRICS_ENV, build_metric, is_user_code, user_metrics_allowed

    if surface == "app" and is_user_code(opt.metric) and not user_metrics_allowed():
        raise _bad(opt, "metric", surface, "user code runs in the app only when the server was started with "
                                           f"{USER_METRICS_ENV}=1")
    try:
        metric = build_metric(opt.metric, opt.metric_options, "exact_match")
    except ConfigError as e:
        field_name = "metric_options" if e.setting.startswith("metric_options") else "metric"
        detail = e.setting.partition(".")[2]
        raise _bad(opt, field_name, surface, (f"{detail}: " if detail else "") + e.reason) from None
    if opt.racing and not metric.binary:
        raise _bad(opt, "racing", surface, f"racing compares Wilson bounds of 0/1 scores; the metric {metric.name!r} "
                                           "gives partial credit: turn racing off or pick a 0/1 metric")


#: Where the update direction retrieves from (OptimizerSettings.direction_pool).
DIRECTION_POOLS: tuple[str, ...] = ("chosen", "all")
#: How retrieved prompts are ordered in the meta-prompt (OptimizerSettings.direction_order).
DIRECTION_ORDERS: tuple[str, ...] = ("reference", "score")
#: How exemplars are drawn (OptimizerSettings.exemplar_draw).
EXEMPLAR_DRAWS: tuple[str, ...] = ("once", "per_step")


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimization steps in one epoch over ``n_train`` train examples in batches of
    ``batch_size``: ``n // b``, plus one when the remainder is at least half a batch (the
    reference code's rounding: 48 train / 8 -> 6; 20 / 8 -> 3). At least 1."""
    full, rest = divmod(max(0, n_train), max(1, batch_size))
    return max(1, full + (1 if rest >= batch_size / 2 else 0))


# ----------------------------------------------------------------------------- a run


@dataclass(frozen=True)
class RunSettings:
    """All settings of a run: the split, the models and the optimizer.

    judge_model: the judge model of the ``llm_judge`` metric (:mod:`gpo_core.metrics.judge`);
    None: the task model's settings at temperature 0 judge (:meth:`judge`). Kept in run.json
    only when set."""

    splits: SplitSettings = field(default_factory=SplitSettings)
    task_model: ModelSettings = field(default_factory=lambda: default_model_settings("task"))
    optimizer_model: ModelSettings = field(default_factory=lambda: default_model_settings("optimizer"))
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    judge_model: ModelSettings | None = None

    def validate(self, surface: Surface = "engine") -> RunSettings:
        """Validate every part; returns self. ConfigError names the first bad setting."""
        self.splits.validate(surface)
        self.task_model.validate(surface, "task")
        self.optimizer_model.validate(surface, "optimizer")
        if self.judge_model is not None:
            self.judge_model.validate(surface, JUDGE_ROLE)
        self.optimizer.validate(surface)
        return self

    @property
    def uses_judge(self) -> bool:
        """Whether the run's metric is the LLM judge (then the judge model is called)."""
        from gpo_core.metrics.judge import JUDGE_METRIC

        return self.optimizer.metric == JUDGE_METRIC

    def judge(self) -> ModelSettings:
        """The judge model's settings: ``judge_model``, else the task model's at temperature 0."""
        return self.judge_model if self.judge_model is not None else self.task_model.replace(temperature=0.0)

    def model(self, role: str) -> ModelSettings:
        """The settings of ``role`` ("task", "optimizer" or "judge": :meth:`judge`)."""
        if role == JUDGE_ROLE:
            return self.judge()
        if role not in ROLES:
            raise ConfigError("role", f"unknown model role {role!r}")
        return self.task_model if role == "task" else self.optimizer_model

    def with_model(self, role: str, settings: ModelSettings | None) -> RunSettings:
        """A copy whose ``role`` model has ``settings`` (for "judge", None: the task model judges)."""
        if role != JUDGE_ROLE:
            self.model(role)
            if settings is None:
                raise ConfigError(f"{role}_model", "the task and optimizer models cannot be left out")
        return dataclasses.replace(self, **{f"{role}_model": settings})

    def replace(self, **changes: Any) -> RunSettings:
        """A copy with whole parts replaced (``splits=``, ``optimizer=``, ...)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (no API key can be in it); "judge_model" only when set."""
        d = {"splits": dataclasses.asdict(self.splits), "task_model": self.task_model.to_dict(),
             "optimizer_model": self.optimizer_model.to_dict(), "optimizer": dataclasses.asdict(self.optimizer)}
        if self.judge_model is not None:
            d["judge_model"] = self.judge_model.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSettings:
        """Inverse of :meth:`to_dict`, validated as a run file ("file" surface)."""
        if not isinstance(data, Mapping):
            raise ConfigError("settings", f"expected an object, got {type(data).__name__}")
        for key in data:
            if key not in ("splits", "task_model", "optimizer_model", "optimizer", "judge_model"):
                raise ConfigError(f"settings.{key}", "unknown part of the settings")
        judge = data.get("judge_model")
        out = cls(splits=_from_mapping(SplitSettings, data.get("splits", {}), "splits"),
                  task_model=ModelSettings.from_dict(data.get("task_model", {"backend": "local"}), "task"),
                  optimizer_model=ModelSettings.from_dict(data.get("optimizer_model", {"backend": "local"}),
                                                          "optimizer"),
                  optimizer=_from_mapping(OptimizerSettings, data.get("optimizer", {}), "optimizer"),
                  judge_model=None if judge is None else ModelSettings.from_dict(judge, JUDGE_ROLE))
        return out.validate("file")


def label_for(setting: str, surface: Surface) -> str:
    """The name on ``surface`` of a setting the engine names by its field path: "dev_size"
    or "splits.dev_size" -> "--dev-size" (CLI) / "Dev examples" (app); "k" or "optimizer.k";
    "optimizer_model.temperature" -> "--optimizer-temperature". A name that is no settings
    field (or already a label) comes back unchanged."""
    head, _, name = setting.rpartition(".")
    for role in (*ROLES, JUDGE_ROLE):
        if head == f"{role}_model" and name in {f.name for f in fields(ModelSettings)}:
            return label_of(ModelSettings, name, surface, role)
    for part, cls in (("splits", SplitSettings), ("optimizer", OptimizerSettings)):
        if head in ("", part) and name in {f.name for f in fields(cls)}:
            return label_of(cls, name, surface)
    return setting


#: Named presets of the optimizer and split settings. "paper": GPO.sh (18 steps x 8
#: candidates, the task's own dev/test sizes). "quick": sized for the embedded CPU model.
PRESETS: dict[str, tuple[OptimizerSettings, SplitSettings]] = {
    "paper": (OptimizerSettings(epochs=3), SplitSettings()),
    # dev and test 12: a step of 4 candidates then takes about 2 minutes on the embedded 1.5B model on 2 cores
    # (4 optimizer calls of ~9 s and 60 task calls of ~1.5 s; benchmarks/embedded_optimizer.py)
    # failure feedback 3 (ours, off in "paper"): offline it let the optimizer read a label vocabulary off the shown
    # mistakes (review_sentiment 0/12 -> 10/12) and never did worse than without (benchmarks/offline_quality.py)
    "quick": (OptimizerSettings(steps=6, candidates=4, failure_feedback=3), SplitSettings(dev_size=12, test_size=12)),
}


def default_run_settings(backend: str = "local", preset: str | None = None) -> RunSettings:
    """The defaults of a new run, for the app and the CLI alike: the "quick" preset for the
    embedded model, the "paper" preset otherwise (or the named ``preset``)."""
    name = preset or ("quick" if backend in ("local", "demo") else "paper")
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    opt, splits = PRESETS[name]
    return RunSettings(splits=splits, task_model=default_model_settings("task", backend),
                       optimizer_model=default_model_settings("optimizer", backend), optimizer=opt)
