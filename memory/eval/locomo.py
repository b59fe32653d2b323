"""Load LoCoMo-format JSON into typed conversations, sessions and questions.

The format and its quirks are described with the data set: several ids in
one evidence string, malformed ids (``D:11:26``, ``D30:05``), ids of turns
that do not exist, sessions with a date but no turns, and adversarial
questions without an ``answer``. All are normalised here, once, so recall is
computed on clean evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records.messages import Message, Role
from ..transfer import json_input as J
from ..transfer.json_input import MB

CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_ID = re.compile(r"D:?(\d+):0*(\d+)")
_SESSION_KEY = re.compile(r"session_([0-9]+)")


class DatasetError(InputError):
    """The file is not in LoCoMo format."""


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    position: int
    caption: str = ""

    @property
    def display(self) -> str:
        """What is indexed and shown: 'Speaker: text' (the speaker matters for dense recall)."""
        extra = f" [shares a photo: {self.caption}]" if self.caption else ""
        return f"{self.speaker}: {self.text}{extra}"


@dataclass(frozen=True)
class Session:
    index: int
    date_text: str
    date: dt.datetime | None
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int
    dropped_evidence: tuple[str, ...] = ()


@dataclass
class Conversation:
    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: list[Session]
    questions: list[Question]
    observations: list[tuple[str, str]] = field(default_factory=list)  # (fact, source dia_id)

    @property
    def turns(self) -> list[Turn]:
        return [t for s in self.sessions for t in s.turns]

    def messages(self, session: Session) -> list[Message]:
        """A session as typed messages: speaker A as the user, speaker B as the assistant, with real dates."""
        base = session.date.timestamp() if session.date else 0.0
        return [
            Message(
                Role.USER if t.speaker == self.speaker_a else Role.ASSISTANT,
                t.display,
                id=t.dia_id,
                created_at=base + t.position,
            )
            for t in session.turns
        ]


def parse_date(text: str) -> dt.datetime | None:
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%H:%M on %d %B, %Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


def normalise_evidence(raw: Any, known: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept ids, dropped ids): split multi-id strings, fix malformed ids, drop ids of missing turns."""
    items = raw if isinstance(raw, list) else [raw]
    kept: list[str] = []
    dropped: list[str] = []
    for item in items:
        for m in _ID.finditer(str(item)):
            dia = f"D{int(m.group(1))}:{int(m.group(2))}"
            if dia in known:
                if dia not in kept:
                    kept.append(dia)
            else:
                dropped.append(dia)
    return tuple(kept), tuple(dropped)


# Limits of a LoCoMo-format file: the dev split is 1.5 MB, its longest turn 440 characters.
MAX_BYTES = 64 * MB
TEXT_CHARS = J.DATASET_TEXT_CHARS  # a turn, a caption or an answer
_SHORT = 200  # speakers, dates, ids
MAX_SESSIONS = 1000


