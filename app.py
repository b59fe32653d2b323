"""Memory Lab's home page: what it is, whether the backends are up, and where to start.

The other pages live in `pages/`; each starts with `ui.layout.page`, which
draws the same grouped navigation and sidebar as this one.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.layout import NAVIGATION, link_params, page
from ui.sidebar import session_label
from ui.state import guarded, md_text

ctx = page("Memory Lab", browser_title="Home")
st.markdown(
    "LLMs are stateless: an app gives them memory with **Redis** (recent history), **summaries** the model "
    "writes, and a **vector store** (long-term facts). Memory Lab lets you chat through one memory strategy and "
    "*see* the memory: the live Redis keys and their TTLs, the running summary, the facts with their "
    "similarity scores, and exactly what the model was sent on each turn."
)

st.subheader("Backends")
st.dataframe(
    pd.DataFrame(
        [
            {
                "": "✓" if s.ok else "✗",
                "backend": s.name,
                "mode": s.mode,
                "where": s.location,
                "version": s.version,
                "status": "up" if s.ok else f"{s.problem}: {s.detail}",
            }
            for s in ctx.statuses
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Where to start")
BLURBS = {
    "pages/chat.py": "Chat through a strategy and open each turn's trace: what was recalled and what the model saw.",
    "pages/compare.py": "Run one scripted conversation through every strategy and compare recall, tokens and time.",
    "pages/redis_keys.py": "Browse the keys, their TTLs and memory use; other libraries' chat memory too.",
    "pages/summaries.py": "Watch the rolling summary grow fold by fold, and which messages each fold took.",
    "pages/session_replay.py": "Step through a session turn by turn: what memory held then and what changed.",
    "pages/vector_memory.py": "The long-term facts and episodes on a map, and a query's nearest neighbours.",
    "pages/audit.py": "Every memory write (messages, folds, facts, deletions), filtered by user and time.",
    "pages/recall_lab.py": "Measure recall on LoCoMo conversations and see why a question was missed.",
}
columns = st.columns(3)
links = [link for links in NAVIGATION.values() for link in links if link.path in BLURBS]
for i, link in enumerate(links):
    with columns[i % 3].container(border=True):
        st.page_link(link.path, label=link.label, icon=link.icon, query_params=link_params(link.path))
        st.caption(BLURBS[link.path])

with guarded("Reading your sessions"):
    sessions = ctx.lab.sessions.sessions(ctx.user_id)
    if sessions:
        newest, at = sessions[0]
        opening = ctx.lab.sessions.openings(ctx.user_id, [newest]).get(newest)
        st.caption(
            f"User **{md_text(ctx.user_id)}** has {len(sessions)} session(s); the newest is **{md_text(newest)}** "
            f"({md_text(session_label(newest, at, opening, width=60))})."
        )
    else:
        st.info(
            f"User **{ctx.user_id}** has no conversations yet: open the **Chat playground** and say something "
            "about yourself, then look at the memory pages."
        )
