"""Home page: what GPO does, where to start, which models are active."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app_support import APP, TIMEOUT, app_for, make_studio, no_exception, texts


def test_home_explains_gpo_and_shows_the_scripted_models(tmp_path):
    at = app_for(make_studio(tmp_path))
    no_exception(at)
    assert at.title[0].value == "GPO Studio"
    body = " ".join(texts(at.markdown))
    assert "edit budget" in body and "optimizer model" in body
    assert "Task" in body and "Optimize" in body  # where to start
    models = at.dataframe[0].value
    assert list(models["model"]) == ["scripted-task", "scripted-optimizer"]
    assert [i.value for i in at.info] == ["No task loaded yet."]


def test_home_default_models_are_the_embedded_offline_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_HOME", str(tmp_path))
    monkeypatch.delenv("GPO_STUDIO_FAKE_MODELS", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    models = at.dataframe[0].value
    assert list(models["backend"]) == ["Embedded (offline)", "Embedded (offline)"]
    assert set(models["where"]) == {"offline, on this CPU"}


def test_each_browser_session_gets_its_own_studio(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_HOME", str(tmp_path))
    a = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    b = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert a.session_state["studio"] is not b.session_state["studio"]
