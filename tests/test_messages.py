"""Typed messages and the versioned codec, round-tripped through a real Redis."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.keys import Keys
from memory.records.messages import CODEC_VERSION, Message, MessageDecodeError, Role, decode, encode
from memory.stores.session_store import SessionStore

ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(list(Role)))
    return Message(
        role=role,
        content=draw(st.text(max_size=2000)),
        id=draw(ids),
        created_at=draw(st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)),
        tool_call_id=draw(ids) if role is Role.TOOL else None,
        model_id=draw(st.one_of(st.none(), ids)) if role is Role.ASSISTANT else None,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages(), min_size=1, max_size=5))
def test_every_message_round_trips_through_redis_unchanged(redis_client, engine_client, batch):
    store = SessionStore(engine_client, Keys("prop"), ttl_s=60)
    redis_client.delete(*store.keys.session("u1", "s1").all())
    for m in batch:
        store.append("u1", "s1", m)
    read = store.log("u1", "s1")
    assert read.corrupt == []
    seen: set[str] = set()
    first_of_each_id = [m for m in batch if not (m.id in seen or seen.add(m.id))]
    assert read.messages == first_of_each_id  # a repeated id is a retry: stored once


def test_codec_carries_a_version_and_only_the_fields_in_use():
    data = json.loads(encode(Message(Role.USER, "hi", id="m1", created_at=1.5)))
    assert data == {"v": CODEC_VERSION, "id": "m1", "role": "user", "content": "hi", "created_at": 1.5}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"v": 99, "id": "a", "role": "user", "content": "x", "created_at": 1}',
        '{"v": 1, "id": "a", "role": "robot", "content": "x", "created_at": 1}',
        '{"v": 1, "id": "a", "role": "user", "content": 5, "created_at": 1}',
        '{"v": 1, "id": "a", "role": "tool", "content": "x", "created_at": 1}',
        '{"v": 1, "role": "user", "content": "x", "created_at": 1}',
        b"\xff\xfe",
    ],
)
def test_corrupt_entries_raise_a_decode_error(raw):
    with pytest.raises(MessageDecodeError):
        decode(raw)


def test_corrupt_entry_in_redis_is_skipped_and_reported(redis_client, engine_client):
    store = SessionStore(engine_client, Keys("t"), ttl_s=60)
    good = Message(Role.USER, "hello")
    store.append("u", "s", good)
    redis_client.rpush(store.keys.session("u", "s").log, "{garbage")
    after = Message(Role.ASSISTANT, "hi", model_id="m")
    store.append("u", "s", after)
    read = store.log("u", "s")
    assert read.messages == [good, after]
    assert len(read.corrupt) == 1 and read.corrupt[0].index == 1 and "JSON" in read.corrupt[0].error


def test_role_specific_fields_are_enforced():
    with pytest.raises(ValueError):
        Message(Role.TOOL, "result")  # no tool_call_id
    with pytest.raises(ValueError):
        Message(Role.USER, "x", model_id="claude")
    assert Message(Role.TOOL, "42", tool_call_id="call_1").tool_call_id == "call_1"


def test_message_ids_do_not_repeat_when_the_global_random_is_seeded_or_the_process_forks():
    import os
    import random

    from memory.records.messages import new_message_id

    random.seed(7)
    first = new_message_id()
    random.seed(7)
    assert new_message_id() != first
    assert len(first) == 32 and int(first, 16) >= 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes its next id; the parent takes its own next one
        os.write(write, new_message_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_message_id()


@pytest.mark.parametrize(
    "value",
    [
        {"text": "caf\u00e9 \U0001f600", "n": 1.5, "ok": True, "none": None},
        {"big": 2**70},  # beyond orjson's 64 bits: the standard encoder writes it
        {"t": "\udcff undecodable"},  # a surrogate-escaped byte: orjson refuses it, the standard encoder does not
        {1: "a non-text key"},
    ],
)
def test_dump_json_writes_what_the_standard_encoder_would_read_back(value):
    from memory.records.stored import dump_json, load_json

    text = dump_json(value)
    assert json.loads(text) == json.loads(json.dumps(value, ensure_ascii=False))
    if "t" not in value:  # (text with undecodable bytes is refused on read, by design)
        assert load_json(text) == json.loads(text)
