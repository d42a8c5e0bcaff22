"""Security: an API key never leaks; uploaded text renders as text; CSV exports neutralize
formulas; saved runs open only from the runs folder.

Key runs use a sentinel key ("sk-SENTINEL-" + uuid) that the fake server requires (HTTP 401
otherwise), through the CLI, in-process with DEBUG logging on, and through the app's Models
page password field. Then every file under the test's folders (run folders, response cache
with its SQLite WAL, GPO_HOME, exports) and Streamlit's folders, the captured logs and
stdout/stderr, and every element the app rendered are searched for the key.

Over 300 lines: the security checks of the app and the engine stay in one file, for review.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gpo_core.errors import EndpointDownError, RunFileError
from gpo_core.models.base import ChatRequest
from gpo_core.models.cache import CachedChatModel, ResponseCache
from gpo_core.models.openai_chat import OpenAIChatModel
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.runs.exports import export_json, export_markdown, export_records_csv, final_prompt_text
from gpo_core.studio.studio import Studio
from gpo_core.tasks.io import load_task_bytes
from gpo_core.tasks.task import Example, Task
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from app_support import APP, TIMEOUT, click, no_exception
from engine_fakes import run_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sentinel() -> str:
    return "sk-SENTINEL-" + uuid.uuid4().hex


def _needles(key: str) -> list[bytes]:
    """The key and its unique part, as bytes in the encodings a file could hold."""
    unique = key.removeprefix("sk-SENTINEL-")
    return [key.encode(), unique.encode(), key.encode("utf-16-le")]


def files_holding(key: str, *roots: Path) -> list[Path]:
    """Every file under ``roots`` whose bytes contain the key (or its unique part)."""
    hits = []
    for root in roots:
        if not root.exists():
            continue
        for p in [root] if root.is_file() else root.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                if any(n in data for n in _needles(key)):
                    hits.append(p)
    return hits


def streamlit_dirs() -> list[Path]:
    """Where Streamlit could keep files: ~/.streamlit and the app's .streamlit folder."""
    return [Path.home() / ".streamlit", ROOT / ".streamlit"]


def mc_csv(n: int = 24) -> bytes:
    lines = ["question,answer"]
    for i in range(n):
        letter = "ABC"[i % 3]
        lines.append(f"Item {i}: which is listed under {letter}? Options: (A) red (B) green (C) blue,({letter})")
    return ("\n".join(lines) + "\n").encode()


# ----------------------------------------------------------------------------- keys


