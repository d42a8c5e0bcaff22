"""Concurrent scoring of prompts with a local fake task model."""

import json
import re
import threading
import time
from typing import Any

import pytest

from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatModel, ChatRequest, Completion
from gpo_core.scoring.evaluation import (
    EvalResult,
    EvaluationCancelled,
    ExampleRecord,
    evaluate,
    evaluate_many,
)
from gpo_core.scoring.task_prompt import render_task_prompt
from gpo_core.tasks.task import Example


class FakeTaskModel:
    """Answers "Q: item N ..." prompts; thread-safe; records requests and peak concurrency.

    respond(user_text) -> str | Completion | raises. Tokens: prompt = words in the prompt,
    completion = words in the answer.
    """

    def __init__(self, respond, max_concurrency=8, delay=0.0, name="fake-task"):
        self.name = name
        self.max_concurrency = max_concurrency
        self._respond = respond
        self._delay = delay
        self._lock = threading.Lock()
        self.requests: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def complete(self, request: ChatRequest) -> Completion:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._delay:
                time.sleep(self._delay)
            out = self._respond(request.messages[-1][1])
            if isinstance(out, Completion):
                return out
            return Completion(
                text=out,
                prompt_tokens=len(request.messages[-1][1].split()),
                completion_tokens=len(out.split()),
            )
        finally:
            with self._lock:
                self.in_flight -= 1


def make_examples(n):
    """Item i has answer (A) when i is even, (B) when odd."""
    return [Example(input=f"item {i}: pick", target="(A)" if i % 2 == 0 else "(B)", line=i + 1)
            for i in range(n)]


def truthful_or_lazy(prompt: str) -> str:
    """'careful' prompts get every item right; other prompts always answer (A)."""
    i = int(re.search(r"item (\d+)", prompt).group(1))
    if "careful" in prompt:
        return f"Let me see. The answer is {'(A)' if i % 2 == 0 else '(B)'}."
    return "I guess (A)"


KW: dict[str, Any] = dict(answer_type="multiple_choice", position="Q_end")


def test_fake_satisfies_protocol():
    assert isinstance(FakeTaskModel(truthful_or_lazy), ChatModel)


def test_accuracy_per_prompt():
    examples = make_examples(10)
    model = FakeTaskModel(truthful_or_lazy)
    careful, lazy = evaluate_many(["Be careful.", "Go fast."], examples, model, **KW)
    n_even = sum(1 for e in examples if e.target == "(A)")
    assert (careful.n_correct, careful.n, careful.accuracy) == (10, 10, 1.0)
    assert (lazy.n_correct, lazy.accuracy) == (n_even, n_even / 10)
    assert careful.instruction == "Be careful." and careful.split == "dev"
    assert careful.n_errors == lazy.n_errors == 0
    assert len(model.requests) == 20


def test_records_describe_each_call():
    examples = make_examples(4)
    model = FakeTaskModel(truthful_or_lazy)
    res = evaluate("Go fast.", examples, model, answer_type="multiple_choice",
                   position="before_Q", split="test")
    assert res.split == "test"
    assert [r.input for r in res.records] == [e.input for e in examples]
    for ex, rec in zip(examples, res.records):
        prompt = render_task_prompt("Go fast.", ex.input, "before_Q")
        assert rec.rendered_prompt == prompt
        assert rec.target == ex.target
        assert rec.raw_output == "I guess (A)"
        assert rec.parsed_answer == "(A)"
        assert rec.correct is (ex.target == "(A)")
        assert rec.prompt_tokens == len(prompt.split())
        assert rec.completion_tokens == 3
        assert rec.error is None and rec.attempts == 1 and rec.cached is False
    assert res.usage.calls == 4
    assert res.usage.prompt_tokens == sum(r.prompt_tokens for r in res.records)
    assert res.usage.completion_tokens == 12


def test_failing_call_is_recorded_and_not_counted_as_a_wrong_answer():
    def respond(prompt):
        if "item 1:" in prompt:
            return Completion(text="", error="HTTP 500: server error", attempts=3)
        if "item 2:" in prompt:
            raise RuntimeError("socket closed")
        return truthful_or_lazy(prompt)

    examples = make_examples(4)
    res = evaluate("Be careful.", examples, FakeTaskModel(respond), **KW)
    assert res.n == 4 and len(res.records) == 4
    assert res.n_errors == 2 and res.n_answered == 2 and not res.complete
    assert res.n_correct == 2 and res.accuracy == 1.0   # 2 of the 2 answered, not 2 of 4
    failed = res.records[1]
    assert failed.error == "HTTP 500: server error"
    assert failed.correct is False and failed.parsed_answer is None and failed.attempts == 3
    assert "socket closed" in res.records[2].error and res.records[2].correct is False
    assert res.usage.failed_calls == 2 and res.usage.retries == 2


def test_all_calls_share_one_pool_up_to_concurrency():
    examples = make_examples(8)
    model = FakeTaskModel(truthful_or_lazy, max_concurrency=16, delay=0.05)
    instructions = [f"Be careful, take {k}." for k in range(5)]  # 5 x 8 = 40 calls
    results = evaluate_many(instructions, examples, model, concurrency=8, **KW)
    assert len(model.requests) == 40
    assert model.max_in_flight == 8
    assert all(r.accuracy == 1.0 for r in results)


def test_model_max_concurrency_caps_the_pool():
    model = FakeTaskModel(truthful_or_lazy, max_concurrency=1, delay=0.01)
    evaluate_many(["a", "b"], make_examples(5), model, concurrency=8, **KW)
    assert len(model.requests) == 10
    assert model.max_in_flight == 1


