"""One typed settings object, read from the environment: every variable the engine reads is declared here once.

Each field of ``Settings`` carries its environment variable, its help text,
how its default is shown, and its bounds (``setting``). From that one
declaration come ``Settings.from_env`` (parse and check), the README's
settings table (``settings_table``, checked by a test), the strategy knobs'
defaults and bounds (``StrategyConfig``, ``strategy_bounds`` for the pages),
and ``env_setting`` for the few low-level readers that run before any
``Settings`` exists (the embedder, the model cache, the CLI's debug switch).
Secrets are ``repr=False``: ``repr(settings)`` never shows them, and
``cache_key`` holds only a digest of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import InputError
from .keys import is_valid_id
from .paths import PROJECT_ROOT, default_data_dir, default_model_cache

UPKEEP_MODES = ("thread", "external", "inline")
LLM_PROVIDERS = ("offline", "anthropic", "openai")
STRATEGY_CAP = 10**9  # the largest value any strategy knob may take (a stored or queued one is checked against it)


def setting(
    default: Any = None,
    *,
    env: str,
    help: str,
    shown: str | None = None,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    lower: bool = False,
    secret: bool = False,
    factory: Any = None,
) -> Any:
    """A field of ``Settings`` with its variable, help text, shown default (README) and bounds."""
    meta = {"env": env, "help": help, "shown": shown, "low": low, "high": high, "unit": unit, "lower": lower}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Memory Lab configuration; `Settings.from_env()` is the only constructor pages use."""

    data_dir: Path = setting(
        env="MEMLAB_DATA_DIR",
        factory=default_data_dir,
        shown="`./data`",
        help="where the embedded Redis and Chroma keep their files (git-ignored)",
    )
    redis_url: str | None = setting(
        env="REDIS_URL",
        help="use this Redis (e.g. `redis://localhost:6379/0`) instead of the embedded server",
    )
    redis_cluster: bool = setting(
        False,
        env="REDIS_CLUSTER_URL",
        shown="unset",
        help="use this Redis Cluster (the URL of any node) instead; wins over `REDIS_URL`",
    )
    chroma_host: str | None = setting(env="CHROMA_HOST", help="use a Chroma server instead of the embedded client")
    chroma_port: int = setting(8000, env="CHROMA_PORT", low=1, high=65535, help="the Chroma server's port")
    chroma_database: str = setting(
        "default_database",
        env="CHROMA_DATABASE",
        help="the Chroma database to use (one server can hold several teams' or environments' memory; create it first)",
    )
    audit_database_url: str | None = setting(
        env="AUDIT_DATABASE_URL",
        secret=True,  # postgresql://user:password@...
        help="`postgresql://…`: the audit trail in PostgreSQL; unset: SQLite at `data/audit.sqlite3`",
    )
    vector_store: str = setting(
        "chroma",
        env="MEMLAB_VECTOR_STORE",
        lower=True,
        help="`qdrant`: keep facts, episodes and turns in Qdrant instead (local mode under `data/qdrant`, one process)",
    )
    qdrant_url: str | None = setting(
        env="QDRANT_URL", help="with `MEMLAB_VECTOR_STORE=qdrant`: a Qdrant server instead of the local mode"
    )
    anthropic_api_key: str | None = setting(
        env="ANTHROPIC_API_KEY",
        secret=True,
        help="use Anthropic instead of the offline provider (never shown in the UI)",
    )
    anthropic_base_url: str | None = setting(
        env="ANTHROPIC_BASE_URL", shown="SDK default", help="a compatible server to call instead of Anthropic's"
    )
    anthropic_model: str = setting("claude-sonnet-4-5", env="MEMLAB_ANTHROPIC_MODEL", help="model for replies")
    anthropic_small_model: str = setting(
        "claude-haiku-4-5", env="MEMLAB_ANTHROPIC_SMALL_MODEL", help="model for summaries and fact extraction"
    )
    llm: str = setting(
        "",
        env="MEMLAB_LLM",
        lower=True,
        shown="unset",
        help="`offline`, `anthropic` or `openai`; unset: `anthropic` when `ANTHROPIC_API_KEY` is set, else `offline`",
    )
    openai_api_key: str | None = setting(
        env="OPENAI_API_KEY",
        secret=True,
        help="with `MEMLAB_LLM=openai`: the key (never shown in the UI); a local server needs none",
    )
    openai_base_url: str | None = setting(
        env="OPENAI_BASE_URL",
        shown="SDK default (`https://api.openai.com/v1`)",
        help="with `MEMLAB_LLM=openai`: the Chat Completions server, e.g. `http://127.0.0.1:11434/v1` for Ollama",
    )
    openai_model: str = setting(
        "gpt-4o-mini",
        env="MEMLAB_OPENAI_MODEL",
        help="model for replies (the name the server knows, e.g. `llama3.2`)",
    )
    openai_small_model: str = setting(
        "", env="MEMLAB_OPENAI_SMALL_MODEL", shown="the reply model", help="model for summaries and fact extraction"
    )
    llm_timeout_s: int = setting(
        60,
        env="MEMLAB_LLM_TIMEOUT",
        low=1,
        unit=" second",
        help="seconds per LLM request (at least 1); a request past it is retried twice, then the turn fails "
        'with "did not answer within Ns"',
    )
    backend_timeout_s: float = setting(
        3.0,
        env="MEMLAB_BACKEND_TIMEOUT",
        low=0.1,
        high=600,
        unit=" seconds",
        help="seconds a Redis command may take before the server counts as hung (Chroma: at least 5)",
    )
    debug: bool = setting(
        False,
        env="MEMLAB_DEBUG",
        shown="unset",
        help="`1`: the CLI logs at debug level and prints the traceback of an internal error",
    )
    chromium: str = setting(
        "",
        env="MEMLAB_CHROMIUM",
        shown="`chromium` on PATH, else `/usr/bin/chromium`",
        help="the headless Chromium `python -m memory bench --pages` drives",
    )
    key_prefix: str = setting(
        "memlab",
        env="MEMLAB_KEY_PREFIX",
        help="prefix of every Redis key (1-64 letters, digits, `_`, `.`, `-`: no `:` or glob characters)",
    )
    buffer_size: int = setting(20, env="MEMLAB_BUFFER_SIZE", low=1, help="N, messages kept by the `buffer` strategy")
    session_ttl_s: int = setting(
        7 * 24 * 3600,
        env="MEMLAB_SESSION_TTL",
        low=0,
        help="sliding TTL of a session's keys in seconds (0 = none)",
    )
    summary_threshold: int = setting(
        12, env="MEMLAB_SUMMARY_THRESHOLD", low=2, help="fold when the buffer holds more messages than this"
    )
    summary_keep: int = setting(6, env="MEMLAB_SUMMARY_KEEP", low=0, help="messages left in the buffer after a fold")
    summary_max_tokens: int = setting(
        300, env="MEMLAB_SUMMARY_MAX_TOKENS", low=1, help="the longest summary (and episode) a fold asks for, in tokens"
    )
    top_k: int = setting(5, env="MEMLAB_TOP_K", low=1, help="facts retrieved per turn")
    episodes_k: int = setting(3, env="MEMLAB_EPISODES_K", low=1, help="episodes retrieved per turn")
    token_budget: int = setting(
        2000, env="MEMLAB_TOKEN_BUDGET", low=100, help="the `hybrid` strategy's context budget (estimated tokens)"
    )
    fact_dup_similarity: float = setting(
        0.9,
        env="MEMLAB_FACT_DUP_SIMILARITY",
        low=0,
        high=1,
        help="cosine at which a new fact counts as one already stored",
    )
    max_message_chars: int = setting(
        32_000, env="MEMLAB_MAX_MESSAGE_CHARS", low=1, help="longer messages are refused with a clear error"
    )
    upkeep_mode: str = setting(
        "thread",
        env="MEMLAB_UPKEEP",
        lower=True,
        help="who does the upkeep after a reply: `thread` (a worker in each app process), `external` (only "
        "`python -m memory worker` processes), `inline` (before the reply is stored, as a plain function call)",
    )
    upkeep_wait_s: float = setting(
        10.0,
        env="MEMLAB_UPKEEP_WAIT",
        low=0,
        high=600,
        unit=" seconds",
        help="seconds a new turn (or a memory page) waits for the user's unfinished upkeep jobs",
    )
    upkeep_claim_s: float = setting(
        30.0,
        env="MEMLAB_UPKEEP_CLAIM",
        low=0.1,
        high=86400,
        unit=" seconds",
        help="seconds a job may sit with a silent worker before another worker takes it over",
    )
    upkeep_delay_s: float = setting(
        0.0,
        env="MEMLAB_UPKEEP_DELAY",
        low=0,
        high=600,
        unit=" seconds",
        help="seconds each upkeep job waits before it starts (to watch *Memory updating…* in a demo, or to crash "
        "a worker mid-job in a test)",
    )
    embedder: str = setting(
        "onnx",
        env="MEMLAB_EMBEDDER",
        lower=True,
        help="`onnx`: the packaged MiniLM through ONNX Runtime (same vectors, ~0.5 s to load, no torch); "
        "`torch`: through sentence-transformers",
    )
    embed_threads: int = setting(
        0,
        env="MEMLAB_EMBED_THREADS",
        low=0,
        shown="the cores this process may use",
        help="how many batches the ONNX embedder runs at once (0: one per core)",
    )
    model_cache: Path = setting(
        env="MEMLAB_MODEL_CACHE",
        factory=default_model_cache,
        shown="`./.cache/models`",
        help="where the ONNX graph exported from the packaged weights, and cached data-set embeddings, are kept",
    )
    locomo_path: Path = setting(
        env="MEMLAB_LOCOMO_PATH",
        factory=lambda: PROJECT_ROOT.parent / "shared" / "data" / "locomo" / "locomo_dev.json",
        shown="`../shared/data/locomo/locomo_dev.json`",
        help="the LoCoMo file the Recall Lab offers (not shipped: non-commercial licence)",
    )
    longmemeval_dir: Path = setting(
        env="MEMLAB_LONGMEMEVAL_DIR",
        factory=lambda: PROJECT_ROOT.parent / "shared" / "data" / "longmemeval",
        shown="`../shared/data/longmemeval`",
        help="the folder whose LongMemEval files (`longmemeval_s_dev.json.gz`, `longmemeval_oracle_dev.json.gz`) "
        "the Recall Lab offers",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        changes = {f.name: _read(f, e) for f in fields(cls) if _raw(e, f.metadata["env"])}
        cluster = _raw(e, "REDIS_CLUSTER_URL")
        changes.update(redis_cluster=bool(cluster), redis_url=cluster or _raw(e, "REDIS_URL") or None)
        return replace(cls(), **changes).validated()

    def validated(self) -> Settings:
        for f in fields(self):
            problem = _out_of_bounds(f, getattr(self, f.name))
            if problem:
                raise InputError(problem)
        checks = [
            (self.summary_keep < self.summary_threshold, "MEMLAB_SUMMARY_KEEP must be below MEMLAB_SUMMARY_THRESHOLD"),
            (self.upkeep_mode in UPKEEP_MODES, f"MEMLAB_UPKEEP must be one of {', '.join(UPKEEP_MODES)}"),
            (self.vector_store in ("chroma", "qdrant"), "MEMLAB_VECTOR_STORE must be chroma or qdrant"),
            (self.embedder in ("onnx", "torch"), "MEMLAB_EMBEDDER must be onnx or torch"),
            (self.llm in ("", *LLM_PROVIDERS), f"MEMLAB_LLM must be one of {', '.join(LLM_PROVIDERS)}"),
            (
                self.llm != "anthropic" or bool(self.anthropic_api_key),
                "MEMLAB_LLM=anthropic needs ANTHROPIC_API_KEY",
            ),
            (
                self.llm != "openai" or bool(self.openai_api_key or self.openai_base_url),
                "MEMLAB_LLM=openai needs OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (a compatible server)",
            ),
            (
                is_valid_id(self.key_prefix),
                f"MEMLAB_KEY_PREFIX must be 1-64 letters, digits, '_', '.', '-' (no ':' and no glob characters such "
                f"as '*' or '[', which would make forget's key patterns match other keys), got {self.key_prefix!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        return self

    def cache_key(self) -> str:
        """What tells two configurations apart for a cache (the app's one lab each): secrets only as a digest."""
        secrets = "\0".join(str(getattr(self, f.name)) for f in fields(self) if not f.repr)
        return f"{self!r}#{hashlib.sha256(secrets.encode()).hexdigest()[:16]}"

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


def _raw(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _read(f: dataclasses.Field[Any], env: Mapping[str, str]) -> Any:
    """The field's value from its variable (set and not blank), parsed by the field's type."""
    name, raw = f.metadata["env"], _raw(env, f.metadata["env"])
    kind = str(f.type)
    if kind == "bool":
        return raw not in ("", "0")
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise InputError(
                f"{name} must be {'a whole number' if kind == 'int' else 'a number'}, got {raw!r}"
            ) from None
    if kind == "Path":
        path = Path(raw)
        return path.expanduser().resolve() if f.name == "data_dir" else path
    return raw.lower() if f.metadata["lower"] else raw


def _out_of_bounds(f: dataclasses.Field[Any], value: Any) -> str:
    low, high, unit = f.metadata["low"], f.metadata["high"], f.metadata["unit"]
    if low is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    if high is not None and not low <= value <= high:
        return f"{f.metadata['env']} must be between {low:g} and {high:g}{unit}"
    if high is None and value < low:
        return f"{f.metadata['env']} must be at least {low:g}{unit}"
    return ""


def env_setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment (its default when unset), for readers that run before any ``Settings``.

    Why: the embedder and the model cache are process-wide (loaded once, by
    whoever asks first) and the CLI decides how to log before it builds a
    lab; they read their variable through the same declaration as ``from_env``.
    """
    f = next(f for f in fields(Settings) if f.name == name)
    e = os.environ if env is None else env
    if not _raw(e, f.metadata["env"]):
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    value = _read(f, e)
    problem = _out_of_bounds(f, value)
    if problem:
        raise InputError(problem)
    return value


# The strategy knobs: StrategyConfig field -> the Settings field that gives its default and bounds.
STRATEGY_SETTINGS = {
    "buffer_size": "buffer_size",
    "ttl_s": "session_ttl_s",
    "summary_threshold": "summary_threshold",
    "summary_keep": "summary_keep",
    "summary_max_tokens": "summary_max_tokens",
    "top_k": "top_k",
    "episodes_k": "episodes_k",
    "token_budget": "token_budget",
}


def setting_default(name: str) -> Any:
    """A ``Settings`` field's default (a strategy knob's, through ``STRATEGY_SETTINGS``)."""
    f = next(f for f in fields(Settings) if f.name == STRATEGY_SETTINGS.get(name, name))
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def strategy_bounds() -> dict[str, tuple[int, int]]:
    """Each strategy knob's (smallest, largest) value, by ``StrategyConfig`` field: what a page's control allows."""
    by_name = {f.name: f for f in fields(Settings)}
    return {knob: (int(by_name[s].metadata["low"] or 0), STRATEGY_CAP) for knob, s in STRATEGY_SETTINGS.items()}


def path_variables() -> tuple[str, ...]:
    """The variables that name a file or folder (a launcher makes them absolute before changing directory)."""
    return tuple(f.metadata["env"] for f in fields(Settings) if str(f.type) == "Path")


def settings_table() -> str:
    """The README's settings table (Markdown), one row per variable, from the declarations above."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for f in fields(Settings):
        m = f.metadata
        if m["shown"] is not None:
            shown = m["shown"]
        elif f.default_factory is not dataclasses.MISSING or f.default is None or f.default == "":
            shown = "unset"
        else:
            shown = f"`{f.default:g}`" if isinstance(f.default, float) else f"`{f.default}`"
        rows.append(f"| `{m['env']}` | {shown} | {m['help']} |")
    return "\n".join(rows)
