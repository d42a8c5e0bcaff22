"""Run ``python -m gpo_core run`` in-process on the scripted demo models (``GPO_STUDIO_FAKE_MODELS=1``):
the task is "What is a + b?" (the demo task model answers it; keywords in the instruction make it right
more often), the optimizer appends one sentence per sample."""

from pathlib import Path

import pytest

from gpo_core.cli import main

#: Flags that keep a demo run small and free of the sentence-embedding model.
SMALL = ["--candidates", "3", "--dev-size", "8", "--test-size", "8", "--selection", "recency"]


def sums_csv(path: Path, n: int = 40) -> Path:
    """``n`` distinct "What is a + b?" questions with their sums, as a CSV file at ``path``."""
    lines = ["question,answer"] + [f"What is {3 + 7 * i} + {11 + 5 * i}?,{14 + 12 * i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_demo_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                 *args: str) -> tuple[int, list[str], str]:
    """``main(["run", *args])`` with the demo models and GPO_HOME in ``tmp_path``: (exit status,
    stdout lines, stderr)."""
    monkeypatch.setenv("GPO_STUDIO_FAKE_MODELS", "1")
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err
