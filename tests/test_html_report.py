"""The self-contained HTML report (issue 13, item 4): same content as the Markdown report,
plotly.js embedded (no network), and, in headless Chromium offline, both charts drawn."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.html_report import export_html, markdown_to_html, plotly_js_bytes

from engine_fakes import fake_models, parity_splits, parity_task, run_settings

CHROMIUM = os.environ.get("GPO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("html") / "r1"
    task = parity_task()
    task.name = "parity <script>alert(1)</script> & co"
    s = GPOSession.create(task, run_settings(steps=2, candidates=3, dev_size=None, test_size=None),
                          fake_models(), splits=parity_splits(), run_dir=run_dir, run_id="r1")
    s.run_auto()
    path = run_dir / "report.html"
    path.write_text(export_html(s), encoding="utf-8")
    return path


def test_the_report_is_self_contained_and_holds_the_markdown_content(report):
    text = report.read_text(encoding="utf-8")
    markup = re.sub(r"(?s)<script[^>]*>.*?</script>", "<script></script>", text)  # tags, not plotly.js' code
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)   # nothing fetched from a CDN
    assert "<script src" not in markup and markup.count("<script") >= 3
    assert "cdn.plot.ly" not in markup and len(text) > plotly_js_bytes()     # plotly.js inlined, once
    # accuracy and gap charts, and (parity is a yes/no label task) the final prompt's confusion on dev and test
    assert text.count("Plotly.newPlot") == 4 and 'id="confusion-chart-test"' in text
    for heading in ("Settings", "Result", "Steps", "Decision log", "Dev-test gap", "Charts"):
        assert f"<h2>{heading}</h2>" in text
    assert "<td>100.0% [67.6–100.0%] (8/8)</td>" in text
    assert "<script>alert(1)</script>" not in text and "parity &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "<pre><code>Let&#x27;s think step by step carefully.</code></pre>" in text or \
        "<pre><code>Let's think step by step carefully.</code></pre>" in text


def test_markdown_escapes_come_out_as_plain_text():
    html = markdown_to_html("| a | b\\_c \\| d |\n|---|---|\n| `s1c1` | x &lt;b&gt; |\n\n- one \\*two\\*")
    assert "<th>b_c | d</th>" in html and "<td><code>s1c1</code></td>" in html
    assert "<td>x &lt;b&gt;</td>" in html and "<li>one *two*</li>" in html


@pytest.mark.browser
def test_both_charts_render_offline_in_headless_chromium(report, tmp_path):
    if not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip(f"needs {CHROMIUM} and the playwright package")
    from PIL import Image, ImageStat
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 1000})
            context.route("**/*", route)
            page = context.new_page()
            page.goto(report.as_uri())
            for div in ("#accuracy-plot", "#gap-plot"):
                page.wait_for_selector(f"{div} .main-svg", timeout=30_000)
                page.wait_for_selector(f"{div} .scatterlayer .trace", timeout=30_000)
                shot = tmp_path / f"{div[1:]}.png"
                page.locator(f"{div} .nsewdrag").first.screenshot(path=str(shot))
                img = Image.open(shot).convert("L")
                assert ImageStat.Stat(img).var[0] > 50, f"{div}: plot area blank"
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert blocked == []
