"""Render a stored trace: exactly what the model saw, how full the context was, and what the reply used."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from memory.llm import KNOWN_PROVIDERS
from memory.presentation.format import when
from memory.records.stored import with_iso_dates
from memory.records.tokens import count_tokens
from memory.records.trace import Trace
from memory.strategies import STRATEGIES
from memory.timeline.provenance import replay_link, source_of

from .charts import hbar
from .provenance import SOURCE_COLUMN
from .state import get_lab, md_escape, md_text
from .why_view import why_panel

# Claude's context window; the offline provider has none to speak of.
MODEL_WINDOW = {"anthropic": 200_000}
PART_COLORS = {
    "instructions": "#9d9da1",
    "facts": "#54a24b",
    "summary": "#f58518",
    "episodes": "#b279a2",
    "past turns": "#72b7b2",
    "messages": "#4c78a8",
}
ROW_PX = 35


def _fit_height(rows: int) -> int:
    """Tall enough to show every row (Streamlit's default cuts tables at ~10)."""
    return ROW_PX * (rows + 1) + 3


def context_title(trace: Trace) -> str:
    """How full the context was, in words: tokens, and their share of the budget and of the model's window."""
    total = trace.total_tokens
    budget = trace.settings.get("token_budget") if trace.strategy == "hybrid" else None
    title = f"Context: ~{total:,} tokens"
    if isinstance(budget, int) and budget > 0:
        title += f" of the {budget:,}-token budget ({total / budget:.0%})"
    window = MODEL_WINDOW.get(str(trace.llm.get("provider")))
    if window:
        title += f" · {total / window:.2%} of the model's {window:,}-token window"
    return title


def context_bar(trace: Trace) -> go.Figure:
    """One stacked bar: tokens per part of the context, against the budget (its title is ``context_title``)."""
    tokens = trace.tokens
    fig = go.Figure()
    for name, count in tokens.items():
        if count:
            fig.add_bar(
                x=[count],
                y=["context"],
                orientation="h",
                name=f"{name} ({count:,})",
                marker_color=PART_COLORS.get(name, "#bab0ac"),
                hovertemplate=f"{name}: %{{x:,}} tokens<extra></extra>",
            )
    total = sum(tokens.values())
    budget = trace.settings.get("token_budget") if trace.strategy == "hybrid" else None
    limit = max(total, budget or 0) * 1.15 or 1
    if budget:
        fig.add_vline(
            x=budget, line_dash="dash", line_color="#e45756", annotation_text=f"budget {budget:,}",
            annotation_position="bottom right",
        )  # fmt: skip
    fig.update_layout(
        barmode="stack",
        height=190,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(range=[0, limit], title=dict(text="estimated tokens", standoff=6), automargin=True),
        yaxis=dict(visible=False),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom", traceorder="normal"),
    )
    return fig


def render_trace(trace: Trace, key: str) -> None:
    """Render a validated trace (``SessionStore.traces`` decodes and checks it); stored text is shown as text."""
    cols = st.columns(4)
    cols[0].metric("Strategy", trace.strategy if trace.strategy in STRATEGIES else "(unknown)")
    cols[1].metric("Tokens sent (est.)", f"{trace.total_tokens:,}")
    cols[2].metric("Total time", f"{trace.timings_ms.get('total', 0):.0f} ms")
    provider = trace.llm.get("provider")
    cols[3].metric(
        "LLM",
        provider if provider in KNOWN_PROVIDERS else "?",
        help=f"model: {md_escape(str(trace.llm.get('model_id', '?')))}",
    )
    if trace.error:
        st.error(f"LLM call failed: {md_text(trace.error)}")
    for warning in trace.warnings:
        st.warning(md_text(warning))
    for dropped in trace.dropped:
        st.caption(f"Left out: {md_text(dropped)}")
    st.markdown(f"**{context_title(trace)}**")
    st.plotly_chart(context_bar(trace), width="stretch", key=f"ctx-{key}")
    if trace.used:
        st.caption(
            f":material/check_circle: The reply drew on {len(trace.used)} item(s) of this context, marked ✓ below."
        )

    st.markdown("**System prompt parts**")
    for part in trace.system_parts:
        st.caption(f"{part.name} · {part.tokens} tokens")
        st.code(part.text, language=None, wrap_lines=True)

    if trace.retrieved:
        _retrieved_table(trace, key)
    elif trace.strategy in {"facts", "episodic", "hybrid"}:
        st.caption("Nothing was retrieved from long-term memory for this turn.")
    asked = next((str(m.get("content", "")) for m in reversed(trace.messages) if m.get("role") == "user"), "")
    if asked:
        st.markdown("**Why wasn't it retrieved?**")
        k = trace.settings.get("top_k", 5)
        why_panel(get_lab(), trace.user_id, asked, k if isinstance(k, int) and k > 0 else 5, trace.session_id, key)

    st.markdown(f"**Messages sent** ({len(trace.messages)})")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "used": "✓" if m.get("used") else "",
                    "role": m.get("role"),
                    "content": m.get("content"),
                    "tokens": count_tokens(str(m.get("content", ""))),
                    "at": when(m.get("created_at", 0), "clock"),
                }
                for m in trace.messages
            ]
        ),
        hide_index=True,
        width="stretch",
        height=_fit_height(len(trace.messages)),
        column_config={
            "used": st.column_config.TextColumn("used", width="small"),
            "content": st.column_config.TextColumn("content", width="large"),
        },
    )

    left, right = st.columns(2)
    left.plotly_chart(hbar(trace.tokens, "Tokens per part (estimate)", "tokens"), width="stretch", key=f"tok-{key}")
    timings = {k: v for k, v in trace.timings_ms.items() if k != "total"}
    right.plotly_chart(hbar(timings, "Time per step", "ms"), width="stretch", key=f"time-{key}")
    job = trace.job
    if job or trace.upkeep:
        st.markdown("**Memory upkeep after this turn**")
        st.caption(upkeep_line(job))
        changes = trace.upkeep_changes()
        if changes:
            st.markdown("\n".join(f"- {md_text(line)}" for line in changes))
        with st.popover("The outcome as JSON", icon=":material/data_object:"):
            st.json(with_iso_dates({"job": job, "upkeep": trace.upkeep}), expanded=True)


