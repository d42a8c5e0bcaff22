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
    assert models.task.inner.name.startswith("local:SmolLM2")
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