def _parse_sample(sample: Any, i: int) -> Conversation:
    where = f"sample {i}"
    data = J.obj(sample, where)
    if "conversation" not in data and "haystack_sessions" in data:
        raise InputError(f"{where} has no 'conversation': it is a LongMemEval question (haystack_sessions), not LoCoMo")
    conv = J.obj(J.field(data, "conversation", where), f"{where}.conversation")
    sessions: list[Session] = []
    numbered: dict[int, str] = {}
    for key in conv:
        if m := _SESSION_KEY.fullmatch(key):
            index = int(m.group(1)) if len(m.group(1)) <= 6 else MAX_SESSIONS + 1
            if index > MAX_SESSIONS:
                raise InputError(f"{where}.conversation.{key}: sessions are numbered up to {MAX_SESSIONS:,}")
            if index in numbered:
                raise InputError(f"{where}.conversation has both {numbered[index]} and {key}")
            numbered[index] = key
    for index, key in sorted(numbered.items()):
        at = f"{where}.conversation.{key}"
        turns_raw = J.items(conv[key], at, 100_000)
        if not turns_raw:
            continue  # a session with a date but no turns: a quirk of the data set
        date_text = J.text(J.field(conv, f"{key}_date_time", at, ""), f"{at}_date_time", _SHORT, empty=True)
        turns = []
        for pos, raw in enumerate(turns_raw):
            t = J.obj(raw, f"{at}[{pos}]")
            m = _ID.search(J.text(J.field(t, "dia_id", at, ""), f"{at}[{pos}].dia_id", _SHORT, empty=True))
            dia = f"D{int(m.group(1))}:{int(m.group(2))}" if m else f"D{index}:{pos + 1}"
            turns.append(
                Turn(
                    dia,
                    J.text(J.field(t, "speaker", at, "?"), f"{at}[{pos}].speaker", _SHORT),
                    J.text(J.field(t, "text", at, ""), f"{at}[{pos}].text", TEXT_CHARS, empty=True),
                    index,
                    pos,
                    J.text(J.field(t, "blip_caption", at, ""), f"{at}[{pos}].blip_caption", TEXT_CHARS, empty=True),
                )
            )
        date = J.message_date(parse_date(date_text), date_text, f"{at}_date_time", len(turns))
        sessions.append(Session(index, date_text, date, tuple(turns)))
    places = [(t.dia_id, f"{where}.conversation.session_{s.index}[{t.position}]") for s in sessions for t in s.turns]
    J.unique([dia for dia, _ in places], lambda k: places[k][1], "dia_id")
    known = {dia for dia, _ in places}
    qa = J.items(J.field(data, "qa", where, []), f"{where}.qa", 100_000)
    questions = [_question(q, f"{where}.qa[{j}]", known) for j, q in enumerate(qa)]
    return Conversation(
        J.label(J.field(data, "sample_id", where, f"conv-{i + 1}"), f"{where}.sample_id", _SHORT),
        J.text(J.field(conv, "speaker_a", where, "A"), f"{where}.conversation.speaker_a", _SHORT),
        J.text(J.field(conv, "speaker_b", where, "B"), f"{where}.conversation.speaker_b", _SHORT),
        sessions,
        questions,
        _observations(J.field(data, "observation", where, {}), f"{where}.observation", known),
    )


def _question(raw: Any, where: str, known: set[str]) -> Question:
    q = J.obj(raw, where)
    evidence, dropped = normalise_evidence(_evidence(J.field(q, "evidence", where, []), f"{where}.evidence"), known)
    answer = J.field(q, "answer", where, None)
    if answer is None:  # adversarial questions carry what a wrong answer would say instead
        answer = J.field(q, "adversarial_answer", where, "")
    return Question(
        J.text(J.field(q, "question", where), f"{where}.question", TEXT_CHARS),
        J.label(answer, f"{where}.answer", TEXT_CHARS) if answer != "" else "",
        evidence,
        J.whole(J.field(q, "category", where), f"{where}.category", min(CATEGORY_NAMES), max(CATEGORY_NAMES)),
        dropped,
    )


def _evidence(raw: Any, where: str) -> list[str]:
    """Evidence ids: a list of strings (one string may hold several ids), or one string."""
    values = raw if isinstance(raw, list) else [raw]
    J.items(values, where, 10_000)
    return [J.text(v, f"{where}[{i}]", _SHORT, empty=True) for i, v in enumerate(values)]


def _observations(raw: Any, where: str, known: set[str]) -> list[tuple[str, str]]:
    """The data set's observations (facts per session and speaker, each with the turn it came from)."""
    observations: list[tuple[str, str]] = []
    for session, per_session in J.obj(raw, where).items():
        for speaker, facts in J.obj(per_session, f"{where}.{session[:40]}").items():
            at = f"{where}.{session[:40]}.{speaker[:40]}"
            for j, pair in enumerate(J.items(facts, at, 100_000)):
                if len(J.items(pair, f"{at}[{j}]", 2)) != 2:
                    raise InputError(f"{at}[{j}] is not a [fact, evidence] pair")
                fact, source = pair
                ids, _ = normalise_evidence(_evidence(source, f"{at}[{j}][1]"), known)
                observations.extend((J.text(fact, f"{at}[{j}][0]", TEXT_CHARS), i) for i in ids[:1])
    return observations


@J.refused_as(DatasetError)
def load_locomo(source: str | Path | bytes) -> list[Conversation]:
    """A LoCoMo-format file (a list of samples, or one sample), every field checked before any is used."""
    data = J.read_json(source, "the data set", MAX_BYTES)
    samples = data if isinstance(data, list) else [data]
    return [_parse_sample(sample, i) for i, sample in enumerate(J.items(samples, "the data set", 10_000, empty=False))]