def test_key_never_leaks_from_a_cli_run(make_fake_server, tmp_path, sentinel):
    server = make_fake_server(required_key=sentinel)
    task = tmp_path / "colours.csv"
    task.write_bytes(mc_csv())
    home, out, cache = tmp_path / "home", tmp_path / "run", tmp_path / "cache"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GPO_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "OPENAI_API_KEY": sentinel}
    args = [sys.executable, "-m", "gpo_core", "run", "--task", str(task), "--out", str(out), "--backend", "openai",
            "--base-url", server.base_url, "--model", "fake-model", "--steps", "2", "--candidates", "2",
            "--dev-size", "4", "--test-size", "2", "--selection", "recency", "--cache-dir", str(cache)]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # the key reached the server (it answers 401 to any other key) ...
    assert server.requests_with_key == server.requests_served > 0
    # ... and nowhere else: run folder, records, final prompt, cache (SQLite + WAL), GPO_HOME, output
    assert (out / "run.json").exists() and list(cache.glob("responses.sqlite*"))
    assert files_holding(sentinel, out, cache, home) == []
    assert sentinel not in r.stdout + r.stderr

    # A wrong key: the error names the problem but never echoes the key that was sent.
    wrong = make_fake_server(required_key="sk-the-right-one")
    r = subprocess.run([*args[:args.index("--base-url") + 1], wrong.base_url, *args[args.index("--base-url") + 2:]]
                       + ["--out", str(tmp_path / "run2")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "authentication failed (HTTP 401)" in r.stderr, r.stderr
    assert sentinel not in r.stdout + r.stderr
    assert files_holding(sentinel, tmp_path / "run2", cache, home) == []


def _key_session(server, key, run_dir, cache_path, examples):
    cache = ResponseCache(cache_path)

    def model(name):
        inner = OpenAIChatModel(name, api_key=key, base_url=server.base_url, timeout_s=5, backoff_s=0.01,
                                max_concurrency=4)
        return CachedChatModel(inner, cache, namespace=f"compatible|{server.base_url}|{name}")

    task = Task("colours", examples, answer_type="multiple_choice")
    models = Models(model("fake-model"), model("fake-model"), HashingEmbedder())
    cfg = run_settings(steps=2, candidates=2, dev_size=4, test_size=2, task_max_tokens=16, optimizer_max_tokens=60)
    for role in ("task", "optimizer"):
        cfg = cfg.with_model(role, cfg.model(role).replace(backend="compatible", model="fake-model",
                                                           base_url=server.base_url))
    return GPOSession.create(task, cfg, models, run_dir=run_dir, run_id=run_dir.name), cache


def test_key_never_leaks_in_process_with_debug_logging(make_fake_server, tmp_path, sentinel, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger, openai's and httpx's included, at DEBUG
    server = make_fake_server(required_key=sentinel)
    examples = load_task_bytes(mc_csv(), "colours.csv").examples
    session, cache = _key_session(server, sentinel, tmp_path / "runs" / "r1", tmp_path / "cache" / "responses.sqlite",
                                  examples)
    session.run_auto()
    assert len(session.state.decided_steps) == 2 and server.requests_with_key == server.requests_served > 0
    exports = [final_prompt_text(session), export_json(session), export_markdown(session)]
    exports += [export_records_csv(session.records(k, split)) for k in ["initial"] + [
        c.id for s in session.state.steps for c in s.candidates] for split in ("dev", "test")]
    for text in exports:
        assert sentinel not in text

    # failures too: a server that rejects the key, and one that is gone
    bad = make_fake_server(required_key="sk-the-right-one")
    c = OpenAIChatModel("fake-model", api_key=sentinel, base_url=bad.base_url).complete(ChatRequest.user("Hi"))
    assert "401" in c.error and sentinel not in c.error
    url = bad.base_url
    bad.stop()
    down = OpenAIChatModel("fake-model", api_key=sentinel, base_url=url, max_attempts=2, backoff_s=0.01)
    c = down.complete(ChatRequest.user("Hi"))
    assert c.error and sentinel not in c.error and sentinel not in repr(down)
    gone = GPOSession.create(Task("colours", examples, answer_type="multiple_choice"),
                             run_settings(steps=1, candidates=1, dev_size=2, test_size=0),
                             Models(down, down, HashingEmbedder()), run_dir=tmp_path / "runs" / "r2")
    with pytest.raises(EndpointDownError) as err:
        gone.start()
    assert "cannot connect" in str(err.value) and sentinel not in str(err.value)
    cache.close()

    assert caplog.records, "DEBUG logging captured nothing"
    assert sentinel not in caplog.text
    captured = capfd.readouterr()
    assert sentinel not in captured.out + captured.err
    assert files_holding(sentinel, tmp_path) == []


def _walk_elements(at: AppTest):
    """Every rendered node (elements and blocks) of an AppTest run."""
    return [node for node in at._tree]


def _shown_text(at: AppTest, skip_keys=("api_key_input",)) -> str:
    """The protobuf text of every rendered element except the named widgets."""
    parts = []
    for node in _walk_elements(at):
        if getattr(node, "key", None) in skip_keys:
            continue
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
    return "\n".join(parts)


def test_key_typed_in_the_app_never_leaks(make_fake_server, tmp_path, sentinel, monkeypatch, caplog, capfd):
    caplog.set_level(logging.INFO)
    home = tmp_path / "home"
    monkeypatch.setenv("GPO_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("GPO_STUDIO_FAKE_MODELS", raising=False)
    server = make_fake_server(required_key=sentinel)

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()  # the app makes this session's Studio itself (runs under GPO_HOME)
    studio: Studio = at.session_state["studio"]
    assert studio.runs.root == home / "runs"
    studio.tasks.preview_upload(mc_csv(), "colours.csv")
    studio.tasks.load_upload("question", "answer")
    studio.tasks.update_splits(dev_size=3, test_size=2)
    studio.draft.update_optimizer(steps=2, candidates=2, selection="recency")

    at.switch_page("pages/models.py").run()
    field = at.text_input(key="api_key_input")
    assert field.proto.type == field.proto.PASSWORD  # masked in the page
    for role in ("task", "optimizer"):
        at.radio(key=f"{role}_backend").set_value("compatible").run()
        at.text_input(key=f"{role}_model_compatible").set_value("fake-model")
        at.text_input(key=f"{role}_base_url_compatible").set_value(server.base_url).run()
    at.text_input(key="api_key_input").set_value(sentinel).run()
    at.button(key="task_test").click().run()
    no_exception(at)
    assert studio.models.api_key == sentinel
    pages = [_shown_text(at)]
    at.button(key="optimizer_test").click().run()
    pages.append(_shown_text(at))
    # (a step would load the real sentence embedder for the similarity column: too slow here;
    # the optimizer model's use of the key is covered by its connection test and the CLI test)
    at.switch_page("pages/optimize.py").run()
    click(at, "new_run")  # waits for the background job that scores the start
    pages.append(_shown_text(at))
    at.switch_page("pages/results.py").run()
    no_exception(at)
    pages.append(_shown_text(at))
    at.switch_page("pages/home.py").run()
    pages.append(_shown_text(at))

    assert studio.runs.session is not None and studio.runs.session.started
    assert server.requests_with_key == server.requests_served > 2  # the typed key was used
    for shown in pages:  # no element shows the key (the password field itself is skipped)
        assert sentinel not in shown
    exports = studio.exports.final_prompt() + studio.exports.run_json() + studio.exports.report_md()
    assert sentinel not in exports
    saved = list(home.rglob("run.json"))
    assert saved and list(home.rglob("responses.sqlite*"))
    assert files_holding(sentinel, tmp_path, *streamlit_dirs()) == []
    assert sentinel not in caplog.text
    captured = capfd.readouterr()
    assert sentinel not in captured.out + captured.err


# ----------------------------------------------------------------------------- text, not HTML

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
BOLD = "**bold**"
LINK = "[click](javascript:alert(3))"


#: The hostile text of the optimizer's candidates: the same markup without closing tags and
#: in another order, so the engine's echo filter (which refuses a leftover "</" tag or more
#: than a few words copied from an exemplar) still lets it through to the page.
CANDIDATE_HOSTILE = f"<script>alert(1) {IMG} {BOLD} {LINK}"


def _hostile_models() -> Models:
    """Task model answers with HTML/Markdown around the right answer; optimizer proposes
    candidates holding hostile text too."""

    def task_reply(req: ChatRequest) -> str:
        m = re.search(r"under (\w)\?", req.messages[-1][1])
        return f"{SCRIPT} {BOLD} The answer is ({m.group(1) if m else 'A'})."

    def opt_reply(req: ChatRequest) -> str:
        return f"<INS>Let's think step by step. {CANDIDATE_HOSTILE} variant {req.sample_index}</INS>"

    return Models(ScriptedChatModel(task_reply, name="task"), ScriptedChatModel(opt_reply, name="opt"),
                  HashingEmbedder())


def _hostile_csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["question", "answer"])
    for i in range(24):
        letter = "ABC"[i % 3]
        question = f"{SCRIPT} {BOLD} Item {i} {IMG} {LINK}: which is under {letter}? (A) x (B) y (C) z"
        w.writerow([question, f"({letter})"])
    return buf.getvalue().encode()


#: Element types whose text Streamlit renders as Markdown.
MARKDOWN_TYPES = ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success",
                  "toast", "metric", "expander", "status", "tab", "button", "page_link")


def _markdown_problems(at: AppTest) -> list[str]:
    """Rendered Markdown that would run user text: HTML allowed, or the hostile snippets
    unescaped (``<script``, ``<img``, ``**bold**``, a javascript: link)."""
    problems = []
    for node in _walk_elements(at):
        proto = getattr(node, "proto", None)
        if proto is None:
            continue
        kind = getattr(node, "type", "")
        if getattr(proto, "allow_html", False):
            problems.append(f"{kind} allows HTML: {str(proto)[:200]}")
        if kind in ("html", "iframe"):
            problems.append(f"{kind} element: {str(proto)[:200]}")
        if kind not in MARKDOWN_TYPES:
            continue
        text = str(proto)  # protobuf text: a Markdown escape shows as a backslash before the character
        for raw in (r"(?<!\\)<script", r"(?<!\\)<img", r"\*\*bold\*\*", r"\]\(javascript:"):
            if re.search(raw, text):
                problems.append(f"{kind} renders {raw!r} unescaped: {text[:300]}")
    return problems


def test_uploaded_and_model_text_render_as_text_never_html(tmp_path):
    studio = Studio(runs_root=tmp_path / "runs", models_override=_hostile_models())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["studio"] = studio
    at.run()
    at.switch_page("pages/task.py").run()
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value((f"{BOLD} {IMG}.csv".replace("/", "_"), _hostile_csv(), "text/csv")).run()
    next(b for b in at.button if b.label == "Load this file as the task").click().run()
    no_exception(at)
    assert studio.tasks.task is not None and SCRIPT in studio.tasks.task.examples[0].input  # kept byte for byte
    problems = _markdown_problems(at)
    # a bad upload afterwards: the "previous task stays loaded" note names the hostile task
    at.file_uploader[0].set_value(("bad.csv", b"question,answer\nq1,yes\nq2,\n", "text/csv")).run()
    next(b for b in at.button if b.label == "Load this file as the task").click().run()
    assert any("previous task" in i.value for i in at.info)
    problems += _markdown_problems(at)

    studio.tasks.update_splits(dev_size=4, test_size=2)
    studio.draft.update_optimizer(steps=2, candidates=2, selection="recency")
    at.switch_page("pages/optimize.py").run()
    click(at, "new_run")  # each click waits for its background job, then draws its result
    click(at, "next_step")
    step = studio.runs.session.state.pending_step
    assert any(CANDIDATE_HOSTILE in c.text for c in step.candidates)  # the hostile text reached the page
    problems += _markdown_problems(at)
    click(at, "accept_best")
    problems += _markdown_problems(at)
    at.switch_page("pages/results.py").run()
    no_exception(at)
    problems += _markdown_problems(at)
    at.switch_page("pages/home.py").run()
    problems += _markdown_problems(at)
    assert problems == []


def test_app_sources_never_allow_html():
    sources = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    assert len(sources) >= 5
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"unsafe_allow_html\s*=\s*True", text), path
        assert "st.html(" not in text and "components.html" not in text and "st.components" not in text, path


# ----------------------------------------------------------------------------- CSV exports


def test_csv_export_of_a_real_run_neutralizes_formula_cells(tmp_path):
    formulas = ["=cmd|' /C calc'!A0", "+1+2", "-3-4", "@SUM(A1:A2)", "\t=1+1", "=HYPERLINK(\"http://x\")"]
    examples = [Example(f"{f} Is {n} even?", "yes" if n % 2 == 0 else "no") for n, f in
                zip(range(2, 26), formulas * 4)]
    task = Task("formulas", examples, answer_type="yes_no")

    def task_reply(req: ChatRequest) -> str:
        n = int(re.search(r"Is (\d+) even", req.messages[-1][1]).group(1))
        return f"=1+1 {'yes' if n % 2 == 0 else 'no'}"

    models = Models(ScriptedChatModel(task_reply, name="t"),
                    ScriptedChatModel(["<INS>Think carefully about parity.</INS>"], name="o"), HashingEmbedder())
    session = GPOSession.create(task, run_settings(steps=1, candidates=1, dev_size=12, test_size=6), models,
                                run_dir=tmp_path / "run")
    session.run_auto()
    keys = ["initial", session.state.steps[0].candidates[0].id]
    for key in keys:
        for split in ("dev", "test"):
            records = session.records(key, split)
            assert records
            rows = list(csv.reader(io.StringIO(export_records_csv(records))))
            assert len(rows) == len(records) + 1
            cells = [cell for row in rows[1:] for cell in row]
            assert any(cell.startswith("'=") for cell in cells)  # the formulas are there, neutralized
            assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]


