"""Seed variance: ``run --seeds 0,1,2`` repeats the run per seed (OUT/seed-N) and prints the final
test accuracy per seed with its interval, then the mean and spread; the engine's
:func:`gpo_core.runs.seeds.repeat_runs` does the same for the app. Demo models
(``GPO_STUDIO_FAKE_MODELS=1``): the task model answers "a + b" right more often when the
instruction holds certain keywords; which questions it gets right depends on a hash of each
question, so each seed's split gives another score."""

import json
import re
import statistics

import pytest
from demo_cli import SMALL, run_demo_cli, sums_csv

from gpo_core.errors import ConfigError
from gpo_core.models.demo import demo_models
from gpo_core.runs.seeds import SeedResult, parse_seeds, repeat_runs, summarize
from gpo_core.stats import Proportion
from gpo_core.tasks.io import load_task

_SEED_LINE = re.compile(r"^seed (\d+): final test (\d+\.\d)% \[(\d+\.\d)–(\d+\.\d)%\] \((\d+)/(\d+)\); start ")
_SUMMARY = re.compile(r"^final test accuracy over 3 seeds: mean (\d+\.\d)%, sd (\d+\.\d) points, "
                      r"range (\d+\.\d)%-(\d+\.\d)%; starting prompt mean (\d+\.\d)%$")


def test_cli_seeds_repeat_the_run_and_print_mean_and_spread(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "sums.csv")),
                                    "--steps", "1", *SMALL, "--seeds", "0,1,2", "--out", str(out))
    assert code == 0, err
    per_seed = [m for m in map(_SEED_LINE.match, lines) if m]
    assert [int(m.group(1)) for m in per_seed] == [0, 1, 2]
    finals = []
    for m in per_seed:
        seed, correct, n = int(m.group(1)), int(m.group(5)), int(m.group(6))
        run = json.loads((out / f"seed-{seed}" / "run.json").read_text())
        assert run["settings"]["splits"]["seed"] == seed and (out / f"seed-{seed}" / "final_prompt.txt").exists()
        lo, hi = Proportion(correct, n).interval()
        assert (m.group(3), m.group(4)) == (f"{100 * lo:.1f}", f"{100 * hi:.1f}")
        finals.append(correct / n)
    assert len(set(finals)) > 1                     # the seeds do differ on the demo models
    summary = _SUMMARY.match(lines[-1])
    assert summary, lines[-1]
    assert float(summary.group(1)) == pytest.approx(100 * statistics.mean(finals), abs=0.05)
    assert float(summary.group(2)) == pytest.approx(100 * statistics.stdev(finals), abs=0.05)
    assert (float(summary.group(3)), float(summary.group(4))) == pytest.approx((100 * min(finals), 100 * max(finals)),
                                                                                 abs=0.05)
    saved = json.loads((out / "seeds.json").read_text())
    assert saved["split"] == "test" and [r["seed"] for r in saved["results"]] == [0, 1, 2]
    assert saved["sd"] == pytest.approx(statistics.stdev(finals))
    # each seed's own lines are printed, prefixed
    assert any(line.startswith("[seed 2] done: 1 of 1 steps") for line in lines)


def test_cli_seeds_refuse_seed_too_and_bad_lists(tmp_path, monkeypatch, capsys):
    task = str(sums_csv(tmp_path / "sums.csv"))
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", task, "--seeds", "0,1", "--seed", "3",
                                "--out", str(tmp_path / "o1"))
    assert code == 2 and "--seeds" in err and "not both" in err
    code, _, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", task, "--seeds", "0,x", "--out",
                                str(tmp_path / "o2"))
    assert code == 2 and "--seeds" in err and "'x'" in err


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds(" 3 , 5 7") == [3, 5, 7]
    for bad, why in (("", "at least one"), ("1,1", "repeated"), ("a", "whole number"),
                     (",".join(map(str, range(21))), "at most 20")):
        with pytest.raises(ConfigError, match=why) as e:
            parse_seeds(bad)
        assert e.value.setting == "--seeds"


def test_summarize_mean_and_sample_sd_and_falls_back_to_dev():
    rs = [SeedResult(i, "p", Proportion(4, 8), Proportion(k, 8), Proportion(2, 8), 1) for i, k in enumerate((5, 7, 6))]
    s = summarize(rs)
    assert s.split == "test" and s.mean == pytest.approx(0.75) and s.sd == pytest.approx(0.125)
    assert (s.low, s.high, s.start_mean) == (0.625, 0.875, 0.25)
    assert s.lines()[-1] == ("final test accuracy over 3 seeds: mean 75.0%, sd 12.5 points, range 62.5%-87.5%; "
                             "starting prompt mean 25.0%")
    no_test = summarize([SeedResult(0, "p", Proportion(3, 4), None, None, 1)])
    assert no_test.split == "dev" and no_test.sd == 0.0
    assert "no test split: dev accuracy" in no_test.lines()[-1]
    with pytest.raises(ConfigError):
        summarize([])


def test_repeat_runs_for_the_app_matches_and_resumes(tmp_path):
    task = load_task(sums_csv(tmp_path / "sums.csv"))
    from gpo_core.settings import RunSettings

    from engine_fakes import run_settings

    settings: RunSettings = run_settings(steps=1, candidates=3, dev_size=8, test_size=8, selection="recency")
    settings = settings.replace(
        task_model=settings.task_model.replace(model="scripted-task"),
        optimizer_model=settings.optimizer_model.replace(model="scripted-optimizer"))
    made = []

    def make_models(s):
        made.append(demo_models(0.0))
        return made[-1]

    seen = []
    summary = repeat_runs(task, settings, [0, 1], make_models, lambda seed: tmp_path / "runs" / f"seed-{seed}",
                          on_seed=seen.append)
    assert [r.seed for r in summary.results] == [0, 1] == [r.seed for r in seen]
    assert summary.split == "test" and all(r.final_test is not None for r in summary.results)
    assert summary.mean == pytest.approx(statistics.mean(r.final_test.value or 0.0 for r in summary.results
                                                         if r.final_test is not None))
    calls = sum(m.task.call_count + m.optimizer.call_count for m in made)
    # run again: the saved runs are reopened, not redone
    again = repeat_runs(task, settings, [0, 1], make_models, lambda seed: tmp_path / "runs" / f"seed-{seed}")
    assert again.to_dict() == summary.to_dict()
    assert sum(m.task.call_count + m.optimizer.call_count for m in made) == calls
