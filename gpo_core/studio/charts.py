"""Plotly figures of a run: the edit-budget schedule, accuracy per step (with 95% interval
bands), budget vs edit, the dev-test gap.

Built from :mod:`gpo_core.studio.views.run_view` tables; the pages pass them to ``st.plotly_chart``.
Accuracy axes are in percent (0-100); budgets and edit distances in words.
"""

from __future__ import annotations

import plotly.graph_objects as go

from gpo_core.optimizer.overfit import GAP_THRESHOLD, gap_series, is_test_hidden
from gpo_core.runs.records import RunState
from gpo_core.studio.views.run_view import candidate_points, chosen_path

_BLUE, _ORANGE, _GREEN, _GRAY, _RED = "#1f77b4", "#ff7f0e", "#2ca02c", "#9aa0a6", "#d62728"


def _layout(fig: go.Figure, *, title: str, x: str, y: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_title=x, yaxis_title=y,
                      # legend under the plot, so it never overlaps the title on a narrow column
                      legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0),
                      hovermode="closest", template="plotly_white")
    return fig


def schedule_figure(budgets: list[int], current_step: int | None = None, height: int = 220) -> go.Figure:
    """The edit budget (words) of steps 1..T as a line, with step ``current_step`` marked.

    budgets: the whole schedule (``GPOSession.budgets()``); current_step: 1-based or None.
    """
    steps = list(range(1, len(budgets) + 1))
    fig = go.Figure(go.Scatter(x=steps, y=budgets, mode="lines+markers", name="edit budget",
                               line=dict(color=_BLUE), marker=dict(size=5),
                               hovertemplate="step %{x}: %{y} words<extra></extra>"))
    if current_step is not None and 1 <= current_step <= len(budgets):
        b = budgets[current_step - 1]
        fig.add_trace(go.Scatter(x=[current_step], y=[b], mode="markers+text", name=f"step {current_step}",
                                 marker=dict(size=14, color=_ORANGE, line=dict(color="black", width=1)),
                                 text=[f"  step {current_step}: {b} words"], textposition="middle right",
                                 hovertemplate="current step %{x}: %{y} words<extra></extra>"))
    fig.update_yaxes(range=[0, max(budgets, default=1) * 1.3 + 1])
    fig.update_xaxes(dtick=1 if len(budgets) <= 24 else None)
    return _layout(fig, title="Edit budget per step", x="step", y="words", height=height)


def _band(fig: go.Figure, x, low, high, *, name: str, color: str, legendgroup: str) -> None:
    """A shaded band between ``low`` and ``high`` (percent) over ``x``: the 95% interval."""
    fig.add_trace(go.Scatter(x=list(x), y=list(high), mode="lines", line=dict(width=0), showlegend=False,
                             legendgroup=legendgroup, name=f"{name} (upper)", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=list(x), y=list(low), mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor=_rgba(color, 0.15), name=name, legendgroup=legendgroup, hoverinfo="skip"))


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def accuracy_figure(state: RunState, height: int = 380) -> go.Figure:
    """Dev accuracy of the chosen prompt per step with its 95% Wilson interval as a shaded
    band, the best so far, its test accuracy (with its band), and every scored candidate's
    dev accuracy as points (percent; the hover shows each interval)."""
    path = chosen_path(state)
    pts = candidate_points(state)
    fig = go.Figure()
    if not path.empty:
        dev = path.dropna(subset=["dev low"])
        if not dev.empty:
            _band(fig, dev["step"], 100 * dev["dev low"].astype(float), 100 * dev["dev high"].astype(float),
                  name="chosen prompt (dev): 95% interval", color=_BLUE, legendgroup="dev")
        test = path.dropna(subset=["test low"])
        if not test.empty:
            _band(fig, test["step"], 100 * test["test low"].astype(float), 100 * test["test high"].astype(float),
                  name="chosen prompt (test): 95% interval", color=_ORANGE, legendgroup="test")
    if not pts.empty:
        fig.add_trace(go.Scatter(x=pts["step"], y=100 * pts["dev"], mode="markers", name="candidates (dev)",
                                 marker=dict(color=_GRAY, size=7, opacity=0.6),
                                 customdata=pts[["candidate", "text", "interval"]].values,
                                 hovertemplate="step %{x} · %{customdata[0]}<br>dev %{customdata[2]}<br>"
                                               "%{customdata[1]}<extra></extra>"))
    if not path.empty:
        shown = path.dropna(subset=["dev"])
        fig.add_trace(go.Scatter(x=shown["step"], y=100 * shown["dev"].astype(float), mode="lines+markers",
                                 name="chosen prompt (dev)", line=dict(color=_BLUE), legendgroup="dev",
                                 customdata=shown[["prompt", "dev low", "dev high"]].values,
                                 hovertemplate="step %{x}: dev %{y:.1f}% [%{customdata[1]:.0%}–%{customdata[2]:.0%}]"
                                               "<br>%{customdata[0]}<extra></extra>"))
        fig.add_trace(go.Scatter(x=path["step"], y=100 * path["best dev"], mode="lines", name="best so far (dev)",
                                 line=dict(color=_GREEN, dash="dash", shape="hv"),
                                 hovertemplate="step %{x}: best dev %{y:.1f}%<extra></extra>"))
        test = path.dropna(subset=["test"])
        if not test.empty:
            fig.add_trace(go.Scatter(x=test["step"], y=100 * test["test"].astype(float), mode="lines+markers",
                                     name="chosen prompt (test)", line=dict(color=_ORANGE), legendgroup="test",
                                     customdata=test[["test low", "test high"]].values,
                                     hovertemplate="step %{x}: test %{y:.1f}% [%{customdata[0]:.0%}–"
                                                   "%{customdata[1]:.0%}]<extra></extra>"))
    fig.update_yaxes(range=[-2, 102])
    fig.update_xaxes(dtick=1)
    return _layout(fig, title="Accuracy per step (shaded: 95% interval)", x="step (0 = starting prompt)",
                   y="accuracy (%)", height=height)


