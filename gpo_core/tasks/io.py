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
- Rows whose cells are all blank are skipped. Two rows with the same input (after stripping
  surrounding whitespace) are an error: "duplicate row" when the targets agree, "conflicting
  labels" when they differ. Both line numbers are named. Duplicates are only checked within
  one file (BBH's own split files overlap across files, which is allowed).

CSV export helper: :func:`neutralize_formula` (OWASP CSV-injection rule).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError, TaskFormatError
from gpo_core.tasks.task import ANSWER_TYPES, DEFAULT_INSTRUCTION, INSTRUCTION_POSITIONS, Example, Task

#: Largest task file accepted, in bytes (20 MB), per file.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: Largest input or target value accepted, in characters.
MAX_FIELD_CHARS = 100_000

#: Column names tried, in order and case-insensitively, by :func:`guess_columns`.
INPUT_COLUMN_NAMES = ("input", "question", "text", "prompt", "query", "x", "sentence")
TARGET_COLUMN_NAMES = ("target", "answer", "label", "output", "y", "gold", "expected")

#: Extensions of single data files and the parser each one uses.
DATA_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}

#: Split file stems of a task folder (BBH layout); eval has aliases.
SPLIT_STEMS = {"train": ("train",), "eval": ("eval", "dev", "validation", "val"), "test": ("test",)}
FORMAT_STEM = "format"
TASK_META_FILE = "task.json"
TASK_META_KEYS = (
    "name",
    "description",
    "answer_type",
    "instruction_position",
    "initial_instruction",
    "input_column",
    "target_column",
    "source",
)

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_MC_RE = re.compile(r"^\([A-R]\)$")
_NUMBER_RE = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[-+]?\.\d+$")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")


# --------------------------------------------------------------------------- public API


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
        return _load_folder(p, input_column, target_column, overrides, max_bytes)
    if not p.exists():
        raise TaskFormatError(str(p), "file or folder not found")
    data = _read_bytes(p, max_bytes)
    examples = _parse_examples(data, str(p), input_column, target_column, max_bytes)
    return _make_task(p.stem, examples, {}, [], overrides, {}, str(p))


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
    examples = _parse_examples(data, filename, input_column, target_column, max_bytes)
    return _make_task(Path(filename).stem or "task", examples, {}, [], overrides, {}, filename)


def preview_columns(
    data: bytes, filename: str, *, n_rows: int = 5, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[str], list[dict[str, str]]]:
    """Column names and the first ``n_rows`` records, for the app's column-mapping step.

    Returns:
        ``(columns, rows)``: CSV header names (BOM and surrounding spaces removed) or, for
        JSON/JSONL, every key in order of first appearance; ``rows`` are dicts column -> text
        (nested JSON values shown as JSON, ``null`` as ``""``).

    Raises:
        TaskFormatError: the file cannot be parsed (encoding, syntax, ragged rows, size).
    """
    parsed = _parse_records(data, filename, max_bytes)
    rows = [{k: _display(v) for k, v in rec.values.items()} for rec in parsed.records[:n_rows]]
    return list(parsed.columns), rows


def guess_columns(columns: Iterable[str]) -> tuple[str | None, str | None]:
    """Guess ``(input_column, target_column)`` from column names (case-insensitive).

    Input is the first of ``input, question, text, prompt, query, x, sentence`` present;
    target the first of ``target, answer, label, output, y, gold, expected``. Returns the
    column names as spelled in ``columns``, ``None`` where nothing matches.
    """
    cols = list(columns)
    lowered: dict[str, str] = {}
    for c in cols:
        lowered.setdefault(c.strip().lower(), c)
    inp = next((lowered[n] for n in INPUT_COLUMN_NAMES if n in lowered), None)
    tgt = next((lowered[n] for n in TARGET_COLUMN_NAMES if n in lowered and lowered[n] != inp), None)
    return inp, tgt


def infer_answer_type(targets: list[str]) -> str:
    """Answer type from the gold targets (one of :data:`ANSWER_TYPES`).

    All ``"(A)"``..``"(R)"`` -> ``multiple_choice``; all numbers (``-3``, ``2.5``, ``1,000``)
    -> ``number``; all yes/no -> ``yes_no``; all true/false -> ``true_false``; all
    valid/invalid -> ``valid_invalid`` (case-insensitive); otherwise ``exact_match``.
    An empty list gives ``exact_match``.
    """
    ts = [t.strip() for t in targets]
    if not ts:
        return "exact_match"
    low = {t.lower() for t in ts}
    if all(_MC_RE.match(t) for t in ts):
        return "multiple_choice"
    if all(_NUMBER_RE.match(t) for t in ts):
        return "number"
    for kind, words in (
        ("yes_no", {"yes", "no"}),
        ("true_false", {"true", "false"}),
        ("valid_invalid", {"valid", "invalid"}),
    ):
        if low <= words:
            return kind
    return "exact_match"


