"""Episodes: whole past sessions, one summary + embedding per session, in Chroma.

An episode points back to its session's transcript in Redis (``log_key``),
so the UI can open the full conversation behind a recalled episode. It is
extended after each turn (by the upkeep worker) with that turn only, so the
current session is already an episode when the user moves on, at a cost
per turn that does not grow with the session; retrieval leaves the current
session out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends.filters import where_session, where_user
from ..backends.vector_store import EPISODES, Hit, Record, VectorBackend
from ..keys import validate_id
from ..records.messages import Message

Embed = Callable[[list[str]], np.ndarray]


EMPTY = "(empty session)"  # what older versions stored for a session whose summary was empty; read as none
GIST_CHARS = 240


def gist(messages: list[Message]) -> str:
    """A session's own words when its summary holds nothing (only questions, small talk): what the user said,
    so the episode is still about something and can be found (never an "(empty session)" episode)."""
    said = [m.content.strip() for m in messages if m.role.value == "user" and m.content.strip()]
    if not said:
        return ""
    text = " / ".join(said)
    return "The user said: " + (text if len(text) <= GIST_CHARS else text[: GIST_CHARS - 1].rstrip() + "…")


def episode_id(user_id: str, session_id: str) -> str:
    return f"{user_id}/{session_id}"


def episode_session(record: Record) -> str:
    """The session an episode is of: what names it to ``EpisodeStore.delete`` and ``MemoryLab.delete_memory``."""
    return str(record.metadata.get("session_id", ""))


class EpisodeStore:
    def __init__(self, vectors: VectorBackend, embed: Embed) -> None:
        self.vectors = vectors
        self.embed = embed

    def upsert(self, user_id: str, session_id: str, summary: str, messages: list[Message], log_key: str) -> str:
        eid = episode_id(validate_id("user", user_id), validate_id("session", session_id))
        metadata: dict[str, Any] = {
            "user_id": user_id,
            "session_id": session_id,
            "n_messages": len(messages),
            "first_at": messages[0].created_at if messages else time.time(),
            "last_at": messages[-1].created_at if messages else time.time(),
            "updated_at": time.time(),
            "log_key": log_key,
        }
        text = summary.strip() or gist(messages) or "The session has no messages."
        self.vectors.upsert(EPISODES, [Record(eid, text, metadata)], self.embed([text]))
        return eid

    def extend(
        self,
        user_id: str,
        session_id: str,
        turn: list[Message],
        summarize: Callable[[str, list[Message]], str],
        log_key: str,
    ) -> str:
        """Fold one turn into the session's episode: the summary so far plus the new messages, not the whole session.

        So a turn's cost does not grow with the session. The episode records the
        last message it covers (``through``): a replayed job adds nothing twice.
        """
        eid = episode_id(validate_id("user", user_id), validate_id("session", session_id))
        found = self.vectors.get(EPISODES, ids=[eid])
        old = found[0] if found else None
        meta = dict(old.metadata) if old else {}
        ids = [m.id for m in turn]
        through = meta.get("through")
        new = turn[ids.index(through) + 1 :] if through in ids else turn
        if not new:
            return eid
        previous = old.text if old and old.text != EMPTY else ""
        text = summarize(previous, new).strip() or previous or gist(new) or "The session has no user messages yet."
        metadata: dict[str, Any] = {
            "user_id": user_id,
            "session_id": session_id,
            "n_messages": int(meta.get("n_messages", 0) or 0) + len(new),
            "first_at": meta.get("first_at", new[0].created_at),
            "last_at": new[-1].created_at,
            "updated_at": time.time(),
            "log_key": log_key,
            "through": new[-1].id,
        }
        self.vectors.upsert(EPISODES, [Record(eid, text, metadata)], self.embed([text]))
        return eid

    def search(self, user_id: str, query_vector: np.ndarray, k: int, exclude_session: str | None = None) -> list[Hit]:
        clauses: list[dict[str, Any]] = [where_user(user_id)]
        if exclude_session:
            clauses.append({"session_id": {"$ne": validate_id("session", exclude_session)}})
        where = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        # No count first: counting reads every matching id, and both stores return fewer hits than k
        # (none for an empty collection) without an error.
        return self.vectors.query(EPISODES, query_vector, k, where)

    def get(self, user_id: str, session_ids: list[str]) -> list[Record]:
        if not session_ids:
            return []
        ids = [episode_id(validate_id("user", user_id), validate_id("session", sid)) for sid in session_ids]
        return self.vectors.get(EPISODES, ids=ids)

    def all(self, user_id: str, with_embeddings: bool = False) -> list[Record]:
        return self.vectors.get(EPISODES, where=where_user(user_id), with_embeddings=with_embeddings)

    def delete(self, user_id: str, session_id: str) -> int:
        """Delete one session's episode; returns how many there were (0 or 1)."""
        return self.vectors.delete_where(EPISODES, where_session(user_id, session_id))

    def clear_session(self, user_id: str, session_id: str) -> int:
        return self.delete(user_id, session_id)

    def forget_user(self, user_id: str) -> int:
        return self.vectors.delete_where(EPISODES, where_user(user_id))
