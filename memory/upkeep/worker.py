"""Upkeep workers: take jobs from the stream's consumer group, check them, apply them, record the outcome.

Delivery is at least once: a worker that dies leaves its job in the group's
pending list, and another worker takes it over with ``XAUTOCLAIM`` once it
has been idle for ``claim_idle_s`` (a live worker keeps claiming its job
while it runs, so only a silent one loses it). So every step is idempotent
(a fold compares before it trims, facts get ids derived from the turn and
are skipped when the fact log already holds the turn, an episode records
the last message it covers, turns are upserted by id) and a finished job's
outcome is checked before running it again. One user's jobs apply one at a
time, under a lock with a TTL, and in the stream's order: a worker first
applies the user's older jobs still unacknowledged (a dead worker's), so a
job taken over after a crash never lands on top of a newer turn's.

Nothing in the stream is trusted, and no entry can stop a worker:

- an entry is read by ``jobs.read_job``; one that fails is acknowledged and
  moved aside to the dead letters (``Keys.dead_letters``, bounded) with the
  reason, logged, and the worker goes on with the next;
- under the user's lock, one round trip checks the job against Redis before
  anything is written: its user was not forgotten nor its session cleared
  after it was queued, it is not done already, and its session still exists
  and holds every message the job writes, under the same id and exactly as
  in the job (role, text, time), so a job only ever writes what its own user
  said in that session;
- a job already running when its user is forgotten erases the user's
  memory again once it ends, audit rows' content included, so nothing it
  wrote survives the forget; one running when its session is cleared
  clears the session again;
- an entry taken over ``MAX_DELIVERIES`` times (its workers died on it), a
  key of the job's that holds another type, or a bug: dead letter. Only a
  backend that is down or hung leaves a job pending, to be retried.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from typing import Any, Protocol

from ..backends.redis_client import Lua, RedisClient
from ..config import Settings
from ..errors import BackendError, MemoryLabError, StoredDataError
from ..keys import Keys
from ..records.messages import Message, MessageDecodeError, decode
from ..records.stored import preview
from ..records.trace import Trace
from ..stores.deletion import DeletionReport
from ..stores.session_store import SessionStore
from ..strategies import Strategy, StrategyConfig
from .jobs import MAX_DEAD_LETTERS, Job, JobError, dead_letter, read_job
from .queue import GROUP, poll_until, queued_before, stream_position


class WorkerServices(Protocol):
    """What applying a job uses of the engine (``MemoryLab`` is one): settings, Redis, the strategies, erasing.

    The worker is given these, not the lab, so it sits below the lab that
    starts it (no import cycle) and a separate worker process needs no more.
    """

    settings: Settings
    keys: Keys

    @property
    def redis(self) -> RedisClient: ...
    @property
    def sessions(self) -> SessionStore: ...

    def strategy(self, name: str, config: StrategyConfig | None = None) -> Strategy: ...
    def config_from(self, stored: Any) -> StrategyConfig: ...
    def erase_user(self, user_id: str, blank_audit: bool = False) -> DeletionReport: ...
    def erase_session(self, user_id: str, session_id: str) -> DeletionReport: ...


log = logging.getLogger(__name__)

UNLOCK = Lua("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
RENEW = Lua("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")
# Our locks always have a TTL: a key there without one was not set by a worker, and would block the user forever.
CLEAR_STRAY = Lua("if redis.call('PTTL', KEYS[1]) == -1 then return redis.call('DEL', KEYS[1]) end return 0")
# A user's upkeep lock lives this long unless its worker renews it (every third of it): a dead worker's
# lock frees itself soon, a slow LLM call keeps it.
LOCK_MS = 15_000
# An entry taken over more often than this was the last thing several workers did before dying.
MAX_DELIVERIES = 5
# The dead letters live this long after the last one (and are bounded in number by MAX_DEAD_LETTERS).
DEAD_LETTER_TTL_S = 30 * 86400
# On a Redis Cluster the reply's append and its job's XADD go to different primaries in one round trip, so
# a worker may read the job a moment before the reply is in the session: its ownership check waits this long.
OWNERSHIP_GRACE_S = 1.0
# How much of a session's transcript the ownership check reads per round trip, from its end (where a job's turn
# is unless many messages came after it).
LOG_TAIL = 64
# How many of the group's unacknowledged entries a worker looks through for a user's older jobs (all workers'
# current batches; a dead worker's too, until taken over).
OLDER_SCAN = 200


class WorkerStopping(MemoryLabError):
    """The worker was asked to stop while waiting for a user's lock: the job stays pending for another."""