def test_identical_instructions_are_scored_once():
    examples = make_examples(6)
    model = FakeTaskModel(truthful_or_lazy)
    results = evaluate_many(["Be careful.", "Go fast.", "Be careful."], examples, model, **KW)
    assert len(model.requests) == 12
    assert [r.instruction for r in results] == ["Be careful.", "Go fast.", "Be careful."]
    assert results[0] is results[2]
    assert results[0].accuracy == 1.0 and results[1].accuracy == 0.5


def test_duplicate_examples_cost_one_call_and_usage_counts_it_once():
    ex = Example(input="item 0: pick", target="(A)")
    model = FakeTaskModel(truthful_or_lazy)
    res = evaluate("Be careful.", [ex, ex, ex], model, **KW)
    assert len(model.requests) == 1
    assert res.n == 3 and res.n_correct == 3
    assert res.usage.calls == 1


def test_request_settings_are_passed_through():
    model = FakeTaskModel(truthful_or_lazy)
    evaluate("Be careful.", make_examples(2), model, temperature=0.7, max_tokens=64,
             sample_index=3, system_prompt="Be terse.", **KW)
    for req in model.requests:
        assert (req.temperature, req.max_tokens, req.sample_index) == (0.7, 64, 3)
        assert req.messages[0] == ("system", "Be terse.")
        assert req.messages[1][0] == "user"


def test_should_stop_cancels_pending_work():
    model = FakeTaskModel(truthful_or_lazy, delay=0.02)
    done = []
    with pytest.raises(EvaluationCancelled):
        evaluate_many(
            ["Be careful.", "Go fast."], make_examples(20), model, concurrency=2,
            on_progress=lambda d, t: done.append(d), should_stop=lambda: len(model.requests) >= 3,
            **KW,
        )
    assert 3 <= len(model.requests) < 40


def test_should_stop_before_start_makes_no_calls():
    model = FakeTaskModel(truthful_or_lazy)
    with pytest.raises(EvaluationCancelled):
        evaluate("x", make_examples(3), model, should_stop=lambda: True, **KW)
    assert model.requests == []


def test_progress_reaches_total_of_distinct_calls():
    seen = []
    evaluate_many(["a", "b", "a"], make_examples(7), FakeTaskModel(truthful_or_lazy),
                  on_progress=lambda d, t: seen.append((d, t)), **KW)
    assert seen[-1] == (14, 14)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        (dict(answer_type="essay", position="Q_end"), "answer_type"),
        (dict(answer_type="multiple_choice", position="sideways"), "instruction_position"),
        (dict(answer_type="number", position="Q_end"), "answer_type"),  # targets are (A)/(B)
        (dict(answer_type="multiple_choice", position="Q_end", concurrency=0), "concurrency"),
    ],
)
def test_bad_settings_fail_before_any_call(kwargs, setting):
    model = FakeTaskModel(truthful_or_lazy)
    with pytest.raises(ConfigError) as err:
        evaluate_many(["x"], make_examples(3), model, **kwargs)
    assert err.value.setting == setting
    assert model.requests == []


def test_bad_target_error_names_the_line():
    with pytest.raises(ConfigError) as err:
        evaluate("x", make_examples(3), FakeTaskModel(truthful_or_lazy),
                 answer_type="yes_no", position="Q_end")
    assert "line 1" in str(err.value)


def test_no_examples_is_config_error():
    with pytest.raises(ConfigError):
        evaluate("x", [], FakeTaskModel(truthful_or_lazy), **KW)


def test_result_round_trips_through_json():
    def respond(prompt):
        if "item 1:" in prompt:
            return Completion(text="", error="timeout", attempts=2)
        return truthful_or_lazy(prompt)

    res = evaluate("Go fast.", make_examples(3), FakeTaskModel(respond), **KW)
    back = EvalResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back == res
    brief = res.to_dict(include_records=False)
    assert "records" not in brief
    assert EvalResult.from_dict(brief).records == []
    assert EvalResult.from_dict(brief).accuracy == res.accuracy
    rec = res.records[1]
    assert ExampleRecord.from_dict(rec.to_dict()) == rec


def test_failed_calls_are_sent_once_more_after_the_others():
    failures = {"item 1:": 1, "item 2:": 5}   # item 1 fails once, item 2 every time

    def respond(prompt):
        for needle, left in failures.items():
            if needle in prompt and left:
                failures[needle] = left - 1
                return Completion(text="", error="HTTP 503", attempts=2)
        return truthful_or_lazy(prompt)

    model = FakeTaskModel(respond)
    res = evaluate("Be careful.", make_examples(4), model, retry_failed=True, **KW)
    assert len(model.requests) == 4 + 2          # only the two failed calls were sent again
    assert res.records[1].error is None and res.records[1].correct
    assert res.records[2].error == "HTTP 503" and res.n_errors == 1
    assert res.accuracy == 1.0 and res.n_answered == 3
    # every try is counted: 6 calls, of which 3 failed (item 1 once, item 2 twice), each after 1 retry
    assert (res.usage.calls, res.usage.failed_calls, res.usage.retries) == (6, 3, 3)


def test_failures_that_cannot_succeed_are_not_sent_again():
    def respond(prompt):
        if "item 1:" in prompt:
            return Completion(text="", error="unknown model 'gpt-nope' (HTTP 404)", retryable=False)
        return truthful_or_lazy(prompt)

    model = FakeTaskModel(respond)
    res = evaluate("Be careful.", make_examples(3), model, retry_failed=True, **KW)
    assert len(model.requests) == 3 and res.n_errors == 1

    down = FakeTaskModel(lambda p: Completion(text="", error="connection refused"))
    res = evaluate("Be careful.", make_examples(3), down, retry_failed=True, **KW)
    assert len(down.requests) == 3 and res.n_errors == 3   # nothing answered: the endpoint is down, no retry pass
