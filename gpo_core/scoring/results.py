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

    accuracy: n_correct / n_answered, in [0, 1] (0.0 when nothing was answered). n: examples
    scored. n_errors: examples whose call still failed (after the retry pass, if any); they
    are neither right nor wrong. usage: tokens and calls actually spent for this prompt,
    retry passes included (a call shared by identical requests is counted once). records:
    one per example, in example order. seconds: wall time in seconds of the
    :func:`evaluate_many` call that produced it (shared by all prompts scored together,
    since their calls run interleaved). models: the distinct model names the backend
    reported in its replies (sorted; empty when it names none). warnings: what the calls'
    :attr:`~gpo_core.models.base.Completion.warnings` said (a cache that could not be
    written, a usage field that was not a number...), each once with its count.
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
        )
