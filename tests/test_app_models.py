"""Models page: backends, validation, the API key field, "Test connection"."""

from __future__ import annotations

import pytest

from app_support import app_for, arithmetic_csv, make_studio, no_exception, texts
from gpo_core.studio.studio import Studio

KEY = "sk-typed-in-the-page-3f9a7c"


@pytest.fixture
def plain_studio(tmp_path, monkeypatch):
    """A Studio that builds real models from its settings (no scripted override)."""
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return Studio(runs_root=tmp_path / "home" / "runs")


def _use_server(at, role: str, base_url: str, model: str = "fake-model"):
    at.radio(key=f"{role}_backend").set_value("compatible").run()
    at.text_input(key=f"{role}_model_compatible").set_value(model)
    at.text_input(key=f"{role}_base_url_compatible").set_value(base_url).run()
    return at


def test_compatible_backend_needs_a_base_url(plain_studio):
    at = app_for(plain_studio, "pages/models.py")
    at.radio(key="task_backend").set_value("compatible").run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1 and "task_model.base_url" in errors[0] and "base URL" in errors[0]
    assert plain_studio.specs["task"].backend == "local"  # the invalid setting was not kept


def test_test_connection_succeeds_with_the_typed_key(plain_studio, make_fake_server):
    server = make_fake_server(required_key=KEY)
    at = _use_server(app_for(plain_studio, "pages/models.py"), "task", server.base_url)
    at.text_input(key="api_key_input").set_value(KEY).run()
    at.button(key="task_test").click().run()
    no_exception(at)
    ok = texts(at.success)
    assert len(ok) == 1 and ok[0].startswith(f"connected: model 'fake-model' at {server.base_url} answered in"), ok
    assert server.requests_with_key >= 1
    assert "Using the key typed above" in " ".join(texts(at.caption))


def test_test_connection_reports_a_wrong_key_quickly(plain_studio, make_fake_server):
    server = make_fake_server(required_key=KEY)
    at = _use_server(app_for(plain_studio, "pages/models.py"), "optimizer", server.base_url)
    at.text_input(key="api_key_input").set_value("sk-wrong").run()
    at.button(key="optimizer_test").click().run()
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Failed after"), errors
    assert "401" in errors[0] or "key" in errors[0].lower()
    assert "sk-wrong" not in errors[0]


def test_test_connection_reports_a_server_that_is_down(plain_studio, make_fake_server):
    server = make_fake_server()
    url = server.base_url
    server.stop()
    at = _use_server(app_for(plain_studio, "pages/models.py"), "task", url)
    at.button(key="task_test").click().run()
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Failed after") and "127.0.0.1" in errors[0], errors


def test_scripted_models_answer_the_connection_test(tmp_path):
    at = app_for(make_studio(tmp_path), "pages/models.py")
    at.button(key="task_test").click().run()
    assert texts(at.success)[0].startswith("connected: model 'scripted-task' answered in")


def test_typed_key_is_never_written_to_disk_or_exports(plain_studio, make_fake_server, tmp_path):
    """A whole run against an OpenAI-compatible server with a typed key: the key appears in
    no saved file, no response cache and no export."""
    server = make_fake_server(required_key=KEY)
    studio = plain_studio
    studio.preview_upload(arithmetic_csv(12), "arith.csv")
    studio.load_upload("question", "answer")
    studio.update_splits(dev_size=3, test_size=2)
    studio.update_config(steps=2, candidates=2, selection="recency")
    at = app_for(studio, "pages/models.py")
    for role in ("task", "optimizer"):
        _use_server(at, role, server.base_url)
    at.text_input(key="api_key_input").set_value(KEY).run()
    assert studio.api_key == KEY and studio.specs["task"].backend == "compatible"
    at.switch_page("pages/optimize.py").run()
    at.button(key="new_run").click().run()
    no_exception(at)
    assert studio.session is not None and studio.session.started
    assert server.requests_with_key > 0 and server.requests_without_key == 0
    exports = studio.export_run_json() + studio.export_report_md() + studio.export_final_prompt()
    assert KEY not in exports
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in files)
    assert any(p.name.startswith("responses.sqlite") for p in files)  # the response cache was used
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p
