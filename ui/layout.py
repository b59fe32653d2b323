"""One call at the top of every page: page config, grouped navigation, the shared sidebar and the banner.

Pages live in `pages/`, so Streamlit serves each one by its own URL
(`/redis_keys`) and runs only that file; the default page list is hidden
(`client.showSidebarNavigation = false`) and this module draws the grouped
links instead, so a deep link shows the same sidebar as a click does.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from memory.paths import app_root

from .sidebar import render_banner, render_sidebar
from .state import Current, current

ICON = str(app_root() / "assets" / "icon.png")  # local: emoji icons come from a CDN


@dataclass(frozen=True)
class NavLink:
    path: str  # relative to app.py, as st.page_link wants it
    label: str
    icon: str


NAVIGATION: dict[str, list[NavLink]] = {
    "": [NavLink("app.py", "Home", ":material/home:")],
    "Playground": [
        NavLink("pages/chat.py", "Chat playground", ":material/chat:"),
        NavLink("pages/compare.py", "Compare", ":material/compare_arrows:"),
    ],
    "Inspect memory": [
        NavLink("pages/redis_keys.py", "Redis keys", ":material/key:"),
        NavLink("pages/summaries.py", "Summaries", ":material/summarize:"),
        NavLink("pages/vector_memory.py", "Vector memory", ":material/hub:"),
        NavLink("pages/audit.py", "Audit trail", ":material/history:"),
    ],
    "Evaluate": [NavLink("pages/recall_lab.py", "Recall Lab", ":material/query_stats:")],
}


def page(title: str, browser_title: str | None = None) -> Current:
    """Set up a page and return the current lab, user and session; call it first on every page."""
    st.set_page_config(page_title=f"{browser_title or title} · Memory Lab", page_icon=ICON, layout="wide")
    with st.sidebar:
        for group, links in NAVIGATION.items():
            if group:
                st.caption(group)
            for link in links:
                st.page_link(link.path, label=link.label, icon=link.icon)
        st.divider()
    statuses = render_sidebar()
    render_banner(statuses)
    st.title(title)
    return current(statuses)
