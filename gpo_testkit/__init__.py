"""Test helpers shipped with the engine: a loopback OpenAI-compatible server with fault injection.

Names load lazily so that ``python -m gpo_testkit.fake_openai_server`` runs cleanly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazy names, for type checkers
    from gpo_testkit.fake_openai_server import (
        FAULT_KINDS,
        TRANSIENT_FAULTS,
        FakeOpenAIServer,
        FaultPlan,
        default_responder,
    )

__all__ = ["FAULT_KINDS", "FakeOpenAIServer", "FaultPlan", "TRANSIENT_FAULTS", "default_responder"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gpo_testkit import fake_openai_server

        return getattr(fake_openai_server, name)
    raise AttributeError(f"module 'gpo_testkit' has no attribute {name!r}")
