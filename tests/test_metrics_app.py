"""Task page, metric panel (issue 12, item 6): pick a metric, see its definition, preview the
score of one example before any run; bad metric settings are refused by name."""

from __future__ import annotations

import json

from app_support import app_for, make_studio, no_exception, texts


def _load_sample(at, name):
    at.selectbox(key="sample_name").set_value(name)
    at.button[0].click().run()  # "Load sample task"
    return at


def test_a_sample_task_preselects_its_metric_and_previews_partial_credit(tmp_path):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"), "contact_extraction")
    no_exception(at)
    v = studio.tasks.version
    assert at.selectbox(key=f"metric_{v}").value == "json_keys"
    assert at.text_input(key=f"metric_opt_json_keys_keys_{v}").value == "name,city,order"
    assert any("share of those keys" in c for c in texts(at.caption))  # the definition is shown
    # the example's own target scores 1
    assert any(t.startswith("Score 1.00 (json_keys)") for t in texts(at.success))
    # a typed output with one key of three right scores 1/3, with the reason
    first = json.loads(studio.tasks.task.examples[0].target)
    at.text_input(key=f"metric_output_{v}").set_value(json.dumps({"name": first["name"], "city": "Nowhere"})).run()
    warned = texts(at.warning)
    assert any(t.startswith("Score 0.33 (json_keys)") and "city, order" in t for t in warned), warned
    assert studio.draft.settings.optimizer.metric == "json_keys"


def test_bad_metric_settings_are_refused_before_any_run_and_the_previous_choice_stays(tmp_path):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"), "contact_extraction")
    v = studio.tasks.version
    at.text_input(key=f"metric_opt_json_keys_keys_{v}").set_value("name,zip").run()
    no_exception(at)
    errors = texts(at.error)
    assert any("zip" in e and "line 1" in e and "Metric options" in e for e in errors), errors
    assert studio.draft.settings.optimizer.metric_options == {"keys": "name,city,order"}
    # a regex that does not compile
    at.selectbox(key=f"metric_{v}").set_value("regex").run()
    at.text_input(key=f"metric_opt_regex_pattern_{v}").set_value("Answer: (").run()
    errors = texts(at.error)
    assert any("not a valid regular expression" in e and "Metric options" in e for e in errors), errors
    assert studio.draft.settings.optimizer.metric == "json_keys"
    assert studio.runs.session is None  # nothing ran


def test_user_code_is_offered_only_when_the_server_allows_it(tmp_path, monkeypatch):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"), "weather_report")
    v = studio.tasks.version
    assert at.selectbox(key=f"metric_{v}").value == "rouge_l"
    assert "user code (path.py:function)" not in at.selectbox(key=f"metric_{v}").options
    monkeypatch.setenv("GPO_ALLOW_USER_METRICS", "1")
    code = tmp_path / "m.py"
    code.write_text("def score(output, target, input):\n    raise RuntimeError('boom')\n")
    at.run()
    at.selectbox(key=f"metric_{v}").set_value("user code (path.py:function)").run()
    at.text_input(key=f"metric_code_{v}").set_value(f"{code}:score").run()
    errors = texts(at.error)
    assert any("RuntimeError: boom" in e for e in errors), errors
    assert studio.draft.settings.optimizer.metric == "rouge_l"
