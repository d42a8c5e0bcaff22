"""Scoring: the task model's prompt, the scoring protocols, answer extraction and evaluation.

Names load on first use (no import cycles between the subpackages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from gpo_core.scoring.answers import extract_answer, matches_target, normalize_target
    from gpo_core.scoring.evaluation import EvaluationCancelled, evaluate, evaluate_many
    from gpo_core.scoring.reprompt import PROTOCOLS, plain_prompt, second_turn
    from gpo_core.scoring.results import EvalResult, ExampleRecord
    from gpo_core.scoring.task_prompt import render_task_prompt, task_messages

_EXPORTS = {
    "render_task_prompt": "gpo_core.scoring.task_prompt",
    "task_messages": "gpo_core.scoring.task_prompt",
    "PROTOCOLS": "gpo_core.scoring.reprompt",
    "plain_prompt": "gpo_core.scoring.reprompt",
    "second_turn": "gpo_core.scoring.reprompt",
    "extract_answer": "gpo_core.scoring.answers",
    "matches_target": "gpo_core.scoring.answers",
    "normalize_target": "gpo_core.scoring.answers",
    "EvaluationCancelled": "gpo_core.scoring.evaluation",
    "evaluate": "gpo_core.scoring.evaluation",
    "evaluate_many": "gpo_core.scoring.evaluation",
    "EvalResult": "gpo_core.scoring.results",
    "ExampleRecord": "gpo_core.scoring.results",
}
__all__ = ["EvalResult", "EvaluationCancelled", "ExampleRecord", "PROTOCOLS", "evaluate", "evaluate_many",
    "extract_answer", "matches_target", "normalize_target", "plain_prompt", "render_task_prompt",
    "second_turn", "task_messages"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
