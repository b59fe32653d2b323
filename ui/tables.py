"""Tables whose long cells can be read whole: click a row, and its text shows below the table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st


def selected_row(event: Any) -> int | None:
    """The row a click on a single-row-select dataframe picked, or None."""
    try:
        rows = event.selection.rows
    except AttributeError:
        return None
    return int(rows[0]) if rows else None


def text_table(frame: pd.DataFrame, key: str, text_columns: list[str], **options: Any) -> int | None:
    """A dataframe with row selection; the picked row's ``text_columns`` are shown in full (as text, not markup)."""
    event = st.dataframe(
        frame, key=key, on_select="rerun", selection_mode="single-row", hide_index=True, width="stretch", **options
    )
    row = selected_row(event)
    if row is None or row >= len(frame):
        st.caption("Click a row to read it in full.")
        return None
    for column in text_columns:
        value = frame.iloc[row][column]
        if isinstance(value, str) and value:
            st.caption(f"{column} of row {row + 1}")
            st.text(value)
    return row
