"""The tick-to-confirm end of a form: a change that cannot be undone is made only with its box ticked."""

from __future__ import annotations

from typing import Literal

import streamlit as st


def confirmed(
    tick: str,
    button: str,
    key: str | None = None,
    kind: Literal["primary", "secondary"] = "secondary",
    disabled: bool = False,
) -> bool:
    """Inside ``st.form``: the box ``tick`` and the submit ``button``. True when the form was sent with the box
    ticked; sent without it, the form says to tick it and nothing happens."""
    sure = st.checkbox(tick, key=key)
    if not st.form_submit_button(button, type=kind, disabled=disabled):
        return False
    if not sure:
        st.warning("Tick the box to confirm.")
    return sure
