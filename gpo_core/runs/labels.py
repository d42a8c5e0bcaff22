"""A saved run's name, tags and note (``label.json`` beside ``run.json``), and deleting a run.

The label lives in its own small file, not in ``run.json``: naming a run that another session
is working on then never races with that session's saves (it writes ``run.json`` only), and a
label can be edited on a run that cannot be resumed. Written atomically
(:func:`gpo_core.runs.storage.atomic_write_text`): a full disk or a kill leaves the previous
label whole.

Deleting removes exactly one run folder of the runs root and nothing else: run ids that are
not plain names, folders that are symbolic links (or hold ``run.json`` as one) and folders
without ``run.json`` are refused, and so is a run another live session holds the lease of
(:func:`gpo_core.runs.repository.lease_holder`) or that a job of this process is working on.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from gpo_core.errors import ConfigError, RunFileError
from gpo_core.runs.repository import RUN_FILE, RunInUseError, RunStore, age_text, describe_owner, lease_holder
from gpo_core.runs.storage import atomic_write_text, read_text, refuse_links, storage_error

__all__ = ["LABEL_FILE", "MAX_NAME", "MAX_NOTE", "MAX_TAGS", "RunLabel", "delete_run", "load_label", "parse_tags",
           "save_label"]

LABEL_FILE = "label.json"
MAX_NAME = 80  # characters
MAX_NOTE = 2000  # characters
MAX_TAGS = 12
_TAG = re.compile(r"^[\w.+-]{1,32}$")


@dataclass(frozen=True)
class RunLabel:
    """What a user calls a run: ``name`` (at most 80 characters, "" = none), ``tags`` (at most
    12 words of letters, digits and ``_ . + -``, each at most 32 characters, kept in order
    without repeats) and a free ``note`` (at most 2000 characters)."""

    name: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    def validate(self, where: str = "label") -> RunLabel:
        """Returns self; ConfigError naming the field (``where.name``, ``where.tags``, ``where.note``)."""
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME or "\n" in self.name:
            raise ConfigError(f"{where}.name", f"a run name is one line of at most {MAX_NAME} characters")
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE:
            raise ConfigError(f"{where}.note", f"a note has at most {MAX_NOTE} characters")
        if not isinstance(self.tags, tuple) or len(self.tags) > MAX_TAGS:
            raise ConfigError(f"{where}.tags", f"at most {MAX_TAGS} tags")
        for t in self.tags:
            if not isinstance(t, str) or not _TAG.match(t):
                raise ConfigError(f"{where}.tags", f"tag {t!r}: use letters, digits and _ . + - (at most 32 "
                                                   "characters, no spaces)")
        return self

    @property
    def empty(self) -> bool:
        return not (self.name or self.tags or self.note)

    def to_dict(self) -> dict:
        return {"name": self.name, "tags": list(self.tags), "note": self.note}

    @staticmethod
    def from_dict(d: object, where: str = "label") -> RunLabel:
        if not isinstance(d, dict):
            raise ConfigError(where, f"expected an object, got {type(d).__name__}")
        tags = d.get("tags", [])
        if not isinstance(tags, list):
            raise ConfigError(f"{where}.tags", "expected a list of tags")
        return RunLabel(str(d.get("name", "")), tuple(str(t) for t in tags), str(d.get("note", ""))).validate(where)


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed as one string, separated by commas or spaces -> a tuple without repeats, in
    order ("prod, seed-1 prod" -> ("prod", "seed-1")). Not validated (see :meth:`RunLabel.validate`)."""
    out: list[str] = []
    for t in re.split(r"[,\s]+", text or ""):
        if t and t not in out:
            out.append(t)
    return tuple(out)


def load_label(run_dir: Path) -> RunLabel:
    """The run's label; an empty one when it has none. RunFileError naming the file when
    ``label.json`` is damaged or a link (the run itself stays readable)."""
    path = Path(run_dir) / LABEL_FILE
    try:
        text = read_text(path, base=Path(run_dir))
    except FileNotFoundError:
        return RunLabel()
    try:
        return RunLabel.from_dict(json.loads(text), where=str(path))
    except (ValueError, UnicodeDecodeError, ConfigError) as e:
        raise RunFileError(f"{path}: {e}; fix or delete the file (the run is not affected)") from None


def save_label(run_dir: Path, label: RunLabel) -> None:
    """Write the run's label atomically (validated first: ConfigError names the field).
    RunFileError when ``run_dir`` is not a run folder, StorageError on a disk fault (the
    previous label stays)."""
    label.validate()
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise RunFileError(f"{run_dir}: not a saved run (no {RUN_FILE})")
    atomic_write_text(run_dir / LABEL_FILE, json.dumps(label.to_dict(), ensure_ascii=False, indent=1),
                      base=run_dir)


def delete_run(store: RunStore, run_id: str, owner: str, *, busy_run_ids: set[str] | frozenset[str] = frozenset()
               ) -> Path:
    """Delete the saved run ``run_id`` of ``store``: its folder and everything in it, nothing
    else. Returns the deleted folder.

    Refused (nothing deleted): an id that is not a plain run name or a folder that is a
    symbolic link (RunFileError, from :meth:`RunStore.run_dir`); a folder without a regular
    ``run.json`` (RunFileError); a run another live session holds (RunInUseError, saying
    who); a run in ``busy_run_ids`` (a job of this process works on it: RunInUseError).
    StorageError when the disk refuses the deletion."""
    run_dir = store.run_dir(run_id)
    refuse_links(run_dir / RUN_FILE, run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise RunFileError(f"{run_dir}: not a saved run (no {RUN_FILE}); nothing deleted")
    if run_id in busy_run_ids:
        raise RunInUseError(f"run {run_id} has a job running now; stop it first, then delete the run")
    holder = lease_holder(run_dir, owner)
    if holder is not None:
        other, age = holder
        raise RunInUseError(f"run {run_id} is open in another session ({describe_owner(other)}, which saved it "
                            f"{age_text(age)} ago); close it there first, then delete it", other, age)
    try:
        shutil.rmtree(run_dir)
    except OSError as e:
        raise storage_error(run_dir, e, "cannot be deleted (some of its files may remain)") from None
    return run_dir
