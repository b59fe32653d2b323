"""Long sessions cost what short ones do: nothing read again per turn for what a session has piled up."""

from __future__ import annotations

from memory.llm.base import ExtractedFact
from memory.records.messages import Message, Role
from memory.stores.fact_index import FactIndex
from memory.stores.fact_store import FactStore
from memory.stores.turn_store import TurnStore


def test_many_superseded_statements_do_not_reload_the_users_facts_on_every_search(lab, monkeypatch):
    """A superseded statement used to stay in the cache as a tombstone: past 64 of them (more than the live
    facts), every search read all the user's facts from the vector store again."""
    for i in range(150):  # statements in the user's words: each move supersedes the one before (149 superseded)
        said = Message(Role.USER, f"I moved to City{i} last month.")
        facts, _ = lab.llm.extract_facts([said])
        lab.facts.remember("alice", "s1", facts, job=said.id)
    other = FactStore(lab.vectors, lab.embed, lab.redis, lab.keys, index=FactIndex(lab.vectors, lab.redis, lab.keys))
    vector = lab.embed(["where does the user live?"])[0]
    assert [h.text for h, _ in other.search("alice", vector, 3)] == ["You moved to City149 last month."]
    reads: list[object] = []
    original = lab.vectors.get
    monkeypatch.setattr(lab.vectors, "get", lambda *a, **k: reads.append(k) or original(*a, **k))
    assert [h.text for h, _ in other.search("alice", vector, 3)] == ["You moved to City149 last month."]
    assert reads == [], "nothing changed: nothing read"
    lab.facts.remember("alice", "s1", [ExtractedFact("The user lives in Lima.", "location")])
    assert [h.text for h, _ in other.search("alice", vector, 3)] == ["The user lives in Lima."]
    assert all(k.get("ids") is not None for k in reads), "only the changed facts were fetched"


def test_a_turn_added_to_a_session_does_not_reload_the_users_turns_for_a_search_that_leaves_it_out(lab, monkeypatch):
    """Each turn's upkeep indexes it, which changed the user's turns token: the next turn's search (which
    leaves its own session out) read and re-indexed every turn of the user again, a cost growing with them."""
    lab.turns.add("alice", "old", [("t1", "User: I went hiking in the Alps.", 0, 1.0)])
    vector = lab.embed(["hiking"])[0]
    assert [h.id for h in lab.turns.search_turns("alice", "hiking", vector, 3, exclude_session="now")] == ["t1"]
    reads: list[object] = []
    original = lab.vectors.get
    monkeypatch.setattr(lab.vectors, "get", lambda *a, **k: reads.append(k) or original(*a, **k))
    lab.turns.add("alice", "now", [("t2", "User: I went hiking in Peru too.", 0, 2.0)])
    assert [h.id for h in lab.turns.search_turns("alice", "hiking", vector, 3, exclude_session="now")] == ["t1"]
    assert reads == [], "only the session left out changed: nothing read"
    # any other search sees the new turn, and so does another process (its copy predates the change)
    assert {h.id for h in lab.turns.search_turns("alice", "hiking", vector, 3)} == {"t1", "t2"}
    assert reads
    other = TurnStore(lab.vectors, lab.embed, versions=lab.turns.versions)
    assert {h.id for h in other.search_turns("alice", "hiking", vector, 3, exclude_session="old")} == {"t2"}
    lab.turns.add("alice", "old", [("t3", "User: Hiking again, in Wales.", 1, 3.0)])  # another process's change
    assert {h.id for h in other.search_turns("alice", "hiking", vector, 3, exclude_session="now")} == {"t1", "t3"}
