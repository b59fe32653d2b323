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
import redis

from .backends.vector_store import FACTS, Hit, Record, VectorStore
from .keys import Keys, validate_id
from .llm.base import ExtractedFact
from .retrieval import Candidate, CandidateIndex

Embed = Callable[[list[str]], np.ndarray]


@dataclass
class FactEvent:
    at: float
    event: str  # ADD | UPDATE | DUPLICATE | DELETE
    fact_id: str
    text: str
    previous: str | None = None
    similarity: float | None = None
    session_id: str | None = None


def _where_user(user_id: str, **extra: Any) -> dict[str, Any]:
    clauses = [{"user_id": validate_id("user", user_id)}] + [{k: v} for k, v in extra.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class FactStore:
    def __init__(
        self, vectors: VectorStore, embed: Embed, client: redis.Redis, keys: Keys, dup_similarity: float = 0.9
    ) -> None:
        self.vectors = vectors
        self.embed = embed
        self.r = client
        self.keys = keys
        self.dup_similarity = dup_similarity

    def remember(self, user_id: str, session_id: str, facts: list[ExtractedFact]) -> list[FactEvent]:
        if not facts:
            return []
        vectors = self.embed([f.text for f in facts])
        events = [self._remember_one(user_id, session_id, f, v) for f, v in zip(facts, vectors)]
        self._log(user_id, events)
        return events

    def _remember_one(self, user_id: str, session_id: str, fact: ExtractedFact, vector: np.ndarray) -> FactEvent:
        now = time.time()
        if fact.slot:
            same_slot = self.vectors.get(FACTS, where=_where_user(user_id, slot=fact.slot))
            if same_slot:
                old = same_slot[0]
                if old.text.strip().lower() == fact.text.strip().lower():
                    self._touch(old, vector, fact, session_id, now)
                    return FactEvent(now, "DUPLICATE", old.id, fact.text, old.text, 1.0, session_id)
                self._touch(old, vector, fact, session_id, now, new_text=fact.text)
                return FactEvent(now, "UPDATE", old.id, fact.text, old.text, None, session_id)
        nearest = self.vectors.query(FACTS, vector, 1, _where_user(user_id)) if self.count(user_id) else []
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
        sources = json.loads(meta.get("source_ids") or "[]")
        sources.extend(s for s in fact.source_ids if s not in sources)
        meta.update(updated_at=now, source_ids=json.dumps(sources[-50:]), session_id=session_id)
        text = new_text or old.text
        if vector is None or new_text is None:
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
        hits = self.vectors.query(FACTS, query_vector, n, _where_user(user_id))
        if query_text is None or retriever == "dense":
            return [(h, h.similarity) for h in hits[:k]]
        cands = [Candidate(h.id, h.text) for h in hits]
        scores = CandidateIndex(cands, use_neighbours=False).rank(
            query_text, np.array([h.similarity for h in hits]), retriever
        )
        order = np.argsort(-scores, kind="stable")[:k]
        return [(hits[i], float(scores[i])) for i in order]

    def count(self, user_id: str) -> int:
        return self.vectors.count(FACTS, _where_user(user_id))

    def all(self, user_id: str, with_embeddings: bool = False) -> list[Record]:
        return self.vectors.get(FACTS, where=_where_user(user_id), with_embeddings=with_embeddings)

    def history(self, user_id: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.r.lrange(self.keys.user(user_id).fact_log, 0, -1):
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return out

    def delete(self, user_id: str, fact_id: str) -> None:
        records = self.vectors.get(FACTS, ids=[fact_id])
        if not records or records[0].metadata.get("user_id") != user_id:
            raise KeyError(f"no fact {fact_id!r} for user {user_id!r}")
        self.vectors.delete(FACTS, ids=[fact_id])
        self._log(user_id, [FactEvent(time.time(), "DELETE", fact_id, records[0].text)])

    def forget(self, user_id: str) -> int:
        return self.vectors.delete_where(FACTS, _where_user(user_id))
