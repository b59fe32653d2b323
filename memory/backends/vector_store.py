"""Chroma adapter: an embedded PersistentClient or a Chroma server, one code path.

Collections are created in cosine space and we always pass our own
embeddings (``embeddings=`` / ``query_embeddings=``): left to itself Chroma
tries to download an ONNX model, which fails offline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.config import Settings as ChromaSettings  # noqa: E402

FACTS = "memlab_facts"
EPISODES = "memlab_episodes"


class VectorStoreError(RuntimeError):
    """Chroma is unreachable or refused an operation."""


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: dict[str, Any]
    distance: float

    @property
    def similarity(self) -> float:
        """Cosine similarity; Chroma's cosine space reports distance = 1 - similarity."""
        return 1.0 - self.distance


@dataclass
class Record:
    id: str
    text: str
    metadata: dict[str, Any]
    embedding: list[float] | None = field(default=None, repr=False)


class VectorStore:
    def __init__(self, *, path: Path | None = None, host: str | None = None, port: int = 8000) -> None:
        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if host:
                self.mode = "server"
                self.location = f"http://{host}:{port}"
                self._client = chromadb.HttpClient(host=host, port=port, settings=settings)
            else:
                assert path is not None, "an embedded Chroma needs a path"
                path.mkdir(parents=True, exist_ok=True)
                self.mode = "embedded"
                self.location = str(path)
                self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as exc:  # noqa: BLE001 - chroma raises many kinds on connect
            raise VectorStoreError(f"cannot open Chroma ({host or path}): {exc}") from exc
        self._collections: dict[str, Any] = {}

    def collection(self, name: str) -> Any:
        if not 3 <= len(name) <= 512:
            raise ValueError(f"a Chroma collection name needs 3-512 characters: {name!r}")
        if name not in self._collections:
            self._collections[name] = self._client.get_or_create_collection(
                name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
        return self._collections[name]

    def heartbeat(self) -> bool:
        try:
            self._client.heartbeat()
            return True
        except Exception:  # noqa: BLE001
            return False

    @property
    def version(self) -> str:
        return str(chromadb.__version__)

    def upsert(self, name: str, records: Sequence[Record], embeddings: np.ndarray) -> None:
        if not records:
            return
        self.collection(name).upsert(
            ids=[r.id for r in records],
            documents=[r.text for r in records],
            metadatas=[r.metadata for r in records],
            embeddings=[list(map(float, v)) for v in embeddings],
        )

    def query(self, name: str, embedding: np.ndarray, k: int, where: dict[str, Any]) -> list[Hit]:
        col = self.collection(name)
        result = col.query(
            query_embeddings=[list(map(float, embedding))],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits: list[Hit] = []
        for i, rid in enumerate(result["ids"][0]):
            hits.append(
                Hit(
                    id=rid,
                    text=result["documents"][0][i] or "",
                    metadata=dict(result["metadatas"][0][i] or {}),
                    distance=float(result["distances"][0][i]),
                )
            )
        return hits

    def get(
        self,
        name: str,
        where: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        with_embeddings: bool = False,
    ) -> list[Record]:
        include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
        result = self.collection(name).get(where=where, ids=ids, include=include)
        embs = result.get("embeddings") if with_embeddings else None
        return [
            Record(
                id=rid,
                text=(result["documents"][i] or ""),
                metadata=dict(result["metadatas"][i] or {}),
                embedding=[float(x) for x in embs[i]] if embs is not None else None,
            )
            for i, rid in enumerate(result["ids"])
        ]

    def delete(self, name: str, *, ids: list[str] | None = None, where: dict[str, Any] | None = None) -> None:
        if ids is None and where is None:
            raise ValueError("refusing to delete a whole collection without a filter")
        self.collection(name).delete(ids=ids, where=where)

    def count(self, name: str, where: dict[str, Any] | None = None) -> int:
        """Records in the collection, or only those matching ``where`` (ids only are fetched)."""
        if where is None:
            return int(self.collection(name).count())
        return len(self.collection(name).get(where=where, include=[])["ids"])

    def delete_where(self, name: str, where: dict[str, Any]) -> int:
        """Delete the records matching ``where``; returns how many there were."""
        n = self.count(name, where)
        if n:
            self.delete(name, where=where)
        return n
