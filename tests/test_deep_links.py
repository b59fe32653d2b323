"""Deep links: every mix of `user`, `session`, `strategy` opens what it names or says on the page why not.

Nothing is replaced silently, and a refused user never becomes ``demo``: the
page waits for a user typed in the sidebar, so no message lands under a user
the person did not choose.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from memory.records.messages import Message, Role

from .page_app import APP, PAGES, assert_clean

pytestmark = pytest.mark.usefixtures("app_env")

REFUSED = "refused"  # the whole link: no user, the page stops
# query -> (user, session) the page opens, and the kind of note it shows (None: no note at all)
CASES: dict[str, tuple[dict[str, str | list[str]], tuple[str, str] | str, str | None]] = {
    "nothing": ({}, ("demo", "s1"), None),
    "user only": ({"user": "alice"}, ("alice", "a-new"), None),
    "user of no session": ({"user": "newcomer"}, ("newcomer", "s1"), None),
    "user and session": ({"user": "alice", "session": "a-old"}, ("alice", "a-old"), None),
    "all three": ({"user": "alice", "session": "a-old", "strategy": "facts"}, ("alice", "a-old"), None),
    "unknown session": ({"user": "alice", "session": "nope"}, ("alice", "nope"), "info"),
    "another user's session": ({"user": "alice", "session": "b-1"}, ("alice", "b-1"), "info"),
    "empty session": ({"user": "alice", "session": ""}, ("alice", "a-new"), "warning"),
    "newline in session": ({"user": "alice", "session": "a-old\n"}, ("alice", "a-new"), "warning"),
    "two sessions": ({"user": "alice", "session": ["a-old", "b-1"]}, ("alice", "a-new"), "warning"),
    "session only": ({"session": "a-old"}, ("demo", "a-old"), "info"),
    "bad session only": ({"session": "../x"}, ("demo", "s1"), "warning"),
    "empty user": ({"user": ""}, REFUSED, "error"),
    "newline in user": ({"user": "al\nice", "session": "a-old"}, REFUSED, "error"),
    "65-character user": ({"user": "a" * 65}, REFUSED, "error"),
    "look-alike user": ({"user": "\u0430lice"}, REFUSED, "error"),  # Cyrillic 'а'
    "zero-width user": ({"user": "ali\u200bce"}, REFUSED, "error"),
    "two users": ({"user": ["alice", "bob"]}, REFUSED, "error"),
    "unknown strategy": ({"user": "alice", "strategy": "nonsense"}, ("alice", "a-new"), "warning"),
    "empty strategy": ({"user": "alice", "strategy": ""}, ("alice", "a-new"), "warning"),
    "strategy that is an attribute": ({"strategy": "__class__"}, ("demo", "s1"), "warning"),
}


# Every case runs on the chat page (the one that stores messages); one case of each outcome on the others.
ON_EVERY_PAGE = ["user only", "unknown session", "empty session", "newline in user", "unknown strategy"]


def _seed(lab) -> None:
    lab.sessions.append("alice", "a-old", Message(Role.USER, "old"))
    lab.sessions.append("alice", "a-new", Message(Role.USER, "new"))
    lab.sessions.append("bob", "b-1", Message(Role.USER, "bob's"))


def open_link(page: str, query: dict[str, str | list[str]]) -> AppTest:
    """A fresh browser session landing on ``page`` by a link carrying ``query``."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(query)
    if page != "app.py":
        at.switch_page(page)  # a deep link runs that page's file first
    return at.run()


def _notes(at: AppTest) -> dict[str, list[str]]:
    return {
        "error": [e.value for e in at.main.error if "is unreachable" not in e.value],
        "warning": [w.value for w in at.main.warning],
        "info": [i.value for i in at.main.info],
    }


@pytest.mark.parametrize("page", list(PAGES))
def test_every_link_opens_what_it_names_or_says_why_not(lab, page):
    _seed(lab)
    for name in CASES if page == "pages/chat.py" else ON_EVERY_PAGE:
        query, opens, note = CASES[name]
        at = open_link(page, query)
        assert_clean(at, PAGES[page])
        notes = _notes(at)
        state = (at.session_state["user_id"], at.session_state["session_id"])
        if opens == REFUSED:
            assert at.session_state["user_id"] == "", (name, state)
            assert any("was not opened" in e for e in notes["error"]), (name, notes)
            if page not in ("pages/compare.py", "pages/recall_lab.py"):  # the two pages that use no user
                assert any("Type a user id" in i for i in notes["info"]), (name, notes)
                assert not at.chat_input and not at.main.dataframe, f"{name}: the page went on without a user"
        else:
            assert state == opens, (name, state)
            if note is None:
                assert not notes["error"] and not notes["warning"], (name, notes)
            else:
                assert notes[note], (name, notes)
        if page == "pages/chat.py" and query.get("strategy") == "facts":
            assert at.selectbox(key="strategy").value == "facts"
    assert lab.sessions.sessions("demo") == [], "nothing was written under a user nobody chose"


