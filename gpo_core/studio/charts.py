"""Plotly figures of a run: the edit-budget schedule, accuracy per step, budget vs edit.

Built from :mod:`gpo_core.studio.views.run_view` tables; the pages pass them to ``st.plotly_chart``.
Accuracy axes are in percent (0-100); budgets and edit distances in words.
"""

from __future__ import annotations

import plotly.graph_objects as go

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


def accuracy_figure(state: RunState, height: int = 380) -> go.Figure:
    """Dev accuracy of the chosen prompt per step with the best so far, its test accuracy,
    and every scored candidate's dev accuracy as points (percent)."""
    path = chosen_path(state)
    pts = candidate_points(state)
    fig = go.Figure()
    if not pts.empty:
        fig.add_trace(go.Scatter(x=pts["step"], y=100 * pts["dev"], mode="markers", name="candidates (dev)",
                                 marker=dict(color=_GRAY, size=7, opacity=0.6),
                                 customdata=pts[["candidate", "text"]].values,
                                 hovertemplate="step %{x} · %{customdata[0]}<br>dev %{y:.1f}%<br>%{customdata[1]}"
                                               "<extra></extra>"))
    if not path.empty:
        fig.add_trace(go.Scatter(x=path["step"], y=100 * path["dev"], mode="lines+markers", name="chosen prompt (dev)",
                                 line=dict(color=_BLUE), customdata=path[["prompt"]].values,
                                 hovertemplate="step %{x}: dev %{y:.1f}%<br>%{customdata[0]}<extra></extra>"))
        fig.add_trace(go.Scatter(x=path["step"], y=100 * path["best dev"], mode="lines", name="best so far (dev)",
                                 line=dict(color=_GREEN, dash="dash", shape="hv"),
                                 hovertemplate="step %{x}: best dev %{y:.1f}%<extra></extra>"))
        test = path.dropna(subset=["test"])
        if not test.empty:
            fig.add_trace(go.Scatter(x=test["step"], y=100 * test["test"].astype(float), mode="lines+markers",
                                     name="chosen prompt (test)", line=dict(color=_ORANGE),
                                     hovertemplate="step %{x}: test %{y:.1f}%<extra></extra>"))
    fig.update_yaxes(range=[-2, 102])
    fig.update_xaxes(dtick=1)
    return _layout(fig, title="Accuracy per step", x="step (0 = starting prompt)", y="accuracy (%)", height=height)


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
