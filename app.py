"""Memory Lab: declare the pages, draw the shared sidebar, run the chosen page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.sidebar import render_banner, render_sidebar

# A local image: a Material or emoji page icon is fetched from a font/emoji CDN by the browser.
st.set_page_config(page_title="Memory Lab", page_icon=str(Path(__file__).parent / "assets" / "icon.png"), layout="wide")

PAGES = {
    "Playground": [
        st.Page("app_pages/chat.py", title="Chat playground", icon=":material/chat:", default=True),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    ],
    "Inspect memory": [
        st.Page("app_pages/redis_keys.py", title="Redis keys", icon=":material/key:"),
        st.Page("app_pages/summaries.py", title="Summaries", icon=":material/summarize:"),
        st.Page("app_pages/vector_memory.py", title="Vector memory", icon=":material/hub:"),
    ],
    "Evaluate": [
        st.Page("app_pages/recall_lab.py", title="Recall Lab", icon=":material/query_stats:"),
    ],
}

navigation = st.navigation({group: pages for group, pages in PAGES.items() if pages})
statuses = render_sidebar()
render_banner(statuses)
navigation.run()
