"""Load LoCoMo-format JSON into typed conversations, sessions and questions.

The format and its quirks are described with the data set: several ids in
one evidence string, malformed ids (``D:11:26``, ``D30:05``), ids of turns
that do not exist, sessions with a date but no turns, and adversarial
questions without an ``answer``. All are normalised here, once, so recall is
computed on clean evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..messages import Message, Role

CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_ID = re.compile(r"D:?(\d+):0*(\d+)")
_SESSION_KEY = re.compile(r"^session_(\d+)$")


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


def _parse_sample(sample: dict[str, Any]) -> Conversation:
    conv = sample["conversation"]
    sessions: list[Session] = []
    for key in sorted((k for k in conv if _SESSION_KEY.match(k)), key=lambda k: int(k.split("_")[1])):
        turns_raw = conv[key]
        if not isinstance(turns_raw, list) or not turns_raw:
            continue
        index = int(key.split("_")[1])
        date_text = str(conv.get(f"{key}_date_time", ""))
        turns = []
        for pos, t in enumerate(turns_raw):
            m = _ID.search(str(t.get("dia_id", "")))
            dia = f"D{int(m.group(1))}:{int(m.group(2))}" if m else f"D{index}:{pos + 1}"
            turns.append(
                Turn(
                    dia,
                    str(t.get("speaker", "?")),
                    str(t.get("text", "")),
                    index,
                    pos,
                    str(t.get("blip_caption") or ""),
                )
            )
        sessions.append(Session(index, date_text, parse_date(date_text), tuple(turns)))
    known = {t.dia_id for s in sessions for t in s.turns}
    questions = []
    for q in sample.get("qa", []):
        evidence, dropped = normalise_evidence(q.get("evidence", []), known)
        answer = q.get("answer", q.get("adversarial_answer", ""))
        questions.append(
            Question(str(q.get("question", "")), str(answer), evidence, int(q.get("category", 0)), dropped)
        )
    observations: list[tuple[str, str]] = []
    for per_session in (sample.get("observation") or {}).values():
        if isinstance(per_session, dict):
            for facts in per_session.values():
                for pair in facts or []:
                    if isinstance(pair, list) and len(pair) == 2:
                        ids, _ = normalise_evidence(pair[1], known)
                        observations.extend((str(pair[0]), i) for i in ids[:1])
    return Conversation(
        str(sample.get("sample_id", f"conv-{id(sample)}")),
        str(conv.get("speaker_a", "A")),
        str(conv.get("speaker_b", "B")),
        sessions,
        questions,
        observations,
    )


def load_locomo(source: str | Path | bytes) -> list[Conversation]:
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise DatasetError(f"cannot read {source!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise DatasetError("expected a JSON list of samples")
    conversations = []
    for i, sample in enumerate(data):
        if not isinstance(sample, dict) or not isinstance(sample.get("conversation"), dict):
            raise DatasetError(f"sample {i} has no 'conversation' object")
        conversations.append(_parse_sample(sample))
    return conversations
