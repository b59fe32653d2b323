"""Chroma adapter: an embedded PersistentClient or a Chroma server, one code path.

Collections are created in cosine space and we always pass our own
embeddings (``embeddings=`` / ``query_embeddings=``): left to itself Chroma
tries to download an ONNX model, which fails offline.

Chroma's own errors are wrapped here into ``VectorStoreError`` with the real
cause (server down or hung, folder not writable, a damaged database file).
Its HTTP client has no timeout of its own and talks to the server inside its
constructor, so a server is first asked for a heartbeat with a short
timeout, and the client's session is then given one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from ..errors import InputError, MemoryLabError, RefusedError, VectorStoreError
from .compat import forget_chroma_system

# chromadb (and httpx under it) load only when a store is opened: commands that need no vector store
# (history, sessions, redis stop) start in a fraction of the time.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

log = logging.getLogger(__name__)

FACTS = "memlab_facts"
EPISODES = "memlab_episodes"

F = TypeVar("F", bound=Callable[..., Any])


def _explain(exc: BaseException, where: str, timeout_s: float) -> str:
    """What probably went wrong, in words a user can act on."""
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"Chroma at {where} did not answer within {timeout_s:g}s: the server is hung or overloaded"
    if isinstance(exc, (httpx.ConnectError, ConnectionError)):
        return f"cannot reach Chroma at {where} ({text}); check CHROMA_HOST/CHROMA_PORT and that the server runs"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.strerror:
        return f"Chroma cannot use {where} ({exc.strerror}): make it a writable folder, or set MEMLAB_DATA_DIR"
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered or "permission denied" in lowered:
        return f"Chroma cannot write to {where} (read-only or permission denied): make the folder writable"
    if "not a database" in lowered or "malformed" in lowered or "file is not" in lowered:
        return f"Chroma's database file under {where} is damaged ({text}); move it aside to start empty"
    return f"Chroma at {where} failed: {type(exc).__name__}: {text}"


def _is_timeout(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.TimeoutException)


# A Chroma server (1.x) that is building a collection's first index segment while it is read answers
# "Error creating hnsw segment reader: Nothing found on disk" (chroma-core/chroma#4212); a moment later the
# same read works. Reads are retried on it, briefly; writes never are.
_TRANSIENT_READ = "hnsw segment reader"
_READ_RETRIES_S = (0.05, 0.15, 0.4)


def _read_again(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("chromadb") and _TRANSIENT_READ in str(exc)


def _wrapped(method: F, retry_reads: bool = False) -> F:
    """Turn any Chroma, httpx or OS error raised by a store method into a ``VectorStoreError``."""

    @functools.wraps(method)
    def call(self: ChromaStore, *args: Any, **kwargs: Any) -> Any:
        try:
            if not retry_reads:
                return method(self, *args, **kwargs)
            for pause in _READ_RETRIES_S:
                try:
                    return method(self, *args, **kwargs)
                except Exception as exc:  # only the known transient read error is retried
                    if not _read_again(exc):
                        raise
                    log.info("Chroma read failed transiently (%s); reading again in %.2fs", exc, pause)
                    time.sleep(pause)
            return method(self, *args, **kwargs)
        except (MemoryLabError, ValueError) as exc:
            if isinstance(exc, MemoryLabError) or not type(exc).__module__.startswith("chromadb"):
                raise
            raise VectorStoreError(_explain(exc, self.location, self.timeout_s)) from exc
        except Exception as exc:  # chroma raises many kinds; all are the same user problem
            raise VectorStoreError(_explain(exc, self.location, self.timeout_s), _is_timeout(exc)) from exc

    return call  # type: ignore[return-value]


def _read(method: F) -> F:
    """``_wrapped`` for a read, which may be tried again on a transient server error."""
    return _wrapped(method, retry_reads=True)


def server_heartbeat(location: str, timeout_s: float) -> None:
    """Ask a Chroma server at ``location`` (``http://host:port``) for a heartbeat, without loading chromadb.

    Raises ``VectorStoreError`` saying why when it does not answer in time.
    """
    import httpx

    try:
        httpx.get(f"{location}/api/v2/heartbeat", timeout=timeout_s).raise_for_status()
    except httpx.HTTPStatusError:
        pass  # it answered: an older or newer API path is still a live server
    except httpx.HTTPError as exc:
        raise VectorStoreError(_explain(exc, location, timeout_s), _is_timeout(exc)) from exc


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
    embedding: list[float] | np.ndarray | None = field(default=None, repr=False)


class VectorBackend(Protocol):
    """What the fact, episode and turn stores need of a vector store: Chroma (``ChromaStore``) or Qdrant."""

    mode: str  # "embedded" or "server"
    location: str
    timeout_s: float

    def heartbeat(self) -> bool: ...

    @property
    def version(self) -> str: ...

    def upsert(self, name: str, records: Sequence[Record], embeddings: np.ndarray) -> None: ...

    def query(self, name: str, embedding: np.ndarray, k: int, where: dict[str, Any]) -> list[Hit]: ...

    def get(
        self,
        name: str,
        where: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        with_embeddings: bool = False,
    ) -> list[Record]: ...

    def delete(self, name: str, *, ids: list[str] | None = None, where: dict[str, Any] | None = None) -> None: ...

    def count(self, name: str, where: dict[str, Any] | None = None) -> int: ...

    def delete_where(self, name: str, where: dict[str, Any]) -> int: ...


class DeleteWhere:
    """``delete_where`` for both stores, from their own ``count`` and ``delete``."""

    def delete_where(self, name: str, where: dict[str, Any]) -> int:
        """Delete the records matching ``where``; returns how many there were."""
        store = cast(VectorBackend, self)
        n = store.count(name, where)
        if n:
            store.delete(name, where=where)
        return n


class ChromaStore(DeleteWhere):
    """Chroma: embedded (``PersistentClient``) or a server (``CHROMA_HOST``)."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        host: str | None = None,
        port: int = 8000,
        database: str = "default_database",
        timeout_s: float = 5.0,
    ) -> None:
        import chromadb
        import httpx
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        self.timeout_s = timeout_s
        self.mode = "server" if host else "embedded"
        self.location = f"http://{host}:{port}" if host else str(path)
        try:
            if host:
                self._preflight()
                self._client = chromadb.HttpClient(host=host, port=port, database=database, settings=settings)
                session = getattr(getattr(self._client, "_server", None), "_session", None)
                if isinstance(session, httpx.Client):
                    session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
            else:
                assert path is not None, "an embedded Chroma needs a path"
                path.mkdir(parents=True, exist_ok=True)
                if not os.access(path, os.W_OK):
                    raise PermissionError(f"permission denied: {path}")
                self._client = chromadb.PersistentClient(path=str(path), database=database, settings=settings)
        except VectorStoreError:
            raise
        except Exception as exc:  # chroma raises many kinds on open
            self._forget_failed_system()
            raise VectorStoreError(_explain(exc, self.location, timeout_s), _is_timeout(exc)) from exc
        self._collections: dict[str, Any] = {}

    def _preflight(self) -> None:
        """A heartbeat with a timeout: chroma's own client would wait forever on a hung server."""
        server_heartbeat(self.location, min(self.timeout_s, 3.0))

    def _forget_failed_system(self) -> None:
        """Chroma caches one system per path even when it failed to start; later opens then fail oddly."""
        forget_chroma_system(self.location)

    @_wrapped
    def collection(self, name: str) -> Any:
        if not 3 <= len(name) <= 512:
            raise InputError(f"a Chroma collection name needs 3-512 characters: {name!r}")
        if name not in self._collections:
            self._collections[name] = self._client.get_or_create_collection(
                name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
        return self._collections[name]

    def heartbeat(self) -> bool:
        try:
            self._client.heartbeat()
            return True
        except Exception:  # any failure means "not healthy"; the caller shows it
            log.info("Chroma heartbeat failed at %s", self.location, exc_info=True)
            return False

    @property
    def version(self) -> str:
        import chromadb

        return str(chromadb.__version__)

    @_wrapped
    def upsert(self, name: str, records: Sequence[Record], embeddings: np.ndarray) -> None:
        if not records:
            return
        self.collection(name).upsert(
            ids=[r.id for r in records],
            documents=[r.text for r in records],
            metadatas=[r.metadata for r in records],
            embeddings=[list(map(float, v)) for v in embeddings],
        )

    @_read
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

    @_read
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
                # An array, not a list of floats: a user's turns are hundreds of 384-float rows (the
                # LongMemEval eval reads 300 users), and every reader takes them with np.asarray.
                embedding=np.asarray(embs[i], dtype=np.float32) if embs is not None else None,
            )
            for i, rid in enumerate(result["ids"])
        ]

    @_wrapped
    def delete(self, name: str, *, ids: list[str] | None = None, where: dict[str, Any] | None = None) -> None:
        if ids is None and where is None:
            raise RefusedError("refusing to delete a whole collection without a filter")
        self.collection(name).delete(ids=ids, where=where)

    @_read
    def count(self, name: str, where: dict[str, Any] | None = None) -> int:
        """Records in the collection, or only those matching ``where`` (ids only are fetched)."""
        if where is None:
            return int(self.collection(name).count())
        return len(self.collection(name).get(where=where, include=[])["ids"])
