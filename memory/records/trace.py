"""What a strategy assembled for one model call, and why.

A trace is built once, by the strategy, while it builds the context; the
pages and the CLI render it and never recompute it. It is stored beside the
assistant reply so an old turn can still show what the model saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import StoredDataError
from .messages import Message
from .stored import as_dict, as_number, as_text, as_timestamp, load_json, printable
from .tokens import count_tokens


@dataclass
class PromptPart:
    """One part of the system prompt; ``items`` are the memories it holds ({"ref", "text"}), so a reply
    can say which it used; ``keeps`` (on the instructions) says what the strategy remembers, and for how long."""

    name: str
    text: str
    tokens: int = 0
    items: list[dict[str, str]] = field(default_factory=list)
    keeps: str = ""

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
    used: bool = False  # the reply drew on it

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}"


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
    used: list[str] = field(default_factory=list)  # refs of the context items the reply drew on
    job: dict[str, Any] = field(default_factory=dict)  # the upkeep job: status queued|done|failed|inline, worker...

    def apply_outcome(self, outcome: dict[str, Any]) -> None:
        """Fold a finished upkeep job's outcome (written later, by a worker) into this trace."""
        self.job = {k: v for k, v in outcome.items() if k not in ("upkeep", "timings_ms", "warnings")}
        self.upkeep = dict(outcome.get("upkeep") or {})
        self.timings_ms.update({f"upkeep {k}": v for k, v in (outcome.get("timings_ms") or {}).items()})
        self.warnings.extend(w for w in outcome.get("warnings") or [] if w not in self.warnings)

    def mark_used(self, refs: list[str]) -> None:
        """Record what the reply drew on: retrieved items and messages are flagged for the trace view."""
        self.used = list(dict.fromkeys(refs))
        chosen = set(self.used)
        for item in self.retrieved:
            item.used = item.ref in chosen
        for row in self.messages:
            row["used"] = f"message:{row.get('id')}" in chosen

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

    def upkeep_changes(self) -> list[str]:
        """What the turn's upkeep changed in memory, one plain sentence per kind of change (the JSON has it all).

        Read from the outcome (fact events, the fold) and from the steps the
        worker timed, so a step that ran and changed nothing says so too.
        """
        said: list[str] = []
        ran = {k.removeprefix("upkeep ") for k in self.timings_ms}  # a worker's steps, or inline ones unprefixed
        events = [e for e in self.upkeep.get("fact_events") or [] if isinstance(e, dict)]
        verbs = {
            "ADD": "remembered", "UPDATE": "updated", "SUPERSEDE": "replaced", "DELETE": "forgot",
            "DUPLICATE": "already knew",
        }  # fmt: skip
        facts = []
        for e in events:
            verb, text, previous = verbs.get(str(e.get("event")), "changed"), e.get("text"), e.get("previous")
            with_old = previous and e.get("event") in ("UPDATE", "SUPERSEDE")  # SUPERSEDE: previous is the older
            facts.append(f"{verb} “{previous}” → “{text}”" if with_old else f"{verb} “{text}”")
        if facts:
            said.append("Facts: " + "; ".join(facts))
        elif "facts.extract" in ran:
            said.append("No new facts in this turn.")
        fold = self.upkeep.get("fold")
        if isinstance(fold, dict):
            said.append(
                f"Folded {fold.get('messages', '?')} older message(s) into the summary "
                f"({fold.get('tokens_before', '?')} → {fold.get('tokens_after', '?')} tokens)."
            )
        elif "summary.fold" in ran:
            said.append("No fold: the buffer is under its threshold.")
        if "episode.refresh" in ran:
            said.append("This session's episode summary now includes the turn.")
        if "turns.index" in ran:
            said.append("Your message is indexed for recall in later sessions.")
        return said

    def to_dict(self, derived: bool = True) -> dict[str, Any]:
        """The trace as JSON-ready data; ``derived=False`` leaves out what is computed from the rest (token
        counts, the joined system prompt), which is how it is stored: a smaller write on every turn."""
        # Not dataclasses.asdict: it deep-copies every message row and item (~1 ms a turn); the values are
        # JSON-ready already, one level of copy is enough.
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        if derived:
            data["tokens"] = self.tokens
            data["total_tokens"] = self.total_tokens
            data["system_prompt"] = self.system_prompt
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Trace:
        """A stored trace, validated field by field; anything off raises ``StoredDataError``.

        Traces are read back from Redis, where anything may have been written,
        and every field ends up in a table, a chart or a label on a page.
        """
        try:
            d = as_dict(data, "trace")
            llm = dict(as_dict(d.get("llm", {}), "llm"))
            return cls(
                strategy=as_text(d.get("strategy"), "strategy"),
                user_id=as_text(d.get("user_id"), "user_id"),
                session_id=as_text(d.get("session_id"), "session_id"),
                settings=printable(as_dict(d.get("settings", {}), "settings")),
                system_parts=[_part(p) for p in _list(d.get("system_parts"), "system_parts")],
                messages=[_message_row(m) for m in _list(d.get("messages"), "messages")],
                retrieved=[_retrieved(r) for r in _list(d.get("retrieved"), "retrieved")],
                timings_ms={
                    as_text(k, "timing"): float(as_number(v, "timing"))
                    for k, v in as_dict(d.get("timings_ms", {}), "timings_ms").items()
                },
                warnings=[as_text(w, "warning") for w in _list(d.get("warnings"), "warnings")],
                dropped=[as_text(w, "dropped") for w in _list(d.get("dropped"), "dropped")],
                llm=printable(llm),
                upkeep=printable(as_dict(d.get("upkeep", {}), "upkeep")),
                error=as_text(d.get("error"), "error", optional=True),
                used=[as_text(u, "used") for u in _list(d.get("used"), "used")],
                job=printable(as_dict(d.get("job", {}), "job")),
            )
        except StoredDataError:
            raise
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoredDataError(f"not a trace: {exc}") from exc


