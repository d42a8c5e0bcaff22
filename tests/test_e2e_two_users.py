"""Issue 15, end to end: two users of one app, one response cache, one OpenAI-compatible
server that accepts only user A's key.

User A (a browser context) points both models at the loopback server with the good key,
scores the starting prompt and runs a step. User B (a second browser context: another
browser session of the same app process, sharing its response cache) does the same with a
key the server refuses. B must get a clear HTTP 401 error and no score, never A's cached
answers; the server must have seen B's own requests.

Same harness as tests/test_e2e_browser.py (``streamlit run app.py`` on a free port, headless
Chromium at /usr/bin/chromium through Playwright), without the demo models: the app builds
real OpenAIChatModel clients.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_e2e_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    _load_the_csv,
    _need_browser,
    _serve,
    _set_number,
)

from gpo_testkit.fake_openai_server import FakeOpenAIServer

from app_support import arithmetic_csv

pytestmark = pytest.mark.browser

GOOD_KEY = "sk-two-users-good-key-000111"
BAD_KEY = "sk-two-users-refused-key-999"


def _serve_real(home: Path):
    """``streamlit run app.py`` with real model clients (no demo models), GPO_HOME ``home``."""
    return _serve(home, demo_models=False)


def _settle(page) -> None:
    """Wait until the app's script is no longer running (its status widget gone or idle)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"] button')",
                           timeout=30_000)


def _use_the_server(page, base_url: str, key: str) -> None:
    """Models page: both roles on the OpenAI-compatible server at ``base_url``, with ``key``;
    checked on the sidebar's "Active models" (each change reruns the page: a change made
    during a rerun can be lost, so the whole setup is tried again, up to 3 times)."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Models").first.click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    for attempt in range(3):
        for i in range(2):  # task model, then optimizer model
            page.get_by_text("OpenAI-compatible server", exact=True).nth(i).click()
            # the role switched (on a retry both may already be switched: wait for this role's box)
            expect(page.get_by_label("Base URL", exact=True).nth(i)).to_be_visible()
            _settle(page)
            for label, value in (("Model", "fake-model"), ("Base URL", base_url)):
                box = page.get_by_label(label, exact=True).nth(i)
                box.fill(value)
                box.press("Enter")
                expect(box).to_have_value(value)
                _settle(page)
        box = page.get_by_label("OpenAI API key", exact=True)
        box.fill(key)
        box.press("Enter")
        _settle(page)
        try:
            expect(page.get_by_text("Using the key typed above (this browser session only).")).to_be_visible(
                timeout=15_000)
            for role in ("task", "optimizer"):   # the sidebar's "Active models"
                expect(page.get_by_text(re.compile(rf"^{role} model: fake-model"))).to_be_visible(timeout=15_000)
            return
        except AssertionError:
            if attempt == 2:
                raise
            print(f"models not set yet (attempt {attempt + 1}); setting them again")


def _start_run(page) -> None:
    page.get_by_role("link", name="Optimize").first.click()
    _set_number(page, "Total steps T", 2)
    _set_number(page, "Candidates per step", 2)
    page.get_by_role("button", name="Create the run and score the starting prompt").click()


@pytest.mark.timeout(720)
def test_a_second_user_with_a_refused_key_gets_a_401_not_the_first_users_answers(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    _need_browser()
    home = tmp_path / "home"
    home.mkdir()
    csv_path = tmp_path / "sums.csv"
    csv_path.write_bytes(arithmetic_csv(16))
    with FakeOpenAIServer(accepted_keys={GOOD_KEY}) as server, _serve_real(home) as app_url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=90_000)
            # User A: the good key; one step
            a = browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            a.set_default_timeout(90_000)
            a.goto(app_url)
            expect(a.get_by_role("heading", name="GPO Studio", exact=True)).to_be_visible()
            _load_the_csv(a, csv_path, dev=4, test=2)
            _use_the_server(a, server.base_url, GOOD_KEY)
            _start_run(a)
            expect(a.get_by_text("Starting prompt scored")).to_be_visible()
            a.get_by_role("button", name=re.compile(r"^Next step")).click()
            # the first step loads the update direction's sentence embedder: slow on a busy CPU
            expect(a.get_by_text("Waiting for your decision", exact=False)).to_be_visible(timeout=300_000)
            served_to_a = server.chat_requests
            assert served_to_a > 0 and server.refused == 0

            # User B: another browser session, same app and cache, a key the server refuses
            b = browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            b.set_default_timeout(90_000)
            b.goto(app_url)
            expect(b.get_by_role("heading", name="GPO Studio", exact=True)).to_be_visible()
            _load_the_csv(b, csv_path, dev=4, test=2)
            _use_the_server(b, server.base_url, BAD_KEY)
            _start_run(b)
            error = b.get_by_text(re.compile(r"authentication failed \(HTTP 401\).*check the API key")).first
            try:
                expect(error).to_be_visible()
            except AssertionError:
                b.screenshot(path=str(tmp_path / "user_b_failed.png"), full_page=True)
                print(b.locator("section.main, [data-testid=stMain]").first.inner_text())
                raise
            shown = error.inner_text()
            assert BAD_KEY not in shown and GOOD_KEY not in shown
            assert b.get_by_text("Starting prompt scored").count() == 0
            b.screenshot(path=str(tmp_path / "user_b.png"), full_page=True)
            print(f"user B sees: {shown!r}; screenshot {tmp_path / 'user_b.png'}")
        finally:
            browser.close()
        # B's own calls reached the server and were refused; no score was saved for B
        assert server.refused >= 4
        scored = [json.loads(f.read_text(encoding="utf-8")).get("initial") for f in (home / "runs").glob("*/run.json")]
        assert sum(1 for initial in scored if initial) == 1     # A's run only
        for f in home.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                assert GOOD_KEY.encode() not in data and BAD_KEY.encode() not in data, f
