"""Warm start: a run begun from another run's final prompt records (and shows) where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError
from gpo_core.runs.final import final_entry
from gpo_core.runs.repository import load_run
from gpo_core.runs.warm_start import warm_start_from, warm_start_text
from gpo_core.settings import ModelSettings
from gpo_core.studio import warm_start_choice
from tests.app_support import app_for, arithmetic_studio, no_exception, started_run, wait_idle
from tests.demo_cli import SMALL, run_demo_cli, sums_csv


def _source_run(monkeypatch, capsys, tmp_path: Path) -> Path:
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "s.csv")),
                                "--out", str(tmp_path / "a"), "--steps", "2", *SMALL)
    assert code == 0, err
    return tmp_path / "a"


def test_cli_start_from_records_the_source_run(monkeypatch, capsys, tmp_path: Path):
    a = _source_run(monkeypatch, capsys, tmp_path)
    source = load_run(a)
    code, out, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(tmp_path / "s.csv"), "--out",
                                  str(tmp_path / "b"), "--steps", "1", "--start-from", str(a), *SMALL)
    assert code == 0, err
    assert any(line.startswith("Warm start:") and source.run_id in line for line in out)
    saved = json.loads((tmp_path / "b" / "run.json").read_text())
    rec = saved["task"]["start_from"]
    assert rec["run_id"] == source.run_id and rec["task_model"] == source.settings.task_model.describe()
    assert rec["dev"]["answered"] == 8 and len(rec["dev"]["ci95"]) == 2
    b = load_run(tmp_path / "b")
    assert b.initial is not None and b.initial["prompt"] == final_entry(source).prompt
    assert b.task.initial_instruction == final_entry(source).prompt


@pytest.mark.parametrize(("extra", "message"), [
    (["--instruction", "Hi."], "not both"),
    (["--start-from", "no-such-run"], "no saved run"),
])
def test_cli_start_from_refusals(monkeypatch, capsys, tmp_path: Path, extra, message):
    args = ["--task", str(sums_csv(tmp_path / "s.csv")), "--out", str(tmp_path / "b"), *SMALL, *extra]
    if "--instruction" in extra:
        args += ["--start-from", str(_source_run(monkeypatch, capsys, tmp_path))]
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, *args)
    assert code == 2 and "--start-from" in err and message in err


def test_resume_with_start_from_is_refused(monkeypatch, capsys, tmp_path: Path):
    a = _source_run(monkeypatch, capsys, tmp_path)
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--out", str(a), "--resume", "--start-from", str(a))
    assert code == 2 and "keeps its starting prompt" in err


def test_the_record_says_when_the_task_model_differs(monkeypatch, capsys, tmp_path: Path):
    ws = warm_start_from(load_run(_source_run(monkeypatch, capsys, tmp_path)))
    other = ws.record(ModelSettings(backend="openai", model="gpt-4o-mini"), "s")
    assert other["same_task_model"] is False
    assert "this run's task model is gpt-4o-mini (OpenAI)" in warm_start_text(other)
    same = ws.record(load_run(tmp_path / "a").settings.task_model, "other task")
    assert "SAME task model" in warm_start_text(same) and "a different task" in warm_start_text(same)


def test_an_unscored_run_cannot_be_a_warm_start(tmp_path: Path):
    studio = arithmetic_studio(tmp_path)
    state = studio.runs.create().state
    with pytest.raises(ConfigError, match="Start from.*no final prompt"):
        warm_start_from(state, warm_start_choice.WIDGET)


def test_app_warm_start_from_a_saved_run_is_shown_on_the_optimize_page(tmp_path: Path):
    studio = started_run(arithmetic_studio(tmp_path))
    source = studio.runs.run_id
    assert source is not None
    studio.draft.update_optimizer(steps=1)
    ws = warm_start_choice.warm_start(studio, source)
    assert ws is not None
    studio.actions.submit_new_run(ws)
    wait_idle(studio)
    state = studio.runs.require_session().state
    assert state.run_id != source and state.task.start_from["run_id"] == source
    assert state.initial is not None and state.initial["prompt"] == ws.prompt
    at = app_for(studio, "pages/optimize.py")
    no_exception(at)
    shown = [i.value.replace("\\", "") for i in at.info]  # markdown-escaped text
    assert any(v.startswith("Warm start:") and source in v and "SAME task model" in v for v in shown)
