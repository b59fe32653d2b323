"""Hybrid: buffer, summary, facts and episodes inside one token budget."""

from __future__ import annotations

from memory.tokens import count_tokens


def test_hybrid_combines_every_memory(lab):
    config = lab.default_config().with_(summary_threshold=4, summary_keep=2)
    lab.chat("alice", "old", "I am planning a hiking trip to the Alps.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "My name is Alice.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "I use Python every day.", strategy="hybrid", config=config)
    lab.chat("alice", "s1", "The weather is nice today.", strategy="hybrid", config=config)
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
