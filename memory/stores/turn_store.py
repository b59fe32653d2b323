"""Conversation turns in Chroma, ranked by the shared retrieval code.

The episodic strategy recalls past sessions through this store (BM25 over a
session's turns fused with its best turn cosine), and the Recall Lab measures
the very same code on LoCoMo. Rankings are exact: the user's turn
embeddings are read once from Chroma and cached in-process until the count
changes, so a score is never an approximate-index artefact.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends import blas
from ..backends.embedding_cache import VectorMemo
from ..backends.filters import where_session, where_user
from ..backends.redis_client import RedisClient
from ..backends.vector_store import Record, VectorBackend
from ..errors import StoredDataError
from ..keys import Keys, validate_id
from ..records.stored import as_timestamp
from ..retrieval import WEIGHTS, Candidate, CandidateIndex, Weights, tokenize
from ..retrieval.related import content_words
from ..retrieval.voice import in_voice

log = logging.getLogger(__name__)

TURNS = "memlab_turns"
# Each sentence of a turn that has several, embedded on its own: a turn's cosine is the best of its own and
# its sentences' (docs/recall.md: a long turn's one vector blurs the sentence that answers).
SENTENCES = "memlab_turn_sentences"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ASIDE = re.compile(r"\s*\[[^\]]*\]")  # "[shares a photo: ...]": not the speaker's words, kept by the whole turn
MIN_SENTENCE_WORDS = 3
COSINE_MEMO_FLOATS = 2_000_000  # the cosines a user's loaded turns keep for queries asked again (8 MB at most)
MAX_SENTENCES = 24  # a pasted document is not a turn of talk: its first sentences only, so upkeep stays bounded
WORDS_PER_TURN = 300  # the words of a turn embedded when it is stored (for related words), at most
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
    related: tuple[str, ...] = ()  # the question's related words (``Weights.related``) this turn uses
    at: float = 0.0  # when it was said (unix seconds; 0: unknown)


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
    # Sentence vectors sorted by their candidate; ``owners``/``starts``: each owning candidate and its first row.
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 384), dtype=np.float32))
    owners: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    indexes: dict[str | None, tuple[np.ndarray, CandidateIndex]] = field(default_factory=dict)
    # Sessions this process has added turns to since the copy was read: a search that leaves them out (a turn's
    # own session) is still exact, so a long chat does not read every turn of the user again after each turn.
    unseen: set[str] = field(default_factory=set)
    asked: dict[bytes, np.ndarray] = field(default_factory=dict)  # the last queries' cosines (``cosines``)

    def cosines(self, query_vector: np.ndarray) -> np.ndarray:
        """Each candidate's cosine to the query: the best of its own vector's and its sentences'.

        Kept for the last queries (bounded): the eval's leave-one-conversation-out grid asks every
        question again under each setting of the weights.
        """
        query_vector = np.asarray(query_vector, dtype=np.float32)  # (a float64 query would copy the matrices)
        key = query_vector.tobytes()
        if key in self.asked:
            return self.asked[key].copy()
        with blas.one_thread():  # (see blas.py)
            every = self.vectors @ query_vector if len(self.cands) else np.zeros(0, dtype=np.float32)
            if len(self.owners):
                best = np.maximum.reduceat(self.sentence_vectors @ query_vector, self.starts)
                every[self.owners] = np.maximum(every[self.owners], best)
        if len(self.asked) >= max(16, COSINE_MEMO_FLOATS // max(len(self.cands), 1)):
            self.asked.clear()
        self.asked[key] = every
        return every.copy()

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

    def changed(self, user_id: str) -> tuple[str | None, str]:
        """A new token for the user's turns: (the token it replaced, in one command with the change, and it)."""
        token = uuid.uuid4().hex
        before = self._client().getset(self.keys.user(user_id).turns_version, token)
        return (None if before is None else str(before)), token

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
        # Words (for a question's related words, ``Weights.related``) and voiced questions, each embedded once.
        self.short_texts = VectorMemo(embed)

    def _changed(self, user_id: str, added_to: set[str] | None = None) -> None:
        """The user's turns changed: drop this process's copy, or, when turns were only added (to the sessions
        ``added_to``) and no other change came between, keep it for searches that leave those sessions out."""
        with self._lock:
            cached = self._cache.pop(user_id, None)
        if self.versions is None:
            return
        before, token = self.versions.changed(user_id)
        if added_to is not None and cached is not None and before is not None and before == cached.version:
            with self._lock:
                cached.version = token
                cached.unseen |= added_to
                self._cache.setdefault(user_id, cached)

    def add(
        self,
        user_id: str,
        session_id: str,
        turns: Sequence[tuple[str, str, int, float] | tuple[str, str, int, float, str]],
        progress: Progress | None = None,
    ) -> None:
        """Store (turn id, text, position, created_at[, speaker]) rows; re-adding an id overwrites it.

        The speaker lets a query that names one participant favour what they said (``Weights.speaker``).
        """
        self.add_sessions(user_id, {session_id: turns}, progress)

    def add_sessions(
        self, user_id: str, sessions: Mapping[str, Sequence[tuple[Any, ...]]], progress: Progress | None = None
    ) -> None:
        """``add`` for several sessions at once: one embedding call and one write per ``batch`` rows, across
        sessions (a history of fifty short sessions is a few writes, not fifty)."""
        validate_id("user", user_id)
        for session_id in sessions:
            validate_id("session", session_id)
        rows = [(session_id, row) for session_id, turns in sessions.items() for row in turns]
        for start in range(0, len(rows), self.batch):
            chunk = rows[start : start + self.batch]
            records = [_turn_record(user_id, session_id, row) for session_id, row in chunk]
            parts = [p for session_id, row in chunk for p in _sentence_records(user_id, session_id, row)]
            turn_vectors, part_vectors = _vectors([row for _, row in chunk], self.embed)  # one embedding call
            if parts:  # sentences first: a turn is never searchable without them
                self.vectors.upsert(SENTENCES, parts, part_vectors)
            self.vectors.upsert(TURNS, records, turn_vectors)
            # Their words now, so a question never waits for them (``Weights.related``; kept in memory). A
            # pasted document's words past the first few hundred wait for a question that needs them.
            try:
                self.short_texts(turn_words(r.text for r in records))
            except Exception:  # only a head start: a question embeds what it still needs
                log.warning("could not embed the words of %d new turns ahead of time", len(records), exc_info=True)
            if progress:
                progress(min(start + self.batch, len(rows)), len(rows))
        self._changed(user_id, set(sessions))

    def unload(self, user_id: str) -> None:
        """Drop this process's copy of the user's turns (kept since their last change), not the turns: an eval
        that reads hundreds of users once each keeps one in memory at a time."""
        with self._lock:
            self._cache.pop(user_id, None)

    def count(self, user_id: str) -> int:
        return self.vectors.count(TURNS, where_user(user_id))

    def _load(self, user_id: str, exclude_session: str | None = None) -> _Loaded:
        token = self.versions.get(user_id) if self.versions is not None else None
        version: str | int = token if token is not None else self.count(user_id)
        with self._lock:
            cached = self._cache.get(user_id)
            if cached is not None and cached.version == version and cached.unseen <= {exclude_session}:
                return cached
        records = self.vectors.get(TURNS, where=where_user(user_id), with_embeddings=True)
        cands = [
            Candidate(
                str(r.metadata.get("turn_id", r.id)),
                r.text,
                str(r.metadata.get("session_id", "")),
                int(r.metadata.get("position", 0)),
                str(r.metadata.get("speaker") or ""),
                _said_at(r.metadata.get("created_at")),
            )
            for r in records
        ]
        # Column-major, as the facts' (fact_index.py): the scan streams the matrix once.
        vectors = np.asfortranarray(
            np.array([r.embedding for r in records], dtype=np.float32) if records else np.zeros((0, 384), np.float32)
        )
        loaded = _Loaded(version if token is not None else len(records), cands, vectors)
        if records:
            row_of = {(str(r.metadata.get("session_id", "")), c.id): i for i, (r, c) in enumerate(zip(records, cands))}
            owners, sentence_vectors = [], []
            for part in self.vectors.get(SENTENCES, where=where_user(user_id), with_embeddings=True):
                row = row_of.get((str(part.metadata.get("session_id", "")), str(part.metadata.get("turn_id", ""))))
                if row is not None and part.embedding is not None:  # (a sentence of a deleted turn is ignored)
                    owners.append(row)
                    sentence_vectors.append(part.embedding)
            if owners:
                owner_of = np.array(owners, dtype=int)
                order = np.argsort(owner_of, kind="stable")
                loaded.sentence_vectors = np.asfortranarray(np.array(sentence_vectors, dtype=np.float32)[order])
                loaded.owners, loaded.starts = np.unique(owner_of[order], return_index=True)
        with self._lock:
            self._cache[user_id] = loaded
        return loaded

    def _scored(
        self,
        user_id: str,
        query_vector: np.ndarray,
        exclude_session: str | None,
        voice: tuple[str, float] | None = None,
    ) -> tuple[CandidateIndex, np.ndarray]:
        """The candidates and their cosines; with ``voice`` (the query, its share), the named participant's
        turns are also compared with the query asked in their voice (``retrieval/voice.py``)."""
        loaded = self._load(user_id, exclude_session)
        with self._lock:
            keep, index = loaded.view(exclude_session)
        every = loaded.cosines(query_vector)
        dense = every[keep] if len(keep) else np.zeros(0)
        query, share = voice or ("", 0.0)
        named = index.named_speaker(query) if share and len(dense) else None
        if named is None:
            return index, dense
        voiced = in_voice(query, index.speakers[named])
        if voiced != query:
            again = loaded.cosines(self.short_texts([voiced])[0])[keep]
            dense = np.where(index.said_by(named), (1 - share) * dense + share * again, dense)
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
        asked_at: float = 0.0,
    ) -> list[TurnHit]:
        """The ``k`` best turns; ``asked_at`` (unix seconds) places dates the query names relative to it."""
        index, related, parts = self._ranked(
            user_id, query, query_vector, retriever, exclude_session, weights, asked_at
        )
        cands, scores, dense = index.cands, parts["score"], parts["cosine"]
        order = np.argsort(-scores, kind="stable")[:k]
        related = related or {}
        return [
            TurnHit(
                cands[i].id,
                cands[i].text,
                cands[i].group,
                cands[i].position,
                float(scores[i]),
                float(dense[i]),
                tuple(index.related.word_of[t] for t in dict.fromkeys(tokenize(cands[i].text)) if t in related),
                cands[i].at,
            )
            for i in order
        ]

    def components(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
        asked_at: float = 0.0,
    ) -> tuple[list[Candidate], dict[str, np.ndarray]]:
        """Every turn with each part of its score (``CandidateIndex.components``): why it ranked where it did.

        A turn of the participant the query names has, as its ``cosine``, the mix with the query asked in
        their voice (``Weights.voice``).
        """
        cands, parts, _ = self.explain(user_id, query, query_vector, retriever, exclude_session, weights, asked_at)
        return cands, parts

    def explain(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
        asked_at: float = 0.0,
    ) -> tuple[list[Candidate], dict[str, np.ndarray], dict[str, float]]:
        """``components``, and the related words (word → cosine) its keyword part counted, from one ranking."""
        index, related, parts = self._ranked(
            user_id, query, query_vector, retriever, exclude_session, weights, asked_at
        )
        return index.cands, parts, index.related.spelled(related) if related else {}

    def _ranked(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        retriever: str,
        exclude_session: str | None,
        weights: Weights,
        asked_at: float = 0.0,
    ) -> tuple[CandidateIndex, dict[str, float] | None, dict[str, np.ndarray]]:
        """The index, the query's related words (stem → cosine) and every turn's score by part."""
        voice = (query, weights.voice) if retriever != "bm25" else None
        index, dense = self._scored(user_id, query_vector, exclude_session, voice)
        related = self._related(index, query, retriever, weights)
        return index, related, index.components(query, dense, retriever, weights, related, asked_at)

    def related_words(
        self,
        user_id: str,
        query: str,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
    ) -> dict[str, float]:
        """The stored turns' rare words the ranking counts as related to the query's (word → cosine)."""
        loaded = self._load(user_id, exclude_session)
        with self._lock:
            _, index = loaded.view(exclude_session)
        return index.related.spelled(self._related(index, query, retriever, weights) or {})

    def _related(self, index: CandidateIndex, query: str, retriever: str, weights: Weights) -> dict[str, float] | None:
        if retriever != "hybrid" or not weights.related or not index.cands:
            return None
        return index.related.terms(query, self.short_texts, skip=index.name_words())

    def search_sessions(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        k: int,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
        asked_at: float = 0.0,
    ) -> list[SessionHit]:
        """The ``k`` best sessions; ``asked_at`` (unix seconds) places dates the query names relative to it."""
        groups, parts, _ = self.explain_sessions(
            user_id, query, query_vector, retriever, exclude_session, weights, asked_at
        )
        order = np.argsort(-parts["score"], kind="stable")[:k]
        return [SessionHit(groups[i], float(parts["score"][i]), float(parts["cosine"][i])) for i in order]

    def explain_sessions(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray,
        retriever: str = "hybrid",
        exclude_session: str | None = None,
        weights: Weights = WEIGHTS,
        asked_at: float = 0.0,
    ) -> tuple[list[str], dict[str, np.ndarray], dict[str, float]]:
        """Every session with each part of its score (``CandidateIndex.group_components``), and the related
        words (word → cosine) its keyword part counted: why a session ranked where it did."""
        index, dense = self._scored(user_id, query_vector, exclude_session)
        related = self._related(index, query, retriever, weights)
        parts = index.group_components(query, dense, retriever, weights, related, asked_at)
        return index.groups, parts, index.related.spelled(related) if related else {}

    def clear_session(self, user_id: str, session_id: str) -> int:
        """Delete one session's turns, so a cleared session can no longer be recalled."""
        n = self.vectors.delete_where(TURNS, where_session(user_id, session_id))
        self.vectors.delete_where(SENTENCES, where_session(user_id, session_id))
        self._changed(user_id)
        return n

    def forget_user(self, user_id: str) -> int:
        n = self.vectors.delete_where(TURNS, where_user(user_id))
        self.vectors.delete_where(SENTENCES, where_user(user_id))
        with self._lock:
            self._cache.pop(user_id, None)
        if self.versions is not None:  # the token goes with the user's other keys; without it, counts decide
            self.versions.forget(user_id)
        return n


