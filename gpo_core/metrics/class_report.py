"""Classification report of one prompt's per-example records on a label task: per-class
precision, recall, F1 and support, the confusion matrix (gold rows x predicted columns) and
the majority-class baseline with its Wilson interval, so a prompt that "always answers
positive" shows at once (issue 12, item 3).

A label task: answer type yes_no / true_false / valid_invalid / multiple_choice, or
exact_match with at most :data:`MAX_LABELS` distinct normalized targets; scored by its answer
type's own metric (a custom metric scores something else, so no report). Labels are the
canonical forms of :func:`gpo_core.scoring.answers.normalize_target` (gold) and the records'
``parsed_answer`` (predicted). Definitions follow scikit-learn's ``classification_report``
(precision = TP / predicted, recall = TP / support, F1 their harmonic mean; undefined -> None
instead of sklearn's 0 with a warning). The matrix is built with ``pandas.crosstab``.
No Streamlit here; the view is :mod:`gpo_core.studio.views.class_report_view`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpo_core.scoring.answers import normalize_target, normalize_text
from gpo_core.stats import wilson_interval

__all__ = ["LABEL_TYPES", "MAX_LABELS", "NO_ANSWER", "OTHER_ANSWER", "ClassReport", "ClassStats",
           "baseline_text", "class_report", "is_label_task", "majority_baseline"]

#: Answer types whose targets are labels by construction.
LABEL_TYPES = ("yes_no", "true_false", "valid_invalid", "multiple_choice")
#: exact_match tasks with at most this many distinct normalized targets count as label tasks.
MAX_LABELS = 20
#: The predicted column of records where no answer could be extracted.
NO_ANSWER = "no answer"
#: The predicted column of answers that are none of the gold labels (e.g. "(E)" on an A-D task).
OTHER_ANSWER = "other answer"


def _gold(target: str, answer_type: str) -> str | None:
    try:
        return normalize_target(target, answer_type)
    except ValueError:
        return None


def _pred(answer: Any, answer_type: str) -> str | None:
    if answer is None or not str(answer).strip():
        return None
    return normalize_text(str(answer)) if answer_type == "exact_match" else str(answer)


def is_label_task(answer_type: str, targets: Iterable[str], metric: str = "") -> bool:
    """Whether a report makes sense: ``answer_type`` in :data:`LABEL_TYPES`, or exact_match
    with 2..:data:`MAX_LABELS` distinct normalized ``targets``, one of them repeated (12
    different dates are answers, not classes); and ``metric`` (the run's
    ``OptimizerSettings.metric``) is "" or the answer type itself (any other metric scores
    something other than the label). Never raises."""
    if metric not in ("", answer_type):
        return False
    if answer_type in LABEL_TYPES:
        return True
    if answer_type != "exact_match":
        return False
    golds = [g for g in (_gold(t, answer_type) for t in targets) if g is not None]
    labels = set(golds)
    # a label repeats: 12 dev dates, each different, are answers, not classes
    return 2 <= len(labels) <= MAX_LABELS and len(labels) < len(golds)


@dataclass(frozen=True)
class ClassStats:
    """One gold class. precision / recall / f1 in [0, 1], None when undefined (nothing
    predicted as the class, or no support); support: gold examples of the class; predicted:
    examples the model labelled as the class."""

    label: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    predicted: int


@dataclass(frozen=True)
class ClassReport:
    """The report of one prompt on one split.

    labels: gold classes (matrix rows), sorted (numbers by value). columns: labels, then :data:`OTHER_ANSWER` when
    some answer is none of them, then :data:`NO_ANSWER` (always). matrix[i][j]: examples of gold
    ``labels[i]`` answered ``columns[j]``. classes: per-class stats in ``labels`` order.
    n: scored examples (failed calls and unreadable targets left out, as in the accuracy).
    majority_label / majority_count: the most frequent gold label (ties: first in order) and
    its count; :attr:`baseline` is their share with its 95% Wilson interval.
    """

    labels: list[str]
    columns: list[str]
    matrix: list[list[int]]
    classes: list[ClassStats]
    n: int
    majority_label: str
    majority_count: int

    @property
    def baseline(self) -> tuple[float, tuple[float, float]]:
        """Accuracy of always answering :attr:`majority_label`: (share, (low, high)) in [0, 1]
        (:func:`gpo_core.stats.wilson_interval`, 95%)."""
        return self.majority_count / self.n, wilson_interval(self.majority_count, self.n)

    def baseline_text(self) -> str:
        """One line, e.g. ``majority-class baseline: 58% [45–70%] (always 'pos', 29 of 50)``."""
        return baseline_text(self.majority_label, self.majority_count, self.n)

    def macro_f1(self) -> float | None:
        """Mean F1 over classes (undefined F1 counts 0, as in scikit-learn); None with no class."""
        return sum(c.f1 or 0.0 for c in self.classes) / len(self.classes) if self.classes else None


def baseline_text(label: str, count: int, n: int) -> str:
    """The majority-class baseline line: share ``count / n`` with its 95% Wilson interval in
    whole percent, as the app writes accuracies: ``majority-class baseline: 58% [45–70%]
    (always 'pos', 29 of 50)``. Raises ValueError unless 0 < n and 0 <= count <= n."""
    if n <= 0:
        raise ValueError(f"need n > 0, got {n}")
    lo, hi = wilson_interval(count, n)
    return (f"majority-class baseline: {100 * count / n:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}%] "
            f"(always '{label}', {count} of {n})")


def majority_baseline(targets: Iterable[str], answer_type: str) -> tuple[str, int, int] | None:
    """The most frequent normalized gold label of ``targets`` (ties: first in sorted order),
    its count and the number of readable targets, or None when none is readable. Use it where
    no records exist yet (a split's targets); :func:`class_report` gives the same over the
    scored records."""
    counts = Counter(g for g in (_gold(str(t), answer_type) for t in targets) if g is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(label for label in sorted(counts, key=_order) if counts[label] == top), top, sum(counts.values())


def baselines_by_split(targets_by_split: Mapping[str, Sequence[str]], answer_type: str,
                       metric: str = "") -> dict[str, str]:
    """Split name -> its :func:`baseline_text` line for every non-empty split when the splits'
    targets together make a label task (:func:`is_label_task` with ``metric``, "" = the answer
    type's rule; decided once, so every split gets the same verdict); {} for other tasks. For
    the prompt x model matrix, where each split's accuracies get the baseline."""
    out: dict[str, str] = {}
    every = [str(t) for targets in targets_by_split.values() for t in targets]
    if not every or not is_label_task(answer_type, every, metric):
        return out
    for split, targets in targets_by_split.items():
        texts = [str(t) for t in targets]
        if texts:
            found = majority_baseline(texts, answer_type)
            if found is not None:
                out[split] = baseline_text(*found)
    return out


def _order(label: str) -> tuple[int, float, str]:
    """Sort key: numeric labels by value ("2" before "10"), then the others alphabetically."""
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def class_report(records: Sequence[Mapping[str, Any]], answer_type: str) -> ClassReport | None:
    """The report of ``records`` (dicts of :class:`gpo_core.scoring.results.ExampleRecord`:
    ``target``, ``parsed_answer``, ``error``), or None when no record is scored. Records of
    failed calls (``error`` set) and targets that are not an answer of ``answer_type`` are left
    out. Call :func:`is_label_task` first; this function does not judge whether labels make sense.
    """
    import pandas as pd

    gold: list[str] = []
    pred: list[str] = []
    for r in records:
        if r.get("error"):
            continue
        g = _gold(str(r.get("target", "")), answer_type)
        if g is None:
            continue
        gold.append(g)
        pred.append(_pred(r.get("parsed_answer"), answer_type) or NO_ANSWER)
    if not gold:
        return None
    labels = sorted(set(gold), key=_order)
    known = set(labels)
    pred = [p if p in known or p == NO_ANSWER else OTHER_ANSWER for p in pred]
    columns = [*labels, *([OTHER_ANSWER] if OTHER_ANSWER in pred else []), NO_ANSWER]
    table = pd.crosstab(pd.Categorical(gold, categories=labels), pd.Categorical(pred, categories=columns),
                        dropna=False)
    matrix = [[int(v) for v in row] for row in table.to_numpy().tolist()]
    counts = Counter(gold)
    classes = []
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        p, r = _ratio(tp, predicted), _ratio(tp, counts[label])
        f1 = None if p is None or r is None else (0.0 if p + r == 0 else 2 * p * r / (p + r))
        classes.append(ClassStats(label, p, r, f1, counts[label], predicted))
    top = max(counts.values())
    majority = next(label for label in labels if counts[label] == top)
    return ClassReport(labels, columns, matrix, classes, len(gold), majority, top)
