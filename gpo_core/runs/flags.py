"""A run's settings from the command-line flags the user gave (no argparse here).

``given`` maps each flag the user typed to its value, keyed by the flag's dest name
(``"optimizer_temperature"``; ``"--optimizer-temperature"`` is accepted too). A flag that is
not a key was not given: a new run takes the defaults of ``--backend`` and the paper's
optimizer settings, a resumed run keeps its saved value (see :mod:`gpo_core.runs.resume`).
Errors name the flag (``--optimizer-temperature``), not an internal field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.settings import (
    LOCAL_DEFAULT_MODEL,
    ModelSettings,
    OptimizerSettings,
    RunSettings,
    SplitSettings,
    default_model_settings,
    default_run_settings,
    model_preset,
)


def dest(flag: str) -> str:
    """The dest name of a flag: ``"--dev-size"`` -> ``"dev_size"`` (a dest comes back unchanged)."""
    return flag.lstrip("-").replace("-", "_")


def given_by_dest(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` keyed by dest names, without the flags whose value is None (not given)."""
    return {dest(k): v for k, v in given.items() if v is not None}


def _flagged_fields(cls: type) -> dict[str, str]:
    """dest -> field name of every field of ``cls`` that carries a CLI flag."""
    return {dest(f.metadata["flag"]): f.name for f in fields(cls) if f.metadata.get("flag")}


def _part_from_flags(cls: type, base: Any, given: Mapping[str, Any]) -> Any:
    """``base`` (SplitSettings or OptimizerSettings) with the flags the user gave."""
    changes = {}
    for name_dest, name in _flagged_fields(cls).items():
        if name_dest in given:
            value = given[name_dest]
            if isinstance(getattr(base, name), bool):  # a switch: --no-budget, --enforce-budget
                value = not name_dest.startswith("no_")
            if name == "metric_options" and isinstance(value, (list, tuple)):  # --metric-option KEY=VALUE ...
                from gpo_core.metrics.options import parse_metric_options

                value = parse_metric_options(value)
            changes[name] = value
    return base.replace(**changes) if changes else base


def _kind(backend: str) -> str:
    """The CLI's --backend choice a saved backend belongs to."""
    return "openai" if backend in ("openai", "compatible") else backend


def _model_from_flags(role: str, base: ModelSettings, given: Mapping[str, Any], fresh: bool) -> ModelSettings:
    """The ``role`` model's settings: ``base`` with the model flags the user gave. ``fresh``:
    a new run (the environment's OPENAI_BASE_URL applies and the openai backend needs a
    model name); on resume, a flag not given keeps the saved value."""
    kind = given["backend"] if "backend" in given else _kind(base.backend)
    switched = kind != _kind(base.backend)
    if switched:
        base = default_model_settings(role, kind)
    name = given.get(f"{role}_model") or given.get("model")
    if "concurrency" in given and given["concurrency"] < 1:
        raise ConfigError("--concurrency", f"must be a whole number >= 1, got {given['concurrency']}")
    changes: dict[str, Any] = {}
    if kind == "local":
        if "base_url" in given:
            raise ConfigError("--base-url", "only the openai backend has a base URL; add --backend openai")
        if not name and "model_preset" in given:  # --model-preset names each role's embedded model
            preset = model_preset(given["model_preset"])
            name = preset.task_model if role == "task" else preset.optimizer_model
        changes.update(backend="local", model=name or base.model or LOCAL_DEFAULT_MODEL, base_url=None, concurrency=1)
    elif kind == "openai":
        if "model_preset" in given:
            raise ConfigError("--model-preset", "names embedded models; use it with --backend local")
        if not name and (fresh or switched):
            raise ConfigError("--model", "the openai backend needs --model (or --task-model and --optimizer-model)")
        if "base_url" in given:
            base_url = given["base_url"]
        elif fresh or switched:
            base_url = os.environ.get("OPENAI_BASE_URL") or None
        else:
            base_url = base.base_url
        changes.update(backend="compatible" if base_url else "openai", model=name or base.model, base_url=base_url)
        if "concurrency" in given:
            changes["concurrency"] = given["concurrency"]
    elif name:  # a saved "demo" run: only the model name can change
        changes["model"] = name
    for flag_dest, fname in ((f"{role}_temperature", "temperature"), (f"{role}_max_tokens", "max_tokens"),
                             ("timeout", "timeout_s")):
        if flag_dest in given:
            changes[fname] = given[flag_dest]
    settings = base.replace(**changes)
    try:
        return settings.validate("cli", role)
    except ConfigError as e:  # name the flag the user typed: --model rather than --task-model
        if e.setting == f"--{role}-model" and f"{role}_model" not in given and "model" in given:
            raise e.relabeled("--model") from None
        raise


def settings_from_flags(given: Mapping[str, Any], base: RunSettings | None = None) -> RunSettings:
    """The run's settings from the flags the user gave, validated so that an error names
    the flag (``--optimizer-temperature``), not an internal field.

    base: the settings the flags change; None for a new run (the defaults of ``--backend``,
    the paper's optimizer settings; ``--steps`` without ``--epochs`` fixes T, overriding an
    epochs preset). On resume, the run's saved settings: only the flags the user typed
    change them."""
    given = given_by_dest(given)
    fresh = base is None
    if base is None:
        base = default_run_settings(given.get("backend") or "local", preset="paper")
    optimizer = _part_from_flags(OptimizerSettings, base.optimizer, given)
    if fresh and "steps" in given and "epochs" not in given:
        optimizer = optimizer.replace(epochs=None)  # --steps names T itself: no epochs preset decides it
    settings = base.replace(
        splits=_part_from_flags(SplitSettings, base.splits, given),
        task_model=_model_from_flags("task", base.task_model, given, fresh),
        optimizer_model=_model_from_flags("optimizer", base.optimizer_model, given, fresh),
        optimizer=optimizer, judge_model=_judge_from_flags(base.judge_model, given))
    if "judge_model" in given and settings.judge_model is not None and not settings.uses_judge:
        raise ConfigError("--judge-model", "only the llm_judge metric calls a judge model: add --metric llm_judge, "
                                           "or leave --judge-model out")
    return settings.validate("cli")


def _judge_from_flags(base: ModelSettings | None, given: Mapping[str, Any]) -> ModelSettings | None:
    """The judge model's settings from ``--judge-model SPEC`` (a model spec as ``evaluate
    --models`` takes; "task" or "": the task model judges), else ``base`` unchanged."""
    if "judge_model" not in given:
        return base
    spec = str(given["judge_model"] or "").strip()
    if spec in ("", "task"):
        return None
    from gpo_core.runs.matrix import parse_model_spec

    base_url = given.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
    return parse_model_spec(spec, base_url=base_url, flag="--judge-model").settings
