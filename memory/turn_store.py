"""Conversation turns in Chroma, ranked by the shared retrieval code.

The episodic strategy recalls past sessions through this store (BM25 over a
session's turns fused with its best turn cosine), and the Recall Lab measures
the very same code on LoCoMo. Rankings are exact: the user's turn
embeddings are read once from Chroma and cached in-process until the count
changes, so a score is never an approximate-index artefact.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .backends.redis_client import RedisClient
from .backends.vector_store import Record, VectorBackend
from .filters import where_session, where_user
from .keys import Keys, validate_id
from .retrieval import WEIGHTS, Candidate, CandidateIndex, Weights

TURNS = "memlab_turns"
Embed = Callable[[list[str]], np.ndarray]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TurnHit:
    id: str
    text: str
    session_id: str
    position: int
    score: float
    similarity: float


@dataclass(frozen=True)
class SessionHit:
    session_id: str
    score: float
    similarity: float  # best turn cosine in the session


@dataclass
class _Loaded:
    version: str | int  # the user's turns token, or (without one) their count
    cands: list[Candidate]
    vectors: np.ndarray
    indexes: dict[str | None, tuple[np.ndarray, CandidateIndex]] = field(default_factory=dict)

    def view(self, exclude_session: str | None) -> tuple[np.ndarray, CandidateIndex]:
        """Rows and keyword index of the candidates outside ``exclude_session``, built once per exclusion."""
        if exclude_session not in self.indexes:
            if len(self.indexes) > 8:
                self.indexes.clear()
            keep = np.array([i for i, c in enumerate(self.cands) if c.group != exclude_session], dtype=int)
            self.indexes[exclude_session] = (keep, CandidateIndex([self.cands[i] for i in keep]))
        return self.indexes[exclude_session]


class TurnVersions:
    """A token in Redis per user that changes whenever their indexed turns change, in any process.

    Checking it is one GET; counting the user's turns in Chroma (the fallback
    when no token exists yet) reads every one of their ids.
    """

    def __init__(self, client: Callable[[], RedisClient], keys: Keys) -> None:
        self._client = client
        self.keys = keys

    def get(self, user_id: str) -> str | None:
        return self._client().get(self.keys.user(user_id).turns_version)

    def changed(self, user_id: str) -> None:
        self._client().set(self.keys.user(user_id).turns_version, uuid.uuid4().hex)

    def forget(self, user_id: str) -> None:
        self._client().delete(self.keys.user(user_id).turns_version)


class TurnStore:
    def __init__(
        self, vectors: VectorBackend, embed: Embed, batch: int = 256, versions: TurnVersions | None = None
    ) -> None:
        self.vectors = vectors
        self.embed = embed
        self.batch = batch
        self.versions = versions
        self._cache: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def _changed(self, user_id: str) -> None:
        with self._lock:
            self._cache.pop(user_id, None)
        if self.versions is not None:
            self.versions.changed(user_id)

    def add(
        self, user_id: str, session_id: str, turns: list[tuple[str, str, int, float]], progress: Progress | None = None
    ) -> None:
        """Store (turn id, text, position, created_at) rows; re-adding an id overwrites it."""
        validate_id("user", user_id)
        validate_id("session", session_id)
        for start in range(0, len(turns), self.batch):
            chunk = turns[start : start + self.batch]
            records = [
                Record(
                    f"{user_id}/{session_id}/{tid}",
                    text,
                    {
                        "user_id": user_id,
                        "session_id": session_id,
                        "turn_id": tid,
                        "position": int(pos),
                        "created_at": float(at),
                    },
                )
                for tid, text, pos, at in chunk
            ]
            self.vectors.upsert(TURNS, records, self.embed([r.text for r in records]))
            if progress:
                progress(min(start + self.batch, len(turns)), len(turns))
        self._changed(user_id)

    def count(self, user_id: str) -> int:
        return self.vectors.count(TURNS, where_user(user_id))

    def _load(self, user_id: str) -> _Loaded:
        token = self.versions.get(user_id) if self.versions is not None else None
        version: str | int = token if token is not None else self.count(user_id)
        with self._lock:
            cached = self._cache.get(user_id)
            if cached is not None and cached.version == version:
                return cached
        records = self.vectors.get(TURNS, where=where_user(user_id), with_embeddings=True)
        cands = [
            Candidate(
                str(r.metadata.get("turn_id", r.id)),
                r.text,
                str(r.metadata.get("session_id", "")),
                int(r.metadata.get("position", 0)),
            )
            for r in records
        ]
        vectors = np.array([r.embedding for r in records], dtype=np.float32) if records else np.zeros((0, 384))
        loaded = _Loaded(version if token is not None else len(records), cands, vectors)
        with self._lock:
            self._cache[user_id] = loaded
        return loaded

    def _scored(
        self, user_id: str, query_vector: np.ndarray, exclude_session: str | None
    ) -> tuple[CandidateIndex, np.ndarray]:
        loaded = self._load(user_id)
        with self._lock:
            keep, index = loaded.view(exclude_session)
        dense = loaded.vectors[keep] @ query_vector if len(keep) else np.zeros(0)
        return index, dense

    def search_turns(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        k: int,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
    ) -> list[TurnHit]:
        index, dense = self._scored(user_id, query_vector, exclude_session)
        cands = index.cands
        scores = index.rank(query, dense, retriever, weights)
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            TurnHit(cands[i].id, cands[i].text, cands[i].group, cands[i].position, float(scores[i]), float(dense[i]))
            for i in order
        ]

    def search_sessions(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        k: int,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
    ) -> list[SessionHit]:
        index, dense = self._scored(user_id, query_vector, exclude_session)
        scores = index.rank_groups(query, dense, retriever, weights)
        best = dict(zip(index.groups, index.best_per_group(dense).tolist()))
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
        return [SessionHit(g, s, best[g]) for g, s in ranked]

    def clear_session(self, user_id: str, session_id: str) -> int:
        """Delete one session's turns, so a cleared session can no longer be recalled."""
        n = self.vectors.delete_where(TURNS, where_session(user_id, session_id))
        self._changed(user_id)
        return n

    def forget_user(self, user_id: str) -> int:
        n = self.vectors.delete_where(TURNS, where_user(user_id))
        with self._lock:
            self._cache.pop(user_id, None)
        if self.versions is not None:  # the token goes with the user's other keys; without it, counts decide
            self.versions.forget(user_id)
        return n
