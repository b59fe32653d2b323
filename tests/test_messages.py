"""Typed messages and the versioned codec, round-tripped through a real Redis."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.keys import Keys
from memory.messages import CODEC_VERSION, Message, MessageDecodeError, Role, decode, encode
from memory.session_store import SessionStore

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
