"""Embeddings of data sets kept on disk, keyed by the model and a hash of the text.

Why: the Recall Lab and ``python -m memory eval`` embed the same thousands of
LoCoMo turns on every fresh index (a new data folder, a test, another
machine's clone), and that was most of an evaluation's time. Vectors are
stored in one SQLite file beside the exported model (``MEMLAB_MODEL_CACHE``),
so every data folder shares them; a text is embedded once per model. Missing
texts are embedded together in one call, which also lets the embedder batch
texts of similar length.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Embed = Callable[[list[str]], np.ndarray]


class EmbeddingCache:
    def __init__(self, embed: Embed, path: Path, model_key: str) -> None:
        self.embed = embed
        self.path = path
        self.model_key = model_key
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_key}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``: read from disk where known, the rest embedded in one call and stored.

        The lock covers the database only, not the embedding: a second thread reads the cache (or embeds
        other texts) while one embeds, as the LongMemEval eval does to embed the next history while the
        current one is stored.
        """
        texts = list(texts)
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock, self._connect() as db:
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 900):
                chunk = unique[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for key, blob in db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (384,):
                        found[key] = vector
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            first = {keys[i]: texts[i] for i in missing}  # each new text once
            vectors = self.embed(list(first.values()))
            rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(first, vectors)]
            with self._lock, self._connect() as db:
                db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)
            found.update({k: np.asarray(v, dtype=np.float32) for k, v in zip(first, vectors)})
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([found[k] for k in keys])


class VectorMemo:
    """Vectors of short texts kept in memory: words, and questions asked again in a voice.

    Why: the turn index is rebuilt after every new turn, and its related words (``retrieval/related.py``)
    would be embedded again each time; with this, only its new words are. Bounded: past ``limit`` texts
    it starts again (a user's vocabulary is a few thousand words).
    """

    def __init__(self, embed: Embed, limit: int = 100_000) -> None:
        self.embed = embed
        self.limit = limit
        self._known: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            found = {t: self._known[t] for t in texts if t in self._known}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, np.asarray(self.embed(missing), dtype=np.float32)))
            found.update(fresh)
            with self._lock:
                if len(self._known) + len(fresh) > self.limit:
                    self._known.clear()
                self._known.update(fresh)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([found[t] for t in texts])
