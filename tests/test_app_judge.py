"""Issue 12 in the app: the LLM judge picked on the Task page, its model on the Models page, its
prompt and reply in the per-example view, its calls in the spend."""

from __future__ import annotations

import dataclasses

from gpo_core.models.demo import demo_chat_model

from app_support import app_for, load_arithmetic, make_studio, no_exception, started_run, texts, wait_idle


def _judge_studio(tmp_path):
    studio = make_studio(tmp_path)
    assert studio.models.override is not None
    studio.models.override = dataclasses.replace(studio.models.override, judge=demo_chat_model("scripted-judge"))
    return load_arithmetic(studio)


def test_task_page_picks_the_judge_and_shows_the_prompt_it_will_get(tmp_path):
    studio = _judge_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    v = studio.tasks.version
    at.selectbox(key=f"metric_{v}").set_value("llm_judge").run()
    at.text_input(key=f"metric_opt_llm_judge_scale_{v}").set_value("pass-fail").run()
    no_exception(at)
    assert studio.draft.settings.optimizer.metric == "llm_judge"
    assert studio.draft.settings.optimizer.metric_options == {"scale": "pass-fail"}
    assert any("LLM judge" in c and "PASS scores 1" in c for c in texts(at.caption))  # the definition
    assert any("Not scored here (llm_judge)" in i for i in texts(at.info))  # no model call on the page
    code = [c.value for c in at.code]
    assert any("Rubric: The answer matches the reference answer" in c and "Verdict: <PASS or FAIL>" in c
               for c in code)
    # a bad scale is refused by its widget and the previous choice stays
    at.text_input(key=f"metric_opt_llm_judge_scale_{v}").set_value("1-5").run()
    assert any("scale" in e for e in texts(at.error))
    assert studio.draft.settings.optimizer.metric_options == {"scale": "pass-fail"}


def test_models_page_offers_the_judge_only_with_the_judge_metric(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/models.py")
    assert any("Only the LLM judge metric calls a judge model" in c for c in texts(at.caption))
    studio.draft.update_optimizer(metric="llm_judge")
    at.run()
    at.selectbox(key="judge_choice").set_value("another model (backend:model)").run()
    at.text_input(key="judge_spec").set_value("demo:scripted-judge").run()
    no_exception(at)
    j = studio.draft.settings.judge_model
    assert j is not None and (j.backend, j.model, j.temperature) == ("demo", "scripted-judge", 0.0)
    at.text_input(key="judge_spec").set_value("nonsense").run()
    assert any("Judge model" in e for e in texts(at.error))
    assert studio.draft.settings.judge_model == j  # the previous choice stays
    at.selectbox(key="judge_choice").set_value("task").run()
    assert studio.draft.settings.judge_model is None


def test_a_judged_run_shows_the_judge_prompt_and_reply_per_example_and_counts_its_calls(tmp_path):
    studio = _judge_studio(tmp_path)
    studio.draft.update_optimizer(metric="llm_judge", metric_options={"scale": "pass-fail"})
    started_run(studio, steps=1, candidates=2)
    wait_idle(studio)
    at = app_for(studio, "pages/results.py")
    no_exception(at)
    frame = next(d.value for d in at.dataframe if "judge reply" in d.value.columns)
    assert all(r.startswith("Reason:") for r in frame["judge reply"])
    assert all("Rubric:" in p and "Answer to grade:" in p for p in frame["judge prompt"])
    assert all(int(n) > 0 for n in frame["judge tokens"])
    # the judge's verdict is the score: correct exactly where the answer states the target
    assert list(frame["correct"]) == [t in o for t, o in zip(frame["target"], frame["output"])]
    spend = studio.runs.require_session().state.spend
    assert spend["judge"].calls >= len(frame) and spend["judge"].prompt_tokens > 0
