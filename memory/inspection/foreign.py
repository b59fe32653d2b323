"""Other libraries' chat memory in the same Redis, found by key pattern and value shape and read as conversations.

A team that already keeps chat history in Redis with another library can
point Memory Lab at that Redis and see it beside its own. Three formats are
read, each from the writing library's source:

- **LangChain** ``RedisChatMessageHistory``: a list ``message_store:<session>``
  (the prefix is configurable), newest first (LPUSH), each entry
  ``{"type": "human"|"ai"|…, "data": {"content": …}}`` (``message_to_dict``).
- **RedisVL** ``MessageHistory``: one hash per message at
  ``<prefix>:<session_tag>:<timestamp>[:<suffix>]`` with the fields
  ``entry_id``, ``role`` (user, llm, system, tool), ``content``,
  ``session_tag`` and ``timestamp``.
- **Redis Agent Memory Server** working memory:
  ``working_memory:[<namespace>:][<user>:]<session>``, a JSON document
  (RedisJSON, or a string in its older format) with ``messages``
  (``role``, ``content``, ``created_at``) and ``session_id``.

Nothing here writes. Reading stays bounded: at most ``max_keys`` keys are
scanned within ``budget_s`` (the result says whether the scan finished), and a
conversation shows at most ``MAX_MESSAGES`` messages.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from ..backends.redis_client import RedisClient
from ..errors import StoredDataError
from ..records.stored import clean_text, load_json
from .key_browser import pipelined, scan_keys

LANGCHAIN = "LangChain RedisChatMessageHistory"
REDISVL = "RedisVL MessageHistory"
AGENT_MEMORY = "Redis Agent Memory Server (working memory)"

MAX_MESSAGES = 500
_LANGCHAIN_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}
_REDISVL_FIELDS = ("entry_id", "role", "content", "session_tag", "timestamp")
_AMS_PREFIX = "working_memory:"
_AMS_OWN_KEYS = {"working_memory:migration:complete", "working_memory:migration:remaining"}


@dataclass(frozen=True)
class ForeignMessage:
    role: str  # user, assistant, system, tool (the library's own word in ``raw_role``)
    content: str
    at: float | None = None
    raw_role: str = ""


@dataclass
class Conversation:
    library: str
    session: str
    keys: list[str]
    ttl: int  # seconds; the soonest expiry of its keys; -1 when none expires
    messages: list[ForeignMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # entries that could not be read, said plainly
    truncated: bool = False


@dataclass(frozen=True)
class Found:
    conversations: list[Conversation]
    scanned: int  # keys looked at that are not Memory Lab's
    complete: bool  # False when the key or time budget ran out before the scan did
    total: int = 0  # every key the scan went through, Memory Lab's included


def find_conversations(client: RedisClient, own_prefix: str, max_keys: int = 20_000, budget_s: float = 2.0) -> Found:
    """Every other library's conversation among the first ``max_keys`` keys (Memory Lab's own are skipped)."""
    everything, complete = scan_keys(client, "*", max_keys, budget_s)
    names = [n for n in everything if not n.startswith(own_prefix + ":")]
    types = pipelined(client, [("TYPE", n) for n in names])
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, kind in zip(names, types):
        by_type[str(kind)].append(name)
    found = _langchain(client, by_type["list"])
    found += _redisvl(client, by_type["hash"])
    ams = [n for n in by_type["string"] + by_type["ReJSON-RL"] if n.startswith(_AMS_PREFIX) and n not in _AMS_OWN_KEYS]
    found += _agent_memory(client, ams, set(by_type["ReJSON-RL"]))
    found.sort(key=lambda c: (c.library, c.session))
    return Found(found, len(names), complete, total=len(everything))


def _ttls(client: RedisClient, names: list[str]) -> list[int]:
    return [int(t) if isinstance(t, int) else -2 for t in pipelined(client, [("TTL", n) for n in names])]


def _soonest(ttls: list[int]) -> int:
    expiring = [t for t in ttls if t >= 0]
    return min(expiring) if expiring else -1


def _langchain_message(raw: str) -> ForeignMessage:
    entry = load_json(raw)
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict) or "type" not in entry:
        raise StoredDataError("not a LangChain message (no type/data)")
    data, kind = entry["data"], str(entry["type"])
    content = data.get("content", "")
    if not isinstance(content, str):  # a list of content blocks
        content = " ".join(str(b.get("text", b)) if isinstance(b, dict) else str(b) for b in content)
    role = str(data.get("role", "")) if kind == "chat" else _LANGCHAIN_ROLES.get(kind, kind)
    return ForeignMessage(role or kind, clean_text(content), None, kind)


def _is_langchain(raw: Any) -> bool:
    try:
        return isinstance(raw, str) and bool(_langchain_message(raw))
    except StoredDataError:
        return False


def _langchain(client: RedisClient, lists: list[str]) -> list[Conversation]:
    """A list is LangChain's when its newest or its oldest entry parses as a LangChain message."""
    ends = pipelined(client, [c for n in lists for c in (("LINDEX", n, 0), ("LINDEX", n, -1))])
    ours = [name for i, name in enumerate(lists) if _is_langchain(ends[2 * i]) or _is_langchain(ends[2 * i + 1])]
    contents = pipelined(client, [("LRANGE", n, 0, MAX_MESSAGES - 1) for n in ours])
    lengths = pipelined(client, [("LLEN", n) for n in ours])
    out = []
    for name, raws, length, ttl in zip(ours, contents, lengths, _ttls(client, ours)):
        session = name.removeprefix("message_store:")
        conversation = Conversation(LANGCHAIN, session, [name], ttl, truncated=int(length) > MAX_MESSAGES)
        for i, raw in enumerate(reversed(raws if isinstance(raws, list) else [])):  # stored newest first
            try:
                conversation.messages.append(_langchain_message(raw))
            except StoredDataError as exc:
                conversation.problems.append(f"entry {len(raws) - 1 - i} of {name}: {exc}")
        out.append(conversation)
    return out


