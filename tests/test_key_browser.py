"""The key browser reads every key kind as a table or as text, with TTLs as people say them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory.errors import InputError
from memory.inspection.key_browser import KeyInspector
from memory.keys import ID_PATTERN, KEY_KINDS, SESSION_KINDS, USER_KINDS, Keys
from memory.presentation.format import human_duration, ttl_cell, when


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-1, "never expires"),
        (-2, "gone"),
        (0, "0 s"),
        (42, "42 s"),
        (3600, "1 h"),
        (3 * 3600 + 300, "3 h 5 min"),
        (7 * 86400 - 1, "6 d 23 h"),
        (7 * 86400, "7 d"),
    ],
)
def test_ttls_read_as_people_say_them(seconds, said):
    assert human_duration(seconds) == said


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(604800, "7 days"), (86400, "1 day"), (3600, "1 hour"), (5400, "1 hour 30 minutes"), (61, "1 minute 1 second")],
)
def test_a_ttl_setting_reads_in_words(seconds, said):
    assert human_duration(seconds, words=True) == said


def test_every_key_memory_lab_writes_is_a_kind_the_browser_explains(lab):
    """The page says what each kind holds and whether it expires; a kind missing here would be unexplained."""
    lab.chat("kim", "s1", "My name is Kim.", strategy="hybrid", wait_upkeep=True)
    session, user = lab.keys.session("kim", "s1"), lab.keys.user("kim")
    names = [*session.all(), *user.all(), user.forgotten, lab.keys.jobs, lab.keys.dead_letters]
    kinds = {(lab.keys.parse(n) or {}).get("kind") for n in names}
    assert kinds <= set(KEY_KINDS), kinds - set(KEY_KINDS)
    rows = KeyInspector(lab.redis, lab.keys).describe([n for n in names if lab.redis.exists(n)])
    assert rows and all(r.kind in KEY_KINDS for r in rows)
    for row in rows:  # what is kept by design is what has no TTL here
        assert (row.ttl == -1) == (not KEY_KINDS[row.kind].expires), (row.key, row.ttl)


def test_a_missing_ttl_is_marked_by_whether_its_kind_is_kept_by_design():
    assert ttl_cell("factlog", -1) == "∞ kept"  # long-term memory: no TTL by design
    assert ttl_cell("buffer", -1) == "⚠ never expires"  # a session key should expire
    assert ttl_cell("not-a-kind", -1) == "⚠ never expires"
    assert ttl_cell("buffer", 3600) == "1 h" and ttl_cell("buffer", -2) == "gone"


def test_scores_that_are_not_times_get_no_date():
    assert when(3.0) == "" and when(float("inf")) == "" and when(1796040000.0).startswith("2026-")


def test_every_key_kind_is_decoded_for_display(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="summary", wait_upkeep=True)
    k, u = lab.keys.session("alice", "s1"), lab.keys.user("alice")
    lab.redis.set(k.summary, "Alice lives in Oslo. She likes tea.")
    inspect = KeyInspector(lab.redis, lab.keys)

    summary = inspect.contents(k.summary)
    assert summary["text"] == "Alice lives in Oslo. She likes tea." and "json" not in summary
    meta = inspect.contents(k.meta)
    assert meta["json"]["strategy"] == "summary"
    traces = inspect.contents(k.traces)
    assert [r["format"] for r in traces["rows"]] == ["JSON"] and traces["rows"][0]["field"]
    sessions = inspect.contents(u.sessions)
    assert sessions["rows"][0]["member"] == "s1" and sessions["rows"][0]["as a time"].startswith("20")
    ids = inspect.contents(k.ids)
    assert len(ids["rows"]) == 2
    log = inspect.contents(k.log)
    assert [m["content"] for m in log["messages"]][0] == "My name is Alice." and log["messages"][0]["at"]
    lab.redis.xadd(f"{lab.keys.prefix}:events", {"job": '{"id": "x"}', "note": "plain"})
    stream = inspect.contents(f"{lab.keys.prefix}:events")
    assert stream["type"] == "stream" and stream["rows"][-1]["note"] == "plain"
    lab.redis.rpush(f"{lab.keys.prefix}:other", "text", '{"a": 1}')
    other = inspect.contents(f"{lab.keys.prefix}:other")
    assert [(r["value"], r["format"]) for r in other["rows"]] == [("text", "text"), ('{"a": 1}', "JSON")]


def test_the_memory_map_does_not_move_when_a_query_is_asked():
    import numpy as np

    from ui.pca import fit_2d, pca_2d

    rng = np.random.default_rng(5)
    memories = rng.standard_normal((12, 384)).astype(np.float32)
    query = rng.standard_normal(384).astype(np.float32)
    projection = fit_2d(memories)
    before = projection(memories)
    assert np.allclose(fit_2d(memories)(memories), before), "the same memories draw the same map"
    assert projection(query[None, :]).shape == (1, 2)
    assert np.allclose(pca_2d(memories), before)
    assert np.allclose(fit_2d(memories[::-1])(memories), before, atol=1e-4), "row order does not flip the axes"
    assert fit_2d(memories[:1])(memories[:1]).tolist() == [[0.0, 0.0]]


def test_memory_is_summed_by_key_kind_and_by_user(lab, raw_redis):
    lab.chat("alice", "s1", "My name is Alice.", strategy="buffer", wait_upkeep=True)
    lab.chat("bob", "s1", "My name is Bob. " + "I like long messages. " * 200, strategy="buffer", wait_upkeep=True)
    raw_redis.set("someone:else", "x" * 5000)
    inspect = KeyInspector(lab.redis, lab.keys)
    seen: list[tuple[int, int]] = []
    report = inspect.memory_report("*", progress=lambda done, total: seen.append((done, total)))
    assert report.complete and report.keys == lab.redis.dbsize() and seen[-1][0] == seen[-1][1] == report.keys
    assert report.bytes == sum(b for _, b in report.by_kind.values()) == sum(b for _, b in report.by_user.values())
    assert report.by_user["bob"][1] > report.by_user["alice"][1] > 0
    assert report.by_kind["other"][0] >= 1 and report.by_kind["log"][0] == 2 and report.by_user["(none)"][0] >= 1
    assert report.top[0][1] == max(b for _, b in report.top)
    only_alice = inspect.memory_report("memlab:*{alice[:}]*")
    assert set(only_alice.by_user) == {"alice"}


def test_bulk_changes_only_the_keys_asked_for_and_only_memory_labs(lab, raw_redis):
    lab.chat("alice", "s1", "Hello", strategy="buffer", wait_upkeep=True)
    lab.chat("alice", "s2", "Hello again", strategy="buffer", wait_upkeep=True)
    raw_redis.set("someone:else", "keep me")
    inspect = KeyInspector(lab.redis, lab.keys)
    s1, complete = inspect.matching("memlab:s:{alice:s1}:*")
    assert complete and s1 and all("{alice:s1}" in k for k in s1)
    result = inspect.bulk(s1 + ["someone:else"], ttl_seconds=0)
    assert (result.changed, result.skipped) == (len(s1), 1)
    assert all(lab.redis.ttl(k) == -1 for k in s1) and raw_redis.get("someone:else") == b"keep me"
    assert inspect.bulk(s1, ttl_seconds=120).changed == len(s1) and all(0 < lab.redis.ttl(k) <= 120 for k in s1)
    assert inspect.bulk(s1).changed == len(s1)
    assert inspect.matching("memlab:s:{alice:s1}:*")[0] == [] and inspect.matching("memlab:s:{alice:s2}:*")[0]


@pytest.mark.parametrize(("size", "said"), [(0, "0 B"), (812, "812 B"), (4300, "4.2 KiB"), (1.5 * 2**20, "1.5 MiB")])
def test_sizes_read_as_people_say_them(size, said):
    from memory.presentation.format import human_bytes

    assert human_bytes(size) == said


FOREIGN_UNDER_OUR_PREFIX = [
    "memlab:other-app:cache:1",
    "memlab:u:{alice}:cache",  # another app reusing our user tag with a kind we never write
    "memlab:s:{alice:s1}:vectors",
    "memlab:s:{alice:s1}:log:backup",
    "memlab:u:{al ice}:sessions",  # an id we never build
    "memlab:s:{alice}:log",
    "memlab:jobs:archive",
]


def test_bulk_and_single_key_actions_change_only_names_keys_py_builds(lab, raw_redis):
    lab.chat("alice", "s1", "Hello", strategy="buffer")
    for name in FOREIGN_UNDER_OUR_PREFIX:
        raw_redis.set(name, b"keep me")
    inspect = KeyInspector(lab.redis, lab.keys)
    everything, complete = inspect.matching("memlab:*")
    ours = [n for n in everything if n not in FOREIGN_UNDER_OUR_PREFIX]
    assert complete and ours and set(everything) >= set(FOREIGN_UNDER_OUR_PREFIX)
    assert inspect.owned(everything) == ours
    assert inspect.bulk(everything, ttl_seconds=60).skipped == len(FOREIGN_UNDER_OUR_PREFIX)
    result = inspect.bulk(everything)
    assert (result.changed, result.skipped) == (len(ours), len(FOREIGN_UNDER_OUR_PREFIX))
    assert sorted(inspect.matching("memlab:*")[0]) == sorted(FOREIGN_UNDER_OUR_PREFIX)
    for name in FOREIGN_UNDER_OUR_PREFIX:
        assert raw_redis.get(name) == b"keep me" and raw_redis.ttl(name) == -1
        with pytest.raises(InputError, match="not a key Memory Lab builds"):
            inspect.delete(name)
        with pytest.raises(InputError, match="not a key Memory Lab builds"):
            inspect.set_ttl(name, 10)
    assert raw_redis.get("memlab:other-app:cache:1") == b"keep me"


_ids = st.one_of(st.from_regex(ID_PATTERN, fullmatch=True), st.text(max_size=12))
_kinds = st.one_of(st.sampled_from(sorted(SESSION_KINDS | USER_KINDS)), st.text(max_size=10))
_names = st.one_of(
    st.builds(lambda u, s, k: f"memlab:s:{{{u}:{s}}}:{k}", _ids, _ids, _kinds),
    st.builds(lambda u, k: f"memlab:u:{{{u}}}:{k}", _ids, _kinds),
    st.text(max_size=40).map(lambda t: "memlab:" + t),
)


@given(_names)
def test_only_names_keys_py_builds_parse_as_ours(name):
    keys = Keys("memlab")
    parts = keys.parse(name)
    if parts is None:
        return
    if "session_id" in parts:
        assert name in keys.session(parts["user_id"], parts["session_id"]).types()
    elif "user_id" in parts:
        user = keys.user(parts["user_id"])
        assert name in [*user.all(), user.forgotten]
    else:
        assert name in (keys.jobs, keys.dead_letters)


def test_every_key_keys_py_builds_parses_as_ours():
    keys = Keys("memlab")
    user = keys.user("alice")
    for name in [*keys.session("alice", "s1").all(), *user.all(), user.forgotten, keys.jobs, keys.dead_letters]:
        assert keys.owns(name), name
