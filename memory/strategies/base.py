"""The strategy interface: what a turn reads and keeps of its buffer, and the context for the next call.

A strategy also owns its after-turn upkeep (folding, fact extraction,
episode refresh). Building blocks shared by several strategies live in
``parts.py`` so each one reads as a recipe, not a copy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from ..config import STRATEGY_SETTINGS, Settings, setting_default, strategy_bounds
from ..errors import InputError
from ..llm.base import LLM
from ..records.messages import Message
from ..records.trace import PromptPart, Trace
from ..stores.audit import AuditEvent
from ..stores.episode_store import EpisodeStore
from ..stores.fact_store import FactStore
from ..stores.session_store import Reads, SessionStore, SessionView
from ..stores.turn_store import TurnStore

INSTRUCTIONS = (
    "You are a helpful assistant with memory of this user. Use the memory below when it is relevant. "
    "If the memory does not hold the answer, say so instead of guessing."
)


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy's knobs: defaults and bounds are the ``Settings`` declarations' (``config.STRATEGY_SETTINGS``)."""

    buffer_size: int = setting_default("buffer_size")
    ttl_s: int = setting_default("ttl_s")
    summary_threshold: int = setting_default("summary_threshold")
    summary_keep: int = setting_default("summary_keep")
    summary_max_tokens: int = setting_default("summary_max_tokens")
    top_k: int = setting_default("top_k")
    episodes_k: int = setting_default("episodes_k")
    token_budget: int = setting_default("token_budget")

    @classmethod
    def from_settings(cls, s: Settings) -> StrategyConfig:
        return cls(**{knob: getattr(s, name) for knob, name in STRATEGY_SETTINGS.items()})

    def with_(self, **changes: Any) -> StrategyConfig:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any, base: StrategyConfig | None = None) -> StrategyConfig:
        """Settings read back from storage: known whole-number fields only, anything else keeps ``base``'s value."""
        base = base or cls()
        if not isinstance(data, dict):
            return base
        known = {k: v for k, v in data.items() if k in base.to_dict() and _field_problem(k, v) is None}
        merged = replace(base, **known)
        return base if merged.problem() else merged

    @classmethod
    def checked(cls, data: Any, base: StrategyConfig) -> StrategyConfig:
        """Settings that must be right (an upkeep job's): the first wrong field raises ``InputError``, naming it.

        Missing fields keep ``base``'s value; unknown ones are refused, as a
        job is written by this code and anything else was not.
        """
        if not isinstance(data, dict):
            raise InputError("the settings are not a JSON object")
        for name, value in data.items():
            if name not in base.to_dict():
                raise InputError(f"unknown setting {str(name)[:40]!r}")
            problem = _field_problem(name, value)
            if problem:
                raise InputError(f"setting {name} {problem}")
        merged = replace(base, **data)
        problem = merged.problem()
        if problem:
            raise InputError(problem)
        return merged

    def problem(self) -> str:
        """What makes this combination unusable ("" when none)."""
        if self.summary_keep >= self.summary_threshold:
            return "summary_keep must be below summary_threshold"
        return next((f"{k} {p}" for k, v in self.to_dict().items() if (p := _field_problem(k, v))), "")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # all plain ints: no deep copy needed


_BOUNDS = strategy_bounds()  # (smallest, largest) of each knob, from the settings' declarations


def _field_problem(name: str, value: Any) -> str | None:
    """Why a stored setting's value is unusable, or None (a bool is not a number here, nor is 3.0)."""
    if type(value) is not int:
        return f"is not a whole number ({str(value)[:40]!r})"
    low, high = _BOUNDS[name]
    if not low <= value <= high:
        return f"must be between {low} and {high}, not {value}"
    return None


def folding_cap(config: StrategyConfig) -> int:
    """A hard bound on a folded buffer: folding keeps it short, this only holds if folding keeps failing."""
    return max(10 * config.summary_threshold, 200)


@dataclass
class Services:
    """The stores and models a strategy may use; built once by the lab."""

    sessions: SessionStore
    facts: FactStore
    episodes: EpisodeStore
    turns: TurnStore
    llm: LLM
    embed: Callable[[list[str]], np.ndarray]
    audit: Callable[[list[AuditEvent]], None] = lambda events: None  # the lab's audit trail


@dataclass
class Context:
    system_parts: list[PromptPart]
    messages: list[Message]
    extras: dict[str, Any] = field(default_factory=dict)


class Strategy(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    # The settings this strategy reads (names of StrategyConfig fields), so a settings form shows only these.
    uses: ClassVar[tuple[str, ...]] = tuple(f.name for f in fields(StrategyConfig))

    def keeps(self) -> str:
        """What this strategy remembers, in words for the instructions (and for the offline provider)."""
        return f"the last {self.config.buffer_size} messages of this session; nothing carries over to a new session"

    def __init__(self, services: Services, config: StrategyConfig) -> None:
        self.s = services
        self.config = config

    def trim_to(self) -> int | None:
        """How long the Redis buffer may grow on append; None means folding keeps it short."""
        return self.config.buffer_size

    def reads(self) -> Reads:
        """What the context needs from the session, read in the round trip that stores the user's message."""
        return Reads(last=self.config.buffer_size)

    @property
    def has_upkeep(self) -> bool:
        """Whether a turn leaves work for after the reply (a job), i.e. the strategy overrides ``after_turn``."""
        return type(self).after_turn is not Strategy.after_turn

    @property
    def waits_for_upkeep(self) -> bool:
        """Whether the context depends on upkeep (facts, folds, episodes): then it waits for the user's earlier jobs."""
        return self.has_upkeep

    @property
    def waits_for_own_session(self) -> bool:
        """Whether the context needs the upkeep of this session's own earlier turns, or only of other sessions'.

        A context that leaves the current session out of its retrieval, or sends
        the session's unfolded messages themselves, has nothing to gain from
        them: waiting held the next turn for the whole upkeep of a long message
        (seconds of embedding) to add what the context already holds.
        """
        return True

    @property
    def own_jobs_done_at_facts(self) -> bool:
        """Whether this session's own earlier jobs matter to the context only until their facts are written
        (the context is the facts alone): the turn index and the episode the rest of a job writes serve other
        sessions, and a long message's took seconds more."""
        return False

    @abstractmethod
    def build_context(
        self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView
    ) -> Context: ...

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        """Upkeep once the reply is stored, run by an upkeep worker; it must be idempotent (it may run twice)."""
