"""Long-term facts per user in Chroma, with an add/update log in Redis.

A fact that repeats an existing one (cosine similarity at or above the
duplicate threshold) only refreshes it; a fact in the same *slot* (the
user's name, home town...) replaces the old text. A self-statement
(``llm/statements.py``) is added as it was said, and supersedes the older
statements it takes the place of (``supersession.py``): they stay in the
store, marked, out of every search. Every decision goes to the user's fact
log, like mem0's history, so the Vector memory page can show why a fact
changed. Reads are always filtered by user.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..backends.filters import where_user
from ..backends.redis_client import RedisClient
from ..backends.vector_store import FACTS, Hit, Record, VectorBackend
from ..errors import InputError, RefusedError, StaleEditError, StoredDataError
from ..keys import Keys, validate_id
from ..llm.base import ExtractedFact
from ..llm.rules import whole_word
from ..records.stored import CorruptEntry, as_dict, as_number, as_text, as_timestamp, load_json, preview
from ..retrieval import fuse, tokenize
from .fact_index import FactIndex, UserFacts, is_superseded
from .session_store import Entries

Embed = Callable[[list[str]], np.ndarray]


def slot_of(metadata: dict[str, Any]) -> str | None:
    """A stored fact's slot ("name", "trip:kyoto"...), or None; Chroma stores "no slot" as ""."""
    return str(metadata.get("slot") or "") or None


EVENTS = ("ADD", "UPDATE", "DUPLICATE", "DELETE", "EDIT", "UNDO", "SUPERSEDE", "RESTORE")
MAX_FACT_CHARS = 2000  # a fact rides in every later context of its user: edits and imports are held to this
# Characters that change how a text reads without being seen: bidirectional controls (U+202E shows the rest of
# a line backwards), zero-width spaces and the byte-order mark. Joiners (U+200C, U+200D) stay: scripts and
# emoji sequences need them.
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


def tidy_fact(text: str, where: str = "a fact") -> str:
    """A fact as the one line of visible text every fact is, checked against the editor's limit.

    A fact is one bullet in the model's "Known facts" and one row of ``facts
    list``: line breaks, tabs and other control characters become single
    spaces and invisible characters go, so a hand edit and an import store
    the same text, and opening a fact in the editor and saving it untouched
    changes nothing. Empty (after tidying) or longer than ``MAX_FACT_CHARS``:
    ``InputError`` naming ``where``.
    """
    text = _INVISIBLE.sub("", text or "")
    text = " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).split())
    if not text:
        raise InputError(f"{where} is empty (a fact needs visible text; delete it instead)")
    if len(text) > MAX_FACT_CHARS:
        raise InputError(f"{where} has {len(text):,} characters; the limit is {MAX_FACT_CHARS:,} (the fact editor's)")
    return text


@dataclass
class FactEvent:
    at: float
    event: str  # ADD | UPDATE | DUPLICATE | DELETE | EDIT (by hand) | UNDO | SUPERSEDE (text: the newer statement)
    # | RESTORE (an earlier version put back by hand; previous None: the fact was gone)
    fact_id: str
    text: str
    previous: str | None = None
    similarity: float | None = None
    session_id: str | None = None
    slot: str | None = None
    job: str | None = None  # the upkeep job (turn) that made it, so a replayed job is recognised
    meta: dict[str, Any] | None = None  # DELETE: the fact's metadata (its provenance), so undo puts it back whole

    @classmethod
    def from_dict(cls, data: Any) -> FactEvent:
        d = as_dict(data, "fact event")
        event = as_text(d.get("event"), "event")
        if event not in EVENTS:
            raise StoredDataError(f"unknown event {preview(event, 40)!r}")
        similarity = d.get("similarity")
        return cls(
            at=as_timestamp(d.get("at"), "at"),
            event=event,
            fact_id=as_text(d.get("fact_id"), "fact_id"),
            text=as_text(d.get("text"), "text"),
            previous=as_text(d.get("previous"), "previous", optional=True),
            similarity=None if similarity is None else float(as_number(similarity, "similarity")),
            session_id=as_text(d.get("session_id"), "session_id", optional=True),
            slot=as_text(d.get("slot"), "slot", optional=True),
            job=as_text(d.get("job"), "job", optional=True),
            meta=None if d.get("meta") is None else as_dict(d.get("meta"), "meta"),
        )


