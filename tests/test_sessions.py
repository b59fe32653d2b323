"""A user's session index: listed from the first message, idempotent appends, pruned when keys are gone."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from memory.lab import MemoryLab
from memory.records.messages import Message, Role
from memory.upkeep.worker import Worker


def test_a_retried_append_stores_the_message_once(lab):
    message = Message(Role.USER, "My name is Alice.")
    assert lab.sessions.append("alice", "s1", message) is True
    assert lab.sessions.append("alice", "s1", message) is False  # the retry after a timeout
    assert [m.id for m in lab.sessions.log("alice", "s1").messages] == [message.id]
    assert [m.id for m in lab.sessions.buffer("alice", "s1").messages] == [message.id]


def test_a_retried_chat_turn_stores_the_user_message_once(lab):
    first = lab.chat("alice", "s1", "I use Python.", strategy="buffer", message_id="m-retry-1")
    again = lab.chat("alice", "s1", "I use Python.", strategy="buffer", message_id="m-retry-1")
    contents = [m.content for m in lab.sessions.log("alice", "s1").messages]
    assert contents.count("I use Python.") == 1
    assert first.reply is not None and again.reply is not None
    # The retried turn still answers, from a context holding the message once.
    assert [m["content"] for m in again.trace.messages].count("I use Python.") == 1


def test_a_session_is_listed_as_soon_as_its_first_message_is_stored(lab):
    lab.sessions.append("alice", "fresh", Message(Role.USER, "hello"))
    assert [s for s, _ in lab.sessions.sessions("alice")] == ["fresh"]


def test_expired_sessions_leave_the_index_on_read_and_on_write(settings):
    lab = MemoryLab(replace(settings, session_ttl_s=1))
    lab.sessions.append("alice", "short", Message(Role.USER, "gone soon"), ttl_s=1)
    lab.sessions.append("alice", "long", Message(Role.USER, "still here"), ttl_s=3600)
    time.sleep(2.2)
    u = lab.keys.user("alice")
    lab.sessions.append("alice", "long", Message(Role.USER, "a write prunes too"), ttl_s=3600)
    assert lab.redis.zscore(u.sessions, "short") is None, "pruned on write"
    assert [s for s, _ in lab.sessions.sessions("alice")] == ["long"]
    assert 3500 < lab.redis.ttl(u.sessions) <= 3602, "the index lives as long as its longest-lived session"


def test_a_session_whose_keys_were_deleted_leaves_the_index_on_read(lab):
    lab.sessions.append("alice", "deleted", Message(Role.USER, "x"))
    lab.sessions.append("alice", "kept", Message(Role.USER, "y"))
    lab.redis.zadd(lab.keys.user("alice").sessions, {"deleted": time.time() - 3600})  # last active an hour ago
    lab.redis.delete(*lab.keys.session("alice", "deleted").all())  # e.g. from the key browser
    assert [s for s, _ in lab.sessions.sessions("alice")] == ["kept"]
    assert lab.redis.zscore(lab.keys.user("alice").sessions, "deleted") is None


def test_malformed_index_members_are_dropped_not_shown(lab, raw_redis):
    lab.sessions.append("alice", "ok", Message(Role.USER, "x"))
    raw_redis.zadd(lab.keys.user("alice").sessions, {b"![x](http://127.0.0.1:9/p.png)": 1.0, b"\xff": 2.0})
    assert [s for s, _ in lab.sessions.sessions("alice")] == ["ok"]
    assert lab.redis.zcard(lab.keys.user("alice").sessions) == 1


def test_each_session_is_listed_by_its_first_words(lab, raw_redis):
    """The sidebar lists sessions by when and how they began, not by bare ids."""
    lab.sessions.append("eva", "s1", Message(Role.USER, "Hi, I'm Eva. I live in Lyon."))
    lab.sessions.append("eva", "s1", Message(Role.USER, "Second message."))
    lab.sessions.append("eva", "s2", Message(Role.USER, "Plans for the weekend"))
    raw_redis.rpush(lab.keys.session("eva", "bad").log, "not a message")
    assert lab.sessions.openings("eva", ["s1", "s2", "bad", "none"]) == {
        "s1": "Hi, I'm Eva. I live in Lyon.",
        "s2": "Plans for the weekend",
    }


def _pttls(lab: MemoryLab, user: str, session: str) -> dict[str, int]:
    k = lab.keys.session(user, session)
    u = lab.keys.user(user)
    names = [*k.all(), u.sessions, u.expiries]
    with lab.redis.pipeline(transaction=False) as p:
        for name in names:
            p.pttl(name)
        return dict(zip(names, p.execute()))


def test_every_session_key_keeps_one_expiry_and_the_index_outlives_it(settings):
    """Upkeep (a fold, a job's outcome) never slides a key past the transcript; a slow reply slides the index too."""
    lab = MemoryLab(replace(settings, upkeep_mode="external", summary_threshold=2, summary_keep=0, upkeep_delay_s=0.3))
    try:
        lab.chat("alice", "s1", "I moved to Lima.", strategy="summary")
        stream = lab.chat_stream("alice", "s1", "I work at Klarna.", strategy="summary")
        time.sleep(1.5)  # a slow LLM: the reply is stored well after the user's message indexed the session
        assert "".join(stream)
        Worker(lab, name="w", block_ms=50).run_once()  # both turns' jobs; the second folds
        k, u = lab.keys.session("alice", "s1"), lab.keys.user("alice")
        ttls = _pttls(lab, "alice", "s1")
        session = {name: ttl for name, ttl in ttls.items() if name in k.all() and ttl != -2}  # the buffer folded away
        assert set(session) == set(k.all()) - {k.buffer} and all(ttl > 0 for ttl in session.values()), session
        assert max(session.values()) <= ttls[k.log] and min(session.values()) >= ttls[k.log] - 2, session
        assert ttls[u.sessions] >= ttls[k.log] and ttls[u.expiries] >= ttls[k.log], ttls
    finally:
        lab.close()


def test_a_job_ending_after_its_session_expired_creates_no_key(settings):
    lab = MemoryLab(replace(settings, upkeep_mode="external", session_ttl_s=2, upkeep_delay_s=3.0))
    try:
        lab.chat("alice", "s1", "I moved to Lima.", strategy="summary")
        worker = Worker(lab, name="w", block_ms=50)
        assert worker.run_once() == 1  # checked while the session lived, applied after it expired
        assert worker.done == 1
        assert list(lab.redis.scan_iter("memlab:s:{alice:s1}:*")) == []
    finally:
        lab.close()


class _Skewed:
    """The ``time`` module as a process whose clock is an hour behind the Redis server's sees it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return time.time() - 3600


def test_the_index_and_the_session_expire_by_one_clock_whatever_the_clients_clock(settings, monkeypatch):
    """The index was dated by the writing process's clock and the session's keys by the server's: a client an
    hour behind (or a request that waited in a stalled server) made the index expire before its session."""
    from memory.stores import session_store

    lab = MemoryLab(replace(settings, session_ttl_s=600))
    try:
        monkeypatch.setattr(session_store, "time", _Skewed())
        lab.chat("alice", "s1", "My name is Alice.", strategy="buffer")
        k, u = lab.keys.session("alice", "s1"), lab.keys.user("alice")
        ttl = {key: lab.redis.pttl(key) for key in (k.log, u.sessions, u.expiries)}
        assert 590_000 < ttl[k.log] <= 600_000
        assert ttl[u.sessions] >= ttl[k.log] and ttl[u.expiries] >= ttl[k.log], ttl
        assert [sid for sid, _ in lab.sessions.sessions("alice")] == ["s1"]
        [(_, at)] = lab.redis.zrange(u.sessions, 0, -1, withscores=True)
        assert abs(at - time.time()) < 60, "the session's date is the server's, not the skewed client's"
    finally:
        lab.close()
