"""Summaries: the rolling summary of a session, what is still buffered, and the fold history."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from memory.presentation.format import when
from memory.records.tokens import count_tokens
from ui.layout import CHAT, link_params, page
from ui.state import guarded, md_escape, md_text, settle_upkeep

ctx = page("pages/summaries.py")
lab, user, session = ctx.lab, ctx.user_id, ctx.session_id
st.caption(
    f"User **{md_escape(user)}** · session **{md_escape(session)}**. The summary and hybrid strategies fold "
    "old buffer messages into a rolling summary once the buffer passes its threshold."
)

stored_threshold = lab.default_config().summary_threshold
with guarded("Reading the session's settings"):
    if restored := lab.session_settings(user, session):
        stored_threshold = restored[1].summary_threshold  # the threshold this session's turns actually fold at
threshold = st.slider(
    "Fold threshold to compare against (messages)",
    2,
    max(100, stored_threshold),
    stored_threshold,
    key=f"sum_threshold_{user}_{session}",
    help="Starts at the threshold this session was last run with; move it to see where another would fold.",
)

settle_upkeep(lab, user)
with guarded("Reading the summary"):
    summary = lab.sessions.summary(user, session)
    buffer = lab.sessions.buffer(user, session)
    fold_read = lab.sessions.folds(user, session)
    folds = fold_read.items
    length = len(buffer.messages) + len(buffer.corrupt)

    if not summary and not buffer.messages and not folds:
        st.info(
            "Nothing here yet. Chat a dozen turns with the **summary** or **hybrid** strategy on the "
            "Chat playground (lower 'Fold when buffer passes' to see a fold sooner), then come back."
        )

    left, right = st.columns([2, 1])
    with left:
        st.subheader("Current summary")
        if summary:
            st.caption(f"~{count_tokens(summary)} tokens")
            st.code(summary, language=None, wrap_lines=True)
        else:
            st.caption("No summary yet: nothing has been folded in this session.")
    with right:
        gauge = go.Figure(
            go.Indicator(
                mode="gauge+number",
                value=length,
                title={"text": "Buffer before next fold"},
                gauge={
                    "axis": {"range": [0, max(threshold + 1, length)]},
                    "bar": {"color": "#4c78a8"},
                    "threshold": {"line": {"color": "#e45756", "width": 4}, "value": threshold},
                },
            )
        )
        gauge.update_layout(height=250, margin=dict(l=20, r=20, t=50, b=10))
        st.plotly_chart(gauge, width="stretch", key="sum_gauge")
        st.caption(f"{length} message(s) in the buffer; a fold happens after a turn that leaves more than {threshold}.")

    st.subheader("Messages still in the buffer")
    for bad in buffer.corrupt:
        st.warning(f"Corrupt buffer entry #{bad.index} skipped: {md_text(bad.error)}")
    if buffer.messages:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "at": when(m.created_at),
                        "role": m.role.value,
                        "content": m.content,
                        "tokens": count_tokens(m.content),
                    }
                    for m in buffer.messages
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("The buffer is empty.")

    st.subheader("Fold history")
    for bad in fold_read.corrupt:
        st.warning(f"Fold record #{bad.index} is corrupt and was skipped: {md_text(bad.error)}")
    if folds:
        frame = pd.DataFrame(
            [
                {
                    "fold": f"fold {n}",
                    "when": when(f.at),
                    "messages folded": f.messages,
                    "corrupt skipped": f.corrupt,
                    "tokens before": f.tokens_before,
                    "tokens after": f.tokens_after,
                }
                for n, f in enumerate(folds, start=1)
            ]
        )
        hover = [f"{w}" for w in frame["when"]]
        fig = go.Figure()
        fig.add_bar(
            x=frame["fold"],
            y=frame["tokens before"],
            name="tokens before (summary + folded messages)",
            hovertext=hover,
        )
        fig.add_bar(x=frame["fold"], y=frame["tokens after"], name="tokens after (new summary)", hovertext=hover)
        fig.add_scatter(
            x=frame["fold"],
            y=frame["messages folded"],
            name="messages folded",
            yaxis="y2",
            mode="lines+markers",
            hovertext=hover,
        )
        fig.update_layout(
            barmode="group",
            height=340,
            margin=dict(l=10, r=10, t=30, b=10),
            xaxis=dict(type="category"),
            yaxis=dict(title="tokens", rangemode="tozero"),
            yaxis2=dict(title="messages", overlaying="y", side="right", rangemode="tozero", dtick=1, tickformat="d"),
            legend=dict(orientation="h", y=-0.25),
        )
        st.plotly_chart(fig, width="stretch", key="sum_folds")
        by_id = {m.id: m for m in lab.sessions.log(user, session).messages}
        for n, f in enumerate(folds, start=1):
            with st.expander(f"Fold {n} · {f.messages} message(s) · {frame['when'][n - 1]}", key=f"fold-{n}"):
                rows = [
                    {
                        "id": mid,
                        "role": by_id[mid].role.value if mid in by_id else "",
                        "content": by_id[mid].content if mid in by_id else "(not in the transcript any more)",
                    }
                    for mid in f.message_ids
                ]
                if rows:
                    st.table(pd.DataFrame(rows))
                else:
                    st.caption("No readable messages (corrupt entries only).")
        st.page_link(
            "pages/chat.py",
            label="Open the whole transcript on the Chat playground",
            icon=":material/chat:",
            query_params=link_params(CHAT),
        )
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.caption("No folds yet.")
