"""Regression tests of issue 9's engine defects, each named for what the user sees.

Defect 1: undo left the undone prompts' records behind (rows of undone candidates showed
under the next step's candidates and in the JSON export). Defect 2: rejections were kept
only by the page, not in the run. Defect 7: undo removed one attempt, not one step.
Defect 10: a cached completion reported no tokens. Defect 13: a failed call scored as a
wrong answer. Defect 14: the model name the server answered as was never recorded.
(Defect 4, the "newest" retrieved prompt, is in test_trajectory.py.)
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest

from gpo_core.errors import ConfigError, IncompleteStepError
from gpo_core.models.base import ChatRequest
from gpo_core.models.cache import CachedChatModel, ResponseCache
from gpo_core.models.openai_chat import OpenAIChatModel
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.runs.exports import export_json
from gpo_core.runs.repository import load_run, records_path
from gpo_core.tasks.task import Example, Task, TaskSplits
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import fake_models, optimizer_answer, parity_splits, parity_task, run_settings, task_answer

CFG: dict[str, Any] = dict(steps=4, candidates=4, k=3, dev_size=None, test_size=None)
MARK = "(rejected by the user)"


def new_session(run_dir=None, models=None, **cfg) -> GPOSession:
    return GPOSession.create(parity_task(), run_settings(**(CFG | cfg)), models or fake_models(),
                             splits=parity_splits(), run_dir=run_dir, run_id=run_dir.name if run_dir else None)


def fresh_text_models() -> Models:
    """Scripted models whose optimizer writes a new instruction on every call, so each
    step (and each attempt) has candidates never scored before."""
    counter = itertools.count(1)
    lock = threading.Lock()

    def optimizer(req: ChatRequest) -> str:
        with lock:
            n = next(counter)
        return f"<INS>Decide carefully whether the number is even, take {n}.</INS>"

    return Models(ScriptedChatModel(task_answer, name="fake-task"), ScriptedChatModel(optimizer, name="fake-optimizer"),
                  HashingEmbedder())


def same_replies_every_attempt() -> Models:
    """The optimizer answers by sample index modulo 4: a resampled step proposes exactly
    the texts of its first attempt again."""
    def optimizer(req: ChatRequest) -> str:
        return optimizer_answer(ChatRequest(req.messages, sample_index=req.sample_index % 4))

    return Models(ScriptedChatModel(task_answer, name="fake-task"), ScriptedChatModel(optimizer, name="fake-optimizer"),
                  HashingEmbedder())


# Defect 1 ------------------------------------------------------------------------------
def test_after_undo_the_next_step_shows_only_its_own_rows_and_the_export_has_none_of_the_undone(tmp_path):
    run_dir = tmp_path / "run"
    s = new_session(run_dir, fresh_text_models())
    s.start()
    s.propose()
    s.decide_auto()
    undone = s.propose()
    undone_ids = {c.id for c in undone.candidates}
    assert all(records_path(run_dir, cid, "dev").exists() for cid in undone_ids)
    s.undo()
    # the undone prompts' records are gone, from disk and from memory
    assert not any(records_path(run_dir, cid, split).exists() for cid in undone_ids for split in ("dev", "test"))
    assert all(s.records(cid, "dev") == [] for cid in undone_ids)

    again = s.propose()
    new_ids = {c.id for c in again.candidates}
    assert new_ids and not new_ids & undone_ids            # ids are never reused
    ids = [c.id for st in s.state.steps for c in st.candidates]
    assert len(ids) == len(set(ids))
    for c in again.candidates:                             # each candidate's rows are its own
        rows = s.records(c.id, "dev")
        assert len(rows) == len(s.splits.dev) and all(c.text in r["rendered_prompt"] for r in rows)
    exported = {key.split(".")[0] for key in json.loads(export_json(s))["records"]}
    assert not exported & undone_ids and new_ids <= exported
    reopened = GPOSession.open(run_dir, fresh_text_models(), take_over=True)
    assert all(reopened.records(cid, "dev") == [] for cid in undone_ids)


# Defect 7 ------------------------------------------------------------------------------
def test_undo_after_reject_all_and_accept_best_goes_back_to_before_the_step_in_one_click(tmp_path):
    run_dir = tmp_path / "run"
    s = new_session(run_dir, fresh_text_models())
    s.start()
    s.propose()
    s.decide_auto()
    before = (s.state.current_prompt, s.state.current_entry_id, [e.to_dict() for e in s.state.trajectory],
              [st.to_dict() for st in s.state.steps])
    s.propose()
    s.reject_all()
    second = s.propose()
    assert second.step == 2 and second.attempt == 2
    s.accept_best()
    assert s.next_step_number == 3

    s.undo()                                               # one undo: the whole of step 2
    after = (s.state.current_prompt, s.state.current_entry_id, [e.to_dict() for e in s.state.trajectory],
             [st.to_dict() for st in s.state.steps])
    assert after == before
    assert s.next_step_number == 2 and s.state.pending_step is None
    saved = load_run(run_dir)
    assert [st.to_dict() for st in saved.steps] == before[3] and saved.current_prompt == before[0]
    assert s.propose().attempt == 1                        # step 2 starts afresh


# Defect 2 ------------------------------------------------------------------------------
def test_a_rejected_candidate_stays_rejected_after_reopening_and_accept_best_skips_it(tmp_path):
    run_dir = tmp_path / "run"
    s = new_session(run_dir)
    s.start()
    step = s.propose()
    best = s.best_candidate(step)
    assert best.text == "Let's think step by step carefully."
    s.reject(best.id)

    reopened = GPOSession.open(run_dir, fake_models(), take_over=True)
    assert reopened.state.pending_step.candidate(best.id).rejected
    assert reopened.ineligible_reason(best.id) == "rejected by the user"
    decided = reopened.accept_best()
    assert decided.decision.candidate_id != best.id
    assert reopened.state.current_prompt != best.text


def test_auto_decisions_never_choose_a_rejected_candidate(tmp_path):
    s = new_session(tmp_path / "run")
    s.start()
    step = s.propose()
    best = s.best_candidate(step)
    s.reject(best.id)
    assert s.decide_auto().decision.candidate_id != best.id

    s2 = new_session(tmp_path / "run2")
    s2.start()
    best2 = s2.best_candidate(s2.propose())
    s2.reject(best2.id)
    s2.reject(best2.id, rejected=False)                  # restored: choosable again
    s2.reject(best2.id)
    done = s2.run_auto(1)                                # decides the pending step by the policy
    assert done[0].decision.candidate_id != best2.id


def test_a_resampled_step_never_offers_back_a_text_the_user_rejected(tmp_path):
    s = new_session(tmp_path / "run", same_replies_every_attempt())
    s.start()
    s.propose()
    s.reject_all()
    again = s.propose()                                  # the same texts once more (duplicates)
    assert again.candidates and all(c.status == "duplicate" for c in again.candidates)
    assert s.best_candidate(again) is None
    with pytest.raises(ConfigError, match="rejected by the user"):
        s.accept_best()
    decided = s.decide_auto()
    assert decided.decision.kind == "no_candidate" and "rejected by the user" in decided.decision.note
    assert s.state.current_prompt == "Let's think step by step."


def test_later_meta_prompts_list_the_candidates_the_user_rejected(tmp_path):
    s = new_session(tmp_path / "run")
    s.start()
    step = s.propose()
    by_text = {c.text: c for c in step.candidates}
    rejected = by_text["Solve the problem and reply with one word."]
    s.reject(rejected.id)
    s.accept(by_text["Let's think step by step carefully."].id)
    meta = s.propose().meta_prompt
    assert f"{rejected.text} {MARK}" in meta
    assert meta.count(MARK) == 1                         # only what the user rejected

    quiet = new_session(tmp_path / "quiet", show_rejections=False)
    quiet.start()
    step = quiet.propose()
    quiet.reject(step.candidates[2].id)
    quiet.accept(step.candidates[0].id)
    assert MARK not in quiet.propose().meta_prompt


# Defect 13 -----------------------------------------------------------------------------
def failing_task_model(fails) -> ScriptedChatModel:
    """The parity task model; ``fails(prompt) -> bool`` makes a call fail with HTTP 503."""
    return ScriptedChatModel(task_answer, name="fake-task",
                             fail_when=lambda r: "HTTP 503 (gave up after 4 attempts)" if fails(r.messages[-1][1])
                             else None)


def test_a_failed_call_is_not_a_wrong_answer_and_its_candidate_is_never_chosen(tmp_path):
    careful = "Let's think step by step carefully."
    task = failing_task_model(lambda p: "Is 3 even" in p and careful in p)   # 3 is in dev
    models = fake_models()
    s = new_session(tmp_path / "run", Models(task, models.optimizer, models.embedder))
    s.start()
    step = s.propose()
    c = next(c for c in step.candidates if c.text == careful)
    # the 7 answered examples are all right: 1.0, not 7/8; the failure is kept and counted apart
    assert c.dev_accuracy == 1.0 and c.dev_errors == 1 and c.dev_n == 8 and c.status == "incomplete"
    failed = [r for r in s.records(c.id, "dev") if r["error"]]
    assert len(failed) == 1 and "Is 3 even" in failed[0]["input"]
    assert s.ineligible_reason(c.id) == "1 of 8 dev calls failed"
    with pytest.raises(ConfigError, match="1 of 8 dev calls failed"):
        s.accept(c.id)
    assert s.best_candidate().id != c.id
    # issue 15: a step with unanswered calls is not decided by any policy ...
    with pytest.raises(IncompleteStepError, match="step 1 is not decided: 1 dev call"):
        s.decide_auto()
    assert s.state.pending_step is step and step.unanswered == 1
    s.reject(c.id)                                       # ... until the user rejects what is missing
    chosen = s.decide_auto()                             # the policy takes a complete candidate
    assert chosen.decision.kind == "auto" and chosen.decision.candidate_id != c.id
    assert c.id not in {e.candidate_id for e in s.state.trajectory}   # an incomplete score never enters it


def test_failed_calls_are_retried_once_at_the_end_of_the_step(tmp_path):
    careful = "Let's think step by step carefully."
    left = {"n": 1}
    lock = threading.Lock()

    def fails_once(prompt: str) -> bool:
        with lock:
            if "Is 3 even" in prompt and careful in prompt and left["n"]:
                left["n"] -= 1
                return True
        return False

    task = failing_task_model(fails_once)
    models = fake_models()
    s = new_session(tmp_path / "run", Models(task, models.optimizer, models.embedder))
    s.start()
    step = s.propose()
    c = next(c for c in step.candidates if c.text == careful)
    assert c.status == "scored" and c.dev_errors == 0 and c.dev_accuracy == 1.0
    sent = [r for r in task.calls if "Is 3 even" in r.messages[-1][1] and careful in r.messages[-1][1]]
    assert len(sent) == 2                                # the failed call, and once more at the end
    assert c.usage.calls == 9 and c.usage.failed_calls == 1
    assert s.decide_auto().decision.candidate_id == c.id


def test_scores_of_the_starting_and_chosen_prompt_on_test_leave_failed_calls_out(tmp_path):
    splits = parity_splits()
    bad = splits.test[0].input                            # one test example always fails
    task = failing_task_model(lambda p: bad in p)
    models = fake_models()
    s = new_session(tmp_path / "run", Models(task, models.optimizer, models.embedder))
    init = s.start()
    assert init["test_errors"] == 1 and init["dev_errors"] == 0
    rows = s.records("initial", "test")
    answered = [r for r in rows if not r["error"]]
    assert init["test_accuracy"] == pytest.approx(sum(r["correct"] for r in answered) / len(answered))
    s.propose()
    step = s.decide_auto()
    assert step.decision.candidate_id is not None
    chosen = step.candidate(step.decision.candidate_id)
    assert chosen.test_errors == 1 and chosen.test_accuracy == 1.0 == step.chosen_test_accuracy


# Defect 10 -----------------------------------------------------------------------------
def test_a_second_identical_run_shows_the_tokens_its_cached_calls_cost(tmp_path):
    inner: list[ScriptedChatModel] = []

    def cached_models(cache: ResponseCache) -> Models:
        plain = fake_models()
        inner[:] = [plain.task, plain.optimizer]
        return Models(CachedChatModel(plain.task, cache), CachedChatModel(plain.optimizer, cache), plain.embedder)

    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        first = new_session(tmp_path / "first", cached_models(cache))
        first.run_auto(1)
        second = new_session(tmp_path / "second", cached_models(cache))
        second.run_auto(1)
    a, b = first.state.steps[0], second.state.steps[0]
    # the second run sent no request but the one whose reply was empty: no answer, never cached
    empty = [call for call in a.optimizer_calls if call.reply == ""]
    assert inner[0].calls == [] and len(inner[1].calls) == len(empty) == 1
    assert a.usage.cached_calls == 0 and a.usage.total_tokens > 0
    # every other call came from the cache: no token spent, but each shows what it cost when made
    assert b.usage.calls == a.usage.calls and b.usage.cached_calls == a.usage.calls - len(empty)
    spent_on_empty = sum(call.prompt_tokens + call.completion_tokens for call in empty)
    assert b.usage.total_tokens == spent_on_empty
    assert b.usage.cached_tokens == a.usage.total_tokens - spent_on_empty > 0
    for ca, cb in zip(a.candidates, b.candidates):
        assert cb.usage.cached_calls == cb.usage.calls and cb.usage.cached_tokens == ca.usage.total_tokens
    assert all(call.cached and call.prompt_tokens > 0 for call in b.optimizer_calls if call.reply)
    rows = second.records(b.candidates[0].id, "dev")
    assert rows and all(r["cached"] and r["prompt_tokens"] > 0 for r in rows)
    assert second.state.initial["usage"]["cached_tokens"] == first.state.initial["usage"]["prompt_tokens"] + \
        first.state.initial["usage"]["completion_tokens"]


# Defect 14 -----------------------------------------------------------------------------
def colour_task() -> tuple[Task, TaskSplits]:
    colours = ("red", "green", "blue", "yellow")
    options = " ".join(f"({letter}) {c}" for letter, c in zip("ABCD", colours))
    ex = [Example(f"Item {i}: which colour is listed under the letter {'ABCD'[i % 4]}? Options: {options}",
                  f"({'ABCD'[i % 4]})") for i in range(16)]
    return (Task(name="colours", examples=ex, answer_type="multiple_choice", instruction_position="Q_end"),
            TaskSplits(ex[:8], ex[8:12], ex[12:], ex[:8]))


def test_a_step_records_the_model_the_server_answered_as(make_fake_server, tmp_path):
    server = make_fake_server(reported_models={"fake-task": "other-task-model",
                                               "fake-optimizer": "fake-optimizer-2024-07-18"})
    settings = run_settings(steps=2, candidates=2, k=2, selection="recency", task_backend="compatible",
                            task_base_url=server.base_url, optimizer_backend="compatible",
                            optimizer_base_url=server.base_url)
    task, splits = colour_task()

    def models(cache: ResponseCache) -> Models:
        def m(name):
            return CachedChatModel(OpenAIChatModel(name, api_key="sk-test", base_url=server.base_url), cache)
        return Models(m("fake-task"), m("fake-optimizer"), None)

    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        direct = models(cache).task.complete(ChatRequest.user("Is water wet?"))
        assert direct.model == "other-task-model"
        again = models(cache).task.complete(ChatRequest.user("Is water wet?"))
        assert again.cached and again.model == "other-task-model"     # the cache keeps the name

        runs = []
        for name in ("first", "from-cache"):
            s = GPOSession.create(task, settings, models(cache), splits=splits, run_dir=tmp_path / name)
            s.start()
            s.propose()
            runs.append(s.decide_auto())
    for step in runs:
        assert step.models["task"] == settings.task_model.describe()
        assert step.models["task_reported"] == "other-task-model"
        # a dated snapshot of the name asked for is recorded, but is no reason to warn
        assert step.models["optimizer_reported"] == "fake-optimizer-2024-07-18"
        assert step.warnings == ["task model: asked for fake-task, server answered as other-task-model"]
    assert runs[1].usage.cached_calls == runs[1].usage.calls


def test_a_server_answering_as_the_model_asked_for_gives_no_warning(fake_server, tmp_path):
    settings = run_settings(steps=1, candidates=2, k=1, selection="recency")
    task, splits = colour_task()
    models = Models(OpenAIChatModel("fake-task", api_key="sk-test", base_url=fake_server.base_url),
                    OpenAIChatModel("fake-optimizer", api_key="sk-test", base_url=fake_server.base_url), None)
    s = GPOSession.create(task, settings, models, splits=splits)
    s.start()
    step = s.propose()
    assert step.warnings == [] and set(step.models) == {"task", "optimizer"}


def test_a_resumed_run_sends_the_starting_prompts_failed_calls_again_before_step_1(tmp_path):
    """Leftover of issue 15: a start scored with failed calls kept them on resume, so every
    candidate was compared with a start measured on part of dev."""
    splits = parity_splits()
    bad_dev, bad_test = splits.dev[0].input, splits.test[0].input
    models = fake_models()
    s = new_session(tmp_path / "run", Models(failing_task_model(lambda p: bad_dev in p or bad_test in p),
                                             models.optimizer, models.embedder))
    first = dict(s.start())
    assert first["dev_errors"] == 1 and first["test_errors"] == 1
    # the endpoint is back: the run resumes
    healthy = ScriptedChatModel(task_answer, name="fake-task", max_concurrency=8)
    resumed = GPOSession.open(tmp_path / "run", Models(healthy, models.optimizer, models.embedder), take_over=True)
    init = resumed.start()
    assert init["dev_errors"] == 0 and init["test_errors"] == 0
    sent = [r.messages[-1][1] for r in healthy.calls]
    assert len(sent) == 2 and any(bad_dev in p for p in sent) and any(bad_test in p for p in sent)  # only those
    recs = resumed.records("initial", "dev")
    assert len(recs) == 8 and not any(r["error"] for r in recs)
    assert init["dev_accuracy"] == pytest.approx(sum(r["correct"] for r in recs) / 8)
    assert resumed.state.trajectory[0].dev_accuracy == init["dev_accuracy"]
    assert init["usage"]["calls"] == first["usage"]["calls"] + 2  # the first calls stay counted
    # once a step was proposed, the start is never rescored (steps were compared with it)
    resumed.propose()
    again = GPOSession.open(tmp_path / "run", Models(healthy, models.optimizer, models.embedder), take_over=True)
    calls = len(healthy.calls)
    assert again.start() == resumed.state.initial and len(healthy.calls) == calls
