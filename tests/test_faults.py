"""Model faults through the real OpenAI path: OpenAIChatModel (openai SDK + tenacity) against
the loopback FakeOpenAIServer with every fault kind mixed in at a 30% rate.

What a user checks: the run finishes and every step is saved; retries are counted per step
and match what the server saw; an example whose calls always fail is kept with its error
(never dropped) and left out of the accuracy, not counted as a wrong answer; an optimizer
reply without usable text gives no candidate and a recorded reason; retries are bounded in
count and time; an endpoint that is down stops the step with a clear error and the run
resumes once the endpoint is back (in-process and CLI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpo_core.errors import EndpointDownError
from gpo_core.models.base import ChatRequest, TokenUsage
from gpo_core.models.openai_chat import OpenAIChatModel
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.optimizer.templates import PLACEHOLDER
from gpo_core.runs.repository import load_run
from gpo_core.tasks.task import Example, Task, TaskSplits
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.fake_openai_server import FAULT_KINDS, FakeOpenAIServer, FaultPlan, default_responder

from engine_fakes import run_settings

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-faults-not-a-real-key"
#: An example whose every call gets HTTP 503: it must be kept with its error, not dropped,
#: and not counted as a wrong answer.
FAIL_MARK = "ZZ-ALWAYS-FAILS"
MAX_ATTEMPTS = 4
TIMEOUT_S = 1.0
HANG_S = 1.6  # a hang outlasts the client timeout
MAX_TOTAL_S = 8.0
#: Fault kinds after which the client sends the request again.
RETRIED_KINDS = {"429_retry_after", "429", "500", "503", "reset", "hang", "malformed", "empty_choices",
                 "empty", "null_content", "blank", "list_content"}  # issue 15: a 200 without text is no answer
COLOURS = ("red", "green", "blue", "yellow")


def mc_examples(n: int, start: int = 0) -> list[Example]:
    """Four-option questions ("(A) red (B) green ...") whose target letter cycles."""
    out = []
    for i in range(start, start + n):
        letter = "ABCD"[i % 4]
        opts = " ".join(f"({letter_}) {c}" for letter_, c in zip("ABCD", COLOURS))
        out.append(Example(f"Item {i}: which colour is listed under the letter {letter}? Options: {opts}",
                           f"({letter})"))
    return out


def mc_task(examples: list[Example]) -> Task:
    return Task(name="colours", examples=examples, answer_type="multiple_choice", instruction_position="Q_end")


def openai_model(server: FakeOpenAIServer, name: str, **kw) -> OpenAIChatModel:
    kw = {"api_key": KEY, "timeout_s": TIMEOUT_S, "max_attempts": MAX_ATTEMPTS, "backoff_s": 0.02,
          "max_retry_wait_s": 0.5, "max_total_s": MAX_TOTAL_S, "max_concurrency": 8} | kw
    return OpenAIChatModel(name, base_url=server.base_url, **kw)


def server_models(server: FakeOpenAIServer, **kw) -> Models:
    return Models(openai_model(server, "fake-task", **kw), openai_model(server, "fake-optimizer", **kw),
                  HashingEmbedder())


#: What optimizer sample 1 of every step answers: text, but no usable instruction.
UNUSABLE = "OK."


def empty_second_sample(body: dict) -> str:
    """Default replies, except that optimizer sample 1 of every step answers with no usable
    instruction (an empty reply would be a failed call, retried: see test_hostile_endpoints)."""
    text = "\n".join(m.get("content") or "" for m in body.get("messages", []))
    if PLACEHOLDER in text and body.get("seed") == 1:
        return UNUSABLE
    return default_responder(body)


def run_usage(state) -> TokenUsage:
    """Calls, retries and failures of the whole run: the starting prompt plus every step."""
    total = TokenUsage(**{k: v for k, v in state.initial["usage"].items() if k in TokenUsage.__dataclass_fields__})
    for s in state.steps:
        total = total.merge(s.usage)
    return total


def test_a_run_with_30_percent_faults_finishes_and_loses_nothing(make_fake_server, tmp_path):
    dev = mc_examples(8)
    # on test: the chosen prompts are scored on it, so the always-failing example meets every
    # step's decision (on dev it would leave every candidate incomplete, and none chosen)
    test = mc_examples(3, start=100) + [Example(f"{FAIL_MARK}: which colour is listed under the letter B? "
                                                "Options: (A) red (B) green (C) blue (D) yellow", "(B)")]
    train = mc_examples(12, start=200)
    # 30% of requests get a random fault of any kind; on top, a few scheduled request numbers
    # make sure every kind occurs at least once; every call on FAIL_MARK gets HTTP 503.
    every_kind = {6 * (i + 1): kind for i, kind in enumerate(FAULT_KINDS)}
    plan = FaultPlan(rate=0.3, kinds=FAULT_KINDS, schedule=every_kind, retry_after_s=0.1, hang_s=HANG_S,
                     by_prompt={FAIL_MARK: "503"})
    server = make_fake_server(faults=plan, seed=7, responder=empty_second_sample)
    cfg = run_settings(steps=3, candidates=4, k=3, dev_size=len(dev), test_size=len(test), seed=0,
                    optimizer_max_tokens=60, task_max_tokens=16)
    run_dir = tmp_path / "run"
    session = GPOSession.create(mc_task(dev + test + train), cfg, server_models(server), run_dir=run_dir,
                                run_id="faults", splits=TaskSplits(train, dev, test, train))
    session.run_auto()

    # Every step is complete and saved.
    saved = load_run(run_dir)
    assert len(saved.steps) == 3 and [s.step for s in saved.decided_steps] == [1, 2, 3]
    assert saved.pending_step is None
    assert saved.to_dict() == session.state.to_dict()

    # Faults of every kind were injected (30% of requests, seeded).
    injected = server.faults_injected
    forced = sum(1 for body in server.received if FAIL_MARK in json.dumps(body))
    others = server.chat_requests - forced
    assert 0.2 * others <= sum(injected.values()) - forced <= 0.5 * others
    assert set(injected) == set(FAULT_KINDS), injected

    # Retries are counted per step, and they account for every request the server saw.
    usage = run_usage(saved)
    assert server.chat_requests == usage.calls + usage.retries
    retried_faults = sum(n for kind, n in injected.items() if kind in RETRIED_KINDS)
    assert usage.retries + usage.failed_calls == retried_faults
    chosen = [(s, s.candidate(s.decision.candidate_id)) for s in saved.steps if s.decision.candidate_id]
    assert chosen
    for s, c in chosen:
        # the always-failing test call was sent to the limit twice: in the pass and in the retry pass
        assert s.usage_test.retries >= 2 * (MAX_ATTEMPTS - 1) and s.usage_test.failed_calls >= 2
        assert c.test_errors >= 1

    # The always-failing example is kept with its error, never dropped, and not counted.
    keys = [("initial", "test")] + [(c.id, "test") for _, c in chosen]
    for key, split in keys:
        records = session.records(key, split)
        assert len(records) == len(test), key
        failing = [r for r in records if FAIL_MARK in r["input"]]
        assert len(failing) == 1
        r = failing[0]
        assert r["correct"] is False and r["parsed_answer"] is None
        assert "HTTP 503" in r["error"] and f"gave up after {MAX_ATTEMPTS} attempts" in r["error"]
        assert r["attempts"] == MAX_ATTEMPTS
        answered = [r for r in records if not r["error"]]
        accuracy = sum(r["correct"] for r in answered) / len(answered)
        want = saved.initial["test_accuracy"] if key == "initial" else next(
            c.test_accuracy for _, c in chosen if c.id == key)
        assert want == pytest.approx(accuracy)   # correct / answered, not correct / all
    assert saved.initial["test_errors"] >= 1
    keys += [("initial", "dev")] + [(c.id, "dev") for s in saved.steps for c in s.candidates
                                    if c.status in ("scored", "incomplete", "failed")]
    for s in saved.steps:
        for c in s.candidates:
            if c.status in ("scored", "incomplete", "failed"):
                assert c.dev_n == len(dev) and len(session.records(c.id, "dev")) == len(dev)
                assert (c.status == "scored") == (c.dev_errors == 0)

    # Retries are bounded in count: no call made more than MAX_ATTEMPTS attempts.
    for key, split in keys:
        assert all(1 <= r["attempts"] <= MAX_ATTEMPTS for r in session.records(key, split) if not r["cached"])
    assert all(1 <= call.attempts <= MAX_ATTEMPTS for s in saved.steps for call in s.optimizer_calls)

    # An optimizer reply with no usable text yields no candidate and a recorded reason; the
    # step goes on with the other samples.
    calls = [call for s in saved.steps for call in s.optimizer_calls]
    assert all(call.reason for call in calls if not call.candidate_ids)
    empty = [call for call in calls if call.reply == UNUSABLE and call.error is None]
    assert empty and all(not call.candidate_ids and call.reason.startswith("no usable instruction") for call in empty)
    for s in saved.steps:
        assert len(s.optimizer_calls) == cfg.optimizer.candidates
        assert s.decision.kind in ("auto", "no_candidate")
    assert any(s.decision.kind == "auto" for s in saved.steps)
    print(f"\nfaults injected over {server.chat_requests} requests: {dict(injected)}; "
          f"retries {usage.retries}, failed calls {usage.failed_calls}")


def test_retries_are_bounded_in_time_when_every_attempt_hangs(make_fake_server):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("hang",), hang_s=5.0))
    model = openai_model(server, "fake-task", timeout_s=0.5, max_attempts=10, max_total_s=1.2)
    t0 = time.perf_counter()
    c = model.complete(ChatRequest.user("Is 2 even?"))
    elapsed = time.perf_counter() - t0
    assert c.error and "timed out" in c.error
    assert 2 <= c.attempts < 10  # stopped by the time budget, not by the attempt cap
    assert elapsed < 1.2 + 0.5 + 1.0  # max_total_s + one timeout + slack


def test_endpoint_down_mid_run_stops_the_step_and_the_run_resumes(make_fake_server, tmp_path):
    server = make_fake_server()
    examples = mc_examples(20)
    cfg = run_settings(steps=3, candidates=2, dev_size=4, test_size=2, seed=1, task_max_tokens=16,
                    optimizer_max_tokens=60)
    run_dir = tmp_path / "run"
    session = GPOSession.create(mc_task(examples), cfg, server_models(server, backoff_s=0.01), run_dir=run_dir,
                                run_id="down")

    port = server.port

    def endpoint_goes_down(step):
        if step.step == 1:
            server.stop()  # nothing listens any more

    with pytest.raises(EndpointDownError) as err:
        session.run_auto(on_step=endpoint_goes_down)
    message = str(err.value)
    assert "\n" not in message and "looks down" in message and "cannot connect" in message, message
    saved = load_run(run_dir)
    assert len(saved.decided_steps) == 1 and saved.pending_step is None  # step 1 kept, step 2 not half-saved
    step1 = saved.steps[0].to_dict()

    make_fake_server(port=port)  # the endpoint is back at the same address
    session.run_auto()  # the same session goes on (as the app's "Run N steps" clicked again)
    final = load_run(run_dir)
    assert [s.step for s in final.decided_steps] == [1, 2, 3]
    assert final.steps[0].to_dict() == step1


def _cli(args: list[str], home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GPO_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "OPENAI_API_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "gpo_core", "run", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def _write_task_csv(path: Path, examples: list[Example]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["input", "target"])
        for e in examples:
            w.writerow([e.input, e.target])
    return path


def test_cli_exits_2_with_one_line_when_the_endpoint_fails_and_resumes(tmp_path):
    task = _write_task_csv(tmp_path / "colours.csv", mc_examples(20))
    out = tmp_path / "run"
    # every optimizer call (its meta-prompt holds the <Prompt> placeholder) gets HTTP 503
    server = FakeOpenAIServer(faults=FaultPlan(by_prompt={PLACEHOLDER: "503"})).start()
    args = ["--task", str(task), "--out", str(out), "--backend", "openai", "--base-url", server.base_url,
            "--model", "fake-model", "--steps", "2", "--candidates", "2", "--dev-size", "4", "--test-size", "2",
            "--selection", "recency", "--answer-type", "multiple_choice", "--cache-dir", str(tmp_path / "cache"),
            "--timeout", "2"]
    try:
        r = _cli(args, tmp_path)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
        assert r.stderr.startswith("error: every optimizer call failed") and "HTTP 503" in r.stderr
        saved = json.loads((out / "run.json").read_text())
        assert saved["initial"] is not None and saved["steps"] == []  # the scored start is kept
        initial = saved["initial"]

        # the endpoint recovers, though 30% of its replies still fail once in a while
        server.faults = FaultPlan(rate=0.3, kinds=("500", "429", "reset"))
        r = _cli([*args, "--resume"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert "resuming run" in r.stdout and "0 of 2 steps done" in r.stdout
    finally:
        server.stop()
    # the retries of each step are printed, as recorded in the run
    printed = [int(m) for m in re.findall(r"cached, (\d+) retries\)", r.stdout)]
    recorded = [sum(s[k]["retries"] for k in ("usage_optimizer", "usage_dev", "usage_test"))
                for s in json.loads((out / "run.json").read_text())["steps"]]
    assert printed == recorded and sum(recorded) > 0, r.stdout
    final = json.loads((out / "run.json").read_text())
    assert final["initial"] == initial
    assert [s["step"] for s in final["steps"]] == [1, 2] and all(s["decision"] for s in final["steps"])
