"""Vector memory: the user's facts and episodes in Chroma, a similarity query, and a 2-D map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from memory.presentation.format import when
from memory.timeline.provenance import replay_link, source_of
from ui.duplicates_view import duplicates_section
from ui.fact_versions import as_of_section, history_section
from ui.layout import page
from ui.memory_editor import delete_form, edit_section
from ui.pca import fit_2d
from ui.provenance import SOURCE_COLUMN
from ui.retention_view import retention_section
from ui.state import guarded, md_escape, md_text, settle_upkeep, warm_model
from ui.tables import text_table
from ui.why_view import why_panel

ctx = page("pages/vector_memory.py")
lab, user = ctx.lab, ctx.user_id
st.caption(
    f"Long-term memory of user **{md_escape(user)}** in {lab.settings.vector_store_name} "
    f"({lab.settings.chroma_mode}), embedded with all-MiniLM-L6-v2 in cosine space. "
    "Similarity = 1 − cosine distance."
)


def _hover(text: str, width: int = 60, limit: int = 600) -> str:
    """A memory's text for a hover label: escaped, wrapped, the whole of it up to ``limit`` characters."""
    import html
    import textwrap

    shown = text if len(text) <= limit else text[:limit] + "…"
    return "<br>".join(textwrap.wrap(html.escape(shown), width)) or "(empty)"


facts, episodes = [], []
settle_upkeep(lab, user)
with guarded("Reading Chroma"):
    facts = lab.facts.all(user, with_embeddings=True)
    episodes = lab.episodes.all(user, with_embeddings=True)

if not facts and not episodes:
    st.info(
        "No long-term memories for this user yet. On the **Chat playground**, pick the **facts**, **episodic** "
        "or **hybrid** strategy and tell it something about yourself (*I live in Berlin. I use Rust.*)."
    )

tab_facts, tab_episodes, tab_log = st.tabs([f"Facts ({len(facts)})", f"Episodes ({len(episodes)})", "Add/update log"])
with tab_facts:
    if facts:
        text_table(
            pd.DataFrame(
                [
                    {
                        "fact": r.text,
                        "slot": r.metadata.get("slot", ""),
                        "session": r.metadata.get("session_id", ""),
                        "created": when(r.metadata.get("created_at"), "minute"),
                        "updated": when(r.metadata.get("updated_at"), "minute"),
                        "said in": replay_link(user, source_of(r.metadata)),
                        "id": r.id,
                    }
                    for r in facts
                ]
            ),
            "vec_facts_table",
            ["fact"],
            column_config={"said in": SOURCE_COLUMN},
        )
    else:
        st.caption("No facts.")
with tab_episodes:
    if episodes:
        text_table(
            pd.DataFrame(
                [
                    {
                        "session": r.metadata.get("session_id", ""),
                        "summary": r.text,
                        "messages": r.metadata.get("n_messages", 0),
                        "last activity": when(r.metadata.get("last_at"), "minute"),
                        "transcript key": r.metadata.get("log_key", ""),
                        "covers up to": replay_link(user, source_of(r.metadata)),
                        "id": r.id,
                    }
                    for r in episodes
                ]
            ),
            "vec_episodes_table",
            ["summary"],
            column_config={"covers up to": SOURCE_COLUMN},
        )
    else:
        st.caption("No episodes.")
with tab_log, guarded("Reading the fact log"):
    fact_log = lab.facts.history(user)
    log = fact_log.items
    for bad in fact_log.corrupt:
        st.warning(f"Fact log entry #{bad.index} is corrupt and was skipped: {md_text(bad.error)}")
    if log:
        text_table(
            pd.DataFrame(
                [
                    {
                        "when": when(e.at, "minute"),
                        "event": e.event,
                        "fact": e.text,
                        "previous": e.previous,
                        "similarity": e.similarity,
                        "session": e.session_id,
                    }
                    for e in reversed(log)
                ]
            ),
            "vec_log_table",
            ["fact", "previous"],
        )
    else:
        st.caption("No fact events yet.")

