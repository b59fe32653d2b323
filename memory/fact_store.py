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
from .backends.vector_store import FACTS, Hit, Record, VectorStore
from .errors import InputError, StoredDataError
from .filters import where_user
from .keys import Keys, validate_id
from .llm.base import ExtractedFact
from .llm.rules import whole_word
from .retrieval import Candidate, CandidateIndex
from .session_store import Entries
from .stored import CorruptEntry, as_dict, as_number, as_text, as_timestamp, load_json, preview

Embed = Callable[[list[str]], np.ndarray]


def slot_of(metadata: dict[str, Any]) -> str | None:
    """A stored fact's slot ("name", "trip:kyoto"...), or None; Chroma stores "no slot" as ""."""
    return str(metadata.get("slot") or "") or None


EVENTS = ("ADD", "UPDATE", "DUPLICATE", "DELETE", "EDIT", "UNDO")


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
        )


class FactStore:
    def __init__(
        self, vectors: VectorStore, embed: Embed, client: RedisClient, keys: Keys, dup_similarity: float = 0.9
    ) -> None:
        self.vectors = vectors
        self.embed = embed
        self.r = client
        self.keys = keys
        self.dup_similarity = dup_similarity

    def remember(self, user_id: str, session_id: str, facts: list[ExtractedFact]) -> list[FactEvent]:
        """Apply each change in order (a later statement wins) and log what it did."""
        if not facts:
            return []
        vectors = self.embed([f.text for f in facts])
        events: list[FactEvent] = []
        for fact, vector in zip(facts, vectors):
            if fact.action == "delete":
                events.extend(self._delete_matching(user_id, session_id, fact))
            elif fact.action == "replace" and fact.old_value:
                events.extend(
                    self._replace(user_id, session_id, fact) or [self._set(user_id, session_id, fact, vector)]
                )
            else:
                events.append(self._set(user_id, session_id, fact, vector))
        self._log(user_id, events)
        return events

    def _holding(self, user_id: str, value: str, slot: str | None) -> list[Record]:
        """The user's facts in ``slot`` (or any) that mention ``value`` as a whole word."""
        records = self.vectors.get(FACTS, where=where_user(user_id, slot=slot) if slot else where_user(user_id))
        pattern = whole_word(value)
        return [r for r in records if pattern.search(r.text)]

    def _delete_matching(self, user_id: str, session_id: str, fact: ExtractedFact) -> list[FactEvent]:
        """'I no longer live in Berlin': delete the fact in that slot if it holds that value (else nothing)."""
        if fact.value:
            doomed = self._holding(user_id, fact.value, fact.slot)
        elif fact.slot:
            doomed = self.vectors.get(FACTS, where=where_user(user_id, slot=fact.slot))
        else:
            doomed = []
        if doomed:
            self.vectors.delete(FACTS, ids=[r.id for r in doomed])
        now = time.time()
        return [FactEvent(now, "DELETE", r.id, r.text, r.text, None, session_id, slot_of(r.metadata)) for r in doomed]

    def _replace(self, user_id: str, session_id: str, fact: ExtractedFact) -> list[FactEvent]:
        """'We switched from Postgres to MySQL': rewrite every fact that mentions the old value."""
        assert fact.old_value and fact.value
        events = []
        pattern = whole_word(fact.old_value)
        for old in self._holding(user_id, fact.old_value, None):
            new_text = pattern.sub(fact.value, old.text)
            self._touch(old, None, fact, session_id, time.time(), new_text=new_text)
            events.append(FactEvent(time.time(), "UPDATE", old.id, new_text, old.text, None, session_id))
        return events

    def _set(self, user_id: str, session_id: str, fact: ExtractedFact, vector: np.ndarray) -> FactEvent:
        now = time.time()
        if fact.slot:
            same_slot = self.vectors.get(FACTS, where=where_user(user_id, slot=fact.slot))
            if same_slot:
                old = same_slot[0]
                if old.text.strip().lower() == fact.text.strip().lower():
                    self._touch(old, vector, fact, session_id, now)
                    return FactEvent(now, "DUPLICATE", old.id, fact.text, old.text, 1.0, session_id)
                self._touch(old, vector, fact, session_id, now, new_text=fact.text)
                return FactEvent(now, "UPDATE", old.id, fact.text, old.text, None, session_id)
        nearest = self.vectors.query(FACTS, vector, 1, where_user(user_id)) if self.count(user_id) else []
        if nearest and nearest[0].similarity >= self.dup_similarity:
            hit = nearest[0]
            old = Record(hit.id, hit.text, hit.metadata)
            self._touch(old, None, fact, session_id, now)
            return FactEvent(now, "DUPLICATE", hit.id, fact.text, hit.text, round(hit.similarity, 4), session_id)
        fact_id = uuid.uuid4().hex
        metadata = {
            "user_id": user_id,
            "session_id": session_id,
            "created_at": now,
            "updated_at": now,
            "slot": fact.slot or "",
            "source_ids": json.dumps(list(fact.source_ids)),
        }
        self.vectors.upsert(FACTS, [Record(fact_id, fact.text, metadata)], vector[None, :])
        return FactEvent(now, "ADD", fact_id, fact.text, None, None, session_id)

    def _touch(
        self,
        old: Record,
        vector: np.ndarray | None,
        fact: ExtractedFact,
        session_id: str,
        now: float,
        new_text: str | None = None,
    ) -> None:
        meta = dict(old.metadata)
        try:
            sources = [s for s in load_json(meta.get("source_ids") or "[]") if isinstance(s, str)]
        except (StoredDataError, TypeError):
            sources = []  # damaged metadata: start the list again rather than fail the update
        sources.extend(s for s in fact.source_ids if s not in sources)
        meta.update(updated_at=now, source_ids=json.dumps(sources[-50:]), session_id=session_id)
        text = new_text or old.text
        if vector is None:
            vector = self.embed([text])[0]
        self.vectors.upsert(FACTS, [Record(old.id, text, meta)], vector[None, :])

    def _log(self, user_id: str, events: list[FactEvent]) -> None:
        if events:
            self.r.rpush(self.keys.user(user_id).fact_log, *[json.dumps(asdict(e)) for e in events])

    def search(
        self, user_id: str, query_vector: np.ndarray, k: int, query_text: str | None = None, retriever: str = "hybrid"
    ) -> list[tuple[Hit, float]]:
        """Top-k facts with their rank score: the dense cosine, or fused with BM25 when the query text is given."""
        n = self.count(user_id)
        if not n:
            return []
        hits = self.vectors.query(FACTS, query_vector, n, where_user(user_id))
        if query_text is None or retriever == "dense":
            return [(h, h.similarity) for h in hits[:k]]
        cands = [Candidate(h.id, h.text) for h in hits]
        scores = CandidateIndex(cands, use_neighbours=False).rank(
            query_text, np.array([h.similarity for h in hits]), retriever
        )
        order = np.argsort(-scores, kind="stable")[:k]
        return [(hits[i], float(scores[i])) for i in order]

    def count(self, user_id: str) -> int:
        return self.vectors.count(FACTS, where_user(user_id))

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
        record = self._own(user_id, fact_id)
        if record is None:
            return 0
        self.vectors.delete(FACTS, ids=[fact_id])
        slot = slot_of(record.metadata)
        self._log(user_id, [FactEvent(time.time(), "DELETE", fact_id, record.text, record.text, None, None, slot)])
        return 1

    def edit(self, user_id: str, fact_id: str, text: str) -> FactEvent:
        """Change a fact's text by hand (re-embedded, logged as EDIT, undoable)."""
        text = " ".join((text or "").split())
        if not text:
            raise InputError("a fact cannot be empty; delete it instead")
        if len(text) > 2000:
            raise InputError("a fact is limited to 2,000 characters")
        record = self._own(user_id, fact_id)
        if record is None:
            raise InputError(f"user {user_id!r} has no fact {fact_id!r} (deleted meanwhile?)")
        self._touch(record, None, ExtractedFact(text), str(record.metadata.get("session_id") or ""), time.time(), text)
        event = FactEvent(time.time(), "EDIT", fact_id, text, record.text, None, None, None)
        self._log(user_id, [event])
        return event

    def restore(self, user_id: str, fact_id: str, text: str, slot: str | None, session_id: str = "") -> None:
        """Put a fact back under its own id (undo of a delete, or an import)."""
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

    def undo_last(self, user_id: str) -> FactEvent:
        """Undo the user's last change to their facts (an ADD, UPDATE, EDIT or DELETE), logged as UNDO."""
        changes = [e for e in self.history(user_id).items if e.event != "DUPLICATE"]
        if not changes:
            raise InputError("there is no change to undo")
        last = changes[-1]
        if last.event == "UNDO":
            raise InputError("the last change was already undone")
        current = self._own(user_id, last.fact_id)
        if last.event == "ADD":
            if current is not None:
                self.vectors.delete(FACTS, ids=[last.fact_id])
            restored = ""
        elif last.event in ("UPDATE", "EDIT"):
            restored = last.previous or ""
            if current is None or not restored:
                raise InputError("the fact this change made is gone; nothing to undo")
            self._touch(
                current,
                None,
                ExtractedFact(restored),
                str(current.metadata.get("session_id") or ""),
                time.time(),
                restored,
            )
        else:  # DELETE
            restored = last.previous or last.text
            self.restore(user_id, last.fact_id, restored, last.slot)
        event = FactEvent(
            time.time(), "UNDO", last.fact_id, restored, current.text if current else None, None, None, last.slot
        )
        self._log(user_id, [event])
        return event

    def forget_user(self, user_id: str) -> int:
        return self.vectors.delete_where(FACTS, where_user(user_id))
