"""Run folders on disk: atomic saves after every step, reopening, and path safety.

Layout of one run: ``<runs root>/<run_id>/run.json`` (the :class:`RunState`, with a schema
version), ``records/<candidate id>.<split>.json`` (per-example records) and ``lease.json``
(which session may write the run). :class:`RunRepository` is one run's storage as the
session uses it; the module functions below are its parts. Writes go to a
temporary file in the same folder and are moved into place with ``os.replace``, so a killed
process leaves the previous complete file (POSIX rename is atomic). Runs open only from
inside the runs root: a crafted id or path cannot escape it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from gpo_core.errors import ConfigError, RunFileError
from gpo_core.runs.records import SCHEMA_VERSION, RunState

RUN_FILE = "run.json"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def gpo_home() -> Path:
    """Data folder: $GPO_HOME if set, else the per-user data folder (platformdirs)."""
    env = os.environ.get("GPO_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("gpo-studio"))


def default_runs_root() -> Path:
    return gpo_home() / "runs"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (temp file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_run(state: RunState, run_dir: Path) -> Path:
    """Write ``run.json`` into ``run_dir`` atomically; returns its path."""
    path = Path(run_dir) / RUN_FILE
    atomic_write_text(path, json.dumps(state.to_dict(), ensure_ascii=False, separators=(",", ":")))
    return path


def load_run(run_dir: Path) -> RunState:
    """Read ``run_dir/run.json``. Raises RunFileError naming the file on a missing,
    corrupt or newer-schema file."""
    path = Path(run_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path}: no saved run here") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFileError(f"{path}: not a valid run file ({e})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RunFileError(f"{path}: unsupported schema_version {version!r} (this build reads up to {SCHEMA_VERSION})")
    try:
        return RunState.from_dict(data)
    except (KeyError, TypeError) as e:
        raise RunFileError(f"{path}: run file is missing field {e}") from None
    except ConfigError as e:
        raise RunFileError(f"{path}: {e}") from None


#: The splits per-example records are kept for.
RECORD_SPLITS: tuple[str, ...] = ("dev", "test")


def records_path(run_dir: Path, key: str, split: str) -> Path:
    """``run_dir/records/<key>.<split>.json``: the records of one scored prompt on one split."""
    return Path(run_dir) / "records" / f"{key}.{split}.json"


def save_records(run_dir: Path, key: str, split: str, records: list[dict]) -> None:
    """Per-example records of one scored prompt on one split (list of dicts)."""
    atomic_write_text(records_path(run_dir, key, split), json.dumps(records, ensure_ascii=False, separators=(",", ":")))


def load_records(run_dir: Path, key: str, split: str) -> list[dict] | None:
    """The saved per-example records, or None when none were saved."""
    p = records_path(run_dir, key, split)
    if not p.exists():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


class RunStore:
    """The runs folder. ``run_dir(run_id)`` refuses ids that are not plain names, and
    ``resolve(path)`` refuses any path outside the root (RunFileError)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_runs_root()

    def run_dir(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
            raise RunFileError(f"run id {run_id!r} is not a plain run name")
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
        updated_at. Unreadable folders are listed with an "error" key instead of hiding."""
        out = []
        if not self.root.exists():
            return out
        root = self.root.resolve()
        for d in self.root.iterdir():
            if not (d / RUN_FILE).exists() or d.resolve().parent != root:
                continue  # not a run, or a link that leads out of the runs folder
            try:
                s = load_run(d)
            except RunFileError as e:
                out.append({"run_id": d.name, "error": str(e), "updated_at": ""})
                continue
            chosen = [e.dev_accuracy for e in s.trajectory if e.chosen]
            out.append({"run_id": d.name, "task": s.task.name, "steps_done": len(s.decided_steps),
                        "steps_total": s.settings.optimizer.steps, "best_dev_accuracy": max(chosen) if chosen else None,
                        "updated_at": s.updated_at or s.created_at})
        out.sort(key=lambda r: r["updated_at"], reverse=True)
        return out


LEASE_FILE = "lease.json"
#: A session that has not saved for this long no longer holds its run (seconds).
LEASE_TTL_S = 15 * 60


class RunInUseError(RunFileError):
    """The run is held by another live session (browser tab or CLI process)."""


def claim_run(run_dir: Path, owner: str, *, force: bool = False, ttl_s: float = LEASE_TTL_S,
              now: float | None = None) -> None:
    """Take the run's lease for ``owner`` (an opaque session token, never a secret).

    A lease is held by the last owner that saved within ``ttl_s`` seconds. Raises
    RunInUseError when another owner holds it, unless ``force`` (take over, e.g. after a
    browser reload left the old session's lease behind). Two sessions therefore never
    write the same run without the user saying so."""
    import time as _time

    now = _time.time() if now is None else now
    path = Path(run_dir) / LEASE_FILE
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        held = None
    if (not force and isinstance(held, dict) and held.get("owner") not in (None, owner)
            and now - float(held.get("at", 0)) < ttl_s):
        age = int(now - float(held.get("at", 0)))
        raise RunInUseError(f"run {Path(run_dir).name} is open in another session (last saved {age} s ago); "
                            "open it anyway to take it over")
    atomic_write_text(path, json.dumps({"owner": owner, "at": now}))


def lease_owner(run_dir: Path) -> str | None:
    """Owner token of the run's lease, or None."""
    try:
        return json.loads((Path(run_dir) / LEASE_FILE).read_text(encoding="utf-8")).get("owner")
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None


class RunRepository:
    """One run's storage, as its session uses it: run.json, per-example records, the lease.

    run_dir: the run's folder, or None for a run kept in memory only (nothing is written;
    records are kept in memory). owner: the session's lease token (opaque, never a secret).
    Records read or written are also kept in memory, so the app's reruns read each file once.
    Not thread-safe: one session drives it from one thread.
    """

    def __init__(self, run_dir: Path | None, owner: str):
        self.run_dir = Path(run_dir) if run_dir else None
        self.owner = owner
        self._records: dict[tuple[str, str], list[dict]] = {}

    def load(self) -> RunState:
        """The saved run (RunFileError when missing, corrupt or of a newer schema; ConfigError
        without a run folder)."""
        if self.run_dir is None:
            raise ConfigError("run_dir", "this run is kept in memory only; there is nothing to load")
        return load_run(self.run_dir)

    def claim(self, force: bool = False) -> None:
        """Take or refresh the run's lease for ``owner`` (see :func:`claim_run`): RunInUseError
        when another live session holds it, unless ``force``. No-op in memory."""
        if self.run_dir is not None:
            claim_run(self.run_dir, self.owner, force=force)

    def save(self, state: RunState) -> None:
        """Refresh the lease, then write run.json atomically; RunInUseError, writing nothing,
        if another session took the run over. No-op in memory."""
        if self.run_dir is not None:
            self.claim()
            save_run(state, self.run_dir)

    def save_records(self, key: str, split: str, records: list[dict]) -> None:
        """Keep the per-example records of prompt ``key`` (candidate id or "initial") on
        ``split`` (dict per example: see :class:`gpo_core.scoring.evaluation.ExampleRecord`)."""
        self._records[(key, split)] = records
        if self.run_dir is not None:
            save_records(self.run_dir, key, split, records)

    def load_records(self, key: str, split: str) -> list[dict]:
        """The records of ``key`` on ``split``; [] when none were kept."""
        if (key, split) not in self._records and self.run_dir is not None:
            loaded = load_records(self.run_dir, key, split)
            if loaded is not None:
                self._records[(key, split)] = loaded
        return self._records.get((key, split), [])

    def delete_records(self, keys: list[str] | set[str]) -> None:
        """Forget the records of every key in ``keys`` on every split: the files and the
        memory copy (e.g. of the candidates an undo removed). Missing ones are skipped."""
        for key in keys:
            for split in RECORD_SPLITS:
                self._records.pop((key, split), None)
                if self.run_dir is not None:
                    records_path(self.run_dir, key, split).unlink(missing_ok=True)
