"""Load tasks (labeled examples) from CSV, TSV, JSON Lines, JSON files or task folders.

Every problem with a file raises :class:`gpo_core.errors.TaskFormatError` naming the file,
the 1-based line (``None`` when the whole file is at fault) and the field (column / key).
Settings passed by the caller that are invalid (an unknown ``answer_type``) raise
:class:`gpo_core.errors.ConfigError`.

Formats (chosen by file extension, case-insensitive):

- ``.csv`` (comma), ``.tsv`` / ``.tab`` (tab): a header line, then one example per record.
  Parsed with the stdlib :mod:`csv` module in strict mode; quoted fields may span lines.
- ``.jsonl`` / ``.ndjson``: one JSON object per line; blank lines are skipped.
- ``.json``: a list of objects ``[{"input": ..., "target": ...}, ...]`` or a BIG-Bench style
  object ``{"examples": [...]}``. Any other top-level value is an error.
- a folder: either the BBH layout of ``../shared/data/bbh/<task>/`` (``train``, ``eval``
  (also ``dev`` / ``validation`` / ``val``), ``test``, optional ``format`` files, each in any
  of the formats above) giving :attr:`Task.explicit_splits`, or a single data file
  (``examples.<ext>`` preferred). An optional ``task.json`` holds ``name``, ``description``,
  ``answer_type``, ``instruction_position``, ``initial_instruction``, ``input_column``,
  ``target_column`` and ``source`` (provenance text for people; not used by the engine).

Value rules (documented for users in the app):

- Encoding: UTF-8, with or without a byte-order mark. Line endings CRLF / CR / LF are all
  normalized to LF (also inside values). UTF-16 or Latin-1 files are rejected with a hint.
- Limits: :data:`DEFAULT_MAX_BYTES` (20 MB) per file, :data:`MAX_FIELD_CHARS` (100,000
  characters) per input or target value.
- Columns: ``input_column`` / ``target_column`` name them; when omitted they are guessed by
  :func:`guess_columns`. Extra columns are ignored.
- The input is kept exactly as written (Unicode, right-to-left text, HTML tags and
  formula-looking text such as ``=cmd()`` are plain text). The target has surrounding
  whitespace removed. A blank input or target is an error.
- JSON values: strings as-is; numbers become text (``3`` -> ``"3"``, ``2.5`` -> ``"2.5"``,
  ``3.0`` -> ``"3"``); booleans become ``"True"`` / ``"False"`` (the spelling of BBH's
  boolean_expressions targets); ``null``, objects and lists are errors naming the field.
- Rows whose cells are all blank are skipped. A row with the same input (after stripping
  surrounding whitespace) and target as an earlier row of the same file is dropped, with a
  warning in :attr:`Task.warnings` naming the dropped lines. Same input with different
  targets is an error ("conflicting labels") naming both lines. The same input in two split
  files of a folder (train / eval / test) is allowed (BBH's own split files overlap) but
  warned about as leakage, naming the splits and lines.
- Answer type: the caller's, else ``task.json``'s, else inferred from the targets by
  :func:`infer_answer_type` (the type under which at least 90% of the targets parse, with
  the grammar that scores: :func:`gpo_core.scoring.answers.normalize_target`). Examples
  whose target does not parse under the task's answer type are DROPPED (scoring could not
  compare an answer with them), with a warning naming file and lines; a file or split left
  with no example is an error. ``format`` examples are only shown to the optimizer, never
  scored, and are kept as they are.
- Loading refuses only what it cannot use; everything it drops is listed in
  :attr:`Task.warnings`.

CSV export helper: :func:`neutralize_formula` (OWASP CSV-injection rule).

This module holds the public entry points (importers use them from here) and turns what was
read into a :class:`Task`; the work is done by one module per step: :mod:`.decoding` (bytes
to text), :mod:`.readers` (text to records, per format), :mod:`.columns` (column guessing,
preview, mapping), :mod:`.values` (values to text), :mod:`.examples` (records to examples,
duplicates), :mod:`.folders` (task folders, ``task.json``, sample tasks) and :mod:`.infer`
(answer type).
"""

from __future__ import annotations

from pathlib import Path

