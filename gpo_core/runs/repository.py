"""Run folders on disk: atomic saves after every step, reopening, and path safety.

Layout of one run (schema 3): ``<runs root>/<run_id>/run.json`` (the :class:`RunState`
without its examples: settings, trajectory and the step log, with a schema version),
``data.json`` (the train/dev/test examples, written once when the run is first saved, with
its SHA-256 in run.json), ``records/<candidate id>.<split>.json`` (per-example records) and
``lease.json`` (which session may write the run). A save rewrites run.json, whose size
grows with the steps, never with the data (issue 15: a 19 MB task made a 39 MB run.json,
the examples twice, rewritten after every step). Schema 1 and 2 files (examples inside
run.json) still open; their next save writes data.json and a schema-3 run.json.

:class:`RunRepository` is one run's storage as the session uses it; the module functions
below are its parts. Every write is atomic (:mod:`gpo_core.runs.storage`: temp file +
``os.replace``), so a killed process or a full disk leaves the previous complete file; a
disk fault becomes one :class:`~gpo_core.errors.StorageError` line saying what is saved.
Runs open only from inside the runs root: a crafted id or path cannot escape it, and a
symbolic link inside a run folder (run.json, data.json, records/...) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from gpo_core.errors import ConfigError, GPOError, RunFileError, StorageError
from gpo_core.runs import storage
from gpo_core.runs.records import SCHEMA_VERSION, SPLIT_KEYS, RunState, compact_splits
from gpo_core.runs.schema import SchemaError, check_fields, check_value
from gpo_core.runs.storage import atomic_write_text, preflight, read_text, refuse_links

__all__ = ["DATA_FILE", "LEASE_FILE", "RUN_FILE", "RunInUseError", "RunRepository", "RunStore", "atomic_write_text",
           "claim_run", "default_runs_root", "gpo_home", "lease_owner", "load_records", "load_run", "records_path",
           "save_records", "save_run"]

RUN_FILE = "run.json"
DATA_FILE = "data.json"
RECORDS_DIR = "records"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: What to do about a run file that does not load.
_DAMAGED = "the file is damaged: fix that field, or delete the run folder"


def gpo_home() -> Path:
    """Data folder: $GPO_HOME if set, else the per-user data folder (platformdirs)."""
    env = os.environ.get("GPO_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("gpo-studio"))


def default_runs_root() -> Path:
    return gpo_home() / "runs"


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# The examples (data.json) ------------------------------------------------------------------
def save_data(run_dir: Path, splits: dict) -> dict:
    """Write the run's examples to ``run_dir/data.json`` (atomically) and return the
    reference run.json keeps: {"file", "sha256", "sizes": {split: examples}}."""
    text = _dumps(compact_splits(splits))
    atomic_write_text(Path(run_dir) / DATA_FILE, text, base=Path(run_dir), durable=True)
    return {"file": DATA_FILE, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "sizes": {k: len(splits.get(k) or []) for k in SPLIT_KEYS}}


def _check_splits(splits: object, where: str) -> None:
    if not isinstance(splits, dict):
        raise SchemaError(where, "expected an object of splits")
    for key in (*SPLIT_KEYS, "exemplars"):
        if key not in splits or (key == "exemplars" and splits[key] is None):
            if key == "exemplars":
                continue
            raise SchemaError(f"{where}.{key}", "missing")
        check_value(splits[key], list[dict[str, str]], f"{where}.{key}")
        for i, ex in enumerate(splits[key]):
            for field in ("input", "target"):
                if field not in ex:
                    raise SchemaError(f"{where}.{key}[{i}].{field}", "missing")


def _load_data(run_dir: Path, ref: object, run_file: Path) -> dict:
    """The splits of a schema-3 run from data.json, checked against run.json's reference."""
    if not isinstance(ref, dict) or ref.get("file") != DATA_FILE or not isinstance(ref.get("sha256"), str):
        raise RunFileError(f"{run_file}, field 'data': expected {{\"file\": \"{DATA_FILE}\", \"sha256\": ...}}; "
                           f"{_DAMAGED}")
    path = run_dir / DATA_FILE
    try:
        text = read_text(path, base=run_dir)
    except FileNotFoundError:
        raise RunFileError(f"{path}: missing; the run's examples are gone (restore the file, or delete the "
                           "run folder)") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not UTF-8 text; the file is damaged (restore it, or delete the run "
                           "folder)") from None
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != ref["sha256"]:
        raise RunFileError(f"{path}: does not match its checksum in {RUN_FILE} (changed or damaged); restore "
                           "it, or delete the run folder")
    try:
        splits = json.loads(text)
        _check_splits(splits, "data")
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}); restore it, or delete the run "
                           "folder") from None
    except SchemaError as e:
        raise RunFileError(f"{path}, field '{e.field.removeprefix('data.')}': {e.reason}; restore it, or delete "
                           "the run folder") from None
    return splits