def _plain(value: Any) -> Any:
    """A one-level JSON-ready copy: lists and dicts are new, parts and items become dicts of their fields."""
    if isinstance(value, list):
        return [vars(v).copy() if hasattr(v, "__dataclass_fields__") else v for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise StoredDataError(f"{name} is not a list")
    return value


def _part(value: Any) -> PromptPart:
    d = as_dict(value, "prompt part")
    tokens = d.get("tokens", 0)
    items = [
        {"ref": as_text(as_dict(i, "item").get("ref"), "ref"), "text": as_text(i.get("text"), "item text")}
        for i in _list(d.get("items"), "items")
    ]
    return PromptPart(
        as_text(d.get("name"), "part name"),
        as_text(d.get("text"), "part text"),
        int(as_number(tokens, "tokens")),
        items,
        as_text(d.get("keeps", ""), "keeps"),
    )


def _message_row(value: Any) -> dict[str, Any]:
    d = as_dict(value, "message")
    row: dict[str, Any] = {
        "role": as_text(d.get("role"), "role"),
        "content": as_text(d.get("content"), "content"),
        "created_at": as_timestamp(d.get("created_at", 0), "created_at"),
    }
    if d.get("used") is True:
        row["used"] = True
    for name in ("id", "tool_call_id", "model_id"):
        if d.get(name) is not None:
            row[name] = as_text(d.get(name), name)
    return row


def _retrieved(value: Any) -> RetrievedItem:
    d = as_dict(value, "retrieved item")
    included = d.get("included", True)
    if not isinstance(included, bool):
        raise StoredDataError("included is not true/false")
    return RetrievedItem(
        kind=as_text(d.get("kind"), "kind"),
        id=as_text(d.get("id"), "id"),
        text=as_text(d.get("text"), "text"),
        similarity=float(as_number(d.get("similarity"), "similarity")),
        distance=float(as_number(d.get("distance"), "distance")),
        source=printable(as_dict(d.get("source", {}), "source")),
        included=included,
        score=None if d.get("score") is None else float(as_number(d.get("score"), "score")),
        used=d.get("used") is True,
    )


def outcome_from_stored(raw: Any) -> dict[str, Any]:
    """A stored job outcome, validated field by field (it ends up in the trace view)."""
    d = as_dict(load_json(raw), "job outcome")
    status = as_text(d.get("status"), "status")
    if status not in ("done", "failed"):
        raise StoredDataError(f"unknown job status {status[:40]!r}")
    warnings = d.get("warnings") or []
    if not isinstance(warnings, list):
        raise StoredDataError("warnings is not a list")
    return {
        "status": status,
        "id": as_text(d.get("id"), "id"),
        "worker": as_text(d.get("worker", ""), "worker"),
        "finished_at": as_timestamp(d.get("finished_at"), "finished_at"),
        "waited_ms": float(as_number(d.get("waited_ms", 0), "waited_ms")),
        "error": as_text(d.get("error"), "error", optional=True),
        "upkeep": printable(as_dict(d.get("upkeep", {}), "upkeep")),
        "timings_ms": {
            as_text(k, "timing"): float(as_number(v, "timing"))
            for k, v in as_dict(d.get("timings_ms", {}), "timings_ms").items()
        },
        "warnings": [as_text(w, "warning") for w in warnings],
    }
