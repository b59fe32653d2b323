"""Tables whose long cells can be read whole: click a row, and its text shows below the table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

# A click on any cell picks its row (row selection alone needs a click on the narrow box at the left).
CLICK_A_ROW = ["single-row", "single-cell"]


def selected_row(event: Any) -> int | None:
    """The row a click picked on a dataframe drawn with ``selection_mode=CLICK_A_ROW``, or None."""
    selection = getattr(event, "selection", None)
    rows = list(getattr(selection, "rows", None) or [])
    if rows:
        return int(rows[0])
    cells = list(getattr(selection, "cells", None) or [])
    return int(cells[0][0]) if cells else None


def text_table(frame: pd.DataFrame, key: str, text_columns: list[str], **options: Any) -> int | None:
    """A dataframe with row selection; the picked row's ``text_columns`` are shown in full (as text, not markup)."""
    event = st.dataframe(
        frame, key=key, on_select="rerun", selection_mode=CLICK_A_ROW, hide_index=True, width="stretch", **options
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
