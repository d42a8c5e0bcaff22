"""End to end: ``streamlit run app.py`` on a free loopback port, driven in headless Chromium.

Upload a CSV, score the starting prompt, run one step, accept a candidate, download the final
prompt and compare its text with the accepted candidate. The app runs with scripted models
(``GPO_STUDIO_FAKE_MODELS=1``, read only by ``gpo_core.studio.studio.models_override_from_env``) so
the test is fast and deterministic; everything else (Streamlit server, widgets, uploads,
reruns, downloads, saving the run) is the real thing.

Needs Debian's ``chromium`` at /usr/bin/chromium (or ``$GPO_CHROMIUM``) and the ``playwright`` Python package (its
own browser downloads are not used). Without Chromium the test is skipped with the reason,
unless ``GPO_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    _need(importlib.util.find_spec("playwright") is not None,
          "the playwright Python package is not installed (pip install -r requirements-dev.txt)")
    home = tmp_path_factory.mktemp("gpo_home")
    log = home / "streamlit.log"
    port = _free_port()
    env = dict(os.environ, GPO_STUDIO_FAKE_MODELS="1", GPO_HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("OPENAI_API_KEY", None)
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
            expect(page.get_by_role("heading", name="GPO Studio")).to_be_visible()
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

            # Accept the second candidate, reading its text from its card
            expect(page.get_by_role("button", name="Accept", exact=True)).to_have_count(2)
            card = page.locator(".st-key-card_s1a1c2")  # the candidate's bordered card
            accepted = card.get_by_test_id("stCode").inner_text().strip()
            assert accepted.startswith("Let's think step by step. ") and len(accepted.split()) > 5
            card.get_by_role("button", name="Accept", exact=True).click()
            expect(page.get_by_text(re.compile(r"^Step 1: accepted s1a1c2 \(dev"))).to_be_visible()

            # Results: download the final prompt
            page.get_by_role("link", name="Results").first.click()
            expect(page.get_by_role("heading", name="Results")).to_be_visible()
            with page.expect_download() as info:
                page.get_by_role("button", name="Final prompt (.txt)").click()
            download = info.value
            text = Path(download.path()).read_text(encoding="utf-8")
            assert download.suggested_filename.endswith("-final-prompt.txt")
            assert text == accepted + "\n"
        finally:
            browser.close()
