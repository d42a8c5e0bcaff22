"""ResponseCache / CachedChatModel (against the fake server and the scripted model) and
ScriptedChatModel itself."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gpo_core.models.base import ChatModel, ChatRequest, TokenUsage
from gpo_core.models.cache import (
    CachedChatModel,
    CacheEntry,
    CacheFileError,
    ResponseCache,
    cache_key,
    default_cache_dir,
    default_cache_path,
)
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


# Issue 15 -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["null_content", "empty", "blank", "list_content"])
def test_a_reply_without_text_is_never_cached_and_a_healthy_server_answers_later(make_fake_server, tmp_path, kind):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=(kind,)))
    model, cache = cached_openai(server, tmp_path / "r.sqlite", max_attempts=2)
    req = ChatRequest.user("Is water wet?")
    bad = model.complete(req)
    assert not bad.ok and ("empty reply" in bad.error or "not text" in bad.error)
    assert len(cache) == 0                     # nothing poisoned
    server.faults = FaultPlan()                # a healthy server: its answer, not a cached blank
    good = model.complete(req)
    assert good.ok and good.text in ("Yes", "No") and not good.cached
    assert model.complete(req).cached and len(cache) == 1
    cache.close()


def test_a_blank_row_left_by_an_older_version_is_not_served(tmp_path):
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        inner = ScriptedChatModel(["Paris"], name="m")
        model = CachedChatModel(inner, cache)
        req = ChatRequest.user("Capital of France?")
        cache.put(cache_key("m", req), "m", CacheEntry("", 3, 0))   # what the old cache stored for a null reply
        c = model.complete(req)
        assert c.text == "Paris" and not c.cached and len(inner.calls) == 1
        assert model.complete(req).cached          # the blank row was replaced by the answer


def test_cached_answers_are_scoped_to_the_key_that_paid_for_them(make_fake_server, tmp_path):
    server = make_fake_server(accepted_keys={"sk-user-a-0123456789"})
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        def user(key: str) -> CachedChatModel:
            inner = OpenAIChatModel("fake-model", api_key=key, base_url=server.base_url, backoff_s=0.01)
            return CachedChatModel(inner, cache, namespace=f"compatible|{server.base_url}|fake-model")

        a, b = user("sk-user-a-0123456789"), user("sk-user-b-refused-999")
        req = ChatRequest.user("Is water wet?")
        assert a.complete(req).ok and a.complete(req).cached
        refused = b.complete(req)          # B's own key is refused: B gets the 401, not A's answer
        assert not refused.ok and not refused.cached
        assert "HTTP 401" in refused.error and "check the API key" in refused.error
        assert server.refused == 1
        assert a.scope and b.scope and a.scope != b.scope
        assert user("sk-user-a-0123456789").complete(req).cached   # the same key: the same scope
        # the key is never in the file, the scope is an HMAC with the file's own salt
        assert "sk-user-a" not in (tmp_path / "r.sqlite").read_bytes().decode("latin-1")


def test_keyless_models_share_one_scope_and_scopes_survive_a_reopen(fake_server, tmp_path):
    path = tmp_path / "r.sqlite"
    with ResponseCache(path) as cache:
        salt = cache.salt
        keyless = OpenAIChatModel("fake-model", base_url=fake_server.base_url)   # a local server, no key
        assert CachedChatModel(keyless, cache).scope == ""
        assert CachedChatModel(ScriptedChatModel(["x"]), cache).scope == ""
        keyed = CachedChatModel(OpenAIChatModel("fake-model", api_key=SENTINEL_KEY, base_url=fake_server.base_url),
                                cache)
        scope = keyed.scope
    with ResponseCache(path) as cache:
        assert cache.salt == salt
        again = CachedChatModel(OpenAIChatModel("fake-model", api_key=SENTINEL_KEY, base_url=fake_server.base_url),
                                cache)
        assert again.scope == scope
    with ResponseCache(tmp_path / "other.sqlite") as other:   # another file: another salt, another scope
        assert CachedChatModel(OpenAIChatModel("fake-model", api_key=SENTINEL_KEY,
                                               base_url=fake_server.base_url), other).scope != scope


class _BrokenCache(ResponseCache):
    """A cache whose disk fails: reads or writes raise as SQLite does on a full disk."""

    def __init__(self, path, fail: str):
        super().__init__(path)
        self.fail = fail

    def get(self, key):
        if self.fail == "read":
            raise sqlite3.OperationalError("disk I/O error")
        return super().get(key)

    def put(self, key, model_name, entry):
        if self.fail == "write":
            raise sqlite3.OperationalError("database or disk is full")
        super().put(key, model_name, entry)


@pytest.mark.parametrize("fail,said", [("write", "could not be written (OperationalError: database or disk is full)"
                                                 ": the answer is used but not cached"),
                                       ("read", "could not be read (OperationalError: disk I/O error): answered by "
                                                "the model")])
def test_a_cache_that_cannot_read_or_write_is_a_warning_never_a_failed_call(tmp_path, fail, said):
    inner = ScriptedChatModel(["Paris"], name="m")
    with _BrokenCache(tmp_path / "r.sqlite", fail) as cache:
        c = CachedChatModel(inner, cache).complete(ChatRequest.user("Capital of France?"))
    assert c.ok and c.text == "Paris" and c.error is None
    assert len(c.warnings) == 1 and said in c.warnings[0] and str(tmp_path / "r.sqlite") in c.warnings[0]


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 600])
def test_a_corrupt_cache_file_is_one_line_naming_the_file_and_the_fix(tmp_path, content):
    path = tmp_path / "responses.sqlite"
    path.write_bytes(content)
    with pytest.raises(CacheFileError) as err:
        ResponseCache(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "move or delete it" in message and "--no-cache" in message


def test_a_table_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "responses.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE responses (key TEXT, something TEXT)")
    with pytest.raises(CacheFileError, match="not a response cache"):
        ResponseCache(path)


def test_the_cache_key_depends_on_the_scope():
    req = ChatRequest.user("x")
    assert cache_key("m", req) == cache_key("m", req, "")
    assert len({cache_key("m", req), cache_key("m", req, "a" * 32), cache_key("m", req, "b" * 32)}) == 3
