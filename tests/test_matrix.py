"""The prompt x model matrix engine (gpo_core/runs/matrix.py) on scripted task models."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError
from gpo_core.runs.matrix import (
    MatrixModel,
    PromptItem,
    list_matrices,
    load_matrix,
    parse_model_spec,
    prompts_from_run,
    prompts_from_text,
    save_matrix,
    score_matrix,
)
from gpo_core.runs.repository import load_run
from gpo_core.settings import ModelSettings
from gpo_core.stats import wilson_interval
from gpo_core.tasks.task import Example
from gpo_testkit.scripted import ScriptedChatModel, prompt_text
from tests.demo_cli import SMALL, run_demo_cli, sums_csv

EXAMPLES = [Example(f"What is {a} + {b}?", str(a + b)) for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]]


def _sum_of(req) -> int:
    a, b = map(int, re.search(r"(\d+) \+ (\d+)", prompt_text(req)).groups())  # type: ignore[union-attr]
    return a + b


def careful_model() -> ScriptedChatModel:
    """Right only when the prompt says "carefully"."""
    return ScriptedChatModel(lambda r: f"The answer is {_sum_of(r) + (0 if 'carefully' in prompt_text(r) else 1)}.",
                             name="careful")


def always_model() -> ScriptedChatModel:
    return ScriptedChatModel(lambda r: f"The answer is {_sum_of(r)}.", name="always")


def flaky_model() -> ScriptedChatModel:
    """Right always, but every call on "1 + 2" fails (also on the retry)."""
    return ScriptedChatModel(lambda r: f"The answer is {_sum_of(r)}.", name="flaky",
                             fail_when=lambda r: "HTTP 503" if "1 + 2" in prompt_text(r) else None)


def _spec(label: str) -> MatrixModel:
    return MatrixModel(label, ModelSettings(backend="demo", model=label, concurrency=4))


PROMPTS = [PromptItem("plain", "Answer the question."), PromptItem("careful", "Add carefully.")]


def _score(models, splits=None):
    return score_matrix(PROMPTS, models, splits or {"dev": EXAMPLES, "test": EXAMPLES[:3]}, task="sums",
                        source="test", answer_type="number", position="Q_end")


def test_every_prompt_is_scored_on_every_model_and_split_with_wilson_intervals():
    m = _score([(_spec("careful"), careful_model()), (_spec("always"), always_model())])
    assert len(m.cells) == 2 * 2 * 2
    plain, careful = m.cell("plain", "careful", "dev"), m.cell("careful", "careful", "dev")
    assert plain is not None and careful is not None
    assert (plain.accuracy, careful.accuracy) == (0.0, 1.0)  # the prompt matters on this model...
    assert m.cell("plain", "always", "test").accuracy == 1.0  # ...not on that one
    assert (careful.low, careful.high) == pytest.approx(wilson_interval(5, 5))
    assert "[" in careful.text() and careful.text().startswith("100.0%")
    assert m.split_sizes == {"dev": 5, "test": 3}


def test_failed_calls_are_left_out_of_the_accuracy_and_shown():
    model = flaky_model()
    m = _score([(_spec("flaky"), model)], {"dev": EXAMPLES})
    c = m.cell("plain", "flaky", "dev")
    assert c is not None
    assert (c.answered, c.errors, c.accuracy) == (4, 1, 1.0)  # 4/4 answered right, not 4/5
    assert c.first_error and "503" in c.first_error
    assert "1 failed" in c.text()
    assert any("failed" in n for n in m.notes)
    # sent once more after the others (retry_failed), like every score of a run
    assert sum("1 + 2" in prompt_text(r) for r in model.calls) == 2 * 2


def test_identical_prompts_cost_one_call_each_and_an_empty_split_is_noted():
    model = always_model()
    m = score_matrix([PromptItem("a", "Same."), PromptItem("b", "Same.")], [(_spec("always"), model)],
                     {"dev": EXAMPLES, "test": []}, task="t", source="s", answer_type="number", position="Q_end")
    assert model.call_count == len(EXAMPLES)
    assert m.splits == ["dev"] and any("test split has no examples" in n for n in m.notes)


def test_nothing_to_score_is_refused_before_any_call():
    with pytest.raises(ConfigError, match="prompt"):
        score_matrix([], [(_spec("x"), always_model())], {"dev": EXAMPLES}, task="t", source="s",
                     answer_type="number", position="Q_end")
    with pytest.raises(ConfigError, match="twice"):
        _score([(_spec("x"), always_model()), (_spec("x"), always_model())])


def test_saved_matrix_reloads_and_its_csv_holds_every_cell(tmp_path: Path):
    m = _score([(_spec("careful"), careful_model()), (_spec("always"), always_model())])
    folder = save_matrix(m, tmp_path / "m1")
    again = load_matrix(folder)
    assert again.to_dict() == m.to_dict()
    rows = list(csv.DictReader(io.StringIO((folder / "matrix.csv").read_text())))
    assert len(rows) == 8
    row = next(r for r in rows if (r["prompt"], r["model"], r["split"]) == ("careful", "careful", "dev"))
    assert (row["prompt_text"], float(row["accuracy"]), row["answered"], row["failed_calls"]) == \
        ("Add carefully.", 1.0, "5", "0")
    assert float(row["ci95_low"]) == pytest.approx(wilson_interval(5, 5)[0], abs=1e-6)
    assert list_matrices(tmp_path) == [folder]


def test_a_label_task_matrix_carries_each_splits_majority_baseline(tmp_path: Path):
    # issue 12: "always answers positive" must be visible beside every accuracy, the matrix's too
    labels = [Example(f"Review {i}", "pos" if i % 3 else "neg") for i in range(12)]  # 8 pos, 4 neg
    model = ScriptedChatModel(lambda r: "pos", name="always-pos")
    m = score_matrix(PROMPTS, [(_spec("always-pos"), model)], {"dev": labels[:6], "test": labels},
                     task="reviews", source="test", answer_type="exact_match", position="Q_end")
    assert m.cell("plain", "always-pos", "test").accuracy == pytest.approx(8 / 12)
    assert m.baselines["test"].startswith("majority-class baseline: 67% [") and "(always 'pos', 8 of 12)" in \
        m.baselines["test"]
    assert "(always 'pos', 4 of 6)" in m.baselines["dev"]
    assert load_matrix(save_matrix(m, tmp_path / "m")).baselines == m.baselines
    # a number task has no classes: no baseline
    assert _score([(_spec("always"), always_model())]).baselines == {}


def test_a_damaged_matrix_file_is_named(tmp_path: Path):
    (tmp_path / "matrix.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="matrix.json"):
        load_matrix(tmp_path)


def test_prompts_from_text_blocks_lines_and_comments():
    blocks = prompts_from_text("First line\nstill first.\n\n# a comment\nSecond.\n\n\nFirst line\nstill first.\n",
                               "p.txt")
    assert [(p.label, p.text) for p in blocks] == [("p.txt 1", "First line\nstill first."), ("p.txt 2", "Second.")]
    lines = prompts_from_text("One.\nTwo.\n# skip\nThree.\n", "p.txt")
    assert [p.text for p in lines] == ["One.", "Two.", "Three."]
    with pytest.raises(ConfigError, match="p.txt.*no prompt"):
        prompts_from_text("# only a comment\n\n", "p.txt")


def test_model_specs(tmp_path: Path):
    assert parse_model_spec("openai:gpt-4o-mini").settings.backend == "openai"
    compat = parse_model_spec("openai:llama3", base_url="http://localhost:8000/v1").settings
    assert (compat.backend, compat.model, compat.base_url) == ("compatible", "llama3", "http://localhost:8000/v1")
    assert parse_model_spec("SmolLM2-135M-Instruct.Q4_1").settings.backend == "local"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_model_spec(str(gguf)).settings.model == str(gguf)
    assert parse_model_spec("demo:scripted-task").settings.backend == "demo"
    with pytest.raises(ConfigError, match="--models.*backend:model"):
        parse_model_spec("gpt-4o-mini")
    with pytest.raises(ConfigError, match="--models.*not found"):
        parse_model_spec(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="never holds an API key"):
        parse_model_spec("openai:sk-abc123")
    assert parse_model_spec("openai:task-model").settings.model == "task-model"  # "sk-" inside a name is no key
    with pytest.raises(ConfigError, match="compatible"):
        parse_model_spec("compatible:llama3")  # no base URL


def test_prompts_of_a_saved_run_are_labelled(monkeypatch, capsys, tmp_path: Path):
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "s.csv")),
                                "--out", str(tmp_path / "run"), "--steps", "2", *SMALL)
    assert code == 0, err
    state = load_run(tmp_path / "run")
    items = prompts_from_run(state)
    labels = [p.label for p in items]
    assert labels[0].startswith("start")
    assert any("final" in lb for lb in labels)
    assert any(lb.startswith("step 1 · ") for lb in labels) and any(lb.startswith("step 2 · ") for lb in labels)
    assert len({p.text for p in items}) == len(items)  # each text once
    short = prompts_from_run(state, "start-final")
    assert all(not lb.startswith("step") for lb in (p.label for p in short))
