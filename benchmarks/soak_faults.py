"""Soak - faults injected and survived, steps lost (issue 5).

Runs several seeded GPO runs through the engine's real OpenAI path (OpenAIChatModel ->
openai SDK -> HTTP) against the loopback fake server with a fault rate (default 30%) of
every kind: 429 with and without Retry-After, 500, 503, connection reset, a hang past the
client timeout, malformed JSON, empty content, null content, empty choices, content
without tags, a reply 100x longer than asked. One dev example always gets HTTP 503 (it must
be scored 0 with its error, never dropped). Halfway through each run the endpoint goes down
(the server stops) and comes back: the run must stop with EndpointDownError and resume.

Checks after each run, from run.json on disk: every step decided and saved (steps lost =
expected - saved), every scored prompt has one record per dev example (records dropped),
and the retries the run recorded equal the extra requests the server saw.

Usage: .venv/bin/python benchmarks/soak_faults.py [--runs 5] [--steps 4] [--rate 0.3]
Prints one line per run, then the figure as JSON on the last line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, when run from elsewhere

from gpo_core.errors import EndpointDownError  # noqa: E402
from gpo_core.models.base import TokenUsage  # noqa: E402
from gpo_core.models.openai_chat import OpenAIChatModel  # noqa: E402
from gpo_core.optimizer.session import GPOSession, Models  # noqa: E402
from gpo_core.runs.repository import load_run  # noqa: E402
from gpo_core.tasks.task import Example, Task, TaskSplits  # noqa: E402
from gpo_testkit.embedders import HashingEmbedder  # noqa: E402
from gpo_testkit.fake_openai_server import FAULT_KINDS, FakeOpenAIServer, FaultPlan  # noqa: E402

from benchlib import bench_settings  # noqa: E402

FAIL_MARK = "ZZ-ALWAYS-FAILS"
RETRIED = {"429_retry_after", "429", "500", "503", "reset", "hang", "malformed", "empty_choices"}
MAX_ATTEMPTS = 4


def examples(n: int, start: int) -> list[Example]:
    out = []
    for i in range(start, start + n):
        letter = "ABCD"[i % 4]
        out.append(Example(f"Item {i}: which colour is listed under the letter {letter}? "
                           "Options: (A) red (B) green (C) blue (D) yellow", f"({letter})"))
    return out


def models_for(url: str) -> Models:
    def m(name: str) -> OpenAIChatModel:
        return OpenAIChatModel(name, api_key="sk-soak", base_url=url, timeout_s=1.0, max_attempts=MAX_ATTEMPTS,
                               backoff_s=0.02, max_retry_wait_s=0.5, max_total_s=8.0, max_concurrency=8)
    return Models(m("fake-task"), m("fake-optimizer"), HashingEmbedder())


def one_run(seed: int, steps: int, rate: float, dev_n: int, workdir: Path) -> dict:
    dev = examples(dev_n - 1, 0) + [Example(f"{FAIL_MARK}: which colour is listed under the letter B? "
                                            "Options: (A) red (B) green (C) blue (D) yellow", "(B)")]
    test, train = examples(4, 100), examples(12, 200)
    plan = FaultPlan(rate=rate, kinds=FAULT_KINDS, retry_after_s=0.1, hang_s=1.6, by_prompt={FAIL_MARK: "503"})
    server = FakeOpenAIServer(faults=plan, seed=seed).start()
    port, url = server.port, server.base_url
    injected: Counter[str] = Counter()
    requests = 0
    settings = bench_settings(8, url, steps=steps, candidates=4, dev_size=len(dev), test_size=len(test), seed=seed,
                              optimizer_max_tokens=60, task_max_tokens=16)
    run_dir = workdir / f"run{seed}"
    session = GPOSession.create(Task("colours", dev + test + train, answer_type="multiple_choice"), settings,
                                models_for(url), run_dir=run_dir, splits=TaskSplits(train, dev, test, train))
    down_at = max(1, steps // 2)
    went_down = resumed = False

    def on_step(step):
        nonlocal server, requests, went_down
        if step.step == down_at and not went_down:
            went_down = True
            requests += server.chat_requests
            injected.update(server.faults_injected)
            server.stop()

    t0 = time.perf_counter()
    try:
        session.run_auto(on_step=on_step)
    except EndpointDownError:
        server = FakeOpenAIServer(faults=plan, seed=seed + 1000, port=port).start()
        session.run_auto()
        resumed = True
    seconds = time.perf_counter() - t0
    requests += server.chat_requests
    injected.update(server.faults_injected)
    server.stop()

    saved = load_run(run_dir)
    usage = TokenUsage(**{k: v for k, v in saved.initial["usage"].items() if k in TokenUsage.__dataclass_fields__})
    for s in saved.steps:
        usage = usage.merge(s.usage)
    keys = ["initial"] + [c.id for s in saved.steps for c in s.candidates if c.status in ("scored", "failed")]
    dropped = sum(len(dev) - len(session.records(k, "dev")) for k in keys)
    fail_scored_zero = all(any(FAIL_MARK in r["input"] and r["error"] and not r["correct"]
                               for r in session.records(k, "dev")) for k in keys)
    no_candidate_with_reason = sum(1 for s in saved.steps for c in s.optimizer_calls
                                   if not c.candidate_ids and c.reason)
    return {"seed": seed, "steps_expected": steps, "steps_saved": len(saved.decided_steps),
            "endpoint_down_and_resumed": went_down and resumed, "requests": requests, "faults": dict(injected),
            "retries": usage.retries, "failed_calls": usage.failed_calls, "calls": usage.calls,
            "retries_match_server": usage.calls + usage.retries == requests - 0,
            "records_dropped": dropped, "always_failing_example_scored_0_with_error": fail_scored_zero,
            "optimizer_replies_without_candidate_and_with_reason": no_candidate_with_reason,
            "max_attempts_seen": max([c.attempts for s in saved.steps for c in s.optimizer_calls] +
                                     [r["attempts"] for k in keys for r in session.records(k, "dev")]),
            "seconds": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--dev", type=int, default=8)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.runs):
            row = one_run(seed, a.steps, a.rate, a.dev, Path(tmp))
            rows.append(row)
            print(f"run {seed}: {row['steps_saved']}/{row['steps_expected']} steps saved, {row['requests']} requests, "
                  f"{sum(row['faults'].values())} faults, {row['retries']} retries, "
                  f"{row['failed_calls']} failed calls, "
                  f"down+resumed {row['endpoint_down_and_resumed']}, {row['seconds']} s", flush=True)
    faults: Counter[str] = Counter()
    for row in rows:
        faults.update(row["faults"])
    figure = {
        "figure": "soak_faults", "runs": a.runs, "fault_rate": a.rate,
        "requests": sum(r["requests"] for r in rows),
        "faults_injected_by_kind": dict(sorted(faults.items())),
        "faults_injected": sum(faults.values()),
        "faults_retried_by_client": sum(n for k, n in faults.items() if k in RETRIED),
        "retries_recorded": sum(r["retries"] for r in rows),
        "calls_failed_for_good": sum(r["failed_calls"] for r in rows),
        "endpoint_outages_survived": sum(r["endpoint_down_and_resumed"] for r in rows),
        "steps_expected": sum(r["steps_expected"] for r in rows),
        "steps_lost": sum(r["steps_expected"] - r["steps_saved"] for r in rows),
        "records_dropped": sum(r["records_dropped"] for r in rows),
        "retries_match_server_every_run": all(r["retries_match_server"] for r in rows),
        "always_failing_example_scored_0_every_run": all(r["always_failing_example_scored_0_with_error"] for r in rows),
        "max_attempts_seen": max(r["max_attempts_seen"] for r in rows), "max_attempts_allowed": MAX_ATTEMPTS,
    }
    from benchlib import emit

    emit(figure)


if __name__ == "__main__":
    main()
