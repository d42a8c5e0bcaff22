"""A task file's bytes to its examples: records, mapped columns, value rules, and the
duplicate-row / conflicting-label check (within one file).

Part of task loading; the public entry points are in :mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.columns import guess_columns, resolve_column
from gpo_core.tasks.readers import parse_records
from gpo_core.tasks.task import Example
from gpo_core.tasks.values import field_text


def parse_examples(
    data: bytes, filename: str, input_column: str | None, target_column: str | None, max_bytes: int
) -> list[Example]:
    """The examples of one task file, in file order (columns guessed when not given).
    Raises TaskFormatError naming the file, line and field; duplicates are errors."""
    parsed = parse_records(data, filename, max_bytes)
    g_in, g_tgt = guess_columns(parsed.columns)
    in_col = resolve_column(parsed, filename, input_column, g_in, "input")
    tgt_col = resolve_column(parsed, filename, target_column, g_tgt, "target")
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
        inp = field_text(rec.values[in_col], filename, rec.line, in_col, n, parsed.kind)
        tgt = field_text(rec.values[tgt_col], filename, rec.line, tgt_col, n, parsed.kind).strip()
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
