"""Episodes: past sessions recalled by similarity; the current one left out."""

from __future__ import annotations

import pytest


@pytest.fixture()
def lab(vector_lab):  # every test here runs on the embedded Chroma and on a Chroma server
    return vector_lab


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


def test_a_recalled_turn_says_which_of_its_words_were_related_to_the_question(lab):
    lab.chat("carol", "dojo", "I started taekwondo lessons last week.", strategy="episodic")
    lab.chat("carol", "home", "My sister is visiting in May.", strategy="episodic")
    result = lab.chat("carol", "now", "Which martial arts have I practised?", strategy="episodic")
    turns = {i.text: i for i in result.trace.retrieved if i.kind == "turn"}
    first = result.trace.retrieved[[i.kind for i in result.trace.retrieved].index("turn")]
    assert first.text == "User: I started taekwondo lessons last week."
    assert first.source["related words"] == "taekwondo"
    assert "related words" not in turns["User: My sister is visiting in May."].source
    # The trace keeps it through Redis, and the CLI's trace shows it.
    from memory.tools.cli import render_trace

    (_, stored), *_ = [t for t in lab.sessions.traces("carol", "now").items if t[1].retrieved]
    assert any(i.source.get("related words") == "taekwondo" for i in stored.retrieved)
    assert "[related words: taekwondo]" in render_trace(result.trace)


def test_episodes_are_filtered_by_user(lab):
    lab.chat("alice", "trip", "I am planning a hiking trip to the Alps.", strategy="episodic")
    result = lab.chat("bob", "now", "Where was I planning to go hiking?", strategy="episodic")
    assert result.trace.retrieved == []


def test_turn_rankings_check_a_token_not_a_count_and_follow_other_processes(lab, monkeypatch):
    """Counting a user's turns in Chroma reads every id; a Redis token says whether they changed."""
    from memory.stores.turn_store import TurnStore

    other = TurnStore(lab.vectors, lab.embed, versions=lab.turns.versions)  # another app replica
    lab.turns.add("alice", "s1", [("t1", "User: I went hiking in the Alps.", 0, 1.0)])
    vector = lab.embed(["hiking"])[0]
    assert [h.id for h in other.search_turns("alice", "hiking", vector, 3)] == ["t1"]
    monkeypatch.setattr(lab.vectors, "count", lambda *a, **k: (_ for _ in ()).throw(AssertionError("count read")))
    assert [h.id for h in other.search_turns("alice", "hiking", vector, 3)] == ["t1"]  # cached: one GET
    lab.turns.add("alice", "s2", [("t2", "User: I went hiking in Peru too.", 0, 2.0)])
    assert {h.id for h in other.search_turns("alice", "hiking", vector, 3)} == {"t1", "t2"}
    monkeypatch.undo()
    lab.forget_user("alice")
    assert other.search_turns("alice", "hiking", vector, 3) == []


def test_episode_search_never_counts_the_users_episodes(lab, monkeypatch):
    """Counting reads every matching id: a per-query count grows with the user's memory."""
    lab.chat("alice", "trip", "I am planning a hiking trip to the Alps.", strategy="episodic", wait_upkeep=True)
    lab.chat("alice", "home", "My name is Alice.", strategy="episodic", wait_upkeep=True)
    counted: list[object] = []
    real_count = lab.vectors.count
    monkeypatch.setattr(lab.vectors, "count", lambda *a, **kw: counted.append(a) or real_count(*a, **kw))
    vector = lab.embed(["hiking"])[0]
    hits = lab.episodes.search("alice", vector, 10, exclude_session="home")
    assert [h.metadata["session_id"] for h in hits] == ["trip"] and counted == []
    assert lab.episodes.search("nobody", vector, 10) == []