def upkeep_line(job: dict[str, Any]) -> str:
    """One line on a turn's upkeep job: where it stands, who did it, how long it waited."""
    status = job.get("status")
    pending = job.get("pending_before") or []
    before = f" This context was built while {len(pending)} earlier job(s) were still running." if pending else ""
    if status == "queued":
        return "Memory updating… the upkeep job (facts, summary, episode) runs after the reply." + before
    if status == "done":
        waited = float(job.get("waited_ms") or 0)
        wait = f", after waiting {waited:.0f} ms for the user's previous job" if waited >= 50 else ""
        return f"Done by worker {md_escape(str(job.get('worker', '?')))}{wait}." + before
    if status == "failed":
        return f"Failed: {md_text(str(job.get('error', '')))} (the turn itself is stored)." + before
    if status == "inline":
        return "Done before the reply was stored (MEMLAB_UPKEEP=inline)." + before
    return "This strategy keeps nothing beyond the messages: no upkeep." + before


def _retrieved_table(trace: Trace, key: str) -> None:
    st.markdown(
        "**Retrieved from long-term memory**, in rank order. *Relevance* is the cosine similarity to the "
        "message (for an episode, of its best-matching turn), so items of every kind compare on one scale."
    )
    components = st.toggle("Show score components", key=f"components-{key}")
    related = components and any(i.source.get("related words") for i in trace.retrieved)
    rows = []
    for item in trace.retrieved:
        row: dict[str, Any] = {
            "used": "✓" if item.used else "",
            "kind": item.kind,
            "relevance": item.similarity,
            "in context": item.included,
            "text": item.text,
        }
        if related:  # beside the text it explains
            row["related words"] = str(item.source.get("related words", ""))
        row["session"] = item.source.get("session_id", "")
        row["from"] = replay_link(trace.user_id, source_of(item.source))
        if components:
            row |= {"rank score (fused, per kind)": item.score, "cosine distance": item.distance}
        rows.append(row)
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        height=_fit_height(len(rows)),
        column_config={
            "used": st.column_config.TextColumn("used", width="small", help="the reply drew on this item"),
            "relevance": st.column_config.ProgressColumn("relevance", min_value=0.0, max_value=1.0, format="%.3f"),
            "text": st.column_config.TextColumn("text", width="large"),
            "from": SOURCE_COLUMN,
            "rank score (fused, per kind)": st.column_config.NumberColumn(
                format="%.3f", help="BM25 fused with the cosine, relative to this query's other candidates of the kind"
            ),
            "cosine distance": st.column_config.NumberColumn(format="%.3f", help="1 − relevance"),
            "related words": st.column_config.TextColumn(
                help="words of this turn that the keyword score counted as related to the message's rare words "
                '("taekwondo" for "martial arts")'
            ),
        },
    )