# run.json ------------------------------------------------------------------------------------
def save_run(state: RunState, run_dir: Path, data_ref: dict | None = None) -> Path:
    """Write ``run_dir/run.json`` atomically (schema 3, no examples in it); writes data.json
    first unless ``data_ref`` says it is already saved. Returns run.json's path. Raises
    StorageError when the disk refuses (the previous files stay whole)."""
    run_dir = Path(run_dir)
    if data_ref is None:
        data_ref = save_data(run_dir, state.splits)
    d = state.to_dict(include_splits=False)
    d["data"] = data_ref
    path = run_dir / RUN_FILE
    atomic_write_text(path, _dumps(d), base=run_dir, durable=True)
    return path


def check_run_folder(run_dir: Path) -> None:
    """RunFileError naming the first symbolic link inside ``run_dir`` (its files, records/
    and the files in it): such a folder is refused for listing, reading and writing, since a
    link could make the app read a file outside the runs folder or write into one."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / RECORDS_DIR):
        if folder is not run_dir and folder.is_symlink():
            raise storage.link_error(folder)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        except OSError as e:
            raise storage.storage_error(folder, e, "cannot be read") from None
        for entry in entries:
            if entry.is_symlink():
                raise storage.link_error(Path(entry.path))


#: The typed keys of a run's "initial" record (see :func:`gpo_core.optimizer.transitions.start_run`).
_INITIAL_FIELDS: dict[str, object] = {"prompt": str, "dev_accuracy": float | None, "test_accuracy": float | None,
                                      "dev_errors": int, "test_errors": int, "usage": dict}


def _check_state(data: dict, path: Path) -> None:
    """Type checks of a run file's fields (schema module), then what types cannot say."""
    try:
        check_fields(data, RunState, skip=("settings", "splits", "schema_version", "task"))
        if not isinstance(data.get("task"), dict):
            raise SchemaError("task", "expected an object" if "task" in data else "missing")
        from gpo_core.runs.records import RunTask

        check_fields(data["task"], RunTask, "task")
        if "settings" not in data and not ("config" in data and "models" in data):
            raise SchemaError("settings", "missing")
        if "splits" in data:
            _check_splits(data["splits"], "splits")
        initial = data.get("initial")
        if isinstance(initial, dict):  # the starting prompt's scores (a plain dict in the records)
            for key, hint in _INITIAL_FIELDS.items():
                if key in initial:
                    check_value(initial[key], hint, f"initial.{key}")
        n, cur = len(data.get("trajectory") or []), data.get("current_entry_id", 0)
        if n and not 0 <= cur < n:
            raise SchemaError("current_entry_id", f"{cur} is not an entry of the trajectory (0-{n - 1})")
    except SchemaError as e:
        raise RunFileError(f"{path}, {e}; {_DAMAGED}") from None


