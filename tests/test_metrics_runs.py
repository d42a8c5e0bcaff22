"""Metrics wired through the engine (issue 12): a task folder whose files use ``output`` with
free-text references loads and scores with ROUGE-L; a run on a partial-credit metric shows the
mean score with an honest interval and compares prompts by examples whose score went up or
down (exact sign test); bad metric settings are refused before any model call; the CLI saves
the metric in the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_cli import run_demo_cli
from rouge_score import rouge_scorer

from gpo_core.errors import ConfigError
from gpo_core.metrics import get_metric
from gpo_core.optimizer.session import GPOSession
from gpo_core.scoring.evaluation import evaluate_many
from gpo_core.scoring.results import EvalResult, ExampleRecord
from gpo_core.stats import mcnemar_exact, paired_counts, wilson_interval
from gpo_core.studio.views import run_view, uncertainty
from gpo_core.tasks.io import load_task
from gpo_core.tasks.task import Example, Task
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import ScriptedModels, run_settings

ROOT = Path(__file__).resolve().parent.parent
ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _rouge(refs: list[str], out: str) -> float:
    return max(ROUGE.score(r, out)["rougeL"].fmeasure for r in refs)


def test_a_folder_with_output_fields_and_reference_lists_loads_and_scores_with_rouge_l(tmp_path):
    folder = tmp_path / "forecasts"
    folder.mkdir()
    rows = {
        "train": [{"input": "city=Oslo; sky=sunny", "output": "Sunny in Oslo."}],
        "eval": [{"input": "city=Leeds; sky=rainy", "output": ["Rain in Leeds today.", "Leeds: rainy."]},
                 {"input": "city=Cork; sky=foggy", "output": "Fog over Cork today."}],
        "test": [{"input": "city=Brno; sky=snowy", "output": ["Snow in Brno.", "Brno will see snow."]}],
    }
    for split, recs in rows.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    task = load_task(folder)
    dev = task.explicit_splits["eval"]
    assert [json.loads(e.target) if e.target.startswith("[") else e.target for e in dev] == [
        ["Rain in Leeds today.", "Leeds: rainy."], "Fog over Cork today."]
    reply = "Leeds will be rainy today."
    model = ScriptedChatModel([reply])
    res = evaluate_many(["Describe the weather."], dev, model, answer_type=task.answer_type, position="Q_end",
                        metric=get_metric("rouge_l"))[0]
    expected = [_rouge(["Rain in Leeds today.", "Leeds: rainy."], reply), _rouge(["Fog over Cork today."], reply)]
    assert [r.score for r in res.records] == pytest.approx(expected)
    assert res.accuracy == pytest.approx(sum(expected) / 2) and 0 < res.accuracy < 1
    assert res.score_sum == pytest.approx(sum(expected)) and not res.binary and res.metric == "rouge_l"
    assert all(r.reason and r.reason.startswith("ROUGE-L") for r in res.records)
    # the JSON form keeps the scores; a record saved before metrics existed reads as 0/1
    back = EvalResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.records[0].score == pytest.approx(expected[0]) and back.total_score == pytest.approx(sum(expected))
    old = {k: v for k, v in res.records[0].to_dict().items() if k not in ("score", "reason")}
    assert ExampleRecord.from_dict({**old, "correct": True}).value == 1.0


def test_a_list_target_with_a_non_text_item_is_still_refused_by_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": "x"}\n{"input": "b", "output": ["y", 3]}\n', encoding="utf-8")
    with pytest.raises(Exception, match="line 2") as e:
        load_task(bad)
    assert "output" in str(e.value) and "list of reference texts" in str(e.value)


def _forecast_task() -> Task:
    ex = [Example(f"city={c}; sky={s}", f"In {c} it will be {s} today.")
          for c in ("Oslo", "Leeds", "Cork", "Brno", "Lyon", "Turin", "Ghent", "Porto", "Bergen", "Malaga")
          for s in ("sunny", "rainy")]
    return Task(name="forecast", examples=ex, answer_type="exact_match", initial_instruction="Describe this.")


def _forecast_models() -> ScriptedModels:
    def task_reply(req) -> str:
        prompt = req.messages[-1][1]
        city, sky = prompt.split("city=")[1].split("\n")[0].split("; sky=")
        if "carefully" in prompt:  # nearly the house style, but wrong on rainy days
            return f"In {city} it will be {sky}." if sky != "rainy" else "Cloudy."
        return f"{sky} in {city}"

    task = ScriptedChatModel(task_reply, name="fake-task")
    opt = ScriptedChatModel(["<INS>Describe this carefully.</INS>", "<INS>Describe it.</INS>"], name="fake-opt")
    return ScriptedModels(task, opt, HashingEmbedder())


def test_a_partial_credit_run_shows_mean_scores_with_intervals_and_sign_test_counts(tmp_path):
    settings = run_settings(steps=1, candidates=2, dev_size=8, test_size=4, selection="recency", metric="rouge_l")
    session = GPOSession.create(_forecast_task(), settings, _forecast_models(), run_dir=tmp_path / "run")
    init = session.start()
    start_dev = uncertainty.initial_accuracy(session.state, "dev")
    assert start_dev is not None and start_dev.value == pytest.approx(init["dev_accuracy"])  # not rounded
    assert 0 < init["dev_accuracy"] < 1
    lo, hi = start_dev.interval()
    assert lo < start_dev.value < hi  # partial credit: Wilson's formula on the mean, not a count
    step = session.propose()
    better = next(c for c in step.candidates if "carefully" in c.text)
    dev = uncertainty.candidate_dev(better)
    assert dev is not None and dev.value == pytest.approx(better.dev_accuracy)
    assert better.dev_correct == pytest.approx(better.dev_accuracy * better.dev_answered)
    # paired: per dev example, did the score go up or down against the start prompt?
    base, mine = session.records("initial"), session.records(better.id)
    assert all("score" in r for r in mine)
    ups = sum(1 for b, m in zip(base, mine) if m["score"] > b["score"])
    downs = sum(1 for b, m in zip(base, mine) if m["score"] < b["score"])
    assert (better.fixed, better.broken) == (ups, downs) and ups > 0 and downs > 0  # rainy days got worse
    assert better.p_value == pytest.approx(mcnemar_exact(ups, downs))
    # per-example view: the mean score with a seeded bootstrap interval, the same on every call
    rec = uncertainty.records_accuracy(mine)
    assert rec is not None and rec.value == pytest.approx(better.dev_accuracy)
    assert rec.ci is not None and rec.interval() == uncertainty.records_accuracy(mine).interval()
    assert rec.ci[0] <= rec.value <= rec.ci[1]
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["settings"]["optimizer"]["metric"] == "rouge_l"
    frame = run_view.records_frame(mine)
    assert list(frame["score"]) == pytest.approx([r["score"] for r in mine], abs=1e-3)
    assert any(frame["reason"].str.startswith("ROUGE-L"))
    assert f"B scores higher than A on {ups} and lower on {downs}" in run_view.compare_text(base, mine)
    session.accept(better.id)
    final = session.final_comparison().dev
    assert final is not None and (final.fixed, final.broken) == (ups, downs)
    assert f"scores higher on {ups}, lower on {downs}" in final.text() and "exact sign test" in final.text()
    assert "(mean of 8)" in final.text()


def test_paired_counts_and_intervals_are_unchanged_for_0_1_records():
    base = [{"input": str(i), "target": "t", "correct": c, "error": None} for i, c in enumerate([1, 1, 0, 0, 1])]
    cand = [{"input": str(i), "target": "t", "correct": c, "error": None, "score": float(c)}
            for i, c in enumerate([1, 0, 1, 1, 1])]
    assert paired_counts(base, cand) == (2, 1, 5)
    assert wilson_interval(3, 5) == wilson_interval(3.0, 5)
    assert uncertainty.records_accuracy(cand).ci is None  # 0/1 scores: the Wilson interval


def test_racing_and_bad_metric_settings_are_refused_before_any_model_call(tmp_path):
    models = _forecast_models()
    with pytest.raises(ConfigError, match="racing.*partial credit"):
        GPOSession.create(_forecast_task(), run_settings(racing=True, metric="rouge_l"), models)
    with pytest.raises(ConfigError, match="example 1: the target is not a JSON object"):
        GPOSession.create(_forecast_task(), run_settings(metric="json_keys", metric_options={"keys": "city"}), models)
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        run_settings(metric="regex", metric_options={"pattern": "("}).validate()
    assert models.task.call_count == 0 and models.optimizer.call_count == 0


def test_cli_takes_the_tasks_metric_saves_it_and_refuses_another_on_resume(monkeypatch, capsys, tmp_path):
    out = tmp_path / "run"
    args = ["--task", str(ROOT / "sample_tasks" / "contact_extraction"), "--steps", "1", "--candidates", "2",
            "--dev-size", "4", "--test-size", "4", "--selection", "recency", "--out", str(out)]
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, *args)
    assert code == 0, err
    assert any("metric json_keys" in ln for ln in lines), lines
    saved = json.loads((out / "run.json").read_text())["settings"]["optimizer"]
    assert (saved["metric"], saved["metric_options"]) == ("json_keys", {"keys": "name,city,order"})
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, *args, "--resume", "--metric", "rouge_l")
    assert code == 2 and "--metric" in err
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(ROOT / "sample_tasks" / "word_sorting"),
                                "--metric", "regex", "--metric-option", "pattern=(", "--out", str(tmp_path / "r2"))
    assert code == 2 and "--metric-option" in err and "not a valid regular expression" in err
    # a key the targets lack, and user code that raises on the first example: refused before any call
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, *args[:-1], str(tmp_path / "r3"),
                                "--metric", "json_keys", "--metric-option", "keys=name,zip")
    assert code == 2 and "--metric-option" in err and "'zip'" in err and "line " in err
    assert not (tmp_path / "r3" / "run.json").exists()
    raises = tmp_path / "raises.py"
    raises.write_text("def score(output, target, input):\n    return 1 / 0\n")
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, *args[:-1], str(tmp_path / "r4"),
                                "--metric", f"{raises}:score")
    assert code == 2 and "--metric" in err and "ZeroDivisionError" in err


@pytest.mark.real_model
@pytest.mark.parametrize("sample,metric", [("contact_extraction", "json_keys"), ("weather_report", "rouge_l")])
def test_cli_run_on_each_new_sample_task_with_the_embedded_model(tmp_path, sample, metric):
    """Issue 12 must-show: a CLI run on each new sample task with the embedded models (tiny
    sizes: 1 step, 2 candidates, dev 4, test 4), scored by the task's metric."""
    import subprocess
    import sys

    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "gpo_core", "run", "--task", f"sample_tasks/{sample}", "--steps", "1",
                        "--candidates", "2", "--dev-size", "4", "--test-size", "4", "--backend", "local",
                        "--model-preset", "fast", "--task-max-tokens", "48", "--optimizer-max-tokens", "60",
                        "--selection", "recency", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=1800,
                       env={"GPO_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert f"metric {metric}" in r.stdout
    data = json.loads((out / "run.json").read_text())
    assert data["settings"]["optimizer"]["metric"] == metric
    assert data["initial"]["dev_accuracy"] is not None and 0.0 <= data["initial"]["dev_accuracy"] <= 1.0
    assert len(data["steps"]) == 1
    records = [json.loads(p.read_text()) for p in (out / "records").rglob("*.json")]
    scored = [rec for doc in records for rec in doc if rec.get("error") is None]
    assert scored and all(0.0 <= rec["score"] <= 1.0 for rec in scored)
    print(r.stdout)
