"""Issue 15, storage faults: each one is a clear line naming the file and the fix, no model
call is spent on a run that cannot be saved, and nothing saved before is lost.

Disk faults are injected at the write layer (``os.open`` for writing, ``os.mkdir``,
``os.write``, ``os.replace``, ``os.unlink``) for paths under one folder: a read-only file
system (EROFS) or a full disk (ENOSPC after part of a file is written). Tests run as root
here, so ``chmod`` cannot make a folder read-only, and no small file system can be mounted.
Each case asserts the message a user sees and that the steps saved before are intact.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import namedtuple
from dataclasses import asdict
from pathlib import Path

import pytest

from gpo_core.cli import main as cli_main
from gpo_core.errors import RunFileError, StorageError
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs import storage
from gpo_core.runs.exports import export_json, export_markdown
from gpo_core.runs.repository import DATA_FILE, RUN_FILE, RunInUseError, RunStore, load_run, records_path
from gpo_core.studio.studio import Studio

from app_support import app_for, arithmetic_studio, make_studio, no_exception, started_run, texts
from engine_fakes import fake_models, parity_splits, parity_task, run_settings


# ----------------------------------------------------------------------------- the fault layer
class Disk:
    """Faults at the write layer for paths under ``folder``: ``read_only`` (every write is
    refused with EROFS) or ``full`` (``os.write`` to a matching file writes half, then
    fails with ENOSPC; ``match(path)`` picks the files, default: all)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.mp = monkeypatch
        self.folder: Path | None = None
        self.mode: str | None = None
        self.match = lambda path: True
        self.refused: list[str] = []
        real = {name: getattr(os, name) for name in ("open", "mkdir", "write", "replace", "unlink")}
        self.real = real

        def under(path) -> bool:
            try:
                p = Path(os.fsdecode(path)).absolute()
            except TypeError:
                return False
            return self.folder is not None and (p == self.folder or self.folder in p.parents)

        def refuse(path, code: int):
            self.refused.append(os.fsdecode(path))
            raise OSError(code, os.strerror(code), os.fsdecode(path))

        def fake_open(path, flags, mode=0o777, *, dir_fd=None):
            writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            if self.mode == "read_only" and writing and under(path):
                refuse(path, errno.EROFS)
            return real["open"](path, flags, mode, dir_fd=dir_fd)

        def fake_mkdir(path, mode=0o777, *, dir_fd=None):
            if self.mode == "read_only" and under(path):
                if os.path.isdir(path):
                    raise FileExistsError(errno.EEXIST, "File exists", os.fsdecode(path))
                refuse(path, errno.EROFS)
            return real["mkdir"](path, mode, dir_fd=dir_fd)

        def fake_write(fd, data):
            if self.mode == "full" and fd > 2:
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    target = ""
                if target and under(target) and self.match(Path(target)):
                    half = max(1, len(data) // 2)
                    if len(data) > 1:
                        real["write"](fd, bytes(data[:half]))  # the disk fills up part way through
                    refuse(target, errno.ENOSPC)
            return real["write"](fd, data)

        def fake_replace(src, dst, **kw):
            if self.mode == "read_only" and under(dst):
                refuse(dst, errno.EROFS)
            return real["replace"](src, dst, **kw)

        def fake_unlink(path, *, dir_fd=None):
            if self.mode == "read_only" and under(path):
                refuse(path, errno.EROFS)
            return real["unlink"](path, dir_fd=dir_fd)

        for name, fn in (("open", fake_open), ("mkdir", fake_mkdir), ("write", fake_write),
                         ("replace", fake_replace), ("unlink", fake_unlink)):
            monkeypatch.setattr(os, name, fn)

    def read_only(self, folder: Path) -> None:
        self.folder, self.mode = Path(folder).absolute(), "read_only"

    def full(self, folder: Path, match=lambda path: True) -> None:
        self.folder, self.mode, self.match = Path(folder).absolute(), "full", match

    def healthy(self) -> None:
        self.folder, self.mode = None, None


@pytest.fixture
def disk(monkeypatch) -> Disk:
    return Disk(monkeypatch)


def _tiny_disk(monkeypatch, free_bytes: int = 1_000_000) -> None:
    """Every disk reports ``free_bytes`` free (the preflight's view of a full GPO_HOME)."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - free_bytes, free_bytes))


def _session(run_dir: Path, steps: int = 3, models=None) -> GPOSession:
    return GPOSession.create(parity_task(), run_settings(steps=steps, candidates=3, dev_size=None, test_size=None),
                             models or fake_models(), splits=parity_splits(), run_dir=run_dir, run_id=run_dir.name)


def _calls(models) -> int:
    return len(models.task.calls) + len(models.optimizer.calls)


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder but the lease (which each session rewrites), by name."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != "lease.json"}


def _one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


# ----------------------------------------------------------------------------- CLI: before any call
@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-storage-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    task = tmp_path / "parity.csv"
    task.write_text("question,answer\n" + "".join(f"Is {n} even?,{'yes' if n % 2 == 0 else 'no'}\n"
                                                  for n in range(24)))
    return task


def _cli_args(server, task: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--task", str(task), "--out", str(out), "--backend", "openai", "--base-url", server.base_url,
            "--model", "fake-model", "--steps", "2", "--candidates", "2", "--dev-size", "4", "--test-size", "2",
            "--selection", "recency", *extra]


def test_a_read_only_gpo_home_is_refused_before_any_model_call(fake_server, cli_env, disk, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    disk.read_only(home)
    # the run folder inside the read-only GPO_HOME
    code = cli_main(_cli_args(fake_server, cli_env, home / "run"))
    err = capsys.readouterr().err
    assert code == 2
    _one_line(err)
    assert err.startswith(f"error: {home / 'run'}: cannot be created for the run: read-only file system. "
                          "Make it writable, or choose another --out."), err
    # the run folder elsewhere, the response cache in the read-only GPO_HOME
    code = cli_main(_cli_args(fake_server, cli_env, tmp_path / "run"))
    err = capsys.readouterr().err
    assert code == 2
    _one_line(err)
    assert err.startswith(f"error: {home / 'cache'}: cannot be created for the response cache: read-only file "
                          "system. Make it writable, choose another --cache-dir, or run with --no-cache."), err
    assert fake_server.chat_requests == 0  # no model call was spent
    assert not (tmp_path / "run" / RUN_FILE).exists()
    # the fix it names works: without the cache the same command runs
    code = cli_main(_cli_args(fake_server, cli_env, tmp_path / "run", "--no-cache"))
    assert code == 0, capsys.readouterr().err
    assert len(load_run(tmp_path / "run").decided_steps) == 2


def test_a_full_gpo_home_is_refused_before_any_model_call(fake_server, cli_env, monkeypatch, tmp_path, capsys):
    _tiny_disk(monkeypatch, free_bytes=1_000_000)
    code = cli_main(_cli_args(fake_server, cli_env, tmp_path / "run"))
    err = capsys.readouterr().err
    assert code == 2
    _one_line(err)
    assert err.startswith(f"error: {tmp_path / 'run'}: only 1.0 MB free on its disk; the run needs about "), err
    assert "Free some space on that disk" in err
    assert fake_server.chat_requests == 0
    assert not (tmp_path / "run" / RUN_FILE).exists()


# ----------------------------------------------------------------------------- full disk mid-run
def test_a_disk_that_fills_up_during_a_save_keeps_earlier_steps_and_the_run_resumes(disk, tmp_path):
    run_dir = tmp_path / "run"
    models = fake_models()
    s = _session(run_dir, steps=3, models=models)
    s.run_auto(2)
    before = _snapshot(run_dir)
    assert len(load_run(run_dir).decided_steps) == 2

    disk.full(run_dir, match=lambda p: p.name.startswith(f".{RUN_FILE}."))  # run.json's next version
    with pytest.raises(StorageError) as caught:
        s.run_auto(1)
    msg = str(caught.value)
    assert msg.startswith(f"{run_dir / RUN_FILE}: cannot be written: no space left on device. "), msg
    assert "Steps 1-2 are saved; step 3 was not saved." in msg
    assert msg.endswith("Free some space on that disk, then continue the run (Results page, or run --resume).")
    # the earlier steps are whole on disk, and no half-written file is left
    for name, data in before.items():
        assert (run_dir / name).read_bytes() == data, name
    assert not list(run_dir.rglob("*.tmp"))
    saved = load_run(run_dir)
    assert len(saved.decided_steps) == 2 and saved.pending_step is None

    # space is freed: the run resumes from its saved steps and finishes
    disk.healthy()
    resumed = GPOSession.open(run_dir, fake_models(), owner=s.owner)
    resumed.run_auto()
    assert len(load_run(run_dir).decided_steps) == 3


def test_a_disk_full_while_writing_records_names_the_file_and_keeps_the_run(disk, tmp_path):
    run_dir = tmp_path / "run"
    s = _session(run_dir, steps=3)
    s.start()
    before = _snapshot(run_dir)
    disk.full(run_dir, match=lambda p: ".dev.json." in p.name)  # the next records file
    with pytest.raises(StorageError) as caught:
        s.propose()
    msg = str(caught.value)
    assert msg.startswith(f"{run_dir / 'records'}/s1c"), msg
    assert (".dev.json: cannot be written: no space left on device. The starting prompt's scores are saved, no "
            "step yet; step 1 was not saved. Free some space on that disk") in msg
    for name, data in before.items():
        assert (run_dir / name).read_bytes() == data, name
    assert not list(run_dir.rglob("*.tmp"))
    disk.healthy()
    GPOSession.open(run_dir, fake_models(), owner=s.owner).run_auto()
    assert len(load_run(run_dir).decided_steps) == 3


def test_the_cli_on_a_disk_that_fills_up_exits_with_one_line_and_resumes(fake_server, cli_env, disk, tmp_path,
                                                                         capsys):
    out = tmp_path / "run"
    args = _cli_args(fake_server, cli_env, out, "--cache-dir", str(tmp_path / "cache"))
    saves = {"n": 0}

    def third_save(path: Path) -> bool:  # run.json saved twice per step after the start's save
        if path.name.startswith(f".{RUN_FILE}."):
            saves["n"] += 1
            return saves["n"] >= 4
        return False

    disk.full(out, match=third_save)
    code = cli_main(args)
    err = capsys.readouterr().err
    assert code == 2
    _one_line(err)
    assert err.startswith(f"error: {out / RUN_FILE}: cannot be written: no space left on device. "), err
    assert "Step 1 is saved; step 2 was not saved." in err
    assert len(load_run(out).decided_steps) == 1
    disk.healthy()
    code = cli_main(args + ["--resume"])
    captured = capsys.readouterr()
    assert code == 0, captured.err  # no --take-over needed: the failed command gave its lease up
    assert ": 1 of 2 steps done" in captured.out.splitlines()[0]
    assert len(load_run(out).decided_steps) == 2


# ----------------------------------------------------------------------------- the app: read-only, full
def test_the_app_refuses_a_new_run_on_a_read_only_gpo_home_before_any_call(disk, tmp_path):
    studio = arithmetic_studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    disk.read_only(tmp_path / "runs")
    at.button(key="new_run").click().run()
    no_exception(at)
    errors = texts(at.error)
    assert errors == [f"{tmp_path / 'runs'}: cannot be created for the run: read-only file system. Make it "
                      "writable, or set GPO_HOME to a writable folder and restart the app."], errors
    assert studio.runs.session is None and not list((tmp_path / "runs").glob("*"))


def test_the_app_checks_free_space_before_each_step(monkeypatch, tmp_path):
    studio = started_run(arithmetic_studio(tmp_path), steps=3, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    _tiny_disk(monkeypatch, free_bytes=2_000_000)
    at.button(key="next_step").click().run()
    from app_support import settle

    settle(at)
    no_exception(at)
    errors = texts(at.error)
    run_dir = studio.runs.session.run_dir
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"Running step 1 of 3 failed: {run_dir}: only 2.0 MB free on its disk; the next "
                                "step needs about "), errors
    assert "Nothing was sent to a model. The starting prompt's scores are saved, no step yet." in errors[0]
    assert studio.runs.session.state.steps == []


# ----------------------------------------------------------------------------- damaged run files
def _saved_run(tmp_path: Path, name: str = "r") -> Path:
    run_dir = tmp_path / "runs" / name
    s = _session(run_dir, steps=2)
    s.run_auto()
    (run_dir / "lease.json").unlink()
    return run_dir


def _edit(run_dir: Path, change) -> None:
    data = json.loads((run_dir / RUN_FILE).read_text())
    change(data)
    (run_dir / RUN_FILE).write_text(json.dumps(data))


MISTYPED = [
    (lambda d: d.update(steps="abc"), "field 'steps': expected a list, got a string (\"abc\")"),
    (lambda d: d["steps"][1]["candidates"][0].update(dev_accuracy="high"),
     "field 'steps[1].candidates[0].dev_accuracy': expected a number or null, got a string (\"high\")"),
    (lambda d: d["steps"][0].update(decision=[1]), "field 'steps[0].decision': expected an object or null, got a list"),
    (lambda d: d["trajectory"][0].update(prompt=None), "field 'trajectory[0].prompt': expected a string, got null"),
    (lambda d: d["steps"][0]["usage_dev"].update(calls="many"),
     "field 'steps[0].usage_dev.calls': expected an integer, got a string (\"many\")"),
    (lambda d: d.update(task="parity"), "field 'task': expected an object"),
    (lambda d: d.update(current_entry_id=99), "field 'current_entry_id': 99 is not an entry of the trajectory"),
    (lambda d: d.pop("run_id"), "field 'run_id': missing"),
    (lambda d: d["initial"].update(dev_accuracy="0.5"),
     "field 'initial.dev_accuracy': expected a number or null, got a string (\"0.5\")"),
    (lambda d: d["settings"]["optimizer"].update(steps="x"), "setting 'steps': must be a whole number"),
]


@pytest.mark.parametrize("change,says", MISTYPED, ids=[m[1][:40] for m in MISTYPED])
def test_a_run_json_with_wrong_types_names_the_file_and_the_field(tmp_path, change, says):
    run_dir = _saved_run(tmp_path)
    _edit(run_dir, change)
    damaged = (run_dir / RUN_FILE).read_bytes()
    with pytest.raises(RunFileError) as caught:
        load_run(run_dir)
    msg = str(caught.value)
    assert msg.startswith(f"{run_dir / RUN_FILE}"), msg
    assert says in msg, msg
    assert "\n" not in msg
    # listed with its error, never a traceback; the file is left as it was
    rows = RunStore(tmp_path / "runs").list_runs()
    assert rows == [{"run_id": "r", "error": msg, "updated_at": ""}]
    assert (run_dir / RUN_FILE).read_bytes() == damaged


def test_a_mistyped_run_json_in_the_cli_is_one_line(tmp_path, capsys):
    run_dir = _saved_run(tmp_path)
    _edit(run_dir, lambda d: d.update(steps="abc"))
    code = cli_main(["run", "--out", str(run_dir), "--resume"])
    err = capsys.readouterr().err
    assert code == 2
    _one_line(err)
    assert err.startswith(f"error: {run_dir / RUN_FILE}, field 'steps': expected a list, got a string (\"abc\"); "
                          "the file is damaged"), err


def test_a_run_json_that_is_not_json_or_not_text_names_the_file(tmp_path):
    run_dir = _saved_run(tmp_path)
    (run_dir / RUN_FILE).write_text('{"schema_version": 3, "steps": [')
    with pytest.raises(RunFileError, match=r"run\.json, line 1: not a valid run file"):
        load_run(run_dir)
    (run_dir / RUN_FILE).write_bytes(b"\xff\xfe{}")
    with pytest.raises(RunFileError, match=r"run\.json: not UTF-8 text"):
        load_run(run_dir)


def test_a_missing_or_changed_data_file_is_named(tmp_path):
    run_dir = _saved_run(tmp_path)
    data = (run_dir / DATA_FILE).read_text()
    (run_dir / DATA_FILE).write_text(data.replace("Is 2 even?", "Is 3 even?"))
    with pytest.raises(RunFileError, match=r"data\.json: does not match its checksum in run\.json"):
        load_run(run_dir)
    (run_dir / DATA_FILE).unlink()
    with pytest.raises(RunFileError, match=r"data\.json: missing; the run's examples are gone"):
        load_run(run_dir)


# ----------------------------------------------------------------------------- damaged records
def test_a_corrupt_records_file_is_marked_unreadable_and_the_rest_of_the_run_loads(tmp_path):
    run_dir = _saved_run(tmp_path)
    decision = load_run(run_dir).steps[0].decision
    assert decision is not None and decision.candidate_id is not None
    chosen = decision.candidate_id
    bad = records_path(run_dir, chosen, "dev")
    bad.write_text('[{"input": "Is 2 even?", ')
    mistyped = records_path(run_dir, "initial", "test")
    rows = json.loads(mistyped.read_text())
    rows[1]["correct"] = "yes"
    mistyped.write_text(json.dumps(rows))

    s = GPOSession.open(run_dir, fake_models())
    assert s.records(chosen, "dev") == []
    problem = s.repo.records_problem(chosen, "dev")
    assert problem == f"{bad}, line 1: not valid JSON (Expecting property name enclosed in double quotes); " \
                      "the file is damaged"
    assert s.repo.records_problem("initial", "test") == (f"{mistyped}, field '[1].correct': expected true/false, "
                                                         "got a string (\"yes\"); the file is damaged")
    assert s.records("initial", "dev")  # the other records read fine
    data = json.loads(export_json(s))
    assert set(data["unreadable_records"]) == {f"{chosen}.dev", "initial.test"}
    assert "initial.dev" in data["records"] and f"{chosen}.dev" not in data["records"]
    assert "# GPO Studio report: parity" in export_markdown(s)


def test_the_results_page_renders_with_a_corrupt_record_marked_unreadable(tmp_path):
    studio = arithmetic_studio(tmp_path)
    started_run(studio, steps=2, candidates=2)
    studio.actions.run_auto(1)
    session = studio.runs.require_session()
    assert session.run_dir is not None
    bad = records_path(session.run_dir, "initial", "dev")
    bad.write_text("{not json")
    fresh = make_studio(tmp_path)  # a new browser session opens the saved run from disk
    fresh.runs.open(session.state.run_id, take_over=True)
    at = app_for(fresh, "pages/results.py")
    no_exception(at)
    at.selectbox(key="records_a").set_value("initial").run()
    no_exception(at)
    warnings = texts(at.warning)
    assert any(w.startswith(f"Unreadable: these per-example results cannot be shown. {bad}, line 1: not valid "
                            "JSON") for w in warnings), warnings
    assert len(at.metric) >= 2 and at.code  # the numbers and the final prompt are shown
    assert len(at.get("plotly_chart")) >= 2  # the curves are drawn
    assert [b.label for b in at.download_button][:3] == ["Final prompt (.txt)", "Run (.json, no keys)", "Report (.md)"]


# ----------------------------------------------------------------------------- symbolic links
def test_a_run_json_that_is_a_link_is_refused_listed_read_and_written(tmp_path):
    outside = tmp_path / "secret.json"
    run_dir = _saved_run(tmp_path)
    outside.write_text((run_dir / RUN_FILE).read_text())
    (run_dir / RUN_FILE).unlink()
    os.symlink(outside, run_dir / RUN_FILE)
    with pytest.raises(RunFileError) as caught:
        load_run(run_dir)
    assert str(caught.value) == (f"{run_dir / RUN_FILE}: is a symbolic link; GPO Studio refuses links inside run "
                                 "folders (replace it with the real file or folder)")
    rows = RunStore(tmp_path / "runs").list_runs()
    assert rows[0]["run_id"] == "r" and "is a symbolic link" in rows[0]["error"]
    studio = Studio(runs_root=tmp_path / "runs", models_override=fake_models())
    with pytest.raises(RunFileError, match="symbolic link"):
        studio.runs.open("r")
    before = outside.read_bytes()
    s = _session(run_dir, steps=1)  # a session that would write the run refuses too
    with pytest.raises(RunFileError, match="symbolic link"):
        s.start()
    assert outside.read_bytes() == before


def test_a_records_folder_that_is_a_link_is_refused_and_nothing_is_written_through_it(tmp_path):
    run_dir = _saved_run(tmp_path)
    s = GPOSession.open(run_dir, fake_models())  # open before the link appears
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(run_dir / "records"), elsewhere)
    os.symlink(elsewhere, run_dir / "records")
    before = _snapshot(elsewhere)
    link_says = (f"{run_dir / 'records'}: is a symbolic link; GPO Studio refuses links inside run folders "
                 "(replace it with the real file or folder)")
    rows = RunStore(tmp_path / "runs").list_runs()
    assert rows == [{"run_id": "r", "error": link_says, "updated_at": ""}]
    with pytest.raises(RunFileError, match="records: is a symbolic link"):
        GPOSession.open(run_dir, fake_models(), take_over=True)
    # the session that had it open: reading gives nothing through the link, writing is refused
    assert s.records("initial", "dev") == [] and s.repo.records_problem("initial", "dev") == link_says
    s.state.settings = s.state.settings.replace(optimizer=s.config.replace(steps=3))
    models = s.models
    spent = _calls(models)
    with pytest.raises(RunFileError, match="records: is a symbolic link"):
        s.propose()
    assert _calls(models) == spent  # refused before any model call
    assert _snapshot(elsewhere) == before  # nothing written through the link


def test_a_records_file_that_is_a_link_is_never_read(tmp_path):
    run_dir = _saved_run(tmp_path)
    s = GPOSession.open(run_dir, fake_models())
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps([{"input": "SECRET", "target": "x", "correct": True}]))
    target = records_path(run_dir, "initial", "dev")
    target.unlink()
    os.symlink(secret, target)
    with pytest.raises(RunFileError, match="initial.dev.json: is a symbolic link"):
        load_run(run_dir)
    assert s.records("initial", "dev") == []
    assert "is a symbolic link" in s.repo.records_problem("initial", "dev")
    assert "SECRET" not in export_json(s)


def test_a_run_folder_that_is_a_link_inside_the_runs_folder_is_refused(tmp_path):
    run_dir = _saved_run(tmp_path, "real")
    os.symlink(run_dir, tmp_path / "runs" / "alias")
    rows = {r["run_id"]: r for r in RunStore(tmp_path / "runs").list_runs()}
    assert "error" not in rows["real"] and "is a symbolic link" in rows["alias"]["error"]
    with pytest.raises(RunFileError, match="alias: is a symbolic link"):
        RunStore(tmp_path / "runs").run_dir("alias")


# ----------------------------------------------------------------------------- leases
def test_a_session_that_lost_the_run_spends_no_model_call(tmp_path):
    run_dir = tmp_path / "run"
    models = fake_models()
    first = _session(run_dir, steps=3, models=models)
    first.run_auto(1)
    GPOSession.open(run_dir, fake_models(), owner="studio-" + "b" * 32, take_over=True)
    spent = _calls(models)
    with pytest.raises(RunInUseError) as caught:
        first.propose()
    msg = str(caught.value)
    assert msg.startswith("run run is open in another session: an app session studio-bbbbbbbb…, which last saved "
                          "it 0 s ago; open it anyway to take it over. Nothing was sent to a model. Step 1 is "
                          "saved."), msg
    assert _calls(models) == spent


# ----------------------------------------------------------------------------- size: old files, data once
def _as_schema(run_dir: Path, version: int) -> dict:
    """The saved run rewritten as a schema ``version`` file (examples inside run.json)."""
    s = load_run(run_dir)
    d = s.to_dict()
    d["schema_version"] = version
    d["splits"] = {**d["splits"], "exemplars": d["splits"]["train"]}  # the old files held them twice
    if version == 1:
        settings = d.pop("settings")
        d["config"] = {**settings["splits"], **settings["optimizer"],
                       "task_temperature": settings["task_model"]["temperature"],
                       "optimizer_temperature": settings["optimizer_model"]["temperature"],
                       "task_max_tokens": settings["task_model"]["max_tokens"],
                       "optimizer_max_tokens": settings["optimizer_model"]["max_tokens"]}
        d["models"] = {role: {"backend": "scripted", "model": settings[f"{role}_model"]["model"]}
                       for role in ("task", "optimizer")}
        d.pop("next_serial")
    for key in ("updated_at",):
        d.pop(key, None)
    return d


@pytest.mark.parametrize("version", [1, 2])
def test_schema_1_and_2_run_files_open_and_the_next_save_stores_the_examples_once(tmp_path, version):
    run_dir = _saved_run(tmp_path)
    new = load_run(run_dir)
    old = _as_schema(run_dir, version)
    (run_dir / DATA_FILE).unlink()
    (run_dir / RUN_FILE).write_text(json.dumps(old))
    loaded = load_run(run_dir)
    assert loaded.splits["dev"] == new.splits["dev"] and loaded.splits["train"] == new.splits["train"]
    assert [st.decision.candidate_id for st in loaded.steps] == [st.decision.candidate_id for st in new.steps]
    assert loaded.trajectory == new.trajectory
    if version == 2:
        assert asdict(loaded.settings) == asdict(new.settings)
    # resumed (one more step): saved as schema 3, the examples once, in data.json
    s = GPOSession.open(run_dir, fake_models())
    s.use_models(s.models, s.settings.replace(optimizer=s.config.replace(steps=3)))
    s.run_auto()
    saved = json.loads((run_dir / RUN_FILE).read_text())
    assert saved["schema_version"] == 3 and "splits" not in saved
    data = json.loads((run_dir / DATA_FILE).read_text())
    assert set(data) == {"train", "dev", "test"}  # no second copy of train as "exemplars"
    assert len(load_run(run_dir).decided_steps) == 3


def test_a_save_rewrites_the_step_log_not_the_data(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    s = _session(run_dir, steps=2)
    s.start()
    written: list[str] = []
    real = storage.atomic_write_text

    def spy(path, text, **kw):
        written.append(Path(path).name)
        return real(path, text, **kw)

    import gpo_core.runs.repository as repo_mod

    monkeypatch.setattr(repo_mod, "atomic_write_text", spy)
    s.run_auto()
    assert DATA_FILE not in written and written.count(RUN_FILE) >= 4
    run_json = json.loads((run_dir / RUN_FILE).read_text())
    assert "splits" not in run_json and run_json["data"]["sizes"] == {"train": 20, "dev": 8, "test": 10}
    text = (run_dir / RUN_FILE).read_text()
    assert all(e.input not in text for e in parity_splits().test)  # no test example in run.json


# ----------------------------------------------------------------------------- report and icon
HOSTILE = ["<script>alert('name')</script>", "<img src=x onerror=alert('prompt')>",
           "[click](javascript:alert(1)) ![x](http://example.invalid/x.png) **bold** | cell"]


def test_the_markdown_report_escapes_task_names_prompts_and_warnings(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    s = _session(tmp_path / "run", steps=1)
    s.run_auto()
    s.state.task.name = HOSTILE[0]
    decision = s.state.steps[0].decision
    assert decision is not None and decision.candidate_id is not None
    chosen = s.state.steps[0].candidate(decision.candidate_id)
    chosen.text = HOSTILE[1] + " " + HOSTILE[2]
    s.state.steps[0].warnings.append(HOSTILE[1])
    report = export_markdown(s)
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(report)
    for tag in ("<script", "<img", "<a ", "<strong"):
        assert tag not in html, (tag, html)
    # the text itself is all there, as text
    assert "&lt;script&gt;alert('name')&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert('prompt')&gt;" in html
    assert "GPO Studio report: &lt;script&gt;" in html


def test_the_page_icon_ships_with_the_app_and_is_not_fetched_from_a_font_cdn(tmp_path, monkeypatch):
    import streamlit as st

    seen: dict = {}
    real = st.set_page_config

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "set_page_config", spy)
    at = app_for(make_studio(tmp_path))
    no_exception(at)
    icon = seen.get("page_icon")
    # a ":material/...:" icon makes the browser fetch the favicon from fonts.gstatic.com
    assert isinstance(icon, str) and not icon.startswith(":") and Path(icon).is_file(), icon
    assert Path(icon).resolve().parent.parent == Path(__file__).resolve().parent.parent  # in the repository