def _turn_record(user_id: str, session_id: str, row: tuple[Any, ...]) -> Record:
    turn_id, text, position, created_at = row[:4]
    meta = {
        "user_id": user_id,
        "session_id": session_id,
        "turn_id": turn_id,
        "position": int(position),
        "created_at": float(created_at),
    }
    if _speaker(row):
        meta["speaker"] = _speaker(row)
    return Record(f"{user_id}/{session_id}/{turn_id}", text, meta)


def _speaker(row: tuple[Any, ...]) -> str:
    """A row's speaker (its optional fifth field), or "" when it has none."""
    return str(row[4]) if len(row) > 4 and row[4] else ""


def turn_words(texts: Iterable[str]) -> list[str]:
    """The words of these turns ``add`` embeds ahead of a question (for related words), each once."""
    return list(dict.fromkeys(w for text in texts for w in content_words(text)[:WORDS_PER_TURN]))


def own_vector(text: str, parts: Sequence[str]) -> bool:
    """Whether a turn's whole text is embedded: only when its sentences do not cover it.

    A turn's cosine is the best of its own and its sentences' (``_Loaded.cosines``), and where a turn has
    sentences, the best of them is at least as close as the whole text: on LongMemEval's user turns,
    rankings were the same to the question without the whole texts' vectors (docs/recall.md). So a turn with
    sentences takes the mean of theirs as its own vector, unless it holds a bracketed aside (an image's
    caption) that its sentences leave out. That halves the embedding of a long history.
    """
    return not parts or _ASIDE.search(text) is not None