from gpo_core.errors import ConfigError, TaskFormatError
from gpo_core.scoring.answers import normalize_target
from gpo_core.tasks.columns import INPUT_COLUMN_NAMES, TARGET_COLUMN_NAMES, guess_columns, preview_columns
from gpo_core.tasks.decoding import DEFAULT_MAX_BYTES, read_bytes
from gpo_core.tasks.examples import name_lines, parse_examples
from gpo_core.tasks.folders import (
    FORMAT_STEM,
    SPLIT_STEMS,
    TASK_META_FILE,
    TASK_META_KEYS,
    list_sample_tasks,
    load_folder,
)
from gpo_core.tasks.infer import infer_answer_type
from gpo_core.tasks.readers import DATA_EXTENSIONS
from gpo_core.tasks.task import ANSWER_TYPES, DEFAULT_INSTRUCTION, INSTRUCTION_POSITIONS, Example, Task
from gpo_core.tasks.values import MAX_FIELD_CHARS, neutralize_formula

__all__ = [
    "DATA_EXTENSIONS",
    "DEFAULT_MAX_BYTES",
    "FORMAT_STEM",
    "INPUT_COLUMN_NAMES",
    "MAX_FIELD_CHARS",
    "SPLIT_STEMS",
    "TARGET_COLUMN_NAMES",
    "TASK_META_FILE",
    "TASK_META_KEYS",
    "guess_columns",
    "infer_answer_type",
    "list_sample_tasks",
    "load_task",
    "load_task_bytes",
    "neutralize_formula",
    "preview_columns",
]


