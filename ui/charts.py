"""Plotly figures used by several pages."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def hbar(values: Mapping[str, float], title: str, unit: str) -> go.Figure:
    """Horizontal bars with their values written level beside them (plotly turns a label inside a thin bar on
    its side), and the unit under the axis, clear of its numbers."""
    names = list(values)
    top = max([0.0, *values.values()])
    fig = go.Figure(
        go.Bar(
            x=[values[n] for n in names],
            y=names,
            orientation="h",
            text=[f"{values[n]:,g}" for n in names],
            textposition="outside",
            textangle=0,
            cliponaxis=False,
            marker_color="#4c78a8",
        )
    )
    fig.update_layout(
        title=title,
        height=110 + 28 * max(1, len(names)),
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title=dict(text=unit, standoff=8), automargin=True, range=[0, top * 1.15 or 1]),
        yaxis=dict(autorange="reversed", automargin=True),
    )
    return fig


# One colour per strategy, the same on every chart (Tableau 10, distinct in light and dark themes).
STRATEGY_COLORS = {
    "buffer": "#4c78a8",
    "summary": "#f58518",
    "facts": "#54a24b",
    "episodic": "#b279a2",
    "hybrid": "#e45756",
}


def score_chart(summary: pd.DataFrame) -> go.Figure:
    """'Reached the context' and 'answered correctly' per strategy; a 0 % score still shows (a stub and its label)."""
    fig = go.Figure()
    for column, pattern in (("reached context", "/"), ("answered correctly", "")):
        values = summary[column].tolist()
        fig.add_bar(
            x=summary["strategy"],
            y=[max(v, 0.012) for v in values],  # a visible stub for 0 %; the label says the truth
            name=column,
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            marker_color=[STRATEGY_COLORS.get(s, "#888") for s in summary["strategy"]],
            marker_pattern_shape=pattern,
            marker_line_width=1,
            marker_line_color="rgba(0,0,0,0.4)",
            hovertemplate="%{x}: " + column + " %{text}<extra></extra>",
        )
    fig.update_layout(
        barmode="group",
        title="Per strategy: reached the context (hatched) vs answered correctly (solid)",
        yaxis=dict(range=[0, 1.15], tickformat=".0%"),
        height=360,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def per_turn(frame: pd.DataFrame, column: str, title: str, unit: str) -> go.Figure:
    """One line per strategy over the scenario's turns, in the strategy's colour."""
    return px.line(
        frame,
        x="turn",
        y=column,
        color="strategy",
        markers=True,
        color_discrete_map=STRATEGY_COLORS,
        title=title,
        labels={column: unit},
    )
