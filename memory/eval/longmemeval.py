"""Load LongMemEval (Wu et al., 2024) into typed questions, each with its own history.

LongMemEval is the playground's own setting: a user tells an assistant
about their life over many sessions, then asks. Each question carries its
own haystack of sessions (S: ~50, most of them distractors; oracle: only
the evidence sessions), so histories must never mix: every question is
stored as a user of its own. The files come plain or gzip-compressed; the
format is detected from the bytes, not the file name.

Quirks normalised here, once: sessions are not always in date order (they
are sorted by their dates, ties keeping file order), ``answer`` is sometimes
a number, and a question id ending in ``_abs`` is an abstention question
(the history does not hold the answer; it has no evidence to recall).
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, StoredDataError
from ..messages import Message, Role
from ..stored import load_json

TYPES = (
    "single-session-user",
    "single-session-assistant",
    "single-session-preference",
    "multi-session",
    "knowledge-update",
    "temporal-reasoning",
)
ABSTENTION = "abstention"
_GZIP_MAGIC = b"\x1f\x8b"


class LongMemEvalError(InputError):
    """The file is not in LongMemEval format."""


@dataclass(frozen=True)
class LmeTurn:
    role: str  # "user" | "assistant"
    content: str
    has_answer: bool


@dataclass(frozen=True)
class LmeSession:
    id: str
    date_text: str
    date: dt.datetime | None
    turns: tuple[LmeTurn, ...]

    @property
    def has_answer(self) -> bool:
        return any(t.has_answer for t in self.turns)


@dataclass(frozen=True)
class LmeQuestion:
    question_id: str
    question_type: str
    question: str
    answer: str
    question_date_text: str
    question_date: dt.datetime | None
    sessions: tuple[LmeSession, ...]  # in date order
    answer_session_ids: tuple[str, ...]

    @property
    def abstention(self) -> bool:
        """The history does not hold the answer: a right reply says it cannot tell (left out of recall)."""
        return self.question_id.endswith("_abs")

    @property
    def kind(self) -> str:
        """The question type, or ``abstention``: how results are grouped."""
        return ABSTENTION if self.abstention else self.question_type

    @property
    def evidence_sessions(self) -> tuple[str, ...]:
        """Sessions that hold the answer and are in this history (the oracle file lists only those)."""
        present = {s.id for s in self.sessions}
        return tuple(sid for sid in self.answer_session_ids if sid in present)

    def evidence_turns(self) -> tuple[tuple[str, int], ...]:
        """(session id, turn position) of every turn marked ``has_answer``."""
        return tuple((s.id, i) for s in self.sessions for i, t in enumerate(s.turns) if t.has_answer)

    def messages(self, session: LmeSession) -> list[Message]:
        """A session as typed messages, one second apart from its date (so order and dates survive storage)."""
        base = session.date.timestamp() if session.date else 0.0
        return [
            Message(Role.USER if t.role == "user" else Role.ASSISTANT, t.content, created_at=base + i)
            for i, t in enumerate(session.turns)
        ]


def parse_date(text: str) -> dt.datetime | None:
    """``2023/05/20 (Sat) 02:21`` (the weekday is redundant and ignored)."""
    parts = text.split()
    if len(parts) < 2:
        return None
    try:
        return dt.datetime.strptime(f"{parts[0]} {parts[-1]}", "%Y/%m/%d %H:%M")
    except ValueError:
        return None


def is_longmemeval(data: Any) -> bool:
    """True when parsed JSON looks like LongMemEval (a list of questions with haystacks), for format detection."""
    first = data[0] if isinstance(data, list) and data else None
    return isinstance(first, dict) and "haystack_sessions" in first and "question_id" in first


def read_bytes(source: str | Path | bytes) -> bytes:
    """The file's bytes, gunzipped when they are gzip (detected from the magic number)."""
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise LongMemEvalError(f"cannot read {str(source)[:200]!r}: {exc.strerror or exc}") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise LongMemEvalError(f"the gzip file is damaged: {exc}") from exc
    return raw


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise LongMemEvalError(f"{what} is not text")
    return str(value)


def _question(item: Any, index: int) -> LmeQuestion:
    where = f"question {index}"
    if not isinstance(item, dict):
        raise LongMemEvalError(f"{where} is not a JSON object")
    try:
        qid = _text(item["question_id"], f"{where}'s question_id")
        where = f"question {qid[:60]!r}"
        ids, dates, sessions = item["haystack_session_ids"], item["haystack_dates"], item["haystack_sessions"]
        if not (isinstance(ids, list) and isinstance(dates, list) and isinstance(sessions, list)):
            raise LongMemEvalError(f"{where}: the haystack fields are not lists")
        if not len(ids) == len(dates) == len(sessions):
            raise LongMemEvalError(f"{where}: haystack_session_ids, _dates and _sessions differ in length")
        parsed: list[LmeSession] = []
        for sid, date_text, turns in zip(ids, dates, sessions, strict=True):
            if not isinstance(turns, list):
                raise LongMemEvalError(f"{where}: session {str(sid)[:60]!r} is not a list of turns")
            kept = []
            for t in turns:
                if not isinstance(t, dict) or t.get("role") not in ("user", "assistant"):
                    raise LongMemEvalError(f"{where}: a turn of session {str(sid)[:60]!r} has no user/assistant role")
                kept.append(
                    LmeTurn(t["role"], _text(t.get("content", ""), "a turn's content"), t.get("has_answer") is True)
                )
            date_str = _text(date_text, "a session date")
            parsed.append(LmeSession(_text(sid, "a session id"), date_str, parse_date(date_str), tuple(kept)))
        order = sorted(range(len(parsed)), key=lambda i: (parsed[i].date or dt.datetime.min, i))
        answer_ids = item.get("answer_session_ids") or []
        if not isinstance(answer_ids, list):
            raise LongMemEvalError(f"{where}: answer_session_ids is not a list")
        qdate = _text(item.get("question_date", ""), "question_date")
        return LmeQuestion(
            question_id=qid,
            question_type=_text(item["question_type"], "question_type"),
            question=_text(item["question"], "question"),
            answer=_text(item["answer"], "answer"),
            question_date_text=qdate,
            question_date=parse_date(qdate),
            sessions=tuple(parsed[i] for i in order),
            answer_session_ids=tuple(_text(s, "an answer session id") for s in answer_ids),
        )
    except KeyError as exc:
        raise LongMemEvalError(f"{where} has no {exc.args[0]!r} field") from None


def parse_longmemeval(data: Any) -> list[LmeQuestion]:
    if not isinstance(data, list) or not data:
        raise LongMemEvalError("expected a JSON list of LongMemEval questions")
    return [_question(item, i) for i, item in enumerate(data)]


def load_longmemeval(source: str | Path | bytes) -> list[LmeQuestion]:
    """Read a LongMemEval file (S or oracle, plain or gzip) into questions."""
    raw = read_bytes(source)
    try:
        data = load_json(raw)
    except StoredDataError as exc:
        raise LongMemEvalError(str(exc)) from exc
    return parse_longmemeval(data)
