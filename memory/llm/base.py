"""The one interface every LLM provider implements: reply, summarise, extract facts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLM", "ExtractedFact", "LLMError", "LLMReply"]

from ..errors import LLMError
from ..records.messages import Message
from ..records.trace import PromptPart


@dataclass(frozen=True)
class LLMReply:
    text: str
    model_id: str
    usage: dict[str, Any] = field(default_factory=dict)
    used: tuple[str, ...] = ()  # refs of the context items the reply drew on, where the provider knows


@dataclass(frozen=True)
class ExtractedFact:
    """A change to the user's long-term memory that a message makes.

    ``action`` is "set" (store ``text``, updating its ``slot``), "delete"
    (remove the fact in ``slot``, or the one holding ``value``), "replace"
    (rewrite the fact holding ``old_value`` to hold ``value``) or "state": a
    self-statement kept in the user's words (``statements.py``), which
    supersedes older statements in its slots (``slot`` may name several,
    "employer|role"), those holding a value it ``takes_back`` ((slot,
    value) pairs, slot "" for any), and, with a ``change_cue``, a close
    older statement; ``said_at`` is when its message was said; ``reads``
    is what the slot rules read in it, kept for keyword search.
    """

    text: str
    slot: str | None = None
    source_ids: tuple[str, ...] = ()
    action: str = "set"
    value: str | None = None
    old_value: str | None = None
    said_at: float | None = None
    change_cue: bool = False
    takes_back: tuple[tuple[str, str], ...] = ()
    reads: str = ""  # the slot rules' reading of a statement ("you live in Malmö"), searched beside its text
    context: str = ""  # what was said around it in its message (often what "it" or "there" means), searched too


class LLM(ABC):
    provider: str = "base"
    label: str = "base"
    streams: bool = False  # whether ``stream_reply`` yields the reply in pieces (the chat page then streams it)

    @abstractmethod
    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply: ...

    def stream_reply(self, system_parts: list[PromptPart], messages: list[Message]) -> Generator[str, None, LLMReply]:
        """Yield the reply's text as it is written, then return it whole; providers that cannot stream yield once."""
        answer = self.reply(system_parts, messages)
        yield answer.text
        return answer

    @abstractmethod
    def summarize(self, previous: str, messages: list[Message], max_tokens: int) -> str: ...

    @abstractmethod
    def extract_facts(self, messages: list[Message]) -> tuple[list[ExtractedFact], list[str]]:
        """Facts stated by the user in ``messages``, and warnings (e.g. a reply that was not JSON)."""