WRITE_BATCH = 256  # facts written by id per embed call and Chroma write
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FactWrite:
    """One fact written by id (an import): its text and slot, and the text of the user's fact it replaces."""

    id: str
    text: str
    slot: str | None = None
    replaces: str | None = None  # the fact's text now, when it exists; None: a new fact
    old_meta: dict[str, Any] | None = None

    def metadata(self, user_id: str, now: float) -> dict[str, Any]:
        if self.old_meta is None:
            return _fresh_meta(user_id, "", self.slot, now)
        return {**self.old_meta, "user_id": user_id, "updated_at": now, "slot": self.slot or ""}


def _fresh_meta(
    user_id: str, session_id: str, slot: str | None, now: float, source_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """A new fact's metadata (Chroma keeps no None: "no slot" is "")."""
    return {
        "user_id": user_id,
        "session_id": session_id,
        "created_at": now,
        "updated_at": now,
        "slot": slot or "",
        "source_ids": json.dumps(list(source_ids)),
    }


def _text_after(event: FactEvent) -> str | None:
    """The text a fact held after a logged event; None when the event left it deleted."""
    if event.event == "DELETE":
        return None
    if event.event == "DUPLICATE":
        return event.previous  # a repeat refreshed the fact and kept its text
    return event.text or None  # an UNDO of an ADD logs "": the fact is gone


class _Writes:
    """A batch of changes to one user's facts: applied to the in-memory copy at once (later facts of the batch
    see them), and sent to Chroma at the end in one delete and one upsert (a later change to a fact wins)."""

    def __init__(self, user_id: str, facts: UserFacts) -> None:
        self.user_id = user_id
        self.facts = facts
        self.upserts: dict[str, tuple[Record, np.ndarray]] = {}
        self.deletes: set[str] = set()
        self.new_ids: set[str] = set()  # ids the user's facts did not hold: checked against other users' at flush

    def put(self, record: Record, vector: np.ndarray) -> None:
        if record.id not in self.facts.row_of:
            self.new_ids.add(record.id)
        self.facts.put(record.id, record.text, record.metadata, vector)
        self.upserts[record.id] = (record, vector)
        self.deletes.discard(record.id)

    def delete(self, fact_id: str) -> None:
        self.facts.drop(fact_id)
        self.deletes.add(fact_id)
        self.upserts.pop(fact_id, None)

    def flush(self, vectors: VectorBackend) -> None:
        _refuse_foreign(vectors, self.user_id, sorted(self.new_ids & set(self.upserts)))
        if self.deletes:
            vectors.delete(FACTS, ids=sorted(self.deletes))
        if self.upserts:
            records = [r for r, _ in self.upserts.values()]
            vectors.upsert(FACTS, records, np.stack([v for _, v in self.upserts.values()]))


def _named_id(origin: str, user_id: str, *parts: str) -> str:
    """A fact id derived from where the fact came from, the same every time it is derived.

    The name hashed is ``memlab:ORIGIN:USER:PARTS…`` joined by ``:``; no id
    (``keys.py``) holds a ``:``, and each origin has its own tag and number of
    parts, so two origins (or two users) can never hash the same name.
    """
    validate_id("user", user_id)
    if any(":" in part for part in parts):
        raise InputError(f"a fact id is derived from ids, and {[p for p in parts if ':' in p][0]!r} is none")
    return uuid.uuid5(uuid.NAMESPACE_URL, ":".join(("memlab", origin, user_id, *parts))).hex


def derived_id(user_id: str, job: str, index: int) -> str:
    """The id of the ``index``-th fact a job adds: the same on a retry, so a replayed job re-writes, not duplicates."""
    return _named_id("job", user_id, job, str(index))


def imported_id(user_id: str, file_id: str) -> str:
    """The id an imported file's fact ``file_id`` gets in ``user_id``'s memory (the same on every import)."""
    return _named_id("import", user_id, file_id)


def _refuse_foreign(vectors: VectorBackend, user_id: str, ids: list[str]) -> None:
    """Refuse a write under an id that another user's fact holds: a fact id can never address another user's
    fact, whatever path derived it (a job, an import, an undo). One read by ids per write batch."""
    if not ids:
        return
    for record in vectors.get(FACTS, ids=ids):
        if record.metadata.get("user_id") != user_id:
            raise RefusedError(
                f"fact {record.id} belongs to another user; a write of user {user_id}'s under that id was refused "
                "(nothing written)"
            )


class FactStore:
    def __init__(
        self,
        vectors: VectorBackend,
        embed: Embed,
        client: RedisClient,
        keys: Keys,
        dup_similarity: float = 0.9,
        index: FactIndex | None = None,
        on_logged: Callable[[str, list[FactEvent]], None] | None = None,
    ) -> None:
        self.vectors = vectors
        self.embed = embed
        self.r = client
        self.keys = keys
        self.dup_similarity = dup_similarity
        self.index = index or FactIndex(vectors, client, keys)
        self.on_logged = on_logged  # the audit trail hears every fact event the log records

    def remember(
        self, user_id: str, session_id: str, facts: list[ExtractedFact], job: str | None = None
    ) -> list[FactEvent]:
        """Apply each change in order (a later statement wins), write them in one batch, and log what it did.

        ``job`` names the turn the facts came from: a job that runs again (a
        worker died before acknowledging it) finds its events in the log and
        changes nothing, and the facts it adds have ids derived from it. It
        hands those logged events to the audit trail again: a worker killed
        between the fact log and the audit insert left them unrecorded, and
        the trail keeps each event once (its id comes from the job).
        """
        if not facts:
            return []
        if job:
            logged = self._logged(user_id, job)
            if logged is not None:
                if logged and self.on_logged is not None:
                    self.on_logged(user_id, logged)
                return []
        vectors = self.embed([f.text for f in facts])
        events: list[FactEvent] = []
        with self.index.lock:
            current = self.index.current(user_id)
            writes = _Writes(user_id, current)
            try:
                for i, (fact, vector) in enumerate(zip(facts, vectors)):
                    new_id = derived_id(user_id, job, i) if job else uuid.uuid4().hex
                    if fact.action == "state":
                        events.extend(self._state(user_id, writes, session_id, fact, vector, new_id))
                    elif fact.action == "delete":
                        events.extend(self._delete_matching(writes, session_id, fact))
                    elif fact.action == "replace" and fact.old_value:
                        events.extend(
                            self._replace(writes, session_id, fact)
                            or [self._set(user_id, writes, session_id, fact, vector, new_id)]
                        )
                    else:
                        events.append(self._set(user_id, writes, session_id, fact, vector, new_id))
                writes.flush(self.vectors)
            except BaseException:
                self.index.forget(user_id)  # the cache may hold changes that never reached Chroma
                raise
            for event in events:
                event.job = job
            before = current.version
            after = self._log(user_id, events)
            self.index.advanced(user_id, before, after if events else before)
        return events

    def _logged(self, user_id: str, job: str, look_back: int = 500) -> list[FactEvent] | None:
        """This job's events in the fact log's recent ones, in order, if it ran before; None if it did not."""
        found: list[FactEvent] | None = None
        for data in self._recent_events(user_id, look_back):
            if data.get("job") == job:
                try:
                    event = FactEvent.from_dict(data)
                except StoredDataError:
                    continue  # a damaged event of this job is skipped; the rest is still recorded
                found = found if found is not None else []
                found.append(event)
        return found

    def jobs_logged(self, user_id: str, jobs: Collection[str], look_back: int = 500) -> set[str]:
        """Which of ``jobs`` have written their facts (each event of the fact log names the job that made it)."""
        return {str(d.get("job")) for d in self._recent_events(user_id, look_back)} & set(jobs) if jobs else set()

    def _recent_events(self, user_id: str, look_back: int) -> Iterator[dict[str, Any]]:
        for raw in self.r.lrange(self.keys.user(user_id).fact_log, -look_back, -1):
            try:
                data = load_json(raw)
            except StoredDataError:
                continue
            if isinstance(data, dict):
                yield data

    def _holding(self, current: UserFacts, value: str, slot: str | None) -> list[int]:
        """Rows of the user's facts in ``slot`` (or any) that mention ``value`` as a whole word."""
        pattern = whole_word(value)
        rows = current.in_slot(slot) if slot else list(current.rows())
        return [r for r in rows if pattern.search(current.texts[r])]

    def _delete_matching(self, writes: _Writes, session_id: str, fact: ExtractedFact) -> list[FactEvent]:
        """'I no longer live in Berlin': delete the fact in that slot if it holds that value (else nothing)."""
        current = writes.facts
        if fact.value:
            doomed = self._holding(current, fact.value, fact.slot)
        elif fact.slot:
            doomed = current.in_slot(fact.slot)
        else:
            doomed = []
        now = time.time()
        events = []
        for row in doomed:
            record = current.record(row)
            slot = slot_of(record.metadata)
            events.append(
                FactEvent(
                    now, "DELETE", record.id, record.text, record.text, None, session_id, slot, None, record.metadata
                )
            )
            writes.delete(record.id)
        return events

    def _replace(self, writes: _Writes, session_id: str, fact: ExtractedFact) -> list[FactEvent]:
        """'We switched from Postgres to MySQL': rewrite every fact that mentions the old value."""
        assert fact.old_value and fact.value
        events = []
        pattern = whole_word(fact.old_value)
        for row in self._holding(writes.facts, fact.old_value, None):
            old = writes.facts.record(row)
            new_text = pattern.sub(fact.value, old.text)
            self._touch(writes, row, None, fact, session_id, time.time(), new_text=new_text)
            events.append(FactEvent(time.time(), "UPDATE", old.id, new_text, old.text, None, session_id))
        return events

    def _set(
        self,
        user_id: str,
        writes: _Writes,
        session_id: str,
        fact: ExtractedFact,
        vector: np.ndarray,
        new_id: str,
    ) -> FactEvent:
        current = writes.facts
        now = time.time()
        if fact.slot:
            same_slot = current.in_slot(fact.slot)
            if same_slot:
                row = same_slot[0]
                old = current.record(row)
                if old.id == new_id:  # this job wrote it before it was interrupted
                    return FactEvent(now, "ADD", old.id, old.text, None, None, session_id)
                if old.text.strip().lower() == fact.text.strip().lower():
                    self._touch(writes, row, vector, fact, session_id, now)
                    return FactEvent(now, "DUPLICATE", old.id, fact.text, old.text, 1.0, session_id)
                self._touch(writes, row, vector, fact, session_id, now, new_text=fact.text)
                return FactEvent(now, "UPDATE", old.id, fact.text, old.text, None, session_id)
        rows, cosines = current.cosines(vector)
        if len(rows):
            best = int(np.argmax(cosines))
            row, similarity = int(rows[best]), float(cosines[best])
            if current.ids[row] == new_id:
                return FactEvent(now, "ADD", new_id, current.texts[row], None, None, session_id)
            if similarity >= self.dup_similarity:
                old = current.record(row)
                self._touch(writes, row, None, fact, session_id, now)
                return FactEvent(now, "DUPLICATE", old.id, fact.text, old.text, round(similarity, 4), session_id)
        metadata = _fresh_meta(user_id, session_id, fact.slot, now, fact.source_ids)
        writes.put(Record(new_id, fact.text, metadata), vector)
        return FactEvent(now, "ADD", new_id, fact.text, None, None, session_id)

    def _state(
        self,
        user_id: str,
        writes: _Writes,
        session_id: str,
        fact: ExtractedFact,
        vector: np.ndarray,
        new_id: str,
    ) -> list[FactEvent]:
        """A self-statement: a repeat refreshes the stored one; else it is added and supersedes older statements
        about the same thing (``supersession.py``), which stay in the store, marked, and in the log as old → new."""
        from .supersession import same_details, superseded_rows

        current = writes.facts
        now = time.time()
        if new_id in current.row_of:  # this job stored it before it was interrupted
            return [FactEvent(now, "ADD", new_id, fact.text, None, None, session_id)]
        rows, cosines = current.cosines(vector)
        if len(rows):
            best = int(np.argmax(cosines))
            # A repeat, unless a number or a name changed ("$350,000" → "$400,000"): that is an update.
            if float(cosines[best]) >= self.dup_similarity and same_details(fact.text, current.texts[int(rows[best])]):
                row = int(rows[best])
                old = current.record(row)
                self._touch(writes, row, None, fact, session_id, now)
                return [
                    FactEvent(now, "DUPLICATE", old.id, fact.text, old.text, round(float(cosines[best]), 4), session_id)
                ]
        when = fact.said_at if fact.said_at is not None else now
        doomed = superseded_rows(current, fact, rows, cosines, when, self.dup_similarity)
        metadata = {
            "user_id": user_id,
            "session_id": session_id,
            "created_at": now,
            "updated_at": now,
            "said_at": when,
            "slot": fact.slot or "",
            "source_ids": json.dumps(list(fact.source_ids)),
            "reads": fact.reads,
            "context": fact.context,
        }
        events = [FactEvent(now, "ADD", new_id, fact.text, None, None, session_id, fact.slot)]
        for row in doomed:
            old = current.record(row)
            meta = dict(old.metadata) | {"superseded_by": new_id, "superseded_at": now}
            writes.put(Record(old.id, old.text, meta), current.vectors[row])
            events.append(FactEvent(now, "SUPERSEDE", old.id, fact.text, old.text, None, session_id, slot_of(meta)))
        writes.put(Record(new_id, fact.text, metadata), vector)
        return events

    def _touch(
        self,
        writes: _Writes,
        row: int,
        vector: np.ndarray | None,
        fact: ExtractedFact,
        session_id: str,
        now: float,
        new_text: str | None = None,
    ) -> None:
        old = writes.facts.record(row)
        meta = _merged_meta(old.metadata, fact, session_id, now)
        text = new_text or old.text
        if vector is None:
            vector = self.embed([text])[0] if text != old.text else writes.facts.vectors[row]
        writes.put(Record(old.id, text, meta), vector)

    def _log(self, user_id: str, events: list[FactEvent]) -> int:
        """Append the events to the user's fact log; returns the log's new length (the facts' version)."""
        if not events:
            return 0
        length = int(self.r.rpush(self.keys.user(user_id).fact_log, *[json.dumps(asdict(e)) for e in events]))
        if self.on_logged is not None:
            self.on_logged(user_id, events)
        return length

    def search(
        self, user_id: str, query_vector: np.ndarray, k: int, query_text: str | None = None, retriever: str = "hybrid"
    ) -> list[tuple[Hit, float]]:
        """Top-k facts with their rank score: the dense cosine, or fused with BM25 when the query text is given.

        Served from the process's copy of the user's facts (``fact_index.py``):
        one LLEN when nothing changed, whatever the number of facts.
        """
        with self.index.lock:
            current = self.index.current(user_id)
            rows, cosines, _, scores = _scored(current, query_vector, query_text, retriever)
            if not len(rows):
                return []
            order = _top(scores, k)
            return [
                (
                    Hit(
                        current.ids[rows[i]],
                        current.texts[rows[i]],
                        dict(current.metas[rows[i]]),
                        1.0 - float(cosines[i]),
                    ),
                    float(scores[i]),
                )
                for i in order
            ]

    def closest(self, user_id: str, vector: np.ndarray) -> tuple[str, float]:
        """The user's stored fact nearest ``vector``: its id and cosine (``("", 0.0)`` when there is none)."""
        return self.index.closest(user_id, vector)

    def nearest_of_another_user(self, user_id: str, vector: np.ndarray) -> Hit | None:
        """The fact nearest ``vector`` among every *other* user's (the "stored for someone else" explanation)."""
        hits = self.vectors.query(FACTS, vector, 1, {"user_id": {"$ne": validate_id("user", user_id)}})
        return hits[0] if hits else None

    def ranking(self, user_id: str, query_vector: np.ndarray, query_text: str) -> list[RankedFact]:
        """Every fact of the user in the order ``search`` ranks them, with each score component (for "why not?")."""
        with self.index.lock:
            current = self.index.current(user_id)
            rows, cosines, bm25, scores = _scored(current, query_vector, query_text, "hybrid")
            order = np.argsort(-scores, kind="stable")
            return [
                RankedFact(
                    rank + 1,
                    current.ids[rows[i]],
                    current.texts[rows[i]],
                    dict(current.metas[rows[i]]),
                    float(cosines[i]),
                    float(bm25[i]),
                    float(scores[i]),
                )
                for rank, i in enumerate(order)
            ]

    def count(self, user_id: str) -> int:
        with self.index.lock:
            return len(self.index.current(user_id))

    def all(self, user_id: str, with_embeddings: bool = False, superseded: bool = False) -> list[Record]:
        """The user's facts; with ``superseded``, also the statements newer ones took the place of."""
        records = self.vectors.get(FACTS, where=where_user(user_id), with_embeddings=with_embeddings)
        return records if superseded else [r for r in records if not is_superseded(r.metadata)]

    def history(self, user_id: str) -> Entries[FactEvent]:
        """The user's fact log, oldest first; entries that are not events are reported, not raised."""
        out: Entries[FactEvent] = Entries([])
        for index, raw in enumerate(self.r.lrange(self.keys.user(user_id).fact_log, 0, -1)):
            try:
                out.items.append(FactEvent.from_dict(load_json(raw)))
            except StoredDataError as exc:
                out.corrupt.append(CorruptEntry(index, preview(raw), str(exc)))
        return out

    def _own(self, user_id: str, fact_id: str) -> Record | None:
        records = self.vectors.get(FACTS, ids=[fact_id])
        return records[0] if records and records[0].metadata.get("user_id") == validate_id("user", user_id) else None

    def delete(self, user_id: str, fact_id: str, job: str | None = None) -> int:
        """Delete one of the user's facts (logged, with ``job`` naming what removed it when not a hand);
        returns 1, or 0 when the user has no such fact."""
        with self.index.lock:  # a second click finds it gone: one DELETE in the log
            record = self._own(user_id, fact_id)
            if record is None:
                return 0
            self.vectors.delete(FACTS, ids=[fact_id])
            slot = slot_of(record.metadata)
            event = FactEvent(
                time.time(), "DELETE", fact_id, record.text, record.text, None, None, slot, job, record.metadata
            )
            self._log(user_id, [event])
        return 1

    def reinstate(self, user_id: str, records: Sequence[Record], job: str) -> list[FactEvent]:
        """Put removed facts back exactly as they were stored (text and metadata: provenance, times, slot),
        logged as UNDO of the removal ``job`` made; a fact whose id holds a fact again is left as it is."""
        validate_id("user", user_id)
        with self.index.lock:
            present = {r.id for r in self.vectors.get(FACTS, ids=[r.id for r in records])} if records else set()
            back = [r for r in records if r.id not in present and r.metadata.get("user_id") == user_id]
            if not back:
                return []
            self.vectors.upsert(FACTS, list(back), self.embed([r.text for r in back]))
            now = time.time()
            events = [FactEvent(now, "UNDO", r.id, r.text, None, None, None, slot_of(r.metadata), job) for r in back]
            self._log(user_id, events)
        return events

    def edit(self, user_id: str, fact_id: str, text: str, expected: str | None = None) -> FactEvent | None:
        """Change a fact's text by hand (re-embedded, logged as EDIT, undoable).

        Saving the text the fact already holds is no change: nothing is written
        or logged and the result is None, so a second click (or Enter, then the
        button) on the same edit is one change and undo still finds the text
        before it. ``expected`` is the text the editor started from: when the
        fact holds another one now (another tab, a chat turn, the CLI), the edit
        is refused with ``StaleEditError`` instead of overwriting a change
        nobody saw.
        """
        text = tidy_fact(text)
        with self.index.lock:  # hand changes one at a time: a double submit sees the first one's result
            record = self._own(user_id, fact_id)
            if record is None:
                raise InputError(f"user {user_id!r} has no fact {fact_id!r} (deleted meanwhile?)")
            if record.text == text:
                return None
            if expected is not None and record.text != expected:
                raise StaleEditError(
                    f"the fact changed since this edit began; it now reads {preview(record.text, 300)!r}",
                    record.text,
                )
            self._rewrite(record, text)
            event = FactEvent(time.time(), "EDIT", fact_id, text, record.text, None, None, None)
            self._log(user_id, [event])
        return event

    def _rewrite(self, record: Record, text: str) -> None:
        """A fact's new text by hand (edit, undo): re-embedded, written at once (the log entry follows)."""
        meta = _merged_meta(
            record.metadata, ExtractedFact(text), str(record.metadata.get("session_id") or ""), time.time()
        )
        self.vectors.upsert(FACTS, [Record(record.id, text, meta)], self.embed([text]))

    def put_back(
        self,
        user_id: str,
        fact_id: str,
        text: str,
        slot: str | None,
        session_id: str = "",
        deletion: FactEvent | None = None,
    ) -> FactEvent | None:
        """An earlier version of a fact made current again, logged as RESTORE (undoable like an edit).

        The fact keeps its id: a superseded statement becomes current again, a
        deleted fact comes back (with the metadata ``deletion``, its DELETE,
        kept). Already current with that text: nothing is written and the
        result is None.
        """
        with self.index.lock:
            record = self._own(user_id, fact_id)
            if record is not None and record.text == text and not is_superseded(record.metadata):
                return None
            if record is None and deletion is not None:
                self._put_deleted(user_id, deletion, text)
            elif record is None:
                self.restore(user_id, fact_id, text, slot, session_id)
            else:
                session = str(record.metadata.get("session_id") or "")
                meta = _merged_meta(record.metadata, ExtractedFact(text), session, time.time())
                meta |= {"superseded_by": "", "superseded_at": 0.0}  # blanked, not dropped (see _undo_statement)
                self.vectors.upsert(FACTS, [Record(fact_id, text, meta)], self.embed([text]))
            before = record.text if record else None
            kept = record.metadata if record else None  # undo puts it back (a superseded mark included)
            event = FactEvent(time.time(), "RESTORE", fact_id, text, before, None, session_id or None, slot, None, kept)
            self._log(user_id, [event])
        return event

    def restore(
        self,
        user_id: str,
        fact_id: str,
        text: str,
        slot: str | None,
        session_id: str = "",
        event: str | None = None,
        job: str | None = None,
    ) -> None:
        """Put a fact back under its own id (undo of a delete, or an import, logged as ``event`` when given)."""
        now = time.time()
        _refuse_foreign(self.vectors, validate_id("user", user_id), [fact_id])
        metadata = _fresh_meta(user_id, session_id, slot, now)
        self.vectors.upsert(FACTS, [Record(fact_id, text, metadata)], self.embed([text]))
        if event is not None:
            self._log(user_id, [FactEvent(now, event, fact_id, text, None, None, session_id or None, slot, job)])

    def put_facts(
        self, user_id: str, writes: Sequence[FactWrite], progress: Progress | None = None, batch: int = WRITE_BATCH
    ) -> list[FactEvent]:
        """Write facts by id (an import), logged: ADD for a new fact, UPDATE with the exact text it replaces.

        In batches: one ownership read, one embed call, one Chroma write, one
        fact log append and one audit insert per batch, then ``progress(done,
        total)``. A replacement is an UPDATE whose ``previous`` is the text the
        fact held, so undo restores exactly that text (never deletes a fact
        that existed before). A batch cut short between Chroma and the log is
        completed by ``complete_log`` when the same facts are written again.
        """
        validate_id("user", user_id)
        events: list[FactEvent] = []
        for start in range(0, len(writes), batch):
            part = writes[start : start + batch]
            _refuse_foreign(self.vectors, user_id, [w.id for w in part])
            vectors = self.embed([w.text for w in part])
            now = time.time()
            records = [Record(w.id, w.text, w.metadata(user_id, now)) for w in part]
            logged = [
                FactEvent(now, "UPDATE" if w.replaces else "ADD", w.id, w.text, w.replaces, None, None, w.slot)
                for w in part
            ]
            with self.index.lock:
                self.vectors.upsert(FACTS, records, vectors)
                self._log(user_id, logged)
            events.extend(logged)
            if progress is not None:
                progress(start + len(part), len(writes))
        return events

    def complete_log(self, user_id: str, records: Sequence[Record]) -> list[FactEvent]:
        """Close the gaps a write cut short left, for the user's facts ``records`` (as Chroma holds them now).

        A fact whose last logged event does not leave it with that text was
        written to Chroma and never logged (the process or Redis died between
        the two): its ADD or UPDATE is logged now, and so audited. For the
        others, the last event, when a hand change or an import logged it, is
        handed to the audit trail again (it keeps each event once, by an id
        derived from it), in case the process died between log and audit. A
        job's own events are completed by the job when it runs again.
        """
        stored = {r.id: r for r in records}
        if not stored:
            return []
        last: dict[str, FactEvent] = {}
        for raw in self.r.lrange(self.keys.user(user_id).fact_log, 0, -1):
            try:
                event = FactEvent.from_dict(load_json(raw))
            except StoredDataError:
                continue  # a damaged entry tells nothing; the fact is judged by the others
            if event.fact_id in stored:
                last[event.fact_id] = event
        now = time.time()
        missing, again = [], []
        for fact_id, record in stored.items():
            found = last.get(fact_id)
            held = _text_after(found) if found is not None else None
            if held != record.text:
                kind = "ADD" if held is None else "UPDATE"
                slot = slot_of(record.metadata)
                missing.append(FactEvent(now, kind, fact_id, record.text, held, None, None, slot))
            elif found is not None and found.job is None:
                again.append(found)
        if again and self.on_logged is not None:
            self.on_logged(user_id, again)
        with self.index.lock:
            self._log(user_id, missing)
        return missing

    def undo_last(self, user_id: str) -> FactEvent:
        """Undo the user's last change to their facts (ADD, UPDATE, EDIT, DELETE, a superseding statement), as UNDO.

        One step, once: the fact gets back exactly the text it had before that
        change. Refused, with nothing written, when the change cannot be undone
        safely: a damaged log entry after it (the real last change is unknown),
        or a fact that no longer holds what the change left.
        """
        with self.index.lock:
            last = self._last_change(user_id)
            if last.event == "SUPERSEDE":
                batch = [e for e in self.history(user_id).items if e.at == last.at and e.event != "DUPLICATE"]
                return self._undo_statement(user_id, batch)
            current = self._own(user_id, last.fact_id)
            if last.event == "DELETE":
                if current is not None:
                    raise InputError(f"fact {last.fact_id!r} exists again (restored or imported); nothing to undo")
                restored = last.previous or last.text
                self._put_deleted(user_id, last, restored)
            else:
                if current is not None and current.text != last.text:
                    raise StaleEditError(
                        f"the fact changed since that change; it now reads {preview(current.text, 300)!r}; "
                        "nothing was undone",
                        current.text,
                    )
                if last.event == "ADD" or (last.event == "RESTORE" and last.previous is None):
                    if current is not None:
                        self.vectors.delete(FACTS, ids=[last.fact_id])
                    restored = ""
                else:  # UPDATE, EDIT, RESTORE of a fact that was there
                    restored = last.previous or ""
                    if current is None or not restored:
                        raise InputError("the fact this change made is gone; nothing to undo")
                    if last.event == "RESTORE" and last.meta:  # its metadata too: a superseded mark comes back
                        meta = {**last.meta, "user_id": user_id}
                        self.vectors.upsert(FACTS, [Record(current.id, restored, meta)], self.embed([restored]))
                    else:
                        self._rewrite(current, restored)
            event = FactEvent(
                time.time(), "UNDO", last.fact_id, restored, current.text if current else None, None, None, last.slot
            )
            self._log(user_id, [event])
        return event

    def _put_deleted(self, user_id: str, deletion: FactEvent, text: str) -> None:
        """A deleted fact back under its id with ``text``, and with the metadata its DELETE kept (where it came
        from, when it was said, its slot); a DELETE logged before that was kept gives fresh metadata."""
        if not deletion.meta:
            self.restore(user_id, deletion.fact_id, text, deletion.slot)
            return
        _refuse_foreign(self.vectors, validate_id("user", user_id), [deletion.fact_id])
        meta = {**deletion.meta, "user_id": user_id}
        self.vectors.upsert(FACTS, [Record(deletion.fact_id, text, meta)], self.embed([text]))

    def _last_change(self, user_id: str) -> FactEvent:
        """The newest logged change that undo may take back; an entry it cannot read stops it (never skipped)."""
        raw = self.r.lrange(self.keys.user(user_id).fact_log, 0, -1)
        for index in range(len(raw) - 1, -1, -1):
            try:
                event = FactEvent.from_dict(load_json(raw[index]))
            except StoredDataError as exc:
                raise StoredDataError(
                    f"fact log entry #{index} is damaged ({exc}), so the last change is not known; nothing was undone"
                ) from exc
            if event.event == "DUPLICATE" or (event.event in ("EDIT", "UPDATE") and event.text == event.previous):
                continue  # not a change: a repeat, or a save of the same text (logged by older versions)
            if event.event == "UNDO":
                raise InputError("the last change was already undone")
            return event
        raise InputError("there is no change to undo")

    def _undo_statement(self, user_id: str, batch: list[FactEvent]) -> FactEvent:
        """Undo a statement that superseded others: it goes, they are current again (one UNDO per fact)."""
        undone: list[FactEvent] = []
        for e in batch:
            record = self._own(user_id, e.fact_id)
            if e.event == "ADD" and record is not None:
                self.vectors.delete(FACTS, ids=[e.fact_id])
                undone.append(FactEvent(time.time(), "UNDO", e.fact_id, "", e.text, None, None, e.slot))
            elif e.event == "SUPERSEDE" and record is not None:
                # Blanked, not dropped: a store's upsert may merge metadata, keeping a key left out.
                meta = dict(record.metadata) | {"superseded_by": "", "superseded_at": 0.0}
                self.vectors.upsert(FACTS, [Record(record.id, record.text, meta)], self.embed([record.text]))
                undone.append(FactEvent(time.time(), "UNDO", e.fact_id, record.text, e.text, None, None, e.slot))
        if not undone:
            raise InputError("the facts this change made are gone; nothing to undo")
        self._log(user_id, undone)
        return next((e for e in undone if e.text), undone[0])

    def forget_user(self, user_id: str) -> int:
        try:
            return self.vectors.delete_where(FACTS, where_user(user_id))
        finally:
            self.index.forget(user_id)


@dataclass(frozen=True)
class RankedFact:
    rank: int  # 1 = first
    id: str
    text: str
    metadata: dict[str, Any]
    cosine: float
    bm25: float
    score: float  # what the facts strategy ranks by: cosine fused with BM25


def _scored(
    current: UserFacts, query_vector: np.ndarray, query_text: str | None, retriever: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The live rows, their cosines, BM25 scores (zeros without a query text) and rank scores."""
    rows, cosines = current.cosines(query_vector)
    if not len(rows) or query_text is None or retriever == "dense":
        return rows, cosines, np.zeros(len(rows)), cosines.astype(np.float64)
    bm25 = current.bm25.scores(tokenize(query_text))[rows]
    return rows, cosines, bm25, fuse(cosines, bm25, retriever)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first (ties in row order, as a stable full sort would give)."""
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    kth = np.partition(-scores, k - 1)[k - 1]
    candidates = np.flatnonzero(-scores <= kth)  # the top k and any ties with the k-th
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k]


def _merged_meta(old: dict[str, Any], fact: ExtractedFact, session_id: str, now: float) -> dict[str, Any]:
    """A fact's metadata after another statement of it: newest session and time, sources merged (last 50)."""
    meta = dict(old)
    try:
        sources = [s for s in load_json(meta.get("source_ids") or "[]") if isinstance(s, str)]
    except (StoredDataError, TypeError):
        sources = []  # damaged metadata: start the list again rather than fail the update
    sources.extend(s for s in fact.source_ids if s not in sources)
    meta.update(updated_at=now, source_ids=json.dumps(sources[-50:]), session_id=session_id)
    return meta
