"""Episodes: past sessions recalled by similarity; the current one left out."""

from __future__ import annotations


def test_past_sessions_are_recalled_and_point_back_to_their_transcript(lab):
    lab.chat("alice", "trip", "I am planning a hiking trip to the Alps in July.", strategy="episodic")
    lab.chat("alice", "code", "I have a bug in my Rust parser with lifetimes.", strategy="episodic")
    result = lab.chat("alice", "now", "Where was I planning to go hiking?", strategy="episodic")
    items = [i for i in result.trace.retrieved if i.kind == "episode"]
    assert items
    assert items[0].source["session_id"] == "trip"
    assert items[0].source["log_key"] == lab.keys.session("alice", "trip").log
    assert all(i.source["session_id"] != "now" for i in items)
    assert "Alps" in result.trace.system_prompt
    assert "Alps" in result.reply.content
    turns = [i for i in result.trace.retrieved if i.kind == "turn"]
    assert turns[0].text == "User: I am planning a hiking trip to the Alps in July."
    assert turns[0].source["session_id"] == "trip"


def test_episodes_are_filtered_by_user(lab):
    lab.chat("alice", "trip", "I am planning a hiking trip to the Alps.", strategy="episodic")
    result = lab.chat("bob", "now", "Where was I planning to go hiking?", strategy="episodic")
    assert result.trace.retrieved == []
