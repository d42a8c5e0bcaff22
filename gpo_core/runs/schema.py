"""Type checks of a run file before it becomes records: the field at fault, by name.

A run.json edited by hand or damaged on disk must give one line naming the file and the
field (``run.json, field 'steps': expected a list, got a string ("abc")``), not a traceback
from deep inside the loader. The expected type of each field is read from the annotations
of the record dataclasses (:mod:`gpo_core.runs.records` and the ones they hold), so a field
added there is checked without touching this module. Unknown keys are ignored (the loader
drops them); a missing key is an error only when its field has no default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

__all__ = ["SchemaError", "check_fields", "check_value"]


class SchemaError(ValueError):
    """A value of a run file does not have its field's type. ``field``: the path of the
    field ("steps[2].candidates[0].dev_accuracy"); ``reason``: expected vs got."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"field '{field}': {reason}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _got(value: Any) -> str:
    kind = {str: "a string", bool: "true/false", int: "an integer", float: "a number", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        shown = repr(value) if not isinstance(value, str) else '"' + value[:40] + ('…' if len(value) > 40 else '') + '"'
        return f"{kind} ({shown})"
    return kind


def _expected(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(hint))
    if origin is list or hint is list:
        return "a list"
    if origin is dict or hint is dict or dataclasses.is_dataclass(hint):
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(hint, str(hint))


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the top-level shape of ``hint`` (items are checked apart)."""
    if hint is Any or hint is object:
        return True
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list)
    if origin is dict or hint is dict or dataclasses.is_dataclass(hint):
        return isinstance(value, Mapping)
    return True  # a type this checker does not know: its own loader checks it


def check_value(value: Any, hint: Any, where: str) -> None:
    """Raise SchemaError(where, ...) unless ``value`` has type ``hint`` (recursively: list
    items, dict values, dataclass fields; ``X | None`` unions)."""
    if not _fits(value, hint):
        raise SchemaError(where, f"expected {_expected(hint)}, got {_got(value)}")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None) and _fits(value, a)]
        if arms and value is not None:
            check_value(value, arms[0], where)
        return
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        for i, v in enumerate(value):
            check_value(v, item, f"{where}[{i}]")
    elif origin is dict:
        args = typing.get_args(hint)
        if len(args) == 2:
            for k, v in value.items():
                check_value(v, args[1], f"{where}.{k}")
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        check_fields(value, hint, where)


def check_fields(data: Mapping, cls: type, where: str = "", *, skip: tuple[str, ...] = (),
                 required: bool = True) -> None:
    """Check every field of dataclass ``cls`` present in ``data`` against its annotation;
    with ``required``, a missing field without a default is an error. ``skip``: fields
    checked elsewhere. Raises SchemaError naming the field path (``where`` + field name)."""
    if not isinstance(data, Mapping):
        raise SchemaError(where or cls.__name__, f"expected an object, got {_got(data)}")
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{where}.{f.name}" if where else f.name
        if f.name in skip:
            continue
        if f.name not in data:
            if required and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(name, "missing")
            continue
        check_value(data[f.name], hints[f.name], name)
