"""The one interface every LLM provider implements: reply, summarise, extract facts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLM", "ExtractedFact", "LLMError", "LLMReply"]

from ..errors import LLMError
from ..messages import Message
from ..trace import PromptPart


@dataclass(frozen=True)
class LLMReply:
    text: str
    model_id: str
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtractedFact:
    text: str
    slot: str | None = None
    source_ids: tuple[str, ...] = ()


class LLM(ABC):
    provider: str = "base"
    label: str = "base"

    @abstractmethod
    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply: ...

    @abstractmethod
    def summarize(self, previous: str, messages: list[Message], max_tokens: int) -> str: ...

    @abstractmethod
    def extract_facts(self, messages: list[Message]) -> tuple[list[ExtractedFact], list[str]]:
        """Facts stated by the user in ``messages``, and warnings (e.g. a reply that was not JSON)."""
