"""Where a memory came from: the session and message a fact, an episode, a fold or a retrieved item names.

Why one place: facts keep the ids of the messages they were said in
(``source_ids``), episodes the last message they cover (``through``), folds
the messages they took; the pages link each to the session at that message
(the Session replay page opens the turn holding it), and all of them read
the ids the same way from what the stores keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..errors import StoredDataError
from ..keys import is_valid_id
from ..records.stored import load_json

REPLAY_PAGE = "session_replay"  # the page's address (pages/session_replay.py)


@dataclass(frozen=True)
class Source:
    session_id: str
    message_id: str | None  # None: the session is known, not the message


def source_ids(meta: dict[str, Any]) -> list[str]:
    """A stored fact's message ids (a JSON list in its metadata); damaged or missing: none."""
    raw = meta.get("source_ids")
    if isinstance(raw, list):
        ids = raw
    else:
        try:
            ids = load_json(raw) if isinstance(raw, str) and raw else []
        except StoredDataError:
            return []
    return [i for i in ids if isinstance(i, str) and i] if isinstance(ids, list) else []


def source_of(meta: dict[str, Any]) -> Source | None:
    """The session and message a memory came from: a fact's newest source message, an episode's last message;
    None when its metadata names no valid session."""
    session = meta.get("session_id")
    if not is_valid_id(session):
        return None
    ids = source_ids(meta)
    message = ids[-1] if ids else meta.get("through")
    return Source(session, message if isinstance(message, str) and message else None)


def replay_link(user_id: str, source: Source | None) -> str | None:
    """A relative link that opens the Session replay page at the source's message (its turn)."""
    if source is None or not is_valid_id(user_id):
        return None
    params = {"user": user_id, "session": source.session_id}
    if source.message_id:
        params["message"] = source.message_id
    return f"./{REPLAY_PAGE}?{urlencode(params)}"
