"""Issue 12: the LLM judge (a third model role) on scripted models: its prompt, the parse of its
reply, the normalization to [0, 1], failures recorded, tokens and cost counted per role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError
from gpo_core.metrics import build_metric
from gpo_core.metrics.judge import LLMJudgeMetric, parse_grade
from gpo_core.metrics.judge_template import DEFAULT_RUBRIC
from gpo_core.models.base import ChatRequest, Completion
from gpo_core.settings import RunSettings, default_model_settings
from gpo_core.tasks.task import Example
from gpo_testkit.scripted import ScriptedChatModel, prompt_text
from tests.demo_cli import SMALL, run_demo_cli, sums_csv

EXAMPLES = [Example("What is the capital of France?", "Paris", line=2),
            Example("Name a primary colour.", '["red", "blue", "yellow"]', line=3)]


def test_the_judge_prompt_holds_rubric_input_references_and_output():
    judge = ScriptedChatModel(["Reason: right city.\nScore: 10", "Reason: a colour.\nScore: 7"], max_concurrency=1)
    m = build_metric("llm_judge", {"rubric": "Names the right thing."}, "exact_match", judge_model=judge,
                     judge_settings=default_model_settings("judge", "openai").replace(temperature=0.0, max_tokens=99))
    out = m.score_many(["It is Paris.", "Blue."], EXAMPLES)
    first, second = (prompt_text(r) for r in judge.calls)
    assert "Rubric: Names the right thing." in first and "What is the capital of France?" in first
    assert "Reference answer:\nParis" in first and "Answer to grade:\nIt is Paris." in first
    assert "Score: <a whole number from 1 to 10>" in first
    assert "Reference answers (any one is right):\n- red\n- blue\n- yellow" in second  # a JSON list of references
    assert all(r.temperature == 0.0 and r.max_tokens == 99 for r in judge.calls)  # the judge model's settings
    assert [r.score for r in out] == [1.0, pytest.approx(6 / 9)]  # (grade - 1) / 9
    assert out[0].reason == "judge: 10/10 (right city)" and out[1].reason == "judge: 7/10 (a colour)"
    assert out[0].judge_prompt is not None and "Rubric: Names the right thing." in out[0].judge_prompt
    assert out[0].judge_output == "Reason: right city.\nScore: 10"
    assert not m.binary


def test_pass_fail_is_binary_and_the_default_rubric_is_matching_the_reference():
    judge = ScriptedChatModel({"Paris": "Reason: same city.\nVerdict: PASS", "": "Reason: no.\nVerdict: FAIL"})
    m = build_metric("llm_judge", {"scale": "pass-fail"}, "exact_match", judge_model=judge)
    out = m.score_many(["Paris", "green"], EXAMPLES)
    assert m.binary and [r.score for r in out] == [1.0, 0.0]
    assert all(f"Rubric: {DEFAULT_RUBRIC}" in prompt_text(r) for r in judge.calls)
    assert "Verdict: <PASS or FAIL>" in prompt_text(judge.calls[0])


@pytest.mark.parametrize(("reply", "scale", "score"), [
    ("Reason: ok\nScore: 1", "1-10", 0.0), ("Score: **10**", "1-10", 1.0), ("I would say 8/10.", "1-10", 7 / 9),
    ("Score: 14", "1-10", 1.0), ("Verdict: fail", "pass-fail", 0.0), ("It passes.", "pass-fail", 1.0),
    ("It could pass or fail.", "pass-fail", None), ("no grade here", "1-10", None),
])
def test_parse_grade(reply, scale, score):
    got, _ = parse_grade(reply, scale)
    assert got == (None if score is None else pytest.approx(score))


def test_a_failed_call_or_an_unreadable_reply_scores_zero_with_the_reason_recorded():
    judge = ScriptedChatModel(["Reason: hmm.", ""], max_concurrency=1,
                              fail_when=lambda r: "down" if "primary colour" in prompt_text(r) else None)
    out = LLMJudgeMetric(judge).score_many(["Paris", "red"], EXAMPLES)
    assert out[0].score == 0.0 and out[0].error is not None and "no 1-10 grade" in out[0].error
    assert out[0].judge_output == "Reason: hmm."
    assert out[1].score == 0.0 and out[1].error == "judge call failed: down"


def test_judge_tokens_are_kept_and_cache_hits_cost_nothing():
    class Cached:
        name, max_concurrency = "cached", 1

        def complete(self, request: ChatRequest) -> Completion:
            return Completion("Score: 10", prompt_tokens=50, completion_tokens=3, cached=True)

    fresh = LLMJudgeMetric(ScriptedChatModel(["Score: 10"])).score_many(["Paris"], EXAMPLES[:1])[0]
    assert fresh.judge_prompt_tokens > 0 and fresh.judge_completion_tokens == 2
    cached = LLMJudgeMetric(Cached()).score_many(["Paris"], EXAMPLES[:1])[0]
    assert (cached.judge_prompt_tokens, cached.judge_completion_tokens) == (0, 0) and cached.score == 1.0


@pytest.mark.parametrize(("options", "field"), [({"scale": "1-5"}, "scale"), ({"rubric": "  "}, "rubric"),
                                                ({"temperature": "2"}, "temperature")])
def test_bad_judge_options_are_refused(options, field):
    with pytest.raises(ConfigError, match=field):
        build_metric("llm_judge", options, "exact_match")


def test_scoring_without_a_judge_model_is_refused():
    with pytest.raises(ConfigError, match="judge model"):
        LLMJudgeMetric().score_many(["Paris"], EXAMPLES[:1])


def test_judge_settings_round_trip_and_default_to_the_task_model():
    s = RunSettings()
    assert s.judge_model is None and "judge_model" not in s.to_dict()
    assert s.judge() == s.task_model.replace(temperature=0.0) and s.model("judge") == s.judge()
    custom = s.with_model("judge", default_model_settings("judge", "openai").replace(model="gpt-4o"))
    again = RunSettings.from_dict(json.loads(json.dumps(custom.to_dict())))
    assert again.judge_model is not None and again.judge_model.model == "gpt-4o"


def test_cli_run_with_the_judge_counts_its_calls_and_keeps_its_replies(monkeypatch, capsys, tmp_path: Path):
    code, out, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "s.csv")),
                                  "--out", str(tmp_path / "run"), "--steps", "1", "--metric", "llm_judge",
                                  "--metric-option", "scale=pass-fail", *SMALL)
    assert code == 0, err
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["settings"]["judge_model"]["model"] == "scripted-judge"
    judge = saved["spend"]["judge"]
    dev = json.loads((tmp_path / "run" / "records" / "initial.dev.json").read_text())
    test = json.loads((tmp_path / "run" / "records" / "initial.test.json").read_text())
    assert judge["calls"] >= len(dev) + len(test) and judge["prompt_tokens"] > 0  # one judge call per answer
    assert all(r["judge_output"].startswith("Reason:") and "Rubric:" in r["judge_prompt"] for r in dev)
    # the judge's verdict is the score: PASS exactly where the answer states the target
    assert all(r["score"] == float(r["target"] in r["raw_output"]) for r in dev)
    report = next((tmp_path / "run" / "exports").glob("*.md")).read_text()
    assert "judge model (LLM judge metric): scripted-judge" in report


def test_cli_refuses_a_judge_model_without_the_judge_metric(monkeypatch, capsys, tmp_path: Path):
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "s.csv")),
                                "--out", str(tmp_path / "run"), "--judge-model", "demo:scripted-judge", *SMALL)
    assert code == 2 and "--judge-model" in err and "llm_judge" in err
    assert not (tmp_path / "run" / "run.json").exists()


def test_the_estimate_counts_one_judge_call_per_task_answer_and_only_with_the_judge():
    from gpo_core.costs.estimate import estimate_run
    from gpo_core.settings import default_run_settings
    from gpo_core.tasks.io import load_task

    task = load_task(Path(__file__).resolve().parents[1] / "sample_tasks" / "weather_report")
    base = default_run_settings("openai")
    plain = estimate_run(base.replace(optimizer=base.optimizer.replace(steps=2)), task)
    judged = estimate_run(base.replace(optimizer=base.optimizer.replace(steps=2, metric="llm_judge")), task)
    assert "judge" not in plain.roles
    j, t = judged.roles["judge"], judged.roles["task"]
    assert j.calls == t.calls and j.prompt_tokens > t.prompt_tokens  # the judge reads input, reference and answer
    assert judged.calls == plain.calls + j.calls and judged.minutes > plain.minutes
