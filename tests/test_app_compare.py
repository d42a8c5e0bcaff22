"""Issue 13 in the app: the Results page compares saved runs, names and tags them, deletes one after asking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpo_core.cli import main
from gpo_core.runs.labels import RunLabel, load_label
from tests.app_support import app_for, make_studio, no_exception
from tests.demo_cli import sums_csv

PAGE = "pages/results.py"


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Three scripted runs saved under tmp_path/runs: (runs root, {name: run id})."""
    task = sums_csv(tmp_path / "sums.csv")
    old = {k: os.environ.get(k) for k in ("GPO_STUDIO_FAKE_MODELS", "GPO_HOME")}
    os.environ.update(GPO_STUDIO_FAKE_MODELS="1", GPO_HOME=str(tmp_path))
    specs = {"a": ["--candidates", "3"], "b": ["--candidates", "2"],
             "c": ["--candidates", "3", "--instruction", "Reply with the sum."]}
    try:
        for name, extra in specs.items():
            assert main(["run", "--task", str(task), "--out", str(tmp_path / "runs" / name), "--quiet", "--steps", "2",
                         "--dev-size", "8", "--test-size", "8", "--selection", "recency", *extra]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return tmp_path / "runs", {n: n for n in specs}


def _frames(at) -> list:
    return [d.value for d in at.dataframe]


def test_results_page_compares_three_runs(tmp_path, saved):
    root, _ = saved
    at = app_for(make_studio(tmp_path), PAGE)
    no_exception(at)
    at.multiselect(key="compare_run_ids").set_value(["a", "b", "c"]).run()
    no_exception(at)
    frames = _frames(at)
    settings = next(f for f in frames if "setting" in f.columns)
    assert set(settings["setting"]) == {"optimizer.candidates", "task.start_instruction"}
    assert list(settings.iloc[:, 1:].loc[settings["setting"] == "optimizer.candidates"].iloc[0]) == ["3", "2", "3"]
    paired = next(f for f in frames if "A vs B" in f.columns)
    assert list(paired["A vs B"]) == ["1 vs 2", "1 vs 3", "2 vs 3"]
    assert list(paired["shared test examples"]) == [8, 8, 8]
    runs_table = next(f for f in frames if "final test" in f.columns)
    assert list(runs_table["run"]) == ["a", "b", "c"]
    assert all("[" in v and "/8)" in v for v in runs_table["final test"])  # each with its interval and counts
    md = " ".join(m.value for m in at.markdown)
    assert "words changed" in md and ":green-background[" in md  # run c's final prompt differs from a's
    assert len(at.get("plotly_chart")) == 1


def test_one_run_picked_asks_for_another(tmp_path, saved):
    at = app_for(make_studio(tmp_path), PAGE)
    at.multiselect(key="compare_run_ids").set_value(["a"]).run()
    assert any("at least two" in c.value for c in at.caption)


def test_name_tags_and_note_are_saved_and_listed(tmp_path, saved):
    root, _ = saved
    at = app_for(make_studio(tmp_path), PAGE)
    at.selectbox(key="open_run_id").set_value("b").run()
    at.text_input(key="label_name_b").set_value("two candidates")
    at.text_input(key="label_tags_b").set_value("ablation, seed-0")
    at.text_area(key="label_note_b").set_value("k stays 3")
    at.button(key="save_label_b").click().run()
    no_exception(at)
    assert load_label(root / "b") == RunLabel("two candidates", ("ablation", "seed-0"), "k stays 3")
    listed = next(f for f in _frames(at) if "last saved" in f.columns)
    row = listed[listed["run"] == "b"].iloc[0]
    assert row["name"] == "two candidates" and row["tags"] == "ablation, seed-0"
    # a bad tag is refused with the field named, and the saved label stays
    at.text_input(key="label_tags_b").set_value("no spaces!")
    at.button(key="save_label_b").click().run()
    assert any("tags" in e.value for e in at.error)
    assert load_label(root / "b").tags == ("ablation", "seed-0")


def test_delete_asks_first_and_removes_only_that_run(tmp_path, saved):
    root, _ = saved
    at = app_for(make_studio(tmp_path), PAGE)
    at.selectbox(key="open_run_id").set_value("c").run()
    at.button(key="ask_delete_c").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    assert (root / "c" / "run.json").exists()  # asking deletes nothing
    at.button(key="cancel_delete_c").click().run()
    assert not any("cannot be undone" in w.value for w in at.warning) and (root / "c").exists()
    at.button(key="ask_delete_c").click().run()
    at.button(key="delete_c").click().run()
    no_exception(at)
    assert not (root / "c").exists()
    assert (root / "a" / "run.json").exists() and (root / "b" / "run.json").exists()
    assert any("Deleted run c" in s.value for s in at.success)
    listed = next(f for f in _frames(at) if "last saved" in f.columns)
    assert sorted(listed["run"]) == ["a", "b"]


def test_deleting_the_open_run_closes_it(tmp_path, saved):
    studio = make_studio(tmp_path)
    studio.runs.open("a")
    at = app_for(studio, PAGE)
    at.selectbox(key="open_run_id").set_value("a").run()
    at.button(key="ask_delete_a").click().run()
    at.button(key="delete_a").click().run()
    no_exception(at)
    assert studio.runs.session is None and not (Path(tmp_path) / "runs" / "a").exists()
    assert "run" not in at.query_params
    assert any("No scored run open" in i.value for i in at.info)
