"""Task file bytes to records, one reader per format: CSV / TSV, JSON Lines, JSON.

Each record keeps the 1-based line it starts on, so every later error can name it. The format
is chosen by file extension (:data:`DATA_EXTENSIONS`). Part of task loading; the public entry
points and the format rules are in :mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.decoding import decode, too_big
from gpo_core.tasks.values import json_type

#: Extensions of single data files and the parser each one uses.
DATA_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}

_SURROGATE_RE = re.compile("[\udc80-\udcff]")


@dataclass
class Record:
    """One record: the 1-based line it starts on and its values by column / key."""

    line: int
    values: dict[str, Any]


@dataclass
class Parsed:
    """A whole file's records, its columns (CSV header, or JSON keys in order of first use)."""

    kind: str  # csv | tsv | jsonl | json
    columns: list[str]
    records: list[Record]
    header_line: int | None  # CSV header line; None for JSON formats


def parse_records(data: bytes, filename: str, max_bytes: int) -> Parsed:
    """Parse a task file's bytes (format by ``filename``'s extension). Raises TaskFormatError
    naming the file, line and (where known) field."""
    kind = kind_of(filename)
    if len(data) > max_bytes:
        raise TaskFormatError(filename, too_big(len(data), max_bytes))
    if not data.lstrip(b"\xef\xbb\xbf").strip():
        raise TaskFormatError(filename, "file is empty")
    text, bad_line, bad_reason = decode(data, filename)
    if bad_line is not None:
        raise TaskFormatError(filename, bad_reason, bad_line, _surrogate_field(text, filename, kind, max_bytes))
    return _parse_text(text, filename, kind, max_bytes)


def kind_of(filename: str) -> str:
    """The parser of ``filename`` (a value of :data:`DATA_EXTENSIONS`), or TaskFormatError."""
    ext = Path(filename).suffix.lower()
    kind = DATA_EXTENSIONS.get(ext)
    if kind is None:
        shown = ext or "(no extension)"
        raise TaskFormatError(
            filename, f"unsupported file type {shown}; use .csv, .tsv, .jsonl or .json (UTF-8 text)"
        )
    return kind


def _parse_text(text: str, filename: str, kind: str, max_bytes: int) -> Parsed:
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


def _parse_csv(text: str, filename: str, delimiter: str, kind: str, max_bytes: int) -> Parsed:
    # csv's per-field limit is process-wide; raise it (never lower it) so that a huge field
    # reaches our own check, which names the line and field.
    wanted = min(max_bytes + 1, 2**31 - 1)  # a C long on every platform
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line: int | None = None
    records: list[Record] = []
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
        records.append(Record(start, dict(zip(header, row))))
    if header is None:
        raise TaskFormatError(filename, "file is empty")
    if not records:
        raise TaskFormatError(filename, f"the file has a header (line {header_line}) but no data rows")
    return Parsed(kind, header, records, header_line)


def _clean_column(name: str, index: int) -> str:
    name = name.lstrip("\ufeff").strip()
    return name if name else f"column_{index + 1}"


def _parse_jsonl(text: str, filename: str) -> Parsed:
    records: list[Record] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskFormatError(filename, f"not valid JSON: {e.msg} (column {e.colno})", lineno) from e
        if not isinstance(obj, dict):
            raise TaskFormatError(
                filename, f'expected a JSON object like {{"input": ..., "target": ...}}, got {json_type(obj)}', lineno
            )
        records.append(Record(lineno, obj))
    if not records:
        raise TaskFormatError(filename, "file has no records (every line is blank)")
    return Parsed("jsonl", _keys_in_order(records), records, None)


def _parse_json(text: str, filename: str) -> Parsed:
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
            f'top-level value is {json_type(top)}; expected a list of objects [{{"input": ..., "target": ...}}, ...]',
        )
    starts = _array_element_starts(text, pos)
    records: list[Record] = []
    line, prev = 1, 0
    for n, (value, start) in enumerate(zip(values, starts), start=1):
        line += text.count("\n", prev, start)
        prev = start
        if not isinstance(value, dict):
            reason = f'record {n} is {json_type(value)}; expected an object like {{"input": ..., "target": ...}}'
            raise TaskFormatError(filename, reason, line)
        records.append(Record(line, value))
    if not records:
        raise TaskFormatError(filename, "the JSON list has no records")
    return Parsed("json", _keys_in_order(records), records, None)


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


def _keys_in_order(records: list[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for rec in records:
        for k in rec.values:
            seen.setdefault(k, None)
    return list(seen)
