"""``run --resume``: the run continues on its SAVED settings (defect 4), and every flag the
user gives is applied or refused out loud, by name (defect 12).

The CLI runs in-process against the loopback OpenAI-compatible server, so each run takes
well under a second and the server's request log shows which model answered.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gpo_core.cli import main as cli_main

N_EXAMPLES = 24


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-resume-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return tmp_path


def _task_csv(path: Path) -> Path:
    path.write_text("question,answer\n" + "".join(f"Is {n} even?,{'yes' if n % 2 == 0 else 'no'}\n"
                                                  for n in range(N_EXAMPLES)))
    return path


def _first_run(server, tmp_path: Path, *extra: str) -> list[str]:
    """The flags of a 1-step run on the fake server (the run is made by ``_made``)."""
    return ["run", "--task", str(_task_csv(tmp_path / "parity.csv")), "--out", str(tmp_path / "run"),
            "--backend", "openai", "--base-url", server.base_url, "--model", "fake-model", "--steps", "1",
            "--candidates", "2", "--dev-size", "4", "--test-size", "2", "--selection", "recency",
            "--optimizer-temperature", "0.7", "--task-max-tokens", "32", "--seed", "3",
            "--cache-dir", str(tmp_path / "cache"), *extra]


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _saved(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "run.json").read_text())


def _made(server, tmp_path, capsys) -> dict:
    code, out, err = _cli(_first_run(server, tmp_path), capsys)
    assert code == 0, err
    assert "models: task fake-model (" in out and "optimizer fake-model (" in out  # printed at the start
    return _saved(tmp_path)


def _resume(tmp_path: Path, *flags: str) -> list[str]:
    return ["run", "--out", str(tmp_path / "run"), "--resume", "--cache-dir", str(tmp_path / "cache"), *flags]


def test_resume_with_default_flags_continues_on_the_saved_models(fake_server, env, capsys):
    """Defect 4: a bare ``--resume`` must not fall back to the flags' defaults (the
    embedded model, temperature 1.0, ...): it continues on run.json's settings."""
    tmp_path = env
    made = _made(fake_server, tmp_path, capsys)
    served = fake_server.chat_requests
    code, out, err = _cli(_resume(tmp_path, "--steps", "2"), capsys)
    assert code == 0, err
    assert "resuming run " in out and "1 of 1 steps done" in out
    assert "--steps: 1 -> 2" in out.splitlines()
    assert f"models: task fake-model ({fake_server.base_url}), temperature 0, 32 tokens; optimizer fake-model " \
           f"({fake_server.base_url}), temperature 0.7, 200 tokens" in out
    after = _saved(tmp_path)
    assert fake_server.chat_requests > served  # the saved endpoint answered step 2, not an embedded model
    assert after["settings"]["task_model"] == made["settings"]["task_model"]
    assert after["settings"]["optimizer_model"] == made["settings"]["optimizer_model"]
    assert after["settings"]["splits"] == made["settings"]["splits"]
    assert after["settings"]["optimizer"] == made["settings"]["optimizer"] | {"steps": 2}
    assert len([s for s in after["steps"] if s["decision"]]) == 2
    # the run keeps its id (it is not renamed after its folder)
    assert after["run_id"] == made["run_id"] != "run"


def test_rerunning_the_same_command_with_resume_changes_nothing(fake_server, env, capsys):
    tmp_path = env
    made = _made(fake_server, tmp_path, capsys)
    code, out, err = _cli(_first_run(fake_server, tmp_path, "--resume"), capsys)
    assert code == 0, err
    assert "1 of 1 steps done" in out and " -> " not in out
    after = _saved(tmp_path)
    assert after["settings"] == made["settings"] and after["steps"] == made["steps"]


@pytest.mark.parametrize("flags, flag, says", [
    (["--dev-size", "3"], "--dev-size", "this run was split with --dev-size 4"),
    (["--test-size", "0"], "--test-size", "this run was split with --test-size 2"),
    (["--seed", "5"], "--seed", "this run was split with --seed 3"),
    (["--candidates", "3"], "--candidates", "this run's steps were made with --candidates 2"),
    (["--k", "2"], "--k", "this run's steps were made with --k 3"),
    (["--selection", "importance"], "--selection", "made with --selection recency"),
    (["--no-budget"], "--no-budget", "this run's steps were made without --no-budget"),
    (["--enforce-budget"], "--enforce-budget", "this run's steps were made without --enforce-budget"),
    (["--answer-type", "number"], "--answer-type", "this run was made with 'yes_no'"),
    (["--steps", "0"], "--steps", "must be a whole number between 1 and"),
    (["--optimizer-temperature", "3"], "--optimizer-temperature", "must be a number in [0, 2], got 3"),
])
def test_resume_refuses_a_flag_that_cannot_change_by_name(flags, flag, says, fake_server, env, capsys):
    """Defect 12: what cannot change mid-run is refused by name, and nothing is touched."""
    tmp_path = env
    _made(fake_server, tmp_path, capsys)
    before = (tmp_path / "run" / "run.json").read_bytes()
    served = fake_server.chat_requests
    code, out, err = _cli(_resume(tmp_path, *flags), capsys)
    assert code == 2 and err.startswith(f"error: setting '{flag}': ") and says in err, err
    assert err.count("\n") == 1
    assert (tmp_path / "run" / "run.json").read_bytes() == before and fake_server.chat_requests == served


