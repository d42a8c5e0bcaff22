"""The Prompt × model page (pages/evaluate.py) in AppTest, on the scripted demo models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_support import TIMEOUT, app_for, arithmetic_studio, no_exception

PAGE = "pages/evaluate.py"


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GPO_STUDIO_FAKE_MODELS", "1")
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _settle(at) -> None:
    studio = at.session_state["studio"]
    work = at.session_state["matrix_work"]
    job = studio.runs.registry.get(work.slot)
    if job is not None:
        assert job.wait(TIMEOUT)
    at.run()


def test_page_scores_typed_prompts_on_two_models_and_keeps_the_matrix(demo_env: Path, tmp_path: Path):
    at = app_for(arithmetic_studio(tmp_path, n=24, dev=6, test=6), PAGE)
    no_exception(at)
    assert at.title[0].value == "Prompt × model"
    assert any("No matrix yet" in i.value for i in at.info)
    at.multiselect(key="mx_models").set_value(["demo:scripted-task", "demo:scripted-other"])
    at.text_area(key="mx_typed").set_value("Let's think step by step.\n\nWork carefully and check the final answer.")
    at.button(key="mx_score").click().run()
    no_exception(at)
    _settle(at)
    no_exception(at)
    assert any("Matrix saved in" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert len(table) == 2 * 2 * 2
    assert set(table["model"]) == {"demo:scripted-task", "demo:scripted-other"}
    assert all("[" in a for a in table["accuracy"])  # every accuracy with its interval
    assert set(table["answered"]) == {"6/6"}
    saved = list((demo_env / "matrices").iterdir())
    assert len(saved) == 1 and (saved[0] / "matrix.csv").exists()

    # a second matrix: the page shows the one just scored, not the older one
    at.text_area(key="mx_typed").set_value("Reply with a quick guess.")
    at.button(key="mx_score").click().run()
    _settle(at)
    no_exception(at)
    assert len(at.dataframe[0].value) == 1 * 2 * 2
    assert at.selectbox(key="mx_shown").value == max((demo_env / "matrices").iterdir())

    # a new browser session (a reload) shows the saved matrices, newest first
    again = app_for(arithmetic_studio(tmp_path / "other"), PAGE)
    no_exception(again)
    assert len(again.dataframe[0].value) == 4
    again.selectbox(key="mx_shown").set_value(saved[0]).run()
    assert len(again.dataframe[0].value) == 8


def test_page_refuses_a_request_without_prompts_aloud(demo_env: Path, tmp_path: Path):
    at = app_for(arithmetic_studio(tmp_path), PAGE)
    at.multiselect(key="mx_models").set_value(["demo:scripted-task"])
    at.button(key="mx_score").click().run()
    no_exception(at)
    assert any("type at least one prompt" in e.value for e in at.error)
    at.text_area(key="mx_typed").set_value("Hi.")
    at.text_area(key="mx_specs").set_value("openai:sk-123")
    at.button(key="mx_score").click().run()
    assert any("never holds an API key" in e.value for e in at.error)


def test_page_shows_each_splits_majority_baseline_for_a_label_task(demo_env: Path, tmp_path: Path):
    from tests.app_support import make_studio, texts

    studio = make_studio(tmp_path)
    # exact_match labels: the sums 2..10 (a label task of 9 classes)
    rows = ["question,answer"] + [f"What is {a} + {b}?,{a + b}" for a in range(1, 7) for b in range(1, 5)]
    studio.tasks.preview_upload(("\n".join(rows) + "\n").encode(), "labels.csv")
    studio.tasks.load_upload("question", "answer", answer_type="exact_match")
    studio.tasks.update_splits(dev_size=8, test_size=6, seed=0)
    at = app_for(studio, PAGE)
    at.multiselect(key="mx_models").set_value(["demo:scripted-task"])
    at.text_area(key="mx_typed").set_value("Add the numbers.")
    at.button(key="mx_score").click().run()
    _settle(at)
    no_exception(at)
    captions = texts(at.caption)
    for split in ("dev", "test"):
        assert any(t.startswith(f"{split}: majority-class baseline: ") for t in captions), captions
