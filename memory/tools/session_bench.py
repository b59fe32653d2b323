"""Long sessions: what turn 5,000 costs against turn 50, listing 1,000 sessions, and a long message's hold.

Why these: a team's sessions run to thousands of turns and a user keeps
hundreds of sessions; anything that grows with either shows up as a slower
turn or sidebar long before it shows up in a single-user benchmark.

Reaching turn 5,000 through the engine one turn at a time would take an hour
of upkeep per strategy, so the history before the measured turns is written
in bulk through the same stores the upkeep uses (the transcript through the
session's append script, the user's words into the turn index, the extracted
statements into the facts) -- the state 5,000 turns leave -- and only the
measured turns go through ``MemoryLab.chat`` and a worker. Both points (turn
50 and turn 5,000) are built the same way and measured interleaved, so the
ratio compares like with like.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..records.messages import Message, Role
from ..upkeep.worker import Worker

Say = Callable[[str], None]

STRATEGIES = ("buffer", "summary", "facts", "episodic", "hybrid")
_TOPICS = (
    "climbing gym|sourdough bread|night shift|chess club|garden tomatoes|bus route|violin lessons|tax forms|"
    "marathon plan|sister's wedding|kitchen tiles|python course|birdwatching trip|dentist visit|book club|"
    "old laptop|ferry timetable|cousin's twins|yoga class|vegetable curry|job interview|rent increase"
).split("|")
_CITIES = ("Porto", "Lyon", "Tartu", "Graz", "Leeds", "Tampere", "Cork", "Aarhus", "Brno", "Ghent")


def user_text(rng: np.random.Generator, i: int) -> str:
    """A user's message: a first-person statement or a question, varied enough for the indexes to work."""
    topic, other = rng.choice(_TOPICS, 2, replace=False)
    city = rng.choice(_CITIES)
    forms = (
        f"I spent the weekend on my {topic} in {city}, and next I want to sort out the {other}.",
        f"My {topic} is going better since I moved to {city}; the {other} still takes too long.",
        f"Can you remind me what I said about the {topic}?",
        f"I think the {topic} matters more to me than the {other} right now (day {i}).",
    )
    return forms[int(rng.integers(len(forms)))]


def long_message(rng: np.random.Generator, chars: int = 2300) -> str:
    """A message of about ``chars`` characters made of distinct sentences (each one a statement to extract)."""
    parts: list[str] = []
    i = 0
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(user_text(rng, i))
        i += 1
    return " ".join(parts)[:chars].rsplit(" ", 1)[0] + "."


def fill_session(lab: Any, user: str, session: str, turns: int, rng: np.random.Generator, batch: int = 250) -> None:
    """Write ``turns`` turns of history through the stores the upkeep writes to (see the module's docstring)."""
    trim = lab.default_config().summary_threshold  # what folding keeps the buffer at
    ttl = lab.default_config().ttl_s
    base = time.time() - 10 * turns
    for start in range(0, turns, batch):
        pairs: list[tuple[Message, Message]] = []
        for i in range(start, min(turns, start + batch)):
            said = Message(Role.USER, user_text(rng, i), created_at=base + 10 * i)
            pairs.append((said, Message(Role.ASSISTANT, f"Noted ({i}).", created_at=base + 10 * i + 1)))
        with lab.redis.pipeline(transaction=False) as pipe:
            for said, reply in pairs:
                lab.sessions.stage_append(pipe, user, session, said, trim, ttl)
                lab.sessions.stage_append(pipe, user, session, reply, trim, ttl)
            lab.sessions.run(pipe, user, session)
        rows = [(s.id, f"User: {s.content}", int(s.created_at * 1000), s.created_at, "User") for s, _ in pairs]
        lab.turns.add(user, session, rows)
        facts, _ = lab.llm.extract_facts([m for pair in pairs for m in pair])
        lab.facts.remember(user, session, facts)


