"""Forgetting walks every store: what each can delete, and what a walk deleted and where it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class MemoryStore(Protocol):
    """What every store holding a user's memory can do, so forgetting a user is one walk over a list."""

    def forget_user(self, user_id: str) -> int: ...


class SessionScopedStore(MemoryStore, Protocol):
    """A store that also keeps things per session, so clearing a session walks it too."""

    def clear_session(self, user_id: str, session_id: str) -> int: ...


@dataclass
class DeletionReport:
    """How much each store deleted, and which stores failed (the others still ran)."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        done = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.counts.items())
        failed = "; ".join(f"{name} failed: {err}" for name, err in self.errors.items())
        return done + (f" — {failed}" if failed else "")
