"""The classification report as the app shows it (no Streamlit): a plotly heatmap of the
confusion matrix, a per-class table and the majority-class baseline line. The numbers come
from :mod:`gpo_core.metrics.class_report`; the pages pass these to ``st.plotly_chart`` /
``st.dataframe`` / ``st.caption``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from gpo_core.metrics.class_report import (
    ClassReport,
    baseline_text,
    class_report,
    majority_baseline,
)
from gpo_core.runs.records import RunState
from gpo_core.runs.report_classes import is_label_run

__all__ = ["classes_frame", "dev_baseline", "dev_baseline_caption", "matrix_figure", "report_of"]


def report_of(state: RunState, records: Sequence[Mapping[str, Any]]) -> ClassReport | None:
    """The report of one prompt's ``records`` (dicts) in the run ``state``, or None when the
    task is not a label task (:func:`gpo_core.runs.report_classes.is_label_run`: its answer
    type, the run's metric, the targets of all its splits) or nothing is scored."""
    if not records or not is_label_run(state):
        return None
    return class_report(records, state.task.answer_type)


def dev_baseline(state: RunState) -> str | None:
    """"majority-class baseline: 58% [45–70%] (always 'pos', 29 of 50)" over the run's dev
    targets, or None when the task is not a label task or dev is empty. For the line under the
    dev accuracy on the Optimize page (no records read)."""
    targets = [str(e.get("target", "")) for e in state.splits.get("dev") or [] if isinstance(e, Mapping)]
    if not targets or not is_label_run(state):
        return None
    found = majority_baseline(targets, state.task.answer_type)
    return None if found is None else baseline_text(*found)


def dev_baseline_caption(state: RunState) -> str | None:
    """The line shown under the run's accuracies on the Optimize and Results pages:
    "Majority-class baseline: 58% [45–70%] (always 'pos', 29 of 50) on dev.", or None
    (:func:`dev_baseline`)."""
    line = dev_baseline(state)
    return None if line is None else line[:1].upper() + line[1:] + " on dev."


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def classes_frame(report: ClassReport) -> pd.DataFrame:
    """One row per gold class: class, precision / recall / F1 in percent as text ("33.3";
    "–" when undefined: nothing answered as the class, or no support), support (gold
    examples), predicted (examples answered as the class)."""
    return pd.DataFrame([{"class": c.label, "precision %": _pct(c.precision), "recall %": _pct(c.recall),
                          "F1 %": _pct(c.f1), "support": c.support, "predicted": c.predicted}
                         for c in report.classes])


def matrix_figure(report: ClassReport, height: int | None = None) -> go.Figure:
    """The confusion matrix as a heatmap: gold classes as rows (top to bottom in label order),
    answers as columns (the classes, then "other answer" / "no answer"), each cell's count
    written in it."""
    z = report.matrix
    fig = go.Figure(go.Heatmap(z=z, x=report.columns, y=report.labels, colorscale="Blues", showscale=False,
                               text=[[str(v) for v in row] for row in z], texttemplate="%{text}",
                               hovertemplate="gold %{y}, answered %{x}: %{z}<extra></extra>"))
    fig.update_layout(title="Confusion matrix (rows: gold, columns: answer)", template="plotly_white",
                      height=height or max(220, 90 + 45 * len(report.labels)), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="answer", type="category", side="bottom")
    fig.update_yaxes(title_text="gold", type="category", autorange="reversed")
    return fig
