"""benchmarks/bbh_quality.py end to end on a tiny BBH-layout task with scripted models."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from gpo_core.optimizer.session import Models
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel, prompt_text

REPO = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("bbh_quality", REPO / "benchmarks" / "bbh_quality.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bbh_quality"] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _write_task(root: Path) -> Path:
    """A tiny yes/no task in the BBH folder layout (train/eval/test/format.jsonl)."""
    task = root / "tiny_navigate"
    task.mkdir(parents=True)

    def rows(prefix: str, n: int) -> str:
        return "\n".join(json.dumps({"input": f"{prefix} question {i}: do you return?\nOptions:\n- Yes\n- No",
                                     "target": "Yes" if i % 2 else "No"}) for i in range(n)) + "\n"

    for name, n in (("train", 6), ("eval", 6), ("test", 8), ("format", 3)):
        (task / f"{name}.jsonl").write_text(rows(name, n), encoding="utf-8")
    return task


def _task_reply(request) -> str:
    """Right only when the instruction says "carefully": question i -> Yes iff i is odd."""
    text = prompt_text(request)
    if "carefully" not in text:
        return "Maybe."
    i = int(text.split("question ")[1].split(":")[0])
    return "The answer is " + ("Yes" if i % 2 else "No")


def _optimizer_reply(request) -> str:
    # GPO meta-prompts (which ask for <START>/<END>: without them the whole reply is taken)
    # and the APE template (<INS>) both end up proposing the winning instruction, after a
    # first sample that is a plain paraphrase.
    text = "Check each step carefully." if request.sample_index % 2 else "Count the steps."
    if "<INS>" in prompt_text(request):
        return f"<INS>{text}</INS>"
    return f"Here is my answer.\n<START>{text}<END>"


def _models() -> tuple[Models, ScriptedChatModel, ScriptedChatModel]:
    task = ScriptedChatModel(_task_reply, name="scripted-task")
    opt = ScriptedChatModel(_optimizer_reply, name="scripted-opt")
    return Models(task, opt, HashingEmbedder()), task, opt


@pytest.fixture
def script():
    return _load_script()


def test_every_method_row_with_accuracies_in_range(tmp_path, script):
    _write_task(tmp_path / "bbh")
    models, task_model, opt_model = _models()
    out = tmp_path / "results"
    lines: list[str] = []
    payload = script.main(["--tasks", "tiny_navigate", "--bbh-dir", str(tmp_path / "bbh"), "--steps", "2",
                           "--candidates", "2", "--dev-size", "4", "--test-size", "6", "--out", str(out),
                           "--no-png"], models=models, log=lines.append)

    table = (out / "bbh_quality.md").read_text(encoding="utf-8")
    for m in script.METHOD_IDS:
        assert f"`{m}`" in table, f"method {m} missing from the table"
    assert (out / "bbh_quality.html").exists()

    cells = payload["summary"]["cells"]
    assert set(cells) == set(script.METHOD_IDS)
    for m in script.METHOD_IDS:
        c = cells[m]["tiny_navigate"]
        assert 0.0 <= c["accuracy"] <= 1.0 and c["n_test"] == 6
    with (out / "bbh_quality.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(script.METHOD_IDS)
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)

    # What a reader checks: the baselines fail, optimization finds the instruction that works,
    # and every optimizing method spent the same optimizer budget (steps x candidates).
    assert cells["start"]["tiny_navigate"]["accuracy"] == 0.0
    assert cells["empty"]["tiny_navigate"]["accuracy"] == 0.0
    by_method = {r["method"]: r for r in rows}
    for m in ("gpo", "recency", "importance", "fixed", "linear", "no_budget", "ape"):
        assert cells[m]["tiny_navigate"]["accuracy"] == 1.0, m
        assert "carefully" in by_method[m]["final_prompt"]
        assert int(by_method[m]["optimizer_calls"]) == 2 * 2
    assert payload["command"].startswith("python benchmarks/bbh_quality.py --tasks tiny_navigate")

    # The faithful defaults, recorded: GPO layout (the optimizer saw <START>/<END> and every
    # GPO reply was read from its tags), chosen-path direction, reference protocol (a first
    # call and an answer re-prompt per example).
    st = payload["settings"]
    assert (st["protocol"], st["layout"], st["direction"]) == ("reference", "gpo", "chosen")
    assert "protocol reference (paper), layout gpo (paper), direction from chosen prompts (paper)" in table
    opt_prompts = [prompt_text(r) for r in opt_model.calls]
    assert any("<START>" in t for t in opt_prompts)
    assert by_method["gpo"]["replies_tagged"] == "4"
    task_texts = [prompt_text(r) for r in task_model.calls]
    assert any("Give your answer directly" in t for t in task_texts)
    assert not any(t.startswith("Q:") for t in task_texts)


def test_variant_flags_run_and_are_recorded(tmp_path, script):
    _write_task(tmp_path / "bbh")
    models, task_model, opt_model = _models()
    out = tmp_path / "results"
    payload = script.main(["--tasks", "tiny_navigate", "--bbh-dir", str(tmp_path / "bbh"), "--steps", "2",
                           "--candidates", "2", "--dev-size", "4", "--test-size", "6", "--out", str(out),
                           "--no-png", "--methods", "start,gpo", "--protocol", "single", "--layout", "opro",
                           "--direction", "all", "--name", "variant"], models=models, log=lambda line: None)
    st = payload["settings"]
    assert (st["protocol"], st["layout"], st["direction"]) == ("single", "opro", "all")
    assert "protocol single (ours), layout opro (ours), direction from all prompts (ours)" in (
        out / "variant.md").read_text(encoding="utf-8")
    task_texts = [prompt_text(r) for r in task_model.calls]
    assert not any("Give your answer directly" in t for t in task_texts)  # one call an example
    assert payload["summary"]["cells"]["gpo"]["tiny_navigate"]["accuracy"] == 1.0


def test_ape_meta_prompt_holds_only_exemplars(script):
    from gpo_core.tasks.task import Example

    meta = script.ape_meta_prompt([Example("2 + 2 ?", "4"), Example("3 + 1 ?", "4")])
    assert "Input: 2 + 2 ?\nOutput: 4" in meta and "Input: 3 + 1 ?" in meta
    assert "<INS>" in meta and "score" not in meta.lower()


def test_binomial_se(script):
    assert script.binomial_se(0.5, 100) == pytest.approx(0.05)
    assert script.binomial_se(1.0, 10) == 0.0
