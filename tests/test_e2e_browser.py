"""End to end: ``streamlit run app.py`` on a free loopback port, driven in headless Chromium.

1. Upload a CSV, score the starting prompt, run one step, accept a candidate, download the
   final prompt and compare its text with the accepted candidate.
2. Issue 9: start an automatic 3-step run, go to Results and back, reload the tab: every step
   gets done and the run is reopened from the page address, with no "Open anyway" prompt.

The app runs with its scripted demo models (``GPO_STUDIO_FAKE_MODELS=1``, slowed to
``LATENCY_S`` seconds a call by ``GPO_STUDIO_FAKE_LATENCY`` so work is still running while the
test navigates), so the test is deterministic; everything else (Streamlit server, widgets,
uploads, reruns, fragments, background jobs, downloads, saving the run) is the real thing.

Needs Debian's ``chromium`` at /usr/bin/chromium (or ``$GPO_CHROMIUM``) and the ``playwright`` Python package (its
own browser downloads are not used). Without Chromium the test is skipped with the reason,
unless ``GPO_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.

Over 300 lines: the server-and-browser harness and the two scenarios that share it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_support import ROOT, arithmetic_csv

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GPO_CHROMIUM", "/usr/bin/chromium")  # Debian package path
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SERVER_START_S = 90
#: Seconds per scripted model call: slow enough that a 3-step automatic run takes seconds.
LATENCY_S = 0.2


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("GPO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (GPO_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer within {SERVER_START_S} s:\n{log.read_text()}")


@contextlib.contextmanager
def _serve(home: Path, demo_models: bool = True):
    """``streamlit run app.py`` with ``home`` as GPO_HOME: its URL. demo_models: on the slowed
    demo models (True), or on real model clients (no OpenAI variables from this process)."""
    log = home / f"streamlit-{time.monotonic_ns()}.log"
    port = _free_port()
    env = dict(os.environ, GPO_HOME=str(home), HF_HUB_OFFLINE="1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GPO_STUDIO_FAKE_MODELS", "GPO_STUDIO_FAKE_LATENCY"):
        env.pop(name, None)
    if demo_models:
        env.update(GPO_STUDIO_FAKE_MODELS="1", GPO_STUDIO_FAKE_LATENCY=str(LATENCY_S))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _need_browser() -> None:
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    _need(importlib.util.find_spec("playwright") is not None,
          "the playwright Python package is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """(url, GPO_HOME) of a ``streamlit run app.py`` on the slowed demo models."""
    _need_browser()
    home = tmp_path_factory.mktemp("gpo_home")
    with _serve(home) as url:
        yield url, home


@pytest.fixture
def app_url(app_server) -> str:
    return app_server[0]


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")


@pytest.mark.timeout(300)
def test_upload_step_accept_and_download_the_final_prompt(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    csv_path = tmp_path / "arith.csv"
    csv_path.write_bytes(arithmetic_csv(16))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)  # slow CI machines: waits, not time limits
            t0 = time.perf_counter()
            page.goto(app_url)
            expect(page.get_by_role("heading", name="GPO Studio", exact=True)).to_be_visible()
            print(f"home page shown {time.perf_counter() - t0:.1f} s after the request")

            # Task: upload the CSV, keep the guessed columns, load it, make the splits tiny
            page.get_by_role("link", name="Task").first.click()
            page.get_by_test_id("stRadioGroup").get_by_text("Upload a file").click()
            page.locator("input[type=file]").set_input_files(str(csv_path))
            page.get_by_role("button", name="Load this file as the task").click()
            expect(page.get_by_text("Loaded task: arith")).to_be_visible()
            _set_number(page, "Dev examples", 4)
            expect(page.get_by_text("dev 4 ·")).to_be_visible()
            _set_number(page, "Test examples", 4)
            expect(page.get_by_text("dev 4 · test 4")).to_be_visible()

            # Optimize: 3 steps of 2 candidates; score the start; run one step
            page.get_by_role("link", name="Optimize").first.click()
            _set_number(page, "Total steps T", 3)
            _set_number(page, "Candidates per step", 2)
            page.get_by_role("button", name="Create the run and score the starting prompt").click()
            expect(page.get_by_text("Starting prompt scored")).to_be_visible()
            page.get_by_role("button", name=re.compile(r"^Next step")).click()
            expect(page.get_by_text(re.compile(r"^Step 1 of 3 · edit budget \d+ words$"))).to_be_visible()
            expect(page.get_by_text("Waiting for your decision", exact=False)).to_be_visible()

            # Accept the second candidate, reading its id and text from its card
            expect(page.get_by_role("button", name="Accept", exact=True)).to_have_count(2)
            card = page.locator("[class*='st-key-card_']").nth(1)  # the candidate's bordered card
            cid = re.search(r"st-key-card_(\w+)", card.get_attribute("class") or "").group(1)
            accepted = card.get_by_test_id("stCode").inner_text().strip()
            assert accepted.startswith("Let's think step by step. ") and len(accepted.split()) > 5
            card.get_by_role("button", name="Accept", exact=True).click()
            # on 4 dev examples no candidate is significantly better: the app asks once (issue 11)
            page.get_by_role("button", name="Accept anyway", exact=True).click()
            expect(page.get_by_text(re.compile(rf"^Step 1: accepted {cid} \(dev"))).to_be_visible()

            # Results: download the final prompt
            page.get_by_role("link", name="Results").first.click()
            expect(page.get_by_role("heading", name="Results", exact=True)).to_be_visible()
            final = page.get_by_test_id("stCode").first.inner_text().strip()  # the final prompt the page shows
            # issue 11: the final prompt is the best on dev among the start and the chosen prompts, ties to
            # the earlier, so the accepted candidate is final only when it beat the start on dev
            assert final in (accepted, "Let's think step by step.")
            with page.expect_download() as info:
                page.get_by_role("button", name="Final prompt (.txt)").click()
            download = info.value
            text = Path(download.path()).read_text(encoding="utf-8")
            assert download.suggested_filename.endswith("-final-prompt.txt")
            assert text == final + "\n"
        finally:
            browser.close()


def _load_the_csv(page, csv_path: Path, dev: int, test: int) -> None:
    page.get_by_role("link", name="Task").first.click()
    page.get_by_test_id("stRadioGroup").get_by_text("Upload a file").click()
    page.locator("input[type=file]").set_input_files(str(csv_path))
    page.get_by_role("button", name="Load this file as the task").click()
    expect_visible(page.get_by_text(re.compile(r"^Loaded task: ")))
    _set_number(page, "Dev examples", dev)
    expect_visible(page.get_by_text(f"dev {dev} ·"))
    _set_number(page, "Test examples", test)
    expect_visible(page.get_by_text(f"dev {dev} · test {test}"))


def expect_visible(locator) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_visible()


def _go_while_a_job_runs(page, name: str) -> None:
    """Click the sidebar link ``name`` and wait for the page's heading, clicking once more if
    the first click was swallowed. While a job runs, the Optimize page's fragment redraws the
    page (``st.rerun()``) when a step ends; Streamlit folds two pending reruns into one whose
    page is the newer request's (``ScriptRequests._request_rerun_locked``; see
    streamlit/streamlit#16158), so a click landing in that instant stays on the old page, as it
    would for a user, who clicks again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    heading = page.get_by_role("heading", name=name, exact=True)
    page.get_by_role("link", name=name).first.click()
    try:
        expect(heading).to_be_visible(timeout=15_000)
    except (AssertionError, PlaywrightTimeout):
        page.get_by_role("link", name=name).first.click()
        expect(heading).to_be_visible()


