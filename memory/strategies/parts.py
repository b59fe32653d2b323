"""Context building blocks shared by the strategies, each filling the trace as it goes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends.vector_store import Hit
from ..records.messages import Message
from ..records.tokens import count_tokens
from ..records.trace import PromptPart, RetrievedItem, Trace
from ..stores.audit import fold_event
from ..stores.session_store import SessionView
from .base import INSTRUCTIONS, Services, StrategyConfig


def instructions(keeps: str) -> PromptPart:
    """The instructions, saying what this strategy keeps, so no reply promises more than that."""
    return PromptPart("instructions", f"{INSTRUCTIONS} Your memory of this user keeps: {keeps}.", keeps=keeps)


def recent_messages(view: SessionView, trace: Trace) -> list[Message]:
    """The buffer as read with the user's message (same round trip); corrupt entries become warnings."""
    for bad in view.buffer.corrupt:
        trace.warnings.append(f"skipped corrupt buffer entry #{bad.index}: {bad.error}")
    return view.buffer.messages


def summary_part(view: SessionView) -> PromptPart | None:
    text = view.summary
    if not text:
        return None
    return PromptPart(
        "summary", f"Summary of the earlier conversation:\n{text}", items=[{"ref": "summary", "text": text}]
    )


def embed_query(s: Services, query: Message, trace: Trace) -> np.ndarray:
    with trace.timed("embed.query"):
        return s.embed([query.content])[0]


def _item(kind: str, hit: Hit, score: float | None = None) -> RetrievedItem:
    meta = hit.metadata
    source: dict[str, Any] = {
        k: meta[k]
        for k in (
            "session_id",
            "created_at",
            "updated_at",
            "said_at",
            "last_at",
            "source_ids",
            "log_key",
            "n_messages",
            "slot",
            "context",
        )
        if k in meta
    }
    return RetrievedItem(
        kind,
        hit.id,
        hit.text,
        round(hit.similarity, 4),
        round(hit.distance, 4),
        source,
        score=None if score is None else round(score, 4),
    )


def fact_items(
    s: Services, user_id: str, query: Message, vector: np.ndarray, k: int, trace: Trace
) -> list[RetrievedItem]:
    with trace.timed("facts.query"):
        hits = s.facts.search(user_id, vector, k, query_text=query.content)
    return [_item("fact", h, score) for h, score in hits]


def episode_items(
    s: Services, user_id: str, session_id: str, query: Message, vector: np.ndarray, k: int, trace: Trace
) -> list[RetrievedItem]:
    """Past sessions ranked by the shared session ranking over their turns; shown by their episode summary."""
    with trace.timed("episodes.query"):
        sessions = s.turns.search_sessions(user_id, query.content, vector, k, exclude_session=session_id)
        episodes = {r.metadata.get("session_id"): r for r in s.episodes.get(user_id, [h.session_id for h in sessions])}
    items = []
    for h in sessions:
        record = episodes.get(h.session_id)
        text = record.text if record else "(no episode summary yet)"
        meta = dict(record.metadata) if record else {"session_id": h.session_id}
        hit = Hit(record.id if record else f"{user_id}/{h.session_id}", text, meta, 1.0 - h.similarity)
        items.append(_item("episode", hit, h.score))
    return items


def turn_items(
    s: Services, user_id: str, session_id: str, query: Message, vector: np.ndarray, k: int, trace: Trace
) -> list[RetrievedItem]:
    """What the user said in past sessions that best answers the message (the benchmark's turn ranking)."""
    with trace.timed("turns.query"):
        hits = s.turns.search_turns(user_id, query.content, vector, k, exclude_session=session_id)
    return [
        RetrievedItem(
            "turn",
            h.id,
            h.text,
            round(h.similarity, 4),
            round(1.0 - h.similarity, 4),
            {"session_id": h.session_id, "said_at": h.at}
            | ({"related words": ", ".join(h.related)} if h.related else {}),
            score=round(h.score, 4),
        )
        for h in hits
    ]


def turns_part(items: list[RetrievedItem]) -> PromptPart | None:
    return _session_list_part("past turns", "Relevant things the user said in past sessions:", items)


