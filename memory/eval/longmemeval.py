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
(the history does not hold the answer; it has no evidence to recall). Left
as published: 9 questions of the S file list one session twice in their
haystack (same id, same turns).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records.messages import Message, Role
from ..transfer import json_input as J
from ..transfer.json_input import MB

TYPES = (
    "single-session-user",
    "single-session-assistant",
    "single-session-preference",
    "multi-session",
    "knowledge-update",
    "temporal-reasoning",
)
ABSTENTION = "abstention"


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


MAX_BYTES = 320 * MB  # unpacked: the S file of all 500 questions is about 265 MB
MAX_QUESTIONS = 10_000
MAX_SESSIONS = 1_000  # per question (S: about 50; M: about 500)
MAX_TURNS = 10_000  # per session


def _question(item: Any, index: int) -> LmeQuestion:
    where = f"question {index}"
    q = J.obj(item, where)
    qid = J.ident(J.field(q, "question_id", where), f"{where}: question_id")
    where = f"question {qid!r}"
    ids, dates, sessions = (
        J.items(J.field(q, name, where), f"{where}: {name}", MAX_SESSIONS)
        for name in ("haystack_session_ids", "haystack_dates", "haystack_sessions")
    )
    if not len(ids) == len(dates) == len(sessions):
        raise InputError(f"{where}: haystack_session_ids, _dates and _sessions differ in length")
    parsed: list[LmeSession] = []
    for i, (sid, date_text, turns) in enumerate(zip(ids, dates, sessions, strict=True)):
        sid = J.ident(sid, f"{where}: haystack_session_ids[{i}]")
        at = f"{where}: session {sid!r}"
        kept = []
        for j, raw in enumerate(J.items(turns, f"{at}: turns", MAX_TURNS)):
            t = J.obj(raw, f"{at}, turn {j}")
            kept.append(
                LmeTurn(
                    J.one_of(J.field(t, "role", f"{at}, turn {j}"), f"{at}, turn {j}: role", ("user", "assistant")),
                    J.text(
                        J.field(t, "content", f"{at}, turn {j}", ""),
                        f"{at}, turn {j}: content",
                        J.DATASET_TEXT_CHARS,
                        empty=True,
                    ),  # fmt: skip
                    J.flag(t.get("has_answer"), f"{at}, turn {j}: has_answer"),
                )
            )
        date_str = J.text(date_text, f"{where}: haystack_dates[{i}]", 200, empty=True)
        date = J.message_date(parse_date(date_str), date_str, f"{where}: haystack_dates[{i}]", len(kept))
        parsed.append(LmeSession(sid, date_str, date, tuple(kept)))
    order = sorted(range(len(parsed)), key=lambda i: (parsed[i].date or dt.datetime.min, i))
    answer_ids = J.items(J.field(q, "answer_session_ids", where, []), f"{where}: answer_session_ids", MAX_SESSIONS)
    qdate = J.text(J.field(q, "question_date", where, ""), f"{where}: question_date", 200, empty=True)
    return LmeQuestion(
        question_id=qid,
        question_type=J.one_of(J.field(q, "question_type", where), f"{where}: question_type", TYPES),
        question=J.text(J.field(q, "question", where), f"{where}: question", J.DATASET_TEXT_CHARS),
        answer=J.label(J.field(q, "answer", where), f"{where}: answer", J.DATASET_TEXT_CHARS),
        question_date_text=qdate,
        question_date=parse_date(qdate),
        sessions=tuple(parsed[i] for i in order),
        answer_session_ids=tuple(J.ident(s, f"{where}: answer_session_ids[{i}]") for i, s in enumerate(answer_ids)),
    )


@J.refused_as(LongMemEvalError)
def parse_longmemeval(data: Any) -> list[LmeQuestion]:
    """Questions, every field checked (ids by the key rules: each question becomes a user of its own)."""
    questions = [_question(item, i) for i, item in enumerate(J.items(data, "the data set", MAX_QUESTIONS, empty=False))]
    J.unique([q.question_id for q in questions], lambda i: f"question {i}", "question_id")
    return questions


@J.refused_as(LongMemEvalError)
def load_longmemeval(source: str | Path | bytes) -> list[LmeQuestion]:
    """Read a LongMemEval file (S or oracle, plain or gzip) into questions."""
    return parse_longmemeval(J.read_json(source, "the data set", MAX_BYTES))


@J.refused_as(LongMemEvalError)
def read_bytes(source: str | Path | bytes) -> bytes:
    """A data file's bytes (gunzipped when gzip, bounded), read once so its kind can be told before it is parsed."""
    return J.read_source(source, "the data set", MAX_BYTES)
