"""Issue 13: compare saved runs (settings diff, final prompts, paired test), label and delete them.

Three scripted runs (the demo models through the real CLI) on the same arithmetic task:
a baseline, one with fewer candidates, one with another starting instruction and more steps;
a fourth on another split seed shares only part of the test examples.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpo_core.cli import main
from gpo_core.errors import ConfigError, RunFileError
from gpo_core.runs.compare import compare_runs, flat_settings
from gpo_core.runs.final import final_entry, records_key
from gpo_core.runs.labels import RunLabel, delete_run, load_label, parse_tags, save_label
from gpo_core.runs.repository import RunInUseError, RunStore, claim_run, load_records, load_run
from gpo_core.stats import mcnemar_exact
from gpo_core.studio.compare_chart import compare_curves, compare_figure
from tests.demo_cli import sums_csv

BASE = ["--dev-size", "8", "--test-size", "8", "--selection", "recency"]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> tuple[Path, list[Path]]:
    """(GPO_HOME, [run a, run b, run c, run d]) made once for the module by the demo CLI."""
    home = tmp_path_factory.mktemp("cmp")
    task = sums_csv(home / "sums.csv")
    old = {k: os.environ.get(k) for k in ("GPO_STUDIO_FAKE_MODELS", "GPO_HOME")}
    os.environ.update(GPO_STUDIO_FAKE_MODELS="1", GPO_HOME=str(home / "home"))
    runs = home / "home" / "runs"
    specs = {"a": ["--steps", "2", "--candidates", "3"],
             "b": ["--steps", "2", "--candidates", "2"],
             "c": ["--steps", "3", "--candidates", "3", "--instruction", "Reply with the sum."],
             "d": ["--steps", "2", "--candidates", "3", "--seed", "7"]}
    try:
        for name, extra in specs.items():
            assert main(["run", "--task", str(task), "--out", str(runs / name), "--quiet", *BASE, *extra]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return home / "home", [runs / n for n in specs]


def _final_test_records(run_dir: Path) -> list[dict]:
    s = load_run(run_dir)
    return load_records(run_dir, records_key(s, final_entry(s), "test"), "test") or []


def test_settings_diff_shows_only_the_changed_fields(three_runs):
    _, (a, b, c, _) = three_runs
    cmp = compare_runs([a, b, c])
    changed = {d.setting: d.values for d in cmp.differences}
    start = load_run(a).task.initial_instruction
    assert changed == {"optimizer.steps": ("2", "2", "3"), "optimizer.candidates": ("3", "2", "3"),
                       "task.start_instruction": (start, start, "Reply with the sum.")}
    # what every run shares is not listed, though every run has it
    assert {"optimizer.k", "splits.seed", "task_model.model"} <= set(flat_settings(load_run(a)))


def test_paired_test_counts_the_shared_test_examples(three_runs):
    _, (a, b, c, d) = three_runs
    cmp = compare_runs([a, c, d])
    ra, rc, rd = (_final_test_records(x) for x in (a, c, d))
    ac = next(t for t in cmp.paired if (t.first, t.second) == (0, 1))
    # same task, seed and test size: the whole test split is shared
    assert ac.shared == len(ra) == len(rc) == 8
    by_input = {r["input"]: r for r in ra}
    c_better = sum(1 for r in rc if r["correct"] and not by_input[r["input"]]["correct"])
    a_better = sum(1 for r in rc if not r["correct"] and by_input[r["input"]]["correct"])
    assert (ac.second_better, ac.first_better) == (c_better, a_better)
    assert ac.p_value == pytest.approx(mcnemar_exact(c_better, a_better))
    # another split seed: only the examples both test splits hold are paired
    ad = next(t for t in cmp.paired if (t.first, t.second) == (0, 2))
    overlap = {(r["input"], r["target"]) for r in ra} & {(r["input"], r["target"]) for r in rd}
    assert ad.shared == len(overlap) < 8
    # three pairs compared: each also has its Benjamini-Hochberg adjusted p (never below the raw p)
    tested = [t for t in cmp.paired if t.p_value is not None]
    assert len(tested) >= 2 and all(t.p_adjusted is not None and t.p_adjusted >= t.p_value - 1e-12 for t in tested)


def test_final_prompts_word_diff_and_test_accuracy_with_interval(three_runs):
    _, (a, b, c, _) = three_runs
    cmp = compare_runs([a, b, c])
    assert [r.final.prompt for r in cmp.runs] == [final_entry(load_run(x)).prompt for x in (a, b, c)]
    diffs = cmp.prompt_diffs()
    assert all(s.op == "equal" for s in diffs[0])
    assert any(s.op != "equal" for s in diffs[2])  # c started elsewhere, so its final prompt differs
    for r in cmp.runs:
        lo, hi = r.final_test.interval()
        assert r.final_test.answered == 8 and lo <= r.final_test.value <= hi
    text = cmp.text()
    assert "Settings that differ:" in text and "optimizer.candidates" in text and "optimizer.k" not in text
    assert "{+" in text or "[-" in text


def test_curves_overlay_every_run_with_intervals(three_runs):
    _, (a, b, c, _) = three_runs
    cmp = compare_runs([a, b, c])
    curves = compare_curves(cmp)
    assert sorted(curves["run"].unique()) == [1, 2, 3]
    assert [int(curves.loc[curves["run"] == i, "step"].max()) for i in (1, 2, 3)] == [2, 2, 3]
    assert bool(((curves["dev low"] <= curves["dev"]) & (curves["dev"] <= curves["dev high"])).all())
    fig = compare_figure(cmp)
    names = [str(getattr(t, "name", "") or "") for t in fig.data]
    names = [n for n in names if n]
    assert sum("dev" in n and "best" not in n for n in names) == 3 and sum("test" in n for n in names) == 3


@pytest.mark.parametrize("n", [1, 7])
def test_compare_refuses_fewer_than_two_or_more_than_six_runs(three_runs, n):
    _, runs = three_runs
    with pytest.raises(ConfigError, match="2 to 6"):
        compare_runs((runs * 2)[:n])


def test_compare_refuses_a_run_named_twice(three_runs):
    _, (a, b, *_) = three_runs
    with pytest.raises(ConfigError, match="twice"):
        compare_runs([a, b, a])


def test_compare_cli_prints_and_writes(three_runs, monkeypatch, capsys, tmp_path):
    home, (a, b, c, _) = three_runs
    monkeypatch.setenv("GPO_HOME", str(home))
    code = main(["compare", "a", "b", str(c), "--out", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert code == 0 and "Settings that differ:" in out and "Paired tests" in out
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == ["a", "b", "c"]
    assert {d["setting"] for d in data["settings_differences"]} >= {"optimizer.candidates"}
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "<script" in html and "<script src=" not in html and len(html) > 1_000_000  # plotly.js inlined
    assert main(["compare", "a"]) == 2 and "2 to 6" in capsys.readouterr().err
    assert main(["compare", "a", "nope"]) == 2 and "no saved run" in capsys.readouterr().err


def test_blind_test_stays_hidden_in_a_comparison(three_runs, tmp_path):
    _, (a, b, *_) = three_runs
    import shutil

    blind = tmp_path / "blind"
    shutil.copytree(b, blind)
    data = json.loads((blind / "run.json").read_text())
    data["settings"]["optimizer"]["blind_test"] = True
    data["test_revealed"] = None
    (blind / "run.json").write_text(json.dumps(data))
    cmp = compare_runs([a, blind])
    assert cmp.runs[1].test_hidden and cmp.runs[1].final_test is None and not cmp.runs[1].test_records
    assert cmp.paired[0].p_value is None and "blind" in cmp.paired[0].why
    assert "hidden" in cmp.text()


# Labels --------------------------------------------------------------------------------------
def test_label_round_trips_and_leaves_run_json_alone(three_runs, tmp_path):
    _, (a, *_) = three_runs
    import shutil

    run = tmp_path / "r"
    shutil.copytree(a, run)
    before = (run / "run.json").read_bytes()
    save_label(run, RunLabel("Paper setting", parse_tags("paper, seed-0 paper"), "k=3, 8 candidates"))
    assert load_label(run) == RunLabel("Paper setting", ("paper", "seed-0"), "k=3, 8 candidates")
    assert (run / "run.json").read_bytes() == before
    assert compare_runs([run, a]).runs[0].title == "Paper setting"


@pytest.mark.parametrize(("label", "field"), [
    (RunLabel("x" * 81), "name"), (RunLabel("two\nlines"), "name"), (RunLabel(tags=("has space",)), "tags"),
    (RunLabel(tags=tuple(f"t{i}" for i in range(13))), "tags"), (RunLabel(note="n" * 2001), "note"),
])
def test_bad_labels_are_refused_naming_the_field(label, field, three_runs):
    _, (a, *_) = three_runs
    with pytest.raises(ConfigError, match=field):
        save_label(a, label)


def test_damaged_label_names_the_file(tmp_path, three_runs):
    _, (a, *_) = three_runs
    import shutil

    run = tmp_path / "r"
    shutil.copytree(a, run)
    (run / "label.json").write_text("{not json")
    with pytest.raises(RunFileError, match="label.json"):
        load_label(run)


def test_label_cli(three_runs, monkeypatch, capsys):
    home, _ = three_runs
    monkeypatch.setenv("GPO_HOME", str(home))
    assert main(["label", "b", "--name", "fewer candidates", "--tags", "ablation"]) == 0
    assert load_label(home / "runs" / "b") == RunLabel("fewer candidates", ("ablation",), "")
    assert main(["label", "b", "--note", "2 instead of 3"]) == 0  # the other fields are kept
    assert load_label(home / "runs" / "b") == RunLabel("fewer candidates", ("ablation",), "2 instead of 3")
    capsys.readouterr()
    assert main(["label", "b", "--tags", "bad tag!"]) == 2 and "--tags" in capsys.readouterr().err


# Deleting ------------------------------------------------------------------------------------
def _store_with_runs(tmp_path: Path, three_runs, *names: str) -> RunStore:
    import shutil

    _, (a, *_) = three_runs
    root = tmp_path / "runs"
    for n in names:
        shutil.copytree(a, root / n)
    return RunStore(root)


def test_delete_removes_only_that_run(tmp_path, three_runs):
    store = _store_with_runs(tmp_path, three_runs, "one", "two")
    (tmp_path / "runs" / "notes.txt").write_text("mine")
    gone = delete_run(store, "one", owner="studio-" + "0" * 32)
    assert gone == (tmp_path / "runs" / "one").resolve()
    assert not (tmp_path / "runs" / "one").exists()
    assert (tmp_path / "runs" / "two" / "run.json").exists() and (tmp_path / "runs" / "notes.txt").exists()


def test_delete_refuses_links_and_non_runs(tmp_path, three_runs):
    store = _store_with_runs(tmp_path, three_runs, "one")
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "runs" / "one")
    (tmp_path / "runs" / "plain").mkdir()
    for run_id, match in (("link", "symbolic link"), ("plain", "not a saved run"), ("../runs", "plain run name")):
        with pytest.raises(RunFileError, match=match):
            delete_run(store, run_id, owner="studio-" + "0" * 32)
    assert (tmp_path / "runs" / "one" / "run.json").exists()


def test_delete_refuses_a_run_held_by_another_live_session(tmp_path, three_runs):
    store = _store_with_runs(tmp_path, three_runs, "one")
    claim_run(tmp_path / "runs" / "one", "studio-" + "1" * 32)  # this process is alive: the lease holds
    with pytest.raises(RunInUseError, match="another session"):
        delete_run(store, "one", owner="studio-" + "2" * 32)
    with pytest.raises(RunInUseError, match="job running"):
        delete_run(store, "one", owner="studio-" + "1" * 32, busy_run_ids={"one"})
    assert (tmp_path / "runs" / "one" / "run.json").exists()
    delete_run(store, "one", owner="studio-" + "1" * 32)  # its own session may delete it
    assert not (tmp_path / "runs" / "one").exists()


def test_delete_cli_asks_first(tmp_path, three_runs, monkeypatch, capsys):
    _store_with_runs(tmp_path, three_runs, "one")
    monkeypatch.setenv("GPO_HOME", str(tmp_path))
    monkeypatch.setattr("builtins.input", lambda _: "n")
    assert main(["delete", "one"]) == 1 and (tmp_path / "runs" / "one").exists()
    monkeypatch.setattr("builtins.input", lambda _: "y")
    assert main(["delete", "one"]) == 0 and not (tmp_path / "runs" / "one").exists()
    assert main(["delete", str(tmp_path / "elsewhere"), "--yes"]) == 2
    assert "outside the runs folder" in capsys.readouterr().err


def test_the_runs_list_reads_each_run_json_once_per_version(tmp_path, three_runs, monkeypatch):
    """The runs list is drawn on every rerun of the Results and Optimize pages: an unchanged run.json
    is not parsed again, a changed one is."""
    from gpo_core.runs import repository

    store = _store_with_runs(tmp_path, three_runs, "one", "two")
    reads: list[str] = []
    real = repository.load_run_and_data

    def counting(run_dir, **kw):
        reads.append(Path(run_dir).name)
        return real(run_dir, **kw)

    monkeypatch.setattr(repository, "load_run_and_data", counting)
    first = store.list_runs()
    assert sorted(reads) == ["one", "two"]
    assert store.list_runs() == first and len(reads) == 2  # nothing parsed again
    data = json.loads((tmp_path / "runs" / "one" / "run.json").read_text())
    data["task"]["name"] = "renamed"
    (tmp_path / "runs" / "one" / "run.json").write_text(json.dumps(data))
    rows = {r["run_id"]: r for r in store.list_runs()}
    assert rows["one"]["task"] == "renamed" and reads.count("one") == 2 and reads.count("two") == 1
