"""The app's view helpers: safe Markdown, word diffs, tables; and the model resources."""

from __future__ import annotations

import string

from streamlit.testing.v1 import AppTest

from gpo_core.models.provider import key_fingerprint, resource_settings
from gpo_core.optimizer.edits import word_diff
from gpo_core.settings import ModelSettings
from gpo_core.studio.views import markup, run_view, step_view

from app_support import APP, TIMEOUT, unescape


def test_escape_markdown_escapes_every_punctuation_character():
    text = "A *b* _c_ [d](e) <b>f</b> $x$ :smile: :red[g] `h` # i | j ~k~ \\ l"
    escaped = markup.escape_markdown(text)
    assert unescape(escaped) == text
    bare = escaped
    for ch in string.punctuation:
        bare = bare.replace("\\" + ch, "")
    assert not any(ch in bare for ch in string.punctuation), bare
    assert markup.escape_markdown("two\nlines") == "two lines"


def test_diff_markdown_marks_deleted_and_inserted_words_and_escapes_them():
    md = markup.diff_markdown(word_diff("Let's think step by step.", "Let's think *carefully* by step."))
    assert md == "Let\\'s think :red-background[~~step~~] :green-background[**\\*carefully\\***] by step\\."
    assert markup.diff_markdown(word_diff("same", "same")) == "same"
    assert markup.diff_plain(word_diff("a b c", "a x c")) == "a [-b-] {+x+} c"


def test_records_and_compare_frames():
    a = [{"input": "q1", "target": "1", "parsed_answer": "1", "correct": True},
         {"input": "q2", "target": "2", "parsed_answer": "3", "correct": False}]
    b = [{"input": "q2", "target": "2", "parsed_answer": "2", "correct": True},
         {"input": "q1", "target": "1", "parsed_answer": "1", "correct": True}]
    assert list(run_view.records_frame(a, wrong_only=True)["input"]) == ["q2"]
    both = run_view.compare_frame(a, b)
    assert list(both["input"]) == ["q1", "q2"] and list(both["B correct"]) == [True, True]
    assert list(run_view.compare_frame(a, b, wrong_only=True)["input"]) == ["q2"]
    assert run_view.records_accuracy(a) == 0.5 and run_view.records_accuracy([]) is None


def test_resource_identity_ignores_per_request_settings_and_never_holds_the_key():
    a = ModelSettings(backend="compatible", model="m", base_url="http://h/v1", temperature=0.0, max_tokens=10)
    b = ModelSettings(backend="compatible", model="m", base_url="http://h/v1", temperature=1.0, max_tokens=99)
    assert resource_settings(a) == resource_settings(b)
    local_task = ModelSettings(backend="local", temperature=0.0, max_tokens=128)
    local_opt = ModelSettings(backend="local", temperature=1.0, max_tokens=96, concurrency=1)
    assert resource_settings(local_task) == resource_settings(local_opt)
    fp = key_fingerprint("sk-secret-value")
    assert "secret" not in fp and fp != key_fingerprint("sk-other") and key_fingerprint(None) == "env"