def load_run_and_data(run_dir: Path, *, with_data: bool = True) -> tuple[RunState, dict | None]:
    """The run saved in ``run_dir`` and its data.json reference (None for a schema 1/2
    file, whose examples are inside run.json). ``with_data=False`` skips data.json (the
    state's splits are then empty: for listing runs). Raises RunFileError naming the file
    (and the field) for a missing, damaged, mistyped or newer-schema file, or a symbolic
    link in the run folder; StorageError when the disk refuses to read."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    check_run_folder(run_dir)
    try:
        text = read_text(path, base=run_dir)
    except FileNotFoundError:
        raise RunFileError(f"{path}: no saved run here") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not UTF-8 text; the file is damaged (delete the run folder)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}, line {e.lineno}: not a valid run file ({e.msg}); the file is damaged "
                           "(delete the run folder)") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(version, int) or isinstance(version, bool) \
            or not 1 <= version <= SCHEMA_VERSION:
        raise RunFileError(f"{path}: unsupported schema_version {version!r} (this build reads 1 to {SCHEMA_VERSION})")
    data_ref = None
    if "splits" not in data and version >= 3:
        data_ref = data.get("data")
        if with_data:
            data["splits"] = _load_data(run_dir, data_ref, path)
    _check_state(data, path)
    try:
        state = RunState.from_dict(data)
    except ConfigError as e:
        raise RunFileError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunFileError(f"{path}: not a valid run file ({type(e).__name__}: {e}); {_DAMAGED}") from None
    return state, data_ref


def load_run(run_dir: Path) -> RunState:
    """Read the run saved in ``run_dir`` (schema 1, 2 or 3). Raises RunFileError naming the
    file and the field on a missing, corrupt, mistyped or newer-schema file."""
    return load_run_and_data(run_dir)[0]


# Per-example records -------------------------------------------------------------------------
#: The splits per-example records are kept for.
RECORD_SPLITS: tuple[str, ...] = ("dev", "test")


def records_path(run_dir: Path, key: str, split: str) -> Path:
    """``run_dir/records/<key>.<split>.json``: the records of one scored prompt on one split."""
    return Path(run_dir) / RECORDS_DIR / f"{key}.{split}.json"


def save_records(run_dir: Path, key: str, split: str, records: list[dict]) -> None:
    """Per-example records of one scored prompt on one split (list of dicts), atomically.
    StorageError when the disk refuses; RunFileError for a link in the run folder."""
    atomic_write_text(records_path(run_dir, key, split), _dumps(records), base=Path(run_dir))


def load_records(run_dir: Path, key: str, split: str) -> list[dict] | None:
    """The saved per-example records, or None when none were saved. RunFileError naming the
    file when it is not a list of record objects (damaged) or is a symbolic link."""
    from gpo_core.scoring.results import ExampleRecord

    p = records_path(run_dir, key, split)
    try:
        text = read_text(p, base=Path(run_dir))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise RunFileError(f"{p}: not UTF-8 text; the file is damaged") from None
    try:
        records = json.loads(text)
        check_value(records, list, "records")
        for i, rec in enumerate(records):
            check_fields(rec, ExampleRecord, f"[{i}]", required=False)
    except json.JSONDecodeError as e:
        raise RunFileError(f"{p}, line {e.lineno}: not valid JSON ({e.msg}); the file is damaged") from None
    except SchemaError as e:
        raise RunFileError(f"{p}, field '{e.field}': {e.reason}; the file is damaged") from None
    return records


# The runs folder -------------------------------------------------------------------------
class RunStore:
    """The runs folder. ``run_dir(run_id)`` refuses ids that are not plain names and run
    folders that are symbolic links, and ``resolve(path)`` refuses any path outside the
    root (RunFileError)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_runs_root()

    def run_dir(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
            raise RunFileError(f"run id {run_id!r} is not a plain run name")
        if (self.root / run_id).is_symlink():
            raise storage.link_error(self.root / run_id)
        return self.resolve(self.root / run_id)

    def resolve(self, path: str | Path) -> Path:
        root = self.root.resolve()
        p = Path(path)
        p = (p if p.is_absolute() else root / p).resolve()
        if p != root and root not in p.parents:
            raise RunFileError(f"{path}: outside the runs folder {root}")
        return p

    def list_runs(self) -> list[dict]:
        """Saved runs, newest first: dicts with run_id, task, steps done, best dev accuracy,
        updated_at. Unreadable folders (and links, which are refused) are listed with an
        "error" key instead of hiding."""
        out = []
        if not self.root.exists():
            return out
        for d in self.root.iterdir():
            if d.is_symlink():
                if (d / RUN_FILE).exists() or d.is_dir():
                    out.append({"run_id": d.name, "error": str(storage.link_error(d)), "updated_at": ""})
                continue
            if not (d / RUN_FILE).exists() and not (d / RUN_FILE).is_symlink():
                continue  # not a run
            out.append(_summary_row(d))
        out.sort(key=lambda r: r["updated_at"], reverse=True)
        return out


#: Summary rows of run folders by (run.json path, modification time in ns, size in bytes): the
#: runs list is drawn on every rerun of the Results and Optimize pages, and run.json is only
#: ever replaced whole (atomic writes), so an unchanged file gives the same row. Bounded.
_SUMMARIES: dict[tuple[str, int, int], dict] = {}
_SUMMARIES_MAX = 2048


def _summary_row(d: Path) -> dict:
    """The :meth:`RunStore.list_runs` row of run folder ``d`` (read once per version of its run.json)."""
    try:
        st = (d / RUN_FILE).stat()
        key = (str(d / RUN_FILE), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _SUMMARIES:
        return dict(_SUMMARIES[key])
    try:
        s = load_run_and_data(d, with_data=False)[0]
    except (RunFileError, StorageError) as e:
        return {"run_id": d.name, "error": str(e), "updated_at": ""}
    chosen = [e.dev_accuracy for e in s.trajectory if e.chosen]
    row = {"run_id": d.name, "task": s.task.name, "steps_done": len(s.decided_steps),
           "steps_total": s.settings.optimizer.steps, "best_dev_accuracy": max(chosen) if chosen else None,
           "dev_size": (s.initial or {}).get("dev_n")
           or max((c.dev_n for st_ in s.steps for c in st_.candidates), default=0) or None,
           "updated_at": s.updated_at or s.created_at}
    if key is not None:
        if len(_SUMMARIES) >= _SUMMARIES_MAX:
            _SUMMARIES.clear()
        _SUMMARIES[key] = dict(row)
    return row


# The lease -----------------------------------------------------------------------------------
LEASE_FILE = "lease.json"
#: A session that has not saved for this long no longer holds its run (seconds).
LEASE_TTL_S = 15 * 60


class RunInUseError(RunFileError):
    """The run is held by another live session (browser tab or CLI process). ``owner``: the
    holder's token ("studio-..." for an app session, "cli-..." for a command line run);
    ``age_s``: seconds since it last saved."""

    def __init__(self, message: str, owner: str | None = None, age_s: float | None = None):
        super().__init__(message)
        self.owner, self.age_s = owner, age_s


def describe_owner(owner: object) -> str:
    """Who holds a lease, in words: "an app session studio-1a2b3c4d…", "a command-line run
    cli-…" or "a session …"."""
    token = str(owner)
    short = token[:15] + "…" if len(token) > 16 else token
    if token.startswith("studio-"):
        return f"an app session {short}"
    if token.startswith("cli-"):
        return f"a command-line run {short}"
    return f"a session {short}"


def age_text(seconds: float) -> str:
    """A lease's age in words: "42 s", "7 min"."""
    s = max(0, int(seconds))
    return f"{s} s" if s < 120 else f"{s // 60} min"


def read_lease(run_dir: Path) -> dict | None:
    """The run's lease {"owner", "at"} (None when there is none or it is unreadable)."""
    try:
        held = json.loads(read_text(Path(run_dir) / LEASE_FILE, base=Path(run_dir)))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, StorageError):
        return None
    if not isinstance(held, dict) or not isinstance(held.get("at"), (int, float)):
        return None
    return held


def lease_holder(run_dir: Path, owner: str, *, ttl_s: float = LEASE_TTL_S,
                 now: float | None = None) -> tuple[str, float] | None:
    """(owner token, seconds since it saved) of ANOTHER live session holding the run's
    lease, or None when ``owner`` may write it (no lease, its own, or a stale one)."""
    now = time.time() if now is None else now
    held = read_lease(run_dir)
    if held is None or held.get("owner") in (None, owner) or held.get("released") or now - float(held["at"]) >= ttl_s:
        return None
    if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int) and not _alive(held["pid"]):
        return None  # its process (an app server, a command) is gone: nobody holds the run
    return str(held.get("owner")), now - float(held["at"])


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def claim_run(run_dir: Path, owner: str, *, force: bool = False, ttl_s: float = LEASE_TTL_S,
              now: float | None = None) -> None:
    """Take the run's lease for ``owner`` (an opaque session token, never a secret).

    A lease is held by the last owner that saved within ``ttl_s`` seconds. Raises
    RunInUseError (saying who holds it and how long ago it saved) when another owner holds
    it, unless ``force`` (take over, e.g. after a browser reload left the old session's
    lease behind). Two sessions therefore never write the same run without the user saying
    so. StorageError when the lease cannot be written (read-only or full disk)."""
    now = time.time() if now is None else now
    holder = lease_holder(run_dir, owner, ttl_s=ttl_s, now=now)
    if not force and holder is not None:
        other, age = holder
        raise RunInUseError(f"run {Path(run_dir).name} is open in another session: {describe_owner(other)}, which "
                            f"last saved it {age_text(age)} ago; open it anyway to take it over", other, age)
    lease = {"owner": owner, "at": now, "pid": os.getpid(), "host": socket.gethostname()}
    atomic_write_text(Path(run_dir) / LEASE_FILE, json.dumps(lease), base=Path(run_dir))


