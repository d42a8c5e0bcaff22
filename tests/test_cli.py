"""The command line, on scripted settings errors (fast) and on the real embedded model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, env_home):
    return subprocess.run([sys.executable, "-m", "gpo_core", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"GPO_HOME": str(env_home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=900)


def test_bad_task_file_exits_nonzero_with_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nIs 2 even?,\n")
    r = run_cli("run", "--task", str(bad), "--out", str(tmp_path / "o"), env_home=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "bad.csv" in r.stderr and "line 2" in r.stderr and "answer" in r.stderr


@pytest.mark.parametrize("args,flag", [
    (["--budget-initial", "10", "--budget-final", "20"], "--budget-final"),
    (["--k", "0"], "--k"),
    (["--candidates", "100"], "--candidates"),
    (["--dev-size", "5000"], "--dev-size"),
    (["--optimizer-temperature", "3"], "--optimizer-temperature"),
    (["--answer-type", "colour"], "--answer-type"),
    (["--backend", "local", "--base-url", "http://127.0.0.1:9/v1"], "--base-url"),
])
def test_bad_settings_exit_2_naming_the_flag(tmp_path, args, flag):
    r = run_cli("run", "--task", "sample_tasks/navigation", "--out", str(tmp_path / "o"), *args, env_home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"error: setting '{flag}': "), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_help_documents_every_option(tmp_path):
    r = run_cli("run", "--help", env_home=tmp_path)
    for opt in ("--task", "--steps", "--candidates", "--dev-size", "--test-size", "--backend", "--model",
                "--base-url", "--concurrency", "--seed", "--cache-dir", "--resume", "--out"):
        assert opt in r.stdout


@pytest.mark.real_model
def test_two_steps_offline_on_the_embedded_model(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--task", "sample_tasks/navigation", "--steps", "2", "--candidates", "2", "--dev-size", "4",
            "--test-size", "2", "--backend", "local", "--model-preset", "fast", "--task-max-tokens", "48",
            "--optimizer-max-tokens", "60", "--out", str(out)]
    r = run_cli(*args, env_home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "step 1: budget 30 words" in r.stdout and "step 2: budget 10 words" in r.stdout
    data = json.loads((out / "run.json").read_text())
    assert len(data["steps"]) == 2
    for st in data["steps"]:
        assert isinstance(st["budget"], int)
        assert st["retrieved"] and all("similarity" in x and "dev_accuracy" in x for x in st["retrieved"])
        assert "<Prompt>" in st["meta_prompt"]
        assert st["decision"]["kind"] in ("auto", "no_candidate")
        assert st["usage_optimizer"]["completion_tokens"] > 0
        for c in st["candidates"]:
            assert isinstance(c["edit_distance"], int) and 0 <= (c["dev_accuracy"] or 0) <= 1
    assert (out / "final_prompt.txt").read_text().strip()
    # the same run again costs zero model calls: everything comes from the cache
    r2 = run_cli(*args[:-1], str(tmp_path / "run2"), env_home=tmp_path)
    assert r2.returncode == 0, r2.stderr
    again = json.loads((tmp_path / "run2" / "run.json").read_text())
    for st in again["steps"]:
        assert st["usage_optimizer"]["cached_calls"] == st["usage_optimizer"]["calls"]
        assert st["usage_dev"]["cached_calls"] == st["usage_dev"]["calls"]
    assert (tmp_path / "run2" / "final_prompt.txt").read_text() == (out / "final_prompt.txt").read_text()
