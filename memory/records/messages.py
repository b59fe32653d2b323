"""Typed chat messages and their versioned JSON codec.

Messages are stored in Redis as JSON strings. The codec carries a version
field so an older entry can still be read after the schema grows, and it is
strict on decode: a corrupt entry raises `MessageDecodeError`, which readers
turn into a reported skip instead of a crash. A message is valid by
construction (finite, plausible timestamp; text that is valid Unicode), so
nothing that would crash a reader can be written in the first place.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import InputError, StoredDataError
from .stored import MAX_TIMESTAMP, CorruptEntry, as_dict, as_text, as_timestamp, dump_json, load_json, preview

__all__ = ["CODEC_VERSION", "CorruptEntry", "Message", "MessageDecodeError", "Role", "decode", "decode_many", "encode"]

CODEC_VERSION = 1


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class MessageDecodeError(StoredDataError, ValueError):
    """A stored entry is not a message this codec can read."""


# Message ids must never collide (a repeated id is taken for a retried append and dropped); they need not be
# unguessable. A private generator seeded from the OS, and again in a forked child, gives that without a
# system call per id (``uuid4`` reads ``os.urandom``: tens of µs a call on this VM); code that seeds the
# global ``random`` cannot make two runs' ids repeat.
_IDS = random.Random(os.urandom(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))


def new_message_id() -> str:
    """32 hex digits, the shape of ``uuid4().hex``."""
    return f"{_IDS.getrandbits(128):032x}"


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
        for name in ("content", "id", "tool_call_id", "model_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a string")
            if value is not None:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise InputError(f"{name} is not valid Unicode text (undecodable bytes?)") from None
        if isinstance(self.created_at, bool) or not isinstance(self.created_at, (int, float)):
            raise InputError("created_at must be a number")
        if not 0 <= self.created_at <= MAX_TIMESTAMP:  # also false for NaN
            raise InputError(f"created_at {self.created_at!r} is not a plausible time")
        if self.role is Role.TOOL and not self.tool_call_id:
            raise InputError("a tool message needs a tool_call_id")
        if self.role is not Role.TOOL and self.tool_call_id is not None:
            raise InputError("only tool messages carry a tool_call_id")
        if self.role is not Role.ASSISTANT and self.model_id is not None:
            raise InputError("only assistant messages carry a model_id")

    def to_dict(self) -> dict[str, Any]:
        """The codec's fields, as a new dict each call (callers may add to it)."""
        return dict(self._data)

    @functools.cached_property
    def _data(self) -> dict[str, Any]:
        # Every turn's trace lists the whole buffer again; a message is immutable, so its fields are built once.
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
        try:
            data = as_dict(data, "entry")
            version = data.get("v")
            if version != CODEC_VERSION:
                raise MessageDecodeError(f"unknown codec version {preview(repr(version), 40)}")
            return cls(
                role=Role(as_text(data.get("role"), "role")),
                content=as_text(data.get("content"), "content"),
                id=as_text(data.get("id"), "id"),
                created_at=as_timestamp(data.get("created_at"), "created_at"),
                tool_call_id=as_text(data.get("tool_call_id"), "tool_call_id", optional=True),
                model_id=as_text(data.get("model_id"), "model_id", optional=True),
            )
        except MessageDecodeError:
            raise
        except (StoredDataError, ValueError, TypeError) as exc:
            raise MessageDecodeError(f"invalid message: {preview(str(exc), 200)}") from exc


def encode(message: Message) -> str:
    return dump_json(message.to_dict())


# Every turn reads the same buffer entries again; a decoded message is immutable, so the exact stored
# text can map to it. Bounded by entries (oldest out first) and by size, so huge messages never fill it.
# A plain dict: its single operations are atomic, so threads may share it without a lock.
_DECODED: dict[str, Message] = {}
_DECODED_MAX = 4096
_DECODED_MAX_CHARS = 8192


def decode(raw: str | bytes) -> Message:
    cacheable = isinstance(raw, str) and len(raw) <= _DECODED_MAX_CHARS
    if cacheable:
        hit = _DECODED.get(raw)  # type: ignore[arg-type]
        if hit is not None:
            return hit
    try:
        data = load_json(raw)
    except StoredDataError as exc:
        raise MessageDecodeError(str(exc)) from exc
    message = Message.from_dict(data)
    if cacheable:
        if len(_DECODED) >= _DECODED_MAX:
            try:
                del _DECODED[next(iter(_DECODED))]
            except (KeyError, StopIteration, RuntimeError):
                pass  # another thread evicted first
        _DECODED[raw] = message  # type: ignore[index]
    return message


def decode_many(raws: Sequence[str | bytes], start_index: int = 0) -> tuple[list[Message], list[CorruptEntry]]:
    """Decode a Redis list range, skipping (and reporting) entries that are corrupt."""
    good: list[Message] = []
    bad: list[CorruptEntry] = []
    for offset, raw in enumerate(raws):
        try:
            good.append(decode(raw))
        except MessageDecodeError as exc:
            bad.append(CorruptEntry(start_index + offset, preview(raw), str(exc)))
    return good, bad
