"""ResponseCache / CachedChatModel (against the fake server and the scripted model) and
ScriptedChatModel itself."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gpo_core.models.base import ChatModel, ChatRequest, TokenUsage
from gpo_core.models.cache import CachedChatModel, ResponseCache, cache_key, default_cache_dir, default_cache_path
from gpo_core.models.openai_chat import OpenAIChatModel
from gpo_testkit.fake_openai_server import FaultPlan
from gpo_testkit.scripted import ScriptedChatModel

SENTINEL_KEY = "sk-SENTINEL-cache-test-9f8e7d6c5b4a"


def cached_openai(server, path, **kwargs):
    inner = OpenAIChatModel("fake-model", api_key=SENTINEL_KEY, base_url=server.base_url, backoff_s=0.01,
                            timeout_s=5.0, **kwargs)
    cache = ResponseCache(path)
    return CachedChatModel(inner, cache), cache


def test_second_identical_request_makes_no_server_request(fake_server, tmp_path):
    model, cache = cached_openai(fake_server, tmp_path / "r.sqlite")
    req = ChatRequest.user("Is water wet?", temperature=0.7, max_tokens=16, sample_index=2)
    first = model.complete(req)
    assert first.ok and not first.cached and first.attempts == 1
    served = fake_server.chat_requests
    second = model.complete(req)
    assert fake_server.chat_requests == served  # no new request reached the server
    assert second.cached and second.attempts == 0 and second.ok
    assert second.text == first.text
    # a cached completion carries what the call cost when it was made ...
    assert (second.prompt_tokens, second.completion_tokens) == (first.prompt_tokens, first.completion_tokens)
    usage = TokenUsage()
    usage.add(first)
    usage.add(second)
    # ... but the usage counts it as a cached call: those tokens are not spent again
    assert usage.calls == 2 and usage.cached_calls == 1
    assert usage.total_tokens == first.prompt_tokens + first.completion_tokens > 0
    assert usage.cached_tokens == usage.total_tokens and usage.cost_tokens == 2 * usage.total_tokens
    cache.close()


def test_report_cached_tokens_returns_original_usage(fake_server, tmp_path):
    inner = OpenAIChatModel("fake-model", api_key=SENTINEL_KEY, base_url=fake_server.base_url)
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        model = CachedChatModel(inner, cache, report_cached_tokens=True)
        first = model.complete(ChatRequest.user("Hello there"))
        second = model.complete(ChatRequest.user("Hello there"))
    assert second.cached
    assert (second.prompt_tokens, second.completion_tokens) == (first.prompt_tokens, first.completion_tokens)


@pytest.mark.parametrize("change", [
    {"sample_index": 1}, {"temperature": 0.5}, {"max_tokens": 17}, {"messages": (("user", "Is water dry?"),)},
])
def test_any_key_field_change_misses(fake_server, tmp_path, change):
    model, cache = cached_openai(fake_server, tmp_path / "r.sqlite")
    base: dict[str, Any] = dict(messages=(("user", "Is water wet?"),), temperature=0.0, max_tokens=16,
                                sample_index=0)
    model.complete(ChatRequest(**base))
    c = model.complete(ChatRequest(**{**base, **change}))
    assert not c.cached
    assert fake_server.chat_requests == 2
    cache.close()


def test_errors_are_not_cached(make_fake_server, tmp_path):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("500",)))
    model, cache = cached_openai(server, tmp_path / "r.sqlite", max_attempts=1)
    req = ChatRequest.user("Hi")
    assert not model.complete(req).ok
    assert len(cache) == 0
    server.faults = FaultPlan()  # the endpoint recovers
    c = model.complete(req)
    assert c.ok and not c.cached
    assert server.chat_requests == 2
    assert len(cache) == 1
    cache.close()


def test_cache_persists_across_reopen(fake_server, tmp_path):
    path = tmp_path / "r.sqlite"
    model, cache = cached_openai(fake_server, path)
    text = model.complete(ChatRequest.user("Persist me")).text
    cache.close()
    model2, cache2 = cached_openai(fake_server, path)
    c = model2.complete(ChatRequest.user("Persist me"))
    assert c.cached and c.text == text
    assert fake_server.chat_requests == 1
    cache2.close()


def test_cache_files_never_contain_the_api_key(fake_server, tmp_path):
    folder = tmp_path / "cache"
    model, cache = cached_openai(fake_server, folder / "r.sqlite")
    for i in range(5):
        model.complete(ChatRequest.user(f"Question {i}?", sample_index=i))
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files
    for p in files:  # main file plus -wal / -shm while open
        assert SENTINEL_KEY.encode() not in p.read_bytes(), p.name
    cache.close()
    for p in folder.iterdir():
        assert SENTINEL_KEY.encode() not in p.read_bytes(), p.name


def test_namespace_separates_models_with_same_name(tmp_path):
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        a = CachedChatModel(ScriptedChatModel(["from A"], name="m"), cache, namespace="http://a/v1|m")
        b = CachedChatModel(ScriptedChatModel(["from B"], name="m"), cache, namespace="http://b/v1|m")
        assert a.complete(ChatRequest.user("q")).text == "from A"
        assert b.complete(ChatRequest.user("q")).text == "from B"
        assert a.complete(ChatRequest.user("q")).cached


def test_cached_model_is_thread_safe(tmp_path):
    inner = ScriptedChatModel(lambda r: "echo " + r.messages[-1][1], max_concurrency=8)
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        model = CachedChatModel(inner, cache)
        assert isinstance(model, ChatModel)
        assert model.max_concurrency == 8
        reqs = [ChatRequest.user(f"q{i % 50}") for i in range(400)]
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(model.complete, reqs))
        assert all(c.ok and c.text == "echo " + r.messages[-1][1] for c, r in zip(results, reqs))
        assert len(cache) == 50
        assert sum(not c.cached for c in results) == len(inner.calls)


def test_cache_key_depends_on_every_field():
    base = ChatRequest.user("x")
    keys = {
        cache_key("m", base),
        cache_key("m2", base),
        cache_key("m", ChatRequest.user("y")),
        cache_key("m", ChatRequest.user("x", temperature=0.1)),
        cache_key("m", ChatRequest.user("x", max_tokens=1)),
        cache_key("m", ChatRequest.user("x", sample_index=1)),
        cache_key("m", ChatRequest(messages=(("system", "x"),))),
    }
    assert len(keys) == 7
    assert cache_key("m", base) == cache_key("m", ChatRequest.user("x"))


def test_default_cache_dir_honours_gpo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "cache"
    assert default_cache_path().name == "responses.sqlite"
    monkeypatch.delenv("GPO_HOME")
    assert "gpo-studio" in str(default_cache_dir())


# ---------------------------------------------------------------- ScriptedChatModel


def test_scripted_model_list_dict_and_callable():
    listed = ScriptedChatModel(["a b", "c"])
    assert [listed.complete(ChatRequest.user("q")).text for _ in range(3)] == ["a b", "c", "a b"]
    assert listed.call_count == 3

    mapped = ScriptedChatModel({"<Prompt>": "<INS>new</INS>", "": "(A)"})
    assert mapped.complete(ChatRequest.user("meta <Prompt>")).text == "<INS>new</INS>"
    assert mapped.complete(ChatRequest.user("question")).text == "(A)"
    strict = ScriptedChatModel({"only": "x"})
    assert not strict.complete(ChatRequest.user("other")).ok

    fn = ScriptedChatModel(lambda r: r.messages[-1][1].upper(), name="upper")
    c = fn.complete(ChatRequest.user("one two three"))
    assert c.text == "ONE TWO THREE"
    assert (c.prompt_tokens, c.completion_tokens) == (3, 3)
    assert fn.calls[0].messages == (("user", "one two three"),)


def test_scripted_model_fail_when():
    model = ScriptedChatModel(["ok"], fail_when=lambda r: "boom" if "bad" in r.messages[-1][1] else None,
                              attempts_on_error=4)
    good = model.complete(ChatRequest.user("fine"))
    bad = model.complete(ChatRequest.user("bad one"))
    assert good.ok and good.text == "ok"
    assert not bad.ok and bad.error == "boom" and bad.attempts == 4 and bad.text == ""
    usage = TokenUsage()
    usage.add(good)
    usage.add(bad)
    assert usage.failed_calls == 1 and usage.retries == 3
