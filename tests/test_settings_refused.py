"""Bad settings are refused with a message naming the setting before any model call is made.

Each bad setting is tried where a user can give it: RunSettings / ModelSettings validation,
GPOSession.create (with models that count their calls: a scripted model and the real OpenAI
path against the fake server), the Studio (the app's facade), and the command line. Each
surface names the setting as its user knows it: the field path in the engine
("optimizer_model.temperature"), the widget in the app ("Optimizer model · Temperature"),
the flag on the command line ("--optimizer-temperature"). An
unknown model name cannot be known before asking the server: its 404 must give a clear
"unknown model" error at the first call, without retries, and on "Test connection".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpo_core.cli import main as cli_main
from gpo_core.errors import ConfigError, EndpointDownError
from gpo_core.models.demo import DemoChatModel
from gpo_core.models.openai_chat import OpenAIChatModel, check_connection
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.settings import MAX_CANDIDATES, ModelSettings
from gpo_core.studio.studio import Studio
from gpo_core.tasks.task import Example, Task
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from app_support import app_for, arithmetic_csv, make_studio, no_exception, texts
from engine_fakes import run_settings

ROOT = Path(__file__).resolve().parent.parent
N_EXAMPLES = 20

#: (flat settings changes, the setting the engine's error must name)
BAD_CONFIGS = [
    ({"budget_initial": 10, "budget_final": 20}, "budget_final"),
    ({"k": 0}, "k"),
    ({"k": -2}, "k"),
    ({"candidates": MAX_CANDIDATES + 1}, "candidates"),
    ({"candidates": 0}, "candidates"),
    ({"steps": 0}, "steps"),
    ({"dev_size": 0}, "dev_size"),
    ({"optimizer_temperature": -0.5}, "optimizer_model.temperature"),
    ({"task_temperature": -1.0}, "task_model.temperature"),
    ({"selection": "random"}, "selection"),
    ({"schedule": "exponential"}, "schedule"),
    ({"warmup": 50, "steps": 5}, "warmup"),
    ({"task_max_tokens": 0}, "task_model.max_tokens"),
]

#: (flat settings changes, setting) that only the task's size can refute
TOO_BIG = [
    ({"dev_size": N_EXAMPLES + 1, "test_size": 0}, "dev_size"),
    ({"dev_size": 4, "test_size": N_EXAMPLES + 1}, "test_size"),
    ({"dev_size": 12, "test_size": 12}, "dev_size"),  # together larger than the data
]


def parity_task() -> Task:
    return Task("parity", [Example(f"Is {n} even?", "yes" if n % 2 == 0 else "no") for n in range(N_EXAMPLES)],
                answer_type="yes_no")


def counting_models(server=None) -> tuple[Models, list]:
    """Models that count calls: scripted ones, or OpenAIChatModel on the fake server."""
    if server is None:
        task, opt = ScriptedChatModel(["yes"], name="t"), ScriptedChatModel(["<INS>Think twice.</INS>"], name="o")
        return Models(task, opt, HashingEmbedder()), [task, opt]
    task = OpenAIChatModel("fake-model", api_key="sk-x", base_url=server.base_url)
    return Models(task, task, HashingEmbedder()), []


@pytest.mark.parametrize("changes,setting", BAD_CONFIGS + TOO_BIG)
def test_bad_run_settings_are_refused_before_any_call(changes, setting, fake_server, tmp_path):
    base = {"steps": 5, "candidates": 2, "dev_size": 4, "test_size": 2}
    cfg = run_settings(**(base | changes))
    if (changes, setting) in BAD_CONFIGS:
        with pytest.raises(ConfigError, match=f"setting '{setting}'"):
            cfg.validate()
    for server in (None, fake_server):
        models, scripted = counting_models(server)
        with pytest.raises(ConfigError) as err:
            s = GPOSession.create(parity_task(), cfg, models, run_dir=tmp_path / "run")
            s.start()
        assert err.value.setting == setting
        assert "\n" not in str(err.value) and str(err.value).startswith("setting '")
        assert all(m.call_count == 0 for m in scripted)
        assert not (tmp_path / "run" / "run.json").exists()
    assert fake_server.requests_served == 0


@pytest.mark.parametrize("changes,setting", [
    ({"backend": "local", "model": "tiny-model.bin"}, "model"),  # not a .gguf file
    ({"backend": "local", "model": str(Path("/nonexistent/model.gguf"))}, "model"),
    ({"backend": "compatible", "model": "fake-model"}, "base_url"),
    ({"backend": "compatible", "model": "", "base_url": "http://127.0.0.1:9/v1"}, "model"),
    ({"backend": "openai", "model": "gpt-4o-mini", "base_url": "ftp://host/v1"}, "base_url"),
    ({"backend": "openai", "model": "gpt-4o-mini", "temperature": -0.1}, "temperature"),
    ({"backend": "openai", "model": "gpt-4o-mini", "temperature": 2.5}, "temperature"),
    ({"backend": "openai", "model": "gpt-4o-mini", "max_tokens": 0}, "max_tokens"),
    ({"backend": "openai", "model": "gpt-4o-mini", "concurrency": 0}, "concurrency"),
    ({"backend": "openai", "model": "gpt-4o-mini", "timeout_s": 0}, "timeout_s"),
    ({"backend": "vllm", "model": "x"}, "backend"),
])
def test_bad_model_settings_are_refused(changes, setting):
    with pytest.raises(ConfigError, match=f"setting 'task_model.{setting}'"):
        ModelSettings(**changes).validate("engine", "task")


def test_cli_local_backend_refuses_a_model_that_is_not_gguf(tmp_path, capsys):
    code = cli_main(["run", "--task", str(ROOT / "sample_tasks" / "navigation"), "--out", str(tmp_path / "o"),
                     "--task-model", "tiny-model.bin"])
    assert code == 2 and "setting '--task-model'" in capsys.readouterr().err


def test_studio_refuses_bad_settings_and_keeps_the_previous_ones(tmp_path):
    studio = make_studio(tmp_path)
    studio.tasks.preview_upload(arithmetic_csv(20), "arith.csv")
    studio.tasks.load_upload("question", "answer")
    before = studio.draft.optimizer
    from dataclasses import fields

    from gpo_core.settings import OptimizerSettings, label_of

    names = {f.name for f in fields(OptimizerSettings)}
    for changes, setting in BAD_CONFIGS:
        if not set(changes) <= names:
            continue
        widget = label_of(OptimizerSettings(), setting, "app")  # the error names the widget touched
        with pytest.raises(ConfigError) as err:
            studio.draft.update_optimizer(**changes)
        assert err.value.setting == widget and widget != setting
        assert studio.draft.optimizer == before
    with pytest.raises(ConfigError, match="dev_size"):
        studio.tasks.update_splits(dev_size=21, test_size=0)
    spec = studio.draft.settings.task_model
    with pytest.raises(ConfigError, match="Task model · Temperature"):
        studio.models.set_model("task", backend="local", model="", base_url=None, temperature=-1, max_tokens=64,
                         concurrency=1, timeout_s=30)
    with pytest.raises(ConfigError, match="Task model · Model"):
        studio.models.set_model("task", backend="local", model="tiny-model.bin", base_url=None, temperature=0,
                         max_tokens=64, concurrency=1, timeout_s=30)
    assert studio.draft.settings.task_model == spec
    assert studio.runs.session is None
    models = studio.models.override
    assert models is not None and isinstance(models.task, DemoChatModel) and isinstance(models.optimizer, DemoChatModel)
    assert models.task.call_count == 0 and models.optimizer.call_count == 0
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("run.json"))


def test_models_page_refuses_a_local_model_that_is_not_gguf(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/models.py")
    at.selectbox(key="task_embedded").set_value("A .gguf file on this computer").run()
    at.text_input(key="task_gguf_path").set_value("tiny-model.bin").run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1 and "Task model · Model" in errors[0] and ".gguf" in errors[0], errors
    assert studio.draft.settings.task_model.model != "tiny-model.bin"


# ----------------------------------------------------------------------------- unknown model


def test_unknown_model_gives_a_clear_error_at_the_first_calls_without_retries(make_fake_server, tmp_path):
    server = make_fake_server(known_models={"fake-model"})
    model = OpenAIChatModel("gpt-nope", api_key="sk-x", base_url=server.base_url, backoff_s=0.01)
    ok, message, _ = check_connection(model)
    assert not ok and message.startswith("unknown model 'gpt-nope' (HTTP 404") and server.chat_requests == 1
    session = GPOSession.create(parity_task(), run_settings(steps=2, candidates=2, dev_size=4, test_size=2),
                                Models(model, model, HashingEmbedder()), run_dir=tmp_path / "run")
    with pytest.raises(EndpointDownError, match="unknown model 'gpt-nope'"):
        session.start()
    assert server.chat_requests == 1 + 4  # one call per dev example, none retried
    assert not session.started


def test_models_page_test_connection_names_an_unknown_model(make_fake_server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = make_fake_server(known_models={"fake-model"})
    studio = Studio(runs_root=tmp_path / "runs")
    at = app_for(studio, "pages/models.py")
    at.radio(key="optimizer_backend").set_value("compatible").run()
    at.text_input(key="optimizer_model_compatible").set_value("gpt-nope")
    at.text_input(key="optimizer_base_url_compatible").set_value(server.base_url).run()
    at.button(key="optimizer_test").click().run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1 and "unknown model 'gpt-nope'" in errors[0] and "HTTP 404" in errors[0], errors
    assert server.chat_requests == 1


# ----------------------------------------------------------------------------- command line


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GPO_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "OPENAI_API_KEY": "sk-x"}
    return subprocess.run([sys.executable, "-m", "gpo_core", "run", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture
def task_csv(tmp_path) -> Path:
    path = tmp_path / "parity.csv"
    path.write_text("question,answer\n" + "".join(f"Is {n} even?,{'yes' if n % 2 == 0 else 'no'}\n"
                                                  for n in range(N_EXAMPLES)))
    return path


@pytest.mark.parametrize("args,setting", [
    (["--budget-initial", "10", "--budget-final", "20"], "'--budget-final'"),
    (["--k", "0"], "'--k'"),
    (["--candidates", str(MAX_CANDIDATES + 1)], "'--candidates'"),
    (["--dev-size", "500"], "'--dev-size'"),          # refuted by the task's size, in the engine
    (["--optimizer-temperature", "-0.5"], "'--optimizer-temperature'"),
    (["--optimizer-temperature", "3"], "'--optimizer-temperature'"),  # defect 6
    (["--task-temperature", "2.5"], "'--task-temperature'"),
    (["--concurrency", "0"], "'--concurrency'"),
    (["--task-max-tokens", "0"], "'--task-max-tokens'"),
    (["--timeout", "0"], "'--timeout'"),
    (["--selection", "relevance", "--warmup", "9", "--steps", "3"], "'--warmup'"),
])
def test_cli_refuses_bad_settings_before_any_call(args, setting, fake_server, task_csv, tmp_path):
    out = tmp_path / "out"
    r = _cli(["--task", str(task_csv), "--out", str(out), "--backend", "openai", "--base-url", fake_server.base_url,
              "--model", "fake-model", "--dev-size", "4", "--test-size", "2", "--selection", "recency", *args],
             tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: setting {setting}: "), r.stderr
    assert "Traceback" not in r.stderr
    assert fake_server.requests_served == 0
    assert not (out / "run.json").exists()


def test_cli_unknown_model_exits_2_naming_it(make_fake_server, task_csv, tmp_path):
    server = make_fake_server(known_models={"fake-model"})
    r = _cli(["--task", str(task_csv), "--out", str(tmp_path / "out"), "--backend", "openai", "--base-url",
              server.base_url, "--model", "gpt-nope", "--dev-size", "4", "--test-size", "2", "--steps", "2",
              "--selection", "recency"], tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "unknown model 'gpt-nope'" in r.stderr and "HTTP 404" in r.stderr
    assert server.chat_requests == 4  # the dev calls of the starting prompt, none retried