def test_both_roles_share_one_embedded_model_object(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_HOME", str(tmp_path))
    monkeypatch.delenv("GPO_STUDIO_FAKE_MODELS", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    studio = at.session_state["studio"]
    models = studio.models.build()  # builds wrappers only; the model file loads on first call
    assert models.task is not models.optimizer
    assert models.task.inner is models.optimizer.inner
    assert models.task.inner.name == "local:" + studio.draft.settings.task_model.model  # the default preset's model
    assert not models.task.inner.loaded


def test_candidate_tokens_read_cached_with_their_tokens_never_a_bare_zero():
    from gpo_core.models.base import TokenUsage
    from gpo_core.runs.records import CandidateRecord

    def cand(**usage):
        return CandidateRecord(id="s1c1", text="x", usage=TokenUsage(**usage))

    assert step_view.candidate_tokens_text(cand(prompt_tokens=1000, completion_tokens=234, calls=8)) == "1,234"
    assert step_view.candidate_tokens_text(cand(calls=8, cached_calls=8, cached_tokens=1234)) == "cached · 1,234"
    assert step_view.candidate_tokens_text(cand(calls=8, cached_calls=8)) == "cached"
    assert (step_view.candidate_tokens_text(cand(prompt_tokens=500, calls=8, cached_calls=3, cached_tokens=300))
            == "500 + 300 cached (3 of 8 calls cached)")


def test_the_per_example_view_shows_the_answer_re_prompt_and_failed_calls_are_no_answer():
    base = {"target": "no", "parsed_answer": "no", "raw_output": "long reasoning", "correct": True}
    recs = [{**base, "input": "q1", "second_prompt": 'Give your answer directly, using only "Yes" or "No".',
             "second_output": "No"},
            {**base, "input": "q2", "correct": False, "error": "timed out", "second_prompt": None,
             "second_output": None}]
    frame = run_view.records_frame(recs)
    assert list(frame["final reply"]) == ["No", ""] and str(list(frame["re-prompt"])[0]).startswith("Give your answer")
    assert run_view.records_accuracy(recs) == 1.0          # the failed call is left out, not counted wrong
    assert "re-prompt" not in run_view.records_frame([{**base, "input": "q3"}]).columns


# ----------------------------------------------------------------------------- issue 11 views


def test_an_accuracy_reads_with_its_wilson_interval_and_sample_size():
    from gpo_core.studio.views.uncertainty import Accuracy, accuracy_from, explainer

    five_of_eight = Accuracy(5, 8)  # Wilson 95%: 30.57%-86.32% (statsmodels proportion_confint, "wilson")
    assert five_of_eight.text() == "62.5% [31–86%]"
    assert five_of_eight.band() == "31–86%"
    assert five_of_eight.metric() == ("62.5%", "95% interval 31–86%")
    assert five_of_eight.sized("dev") == "62.5% [31–86%] on 8 dev examples"
    assert Accuracy(0, 16).text() == "0.0% [0–19%]"  # 0/16: 0%-19.36%
    assert Accuracy(0, 0).text() == "–" and Accuracy(0, 0).metric() == ("–", None)
    assert accuracy_from(0.625, 8) == five_of_eight and accuracy_from(None, 8) is None
    assert explainer(Accuracy(10, 16)) == ("62.5% [39–82%] on 16 dev examples: the true accuracy is probably in this "
                                           "range (95% Wilson interval); differences inside it may be luck.")


def _paired_run(cur_acc: float, cand: dict, alpha: float = 0.05):
    """A run whose step 1 has one candidate with ``cand``'s fields, the current prompt
    (the start) at ``cur_acc`` on dev."""
    from gpo_core.optimizer.direction import TrajectoryEntry
    from gpo_core.runs.records import CandidateRecord, RunState, RunTask, StepRecord
    from gpo_core.settings import OptimizerSettings, RunSettings

    state = RunState("r", "now", RunTask("t", "number", "Q_end"), {"dev": [{}] * 8, "test": []},
                     RunSettings(optimizer=OptimizerSettings(alpha=alpha)))
    state.trajectory = [TrajectoryEntry(0, "start", cur_acc, 0, None, True, "initial")]
    c = CandidateRecord(id="s1c1", text="new", dev_n=8, **cand)
    step = StepRecord(1, 1, 10, True, "start", 0, [], [], "", [], [c])
    state.steps.append(step)
    return state, step, c


def test_the_accept_question_depends_on_what_the_paired_test_says():
    from gpo_core.studio.views.paired_view import accept_question, paired_text

    # worse: it breaks examples the current prompt got right
    state, step, c = _paired_run(0.75, dict(dev_accuracy=0.5, dev_correct=4, fixed=1, broken=3, p_value=0.625))
    assert accept_question(step, c, state) == ("s1c1 scores lower than the current prompt on dev (50.0% vs 75.0%): "
                                               "it gets 3 examples wrong that the current prompt got right, and "
                                               "fixes 1. Accept anyway?")
    assert paired_text(c, 0.05) == ("vs the current prompt on the same dev examples: fixes 1, breaks 3 · "
                                    "McNemar p = 0.62 · not distinguishable at alpha = 0.05")
    # better but not distinguishable: 3 fixed vs 1 broken is luck at alpha = 0.05
    state, step, c = _paired_run(0.5, dict(dev_accuracy=0.75, dev_correct=6, fixed=3, broken=1, p_value=0.625))
    assert accept_question(step, c, state) == (
        "s1c1 is not distinguishable from the current prompt on dev (75.0% vs 50.0%): it fixes 3 and breaks 1 of the "
        "dev examples (McNemar p = 0.62, not below alpha = 0.05), so the difference may be luck. Accept anyway?")
    # the same answers on every example
    state, step, c = _paired_run(0.5, dict(dev_accuracy=0.5, dev_correct=4, fixed=0, broken=0, p_value=1.0))
    assert accept_question(step, c, state) == ("s1c1 answers every dev example as the current prompt does (50.0% vs "
                                               "50.0%): it is not distinguishable from it on dev. Accept anyway?")
    # significantly better (7 fixed, 0 broken: p = 0.0156): no question
    state, step, c = _paired_run(0.125, dict(dev_accuracy=1.0, dev_correct=8, fixed=7, broken=0, p_value=0.015625))
    assert accept_question(step, c, state) is None
    assert "significantly better at alpha = 0.05" in paired_text(c, 0.05)
    # ... unless the run's alpha is stricter
    state, step, c = _paired_run(0.125, dict(dev_accuracy=1.0, dev_correct=8, fixed=7, broken=0, p_value=0.015625),
                                 alpha=0.01)
    assert accept_question(step, c, state) is not None
    # no per-example comparison: asked only when it scores lower
    state, step, c = _paired_run(0.75, dict(dev_accuracy=0.5, dev_correct=4))
    assert accept_question(step, c, state) == "s1c1 scores lower than the current prompt on dev (50.0% vs 75.0%). " \
                                              "Accept anyway?"
    assert paired_text(c, 0.05).startswith("vs the current prompt: not compared")
    state, step, c = _paired_run(0.5, dict(dev_accuracy=0.75, dev_correct=6))
    assert accept_question(step, c, state) is None
    # raced out after 4 examples: judged on those, and said so
    state, step, c = _paired_run(0.75, dict(dev_accuracy=0.25, dev_correct=1, fixed=0, broken=2, p_value=0.5,
                                            status="raced_out", raced_out_after=4))
    assert accept_question(step, c, state) == (
        "s1c1 scores lower than the current prompt on dev (25.0% vs 75.0%): it gets 2 examples wrong that the "
        "current prompt got right, and fixes 0 (on the 4 dev examples racing scored it on; accepting scores the "
        "rest first). Accept anyway?")


def test_the_regression_view_pairs_examples_as_the_paired_counts_do():
    from gpo_core.stats import paired_counts
    from gpo_core.studio.views.paired_view import p_text, regression_frame

    def rec(q, target, answer, error=None):
        return {"input": q, "target": target, "parsed_answer": answer, "correct": answer == target,
                "raw_output": f"The answer is {answer}.", "error": error}

    base = [rec("q1", "1", "1"), rec("q2", "2", "0"), rec("q3", "3", "3"), rec("q3", "3", "0"), rec("q4", "4", "4")]
    cand = [rec("q3", "3", "0"), rec("q2", "2", "2"), rec("q3", "3", "3"), rec("q1", "1", "1"),
            rec("q4", "4", None, error="timeout")]
    frame = regression_frame(base, cand)
    # a repeated example pairs with its repeat in order: q3's first answer with the first q3
    rows = frame[["change", "input", "current prompt's answer", "candidate's answer"]].values.tolist()
    assert rows == [["fixed", "q2", "0", "2"], ["fixed", "q3", "0", "3"], ["broken", "q3", "3", "0"]]
    fixed, broken, both = paired_counts(base, cand)
    assert (fixed, broken) == ((frame["change"] == "fixed").sum(), (frame["change"] == "broken").sum())
    assert both == 4  # the failed call is left out of both
    assert [p_text(x) for x in (0.0703125, 0.0078125, 0.0004, 1.0)] == ["p = 0.07", "p = 0.0078", "p < 0.001", "p = 1"]


def test_the_estimate_and_spend_read_for_people():
    from gpo_core.costs.spend import RoleSpend, Spend
    from gpo_core.studio.views.cost_view import money, spend_fraction, spend_text

    assert [money(x) for x in (None, 0.0, 0.01234, 12.5)] == ["no price known", "$0", "$0.0123", "$12.50"]
    spend = Spend({"task": RoleSpend(prompt_tokens=900, completion_tokens=100, calls=10, cached_calls=4)}, 0.002,
                  "prices: x", max_tokens=4000)
    assert spend_text(spend) == "Spent: 1,000 tokens ($0.0020), 10 calls (4 cached, free) · cap 4,000 tokens (25% used)"
    assert spend_fraction(spend) == 0.25
