"""Scripted, instant, deterministic models for app tests, the browser test and benchmarks.

Used by :func:`gpo_core.studio.models_override_from_env` when ``GPO_STUDIO_FAKE_MODELS=1``.
"""

from __future__ import annotations

import hashlib
import re

from ..models.base import ChatRequest
from ..models.scripted import ScriptedChatModel
from ..optimizer import Models
from .embedders import HashingEmbedder


_DEMO_KEYWORDS = ("step", "carefully", "check", "final", "number", "arithmetic", "digits", "verify")
_DEMO_EXTRAS = ("Check each step carefully.", "Give the final answer as a number.",
                "Verify the arithmetic.", "Add the digits column by column.")
_ARITH = re.compile(r"(-?\d+)\s*([-+*x×])\s*(-?\d+)")
_CURRENT = re.compile(r"^Current instruction: (.*)$", re.MULTILINE)


def _demo_task_reply(request: ChatRequest) -> str:
    text = "\n".join(c for _, c in request.messages)
    m = _ARITH.search(text)
    if not m:
        return "I am not sure."
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    value = a + b if op == "+" else a - b if op == "-" else a * b
    quality = 30 + 12 * sum(1 for w in _DEMO_KEYWORDS if w in text.lower())
    h = int.from_bytes(hashlib.sha256(m.group(0).encode()).digest()[:2], "big") % 100
    return f"The answer is {value if h < quality else value + 1}."


def _demo_optimizer_reply(request: ChatRequest) -> str:
    text = "\n".join(c for _, c in request.messages)
    m = _CURRENT.search(text)
    current = m.group(1).strip() if m else "Let's think step by step."
    i = request.sample_index % len(_DEMO_EXTRAS)
    rotated = _DEMO_EXTRAS[i:] + _DEMO_EXTRAS[:i]
    extra = next((e for e in rotated if e not in current), f"Be brief ({request.sample_index}).")
    return f"<INS>{current} {extra}</INS>"


def demo_models() -> Models:
    """Scripted, instant, deterministic models for tests and the browser test.

    Task model: answers "a + b" / "a - b" / "a * b" questions; whether the answer is right
    depends on a hash of the question and on how many of a few keywords ("step",
    "carefully", "check", "final", ...) the prompt holds, so adding those words never lowers
    accuracy. Optimizer model: appends one sentence (chosen by sample index) to the current
    instruction. Embedder: :class:`gpo_core.testing.embedders.HashingEmbedder`.
    """
    task = ScriptedChatModel(_demo_task_reply, name="scripted-task")
    opt = ScriptedChatModel(_demo_optimizer_reply, name="scripted-optimizer")
    return Models(task, opt, HashingEmbedder(),
                  {"backend": "scripted", "model": "scripted-task"},
                  {"backend": "scripted", "model": "scripted-optimizer"})
