"""What the page tests share: opening a page of the app in Streamlit's AppTest, and what to check on any page.

The tests of one page are in tests/test_page_<page>.py; checks every page must pass are in
tests/test_pages_every.py. The ``app_env`` fixture (conftest.py) points the app at the test's Redis and folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.layout import LINKS

APP = str(Path(__file__).resolve().parent.parent / "app.py")

PAGES = {link.path: link.title for link in LINKS.values()}  # path -> heading, as ui/layout.py lists them

# Uploads every reader refuses, with the words its error says (issue 21).
BAD_UPLOADS = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels deep", id="deep"),
    pytest.param(b'{"name": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at offset 13)", id="latin-1"),
    pytest.param(b"[" + b"7" * 5000 + b"]", "a number with 5,000 digits", id="5000-digits"),
]


def open_page(page: str, user: str = "alice", session: str = "s1") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["user_id"] = user
    at.session_state["session_id"] = session
    at.run()
    if page != "app.py":
        at.switch_page(page).run()
    return at


def open_traces(at: AppTest) -> None:
    """Open every trace expander, as a click would (they are keyed widgets that draw only when open)."""
    for expander in at.expander:
        if expander.key and expander.key.startswith("trace-"):
            at.session_state[expander.key] = True
    at.run()


def assert_clean(at: AppTest, title: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [title]
    assert not at.get("help"), "an expression statement was rendered by Streamlit's magic (st.help of an element)"


def picker(at: AppTest):  # type: ignore[no-untyped-def]
    """The Recall Lab's question box (keyed per run and filter)."""
    return next(s for s in at.selectbox if s.key and s.key.startswith("rl_pick_"))


def upload(at: AppTest, key: str, raw: bytes) -> None:
    at.file_uploader(key=key).set_value(("upload.json", raw, "application/json")).run()


def errors_shown(at: AppTest) -> str:
    """The page's error boxes as the reader sees them (markdown escapes removed)."""
    assert not at.exception, [e.value for e in at.exception]
    return re.sub(r"\\(.)", r"\1", " | ".join(e.value for e in at.error))
