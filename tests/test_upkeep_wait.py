"""A turn waits only for the upkeep its context needs: a long message's upkeep no longer holds the next one."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from memory.backends.embedder import get_embedder
from memory.lab import MemoryLab


@pytest.fixture
def queued_lab(settings):
    """No worker: every job stays pending, so a turn that waits for one says so in its trace."""
    lab = MemoryLab(replace(settings, upkeep_mode="external", upkeep_wait_s=0.3))
    yield lab
    lab.close()


@pytest.mark.parametrize("strategy", ["hybrid", "episodic", "summary"])
def test_the_next_message_of_a_session_does_not_wait_for_its_own_upkeep(queued_lab, strategy):
    first = queued_lab.chat("alice", "s1", "I moved to Lisbon and I work as a nurse. " * 40, strategy=strategy)
    second = queued_lab.chat("alice", "s1", "Where do I live?", strategy=strategy)
    assert queued_lab.upkeep.pending("alice") == [first.reply.id, second.reply.id]
    assert "upkeep.wait" not in second.trace.timings_ms and "pending_before" not in second.trace.job
    if strategy != "episodic":  # the context holds the long message itself, not yet folded or extracted
        assert first.user_message.content in [m["content"] for m in second.trace.messages]


@pytest.mark.parametrize("strategy", ["hybrid", "episodic"])
def test_another_sessions_upkeep_is_still_waited_for(queued_lab, strategy):
    first = queued_lab.chat("alice", "s1", "I moved to Lisbon.", strategy=strategy)
    queued_lab.chat("alice", "s2", "Hello again", strategy=strategy)  # its own job is pending too
    third = queued_lab.chat("alice", "s2", "Where do I live?", strategy=strategy)
    assert third.trace.job["pending_before"] == [first.reply.id]  # s1's job only, not s2's own
    assert any("memory still updating" in w for w in third.trace.warnings)


def test_the_facts_strategy_waits_for_its_own_sessions_jobs_only_until_their_facts_are_written(queued_lab):
    """Its context is the facts alone: the turn index and the episode the rest of the job writes serve other
    sessions (a long message's took seconds more)."""
    first = queued_lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
    facts, _ = queued_lab.llm.extract_facts([first.user_message])
    queued_lab.facts.remember("alice", "s1", facts, job=first.reply.id)  # the job's first step, as a worker does it
    second = queued_lab.chat("alice", "s1", "What is my name?", strategy="facts")
    assert queued_lab.upkeep.pending("alice") == [first.reply.id, second.reply.id]  # the job itself is not done
    assert "pending_before" not in second.trace.job and not second.trace.warnings
    assert "Alice" in second.reply.content
    third = queued_lab.chat("alice", "s1", "And what else?", strategy="facts")  # the second job wrote no facts yet
    assert third.trace.job["pending_before"] == [second.reply.id]


def test_a_query_embeds_beside_a_long_batch_with_the_same_vectors():
    """The embedder used to hold one lock for a whole call: the next turn's query waited for an upkeep batch."""
    embedder = get_embedder()
    texts = [f"Sentence number {i} says something about hiking, coffee and the city of Porto." for i in range(3000)]
    query = "Where do I like to go hiking?"
    alone = embedder.embed([query])[0]
    bulk: dict[str, np.ndarray] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        bulk["vectors"] = embedder.embed(texts)

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    time.sleep(0.2)  # let the batch get going (not a timing check: the assertion is about order)
    beside = embedder.embed([query])[0]
    bulk_still_running = thread.is_alive()
    thread.join()
    assert bulk_still_running  # the query came back before the batch did
    assert np.allclose(beside, alone, atol=1e-5)
    assert np.allclose(bulk["vectors"][:5], embedder.embed(texts[:5]), atol=1e-5)
