"""The overlaid accuracy curves of a run comparison (plotly): per run, the chosen prompt's dev
accuracy after each step with its 95% Wilson band, its test accuracy (dashed, with band)
and the best dev so far (dotted). Accuracy in percent (0-100), steps on x (0 = start).

The per-run numbers come from :func:`gpo_core.studio.views.run_view.chosen_path`, the same
table the Results page draws one run from, so a blind test not revealed shows no test curve.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from gpo_core.runs.compare import RunComparison
from gpo_core.studio.charts import _rgba
from gpo_core.studio.views.run_view import chosen_path

__all__ = ["compare_curves", "compare_figure", "compare_html"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def compare_curves(cmp: RunComparison) -> pd.DataFrame:
    """One row per run and step: run (1-based), title, step, dev / test accuracy in [0, 1]
    with their 95% interval bounds ("dev low", ...), and "best dev" so far."""
    frames = []
    for i, r in enumerate(cmp.runs, 1):
        path = chosen_path(r.state)
        if path.empty:
            continue
        path = path.assign(run=i, title=r.title)
        frames.append(path[["run", "title", "step", "dev", "dev low", "dev high", "test", "test low", "test high",
                            "best dev"]])
    if not frames:
        return pd.DataFrame(columns=["run", "title", "step", "dev", "dev low", "dev high", "test", "test low",
                                     "test high", "best dev"])
    return pd.concat(frames, ignore_index=True)


def _band(fig: go.Figure, x, low, high, color: str, group: str) -> None:
    fig.add_trace(go.Scatter(x=list(x), y=list(high), mode="lines", line=dict(width=0), showlegend=False,
                             legendgroup=group, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=list(x), y=list(low), mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor=_rgba(color, 0.12), showlegend=False, legendgroup=group, hoverinfo="skip"))


def compare_figure(cmp: RunComparison, height: int = 420) -> go.Figure:
    """Dev (solid), test (dashed) and best-dev-so-far (dotted) curves of every run, one colour
    per run, each accuracy with its shaded 95% interval."""
    curves = compare_curves(cmp)
    fig = go.Figure()
    for i, r in enumerate(cmp.runs, 1):
        rows = pd.DataFrame(curves.loc[curves["run"] == i])
        if rows.empty:
            continue
        color, group = _COLORS[(i - 1) % len(_COLORS)], f"run{i}"
        name = f"{i}. {r.title}"
        dev = rows.dropna(subset=["dev", "dev low"])
        if not dev.empty:
            _band(fig, dev["step"], 100 * dev["dev low"].astype(float), 100 * dev["dev high"].astype(float),
                  color, group)
            fig.add_trace(go.Scatter(x=dev["step"], y=100 * dev["dev"].astype(float), mode="lines+markers",
                                     name=f"{name}: dev", line=dict(color=color), legendgroup=group,
                                     customdata=dev[["dev low", "dev high"]].values,
                                     hovertemplate=f"{name}<br>step %{{x}}: dev %{{y:.1f}}% "
                                                   "[%{customdata[0]:.0%}–%{customdata[1]:.0%}]<extra></extra>"))
        test = rows.dropna(subset=["test", "test low"])
        if not test.empty:
            _band(fig, test["step"], 100 * test["test low"].astype(float), 100 * test["test high"].astype(float),
                  color, group)
            fig.add_trace(go.Scatter(x=test["step"], y=100 * test["test"].astype(float), mode="lines+markers",
                                     name=f"{name}: test", line=dict(color=color, dash="dash"), legendgroup=group,
                                     marker=dict(symbol="square"),
                                     customdata=test[["test low", "test high"]].values,
                                     hovertemplate=f"{name}<br>step %{{x}}: test %{{y:.1f}}% "
                                                   "[%{customdata[0]:.0%}–%{customdata[1]:.0%}]<extra></extra>"))
        fig.add_trace(go.Scatter(x=rows["step"], y=100 * rows["best dev"].astype(float), mode="lines",
                                 name=f"{name}: best dev so far", line=dict(color=color, dash="dot", shape="hv"),
                                 legendgroup=group,
                                 hovertemplate=f"{name}<br>step %{{x}}: best dev %{{y:.1f}}%<extra></extra>"))
    fig.update_yaxes(range=[-2, 102])
    fig.update_xaxes(dtick=1)
    fig.update_layout(title=dict(text="Accuracy per step, runs overlaid (solid dev, dashed test, dotted best dev; "
                                      "shaded: 95% interval)", x=0, font=dict(size=14)),
                      height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="step (0 = starting prompt)",
                      yaxis_title="accuracy (%)", template="plotly_white",
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    return fig


def compare_html(cmp: RunComparison) -> str:
    """The curves as one self-contained HTML page (plotly.js inlined: opens offline)."""
    return pio.to_html(compare_figure(cmp), include_plotlyjs=True, full_html=True)
