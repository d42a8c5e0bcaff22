"""A task file's bytes to its examples: records, mapped columns, value rules, and the
duplicate-row / conflicting-label check (within one file): exact duplicates are dropped with
a warning naming their lines, conflicting labels are an error naming both lines.

Part of task loading; the public entry points are in :mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.columns import guess_columns, resolve_column
from gpo_core.tasks.readers import parse_records
from gpo_core.tasks.task import Example
from gpo_core.tasks.values import field_text

#: How many line numbers a warning names before it says "and N more".
MAX_LINES_NAMED = 20


def name_lines(items: list[str]) -> str:
    """``items`` joined with ", ", the first :data:`MAX_LINES_NAMED` only, then "and N more"."""
    shown = ", ".join(items[:MAX_LINES_NAMED])
    more = len(items) - MAX_LINES_NAMED
    return shown + (f", and {more} more" if more > 0 else "")


def parse_examples(
    data: bytes, filename: str, input_column: str | None, target_column: str | None, max_bytes: int
) -> tuple[list[Example], list[str]]:
    """The examples of one task file, in file order (columns guessed when not given), and
    warnings. A row with the same input (stripped) and target as an earlier row is dropped;
    the warning names each dropped line and the line it repeats.
    Raises TaskFormatError naming the file, line and field; conflicting labels (same input,
    different targets) are errors naming both lines."""
    parsed = parse_records(data, filename, max_bytes)
    g_in, g_tgt = guess_columns(parsed.columns)
    in_col = resolve_column(parsed, filename, input_column, g_in, "input")
    tgt_col = resolve_column(parsed, filename, target_column, g_tgt, "target")
    if in_col == tgt_col:
        raise TaskFormatError(filename, "input and target are the same column", parsed.header_line, in_col)
    examples: list[Example] = []
    first_seen: dict[str, Example] = {}
    dropped: list[str] = []
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
                dropped.append(f"line {rec.line} (same as line {prior.line})")
                continue
            raise TaskFormatError(
                filename,
                f"conflicting labels: lines {prior.line} and {rec.line} have the same input but targets "
                f"{_short(prior.target)} and {_short(tgt)}",
                rec.line,
                tgt_col,
            )
        first_seen[key] = ex
        examples.append(ex)
    warnings = []
    if dropped:
        rows = "row" if len(dropped) == 1 else "rows"
        warnings.append(
            f"{filename}: dropped {len(dropped)} duplicate {rows} (same input and target as an earlier row): "
            f"{name_lines(dropped)}"
        )
    return examples, warnings


def _short(s: str, n: int = 40) -> str:
    return repr(s if len(s) <= n else s[: n - 3] + "...")
