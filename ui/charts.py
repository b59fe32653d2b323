"""Plotly figures used by several pages."""

from __future__ import annotations

import plotly.graph_objects as go


def hbar(values: dict[str, float], title: str, unit: str) -> go.Figure:
    names = list(values)
    fig = go.Figure(
        go.Bar(
            x=[values[n] for n in names],
            y=names,
            orientation="h",
            text=[f"{values[n]:g}" for n in names],
            textposition="auto",
            marker_color="#4c78a8",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title=unit,
        height=60 + 28 * max(1, len(names)),
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(autorange="reversed"),
    )
    return fig
