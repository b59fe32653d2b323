"""What each part of a session's memory held at turn N, and what the model was sent then, from what is stored.

Why: the question people debug is what the model knew at turn 12 and what
changed after turn 5, and the stores keep enough to answer it without a
snapshot per turn:

- the transcript (``log``) is never trimmed, so it says which messages
  existed then; each turn's trace names its strategy and settings, so the
  buffer's trimming is replayed with them, and the fold records say which
  messages left the buffer for the summary, and when;
- the audit trail keeps each fold's summary text (the Redis fold record
  keeps only its messages), so the summary at turn N is the one the last
  fold before it made; without the audit row only the newest fold's summary
  is known (it is the current one), and the replay says so;
- the fact log says what every fact read at any moment (``versions.py``);
- episodes are kept only as they are now: one changed after turn N is shown
  as it is now and marked as such;
- the stored trace is exactly what the model was sent.

"At turn N" means when turn N's reply was written: the memory the model saw.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from ..backends.vector_store import Record
from ..errors import InputError, MemoryLabError, StoredDataError
from ..keys import validate_id
from ..records.messages import Message, Role
from ..records.trace import Trace
from ..stores.audit import AuditEvent
from ..stores.fact_store import FactEvent
from ..stores.session_store import Fold
from ..strategies import STRATEGIES, Services, StrategyConfig
from .versions import DiffPart, ValidFact, facts_as_of, word_diff

log = logging.getLogger(__name__)


class NothingToReplay(InputError):
    """The session has no stored messages (never used, expired or cleared)."""


@dataclass(frozen=True)
class Turn:
    number: int  # 1 = the session's first user message
    user: Message
    reply: Message | None

    @property
    def at(self) -> float:
        """When the turn's reply was written (its user message's time when it got no reply)."""
        return self.reply.created_at if self.reply is not None else self.user.created_at


@dataclass
class FoldSeen:
    number: int  # 1 = the session's first fold
    at: float
    message_ids: list[str]
    summary: str | None  # None: the summary it made is not stored (no audit row, and not the newest fold)


@dataclass
class EpisodeSeen:
    session_id: str
    text: str
    exact: bool  # False: the episode changed after this turn; its text then is not stored (shown as it is now)


@dataclass
class TurnState:
    """Memory at one turn, each part said exactly or marked in ``notes`` where it cannot be."""

    session_id: str
    turn: int
    turns: int
    at: float
    user_message: str
    reply: str | None
    buffer: list[Message]
    summary: str
    fold: FoldSeen | None  # the fold that made the summary; None: no fold yet
    facts: list[ValidFact]
    episodes: list[EpisodeSeen]
    trace: Trace | None  # what the model was sent
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "turn": self.turn,
            "turns": self.turns,
            "at": self.at,
            "user_message": self.user_message,
            "reply": self.reply,
            "buffer": [m.to_dict() for m in self.buffer],
            "summary": self.summary,
            "fold": asdict(self.fold) if self.fold else None,
            "facts": [f.to_dict() for f in self.facts],
            "episodes": [asdict(e) for e in self.episodes],
            "trace": self.trace.to_dict() if self.trace else None,
            "notes": self.notes,
        }


@dataclass
class TurnDiff:
    """What changed in memory from turn ``before`` to turn ``after``."""

    before: int
    after: int
    buffer_added: list[Message]
    buffer_removed: list[Message]
    summary: list[DiffPart]  # empty when the summary did not change
    folds: list[FoldSeen]  # the folds made between the two turns
    facts_added: list[ValidFact]
    facts_removed: list[ValidFact]
    facts_changed: list[tuple[ValidFact, ValidFact, list[DiffPart]]]
    episodes_changed: list[str]  # session ids whose episode differs (or is not known exactly at one of the turns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "buffer_added": [m.to_dict() for m in self.buffer_added],
            "buffer_removed": [m.to_dict() for m in self.buffer_removed],
            "summary_diff": [asdict(p) for p in self.summary],
            "folds": [asdict(f) for f in self.folds],
            "facts_added": [f.to_dict() for f in self.facts_added],
            "facts_removed": [f.to_dict() for f in self.facts_removed],
            "facts_changed": [
                {"before": a.to_dict(), "after": b.to_dict(), "diff": [asdict(p) for p in d]}
                for a, b, d in self.facts_changed
            ],
            "episodes_changed": self.episodes_changed,
        }


class SessionReplay:
    """One session's stored history, read once; ``at(n)`` and ``diff(m, n)`` then compute without reading again.

    Reads: the transcript, the fold records, the turns' traces, the audit
    trail's fold rows for the session, the user's fact log and episodes.
    ``lab`` is a ``MemoryLab`` (typed loosely: the lab imports the strategies
    and this module is imported by the CLI alone).
    """

    def __init__(self, lab: Any, user_id: str, session_id: str) -> None:
        self.user_id = validate_id("user", user_id)
        self.session_id = validate_id("session", session_id)
        self.notes: list[str] = []
        self._trims: dict[tuple[str, str], int | None] = {}
        transcript = lab.sessions.log(user_id, session_id)
        if transcript.corrupt:
            self.notes.append(f"{len(transcript.corrupt)} transcript entries are damaged and left out")
        self.turns = _turns(transcript.messages)
        if not self.turns:
            raise NothingToReplay(f"session {session_id!r} of user {user_id!r} has no stored messages to replay")
        self.traces = _traces(lab, user_id, session_id, self.turns, self.notes)
        self.folds = _folds(lab, user_id, session_id, self.notes)
        facts = lab.facts.history(user_id)
        if facts.corrupt:
            self.notes.append(f"{len(facts.corrupt)} fact log entries are damaged and left out of the facts shown")
        self.fact_log: list[FactEvent] = facts.items
        # Each fact's metadata (where it came from): as stored now, or as its DELETE kept it.
        self.fact_meta: dict[str, dict[str, Any]] = {e.fact_id: e.meta for e in self.fact_log if e.meta}
        self.fact_meta.update({r.id: r.metadata for r in lab.facts.all(user_id, superseded=True)})
        self.episodes: list[Record] = lab.episodes.all(user_id)

    def turn(self, number: int) -> Turn:
        if not 1 <= number <= len(self.turns):
            raise InputError(f"session {self.session_id} has turns 1 to {len(self.turns)}; there is no turn {number}")
        return self.turns[number - 1]

    def at(self, number: int) -> TurnState:
        turn = self.turn(number)
        when = turn.at
        notes = list(self.notes)
        made = [f for f in self.folds if f.at <= when]
        fold = made[-1] if made else None
        summary = ""
        if fold is not None:
            if fold.summary is None:
                notes.append(
                    f"the summary fold {fold.number} made is not stored (no audit row for it); "
                    "the trace below shows the summary the model was sent, when its strategy sends one"
                )
            summary = fold.summary or ""
        buffer, buffer_notes = self._buffer(number)
        notes.extend(buffer_notes)
        episodes = [
            EpisodeSeen(
                str(r.metadata.get("session_id") or ""),
                r.text,
                _float(r.metadata.get("updated_at")) <= when,
            )
            for r in self.episodes
            if _float(r.metadata.get("first_at")) <= when
        ]
        if any(not e.exact for e in episodes):
            notes.append(
                "episodes are kept only as they are now: those marked 'changed since' are shown as they are now, "
                "not as they were at this turn"
            )
        trace = self.traces.get(turn.reply.id) if turn.reply is not None else None
        if trace is None:
            notes.append(
                "no trace is stored for this turn (an error, or a trace cleared): what the model was sent is not known"
            )
        return TurnState(
            self.session_id,
            number,
            len(self.turns),
            when,
            turn.user.content,
            turn.reply.content if turn.reply else None,
            buffer,
            summary,
            fold,
            facts_as_of(self.fact_log, when),
            episodes,
            trace,
            notes,
        )

    def _buffer(self, number: int) -> tuple[list[Message], list[str]]:
        """The buffer the model read for turn ``number`` (its user message last, its reply not yet): the turns'
        appends, each trimmed as its strategy trims, with the folds made by then taken out."""
        notes: list[str] = []
        when = self.turns[number - 1].at
        folds = iter([f for f in self.folds if f.at <= when])
        pending = next(folds, None)
        buffer: list[Message] = []
        for turn in self.turns[:number]:
            for message in (turn.user, turn.reply if turn.number < number else None):
                if message is None:
                    continue
                while pending is not None and pending.at < message.created_at:
                    buffer = _without(buffer, pending.message_ids)
                    pending = next(folds, None)
                buffer.append(message)
                trim = self._trim(turn)
                if trim:
                    buffer = buffer[-trim:]
        while pending is not None:
            buffer = _without(buffer, pending.message_ids)
            pending = next(folds, None)
        if any(t.reply is not None and t.reply.id not in self.traces for t in self.turns[:number]):
            notes.append("some earlier turns have no trace, so their strategy's trimming of the buffer is not known")
        return buffer, notes

    def _trim(self, turn: Turn) -> int | None:
        """How the turn's strategy trims the buffer on append (None: it does not), from its trace's settings;
        worked out once per distinct strategy and settings (a long session repeats a few)."""
        trace = self.traces.get(turn.reply.id) if turn.reply is not None else None
        if trace is None or trace.strategy not in STRATEGIES:
            return None
        key = (trace.strategy, repr(sorted(trace.settings.items())))
        if key not in self._trims:
            try:
                config = StrategyConfig.from_dict(trace.settings)
                self._trims[key] = STRATEGIES[trace.strategy](cast(Services, None), config).trim_to()
            except (MemoryLabError, TypeError, ValueError):
                self._trims[key] = None
        return self._trims[key]

    def diff(self, before: int, after: int) -> TurnDiff:
        a, b = self.at(before), self.at(after)
        ids_a, ids_b = {m.id for m in a.buffer}, {m.id for m in b.buffer}
        facts_a, facts_b = {f.id: f for f in a.facts}, {f.id: f for f in b.facts}
        low, high = sorted((a.at, b.at))
        eps_a = {e.session_id: e for e in a.episodes}
        eps_b = {e.session_id: e for e in b.episodes}
        return TurnDiff(
            before,
            after,
            [m for m in b.buffer if m.id not in ids_a],
            [m for m in a.buffer if m.id not in ids_b],
            word_diff(a.summary, b.summary) if a.summary != b.summary else [],
            [f for f in self.folds if low < f.at <= high],
            [f for fid, f in facts_b.items() if fid not in facts_a],
            [f for fid, f in facts_a.items() if fid not in facts_b],
            [
                (facts_a[fid], f, word_diff(facts_a[fid].text, f.text))
                for fid, f in facts_b.items()
                if fid in facts_a and facts_a[fid].text != f.text
            ],
            sorted(
                sid
                for sid in set(eps_a) | set(eps_b)
                if sid not in eps_a
                or sid not in eps_b
                or eps_a[sid].text != eps_b[sid].text
                or not (eps_a[sid].exact and eps_b[sid].exact)
            ),
        )


def _float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _without(buffer: list[Message], ids: list[str]) -> list[Message]:
    gone = set(ids)
    return [m for m in buffer if m.id not in gone]


def _turns(messages: list[Message]) -> list[Turn]:
    """The transcript as turns: each user message with the reply after it (assistant messages before the
    first user message, if any, are left out)."""
    turns: list[Turn] = []
    for m in messages:
        if m.role == Role.USER:
            turns.append(Turn(len(turns) + 1, m, None))
        elif m.role == Role.ASSISTANT and turns and turns[-1].reply is None:
            turns[-1] = Turn(turns[-1].number, turns[-1].user, m)
    return turns


def _traces(lab: Any, user_id: str, session_id: str, turns: list[Turn], notes: list[str]) -> dict[str, Trace]:
    read = lab.sessions.traces(user_id, session_id)
    if read.corrupt:
        notes.append(f"{len(read.corrupt)} stored traces are damaged: those turns show no trace")
    return dict(read.items)


def _folds(lab: Any, user_id: str, session_id: str, notes: list[str]) -> list[FoldSeen]:
    """The session's folds in order, each with the summary it made where that is stored."""
    read = lab.sessions.folds(user_id, session_id)
    if read.corrupt:
        notes.append(
            f"{len(read.corrupt)} fold records are damaged: the buffer and summary around them are approximate"
        )
    records: list[Fold] = sorted(read.items, key=lambda f: f.at)
    rows: dict[str, AuditEvent] = {}
    try:
        for row in lab.audit.query(user_id, actions=["fold"], limit=100_000):
            if row.session_id == session_id:
                rows.setdefault(row.target, row)
    except (MemoryLabError, StoredDataError) as exc:
        notes.append(f"the audit trail could not be read ({exc}): only the newest fold's summary is known")
    seen: list[FoldSeen] = []
    for i, f in enumerate(records):
        row = rows.get(",".join(f.message_ids))
        summary = row.content if row is not None else None
        seen.append(FoldSeen(i + 1, f.at, list(f.message_ids), summary))
    if seen and seen[-1].summary is None:
        seen[-1].summary = lab.sessions.summary(user_id, session_id)  # the newest fold made the summary there is now
    return seen
