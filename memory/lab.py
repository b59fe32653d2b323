"""The lab: backends wired from settings, the strategies, and one chat turn.

``MemoryLab`` is what pages, the CLI and notebooks hold. Backends open
lazily, so a page can render a "Redis is down" banner instead of failing at
import, and the embedding model loads only when something needs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np

from .backends.embedder import Embedder, get_embedder
from .backends.embedding_cache import EmbeddingCache
from .backends.redis_client import RedisClient, connect
from .backends.redis_server import EmbeddedRedis
from .backends.vector_store import ChromaStore, VectorBackend
from .config import Settings
from .errors import (
    BackendUnavailable,
    InputError,
    MemoryLabError,
)
from .inspection.memory_search import MemoryHit, search_memories
from .keys import Keys, validate_id
from .llm import LLM, LLMError, make_llm
from .stores.audit import AuditError, AuditTrail, deletion_event, fact_events
from .stores.deletion import DeletionReport, MemoryStore, SessionScopedStore
from .stores.episode_store import EpisodeStore
from .stores.fact_index import FactIndex
from .stores.fact_store import FactStore
from .stores.session_store import SessionStore
from .stores.turn_store import TurnStore, TurnVersions
from .strategies import STRATEGIES, Services, Strategy, StrategyConfig
from .turn import ChatResult, Turn, TurnStream
from .upkeep.queue import Upkeep
from .upkeep.worker import WorkerThread

log = logging.getLogger(__name__)

__all__ = ["BackendUnavailable", "ChatResult", "DeletionReport", "MemoryLab"]


class MemoryLab:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.keys = Keys(self.settings.key_prefix)
        self.embedded_redis = (
            None
            if self.settings.redis_url
            else EmbeddedRedis(self.settings.data_dir / "redis", timeout_s=min(2.0, self.settings.backend_timeout_s))
        )
        self._lock = threading.Lock()
        self._redis: RedisClient | None = None
        self._redis_url = ""
        self._worker: WorkerThread | None = None
        self.worker_autostart = True  # start the worker thread when a job is queued (MEMLAB_UPKEEP=thread)
        # Embed through the data-set cache on disk (``dataset_embed``): evaluations that replay a benchmark's
        # histories embed the same texts on every run.
        self.embeddings_on_disk = False
        self.upkeep = Upkeep(self)

    # -- backends --------------------------------------------------------
    @property
    def redis(self) -> RedisClient:
        """The process's one client for the configured Redis, connected on first use.

        In embedded mode the server is found or started when connecting, and
        each new socket asks where it is now (``RelocatingConnection``): a
        server killed and started again elsewhere is followed on the next
        command, by any holder of the lab, with no health check needed.
        """
        client = self._redis
        if client is not None:
            return client
        url = self.embedded_redis.ensure_running().url if self.embedded_redis else (self.settings.redis_url or "")
        with self._lock:
            if self._redis is None or self._redis_url != url:
                if self.settings.redis_cluster:
                    from .backends.redis_cluster import connect_cluster

                    self._redis = cast(RedisClient, connect_cluster(url, self.settings.backend_timeout_s))
                else:
                    locate = self._locate_embedded if self.embedded_redis is not None else None
                    self._redis = connect(url, self.settings.backend_timeout_s, locate)
                self._redis_url = url
            return self._redis

    def _locate_embedded(self) -> tuple[str, int]:
        assert self.embedded_redis is not None
        state = self.embedded_redis.current()
        self._redis_url = state.url
        return "127.0.0.1", state.port

    @cached_property
    def vectors(self) -> VectorBackend:
        s = self.settings
        if s.vector_store == "qdrant":
            from .backends.qdrant_store import QdrantStore

            return QdrantStore(path=s.data_dir / "qdrant", url=s.qdrant_url, timeout_s=max(s.backend_timeout_s, 5.0))
        return ChromaStore(
            path=s.data_dir / "chroma",
            host=s.chroma_host,
            port=s.chroma_port,
            database=s.chroma_database,
            timeout_s=max(s.backend_timeout_s, 5.0),
        )

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder()

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.embeddings_on_disk:
            return self.dataset_embed(texts)
        return self.embedder.embed(texts)

    def search_memories(self, user_id: str, query: str, k: int) -> tuple[np.ndarray, list[MemoryHit]]:
        """The query's vector and its top ``k`` facts and episodes, on one cosine scale (``memory_search.py``)."""
        vector = self.embed([query])[0]
        return vector, search_memories(self.facts, self.episodes, user_id, query, vector, k)

    @cached_property
    def dataset_embed(self) -> EmbeddingCache:
        """Embeddings of benchmark data kept on disk (shared by every data folder): see ``embedding_cache.py``."""
        from .backends.embedder import MODEL_NAME, model_path
        from .backends.onnx_model import cache_dir

        weights = Path(model_path()) / "model.safetensors"
        key = f"{MODEL_NAME}:{weights.stat().st_size}"
        return EmbeddingCache(
            lambda texts: self.embedder.embed(list(texts)), cache_dir() / f"embeddings-{MODEL_NAME}.sqlite3", key
        )

    @cached_property
    def llm(self) -> LLM:
        return make_llm(self.settings, self.embed)

    @property
    def sessions(self) -> SessionStore:
        client = self.redis
        store = getattr(self, "_sessions", None)
        if store is None or store.r is not client:
            store = SessionStore(client, self.keys, self.settings.session_ttl_s)
            self._sessions = store
        return store

    @property
    def facts(self) -> FactStore:
        client = self.redis
        index = getattr(self, "_fact_index", None)
        if index is None or index.r is not client:
            index = self._fact_index = FactIndex(self.vectors, client, self.keys)
        return FactStore(
            self.vectors,
            self.embed,
            client,
            self.keys,
            self.settings.fact_dup_similarity,
            index,
            on_logged=lambda user_id, events: self.audit.record_safely(fact_events(user_id, events)),
        )

    @cached_property
    def audit(self) -> AuditTrail:
        """Every memory write, appended (``audit.py``): PostgreSQL with AUDIT_DATABASE_URL, else SQLite."""
        s = self.settings
        return AuditTrail(s.audit_database_url, s.data_dir, timeout_s=max(s.backend_timeout_s, 2.0))

    @cached_property
    def episodes(self) -> EpisodeStore:
        return EpisodeStore(self.vectors, self.embed)

    @cached_property
    def turns(self) -> TurnStore:
        return TurnStore(self.vectors, self.embed, versions=TurnVersions(lambda: self.redis, self.keys))

    @cached_property
    def dataset_turns(self) -> TurnStore:
        """The turn store evaluations use: the same collections, with every text it embeds (turns, sentences,
        questions asked in a participant's voice) read from the data-set cache on disk (``dataset_embed``)."""
        return TurnStore(self.vectors, self.dataset_embed, versions=self.turns.versions)

    def services(self) -> Services:
        return Services(
            self.sessions, self.facts, self.episodes, self.turns, self.llm, self.embed, self.audit.record_safely
        )

    def default_config(self) -> StrategyConfig:
        return StrategyConfig.from_settings(self.settings)

    def config_from(self, stored: Any) -> StrategyConfig:
        """Settings read back from storage (a job, a session's meta), over the defaults."""
        return StrategyConfig.from_dict(stored, self.default_config())

    # -- upkeep ----------------------------------------------------------
    def ensure_worker(self) -> None:
        """Start the app's own upkeep worker thread (MEMLAB_UPKEEP=thread), once per lab."""
        if self.settings.upkeep_mode != "thread" or not self.worker_autostart:
            return
        with self._lock:
            if self._worker is None or not self._worker.alive():
                self._worker = WorkerThread(self)

    def wait_for_upkeep(
        self,
        user_id: str,
        timeout_s: float | None = None,
        only: Collection[str] | None = None,
        settled: Callable[[list[str]], Collection[str]] | None = None,
    ) -> list[str]:
        """Wait for the user's queued upkeep jobs, or those in ``only`` (MEMLAB_UPKEEP_WAIT), until ``settled``
        says they did enough; return the ids still pending."""
        self.ensure_worker()
        wait = self.settings.upkeep_wait_s if timeout_s is None else timeout_s
        return self.upkeep.wait_user(user_id, wait, only, settled)

    def settle(self, result: ChatResult, timeout_s: float | None = None) -> ChatResult:
        """Wait for a turn's upkeep job and put its outcome on the result's trace (the CLI's `chat` does this)."""
        job_id = result.trace.job.get("id")
        if result.trace.job.get("status") != "queued" or not job_id:
            return result
        self.ensure_worker()
        wait = self.settings.upkeep_wait_s if timeout_s is None else timeout_s
        outcome = self.upkeep.wait_job(result.trace.user_id, result.trace.session_id, str(job_id), wait)
        if outcome is not None:
            result.trace.apply_outcome(outcome)
        else:
            result.trace.warnings.append(f"memory still updating: the upkeep job did not finish within {wait:g}s")
        return result

    def close(self) -> None:
        """Stop the worker thread and drop the Redis client (tests and scripts that make many labs)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        with self._lock:
            client, self._redis = self._redis, None
        if client is not None:
            client.close()
        if "audit" in self.__dict__:
            self.audit.close()
        store = self.__dict__.pop("vectors", None)
        if store is not None and hasattr(store, "close"):
            store.close()  # Qdrant's local mode holds a lock on its folder until closed

    def strategy(self, name: str, config: StrategyConfig | None = None) -> Strategy:
        if name not in STRATEGIES:
            raise InputError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
        return STRATEGIES[name](self.services(), config or self.default_config())

    # -- one chat turn ---------------------------------------------------
    def chat(
        self,
        user_id: str,
        session_id: str,
        text: str,
        strategy: str = "buffer",
        config: StrategyConfig | None = None,
        message_id: str | None = None,
        wait_upkeep: bool = False,
    ) -> ChatResult:
        """One turn: store the user's message, build the context, ask the LLM, store the reply, queue the upkeep.

        The user's message is stored before the LLM is called, so a failed call
        loses nothing; retrying with the same ``message_id`` never stores it
        twice. The upkeep (facts, folding, episodes) runs after, in a worker;
        ``wait_upkeep`` waits for it and puts its outcome on the trace. See ``turn.py``.
        """
        turn = Turn.begin(self, user_id, session_id, text, strategy, config, message_id)
        try:
            with turn.trace.timed("llm.reply"):
                answer = self.llm.reply(turn.context.system_parts, turn.context.messages)
        except LLMError as exc:
            return turn.fail(exc)
        result = turn.finish(answer)
        return self.settle(result) if wait_upkeep else result

    def chat_stream(
        self,
        user_id: str,
        session_id: str,
        text: str,
        strategy: str = "buffer",
        config: StrategyConfig | None = None,
        message_id: str | None = None,
    ) -> TurnStream:
        """Like ``chat``, but the reply's text arrives as it is written: iterate the stream, then read ``result``.

        Everything before the LLM call happens now, so a bad id or a Redis
        problem raises here, not half-way through a page's stream.
        """
        turn = Turn.begin(self, user_id, session_id, text, strategy, config, message_id)
        return TurnStream(turn.stream(self.llm))

    def latest_settings(self, user_id: str, look_back: int = 5) -> tuple[str, StrategyConfig] | None:
        """The strategy and settings of the user's most recent session that has them (a new one continues it)."""
        for session_id, _ in self.sessions.sessions(user_id)[:look_back]:
            found = self.session_settings(user_id, session_id)
            if found is not None:
                return found
        return None

    def session_settings(self, user_id: str, session_id: str) -> tuple[str, StrategyConfig] | None:
        """The strategy and settings a session was last used with, so a page can restore them."""
        meta = self.sessions.meta(user_id, session_id)
        if meta is None or meta["strategy"] not in STRATEGIES:
            return None
        return meta["strategy"], StrategyConfig.from_dict(meta["config"], self.default_config())

    # -- deletion: one owner ---------------------------------------------
    def session_stores(self) -> list[tuple[str, Callable[[], SessionScopedStore]]]:
        """Stores that keep things per session, opened lazily: opening one may itself fail."""
        return [
            ("redis_keys", lambda: self.sessions),
            ("episodes", lambda: self.episodes),
            ("turns", lambda: self.turns),
        ]

    def memory_stores(self) -> list[tuple[str, Callable[[], MemoryStore]]]:
        """Every store that holds a user's memory; facts belong to the user, not to a session."""
        stores: list[tuple[str, Callable[[], MemoryStore]]] = list(self.session_stores())
        stores.insert(1, ("facts", lambda: self.facts))
        stores.append(("dead_letters", lambda: self.upkeep))
        return stores

    def _walk(
        self, action: str, stores: list[tuple[str, Callable[[], Any]]], call: Callable[[Any], int]
    ) -> DeletionReport:
        """Run ``call`` on every store; one failing store neither stops the others nor goes unreported."""
        report = DeletionReport()
        for name, open_store in stores:
            try:
                report.counts[name] = int(call(open_store()))
            except MemoryLabError as exc:
                log.warning("%s: the %s store failed: %s", action, name, exc)
                report.errors[name] = str(exc)
        return report

    def _let_upkeep_finish(self, user_id: str) -> None:
        """A job still running would write memory back after it was deleted: let the user's jobs finish first."""
        try:
            still = self.wait_for_upkeep(user_id)
        except MemoryLabError as exc:
            log.warning("could not wait for %s's upkeep jobs before deleting: %s", user_id, exc)
            return
        if still:
            log.warning(
                "deleting while %d upkeep job(s) of %s are unfinished; they may write again", len(still), user_id
            )

    def clear_session(self, user_id: str, session_id: str) -> DeletionReport:
        """Delete a session everywhere it is kept (messages, summary, traces, episode, indexed turns).

        The user's facts are kept: they belong to the user, not to the session.
        The session is first marked cleared on the upkeep stream: a job of it
        that is still running when the stores are emptied erases the session
        again when it ends (``worker.py``), as for a forget.
        """
        validate_id("user", user_id)
        validate_id("session", session_id)
        marked = ""
        try:
            self.upkeep.mark_cleared(user_id, session_id)
        except MemoryLabError as exc:
            log.warning("could not mark %s/%s cleared for the upkeep workers: %s", user_id, session_id, exc)
            marked = str(exc)
        self._let_upkeep_finish(user_id)
        report = self.erase_session(user_id, session_id)
        if marked:
            report.errors["upkeep marker"] = marked
        self.audit.record_safely([deletion_event("session_cleared", user_id, session_id, report.counts)])
        return report

    def erase_session(self, user_id: str, session_id: str) -> DeletionReport:
        """Delete a session from every store that keeps it (``clear_session`` without its marker and audit row)."""
        return self._walk(
            "clear session", self.session_stores(), lambda store: store.clear_session(user_id, session_id)
        )

    def forget_user(self, user_id: str) -> DeletionReport:
        """Delete everything of the user's; the audit trail keeps its rows (what happened, when) without content.

        First the user is marked forgotten on the upkeep stream: every job of
        theirs queued before is dropped by the workers, never applied. A job
        already running is waited for (``MEMLAB_UPKEEP_WAIT``); one that runs
        longer erases the user again when it ends (``worker.py``).
        """
        validate_id("user", user_id)
        marked = ""
        try:
            self.upkeep.mark_forgotten(user_id)
            if not self.upkeep.wait_idle(user_id, self.settings.upkeep_wait_s):
                log.warning("forgetting %s while one of their upkeep jobs runs; it erases again when it ends", user_id)
        except MemoryLabError as exc:
            log.warning("could not mark %s forgotten for the upkeep workers: %s", user_id, exc)
            marked = str(exc)
        report = self.erase_user(user_id)
        if marked:
            report.errors["upkeep marker"] = marked
        try:
            report.counts["audit rows blanked"] = self.audit.forget(user_id)
        except AuditError as exc:
            report.errors["audit"] = str(exc)
        return report

    def erase_user(self, user_id: str, blank_audit: bool = False) -> DeletionReport:
        """Delete the user's memory from every store (``forget_user`` without its marker and its audit row).

        ``blank_audit``: also blank the content of the user's audit rows (a job
        that raced a forget erases again, and the rows it wrote go blank too).
        """
        report = self._walk("forget user", self.memory_stores(), lambda store: store.forget_user(user_id))
        if blank_audit:
            try:
                report.counts["audit rows blanked"] = self.audit.blank(user_id)
            except AuditError as exc:
                report.errors["audit"] = str(exc)
        return report

    def delete_memory(self, user_id: str, kind: str, memory_id: str) -> int:
        """Delete one long-term memory: a fact by id, or the episode of a session (by session id)."""
        validate_id("user", user_id)
        if kind == "fact":
            return self.facts.delete(user_id, memory_id)
        if kind == "episode":
            return self.episodes.delete(user_id, memory_id)
        raise InputError(f"unknown kind of memory {kind!r}; use 'fact' or 'episode'")

    @property
    def redis_location(self) -> str:
        """The URL the Redis client last connected to (an embedded server's may change when it restarts)."""
        return self._redis_url

    def stop_embedded_redis(self) -> bool:
        if self.embedded_redis is None:
            raise InputError("Redis is external (REDIS_URL is set); Memory Lab does not stop it")
        with self._lock:
            self._redis = None
        return self.embedded_redis.stop()
