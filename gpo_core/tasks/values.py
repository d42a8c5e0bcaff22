"""Cell values as text: a record's value to an input or target (the value rules and the field
limit), to preview text, and to CSV-export text (:func:`neutralize_formula`).

Part of task loading; the public entry points and the value rules are in
:mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gpo_core.errors import TaskFormatError

#: Largest input or target value accepted, in characters.
MAX_FIELD_CHARS = 100_000

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def field_text(value: Any, filename: str, line: int, field: str, n: int, kind: str) -> str:
    """The text of an input or target value (record ``n`` at ``line``); TaskFormatError for
    null, nested, non-finite, over-long or blank values. A JSON list of non-blank texts (a
    target with several references) becomes its JSON text, ``'["a", "b"]'``, which the
    text metrics read as a list of references (:func:`gpo_core.metrics.common.references`)."""
    where = f"record {n}: " if kind == "json" else ""
    if value is None:
        raise TaskFormatError(filename, f"{where}value is null; give text", line, field)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        # a list of texts is a list of references (ROUGE-L, token F1 score against the best):
        # kept as its JSON text, read back by gpo_core.metrics.common.references
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, (dict, list)):
        what = "an object" if isinstance(value, dict) else "a list"
        raise TaskFormatError(filename, f"{where}value is {what} (nested data); give text, or a list of "
                                        "reference texts", line, field)
    if isinstance(value, str):
        text = value
    else:
        try:
            text = scalar_text(value)
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


def scalar_text(v: Any) -> str:
    """A JSON number or boolean as text (``3.0`` -> ``"3"``, ``True`` -> ``"True"``)."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("not a finite number")
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def display(v: Any) -> str:
    """A value as the preview shows it (never raises)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # preview only: loading refuses it (TaskFormatError naming line and field)
    return scalar_text(v)


def json_type(v: Any) -> str:
    """What a JSON value is, for messages ("a list", "null", ...)."""
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


def neutralize_formula(cell: str) -> str:
    """Make a cell safe for CSV export: prefix ``'`` when it starts with ``= + - @``, tab or CR
    (OWASP "CSV injection"), so spreadsheets show it as text instead of running it.

    Note that negative numbers (``-3``) are prefixed too; that is the OWASP rule.
    """
    if cell and cell.startswith(_FORMULA_PREFIXES):
        return "'" + cell
    return cell
