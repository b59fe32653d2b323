"""One typed settings object, read from the environment.

Every knob Memory Lab has lives here so the README's settings table, the CLI
and the pages all agree on names and defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from .errors import InputError
from .paths import PROJECT_ROOT, default_data_dir

T = TypeVar("T")
UPKEEP_MODES = ("thread", "external", "inline")
LLM_PROVIDERS = ("offline", "anthropic", "openai")


def _env_number(env: dict[str, str], name: str, default: T, parse: Callable[[str], T], kind: str) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise InputError(f"{name} must be {kind}, got {raw!r}") from exc


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    return _env_number(env, name, default, int, "a whole number")


def _env_float(env: dict[str, str], name: str, default: float) -> float:
    return _env_number(env, name, default, float, "a number")


def _env_str(env: dict[str, str], name: str, default: str | None = None) -> str | None:
    raw = env.get(name, "").strip()
    return raw or default


@dataclass(frozen=True)
class Settings:
    """Memory Lab configuration; `Settings.from_env()` is the only constructor pages use."""

    data_dir: Path = field(default_factory=default_data_dir)
    redis_url: str | None = None
    redis_cluster: bool = False  # redis_url names a node of a Redis Cluster (set by REDIS_CLUSTER_URL)
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_database: str = "default_database"  # one Chroma server can hold several teams' or environments' memory
    audit_database_url: str | None = None  # postgresql://…; unset: SQLite in the data folder
    vector_store: str = "chroma"  # chroma | qdrant
    qdrant_url: str | None = None  # a Qdrant server; unset: qdrant-client's local mode in the data folder
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    anthropic_small_model: str = "claude-haiku-4-5"
    llm: str = ""  # MEMLAB_LLM: offline | anthropic | openai; unset: anthropic with ANTHROPIC_API_KEY, else offline
    openai_api_key: str | None = None
    openai_base_url: str | None = None  # any server speaking the Chat Completions API (Ollama, vLLM, LM Studio...)
    openai_model: str = "gpt-4o-mini"
    openai_small_model: str = ""  # empty: the reply model
    llm_timeout_s: int = 60
    backend_timeout_s: float = 3.0
    key_prefix: str = "memlab"
    buffer_size: int = 20
    session_ttl_s: int = 7 * 24 * 3600
    summary_threshold: int = 12
    summary_keep: int = 6
    summary_max_tokens: int = 300
    top_k: int = 5
    token_budget: int = 2000
    fact_dup_similarity: float = 0.9
    max_message_chars: int = 32_000
    upkeep_mode: str = "thread"  # thread (a worker in the app) | external (`python -m memory worker` only) | inline
    upkeep_wait_s: float = 10.0
    upkeep_claim_s: float = 30.0
    upkeep_delay_s: float = 0.0
    locomo_path: Path = field(
        default_factory=lambda: PROJECT_ROOT.parent / "shared" / "data" / "locomo" / "locomo_dev.json"
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        data_dir = _env_str(e, "MEMLAB_DATA_DIR")
        base = cls()
        return replace(
            base,
            data_dir=Path(data_dir).expanduser().resolve() if data_dir else base.data_dir,
            redis_url=_env_str(e, "REDIS_CLUSTER_URL") or _env_str(e, "REDIS_URL"),
            redis_cluster=bool(_env_str(e, "REDIS_CLUSTER_URL")),
            chroma_host=_env_str(e, "CHROMA_HOST"),
            chroma_port=_env_int(e, "CHROMA_PORT", base.chroma_port),
            chroma_database=_env_str(e, "CHROMA_DATABASE", base.chroma_database) or base.chroma_database,
            audit_database_url=_env_str(e, "AUDIT_DATABASE_URL"),
            vector_store=(_env_str(e, "MEMLAB_VECTOR_STORE", base.vector_store) or base.vector_store).lower(),
            qdrant_url=_env_str(e, "QDRANT_URL"),
            anthropic_api_key=_env_str(e, "ANTHROPIC_API_KEY"),
            anthropic_base_url=_env_str(e, "ANTHROPIC_BASE_URL"),
            anthropic_model=_env_str(e, "MEMLAB_ANTHROPIC_MODEL", base.anthropic_model) or "",
            anthropic_small_model=_env_str(e, "MEMLAB_ANTHROPIC_SMALL_MODEL", base.anthropic_small_model) or "",
            llm=(_env_str(e, "MEMLAB_LLM") or "").lower(),
            openai_api_key=_env_str(e, "OPENAI_API_KEY"),
            openai_base_url=_env_str(e, "OPENAI_BASE_URL"),
            openai_model=_env_str(e, "MEMLAB_OPENAI_MODEL", base.openai_model) or "",
            openai_small_model=_env_str(e, "MEMLAB_OPENAI_SMALL_MODEL", "") or "",
            llm_timeout_s=_env_int(e, "MEMLAB_LLM_TIMEOUT", base.llm_timeout_s),
            backend_timeout_s=_env_float(e, "MEMLAB_BACKEND_TIMEOUT", base.backend_timeout_s),
            key_prefix=_env_str(e, "MEMLAB_KEY_PREFIX", base.key_prefix) or base.key_prefix,
            buffer_size=_env_int(e, "MEMLAB_BUFFER_SIZE", base.buffer_size),
            session_ttl_s=_env_int(e, "MEMLAB_SESSION_TTL", base.session_ttl_s),
            summary_threshold=_env_int(e, "MEMLAB_SUMMARY_THRESHOLD", base.summary_threshold),
            summary_keep=_env_int(e, "MEMLAB_SUMMARY_KEEP", base.summary_keep),
            top_k=_env_int(e, "MEMLAB_TOP_K", base.top_k),
            token_budget=_env_int(e, "MEMLAB_TOKEN_BUDGET", base.token_budget),
            max_message_chars=_env_int(e, "MEMLAB_MAX_MESSAGE_CHARS", base.max_message_chars),
            upkeep_mode=(_env_str(e, "MEMLAB_UPKEEP", base.upkeep_mode) or base.upkeep_mode).lower(),
            upkeep_wait_s=_env_float(e, "MEMLAB_UPKEEP_WAIT", base.upkeep_wait_s),
            upkeep_claim_s=_env_float(e, "MEMLAB_UPKEEP_CLAIM", base.upkeep_claim_s),
            upkeep_delay_s=_env_float(e, "MEMLAB_UPKEEP_DELAY", base.upkeep_delay_s),
            locomo_path=Path(_env_str(e, "MEMLAB_LOCOMO_PATH") or base.locomo_path),
        ).validated()

    def validated(self) -> Settings:
        checks = [
            (self.buffer_size >= 1, "MEMLAB_BUFFER_SIZE must be at least 1"),
            (self.session_ttl_s >= 0, "MEMLAB_SESSION_TTL must be 0 (no expiry) or more"),
            (self.summary_threshold >= 2, "MEMLAB_SUMMARY_THRESHOLD must be at least 2"),
            (
                0 <= self.summary_keep < self.summary_threshold,
                "MEMLAB_SUMMARY_KEEP must be below MEMLAB_SUMMARY_THRESHOLD",
            ),
            (self.top_k >= 1, "MEMLAB_TOP_K must be at least 1"),
            (self.token_budget >= 100, "MEMLAB_TOKEN_BUDGET must be at least 100"),
            (0.1 <= self.backend_timeout_s <= 600, "MEMLAB_BACKEND_TIMEOUT must be between 0.1 and 600 seconds"),
            (self.upkeep_mode in UPKEEP_MODES, f"MEMLAB_UPKEEP must be one of {', '.join(UPKEEP_MODES)}"),
            (0 <= self.upkeep_wait_s <= 600, "MEMLAB_UPKEEP_WAIT must be between 0 and 600 seconds"),
            (0.1 <= self.upkeep_claim_s <= 86400, "MEMLAB_UPKEEP_CLAIM must be between 0.1 and 86400 seconds"),
            (0 <= self.upkeep_delay_s <= 600, "MEMLAB_UPKEEP_DELAY must be between 0 and 600 seconds"),
            (self.vector_store in ("chroma", "qdrant"), "MEMLAB_VECTOR_STORE must be chroma or qdrant"),
            (self.llm in ("", *LLM_PROVIDERS), f"MEMLAB_LLM must be one of {', '.join(LLM_PROVIDERS)}"),
            (
                self.llm != "anthropic" or bool(self.anthropic_api_key),
                "MEMLAB_LLM=anthropic needs ANTHROPIC_API_KEY",
            ),
            (
                self.llm != "openai" or bool(self.openai_api_key or self.openai_base_url),
                "MEMLAB_LLM=openai needs OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (a compatible server)",
            ),
            (self.llm_timeout_s >= 1, "MEMLAB_LLM_TIMEOUT must be at least 1 second"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        return self

    @property
    def llm_provider(self) -> str:
        """The provider in use: MEMLAB_LLM when set, else Anthropic with a key, else the offline stand-in."""
        return self.llm or ("anthropic" if self.anthropic_api_key else "offline")

    @property
    def redis_mode(self) -> str:
        return "cluster" if self.redis_cluster else "server" if self.redis_url else "embedded"

    @property
    def chroma_mode(self) -> str:
        """The vector store's mode (Chroma's or Qdrant's): a server, or embedded in this process."""
        if self.vector_store == "qdrant":
            return "server" if self.qdrant_url else "embedded"
        return "server" if self.chroma_host else "embedded"

    @property
    def vector_store_name(self) -> str:
        return "Qdrant" if self.vector_store == "qdrant" else "Chroma"
