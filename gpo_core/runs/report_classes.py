"""The classification report in the run's exports (issue 12, item 3): for label tasks, the
final prompt's per-class precision, recall, F1 and support, its confusion matrix and the
majority-class baseline beside its accuracy, on dev and (when scored) test.

Whether a task is a label task and every number come from :mod:`gpo_core.metrics.class_report`
(the Results page's source too), over the final prompt's stored per-example records
(:func:`gpo_core.runs.final.records_key`). Markdown for the report; the HTML report adds the
confusion heatmaps (:func:`gpo_core.studio.views.class_report_view.matrix_figure`).
"""

from __future__ import annotations

from gpo_core.metrics.class_report import ClassReport, class_report, is_label_task
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.final import candidates_by_id, records_key
from gpo_core.runs.records import RunState
from gpo_core.stats import Proportion, record_score

__all__ = ["final_class_reports", "class_report_lines", "is_label_run"]


def is_label_run(state: RunState) -> bool:
    """Whether the run's task is a label task (:func:`~gpo_core.metrics.class_report.is_label_task`
    with the run's metric), decided once over the targets of all its splits (train, dev,
    test): 6 test sums may all differ while the task's labels repeat, and every split of one
    run gets the same verdict."""
    targets = [str(e.get("target", "")) for split in ("train", "dev", "test")
               for e in state.splits.get(split) or [] if isinstance(e, dict)]
    return is_label_task(state.task.answer_type, targets, state.settings.optimizer.metric)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def final_class_reports(session: GPOSession) -> list[tuple[str, ClassReport, Proportion]]:
    """``[(split, report, accuracy)]`` of the final prompt on dev and test (test only when its
    records exist); accuracy: mean score of the answered records (the run's own measure);
    [] for a task that is not a label task."""
    s = session.state
    if not is_label_run(s):  # decided once for the run, before any records are read
        return []
    entry = session.final_comparison().entry
    cands = candidates_by_id(s)
    out = []
    for split in ("dev", "test"):
        records = session.records(records_key(s, entry, split, cands), split)
        if not records:
            continue
        report = class_report(records, s.task.answer_type)
        answered = [r for r in records if not r.get("error")]
        if report is not None and answered:
            total = sum(record_score(r) for r in answered)
            out.append((split, report, Proportion(int(total) if float(total).is_integer() else total, len(answered))))
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def class_report_lines(session: GPOSession,
                       reports: list[tuple[str, ClassReport, Proportion]] | None = None) -> list[str]:
    """The report's "Classification report" section (Markdown lines), or [] when the task is
    not a label task. Per split: the final prompt's accuracy with its 95% Wilson interval
    beside the majority-class baseline, the per-class table (precision, recall, F1 in
    percent; "–" when undefined; support and predicted counts) and the confusion matrix
    (gold rows x answer columns)."""
    reports = final_class_reports(session) if reports is None else reports
    if not reports:
        return []
    out = ["", "## Classification report (final prompt)", "",
           "Label task: per-class precision, recall and F1 of the final prompt's answers, and how often always "
           "answering the most frequent label would be right (the majority-class baseline, 95% Wilson interval)."]
    for split, rep, acc in reports:
        macro = rep.macro_f1()
        out += ["", f"### {split}", "",
                f"Final prompt: {acc.text()}; {_md(rep.baseline_text())}"
                + (f"; macro F1 {_pct(macro)}." if macro is not None else "."), "",
                "| class | precision | recall | F1 | support | predicted |", "|---|---|---|---|---|---|"]
        out += [f"| {_md(c.label)} | {_pct(c.precision)} | {_pct(c.recall)} | {_pct(c.f1)} | {c.support} | "
                f"{c.predicted} |" for c in rep.classes]
        out += ["", "Confusion matrix (rows: gold label, columns: answer):", "",
                "| gold \\ answer | " + " | ".join(_md(c) for c in rep.columns) + " |",
                "|---|" + "---|" * len(rep.columns)]
        out += [f"| {_md(label)} | " + " | ".join(str(v) for v in row) + " |"
                for label, row in zip(rep.labels, rep.matrix)]
    return out
