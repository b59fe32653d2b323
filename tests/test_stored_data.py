"""Whatever is stored, readers decode it or report it as corrupt; nothing raises, nothing is lost.

Redis is shared: a bug, another program or a person with redis-cli can put
anything in any key. These tests put hostile values in every key kind a
session and a user have, through a raw client, and read them back through
the engine, the CLI and the pages.
"""

from __future__ import annotations

import json
import math

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.errors import StoredDataError
from memory.lab import MemoryLab
from memory.records.messages import CODEC_VERSION, Message, Role, encode
from memory.strategies import STRATEGIES

from .conftest import assert_one_line_error, run_cli

DEEP = "[" * 100_000 + "]" * 100_000


def message_json(**overrides: object) -> str:
    data = {"v": CODEC_VERSION, "id": "m-x", "role": "user", "content": "hi", "created_at": 1.0}
    data.update(overrides)
    return json.dumps(data, allow_nan=True)


HOSTILE = [
    DEEP,
    message_json(created_at=math.inf).replace("Infinity", "1e400"),
    message_json(created_at=math.nan),
    message_json(created_at=1e20),
    message_json(created_at=-5),
    message_json(content="\ud800"),
    message_json(v="![x](http://127.0.0.1:9/pixel.png)"),
    message_json(role="![x](http://127.0.0.1:9/pixel.png)"),
    b"\xff\xfe\x00garbage",
    "",
    "null",
    "1" * 5000,
]


@pytest.fixture()
def raw(raw_redis: redis.Redis) -> redis.Redis:
    return raw_redis


def plant(raw: redis.Redis, lab: MemoryLab, user: str, session: str, value: str | bytes) -> None:
    """``value`` into every key kind of the session and the user, each with its own Redis type."""
    k = lab.keys.session(user, session)
    u = lab.keys.user(user)
    raw.rpush(k.log, value)
    raw.rpush(k.buffer, value)
    raw.rpush(k.folds, value)
    raw.hset(k.traces, "m-bad", value)
    raw.hset(k.traces, value if value else b"empty", "{}")
    raw.sadd(k.ids, value)
    raw.set(k.summary, value)
    raw.rpush(u.fact_log, value)
    raw.zadd(u.sessions, {value or b"empty": 1e300})
    raw.zadd(u.expiries, {value or b"empty": math.inf})


def read_everything(lab: MemoryLab, user: str, session: str) -> int:
    """Every reader the pages and the CLI use; returns how many corrupt entries were reported."""
    log = lab.sessions.log(user, session)
    buffer = lab.sessions.buffer(user, session)
    folds = lab.sessions.folds(user, session)
    traces = lab.sessions.traces(user, session)
    facts = lab.facts.history(user)
    lab.sessions.summary(user, session)
    lab.sessions.sessions(user)
    from memory.inspection.key_browser import KeyInspector

    inspector = KeyInspector(lab.redis, lab.keys)
    for row in inspector.scan_page(f"{lab.keys.prefix}:*", 0, 100).rows:
        json.dumps(inspector.contents(row.key))  # displayable: no surrogates, no inf
    return sum(len(r.corrupt) for r in (log, buffer, folds, traces, facts))


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_every_reader_reports_hostile_entries_instead_of_raising(lab, raw, value):
    good = Message(Role.USER, "I live in Berlin.")
    lab.sessions.append("alice", "s1", good)
    plant(raw, lab, "alice", "s1", value)
    assert read_everything(lab, "alice", "s1") >= 4
    assert lab.sessions.log("alice", "s1").messages == [good], "the good entry is still read"
    history = run_cli(
        "history", "--user", "alice", "--session", "s1", env={"REDIS_URL": lab.settings.redis_url, **_data(lab)}
    )
    assert history.code == 0 and "I live in Berlin." in history.out and "corrupt entry #1" in history.err


def _data(lab: MemoryLab) -> dict[str, str]:
    return {"MEMLAB_DATA_DIR": str(lab.settings.data_dir)}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_chat_turn_goes_through_hostile_entries_with_each_strategy(lab, raw, strategy):
    lab.chat("alice", "s1", "My name is Alice.", strategy=strategy)
    for value in HOSTILE:
        plant(raw, lab, "alice", "s1", value)
    config = lab.default_config().with_(summary_threshold=4, summary_keep=2)
    result = lab.chat("alice", "s1", "What is my name?", strategy=strategy, config=config)
    assert result.reply is not None and result.error is None
    assert [m.content for m in lab.sessions.log("alice", "s1").messages][-2] == "What is my name?"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    value=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.fixed_dictionaries(
            {"v": st.just(1), "id": st.text(max_size=5), "role": st.sampled_from(["user", "assistant", "tool", "x"])},
            optional={
                "content": st.text(max_size=20) | st.integers(),
                "created_at": st.floats() | st.integers() | st.text(max_size=3),
                "tool_call_id": st.none() | st.text(max_size=3),
                "model_id": st.none() | st.integers(),
            },
        ).map(lambda d: json.dumps(d, allow_nan=True).encode()),
    ),
    strategy=st.sampled_from(list(STRATEGIES)),
)
def test_property_any_bytes_in_any_key_kind_never_raise(lab, raw, value, strategy):
    raw.flushdb()
    plant(raw, lab, "alice", "s1", value)
    read_everything(lab, "alice", "s1")
    config = lab.default_config().with_(summary_threshold=3, summary_keep=1)
    result = lab.chat("alice", "s1", "I use Rust. What do I use?", strategy=strategy, config=config)
    assert result.reply is not None
    read_everything(lab, "alice", "s1")


def test_a_key_of_the_wrong_type_is_a_clear_error_naming_it(lab, raw):
    k = lab.keys.session("alice", "s1")
    raw.set(k.buffer, "a string where a list belongs")
    with pytest.raises(StoredDataError, match=r"buffer is a string, expected a list"):
        lab.chat("alice", "s1", "hello", strategy="buffer")
    run = run_cli(
        "chat", "--user", "alice", "--session", "s1", "hello", env={"REDIS_URL": lab.settings.redis_url, **_data(lab)}
    )
    assert_one_line_error(run, 4, "buffer is a string, expected a list")


def test_codec_refuses_to_write_what_it_could_not_read_back():
    for bad in (math.inf, math.nan, 1e20, -1.0):
        with pytest.raises(ValueError, match="plausible"):
            Message(Role.USER, "x", created_at=bad)
    with pytest.raises(ValueError, match="Unicode"):
        Message(Role.USER, "\udcff")
    assert encode(Message(Role.USER, "ok", id="a", created_at=0.0))
