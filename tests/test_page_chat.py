"""The Chat playground through AppTest: replies, traces, stored settings, the sidebar's user and session."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from .page_app import APP, assert_clean, open_page, open_traces


def test_chat_shows_the_reply_and_what_the_model_saw(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    at.chat_input[0].set_value("My name is Alice. I use Python.").run()
    at.sidebar.button[0].click().run()  # New session
    assert at.session_state["session_id"] != "s1"
    at.chat_input[0].set_value("What is my name?").run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    reply = at.chat_message[1].markdown[0].value
    assert "Alice" in reply
    labels = [e.label for e in at.expander]
    assert any(label.startswith("What the model saw · facts") for label in labels)
    assert not at.code, "a closed trace is not drawn (lazy)"
    open_traces(at)
    codes = " ".join(c.value for c in at.code)
    assert "Your name is Alice." in codes
    frames = [df.value for df in at.dataframe]
    retrieved = next(f for f in frames if "relevance" in f.columns)
    assert (retrieved["relevance"] > 0).all()
    used = retrieved.loc[retrieved["used"] == "✓", "text"].tolist()
    assert used == ["Your name is Alice."], "the fact the reply used is marked, and only it"


def test_chat_renders_user_markup_as_text(app_env):
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("<b>bold</b> **not bold**").run()
    shown = at.chat_message[0].markdown[0].value
    assert "\\<b\\>" in shown and "\\*\\*" in shown


def test_the_strategy_survives_a_page_switch(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    at.number_input(key="cfg_k").set_value(7).run()
    at.switch_page("pages/summaries.py").run()
    at.switch_page("pages/chat.py").run()
    assert at.selectbox(key="strategy").value == "facts"
    assert at.number_input(key="cfg_k").value == 7


def test_a_sessions_strategy_and_settings_are_stored_with_it(app_env):
    first = open_page("pages/chat.py", user="alice", session="s7")
    first.selectbox(key="strategy").set_value("summary").run()
    first.number_input(key="cfg_thr").set_value(4).run()
    first.chat_input[0].set_value("My name is Alice.").run()
    assert not first.exception
    again = open_page("pages/chat.py", user="alice", session="s7")  # another browser, another day
    assert again.selectbox(key="strategy").value == "summary"
    assert again.number_input(key="cfg_thr").value == 4
    fresh = open_page("pages/chat.py", user="alice", session="fresh")
    assert fresh.selectbox(key="strategy").value == "summary", "a new session continues with the user's latest strategy"
    assert fresh.number_input(key="cfg_thr").value == 4
    stranger = open_page("pages/chat.py", user="nobody-yet", session="s1")
    assert stranger.selectbox(key="strategy").value == "buffer", "nothing stored anywhere: the defaults"


def test_switching_user_opens_their_newest_session(app_env, lab):
    from memory.records.messages import Message, Role

    lab.sessions.append("bob", "b-old", Message(Role.USER, "old"))
    lab.sessions.append("bob", "b-new", Message(Role.USER, "new"))
    at = open_page("pages/chat.py", user="alice", session="a1")
    at.sidebar.text_input(key="_user_box").set_value("bob").run()
    assert at.session_state["session_id"] == "b-new"
    assert [m.markdown[0].value for m in at.chat_message] == ["new"]
    at.sidebar.text_input(key="_user_box").set_value("nobody").run()
    assert at.session_state["session_id"] == "s1"


def test_a_deep_link_reproduces_a_view(app_env, lab):
    lab.chat("carol", "c2", "My name is Carol.", strategy="hybrid")
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update({"user": "carol", "session": "c2", "strategy": "facts"})
    at.run()
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    assert (at.session_state["user_id"], at.session_state["session_id"]) == ("carol", "c2")
    assert at.selectbox(key="strategy").value == "facts", "the link's strategy wins over the stored one"
    assert at.chat_message[0].markdown[0].value.replace("\\", "") == "My name is Carol."
    assert at.query_params["user"] in ("carol", ["carol"]) and at.query_params["session"] in ("c2", ["c2"])


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_chat_streams_with_a_hosted_model_named_in_the_sidebar(app_env, monkeypatch, name):
    from .llm_servers import PROVIDERS

    provider = PROVIDERS[name]

    def answer(ask):
        if "Extract durable facts" in ask.system:
            return 200, '{"facts": []}', "small"
        return 200, "Streaming works, Alice.", "model-stream"

    with provider.serve(answer) as server:
        if name == "anthropic":
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        else:
            monkeypatch.setenv("MEMLAB_LLM", "openai")
            monkeypatch.setenv("OPENAI_BASE_URL", server.url)
            monkeypatch.setenv("MEMLAB_OPENAI_MODEL", "llama-local")
        at = open_page("pages/chat.py")
        assert any(f"**LLM** · {name}" in md.value for md in at.sidebar.markdown), "the sidebar names the provider"
        at.chat_input[0].set_value("Hello there").run()
        assert not at.exception, [e.value for e in at.exception]
        assert server.streamed, "the page asked for a stream"
        assert [m.name for m in at.chat_message] == ["user", "assistant"]
        assert at.chat_message[1].markdown[0].value.replace("\\", "") == "Streaming works, Alice."
        at.run()  # the stored turn, with its trace under the reply
        open_traces(at)
        assert any(m.label == "LLM" and m.value == name for m in at.metric), "the trace names the provider"


def test_the_chat_page_says_memory_is_updating_until_the_upkeep_is_done(app_env, monkeypatch):
    monkeypatch.setenv("MEMLAB_UPKEEP_DELAY", "1.5")
    at = open_page("pages/chat.py", session="upkeep")
    at.selectbox(key="strategy").set_value("facts").run()
    at.chat_input[0].set_value("My name is Alice.").run()
    assert_clean(at, "Chat playground")
    assert any("Memory updating" in c.value for c in at.caption)
    assert "upkeep_watch" in at.session_state
    deadline = time.monotonic() + 30
    while "upkeep_watch" in at.session_state and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert "upkeep_watch" not in at.session_state, "the watch ends once the worker has written the outcome"
    open_traces(at)
    assert any("Done by worker" in c.value for c in at.caption)
    assert not any("Memory updating" in c.value for c in at.caption)


def test_a_turns_trace_says_why_a_memory_was_not_retrieved(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    at.chat_input[0].set_value("I like jazz.").run()
    at.session_state["user_id"] = "bob"
    at.chat_input[0].set_value("What music do I like?").run()
    open_traces(at)
    key = next(t.key for t in at.text_input if t.key and t.key.startswith("why_"))
    at.text_input(key=key).set_value("You like jazz.").run()
    assert any("Stored for another user" in w.value and "alice" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]


def test_a_turns_trace_shows_the_related_words_of_a_recalled_turn(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("episodic").run()
    at.chat_input[0].set_value("I started taekwondo lessons last week.").run()
    at.session_state["session_id"] = "s2"
    at.chat_input[0].set_value("Which martial arts have I practised?").run()
    open_traces(at)
    for toggle in at.toggle:
        if toggle.key and toggle.key.startswith("components-"):
            toggle.set_value(True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [df.value for df in at.dataframe if "related words" in df.value.columns]
    assert tables, "the score components name the related words"
    rows = tables[-1]
    assert list(rows.loc[rows["kind"] == "turn", "related words"])[0] == "taekwondo"
