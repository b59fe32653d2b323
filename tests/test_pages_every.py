"""Every page through Streamlit's AppTest: empty, with a backend down or hung, whatever the keys hold."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from memory.backends.redis_server import free_port

from .page_app import PAGES, assert_clean, open_page


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
    from memory.records.messages import Message, Role

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
    lab.sessions.append("alice", "s1", __import__("memory.records.messages").records.messages.Message("user", "hello"))
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
