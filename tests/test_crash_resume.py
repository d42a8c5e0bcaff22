"""kill -9 in the middle of a step: run.json stays valid JSON holding only whole steps, and
``--resume`` finishes with the same results a clean run with the same seed and cache gives.

The CLI runs as a subprocess (``python -m gpo_core run --backend openai``) against the
loopback fake server with 50 ms latency, so one step takes about a second.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gpo_core.runs.records import RunState
from gpo_core.runs.repository import records_path

ROOT = Path(__file__).resolve().parent.parent
STEPS = 3


def _task_csv(path: Path, n: int = 40) -> Path:
    colours = ("red", "green", "blue", "yellow")
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["input", "target"])
        for i in range(n):
            letter = "ABCD"[i % 4]
            opts = " ".join(f"({x}) {c}" for x, c in zip("ABCD", colours))
            w.writerow([f"Item {i}: which colour is listed under the letter {letter}? Options: {opts}", f"({letter})"])
    return path


def _args(task: Path, out: Path, base_url: str, cache: Path) -> list[str]:
    return [sys.executable, "-m", "gpo_core", "run", "--task", str(task), "--out", str(out), "--backend", "openai",
            "--base-url", base_url, "--model", "fake-model", "--steps", str(STEPS), "--candidates", "4",
            "--dev-size", "12", "--test-size", "4", "--concurrency", "4", "--selection", "recency",
            "--answer-type", "multiple_choice", "--seed", "3", "--cache-dir", str(cache), "--timeout", "10"]


def _env(home: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GPO_HOME": str(home), "HF_HUB_OFFLINE": "1",
            "OPENAI_API_KEY": "sk-crash-test"}


def _decided(path: Path) -> int:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return sum(1 for s in data["steps"] if s.get("decision") and s["decision"]["kind"] != "reject_all")


def _results(run_dir: Path) -> dict:
    """What a user compares between two runs: starting accuracies, and per step the candidates
    with their dev accuracy, the chosen prompt and its dev/test accuracy; the final prompt."""
    data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    steps = []
    for s in data["steps"]:
        chosen = next(c for c in s["candidates"] if c["id"] == s["decision"]["candidate_id"])
        steps.append({"step": s["step"], "attempt": s["attempt"], "budget": s["budget"],
                      "candidates": [(c["text"], c["dev_accuracy"], c["status"]) for c in s["candidates"]],
                      "chosen": chosen["text"], "chosen_dev": chosen["dev_accuracy"],
                      "chosen_test": s["chosen_test_accuracy"]})
    return {"initial": (data["initial"]["prompt"], data["initial"]["dev_accuracy"], data["initial"]["test_accuracy"]),
            "splits": json.loads((run_dir / "data.json").read_text(encoding="utf-8")), "steps": steps,
            "final": (run_dir / "final_prompt.txt").read_text(encoding="utf-8")}


def test_kill_9_mid_step_keeps_whole_steps_and_resume_matches_a_clean_run(make_fake_server, tmp_path):
    server = make_fake_server(latency_s=0.05)
    task = _task_csv(tmp_path / "colours.csv")
    cache = tmp_path / "cache"
    crashed = tmp_path / "crashed"
    run_file = crashed / "run.json"

    proc = subprocess.Popen(_args(task, crashed, server.base_url, cache), cwd=ROOT, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while _decided(run_file) < 1:  # step 1 finished and saved
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "step 1 never finished"
            time.sleep(0.01)
        at_save = server.chat_requests
        while server.chat_requests < at_save + 8:  # step 2 is under way: optimizer done, dev scoring running
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # run.json is valid JSON of whole steps only: the finished step(s), nothing half-written.
    data = json.loads(run_file.read_text(encoding="utf-8"))
    state = RunState.from_dict(data)
    done = len(state.decided_steps)
    assert 1 <= done < STEPS
    assert [s.step for s in state.decided_steps] == list(range(1, done + 1))
    for s in state.steps:
        if s.pending:  # a proposed step is saved only once all its candidates are scored
            assert s is state.steps[-1]
            assert all(c.dev_accuracy is not None for c in s.candidates if c.status == "scored")
        else:
            chosen = s.decision.candidate_id
            assert chosen is not None
            assert records_path(crashed, chosen, "dev").exists() and records_path(crashed, chosen, "test").exists()
    assert state.current_prompt == state.trajectory[state.current_entry_id].prompt

    resumed = subprocess.run(_args(task, crashed, server.base_url, cache) + ["--resume"], cwd=ROOT,
                             env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done} of {STEPS} steps done" in resumed.stdout

    clean_dir = tmp_path / "clean"
    clean = subprocess.run(_args(task, clean_dir, server.base_url, cache), cwd=ROOT, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr

    got, want = _results(crashed), _results(clean_dir)
    assert len(got["steps"]) == STEPS
    assert got == want
