"""Memory upkeep after a reply (folding, facts, episodes, turn index) as jobs on a Redis Stream.

Why: the reply is shown as soon as it is stored; the slower memory work
runs after it. A turn's job is added to the stream in the same round trip
that stores the reply. Workers read it through one consumer group, so each
job goes to one worker: a thread in the app by default, and
``python -m memory worker`` processes anywhere that reaches the same Redis
and vector store.

Delivery is at least once: a worker that dies leaves its job in the group's
pending list, and another worker takes it over with ``XAUTOCLAIM`` once it
has been idle for ``claim_idle_s``. So every step is idempotent (a fold
compares before it trims, facts get ids derived from the turn and are
skipped when the fact log already holds the turn, an episode records the
last message it covers, turns are upserted by id) and a finished job's
outcome is checked before running it again. One user's jobs apply one at a
time (a lock with a TTL), and a new turn's context waits, briefly, for the
user's earlier jobs (``Upkeep.wait_user``), so memory does not go backwards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .backends.redis_client import Lua
from .errors import BackendTimeout, BackendUnavailable, MemoryLabError, StoredDataError
from .keys import is_valid_id
from .messages import Message, decode, encode
from .stored import as_dict, as_int, as_number, as_text, as_timestamp, load_json, printable
from .trace import Trace

if TYPE_CHECKING:
    from .lab import MemoryLab

log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP = "upkeep"
# A pending-list entry older than this is taken as lost (its job never reached the stream); waits ignore it.
STALE_PENDING_S = 600.0

UNLOCK = Lua("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
RENEW = Lua("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")
# A user's upkeep lock lives this long unless its worker renews it (every third of it): a dead worker's
# lock frees itself soon, a slow LLM call keeps it.
LOCK_MS = 15_000


class _Renewer:
    """Keeps a held lock alive while its job runs (a thread that renews it until stopped)."""

    def __init__(self, client: Any, key: str, token: str) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, key, token), daemon=True)
        self._thread.start()

    def _run(self, client: Any, key: str, token: str) -> None:
        while not self._done.wait(LOCK_MS / 3000):
            try:
                RENEW(client, [key], [token, LOCK_MS])
            except MemoryLabError as exc:
                log.warning("could not renew the upkeep lock %s: %s", key, exc)

    def stop(self) -> None:
        self._done.set()


@dataclass
class Job:
    """One turn's upkeep: what the strategy's ``after_turn`` needs, carried whole in the stream entry."""

    id: str  # the reply's message id: one job per turn
    user_id: str
    session_id: str
    strategy: str
    config: dict[str, Any]
    messages: list[Message]
    queued_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        data = asdict(self)
        data["messages"] = [encode(m) for m in self.messages]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: Any) -> Job:
        d = as_dict(load_json(raw), "job")
        messages = d.get("messages")
        if not isinstance(messages, list) or not messages:
            raise StoredDataError("a job without messages")
        return cls(
            id=as_text(d.get("id"), "id"),
            user_id=as_text(d.get("user_id"), "user_id"),
            session_id=as_text(d.get("session_id"), "session_id"),
            strategy=as_text(d.get("strategy"), "strategy"),
            config=as_dict(d.get("config", {}), "config"),
            messages=[decode(as_text(m, "message")) for m in messages],
            queued_at=as_timestamp(d.get("queued_at"), "queued_at"),
        )


def outcome_from_stored(raw: Any) -> dict[str, Any]:
    """A stored job outcome, validated field by field (it ends up in the trace view)."""
    d = as_dict(load_json(raw), "job outcome")
    status = as_text(d.get("status"), "status")
    if status not in ("done", "failed"):
        raise StoredDataError(f"unknown job status {status[:40]!r}")
    warnings = d.get("warnings") or []
    if not isinstance(warnings, list):
        raise StoredDataError("warnings is not a list")
    return {
        "status": status,
        "id": as_text(d.get("id"), "id"),
        "worker": as_text(d.get("worker", ""), "worker"),
        "finished_at": as_timestamp(d.get("finished_at"), "finished_at"),
        "waited_ms": float(as_number(d.get("waited_ms", 0), "waited_ms")),
        "error": as_text(d.get("error"), "error", optional=True),
        "upkeep": printable(as_dict(d.get("upkeep", {}), "upkeep")),
        "timings_ms": {
            as_text(k, "timing"): float(as_number(v, "timing"))
            for k, v in as_dict(d.get("timings_ms", {}), "timings_ms").items()
        },
        "warnings": [as_text(w, "warning") for w in warnings],
    }


def _poll(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> T:
    """``read()`` until ``done`` says so or ``timeout_s`` has passed (20 ms apart at first, then up to 200 ms)."""
    deadline = time.monotonic() + timeout_s
    pause = 0.02
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)
        value = read()
    return value


class Upkeep:
    """Queue jobs, wait for them, read their outcomes; shared by the lab, the pages and the CLI."""

    def __init__(self, lab: MemoryLab) -> None:
        self.lab = lab

    @property
    def _r(self) -> Any:
        return self.lab.redis

    def stage(self, pipe: Any, job: Job) -> None:
        """Queue the job on a pipeline (the one that stores the reply)."""
        keys = self.lab.keys
        pipe.xadd(keys.jobs, {"job": job.to_json()})
        pipe.zadd(keys.user(job.user_id).pending, {job.id: job.queued_at})

    def pending(self, user_id: str) -> list[str]:
        """The user's jobs not done yet (lost entries older than ``STALE_PENDING_S`` are dropped)."""
        key = self.lab.keys.user(user_id).pending
        now = time.time()
        with self._r.pipeline(transaction=False) as p:
            p.zremrangebyscore(key, "-inf", f"({now - STALE_PENDING_S}")
            p.zrange(key, 0, -1, withscores=True)
            rows = p.execute()[1]
        pending = [str(m) for m, at in rows if is_valid_id(m) and math.isfinite(at) and at <= now + 60]
        junk = [m for m, _ in rows if m not in pending]
        if junk:  # not a job id we wrote (or from the future): it would hold every wait for nothing
            log.warning("dropping %d malformed pending-job entries of %s", len(junk), user_id)
            self._r.zrem(key, *junk)
        return pending

    def wait_user(self, user_id: str, timeout_s: float) -> list[str]:
        """Wait until the user's queued jobs are done, at most ``timeout_s``; return those still pending."""
        return _poll(lambda: self.pending(user_id), lambda pending: not pending, timeout_s)

    def outcome(self, user_id: str, session_id: str, job_id: str) -> dict[str, Any] | None:
        raw = self._r.hget(self.lab.keys.session(user_id, session_id).jobs, job_id)
        if raw is None:
            return None
        try:
            return outcome_from_stored(raw)
        except StoredDataError as exc:
            return {"status": "failed", "id": job_id, "error": f"unreadable outcome: {exc}"}

    def wait_job(self, user_id: str, session_id: str, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The job's outcome once a worker has written it; None if it did not finish within ``timeout_s``."""
        return _poll(lambda: self.outcome(user_id, session_id, job_id), lambda found: found is not None, timeout_s)

    def backlog(self) -> dict[str, int]:
        """Jobs waiting in the stream, and those taken by a worker but not acknowledged yet."""
        key = self.lab.keys.jobs
        queued = int(self._r.xlen(key))
        try:
            groups = self._r.xinfo_groups(key)
        except MemoryLabError:
            groups = []
        taken = sum(int(g.get("pending", 0)) for g in groups if g.get("name") == GROUP)
        return {"queued": queued, "taken": taken, "consumers": sum(int(g.get("consumers", 0)) for g in groups)}


class Worker:
    """Reads jobs from the consumer group and applies them; ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        lab: MemoryLab,
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
        """Take over abandoned jobs, then read new ones (blocking up to ``block_ms``); apply them. Returns how many."""
        if not self._group_ready:
            self.ensure_group()
        key = self.lab.keys.jobs
        try:
            claimed = self._r.xautoclaim(key, GROUP, self.name, int(self.claim_idle_s * 1000), "0-0", count=count)
            entries = list(claimed[1]) if claimed else []
            if not entries:
                block = None if self.stop.is_set() else self.block_ms
                read = self._r.xreadgroup(GROUP, self.name, {key: ">"}, count=count, block=block)
                entries = [e for _stream, items in read or [] for e in items]
        except MemoryLabError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. FLUSHDB): make it again
                self._group_ready = False
                return 0
            raise
        for entry_id, fields in entries:
            if entry_id is None or fields is None:
                continue
            self.handle(entry_id, fields)
        return len(entries)

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
                self._recover(exc)
            except Exception:  # noqa: BLE001 - the worker must outlive any one bad job
                log.exception("upkeep worker %s: unexpected error", self.name)
                self.stop.wait(pause)
        try:
            self._r.xgroup_delconsumer(self.lab.keys.jobs, GROUP, self.name)
        except Exception:  # noqa: BLE001 - leaving is best effort; an idle consumer is harmless
            log.debug("could not remove consumer %s", self.name, exc_info=True)

    def _recover(self, exc: MemoryLabError) -> None:
        """A lost embedded server is found or started again (as any command would); a hung one is left alone."""
        lost = isinstance(exc, BackendUnavailable) and not isinstance(exc, BackendTimeout)
        if self.lab.embedded_redis is None or not lost:
            return
        try:
            self.lab.reconnect()
            self._group_ready = False
        except MemoryLabError as again:
            log.warning("upkeep worker %s: Redis still unavailable: %s", self.name, again)

    def handle(self, entry_id: str, fields: dict[str, Any]) -> None:
        """Apply one job once (checking its recorded outcome first), record the outcome, acknowledge it."""
        try:
            job = Job.from_json(fields.get("job"))
        except StoredDataError as exc:
            log.warning("upkeep: dropping unreadable job %s: %s", entry_id, exc)
            self._finish(entry_id, None, None)
            return
        done_before = self.lab.upkeep.outcome(job.user_id, job.session_id, job.id) is not None
        self._finish(entry_id, job, None if done_before else self._apply(job))

    def _apply(self, job: Job) -> dict[str, Any]:
        started = time.monotonic()
        lock = self.lab.keys.user(job.user_id).upkeep_lock
        token = f"{self.name}:{job.id}"
        while not self._r.set(lock, token, nx=True, px=LOCK_MS):
            if self.stop.wait(0.02):
                raise MemoryLabError("worker stopping")
        renewer = _Renewer(self._r, lock, token)
        waited_ms = (time.monotonic() - started) * 1000
        trace = Trace(strategy=job.strategy, user_id=job.user_id, session_id=job.session_id)
        outcome: dict[str, Any] = {"id": job.id, "worker": self.name, "waited_ms": round(waited_ms, 2)}
        try:
            if self.lab.settings.upkeep_delay_s:
                time.sleep(self.lab.settings.upkeep_delay_s)  # a knob for demos and crash tests
            strategy = self.lab.strategy(job.strategy, self.lab.config_from(job.config))
            strategy.after_turn(job.user_id, job.session_id, job.messages, trace)
            outcome["status"] = "done"
            self.done += 1
        except Exception as exc:  # noqa: BLE001 - recorded on the turn's trace; the turn itself is safe
            log.warning("upkeep job %s failed", job.id, exc_info=not isinstance(exc, MemoryLabError))
            outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            self.failed += 1
        finally:
            renewer.stop()
            UNLOCK(self._r, [lock], [token])
        outcome.update(
            finished_at=time.time(), upkeep=trace.upkeep, timings_ms=trace.timings_ms, warnings=trace.warnings
        )
        return outcome

    def _finish(self, entry_id: str, job: Job | None, outcome: dict[str, Any] | None) -> None:
        """Record the outcome (when there is a new one), take the job off its user's pending list, acknowledge it."""
        keys = self.lab.keys
        with self._r.pipeline(transaction=False) as p:
            if job is not None and outcome is not None:
                ttl = as_int(job.config.get("ttl_s", self.lab.settings.session_ttl_s), "ttl")
                jobs_key = keys.session(job.user_id, job.session_id).jobs
                p.hset(jobs_key, job.id, json.dumps(outcome, ensure_ascii=False, default=str))
                if ttl:
                    p.expire(jobs_key, ttl)
            if job is not None:
                p.zrem(keys.user(job.user_id).pending, job.id)
            p.xack(keys.jobs, GROUP, entry_id)
            p.xdel(keys.jobs, entry_id)
            p.execute()


class WorkerThread:
    """The app's own worker: a daemon thread, started with the first queued job, stopped by ``MemoryLab.close``."""

    running: weakref.WeakSet[WorkerThread] = weakref.WeakSet()

    def __init__(self, lab: MemoryLab) -> None:
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