def release_run(run_dir: Path, owner: str) -> None:
    """Give the run's lease up if ``owner`` holds it (a command-line run that ended), so the
    next session to open the run needs no take-over. The lease stays, marked released, so
    a session the run was taken from still cannot write it unasked. Never raises."""
    try:
        if lease_owner(run_dir) == owner:
            lease = {"owner": owner, "at": time.time(), "released": True}
            atomic_write_text(Path(run_dir) / LEASE_FILE, json.dumps(lease), base=Path(run_dir))
    except (GPOError, OSError):
        pass


def lease_owner(run_dir: Path) -> str | None:
    """Owner token of the run's lease, or None."""
    held = read_lease(run_dir)
    return None if held is None else held.get("owner")


# One run's storage ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedMark:
    """What the last successful save (or the load) put on disk: the starting prompt scored,
    the decided steps, and the step number of a pending step saved (or None)."""

    started: bool
    decided: int
    pending: int | None

    @classmethod
    def of(cls, state: RunState) -> SavedMark:
        p = state.pending_step
        return cls(state.initial is not None, len(state.decided_steps), p.step if p is not None else None)


def _steps_text(first: int, last: int, verb: tuple[str, str]) -> str:
    if last <= first:
        return f"step {first} {verb[0]}"
    return f"steps {first}-{last} {verb[1]}"