# ----------------------------------------------------------------------------- runs folder


def _saved_run(run_dir: Path, run_id: str) -> None:
    task = Task("parity", [Example(f"Is {n} even?", "yes" if n % 2 == 0 else "no") for n in range(20)],
                answer_type="yes_no")
    models = Models(ScriptedChatModel(["yes"], name="t"), ScriptedChatModel(["<INS>Think twice.</INS>"], name="o"),
                    HashingEmbedder())
    s = GPOSession.create(task, run_settings(steps=1, candidates=1, dev_size=4, test_size=2), models,
                          run_dir=run_dir, run_id=run_id)
    s.start()
    for lease in run_dir.glob("lease*"):  # the session that saved it is long gone
        lease.unlink()


def test_studio_opens_saved_runs_only_from_the_runs_folder(tmp_path):
    runs = tmp_path / "runs"
    _saved_run(runs / "inside", "inside")
    _saved_run(tmp_path / "outside", "outside")
    os.symlink(tmp_path / "outside", runs / "linked")
    studio = Studio(runs_root=runs, models_override=_hostile_models())
    assert studio.runs.open("inside").state.run_id == "inside"
    for crafted in ("../outside", str(tmp_path / "outside"), "linked", "inside/../../outside", "..", "/",
                    "inside/../..", "~", "%2e%2e/outside", "inside\x00"):
        studio.runs.session = None
        with pytest.raises(RunFileError):
            studio.runs.open(crafted)
        assert studio.runs.session is None


