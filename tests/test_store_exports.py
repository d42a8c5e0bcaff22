import json
import os

import pytest

from gpo_core.errors import RunFileError
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
from gpo_core.runs.repository import RunStore, load_run

from engine_fakes import fake_models, parity_splits, parity_task, run_settings


def finished_session(run_dir):
    s = GPOSession.create(parity_task(), run_settings(steps=2, candidates=3, dev_size=None, test_size=None),
                          fake_models(), splits=parity_splits(), run_dir=run_dir, run_id=run_dir.name)
    s.run_auto()
    return s


def test_exports_hold_the_final_prompt_and_every_step(tmp_path):
    s = finished_session(tmp_path / "r1")
    assert final_prompt_text(s) == "Let's think step by step carefully.\n"
    data = json.loads(export_json(s))
    assert data["final_prompt"] == "Let's think step by step carefully."
    assert len(data["steps"]) == 2 and "initial.dev" in data["records"]
    md = export_markdown(s)
    assert "# GPO Studio report: parity" in md and "Let's think step by step carefully." in md
    assert "| 1.1 |" in md and "| 2.1 |" in md


def test_json_export_drops_key_like_fields(tmp_path):
    s = finished_session(tmp_path / "r2")
    s.state.initial["api_key"] = "sk-SENTINEL-should-not-leak"   # settings cannot hold a key at all
    assert "SENTINEL" not in export_json(s)


def test_save_is_atomic_and_schema_versioned(tmp_path):
    finished_session(tmp_path / "r3")
    path = tmp_path / "r3" / "run.json"
    assert json.loads(path.read_text())["schema_version"] == 3
    assert not [p for p in (tmp_path / "r3").iterdir() if p.name.endswith(".tmp")]
    assert load_run(tmp_path / "r3").steps[1].decision.kind == "auto"


def test_corrupt_or_future_run_files_give_a_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("{not json")
    with pytest.raises(RunFileError, match="run.json"):
        load_run(tmp_path / "bad")
    (tmp_path / "bad" / "run.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(RunFileError, match="schema_version"):
        load_run(tmp_path / "bad")


@pytest.mark.parametrize("crafted", ["../outside", "/etc", "a/../../x", "..", "r1/../../etc"])
def test_runs_open_only_from_the_runs_folder(tmp_path, crafted):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(RunFileError):
        store.run_dir(crafted)
    if crafted.startswith("/") or crafted.startswith(".."):
        with pytest.raises(RunFileError):
            store.resolve(crafted)


def test_symlink_escape_is_refused(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    os.symlink(tmp_path, runs / "link")
    with pytest.raises(RunFileError):
        RunStore(runs).run_dir("link")


def test_list_runs_shows_saved_runs(tmp_path):
    finished_session(tmp_path / "runs" / "alpha")
    rows = RunStore(tmp_path / "runs").list_runs()
    assert rows[0]["run_id"] == "alpha" and rows[0]["steps_done"] == 2 and rows[0]["best_dev_accuracy"] == 1.0


def test_csv_export_neutralizes_formula_cells():
    import csv
    import io

    from gpo_core.runs.exports import export_records_csv

    text = export_records_csv([{"input": "=cmd()", "target": "+1", "parsed_answer": "@x", "correct": False,
                                "raw_output": "-2+3", "error": None, "prompt_tokens": 3, "completion_tokens": 1},
                               {"input": "plain", "target": "yes", "parsed_answer": "yes", "correct": True,
                                "raw_output": "yes", "error": None, "prompt_tokens": 3, "completion_tokens": 1}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["input"] for r in rows] == ["'=cmd()", "plain"]
    assert rows[0]["target"] == "'+1" and rows[0]["parsed_answer"] == "'@x" and rows[0]["raw_output"] == "'-2+3"


def test_two_sessions_never_write_the_same_run_unasked(tmp_path):
    from gpo_core.runs.repository import RunInUseError

    first = finished_session(tmp_path / "shared")            # holds the lease by saving
    first.state.settings = first.settings.replace(optimizer=first.config.replace(steps=4))
    with pytest.raises(RunInUseError, match="another session"):
        GPOSession.open(tmp_path / "shared", fake_models())
    second = GPOSession.open(tmp_path / "shared", fake_models(), take_over=True)
    second.state.settings = second.settings.replace(optimizer=second.config.replace(steps=3))
    second.run_auto(1)                                       # the new owner saves
    with pytest.raises(RunInUseError):                       # the old one can no longer overwrite it
        first.run_auto(1)
    assert len(load_run(tmp_path / "shared").steps) == 3


def test_a_stale_lease_is_free_again(tmp_path):
    import time

    from gpo_core.runs.repository import LEASE_TTL_S, claim_run

    finished_session(tmp_path / "old")
    claim_run(tmp_path / "old", "someone-else", now=time.time() - LEASE_TTL_S - 1, force=True)
    GPOSession.open(tmp_path / "old", fake_models())        # no error: the other owner went quiet
