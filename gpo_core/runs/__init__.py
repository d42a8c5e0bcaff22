"""Runs: the records of a run, the run folder (save, load, lease), exports and headless runs.

Names load on first use (no import cycles between the subpackages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
    from gpo_core.runs.records import CandidateRecord, Decision, OptimizerCall, RunState, RunTask, StepRecord
    from gpo_core.runs.repository import RunInUseError, RunRepository, RunStore, gpo_home
    from gpo_core.runs.runner import RunRequest, run_cli

_EXPORTS = {
    "CandidateRecord": "gpo_core.runs.records",
    "Decision": "gpo_core.runs.records",
    "OptimizerCall": "gpo_core.runs.records",
    "RunState": "gpo_core.runs.records",
    "RunTask": "gpo_core.runs.records",
    "StepRecord": "gpo_core.runs.records",
    "RunRepository": "gpo_core.runs.repository",
    "RunStore": "gpo_core.runs.repository",
    "RunInUseError": "gpo_core.runs.repository",
    "gpo_home": "gpo_core.runs.repository",
    "export_json": "gpo_core.runs.exports",
    "export_markdown": "gpo_core.runs.exports",
    "final_prompt_text": "gpo_core.runs.exports",
    "RunRequest": "gpo_core.runs.runner",
    "run_cli": "gpo_core.runs.runner",
}
__all__ = ["CandidateRecord", "Decision", "OptimizerCall", "RunInUseError", "RunRepository", "RunRequest",
    "RunState", "RunStore", "RunTask", "StepRecord", "export_json", "export_markdown", "final_prompt_text",
    "gpo_home", "run_cli"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
