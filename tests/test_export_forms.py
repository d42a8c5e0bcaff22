"""Exports in the form prompts are used (issue 13, item 3): chat messages JSON, an openai SDK
snippet, a promptfoo config, and the report's new sections; every export re-imported or run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from demo_cli import SMALL, run_demo_cli, sums_csv

from gpo_core.models.base import ChatRequest
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.export_forms import messages_json, openai_snippet, promptfoo_config
from gpo_core.runs.exports import export_markdown
from gpo_core.scoring.task_prompt import render_task_prompt
from gpo_core.tasks.task import INSTRUCTION_POSITIONS
from gpo_testkit.fake_openai_server import FakeOpenAIServer

from engine_fakes import fake_models, parity_splits, parity_task, run_settings, task_answer

CAREFUL = "Let's think step by step carefully."


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("exports") / "r1"
    s = GPOSession.create(parity_task(), run_settings(steps=2, candidates=3, dev_size=None, test_size=None),
                          fake_models(), splits=parity_splits(), run_dir=run_dir, run_id="r1")
    s.run_auto()
    return s


def _final_records(s: GPOSession, split: str) -> list[dict]:
    cid = next(c.id for st in s.state.steps for c in st.candidates if c.text == CAREFUL)
    return s.records(cid, split)


def _fill(data: dict, text: str) -> list[dict]:
    return [{"role": m["role"], "content": m["content"].replace(data["placeholder"], text)} for m in data["messages"]]


def test_messages_reproduce_every_stored_rendered_prompt_byte_for_byte(session):
    data = json.loads(messages_json(session))
    assert data["instruction"] == CAREFUL and data["instruction_position"] == "Q_end"
    assert data["answer_type"] == "yes_no" and data["metric"] == "yes_no" and data["protocol"] == "single"
    recs = _final_records(session, "test") + _final_records(session, "dev")
    assert len(recs) == 18
    for r in recs:
        msgs = _fill(data, r["input"])
        assert [m["role"] for m in msgs] == ["user"]
        assert msgs[-1]["content"].encode() == r["rendered_prompt"].encode()
    # every export states the accuracy it was measured at, its interval and the split
    m = data["measured_at"]
    assert m["test"]["text"] == "100.0% [72.2–100.0%] (10/10)" and m["test"]["ci95"][0] == pytest.approx(0.7225, 1e-3)
    assert "test accuracy 100.0% [72.2–100.0%] (10/10)" in m["summary"] and "dev accuracy" in m["summary"]


@pytest.mark.parametrize("position", INSTRUCTION_POSITIONS)
def test_an_instruction_holding_the_placeholder_or_braces_still_round_trips(session, position, monkeypatch):
    tricky = "Use {input} and {0} literally; {{x}} {% raw %}"
    monkeypatch.setattr(session.state.task, "instruction_position", position)
    monkeypatch.setattr(type(session), "final_comparison", lambda self: type("C", (), {"prompt": tricky})())
    from gpo_core.runs.export_forms import message_template

    msgs, ph = message_template(session)
    assert ph != "{input}" and ph not in tricky
    question = "Is {input} 4 even? \"quoted\"\nsecond line"
    assert msgs[-1]["content"].replace(ph, question) == render_task_prompt(tricky, question, position)


def _responder(body: dict) -> str:
    messages = tuple((m["role"], m["content"]) for m in body["messages"])
    return task_answer(ChatRequest(messages, 0.0, 256, 0))


def test_the_openai_snippet_gets_the_runs_answers_from_a_loopback_server(session, tmp_path):
    code = openai_snippet(session)
    assert "api_key" not in code.lower().replace("openai_api_key", "") and "sk-" not in code
    assert "test accuracy 100.0% [72.2–100.0%] (10/10)" in code
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    recs = _final_records(session, "test")[:3]
    with FakeOpenAIServer(responder=_responder, required_key="loopback-key") as server:
        env = {**os.environ, "OPENAI_API_KEY": "loopback-key", "OPENAI_BASE_URL": server.base_url}
        for r in recs:
            out = subprocess.run([sys.executable, str(script), r["input"]], env=env, capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert out.stdout == r["raw_output"]
        sent = [b["messages"][-1]["content"] for b in list(server.received)[-3:]]
    assert sent == [r["rendered_prompt"] for r in recs]


def test_the_promptfoo_config_is_yaml_with_one_test_per_test_example(session):
    text = promptfoo_config(session)
    cfg = yaml.safe_load(text)
    test_split = session.state.splits["test"]
    assert len(cfg["tests"]) == len(test_split) == 10
    assert [t["vars"] for t in cfg["tests"]] == [{"input": e["input"], "target": e["target"]} for e in test_split]
    assert cfg["prompts"][0]["raw"] == "Q: {{input}}\n" + CAREFUL + "\n\nA:"
    assert cfg["providers"][0]["id"] == "openai:chat:fake-task"
    assert all(t["assert"][0]["type"] == "javascript" for t in cfg["tests"])
    assert "test accuracy 100.0% [72.2–100.0%] (10/10)" in cfg["description"] and text.startswith("# Measured")
    # required top-level keys of promptfoo's config schema, each of the type it expects
    assert isinstance(cfg["prompts"], list) and isinstance(cfg["providers"], list) and isinstance(cfg["tests"], list)


def test_the_promptfoo_assertion_agrees_with_the_runs_scoring(session):
    """The JavaScript assertion, run in node on each stored reply, says what the run said."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript assertion cannot be run here")
    cfg = yaml.safe_load(promptfoo_config(session))
    body = cfg["tests"][0]["assert"][0]["value"]
    recs = [r for r in _final_records(session, "test")] + session.records("initial", "test")
    cases = [{"output": r["raw_output"], "target": r["target"]} for r in recs]
    js = (f"const f = (output, context) => {{ {body} }};\n"
          f"const cases = {json.dumps(cases)};\n"
          "console.log(JSON.stringify(cases.map(c => f(c.output, {vars: {target: c.target}}))));")
    out = subprocess.run([node, "-e", js], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [bool(r["correct"]) for r in recs]
    assert False in json.loads(out.stdout) and True in json.loads(out.stdout)


def test_promptfoo_eval_runs_the_config_against_a_loopback_server(session, tmp_path):
    """Runs only where a promptfoo binary is installed (``$GPO_PROMPTFOO`` or on PATH)."""
    exe = os.environ.get("GPO_PROMPTFOO") or shutil.which("promptfoo")
    if not exe:
        pytest.skip("promptfoo is not installed (npm install promptfoo; set GPO_PROMPTFOO to its binary)")
    cfg_path = tmp_path / "promptfooconfig.yaml"
    cfg_path.write_text(promptfoo_config(session), encoding="utf-8")
    with FakeOpenAIServer(responder=_responder) as server:
        env = {**os.environ, "OPENAI_API_KEY": "loopback-key", "OPENAI_BASE_URL": server.base_url,
               "OPENAI_API_BASE_URL": server.base_url, "PROMPTFOO_DISABLE_TELEMETRY": "1",
               "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_CONFIG_DIR": str(tmp_path / "pfhome")}
        out = subprocess.run([exe, "eval", "-c", str(cfg_path), "-o", str(tmp_path / "out.json"), "--no-cache",
                              "--no-progress-bar"], env=env, capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)
    assert (tmp_path / "out.json").exists(), out.stdout[-2000:] + out.stderr[-2000:]
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert results["stats"]["successes"] == 10 and results["stats"]["failures"] == 0


def test_the_report_names_answer_type_position_metric_and_logs_decisions_in_words(session):
    md = export_markdown(session)
    assert "- Answer type: yes\\_no; instruction position: Q\\_end (instruction after the question" in md
    assert "metric: yes\\_no" in md and "scoring protocol: single" in md
    assert "## Decision log" in md
    assert ("- Step 1 (attempt 1, edit budget 30 words): 3 candidates proposed, 3 scored on dev. Decision: chose "
            "automatically (best dev accuracy not yet chosen) `s1c1`, dev accuracy 100.0% [67.6–100.0%] (8/8)") in md


def test_no_key_or_secret_url_part_reaches_any_export(session, monkeypatch):
    tm = session.state.settings.task_model.replace(backend="compatible",
                                                   base_url="https://user:hunter2@llm.example/v1?api_key=SENTINEL")
    monkeypatch.setattr(session.state, "settings", session.state.settings.replace(task_model=tm))
    for text in (messages_json(session), openai_snippet(session), promptfoo_config(session), export_markdown(session)):
        assert "SENTINEL" not in text and "hunter2" not in text
    assert "llm.example" in json.loads(messages_json(session))["task_model"]["base_url"]


def test_the_cli_writes_every_export_next_to_the_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, lines, err = run_demo_cli(monkeypatch, capsys, tmp_path, "--task", str(sums_csv(tmp_path / "sums.csv")),
                                    "--steps", "1", *SMALL, "--out", str(out))
    assert code == 0, err
    names = sorted(p.name for p in (out / "exports").iterdir())
    assert names == ["messages.json", "openai_snippet.py", "promptfoo.yaml", "report.html", "report.md"]
    assert str(out / "exports") in lines[-1]
    data = json.loads((out / "exports" / "messages.json").read_text())
    assert data["instruction"] + "\n" == (out / "final_prompt.txt").read_text()
    assert len(yaml.safe_load((out / "exports" / "promptfoo.yaml").read_text())["tests"]) == 8  # --test-size 8
