"""The buffer strategy: last N messages, trimmed, with a sliding TTL."""

from __future__ import annotations

from dataclasses import replace

from memory.lab import MemoryLab
from memory.records.messages import Message, Role


def test_buffer_keeps_the_last_n_and_the_log_keeps_everything(lab):
    config = lab.default_config().with_(buffer_size=4)
    for i in range(5):
        lab.chat("u1", "s1", f"message number {i}", strategy="buffer", config=config)
    buffer = lab.sessions.buffer("u1", "s1").messages
    assert [m.content for m in buffer][-1].startswith("Noted")
    assert len(buffer) == 4
    assert len(lab.sessions.log("u1", "s1").messages) == 10
    result = lab.chat("u1", "s1", "what was message number 4?", strategy="buffer", config=config)
    sent = [m["content"] for m in result.trace.messages]
    assert len(sent) == 4 and "message number 4" in sent and "message number 0" not in sent
    assert sent[-1] == "what was message number 4?"


def test_every_write_refreshes_the_ttl_of_all_session_keys(settings):
    lab = MemoryLab(replace(settings, session_ttl_s=1000))
    lab.chat("u1", "s1", "hello there", strategy="buffer")
    keys = lab.keys.session("u1", "s1")
    for key in (keys.log, keys.buffer, keys.traces):
        lab.redis.expire(key, 5)
    lab.sessions.append("u1", "s1", Message(Role.USER, "again"))
    for key in (keys.log, keys.buffer, keys.traces):
        assert 990 < lab.redis.ttl(key) <= 1000, key
    assert lab.redis.ttl(lab.keys.user("u1").sessions) > 990


def test_ttl_zero_means_no_expiry(settings):
    lab = MemoryLab(replace(settings, session_ttl_s=0))
    lab.sessions.append("u1", "s1", Message(Role.USER, "keep me"))
    assert lab.redis.ttl(lab.keys.session("u1", "s1").log) == -1


def test_corrupt_buffer_entry_is_reported_in_the_trace_not_fatal(lab):
    lab.chat("u1", "s1", "first", strategy="buffer")
    lab.redis.rpush(lab.keys.session("u1", "s1").buffer, "\x00not json")
    result = lab.chat("u1", "s1", "second", strategy="buffer")
    assert result.reply is not None
    assert any("corrupt" in w for w in result.trace.warnings)
    assert [m["content"] for m in result.trace.messages][-1] == "second"
