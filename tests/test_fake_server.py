"""The loopback OpenAI-compatible fake server, checked with plain HTTP (stdlib http.client)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

import pytest

from gpo_testkit.fake_openai_server import FAULT_KINDS, FakeOpenAIServer, FaultPlan, default_responder


def post(server, body, key: str | None = "sk-fake-key-123", timeout: float = 5.0):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def chat(text, **extra):
    return {"model": "fake-model", "messages": [{"role": "user", "content": text}], **extra}


def test_chat_completion_has_openai_shape(fake_server):
    resp, data = post(fake_server, chat("Is it raining? Answer Yes or No.", max_tokens=10))
    assert resp.status == 200
    body = json.loads(data)
    assert body["object"] == "chat.completion"
    msg = body["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"] in ("Yes", "No")
    usage = body["usage"]
    assert usage["prompt_tokens"] == 7
    assert usage["completion_tokens"] == 1
    assert usage["total_tokens"] == 8
    assert fake_server.base_url == f"http://127.0.0.1:{fake_server.port}/v1"


def test_models_listing_and_counters(fake_server):
    conn = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=5)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    listing = json.loads(resp.read())
    conn.close()
    assert resp.status == 200 and listing["data"][0]["id"]
    post(fake_server, chat("a"))
    post(fake_server, chat("b"), key=None)
    assert fake_server.requests_served == 3
    assert fake_server.requests_by_path == {"/v1/models": 1, "/v1/chat/completions": 2}
    assert fake_server.chat_requests == 2
    assert fake_server.requests_with_key == 1 and fake_server.requests_without_key == 2
    fake_server.reset_counters()
    assert fake_server.requests_served == 0 and not fake_server.received


def test_key_value_is_never_kept(fake_server):
    key = "sk-SENTINEL-server-test-abcdef"
    post(fake_server, chat("hello"), key=key)
    state = repr(vars(fake_server)) + repr(list(fake_server.received))
    assert key not in state


def test_default_responder_candidates_and_answers():
    meta = chat("Improve this instruction. <Prompt>", temperature=1.0)
    replies = {default_responder({**meta, "seed": s}) for s in range(8)}
    assert all(r.count("<INS>") == 1 and r.count("</INS>") == 1 for r in replies)
    assert len(replies) > 1
    assert default_responder({**meta, "seed": 3}) == default_responder({**meta, "seed": 3})
    answer = default_responder(chat("Pick one: (A) red (B) blue (C) green"))
    assert answer in {"The answer is (A).", "The answer is (B).", "The answer is (C)."}
    assert default_responder(chat("Is 2 even?")) in ("Yes", "No")


def test_custom_responder_and_max_tokens_truncation(make_fake_server):
    server = make_fake_server(responder=lambda body: "one two three four five")
    body = json.loads(post(server, chat("q", max_tokens=3))[1])
    assert body["choices"][0]["message"]["content"] == "one two three"
    assert body["choices"][0]["finish_reason"] == "length"


def test_schedule_faults_by_request_number(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "429_retry_after", 2: "503", 3: "500", 4: "429"},
                                               retry_after_s=1.5))
    statuses = []
    for _ in range(5):
        resp, _ = post(server, chat("q"))
        statuses.append(resp.status)
        if resp.status == 429 and not statuses[:-1]:
            assert resp.getheader("Retry-After") == "1.5"
    assert statuses == [429, 503, 500, 429, 200]
    assert server.faults_injected == {"429_retry_after": 1, "503": 1, "500": 1, "429": 1}


def test_reset_and_hang_faults(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "reset", 2: "hang"}, hang_s=5.0))
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        post(server, chat("q"))
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):
        post(server, chat("q"), timeout=0.3)
    assert time.perf_counter() - t0 < 4
    assert post(server, chat("q"))[0].status == 200


def test_body_faults(make_fake_server):
    server = make_fake_server(faults=FaultPlan(schedule={1: "malformed", 2: "empty", 3: "null_content",
                                                         4: "no_tags", 5: "long", 6: "empty_choices"}))
    meta = chat("Write a better instruction. <Prompt>", max_tokens=50)
    resp, data = post(server, meta)
    assert resp.status == 200
    with pytest.raises(ValueError):
        json.loads(data)
    assert json.loads(post(server, meta)[1])["choices"][0]["message"]["content"] == ""
    assert json.loads(post(server, meta)[1])["choices"][0]["message"]["content"] is None
    no_tags = json.loads(post(server, meta)[1])["choices"][0]["message"]["content"]
    assert no_tags and "<INS>" not in no_tags
    long = json.loads(post(server, meta)[1])
    assert len(long["choices"][0]["message"]["content"].split()) == 5000
    assert long["usage"]["completion_tokens"] == 5000
    assert json.loads(post(server, meta)[1])["choices"] == []
    assert "<INS>" in json.loads(post(server, meta)[1])["choices"][0]["message"]["content"]


def test_fault_rate_is_seeded(make_fake_server):
    def pattern(seed):
        server = make_fake_server(faults=FaultPlan(rate=0.5, kinds=("500", "503")), seed=seed)
        return [post(server, chat("q"))[0].status for _ in range(20)]

    a, b = pattern(7), pattern(7)
    assert a == b
    assert {500, 503} & set(a) and 200 in a


def test_unknown_model_and_required_key(make_fake_server):
    server = make_fake_server(known_models={"fake-model"}, required_key="sk-right")
    resp, data = post(server, {**chat("q"), "model": "other"}, key="sk-right")
    assert resp.status == 404 and json.loads(data)["error"]["code"] == "model_not_found"
    assert post(server, chat("q"), key="sk-wrong")[0].status == 401
    assert post(server, chat("q"), key="sk-right")[0].status == 200


def test_fault_plan_validation():
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(schedule={1: "explode"})
    assert "reset" in FAULT_KINDS


def test_stop_releases_port_and_hanging_requests():
    server = FakeOpenAIServer(faults=FaultPlan(rate=1.0, kinds=("hang",), hang_s=30)).start()
    port = server.port
    t0 = time.perf_counter()
    import threading

    errors = []
    t = threading.Thread(target=lambda: errors.append(_safe_post(server)))
    t.start()
    time.sleep(0.2)
    server.stop()
    t.join(timeout=5)
    assert not t.is_alive() and time.perf_counter() - t0 < 6
    with FakeOpenAIServer(port=port) as again:  # the port can be bound again
        assert again.port == port


def _safe_post(server):
    try:
        return post(server, chat("q"), timeout=10)[0].status
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


def test_command_line_serves_until_stopped():
    proc = subprocess.Popen([sys.executable, "-m", "gpo_testkit.fake_openai_server", "--port", "0",
                             "--latency-ms", "5", "--fault-rate", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line
        base = line.split()[4]
        port = int(base.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat("Is it? Yes or No")),
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode is not None
