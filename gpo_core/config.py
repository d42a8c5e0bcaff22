"""Settings of an optimization run, validated before any model call is made."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import ConfigError
from .schedule import validate_schedule
from .trajectory import SELECTION_STRATEGIES

MAX_CANDIDATES = 32
MAX_K = 20
MAX_STEPS = 200


@dataclass
class RunConfig:
    """GPO settings. Defaults are the paper's (GPO.sh): 8 candidates a step, k = 3 by
    relevance, cosine edit budget 50 -> 10 words over 3 epochs x 6 steps = 18 steps.

    steps: total optimization steps T. candidates: N candidates sampled per step.
    k: trajectory prompts retrieved. selection: relevance | recency | importance.
    schedule: cosine | linear | fixed; budget_initial/final in words; warmup in steps.
    use_budget: put the edit budget in the meta-prompt (False = "no budget" ablation).
    enforce_budget: drop candidates whose measured word edit distance exceeds the budget.
    n_exemplars: task exemplars in the meta-prompt. dev_size/test_size/train_size: split
    sizes in examples (None = the default of :func:`gpo_core.splits.default_split_sizes`). seed: drives splits and exemplar draws.
    optimizer_temperature / task_temperature: sampling temperatures of the two models.
    optimizer_max_tokens / task_max_tokens: completion caps in tokens.
    """

    steps: int = 18
    candidates: int = 8
    k: int = 3
    selection: str = "relevance"
    schedule: str = "cosine"
    budget_initial: int = 50
    budget_final: int = 10
    warmup: int = 0
    use_budget: bool = True
    enforce_budget: bool = False
    n_exemplars: int = 3
    dev_size: int | None = None
    test_size: int | None = None
    train_size: int | None = None
    seed: int = 0
    optimizer_temperature: float = 1.0
    task_temperature: float = 0.0
    optimizer_max_tokens: int = 200
    task_max_tokens: int = 256

    def validate(self) -> "RunConfig":
        """Raise ConfigError (naming the setting) for any impossible value; returns self."""
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ConfigError("candidates", f"must be between 1 and {MAX_CANDIDATES} (got {self.candidates})")
        if not 1 <= self.k <= MAX_K:
            raise ConfigError("k", f"must be between 1 and {MAX_K} (got {self.k})")
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError("steps", f"must be between 1 and {MAX_STEPS} (got {self.steps})")
        if self.selection not in SELECTION_STRATEGIES:
            raise ConfigError("selection", f"unknown strategy {self.selection!r}")
        validate_schedule(self.schedule, self.budget_initial, self.budget_final, self.steps, self.warmup)
        if self.n_exemplars < 0:
            raise ConfigError("n_exemplars", f"must be >= 0 (got {self.n_exemplars})")
        for name in ("dev_size", "test_size", "train_size"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ConfigError(name, f"must be >= 0 (got {v})")
        if self.dev_size == 0:
            raise ConfigError("dev_size", "must be at least 1: candidates are scored on dev")
        for name in ("optimizer_temperature", "task_temperature"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0 (got {getattr(self, name)})")
        for name in ("optimizer_max_tokens", "task_max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1 token (got {getattr(self, name)})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "RunConfig":
        known = {f.name for f in fields(RunConfig)}
        return RunConfig(**{k: v for k, v in d.items() if k in known})
