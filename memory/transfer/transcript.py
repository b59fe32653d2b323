"""Read a chat transcript someone brings (a LongMemEval history, or a plain list of messages) for ``replay``.

Why: to see what each strategy would keep of your own conversations, you
import them as if they had been chatted (``replay.py``). The file comes
from outside, so it is read whole and checked before anything is stored:
its size, its encoding, every field's type, every message's length. One
line says what is wrong and where; nothing is written from a file that
fails.

Two formats, told apart by their shape:

- **LongMemEval** (a list of questions, or one question, each with its
  ``haystack_sessions``): one question's history is imported; a file of
  several needs the question id.
- **A plain list** ``[{"role": "user"|"assistant", "content": "...",
  "date"?: ...}]`` (also ``{"messages": [...]}``): one session, or one per
  calendar day when the messages carry dates. A date is ISO 8601
  ("2024-05-01", "2024-05-01T18:30:00"), LongMemEval's "2023/05/20 (Sat)
  02:21", or unix seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..keys import is_valid_id
from ..records.messages import Message, Role
from . import json_input as J
from .replay import TranscriptSession

MAX_BYTES = 64 * 1024 * 1024  # decompressed: a year of someone's chats is a few megabytes
MAX_MESSAGES = 50_000


class TranscriptError(InputError):
    """A transcript file that cannot be imported."""


@dataclass(frozen=True)
class Transcript:
    sessions: list[TranscriptSession]
    kind: str  # "longmemeval" | "messages"
    question: str = ""  # the LongMemEval question id it came from

    @property
    def messages(self) -> int:
        return sum(len(s.messages) for s in self.sessions)


def read_transcript(raw: bytes, max_message_chars: int, question_id: str | None = None) -> Transcript:
    """Parse and check a transcript file's bytes (plain or gzip JSON); raises ``TranscriptError`` with one line."""
    from ..eval.longmemeval import LongMemEvalError, is_longmemeval, parse_longmemeval

    try:
        data = J.read_json(raw, "the file", MAX_BYTES)
    except InputError as exc:
        raise TranscriptError(str(exc)) from None
    if isinstance(data, dict) and "haystack_sessions" in data:
        data = [data]
    if is_longmemeval(data):
        try:
            questions = parse_longmemeval(data)
        except LongMemEvalError as exc:
            raise TranscriptError(str(exc)) from None
        if question_id is None and len(questions) > 1:
            raise TranscriptError(
                f"the file holds {len(questions)} LongMemEval histories; choose one by its question id "
                f"(e.g. {questions[0].question_id!r})"
            )
        chosen = (
            questions[0] if question_id is None else next((q for q in questions if q.question_id == question_id), None)
        )
        if chosen is None:
            raise TranscriptError(f"the file has no question {str(question_id)[:64]!r}")
        try:
            sessions = [TranscriptSession(s.id, tuple(chosen.messages(s))) for s in chosen.sessions]
        except ValueError as exc:  # text that is not valid Unicode (a lone surrogate), an impossible date
            raise TranscriptError(f"question {chosen.question_id[:64]!r}: {exc}") from None
        _check(sessions, max_message_chars)
        return Transcript(sessions, "longmemeval", chosen.question_id)
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        data = data["messages"]
    if not isinstance(data, list):
        raise TranscriptError('expected a list of messages [{"role", "content", "date"?}] or a LongMemEval file')
    sessions = _plain(data)
    _check(sessions, max_message_chars)
    return Transcript(sessions, "messages")


def _plain(items: list[Any]) -> list[TranscriptSession]:
    """A plain list of messages as sessions: one per calendar day of their dates (one in all without dates)."""
    if not items:
        raise TranscriptError("the transcript has no messages")
    if len(items) > MAX_MESSAGES:
        raise TranscriptError(f"the transcript has {len(items):,} messages; the limit is {MAX_MESSAGES:,}")
    days: dict[str, list[Message]] = {}
    start = dt.datetime.now().timestamp() - len(items)  # undated messages: one second apart, ending now
    last = 0.0
    for i, item in enumerate(items):
        where = f"message {i + 1}"
        if not isinstance(item, dict):
            raise TranscriptError(f"{where} is not an object with 'role' and 'content'")
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant"):
            raise TranscriptError(f"{where}: role must be 'user' or 'assistant', not {str(role)[:20]!r}")
        if not isinstance(content, str):
            raise TranscriptError(f"{where}: content must be text")
        at = _date(item["date"], where) if item.get("date") is not None else start + i
        at = max(at, last)  # messages keep their order even if two share a minute
        last = at
        day = dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d") if item.get("date") is not None else "1"
        try:
            days.setdefault(day, []).append(Message(Role(role), content, created_at=at))
        except ValueError as exc:  # text that is not valid Unicode (a lone surrogate)
            raise TranscriptError(f"{where}: {exc}") from None
    return [TranscriptSession(f"import-{day}", tuple(msgs)) for day, msgs in days.items()]


def _date(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise TranscriptError(f"{where}: date {value!r} is not a date")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 <= value < 32503680000:
            raise TranscriptError(f"{where}: date {value!r} is not a plausible unix time")
        return float(value)
    if isinstance(value, str):
        from ..eval.longmemeval import parse_date

        parsed = parse_date(value)
        if parsed is None:
            try:
                parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                parsed = None
        if parsed is not None:
            try:
                return parsed.timestamp()
            except (OverflowError, OSError, ValueError):
                pass
    raise TranscriptError(
        f"{where}: date {str(value)[:40]!r} is not ISO 8601, 'YYYY/MM/DD (Day) HH:MM' or unix seconds"
    )


def _check(sessions: list[TranscriptSession], max_chars: int) -> None:
    """Every session id usable, every message within the length limit and not empty; at least one message."""
    total = 0
    for session in sessions:
        if not is_valid_id(session.id):
            raise TranscriptError(f"session id {session.id[:70]!r} is not usable: 1-64 letters, digits, '_', '.', '-'")
        for i, message in enumerate(session.messages):
            if len(message.content) > max_chars:
                raise TranscriptError(
                    f"session {session.id}, message {i + 1} has {len(message.content):,} characters; "
                    f"the limit is {max_chars:,} (MEMLAB_MAX_MESSAGE_CHARS)"
                )
            if not message.content.strip():
                raise TranscriptError(f"session {session.id}, message {i + 1} is empty")
        total += len(session.messages)
    if total == 0:
        raise TranscriptError("the transcript has no messages")
    if total > MAX_MESSAGES:
        raise TranscriptError(f"the transcript has {total:,} messages; the limit is {MAX_MESSAGES:,}")
