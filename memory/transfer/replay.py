"""Replay a conversation into a user's memory as if it had been chatted, without calling the LLM for the replies.

Why: to see what each strategy keeps of a real conversation (an imported
transcript, a benchmark's history), the conversation must go through the
same path a chat turn takes — the user's message and the reply stored in the
session, then the strategy's upkeep on that turn — but the replies are the
transcript's own, so no model is called and nothing is invented.

Each turn is a user message with the replies that follow it. Its messages
are appended in one round trip (the session's settings with the last one),
then the strategy's upkeep runs on the turn, here and now, as
``MEMLAB_UPKEEP=inline`` runs it. Message ids are derived from the user,
the session and the message's place and text, so replaying the same
transcript again stores nothing twice, and a replay that stopped half-way
(a backend went down) finishes where it stopped when run again: every
upkeep step is idempotent (``upkeep/worker.py``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, MemoryLabError
from ..keys import validate_id
from ..records.messages import Message, Role
from ..records.trace import Trace
from ..stores.audit import message_events
from ..strategies import Strategy, StrategyConfig

if TYPE_CHECKING:
    from ..lab import MemoryLab

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


class ReplayInterrupted(BackendError):
    """A backend failed part-way through a replay: what was stored stays; replaying again completes it."""


@dataclass(frozen=True)
class TranscriptSession:
    """One session of a transcript: its id and its messages in order (user and assistant only)."""

    id: str
    messages: tuple[Message, ...]


@dataclass
class ReplayReport:
    """What a replay stored: per session, how many messages were new (a second replay stores none)."""

    user_id: str
    strategy: str
    sessions: list[str] = field(default_factory=list)
    messages: int = 0
    stored: int = 0
    turns: int = 0
    warnings: list[str] = field(default_factory=list)


def turns_of(messages: Sequence[Message]) -> list[list[Message]]:
    """Messages grouped into turns: a user message and the replies after it (replies before any user message
    form a turn of their own)."""
    turns: list[list[Message]] = []
    for message in messages:
        if message.role is Role.USER or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def stable_id(user_id: str, session_id: str, position: int, message: Message) -> str:
    """A message's id from where it sits and what it says: the same on every replay of the same transcript."""
    digest = hashlib.sha1(
        f"{user_id}\0{session_id}\0{position}\0{message.role.value}\0{message.content}".encode("utf-8", "replace")
    )
    return digest.hexdigest()[:32]


def replay(
    lab: MemoryLab,
    user_id: str,
    sessions: Sequence[TranscriptSession],
    strategy: str,
    config: StrategyConfig | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Store every session's turns for ``user_id`` through ``strategy`` and run its upkeep on each turn.

    An upkeep step that fails raises (a backend that is down): what was
    stored stays, and replaying again completes it without duplicates.
    """
    validate_id("user", user_id)
    for session in sessions:
        validate_id("session", session.id)
    strat = lab.strategy(strategy, config)
    report = ReplayReport(user_id, strat.name)
    total = sum(len(s.messages) for s in sessions)
    try:
        _replay(lab, user_id, sessions, strat, report, total, progress)
    except MemoryLabError as exc:
        raise ReplayInterrupted(
            f"{exc} — {report.messages:,} of {total:,} messages were replayed; replay again to finish "
            "(nothing is stored twice)"
        ) from exc
    return report


def _replay(
    lab: MemoryLab,
    user_id: str,
    sessions: Sequence[TranscriptSession],
    strat: Strategy,
    report: ReplayReport,
    total: int,
    progress: Progress | None,
) -> None:
    meta: dict[str, Any] = {"strategy": strat.name, "config": strat.config.to_dict()}
    done = 0
    for session in sessions:
        session_id = validate_id("session", session.id)
        report.sessions.append(session_id)
        position = 0
        for turn in turns_of(session.messages):
            turn = [replace(m, id=stable_id(user_id, session_id, position + i, m)) for i, m in enumerate(turn)]
            position += len(turn)
            report.stored += _append(lab, user_id, session_id, turn, strat.trim_to(), strat.config.ttl_s, meta)
            if strat.has_upkeep:
                trace = Trace(strategy=strat.name, user_id=user_id, session_id=session_id)
                strat.after_turn(user_id, session_id, turn, trace)
                report.warnings.extend(trace.warnings)
            lab.audit.record_later(message_events(user_id, session_id, turn))
            report.messages += len(turn)
            report.turns += 1
            done += len(turn)
            if progress is not None:
                progress(done, total, f"session {session_id}")


def _append(
    lab: MemoryLab,
    user_id: str,
    session_id: str,
    turn: list[Message],
    trim_to: int | None,
    ttl_s: int,
    meta: dict[str, Any],
) -> int:
    """Append a turn's messages in one round trip (the settings with the last); returns how many were new."""
    sessions = lab.sessions
    with lab.redis.pipeline(transaction=False) as pipe:
        for i, message in enumerate(turn):
            last = i == len(turn) - 1
            sessions.stage_append(pipe, user_id, session_id, message, trim_to, ttl_s, meta=meta if last else None)
        results = sessions.run(pipe, user_id, session_id)
    # Each message stages its index entry, then its append: the appends return 1 when stored.
    appends = results[1::2]
    return sum(1 for r in appends if r == 1)