def kept_text(saved: SavedMark | None, state: RunState) -> str:
    """Exactly what of ``state`` is on disk, given the last save: "Steps 1-3 are saved; step 4
    was not saved." (or "Nothing of this run is saved yet."). Source: issue 15, item 7."""
    return marks_text(saved or SavedMark(False, 0, None), SavedMark.of(state))


def marks_text(saved: SavedMark, now: SavedMark) -> str:
    """:func:`kept_text` from the mark of what is on disk and the mark of the run in memory."""
    n = saved.decided
    if n >= 1:
        head = _steps_text(1, n, ("is saved", "are saved")).capitalize()
        if saved.pending is not None:
            head += f", and step {saved.pending} awaiting your decision"
    elif saved.started:
        head = "The starting prompt's scores are saved, no step yet"
        if saved.pending is not None:
            head = f"The starting prompt's scores and step {saved.pending} (awaiting your decision) are saved"
    else:
        head = "Nothing of this run is saved yet"
    lost = ""
    if now.decided > n:
        lost = _steps_text(n + 1, now.decided, ("was not saved", "were not saved"))
    elif now.pending is not None and now.pending != saved.pending:
        lost = f"step {now.pending} was not saved"
    elif now.started and not saved.started:
        lost = "the starting prompt's scores were not saved"
    return f"{head}; {lost}." if lost else f"{head}."


