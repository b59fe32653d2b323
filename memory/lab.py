"""The lab: backends wired from settings, the strategies, and one chat turn.

``MemoryLab`` is what pages, the CLI and notebooks hold. Backends open
lazily, so a page can render a "Redis is down" banner instead of failing at
import, and the embedding model loads only when something needs it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import redis

from .backends.embedder import Embedder, get_embedder
from .backends.redis_server import EmbeddedRedis
from .backends.vector_store import VectorStore
from .config import Settings
from .episode_store import EpisodeStore
from .fact_store import FactStore
from .keys import Keys, validate_id
from .llm import LLM, LLMError, make_llm
from .messages import Message, Role
from .session_store import SessionStore
from .strategies import STRATEGIES, Services, Strategy, StrategyConfig
from .trace import Trace
from .turn_store import TurnStore

RedisClient = redis.Redis


class BackendUnavailable(RuntimeError):
    """A backend could not be reached; the message says what to check."""


@dataclass
class ChatResult:
    user_message: Message
    reply: Message | None
    trace: Trace
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reply": self.reply.content if self.reply else None,
            "error": self.error,
            "user_message": self.user_message.to_dict(),
            "reply_message": self.reply.to_dict() if self.reply else None,
            "trace": self.trace.to_dict(),
        }


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


class MemoryLab:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.keys = Keys(self.settings.key_prefix)
        self.embedded_redis = None if self.settings.redis_url else EmbeddedRedis(self.settings.data_dir / "redis")
        self._lock = threading.Lock()
        self._redis: RedisClient | None = None

    # -- backends --------------------------------------------------------
    @property
    def redis(self) -> RedisClient:
        """A client for the configured Redis; in embedded mode the server is (re)started on demand."""
        with self._lock:
            if self.embedded_redis is not None:
                try:
                    state = self.embedded_redis.ensure_running()
                except Exception as exc:  # noqa: BLE001
                    raise BackendUnavailable(f"embedded redis-server could not start: {exc}") from exc
                url = state.url
                if self._redis is None or self._redis_url != url:
                    self._redis = self._connect(url)
            elif self._redis is None:
                self._redis = self._connect(self.settings.redis_url or "")
            return self._redis

    def _connect(self, url: str) -> RedisClient:
        self._redis_url = url
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            encoding_errors="replace",
            socket_connect_timeout=3,
            socket_timeout=10,
            health_check_interval=30,
        )

    @cached_property
    def vectors(self) -> VectorStore:
        s = self.settings
        return VectorStore(path=s.data_dir / "chroma", host=s.chroma_host, port=s.chroma_port)

    @cached_property
    def embedder(self) -> Embedder:
        return get_embedder()

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

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
        return FactStore(self.vectors, self.embed, self.redis, self.keys, self.settings.fact_dup_similarity)

    @cached_property
    def episodes(self) -> EpisodeStore:
        return EpisodeStore(self.vectors, self.embed)

    @cached_property
    def turns(self) -> TurnStore:
        return TurnStore(self.vectors, self.embed)

    def services(self) -> Services:
        return Services(self.sessions, self.facts, self.episodes, self.turns, self.llm, self.embed)

    def default_config(self) -> StrategyConfig:
        return StrategyConfig.from_settings(self.settings)

    def strategy(self, name: str, config: StrategyConfig | None = None) -> Strategy:
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
        return STRATEGIES[name](self.services(), config or self.default_config())

    # -- one chat turn ---------------------------------------------------
    def chat(
        self, user_id: str, session_id: str, text: str, strategy: str = "buffer", config: StrategyConfig | None = None
    ) -> ChatResult:
        """Persist the user turn, build the context, call the LLM, persist the reply, do upkeep.

        The user turn is stored before the LLM is called, so a failed call
        loses nothing; upkeep failures become warnings on the trace.
        """
        validate_id("user", user_id)
        validate_id("session", session_id)
        text = (text or "").strip()
        if not text:
            raise ValueError("the message is empty")
        limit = self.settings.max_message_chars
        if len(text) > limit:
            raise ValueError(
                f"the message has {len(text):,} characters; the limit is {limit:,} (MEMLAB_MAX_MESSAGE_CHARS)"
            )
        strat = self.strategy(strategy, config)
        trace = Trace(strategy=strat.name, user_id=user_id, session_id=session_id, settings=strat.config.to_dict())
        trace.llm = {"provider": self.llm.provider, "label": self.llm.label}
        user_message = Message(Role.USER, text)
        started = time.perf_counter()
        if "embedder" not in self.__dict__:
            with trace.timed("embedder.load"):
                _ = self.embedder
        with trace.timed("record.user"):
            strat.record(user_id, session_id, user_message)
        context = strat.build_context(user_id, session_id, user_message, trace)
        trace.system_parts = context.system_parts
        trace.set_messages(context.messages)
        try:
            with trace.timed("llm.reply"):
                answer = self.llm.reply(context.system_parts, context.messages)
        except LLMError as exc:
            trace.error = str(exc)
            trace.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 2)
            self.sessions.save_trace(user_id, session_id, user_message.id, trace.to_dict(), strat.config.ttl_s)
            return ChatResult(user_message, None, trace, error=str(exc))
        trace.llm.update(model_id=answer.model_id, usage=answer.usage)
        reply = Message(Role.ASSISTANT, answer.text, model_id=answer.model_id)
        with trace.timed("record.reply"):
            strat.record(user_id, session_id, reply)
        try:
            strat.after_turn(user_id, session_id, [user_message, reply], trace)
        except Exception as exc:  # noqa: BLE001 - upkeep must never lose the turn already stored
            trace.warnings.append(f"memory upkeep failed: {type(exc).__name__}: {exc}")
        trace.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 2)
        self.sessions.save_trace(user_id, session_id, reply.id, trace.to_dict(), strat.config.ttl_s)
        return ChatResult(user_message, reply, trace)

    # -- whole-user operations -------------------------------------------
    def forget_user(self, user_id: str) -> dict[str, int]:
        validate_id("user", user_id)
        return {
            "redis_keys": self.sessions.forget_user(user_id),
            "facts": self.facts.forget(user_id),
            "episodes": self.episodes.forget(user_id),
            "turns": self.turns.forget(user_id),
        }

    def clear_session(self, user_id: str, session_id: str) -> int:
        deleted = self.sessions.clear_session(user_id, session_id)
        try:
            self.episodes.delete(user_id, session_id)
        except Exception:  # noqa: BLE001 - there may be no episode yet
            pass
        return deleted

    # -- health ----------------------------------------------------------
    def redis_status(self) -> BackendStatus:
        s = self.settings
        location = s.redis_url or str(self.settings.data_dir / "redis")
        try:
            client = self.redis
            info = client.info("server")
            extra: dict[str, Any] = {"url": self._redis_url}
            if self.embedded_redis is not None:
                state = self.embedded_redis.read_state()
                extra.update(pid=state.pid if state else None)
            return BackendStatus("Redis", s.redis_mode, location, True, str(info.get("redis_version", "")), extra=extra)
        except (redis.RedisError, BackendUnavailable, OSError) as exc:
            fix = (
                "check REDIS_URL and that the server is up"
                if s.redis_url
                else "run `make run` again, or `python -m memory doctor` for details"
            )
            return BackendStatus("Redis", s.redis_mode, location, False, detail=str(exc), fix=fix)

    def chroma_status(self) -> BackendStatus:
        s = self.settings
        try:
            store = self.vectors
            ok = store.heartbeat()
            return BackendStatus(
                "Chroma",
                store.mode,
                store.location,
                ok,
                store.version,
                fix="" if ok else "check CHROMA_HOST/CHROMA_PORT",
            )
        except Exception as exc:  # noqa: BLE001
            location = f"{s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.data_dir / "chroma")
            return BackendStatus(
                "Chroma",
                s.chroma_mode,
                location,
                False,
                detail=str(exc),
                fix="check CHROMA_HOST/CHROMA_PORT" if s.chroma_host else "check the data folder",
            )

    def llm_status(self) -> BackendStatus:
        s = self.settings
        if s.anthropic_api_key:
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
            "offline-extractive-v1",
            detail="no ANTHROPIC_API_KEY: replies quote the memory they were given",
        )

    def embedder_status(self, load: bool = False) -> BackendStatus:
        from .backends.embedder import MODEL_NAME, EmbedderError, model_path

        try:
            path = model_path()
            if load:
                self.embedder.embed(["ping"])
            return BackendStatus("Embeddings", "local", path, True, MODEL_NAME)
        except EmbedderError as exc:
            return BackendStatus("Embeddings", "local", "", False, detail=str(exc), fix="run `make install`")

    def doctor(self, load_model: bool = True) -> list[BackendStatus]:
        return [self.redis_status(), self.chroma_status(), self.embedder_status(load_model), self.llm_status()]

    def stop_embedded_redis(self) -> bool:
        if self.embedded_redis is None:
            raise RuntimeError("Redis is external (REDIS_URL is set); Memory Lab does not stop it")
        with self._lock:
            self._redis = None
        return self.embedded_redis.stop()
