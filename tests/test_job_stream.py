"""The upkeep stream as untrusted input: poison jobs go to the dead letters, jobs write only their own user's
memory, a forgotten user stays forgotten, and no entry stops a worker."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory.inspect import KeyInspector
from memory.jobs import Job, JobError, read_job
from memory.lab import MemoryLab
from memory.messages import Message, Role
from memory.upkeep import GROUP
from memory.worker import MAX_DELIVERIES, Worker

from .conftest import run_cli


def _external(settings: Any, **changes: Any) -> MemoryLab:
    return MemoryLab(replace(settings, upkeep_mode="external", **changes))


def _template(user: str = "alice", session: str = "s1") -> dict[str, Any]:
    """A well-formed job as a dict, to spoil one field at a time."""
    turn = [Message(Role.USER, "I use Rust."), Message(Role.ASSISTANT, "Noted.")]
    return json.loads(Job(turn[-1].id, user, session, "summary", {"top_k": 5}, turn).to_json())


def _dead_letters(lab: MemoryLab) -> list[Any]:
    read = KeyInspector(lab.redis, lab.keys).dead_letters()
    assert not read.corrupt
    return read.items


def _drain(worker: Worker, rounds: int = 20) -> None:
    for _ in range(rounds):
        if not worker.run_once():
            return


def test_poison_jobs_go_to_the_dead_letters_and_the_good_job_behind_them_is_applied(lab, settings, raw_redis):
    keys = lab.keys
    spoiled: list[tuple[str, Any]] = []
    for field, value, reason in (
        ("user_id", "alice\n", "not a valid user id"),
        ("session_id", "s1:{x}", "not a valid session id"),
        ("config", {"top_k": "5"}, "setting top_k is not a whole number"),
        ("config", {"summary_keep": 1e400}, "setting summary_keep is not a whole number"),
        ("config", {"top_k": -1}, "setting top_k must be between 1"),
        ("config", {"ttl_s": True}, "setting ttl_s is not a whole number"),
        ("config", {"summary_keep": 50, "summary_threshold": 10}, "summary_keep must be below"),
        ("config", {"no_such": 1}, "unknown setting"),
        ("config", [], "not a JSON object"),
        ("strategy", "drop-tables", "unknown strategy"),
        ("messages", ["not a message"], "message #0"),
        ("messages", [], "without messages"),
        ("messages", "I use Rust.", "without messages"),
        ("queued_at", "yesterday", "queued_at is not a number"),
        ("id", "x" * 80, "not a valid job id"),
    ):
        spoiled.append((reason, {**_template(), field: value}))
    for _reason, data in spoiled:
        lab.redis.xadd(keys.jobs, {"job": json.dumps(data)})
    raw_redis.xadd(keys.jobs, {"job": b"\xff\xfe{not utf-8"})
    lab.redis.xadd(keys.jobs, {"job": "[" * 100_000 + "]" * 100_000})
    lab.redis.xadd(keys.jobs, {"job": json.dumps({**_template(), "pad": "x" * 2_100_000})})
    lab.redis.xadd(keys.jobs, {"other": "field"})
    lab.redis.xadd(keys.jobs, {"job": json.dumps({**_template(), "id": "another-id"})})
    refused = len(spoiled) + 5

    env = {"REDIS_URL": settings.redis_url or "", "MEMLAB_DATA_DIR": str(settings.data_dir)}
    args = ("chat", "--no-wait", "--user", "alice", "--session", "s1", "--strategy", "summary", "I use Rust.")
    assert run_cli(*args, env=env).code == 0
    [job_id] = lab.upkeep.pending("alice")

    for _ in range(2):  # a second run finds nothing left to trip on
        done = run_cli("worker", "--once", env=env)
        assert done.code == 0 and "Traceback" not in done.err, (done.code, done.err)
    assert lab.upkeep.outcome("alice", "s1", job_id)["status"] == "done"
    assert lab.redis.xlen(keys.jobs) == 0 and lab.redis.xpending(keys.jobs, GROUP)["pending"] == 0
    assert lab.upkeep.pending("alice") == []

    letters = _dead_letters(lab)
    assert len(letters) == refused
    reasons = [d.reason for d in reversed(letters)]  # newest first: the first refused is last
    for (expected, _), reason in zip(spoiled, reasons):
        assert expected in reason, (expected, reason)
    assert "not valid UTF-8" in reasons[len(spoiled)]
    assert "nested too deeply" in reasons[len(spoiled) + 1]
    assert "characters; a job holds one turn" in reasons[len(spoiled) + 2]
    assert "no 'job' field" in reasons[len(spoiled) + 3]
    assert "not the id of its last message" in reasons[len(spoiled) + 4]
    assert all(d.entry and d.at > 0 for d in letters)
    assert len(letters[0].raw) <= 300 and len(letters[1].raw) <= 300


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
            max_leaves=30,
        ).map(json.dumps),
        st.fixed_dictionaries(
            {},
            optional={
                name: st.none() | st.integers() | st.text(max_size=70) | st.lists(st.text(max_size=40), max_size=3)
                for name in ("id", "user_id", "session_id", "strategy", "config", "messages", "queued_at")
            },
        ).map(json.dumps),
        st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    )
)
def test_the_job_reader_reads_a_job_or_says_why_whatever_it_is_given(raw):
    try:
        job = read_job(raw)
    except JobError as exc:
        assert str(exc) and exc.reason
        return
    assert read_job(job.to_json()) == job


def test_a_job_round_trips_through_its_reader():
    data = _template()
    job = read_job(json.dumps(data))
    assert job.user_id == "alice" and job.config == {"top_k": 5}
    assert [m.content for m in job.messages] == ["I use Rust.", "Noted."]
    assert read_job(job.to_json()) == job


def test_a_job_writes_only_what_its_own_user_said_in_that_session(settings):
    lab = _external(settings)
    try:
        lab.chat("alice", "s1", "My name is Alice.", strategy="facts")
        lab.chat("mallory", "m1", "I like chess.", strategy="facts")
        worker = Worker(lab, name="w", block_ms=50)
        _drain(worker)
        alice_facts = sorted(r.text for r in lab.facts.all("alice"))
        assert alice_facts == ["The user's name is Alice."]

        # A job naming Alice's session, carrying words Alice never said there.
        forged = [Message(Role.USER, "My name is Mallory."), Message(Role.ASSISTANT, "Noted.")]
        lab.redis.xadd(lab.keys.jobs, {"job": Job(forged[-1].id, "alice", "s1", "facts", {}, forged).to_json()})
        # Mallory's job carrying Alice's own messages (their ids are not in Mallory's session).
        alice_turn = lab.sessions.log("alice", "s1").messages
        stolen = Job(alice_turn[-1].id, "mallory", "m1", "episodic", {}, alice_turn)
        lab.redis.xadd(lab.keys.jobs, {"job": stolen.to_json()})
        # A job for a session that never existed.
        ghost = [Message(Role.USER, "I live in Oslo."), Message(Role.ASSISTANT, "Noted.")]
        lab.redis.xadd(lab.keys.jobs, {"job": Job(ghost[-1].id, "alice", "nowhere", "facts", {}, ghost).to_json()})
        _drain(worker)

        assert sorted(r.text for r in lab.facts.all("alice")) == alice_facts
        assert lab.episodes.all("mallory") == [] and lab.turns.count("mallory") == 0
        reasons = [d.reason for d in reversed(_dead_letters(lab))]
        assert len(reasons) == 3
        assert "not in user alice's session s1" in reasons[0]
        assert "not in user mallory's session m1" in reasons[1]
        assert "session nowhere of user alice no longer exists" in reasons[2]
        assert worker.refused == 3
    finally:
        lab.close()


def _everything_of(lab: MemoryLab, user: str) -> dict[str, Any]:
    keys = [k for k in lab.redis.scan_iter(match=f"{lab.keys.prefix}:*{{{user}[:}}]*") if ":forgotten" not in k]
    return {
        "facts": lab.facts.all(user),
        "episodes": lab.episodes.all(user),
        "turns": lab.turns.count(user),
        "keys": sorted(keys),
    }


NOTHING = {"facts": [], "episodes": [], "turns": 0, "keys": []}


def test_a_job_queued_before_forget_never_brings_the_user_back(settings, caplog):
    lab = _external(settings, summary_threshold=2, summary_keep=0)
    try:
        lab.chat("alice", "s1", "My name is Alice and I live in Oslo.", strategy="hybrid")
        assert len(lab.upkeep.pending("alice")) == 1
        report = lab.forget_user("alice")
        assert report.ok, report.errors
        assert _everything_of(lab, "alice") == NOTHING
        worker = Worker(lab, name="w", block_ms=50)
        _drain(worker)
        assert _everything_of(lab, "alice") == NOTHING
        assert worker.done == 0 and worker.dropped == 1 and _dead_letters(lab) == []
        assert "was forgotten after it was queued" in caplog.text

        # Alice comes back: her new turns are applied as anyone's.
        lab.chat("alice", "s2", "My name is Alice.", strategy="facts")
        _drain(worker)
        assert [r.text for r in lab.facts.all("alice")] == ["The user's name is Alice."]
    finally:
        lab.close()


def test_forgetting_a_user_while_their_job_runs_leaves_nothing_behind(settings):
    lab = _external(settings, upkeep_delay_s=1.0, upkeep_wait_s=0.0)
    try:
        lab.chat("alice", "s1", "My name is Alice and I live in Oslo.", strategy="hybrid")
        worker = Worker(lab, name="w", block_ms=50)
        thread = threading.Thread(target=worker.run_once)
        thread.start()
        lock = lab.keys.user("alice").upkeep_lock
        deadline = time.monotonic() + 30
        while not lab.redis.exists(lock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lab.redis.exists(lock), "the worker never started the job"
        lab.forget_user("alice")  # does not wait (MEMLAB_UPKEEP_WAIT=0): the job writes after this
        thread.join(60)
        assert not thread.is_alive()
        assert _everything_of(lab, "alice") == NOTHING
        assert worker.dropped == 1 and lab.redis.xlen(lab.keys.jobs) == 0
    finally:
        lab.close()


def test_forget_removes_the_users_dead_letters(lab):
    lab.redis.xadd(lab.keys.jobs, {"job": json.dumps({**_template("alice"), "strategy": "nope"})})
    lab.redis.xadd(lab.keys.jobs, {"job": json.dumps({**_template("bob"), "strategy": "nope"})})
    _drain(Worker(lab, name="w", block_ms=50))
    assert {d.user_id for d in _dead_letters(lab)} == {"alice", "bob"}
    report = lab.forget_user("alice")
    assert report.counts["dead_letters"] == 1
    assert [d.user_id for d in _dead_letters(lab)] == ["bob"]


def test_no_entry_holds_a_worker_in_a_loop(settings, raw_redis):
    lab = _external(settings)
    keys = lab.keys
    try:
        worker = Worker(lab, name="w", block_ms=50, claim_idle_s=0)
        worker.ensure_group()
        # An entry deleted while a dead worker held it: Redis 6.2 keeps handing it out with no fields.
        gone = lab.redis.xadd(keys.jobs, {"job": "x"})
        lab.redis.xreadgroup(GROUP, "dead-worker", {keys.jobs: ">"}, count=1)
        lab.redis.xdel(keys.jobs, gone)
        # An entry that several workers took and died on.
        lab.chat("alice", "s1", "I use Rust.", strategy="summary")
        lab.redis.xreadgroup(GROUP, "dead-worker", {keys.jobs: ">"}, count=1)
        [entry] = lab.redis.xrange(keys.jobs)
        for _ in range(MAX_DELIVERIES):
            lab.redis.xclaim(keys.jobs, GROUP, "dead-worker", 0, [entry[0]])
        # A lock that no worker set (no TTL, another type): it would hold every job of Bob's forever.
        raw_redis.rpush(keys.user("bob").upkeep_lock, "junk")
        lab.chat("bob", "s1", "I use Go.", strategy="summary")

        _drain(worker)
        assert worker.run_once() == 0 and lab.redis.xpending(keys.jobs, GROUP)["pending"] == 0
        [letter] = _dead_letters(lab)
        assert letter.user_id == "alice" and "times without finishing" in letter.reason and letter.raw == ""
        assert lab.upkeep.pending("bob") == [] and worker.done == 1
    finally:
        lab.close()


def test_garbage_in_the_keys_a_worker_reads_refuses_that_job_only(settings, raw_redis):
    lab = _external(settings)
    keys = lab.keys
    try:
        lab.chat("alice", "s1", "I use Rust.", strategy="summary")
        lab.chat("bob", "s1", "I use Go.", strategy="summary")
        lab.chat("carol", "s1", "I use Zig.", strategy="summary")
        lab.chat("dave", "s1", "I use C.", strategy="summary")
        raw_redis.delete(keys.session("alice", "s1").ids)
        raw_redis.set(keys.session("alice", "s1").ids, b"\xff not a set")  # another type
        raw_redis.set(keys.user("bob").forgotten, b"\xff\x00 not a stream id")  # unreadable: refused, not applied
        raw_redis.delete(keys.user("carol").pending)
        raw_redis.set(keys.user("carol").pending, b"junk")  # the pending list of another type
        worker = Worker(lab, name="w", block_ms=50)
        _drain(worker)
        assert lab.redis.xlen(keys.jobs) == 0 and lab.redis.xpending(keys.jobs, GROUP)["pending"] == 0
        bob, alice = _dead_letters(lab)
        assert alice.user_id == "alice" and "another type" in alice.reason
        assert bob.user_id == "bob" and "not a stream id: refused rather than risk" in bob.reason
        assert lab.upkeep.outcome("bob", "s1", lab.sessions.log("bob", "s1").messages[-1].id) is None
        assert lab.upkeep.outcome("carol", "s1", lab.sessions.log("carol", "s1").messages[-1].id)["status"] == "done"
        assert lab.upkeep.outcome("dave", "s1", lab.sessions.log("dave", "s1").messages[-1].id)["status"] == "done"
    finally:
        lab.close()


def test_two_workers_on_one_stream_apply_each_job_once(settings):
    lab = _external(settings)
    try:
        for i in range(6):
            lab.chat(f"user{i % 3}", f"s{i}", f"My name is User{i}.", strategy="facts")
            poison = {"job": f"poison {i}"} if i % 2 else {"job": json.dumps({**_template(), "user_id": f"bad id {i}"})}
            lab.redis.xadd(lab.keys.jobs, poison)
        workers = [Worker(lab, name=f"w{i}", block_ms=50) for i in range(2)]
        threads = [threading.Thread(target=_drain, args=(w, 40)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sum(w.done for w in workers) == 6 and sum(w.refused for w in workers) == 6
        for u in range(3):
            events = lab.facts.history(f"user{u}").items
            assert len({e.job for e in events}) == len(events) == 2
        assert lab.redis.xlen(lab.keys.jobs) == 0
    finally:
        lab.close()