def _run_json(home: Path, run_id: str) -> dict:
    import json

    return json.loads((home / "runs" / run_id / "run.json").read_text(encoding="utf-8"))


@pytest.mark.timeout(300)
def test_an_automatic_run_survives_navigation_and_a_reload(app_server, tmp_path):
    from urllib.parse import parse_qs, urlparse

    from playwright.sync_api import expect, sync_playwright

    app_url, home = app_server
    csv_path = tmp_path / "sums.csv"
    csv_path.write_bytes(arithmetic_csv(24))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(app_url)
            expect(page.get_by_role("heading", name="GPO Studio", exact=True)).to_be_visible()
            _load_the_csv(page, csv_path, dev=8, test=8)

            page.get_by_role("link", name="Optimize").first.click()
            _set_number(page, "Total steps T", 3)
            _set_number(page, "Candidates per step", 2)
            page.get_by_role("button", name="Create the run and score the starting prompt").click()
            expect(page.get_by_text("Starting prompt scored")).to_be_visible()
            query = parse_qs(urlparse(page.url).query)
            run_id, sid = query["run"][0], query["sid"][0]
            assert sid.startswith("studio-")

            # Run 3 steps automatically: the job shows its progress, conflicting buttons wait
            _set_number(page, "Steps", 3)
            page.get_by_role("button", name="Run N steps automatically").click()
            expect(page.get_by_text("Running 3 steps automatically…")).to_be_visible()
            expect(page.get_by_role("button", name=re.compile(r"^Next step"))).to_be_disabled()

            # Leave for Results and come back: the work goes on
            _go_while_a_job_runs(page, "Results")
            _go_while_a_job_runs(page, "Optimize")

            # Reload the tab (the slowed run takes seconds, so it is usually still working)
            done_before = len([s for s in _run_json(home, run_id)["steps"] if s.get("decision")])
            print(f"reloading with {done_before} of 3 steps done")
            page.reload()
            expect(page.get_by_role("heading", name="Optimize", exact=True)).to_be_visible()
            expect(page.get_by_text(f"Run {run_id} · task sums")).to_be_visible()  # reopened from the address
            expect(page.get_by_text("All 3 steps are done.")).to_be_visible()
            expect(page.get_by_text("Ran 3 steps automatically.")).to_be_visible()  # the job's own outcome
            assert page.get_by_role("button", name="Open anyway").count() == 0
            assert page.get_by_text("open in another session").count() == 0
            assert page.get_by_test_id("stMetricValue").first.inner_text() == "3 / 3"
            assert parse_qs(urlparse(page.url).query)["run"] == [run_id]
            saved = _run_json(home, run_id)
            decisions = [(s["step"], s["decision"]["kind"]) for s in saved["steps"]]
            assert decisions == [(1, "auto"), (2, "auto"), (3, "auto")]
        finally:
            browser.close()


