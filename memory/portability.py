"""A user's memory is theirs to take away: export a session or a user's memory, and load it back.

Two JSON documents, each with a ``kind`` and a ``version`` so an import can
say clearly what it will not read:

- ``memlab.session``: a session's transcript, traces, summary and settings
  (also rendered as Markdown for people);
- ``memlab.user-memory``: a user's facts (with their slots), episodes and
  fact log.

Importing is idempotent: messages go through the append-by-id script, facts
and episodes are upserted under their ids, so loading a file twice changes
nothing the second time. Importing into another user id gives the facts new
ids, so two users never share a record.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import asdict
from typing import Any

from .errors import InputError, StoredDataError
from .fact_store import slot_of
from .keys import validate_id
from .lab import MemoryLab
from .messages import Message
from .stored import as_dict, as_text, load_json

SESSION_KIND = "memlab.session"
USER_KIND = "memlab.user-memory"
VERSION = 1


def export_session(lab: MemoryLab, user_id: str, session_id: str) -> dict[str, Any]:
    log = lab.sessions.log(user_id, session_id)
    traces = lab.sessions.traces(user_id, session_id)
    return {
        "kind": SESSION_KIND,
        "version": VERSION,
        "exported_at": time.time(),
        "user_id": user_id,
        "session_id": session_id,
        "settings": lab.sessions.meta(user_id, session_id),
        "summary": lab.sessions.summary(user_id, session_id),
        "messages": [m.to_dict() for m in log.messages],
        "traces": {mid: trace.to_dict() for mid, trace in traces.items},
        "skipped_corrupt_entries": len(log.corrupt) + len(traces.corrupt),
    }


def session_markdown(export: dict[str, Any]) -> str:
    """The transcript for people: each turn, and under each reply what the model saw, briefly."""
    lines = [f"# Session {export['session_id']} of {export['user_id']}", ""]
    settings = export.get("settings") or {}
    if settings:
        lines += [f"Strategy: **{settings.get('strategy', '?')}**", ""]
    if export.get("summary"):
        lines += ["## Summary", "", export["summary"], ""]
    lines += ["## Transcript", ""]
    traces = export.get("traces", {})
    for m in export["messages"]:
        when = dt.datetime.fromtimestamp(m["created_at"]).strftime("%Y-%m-%d %H:%M")
        who = m["role"] + (f" ({m['model_id']})" if m.get("model_id") else "")
        lines += [f"**{who}** · {when}", "", m["content"], ""]
        trace = traces.get(m["id"])
        if trace:
            parts = ", ".join(f"{p['name']} {p['tokens']}" for p in trace.get("system_parts", []))
            used = trace.get("used") or []
            lines += [f"> context: ~{trace.get('total_tokens', 0)} tokens ({parts}); drew on {len(used)} item(s)", ""]
            for item in trace.get("retrieved", []):
                mark = "✓" if item.get("used") else "·"
                lines.append(f"> {mark} {item['kind']} {item['similarity']:.3f}: {item['text']}")
            lines.append("")
    return "\n".join(lines)


def export_user(lab: MemoryLab, user_id: str) -> dict[str, Any]:
    facts = lab.facts.all(user_id)
    episodes = lab.episodes.all(user_id)
    return {
        "kind": USER_KIND,
        "version": VERSION,
        "exported_at": time.time(),
        "user_id": user_id,
        "facts": [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in facts],
        "episodes": [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in episodes],
        "fact_log": [asdict(e) for e in lab.facts.history(user_id).items],
    }


def load_document(raw: bytes | str) -> dict[str, Any]:
    try:
        data = as_dict(load_json(raw), "the file")
    except StoredDataError as exc:
        raise InputError(f"not a Memory Lab export: {exc}") from exc
    if data.get("kind") not in (SESSION_KIND, USER_KIND):
        raise InputError(f"not a Memory Lab export (kind {str(data.get('kind'))[:40]!r})")
    if data.get("version") != VERSION:
        raise InputError(f"this export has version {str(data.get('version'))[:10]!r}; this Memory Lab reads {VERSION}")
    return data


def import_document(lab: MemoryLab, data: dict[str, Any], user_id: str | None = None) -> dict[str, int]:
    """Load an export back (into ``user_id`` if given); returns how much was written."""
    target = validate_id("user", user_id or str(data.get("user_id", "")))
    try:
        if data["kind"] == SESSION_KIND:
            return _import_session(lab, data, target)
        return _import_user(lab, data, target)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"the export is incomplete or damaged: {type(exc).__name__}: {exc}") from exc


def _import_session(lab: MemoryLab, data: dict[str, Any], user_id: str) -> dict[str, int]:
    session_id = validate_id("session", str(data["session_id"]))
    added = sum(lab.sessions.append(user_id, session_id, Message.from_dict(m)) for m in data.get("messages", []))
    for mid, trace in as_dict(data.get("traces", {}), "traces").items():
        lab.sessions.save_trace(user_id, session_id, as_text(mid, "message id"), as_dict(trace, "trace"))
    return {"messages": int(added), "traces": len(data.get("traces", {}))}


def _import_user(lab: MemoryLab, data: dict[str, Any], user_id: str) -> dict[str, int]:
    same_user = user_id == data.get("user_id")
    facts = 0
    for fact in data.get("facts", []):
        meta = as_dict(fact.get("metadata", {}), "fact metadata")
        fact_id = as_text(fact["id"], "fact id") if same_user else uuid.uuid4().hex
        lab.facts.restore(user_id, fact_id, as_text(fact["text"], "fact"), slot_of(meta), event="ADD")
        facts += 1
    episodes = 0
    for episode in data.get("episodes", []):
        meta = as_dict(episode.get("metadata", {}), "episode metadata")
        session_id = validate_id("session", str(meta.get("session_id", "")))
        key = lab.keys.session(user_id, session_id).log
        lab.episodes.upsert(user_id, session_id, as_text(episode["text"], "episode"), [], key)
        episodes += 1
    return {"facts": facts, "episodes": episodes}


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
