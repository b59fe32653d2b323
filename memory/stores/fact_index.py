"""Each user's facts held in the process, kept current from the fact log, so a search reads none of them.

Why: the facts search used to count and fetch all of a user's facts from
Chroma and rebuild BM25 over them on every query (Chroma's ``count`` and
``get`` read every matching id): 700 ms at 10,000 facts, growing with memory.

Every change to a fact, by any process, appends an event naming the fact to
the user's fact log in Redis (``fact_store.py``). The log's length is
therefore the version of the user's facts: one ``LLEN`` per use tells
whether this process is current, and when another process (an app replica,
a worker) changed facts, only the ids in the new events are fetched from
Chroma. A shorter log than last seen (the user was forgotten) reloads.

Cosines are exact (a product with the user's unit vectors) and BM25 is the
same formula over the same facts, updated per fact (``LiveBM25``), so the
ranking is the one a full read gave, without the read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends import blas
from ..backends.filters import where_user
from ..backends.redis_client import RedisClient
from ..backends.vector_store import FACTS, Record, VectorBackend
from ..errors import StoredDataError
from ..keys import Keys
from ..records.stored import as_dict, load_json
from ..retrieval import LiveBM25, tokenize

MAX_USERS = 64  # users whose facts stay in memory (least recently used go first)


def slots_of(slot: object) -> list[str]:
    """The slots a fact fills: a statement may fill several ("employer|role"); "" or None is none."""
    return [s for s in str(slot or "").split("|") if s]


def is_superseded(meta: dict[str, Any]) -> bool:
    """A statement a newer one took the place of: kept in the store, out of every search (``supersession.py``)."""
    return bool(meta.get("superseded_by"))


@dataclass
class UserFacts:
    """One user's facts as rows; removed rows are tombstones until the table is rebuilt."""

    version: int = 0
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32, order="F"))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    row_of: dict[str, int] = field(default_factory=dict)
    bm25: LiveBM25 = field(default_factory=LiveBM25)

    def __len__(self) -> int:
        return len(self.row_of)

    def put(self, record_id: str, text: str, meta: dict[str, Any], vector: np.ndarray) -> None:
        if is_superseded(meta):
            # No row at all: a superseded statement kept as a tombstone made every load leave as many tombstones
            # as a long session has superseded statements, and past ``FactIndex.current``'s bound every search
            # loaded the user's facts again (a 2,000-turn session: ~200 ms a turn).
            self.drop(record_id)
            return
        vector = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        unit = vector / norm if norm > 0 else vector
        row = self.row_of.get(record_id)
        if row is None:
            row = len(self.ids)
            self.ids.append(record_id)
            self.texts.append(text)
            self.metas.append(dict(meta))
            if self.vectors.shape[0] <= row:
                # Column-major: the scan is then BLAS's vector-times-matrix kernel, which streams the matrix
                # once; a cold 10,000-fact scan took 1.3 ms row-major and 0.7 ms so (docs/benchmarks.md).
                grown = np.zeros((max(16, 2 * row), unit.shape[0]), dtype=np.float32, order="F")
                if self.vectors.size:
                    grown[: self.vectors.shape[0]] = self.vectors
                self.vectors = grown
                alive = np.zeros(grown.shape[0], dtype=bool)
                alive[: self.alive.shape[0]] = self.alive
                self.alive = alive
            self.row_of[record_id] = row
        else:
            self.texts[row], self.metas[row] = text, dict(meta)
        self.vectors[row] = unit
        self.alive[row] = True
        # A statement's keywords include what the slot rules read in it ("you live in Malmö" for "You moved…") and
        # what was said around it (what "it" or "there" stands for), as a turn's include its neighbours'.
        self.bm25.set(row, tokenize(f"{text} {meta.get('reads') or ''} {meta.get('context') or ''}"))

    def drop(self, record_id: str) -> None:
        row = self.row_of.pop(record_id, None)
        if row is not None:
            self.alive[row] = False
            self.bm25.remove(row)

    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive[: len(self.ids)])

    def cosines(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(live rows, their cosine to ``query``)."""
        rows = self.rows()
        if not len(rows):
            return rows, np.zeros(0, dtype=np.float32)
        q = np.asarray(query, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        with blas.one_thread():  # (see blas.py: a two-thread product slows the next embedding)
            every = self.vectors[: len(self.ids)] @ q  # a view: no copy of the matrix, tombstones are dropped after
        return rows, every if len(rows) == len(every) else every[rows]

    def in_slot(self, slot: str) -> list[int]:
        return [r for r in self.rows() if slot in slots_of(self.metas[r].get("slot"))]

    def record(self, row: int) -> Record:
        return Record(self.ids[row], self.texts[row], dict(self.metas[row]))

    @property
    def tombstones(self) -> int:
        return len(self.ids) - len(self.row_of)


class FactIndex:
    """The process's cache of users' facts; ``current`` brings one user's up to date and returns it."""

    def __init__(self, vectors: VectorBackend, client: RedisClient, keys: Keys) -> None:
        self.vectors = vectors
        self.r = client
        self.keys = keys
        self._users: OrderedDict[str, UserFacts] = OrderedDict()
        self.lock = threading.RLock()  # held by a batch of writes or a search on the cache

    def current(self, user_id: str) -> UserFacts:
        """The user's facts, brought up to date with the fact log (one LLEN when nothing changed)."""
        log_key = self.keys.user(user_id).fact_log
        length = int(self.r.llen(log_key))
        with self.lock:
            facts = self._users.get(user_id)
            if facts is not None:
                self._users.move_to_end(user_id)
            if facts is None or length < facts.version or facts.tombstones > max(64, len(facts)):
                facts = self._load(user_id, length)
            elif length > facts.version:
                changed = self._changed_ids(log_key, facts.version, length)
                if changed is None:
                    facts = self._load(user_id, length)
                else:
                    self._refetch(user_id, facts, changed)
                    facts.version = length
            return facts

    def closest(self, user_id: str, vector: np.ndarray) -> tuple[str, float]:
        """The id of the user's stored fact nearest ``vector`` and its cosine (``("", 0.0)`` when there is none)."""
        with self.lock:
            current = self.current(user_id)
            rows, cosines = current.cosines(vector)
            if not len(rows):
                return "", 0.0
            best = int(np.argmax(cosines))
            return current.ids[rows[best]], float(cosines[best])

    def advanced(self, user_id: str, old_version: int, new_version: int) -> None:
        """This process wrote the log from ``old_version`` to ``new_version`` and already applied the changes."""
        with self.lock:
            facts = self._users.get(user_id)
            if facts is not None and facts.version == old_version:
                facts.version = new_version

    def forget(self, user_id: str) -> None:
        with self.lock:
            self._users.pop(user_id, None)

    def _load(self, user_id: str, version: int) -> UserFacts:
        facts = UserFacts(version=version)
        for record in self.vectors.get(FACTS, where=where_user(user_id), with_embeddings=True):
            if record.embedding is not None:
                facts.put(record.id, record.text, record.metadata, np.asarray(record.embedding))
        self._users[user_id] = facts
        while len(self._users) > MAX_USERS:
            self._users.popitem(last=False)
        return facts

    def _changed_ids(self, log_key: str, start: int, end: int) -> list[str] | None:
        """Fact ids named by the log's events ``start..end-1``; None when an event cannot be read (reload)."""
        ids: list[str] = []
        for raw in self.r.lrange(log_key, start, end - 1):
            try:
                fact_id = as_dict(load_json(raw), "fact event").get("fact_id")
            except StoredDataError:
                return None
            if not isinstance(fact_id, str):
                return None
            ids.append(fact_id)
        return list(dict.fromkeys(ids))

    def _refetch(self, user_id: str, facts: UserFacts, ids: list[str]) -> None:
        found = {r.id: r for r in self.vectors.get(FACTS, ids=ids, with_embeddings=True)} if ids else {}
        for fact_id in ids:
            record = found.get(fact_id)
            if record is None or record.embedding is None or record.metadata.get("user_id") != user_id:
                facts.drop(fact_id)
            else:
                facts.put(record.id, record.text, record.metadata, np.asarray(record.embedding))