def _turn(lab: Any, worker: Worker, user: str, session: str, text: str, strategy: str) -> tuple[float, float]:
    """One turn through the engine, then its upkeep by a worker: (reply seconds, upkeep seconds)."""
    started = time.perf_counter()
    lab.chat(user, session, text, strategy)
    replied = time.perf_counter()
    while worker.run_once(count=1):
        pass
    return replied - started, time.perf_counter() - replied


def bench_long_sessions(lab: Any, short: int, long: int, rounds: int, say: Say) -> dict[str, Any]:
    """Turns at ``short`` and at ``long`` turns of history, each strategy, interleaved; p50 of reply and upkeep."""
    rng = np.random.default_rng(27)
    points = {short: ("at-short", "s-short"), long: ("at-long", "s-long")}
    for turns, (user, session) in points.items():
        say(f"writing {turns:,} turns of history")
        fill_session(lab, user, session, turns, rng)
    worker = Worker(lab, name="bench-long", block_ms=50)
    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    for r in range(rounds + 1):  # the first round warms each point up (first search loads the user's memory)
        for strategy in STRATEGIES:
            text = user_text(rng, r)  # the same message at both points: its form (a question?) sets its cost
            for turns, (user, session) in points.items():
                reply, upkeep = _turn(lab, worker, user, session, text, strategy)
                if r:
                    row = samples.setdefault((strategy, turns), {"reply": [], "upkeep": []})
                    row["reply"].append(reply)
                    row["upkeep"].append(upkeep)
    out: dict[str, Any] = {"short": short, "long": long, "rounds": rounds, "rows": {}}
    for strategy in STRATEGIES:
        a, b = samples[(strategy, short)], samples[(strategy, long)]
        cost: dict[str, dict[str, float]] = {}
        for what in ("reply", "upkeep"):
            early, late = statistics.median(a[what]), statistics.median(b[what])
            cost[what] = {"early_ms": round(early * 1000, 2), "late_ms": round(late * 1000, 2)}
            cost[what]["ratio"] = round(late / early, 2) if early else 0.0
        out["rows"][strategy] = cost
    return out


def bench_session_list(lab: Any, sessions: int, repeats: int, say: Say) -> dict[str, Any]:
    """A user with ``sessions`` sessions: the sidebar's list (index, liveness, first words of the newest 200)."""
    say(f"writing {sessions:,} sessions")
    user = "many-sessions"
    rng = np.random.default_rng(3)
    with lab.redis.pipeline(transaction=False) as pipe:
        for i in range(sessions):
            lab.sessions.stage_append(pipe, user, f"s{i:05d}", Message(Role.USER, user_text(rng, i)))
        lab.sessions.run(pipe, user, "s00000")
    times = []
    listed = 0
    for _ in range(repeats):
        started = time.perf_counter()
        found = lab.sessions.sessions(user)
        lab.sessions.openings(user, [sid for sid, _ in found[:200]])
        times.append(time.perf_counter() - started)
        listed = len(found)
    return {"sessions": listed, "p50_ms": round(statistics.median(times) * 1000, 2)}


def bench_long_message_hold(lab_factory: Callable[[], Any], rounds: int, say: Say) -> dict[str, Any]:
    """How long a long message's upkeep holds the next turn of its session, per strategy (app's worker thread).

    The next turn is timed right after the long one (its upkeep running) and,
    in the same round, after waiting the upkeep out; the hold is the
    difference of the medians, and ``upkeep.wait`` is what the turn spent
    waiting for jobs.
    """
    rng = np.random.default_rng(11)
    lab = lab_factory()
    out: dict[str, Any] = {}
    try:
        for strategy in STRATEGIES:
            say(f"long message, then the next turn: {strategy}")
            user, session = f"hold-{strategy}", "s1"
            lab.chat(user, session, "Hi, I'm starting a new notebook today.", strategy)
            lab.wait_for_upkeep(user, 60)
            busy: list[float] = []
            idle: list[float] = []
            waited: list[float] = []
            for _ in range(rounds):
                text = long_message(rng)
                for bucket in (busy, idle):
                    lab.chat(user, session, text, strategy)
                    if bucket is idle:
                        lab.wait_for_upkeep(user, 60)
                    started = time.perf_counter()
                    result = lab.chat(user, session, "What did I say about the bus route?", strategy)
                    bucket.append(time.perf_counter() - started)
                    if bucket is busy:
                        waited.append(result.trace.timings_ms.get("upkeep.wait", 0.0) / 1000)
                    lab.wait_for_upkeep(user, 60)
            out[strategy] = {
                "chars": len(text),
                "next_turn_busy_ms": round(statistics.median(busy) * 1000, 1),
                "next_turn_idle_ms": round(statistics.median(idle) * 1000, 1),
                "hold_s": round(max(0.0, statistics.median(busy) - statistics.median(idle)), 3),
                "waited_s": round(statistics.median(waited), 3),
            }
    finally:
        lab.close()
    return out


