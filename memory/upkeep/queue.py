"""Memory upkeep after a reply (folding, facts, episodes, turn index) as jobs on a Redis Stream.

Why: the reply is shown as soon as it is stored; the slower memory work
runs after it. A turn's job (``jobs.py``) is added to the stream in the
same round trip that stores the reply. Workers (``worker.py``) read it
through one consumer group, so each job goes to one worker: a thread in the
app by default, and ``python -m memory worker`` processes anywhere that
reaches the same Redis and vector store.

This module is the side every process shares: queue a job, wait for a
user's jobs, read an outcome, mark a user as forgotten or a session as
cleared (so a job queued before is dropped, never applied), and drop the dead letters
that name a forgotten user. A new turn's context waits, briefly, for the
user's earlier jobs that it reads (``Upkeep.wait_user``, ``turn.py``), so
memory does not go backwards.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol, TypeVar

from ..backends.redis_client import Lua, RedisClient
from ..errors import MemoryLabError, StoredDataError
from ..keys import Keys, is_valid_id
from ..records.trace import outcome_from_stored
from .jobs import DeadLetter, Job


class QueueHome(Protocol):
    """Where the queue lives (``MemoryLab`` is one): the Redis client and the key names, nothing else of the engine."""

    keys: Keys

    @property
    def redis(self) -> RedisClient: ...


log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP = "upkeep"
# How long a session's clear marker is kept: far longer than a job runs.
CLEARED_TTL_S = 86_400
# A pending-list entry older than this is taken as lost (its job never reached the stream); waits ignore it.
STALE_PENDING_S = 600.0

# Adding to the stream, for jobs and forget markers alike. Anyone who reaches Redis can add an entry with an
# explicit id, and one at the end of the id space (18446744073709551615-18446744073709551615) leaves no id for
# the next XADD ("the stream has exhausted the last possible ID"): no turn could queue its job, no forget mark
# the stream. So an XADD refused that way first moves the entries in the id space's last millisecond (no clock
# reaches it) back to ordinary ids at the end of the stream, sets the stream's last id back to its top entry
# and any group that had read past it back to that entry (every entry up to it was delivered before), then
# adds. A moved entry is read again like any other: a job applies once whatever its id, a poison entry goes
# to the dead letters. Redis 7 wants the deleted ids' high mark lowered too (MAXDELETEDID); 6.2 has none.
_ADD = """
local function later(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am > #bm end
  if am ~= bm then return am > bm end
  if #as ~= #bs then return #as > #bs end
  return as > bs
end
local function repair(key)
  local far = redis.call('XRANGE', key, '18446744073709551615-0', '+')
  local groups = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    table.insert(groups, info)
  end
  for _, e in ipairs(far) do
    redis.call('XDEL', key, e[1])
    for _, g in ipairs(groups) do redis.call('XACK', key, g['name'], e[1]) end
  end
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  local id = '0-1'
  if #top > 0 then id = top[1][1] end
  if redis.pcall('XSETID', key, id, 'MAXDELETEDID', id)['err'] then redis.call('XSETID', key, id) end
  for _, g in ipairs(groups) do
    if later(g['last-delivered-id'], id) then redis.call('XGROUP', 'SETID', key, g['name'], id) end
  end
  for _, e in ipairs(far) do redis.call('XADD', key, '*', unpack(e[2])) end
end
local function add(key, name, value)
  local added = redis.pcall('XADD', key, '*', name, value)
  if type(added) == 'table' and added['err'] then
    if not string.find(added['err'], 'exhausted', 1, true) then return added end
    repair(key)
    added = redis.call('XADD', key, '*', name, value)
  end
  return added
end
"""
QUEUE = Lua(_ADD + "return add(KEYS[1], 'job', ARGV[1])")
# A stream id taken in the stream's own order: every job added after it has a greater id, whatever the clocks
# of the processes that add them. The entry is deleted at once, so no worker ever reads it.
MARK = Lua(
    _ADD
    + "local id = add(KEYS[1], 'mark', ARGV[1]) if type(id) == 'table' then return id end "
    + "redis.call('XDEL', KEYS[1], id) return id"
)


def stream_position(entry_id: Any) -> tuple[int, int] | None:
    """A stream entry id ("1700000000000-3") as numbers to compare, or None if it is not one."""
    try:
        ms, seq = str(entry_id).split("-")
        return int(ms), int(seq)
    except ValueError:
        return None


def queued_before(entry_id: str, marker: Any) -> bool:
    """Whether the job at ``entry_id`` was queued before the forget that left ``marker`` (an unreadable marker
    counts as a forget of everything so far: it can only drop a job, never bring data back)."""
    if marker is None:
        return False
    mark, entry = stream_position(marker), stream_position(entry_id)
    return mark is None or entry is None or entry < mark


def poll_until(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> T:
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

    def __init__(self, lab: QueueHome) -> None:
        self.lab = lab

    @property
    def _r(self) -> Any:
        return self.lab.redis

    def stage(self, pipe: Any, job: Job) -> None:
        """Queue the job on a pipeline (the one that stores the reply)."""
        keys = self.lab.keys
        QUEUE.stage(pipe, [keys.jobs], [job.to_json()])
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

    def wait_user(
        self,
        user_id: str,
        timeout_s: float,
        only: Collection[str] | None = None,
        settled: Callable[[list[str]], Collection[str]] | None = None,
    ) -> list[str]:
        """Wait until the user's queued jobs (or those of them in ``only``) are done, or ``settled`` says they
        have done enough, at most ``timeout_s``; return those still pending."""

        def read() -> list[str]:
            pending = self.pending(user_id)
            pending = pending if only is None else [job for job in pending if job in only]
            enough = settled(pending) if settled is not None and pending else ()
            return [job for job in pending if job not in enough]

        return poll_until(read, lambda pending: not pending, timeout_s)

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
        return poll_until(lambda: self.outcome(user_id, session_id, job_id), lambda found: found is not None, timeout_s)

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

    # -- forgetting --------------------------------------------------------
    def mark_forgotten(self, user_id: str) -> str:
        """Record, before anything is deleted, that the user is forgotten as of this point of the stream.

        Workers drop every job of the user queued before it, and a job that
        was already running when it was set erases what it wrote
        (``worker.py``). The marker holds no content and outlives the forget.
        """
        keys = self.lab.keys
        marker = str(MARK(self._r, [keys.jobs], [user_id]))
        self._r.set(keys.user(user_id).forgotten, marker)
        return marker

    def mark_cleared(self, user_id: str, session_id: str) -> str:
        """Record, before a session is cleared, where the stream was: a job of that session already running
        erases the session again when it ends (``worker.py``). Kept a day (a job runs for minutes)."""
        cleared = self.lab.keys.user(user_id).cleared
        marker = str(MARK(self._r, [self.lab.keys.jobs], [user_id]))
        with self._r.pipeline(transaction=False) as p:
            p.hset(cleared, session_id, marker)
            p.expire(cleared, CLEARED_TTL_S)
            self._r.run(p)
        return marker

    def wait_idle(self, user_id: str, timeout_s: float) -> bool:
        """Wait until no worker is applying one of the user's jobs (their lock is free), at most ``timeout_s``."""
        lock = self.lab.keys.user(user_id).upkeep_lock
        return not poll_until(lambda: bool(self._r.exists(lock)), lambda held: not held, timeout_s)

    def forget_user(self, user_id: str) -> int:
        """Drop the dead letters that name the user (they may quote what the user said)."""
        key = self.lab.keys.dead_letters
        doomed = []
        for raw in self._r.lrange(key, 0, -1):
            try:
                if DeadLetter.from_stored(raw).user_id == user_id:
                    doomed.append(raw)
            except StoredDataError:
                continue
        if not doomed:
            return 0
        with self._r.pipeline(transaction=False) as p:
            for raw in doomed:
                p.lrem(key, 0, raw)
            return sum(int(n) for n in p.execute())
