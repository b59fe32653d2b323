"""Rolling summary: folding keeps every message, even with concurrent writers."""

from __future__ import annotations

import threading

from memory.records.messages import Message, Role
from memory.stores.session_store import SessionStore


def test_fold_moves_old_messages_into_the_summary_and_records_it(lab):
    config = lab.default_config().with_(summary_threshold=6, summary_keep=2)
    lab.chat("u1", "s1", "My name is Alice.", strategy="summary", config=config)
    for i in range(3):
        lab.chat("u1", "s1", f"Filler statement number {i} about the weather.", strategy="summary", config=config)
    lab.wait_for_upkeep("u1")  # the fold is upkeep, done by a worker after the reply
    summary = lab.sessions.summary("u1", "s1")
    assert "Alice" in summary
    assert lab.sessions.buffer_length("u1", "s1") <= 6
    folds = lab.sessions.folds("u1", "s1").items
    assert len(folds) >= 1
    assert folds[0].messages >= 5 and folds[0].tokens_after > 0 and folds[0].tokens_before > 0
    result = lab.chat("u1", "s1", "What is my name?", strategy="summary", config=config)
    assert any(p.name == "summary" and "Alice" in p.text for p in result.trace.system_parts)
    assert "Alice" in result.reply.content


def test_no_message_is_lost_when_appends_race_a_fold(engine_client):
    """Writers append while folders fold; every id ends up in the buffer or in exactly one fold."""
    store = SessionStore(engine_client, __import__("memory.keys").keys.Keys("race"), ttl_s=600)
    written: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def slow_summary(previous: str, messages: list[Message]) -> str:
        stop.wait(0.005)  # widen the window between read and apply
        return previous + f" [{len(messages)}]"

    def writer(n: int) -> None:
        for i in range(n):
            m = Message(Role.USER, f"w{threading.get_ident()}-{i}")
            store.append("u", "s", m)
            with lock:
                written.append(m.id)

    def folder() -> None:
        while not stop.is_set():
            store.fold("u", "s", threshold=8, keep=3, summarize=slow_summary, attempts=50)

    folders = [threading.Thread(target=folder) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(150,)) for _ in range(3)]
    for t in folders + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in folders:
        t.join()

    in_buffer = [m.id for m in store.buffer("u", "s").messages]
    folded = [mid for f in store.folds("u", "s").items for mid in f.message_ids]
    assert len(store.folds("u", "s").items) > 3, "the test should actually fold"
    assert sorted(in_buffer + folded) == sorted(written)
    assert len(set(folded)) == len(folded)


def test_an_entry_that_is_not_utf8_is_folded_away_and_folding_goes_on(lab, raw_redis):
    """One undecodable entry used to stop folding for good (the client's lossy decode never matched)."""
    config = lab.default_config().with_(summary_threshold=6, summary_keep=2)
    lab.chat("u1", "s1", "My name is Alice.", strategy="summary", config=config)
    raw_redis.rpush(lab.keys.session("u1", "s1").buffer, b"\xff\xfe not utf-8 \x80")
    for i in range(20):
        lab.chat("u1", "s1", f"Statement number {i} about the weather.", strategy="summary", config=config)
        lab.wait_for_upkeep("u1")  # a fold each time it is due (the next turn no longer waits for it: turn.py)
    read = lab.sessions.folds("u1", "s1")
    assert len(read.items) >= 5 and read.corrupt == []
    assert sum(f.corrupt for f in read.items) == 1, "the corrupt entry is counted in the fold that removed it"
    assert lab.sessions.buffer_length("u1", "s1") <= 6
    assert "Alice" in lab.sessions.summary("u1", "s1")
