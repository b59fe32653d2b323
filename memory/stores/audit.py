"""An append-only audit trail of every memory write: PostgreSQL when AUDIT_DATABASE_URL is set, else SQLite.

Who wrote what to memory, and when: a message stored, a fold, a fact added,
updated, deleted, edited or undone, a session cleared, a user forgotten, a
key deleted or its TTL changed in the key browser. The default needs no
server (``audit.sqlite3`` in the data folder); a team points
``AUDIT_DATABASE_URL=postgresql://…`` at a shared PostgreSQL (psycopg 3).

Each event has an id derived from what it records (a message's id, a fact
event's turn), so an upkeep job that runs twice records its writes once.
Forgetting a user blanks the content of their rows and keeps the rows (what
happened, when) plus one ``user_forgotten`` row: the trail still shows that
a forget happened, and no longer what they said.

Every write is recorded when it happens, right after the write it
describes; a turn's messages too, by a background writer that the turn
waits for (a process killed just after a turn keeps its rows). A trail
that cannot be written is logged and never fails the memory write it
describes; a database that is down or hung holds up one turn at most the
trail's timeout, and the turns of the next ``RETRY_AFTER_S`` do not wait.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError

log = logging.getLogger(__name__)

ACTIONS = (
    "message_stored",
    "fold",
    "fact_add",
    "fact_update",
    "fact_delete",
    "fact_edit",
    "fact_undo",
    "fact_restore",
    "session_cleared",
    "user_forgotten",
    "key_deleted",
    "key_ttl_changed",
)
COLUMNS = ("id", "at", "action", "user_id", "session_id", "target", "content", "details")
# After a write to the trail failed, a turn's rows are handed to the background writer for this long.
RETRY_AFTER_S = 30.0


class AuditError(BackendError):
    """The audit database cannot be reached or written."""


@dataclass(frozen=True)
class AuditEvent:
    id: str  # derived from what it records: the same write recorded twice is one row
    at: float
    action: str
    user_id: str = ""
    session_id: str = ""
    target: str = ""  # a message id, a fact id, a key name
    content: str = ""  # the text written; blanked when the user is forgotten
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.at,
            self.action,
            self.user_id,
            self.session_id,
            self.target,
            self.content,
            json.dumps(self.details, ensure_ascii=False, default=str),
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuditEvent:
        try:
            details = json.loads(row[7] or "{}")
        except ValueError:
            details = {"unreadable": str(row[7])[:200]}
        action, user_id, session_id, target, content = (str(v or "") for v in row[2:7])
        return cls(str(row[0]), float(row[1]), action, user_id, session_id, target, content, details)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS memlab_audit (
    seq {serial} PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at DOUBLE PRECISION NOT NULL,
    action TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{{}}'
)"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS memlab_audit_user_at ON memlab_audit (user_id, at)",
    "CREATE INDEX IF NOT EXISTS memlab_audit_action_at ON memlab_audit (action, at)",
)


class AuditTrail:
    """The trail in one SQL database; safe to share between the threads of a process."""

    def __init__(self, url: str | None, data_dir: Path, timeout_s: float = 5.0) -> None:
        self.postgres = bool(url) and str(url).startswith(("postgresql://", "postgres://"))
        if url and not self.postgres:
            raise AuditError(f"AUDIT_DATABASE_URL must be a postgresql:// URL, not {url.split(':', 1)[0]}://")
        self.url = url or ""
        self.path = data_dir / "audit.sqlite3"
        self.location = _redacted(self.url) if self.postgres else str(self.path)
        self.mode = "postgresql" if self.postgres else "sqlite"
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: Any = None
        self._queue: queue.Queue[tuple[list[AuditEvent], threading.Event | None] | None] = queue.Queue(maxsize=10_000)
        self._writer: threading.Thread | None = None
        self._failed_at = -RETRY_AFTER_S  # monotonic time of the last failed write

    # -- connection ------------------------------------------------------
    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        conn: Any
        try:
            if self.postgres:
                import psycopg

                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.timeout_s)))
                serial = "BIGSERIAL"
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                serial = "INTEGER"
            conn.execute(_SCHEMA.format(serial=serial))
            for statement in _INDEXES:
                conn.execute(statement)
        except Exception as exc:  # sqlite3 and psycopg raise their own kinds
            raise AuditError(f"the audit trail at {self.location} cannot be opened: {exc}") from exc
        self._conn = conn
        return conn

    def _run(self, sql: str, params: Sequence[Any] = (), many: Sequence[Sequence[Any]] | None = None) -> list[Any]:
        """One statement (or one per row of ``many``); reconnects once after a lost connection."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        with self._lock:
            for attempt in (1, 2):
                conn = self._connect()
                try:
                    if self.postgres:
                        with conn.cursor() as cur:
                            if many is not None:
                                cur.executemany(sql, many)
                                return []
                            cur.execute(sql, params)
                            return list(cur.fetchall()) if cur.description else []
                    if many is not None:
                        conn.executemany(sql, many)
                        return []
                    return list(conn.execute(sql, params).fetchall())
                except Exception as exc:
                    self._drop()
                    if attempt == 2 or not _lost_connection(exc):
                        raise AuditError(f"the audit trail at {self.location} failed: {exc}") from exc
        return []

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
        self._conn = None

    # -- writing ---------------------------------------------------------
    def record(self, events: Iterable[AuditEvent]) -> None:
        """Append events now; an event whose id is already recorded is skipped (a replayed job's writes)."""
        rows = [e.row() for e in events]
        if rows:
            self._run(
                "INSERT INTO memlab_audit (id, at, action, user_id, session_id, target, content, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                many=rows,
            )

    def record_later(self, events: list[AuditEvent], written: threading.Event | None = None) -> None:
        """Append from a background thread; ``written`` is set once the attempt is over (done or logged)."""
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._drain, name="memlab-audit", daemon=True)
                    self._writer.start()
        try:
            self._queue.put_nowait((events, written))
        except queue.Full:
            log.warning("audit trail: the write queue is full; recording %d event(s) now", len(events))
            self.record_safely(events)
            if written is not None:
                written.set()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            batch, signals = list(item[0]), [item[1]]
            while not self._queue.empty():  # write what has gathered in one go
                more = self._queue.get_nowait()
                self._queue.task_done()
                if more is None:
                    self._queue.put(None)
                    break
                batch.extend(more[0])
                signals.append(more[1])
            self.record_safely(batch)
            for signal in signals:
                if signal is not None:
                    signal.set()
            self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until the events handed to ``record_later`` are written."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def record_safely(self, events: list[AuditEvent]) -> None:
        try:
            self.record(events)
        except AuditError as exc:
            self._failed_at = time.monotonic()
            log.warning("audit trail: %d event(s) not recorded: %s", len(events), exc)

    def record_turn(self, events: list[AuditEvent]) -> None:
        """A turn's rows, written before the turn goes on (a process killed right after keeps them).

        The background writer writes them and the turn waits for it, at most
        the trail's timeout: a database that is hung (whose socket no timeout
        of its own would end) holds up one turn that long, and while the trail
        keeps failing (``RETRY_AFTER_S``) turns hand their rows over without
        waiting.
        """
        if time.monotonic() - self._failed_at < RETRY_AFTER_S:
            self.record_later(events)
            return
        written = threading.Event()
        self.record_later(events, written)
        if not written.wait(self.timeout_s):
            self._failed_at = time.monotonic()
            log.warning(
                "audit trail: no answer within %gs; a turn's rows are left to the background writer", self.timeout_s
            )

    # -- reading ---------------------------------------------------------
    def query(
        self,
        user_id: str | None = None,
        actions: Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
        content: str | None = None,
    ) -> list[AuditEvent]:
        """Newest first, filtered by user, actions, a time range and (exactly) the content written."""
        clauses: list[str] = []
        params: list[Any] = []
        if content is not None:
            clauses.append("content = ?")
            params.append(content)
        if user_id:
            clauses.append("user_id = ?")
            params.append(user_id)
        if actions:
            clauses.append("action IN (" + ", ".join("?" for _ in actions) + ")")
            params.extend(actions)
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("at <= ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._run(
            f"SELECT {', '.join(COLUMNS)} FROM memlab_audit {where} ORDER BY at DESC, seq DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [AuditEvent.from_row(r) for r in rows]

    def count(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM memlab_audit")[0][0])

    def users(self) -> list[str]:
        return [
            str(r[0]) for r in self._run("SELECT DISTINCT user_id FROM memlab_audit WHERE user_id <> '' ORDER BY 1")
        ]

    # -- forgetting ------------------------------------------------------
    def forget(self, user_id: str) -> int:
        """Blank the content of the user's rows (the rows stay), then record that they were forgotten."""
        changed = self.blank(user_id)
        now = time.time()
        self.record(
            [AuditEvent(f"forget:{user_id}:{now:.6f}", now, "user_forgotten", user_id, details={"rows": changed})]
        )
        return changed

    def blank(self, user_id: str) -> int:
        """Blank the content and details of the user's rows (what was said, old values); the rows stay.

        Also what a job that raced a forget does after erasing the user again:
        the rows it wrote meanwhile must not keep what the user said.
        """
        self.flush()
        changed = int(
            self._run(
                "SELECT COUNT(*) FROM memlab_audit WHERE user_id = ? AND (content <> '' OR details <> '{}') "
                "AND action <> 'user_forgotten'",
                [user_id],
            )[0][0]
        )
        self._run(
            "UPDATE memlab_audit SET content = '', details = '{}' WHERE user_id = ? AND action <> 'user_forgotten'",
            [user_id],
        )
        return changed

    def status(self) -> tuple[bool, str]:
        try:
            self.count()
            return True, ""
        except AuditError as exc:
            return False, str(exc)

    def close(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=10)
        with self._lock:
            self._drop()


def _lost_connection(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError") and "syntax" not in str(exc).lower()


def _redacted(url: str) -> str:
    """A database URL without its password, for messages and the status line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else f"{scheme}://{user}@{host}"


# -- the events each kind of write records --------------------------------
# A statement superseded by a newer one is an update of what is current (old → new), as the fact log says.
_FACT_ACTIONS = {
    "ADD": "fact_add",
    "UPDATE": "fact_update",
    "SUPERSEDE": "fact_update",
    "DELETE": "fact_delete",
    "EDIT": "fact_edit",
    "RESTORE": "fact_restore",
}


def message_events(user_id: str, session_id: str, messages: Sequence[Any]) -> list[AuditEvent]:
    """A turn's stored messages (``Message`` objects), one row each, by message id."""
    return [
        AuditEvent(
            f"message:{m.id}",
            m.created_at,
            "message_stored",
            user_id,
            session_id,
            m.id,
            m.content,
            {"role": m.role.value, **({"model_id": m.model_id} if m.model_id else {})},
        )
        for m in messages
    ]


def fold_event(user_id: str, session_id: str, fold: Any) -> AuditEvent:
    """A fold (``session_store.Fold``): which messages went into the summary, and the summary it made."""
    first = fold.message_ids[0] if fold.message_ids else f"{fold.at:.6f}"
    return AuditEvent(
        f"fold:{user_id}:{session_id}:{first}",
        fold.at,
        "fold",
        user_id,
        session_id,
        ",".join(fold.message_ids),
        fold.summary,
        {"messages": fold.messages, "tokens_before": fold.tokens_before, "tokens_after": fold.tokens_after},
    )


def fact_events(user_id: str, events: Sequence[Any]) -> list[AuditEvent]:
    """Fact log events (``fact_store.FactEvent``); duplicates merged into an existing fact are not writes."""
    out = []
    for i, e in enumerate(events):
        action = _FACT_ACTIONS.get(e.event, "fact_undo" if e.event == "UNDO" else "")
        if not action:
            continue
        key = f"{e.job}:{i}" if e.job else f"{e.at:.6f}"
        details = {k: v for k, v in (("previous", e.previous), ("slot", e.slot), ("similarity", e.similarity)) if v}
        out.append(
            AuditEvent(
                f"fact:{e.fact_id}:{e.event}:{key}",
                e.at,
                action,
                user_id,
                e.session_id or "",
                e.fact_id,
                e.text,
                details,
            )
        )
    return out


def deletion_event(action: str, user_id: str, session_id: str = "", counts: dict[str, int] | None = None) -> AuditEvent:
    now = time.time()
    return AuditEvent(
        f"{action}:{user_id}:{session_id}:{now:.6f}", now, action, user_id, session_id, details=dict(counts or {})
    )


def key_event(action: str, key: str, user_id: str = "", session_id: str = "", ttl_s: int | None = None) -> AuditEvent:
    now = time.time()
    details = {} if ttl_s is None else {"ttl_s": ttl_s}
    return AuditEvent(f"{action}:{key}:{now:.6f}", now, action, user_id, session_id, key, details=details)
