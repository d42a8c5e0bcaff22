"""Prompt x model matrix: score a set of prompts on several task models and splits (issue 13, item 2).

A prompt engineer asks "does the prompt GPO found on model A still work on model B?". The
matrix answers it: every prompt (a run's start, final and trajectory prompts, lines of a text
file, prompts typed in) is scored on every task model and split through the one scoring path,
:func:`gpo_core.scoring.evaluation.evaluate_many` (response cache and concurrency from the
model provider, failed calls sent once more and then kept OUT of the accuracy and counted in
the cell), so a cell means what a run's score means. Each cell carries its 95% Wilson interval
(:func:`gpo_core.stats.wilson_interval`).

Prompts from a text file (:func:`prompts_from_text`): prompts are separated by blank lines, so
a prompt may span lines; a file with no blank line holds one prompt per line. Lines starting
with ``#`` are comments. Model specs (:func:`parse_model_spec`): ``backend:model``
(``openai:gpt-4o-mini``, ``compatible:llama3`` with ``--base-url``, ``local:PATH.gguf``,
``demo:scripted-task``), an embedded model's bare name, or a path to a ``.gguf`` file. Keys
come from the environment (``OPENAI_API_KEY``) or the app's key field, never from a spec.

A matrix is saved as ``matrix.json`` + ``matrix.csv`` in its own folder under
``$GPO_HOME/matrices/<id>`` with atomic writes (:mod:`gpo_core.runs.storage`), so a reload or
a killed process keeps the last finished matrix.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.metrics import Metric
from gpo_core.metrics.class_report import baselines_by_split
from gpo_core.models.base import ChatModel
from gpo_core.runs.storage import atomic_write_text, read_text, storage_error
from gpo_core.scoring.evaluation import evaluate_many
from gpo_core.settings import BACKENDS, EMBEDDED_MODELS, LOCAL_DEFAULT_MODEL, ModelSettings, default_model_settings
from gpo_core.stats import wilson_interval
from gpo_core.tasks.task import Example

__all__ = ["MATRIX_CSV", "MATRIX_FILE", "MATRIX_PNG", "SPLITS", "MatrixCell", "MatrixModel", "MatrixResult",
           "PromptItem", "list_matrices", "load_matrix", "matrices_root", "parse_model_spec", "prompts_from_run",
           "prompts_from_text", "save_matrix", "save_png", "score_matrix"]

MATRIX_FILE = "matrix.json"
MATRIX_CSV = "matrix.csv"
MATRIX_PNG = "matrix.png"
#: The splits a matrix scores on (train is the exemplar pool: never scored).
SPLITS: tuple[str, ...] = ("dev", "test")
#: Most prompts / models one matrix scores (a guard against a pasted novel: 40 x 8 cells).
MAX_PROMPTS = 40
MAX_MODELS = 8

#: Progress of a matrix: (phase "model label · split", done calls, total calls).
MatrixProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PromptItem:
    """One prompt of the matrix: label (where it came from: "start", "final", "step 2 · s2a1c3",
    "file line 4", "typed 1") and its text (the instruction, rendered at the task's position)."""

    label: str
    text: str


@dataclass(frozen=True)
class MatrixModel:
    """One task model of the matrix: label (the spec as typed or the model's name) and its
    settings (never an API key)."""

    label: str
    settings: ModelSettings


@dataclass(frozen=True)
class MatrixCell:
    """One (prompt, model, split) score.

    accuracy: mean score over the ANSWERED examples in [0, 1] (None when no call was answered).
    score_sum: sum of the answered examples' scores (= right answers for a 0/1 metric).
    answered / n / errors: examples answered, examples scored, failed calls (left out of the
    accuracy). low / high: the 95% Wilson interval (0, 1 when nothing was answered).
    first_error: the first failed call's error, shown beside the cell.
    """

    prompt: str
    model: str
    split: str
    accuracy: float | None
    score_sum: float
    answered: int
    n: int
    errors: int
    low: float
    high: float
    first_error: str | None = None

    def text(self) -> str:
        """"62.5% [30.6–86.3%]" (+ " · 2 failed"), or "– (0 answered, 8 failed)"."""
        failed = f" · {self.errors} failed" if self.errors else ""
        if self.accuracy is None:
            return f"– (0 answered{failed})"
        return f"{100 * self.accuracy:.1f}% [{100 * self.low:.1f}–{100 * self.high:.1f}%]{failed}"


@dataclass
class MatrixResult:
    """A scored matrix: prompts x models x splits, with what it was measured on.

    matrix_id / created_at: its folder name and UTC time. task: the task's name; source: its
    file, folder or the run it came from. answer_type / position / metric / protocol: how
    every prompt was rendered and scored. split_sizes: examples per split. notes: what the
    scoring did that a reader must know (failed calls, a split left out). baselines: split ->
    its majority-class baseline line for label tasks (issue 12; {} otherwise; matrices saved
    before it have none)."""

    matrix_id: str
    created_at: str
    task: str
    source: str
    answer_type: str
    position: str
    metric: str
    protocol: str
    prompts: list[PromptItem]
    models: list[MatrixModel]
    split_sizes: dict[str, int]
    cells: list[MatrixCell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    baselines: dict[str, str] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        return list(self.split_sizes)

    def cell(self, prompt: str, model: str, split: str) -> MatrixCell | None:
        """The cell of prompt label x model label x split, or None."""
        return next((c for c in self.cells if (c.prompt, c.model, c.split) == (prompt, model, split)), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (matrix.json); model settings through ``ModelSettings.to_dict`` (no key,
        credentials in a base URL redacted)."""
        return {"schema": 1, "matrix_id": self.matrix_id, "created_at": self.created_at, "task": self.task,
                "source": self.source, "answer_type": self.answer_type, "position": self.position,
                "metric": self.metric, "protocol": self.protocol,
                "prompts": [asdict(p) for p in self.prompts],
                "models": [{"label": m.label, "settings": m.settings.to_dict()} for m in self.models],
                "split_sizes": dict(self.split_sizes), "cells": [asdict(c) for c in self.cells],
                "notes": list(self.notes), "seconds": self.seconds, "baselines": dict(self.baselines)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = MATRIX_FILE) -> MatrixResult:
        """Inverse of :meth:`to_dict`. ConfigError naming ``where`` and the field on a bad file."""
        try:
            return cls(matrix_id=str(d["matrix_id"]), created_at=str(d["created_at"]), task=str(d["task"]),
                       source=str(d.get("source", "")), answer_type=str(d["answer_type"]),
                       position=str(d["position"]), metric=str(d.get("metric", "")),
                       protocol=str(d.get("protocol", "single")),
                       prompts=[PromptItem(str(p["label"]), str(p["text"])) for p in d["prompts"]],
                       models=[MatrixModel(str(m["label"]), ModelSettings(**m["settings"])) for m in d["models"]],
                       split_sizes={str(k): int(v) for k, v in d["split_sizes"].items()},
                       cells=[MatrixCell(**c) for c in d["cells"]], notes=[str(n) for n in d.get("notes", [])],
                       seconds=float(d.get("seconds", 0.0)),
                       baselines={str(k): str(v) for k, v in (d.get("baselines") or {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(where, f"not a saved matrix ({type(e).__name__}: {e})") from None

    def to_csv(self) -> str:
        """One row per cell: prompt label, prompt text, model, split, accuracy, ci95 low/high,
        score sum, answered, examples, failed calls, first error (accuracy blank when nothing
        was answered)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["prompt", "prompt_text", "model", "split", "accuracy", "ci95_low", "ci95_high", "score_sum",
                    "answered", "examples", "failed_calls", "first_error"])
        text_of = {p.label: p.text for p in self.prompts}
        for c in self.cells:
            acc = "" if c.accuracy is None else f"{c.accuracy:.6f}"
            w.writerow([c.prompt, text_of.get(c.prompt, ""), c.model, c.split, acc, f"{c.low:.6f}",
                        f"{c.high:.6f}", f"{c.score_sum:g}", c.answered, c.n, c.errors, c.first_error or ""])
        return buf.getvalue()


# ----------------------------------------------------------------------------- prompts


def prompts_from_text(text: str, source: str = "typed") -> list[PromptItem]:
    """Prompts from text: blocks separated by blank lines (a prompt may span lines); when the
    text has no blank line between prompts, one prompt per line. Lines starting with ``#`` are
    comments. Labels: "<source> 1", "<source> 2", ... Duplicates are kept once (first label).
    Raises ConfigError naming ``source`` when there is no prompt or more than MAX_PROMPTS."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n") if not ln.lstrip().startswith("#")]
    body = "\n".join(lines).strip("\n")
    blocks = [b.strip() for b in body.split("\n\n")] if "\n\n" in body else [ln.strip() for ln in body.split("\n")]
    items: list[PromptItem] = []
    seen: set[str] = set()
    for b in blocks:
        if b and b not in seen:
            seen.add(b)
            items.append(PromptItem(f"{source} {len(items) + 1}", b))
    if not items:
        raise ConfigError(source, "holds no prompt (prompts are separated by blank lines, or one per line)")
    if len(items) > MAX_PROMPTS:
        raise ConfigError(source, f"holds {len(items)} prompts; a matrix scores at most {MAX_PROMPTS}")
    return items


def prompts_from_file(path: Path) -> list[PromptItem]:
    """:func:`prompts_from_text` of a UTF-8 text file, labelled by the file's name."""
    return prompts_from_text(read_text(Path(path)), Path(path).name)


def prompts_from_run(state: Any, which: str = "all") -> list[PromptItem]:
    """A saved run's prompts, labelled: "start", "final" (:func:`gpo_core.runs.final.final_entry`),
    and with ``which="all"`` every trajectory prompt ("step N · <candidate id>", "(chosen)" when it
    became the current prompt). A text that is several of these is listed once, its labels joined
    ("start = final"). state: a :class:`~gpo_core.runs.records.RunState`."""
    from gpo_core.runs.final import final_entry

    labels: dict[str, list[str]] = {}

    def add(label: str, text: str) -> None:
        if text.strip():
            labels.setdefault(text, []).append(label)

    start = (state.initial or {}).get("prompt") or state.task.initial_instruction
    add("start", start)
    if state.initial is not None:
        add("final", final_entry(state).prompt)
    if which == "all":
        for e in state.trajectory:
            if e.id == 0:
                continue
            add(f"step {e.step} · {e.candidate_id or e.id}{' (chosen)' if e.chosen else ''}", e.prompt)
    items = [PromptItem(" = ".join(ls), text) for text, ls in labels.items()]
    return items[:MAX_PROMPTS]


# ----------------------------------------------------------------------------- models


def parse_model_spec(spec: str, *, base_url: str | None = None, flag: str = "--models") -> MatrixModel:
    """A task model from a spec: ``backend:model`` (backend one of
    :data:`gpo_core.settings.BACKENDS`; ``openai:NAME`` with ``base_url`` becomes ``compatible``),
    an embedded model's name (``SmolLM2-135M-Instruct.Q4_1``), or a path to a ``.gguf`` file.
    The settings are the task role's defaults of that backend (temperature 0; completion cap
    128 embedded, 256 otherwise), validated. A spec never carries a key: text after ``key=`` or
    a ``sk-`` token is refused. Raises ConfigError naming ``flag`` and the spec."""
    s = spec.strip()
    if not s:
        raise ConfigError(flag, "an empty model spec")
    if re.search(r"(^|[:/=@])sk-\w", s) or "key=" in s.lower():
        raise ConfigError(flag, "a model spec never holds an API key: set OPENAI_API_KEY in the environment")
    backend, _, name = s.partition(":")
    if s in EMBEDDED_MODELS or s.endswith(".gguf") and backend not in BACKENDS:
        backend, name = "local", s
    elif not _ or backend not in BACKENDS:
        raise ConfigError(flag, f"{spec!r}: expected backend:model (backend one of {', '.join(BACKENDS)}), an "
                                f"embedded model ({', '.join(EMBEDDED_MODELS)}) or a path to a .gguf file")
    kind = "openai" if backend in ("openai", "compatible") else backend
    base = default_model_settings("task", "local" if kind == "demo" else kind)
    if backend == "local":
        settings = base.replace(model=name.strip() or LOCAL_DEFAULT_MODEL)
    elif backend == "demo":
        settings = base.replace(backend="demo", model=name.strip(), base_url=None, concurrency=8, max_tokens=256)
    else:
        if backend == "compatible" and not base_url:
            raise ConfigError(flag, f"{spec!r}: a compatible server needs --base-url (or $OPENAI_BASE_URL)")
        settings = base.replace(backend="compatible" if base_url else "openai", model=name.strip(), base_url=base_url)
    try:
        settings.validate("engine")
    except ConfigError as e:
        raise ConfigError(flag, f"{spec!r}: {e}") from None
    return MatrixModel(s, settings)


# ----------------------------------------------------------------------------- scoring


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_matrix_id() -> str:
    """A folder name that sorts by time, to the millisecond: "20261122-101500-042-ab12cd"."""
    t = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(t)) + f"-{int(t * 1000) % 1000:03d}-" + uuid.uuid4().hex[:6]


def score_matrix(prompts: Sequence[PromptItem], models: Sequence[tuple[MatrixModel, ChatModel]],
                 splits: Mapping[str, list[Example]], *, task: str, source: str, answer_type: str, position: str,
                 metric: Metric | None = None, protocol: str = "single", concurrency: int = 8,
                 on_progress: MatrixProgress | None = None, should_stop: Callable[[], bool] | None = None,
                 matrix_id: str | None = None) -> MatrixResult:
    """Score every prompt on every model and split: one :func:`evaluate_many` call per (model,
    split) with all prompts (so identical requests go once and the pool holds
    ``min(concurrency, model's concurrency, model.max_concurrency)`` calls), failed calls sent
    once more at the end and then left out of the accuracy (counted in ``errors``).

    prompts: len P >= 1. models: (MatrixModel, its ChatModel, e.g. from
    :meth:`gpo_core.models.provider.ModelProvider.chat_model` behind the response cache), len
    M >= 1. splits: split name -> examples; an empty split is left out with a note. Returns a
    :class:`MatrixResult` of P x M x S cells (with each split's majority-class baseline for a
    label task). Raises ConfigError (no prompt, no model, no
    examples, a bad answer type / target) before any call,
    :class:`~gpo_core.scoring.evaluation.EvaluationCancelled` on ``should_stop``."""
    if not prompts:
        raise ConfigError("prompts", "no prompt to score")
    if not models:
        raise ConfigError("models", "no task model to score on")
    if len(models) > MAX_MODELS:
        raise ConfigError("models", f"{len(models)} models; a matrix scores at most {MAX_MODELS}")
    notes: list[str] = []
    used = {k: v for k, v in splits.items() if v}
    for k, v in splits.items():
        if not v:
            notes.append(f"the {k} split has no examples: not scored")
    if not used:
        raise ConfigError("splits", "no split has examples to score")
    labels = [m.label for m, _ in models]
    if len(set(labels)) != len(labels):
        raise ConfigError("models", "the same model is listed twice")
    t0 = time.perf_counter()
    texts = [p.text for p in prompts]
    cells: list[MatrixCell] = []
    metric_name = metric.name if metric is not None else answer_type
    for spec, model in models:
        ms = spec.settings
        for split, examples in used.items():
            phase = f"{spec.label} · {split}"
            cb = (lambda d, n, _p=phase: on_progress(_p, d, n)) if on_progress else None
            results = evaluate_many(texts, examples, model, answer_type=answer_type, position=position,
                                    temperature=ms.temperature, max_tokens=ms.max_tokens,
                                    concurrency=max(1, min(concurrency, ms.concurrency)), split=split,
                                    on_progress=cb, should_stop=should_stop, retry_failed=True, protocol=protocol,
                                    metric=metric)
            for p, r in zip(prompts, results):
                answered = r.n - r.n_errors
                total = float(r.total_score) if answered else 0.0
                low, high = wilson_interval(total, answered)
                err = next((rec.error for rec in r.records if rec.error), None)
                cells.append(MatrixCell(p.label, spec.label, split, total / answered if answered else None, total,
                                        answered, r.n, r.n_errors, low, high, err))
                if r.metric:
                    metric_name = r.metric
    failed = sum(c.errors for c in cells)
    if failed:
        notes.append(f"{failed} calls failed after one retry; they are left out of the accuracy of their cells")
    baselines = baselines_by_split({k: [e.target for e in v] for k, v in used.items()}, answer_type,
                                   metric.name if metric is not None else "")
    return MatrixResult(matrix_id or new_matrix_id(), _now(), task, source, answer_type, position, metric_name,
                        protocol, list(prompts), [m for m, _ in models], {k: len(v) for k, v in used.items()},
                        cells, notes, round(time.perf_counter() - t0, 3), baselines)


# ----------------------------------------------------------------------------- storage


def matrices_root() -> Path:
    """Where matrices are saved: ``$GPO_HOME/matrices``."""
    from gpo_core.runs.repository import gpo_home

    return gpo_home() / "matrices"


def save_matrix(result: MatrixResult, folder: Path | None = None) -> Path:
    """Write matrix.json and matrix.csv (atomic writes) into ``folder`` (default
    ``matrices_root()/<matrix_id>``); returns the folder. StorageError when the disk refuses."""
    out = Path(folder) if folder is not None else matrices_root() / result.matrix_id
    atomic_write_text(out / MATRIX_CSV, result.to_csv())
    atomic_write_text(out / MATRIX_FILE, json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return out


def save_png(folder: Path, data: bytes, name: str = MATRIX_PNG) -> Path:
    """Write PNG bytes to ``folder/name`` atomically (a temporary file, then ``os.replace``);
    returns the path. StorageError when the disk refuses."""
    path = Path(folder) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise storage_error(path, e) from None
    return path


def load_matrix(folder: Path) -> MatrixResult:
    """The matrix saved in ``folder`` (ConfigError naming the file when it is not one)."""
    path = Path(folder) / MATRIX_FILE
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise ConfigError(str(path), f"not JSON (line {e.lineno}): {e.msg}") from None
    return MatrixResult.from_dict(data, str(path))


def list_matrices(root: Path | None = None) -> list[Path]:
    """Saved matrix folders under ``root`` (default :func:`matrices_root`), newest first."""
    base = Path(root) if root is not None else matrices_root()
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if (p / MATRIX_FILE).is_file()), key=lambda p: p.name, reverse=True)
