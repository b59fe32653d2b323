"""The upkeep stream as untrusted input: poison jobs go to the dead letters, jobs write only their own user's
memory, a forgotten user stays forgotten, and no entry stops a worker."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory.inspection.key_browser import KeyInspector
from memory.lab import MemoryLab
from memory.records.messages import Message, Role
from memory.upkeep.jobs import Job, JobError, read_job
from memory.upkeep.queue import GROUP
from memory.upkeep.worker import MAX_DELIVERIES, Worker

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
        assert alice_facts == ["Your name is Alice."]
        mallory_memory = (lab.episodes.all("mallory"), lab.turns.count("mallory"))  # from her own turn

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
        assert (lab.episodes.all("mallory"), lab.turns.count("mallory")) == mallory_memory, "nothing of Alice's"
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
        assert [r.text for r in lab.facts.all("alice")] == ["Your name is Alice."]
    finally:
        lab.close()


class _Started(Worker):
    """A real worker that says when it has admitted a job and begun applying it (MEMLAB_UPKEEP_DELAY follows)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()

    def _run_strategy(self, job: Job, waited_ms: float) -> dict[str, Any]:
        self.started.set()
        return super()._run_strategy(job, waited_ms)


def test_forgetting_a_user_while_their_job_runs_leaves_nothing_behind(settings):
    lab = _external(settings, upkeep_delay_s=1.0, upkeep_wait_s=0.0)
    try:
        lab.chat("alice", "s1", "My name is Alice and I live in Oslo.", strategy="hybrid")
        worker = _Started(lab, name="w", block_ms=50)
        thread = threading.Thread(target=worker.run_once)
        thread.start()
        assert worker.started.wait(30), "the worker never started the job"
        lab.forget_user("alice")  # does not wait (MEMLAB_UPKEEP_WAIT=0): the job writes after this
        thread.join(60)
        assert not thread.is_alive()
        assert _everything_of(lab, "alice") == NOTHING
        assert worker.dropped == 1 and lab.redis.xlen(lab.keys.jobs) == 0
        # The audit rows the job wrote after the forget (its fact additions) keep nothing of what Alice said.
        rows = lab.audit.query(user_id="alice")
        assert {"fact_add", "user_forgotten"} <= {r.action for r in rows}
        assert [
            (r.action, r.content, r.details) for r in rows if r.content or r.action != "user_forgotten" and r.details
        ] == []
    finally:
        lab.close()


def test_clearing_a_session_while_its_job_runs_leaves_nothing_of_it_behind(settings):
    lab = _external(settings, upkeep_delay_s=1.0, upkeep_wait_s=0.0)
    try:
        lab.chat("alice", "s2", "I live in Oslo.", strategy="hybrid")
        lab.chat("alice", "s1", "My secret code is 4711 and I live in Bergen.", strategy="hybrid")
        worker = _Started(lab, name="w", block_ms=50)
        _drain(worker)  # s2's job, and s1's
        lab.chat("alice", "s1", "I like jazz.", strategy="hybrid")
        worker.started.clear()
        thread = threading.Thread(target=worker.run_once)
        thread.start()
        assert worker.started.wait(30), "the worker never started the job"
        report = lab.clear_session("alice", "s1")  # does not wait (MEMLAB_UPKEEP_WAIT=0): the job writes after this
        assert report.ok, report.errors
        thread.join(60)
        assert not thread.is_alive()
        assert [e.metadata["session_id"] for e in lab.episodes.all("alice")] == ["s2"]
        assert lab.turns.count("alice") == 1  # s2's turn
        assert [k for k in lab.redis.scan_iter(match=f"{lab.keys.prefix}:s:{{alice:s1}}:*")] == []
        assert [s for s, _ in lab.sessions.sessions("alice")] == ["s2"]
        assert worker.dropped == 1 and lab.redis.xlen(lab.keys.jobs) == 0
        assert lab.facts.all("alice")  # the user's facts are kept: they belong to the user, not the session

        # A job of the session queued before the clear and not started yet is dropped, not applied.
        lab.chat("alice", "s1", "I like tea.", strategy="hybrid")
        assert lab.clear_session("alice", "s1").ok
        _drain(worker)
        assert worker.dropped == 2 and worker.refused == 0
        assert [e.metadata["session_id"] for e in lab.episodes.all("alice")] == ["s2"]
        assert lab.turns.count("alice") == 1
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
            adds = [e for e in lab.facts.history(f"user{u}").items if e.event == "ADD"]
            assert len({e.job for e in adds}) == len(adds) == 2
        assert lab.redis.xlen(lab.keys.jobs) == 0
    finally:
        lab.close()