def neutralize_formula(cell: str) -> str:
    """Make a cell safe for CSV export: prefix ``'`` when it starts with ``= + - @``, tab or CR
    (OWASP "CSV injection"), so spreadsheets show it as text instead of running it.

    Note that negative numbers (``-3``) are prefixed too; that is the OWASP rule.
    """
    if cell and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell


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


# --------------------------------------------------------------------------- parsing


@dataclass
class _Record:
    line: int
    values: dict[str, Any]


@dataclass
class _Parsed:
    kind: str  # csv | tsv | jsonl | json
    columns: list[str]
    records: list[_Record]
    header_line: int | None  # CSV header line; None for JSON formats


def _check_settings(answer_type: str | None, instruction_position: str | None) -> None:
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ConfigError("answer_type", f"{answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    if instruction_position is not None and instruction_position not in INSTRUCTION_POSITIONS:
        raise ConfigError(
            "instruction_position", f"{instruction_position!r} is not one of {', '.join(INSTRUCTION_POSITIONS)}"
        )


def _read_bytes(p: Path, max_bytes: int) -> bytes:
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise TaskFormatError(str(p), _too_big(size, max_bytes))
        return p.read_bytes()
    except OSError as e:
        raise TaskFormatError(str(p), f"cannot read file: {e.strerror or e}") from e


def _too_big(size: int, max_bytes: int) -> str:
    return f"file is {size / 1e6:,.1f} MB ({size:,} bytes); the limit is {max_bytes:,} bytes per file"


def _kind_of(filename: str) -> str:
    ext = Path(filename).suffix.lower()
    kind = DATA_EXTENSIONS.get(ext)
    if kind is None:
        shown = ext or "(no extension)"
        raise TaskFormatError(
            filename, f"unsupported file type {shown}; use .csv, .tsv, .jsonl or .json (UTF-8 text)"
        )
    return kind


def _decode(data: bytes, filename: str) -> tuple[str, int | None, str]:
    """Text with LF line ends, plus the line and reason of the first undecodable byte (if any)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TaskFormatError(
            filename, "file is UTF-16 encoded; save it as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise TaskFormatError(
            filename,
            "file contains NUL bytes: it is binary or UTF-16 without a byte-order mark; save it as UTF-8 text",
            _line_at(data, nul),
        )
    bad_line: int | None = None
    reason = ""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start
        bad_line = _line_at(data, start)
        byte = data[start]
        reason = (
            f"byte 0x{byte:02X} is not valid UTF-8 (the file looks like Latin-1 / Windows-1252); "
            "save it as UTF-8"
        )
        text = data.decode("utf-8-sig", errors="surrogateescape")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, bad_line, reason


def _line_at(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset``, counting CRLF, CR and LF line ends alike."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def _parse_records(data: bytes, filename: str, max_bytes: int) -> _Parsed:
    kind = _kind_of(filename)
    if len(data) > max_bytes:
        raise TaskFormatError(filename, _too_big(len(data), max_bytes))
    if not data.lstrip(b"\xef\xbb\xbf").strip():
        raise TaskFormatError(filename, "file is empty")
    text, bad_line, bad_reason = _decode(data, filename)
    if bad_line is not None:
        raise TaskFormatError(filename, bad_reason, bad_line, _surrogate_field(text, filename, kind, max_bytes))
    return _parse_text(text, filename, kind, max_bytes)


def _parse_text(text: str, filename: str, kind: str, max_bytes: int) -> _Parsed:
    if kind in ("csv", "tsv"):
        return _parse_csv(text, filename, "," if kind == "csv" else "\t", kind, max_bytes)
    if kind == "jsonl":
        return _parse_jsonl(text, filename)
    return _parse_json(text, filename)


def _surrogate_field(text: str, filename: str, kind: str, max_bytes: int) -> str | None:
    """The column holding the first undecodable byte, or None when it cannot be told."""
    try:
        parsed = _parse_text(text, filename, kind, max_bytes)
    except TaskFormatError:
        return None
    if parsed.header_line is not None:  # CSV header
        for col in parsed.columns:
            if _SURROGATE_RE.search(col):
                return _SURROGATE_RE.sub("?", col)
    for rec in parsed.records:  # in file order, so the first hit holds the first bad byte
        for key, value in rec.values.items():
            if _SURROGATE_RE.search(key):
                return _SURROGATE_RE.sub("?", key)
            if isinstance(value, str) and _SURROGATE_RE.search(value):
                return key
    return None


def _parse_csv(text: str, filename: str, delimiter: str, kind: str, max_bytes: int) -> _Parsed:
    # csv's per-field limit is process-wide; raise it (never lower it) so that a huge field
    # reaches our own check, which names the line and field.
    wanted = min(max_bytes + 1, 2**31 - 1)  # a C long on every platform
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line: int | None = None
    records: list[_Record] = []
    prev = 0
    while True:
        start = prev + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            msg = str(e)
            if "unexpected end of data" in msg:
                raise TaskFormatError(
                    filename, "a quoted value starting on this line is never closed (missing '\"')", start
                ) from e
            raise TaskFormatError(filename, f"CSV syntax error: {msg}", reader.line_num) from e
        prev = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line or a row of empty cells
        if header is None:
            header = [_clean_column(c, i) for i, c in enumerate(row)]
            header_line = start
            seen: dict[str, int] = {}
            for i, c in enumerate(header):
                if c in seen:
                    reason = f"column name appears twice in the header (columns {seen[c] + 1} and {i + 1})"
                    raise TaskFormatError(filename, reason, start, c)
                seen[c] = i
            continue
        if len(row) != len(header):
            sep = "comma" if delimiter == "," else "tab"
            hint = ""
            if len(row) > len(header):
                hint = f" (an unquoted {sep} inside a value? put the value in double quotes)"
            raise TaskFormatError(
                filename, f"row has {len(row)} fields but the header has {len(header)}{hint}", start
            )
        records.append(_Record(start, dict(zip(header, row))))
    if header is None:
        raise TaskFormatError(filename, "file is empty")
    if not records:
        raise TaskFormatError(filename, f"the file has a header (line {header_line}) but no data rows")
    return _Parsed(kind, header, records, header_line)


def _clean_column(name: str, index: int) -> str:
    name = name.lstrip("\ufeff").strip()
    return name if name else f"column_{index + 1}"


def _parse_jsonl(text: str, filename: str) -> _Parsed:
    records: list[_Record] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskFormatError(filename, f"not valid JSON: {e.msg} (column {e.colno})", lineno) from e
        if not isinstance(obj, dict):
            raise TaskFormatError(
                filename, f'expected a JSON object like {{"input": ..., "target": ...}}, got {_json_type(obj)}', lineno
            )
        records.append(_Record(lineno, obj))
    if not records:
        raise TaskFormatError(filename, "file has no records (every line is blank)")
    return _Parsed("jsonl", _keys_in_order(records), records, None)


def _parse_json(text: str, filename: str) -> _Parsed:
    try:
        top = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskFormatError(filename, f"not valid JSON: {e.msg} (column {e.colno})", e.lineno) from e
    if isinstance(top, dict):
        if "examples" in top and isinstance(top["examples"], list):
            values = top["examples"]
            pos = _object_value_pos(text, _skip_ws(text, 0), "examples")
        else:
            keys = ", ".join(repr(k) for k in list(top)[:8]) or "none"
            raise TaskFormatError(
                filename,
                "top-level value is a JSON object (keys: "
                f'{keys}); expected a list of objects [{{"input": ..., "target": ...}}, ...] '
                'or {"examples": [...]}',
            )
    elif isinstance(top, list):
        values = top
        pos = _skip_ws(text, 0)
    else:
        raise TaskFormatError(
            filename,
            f'top-level value is {_json_type(top)}; expected a list of objects [{{"input": ..., "target": ...}}, ...]',
        )
    starts = _array_element_starts(text, pos)
    records: list[_Record] = []
    line, prev = 1, 0
    for n, (value, start) in enumerate(zip(values, starts), start=1):
        line += text.count("\n", prev, start)
        prev = start
        if not isinstance(value, dict):
            reason = f'record {n} is {_json_type(value)}; expected an object like {{"input": ..., "target": ...}}'
            raise TaskFormatError(filename, reason, line)
        records.append(_Record(line, value))
    if not records:
        raise TaskFormatError(filename, "the JSON list has no records")
    return _Parsed("json", _keys_in_order(records), records, None)


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _array_element_starts(text: str, pos: int) -> list[int]:
    """Offsets where each element of the (already validated) JSON array at ``pos`` starts."""
    dec = json.JSONDecoder()
    i = _skip_ws(text, pos + 1)
    starts: list[int] = []
    if text[i] == "]":
        return starts
    while True:
        starts.append(i)
        _, i = dec.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] != ",":
            return starts
        i = _skip_ws(text, i + 1)


def _object_value_pos(text: str, pos: int, key: str) -> int:
    """Offset of the value of ``key`` (last occurrence, as json.loads) in the object at ``pos``."""
    dec = json.JSONDecoder()
    found = -1
    i = _skip_ws(text, pos + 1)
    while text[i] != "}":
        k, i = dec.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past ':'
        if k == key:
            found = i
        _, i = dec.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return found


def _keys_in_order(records: list[_Record]) -> list[str]:
    seen: dict[str, None] = {}
    for rec in records:
        for k in rec.values:
            seen.setdefault(k, None)
    return list(seen)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def _display(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # preview only: loading refuses it (TaskFormatError naming line and field)
    return _scalar_text(v)


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("not a finite number")
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


# --------------------------------------------------------------------------- mapping


def _resolve_column(parsed: _Parsed, filename: str, wanted: str | None, guessed: str | None, role: str) -> str:
    cols = parsed.columns
    if wanted is not None:
        if wanted in cols:
            return wanted
        folded = [c for c in cols if c.lower() == wanted.strip().lower()]
        if len(folded) == 1:
            return folded[0]
        reason = _missing_column_reason(parsed, f"no column {wanted!r}", role)
        raise TaskFormatError(filename, reason, parsed.header_line, wanted)
    if guessed is not None:
        return guessed
    names = INPUT_COLUMN_NAMES if role == "input" else TARGET_COLUMN_NAMES
    reason = f"no {role} column found (looked for {', '.join(names)})"
    raise TaskFormatError(filename, _missing_column_reason(parsed, reason, role), parsed.header_line, role)


def _missing_column_reason(parsed: _Parsed, reason: str, role: str) -> str:
    cols = parsed.columns
    shown = ", ".join(repr(c) for c in cols[:12]) + (" ..." if len(cols) > 12 else "")
    reason += f"; the file has columns: {shown}; choose the {role} column"
    if parsed.kind in ("csv", "tsv") and len(cols) == 1:
        only = cols[0]
        for sep, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")):
            if sep in only:
                expected = "','" if parsed.kind == "csv" else "tab"
                reason += (
                    f". The header looks like one column: the file seems to use {label} as delimiter, "
                    f"but a .{parsed.kind} file must use {expected}"
                    + ("; save it comma-separated, or as .tsv if tab-separated" if parsed.kind == "csv" else "")
                )
                break
        else:
            reason += ". The header has only one column"
    return reason


def _field_text(value: Any, filename: str, line: int, field: str, n: int, kind: str) -> str:
    where = f"record {n}: " if kind == "json" else ""
    if value is None:
        raise TaskFormatError(filename, f"{where}value is null; give text", line, field)
    if isinstance(value, (dict, list)):
        what = "an object" if isinstance(value, dict) else "a list"
        raise TaskFormatError(filename, f"{where}value is {what} (nested data); flatten it to text", line, field)
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _scalar_text(value)
        except ValueError as e:
            raise TaskFormatError(filename, f"{where}value is {e}", line, field) from e
    if len(text) > MAX_FIELD_CHARS:
        raise TaskFormatError(
            filename,
            f"{where}value is {len(text):,} characters; the limit is {MAX_FIELD_CHARS:,} characters per field",
            line,
            field,
        )
    if not text.strip():
        raise TaskFormatError(filename, f"{where}value is blank", line, field)
    return text


def _parse_examples(
    data: bytes, filename: str, input_column: str | None, target_column: str | None, max_bytes: int
) -> list[Example]:
    parsed = _parse_records(data, filename, max_bytes)
    g_in, g_tgt = guess_columns(parsed.columns)
    in_col = _resolve_column(parsed, filename, input_column, g_in, "input")
    tgt_col = _resolve_column(parsed, filename, target_column, g_tgt, "target")
    if in_col == tgt_col:
        raise TaskFormatError(filename, "input and target are the same column", parsed.header_line, in_col)
    examples: list[Example] = []
    first_seen: dict[str, Example] = {}
    for n, rec in enumerate(parsed.records, start=1):
        for col, role in ((in_col, "input"), (tgt_col, "target")):
            if col not in rec.values:
                keys = ", ".join(repr(k) for k in rec.values)
                where = f"record {n}" if parsed.kind == "json" else "record"
                raise TaskFormatError(
                    filename, f"{where} has no key {col!r} for the {role} (its keys: {keys})", rec.line, col
                )
        inp = _field_text(rec.values[in_col], filename, rec.line, in_col, n, parsed.kind)
        tgt = _field_text(rec.values[tgt_col], filename, rec.line, tgt_col, n, parsed.kind).strip()
        ex = Example(inp, tgt, rec.line)
        key = inp.strip()
        prior = first_seen.get(key)
        if prior is not None:
            if prior.target == tgt:
                raise TaskFormatError(
                    filename,
                    f"duplicate row: lines {prior.line} and {rec.line} have the same input and target; remove one",
                    rec.line,
                    in_col,
                )
            raise TaskFormatError(
                filename,
                f"conflicting labels: lines {prior.line} and {rec.line} have the same input but targets "
                f"{_short(prior.target)} and {_short(tgt)}",
                rec.line,
                tgt_col,
            )
        first_seen[key] = ex
        examples.append(ex)
    return examples


def _short(s: str, n: int = 40) -> str:
    return repr(s if len(s) <= n else s[: n - 3] + "...")


# --------------------------------------------------------------------------- folders & tasks


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and f.suffix.lower() in DATA_EXTENSIONS
        and f.name != TASK_META_FILE
    )


def _read_meta(folder: Path) -> dict[str, str]:
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
        raise TaskFormatError(where, f"expected a JSON object of task settings, got {_json_type(meta)}")
    for key, value in meta.items():
        if key not in TASK_META_KEYS:
            raise TaskFormatError(where, f"unknown setting; allowed: {', '.join(TASK_META_KEYS)}", None, key)
        if not isinstance(value, str):
            raise TaskFormatError(where, f"expected text, got {_json_type(value)}", None, key)
    if meta.get("answer_type", ANSWER_TYPES[0]) not in ANSWER_TYPES:
        raise TaskFormatError(where, f"must be one of {', '.join(ANSWER_TYPES)}", None, "answer_type")
    if meta.get("instruction_position", INSTRUCTION_POSITIONS[0]) not in INSTRUCTION_POSITIONS:
        raise TaskFormatError(where, f"must be one of {', '.join(INSTRUCTION_POSITIONS)}", None, "instruction_position")
    return meta


def _load_folder(
    folder: Path, input_column: str | None, target_column: str | None, overrides: dict, max_bytes: int
) -> Task:
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

    def load(f: Path) -> list[Example]:
        return _parse_examples(_read_bytes(f, max_bytes), str(f), in_col, tgt_col, max_bytes)

    split_files = {split: pick(stems) for split, stems in SPLIT_STEMS.items()}
    format_file = pick((FORMAT_STEM,))
    fmt = load(format_file) if format_file else []
    if any(split_files.values()):
        missing = [s for s, f in split_files.items() if f is None]
        if missing:
            raise TaskFormatError(
                str(folder),
                f"folder has split files but no {' or '.join(missing)} file; a split folder needs "
                "train, eval (or dev/validation) and test files (.jsonl, .json, .csv or .tsv)",
            )
        splits = {s: load(f) for s, f in split_files.items() if f is not None}
        return _make_task(folder.name, [], splits, fmt, overrides, meta, str(folder))
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
    return _make_task(folder.name, load(candidates[0]), {}, fmt, overrides, meta, str(folder))


def _make_task(
    default_name: str,
    examples: list[Example],
    splits: dict[str, list[Example]],
    fmt: list[Example],
    overrides: dict,
    meta: dict[str, str],
    source: str,
) -> Task:
    def choose(key: str, default: str) -> str:
        v = overrides.get(key)
        if v is not None:
            return v
        return meta.get(key, default)

    all_targets = [e.target for e in examples] + [e.target for split in splits.values() for e in split]
    answer_type = overrides.get("answer_type") or meta.get("answer_type") or infer_answer_type(all_targets)
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
    )