class RunRepository:
    """One run's storage, as its session uses it: run.json, data.json, per-example records,
    the lease.

    run_dir: the run's folder, or None for a run kept in memory only (nothing is written;
    records are kept in memory). owner: the session's lease token (opaque, never a secret).
    Records read or written are also kept in memory, so the app's reruns read each file once;
    a records file that cannot be read gives [] and a line in :attr:`unreadable`.
    :attr:`saved` is what the last successful save (or the load) put on disk.
    Not thread-safe: one session drives it from one thread.
    """

    def __init__(self, run_dir: Path | None, owner: str):
        self.run_dir = Path(run_dir) if run_dir else None
        self.owner = owner
        self._records: dict[tuple[str, str], list[dict]] = {}
        #: Records files that could not be read: (key, split) -> one-line reason.
        self.unreadable: dict[tuple[str, str], str] = {}
        self.saved: SavedMark | None = None
        self._claimed = False  # this session has held the lease (so a later other owner took it)
        self._data_ref: dict | None = None
        self._data_of: int | None = None  # id() of the splits dict data.json holds

    def load(self) -> RunState:
        """The saved run (RunFileError when missing, corrupt, mistyped or of a newer schema;
        ConfigError without a run folder)."""
        if self.run_dir is None:
            raise ConfigError("run_dir", "this run is kept in memory only; there is nothing to load")
        state, ref = load_run_and_data(self.run_dir)
        self.adopt(state, ref)
        return state

    def adopt(self, state: RunState, data_ref: dict | None) -> None:
        """Take ``state`` as what is on disk (just loaded), with its data.json reference (None
        for an old run file: data.json is written on the next save)."""
        self.saved = SavedMark.of(state)
        self._data_ref, self._data_of = (data_ref, id(state.splits)) if data_ref is not None else (None, None)

    def inherit(self, other: RunRepository) -> None:
        """Take over what ``other`` (the repository that loaded the run) knows is on disk."""
        self.saved, self._data_ref, self._data_of = other.saved, other._data_ref, other._data_of

    def claim(self, force: bool = False) -> None:
        """Take or refresh the run's lease for ``owner`` (see :func:`claim_run`): RunInUseError
        when another live session holds it, or took it from this session since this session
        last held it (even if that one has ended since: its steps are on disk, not in this
        session's memory), unless ``force``. No-op in memory."""
        if self.run_dir is None:
            return
        if self._claimed and not force:
            held = read_lease(self.run_dir)
            if held is not None and held.get("owner") != self.owner:
                age = time.time() - float(held["at"])
                raise RunInUseError(f"run {self.run_dir.name} is open in another session: "
                                    f"{describe_owner(held.get('owner'))}, which last saved it {age_text(age)} ago; "
                                    "open it anyway to take it over", str(held.get("owner")), age)
        claim_run(self.run_dir, self.owner, force=force)
        self._claimed = True

    def release(self) -> None:
        """Give up this session's lease (see :func:`release_run`). No-op in memory."""
        if self.run_dir is not None:
            release_run(self.run_dir, self.owner)

    def kept_text(self, state: RunState) -> str:
        """What of ``state`` is on disk, in one sentence (see :func:`kept_text`)."""
        if self.run_dir is None:
            return "This run is kept in memory only."
        return kept_text(self.saved, state)

    def _kept_during(self, key: str) -> str:
        """What is saved while the records of ``key`` are being written (the state is not
        at hand here: the last save says what is on disk; the work under way is not)."""
        m = re.match(r"^s(\d+)[a-z]", key)
        under_way = f"step {m.group(1)} was" if m else "the starting prompt's scores were"
        saved = self.saved or SavedMark(False, 0, None)
        return f"{marks_text(saved, saved).rstrip('.')}; {under_way} not saved."

    def all_saved(self, state: RunState) -> bool:
        """Whether everything ``state`` holds was saved by the last save (in memory: True)."""
        return self.run_dir is None or self.saved == SavedMark.of(state)

    def step_bytes(self, state: RunState) -> int:
        """About how many bytes the next step writes (records of every candidate on dev and
        of the chosen one on test, run.json twice), for the free-space preflight."""
        dev, test = state.splits.get("dev") or [], state.splits.get("test") or []
        sample = dev[:20] or test[:20]
        per = 2 * sum(len(e.get("input", "")) + len(e.get("target", "")) for e in sample) // max(1, len(sample))
        per += 1024  # model output, answer, tokens, field names
        cands = state.settings.optimizer.candidates + 1
        run_file = self.run_dir / RUN_FILE if self.run_dir is not None else None
        run_bytes = run_file.stat().st_size if run_file is not None and run_file.is_file() else 0
        data = 0 if self._data_ref is not None else per * sum(len(state.splits.get(k) or []) for k in SPLIT_KEYS)
        return cands * per * (len(dev) + len(test)) + 3 * run_bytes + data

    def before_model_calls(self, state: RunState) -> None:
        """Check, before a single model call is spent, that this session can save what the
        calls produce: it still holds the run's lease (RunInUseError otherwise, saying who
        took it over) and the run folder can be written and has room for a step
        (StorageError otherwise, saying what is saved). No-op in memory."""
        if self.run_dir is None:
            return
        for name in (RUN_FILE, DATA_FILE, LEASE_FILE, RECORDS_DIR):  # no link to write through
            refuse_links(self.run_dir / name, self.run_dir)
        try:
            self.claim()
            preflight(self.run_dir, self.step_bytes(state), what="the next step")
        except RunInUseError as e:
            raise RunInUseError(f"{e}. Nothing was sent to a model. {self.kept_text(state)}", e.owner,
                                e.age_s) from None
        except StorageError as e:
            raise e.with_kept(f"Nothing was sent to a model. {self.kept_text(state)}") from None

    def save(self, state: RunState) -> None:
        """Refresh the lease, then write run.json atomically (data.json first, once);
        RunInUseError, writing nothing, if another session took the run over; StorageError
        (saying what is saved) when the disk refuses. No-op in memory."""
        if self.run_dir is None:
            return
        try:
            self.claim()
            if self._data_ref is None or self._data_of != id(state.splits) \
                    or not (self.run_dir / DATA_FILE).is_file():
                self._data_ref = save_data(self.run_dir, state.splits)
                self._data_of = id(state.splits)
            save_run(state, self.run_dir, self._data_ref)
        except RunInUseError as e:
            raise RunInUseError(f"{e}. {self.kept_text(state)}", e.owner, e.age_s) from None
        except StorageError as e:
            raise e.with_kept(self.kept_text(state)) from None
        self.saved = SavedMark.of(state)

    def save_records(self, key: str, split: str, records: list[dict]) -> None:
        """Keep the per-example records of prompt ``key`` (candidate id or "initial") on
        ``split`` (dict per example: see :class:`gpo_core.scoring.evaluation.ExampleRecord`).
        RunInUseError, writing nothing, when another session took the run over; StorageError
        when the disk refuses (the records stay in memory)."""
        self._records[(key, split)] = records
        self.unreadable.pop((key, split), None)
        if self.run_dir is not None:
            holder = lease_holder(self.run_dir, self.owner)
            if holder is not None:  # taken over mid-step: never write into the other session's run
                raise RunInUseError(f"run {self.run_dir.name} was taken over by {describe_owner(holder[0])} "
                                    f"{age_text(holder[1])} ago; open it anyway to take it back. "
                                    f"{self._kept_during(key)}", *holder)
            try:
                save_records(self.run_dir, key, split, records)
            except StorageError as e:
                raise e.with_kept(self._kept_during(key)) from None

    def load_records(self, key: str, split: str) -> list[dict]:
        """The records of ``key`` on ``split``; [] when none were kept, and [] with a line in
        :attr:`unreadable` when their file cannot be read (damaged, a link, a disk fault)."""
        if (key, split) not in self._records and self.run_dir is not None and (key, split) not in self.unreadable:
            try:
                loaded = load_records(self.run_dir, key, split)
            except (RunFileError, StorageError) as e:
                self.unreadable[(key, split)] = str(e)
                loaded = None
            if loaded is not None:
                self._records[(key, split)] = loaded
        return self._records.get((key, split), [])

    def records_problem(self, key: str, split: str) -> str | None:
        """Why the records of ``key`` on ``split`` cannot be shown (None when they can, or
        when none were kept). Reads them first if needed."""
        self.load_records(key, split)
        return self.unreadable.get((key, split))

    def delete_records(self, keys: list[str] | set[str]) -> None:
        """Forget the records of every key in ``keys`` on every split: the files and the
        memory copy (e.g. of the candidates an undo removed). Missing ones are skipped."""
        for key in keys:
            for split in RECORD_SPLITS:
                self._records.pop((key, split), None)
                self.unreadable.pop((key, split), None)
                if self.run_dir is not None:
                    p = records_path(self.run_dir, key, split)
                    refuse_links(p, self.run_dir)
                    try:
                        p.unlink(missing_ok=True)
                    except OSError as e:
                        raise storage.storage_error(p, e, "cannot be removed") from None