def embedded_texts(rows: Sequence[tuple[Any, ...]]) -> list[str]:
    """Every text ``add`` embeds for these rows (each turn that needs its own vector, then the sentences of
    each), e.g. to embed them in one call beforehand."""
    split = [(row[1], sentences(row[1], _speaker(row))) for row in rows]
    return [text for text, parts in split if own_vector(text, parts)] + [p for _, parts in split for p in parts]


def _vectors(rows: Sequence[tuple[Any, ...]], embed: Embed) -> tuple[np.ndarray, np.ndarray]:
    """Each row's turn vector and, in row order, its sentences' vectors, from one call to ``embed``."""
    split = [(row[1], sentences(row[1], _speaker(row))) for row in rows]
    own = [own_vector(text, parts) for text, parts in split]
    every = embed(embedded_texts(rows))
    n_own = sum(own)
    whole, part_vectors = every[:n_own], every[n_own:]
    turn_vectors = np.zeros((len(rows), every.shape[1] if len(every) else 384), dtype=np.float32)
    next_own, next_part = 0, 0
    for i, ((_, parts), has_own) in enumerate(zip(split, own)):
        if has_own:
            turn_vectors[i] = whole[next_own]
            next_own += 1
        else:
            mean = part_vectors[next_part : next_part + len(parts)].mean(axis=0)
            turn_vectors[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        next_part += len(parts)
    return turn_vectors, part_vectors


def sentences(text: str, speaker: str = "") -> list[str]:
    """The sentences of a turn worth a vector of their own: none unless it has two of three words or more.

    Each keeps the speaker's prefix (``"Ana: ..."``), as the whole turn has it: the speaker matters to dense
    recall. A text that starts with the prefix is split after it. Bracketed asides (an image's caption) are
    left to the whole turn's vector: as sentences of their own they cost recall on LoCoMo (80.7 against 81.3).
    """
    prefix = f"{speaker}: " if speaker else ""
    body = text[len(prefix) :] if prefix and text.startswith(prefix) else text
    parts = [p.strip() for p in _SENTENCE_END.split(_ASIDE.sub("", body)) if len(p.split()) >= MIN_SENTENCE_WORDS]
    return [prefix + p for p in parts[:MAX_SENTENCES]] if len(parts) > 1 else []


def _sentence_records(user_id: str, session_id: str, row: tuple[Any, ...]) -> list[Record]:
    turn_id, text = row[0], row[1]
    meta = {"user_id": user_id, "session_id": session_id, "turn_id": turn_id}
    return [
        Record(f"{user_id}/{session_id}/{turn_id}#{j}", part, dict(meta, sentence=j))
        for j, part in enumerate(sentences(text, _speaker(row)))
    ]


def _said_at(value: Any) -> float:
    """A stored turn's time (``stored.as_timestamp``), or 0.0 (unknown) when it is not a plausible one."""
    try:
        return float(as_timestamp(value, "created_at"))
    except StoredDataError:
        return 0.0