def run_sections(lab: Any, quick: bool, say: Say) -> dict[str, Any]:
    """Every long-session section on ``lab`` (its own throwaway servers), sized for ``quick`` or the targets."""
    sections: dict[str, Any] = {}
    short, long, rounds = (20, 300, 2) if quick else (50, 5000, 4)
    sections["long_sessions"] = bench_long_sessions(lab, short, long, rounds, say)
    sections["session_list"] = bench_session_list(lab, 100 if quick else 1000, 5 if quick else 30, say)

    def thread_lab() -> Any:
        from ..lab import MemoryLab

        return MemoryLab(replace(lab.settings, upkeep_mode="thread", data_dir=lab.settings.data_dir / "hold"))

    sections["long_message"] = bench_long_message_hold(thread_lab, 1 if quick else 2, say)
    return sections


def targets(sections: dict[str, Any], target: Callable[..., Any]) -> list[Any]:
    """The issue's long-session targets as ``target(name, value, limit, better, unit)`` rows."""
    rows = []
    long = sections["long_sessions"]
    for strategy, row in long["rows"].items():
        for what in ("reply", "upkeep"):
            rows.append(
                target(
                    f"{strategy} {what}, turn {long['long']:,} / turn {long['short']}", row[what]["ratio"], 1.2, "lower"
                )
            )
    listing = sections["session_list"]
    rows.append(target(f"listing {listing['sessions']:,} sessions", listing["p50_ms"], 50, "lower", " ms"))
    for strategy, row in sections["long_message"].items():
        rows.append(target(f"{strategy}: a long message's upkeep holds the next turn", row["hold_s"], 1, "lower", " s"))
    return rows


def render_sections(sections: dict[str, Any]) -> list[str]:
    long = sections["long_sessions"]
    lines = [f"Long sessions: turn {long['short']} vs turn {long['long']:,} (p50 of {long['rounds']} turns each):"]
    lines.append(
        f"  {'strategy':<9} {'reply early':>12} {'late':>9} {'ratio':>6}   "
        f"{'upkeep early':>12} {'late':>9} {'ratio':>6}"
    )
    for strategy, row in long["rows"].items():
        r, u = row["reply"], row["upkeep"]
        lines.append(
            f"  {strategy:<9} {r['early_ms']:>10.1f}ms {r['late_ms']:>7.1f}ms {r['ratio']:>5.2f}×   "
            f"{u['early_ms']:>10.1f}ms {u['late_ms']:>7.1f}ms {u['ratio']:>5.2f}×"
        )
    listing = sections["session_list"]
    lines.append(f"Listing a user's sessions ({listing['sessions']:,}, first words of 200): {listing['p50_ms']} ms p50")
    lines.append("A long message (~2,300 characters), then the next turn of its session, app worker thread:")
    for strategy, row in sections["long_message"].items():
        lines.append(
            f"  {strategy:<9} next turn {row['next_turn_busy_ms']:>7.1f} ms with its upkeep running, "
            f"{row['next_turn_idle_ms']:>7.1f} ms after it; hold {row['hold_s']:.2f} s (waited {row['waited_s']:.2f} s)"
        )
    return lines
