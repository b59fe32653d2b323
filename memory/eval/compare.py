"""Run a scripted conversation through several strategies and measure them side by side.

A scenario is JSON: ``{"name", "description", "turns": [{"user": "...",
"expect": ["Alice"], "reject": ["Bob"], "session": "2"}]}`` (``session``
optional, default "1": a new label starts a new session of the same user).
Turns without ``expect`` plant facts or distract; a turn with ``expect`` is
a probe, judged twice:

- **reached the context**: the share of its expected strings found in what
  the model was sent *before* the probe itself (system prompt and earlier
  messages), so an answer cannot be credited for repeating the question;
- **answered correctly**: the reply contains every expected string and none
  of the ``reject`` ones (a value the user has since changed: "I moved...").

Strings match as whole words, case-insensitively. Each strategy runs in its
own fresh user and session, so they cannot see each other's memory.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InputError
from ..lab import MemoryLab
from ..llm.rules import whole_word
from ..paths import app_root
from ..strategies import STRATEGIES, StrategyConfig
from ..transfer import json_input as J
from ..transfer.json_input import MB

SCENARIO_DIR = app_root() / "scenarios"


class ScenarioError(InputError):
    """A scenario file that is not in the expected format."""


@dataclass(frozen=True)
class Turn:
    user: str
    expect: tuple[str, ...] = ()
    session: str = "1"
    reject: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    turns: tuple[Turn, ...]

    @property
    def probes(self) -> int:
        return sum(1 for t in self.turns if t.expect)


MAX_SCENARIO_BYTES = 4 * MB
MAX_TURNS = 1000  # each turn is a chat per strategy: a longer script is a benchmark, not a scenario
MAX_WORDS = 50  # expect / reject strings per turn


@J.refused_as(ScenarioError)
def parse_scenario(data: Any, max_message_chars: int = Settings.max_message_chars) -> Scenario:
    """A scenario, every field checked (a turn's text against the chat's own limit) before any turn runs."""
    scenario = J.known_keys(J.obj(data, "the scenario"), ("name", "description", "turns"), "the scenario")
    turns = []
    for i, raw in enumerate(J.items(J.field(scenario, "turns", ""), "turns", MAX_TURNS, empty=False)):
        where = f"turns[{i}]"
        t = J.known_keys(J.obj(raw, where), ("user", "expect", "reject", "session"), where)
        user = J.text(J.field(t, "user", where), f"{where}.user", max_message_chars, limit="MEMLAB_MAX_MESSAGE_CHARS")
        words = {}
        for name in ("expect", "reject"):
            values = J.items(J.field(t, name, where, []), f"{where}.{name}", MAX_WORDS)
            words[name] = tuple(J.text(v, f"{where}.{name}[{j}]", 200) for j, v in enumerate(values))
        session = J.label(J.field(t, "session", where, "1"), f"{where}.session", 63)
        J.ident(f"s{session}", f"{where}.session, as the session id")
        turns.append(Turn(user, words["expect"], session, words["reject"]))
    name = J.text(J.field(scenario, "name", "", "unnamed"), "name", 200)
    description = J.text(J.field(scenario, "description", "", ""), "description", 5000, empty=True)
    return Scenario(name, description, tuple(turns))


def load_scenario(source: str | Path | bytes, max_message_chars: int = Settings.max_message_chars) -> Scenario:
    """A scenario file (path or bytes): refused whole, with the reason, when anything in it is off."""
    return parse_scenario(_read_scenario(source), max_message_chars)


@J.refused_as(ScenarioError)
def _read_scenario(source: str | Path | bytes) -> Any:
    return J.read_json(source, "the scenario", MAX_SCENARIO_BYTES)


def shipped_scenarios() -> dict[str, Scenario]:
    return {p.stem: load_scenario(p) for p in sorted(SCENARIO_DIR.glob("*.json"))}


@dataclass
class TurnResult:
    strategy: str
    turn: int
    session: str
    user: str
    is_probe: bool
    tokens_sent: int
    latency_ms: float
    expected: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    recall: float | None = None
    reply: str = ""
    error: str | None = None
    rejected: list[str] = field(default_factory=list)
    correct: bool | None = None


@dataclass
class Comparison:
    run_id: str
    scenario: str
    results: list[TurnResult]

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(r) | {"scenario": self.scenario, "run_id": self.run_id} for r in self.results]

    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.results))

    def recall_by_strategy(self) -> dict[str, float]:
        """Share of expected strings that reached the context, per strategy."""
        return {name: _mean([r.recall for r in self._probes(name)]) for name in self.strategies()}

    def accuracy_by_strategy(self) -> dict[str, float]:
        """Share of probes answered correctly (expected in the reply, nothing rejected), per strategy."""
        return {name: _mean([float(bool(r.correct)) for r in self._probes(name)]) for name in self.strategies()}

    def _probes(self, name: str) -> list[TurnResult]:
        return [r for r in self.results if r.strategy == name and r.is_probe]

    def summary(self) -> list[dict[str, Any]]:
        """One row per strategy: what reached the context, what was answered, tokens and latency."""
        recall, accuracy = self.recall_by_strategy(), self.accuracy_by_strategy()
        rows = []
        for name in self.strategies():
            turns = [r for r in self.results if r.strategy == name]
            rows.append(
                {
                    "strategy": name,
                    "reached context": recall[name],
                    "answered correctly": accuracy[name],
                    "tokens per turn": _mean([r.tokens_sent for r in turns]),
                    "total tokens": sum(r.tokens_sent for r in turns),
                    "mean latency ms": _mean([r.latency_ms for r in turns]),
                }
            )
        return rows


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else 0.0


def mentions(text: str, needle: str) -> bool:
    """``needle`` as a whole word or phrase of ``text`` (plurals too), ignoring case: "Go" is not in "Gothenburg"."""
    return whole_word(needle, plurals=True).search(text) is not None


Progress = Callable[[int, int, str], None]


def run_comparison(
    lab: MemoryLab,
    scenario: Scenario,
    strategies: list[str],
    config: StrategyConfig | None = None,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> Comparison:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise InputError(f"unknown strategies: {', '.join(unknown)}")
    run_id = run_id or uuid.uuid4().hex[:8]
    total = len(strategies) * len(scenario.turns)
    done = 0
    results: list[TurnResult] = []
    for name in strategies:
        user = f"cmp-{run_id}-{name}"
        for i, turn in enumerate(scenario.turns):
            if progress:
                progress(done, total, f"{name}: turn {i + 1}/{len(scenario.turns)}")
            start = time.perf_counter()
            result = lab.chat(user, f"s{turn.session}", turn.user, strategy=name, config=config)
            latency = (time.perf_counter() - start) * 1000
            # Each strategy's memory settles before the next turn (a turn no longer waits for its own session's
            # upkeep): what Compare measures is the strategy, not how the machine's load raced its upkeep.
            result = lab.settle(result)
            trace = result.trace
            seen = (
                trace.system_prompt
                + "\n"
                + "\n".join(str(m.get("content", "")) for m in trace.messages if m.get("id") != result.user_message.id)
            )
            found = [e for e in turn.expect if mentions(seen, e)]
            reply = result.reply.content if result.reply else ""
            rejected = [r for r in turn.reject if mentions(reply, r)]
            results.append(
                TurnResult(
                    strategy=name,
                    turn=i + 1,
                    session=turn.session,
                    user=turn.user,
                    is_probe=bool(turn.expect),
                    tokens_sent=trace.total_tokens,
                    latency_ms=round(latency, 1),
                    expected=list(turn.expect),
                    found=found,
                    recall=(len(found) / len(turn.expect)) if turn.expect else None,
                    reply=reply,
                    error=result.error,
                    rejected=rejected,
                    correct=(all(mentions(reply, e) for e in turn.expect) and not rejected) if turn.expect else None,
                )
            )
            done += 1
    if progress:
        progress(done, total, "done")
    return Comparison(run_id, scenario.name, results)
