"""Long-term facts: extracted, deduplicated, updated by slot, always filtered by user."""

from __future__ import annotations

import numpy as np
import pytest

from memory.llm.base import ExtractedFact
from memory.llm.rules import facts_from_text


@pytest.fixture()
def lab(vector_lab):  # every test here runs on the embedded Chroma and on a Chroma server
    return vector_lab


def test_rules_find_the_users_own_statements_and_skip_questions():
    found = dict(facts_from_text("My name is Alice. I use Python and we run Kubernetes. What is my job?"))
    assert found == {
        "The user's name is Alice.": "name",
        "The user codes in Python.": "language",
        "The user's team uses Kubernetes.": None,
    }
    assert facts_from_text("What is my name?") == []
    assert dict(facts_from_text("My name is Alice and I live in Berlin.")) == {
        "The user's name is Alice.": "name",
        "The user lives in Berlin.": "location",
    }
    assert facts_from_text("my name is Mary Jane Watson")[0][0] == "The user's name is Mary Jane Watson."


def test_offline_answer_quotes_only_the_asked_clause(lab):
    lab.chat("zoe", "s1", "My name is Zoe and I live in Oslo.", strategy="buffer")
    reply = lab.chat("zoe", "s1", "What is my name?", strategy="buffer").reply.content
    assert reply.startswith("Your name is Zoe.")


def test_facts_are_extracted_and_recalled_with_cosine_scores(lab):
    lab.chat("alice", "s1", "My name is Alice. I live in Berlin.", strategy="facts")
    result = lab.chat("alice", "s2", "What is my name?", strategy="facts")
    items = result.trace.retrieved
    assert items and items[0].kind == "fact" and "Alice" in items[0].text
    assert abs(items[0].similarity + items[0].distance - 1.0) < 1e-3
    assert items == sorted(items, key=lambda i: -(i.score or 0.0))
    assert "Alice" in result.trace.system_prompt and "Alice" in result.reply.content


