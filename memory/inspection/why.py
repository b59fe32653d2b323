"""Why wasn't it retrieved? One memory, one query: where the memory is, and what kept it out.

A user picks a memory (a fact's id, or any text they expected to be
recalled) and a query. The answer is one of these cases, checked in order:

- **retrieved** / **ranked below the cut-off**: it is one of the user's
  facts; its rank among all of them for this query, each score component
  (cosine, BM25, the fused score the facts strategy ranks by), and the
  score of the last one that made the cut (``k``);
- **deleted**: the user's fact log shows it was deleted, or replaced by a
  newer statement (with when and by what);
- **stored for another user**: another user's fact says it (a filtered
  vector query over the other users' facts, cosine ≥ ``SAME``);
- **in another session**: the user said it in another session that still
  exists, and conversation memory (buffer, summary) reads only the current
  one;
- **expired**: the audit trail shows the user said it, and its session's
  messages are gone (its keys' TTL ran out, or the session was cleared);
- **never stored**: none of the above.

Text is matched exactly (case and spacing aside) first; a fact with cosine
≥ ``SAME`` to the typed text counts as the same memory, said so in the
answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from ..keys import validate_id
from ..presentation.format import when
from ..stores.audit import AuditTrail
from ..stores.fact_store import FactStore
from ..stores.session_store import SessionStore


class WhyServices(Protocol):
    """What explaining a miss reads (``MemoryLab`` is one): embeddings, the facts, the audit trail, the sessions."""

    @property
    def facts(self) -> FactStore: ...
    @property
    def audit(self) -> AuditTrail: ...
    @property
    def sessions(self) -> SessionStore: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


SAME = 0.9  # a stored fact this close to the typed text is taken for it


@dataclass
class WhyNot:
    case: str  # retrieved | ranked below the cut-off | deleted | stored for another user | in another session
    #            | expired | never stored
    explanation: str
    memory: dict[str, Any] = field(default_factory=dict)  # what was found: id, text, user, session, when
    rank: int | None = None
    of: int | None = None  # how many facts were ranked
    k: int | None = None
    components: dict[str, float] = field(default_factory=dict)  # cosine, bm25, score
    cutoff: dict[str, float] = field(default_factory=dict)  # the k-th fact's components
    evidence: list[str] = field(default_factory=list)  # fact log events, audit rows that back the answer


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def why_not(lab: WhyServices, user_id: str, query: str, memory: str, k: int = 5, session_id: str = "") -> WhyNot:
    """Explain where ``memory`` (a fact id or a text) is for ``user_id`` and why ``query`` did (not) retrieve it."""
    validate_id("user", user_id)
    if session_id:
        validate_id("session", session_id)
    wanted = memory.strip()
    if not wanted or not query.strip():
        raise InputError("give both the query and the memory (a fact id or its text)")
    vectors = lab.embed([query, wanted])
    query_vec, memory_vec = vectors[0], vectors[1]

    ranked = lab.facts.ranking(user_id, query_vec, query)
    target = next((f for f in ranked if f.id == wanted or _norm(f.text) == _norm(wanted)), None)
    note = ""
    if target is None and ranked:
        closest_id, similarity = lab.facts.closest(user_id, memory_vec)
        if closest_id and similarity >= SAME:
            target = next(f for f in ranked if f.id == closest_id)
            note = f" (the stored fact closest to your text, cosine {similarity:.2f})"
    if target is not None:
        components = {"cosine": target.cosine, "bm25": target.bm25, "score": target.score}
        last = ranked[min(k, len(ranked)) - 1]
        cutoff = {"cosine": last.cosine, "bm25": last.bm25, "score": last.score}
        found = {"id": target.id, "text": target.text, "user": user_id, **_when(target.metadata)}
        if target.rank <= k:
            return WhyNot(
                "retrieved",
                f"“{target.text}”{note} is fact {target.rank} of {len(ranked)} for this query: within the top {k}.",
                found, target.rank, len(ranked), k, components, cutoff,
            )  # fmt: skip
        gap = last.score - target.score
        return WhyNot(
            "ranked below the cut-off",
            f"“{target.text}”{note} is stored, but ranks {target.rank} of {len(ranked)} for this query; only the "
            f"top {k} are retrieved. It scores {target.score:.3f} (cosine {target.cosine:.3f}, BM25 "
            f"{target.bm25:.2f}); number {k} scores {last.score:.3f}, {gap:.3f} more. Raise k, or ask with words "
            "the memory uses.",
            found, target.rank, len(ranked), k, components, cutoff,
        )  # fmt: skip

    for event in reversed(lab.facts.history(user_id).items):
        replaced = event.event in ("UPDATE", "SUPERSEDE") and event.previous and _norm(event.previous) == _norm(wanted)
        if (event.event == "DELETE" and (event.fact_id == wanted or _norm(event.text) == _norm(wanted))) or replaced:
            what = f"replaced by “{event.text}”" if replaced else "deleted"
            return WhyNot(
                "deleted",
                f"“{wanted}” was a fact of {user_id}'s, {what} on {when(event.at)}: nothing to retrieve any more.",
                {"id": event.fact_id, "text": event.previous if replaced else event.text, "user": user_id},
                evidence=[f"fact log: {event.event} {event.fact_id} at {when(event.at)}"],
            )

    hit = lab.facts.nearest_of_another_user(user_id, memory_vec)
    if hit is not None and hit.similarity >= SAME:
        owner = str(hit.metadata.get("user_id", "?"))
        return WhyNot(
            "stored for another user",
            f"“{hit.text}” is a fact of user {owner}, not of {user_id}: memory is filtered by user, so "
            f"{user_id}'s queries never see it.",
            {"id": hit.id, "text": hit.text, "user": owner, **_when(hit.metadata)},
        )

    return _said_or_never(lab, user_id, wanted, session_id)


def _said_or_never(lab: WhyServices, user_id: str, wanted: str, session_id: str) -> WhyNot:
    """No fact holds it: was it said (in which session, and is that session still there), or never stored?"""
    said = lab.audit.query(user_id=user_id, actions=["message_stored"], content=wanted, limit=20)
    if not said:
        said = [e for e in lab.audit.query(user_id=user_id, actions=["message_stored"], limit=5000)
                if _norm(e.content) == _norm(wanted)]  # fmt: skip
    if said:
        row = said[0]
        messages = lab.sessions.log(user_id, row.session_id).messages
        if any(m.id == row.target for m in messages):
            if row.session_id != session_id:
                return WhyNot(
                    "in another session",
                    f"{user_id} said “{row.content}” in session {row.session_id} (on {when(row.at)}), which still "
                    f"holds it; conversation memory (buffer, summary) reads only the current session"
                    f"{' (' + session_id + ')' if session_id else ''}, and no fact was extracted from it.",
                    {"id": row.target, "text": row.content, "user": user_id, "session": row.session_id},
                    evidence=[f"audit: message_stored {row.target} at {when(row.at)}"],
                )
        else:
            cleared = lab.audit.query(user_id=user_id, actions=["session_cleared"], since=row.at, limit=50)
            cleared = [c for c in cleared if c.session_id == row.session_id]
            how = (f"the session was cleared on {when(cleared[0].at)}" if cleared
                   else "its keys expired (the session's TTL ran out)")  # fmt: skip
            return WhyNot(
                "expired",
                f"{user_id} said “{row.content}” in session {row.session_id} on {when(row.at)}, but that session's "
                f"messages are gone: {how}. No fact was kept from it.",
                {"id": row.target, "text": row.content, "user": user_id, "session": row.session_id},
                evidence=[f"audit: message_stored {row.target} at {when(row.at)}"]
                + [f"audit: session_cleared at {when(c.at)}" for c in cleared],
            )

    return WhyNot(
        "never stored",
        f"Nothing like “{wanted}” was ever stored for {user_id}: no fact (or a deleted one), no other user's fact, "
        "and no message in the audit trail. If it was said, the fact rules did not extract it.",
    )


def _when(metadata: dict[str, Any]) -> dict[str, Any]:
    at = metadata.get("updated_at") or metadata.get("created_at")
    return {"session": metadata.get("session_id", ""), "when": when(float(at)) if isinstance(at, (int, float)) else ""}