@pytest.mark.timeout(300)
def test_after_a_server_restart_the_address_reopens_the_run_on_its_page(tmp_path):
    """The first request a fresh server gets is the Optimize page of a saved run (a tab left
    open across a restart, reloaded): the run is reopened from the address, on that page."""
    from urllib.parse import parse_qs, urlparse

    from playwright.sync_api import expect, sync_playwright

    _need_browser()
    home = tmp_path / "home"
    home.mkdir()
    csv_path = tmp_path / "sums.csv"
    csv_path.write_bytes(arithmetic_csv(24))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(120_000)  # two server starts; slow on a loaded CI machine (failed once at 60 s)
            expect.set_options(timeout=120_000)
            with _serve(home) as url:
                page.goto(url)
                expect(page.get_by_role("heading", name="GPO Studio", exact=True)).to_be_visible()
                _load_the_csv(page, csv_path, dev=4, test=4)
                page.get_by_role("link", name="Optimize").first.click()
                _set_number(page, "Total steps T", 3)
                _set_number(page, "Candidates per step", 2)
                page.get_by_role("button", name="Create the run and score the starting prompt").click()
                expect(page.get_by_text("Starting prompt scored")).to_be_visible()
                page.get_by_role("button", name=re.compile(r"^Next step")).click()
                expect(page.get_by_text("Waiting for your decision", exact=False)).to_be_visible()
                address = urlparse(page.url)
                run_id = parse_qs(address.query)["run"][0]
                assert address.path.endswith("/optimize")
            with _serve(home) as url:  # a new server process: nothing of the old one survives
                page.goto(url.rstrip("/") + address.path + "?" + address.query)
                expect(page.get_by_role("heading", name="Optimize", exact=True)).to_be_visible()
                expect(page.get_by_text(f"Run {run_id} · task sums")).to_be_visible()
                expect(page.get_by_text("Waiting for your decision", exact=False)).to_be_visible()  # the pending step
                assert page.get_by_role("button", name="Open anyway").count() == 0
                page.get_by_role("button", name="Accept best").click()
                page.get_by_role("button", name="Accept anyway", exact=True).click()  # asked once (issue 11)
                expect(page.get_by_text(re.compile(r"^Step 1: accepted"))).to_be_visible()
                assert parse_qs(urlparse(page.url).query)["run"] == [run_id]
        finally:
            browser.close()
