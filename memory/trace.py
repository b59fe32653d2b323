"""What a strategy assembled for one model call, and why.

A trace is built once, by the strategy, while it builds the context; the
pages and the CLI render it and never recompute it. It is stored beside the
assistant reply so an old turn can still show what the model saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .messages import Message
from .tokens import count_tokens


@dataclass
class PromptPart:
    name: str
    text: str
    tokens: int = 0

    def __post_init__(self) -> None:
        if not self.tokens:
            self.tokens = count_tokens(self.text)


@dataclass
class RetrievedItem:
    kind: str  # "fact" | "episode"
    id: str
    text: str
    similarity: float
    distance: float
    source: dict[str, Any] = field(default_factory=dict)
    included: bool = True
    score: float | None = None  # the fused rank score (BM25 + dense), where the ranking used one


@dataclass
class Trace:
    strategy: str
    user_id: str
    session_id: str
    settings: dict[str, Any] = field(default_factory=dict)
    system_parts: list[PromptPart] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    retrieved: list[RetrievedItem] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    llm: dict[str, Any] = field(default_factory=dict)
    upkeep: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[step] = round(self.timings_ms.get(step, 0.0) + (time.perf_counter() - start) * 1000, 2)

    def set_messages(self, messages: list[Message]) -> None:
        self.messages = [m.to_dict() for m in messages]

    @property
    def system_prompt(self) -> str:
        return "\n\n".join(p.text for p in self.system_parts if p.text)

    @property
    def tokens(self) -> dict[str, int]:
        """Estimated tokens per part of what was sent, for the bar chart."""
        counts: dict[str, int] = {}
        for part in self.system_parts:
            counts[part.name] = counts.get(part.name, 0) + part.tokens
        counts["messages"] = sum(count_tokens(str(m.get("content", ""))) for m in self.messages)
        return counts

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = self.tokens
        data["total_tokens"] = self.total_tokens
        data["system_prompt"] = self.system_prompt
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        return cls(
            strategy=data["strategy"],
            user_id=data["user_id"],
            session_id=data["session_id"],
            settings=dict(data.get("settings", {})),
            system_parts=[PromptPart(**p) for p in data.get("system_parts", [])],
            messages=list(data.get("messages", [])),
            retrieved=[RetrievedItem(**r) for r in data.get("retrieved", [])],
            timings_ms=dict(data.get("timings_ms", {})),
            warnings=list(data.get("warnings", [])),
            dropped=list(data.get("dropped", [])),
            llm=dict(data.get("llm", {})),
            upkeep=dict(data.get("upkeep", {})),
            error=data.get("error"),
        )
