"""Metadata filters for the vector stores, built from validated ids only.

Every read and delete in Chroma is scoped by user (and sometimes session);
building the filter here means no store can forget to validate an id.
"""

from __future__ import annotations

from typing import Any

from ..keys import validate_id


def where_user(user_id: str, **extra: Any) -> dict[str, Any]:
    clauses = [{"user_id": validate_id("user", user_id)}] + [{k: v} for k, v in extra.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def where_session(user_id: str, session_id: str) -> dict[str, Any]:
    return where_user(user_id, session_id=validate_id("session", session_id))