def _redisvl(client: RedisClient, hashes: list[str]) -> list[Conversation]:
    """A hash is a RedisVL message when it has RedisVL's fields and its key ends with its ``entry_id``."""
    fields = pipelined(client, [("HMGET", n, *_REDISVL_FIELDS) for n in hashes])
    groups: dict[tuple[str, str], list[tuple[float, str, ForeignMessage]]] = defaultdict(list)
    problems: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, values in zip(hashes, fields):
        if not isinstance(values, list):
            continue
        entry_id, role, content, tag, stamp = values
        if not (entry_id and role is not None and content is not None and tag) or not name.endswith(":" + entry_id):
            continue
        prefix = name[: -len(entry_id) - 1]
        try:
            at = float(stamp)
        except (TypeError, ValueError):
            problems[(prefix, tag)].append(f"{name}: timestamp {stamp!r} is not a number (placed last)")
            at = float("inf")
        shown = "assistant" if role == "llm" else role
        groups[(prefix, tag)].append((at, name, ForeignMessage(shown, clean_text(content), _finite(at), role)))
    out = []
    for (prefix, tag), entries in groups.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        names = [n for _, n, _ in entries]
        conversation = Conversation(
            REDISVL,
            f"{tag} (index prefix {prefix})",
            names,
            _soonest(_ttls(client, names)),
            [m for _, _, m in entries[-MAX_MESSAGES:]],
            problems[(prefix, tag)],
            truncated=len(entries) > MAX_MESSAGES,
        )
        out.append(conversation)
    return out


def _agent_memory(client: RedisClient, names: list[str], json_keys: set[str]) -> list[Conversation]:
    """Working memory documents: RedisJSON where the module is loaded, else the older string format."""
    commands = [("JSON.GET", n) if n in json_keys else ("GET", n) for n in names]
    out = []
    for name, raw, ttl in zip(names, pipelined(client, commands), _ttls(client, names)):
        if isinstance(raw, ResponseError):
            out.append(Conversation(AGENT_MEMORY, name.removeprefix(_AMS_PREFIX), [name], ttl, problems=[str(raw)]))
            continue
        try:
            document = load_json(raw)
        except StoredDataError:
            continue
        if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
            continue
        session = str(document.get("session_id") or name.rsplit(":", 1)[-1])
        owner = " · ".join(
            f"{label} {document[key]}"
            for key, label in (("user_id", "user"), ("namespace", "namespace"))
            if document.get(key)
        )
        conversation = Conversation(AGENT_MEMORY, session + (f" ({owner})" if owner else ""), [name], ttl)
        messages = document["messages"]
        conversation.truncated = len(messages) > MAX_MESSAGES
        for i, m in enumerate(messages[-MAX_MESSAGES:]):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                conversation.problems.append(f"message {i} of {name} has no text content")
                continue
            role = str(m.get("role", ""))
            conversation.messages.append(
                ForeignMessage(role, clean_text(m["content"]), _epoch(m.get("created_at")), role)
            )
        if isinstance(document.get("context"), str) and document["context"]:
            conversation.messages.insert(0, ForeignMessage("summary", clean_text(document["context"]), None, "context"))
        out.append(conversation)
    return out


def _finite(value: float) -> float | None:
    return value if value != float("inf") else None


def _epoch(value: Any) -> float | None:
    """Agent Memory Server dumps times as ISO 8601 text (``model_dump(mode="json")``) or epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
