"""``python -m gpo_core evaluate``: the prompt x model matrix on the command line."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from gpo_core.cli import main
from gpo_core.models import provider
from gpo_testkit.scripted import ScriptedChatModel, prompt_text
from tests.demo_cli import SMALL, run_demo_cli, sums_csv


def _sum_of(req) -> int:
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", prompt_text(req)).groups())  # type: ignore[union-attr]
    return a + b


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, ScriptedChatModel]:
    """Two scripted task models behind the ``demo`` backend: "careful" is right only when the
    prompt says "carefully"; "always" is always right. GPO_HOME in tmp_path."""
    models = {"careful": ScriptedChatModel(
        lambda r: f"The answer is {_sum_of(r) + (0 if 'carefully' in prompt_text(r) else 1)}.", name="careful"),
        "always": ScriptedChatModel(lambda r: f"The answer is {_sum_of(r)}.", name="always")}
    monkeypatch.setitem(provider.BUILDERS, "demo", lambda s, key, seed: models[s.model])
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GPO_STUDIO_FAKE_MODELS", raising=False)
    return models


def _rows(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {(r["prompt"], r["model"], r["split"]): r for r in csv.DictReader(f)}


def test_evaluate_on_two_scripted_models_writes_the_matrix(scripted, tmp_path: Path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Answer the question.\n\n# the second one\nAdd the numbers carefully.\n", encoding="utf-8")
    task = sums_csv(tmp_path / "sums.csv", 40)
    args = ["evaluate", "--prompts", str(prompts), "--models", "demo:careful", "demo:always", "--task", str(task),
            "--dev-size", "8", "--test-size", "6", "--out", str(tmp_path / "m"), "--no-png"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 prompts" in out and "2 models" in out and "matrix saved in" in out
    rows = _rows(tmp_path / "m" / "matrix.csv")
    assert len(rows) == 2 * 2 * 2
    plain, careful = rows[("prompts.txt 1", "demo:careful", "dev")], rows[("prompts.txt 2", "demo:careful", "dev")]
    assert (float(plain["accuracy"]), float(careful["accuracy"])) == (0.0, 1.0)
    assert (careful["answered"], careful["examples"], careful["failed_calls"]) == ("8", "8", "0")
    assert float(careful["ci95_low"]) == pytest.approx(0.6756, abs=1e-3)  # Wilson 8/8
    assert float(rows[("prompts.txt 1", "demo:always", "test")]["accuracy"]) == 1.0
    assert rows[("prompts.txt 1", "demo:always", "test")]["examples"] == "6"
    saved = json.loads((tmp_path / "m" / "matrix.json").read_text())
    assert saved["task"] == "sums" and len(saved["cells"]) == 8

    # the response cache answers the same matrix again: no new call
    calls = {k: m.call_count for k, m in scripted.items()}
    assert main([*args[:-3], "--out", str(tmp_path / "m2"), "--no-png"]) == 0
    assert {k: m.call_count for k, m in scripted.items()} == calls
    assert _rows(tmp_path / "m2" / "matrix.csv") == rows


def test_evaluate_writes_a_png_under_gpo_home_by_default(scripted, tmp_path: Path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Add carefully.\n", encoding="utf-8")
    assert main(["evaluate", "--prompts", str(prompts), "--models", "demo:careful", "--task",
                 str(sums_csv(tmp_path / "s.csv", 20)), "--dev-size", "4", "--test-size", "4", "--split", "dev"]) == 0
    folders = list((tmp_path / "home" / "matrices").iterdir())
    assert len(folders) == 1
    png = folders[0] / "matrix.png"
    note = capsys.readouterr().out
    if not png.exists():  # kaleido or Chromium missing: said aloud, the CSV stands
        assert "PNG export failed" in note
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {r[2] for r in _rows(folders[0] / "matrix.csv")} == {"dev"}


def test_evaluate_a_saved_run_on_its_own_examples(monkeypatch, capsys, tmp_path: Path):
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "s.csv")),
                                "--out", str(tmp_path / "run"), "--steps", "1", *SMALL)
    assert code == 0, err
    assert main(["evaluate", "--prompts", str(tmp_path / "run"), "--models", "demo:scripted-task",
                 "--out", str(tmp_path / "m"), "--no-png"]) == 0
    rows = _rows(tmp_path / "m" / "matrix.csv")
    labels = {k[0] for k in rows}
    assert any(lb.startswith("start") for lb in labels) and any("final" in lb for lb in labels)
    assert all(r["examples"] == "8" for r in rows.values())  # the run's dev 8 / test 8
    assert json.loads((tmp_path / "m" / "matrix.json").read_text())["metric"] == "number"  # the run's metric
    # --metric applies to a run's examples too (never silently ignored)
    assert main(["evaluate", "--prompts", str(tmp_path / "run"), "--models", "demo:scripted-task", "--metric",
                 "contains", "--out", str(tmp_path / "m2"), "--no-png"]) == 0
    assert json.loads((tmp_path / "m2" / "matrix.json").read_text())["metric"] == "contains"


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "demo:careful"], "--task"),
    (["--models", "openai:sk-secret", "--task", "x.csv"], "never holds an API key"),
    (["--models", "nobackend", "--task", "x.csv"], "--models"),
])
def test_evaluate_refuses_bad_input_in_one_line(scripted, tmp_path: Path, capsys, args, message):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Hi.\n", encoding="utf-8")
    assert main(["evaluate", "--prompts", str(prompts), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "sk-secret" not in err
