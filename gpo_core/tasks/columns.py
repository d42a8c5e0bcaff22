"""Which columns hold the input and the target: guessing by name, the preview the app's
column-mapping step shows, and resolving the chosen names (errors list the file's columns and
spot a wrong CSV delimiter).

Part of task loading; the public entry points are in :mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.decoding import DEFAULT_MAX_BYTES
from gpo_core.tasks.readers import Parsed, parse_records
from gpo_core.tasks.values import display

#: Column names tried, in order and case-insensitively, by :func:`guess_columns`.
INPUT_COLUMN_NAMES = ("input", "question", "text", "prompt", "query", "x", "sentence")
TARGET_COLUMN_NAMES = ("target", "answer", "label", "output", "y", "gold", "expected")


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
    parsed = parse_records(data, filename, max_bytes)
    rows = [{k: display(v) for k, v in rec.values.items()} for rec in parsed.records[:n_rows]]
    return list(parsed.columns), rows


def resolve_column(parsed: Parsed, filename: str, wanted: str | None, guessed: str | None, role: str) -> str:
    """The column of the ``role`` ("input" / "target"): ``wanted`` (exact, else the one
    case-insensitive match), else ``guessed``; TaskFormatError listing the file's columns."""
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


def _missing_column_reason(parsed: Parsed, reason: str, role: str) -> str:
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
