"""RunSettings from flat keyword names, for tests and benchmarks that set a few fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from gpo_core.settings import ModelSettings, OptimizerSettings, RunSettings, SplitSettings

__all__ = ["flat_run_settings"]


def flat_run_settings(models: dict[str, dict[str, Any]], **flat: Any) -> RunSettings:
    """RunSettings from flat names: the optimizer's and the split's fields (steps=,
    candidates=, dev_size=, seed=, ...) and ``<role>_<model field>`` (task_max_tokens=,
    optimizer_temperature=, ...) on top of ``models`` (role -> ModelSettings fields, for
    "task" and "optimizer"). Not validated. Raises TypeError for an unknown name."""
    opt_names = {f.name for f in fields(OptimizerSettings)}
    split_names = {f.name for f in fields(SplitSettings)}
    model_names = {f.name for f in fields(ModelSettings)}
    models = {role: dict(spec) for role, spec in models.items()}
    opt, split = {}, {}
    for key, value in flat.items():
        if key in opt_names:
            opt[key] = value
        elif key in split_names:
            split[key] = value
        else:
            role, _, name = key.partition("_")
            if role not in models or name not in model_names:
                raise TypeError(f"unknown setting {key}")
            models[role][name] = value
    return RunSettings(splits=SplitSettings(**split), task_model=ModelSettings(**models["task"]),
                       optimizer_model=ModelSettings(**models["optimizer"]), optimizer=OptimizerSettings(**opt))