def test_repeats_do_not_pile_up_and_slots_update(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
    lab.chat("alice", "s2", "I use Python.", strategy="facts")
    lab.chat("alice", "s2", "I use Python.", strategy="facts", wait_upkeep=True)
    assert sorted(r.text for r in lab.facts.all("alice")) == ["You use Python.", "Your name is Alice."]
    lab.chat("alice", "s3", "Actually, call me Ally.", strategy="facts", wait_upkeep=True)
    texts = [r.text for r in lab.facts.all("alice")]
    assert "Your name is Ally." in texts and "Your name is Alice." not in texts
    assert "Your name is Alice." in [r.text for r in lab.facts.all("alice", superseded=True)], "kept, superseded"
    events = [e.event for e in lab.facts.history("alice").items]
    assert events == ["ADD", "DUPLICATE", "ADD", "DUPLICATE", "ADD", "SUPERSEDE"]


def test_near_duplicate_by_similarity_is_merged(lab):
    store = lab.facts
    store.remember("bob", "s1", [ExtractedFact("The user likes strong black coffee.", None, ("m1",))])
    events = store.remember("bob", "s1", [ExtractedFact("The user likes strong black coffee!", None, ("m2",))])
    assert events[0].event == "DUPLICATE" and events[0].similarity >= 0.9
    [record] = store.all("bob")
    assert '"m1"' in record.metadata["source_ids"] and '"m2"' in record.metadata["source_ids"]


def test_facts_never_leak_across_users(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
    result = lab.chat("mallory", "s1", "What is my name?", strategy="facts")
    assert result.trace.retrieved == []
    assert "Alice" not in result.reply.content


def test_forget_user_removes_redis_keys_and_chroma_records(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="hybrid")
    lab.chat("bob", "s1", "My name is Bob.", strategy="hybrid", wait_upkeep=True)
    report = lab.forget_user("alice")
    counts = report.counts
    assert report.ok, report.errors
    assert counts["facts"] == 1 and counts["episodes"] == 1 and counts["redis_keys"] >= 4 and counts["turns"] == 1
    assert lab.facts.all("alice") == [] and lab.episodes.all("alice") == []
    # Only the marker that makes workers drop alice's older jobs is left: a stream id, no content.
    assert list(lab.redis.scan_iter(match="memlab:*alice*")) == [lab.keys.user("alice").forgotten]
    assert lab.redis.get(lab.keys.user("alice").forgotten).count("-") == 1
    assert [r.text for r in lab.facts.all("bob")] == ["Your name is Bob."]


def _full_read_search(lab, user_id, vector, k, query):  # type: ignore[no-untyped-def]
    """The search as it was: every fact of the user from Chroma, BM25 rebuilt, fused (the reference)."""
    from memory.backends.filters import where_user
    from memory.backends.vector_store import FACTS
    from memory.retrieval import Candidate, CandidateIndex

    n = lab.vectors.count(FACTS, where_user(user_id))
    hits = lab.vectors.query(FACTS, vector, n, where_user(user_id))
    scores = CandidateIndex([Candidate(h.id, h.text) for h in hits], use_neighbours=False).rank(
        query, np.array([h.similarity for h in hits])
    )
    return [hits[i].id for i in np.argsort(-scores, kind="stable")[:k]]


def test_search_from_the_cache_ranks_as_a_full_read_did(lab):
    rng = np.random.default_rng(7)
    topics = ["hiking", "Rust", "coffee", "Berlin", "piano", "cats", "chess", "sushi", "Kyoto", "marathons"]
    verbs = ["likes", "talks about", "plans", "remembers", "dislikes"]
    facts = [
        ExtractedFact(f"The user {verbs[i % 5]} {topics[rng.integers(10)]} and {topics[rng.integers(10)]} (note {i}).")
        for i in range(300)
    ]
    lab.facts.remember("alice", "s1", facts[:150])
    lab.facts.remember("alice", "s2", facts[150:])
    lab.facts.remember("bob", "s1", facts[:20])  # another user's facts never show
    lab.facts.delete("alice", lab.facts.all("alice")[3].id)
    queries = [f"what does the user think about {t}?" for t in topics] + ["marathons in Kyoto", "coffee and chess"]
    for query in queries:
        vector = lab.embed([query])[0]
        ours = [h.id for h, _ in lab.facts.search("alice", vector, 5, query_text=query)]
        assert ours == _full_read_search(lab, "alice", vector, 5, query), query


def test_another_process_sees_fact_changes_without_reading_them_all(lab, monkeypatch):
    """Two stores with their own caches (two app replicas): each change reaches the other through the fact log."""
    from memory.stores.fact_index import FactIndex
    from memory.stores.fact_store import FactStore

    other = FactStore(lab.vectors, lab.embed, lab.redis, lab.keys, index=FactIndex(lab.vectors, lab.redis, lab.keys))
    vector = lab.embed(["where does the user live?"])[0]
    assert other.search("alice", vector, 3) == []
    lab.facts.remember("alice", "s1", [ExtractedFact("The user lives in Oslo.", "location")])
    reads: list[object] = []
    original = lab.vectors.get
    monkeypatch.setattr(lab.vectors, "get", lambda *a, **k: reads.append(k) or original(*a, **k))
    assert [h.text for h, _ in other.search("alice", vector, 3)] == ["The user lives in Oslo."]
    assert [k.get("ids") is not None for k in reads] == [True], "only the changed fact was fetched"
    reads.clear()
    other.search("alice", vector, 3)
    assert reads == [], "nothing changed: nothing read"
    lab.facts.remember("alice", "s1", [ExtractedFact("The user lives in Lima.", "location")])
    assert [h.text for h, _ in other.search("alice", vector, 3)] == ["The user lives in Lima."]
    lab.forget_user("alice")
    assert other.search("alice", vector, 3) == []


def test_a_transient_server_read_error_is_read_again_and_a_write_never_is(tmp_path, monkeypatch):
    """chroma-core/chroma#4212: a read during a collection's first index build fails once, then works."""
    from chromadb.errors import InternalError

    from memory.backends.vector_store import FACTS, ChromaStore, Record
    from memory.errors import VectorStoreError

    store = ChromaStore(path=tmp_path / "chroma")
    collection = store.collection(FACTS)
    failures = {"get": 2, "upsert": 1}

    def flaky(name, real):
        def call(*args, **kwargs):
            if failures[name]:
                failures[name] -= 1
                raise InternalError("Error executing plan: Error creating hnsw segment reader: Nothing found on disk")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(collection, "get", flaky("get", collection.get))
    monkeypatch.setattr(collection, "upsert", flaky("upsert", collection.upsert))
    assert store.get(FACTS, where={"user_id": "x"}) == [] and failures["get"] == 0
    with pytest.raises(VectorStoreError, match="hnsw segment reader"):
        store.upsert(FACTS, [Record("a", "text", {"user_id": "x"})], np.ones((1, 384), dtype=np.float32))
    monkeypatch.setattr(collection, "get", flaky("get", collection.get))
    failures["get"] = 9
    with pytest.raises(VectorStoreError, match="hnsw segment reader"):
        store.get(FACTS, where={"user_id": "x"})
    assert failures["get"] == 5, "three pauses, four tries, then the error"


def test_a_users_vectors_stay_column_major_as_they_grow_and_scan_as_row_major_did():
    from memory.stores.fact_index import UserFacts

    rng = np.random.default_rng(3)
    raw = rng.standard_normal((40, 384)).astype(np.float32)
    facts = UserFacts()
    for i, vector in enumerate(raw):  # grows the matrix 16 → 32 → 64 rows
        facts.put(f"f{i}", f"fact {i}", {}, vector)
    facts.put("f5", "fact 5 again", {}, raw[7])  # a replaced row
    facts.drop("f9")
    assert facts.vectors.flags.f_contiguous  # the scan's layout (fact_index.py: why)
    query = rng.standard_normal(384).astype(np.float32)
    rows, cosines = facts.cosines(query)
    units = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    units[5] = units[7]
    expected = np.delete(units, 9, axis=0) @ (query / np.linalg.norm(query))
    assert list(rows) == [i for i in range(40) if i != 9]
    np.testing.assert_allclose(cosines, expected, rtol=1e-5, atol=1e-6)