def test_app_refuses_a_run_that_points_outside_the_runs_folder(tmp_path):
    runs = tmp_path / "runs"
    _saved_run(runs / "good", "good")
    _saved_run(tmp_path / "elsewhere", "evil")
    os.symlink(tmp_path / "elsewhere", runs / "evil")  # a symlinked folder whose run says it is "evil"
    crafted = runs / "crafted"  # a run file inside the folder whose run_id climbs out of it
    _saved_run(crafted, "crafted")
    data = json.loads((crafted / "run.json").read_text())
    data["run_id"] = "../elsewhere"
    (crafted / "run.json").write_text(json.dumps(data))

    def outside() -> dict:
        return {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "elsewhere").rglob("*") if p.is_file()}

    before = outside()
    studio = Studio(runs_root=runs, models_override=_hostile_models())
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["studio"] = studio
    at.run()
    at.switch_page("pages/results.py").run()
    no_exception(at)
    ids = [label.rsplit(" · ", 1)[-1] for label in at.selectbox(key="open_run_id").options]  # "name · task · id"
    assert sorted(ids) == ["crafted", "good"]         # the symlink leading outside is not listed
    at.selectbox(key="open_run_id").set_value("crafted")
    at.button(key="open_run").click().run()
    no_exception(at)
    # the run opens from the folder it is listed under, whatever id its file claims (the id
    # is only shown, as text); its saves land in that folder and never outside
    assert studio.runs.session.run_dir == runs / "crafted"
    studio.runs.session.run_auto()
    assert json.loads((crafted / "run.json").read_text())["steps"] and outside() == before
    for crafted_id in ("evil", "../elsewhere", str(tmp_path / "elsewhere")):
        with pytest.raises(RunFileError):
            studio.runs.open(crafted_id)
    at.selectbox(key="open_run_id").set_value("good")
    at.button(key="open_run").click().run()
    no_exception(at)
    assert studio.runs.session is not None and studio.runs.session.state.run_id == "good"
