"""Read-only (and explicitly confirmed write) views of Redis that the pages need.

Everything here uses SCAN and pipelines, never KEYS, so the key browser
stays responsive on a database with 100,000 keys: it reads one page of keys
at a time and fetches type, length, TTL and memory usage for that page in
one round trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backends.redis_client import RedisClient
from ..errors import InputError, StoredDataError
from ..keys import Keys
from ..presentation.format import when
from ..records.messages import decode_many
from ..records.stored import CorruptEntry, clean_text, load_json, preview, printable
from ..stores.audit import AuditTrail, key_event
from ..stores.session_store import Entries
from ..upkeep.jobs import DeadLetter


@dataclass(frozen=True)
class KeyRow:
    key: str
    type: str
    length: int
    ttl: int  # seconds; -1 = no TTL; -2 = gone
    memory: int | None
    user_id: str = ""
    session_id: str = ""
    kind: str = ""


@dataclass(frozen=True)
class MemoryReport:
    keys: int
    bytes: int
    by_kind: dict[str, tuple[int, int]]  # kind -> (keys, bytes)
    by_user: dict[str, tuple[int, int]]  # user -> (keys, bytes)
    top: list[tuple[str, int]]  # the largest keys, biggest first
    complete: bool


@dataclass(frozen=True)
class BulkResult:
    changed: int  # keys deleted, or whose TTL was set
    skipped: int  # keys whose names Memory Lab does not build (``Keys.parse``), left alone


@dataclass(frozen=True)
class KeyPage:
    rows: list[KeyRow]
    next_cursor: int  # 0 when the scan is complete


_LENGTH = {"list": "llen", "hash": "hlen", "zset": "zcard", "set": "scard", "string": "strlen", "stream": "xlen"}


def scan_keys(client: RedisClient, pattern: str, max_keys: int, budget_s: float) -> tuple[list[str], bool]:
    """Every key matching ``pattern`` (up to ``max_keys`` within ``budget_s``), and whether the scan finished."""
    names: list[str] = []
    cursor, deadline = 0, time.monotonic() + budget_s
    while True:
        cursor, batch = client.scan(cursor=cursor, match=pattern or "*", count=1000)
        names.extend(batch)
        if cursor == 0:
            return sorted(set(names)), True
        if len(names) >= max_keys or time.monotonic() > deadline:
            return sorted(set(names))[:max_keys], False


def pipelined(client: RedisClient, commands: list[tuple[Any, ...]], batch: int = 500) -> list[Any]:
    """Run commands in pipelines of ``batch``; a command that fails gives its exception, not a raise."""
    out: list[Any] = []
    for start in range(0, len(commands), batch):
        with client.pipeline(transaction=False) as p:
            for command in commands[start : start + batch]:
                p.execute_command(*command)
            out.extend(p.execute(raise_on_error=False))
    return out


class KeyInspector:
    def __init__(self, client: RedisClient, keys: Keys, audit: AuditTrail | None = None) -> None:
        self.r = client
        self.keys = keys
        self.audit = audit  # deletes and TTL changes made here are memory writes too

    def _audited(self, action: str, names: list[str], ttl_s: int | None = None) -> None:
        if self.audit is None or not names:
            return
        events = []
        for name in names:
            parts = self.keys.parse(name) or {}
            events.append(key_event(action, name, parts.get("user_id", ""), parts.get("session_id", ""), ttl_s))
        self.audit.record_safely(events)

    def scan_page(self, pattern: str = "*", cursor: int = 0, page_size: int = 100, budget_s: float = 0.25) -> KeyPage:
        """About ``page_size`` keys matching ``pattern`` from ``cursor`` on, with their details.

        A pattern that matches rarely needs many SCAN steps; after ``budget_s``
        the page returns what it has with the cursor to continue from, so the
        page never blocks on a large database.
        """
        found: list[str] = []
        deadline = time.monotonic() + budget_s
        while True:
            cursor, batch = self.r.scan(cursor=cursor, match=pattern or "*", count=page_size)
            found.extend(batch)
            if cursor == 0 or len(found) >= page_size or time.monotonic() > deadline:
                break
        found = sorted(set(found))  # a SCAN step may overshoot the page; a cursor cannot be split
        return KeyPage(self.describe(found), int(cursor))

    def describe(self, names: list[str]) -> list[KeyRow]:
        if not names:
            return []
        with self.r.pipeline(transaction=False) as p:
            for name in names:
                p.type(name)
                p.ttl(name)
            meta = p.execute()
        types = meta[0::2]
        ttls = meta[1::2]
        with self.r.pipeline(transaction=False) as p:
            for name, kind in zip(names, types):
                getattr(p, _LENGTH.get(kind, "exists"))(name)
                p.memory_usage(name)
            sizes = p.execute(raise_on_error=False)
        rows = []
        for i, name in enumerate(names):
            length, mem = sizes[2 * i], sizes[2 * i + 1]
            parts = self.keys.parse(name) or {}
            rows.append(
                KeyRow(
                    key=name,
                    type=types[i],
                    length=int(length) if isinstance(length, int) else 0,
                    ttl=int(ttls[i]),
                    memory=int(mem) if isinstance(mem, int) else None,
                    user_id=parts.get("user_id", ""),
                    session_id=parts.get("session_id", ""),
                    kind=parts.get("kind", ""),
                )
            )
        return rows

    def count(self) -> int:
        return int(self.r.dbsize())

    def ttls(self, names: list[str]) -> dict[str, int]:
        with self.r.pipeline(transaction=False) as p:
            for name in names:
                p.ttl(name)
            return {n: int(t) for n, t in zip(names, p.execute())}

    def contents(self, name: str, limit: int = 200) -> dict[str, Any]:
        """A key's value, decoded for display: lists of messages as typed messages with corrupt entries marked.

        Whatever the key holds, the result is plain, printable data: text that
        is not UTF-8 shows U+FFFD, JSON nested too deeply stays text.
        """
        return dict(printable(self._contents(name, limit)))

    def _contents(self, name: str, limit: int) -> dict[str, Any]:
        """``rows`` (a table) for every collection type; a string is ``json`` when it parses, else ``text``."""
        kind = self.r.type(name)
        out: dict[str, Any] = {"type": kind, "truncated": False}
        if kind == "list":
            raws = self.r.lrange(name, 0, limit - 1)
            out["truncated"] = self.r.llen(name) > limit
            if name.endswith((":log", ":buffer")):
                messages, corrupt = decode_many(raws)
                out["messages"] = [{**m.to_dict(), "at": when(m.created_at)} for m in messages]
                out["corrupt"] = [c.to_dict() for c in corrupt]
            else:
                out["rows"] = [{"index": i, **_cell(r)} for i, r in enumerate(raws)]
        elif kind == "hash":
            pairs = list(self.r.hgetall(name).items())
            out["truncated"] = len(pairs) > limit
            out["rows"] = [{"field": k, **_cell(v)} for k, v in pairs[:limit]]
        elif kind == "zset":
            members = self.r.zrevrange(name, 0, limit - 1, withscores=True)
            out["truncated"] = int(self.r.zcard(name)) > limit
            out["rows"] = [{"member": m, "score": float(sc), "as a time": when(float(sc))} for m, sc in members]
        elif kind == "set":
            out["rows"] = [{"member": m} for m in sorted(self.r.sscan_iter(name, count=limit))[:limit]]
        elif kind == "stream":
            entries: list[Any] = list(self.r.xrange(name, "-", "+", count=limit) or [])
            out["truncated"] = int(self.r.xlen(name)) > limit
            out["rows"] = [
                {"id": i, **{str(f): _cell(str(v))["value"] for f, v in (fields or {}).items()}}
                for i, fields in entries
            ]
        elif kind == "string":
            raw = self.r.get(name) or ""
            try:
                out["json"] = load_json(raw)
            except StoredDataError:
                out["text"] = clean_text(raw)
        return out

    def matching(self, pattern: str, max_keys: int = 100_000, budget_s: float = 5.0) -> tuple[list[str], bool]:
        return scan_keys(self.r, pattern, max_keys, budget_s)

    def memory_report(
        self, pattern: str = "*", max_keys: int = 100_000, progress: Callable[[int, int], None] | None = None
    ) -> MemoryReport:
        """Bytes per key (MEMORY USAGE), summed by key kind and by user, like RedisInsight's memory analysis.

        Kinds are Memory Lab's own (buffer, log, facts…) and ``other`` for
        keys it did not write; a key of no user counts under ``(none)``.
        """
        names, complete = self.matching(pattern, max_keys)
        usage: list[tuple[str, int]] = []
        step = 500
        for start in range(0, len(names), step):
            chunk = names[start : start + step]
            sizes = pipelined(self.r, [("MEMORY USAGE", name) for name in chunk], step)
            usage += [(n, int(b)) for n, b in zip(chunk, sizes) if isinstance(b, int)]  # gone meanwhile: None
            if progress is not None:
                progress(min(start + step, len(names)), len(names))
        by_kind: dict[str, list[int]] = {}
        by_user: dict[str, list[int]] = {}
        for name, size in usage:
            parts = self.keys.parse(name) or {}
            for table, label in ((by_kind, parts.get("kind", "other")), (by_user, parts.get("user_id", "(none)"))):
                total = table.setdefault(label, [0, 0])
                total[0] += 1
                total[1] += size
        top = sorted(usage, key=lambda nb: -nb[1])[:20]
        return MemoryReport(
            keys=len(usage),
            bytes=sum(b for _, b in usage),
            by_kind={k: (c, b) for k, (c, b) in by_kind.items()},
            by_user={u: (c, b) for u, (c, b) in by_user.items()},
            top=top,
            complete=complete,
        )

    def owned(self, names: list[str]) -> list[str]:
        """The names Memory Lab builds (``Keys.parse``): the only keys the delete and TTL actions change."""
        return [n for n in names if self.keys.owns(n)]

    def bulk(self, names: list[str], ttl_seconds: int | None = None) -> BulkResult:
        """Delete ``names`` (``ttl_seconds`` None) or set their TTL (0 = never expire), in pipelines of 500.

        Only Memory Lab's own keys are changed; any other key in the list
        (another app's under the same prefix too) is skipped and counted.
        """
        ours = self.owned(names)
        if ttl_seconds is None:
            commands: list[tuple[Any, ...]] = [("UNLINK", n) for n in ours]
        elif ttl_seconds <= 0:
            commands = [("PERSIST", n) for n in ours]
        else:
            commands = [("EXPIRE", n, ttl_seconds) for n in ours]
        changed = sum(bool(x) for x in pipelined(self.r, commands) if not isinstance(x, Exception))
        if ttl_seconds is None:
            self._audited("key_deleted", ours)
        else:
            self._audited("key_ttl_changed", ours, max(ttl_seconds, 0))
        return BulkResult(changed=changed, skipped=len(names) - len(ours))

    def _ours(self, name: str) -> None:
        if not self.keys.owns(name):
            raise InputError(
                f"{preview(name, 120)!r} is not a key Memory Lab builds (another program's, even under the prefix "
                f"{self.keys.prefix}:); refusing to change it"
            )

    def delete(self, name: str) -> bool:
        self._ours(name)
        deleted = bool(self.r.unlink(name))
        self._audited("key_deleted", [name] if deleted else [])
        return deleted

    def set_ttl(self, name: str, seconds: int) -> bool:
        """Set a TTL in seconds; 0 or less removes it (PERSIST)."""
        self._ours(name)
        changed = bool(self.r.persist(name) if seconds <= 0 else self.r.expire(name, seconds))
        self._audited("key_ttl_changed", [name] if changed else [], max(seconds, 0))
        return changed

    def dead_letters(self, limit: int = 200) -> Entries[DeadLetter]:
        """The upkeep jobs the workers refused, newest first, each with its reason (``worker.py``)."""
        out: Entries[DeadLetter] = Entries([])
        for index, raw in enumerate(self.r.lrange(self.keys.dead_letters, 0, limit - 1)):
            try:
                out.items.append(DeadLetter.from_stored(raw))
            except StoredDataError as exc:
                out.corrupt.append(CorruptEntry(index, preview(raw), str(exc)))
        return out


def _cell(raw: str) -> dict[str, Any]:
    """One stored value for a table cell: JSON shown compactly (and said so), anything else as its text."""
    try:
        parsed = load_json(raw)
    except StoredDataError:
        return {"value": clean_text(raw), "format": "text"}
    if isinstance(parsed, (dict, list)):
        shown = printable(parsed)
        return {"value": json.dumps(shown, ensure_ascii=False)[:2000], "format": "JSON", "json": shown}
    return {"value": clean_text(str(parsed)), "format": "JSON"}
