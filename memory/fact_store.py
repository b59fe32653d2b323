"""Long-term facts per user in Chroma, with an add/update log in Redis.

A fact that repeats an existing one (cosine similarity at or above the
duplicate threshold) only refreshes it; a fact in the same *slot* (the
user's name, home town...) replaces the old text. Every decision goes to the
user's fact log, like mem0's history, so the Vector memory page can show why
a fact changed. Reads are always filtered by user.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .backends.redis_client import RedisClient
from .backends.vector_store import FACTS, Hit, Record, VectorBackend
from .errors import InputError, StaleEditError, StoredDataError
from .fact_index import FactIndex, UserFacts
from .filters import where_user
from .keys import Keys, validate_id
from .llm.base import ExtractedFact
from .llm.rules import whole_word
from .retrieval import fuse, tokenize
from .session_store import Entries
from .stored import CorruptEntry, as_dict, as_number, as_text, as_timestamp, load_json, preview

Embed = Callable[[list[str]], np.ndarray]


def slot_of(metadata: dict[str, Any]) -> str | None:
    """A stored fact's slot ("name", "trip:kyoto"...), or None; Chroma stores "no slot" as ""."""
    return str(metadata.get("slot") or "") or None


EVENTS = ("ADD", "UPDATE", "DUPLICATE", "DELETE", "EDIT", "UNDO")
MAX_FACT_CHARS = 2000  # a fact rides in every later context of its user: edits and imports are held to this


@dataclass
class FactEvent:
    at: float
    event: str  # ADD | UPDATE | DUPLICATE | DELETE | EDIT (by hand) | UNDO
    fact_id: str
    text: str
    previous: str | None = None
    similarity: float | None = None
    session_id: str | None = None
    slot: str | None = None
    job: str | None = None  # the upkeep job (turn) that made it, so a replayed job is recognised

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
        )


class _Writes:
    """A batch of changes to one user's facts: applied to the in-memory copy at once (later facts of the batch
    see them), and sent to Chroma at the end in one delete and one upsert (a later change to a fact wins)."""

    def __init__(self, facts: UserFacts) -> None:
        self.facts = facts
        self.upserts: dict[str, tuple[Record, np.ndarray]] = {}
        self.deletes: set[str] = set()

    def put(self, record: Record, vector: np.ndarray) -> None:
        self.facts.put(record.id, record.text, record.metadata, vector)
        self.upserts[record.id] = (record, vector)
        self.deletes.discard(record.id)

    def delete(self, fact_id: str) -> None:
        self.facts.drop(fact_id)
        self.deletes.add(fact_id)
        self.upserts.pop(fact_id, None)

    def flush(self, vectors: VectorBackend) -> None:
        if self.deletes:
            vectors.delete(FACTS, ids=sorted(self.deletes))
        if self.upserts:
            records = [r for r, _ in self.upserts.values()]
            vectors.upsert(FACTS, records, np.stack([v for _, v in self.upserts.values()]))


def derived_id(user_id: str, job: str, index: int) -> str:
    """The id of the ``index``-th fact a job adds: the same on a retry, so a replayed job re-writes, not duplicates."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"memlab:{user_id}:{job}:{index}").hex


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
            writes = _Writes(current)
            try:
                for i, (fact, vector) in enumerate(zip(facts, vectors)):
                    new_id = derived_id(user_id, job, i) if job else uuid.uuid4().hex
                    if fact.action == "delete":
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
        for raw in self.r.lrange(self.keys.user(user_id).fact_log, -look_back, -1):
            try:
                data = load_json(raw)
                if isinstance(data, dict) and data.get("job") == job:
                    found = found if found is not None else []
                    found.append(FactEvent.from_dict(data))
            except StoredDataError:
                continue  # a damaged event of this job is skipped; the rest is still recorded
        return found

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
            events.append(
                FactEvent(
                    now, "DELETE", record.id, record.text, record.text, None, session_id, slot_of(record.metadata)
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
        metadata = {
            "user_id": user_id,
            "session_id": session_id,
            "created_at": now,
            "updated_at": now,
            "slot": fact.slot or "",
            "source_ids": json.dumps(list(fact.source_ids)),
        }
        writes.put(Record(new_id, fact.text, metadata), vector)
        return FactEvent(now, "ADD", new_id, fact.text, None, None, session_id)

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

    def all(self, user_id: str, with_embeddings: bool = False) -> list[Record]:
        return self.vectors.get(FACTS, where=where_user(user_id), with_embeddings=with_embeddings)

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

    def delete(self, user_id: str, fact_id: str) -> int:
        """Delete one of the user's facts (logged); returns 1, or 0 when the user has no such fact."""
        with self.index.lock:  # a second click finds it gone: one DELETE in the log
            record = self._own(user_id, fact_id)
            if record is None:
                return 0
            self.vectors.delete(FACTS, ids=[fact_id])
            slot = slot_of(record.metadata)
            self._log(user_id, [FactEvent(time.time(), "DELETE", fact_id, record.text, record.text, None, None, slot)])
        return 1

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
        text = " ".join((text or "").split())
        if not text:
            raise InputError("a fact cannot be empty; delete it instead")
        if len(text) > MAX_FACT_CHARS:
            raise InputError(f"a fact is limited to {MAX_FACT_CHARS:,} characters")
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

    def restore(
        self, user_id: str, fact_id: str, text: str, slot: str | None, session_id: str = "", event: str | None = None
    ) -> None:
        """Put a fact back under its own id (undo of a delete, or an import, logged as ``event`` when given)."""
        now = time.time()
        metadata = {
            "user_id": validate_id("user", user_id),
            "session_id": session_id,
            "created_at": now,
            "updated_at": now,
            "slot": slot or "",
            "source_ids": "[]",
        }
        self.vectors.upsert(FACTS, [Record(fact_id, text, metadata)], self.embed([text]))
        if event is not None:
            self._log(user_id, [FactEvent(now, event, fact_id, text, None, None, session_id or None, slot)])

    def undo_last(self, user_id: str) -> FactEvent:
        """Undo the user's last change to their facts (an ADD, UPDATE, EDIT or DELETE), logged as UNDO.

        One step, once: the fact gets back exactly the text it had before that
        change. Refused, with nothing written, when the change cannot be undone
        safely: a damaged log entry after it (the real last change is unknown),
        or a fact that no longer holds what the change left.
        """
        with self.index.lock:
            last = self._last_change(user_id)
            current = self._own(user_id, last.fact_id)
            if last.event == "DELETE":
                if current is not None:
                    raise InputError(f"fact {last.fact_id!r} exists again (restored or imported); nothing to undo")
                restored = last.previous or last.text
                self.restore(user_id, last.fact_id, restored, last.slot)
            else:
                if current is not None and current.text != last.text:
                    raise StaleEditError(
                        f"the fact changed since that change; it now reads {preview(current.text, 300)!r}; "
                        "nothing was undone",
                        current.text,
                    )
                if last.event == "ADD":
                    if current is not None:
                        self.vectors.delete(FACTS, ids=[last.fact_id])
                    restored = ""
                else:  # UPDATE, EDIT
                    restored = last.previous or ""
                    if current is None or not restored:
                        raise InputError("the fact this change made is gone; nothing to undo")
                    self._rewrite(current, restored)
            event = FactEvent(
                time.time(), "UNDO", last.fact_id, restored, current.text if current else None, None, None, last.slot
            )
            self._log(user_id, [event])
        return event

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
