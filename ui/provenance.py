"""How the pages show where a memory came from: a link column that opens the Session replay page at the message
(``memory/timeline/provenance.py`` builds the links)."""

from __future__ import annotations

import streamlit as st

SOURCE_COLUMN = st.column_config.LinkColumn(
    help="Opens the session at the message this came from (Session replay, at that turn)",
    display_text="open the message ↗",
)
