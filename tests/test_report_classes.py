"""Issue 12, item 3 in the exports: the Markdown and HTML reports of a label task carry the final
prompt's classification report (per-class P/R/F1, confusion matrix, majority baseline); other
tasks' reports do not."""

from __future__ import annotations

from collections import Counter

from gpo_core.runs.exports import export_markdown
from gpo_core.runs.final import records_key
from gpo_core.runs.html_report import export_html

from app_support import arithmetic_studio, make_studio, started_run, wait_idle


def _label_studio(tmp_path):
    # exact_match with 9 labels: sums 2..10 of distinct questions the demo task model answers
    lines = ["question,answer"] + [f"What is {a} + {b}?,{a + b}" for a in range(1, 7) for b in range(1, 5)]
    studio = make_studio(tmp_path)
    studio.tasks.preview_upload(("\n".join(lines) + "\n").encode(), "sums.csv")
    studio.tasks.load_upload("question", "answer", answer_type="exact_match")
    studio.tasks.update_splits(dev_size=8, test_size=8, seed=0)
    started_run(studio, steps=1, candidates=2)
    wait_idle(studio)
    session = studio.runs.require_session()
    session.propose()
    session.decide_auto()
    return session


def _section(report: str, split: str) -> list[str]:
    lines = report.splitlines()
    start = lines.index("## Classification report (final prompt)")
    at = lines.index(f"### {split}", start)
    end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[at:end]


def test_the_markdown_report_of_a_label_task_has_the_final_prompts_class_report(tmp_path):
    session = _label_studio(tmp_path)
    report = export_markdown(session)
    entry = session.final_comparison().entry
    for split in ("dev", "test"):
        records = session.records(records_key(session.state, entry, split), split)
        section = _section(report, split)
        answered = [r for r in records if not r["error"]]
        right = sum(1 for r in answered if r["correct"])
        assert any(line.startswith(f"Final prompt: {100 * right / len(answered):.1f}%") and f"({right}/{len(answered)})"
                   in line for line in section)
        # the majority-class baseline of this split's gold labels, with its interval
        top, count = Counter(str(r["target"]) for r in answered).most_common(1)[0]
        assert any("majority-class baseline:" in line and f"{count} of {len(answered)})" in line for line in section)
        # per-class rows: recall of one class counted by hand from the records
        label = str(answered[0]["target"])
        gold = [r for r in answered if str(r["target"]) == label]
        hits = sum(1 for r in gold if r["correct"])
        row = next(line for line in section if line.startswith(f"| {label} |") and "%" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"{100 * hits / len(gold):.1f}%" and cells[4] == str(len(gold))
        # the confusion matrix: one row per gold label, its counts summing to the label's support
        matrix_rows = [line for line in section if line.startswith(f"| {label} |") and "%" not in line]
        assert len(matrix_rows) == 1 and sum(int(c) for c in matrix_rows[0].strip("|").split("|")[1:]) == len(gold)


def test_the_html_report_of_a_label_task_embeds_the_confusion_heatmaps_offline(tmp_path):
    session = _label_studio(tmp_path)
    page = export_html(session)
    assert 'id="confusion-chart-dev"' in page and 'id="confusion-chart-test"' in page
    assert "heatmap" in page and "Confusion matrix of the final prompt on dev" in page
    assert "<script src=" not in page  # plotly.js is inlined once, no CDN
    assert "Classification report (final prompt)" in page


def test_a_number_task_report_has_no_class_report(tmp_path):
    studio = started_run(arithmetic_studio(tmp_path), steps=1, candidates=2)
    session = studio.runs.require_session()
    assert "Classification report" not in export_markdown(session)
    assert "confusion-chart" not in export_html(session)
