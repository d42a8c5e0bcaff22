"""Task folders: the BBH split layout (train / eval / test / format files) or one data file,
the optional ``task.json`` settings, and the bundled sample tasks.

Part of task loading; the public entry points and the folder rules are in
:mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.decoding import read_bytes
from gpo_core.tasks.examples import parse_examples
from gpo_core.tasks.readers import DATA_EXTENSIONS
from gpo_core.tasks.task import ANSWER_TYPES, INSTRUCTION_POSITIONS, Example
from gpo_core.tasks.values import json_type

#: Split file stems of a task folder (BBH layout); eval has aliases.
SPLIT_STEMS = {"train": ("train",), "eval": ("eval", "dev", "validation", "val"), "test": ("test",)}
FORMAT_STEM = "format"
TASK_META_FILE = "task.json"
#: The sample task the app offers first: its starting instruction hides the answer format
#: (YYYY-MM-DD), and offline GPO on the embedded models took it from 0/12 to 12/12 on test in
#: every seed measured (benchmarks/results/offline_quality.md), so a first run shows the method work.
FIRST_SAMPLE_TASK = "date_normalization"
TASK_META_KEYS = (
    "name",
    "description",
    "answer_type",
    "instruction_position",
    "initial_instruction",
    "input_column",
    "target_column",
    "source",
    "metric",
    "metric_options",
)


def list_sample_tasks(root: str | Path | None = None) -> list[tuple[str, Path, str]]:
    """The bundled sample tasks: ``[(name, folder_path, description), ...]`` sorted by name.

    ``root`` defaults to the repository's ``sample_tasks`` folder. Each sub-folder with a
    ``task.json`` is a task; folders without one are listed under their folder name.

    Raises:
        TaskFormatError: a ``task.json`` is not a valid JSON object.
    """
    base = Path(root) if root is not None else Path(__file__).resolve().parents[2] / "sample_tasks"
    out: list[tuple[str, Path, str]] = []
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if not d.is_dir() or d.name.startswith((".", "_")):
            continue
        meta = _read_meta(d)
        if not meta and not _data_files(d):
            continue
        out.append((meta.get("name", d.name), d, meta.get("description", "")))
    return sorted(out, key=lambda t: t[0])


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and f.suffix.lower() in DATA_EXTENSIONS
        and f.name != TASK_META_FILE
    )


def _read_meta(folder: Path) -> dict:
    """The settings in ``folder/task.json`` (``{}`` without one), checked key by key."""
    meta_path = folder / TASK_META_FILE
    if not meta_path.is_file():
        return {}
    where = str(meta_path)
    try:
        text = meta_path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskFormatError(where, f"cannot read task settings: {e}") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskFormatError(where, f"not valid JSON: {e.msg} (column {e.colno})", e.lineno) from e
    if not isinstance(meta, dict):
        raise TaskFormatError(where, f"expected a JSON object of task settings, got {json_type(meta)}")
    for key, value in meta.items():
        if key not in TASK_META_KEYS:
            raise TaskFormatError(where, f"unknown setting; allowed: {', '.join(TASK_META_KEYS)}", None, key)
        if key == "metric_options":  # {"keys": "name,city"}: the metric's options, texts
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise TaskFormatError(where, f"expected an object of texts, got {json_type(value)}", None, key)
            continue
        if not isinstance(value, str):
            raise TaskFormatError(where, f"expected text, got {json_type(value)}", None, key)
    if meta.get("answer_type", ANSWER_TYPES[0]) not in ANSWER_TYPES:
        raise TaskFormatError(where, f"must be one of {', '.join(ANSWER_TYPES)}", None, "answer_type")
    if meta.get("instruction_position", INSTRUCTION_POSITIONS[0]) not in INSTRUCTION_POSITIONS:
        raise TaskFormatError(where, f"must be one of {', '.join(INSTRUCTION_POSITIONS)}", None, "instruction_position")
    return meta


@dataclass
class FolderContents:
    """What a task folder holds: one file's ``examples``, or ``splits`` (train / eval / test)
    of a BBH-style folder; ``format_examples`` from ``format.*``; ``meta`` from ``task.json``;
    ``files``: the file each split came from (``"examples"`` for a one-file folder,
    ``"format"``); ``warnings``: what was dropped while reading (duplicate rows)."""

    examples: list[Example] = field(default_factory=list)
    splits: dict[str, list[Example]] = field(default_factory=dict)
    format_examples: list[Example] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load_folder(folder: Path, input_column: str | None, target_column: str | None, max_bytes: int) -> FolderContents:
    """Read a task folder (see :mod:`gpo_core.tasks.io` for the layout). Columns given here
    win over ``task.json``'s. Raises TaskFormatError naming the folder or file at fault."""
    meta = _read_meta(folder)
    in_col = input_column if input_column is not None else meta.get("input_column")
    tgt_col = target_column if target_column is not None else meta.get("target_column")
    files = _data_files(folder)
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem.lower(), []).append(f)

    def pick(stems: tuple[str, ...]) -> Path | None:
        found = [f for s in stems for f in by_stem.get(s, [])]
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise TaskFormatError(str(folder), f"several files for one split: {names}; keep one")
        return found[0] if found else None

    files_used: dict[str, str] = {}
    warnings: list[str] = []

    def load(f: Path, role: str) -> list[Example]:
        examples, warned = parse_examples(read_bytes(f, max_bytes), str(f), in_col, tgt_col, max_bytes)
        files_used[role] = str(f)
        warnings.extend(warned)
        return examples

    split_files = {split: pick(stems) for split, stems in SPLIT_STEMS.items()}
    format_file = pick((FORMAT_STEM,))
    fmt = load(format_file, FORMAT_STEM) if format_file else []
    if any(split_files.values()):
        missing = [s for s, f in split_files.items() if f is None]
        if missing:
            raise TaskFormatError(
                str(folder),
                f"folder has split files but no {' or '.join(missing)} file; a split folder needs "
                "train, eval (or dev/validation) and test files (.jsonl, .json, .csv or .tsv)",
            )
        splits = {s: load(f, s) for s, f in split_files.items() if f is not None}
        return FolderContents([], splits, fmt, meta, files_used, warnings)
    candidates = [f for f in files if f.stem.lower() not in (FORMAT_STEM, "few_shot_examples")]
    if not candidates:
        raise TaskFormatError(str(folder), "folder has no data file (.csv, .tsv, .jsonl or .json)")
    if len(candidates) > 1:
        preferred = [f for f in candidates if f.stem.lower() in ("examples", "data")]
        if len(preferred) != 1:
            raise TaskFormatError(
                str(folder),
                f"folder has several data files ({', '.join(f.name for f in candidates)}); "
                "name the one to use examples.<ext>, or use train/eval/test files",
            )
        candidates = preferred
    examples = load(candidates[0], "examples")
    return FolderContents(examples, {}, fmt, meta, files_used, warnings)
