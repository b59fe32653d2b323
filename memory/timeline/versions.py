"""A fact's versions, and the facts valid at a past moment, read from the user's fact log.

Why from the log: every change to a fact (a turn's upkeep, a hand edit, an
import, an undo, a newer statement superseding it, a retention policy) is
appended to the fact log with its text and the text before it, so the log
alone says what a fact read at any moment. A version is a step that changed
what the fact read or whether it was current; a repeat that only refreshed
it (DUPLICATE) is no version. Superseded statements keep their versions and
an interval (from, until) in which they were valid.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError
from ..keys import validate_id
from ..stores.fact_store import FactEvent, FactStore
from ..transfer.transcript import _date

CURRENT, SUPERSEDED, DELETED = "current", "superseded", "deleted"


@dataclass(frozen=True)
class FactVersion:
    number: int  # 1 = the first
    at: float  # when this version began
    until: float | None  # when the next step ended it; None: still so
    event: str  # the logged step that made it (ADD, UPDATE, EDIT, SUPERSEDE, DELETE, UNDO, RESTORE)
    text: str  # what the fact read (a deleted fact: what it read when deleted)
    state: str  # current | superseded | deleted
    cause: str  # who or what made the step, in words
    session_id: str | None = None
    job: str | None = None  # the upkeep job (the turn's message id) or the retention run that made it
    previous: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cause_of(event: FactEvent) -> str:
    """Who or what made a logged step, said from what the event records."""
    job, session = event.job or "", event.session_id
    if job.startswith("merge-into-"):
        return f"merged by hand into fact {job.removeprefix('merge-into-')}"
    if job.startswith("retention-"):
        run = job.removeprefix("retention-")
        return f"retention run {run} undone" if event.event == "UNDO" else f"retention policy (run {run})"
    where = f" in session {session}" if session else ""
    turn = f"upkeep of turn {job}{where}" if job else (f"a turn{where}" if session else "")
    if event.event == "EDIT":
        return "edited by hand"
    if event.event == "UNDO":
        return "undo of the change before"
    if event.event == "RESTORE":
        return "an earlier version restored by hand"
    if event.event == "SUPERSEDE":
        return f"superseded by a newer statement ({turn or 'by hand or an import'}): {event.text}"
    if event.event == "DELETE":
        return turn or "deleted by hand"
    if event.event == "UPDATE":
        return f"updated by a newer statement ({turn})" if turn else "replaced by an import"
    return turn or "added by an import or by hand"


def _after(event: FactEvent, text: str, state: str) -> tuple[str, str] | None:
    """(text, state) after ``event``, from (text, state) before; None when the event changes neither."""
    kind = event.event
    if kind == "DUPLICATE":
        return None
    if kind == "DELETE":
        return (event.previous or event.text or text), DELETED
    if kind == "SUPERSEDE":
        return (event.previous or text), SUPERSEDED
    if kind == "UNDO" and not event.text:
        return (event.previous or text), DELETED
    return event.text, CURRENT  # ADD, UPDATE, EDIT, RESTORE, UNDO with a text


def versions_of(events: Sequence[FactEvent], fact_id: str) -> list[FactVersion]:
    """The fact's versions, oldest first, from the user's fact log (oldest first)."""
    out: list[FactVersion] = []
    text, state = "", ""
    for event in events:
        if event.fact_id != fact_id:
            continue
        after = _after(event, text, state)
        if after is None or after == (text, state):
            continue
        text, state = after
        if out:
            out[-1] = _ended(out[-1], event.at)
        out.append(
            FactVersion(
                len(out) + 1,
                event.at,
                None,
                event.event,
                text,
                state,
                cause_of(event),
                event.session_id,
                event.job,
                event.previous,
            )
        )
    return out


def _ended(version: FactVersion, at: float) -> FactVersion:
    return FactVersion(**{**asdict(version), "until": at})


@dataclass(frozen=True)
class ValidFact:
    """A fact as it read at a moment, and the interval that version was valid in."""

    id: str
    text: str
    valid_from: float
    valid_until: float | None  # None: still valid now
    version: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def facts_as_of(events: Sequence[FactEvent], at: float) -> list[ValidFact]:
    """The facts that were current at ``at`` (superseded and deleted ones are not), oldest first.

    One pass over the log: each fact's version current at ``at`` and when it
    stopped being so (the first later step that changed it).
    """
    state: dict[str, tuple[str, str, float, int]] = {}  # id -> (text, state, since, version)
    until: dict[str, float] = {}
    for event in events:
        fid = event.fact_id
        text, current, since, number = state.get(fid, ("", "", 0.0, 0))
        after = _after(event, text, current)
        if after is None or after == (text, current):
            continue
        if event.at <= at:
            state[fid] = (after[0], after[1], event.at, number + 1)
        elif fid not in until:
            until[fid] = event.at
    return [
        ValidFact(fid, text, since, until.get(fid), number)
        for fid, (text, current, since, number) in sorted(state.items(), key=lambda kv: kv[1][2])
        if current == CURRENT
    ]


_WORDS = re.compile(r"\S+|\s+")


@dataclass(frozen=True)
class DiffPart:
    op: str  # "same" | "removed" | "added"
    text: str


def word_diff(old: str, new: str) -> list[DiffPart]:
    """``old`` → ``new`` word by word (spaces kept), as runs of same, removed and added text."""
    a, b = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    parts: list[DiffPart] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(DiffPart("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(DiffPart("removed", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(DiffPart("added", "".join(b[j1:j2])))
    return parts


def diff_text(parts: Sequence[DiffPart]) -> str:
    """A word diff on one line for a terminal: [-removed-] and {+added+}, as ``git diff --word-diff`` writes it."""
    marks = {"same": "{}", "removed": "[-{}-]", "added": "{{+{}+}}"}
    return "".join(marks[p.op].format(p.text) for p in parts)


@dataclass(frozen=True)
class FactHistory:
    fact_id: str
    versions: list[FactVersion]
    skipped: int  # damaged fact log entries passed over (they may have named this fact)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fact_id": self.fact_id,
            "skipped_log_entries": self.skipped,
            "versions": [
                {**v.to_dict(), "diff": [asdict(p) for p in word_diff(self.versions[i - 1].text, v.text)] if i else []}
                for i, v in enumerate(self.versions)
            ],
        }


def fact_history(facts: FactStore, user_id: str, fact_id: str) -> FactHistory:
    """A fact's versions; ``InputError`` when the user's fact log never names it."""
    log = facts.history(validate_id("user", user_id))
    found = versions_of(log.items, fact_id)
    if not found:
        raise InputError(f"user {user_id!r} has no fact {fact_id!r} in the fact log (a typo, or another user's?)")
    return FactHistory(fact_id, found, len(log.corrupt))


def restore_version(facts: FactStore, user_id: str, fact_id: str, number: int) -> FactEvent | None:
    """Make version ``number`` of a fact current again (a logged RESTORE, undoable); None if it already is."""
    history = fact_history(facts, user_id, fact_id)
    if not 1 <= number <= len(history.versions):
        raise InputError(f"fact {fact_id} has versions 1 to {len(history.versions)}; there is no version {number}")
    version = history.versions[number - 1]
    if version.state == DELETED:
        raise InputError(f"version {number} is the fact's deletion; restore a version that held text")
    mine = [e for e in facts.history(user_id).items if e.fact_id == fact_id]
    slot = next((e.slot for e in reversed(mine) if e.slot), None)
    deletion = next((e for e in reversed(mine) if e.event == "DELETE"), None)
    return facts.put_back(user_id, fact_id, version.text, slot, version.session_id or "", deletion)


def valid_at(facts: FactStore, user_id: str, at: float) -> tuple[list[ValidFact], int]:
    """The user's facts current at ``at`` with their validity intervals, and how many log entries were damaged."""
    log = facts.history(validate_id("user", user_id))
    return facts_as_of(log.items, at), len(log.corrupt)


def parse_when(text: str, what: str = "--as-of") -> float:
    """A date or time the user typed (ISO 8601, 'YYYY/MM/DD (Day) HH:MM' or unix seconds); a bare date means
    the end of that day (its facts included)."""
    text = (text or "").strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        number: Any = text
        try:
            number = float(text)
        except ValueError:
            pass
        return _date(number, what)
    return dt.datetime.combine(day, dt.time.max).timestamp()


def when_text(at: float | None) -> str:
    """A moment for a person, local time to the second; None (an interval still open) is "now"."""
    return "now" if at is None else dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