def test_a_refused_link_names_the_value_with_look_alikes_spelled_out():
    at = open_link("pages/chat.py", {"user": "\u0430lice\n"})
    [error] = [e.value for e in at.main.error]
    assert "\\\\u0430lice\\\\n" in error or "\\u0430lice\\n" in error, error
    at = open_link("pages/chat.py", {"user": "x" * 5000})
    [error] = [e.value for e in at.main.error]
    assert len(error) < 600 and "…" in error, "a huge value is cut, not pasted whole"


def test_after_a_refused_link_the_next_message_goes_to_the_user_typed(lab):
    at = open_link("pages/chat.py", {"user": "al%0Aice", "session": "s1"})  # a link that was encoded twice
    assert not at.chat_input, "nothing can be sent before a user is chosen"
    at.sidebar.text_input(key="_user_box").set_value("alice").run()
    assert_clean(at, PAGES["pages/chat.py"])
    assert not _notes(at)["error"], "the link's refusal goes once a user is chosen"
    at.chat_input[0].set_value("My name is Alice.").run()
    assert not at.exception
    assert [sid for sid, _ in lab.sessions.sessions("alice")] == ["s1"]
    assert lab.sessions.sessions("demo") == []
    assert at.query_params["user"] in ("alice", ["alice"]), "the address now names the user the person chose"


def test_a_refused_strategy_leaves_the_address(lab):
    at = open_link("pages/summaries.py", {"user": "alice", "strategy": "nonsense"})
    assert "strategy" not in at.query_params
    assert at.query_params["user"] in ("alice", ["alice"])


def test_a_link_while_redis_is_down_shows_the_banner_not_a_traceback(monkeypatch):
    from memory.backends.redis_server import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    at = open_link("pages/chat.py", {"user": "alice", "session": "a-old", "strategy": "facts"})
    assert_clean(at, PAGES["pages/chat.py"])
    assert (at.session_state["user_id"], at.session_state["session_id"]) == ("alice", "a-old")
    assert any("Redis is unreachable" in e.value for e in at.error)


def test_a_links_strategy_is_for_the_session_it_came_with_only(lab):
    """A link's strategy= on a page without a strategy box waited for the chat page, whatever session was open by
    then: picking another session in the sidebar must drop it, or that session's next message changes its
    stored strategy with no word said."""
    lab.chat("linkuser", "sfacts", "I live in Oslo.", strategy="facts")
    lab.chat("linkuser", "shyb", "I like chess.", strategy="hybrid")
    at = open_link("pages/summaries.py", {"user": "linkuser", "session": "shyb", "strategy": "nonsense"})
    assert _notes(at)["warning"], "the refused strategy is named"
    at.sidebar.selectbox(key="_session_box").set_value("sfacts").run()
    assert not _notes(at)["warning"], "the note was about the link's session"
    at = open_link("pages/summaries.py", {"user": "linkuser", "session": "shyb", "strategy": "buffer"})
    at.sidebar.selectbox(key="_session_box").set_value("sfacts").run()
    at.switch_page("pages/chat.py").run()
    assert_clean(at, PAGES["pages/chat.py"])
    assert at.session_state["session_id"] == "sfacts"
    assert at.selectbox(key="strategy").value == "facts", "the session's own strategy"
    at.chat_input[0].set_value("Where do I live?").run()
    assert lab.session_settings("linkuser", "sfacts")[0] == "facts"
    assert lab.session_settings("linkuser", "shyb")[0] == "hybrid"

    at = open_link("pages/summaries.py", {"user": "linkuser", "session": "shyb", "strategy": "buffer"})
    at.switch_page("pages/chat.py").run()  # the session the link named: its strategy applies there
    assert at.selectbox(key="strategy").value == "buffer"


def test_a_links_note_is_said_on_the_page_it_opened_not_again_on_every_page_after(lab):
    at = open_link("pages/summaries.py", {"user": "touruser", "session": "gone"})
    assert any("had no session" in i for i in _notes(at)["info"]), "the link's page says what it could not open"
    at.switch_page("pages/chat.py").run()
    assert_clean(at, PAGES["pages/chat.py"])
    assert (at.session_state["user_id"], at.session_state["session_id"]) == ("touruser", "gone")
    assert not any("had no session" in i for i in _notes(at)["info"]), "a tour of the other pages does not repeat it"


@pytest.mark.parametrize("first", ["Hi, I'm Maya. I live in Porto and I work at a bakery near the river.", "hello"])
def test_the_home_page_names_the_newest_session_in_one_clean_sentence(lab, first):
    lab.chat("homeuser", "s9", first, strategy="buffer")
    at = open_link("app.py", {"user": "homeuser"})
    [line] = [c.value for c in at.main.caption if "session(s)" in c.value]
    assert "**s9**" in line and line.endswith((".", "…")), line
    assert not line.endswith(("..", ").", "….")), line
