"""Issue 15: hostile endpoints never become scores.

A loopback OpenAI-compatible server (:class:`gpo_testkit.fake_openai_server.FakeOpenAIServer`)
switched between reply modes: content that is null, a list, empty or blank; usage fields
that are not numbers; a reply with 100 tagged spans; replies 100x longer than asked; death
mid-step; a key refused with HTTP 401. The engine runs its real path against it
(OpenAIChatModel through the openai SDK, the SQLite response cache, GPOSession saving
run.json). Each case checks the number or the message a user would see, and that the
steps saved before the fault are intact.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gpo_core.errors import CallCeilingError, ConfigError, EndpointDownError, IncompleteStepError
from gpo_core.models.base import ChatRequest
from gpo_core.models.cache import CachedChatModel, ResponseCache
from gpo_core.models.openai_chat import OpenAIChatModel
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.ceiling import CallMeter, MeteredChatModel, step_call_ceiling
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.optimizer.templates import PLACEHOLDER
from gpo_core.runs.repository import load_run
from gpo_core.scoring.evaluation import evaluate_many
from gpo_core.settings import ModelSettings
from gpo_core.tasks.task import Example, Task, TaskSplits
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.fake_openai_server import FakeOpenAIServer, FaultPlan
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import run_settings

GOOD_KEY = "sk-hostile-good-key-000111222"
BAD_KEY = "sk-hostile-refused-key-999888"
COLOURS = ("red", "green", "blue", "yellow")
#: In every test example (never in dev, train or a meta-prompt): lets a test fail test calls only.
TEST_MARK = "TESTQ"


def _question(i: int, mark: str = "Item") -> Example:
    letter = "ABCD"[i % 4]
    opts = " ".join(f"({x}) {c}" for x, c in zip("ABCD", COLOURS))
    return Example(f"{mark} {i}: which colour is listed under the letter {letter}? Options: {opts}", f"({letter})")


def splits(dev: int = 4, test: int = 2) -> TaskSplits:
    return TaskSplits([_question(i) for i in range(200, 212)], [_question(i) for i in range(dev)],
                      [_question(100 + i, TEST_MARK) for i in range(test)], [_question(i) for i in range(200, 212)])


def task(sp: TaskSplits) -> Task:
    return Task(name="colours", examples=sp.train + sp.dev + sp.test, answer_type="multiple_choice",
                instruction_position="Q_end")


def chat(server: FakeOpenAIServer, name: str, key: str | None = GOOD_KEY, **kw) -> OpenAIChatModel:
    kw = {"timeout_s": 3.0, "max_attempts": 2, "backoff_s": 0.01, "max_retry_wait_s": 0.1, "max_total_s": 10.0,
          "max_concurrency": 4} | kw
    return OpenAIChatModel(name, api_key=key, base_url=server.base_url, **kw)


def models(server: FakeOpenAIServer, key: str | None = GOOD_KEY, cache: ResponseCache | None = None) -> Models:
    task_m, opt = chat(server, "fake-task", key), chat(server, "fake-optimizer", key)
    if cache is not None:
        ns = f"compatible|{server.base_url}|"
        task_m = CachedChatModel(task_m, cache, namespace=ns + "fake-task")
        opt = CachedChatModel(opt, cache, namespace=ns + "fake-optimizer")
    return Models(task_m, opt, HashingEmbedder())


def session(server: FakeOpenAIServer, run_dir: Path, key: str | None = GOOD_KEY, cache: ResponseCache | None = None,
            dev: int = 4, test: int = 2, **flat) -> GPOSession:
    flat = {"steps": 2, "candidates": 2, "k": 2, "seed": 0, "selection": "recency", "task_max_tokens": 16,
            "optimizer_max_tokens": 60, "concurrency": 4} | flat
    sp = splits(dev, test)
    cfg = run_settings(dev_size=dev, test_size=test, **flat)
    return GPOSession.create(task(sp), cfg, models(server, key, cache), run_dir=run_dir, run_id=run_dir.name,
                             splits=sp)


def nothing_scored(run_dir: Path) -> bool:
    """No score saved in ``run_dir`` (no run file yet, or one without a starting score)."""
    return not (run_dir / "run.json").exists() or load_run(run_dir).initial is None


def clean_run(tmp_path: Path, steps: int = 1, **kw) -> GPOSession:
    """The same run on a healthy server without a cache: the numbers a user should get."""
    with FakeOpenAIServer() as healthy:
        s = session(healthy, tmp_path / "clean", **kw)
        s.start()
        s.run_auto(steps)
    return s


# 1. Poisoned cache ------------------------------------------------------------------------
@pytest.mark.parametrize("kind,said", [("null_content", "content is null"), ("list_content", "content is list"),
                                       ("empty", "content is empty"), ("blank", "content is blank")])
def test_a_reply_without_text_is_a_failed_call_never_a_cached_zero(make_fake_server, tmp_path, kind, said):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=(kind,)))
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        s = session(server, tmp_path / "run", cache=cache)
        with pytest.raises(EndpointDownError) as err:      # nothing answered: one clear line, no score
            s.start()
        assert said in str(err.value) and "\n" not in str(err.value)
        assert len(cache) == 0 and nothing_scored(tmp_path / "run")
        assert server.chat_requests == 2 * 4               # each dev call: tried twice (the client's attempts)

        server.faults = FaultPlan()                         # later, a healthy server and the same cache
        init = session(server, tmp_path / "later", cache=cache).start()
    clean = clean_run(tmp_path, steps=0).state.initial
    assert init["dev_accuracy"] == clean["dev_accuracy"] and init["test_accuracy"] == clean["test_accuracy"]
    assert init["usage"]["cached_calls"] == 0 and init["dev_errors"] == init["test_errors"] == 0


@pytest.mark.parametrize("kind", ["null_content", "list_content", "empty", "blank"])
def test_a_reply_without_text_now_and_then_is_retried_and_the_score_is_right(make_fake_server, tmp_path, kind):
    server = make_fake_server(faults=FaultPlan(schedule={1: kind, 3: kind, 5: kind}))
    init = session(server, tmp_path / "run").start()
    clean = clean_run(tmp_path, steps=0).state.initial
    assert init["dev_accuracy"] == clean["dev_accuracy"] and init["test_accuracy"] == clean["test_accuracy"]
    assert server.faults_injected[kind] == 3 and init["usage"]["retries"] >= 2      # each one was sent again
    assert init["dev_errors"] == init["test_errors"] == 0


# 5 (part). Usage that is not a number ---------------------------------------------------------
def test_usage_that_is_not_a_number_is_ignored_with_a_warning(make_fake_server, tmp_path):
    server = make_fake_server(faults=FaultPlan(rate=1.0, kinds=("bad_usage",)))
    s = session(server, tmp_path / "run")
    init = s.start()
    s.run_auto(1)
    clean = clean_run(tmp_path)
    step, want = s.state.steps[0], clean.state.steps[0]
    assert init["dev_accuracy"] == clean.state.initial["dev_accuracy"]
    assert [c.dev_accuracy for c in step.candidates] == [c.dev_accuracy for c in want.candidates]
    assert step.usage.failed_calls == 0 and step.usage.total_tokens == 0     # no call failed; no token counted
    note = "usage field 'prompt_tokens' is not a number ('lots'): ignored, counted as 0 tokens"
    assert any(note in w for w in step.warnings), step.warnings
    assert any(note in w for w in init["warnings"])
    assert load_run(tmp_path / "run").steps[0].warnings == step.warnings          # saved, so shown after reload


# 4. Unbounded calls ---------------------------------------------------------------------------
def test_a_reply_with_100_tagged_spans_gives_at_most_n_candidates(make_fake_server, tmp_path):
    server = make_fake_server(faults=FaultPlan(by_prompt={PLACEHOLDER: "many_tags"}))
    s = session(server, tmp_path / "run", candidates=2, dev=4, optimizer_max_tokens=1000)
    s.start()
    before = server.chat_requests
    step = s.propose()
    assert len(step.candidates) == 2                                   # --candidates 2, not 200
    assert [c.dropped for c in step.optimizer_calls] == [99, 99]
    assert all("dropped" in (c.reason or "") for c in step.optimizer_calls)
    assert "optimizer reply 1: 99 candidate(s) beyond the 2 a step allows were dropped" in step.warnings
    spent = server.chat_requests - before
    assert spent == 2 + 2 * 4                                          # 2 optimizer calls + 2 candidates x 4 dev
    assert spent <= step_call_ceiling(s.settings, 4, 2)
    saved = load_run(tmp_path / "run").steps[0]
    assert [c.dropped for c in saved.optimizer_calls] == [99, 99]


def test_the_call_ceiling_stops_a_runaway_step_with_a_clear_error():
    # N + 2 * p * (N * dev + test): 8 + 2 * (8 * 48 + 16) = 808 (single); the reference protocol doubles p
    settings = run_settings(candidates=8, dev_size=48, test_size=16)
    assert step_call_ceiling(settings, 48, 16) == 808
    assert step_call_ceiling(run_settings(candidates=8, protocol="reference"), 48, 16) == 8 + 4 * (8 * 48 + 16)
    model = MeteredChatModel(ScriptedChatModel(["The answer is (A)."] * 20, max_concurrency=4), CallMeter(3, "step 2"))
    examples = [_question(i) for i in range(5)]
    with pytest.raises(CallCeilingError) as err:   # not turned into failed calls: the step stops
        evaluate_many(["Answer."], examples, model, answer_type="multiple_choice", position="Q_end")
    assert "step 2 reached its ceiling of 3 model calls" in str(err.value)
    assert model.meter.calls == 3


# Huge replies ---------------------------------------------------------------------------------
def test_a_huge_reply_is_cut_and_gives_no_candidate_and_run_json_stays_small(make_fake_server, tmp_path):
    server = make_fake_server(faults=FaultPlan(by_prompt={PLACEHOLDER: "long"}))
    s = session(server, tmp_path / "run")
    s.start()
    s.run_auto(1)
    step = load_run(tmp_path / "run").steps[0]
    assert all(len(c.reply) == 4096 for c in step.optimizer_calls)        # 6,000 words sent, 4,096 characters kept
    assert all("too long" in (c.reason or "") and not c.candidate_ids for c in step.optimizer_calls)
    assert any("cut to 4,096" in w for w in step.warnings)
    assert step.decision is not None and step.decision.kind == "no_candidate"
    assert (tmp_path / "run" / "run.json").stat().st_size < 60_000


# 3. Death mid-step, resume ---------------------------------------------------------------------
def test_death_mid_step_leaves_the_step_undecided_and_resume_completes_it(make_fake_server, tmp_path):
    server = make_fake_server()
    run_dir = tmp_path / "run"
    s = session(server, run_dir, dev=6)
    s.start()
    s.run_auto(1)
    step1 = load_run(run_dir).steps[0].to_dict()
    server.die_after = server.chat_requests + 2 + 3     # step 2: its 2 optimizer calls and 3 dev calls, then dead
    with pytest.raises(IncompleteStepError) as err:
        s.run_auto()
    message = str(err.value)
    assert message.startswith("step 2 is not decided: ") and "were not answered" in message
    saved = load_run(run_dir)
    assert saved.steps[0].to_dict() == step1                      # the earlier step is intact
    pending = saved.steps[1]
    assert pending.decision is None and pending.chosen_test_accuracy is None and len(saved.decided_steps) == 1
    unanswered = pending.unanswered
    assert unanswered == 2 * 6 - 3
    for c in pending.candidates:
        assert c.status in ("incomplete", "failed") and c.dev_n == 6
        assert c.dev_accuracy is None if c.status == "failed" else c.dev_accuracy is not None
    answered_before = {c.id: [r for r in s.records(c.id, "dev") if not r["error"]] for c in pending.candidates}

    server.revive()                                                # the endpoint is back: resume
    resumed = GPOSession.open(run_dir, models(server), take_over=True)   # the first process is gone
    sent = server.chat_requests
    step = resumed.complete_step()
    assert server.chat_requests - sent == unanswered               # only the failed calls were sent again
    assert step.unanswered == 0 and all(c.status == "scored" for c in step.candidates)
    assert f"completed later: {unanswered} unanswered dev call(s) sent again, {unanswered} answered, " \
           "0 still unanswered" in step.warnings
    for c in step.candidates:                                      # the answered records were kept as they were
        kept = [r for r in resumed.records(c.id, "dev") if r["input"] in {a["input"] for a in answered_before[c.id]}]
        assert kept == answered_before[c.id]
    resumed.run_auto()
    final = load_run(run_dir)
    assert [s_.step for s_ in final.decided_steps] == [1, 2] and final.steps[0].to_dict() == step1
    clean = clean_run(tmp_path, steps=2, dev=6).state                  # the same numbers as a run that never broke
    assert [c.dev_accuracy for c in final.steps[1].candidates] == [c.dev_accuracy for c in clean.steps[1].candidates]
    assert final.current_prompt == clean.current_prompt


def test_an_endpoint_dead_for_the_whole_step_saves_nothing_of_it(make_fake_server, tmp_path):
    server = make_fake_server()
    s = session(server, tmp_path / "run")
    s.start()
    server.die_after = server.chat_requests
    with pytest.raises(EndpointDownError, match="every optimizer call failed; the optimizer endpoint looks down"):
        s.run_auto()
    saved = load_run(tmp_path / "run")
    assert saved.steps == [] and saved.initial is not None


def test_a_test_score_with_failed_calls_is_never_saved_as_a_number(make_fake_server, tmp_path):
    server = make_fake_server(faults=FaultPlan(by_prompt={TEST_MARK: "500"}))     # every test call fails
    s = session(server, tmp_path / "run")
    init = s.start()
    assert init["test_accuracy"] is None and init["test_errors"] == 2 and init["dev_accuracy"] is not None
    assert any(w.startswith("test: 2 of 2 calls failed (server error (HTTP 500)") and
               w.endswith("accuracy not measured") for w in init["warnings"]), init["warnings"]
    s.run_auto(1)
    step = load_run(tmp_path / "run").steps[0]
    assert step.decision is not None and step.decision.candidate_id is not None
    chosen = step.candidate(step.decision.candidate_id)
    assert step.chosen_test_accuracy is None and chosen.test_accuracy is None and chosen.test_errors == 2
    assert any(w.endswith("accuracy not measured") for w in step.warnings)

    # one test example failing: the accuracy is over the answered one, and the failure is counted
    server.faults = FaultPlan(by_prompt={f"{TEST_MARK} 100:": "500"})
    s.run_auto(1)
    step = load_run(tmp_path / "run").steps[1]
    if step.decision.candidate_id:
        chosen = step.candidate(step.decision.candidate_id)
        assert chosen.test_errors == 1 and chosen.test_accuracy in (0.0, 1.0)
        assert any(w.endswith("accuracy over the 1 answered") for w in step.warnings)


# 2. A second user whose key is refused ------------------------------------------------------------
def test_a_refused_key_gets_its_401_not_another_users_cached_answers(make_fake_server, tmp_path):
    server = make_fake_server(accepted_keys={GOOD_KEY})
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        a = session(server, tmp_path / "a", GOOD_KEY, cache)
        a.start()
        a.run_auto(1)
        a_saved = load_run(tmp_path / "a").to_dict()
        b = session(server, tmp_path / "b", BAD_KEY, cache)     # same task, same settings, same cache
        with pytest.raises(EndpointDownError) as err:
            b.start()
    message = str(err.value)
    assert "authentication failed (HTTP 401)" in message and "check the API key" in message
    assert "looks down" not in message and BAD_KEY not in message
    assert server.refused == 4                       # B's own 4 dev calls reached the server and were refused
    assert nothing_scored(tmp_path / "b")            # nothing was scored for B
    assert load_run(tmp_path / "a").to_dict() == a_saved


# 3. Local faults are not model failures --------------------------------------------------------
class FullDiskCache(ResponseCache):
    """The cache's disk is full: every write fails as SQLite says it."""

    def put(self, key, model_name, entry):
        raise sqlite3.OperationalError("database or disk is full")