def budget_figure(state: RunState, budgets: list[int], height: int = 320) -> go.Figure:
    """The edit budget of every step (line) against the measured word edit distance of the
    chosen candidate (markers; red when over budget) and of all candidates (faint points)."""
    steps = list(range(1, len(budgets) + 1))
    fig = go.Figure(go.Scatter(x=steps, y=budgets, mode="lines", name="edit budget", line=dict(color=_BLUE),
                               hovertemplate="step %{x}: budget %{y} words<extra></extra>"))
    pts = candidate_points(state)
    if not pts.empty:
        fig.add_trace(go.Scatter(x=pts["step"], y=pts["edit distance"], mode="markers", name="candidates",
                                 marker=dict(color=_GRAY, size=6, opacity=0.5),
                                 customdata=pts[["candidate"]].values,
                                 hovertemplate="step %{x} · %{customdata[0]}: %{y} words<extra></extra>"))
    path = chosen_path(state).dropna(subset=["edit distance"])
    if not path.empty:
        over = path["edit distance"] > path["budget"]
        fig.add_trace(go.Scatter(x=path["step"], y=path["edit distance"], mode="markers", name="chosen candidate",
                                 marker=dict(size=11, color=[_RED if o else _GREEN for o in over],
                                             line=dict(color="black", width=1)),
                                 hovertemplate="step %{x}: chosen edit %{y} words<extra></extra>"))
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(dtick=1 if len(budgets) <= 24 else None)
    return _layout(fig, title="Edit budget vs measured edit distance", x="step", y="words", height=height)


def gap_figure(state: RunState, height: int = 300) -> go.Figure:
    """The dev-test gap (dev minus test accuracy of the prompt in use, percentage points)
    after each step, with its 95% Newcombe interval as a shaded band, the zero line and the
    warning threshold; points where the gap has opened (interval above 0 and gap above the
    threshold, :func:`gpo_core.optimizer.overfit.gap_series`) in red. While a blind test is
    hidden the figure holds no test-derived number, only a note saying so."""
    points = [p for p in gap_series(state) if p.gap is not None and p.gap_ci is not None]
    fig = go.Figure()
    if points:
        steps = [p.step for p in points]
        lows = [100 * p.gap_ci[0] for p in points if p.gap_ci]
        highs = [100 * p.gap_ci[1] for p in points if p.gap_ci]
        _band(fig, steps, lows, highs, name="gap: 95% interval", color=_RED, legendgroup="gap")
        fig.add_trace(go.Scatter(x=steps, y=[100 * (p.gap or 0.0) for p in points], mode="lines+markers",
                                 name="dev − test gap", line=dict(color=_RED), legendgroup="gap",
                                 marker=dict(size=[12 if p.warning else 7 for p in points],
                                             color=[_RED if p.warning else _GRAY for p in points],
                                             line=dict(color="black", width=1)),
                                 customdata=[[100 * p.gap_ci[0], 100 * p.gap_ci[1], "gap opened" if p.warning else ""]
                                             for p in points if p.gap_ci],
                                 hovertemplate="step %{x}: gap %{y:+.1f} points [%{customdata[0]:+.1f}, "
                                               "%{customdata[1]:+.1f}] %{customdata[2]}<extra></extra>"))
        fig.add_hline(y=0, line=dict(color="black", width=1))
        fig.add_hline(y=100 * GAP_THRESHOLD, line=dict(color=_ORANGE, dash="dot"),
                      annotation_text=f"warning above +{100 * GAP_THRESHOLD:.0f} points (and interval above 0)",
                      annotation_position="top left")
    else:
        note = ("test scores hidden (blind test): reveal them to see the gap" if is_test_hidden(state)
                else "no test scores yet")
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(range=[-105, 105])
    return _layout(fig, title="Dev − test gap of the prompt in use (shaded: 95% interval)",
                   x="step (0 = starting prompt)", y="points", height=height)