def test_a_job_left_by_a_dead_worker_is_applied_before_the_users_newer_job(settings):
    """A worker died holding Ann's job; Bea's came after. The worker that reads Bea's applies Ann's first, so the
    takeover can no longer put the older statement on top of the newer one."""
    lab = _external(settings, upkeep_wait_s=0.0)
    keys = lab.keys
    try:
        worker = Worker(lab, name="w", block_ms=50, claim_idle_s=60)
        worker.ensure_group()
        lab.chat("ann", "s1", "My name is Ann.", strategy="facts")
        lab.redis.xreadgroup(GROUP, "dead-worker", {keys.jobs: ">"}, count=1)  # taken, never acknowledged
        # Cal's first job killed every worker that took it: the one that reads his next job dead-letters it.
        lab.chat("cal", "s1", "I like tea.", strategy="facts")
        [cal_entry] = lab.redis.xreadgroup(GROUP, "dead-worker", {keys.jobs: ">"}, count=1)[0][1]
        for _ in range(MAX_DELIVERIES):
            lab.redis.xclaim(keys.jobs, GROUP, "dead-worker", 0, [cal_entry[0]])
        lab.chat("ann", "s1", "Actually, my name is Bea.", strategy="facts")
        lab.chat("bob", "s1", "My name is Bob.", strategy="facts")
        lab.chat("cal", "s1", "I like jazz.", strategy="facts")
        _drain(worker)  # reads Bea's, Bob's and Cal's second job (the dead worker's are not idle long enough yet)
        worker.claim_idle_s = 0  # the dead worker's entries are taken over now, as they would be later
        _drain(worker)

        events = [(e.event, e.text) for e in lab.facts.history("ann").items]
        assert events == [
            ("ADD", "Your name is Ann."),
            ("ADD", "Your name is Bea."),
            ("SUPERSEDE", "Your name is Bea."),  # Bea's statement supersedes Ann's: the newer one is current
        ], events
        assert [r.text for r in lab.facts.all("ann")] == ["Your name is Bea."]
        assert [r.text for r in lab.facts.all("bob")] == ["Your name is Bob."]
        assert [r.text for r in lab.facts.all("cal")] == ["You like jazz."]
        [letter] = _dead_letters(lab)
        assert letter.user_id == "cal" and "times without finishing" in letter.reason
        assert worker.done == 4 and lab.redis.xpending(keys.jobs, GROUP)["pending"] == 0
    finally:
        lab.close()


