"""Other libraries' chat memory in the same Redis is found and read as conversations.

LangChain and RedisVL write their own data here (both install light); the
Agent Memory Server is a whole service, so its working-memory document is
written by hand in the format its source stores (``set_working_memory``).
"""

from __future__ import annotations

import json
import time
import warnings

from memory.inspection.foreign import AGENT_MEMORY, LANGCHAIN, REDISVL, find_conversations


def _found(lab):
    found = find_conversations(lab.redis, lab.keys.prefix)
    assert found.complete
    return {c.library: c for c in found.conversations}, found


def test_a_langchain_history_reads_as_a_conversation_with_its_ttl(lab, redis_server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
        from langchain_community.chat_message_histories import RedisChatMessageHistory
    history = RedisChatMessageHistory("support-42", url=redis_server.url, ttl=600)
    history.add_user_message("Hi, I'm Bob and my order is late.")
    history.add_ai_message("Sorry Bob, let me check order 1234.")
    history.add_user_message("Thanks!")
    lab.chat("alice", "s1", "My name is Alice.")  # our own keys are not another library's

    by_library, found = _found(lab)
    assert set(by_library) == {LANGCHAIN}
    chat = by_library[LANGCHAIN]
    assert chat.session == "support-42" and chat.keys == ["message_store:support-42"]
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "Hi, I'm Bob and my order is late."),
        ("assistant", "Sorry Bob, let me check order 1234."),
        ("user", "Thanks!"),
    ]
    assert 590 <= chat.ttl <= 600 and not chat.problems
    assert found.scanned == 1, "Memory Lab's own keys are not scanned as foreign"


def test_a_corrupt_langchain_entry_is_named_and_the_rest_still_reads(lab, raw_redis):
    raw_redis.lpush("message_store:x", json.dumps({"type": "human", "data": {"content": "first"}}))
    raw_redis.lpush("message_store:x", b"\xff\xfe not json")
    raw_redis.lpush("message_store:x", json.dumps({"type": "ai", "data": {"content": "third"}}))
    chat = _found(lab)[0][LANGCHAIN]
    assert [m.content for m in chat.messages] == ["first", "third"]
    assert len(chat.problems) == 1 and "entry 1 of message_store:x" in chat.problems[0]
    assert chat.ttl == -1


def test_a_redisvl_history_reads_as_a_conversation_in_time_order(lab, redis_server):
    import redis
    from redisvl.extensions.message_history import MessageHistory

    client = redis.Redis.from_url(redis_server.url)
    # create_index=False: this Redis has no search module; the messages are written exactly as with one.
    history = MessageHistory("bank_chat", session_tag="t-7", redis_client=client, create_index=False)
    history.add_message({"role": "system", "content": "You are a bank assistant."})
    history.store("What is my balance?", "It is 120 EUR.")
    history.add_message({"role": "tool", "content": "balance=120", "tool_call_id": "call-1"})
    other = MessageHistory("bank_chat", session_tag="t-8", redis_client=client, create_index=False)
    other.add_message({"role": "user", "content": "Another session"})
    client.close()

    chats = [c for c in find_conversations(lab.redis, lab.keys.prefix).conversations if c.library == REDISVL]
    assert [c.session for c in chats] == ["t-7 (index prefix bank_chat)", "t-8 (index prefix bank_chat)"]
    first = chats[0]
    assert [(m.role, m.content) for m in first.messages] == [
        ("system", "You are a bank assistant."),
        ("user", "What is my balance?"),
        ("assistant", "It is 120 EUR."),
        ("tool", "balance=120"),
    ]
    assert first.messages[2].raw_role == "llm" and len(first.keys) == 4 and first.ttl == -1
    assert all(m.at and abs(m.at - time.time()) < 60 for m in first.messages)


def test_agent_memory_server_working_memory_reads_as_a_conversation(lab, raw_redis):
    document = {  # the fields set_working_memory stores, times as model_dump(mode="json") writes them
        "messages": [
            {"id": "01J0", "role": "user", "content": "I prefer window seats.", "created_at": "2026-11-30T10:00:00Z"},
            {
                "id": "01J1",
                "role": "assistant",
                "content": "Noted: window seats.",
                "created_at": "2026-11-30T10:00:05Z",
            },
        ],
        "memories": [],
        "context": "Earlier: the user booked a flight to Oslo.",
        "user_id": "u9",
        "tokens": 0,
        "session_id": "trip-1",
        "namespace": "travel",
        "ttl_seconds": 3600,
        "data": {},
        "last_accessed": 1796040000,
        "created_at": 1796040000,
        "updated_at": 1796040005,
    }
    raw_redis.set("working_memory:travel:u9:trip-1", json.dumps(document), ex=3600)
    raw_redis.set("working_memory:migration:complete", "true")  # the server's own flag, not a session
    chat = _found(lab)[0][AGENT_MEMORY]
    assert chat.session == "trip-1 (user u9 · namespace travel)"
    assert [(m.role, m.content) for m in chat.messages] == [
        ("summary", "Earlier: the user booked a flight to Oslo."),
        ("user", "I prefer window seats."),
        ("assistant", "Noted: window seats."),
    ]
    assert chat.messages[1].at == 1796032800.0 and 3590 <= chat.ttl <= 3600


def test_lookalikes_and_garbage_are_not_taken_for_chat_memory(lab, raw_redis):
    raw_redis.rpush("queue:jobs", "job-1", json.dumps({"type": "task", "payload": 1}))
    raw_redis.hset("user:1", mapping={"role": "admin", "content": "x"})  # no entry_id / session_tag
    raw_redis.set("working_memory:bad", b"\x00\xff garbage")
    raw_redis.set("working_memory:list", json.dumps([1, 2]))
    raw_redis.sadd("message_store:set", "a")
    found = find_conversations(lab.redis, lab.keys.prefix)
    assert found.conversations == [] and found.scanned == 5


def test_a_bounded_scan_says_it_did_not_finish(lab, raw_redis):
    with raw_redis.pipeline() as p:
        for i in range(3000):
            p.set(f"other:{i}", "x")
        p.execute()
    found = find_conversations(lab.redis, lab.keys.prefix, max_keys=500)
    assert not found.complete and found.scanned == 500


def test_a_database_of_memory_labs_keys_only_is_counted_whole(lab):
    """'No other library's memory among 0 keys' read as if the database were empty: it holds Memory Lab's."""
    lab.chat("kim", "s1", "My name is Kim.", strategy="buffer")
    found = find_conversations(lab.redis, lab.keys.prefix)
    assert found.conversations == [] and found.scanned == 0
    assert found.total == lab.redis.dbsize() > 0