st.subheader("Query the memory")
q1, q2 = st.columns([4, 1])
query = q1.text_input("Query", key="vec_query", placeholder="e.g. what is my name?")
k = q2.number_input("Top-k", 1, 50, 5, key="vec_k")
hits_ids: set[str] = set()
query_vec = None
if query.strip() and (facts or episodes):
    with guarded("Searching"):
        warm_model(lab, repr(lab.settings))
        query_vec, hits = lab.search_memories(user, query, int(k))
        hits_ids = {m.hit.id for m in hits}
        shown_hits = pd.DataFrame(
            [
                {
                    "rank": i + 1,
                    "kind": m.kind,
                    "text": m.hit.text,
                    "cosine similarity": round(m.hit.similarity, 4),
                    "cosine distance": round(m.hit.distance, 4),
                    "session": m.hit.metadata.get("session_id", ""),
                    "rank in facts strategy (BM25 + dense)": m.strategy_rank,
                }
                for i, m in enumerate(hits)
            ]
        )
        text_table(
            shown_hits,
            "vec_hits_table",
            ["text"],
            column_config={
                "cosine similarity": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f"),
            },
        )
elif query.strip():
    st.caption("Nothing to search yet.")

with st.expander("Why wasn't it retrieved?", icon=":material/troubleshoot:", expanded=False):
    st.caption(
        "Pick any memory you expected for the query above: its rank and scores, the cut-off that dropped it, "
        "or where it is instead (another user or session, deleted, expired, never stored)."
    )
    why_panel(lab, user, query, int(k), ctx.session_id, "vector")

records = [("fact", r) for r in facts] + [("episode", r) for r in episodes]
if len(records) >= 2:
    st.subheader("Map of this user's memories (PCA of the embeddings)")
    vectors = np.array([r.embedding for _, r in records], dtype=np.float32)
    projection = fit_2d(vectors)  # fitted on the memories only: a query never moves them
    coords = projection(vectors)
    fig = go.Figure()
    if query_vec is not None and hits_ids:
        q = projection(query_vec[None, :])[0]
        xs: list[float | None] = []
        ys: list[float | None] = []
        for i, (_, record) in enumerate(records):
            if record.id in hits_ids:
                xs += [float(q[0]), float(coords[i, 0]), None]
                ys += [float(q[1]), float(coords[i, 1]), None]
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name=f"top {len(hits_ids)}",
            hoverinfo="skip",
            line=dict(color="#e45756", width=1, dash="dot"),
        )
    # Opaque (Streamlit's chart theme fades markers, which sank them into the dark background), mid-light
    # colours with a grey rim: they stand out on the light and on the dark background alike.
    for kind, color in (("fact", "#3b8beb"), ("episode", "#f58518")):
        idx = [i for i, (kd, _) in enumerate(records) if kd == kind]
        if not idx:
            continue
        fig.add_scatter(
            x=coords[idx, 0],
            y=coords[idx, 1],
            mode="markers",
            name=f"{kind}s",
            text=[_hover(records[i][1].text) for i in idx],
            hovertemplate="%{text}<extra></extra>",
            marker=dict(
                color=color,
                opacity=1,
                size=[17 if records[i][1].id in hits_ids else 12 for i in idx],
                line=dict(
                    color=["#e45756" if records[i][1].id in hits_ids else "rgba(128, 128, 128, 0.9)" for i in idx],
                    width=[3 if records[i][1].id in hits_ids else 1.5 for i in idx],
                ),
            ),
        )
    if query_vec is not None:
        q = projection(query_vec[None, :])[0]
        fig.add_scatter(
            x=[q[0]],
            y=[q[1]],
            mode="markers+text",
            name="query",
            text=["query"],
            hovertext=[_hover(query)],
            hoverinfo="text",
            textposition="top center",
            marker=dict(symbol="star", size=18, color="#e45756"),
        )
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="PC 1", yaxis_title="PC 2")
    st.plotly_chart(fig, width="stretch", key="vec_map")
    st.caption(
        "The map is fitted on this user's memories and changes only when they do; a query is placed on it, with "
        "dotted lines to its top-k (drawn larger, with a red ring). Hover a point for its text."
    )

delete_form(lab, user, facts, episodes)
edit_section(lab, user, facts)
with st.expander("Versions of a fact, and the facts as of a date", icon=":material/history:"):
    history_section(lab, user)
    as_of_section(lab, user)
with st.expander("Retention: pinned facts, a policy, its preview and undo", icon=":material/auto_delete:"):
    retention_section(lab, user, facts)
with st.expander("Near-duplicate facts, side by side", icon=":material/join_inner:"):
    duplicates_section(lab, user)

with guarded("Preparing the export"):
    from memory.transfer.portability import dumps, export_user

    st.download_button(
        "Download this user's memory (JSON)",
        dumps(export_user(lab, user)),
        file_name=f"memory-lab-{user}.json",
        mime="application/json",
        icon=":material/download:",
        key="export_user",
        help="Facts, episodes and the fact log; `python -m memory import FILE` loads it back.",
    )
