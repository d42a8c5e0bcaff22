"""OpenAIChatModel against the loopback fake server: replies, usage, retries, errors, keys;
ModelSettings validation and build_chat_model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatRequest, TokenUsage
from gpo_core.models.cache import CachedChatModel, ResponseCache
from gpo_core.models.local_llama import LocalLlamaChatModel
from gpo_core.models.openai_chat import (
    OpenAIChatModel,
    _is_retryable,
    check_connection,
    http_library,
    retry_after_seconds,
)
from gpo_core.models.provider import build_chat_model
from gpo_core.settings import ModelSettings, label_of
from gpo_testkit.fake_openai_server import FaultPlan

httpx = http_library()  # httpx, or httpx2 under openai 3.x
SENTINEL_KEY = "sk-SENTINEL-openai-test-0123456789abcdef"
QUESTION = "Which is heavier, 1 kg of iron or 2 kg of feathers? Options: (A) iron (B) feathers"


def make_model(server, **kwargs) -> OpenAIChatModel:
    kwargs.setdefault("api_key", SENTINEL_KEY)
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("backoff_s", 0.01)
    return OpenAIChatModel(kwargs.pop("model", "fake-model"), base_url=server.base_url, **kwargs)


def test_success_returns_text_and_usage_tokens(fake_server):
    model = make_model(fake_server)
    c = model.complete(ChatRequest.user(QUESTION, max_tokens=32))
    assert c.ok, c.error
    assert c.text in ("The answer is (A).", "The answer is (B).")
    assert c.attempts == 1 and not c.cached
    assert c.prompt_tokens == len(QUESTION.split())
    assert c.completion_tokens == len(c.text.split())
    assert c.latency_s > 0
    assert fake_server.chat_requests == 1


def test_request_body_carries_settings_and_no_key(fake_server):
    model = make_model(fake_server)
    model.complete(ChatRequest(messages=(("system", "Be brief."), ("user", "Hi")), temperature=0.7,
                               max_tokens=12, sample_index=3))
    body = fake_server.received[-1]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 12
    assert body["seed"] == 3
    assert SENTINEL_KEY not in repr(body)
    assert fake_server.requests_with_key == 1 and fake_server.requests_without_key == 0


def test_sample_index_changes_meta_prompt_candidates(fake_server):
    model = make_model(fake_server)
    meta = "Write a new instruction that improves the old one. <Prompt> goes here."
    texts = [model.complete(ChatRequest.user(meta, temperature=1.0, sample_index=i)).text for i in range(6)]
    assert all("<INS>" in t and "</INS>" in t for t in texts)
    assert len(set(texts)) > 1
    again = model.complete(ChatRequest.user(meta, temperature=1.0, sample_index=0)).text
    assert again == texts[0]


def test_429_with_retry_after_is_honoured(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "429_retry_after"}, retry_after_s=0.3))
    model = make_model(server)
    t0 = time.perf_counter()
    c = model.complete(ChatRequest.user("Hi"))
    elapsed = time.perf_counter() - t0
    assert c.ok, c.error
    assert c.attempts == 2 and c.retries == 1
    assert server.faults_injected["429_retry_after"] == 1
    assert elapsed >= 0.25  # waited (roughly) the server's Retry-After


def test_retry_after_is_capped_by_max_retry_wait(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "429_retry_after"}, retry_after_s=30))
    model = make_model(server, max_retry_wait_s=0.05)
    t0 = time.perf_counter()
    c = model.complete(ChatRequest.user("Hi"))
    assert c.ok and c.attempts == 2
    assert time.perf_counter() - t0 < 10  # did not wait the 30 s the server asked for


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset"])
def test_transient_faults_are_retried(make_fake_server, kind):
    server = make_fake_server(faults=FaultPlan(schedule={1: kind}))
    model = make_model(server)
    c = model.complete(ChatRequest.user("Is the sky blue?"))
    assert c.ok, c.error
    assert c.text in ("Yes", "No")
    assert c.attempts == 2
    assert server.faults_injected[kind] == 1
    usage = TokenUsage()
    usage.add(c)
    assert usage.retries == 1 and usage.failed_calls == 0


def test_hang_times_out_then_retry_succeeds(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "hang"}, hang_s=3.0))
    model = make_model(server, timeout_s=0.3)
    c = model.complete(ChatRequest.user("Hi"))
    assert c.ok, c.error
    assert c.attempts == 2


def test_hang_every_time_gives_timeout_error_after_bounded_attempts(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("hang",), hang_s=3.0))
    model = make_model(server, timeout_s=0.3, max_attempts=2)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok
    assert "timed out" in c.error
    assert c.attempts == 2 and c.text == ""


def test_persistent_server_error_stops_at_max_attempts(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("503",)))
    model = make_model(server, max_attempts=3)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok
    assert "HTTP 503" in c.error and "3 attempts" in c.error
    assert c.attempts == 3
    assert server.chat_requests == 3


def test_total_time_budget_bounds_retries(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("429_retry_after",), retry_after_s=0.4))
    model = make_model(server, max_attempts=50, max_total_s=1.0)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and "429" in c.error
    assert 1 < c.attempts < 50


def test_unknown_model_is_not_retried(make_fake_server):
    server = make_fake_server(known_models={"fake-model"})
    model = make_model(server, model="no-such-model")
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok
    assert "unknown model 'no-such-model'" in c.error
    assert c.attempts == 1
    assert server.chat_requests == 1


def test_bad_key_is_not_retried_and_not_echoed(make_fake_server):
    server = make_fake_server(required_key="sk-the-right-one-000000")
    model = make_model(server)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok
    assert "authentication failed" in c.error and "API key" in c.error
    assert SENTINEL_KEY not in c.error
    assert c.attempts == 1 and server.chat_requests == 1


def test_bad_request_is_not_retried(fake_server):
    model = make_model(fake_server)
    c = model.complete(ChatRequest(messages=()))
    assert not c.ok and "HTTP 400" in c.error
    assert c.attempts == 1


def test_malformed_json_is_an_error_after_bounded_attempts(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("malformed",)))
    model = make_model(server, max_attempts=3)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and "malformed" in c.error
    assert c.attempts == 3 and c.text == ""


def test_empty_choices_is_an_error_after_retries(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("empty_choices",)))
    model = make_model(server, max_attempts=2)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and "no choices" in c.error
    assert c.attempts == 2


@pytest.mark.parametrize("kind,what", [("empty", "content is empty"), ("null_content", "content is null"),
                                       ("blank", "content is blank"), ("list_content", "content is list, not text")])
def test_a_reply_without_text_is_a_failed_call_after_retries(make_fake_server, kind, what):
    # issue 15: an HTTP 200 with no usable text is no answer: never scored, never cached
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=(kind,)))
    model = make_model(server, max_attempts=3)
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and what in c.error and c.retryable and c.text == ""
    assert c.attempts == 3 and server.chat_requests == 3
    assert "gave up after 3 attempts" in c.error


@pytest.mark.parametrize("kind", ["empty", "null_content", "blank", "list_content"])
def test_a_reply_without_text_once_is_retried_and_answered(make_fake_server, kind):
    server = make_fake_server(faults=FaultPlan(schedule={1: kind}))
    c = make_model(server).complete(ChatRequest.user("Hi"))
    assert c.ok and c.text in ("Yes", "No") and c.attempts == 2


def test_usage_that_is_not_a_number_is_ignored_with_a_warning(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("bad_usage",)))
    c = make_model(server).complete(ChatRequest.user("Hi"))
    assert c.ok and c.text in ("Yes", "No") and c.attempts == 1
    assert (c.prompt_tokens, c.completion_tokens) == (0, 0)
    assert any("usage field 'prompt_tokens' is not a number ('lots')" in w for w in c.warnings), c.warnings
    assert any("'completion_tokens'" in w for w in c.warnings)


def test_a_huge_reply_is_cut_to_size_with_a_warning(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("long",)))
    c = make_model(server).complete(ChatRequest.user("Write. <Prompt>", max_tokens=400))
    assert c.ok and len(c.text) == 16 * 400   # 40,000 words sent; 16 characters a token kept
    assert any("cut to 6,400" in w for w in c.warnings), c.warnings


def test_insufficient_quota_is_not_retried():
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    body = {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}
    quota = openai.RateLimitError("quota", response=httpx.Response(429, request=request, json=body), body=body["error"])
    plain = openai.RateLimitError("rate", response=httpx.Response(429, request=request), body=None)
    assert not _is_retryable(quota)
    assert _is_retryable(plain)


def test_retry_after_header_parsing():
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == pytest.approx(0.25)
    assert retry_after_seconds(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "100", "retry-after": "9"})) == pytest.approx(0.1)
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 50 < retry_after_seconds(httpx.Headers({"Retry-After": future})) <= 61
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


def test_key_is_not_in_repr_or_attributes(fake_server):
    model = make_model(fake_server)
    assert SENTINEL_KEY not in repr(model)
    assert SENTINEL_KEY not in str(model)
    for name, value in vars(model).items():
        if name != "_client":
            assert SENTINEL_KEY not in repr(value), name


def test_missing_key_for_openai_endpoint_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="api_key"):
        OpenAIChatModel("gpt-4o-mini")


def test_compatible_endpoint_without_key_uses_placeholder(monkeypatch, fake_server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIChatModel("fake-model", base_url=fake_server.base_url)
    assert model.complete(ChatRequest.user("Hi")).ok


def test_concurrent_calls_run_in_parallel(make_fake_server):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow_responder(body):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return "Yes"

    server = make_fake_server(responder=slow_responder)
    model = make_model(server, max_concurrency=32)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: model.complete(ChatRequest.user(f"q{i}")), range(64)))
    assert all(c.ok and c.text == "Yes" for c in results)
    assert state["peak"] > 16  # the connection pool does not serialize the calls


def test_check_connection_reports_ok_and_failure(make_fake_server):
    server = make_fake_server()
    ok, message, seconds = check_connection(make_model(server))
    assert ok and "connected" in message and seconds >= 0
    bad = make_model(server, model="gone")
    server.known_models = {"fake-model"}
    ok, message, _ = check_connection(bad)
    assert not ok and "unknown model 'gone'" in message
    base = server.base_url
    server.stop()
    down = OpenAIChatModel("fake-model", base_url=base, api_key=SENTINEL_KEY)
    ok, message, seconds = check_connection(down, timeout_s=2.0)
    assert not ok and "cannot connect" in message
    assert SENTINEL_KEY not in message


# ---------------------------------------------------------------- ModelSettings / factory


@pytest.mark.parametrize("changes, setting", [
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"concurrency": 0}, "concurrency"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"backend": "anthropic"}, "backend"),
    ({"backend": "compatible", "model": "llama3", "base_url": None}, "base_url"),
    ({"backend": "compatible", "model": "llama3", "base_url": "localhost:8000"}, "base_url"),
    ({"backend": "openai", "model": " "}, "model"),
    ({"backend": "local", "model": "/no/such/file.gguf"}, "model"),
])
def test_model_spec_validation_names_the_setting(changes, setting):
    spec = ModelSettings(**changes)
    with pytest.raises(ConfigError) as info:
        spec.validate("engine", "task")
    assert info.value.setting == f"task_model.{setting}"
    # the same error names the flag on the command line and the widget in the app
    flag = label_of(ModelSettings, setting, "cli", "task")
    with pytest.raises(ConfigError, match=f"^setting '{flag}': ") as info:
        spec.validate("cli", "task")
    assert flag.startswith("--") and "_" not in flag
    with pytest.raises(ConfigError) as info:
        spec.validate("app", "task")
    assert info.value.setting.startswith("Task model · ")


def test_model_spec_round_trip_and_no_key_field():
    spec = ModelSettings(backend="compatible", model="llama3", base_url="http://127.0.0.1:8000/v1",
                     temperature=0.5, max_tokens=64, concurrency=4, timeout_s=10.0)
    data = spec.to_dict()
    assert "api_key" not in data
    assert ModelSettings.from_dict(data) == spec
    with pytest.raises(ConfigError, match="api_key"):
        ModelSettings.from_dict({**data, "api_key": "sk-x"})
    with pytest.raises(ConfigError, match="colour"):
        ModelSettings.from_dict({**data, "colour": "red"})
    with pytest.raises(ConfigError, match="max_tokens"):
        ModelSettings.from_dict({**data, "max_tokens": "many"})


def test_build_chat_model_for_compatible_server_with_cache(fake_server, tmp_path):
    spec = ModelSettings(backend="compatible", model="fake-model", base_url=fake_server.base_url, concurrency=5)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        model = build_chat_model(spec, api_key=SENTINEL_KEY, cache=cache)
        assert isinstance(model, CachedChatModel)
        assert model.name == "fake-model" and model.max_concurrency == 5
        first = model.complete(ChatRequest.user("Hi"))
        second = model.complete(ChatRequest.user("Hi"))
    assert first.ok and not first.cached
    assert second.cached and second.text == first.text
    assert fake_server.chat_requests == 1


def test_build_chat_model_local_does_not_load(monkeypatch):
    model = build_chat_model(ModelSettings(backend="local"))
    assert isinstance(model, LocalLlamaChatModel)
    assert model.name == "local:SmolLM2-135M-Instruct.Q4_1"
    assert model.max_concurrency == 1
    assert not model.loaded
