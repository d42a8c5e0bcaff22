"""The app's scripted demo mode: instant (or slowed), deterministic models behind the provider.

Used when ``GPO_STUDIO_FAKE_MODELS=1`` (the browser tests and the app-latency benchmark);
``GPO_STUDIO_FAKE_LATENCY`` (seconds per call) slows every call down to emulate a real
endpoint. The richer test doubles (call logs, scripted failures, a loopback fault server)
live outside the engine, in ``gpo_testkit``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gpo_core.models.base import ChatRequest, Completion

if TYPE_CHECKING:
    from gpo_core.optimizer.session import Models


class DemoChatModel:
    """A ChatModel answering with ``responder(request)``; ``latency_s`` seconds per call.
    Token counts are whitespace words (prompt and reply); ``calls`` counts requests."""

    def __init__(self, responder: Callable[[ChatRequest], str], name: str, latency_s: float = 0.0,
                 max_concurrency: int = 8):
        self._responder = responder
        self.name = name
        self.max_concurrency = max_concurrency
        self.latency_s = latency_s
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def call_count(self) -> int:
        """Requests answered so far (as the test doubles of ``gpo_testkit`` count them)."""
        return self.calls

    def complete(self, request: ChatRequest) -> Completion:
        """The scripted reply (never raises)."""
        t0 = time.perf_counter()
        with self._lock:
            self.calls += 1
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        reply = self._responder(request)
        words = sum(len(c.split()) for _, c in request.messages)
        return Completion(text=reply, prompt_tokens=words, completion_tokens=len(reply.split()),
                          latency_s=time.perf_counter() - t0, model=self.name)


class HashingEmbedder:
    """Bag-of-words vectors hashed into ``dim`` buckets, L2-normalized. Counts calls."""

    name = "hashing-bow"

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out


_DEMO_KEYWORDS = ("step", "carefully", "check", "final", "number", "arithmetic", "digits", "verify")
_DEMO_EXTRAS = ("Check each step carefully.", "Give the final answer as a number.",
                "Verify the arithmetic.", "Add the digits column by column.")
_ARITH = re.compile(r"(-?\d+)\s*([-+*x×])\s*(-?\d+)")
# The current prompt as each meta-prompt layout states it (gpo, opro, short).
_CURRENT = re.compile(r"^(?:The prompt in use now:\n|The instruction in use now is:\n|Current instruction: )(.*)$",
                      re.MULTILINE)


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
    tags = ("<START>", "<END>") if "<START>" in text else ("<INS>", "</INS>")
    return f"{tags[0]}{current} {extra}{tags[1]}"


def demo_models(latency_s: float | None = None) -> Models:
    """Scripted, instant, deterministic models for tests and the browser test.

    Task model: answers "a + b" / "a - b" / "a * b" questions; whether the answer is right
    depends on a hash of the question and on how many of a few keywords ("step",
    "carefully", "check", "final", ...) the prompt holds, so adding those words never lowers
    accuracy. Optimizer model: appends one sentence (chosen by sample index) to the current
    instruction. Embedder: :class:`HashingEmbedder`. latency_s: seconds per call (default:
    ``GPO_STUDIO_FAKE_LATENCY``, else 0).
    """
    from gpo_core.optimizer.session import Models

    return Models(demo_chat_model("scripted-task", latency_s), demo_chat_model("scripted-optimizer", latency_s),
                  HashingEmbedder())


#: What the "worse" demo optimizer proposes first in every step: no keyword, so the demo
#: task model answers fewer questions right with it than with the starting prompt.
DEMO_WORSE_INSTRUCTION = "Reply with a quick guess."


def _demo_worse_optimizer_reply(request: ChatRequest) -> str:
    """As :func:`_demo_optimizer_reply`, except that sample 0 of every step proposes
    :data:`DEMO_WORSE_INSTRUCTION`: a scripted worse candidate (issue 11's browser test of
    the accept-anyway question)."""
    if request.sample_index != 0:
        return _demo_optimizer_reply(request)
    text = "\n".join(c for _, c in request.messages)
    tags = ("<START>", "<END>") if "<START>" in text else ("<INS>", "</INS>")
    return f"{tags[0]}{DEMO_WORSE_INSTRUCTION}{tags[1]}"


_JUDGED = re.compile(r"Reference answers?[^\n]*:\n(?P<ref>.*?)\n\nAnswer to grade:\n(?P<out>.*?)\n\n", re.DOTALL)


def _demo_judge_reply(request: ChatRequest) -> str:
    """The scripted LLM judge: a reply in the format the judge prompt asks for, PASS / 10
    when the answer to grade contains the (first) reference answer, FAIL / 2 otherwise."""
    text = "\n".join(c for _, c in request.messages)
    m = _JUDGED.search(text)
    if not m:
        return "I cannot grade this."
    ref = m.group("ref").strip().removeprefix("- ").splitlines()[0].strip()
    ok = bool(ref) and ref.lower() in m.group("out").lower()
    reason = "the answer states the reference answer" if ok else "the answer does not state the reference answer"
    grade = ("Verdict: PASS" if ok else "Verdict: FAIL") if "Verdict:" in text else f"Score: {10 if ok else 2}"
    return f"Reason: {reason}.\n{grade}"


#: The demo models by name (the ``model`` of a ``demo`` backend's settings).
#: "scripted-optimizer-worse": the optimizer with a worse first candidate in every step;
#: "scripted-judge": the LLM judge of the ``llm_judge`` metric.
DEMO_MODELS = {"scripted-task": _demo_task_reply, "scripted-optimizer": _demo_optimizer_reply,
               "scripted-optimizer-worse": _demo_worse_optimizer_reply, "scripted-judge": _demo_judge_reply}


def demo_chat_model(name: str, latency_s: float | None = None) -> DemoChatModel:
    """The demo model ``name`` (see :data:`DEMO_MODELS`; an unknown name answers like the
    task model). latency_s: seconds per call (default: ``GPO_STUDIO_FAKE_LATENCY``, else 0)."""
    latency = float(os.environ.get("GPO_STUDIO_FAKE_LATENCY", "0") or 0) if latency_s is None else latency_s
    return DemoChatModel(DEMO_MODELS.get(name, _demo_task_reply), name, latency)
