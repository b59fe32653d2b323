"""Typed chat messages and their versioned JSON codec.

Messages are stored in Redis as JSON strings. The codec carries a version
field so an older entry can still be read after the schema grows, and it is
strict on decode: a corrupt entry raises `MessageDecodeError`, which readers
turn into a reported skip instead of a crash.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CODEC_VERSION = 1


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class MessageDecodeError(ValueError):
    """A stored entry is not a message this codec can read."""


def new_message_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    id: str = field(default_factory=new_message_id)
    created_at: float = field(default_factory=time.time)
    tool_call_id: str | None = None
    model_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", Role(self.role))
        if self.role is Role.TOOL and not self.tool_call_id:
            raise ValueError("a tool message needs a tool_call_id")
        if self.role is not Role.TOOL and self.tool_call_id is not None:
            raise ValueError("only tool messages carry a tool_call_id")
        if self.role is not Role.ASSISTANT and self.model_id is not None:
            raise ValueError("only assistant messages carry a model_id")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": CODEC_VERSION,
            "id": self.id,
            "role": self.role.value,
            "content": self.content,
            "created_at": self.created_at,
        }
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.model_id is not None:
            data["model_id"] = self.model_id
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        if not isinstance(data, dict):
            raise MessageDecodeError("entry is not a JSON object")
        version = data.get("v")
        if version != CODEC_VERSION:
            raise MessageDecodeError(f"unknown codec version {version!r}")
        try:
            created = data["created_at"]
            if isinstance(created, bool) or not isinstance(created, (int, float)):
                raise MessageDecodeError("created_at is not a number")
            for name in ("id", "role", "content"):
                if not isinstance(data[name], str):
                    raise MessageDecodeError(f"{name} is not a string")
            return cls(
                role=Role(data["role"]),
                content=data["content"],
                id=data["id"],
                created_at=float(created),
                tool_call_id=data.get("tool_call_id"),
                model_id=data.get("model_id"),
            )
        except MessageDecodeError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise MessageDecodeError(f"invalid message: {exc}") from exc


def encode(message: Message) -> str:
    return json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":"))


def decode(raw: str | bytes) -> Message:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageDecodeError(f"not valid JSON: {exc}") from exc
    return Message.from_dict(data)


@dataclass(frozen=True)
class CorruptEntry:
    """A list entry that could not be decoded; kept so the UI can show it."""

    index: int
    raw: str
    error: str


def decode_many(raws: list[str | bytes], start_index: int = 0) -> tuple[list[Message], list[CorruptEntry]]:
    """Decode a Redis list range, skipping (and reporting) entries that are corrupt."""
    good: list[Message] = []
    bad: list[CorruptEntry] = []
    for offset, raw in enumerate(raws):
        try:
            good.append(decode(raw))
        except MessageDecodeError as exc:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            bad.append(CorruptEntry(start_index + offset, text[:500], str(exc)))
    return good, bad
