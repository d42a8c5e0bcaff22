"""The prompt x model matrix as a plotly heatmap (one panel per split) and as PNG bytes.

No Streamlit here: the Evaluate page shows the figure, the CLI writes its PNG. The PNG goes
through plotly's kaleido with a Chrome/Chromium, as the benchmarks do
(benchmarks/bbh_quality.py ``_write_chart``): ``BROWSER_PATH`` or /usr/bin/chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpo_core.runs.matrix import MatrixResult

__all__ = ["matrix_figure", "matrix_png", "short_label"]


def short_label(text: str, n: int = 40) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def matrix_figure(result: MatrixResult, height: int | None = None) -> go.Figure:
    """Heatmap of accuracy: rows = prompts (labels), columns = task models, one panel per split;
    each cell's text is its accuracy with the 95% Wilson interval and the failed calls
    (:meth:`MatrixCell.text`); a cell with nothing answered is blank (no colour)."""
    splits = result.splits
    fig = make_subplots(rows=1, cols=len(splits), subplot_titles=[f"{s} ({result.split_sizes[s]} examples)"
                                                                   for s in splits], horizontal_spacing=0.08)
    ys = [short_label(p.label, 32) for p in result.prompts]
    xs = [short_label(m.label, 28) for m in result.models]
    for i, split in enumerate(splits, start=1):
        z, text, hover = [], [], []
        for p in result.prompts:
            zr, tr, hr = [], [], []
            for m in result.models:
                c = result.cell(p.label, m.label, split)
                zr.append(None if c is None or c.accuracy is None else c.accuracy)
                tr.append("" if c is None else c.text().replace(" [", "<br>[").replace(" · ", "<br>"))
                hr.append("" if c is None else f"{short_label(p.text, 80)}<br>{m.label} · {split}: {c.text()}"
                          f" ({c.answered} answered of {c.n})" + (f"<br>error: {c.first_error}" if c.first_error
                                                                  else ""))
            z.append(zr)
            text.append(tr)
            hover.append(hr)
        fig.add_trace(go.Heatmap(z=z, x=xs, y=ys, text=text, texttemplate="%{text}", hovertext=hover,
                                 hoverinfo="text", zmin=0, zmax=1, colorscale="Blues", showscale=i == len(splits),
                                 colorbar={"title": "accuracy"}, xgap=2, ygap=2), row=1, col=i)
        fig.update_yaxes(autorange="reversed", row=1, col=i, showticklabels=i == 1)
    fig.update_layout(title=f"Prompt × model accuracy · {result.task} (95% Wilson intervals; failed calls "
                            "left out)", template="plotly_white",
                      height=height or max(320, 110 + 70 * len(result.prompts)), margin={"l": 10, "r": 10, "t": 80})
    return fig


def _find_browser() -> None:
    if not os.environ.get("BROWSER_PATH"):
        for cand in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
            if Path(cand).exists():
                os.environ["BROWSER_PATH"] = cand
                return


def matrix_png(result: MatrixResult, width: int = 1200) -> bytes:
    """The heatmap as PNG bytes (kaleido + Chromium). Raises RuntimeError naming the cause
    when kaleido or a browser is missing."""
    _find_browser()
    fig = matrix_figure(result)
    height = max(320, 110 + 70 * len(result.prompts))
    try:
        return fig.to_image(format="png", width=width, height=height)
    except Exception as exc:  # noqa: BLE001 - kaleido/Chromium missing: one clear line
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise RuntimeError(f"PNG export failed ({type(exc).__name__}: {first}); the CSV has every number") from None
