"""Render a stored trace: exactly what the model saw, with scores, tokens and timings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from memory.strategies import STRATEGIES
from memory.tokens import count_tokens
from memory.trace import Trace

from .charts import hbar
from .state import md_escape, md_text


def _when(ts: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(ts)).strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def render_trace(trace: Trace, key: str) -> None:
    """Render a validated trace (``SessionStore.traces`` decodes and checks it); stored text is shown as text."""
    cols = st.columns(4)
    cols[0].metric("Strategy", trace.strategy if trace.strategy in STRATEGIES else "(unknown)")
    cols[1].metric("Tokens sent (est.)", trace.total_tokens)
    cols[2].metric("Total time", f"{trace.timings_ms.get('total', 0):.0f} ms")
    provider = trace.llm.get("provider")
    cols[3].metric(
        "LLM",
        provider if provider in ("offline", "anthropic") else "?",
        help=f"model: {md_escape(str(trace.llm.get('model_id', '?')))}",
    )
    if trace.error:
        st.error(f"LLM call failed: {md_text(trace.error)}")
    for warning in trace.warnings:
        st.warning(md_text(warning))
    for dropped in trace.dropped:
        st.caption(f"Left out: {md_text(dropped)}")

    st.markdown("**System prompt parts**")
    for part in trace.system_parts:
        st.caption(f"{part.name} · {part.tokens} tokens")
        st.code(part.text, language=None, wrap_lines=True)

    if trace.retrieved:
        st.markdown(
            "**Retrieved from long-term memory**, in rank order. Rank score: BM25 fused with the dense "
            "cosine, relative to this query's other candidates; "
            "similarity: cosine (for episodes, of the session's best-matching turn); "
            "distance = 1 − similarity."
        )
        rows = [
            {
                "kind": i.kind,
                "rank score": i.score,
                "similarity": i.similarity,
                "distance": i.distance,
                "in context": i.included,
                "text": i.text,
                "session": i.source.get("session_id", ""),
            }
            for i in trace.retrieved
        ]
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            column_config={
                "similarity": st.column_config.ProgressColumn(
                    "similarity", min_value=0.0, max_value=1.0, format="%.3f"
                ),
                "distance": st.column_config.NumberColumn("distance", format="%.3f"),
            },
        )
    elif trace.strategy in {"facts", "episodic", "hybrid"}:
        st.caption("Nothing was retrieved from long-term memory for this turn.")

    st.markdown(f"**Messages sent** ({len(trace.messages)})")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "role": m.get("role"),
                    "content": m.get("content"),
                    "tokens": count_tokens(str(m.get("content", ""))),
                    "at": _when(m.get("created_at", 0)),
                }
                for m in trace.messages
            ]
        ),
        hide_index=True,
        width="stretch",
    )

    left, right = st.columns(2)
    left.plotly_chart(hbar(trace.tokens, "Tokens per part (estimate)", "tokens"), width="stretch", key=f"tok-{key}")
    timings = {k: v for k, v in trace.timings_ms.items() if k != "total"}
    right.plotly_chart(hbar(timings, "Time per step", "ms"), width="stretch", key=f"time-{key}")
    if trace.upkeep:
        st.markdown("**Memory upkeep after this turn**")
        st.json(trace.upkeep, expanded=False)