def test_a_full_cache_disk_is_a_warning_and_the_scores_are_right(make_fake_server, tmp_path):
    server = make_fake_server()
    with FullDiskCache(tmp_path / "responses.sqlite") as cache:
        s = session(server, tmp_path / "run", cache=cache)
        init = s.start()
        s.run_auto(1)
    clean = clean_run(tmp_path)
    assert init["dev_accuracy"] == clean.state.initial["dev_accuracy"]
    assert init["test_accuracy"] == clean.state.initial["test_accuracy"] is not None   # not 0.000
    assert init["dev_errors"] == init["test_errors"] == 0 and init["usage"]["failed_calls"] == 0
    step = s.state.steps[0]
    assert step.usage.failed_calls == 0 and step.decision.kind == "auto"
    assert step.chosen_test_accuracy == clean.state.steps[0].chosen_test_accuracy
    note = "could not be written (OperationalError: database or disk is full): the answer is used but not cached"
    assert any(note in w for w in init["warnings"]) and any(note in w for w in step.warnings)


def test_a_corrupt_cache_file_is_one_line_with_the_file_and_the_fix_and_no_cache_runs(make_fake_server, tmp_path,
                                                                                    capsys, monkeypatch):
    from gpo_core.cli import main

    server = make_fake_server()
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "responses.sqlite").write_bytes(b"garbage, not SQLite" * 64)
    data = tmp_path / "colours.jsonl"
    sp = splits(8, 4)
    data.write_text("".join(json.dumps({"input": e.input, "target": e.target}) + "\n"
                            for e in sp.train + sp.dev + sp.test), encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", GOOD_KEY)
    args = ["run", "--task", str(data), "--out", str(tmp_path / "out"), "--backend", "openai", "--base-url",
            server.base_url, "--model", "fake-model", "--steps", "1", "--candidates", "2", "--dev-size", "4",
            "--test-size", "2", "--selection", "recency", "--cache-dir", str(cache_dir), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(cache_dir / "responses.sqlite") in err and "move or delete it" in err and "--no-cache" in err
    assert server.chat_requests == 0                 # no call spent before the cache could be opened
    assert main([*args, "--no-cache"]) == 0


# 6 (part). Credentials inside --base-url ------------------------------------------------------------
def test_credentials_in_the_base_url_are_never_written_and_resume_asks_for_them(make_fake_server, tmp_path, capfd):
    from gpo_core.runs.exports import export_json, export_markdown
    from gpo_core.runs.resume import resume_settings

    server = make_fake_server()
    host = server.base_url.removeprefix("http://")
    url = f"http://bob:pw-SECRET-1@{host}?api-key=QSECRET-2&api-version=2024-06"
    provider = ModelProvider(cache_path=tmp_path / "cache" / "responses.sqlite", embedder_factory=HashingEmbedder)
    cfg = run_settings(steps=1, candidates=2, dev_size=4, test_size=2, selection="recency")
    spec = {"backend": "compatible", "base_url": url, "concurrency": 4}
    cfg = cfg.with_model("task", ModelSettings(model="fake-task", **spec)).with_model(
        "optimizer", ModelSettings(model="fake-optimizer", temperature=1.0, **spec))
    sp = splits()
    s = GPOSession.create(task(sp), cfg, provider.models(cfg), run_dir=tmp_path / "run", run_id="r", splits=sp)
    s.start()
    s.run_auto()
    print(s.settings.task_model.describe())
    written = [export_json(s), export_markdown(s), str(s.state.steps[0].models)]
    server.stop()
    dead = s.models.task.complete(ChatRequest.user("Hi"))
    written.append(dead.error or "")
    provider.response_cache().close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            written.append(path.read_bytes().decode("utf-8", "replace"))
    out = capfd.readouterr()
    written += [out.out, out.err]
    for text in written:
        assert "pw-SECRET-1" not in text and "QSECRET-2" not in text and "bob:" not in text
    assert "cannot connect to http://***@" in dead.error and "api-key=***&api-version=2024-06" in dead.error

    saved = load_run(tmp_path / "run")
    assert saved.settings.task_model.base_url == f"http://***@{host}?api-key=***&api-version=2024-06"
    with pytest.raises(ConfigError, match=r"lost its credentials, which are never saved: give the base URL with its "
                                          r"credentials again"):
        provider.models(saved.settings)
    _, notes = resume_settings({"base_url": url}, saved)
    assert notes and all("credentials given again for http://***@" in n for n in notes if "base-url" in n)
    assert all("pw-SECRET-1" not in n for n in notes)
