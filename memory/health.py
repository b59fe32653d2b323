"""Is each backend up, and what to do if not: the CLI's ``doctor`` and the app's sidebar ask here.

Why apart from the lab: health is read about the engine (its settings and
connections), not part of what a turn does; the checks grew to a third of
``lab.py``. Each check returns a ``BackendStatus`` (never raises): a backend
that is down is a status with a fix, shown beside the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends.vector_store import server_heartbeat
from .errors import BackendTimeout, MemoryLabError, RedisStartError, VectorStoreError
from .lab import MemoryLab
from .llm.offline import MODEL_ID as OFFLINE_MODEL_ID


@dataclass
class BackendStatus:
    name: str
    mode: str
    location: str
    ok: bool
    version: str = ""
    detail: str = ""
    fix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    problem: str = "unreachable"  # or "not answering" (hung), for the banner's headline


def redis_status(lab: MemoryLab) -> BackendStatus:
    """PING-level health (a lost embedded server is found or started again, as by any command)."""
    s = lab.settings
    location = s.redis_url or str(lab.settings.data_dir / "redis")
    try:
        info = lab.redis.info("server")  # a lost embedded server is found or started again by the connection
        extra: dict[str, Any] = {"url": lab.redis_location}
        if lab.embedded_redis is not None:
            state = lab.embedded_redis.read_state()
            extra.update(pid=state.pid if state else None)
        return BackendStatus("Redis", s.redis_mode, location, True, str(info.get("redis_version", "")), extra=extra)
    except MemoryLabError as exc:
        problem = "not answering" if isinstance(exc, BackendTimeout) else "unreachable"
        return BackendStatus(
            "Redis", s.redis_mode, location, False, detail=str(exc), fix=_redis_fix(lab, exc), problem=problem
        )


def _redis_fix(lab: MemoryLab, exc: MemoryLabError) -> str:
    if lab.settings.redis_url:
        if isinstance(exc, BackendTimeout):
            return "The Redis at REDIS_URL is hung or overloaded: check the server"
        return "Check REDIS_URL and that the server is up"
    if isinstance(exc, BackendTimeout):
        return "Stop the hung server with `python -m memory redis stop`; the next page load starts a fresh one"
    if isinstance(exc, RedisStartError):
        return f"See {lab.settings.data_dir / 'redis' / 'redis.log'}"
    return "See the details; `python -m memory doctor` checks again"


def chroma_quick_status(lab: MemoryLab) -> BackendStatus:
    """Chroma checked without loading chromadb (half a second): a server's heartbeat, or the folder's file."""
    s = lab.settings
    if s.vector_store != "chroma":
        return chroma_status(lab)
    if s.chroma_host:
        url = f"http://{s.chroma_host}:{s.chroma_port}"
        try:
            server_heartbeat(url, 2.0)
            return BackendStatus("Chroma", "server", url, True, detail="heartbeat (quick check)")
        except VectorStoreError as exc:
            problem = "not answering" if exc.hung else "unreachable"
            fix = "Check CHROMA_HOST/CHROMA_PORT and that the server runs"
            return BackendStatus("Chroma", "server", url, False, detail=str(exc), fix=fix, problem=problem)
    folder = s.data_dir / "chroma"
    database = folder / "chroma.sqlite3"
    if database.exists():
        with database.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return BackendStatus(
                    "Chroma",
                    "embedded",
                    str(folder),
                    False,
                    detail=f"{database} is not a SQLite database (damaged)",
                    fix="Move the folder aside to start empty",
                )
    writable = os.access(folder if folder.exists() else s.data_dir if s.data_dir.exists() else Path("."), os.W_OK)
    detail = "database file looks valid (quick check)" if database.exists() else "empty: created on first use"
    return BackendStatus(
        "Chroma",
        "embedded",
        str(folder),
        writable,
        detail=detail if writable else "folder not writable",
        fix="" if writable else "Make the data folder writable or set MEMLAB_DATA_DIR",
    )


def chroma_status(lab: MemoryLab) -> BackendStatus:
    """The vector store's health (Chroma, or Qdrant with MEMLAB_VECTOR_STORE=qdrant)."""
    s = lab.settings
    name = s.vector_store_name
    if s.vector_store == "qdrant":
        fix = "Check QDRANT_URL and that the server runs" if s.qdrant_url else "See the details"
        where = s.qdrant_url or str(s.data_dir / "qdrant")
    else:
        fix = "Check CHROMA_HOST/CHROMA_PORT and that the server runs" if s.chroma_host else "See the details"
        where = f"http://{s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.data_dir / "chroma")
    try:
        store = lab.vectors
    except MemoryLabError as exc:
        problem = "not answering" if isinstance(exc, VectorStoreError) and exc.hung else "unreachable"
        return BackendStatus(name, s.chroma_mode, where, False, detail=str(exc), fix=fix, problem=problem)
    ok = store.heartbeat()
    detail = "" if ok else f"no heartbeat from {name} at {store.location} within {store.timeout_s:g}s"
    problem = "unreachable" if ok else "not answering"
    return BackendStatus(
        name,
        store.mode,
        store.location,
        ok,
        store.version,
        detail=detail,
        fix="" if ok else fix,
        problem=problem,
    )


def llm_status(lab: MemoryLab) -> BackendStatus:
    """Which provider replies (the sidebar, ``doctor``); keys are never shown."""
    s = lab.settings
    provider = s.llm_provider
    if provider == "openai":
        key = "key set (not shown)" if s.openai_api_key else "no OPENAI_API_KEY (a local server needs none)"
        model = s.openai_model + (f", small: {s.openai_small_model}" if s.openai_small_model else "")
        return BackendStatus("LLM", "openai", s.openai_base_url or "api.openai.com", True, model, detail=key)
    if provider == "anthropic":
        return BackendStatus(
            "LLM",
            "anthropic",
            s.anthropic_base_url or "api.anthropic.com",
            True,
            s.anthropic_model,
            detail="key set (not shown)",
        )
    return BackendStatus(
        "LLM",
        "offline",
        "in process",
        True,
        OFFLINE_MODEL_ID,
        detail="no ANTHROPIC_API_KEY or MEMLAB_LLM: replies quote the memory they were given",
    )


def embedder_status(lab: MemoryLab, load: bool = False) -> BackendStatus:
    from .backends.embedder import MODEL_NAME, model_path

    try:
        path = model_path()
        if load:
            lab.embedder.embed(["ping"])
        return BackendStatus("Embeddings", "local", path, True, MODEL_NAME)
    except MemoryLabError as exc:
        return BackendStatus("Embeddings", "local", "", False, detail=str(exc), fix="run `make install`")


def doctor(lab: MemoryLab, load_model: bool = True, open_store: bool | None = None) -> list[BackendStatus]:
    """Every backend's health; without ``load_model`` (``doctor --quick``) neither the model nor chromadb loads.

    The app's sidebar passes ``open_store=True``: its pages open the store
    anyway, and a store that opens but fails is what the banner must show.
    """
    chroma = chroma_status(lab) if (load_model if open_store is None else open_store) else chroma_quick_status(lab)
    return [redis_status(lab), chroma, embedder_status(lab, load_model), llm_status(lab), audit_status(lab)]


def audit_status(lab: MemoryLab) -> BackendStatus:
    """The audit trail's database: a memory write never waits for it, but a team wants to know it is down."""
    trail = lab.audit
    ok, problem = trail.status()
    fix = "Check AUDIT_DATABASE_URL and that PostgreSQL runs" if trail.postgres else "See the details"
    return BackendStatus("Audit", trail.mode, trail.location, ok, detail=problem, fix="" if ok else fix)
