"""Long sessions cost what short ones do: nothing read again per turn for what a session has piled up."""

from __future__ import annotations

from memory.fact_index import FactIndex
from memory.fact_store import FactStore
from memory.llm.base import ExtractedFact
from memory.messages import Message, Role


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
