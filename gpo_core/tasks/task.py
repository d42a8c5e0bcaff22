"""Task records: labeled examples plus how to prompt and score them.

Loading from files lives in :mod:`gpo_core.tasks.io`; splitting in :mod:`gpo_core.tasks.splits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Answer types, with the extraction/correctness rules in :mod:`gpo_core.scoring.answers`.
ANSWER_TYPES = (
    "multiple_choice",  # (A)..(R)
    "number",
    "yes_no",
    "true_false",
    "valid_invalid",
    "exact_match",  # normalized exact match (case, whitespace, trailing punctuation)
    "contains",  # target appears in the output (normalized)
)

#: Where the instruction goes relative to the question, as in the paper's code (OPRO/GPO):
#: before_Q: instruction line above "Q: ..."; Q_begin: "Q: <instruction>\n<question>";
#: Q_end: "Q: <question>\n<instruction>"; A_begin: "Q: <question>\n\nA: <instruction>".
INSTRUCTION_POSITIONS = ("before_Q", "Q_begin", "Q_end", "A_begin")

#: The paper's starting instruction (GPO.sh), placed at Q_end.
DEFAULT_INSTRUCTION = "Let's think step by step."


@dataclass(frozen=True)
class Example:
    """One labeled example. ``line`` is its 1-based line/record number in the source file."""

    input: str
    target: str
    line: int | None = None


@dataclass
class Task:
    """A task: examples plus how to prompt and score them.

    examples: all examples when the source has no explicit splits; empty when ``splits``
    holds explicit ``train``/``eval``/``test`` lists (BBH folder layout).
    format_examples: exemplars shown in the meta-prompt (optional; drawn from train if empty).
    warnings: what loading noticed but did not refuse, one sentence each naming the file and
    lines (duplicate rows dropped, targets that are not answers of ``answer_type`` dropped,
    the same input in two splits); shown where the loaded task is shown.
    metric / metric_options: the metric ``task.json`` suggests (``""``: the answer type's), the
    default of a new run's ``OptimizerSettings.metric`` (:mod:`gpo_core.metrics`).
    """

    name: str
    examples: list[Example]
    answer_type: str = "exact_match"
    instruction_position: str = "Q_end"
    initial_instruction: str = DEFAULT_INSTRUCTION
    description: str = ""
    explicit_splits: dict[str, list[Example]] = field(default_factory=dict)
    format_examples: list[Example] = field(default_factory=list)
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    metric: str = ""
    metric_options: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskSplits:
    """Train (exemplar pool for the meta-prompt), dev (scores candidates) and test (reported)."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    exemplars: list[Example] = field(default_factory=list)
