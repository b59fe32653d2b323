"""The one tick-to-confirm form (ui/confirm.py) that every irreversible change on the pages goes through."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _form() -> None:
    import streamlit as st

    from ui.confirm import confirmed

    with st.form("change"):
        if confirmed("I want to change it", "Change", key="sure", kind="primary"):
            st.session_state["changed"] = st.session_state.get("changed", 0) + 1
            st.success("Changed.")


def test_a_change_is_made_only_when_the_box_is_ticked():
    at = AppTest.from_function(_form)
    at.run()
    at.button[0].click().run()
    assert [w.value for w in at.warning] == ["Tick the box to confirm."] and "changed" not in at.session_state
    at.checkbox(key="sure").check()
    at.button[0].click().run()
    assert not at.warning and at.session_state["changed"] == 1 and at.success[0].value == "Changed."
    at.run()  # a rerun of the page is no second submit
    assert at.session_state["changed"] == 1
