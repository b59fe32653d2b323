"""Upkeep off the reply path: two round trips a turn, jobs on a stream, workers that die, memory never going back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from memory.errors import BackendError
from memory.lab import MemoryLab
from memory.llm.base import ExtractedFact
from memory.records.messages import Message, Role
from memory.tools.bench import RoundTripCounter
from memory.upkeep.queue import GROUP
from memory.upkeep.worker import Worker

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_a_buffer_turn_is_two_round_trips(lab):
    lab.worker_autostart = False  # the turn's job is queued in its round trips; a worker's reads are not the turn's
    lab.chat("u1", "s1", "warm up: load the scripts and the model", strategy="buffer")
    with RoundTripCounter() as trips:  # the bench's counter: one send per command or pipeline
        result = lab.chat("u1", "s1", "My name is Alice.", strategy="buffer")
    assert trips.count == 2, trips.count
    assert [m["content"] for m in result.trace.messages][-1] == "My name is Alice."
    stored = [m.content for m in lab.sessions.log("u1", "s1").messages]
    assert stored[-2:] == ["My name is Alice.", result.reply.content]
    [(_, trace)] = [t for t in lab.sessions.traces("u1", "s1").items if t[0] == result.reply.id]
    assert trace.messages[-1]["content"] == "My name is Alice."
    assert lab.sessions.meta("u1", "s1")["strategy"] == "buffer"


def test_scripts_forgotten_by_the_server_are_loaded_again(lab):
    lab.chat("u1", "s1", "first", strategy="summary")
    lab.redis.script_flush()
    result = lab.chat("u1", "s1", "second", strategy="summary")
    assert [m["content"] for m in result.trace.messages][-1] == "second"
    assert len(lab.sessions.log("u1", "s1").messages) == 4


def test_the_next_turn_waits_for_the_users_earlier_upkeep(settings):
    lab = MemoryLab(replace(settings, upkeep_delay_s=0.4))
    try:
        first = lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        assert first.trace.job["status"] == "queued"
        second = lab.chat("alice", "s2", "What is my name?", strategy="facts")
        assert "Alice" in second.reply.content
        assert second.trace.timings_ms["upkeep.wait"] > 100 and "pending_before" not in second.trace.job
        outcome = dict(lab.sessions.traces("alice", "s1").items)[first.reply.id].job
        assert outcome["status"] == "done" and outcome["worker"]
    finally:
        lab.close()


def test_a_context_built_while_jobs_run_says_which_are_pending(settings):
    lab = MemoryLab(replace(settings, upkeep_mode="external", upkeep_wait_s=0.3))
    try:
        first = lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        second = lab.chat("alice", "s1", "What is my name?", strategy="facts")
        assert second.trace.job["pending_before"] == [first.reply.id]
        assert any("memory still updating" in w for w in second.trace.warnings)
        assert lab.upkeep.backlog()["queued"] == 2
        worker = Worker(lab, name="w-test", block_ms=50)
        assert worker.run_once() == 2 and worker.done == 2
        traces = dict(lab.sessions.traces("alice", "s1").items)
        assert traces[first.reply.id].job["status"] == "done"
        assert [e["event"] for e in traces[first.reply.id].upkeep["fact_events"]] == ["ADD"]
        assert lab.upkeep.pending("alice") == [] and lab.upkeep.backlog()["queued"] == 0
    finally:
        lab.close()


def test_a_job_that_runs_again_changes_nothing(lab):
    """At-least-once delivery: a replay, even after a crash between the Chroma write and the log, adds nothing."""
    facts = [ExtractedFact("The user's name is Alice.", "name", ("m1",)), ExtractedFact("The user likes tea.")]
    events = lab.facts.remember("alice", "s1", facts, job="turn-1")
    assert [e.event for e in events] == ["ADD", "ADD"]
    assert lab.facts.remember("alice", "s1", facts, job="turn-1") == []  # the log holds this job: skipped
    lab.redis.delete(lab.keys.user("alice").fact_log)  # as if the worker died before logging
    again = lab.facts.remember("alice", "s1", facts, job="turn-1")
    assert [e.event for e in again] == ["ADD", "ADD"] and {e.fact_id for e in again} == {e.fact_id for e in events}
    assert sorted(r.text for r in lab.facts.all("alice")) == ["The user likes tea.", "The user's name is Alice."]

    turn = [Message(Role.USER, "I went hiking in the Alps."), Message(Role.ASSISTANT, "Noted.")]
    key = lab.keys.session("alice", "s1").log
    lab.episodes.extend("alice", "s1", turn, lambda prev, new: prev + " " + new[0].content, key)
    lab.episodes.extend("alice", "s1", turn, lambda prev, new: prev + " " + new[0].content, key)
    [episode] = lab.episodes.all("alice")
    assert episode.metadata["n_messages"] == 2 and episode.text.count("Alps") == 1


def test_an_episode_costs_the_same_per_turn_however_long_the_session(lab):
    """The summariser sees the summary so far and the new turn, never the whole session."""
    seen: list[int] = []

    def summarize(previous: str, new: list[Message]) -> str:
        seen.append(len(new))
        return (previous + " " + new[0].content)[-300:]

    key = lab.keys.session("bob", "s1").log
    for i in range(30):
        turn = [Message(Role.USER, f"statement {i}"), Message(Role.ASSISTANT, "ok")]
        lab.episodes.extend("bob", "s1", turn, summarize, key)
    assert seen == [2] * 30
    assert lab.episodes.all("bob")[0].metadata["n_messages"] == 60


def _worker(env: dict[str, str], name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "memory", "worker", "--name", name, *extra],
        cwd=str(ROOT),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_job_loses_nothing_and_applies_it_once(settings, chroma_server):
    """Workers in other processes share a Chroma server (embedded Chroma belongs to one process)."""
    port, _ = chroma_server
    shared = replace(settings, upkeep_mode="external", chroma_host="127.0.0.1", chroma_port=port)
    lab = MemoryLab(shared)
    env = {
        "REDIS_URL": settings.redis_url or "",
        "MEMLAB_DATA_DIR": str(settings.data_dir),
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(port),
    }
    slow = _worker({**env, "MEMLAB_UPKEEP_DELAY": "120"}, "worker-a")
    rescuer: subprocess.Popen[str] | None = None
    try:
        result = lab.chat("alice", "s1", "My name is Alice and I live in Oslo.", strategy="facts")
        job_id = result.reply.id

        def taken_by_a():  # type: ignore[no-untyped-def]
            try:
                rows = lab.redis.xpending_range(lab.keys.jobs, GROUP, "-", "+", 10)
            except BackendError:  # no group until a worker has started
                return []
            return [r for r in rows if r["consumer"] == "worker-a"]

        _wait(taken_by_a, 90, "worker A to take the job")
        time.sleep(0.5)  # A is now inside the job (sleeping in it)
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
        assert lab.upkeep.outcome("alice", "s1", job_id) is None, "A died before finishing"
        rescuer = _worker({**env, "MEMLAB_UPKEEP_CLAIM": "1"}, "worker-b")
        outcome = _wait(lambda: lab.upkeep.outcome("alice", "s1", job_id), 90, "worker B to finish the job")
        assert outcome["status"] == "done" and outcome["worker"] == "worker-b"
        facts = sorted(r.text for r in lab.facts.all("alice"))
        assert facts == ["You live in Oslo.", "Your name is Alice."]
        assert [e.event for e in lab.facts.history("alice").items] == ["ADD", "ADD"]
        assert lab.redis.xpending(lab.keys.jobs, GROUP)["pending"] == 0 and lab.upkeep.pending("alice") == []
        answer = lab.chat("alice", "s2", "Where do I live?", strategy="facts")
        assert "Oslo" in answer.reply.content
    finally:
        for proc in (slow, rescuer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        lab.close()


def test_cli_chat_waits_for_its_upkeep_so_a_new_process_remembers(settings):
    env = {"REDIS_URL": settings.redis_url or "", "MEMLAB_DATA_DIR": str(settings.data_dir)}
    told = run_cli("chat", "--user", "alice", "--session", "s1", "--strategy", "facts", "My name is Alice.", env=env)
    assert told.code == 0, told.err
    asked = run_cli("chat", "--user", "alice", "--session", "s2", "--strategy", "facts", "What is my name?", env=env)
    assert asked.code == 0 and "Alice" in asked.out, (asked.out, asked.err)

    queued = run_cli(
        "chat", "--user", "bob", "--session", "s1", "--strategy", "facts", "--no-wait", "I live in Lima.", env=env
    )
    assert queued.code == 0, queued.err
    lab = MemoryLab(settings)
    try:
        assert len(lab.upkeep.pending("bob")) == 1
        done = run_cli("worker", "--once", env=env)
        assert done.code == 0 and "1 done" in done.out, (done.out, done.err)
        assert [r.text for r in lab.facts.all("bob")] == ["You live in Lima."]
    finally:
        lab.close()


def test_a_turn_survives_its_connection_being_dropped(lab, raw_redis):
    """The turn's round trips skip redis-py's pipeline; a dropped pooled connection is still retried once."""
    lab.chat("u1", "s1", "first", strategy="buffer")
    raw_redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    result = lab.chat("u1", "s1", "second", strategy="buffer")
    assert [m["content"] for m in result.trace.messages][-3:] == [
        "first",
        lab.sessions.log("u1", "s1").messages[1].content,
        "second",
    ]
    assert len(lab.sessions.log("u1", "s1").messages) == 4


def test_a_turns_upkeep_says_in_words_what_it_changed(lab):
    """The chat page shows this under each turn (the JSON is one click away)."""
    config = lab.default_config().with_(summary_threshold=2, summary_keep=1)
    lab.chat("ida", "s0", "I am planning a trip to Rome.", strategy="hybrid", config=config, wait_upkeep=True)
    first = lab.chat("ida", "s1", "I live in Oslo.", strategy="hybrid", config=config, wait_upkeep=True).trace
    assert first.upkeep_changes() == [
        "Facts: remembered “You live in Oslo.”",
        "No fold: the buffer is under its threshold.",
        "This session's episode summary now includes the turn.",
        "Your message is indexed for recall in later sessions.",
    ]
    second = lab.chat("ida", "s1", "I work at Equinor.", strategy="hybrid", config=config, wait_upkeep=True).trace
    assert "Folded 3 older message(s) into the summary (" in " ".join(second.upkeep_changes())
    moved = lab.chat("ida", "s1", "I moved to Bergen.", strategy="facts", wait_upkeep=True).trace
    assert moved.upkeep_changes()[0] == (
        "Facts: remembered “You moved to Bergen.”; replaced “You live in Oslo.” → “You moved to Bergen.”"
    )
    quiet = lab.chat("ida", "s1", "Nice weather.", strategy="facts", wait_upkeep=True).trace
    assert quiet.upkeep_changes()[0] == "No new facts in this turn."
    assert lab.chat("ida", "s1", "Hello.", strategy="buffer").trace.upkeep_changes() == []


def test_an_inline_upkeep_is_said_in_words_too(settings):
    lab = MemoryLab(replace(settings, upkeep_mode="inline"))
    try:
        trace = lab.chat("ida", "s1", "I live in Oslo.", strategy="hybrid").trace
        assert trace.job == {"status": "inline"}
        assert "This session's episode summary now includes the turn." in trace.upkeep_changes()
    finally:
        lab.close()