class _Renewer:
    """While a job runs: renews the user's lock and claims the job's entry again, so no worker takes it over."""

    def __init__(self, client: Any, lock: str, token: str, stream: str, consumer: str, entry_id: str) -> None:
        self._done = threading.Event()
        args = (client, lock, token, stream, consumer, entry_id)
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self._thread.start()

    def _run(self, client: Any, lock: str, token: str, stream: str, consumer: str, entry_id: str) -> None:
        while not self._done.wait(LOCK_MS / 3000):
            try:
                with client.pipeline(transaction=False) as p:
                    RENEW.stage(p, [lock], [token, LOCK_MS])
                    p.xclaim(stream, GROUP, consumer, 0, [entry_id], justid=True)  # idle back to 0
                    client.run(p)
            except MemoryLabError as exc:
                log.warning("could not renew the upkeep lock %s: %s", lock, exc)

    def stop(self) -> None:
        self._done.set()


class Worker:
    """Reads jobs from the consumer group and applies them; ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        lab: WorkerServices,
        name: str | None = None,
        claim_idle_s: float | None = None,
        block_ms: int = 250,
    ) -> None:
        self.lab = lab
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.claim_idle_s = lab.settings.upkeep_claim_s if claim_idle_s is None else claim_idle_s
        self.block_ms = block_ms
        self.stop = threading.Event()
        self.done = 0
        self.failed = 0
        self.refused = 0  # moved to the dead letters
        self.dropped = 0  # of a forgotten user, or done already
        self._group_ready = False

    @property
    def _r(self) -> Any:
        return self.lab.redis

    def ensure_group(self) -> None:
        try:
            self._r.xgroup_create(self.lab.keys.jobs, GROUP, id="0", mkstream=True)
        except MemoryLabError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def run_once(self, count: int = 10) -> int:
        """Take over abandoned jobs, else read new ones (blocking up to ``block_ms``); handle them. Returns how many."""
        if not self._group_ready:
            self.ensure_group()
        key = self.lab.keys.jobs
        try:
            claimed = self._r.xautoclaim(key, GROUP, self.name, int(self.claim_idle_s * 1000), "0-0", count=count)
            entries = [e for e in (claimed[1] if claimed else []) if e and e[0] is not None]
            if claimed and len(entries) < len(claimed[1]):
                self._ack_deleted()
            taken = len(entries)
            entries = self._within_deliveries(entries)
            if not taken:
                block = None if self.stop.is_set() else self.block_ms
                read = self._r.xreadgroup(GROUP, self.name, {key: ">"}, count=count, block=block)
                entries = [e for _stream, items in read or [] for e in items if e and e[0] is not None]
                taken = len(entries)
        except MemoryLabError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. FLUSHDB): make it again
                self._group_ready = False
                return 0
            raise
        for entry_id, fields in entries:
            if fields is None:  # deleted while pending: nothing to apply
                self._r.xack(key, GROUP, entry_id)
                continue
            self.handle(entry_id, fields)
        return taken

    def _ack_deleted(self, batch: int = 100) -> None:
        """Acknowledge pending entries that were deleted from the stream (``XDEL``, a trim).

        Redis 6.2's ``XAUTOCLAIM`` hands each of them out again on every call,
        without its id; left pending, a worker would take it over forever.
        """
        key = self.lab.keys.jobs
        ids = [row["message_id"] for row in self._r.xpending_range(key, GROUP, "-", "+", batch)]
        with self._r.pipeline(transaction=False) as p:
            for entry_id in ids:
                p.xrange(key, entry_id, entry_id)
            found = p.execute()
        gone = [entry_id for entry_id, rows in zip(ids, found) if not rows]
        if gone:
            log.warning("upkeep: %d pending entries were deleted from the stream; acknowledging them", len(gone))
            self._r.xack(key, GROUP, *gone)

    def _within_deliveries(self, entries: list[Any]) -> list[Any]:
        """Claimed entries, less those taken over too often (each dead-lettered: workers keep dying on it)."""
        if not entries:
            return entries
        key = self.lab.keys.jobs
        with self._r.pipeline(transaction=False) as p:
            for entry_id, _ in entries:
                p.xpending_range(key, GROUP, entry_id, entry_id, 1)
            rows = p.execute()
        kept = []
        for (entry_id, fields), row in zip(entries, rows):
            times = int(row[0]["times_delivered"]) if row else 0
            if times <= MAX_DELIVERIES or fields is None:
                kept.append((entry_id, fields))
                continue
            raw = fields.get("job")
            try:
                job = read_job(raw, self.lab.settings.max_message_chars)
                error = JobError("", job.user_id, job.session_id, job.id)
                raw = None  # readable: its messages are not kept
            except JobError as exc:
                error = exc
            error.reason = f"taken over {times} times without finishing: workers died while applying it"
            error.args = (error.reason,)
            self._refuse(entry_id, error, raw)
        return kept

    def run(self) -> None:
        """Work until ``stop`` is set; a backend problem is logged and retried with a growing pause."""
        pause = 0.5
        while not self.stop.is_set():
            try:
                self.run_once()
                pause = 0.5
            except MemoryLabError as exc:
                log.warning("upkeep worker %s: %s; retrying in %.1fs", self.name, exc, pause)
                self.stop.wait(pause)
                pause = min(pause * 2, 10.0)
            except Exception:  # the worker must outlive anything
                log.exception("upkeep worker %s: unexpected error", self.name)
                self.stop.wait(pause)
        try:
            self._r.xgroup_delconsumer(self.lab.keys.jobs, GROUP, self.name)
        except Exception:  # leaving is best effort; an idle consumer is harmless
            log.debug("could not remove consumer %s", self.name, exc_info=True)

    def handle(self, entry_id: str, fields: dict[str, Any]) -> None:
        """Read, check and apply one entry, then acknowledge it; a job it cannot apply goes to the dead letters.

        The user's older jobs still pending (a dead worker's, say) are applied
        first, under the same lock: a user's jobs apply in the stream's order,
        so an older turn never lands on top of a newer one.
        """
        raw = fields.get("job")
        try:
            job = read_job(raw, self.lab.settings.max_message_chars)
        except JobError as exc:
            self._refuse(entry_id, exc, raw if raw is not None else fields)
            return
        started = time.monotonic()
        lock = self.lab.keys.user(job.user_id).upkeep_lock
        token = f"{self.name}:{job.id}"
        self._take_lock(lock, token)  # Redis down or hung, or stopping: the job stays pending and is retried
        try:
            older, still_ours = self._older_jobs(entry_id, job.user_id)
            for older_id, older_job in older:
                log.warning("applying upkeep job %s of %s before the newer %s", older_job.id, job.user_id, job.id)
                self._settle(older_id, older_job, lock, token, time.monotonic())
            if still_ours:
                self._settle(entry_id, job, lock, token, started)
            else:  # another worker applied it (as an older job of its own) and acknowledged it
                self.dropped += 1
        finally:
            UNLOCK(self._r, [lock], [token])

    def _older_jobs(self, entry_id: str, user_id: str) -> tuple[list[tuple[str, Job]], bool]:
        """The user's jobs queued before ``entry_id`` and not acknowledged yet, oldest first, now claimed by this
        worker; and whether ``entry_id`` itself is still unacknowledged. Called under the user's lock, so no
        worker is applying any of them: one that holds them died, or has not reached them in its batch yet (it
        finds them acknowledged when it does)."""
        key = self.lab.keys.jobs
        rows = self._r.xpending_range(key, GROUP, "-", entry_id, OLDER_SCAN)
        ids = [str(row["message_id"]) for row in rows]
        still_ours = entry_id in ids or len(ids) == OLDER_SCAN
        candidates = [i for i in ids if i != entry_id]
        if not candidates:
            return [], still_ours
        with self._r.pipeline(transaction=False) as p:
            for older_id in candidates:
                p.xrange(key, older_id, older_id)
            found = p.execute()
        mine: dict[str, tuple[dict[str, Any], Job]] = {}
        for older_id, entries in zip(candidates, found):
            if not entries or entries[0][1] is None:
                continue
            fields = entries[0][1]
            try:
                older = read_job(fields.get("job"), self.lab.settings.max_message_chars)
            except JobError:
                continue  # not readable: its own worker refuses it
            if older.user_id == user_id:
                mine[older_id] = (fields, older)
        if not mine:
            return [], still_ours
        claimed = {str(c) for c in self._r.xclaim(key, GROUP, self.name, 0, list(mine), justid=True)}
        # One that workers kept dying on goes to the dead letters here too, not into every newer job of the user.
        kept = self._within_deliveries([(i, fields) for i, (fields, _) in mine.items() if i in claimed])
        return [(i, mine[i][1]) for i, _ in kept], still_ours

    def _settle(self, entry_id: str, job: Job, lock: str, token: str, started: float) -> None:
        """Apply one job under its user's lock, then record and acknowledge it, or move it to the dead letters."""
        try:
            outcome = self._apply(entry_id, job, lock, token, started)
        except (BackendError, WorkerStopping):
            raise  # Redis down or hung, or stopping: the job stays pending and is retried
        except JobError as exc:
            self._refuse(entry_id, exc)
            return
        except Exception as exc:  # a key of the job's holds another type, or a bug: it would fail again
            log.warning("upkeep job %s cannot be applied", job.id, exc_info=not isinstance(exc, StoredDataError))
            self._refuse(entry_id, JobError(f"{type(exc).__name__}: {exc}", job.user_id, job.session_id, job.id))
            return
        self._finish(entry_id, job, outcome)

    def _apply(self, entry_id: str, job: Job, lock: str, token: str, started: float) -> dict[str, Any] | None:
        """The job's outcome, or None when it was not run or was undone (its user was forgotten or its session
        cleared, or it ran before)."""
        renewer = _Renewer(self._r, lock, token, self.lab.keys.jobs, self.name, entry_id)
        try:
            if not self._admitted(entry_id, job):
                self.dropped += 1
                return None
            outcome = self._run_strategy(job, (time.monotonic() - started) * 1000)
            user = self.lab.keys.user(job.user_id)
            with self._r.pipeline(transaction=False) as p:
                p.get(user.forgotten)
                p.hget(user.cleared, job.session_id)
                forgotten, cleared = self._r.run(p)
            if queued_before(entry_id, forgotten):
                # Forgotten while it ran: what it wrote may have landed after the forget deleted the rest.
                log.warning("upkeep job %s ran while user %s was forgotten: erasing again", job.id, job.user_id)
                report = self.lab.erase_user(job.user_id, blank_audit=True)
            elif queued_before(entry_id, cleared):
                # Its session was cleared while it ran: the episode, turns or summary it wrote would bring it back.
                log.warning("upkeep job %s ran while session %s was cleared: clearing again", job.id, job.session_id)
                report = self.lab.erase_session(job.user_id, job.session_id)
            else:
                return outcome
            if not report.ok:
                log.warning("erasing again after job %s: %s", job.id, report.describe())
            self.dropped += 1
            return None
        finally:
            renewer.stop()

    def _take_lock(self, lock: str, token: str) -> None:
        checked = time.monotonic()
        while not self._r.set(lock, token, nx=True, px=LOCK_MS):
            if self.stop.wait(0.02):
                raise WorkerStopping("worker stopping")
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if CLEAR_STRAY(self._r, [lock], []):
                    log.warning("removed %s: it had no TTL, so no worker set it, and it blocked the user", lock)

    def _admitted(self, entry_id: str, job: Job) -> bool:
        """Whether to run the job: False to drop it (forgotten user, cleared session, done before); ``JobError`` to
        refuse it."""
        user, session = self.lab.keys.user(job.user_id), self.lab.keys.session(job.user_id, job.session_id)
        ids = [m.id for m in job.messages]

        def read() -> list[Any]:
            with self._r.pipeline(transaction=False) as p:
                p.get(user.forgotten)
                p.hget(user.cleared, job.session_id)
                p.hexists(session.jobs, job.id)
                p.exists(session.ids)
                p.smismember(session.ids, ids)
                p.lrange(session.log, -LOG_TAIL, -1)
                return list(p.execute())

        def settled(found: list[Any]) -> bool:
            return (
                queued_before(entry_id, found[0])
                or queued_before(entry_id, found[1])
                or bool(found[2])
                or all(found[4])
            )

        marker, cleared, done, exists, members, tail = poll_until(read, settled, OWNERSHIP_GRACE_S)
        for what, value, where in (("forget", marker, user.forgotten), ("clear", cleared, user.cleared)):
            if value is not None and stream_position(value) is None:
                raise JobError(
                    f"the {what} marker {where} holds {preview(value, 40)!r}, not a stream id: refused rather than "
                    f"risk bringing back what was deleted (delete the marker to let the user's jobs through)",
                    job.user_id,
                    job.session_id,
                    job.id,
                )
        if queued_before(entry_id, marker):
            log.warning("dropping upkeep job %s: user %s was forgotten after it was queued", job.id, job.user_id)
            return False
        if queued_before(entry_id, cleared):
            log.warning("dropping upkeep job %s: session %s was cleared after it was queued", job.id, job.session_id)
            return False
        if done:
            return False
        if not exists:
            raise JobError(
                f"session {job.session_id} of user {job.user_id} no longer exists (expired, cleared or forgotten); "
                "applying its job would bring it back",
                job.user_id,
                job.session_id,
                job.id,
            )
        if not all(members):
            missing = [i for i, ok in zip(ids, members) if not ok]
            raise JobError(
                f"message(s) {', '.join(missing[:3])} are not in user {job.user_id}'s session {job.session_id}: "
                "a job may only write what its user said there",
                job.user_id,
                job.session_id,
                job.id,
            )
        changed = self._not_as_stored(session.log, job, tail)
        if changed:
            raise JobError(
                f"message(s) {', '.join(changed[:3])} of the job are not what user {job.user_id}'s session "
                f"{job.session_id} holds under those ids: a job may only write what its user said there",
                job.user_id,
                job.session_id,
                job.id,
            )
        return True

    def _not_as_stored(self, log_key: str, job: Job, tail: list[Any]) -> list[str]:
        """The ids of the job's messages that differ from the session's stored message of that id (role, text,
        time, model): the transcript is read from its end, where a job's turn is, further back only if needed."""
        wanted = {m.id: m for m in job.messages}
        stored: dict[str, Message] = {}
        chunk, end = tail, -1
        while True:
            for raw in chunk:
                try:
                    message = decode(raw)
                except MessageDecodeError:
                    continue  # a damaged entry is no message of the job's
                if message.id in wanted:
                    stored.setdefault(message.id, message)
            end -= len(chunk)
            if len(stored) == len(wanted) or len(chunk) < LOG_TAIL:
                break
            chunk = self._r.lrange(log_key, end - LOG_TAIL + 1, end)
        return [mid for mid, message in wanted.items() if stored.get(mid) != message]

    def _run_strategy(self, job: Job, waited_ms: float) -> dict[str, Any]:
        trace = Trace(strategy=job.strategy, user_id=job.user_id, session_id=job.session_id)
        outcome: dict[str, Any] = {"id": job.id, "worker": self.name, "waited_ms": round(waited_ms, 2)}
        try:
            if self.lab.settings.upkeep_delay_s:
                time.sleep(self.lab.settings.upkeep_delay_s)  # a knob for demos and crash tests
            strategy = self.lab.strategy(job.strategy, self.lab.config_from(job.config))
            strategy.after_turn(job.user_id, job.session_id, job.messages, trace)
            outcome["status"] = "done"
            self.done += 1
            self._retention(job.user_id, outcome)
        except Exception as exc:  # recorded on the turn's trace; the turn itself is safe
            log.warning("upkeep job %s failed", job.id, exc_info=not isinstance(exc, MemoryLabError))
            outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            self.failed += 1
        outcome.update(
            finished_at=time.time(), upkeep=trace.upkeep, timings_ms=trace.timings_ms, warnings=trace.warnings
        )
        return outcome

    def _retention(self, user_id: str, outcome: dict[str, Any]) -> None:
        """Apply the user's retention policy when it is due (``timeline/retention.py``); a failure is noted on the
        outcome and never fails the job."""
        from ..timeline.retention import apply_due

        try:
            run = apply_due(self.lab, user_id)
        except MemoryLabError as exc:
            log.warning("retention policy of %s not applied: %s", user_id, exc)
            outcome["retention"] = {"error": str(exc)}
            return
        if run is not None and run.removed:
            outcome["retention"] = {"run": run.id, "removed": len(run.removed)}

    def _finish(self, entry_id: str, job: Job, outcome: dict[str, Any] | None) -> None:
        """Record the outcome (when there is one), take the job off its user's pending list, acknowledge it."""
        keys = self.lab.keys
        with self._r.pipeline(transaction=False) as p:
            if outcome is not None:
                text = json.dumps(outcome, ensure_ascii=False, default=str)
                self.lab.sessions.stage_outcome(p, job.user_id, job.session_id, job.id, text)
            p.zrem(keys.user(job.user_id).pending, job.id)
            p.xack(keys.jobs, GROUP, entry_id)
            p.xdel(keys.jobs, entry_id)
            self._run_all(p, f"finishing job {job.id}")

    def _refuse(self, entry_id: str, error: JobError, raw: Any = None) -> None:
        """Acknowledge the entry and move it to the dead letters, with the reason; log it."""
        letter = dead_letter(entry_id, error, raw)
        log.warning(
            "upkeep: entry %s (job %s of user %s) moved to the dead letters: %s",
            entry_id,
            letter.job_id or "?",
            letter.user_id or "?",
            letter.reason,
        )
        keys = self.lab.keys
        with self._r.pipeline(transaction=False) as p:
            p.lpush(keys.dead_letters, letter.to_json())
            p.ltrim(keys.dead_letters, 0, MAX_DEAD_LETTERS - 1)
            p.expire(keys.dead_letters, DEAD_LETTER_TTL_S)
            if letter.user_id and letter.job_id:
                p.zrem(keys.user(letter.user_id).pending, letter.job_id)
            p.xack(keys.jobs, GROUP, entry_id)
            p.xdel(keys.jobs, entry_id)
            self._run_all(p, f"refusing entry {entry_id}")
        self.refused += 1

    def _run_all(self, pipe: Any, what: str) -> None:
        """Run a pipeline whose every command runs whatever one of them answers (a key of another type, say)."""
        try:
            self._r.run(pipe)
        except StoredDataError as exc:
            log.warning("upkeep: %s: %s (the rest was done)", what, exc)


class WorkerThread:
    """The app's own worker: a daemon thread, started with the first queued job, stopped by ``MemoryLab.close``."""

    running: weakref.WeakSet[WorkerThread] = weakref.WeakSet()

    def __init__(self, lab: WorkerServices) -> None:
        self.worker = Worker(lab)
        self.thread = threading.Thread(target=self.worker.run, name="memlab-upkeep", daemon=True)
        self.thread.start()
        WorkerThread.running.add(self)

    @classmethod
    def stop_all(cls) -> None:
        """Stop every worker thread of this process (a test's labs must not work on the next test's jobs)."""
        for thread in list(cls.running):
            thread.stop()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread: an idle one leaves its blocking read within ``block_ms``; a busy one may finish its
        job (up to ``timeout_s``), else it is left pending for another worker to take over."""
        self.worker.stop.set()
        self.thread.join(timeout_s)
        WorkerThread.running.discard(self)
