"""Qdrant as the alternative vector store (``MEMLAB_VECTOR_STORE=qdrant``): the same interface as Chroma's.

Local mode (``qdrant-client`` keeping its files under the data folder, no
server) by default; ``QDRANT_URL`` for a Qdrant server. Like the embedded
Chroma, local mode belongs to one process: several app replicas or external
workers need a server.

Qdrant wants UUIDs or integers as point ids, so a record's id is mapped to
a UUID5 of itself and kept in the payload (``_id``), with its text (``_text``).
Collections use cosine distance; a hit's distance is 1 − Qdrant's score, as
in Chroma's cosine space. Filters are written in Chroma's ``where`` syntax
(equality, ``$eq``, ``$ne``, ``$in``, ``$and``) and translated here, so the
stores above do not know which backend they talk to.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import MemoryLabError, RefusedError, VectorStoreError
from .vector_store import DeleteWhere, Hit, Record

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
_ID, _TEXT = "_id", "_text"
_PAGE = 1000


def _wrapped(method: F) -> F:
    """Any Qdrant, HTTP or OS error becomes a ``VectorStoreError`` that names the store."""

    @functools.wraps(method)
    def call(self: QdrantStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except MemoryLabError:
            raise
        except Exception as exc:  # qdrant-client raises many kinds; all are the same user problem
            raise VectorStoreError(f"Qdrant at {self.location} failed: {type(exc).__name__}: {exc}") from exc

    return call  # type: ignore[return-value]


def point_id(record_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"memlab:{record_id}"))


def to_filter(where: dict[str, Any] | None) -> Any:
    """A Chroma ``where`` filter as a Qdrant ``Filter`` (None for no filter)."""
    from qdrant_client import models

    if not where:
        return None
    must: list[Any] = []
    must_not: list[Any] = []

    def add(clause: dict[str, Any]) -> None:
        for key, condition in clause.items():
            if key == "$and":
                for part in condition:
                    add(part)
                continue
            if key.startswith("$"):
                raise NotImplementedError(f"filter operator {key} is not supported")
            if not isinstance(condition, dict):
                condition = {"$eq": condition}
            for op, value in condition.items():
                if op == "$eq":
                    must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
                elif op == "$ne":
                    must_not.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
                elif op == "$in":
                    must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(value))))
                else:
                    raise NotImplementedError(f"filter operator {op} is not supported")

    add(where)
    return models.Filter(must=must or None, must_not=must_not or None)


class QdrantStore(DeleteWhere):
    def __init__(self, *, path: Path | None = None, url: str | None = None, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.mode = "server" if url else "embedded"
        self.location = url or str(path)
        try:
            from qdrant_client import QdrantClient

            if url:
                self._client = QdrantClient(url=url, timeout=max(1, int(timeout_s)))
                self._client.get_collections()  # fail now, clearly, rather than on the first search
            else:
                assert path is not None, "a local Qdrant needs a path"
                path.mkdir(parents=True, exist_ok=True)
                self._client = QdrantClient(path=str(path))
        except Exception as exc:
            hint = (
                "check QDRANT_URL and that the server runs"
                if url
                else "local mode serves one process; another may hold it: use QDRANT_URL to share one"
            )
            raise VectorStoreError(f"cannot open Qdrant at {self.location} ({hint}): {exc}") from exc
        self._exists: set[str] = set()

    def _has(self, name: str) -> bool:
        if name not in self._exists and self._client.collection_exists(name):
            self._exists.add(name)
        return name in self._exists

    def _ensure(self, name: str, size: int) -> None:
        from qdrant_client import models

        if not self._has(name):
            self._client.create_collection(
                name, vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE)
            )
            self._exists.add(name)

    def heartbeat(self) -> bool:
        try:
            self._client.get_collections()
            return True
        except Exception:  # any failure means "not healthy"
            log.info("Qdrant heartbeat failed at %s", self.location, exc_info=True)
            return False

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"qdrant-client {version('qdrant-client')}"

    @_wrapped
    def upsert(self, name: str, records: Sequence[Record], embeddings: np.ndarray) -> None:
        from qdrant_client import models

        if not records:
            return
        self._ensure(name, int(np.asarray(embeddings).shape[1]))
        points = [
            models.PointStruct(
                id=point_id(r.id), vector=[float(x) for x in v], payload={**r.metadata, _ID: r.id, _TEXT: r.text}
            )
            for r, v in zip(records, embeddings)
        ]
        self._client.upsert(name, points=points, wait=True)

    @_wrapped
    def query(self, name: str, embedding: np.ndarray, k: int, where: dict[str, Any]) -> list[Hit]:
        if not self._has(name) or k <= 0:
            return []
        found = self._client.query_points(
            name, query=[float(x) for x in embedding], limit=k, query_filter=to_filter(where), with_payload=True
        ).points
        return [Hit(*_unpack(p.payload), distance=1.0 - float(p.score)) for p in found]

    @_wrapped
    def get(
        self,
        name: str,
        where: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        with_embeddings: bool = False,
    ) -> list[Record]:
        if not self._has(name):
            return []
        if ids is not None:
            points = self._client.retrieve(
                name, [point_id(i) for i in ids], with_payload=True, with_vectors=with_embeddings
            )
            wanted = to_filter(where)
            if wanted is not None:  # rare: ids and a filter; filter what was retrieved
                allowed = {p.id for p in self._scroll(name, where, False)}
                points = [p for p in points if p.id in allowed]
        else:
            points = self._scroll(name, where, with_embeddings)
        out = []
        for p in points:
            rid, text, metadata = _unpack(p.payload)
            vector = p.vector if with_embeddings and isinstance(p.vector, list) else None
            out.append(Record(rid, text, metadata, [float(x) for x in vector] if vector is not None else None))  # type: ignore[arg-type]
        return out

    def _scroll(self, name: str, where: dict[str, Any] | None, with_vectors: bool) -> list[Any]:
        points: list[Any] = []
        offset = None
        while True:
            page, offset = self._client.scroll(
                name,
                scroll_filter=to_filter(where),
                limit=_PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            points.extend(page)
            if offset is None:
                return points

    @_wrapped
    def delete(self, name: str, *, ids: list[str] | None = None, where: dict[str, Any] | None = None) -> None:
        from qdrant_client import models

        if ids is None and where is None:
            raise RefusedError("refusing to delete a whole collection without a filter")
        if not self._has(name):
            return
        if ids is not None:
            selector: Any = models.PointIdsList(points=[point_id(i) for i in ids])
            if where is not None:
                keep = {p.id for p in self._scroll(name, where, False)}
                selector = models.PointIdsList(points=[point_id(i) for i in ids if point_id(i) in keep])
        else:
            selector = models.FilterSelector(filter=to_filter(where))
        self._client.delete(name, points_selector=selector, wait=True)

    @_wrapped
    def count(self, name: str, where: dict[str, Any] | None = None) -> int:
        if not self._has(name):
            return 0
        return int(self._client.count(name, count_filter=to_filter(where), exact=True).count)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing
            pass


def _unpack(payload: dict[str, Any] | None) -> tuple[str, str, dict[str, Any]]:
    data = dict(payload or {})
    rid = str(data.pop(_ID, ""))
    text = str(data.pop(_TEXT, "") or "")
    return rid, text, data
