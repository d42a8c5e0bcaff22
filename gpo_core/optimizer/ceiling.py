"""The most model calls one step may make, derived from the run's settings, and a meter that
enforces it.

A step sends N optimizer calls (N = ``--candidates``), scores at most N candidates on the
dev examples (x 2 calls an example under the reference protocol's answer re-prompt), sends
the failed ones once more in the retry pass, and scores the chosen prompt on test (again
with its retry pass). So its calls are bounded by::

    ceiling = N + 2 * p * (N * dev + test)          p = 2 (reference protocol) or 1

(HTTP retries inside one call are bounded apart, by the client's attempt cap.) A step that
reaches the ceiling is a bug or a hostile reply slipping through; :class:`CallMeter` turns
the next call into :class:`~gpo_core.errors.CallCeilingError`, which stops the step before
the call is sent (nothing is saved for it).
"""

from __future__ import annotations

import threading

from gpo_core.errors import CallCeilingError
from gpo_core.models.base import ChatModel, ChatRequest, Completion
from gpo_core.settings import RunSettings

__all__ = ["CallMeter", "MeteredChatModel", "step_call_ceiling"]


def step_call_ceiling(settings: RunSettings, dev_n: int, test_n: int) -> int:
    """The most model calls (``ChatModel.complete`` calls, cache hits included) one step may
    make: ``N + 2 * p * (N * dev_n + test_n)`` with N the candidates a step and p the calls
    per example of the scoring protocol (2 for "reference", else 1). dev_n / test_n: the
    run's dev and test examples."""
    n = int(settings.optimizer.candidates)
    per_example = 2 if settings.optimizer.protocol == "reference" else 1
    return n + 2 * per_example * (n * int(dev_n) + int(test_n))


class CallMeter:
    """Counts the calls of one step against ``limit``; thread-safe. ``what`` names the step
    in the error ("step 3")."""

    def __init__(self, limit: int, what: str = "the step"):
        self.limit = int(limit)
        self.what = what
        self.calls = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        """Count one call; CallCeilingError (before the call is made) past the limit."""
        with self._lock:
            if self.calls >= self.limit:
                raise CallCeilingError(
                    f"{self.what} reached its ceiling of {self.limit} model calls (N optimizer calls + N candidates "
                    "x dev examples with the retry pass + test); stopped before sending more: nothing of this step "
                    "is saved. This is a bug or a hostile reply: please report it")
            self.calls += 1


class MeteredChatModel:
    """A ChatModel whose every call is counted by a :class:`CallMeter` first (CallCeilingError
    past its limit); ``name`` and ``max_concurrency`` are the inner model's."""

    def __init__(self, inner: ChatModel, meter: CallMeter):
        self.inner = inner
        self.meter = meter
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency

    def complete(self, request: ChatRequest) -> Completion:
        self.meter.take()
        return self.inner.complete(request)

    def __repr__(self) -> str:
        return f"MeteredChatModel({self.inner!r}, {self.meter.calls}/{self.meter.limit})"