def test_a_job_writes_exactly_what_was_stored_in_the_shape_of_one_turn(settings):
    """Ids alone prove nothing: a forged entry reusing the ids of Alice's real turn with other text, a lone user message
    with other words, a reply before its question, and a message past MEMLAB_MAX_MESSAGE_CHARS are all refused; the
    real job is applied, its turn compared with the stored one far back in the transcript."""
    lab = _external(settings, max_message_chars=1000)
    try:
        lab.chat("alice", "s1", "I like green tea.", strategy="hybrid")
        question, reply = lab.sessions.log("alice", "s1").messages
        for i in range(150):  # a backlog: the turn is far back in the transcript when its job runs
            lab.sessions.append("alice", "s1", Message(Role.USER, f"filler {i}"))
        [(real_entry, real_fields)] = lab.redis.xrange(lab.keys.jobs)
        lab.redis.xdel(lab.keys.jobs, real_entry)  # the forged entries go first, while the turn's job is not done

        def queue(messages: list[Message]) -> None:
            job = Job(messages[-1].id, "alice", "s1", "hybrid", {}, messages)
            lab.redis.xadd(lab.keys.jobs, {"job": job.to_json()})

        forged = replace(question, content="My name is Mallory and I live in Pyongyang.")
        queue([forged, reply])  # the real ids, other words
        queue([replace(forged, content=forged.content + " x" * 600), reply])  # over the limit
        queue([forged])  # one user message (an agent may remember one alone): its words are not Alice's either
        queue([reply, question])  # the reply first
        queue([question, replace(reply, created_at=reply.created_at + 1)])  # the same words at another time
        lab.redis.xadd(lab.keys.jobs, real_fields)
        worker = Worker(lab, name="w", block_ms=50)
        _drain(worker)

        reasons = [d.reason for d in reversed(_dead_letters(lab))]
        assert len(reasons) == 5, reasons
        assert f"message(s) {question.id} of the job are not what user alice's session s1 holds" in reasons[0]
        assert "characters; the limit is 1,000 (MEMLAB_MAX_MESSAGE_CHARS)" in reasons[1]
        assert f"message(s) {question.id} of the job are not what user alice's session s1 holds" in reasons[2]
        assert "message #0 is a assistant message" in reasons[3]
        assert f"message(s) {reply.id} of the job are not what" in reasons[4]
        assert [r.text for r in lab.facts.all("alice")] == ["You like green tea."]
        [episode] = lab.episodes.all("alice")
        assert "Mallory" not in episode.text and "green tea" in episode.text
        assert worker.done == 1 and worker.refused == 5
    finally:
        lab.close()


END_OF_IDS = "18446744073709551615-18446744073709551615"


def check_an_entry_at_the_end_of_the_id_space_stops_no_turn_and_no_forget(lab: MemoryLab) -> None:
    """An entry added at the last possible stream id left no id for any later XADD: every turn failed to queue
    its job and forget failed to mark the stream. Queueing moves such entries back to ordinary ids, and goes on."""
    keys = lab.keys
    worker = Worker(lab, name="w", block_ms=50)
    lab.chat("alice", "s1", "I use Rust.", strategy="summary")
    lab.redis.xadd(keys.jobs, {"job": "poison"}, id=END_OF_IDS)
    _drain(worker)  # Alice's job applied, the poison dead-lettered and deleted: the stream's last id stays at the end
    assert worker.done == 1 and worker.refused == 1

    second = lab.chat("alice", "s1", "I use Go.", strategy="summary")
    assert second.error is None and second.trace.job["status"] == "queued"
    lab.redis.xadd(keys.jobs, {"job": "poison again"}, id=END_OF_IDS)  # unread when the next turn queues
    third = lab.chat("alice", "s1", "I use Zig.", strategy="summary")
    assert lab.forget_user("bob").ok  # forget marks the stream past it too
    _drain(worker)
    for result in (second, third):
        assert lab.upkeep.outcome("alice", "s1", result.reply.id)["status"] == "done"
    assert worker.done == 3 and worker.refused == 2
    assert [d.raw for d in _dead_letters(lab)] == ["poison again", "poison"]
    last = lab.redis.xinfo_stream(keys.jobs)["last-generated-id"]
    assert not last.startswith("18446744073709551615-"), last
    assert lab.redis.xlen(keys.jobs) == 0 and lab.redis.xpending(keys.jobs, GROUP)["pending"] == 0


def test_an_entry_at_the_end_of_the_id_space_stops_no_turn_and_no_forget(settings):
    lab = _external(settings)
    try:
        check_an_entry_at_the_end_of_the_id_space_stops_no_turn_and_no_forget(lab)
    finally:
        lab.close()
