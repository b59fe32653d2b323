"""Hybrid: buffer, summary, facts and episodes inside one token budget."""

from __future__ import annotations

import pytest

from memory.records.tokens import count_tokens


@pytest.fixture()
def lab(vector_lab):  # every test here runs on the embedded Chroma and on a Chroma server
    return vector_lab


def test_hybrid_combines_every_memory(lab):
    config = lab.default_config().with_(summary_threshold=4, summary_keep=2)
    lab.chat("alice", "old", "I am planning a hiking trip to the Alps.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "My name is Alice.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "I use Python every day.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "The weather is nice today.", strategy="hybrid", config=config)
    lab.wait_for_upkeep("alice")  # the session's own fold: the next turn no longer waits for it (turn.py)
    result = lab.chat("alice", "s1", "What is my name and where am I hiking?", strategy="hybrid", config=config)
    names = {p.name for p in result.trace.system_parts}
    assert {"instructions", "facts", "summary", "episodes"} <= names
    kinds = {i.kind for i in result.trace.retrieved}
    assert kinds == {"fact", "episode", "turn"}
    assert "Alice" in result.trace.system_prompt and "Alps" in result.trace.system_prompt


def test_hybrid_stays_within_its_token_budget(lab):
    config = lab.default_config().with_(token_budget=150, summary_threshold=40, summary_keep=2)
    for i in range(8):
        lab.chat(
            "bob",
            "s1",
            f"Long statement {i}: " + "the quick brown fox jumps over the lazy dog " * 3,
            strategy="hybrid",
            config=config,
        )
    result = lab.chat("bob", "s1", "What did I say?", strategy="hybrid", config=config)
    trace = result.trace
    total = sum(p.tokens for p in trace.system_parts) + sum(count_tokens(m["content"]) for m in trace.messages)
    assert total <= 150
    assert trace.dropped, "older messages should have been left out"
    assert trace.messages[-1]["content"] == "What did I say?"


def test_one_query_over_facts_and_episodes_ranks_both_on_cosine(lab):
    lab.chat("dana", "trip", "I am planning a hiking trip to the Alps.", strategy="hybrid")
    lab.chat("dana", "s1", "My name is Dana. I live in Lisbon.", strategy="hybrid", wait_upkeep=True)
    vector, hits = lab.search_memories("dana", "Where do I live?", 4)
    assert vector.shape == (384,) and 0 < len(hits) <= 4
    assert {h.kind for h in hits} == {"fact", "episode"}
    similarities = [h.hit.similarity for h in hits]
    assert similarities == sorted(similarities, reverse=True)
    assert "Lisbon" in hits[0].hit.text
    assert all((h.strategy_rank is None) == (h.kind == "episode") for h in hits)
    assert lab.search_memories("nobody", "Where do I live?", 4)[1] == []


def test_hybrid_keeps_its_budget_with_every_kind_of_memory(lab):
    """Headers and session tags are sent too: at any budget the whole context fits (it once read 2,012 of 2,000)."""
    config = lab.default_config().with_(summary_threshold=4, summary_keep=2)
    said = [
        ("trip", "I am planning a hiking trip to the Alps with my sister in June."),
        ("trip", "We will stay in a mountain hut above Zermatt for a week."),
        ("work", "I work at Spotify as a platform engineer and write Rust all day."),
        ("work", "My team is moving the billing services to Kubernetes this quarter."),
        ("home", "My name is Erin and I live in Stockholm with my cat Miso."),
        ("home", "I moved here from Gothenburg last spring."),
    ]
    for session, text in said:
        lab.chat("erin", session, text, strategy="hybrid", config=config, wait_upkeep=True)
    for text in ("The coffee here is good.", "I read a book about birds.", "It rained all day.", "I like jazz."):
        lab.chat("erin", "now", text, strategy="hybrid", config=config, wait_upkeep=True)
    seen: set[str] = set()
    for budget in range(150, 600, 30):
        result = lab.chat(
            "erin", "now", "Where do I live, where do I work and where am I hiking?",
            strategy="hybrid", config=config.with_(token_budget=budget),
        )  # fmt: skip
        trace = result.trace
        assert trace.total_tokens <= budget, (budget, trace.tokens)
        seen |= {name for name, count in trace.tokens.items() if count}
    assert {"facts", "summary", "episodes", "past turns", "messages"} <= seen
