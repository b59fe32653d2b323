"""Memory for an agent that brings its own model: what the MCP server's tools do, on the same engine as the chat.

An agent's turn is a chat turn cut at the LLM call. ``build_context`` is its
first half (``Turn.begin``: the user's message stored, the context built with
its trace), and the trace is held under the user's message id, which is the
turn's ``trace_id``. The agent asks its own model, then ``remember``s the reply
with ``reply_to=trace_id``: the second half (``Turn.finish``) stores it with the
trace under the reply's id and queues the upkeep, exactly as the chat page
does. Everything is in Redis between the two halves, so the server holding
this may restart in between. A message remembered on its own is appended and
queued for upkeep (its facts, episode, turn index) without a trace.

Nothing here knows MCP: ``mcp_server.py`` only maps these to tools and
resources, and errors stay the engine's (``InputError`` for a bad call).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..keys import validate_id
from ..llm.base import LLMReply
from ..records.messages import Message, Role
from ..records.trace import Trace
from ..stores.audit import message_events
from ..strategies import STRATEGIES, Context
from ..turn import Turn, checked_text
from ..upkeep.queue import Job

if TYPE_CHECKING:
    from ..lab import MemoryLab

AGENT_PROVIDER = "agent"  # a turn whose reply came from the agent's own model, not ours (memory.llm.KNOWN_PROVIDERS)
ROLES = ("user", "assistant")
MAX_SEARCH_K = 50


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return name


def _check_ids(user_id: str, session_id: str) -> None:
    validate_id("user", user_id)
    validate_id("session", session_id)


def build_context(
    lab: MemoryLab, user_id: str, session_id: str, text: str, strategy: str, message_id: str | None = None
) -> dict[str, Any]:
    """Store the user's message and build the context ``strategy`` gives a model for it; hold the trace.

    Returns the trace id to pass back as ``reply_to`` when remembering the reply.
    """
    turn = Turn.begin(lab, user_id, session_id, text, check_strategy(strategy), None, message_id)
    trace = turn.trace
    trace.llm = {"provider": AGENT_PROVIDER, "label": "the agent's own model (through MCP)"}
    trace.timings_ms["total"] = round((time.perf_counter() - turn.started) * 1000, 2)
    lab.sessions.save_trace(
        user_id, session_id, turn.user_message.id, trace.to_dict(derived=False), turn.strategy.config.ttl_s, turn.meta
    )
    lab.audit.record_later(message_events(user_id, session_id, [turn.user_message]))
    return {
        "trace_id": turn.user_message.id,
        "user_message_id": turn.user_message.id,
        "strategy": trace.strategy,
        "system_prompt": trace.system_prompt,
        "messages": [{"role": m.role.value, "content": m.content} for m in turn.context.messages],
        "retrieved": [
            {"kind": i.kind, "id": i.id, "text": i.text, "similarity": round(i.similarity, 4), "included": i.included}
            for i in trace.retrieved
        ],
        "estimated_tokens": trace.total_tokens,
        "warnings": list(trace.warnings),
    }


def remember(
    lab: MemoryLab,
    user_id: str,
    session_id: str,
    role: str,
    content: str,
    message_id: str | None = None,
    reply_to: str | None = None,
    model: str | None = None,
    strategy: str = "hybrid",
) -> dict[str, Any]:
    """Store one message; with ``reply_to`` (an assistant's reply to a context from ``build_context``) finish that turn.

    Storing is idempotent: the same ``message_id`` (or the same ``reply_to``) stores the message once.
    """
    _check_ids(user_id, session_id)
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    text = checked_text(content, lab.settings.max_message_chars)
    if message_id is not None:
        validate_id("message", message_id)
    if model is not None and not (0 < len(model) <= 200 and model.isprintable()):
        raise InputError("model must be 1-200 printable characters")
    if reply_to is not None:
        if role != "assistant":
            raise InputError("reply_to is for an assistant's reply; a user's message is remembered without it")
        return _finish_turn(lab, user_id, session_id, text, validate_id("trace", reply_to), message_id, model)
    return _append_alone(lab, user_id, session_id, Role(role), text, message_id, model, check_strategy(strategy))


def _reply_id(trace_id: str) -> str:
    """The reply's id when the agent gives none: derived from the turn, so a retried reply is stored once."""
    return hashlib.sha256(f"reply:{trace_id}".encode()).hexdigest()[:32]


def _finish_turn(
    lab: MemoryLab,
    user_id: str,
    session_id: str,
    text: str,
    trace_id: str,
    message_id: str | None,
    model: str | None,
) -> dict[str, Any]:
    reply_id = message_id or _reply_id(trace_id)
    held = lab.sessions.trace(user_id, session_id, trace_id)
    if held is None or held.llm.get("provider") != AGENT_PROVIDER:
        if lab.sessions.trace(user_id, session_id, reply_id) is not None:
            return {"message_id": reply_id, "stored": False, "trace_id": reply_id, "upkeep": "already queued"}
        raise InputError(
            f"no context is waiting for a reply under trace id {trace_id!r} in session {session_id!r} of "
            f"{user_id!r} (get_context returns the trace id)"
        )
    user_message = _held_message(lab, held, user_id, session_id, trace_id)
    strategy = lab.strategy(check_strategy(held.strategy), lab.config_from(held.settings))
    before = held.timings_ms.get("total", 0.0)
    turn = Turn(lab, strategy, user_id, session_id, user_message, held, Context([], []), time.perf_counter())
    turn.started -= max(0.0, time.time() - user_message.created_at)  # the turn began when the user spoke
    turn.trace.timings_ms["llm.reply"] = round(max(0.0, (time.time() - user_message.created_at) * 1000 - before), 2)
    result = turn.finish(LLMReply(text=text, model_id=model or AGENT_PROVIDER), reply_id=reply_id)
    lab.sessions.drop_trace(user_id, session_id, trace_id)
    return {
        "message_id": reply_id,
        "stored": True,
        "trace_id": reply_id,
        "upkeep": str(result.trace.job.get("status", "none")),
    }


def _held_message(lab: MemoryLab, held: Trace, user_id: str, session_id: str, message_id: str) -> Message:
    """The user's message of a held turn: from the trace's own copy, else from the transcript."""
    for row in held.messages:
        if row.get("id") == message_id and row.get("role") == "user":
            return Message(Role.USER, row["content"], id=message_id, created_at=row["created_at"])
    for message in reversed(lab.sessions.log(user_id, session_id).messages):
        if message.id == message_id:
            return message
    raise InputError(f"the message {message_id!r} of that turn is no longer in session {session_id!r}")


def _append_alone(
    lab: MemoryLab,
    user_id: str,
    session_id: str,
    role: Role,
    text: str,
    message_id: str | None,
    model: str | None,
    strategy_name: str,
) -> dict[str, Any]:
    """Append one message and queue its upkeep in one round trip; a repeated id is stored once."""
    stored = lab.session_settings(user_id, session_id)
    name, config = stored if stored is not None else (strategy_name, lab.default_config())
    strategy = lab.strategy(name, config)
    message = Message(role, text, model_id=model if role is Role.ASSISTANT else None)
    if message_id is not None:
        message = replace(message, id=message_id)
    job = Job(message.id, user_id, session_id, name, config.to_dict(), [message]) if strategy.has_upkeep else None
    with lab.redis.pipeline(transaction=False) as pipe:
        lab.sessions.stage_append(pipe, user_id, session_id, message, strategy.trim_to(), config.ttl_s)
        if job is not None:
            lab.upkeep.stage(pipe, job)
        results = lab.sessions.run(pipe, user_id, session_id)
    added = bool(results[1])
    if job is not None:
        lab.ensure_worker()
    if added:
        lab.audit.record_later(message_events(user_id, session_id, [message]))
    return {
        "message_id": message.id,
        "stored": added,
        "trace_id": None,
        "upkeep": "queued" if job is not None else "none",
    }


def search(lab: MemoryLab, user_id: str, query: str, k: int) -> list[dict[str, Any]]:
    """The user's facts and episodes nearest ``query``, on one cosine scale (the Vector memory page's query)."""
    validate_id("user", user_id)
    if not 1 <= k <= MAX_SEARCH_K:
        raise InputError(f"k must be between 1 and {MAX_SEARCH_K}, got {k}")
    text = checked_text(query, lab.settings.max_message_chars)
    _, hits = lab.search_memories(user_id, text, k)
    return [
        {
            "kind": h.kind,
            "id": h.hit.id,
            "text": h.hit.text,
            "similarity": round(h.hit.similarity, 4),
            "session_id": h.hit.metadata.get("session_id"),
        }
        for h in hits
    ]


def list_memory(lab: MemoryLab, what: str, user_id: str | None) -> list[dict[str, Any]]:
    """Users (from the audit trail), a user's sessions (newest first) or a user's facts."""
    if what == "users":
        return [{"user_id": u} for u in lab.audit.users()]
    if what not in ("sessions", "facts"):
        raise InputError(f"what must be users, sessions or facts, got {what!r}")
    if user_id is None:
        raise InputError(f"listing {what} needs a user_id")
    validate_id("user", user_id)
    if what == "sessions":
        return [{"session_id": s, "last_active": at} for s, at in lab.sessions.sessions(user_id)]
    return [
        {"fact_id": r.id, "text": r.text, "slot": r.metadata.get("slot"), "session_id": r.metadata.get("session_id")}
        for r in lab.facts.all(user_id)
    ]


def forget(lab: MemoryLab, user_id: str, session_id: str | None = None, fact_id: str | None = None) -> dict[str, Any]:
    """One fact, one session (its messages, traces, episode, turns; the user's facts stay), or the whole user."""
    validate_id("user", user_id)
    if session_id is not None and fact_id is not None:
        raise InputError("forget one thing at a time: a session_id or a fact_id, not both")
    if fact_id is not None:
        deleted = lab.delete_memory(user_id, "fact", validate_id("fact", fact_id))
        if not deleted:
            raise InputError(f"user {user_id!r} has no fact {fact_id!r}")
        return {"forgot": "fact", "deleted": {"facts": deleted}, "errors": {}}
    if session_id is not None:
        report = lab.clear_session(user_id, validate_id("session", session_id))
        scope = "session"
    else:
        report = lab.forget_user(user_id)
        scope = "user"
    return {"forgot": scope, "deleted": report.counts, "errors": report.errors}


def transcript(lab: MemoryLab, user_id: str, session_id: str) -> dict[str, Any]:
    _check_ids(user_id, session_id)
    read = lab.sessions.log(user_id, session_id)
    return {
        "user_id": user_id,
        "session_id": session_id,
        "messages": [m.to_dict() for m in read.messages],
        "corrupt": [c.to_dict() for c in read.corrupt],
    }


def trace(lab: MemoryLab, user_id: str, session_id: str, trace_id: str) -> dict[str, Any] | None:
    """A turn's trace by its id (the reply's, or the user message's while the turn waits for its reply)."""
    _check_ids(user_id, session_id)
    found = lab.sessions.trace(user_id, session_id, validate_id("trace", trace_id))
    return None if found is None else found.to_dict()


@dataclass(frozen=True)
class ToolDoc:
    """What an agent reads about each tool (kept beside the engine calls they describe)."""

    remember: str = (
        "Store one message in a user's session. For your model's reply to a context from get_context, pass "
        "role='assistant' and reply_to=<its trace_id>: the turn is then stored with its trace, as the dashboard "
        "shows it. A user's message on its own is stored and its facts extracted afterwards. Sending the same "
        "message_id (or reply_to) again stores it once."
    )
    get_context: str = (
        "Store the user's message and return the context a memory strategy builds for it: a system prompt "
        "(facts, summary, past sessions), the recent messages, and what was retrieved with its similarity. "
        "Send these to your model, then call remember with role='assistant' and reply_to=trace_id."
    )
    search_memory: str = "The user's long-term facts and past-session episodes nearest a query, with cosine similarity."
    list_memory: str = "List users (what='users'), a user's sessions, newest first (what='sessions'), or facts."
    forget: str = (
        "Delete memory: one fact (fact_id), one session (session_id: its messages, traces, episode; the user's "
        "facts stay), or, with neither, everything of the user's."
    )
