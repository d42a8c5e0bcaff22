"""Issue 12 in the browser: pick a metric on the Task page (its definition and the preview score
of one example show before any run), run a step on the scripted demo models, and see the
classification report (per-class table, confusion heatmap, majority baseline) on Results, and
the majority baseline under the accuracies on the Optimize page."""

from __future__ import annotations

import re

import pytest

from tests.test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, _set_number, app_server  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


def _pick(page, label: str, option: str, then: re.Pattern) -> None:
    """Choose ``option`` in the last Streamlit selectbox labelled ``label`` (the loaded task's,
    below the upload panel's) until text matching ``then`` shows (a click that lands while the
    page is being redrawn is lost: it is made again, at most 4 times)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    for attempt in range(4):
        page.wait_for_timeout(1500)
        page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True)).last.click()
        page.get_by_role("option", name=option, exact=True).click()
        try:
            expect(page.get_by_text(then).first).to_be_visible(timeout=20_000)
            return
        except (AssertionError, PlaywrightTimeout):
            if attempt == 3:
                raise


@pytest.mark.timeout(420)
def test_pick_a_metric_then_see_the_classification_report(app_server, tmp_path):  # noqa: F811 - the fixture
    from playwright.sync_api import expect, sync_playwright

    app_url, _ = app_server
    # labels: the sums 2..10 of questions the scripted task model answers (right more often with keywords)
    rows = ["question,answer"] + [f"What is {a} + {b}?,{a + b}" for a in range(1, 7) for b in range(1, 5)]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2600})
            page.set_default_timeout(90_000)
            expect.set_options(timeout=90_000)
            page.goto(app_url)
            page.get_by_role("link", name="Task").first.click()
            page.get_by_test_id("stRadioGroup").get_by_text("Upload a file").click()
            page.locator("input[type=file]").set_input_files(str(csv_path))
            page.get_by_role("button", name="Load this file as the task").click()
            expect(page.get_by_text(re.compile(r"^Loaded task: "))).to_be_visible()
            _pick(page, "Answer type", "exact_match", re.compile(r"^Score 1\.00 \(exact_match\)"))

            # a partial-credit metric first: its definition and the preview of example 1
            _pick(page, "Metric", "token_f1", re.compile(r"^Score 1\.00 \(token_f1\)"))
            expect(page.get_by_text(re.compile(r"Token F1")).first).to_be_visible()
            # then the answer type's exact rule: a label task, so the report will follow
            _pick(page, "Metric", "answer type (exact rule)", re.compile(r"^Score 1\.00 \(exact_match\)"))
            _set_number(page, "Dev examples", 8)
            expect(page.get_by_text("dev 8 ·")).to_be_visible()
            _set_number(page, "Test examples", 6)
            expect(page.get_by_text("dev 8 · test 6")).to_be_visible()

            page.get_by_role("link", name="Optimize").first.click()
            _set_number(page, "Total steps T", 1)
            _set_number(page, "Candidates per step", 2)
            page.get_by_role("button", name="Create the run and score the starting prompt").click()
            expect(page.get_by_text("Starting prompt scored")).to_be_visible()
            # the baseline under the run's accuracies on the Optimize page too
            baseline = re.compile(r"^Majority-class baseline: \d+% \[\d+–\d+%\].* on dev\.$")
            expect(page.get_by_text(baseline)).to_be_visible()
            page.screenshot(path="/tmp/shots/e2e_metrics_optimize.png")

            page.get_by_role("link", name="Results").first.click()
            expect(page.get_by_role("heading", name="Results", exact=True)).to_be_visible()
            heat = page.locator(".js-plotly-plot").filter(has_text="Confusion matrix")
            expect(heat.first).to_be_visible()  # the confusion heatmap of the per-example section
            expect(page.get_by_text(re.compile(r"^Classification report \(")).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Majority-class baseline: \d+% \[\d+–\d+%\]")).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"majority-class baseline: \d+%")).last).to_be_visible()  # per-example
            assert page.get_by_test_id("stDataFrame").count() >= 2  # per-example answers and the per-class table
            page.screenshot(path="/tmp/shots/e2e_metrics_results.png", full_page=True)
        finally:
            browser.close()