def index_user_turn(s: Services, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
    """The user's own words go to the turn index that episodic recall ranks sessions by."""
    with trace.timed("turns.index"):
        rows = [
            (m.id, f"User: {m.content}", int(m.created_at * 1000), m.created_at, "User")
            for m in turn
            if m.role.value == "user"
        ]
        if rows:
            s.turns.add(user_id, session_id, rows)


def facts_part(items: list[RetrievedItem]) -> PromptPart | None:
    chosen = [i for i in items if i.included]
    if not chosen:
        return None
    return PromptPart(
        "facts",
        "Known facts about the user:\n" + "\n".join(f"- {i.text}" for i in chosen),
        items=[_part_item(i) for i in chosen],
    )


def _part_item(item: RetrievedItem) -> dict[str, str]:
    """A memory as a prompt part holds it: its ref and text, and when it was said where known (so a reply can
    let the newer of two statements win)."""
    at = item.source.get("said_at") or item.source.get("last_at") or item.source.get("created_at")
    extra = {"at": f"{float(at):.3f}"} if isinstance(at, (int, float)) else {}
    if isinstance(item.source.get("context"), str) and item.source["context"]:
        extra["context"] = item.source["context"]  # what was said around a statement: the answerer ranks with it
    return {"ref": item.ref, "text": item.text} | extra


def episodes_part(items: list[RetrievedItem]) -> PromptPart | None:
    return _session_list_part("episodes", "Relevant past sessions:", items)


def _session_list_part(name: str, header: str, items: list[RetrievedItem]) -> PromptPart | None:
    """Items kept in the context, one line each, tagged with the session they came from."""
    chosen = [i for i in items if i.included]
    if not chosen:
        return None
    lines = [f"- [session {i.source.get('session_id', '?')}] {i.text}" for i in chosen]
    return PromptPart(name, header + "\n" + "\n".join(lines), items=[_part_item(i) for i in chosen])


def fit_part(
    build: Callable[[list[RetrievedItem]], PromptPart | None],
    items: list[RetrievedItem],
    budget: int,
    trace: Trace,
) -> PromptPart | None:
    """The part ``build`` makes of the items that fit ``budget``, taken best first; the rest are marked left out.

    Each item is tried in the part as it will be sent (its header, its line
    with the session tag), so the part's token count, which the trace and the
    context bar show, is the one held to the budget: estimating an item by
    its text alone left the headers and tags out, and the context ran over.
    """
    for item in items:
        item.included = False
    for item in items:
        item.included = True
        part = build(items)
        if part is not None and part.tokens > budget:
            item.included = False
            trace.dropped.append(f"{item.kind} {item.id} ({count_tokens(item.text)} tokens) over budget")
    return build(items)


def refresh_episode(
    s: Services, user_id: str, session_id: str, turn: list[Message], max_tokens: int, trace: Trace
) -> None:
    """Fold the turn into the session's episode summary (incremental: the cost does not grow with the session)."""
    with trace.timed("episode.refresh"):
        key = s.sessions.keys.session(user_id, session_id).log
        s.episodes.extend(
            user_id, session_id, turn, lambda previous, new: s.llm.summarize(previous, new, max_tokens), key
        )


def extract_and_remember(s: Services, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
    with trace.timed("facts.extract"):
        facts, warnings = s.llm.extract_facts(turn)
    trace.warnings.extend(warnings)
    with trace.timed("facts.store"):
        events = s.facts.remember(user_id, session_id, facts, job=turn[-1].id if turn else None)
    trace.upkeep.setdefault("fact_events", []).extend(
        {"event": e.event, "text": e.text, "previous": e.previous} for e in events
    )


def keep_whole_memory(
    s: Services, user_id: str, session_id: str, turn: list[Message], config: StrategyConfig, trace: Trace
) -> None:
    """The upkeep every strategy does, whichever the user chats under: the statements go to the facts, the
    user's words to the turn index, the turn to its session's episode. So a session chatted under one strategy
    is remembered by all of them (the user may switch strategies; memory is the user's, not the strategy's)."""
    extract_and_remember(s, user_id, session_id, turn, trace)
    index_user_turn(s, user_id, session_id, turn, trace)
    refresh_episode(s, user_id, session_id, turn, config.summary_max_tokens, trace)


def fold_if_needed(
    s: Services, user_id: str, session_id: str, config: StrategyConfig, turn: list[Message], trace: Trace
) -> None:
    """Fold the buffer past the threshold, and record the fold in the audit trail.

    A job that runs again finds its own earlier fold (``fold(since=)``) and
    records it again: a worker killed between the fold and the audit insert
    left it unrecorded, and the trail keeps each fold once (its id).
    """
    c = config
    with trace.timed("summary.fold"):
        fold = s.sessions.fold(
            user_id,
            session_id,
            c.summary_threshold,
            c.summary_keep,
            lambda prev, msgs: s.llm.summarize(prev, msgs, c.summary_max_tokens),
            since=turn[-1].created_at if turn else None,
        )
    if fold is not None:
        if not fold.replayed:
            trace.upkeep["fold"] = fold.to_dict()
        s.audit([fold_event(user_id, session_id, fold)])
