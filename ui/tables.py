"""Tables whose long cells can be read whole: click a row, and its text shows below the table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
import streamlit as st

from memory.records.stored import with_iso_dates

# A click on any cell picks its row (row selection alone needs a click on the narrow box at the left).
CLICK_A_ROW: list[Literal["single-row", "single-cell"]] = ["single-row", "single-cell"]


def selected_row(event: Any) -> int | None:
    """The row a click picked on a dataframe drawn with ``selection_mode=CLICK_A_ROW``, or None."""
    selection = getattr(event, "selection", None)
    rows = list(getattr(selection, "rows", None) or [])
    if rows:
        return int(rows[0])
    cells = list(getattr(selection, "cells", None) or [])
    return int(cells[0][0]) if cells else None


def text_table(
    frame: pd.DataFrame,
    key: str,
    text_columns: list[str],
    json_of: Callable[[int], Any] | None = None,
    **options: Any,
) -> int | None:
    """A dataframe with row selection; the picked row's ``text_columns`` are shown in full (as text, not markup),
    or, where ``json_of(row)`` gives the row's value as JSON, as an indented tree with each moment's date."""
    event = st.dataframe(
        frame, key=key, on_select="rerun", selection_mode=CLICK_A_ROW, hide_index=True, width="stretch", **options
    )
    row = selected_row(event)
    if row is None or row >= len(frame):
        st.caption("Click a row to read it in full.")
        return None
    parsed = json_of(row) if json_of is not None else None
    if parsed is not None:
        st.caption(f"Row {row + 1}, as JSON (a time in seconds since 1970 has its date beside it, ending in _iso)")
        st.json(with_iso_dates(parsed), expanded=2)
        return row
    for column in text_columns:
        value = frame.iloc[row][column]
        if isinstance(value, str) and value:
            st.caption(f"{column} of row {row + 1}")
            st.text(value)
    return row