def load_task(
    path: str | Path,
    *,
    input_column: str | None = None,
    target_column: str | None = None,
    name: str | None = None,
    answer_type: str | None = None,
    instruction_position: str | None = None,
    initial_instruction: str | None = None,
    description: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Task:
    """Load a task from a data file or a task folder (see the module docstring for formats).

    Args:
        path: a ``.csv``/``.tsv``/``.jsonl``/``.json`` file, or a folder (BBH layout or one
            data file, optional ``task.json``).
        input_column, target_column: column/key names; guessed by :func:`guess_columns` when
            ``None`` (a folder's ``task.json`` may set them).
        name: task name; default ``task.json``'s name, else the file stem / folder name.
        answer_type: one of :data:`gpo_core.tasks.task.ANSWER_TYPES`; default ``task.json``'s,
            else :func:`infer_answer_type` over all targets.
        instruction_position: one of :data:`gpo_core.tasks.task.INSTRUCTION_POSITIONS`
            (default ``task.json``'s, else ``"Q_end"``, the paper's setting).
        initial_instruction: starting prompt (default ``task.json``'s, else
            ``"Let's think step by step."``).
        description: free text shown in the app.
        max_bytes: per-file size limit in bytes (default 20 MB).

    Returns:
        A :class:`Task`. ``examples`` holds all examples of a single file; a BBH folder gives
        ``examples == []`` and ``explicit_splits == {"train": [...], "eval": [...], "test": [...]}``
        plus ``format_examples`` from ``format.*``. ``Task.source`` is the path loaded.

    Raises:
        TaskFormatError: the file/folder cannot be read (names file, line, field).
        ConfigError: an argument is invalid (unknown answer_type or instruction_position).
    """
    p = Path(path)
    overrides = dict(
        name=name,
        answer_type=answer_type,
        instruction_position=instruction_position,
        initial_instruction=initial_instruction,
        description=description,
    )
    _check_settings(answer_type, instruction_position)
    if p.is_dir():
        got = load_folder(p, input_column, target_column, max_bytes)
        return _make_task(
            p.name, got.examples, got.splits, got.format_examples, overrides, got.meta, str(p), got.files, got.warnings
        )
    if not p.exists():
        raise TaskFormatError(str(p), "file or folder not found")
    data = read_bytes(p, max_bytes)
    examples, warnings = parse_examples(data, str(p), input_column, target_column, max_bytes)
    return _make_task(p.stem, examples, {}, [], overrides, {}, str(p), {"examples": str(p)}, warnings)


def load_task_bytes(
    data: bytes,
    filename: str,
    *,
    input_column: str | None = None,
    target_column: str | None = None,
    name: str | None = None,
    answer_type: str | None = None,
    instruction_position: str | None = None,
    initial_instruction: str | None = None,
    description: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Task:
    """Load a task from uploaded bytes; ``filename`` (the upload's original name) picks the
    format by extension and is the name used in every error message.

    Same arguments, result and errors as :func:`load_task` (single files only).
    """
    _check_settings(answer_type, instruction_position)
    overrides = dict(
        name=name,
        answer_type=answer_type,
        instruction_position=instruction_position,
        initial_instruction=initial_instruction,
        description=description,
    )
    examples, warnings = parse_examples(data, filename, input_column, target_column, max_bytes)
    return _make_task(
        Path(filename).stem or "task", examples, {}, [], overrides, {}, filename, {"examples": filename}, warnings
    )


def _check_settings(answer_type: str | None, instruction_position: str | None) -> None:
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ConfigError("answer_type", f"{answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    if instruction_position is not None and instruction_position not in INSTRUCTION_POSITIONS:
        raise ConfigError(
            "instruction_position", f"{instruction_position!r} is not one of {', '.join(INSTRUCTION_POSITIONS)}"
        )


def _make_task(
    default_name: str,
    examples: list[Example],
    splits: dict[str, list[Example]],
    fmt: list[Example],
    overrides: dict,
    meta: dict,
    source: str,
    files: dict[str, str],
    warnings: list[str],
) -> Task:
    def choose(key: str, default: str) -> str:
        v = overrides.get(key)
        if v is not None:
            return v
        return meta.get(key, default)

    all_targets = [e.target for e in examples] + [e.target for split in splits.values() for e in split]
    answer_type = overrides.get("answer_type") or meta.get("answer_type") or infer_answer_type(all_targets)
    warnings = list(warnings)
    examples = _drop_unparsed(examples, answer_type, files.get("examples", source), warnings)
    splits = {s: _drop_unparsed(exs, answer_type, files.get(s, source), warnings) for s, exs in splits.items()}
    warnings.extend(_leakage(splits, files))
    return Task(
        name=choose("name", default_name),
        examples=examples,
        answer_type=answer_type,
        instruction_position=choose("instruction_position", "Q_end"),
        initial_instruction=choose("initial_instruction", DEFAULT_INSTRUCTION),
        description=choose("description", ""),
        explicit_splits=splits,
        format_examples=fmt,
        source=source,
        warnings=warnings,
        metric=str(meta.get("metric") or ""),
        metric_options=dict(meta.get("metric_options") or {}),
    )


def _drop_unparsed(examples: list[Example], answer_type: str, filename: str, warnings: list[str]) -> list[Example]:
    """``examples`` without those whose target is not an answer of ``answer_type`` (a warning
    names their lines); TaskFormatError when none is left."""
    kept: list[Example] = []
    bad: list[tuple[Example, str]] = []
    for ex in examples:
        try:
            normalize_target(ex.target, answer_type)
        except ValueError as e:
            bad.append((ex, str(e)))
        else:
            kept.append(ex)
    if not bad:
        return examples
    first, why = bad[0]
    if not kept:
        raise TaskFormatError(
            filename,
            f"no example has a target of answer type {answer_type!r} (first: {why}); "
            "choose another answer type (exact_match accepts any text)",
            first.line,
        )
    n = len(bad)
    lines = [f"line {ex.line} ({_short(ex.target)})" for ex, _ in bad]
    warnings.append(
        f"{filename}: dropped {n} example{'s' if n != 1 else ''} whose target is not a {answer_type} answer "
        f"(scoring could not compare with it): {name_lines(lines)}"
    )
    return kept


def _leakage(splits: dict[str, list[Example]], files: dict[str, str]) -> list[str]:
    """Warnings for inputs (stripped) found in two splits, one per pair of splits."""
    out = []
    names = list(splits)
    for i, a in enumerate(names):
        lines_a: dict[str, int | None] = {}
        for ex in splits[a]:
            lines_a.setdefault(ex.input.strip(), ex.line)
        for b in names[i + 1 :]:
            shared = [(lines_a[ex.input.strip()], ex.line) for ex in splits[b] if ex.input.strip() in lines_a]
            if shared:
                pairs = [f"{a} line {la} = {b} line {lb}" for la, lb in shared]
                n = len(shared)
                out.append(
                    f"leakage: {n} input{'s are' if n != 1 else ' is'} in both the {a} split ({files.get(a, a)}) "
                    f"and the {b} split ({files.get(b, b)}): {name_lines(pairs)}"
                )
    return out


def _short(s: str, n: int = 40) -> str:
    return repr(s if len(s) <= n else s[: n - 3] + "...")
