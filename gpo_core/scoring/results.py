"""What scoring a prompt produced: one :class:`ExampleRecord` per (prompt, example) call and
one :class:`EvalResult` per prompt and split, with their JSON forms (saved per scored prompt
by :mod:`gpo_core.runs.repository`). Made by :mod:`gpo_core.scoring.evaluation`.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

from gpo_core.models.base import TokenUsage


@dataclass
class ExampleRecord:
    """The outcome of one (prompt, example) task-model call.

    rendered_prompt: the user message sent (instruction placed per position).
    raw_output: the completion text ("" on error). parsed_answer: canonical extracted answer
    (:func:`gpo_core.scoring.answers.extract_answer`) or None. correct: scored 1.
    prompt_tokens / completion_tokens: usage in tokens (0 when cached/unknown).
    error: None or a one-line reason (a failed call is kept, never dropped, and not counted
    in the accuracy). prompt_tokens / completion_tokens of a cached call: what it cost when made.
    attempts: backend attempts (0 = served from cache). cached: served from cache.
    protocol: the scoring protocol that produced the answer ("single" or "reference", see
    :mod:`gpo_core.scoring.reprompt`). second_prompt / second_output: the answer re-prompt
    and the reply that was parsed (reference protocol; None otherwise).
    score: the metric's score in [0, 1] (:mod:`gpo_core.metrics`); None on records saved
    before metrics existed, meaning ``float(correct)`` (use :attr:`value`). correct: score == 1.
    reason: the metric's one-line reason, or None. metric_error: set when the metric raised on
    this example (then score 0). judge_prompt / judge_output / judge_prompt_tokens /
    judge_completion_tokens: the LLM judge's prompt, reply and usage (judge metrics only).
    """

    input: str
    target: str
    rendered_prompt: str
    raw_output: str
    parsed_answer: str | None
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    error: str | None
    attempts: int
    cached: bool
    protocol: str = "single"
    second_prompt: str | None = None
    second_output: str | None = None
    score: float | None = None
    reason: str | None = None
    metric_error: str | None = None
    judge_prompt: str | None = None
    judge_output: str | None = None
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0

    @property
    def value(self) -> float:
        """The example's score in [0, 1]: :attr:`score`, or ``float(correct)`` for records
        saved before metrics existed (score None)."""
        return float(self.correct) if self.score is None else float(self.score)

    def to_dict(self) -> dict:
        """A JSON-ready dict (all fields, plain types)."""
        # Every field is an immutable scalar, so a shallow copy equals dataclasses.asdict
        # (which deep-copies each value: ~20 us a record, 10 ms a step of 528 records).
        return {f.name: getattr(self, f.name) for f in _EXAMPLE_FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> ExampleRecord:
        """Inverse of :meth:`to_dict`. Unknown keys are ignored; a missing key without a
        default raises KeyError (records saved before a field existed get its default)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d or f.default is MISSING})


_EXAMPLE_FIELDS = fields(ExampleRecord)


@dataclass
class EvalResult:
    """The score of one prompt on one split.

    accuracy: mean metric score over the answered examples (score_sum / n_answered), in
    [0, 1] (0.0 when nothing was answered). n: examples
    scored. n_errors: examples whose call still failed (after the retry pass, if any); they
    are neither right nor wrong. usage: tokens and calls actually spent for this prompt,
    retry passes included (a call shared by identical requests is counted once). records:
    one per example, in example order. seconds: wall time in seconds of the
    :func:`evaluate_many` call that produced it (shared by all prompts scored together,
    since their calls run interleaved). models: the distinct model names the backend
    reported in its replies (sorted; empty when it names none). warnings: what the calls'
    :attr:`~gpo_core.models.base.Completion.warnings` said (a cache that could not be
    written, a usage field that was not a number...), each once with its count.
    score_sum: sum of the answered examples' metric scores (accuracy = score_sum / answered;
    None on results saved before metrics existed: then n_correct). n_correct: examples
    scored 1.0. binary: the metric scores 0 or 1 only (Wilson / McNemar apply; otherwise the
    bootstrap and the sign test, see :mod:`gpo_core.stats`). metric: the metric's name
    (None: saved before metrics existed, the answer type's).
    """

    instruction: str
    split: str
    accuracy: float
    n: int
    n_correct: int
    n_errors: int
    usage: TokenUsage
    records: list[ExampleRecord] = field(default_factory=list)
    seconds: float = 0.0
    models: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    score_sum: float | None = None
    binary: bool = True
    metric: str | None = None

    @property
    def total_score(self) -> float:
        """Sum of the answered examples' scores (``score_sum``; ``n_correct`` for results
        saved before metrics existed)."""
        return float(self.n_correct) if self.score_sum is None else float(self.score_sum)

    @property
    def n_answered(self) -> int:
        """Examples whose call succeeded: ``n - n_errors``."""
        return self.n - self.n_errors

    @property
    def measured_accuracy(self) -> float | None:
        """:attr:`accuracy` when at least one example was answered, else None (a score of
        no answers is no number)."""
        return self.accuracy if self.n_answered > 0 else None

    @property
    def complete(self) -> bool:
        """Every example was answered (no call failed)."""
        return self.n_errors == 0

    def to_dict(self, include_records: bool = True) -> dict:
        """A JSON-ready dict; ``records`` omitted when ``include_records`` is False."""
        d = {
            "instruction": self.instruction,
            "split": self.split,
            "accuracy": self.accuracy,
            "n": self.n,
            "n_correct": self.n_correct,
            "n_errors": self.n_errors,
            "usage": asdict(self.usage),
            "seconds": self.seconds,
            "models": list(self.models),
            "warnings": list(self.warnings),
            "score_sum": self.score_sum,
            "binary": self.binary,
            "metric": self.metric,
        }
        if include_records:
            d["records"] = [r.to_dict() for r in self.records]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        """Inverse of :meth:`to_dict` (missing ``records`` -> empty list)."""
        return cls(
            instruction=d["instruction"],
            split=d["split"],
            accuracy=float(d["accuracy"]),
            n=int(d["n"]),
            n_correct=int(d["n_correct"]),
            n_errors=int(d["n_errors"]),
            usage=TokenUsage(**d["usage"]),
            records=[ExampleRecord.from_dict(r) for r in d.get("records", [])],
            seconds=float(d.get("seconds", 0.0)),
            models=list(d.get("models", [])),
            warnings=list(d.get("warnings", [])),
            score_sum=None if d.get("score_sum") is None else float(d["score_sum"]),
            binary=bool(d.get("binary", True)),
            metric=d.get("metric"),
        )