def test_resume_refuses_another_task_and_fewer_steps_than_done(fake_server, env, capsys):
    tmp_path = env
    _made(fake_server, tmp_path, capsys)
    code, _, err = _cli(_resume(tmp_path, "--steps", "2"), capsys)
    assert code == 0, err
    other = _task_csv(tmp_path / "other.csv")
    code, _, err = _cli(_resume(tmp_path, "--task", str(other)), capsys)
    assert code == 2 and err.startswith("error: setting '--task': this run was made on ") and \
        "parity.csv" in err and "resume uses its saved data" in err, err
    code, _, err = _cli(_resume(tmp_path, "--steps", "1"), capsys)
    assert code == 2 and "'--steps': this run has already done 2 steps; give at least 2" in err, err
    # the task file it was made on is accepted (same data), even by another path
    code, _, err = _cli(_resume(tmp_path, "--task", str(tmp_path / "." / "parity.csv")), capsys)
    assert code == 0, err


def test_model_flags_on_resume_switch_the_models_and_say_so(fake_server, env, capsys):
    tmp_path = env
    made = _made(fake_server, tmp_path, capsys)
    code, out, err = _cli(_resume(tmp_path, "--steps", "2", "--optimizer-model", "other-model",
                                  "--optimizer-temperature", "0.2"), capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "--steps: 1 -> 2" in lines
    assert "--optimizer-model: fake-model -> other-model" in lines
    assert "--optimizer-temperature: 0.7 -> 0.2" in lines
    assert any(line.startswith("switching the optimizer model: fake-model (") for line in lines)
    assert not any("task model" in line and "switching" in line for line in lines)
    after = _saved(tmp_path)
    assert after["settings"]["optimizer_model"]["model"] == "other-model"
    assert after["settings"]["optimizer_model"]["temperature"] == 0.2
    assert after["settings"]["task_model"] == made["settings"]["task_model"]
    # step 2's optimizer requests went to the new model, its dev scoring to the saved task model
    last = list(fake_server.received)[-12:]
    assert {"other-model", "fake-model"} <= {body.get("model") for body in last}


def test_a_new_run_needs_a_task_and_a_bare_resume_of_nothing_says_so(fake_server, env, capsys):
    tmp_path = env
    code, _, err = _cli(["run", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and err.startswith("error: setting '--task': "), err
    args = _first_run(fake_server, tmp_path, "--resume")
    code, out, err = _cli(args, capsys)
    assert code == 0, err
    assert f"no saved run in {tmp_path / 'run'}: starting a new one" in out


def test_every_settings_flag_is_a_cli_flag(capsys):
    """Each setting that names a CLI flag has that flag in ``run --help`` (so a field
    appended to the settings cannot silently lack its flag)."""
    from dataclasses import fields

    from gpo_core.settings import ModelSettings, OptimizerSettings, SplitSettings

    with pytest.raises(SystemExit):
        cli_main(["run", "--help"])
    flags = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    for cls in (SplitSettings, OptimizerSettings, ModelSettings):
        for f in fields(cls):
            flag = f.metadata.get("flag")
            for role in ("task", "optimizer"):
                if flag:
                    assert flag.format(role=role) in flags, (cls.__name__, f.name)


# Issue 15, item 7: --resume never silently takes over a run a live session holds.
def _app_holds(tmp_path: Path, owner: str = "studio-" + "a" * 32):
    """A live app session (this process) that opened the run and holds its lease."""
    from gpo_core.models.demo import demo_models
    from gpo_core.optimizer.session import GPOSession

    return GPOSession.open(tmp_path / "run", demo_models(), owner=owner, take_over=True)


def test_resume_refuses_a_run_a_live_app_session_holds_unless_take_over(fake_server, env, capsys):
    tmp_path = env
    _made(fake_server, tmp_path, capsys)
    app = _app_holds(tmp_path)
    before = (tmp_path / "run" / "run.json").read_bytes()
    served = fake_server.chat_requests
    code, out, err = _cli(_resume(tmp_path, "--steps", "2"), capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err == (f"error: {tmp_path / 'run'} is open in another session: an app session studio-aaaaaaaa…, "
                   "which last saved it 0 s ago; pass --take-over to take it over (that session then stops saving "
                   "it)\n")
    assert (tmp_path / "run" / "run.json").read_bytes() == before and fake_server.chat_requests == served
    code, out, err = _cli(_resume(tmp_path, "--steps", "2", "--take-over"), capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("--take-over: took run ") and \
        "over from an app session studio-aaaaaaaa…, which last saved it 0 s ago" in out.splitlines()[0]
    assert len(_saved(tmp_path)["steps"]) == 2
    # the app session that lost the run can no longer save it
    from gpo_core.runs.repository import RunInUseError

    with pytest.raises(RunInUseError, match="open in another session"):
        app.undo()


def test_a_lease_whose_process_is_gone_needs_no_take_over(fake_server, env, capsys):
    import json as _json
    import subprocess
    import sys

    tmp_path = env
    _made(fake_server, tmp_path, capsys)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    lease = tmp_path / "run" / "lease.json"
    import socket
    import time

    lease.write_text(_json.dumps({"owner": "studio-" + "c" * 32, "at": time.time(), "pid": dead_pid,
                                  "host": socket.gethostname()}))  # an app server that was killed
    code, out, err = _cli(_resume(tmp_path, "--steps", "2"), capsys)
    assert code == 0, err
    assert "--take-over" not in out
