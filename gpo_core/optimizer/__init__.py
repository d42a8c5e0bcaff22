"""The GPO optimizer: update direction, meta-prompt, candidates, decision policies and the session.

Names load on first use (no import cycles between the subpackages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from gpo_core.optimizer.direction import (
        SELECTION_STRATEGIES,
        STRATEGIES,
        Retrieved,
        TrajectoryEntry,
        select_update_direction,
    )
    from gpo_core.optimizer.edits import word_diff, word_edit_distance
    from gpo_core.optimizer.extraction import echo_refusal, extract_for_layout
    from gpo_core.optimizer.metaprompt import build_meta_prompt
    from gpo_core.optimizer.policies import POLICIES, DecisionPolicy, get_policy
    from gpo_core.optimizer.schedule import SCHEDULE_KINDS, budget_schedule, edit_budget
    from gpo_core.optimizer.session import GPOSession, Models
    from gpo_core.optimizer.templates import LAYOUTS

_EXPORTS = {
    "GPOSession": "gpo_core.optimizer.session",
    "Models": "gpo_core.optimizer.session",
    "SELECTION_STRATEGIES": "gpo_core.optimizer.direction",
    "STRATEGIES": "gpo_core.optimizer.direction",
    "Retrieved": "gpo_core.optimizer.direction",
    "TrajectoryEntry": "gpo_core.optimizer.direction",
    "select_update_direction": "gpo_core.optimizer.direction",
    "POLICIES": "gpo_core.optimizer.policies",
    "DecisionPolicy": "gpo_core.optimizer.policies",
    "get_policy": "gpo_core.optimizer.policies",
    "build_meta_prompt": "gpo_core.optimizer.metaprompt",
    "LAYOUTS": "gpo_core.optimizer.templates",
    "extract_for_layout": "gpo_core.optimizer.extraction",
    "echo_refusal": "gpo_core.optimizer.extraction",
    "SCHEDULE_KINDS": "gpo_core.optimizer.schedule",
    "budget_schedule": "gpo_core.optimizer.schedule",
    "edit_budget": "gpo_core.optimizer.schedule",
    "word_diff": "gpo_core.optimizer.edits",
    "word_edit_distance": "gpo_core.optimizer.edits",
}
__all__ = ["DecisionPolicy", "GPOSession", "LAYOUTS", "Models", "POLICIES", "Retrieved", "SCHEDULE_KINDS",
    "SELECTION_STRATEGIES", "STRATEGIES", "TrajectoryEntry", "budget_schedule", "build_meta_prompt",
    "echo_refusal", "edit_budget", "extract_for_layout", "get_policy", "select_update_direction",
    "word_diff", "word_edit_distance"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
