"""`python -m memory bench`: Memory Lab's speed targets, measured side by side in one run.

Every comparison runs in the same process against the same throwaway
servers, interleaved (A, B, A, B...) so a noisy neighbour slows both sides
alike; results are ratios, which hold across machines better than times.
Nothing here touches the user's data: it starts its own redis-server and
Chroma in a temporary folder and removes them at the end.

Sections: a buffer turn against the raw Redis floor and two common
patterns; the facts search against a bare filtered Chroma query at two
sizes; storing facts; the per-turn cost of episode upkeep; CLI start-up.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

Progress = Callable[[str], None]

# Words for synthetic facts and queries: shared, so BM25 has real overlaps to score.
_NOUNS = (
    "hiking coffee chess piano sushi ramen cycling painting jazz tennis climbing pottery gardening baking "
    "football poetry sailing skiing running yoga photography knitting surfing cooking dancing violin guitar "
    "history physics astronomy robotics novels podcasts museums camping fishing birds cats dogs horses "
    "tea wine cheese bread pasta curry tacos dumplings kimchi noodles"
).split()
_PLACES = "Oslo Lima Kyoto Berlin Lisbon Nairobi Denver Hanoi Quito Perth Bergen Porto Seville Krakow".split()
_ADJ = "spicy quiet early weekend old new long short local foreign live classic".split()


@dataclass
class Target:
    name: str
    value: float
    limit: float
    better: str  # "lower" | "higher"
    unit: str = "×"

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.better == "lower" else self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "met": self.met}


def finish_report(report: dict[str, Any], targets: list[Target]) -> dict[str, Any]:
    """A dict report's closing fields (``bench --load``, ``--pages``): the machine it ran on, each target and
    whether all were met."""
    report["machine"] = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}
    report["targets"] = [t.to_dict() for t in targets]
    report["all_met"] = all(t["met"] for t in report["targets"])
    return report


@dataclass
class Report:
    quick: bool
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "sections": self.sections,
            "targets": [t.to_dict() for t in self.targets],
            "all_met": all(t.met for t in self.targets),
        }


def p50_interleaved(variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 20) -> dict[str, float]:
    """Median seconds per call of each variant, run round-robin so drift hits them all alike."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(xs) for name, xs in samples.items()}


class RoundTripCounter:
    """Counts what a client sends to Redis: one send per command or per pipeline, i.e. round trips."""

    def __enter__(self) -> RoundTripCounter:
        import redis.connection

        self.count = 0
        self._cls = redis.connection.AbstractConnection
        self._original = self._cls.send_packed_command
        original = self._original

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)

        self._cls.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.send_packed_command = self._original  # type: ignore[method-assign]


def _fact_text(rng: np.random.Generator, i: int) -> str:
    a, b = rng.choice(_NOUNS, 2, replace=False)
    return f"The user likes {rng.choice(_ADJ)} {a} and {b} in {rng.choice(_PLACES)} (note {i})."


def _random_units(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# -- sections ------------------------------------------------------------------------------------------
def bench_turn(lab: Any, url: str, repeats: int) -> dict[str, Any]:
    """One buffer turn's memory work: store the user's message, read the context, store the reply (+ trace)."""
    import redis

    from ..llm.base import LLMReply
    from ..records.messages import Message, Role, encode
    from ..stores.session_store import Reads
    from ..turn import Turn

    raw = redis.Redis.from_url(url)
    user_text, reply_text = "My name is Alice and I moved to Oslo last spring.", "Nice to meet you, Alice."
    m_user, m_reply = encode(Message(Role.USER, user_text)), encode(Message(Role.ASSISTANT, reply_text))
    n = lab.settings.buffer_size

    def raw_floor() -> None:
        with raw.pipeline(transaction=True) as p:
            p.rpush("bench:raw", m_user)
            p.rpush("bench:raw", m_reply)
            p.ltrim("bench:raw", -n, -1)
            p.expire("bench:raw", 3600)
            p.lrange("bench:raw", 0, -1)
            p.execute()

    def seed_pattern() -> None:
        """The seed article's buffer: RPUSH, LTRIM, EXPIRE per message, LRANGE + json.loads to read."""
        for m in (m_user, m_reply):
            raw.rpush("bench:seed", m)
            raw.ltrim("bench:seed", -n, -1)
            raw.expire("bench:seed", 3600)
        [json.loads(x) for x in raw.lrange("bench:seed", 0, -1)]

    def langchain_pattern() -> None:
        """LangChain's RedisChatMessageHistory: LPUSH + EXPIRE per message; read all, reversed, json.loads."""
        for m in (m_user, m_reply):
            raw.lpush("bench:lc", m)
            raw.expire("bench:lc", 3600)
        [json.loads(x) for x in raw.lrange("bench:lc", 0, -1)[::-1]]  # (LangChain decodes bytes first)
        raw.ltrim("bench:lc", 0, n - 1)  # (not in LangChain: keeps the list the same size as the others)

    sessions = lab.sessions

    def store_turn() -> None:
        sessions.append_and_read("bench", "store", Message(Role.USER, user_text), Reads(last=n), n, 3600)
        with lab.redis.pipeline(transaction=False) as p:
            sessions.stage_append(p, "bench", "store", Message(Role.ASSISTANT, reply_text), n, 3600)
            sessions.run(p, "bench", "store")

    reply = LLMReply(reply_text, "bench")

    def lab_turn() -> None:
        Turn.begin(lab, "bench", "lab", user_text, "buffer", None, None).finish(reply)

    variants = {
        "raw floor (one MULTI)": raw_floor,
        "seed article pattern": seed_pattern,
        "LangChain RedisChatMessageHistory pattern": langchain_pattern,
        "Memory Lab SessionStore": store_turn,
        "Memory Lab turn (Turn.begin + finish, trace)": lab_turn,
    }
    times = p50_interleaved(variants, repeats)
    trips: dict[str, int] = {}
    for name, fn in variants.items():
        with RoundTripCounter() as counter:
            fn()
        trips[name] = counter.count
    floor = times["raw floor (one MULTI)"]
    raw.close()
    return {
        "rows": [
            {"path": name, "p50_us": round(t * 1e6, 1), "ratio": round(t / floor, 2), "round_trips": trips[name]}
            for name, t in times.items()
        ]
    }


def _fill_facts(lab: Any, owners: list[tuple[str, int]], rng: np.random.Generator, progress: Progress) -> None:
    """Facts for each (user, count), written straight to Chroma with random unit vectors (timing needs no meaning)."""
    from ..backends.vector_store import FACTS, Record

    now = time.time()
    rows = [(uid, i) for uid, count in owners for i in range(count)]
    meta = {"session_id": "s1", "created_at": now, "updated_at": now, "slot": "", "source_ids": "[]"}
    batch = 5000
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        records = [Record(f"{uid}-{i}", _fact_text(rng, i), {"user_id": uid, **meta}) for uid, i in chunk]
        lab.vectors.upsert(FACTS, records, _random_units(rng, len(records)))
        progress(f"  facts written: {min(start + batch, len(rows)):,} / {len(rows):,}")


def _others(prefix: str, rows: int) -> list[tuple[str, int]]:
    """Up to 1,000 other users holding ``rows`` facts between them, as evenly as whole facts allow."""
    users = min(1000, max(0, rows))
    return [(f"{prefix}{i}", rows // users + (i < rows % users)) for i in range(users)] if users else []


def bench_facts_search(
    lab: Any, sizes: list[int], total: int, queries: int, progress: Progress, small_dir: Path | None = None
) -> dict[str, Any]:
    """Bare filtered Chroma query vs ours, as memory grows, measured two ways.

    As the issue measured it: the smallest user in a collection that is as many times smaller as the user
    is (1,000 facts in 10,000 rows), against the largest user in the full one (10,000 in 100,000): the
    whole memory grows tenfold. And with the collection held at ``total`` rows, where only the user's own
    facts grow. The bare query's cost follows the collection's size and the filter's selectivity more
    than the user's facts (it is faster for 10,000 of 100,000 rows than for 1,000 of them), so the second
    way shows what the user's facts alone cost us; the target is the first (docs/benchmarks.md).
    """
    from ..backends.filters import where_user
    from ..backends.vector_store import FACTS

    rng = np.random.default_rng(42)
    owners = [(f"bench{size}", size) for size in sizes] + _others("other", total - sum(sizes))
    progress(f"facts search: {sum(n for _, n in owners):,} rows, users with {', '.join(f'{n:,}' for n in sizes)}")
    _fill_facts(lab, owners, rng, progress)
    small_rows = total * sizes[0] // sizes[-1]
    small: Any = None
    points: dict[str, tuple[Any, str, int]] = {f"{size}": (lab, f"bench{size}", size) for size in sizes}
    if small_dir is not None and sizes[0] < sizes[-1]:
        from ..lab import MemoryLab

        small = MemoryLab(replace(lab.settings, data_dir=small_dir))
        progress(f"facts search, the smaller memory: {small_rows:,} rows, a user with {sizes[0]:,}")
        _fill_facts(
            small, [(f"small{sizes[0]}", sizes[0])] + _others("small-other", small_rows - sizes[0]), rng, progress
        )
        points = {"small": (small, f"small{sizes[0]}", sizes[0]), **points}
    try:
        probe = lab.embed(["settle"])[0]
        for point_lab, user, _ in points.values():  # Chroma indexes new rows in the background for a while
            for _ in range(20):
                point_lab.vectors.query(FACTS, probe, 5, where_user(user))
        texts = {
            name: [f"what about {rng.choice(_NOUNS)} in {rng.choice(_PLACES)}?" for _ in range(queries)]
            for name in points
        }
        cold_ms = {name: _first_search(p[0], p[1], texts[name][0]) for name, p in points.items()}
        times = _timed_blocks({name: (p[0], p[1]) for name, p in points.items()}, texts)
        rows = [
            {
                "facts": size,
                "collection_rows": point_lab.vectors.count(FACTS),
                "bare_p50_ms": round(times[name, "bare"] * 1000, 2),
                "ours_p50_ms": round(times[name, "ours"] * 1000, 2),
                "ratio": round(times[name, "ours"] / times[name, "bare"], 2),
                **_search_at(point_lab, user, texts[name]),
                "first_search_ms": cold_ms[name],
            }
            for name, (point_lab, user, size) in points.items()
        ]
    finally:
        if small is not None:
            small.close()

    def growth(first: str) -> dict[str, float]:
        last = str(sizes[-1])
        return {side: round(times[last, side] / times[first, side], 2) for side in ("bare", "ours")}

    out: dict[str, Any] = {"rows": rows, "growth_fixed_collection": growth(str(sizes[0]))}
    out["growth"] = growth("small") if "small" in points else out["growth_fixed_collection"]
    return out


def _first_search(lab: Any, user: str, text: str) -> float:
    """Milliseconds of the user's first search in this process (it loads the user's facts)."""
    started = time.perf_counter()
    lab.facts.search(user, lab.embed([text])[0], 5, query_text=text)
    return round((time.perf_counter() - started) * 1000, 1)


def _timed_blocks(points: dict[str, tuple[Any, str]], texts: dict[str, list[str]]) -> dict[tuple[str, str], float]:
    """Median seconds of a bare filtered Chroma query and of ours, per (lab, user): embedding the query included.

    Blocks of queries take turns, every point and side in each of three rounds, the first two queries of a
    block untimed: the sides share the CPU caches (Chroma's index, the model's weights), a block's first
    query pays for the other's misses, and drift over the run (Chroma settling, the page cache) falls on
    every point alike instead of on whichever was measured first.
    """
    from ..backends.filters import where_user
    from ..backends.vector_store import FACTS

    samples: dict[tuple[str, str], list[float]] = {}
    orders = {name: itertools.cycle(texts[name]) for name in points}  # each side meets every query in turn
    for _ in range(3):
        for name, (lab, user) in points.items():
            order = orders[name]

            def bare(lab: Any = lab, user: str = user, order: Iterator[str] = order) -> None:
                q = next(order)
                lab.vectors.query(FACTS, lab.embed([q])[0], 5, where_user(user))

            def ours(lab: Any = lab, user: str = user, order: Iterator[str] = order) -> None:
                q = next(order)
                lab.facts.search(user, lab.embed([q])[0], 5, query_text=q)

            for side, fn in (("bare", bare), ("ours", ours)):
                for i in range(2 + max(1, len(texts[name]) // 3)):
                    started = time.perf_counter()
                    fn()
                    if i >= 2:
                        samples.setdefault((name, side), []).append(time.perf_counter() - started)
    return {key: statistics.median(xs) for key, xs in samples.items()}


def _search_at(lab: Any, user: str, texts: list[str]) -> dict[str, Any]:
    """Ours without embedding the query; and ours vs a full read, for equality."""
    from ..backends.filters import where_user
    from ..backends.vector_store import FACTS
    from ..retrieval import Candidate, CandidateIndex

    vectors = lab.embed(texts)
    search_only = []
    for q, v in zip(texts, vectors):
        started = time.perf_counter()
        lab.facts.search(user, v, 5, query_text=q)
        search_only.append(time.perf_counter() - started)
    same = 0
    full_ms: list[float] = []
    checked = texts[:20]
    for q in checked:
        vector = lab.embed([q])[0]
        ours_ids = [h.id for h, _ in lab.facts.search(user, vector, 5, query_text=q)]
        started = time.perf_counter()
        hits = lab.vectors.query(FACTS, vector, lab.vectors.count(FACTS, where_user(user)), where_user(user))
        scores = CandidateIndex([Candidate(h.id, h.text) for h in hits], use_neighbours=False).rank(
            q, np.array([h.similarity for h in hits])
        )
        full_ms.append((time.perf_counter() - started) * 1000)
        same += ours_ids == [hits[i].id for i in np.argsort(-scores, kind="stable")[:5]]
    return {
        "ours_without_embedding_p50_ms": round(statistics.median(search_only) * 1000, 2),
        "full_read_p50_ms": round(statistics.median(full_ms), 1),
        "same_top5": f"{same}/{len(checked)}",
    }


def bench_ingest(lab: Any, statements: int, existing_user: str | None, existing_size: int = 0) -> dict[str, Any]:
    """Extract, embed, dedupe and store facts from a conversation: ten turns a batch (a few turns of upkeep),
    and fifty (importing a conversation); into an empty memory and into a large one."""
    from ..records.messages import Message, Role

    rng = np.random.default_rng(3)
    out = {}
    cases = [("empty memory", "ingest", 10), ("empty memory", "ingest50", 50)]
    if existing_user is not None:
        cases += [
            (f"{existing_size:,}-fact memory", existing_user, 10),
            (f"{existing_size:,}-fact memory", existing_user, 50),
        ]
    for label, user, batch in cases:
        turns = [
            Message(
                Role.USER, f"I like {rng.choice(_ADJ)} {rng.choice(_NOUNS)} with {rng.choice(_NOUNS)} #{batch}-{i}."
            )
            for i in range(statements)
        ]
        lab.facts.count(user)  # the user's facts in memory first (the first search of a process does this)
        started = time.perf_counter()
        stored = 0
        for start in range(0, len(turns), batch):
            facts, _ = lab.llm.extract_facts(turns[start : start + batch])
            stored += len(lab.facts.remember(user, "ingest", facts))
        seconds = time.perf_counter() - started
        out[f"{label}, {batch} turns a batch"] = {
            "facts": stored,
            "seconds": round(seconds, 2),
            "facts_per_s": round(stored / seconds, 1),
        }
    return out


def bench_episodes(lab: Any, turns: int) -> dict[str, Any]:
    """Per-turn episode upkeep early, midway and late in a long session, and what re-summarising the
    whole session (the method before) costs at the same points.

    The episode summary grows until it reaches its token budget, then stays
    there; the cost per turn follows it and then stays flat, whatever the
    session's length. The target compares the late window with the middle one.
    """
    from ..records.messages import Message, Role
    from ..records.tokens import count_tokens

    key = lab.keys.session("bench", "episode").log
    budget = lab.settings.summary_max_tokens
    costs: list[float] = []
    whole: dict[int, dict[str, float]] = {}
    history: list[Message] = []
    marks = {9, turns // 2 - 1, turns - 1}
    for i in range(turns):
        turn = [
            Message(Role.USER, f"I spent day {i} {_NOUNS[i % len(_NOUNS)]} near {_PLACES[i % len(_PLACES)]}."),
            Message(Role.ASSISTANT, "Noted."),
        ]
        history.extend(turn)
        started = time.perf_counter()
        lab.episodes.extend("bench", "episode", turn, lambda prev, new: lab.llm.summarize(prev, new, budget), key)
        costs.append((time.perf_counter() - started) * 1000)
        if i in marks:
            started = time.perf_counter()
            lab.embed([lab.llm.summarize("", history[-400:], budget)])
            episode = lab.episodes.get("bench", ["episode"])[0].text
            whole[i + 1] = {
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "summariser_input_tokens": sum(count_tokens(m.content) for m in history[-400:]),
                "incremental_input_tokens": count_tokens(episode) + sum(count_tokens(m.content) for m in turn),
            }

    def window(end: int) -> float:
        return round(statistics.median(costs[max(0, end - 10) : end]), 2)

    early, middle, late = window(10), window(turns // 2), window(turns)
    return {
        "turns": turns,
        "per_turn_ms": {
            "turns 1-10": early,
            f"turns {turns // 2 - 9}-{turns // 2}": middle,
            f"turns {turns - 9}-{turns}": late,
        },
        "whole_session_ms_at_turn": whole,
        "ratio": round(late / middle, 2),
    }


def bench_startup(data_dir: Path) -> dict[str, Any]:
    """Wall time of CLI commands that need no model, each in a fresh process (as a user runs them)."""
    env = {**os.environ, "MEMLAB_DATA_DIR": str(data_dir)}
    env.pop("REDIS_URL", None)
    commands = [
        ["sessions", "--user", "bench"],
        ["history", "--user", "bench", "--session", "s1"],
        ["doctor", "--quick"],
        ["redis", "stop"],
    ]
    subprocess.run([sys.executable, "-m", "memory", "sessions", "--user", "bench"], env=env, capture_output=True)
    out = {}
    for args in commands:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "memory", *args], env=env, capture_output=True, text=True)
        out[" ".join(args[:2] if args[0] != "history" else args[:1])] = {
            "seconds": round(time.perf_counter() - started, 2),
            "exit": proc.returncode,
        }
    return out


_MODEL_PROBE = """
import os, time
started = time.perf_counter()
from memory.backends.embedder import get_embedder
embedder = get_embedder(); embedder.embed(["warm up"])
loaded = time.perf_counter() - started
texts = [f"I like hiking and sentence number {i} about Oslo." for i in range(256)]
t = time.perf_counter(); embedder.embed(texts); batch = time.perf_counter() - t
t = time.perf_counter()
for _ in range(20): embedder.embed(["What is my name?"])
one = (time.perf_counter() - t) / 20
def hwm():  # VmHWM: unlike ru_maxrss, not inherited from the forking parent
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
rss_load = hwm()
from dataclasses import replace
from pathlib import Path
from memory.config import Settings
from memory.lab import MemoryLab
lab = MemoryLab(replace(Settings(), data_dir=Path(os.environ["BENCH_DIR"]), upkeep_mode="inline"))
for name in ("buffer", "summary", "facts", "episodic", "hybrid"):
    lab.chat("bench", name, "My name is Alice and I live in Oslo.", strategy=name)
rss_turns = hwm()
lab.stop_embedded_redis()
print(embedder.backend, loaded, batch, one, rss_load, rss_turns)
"""


def bench_model(folder: Path) -> dict[str, Any]:
    """Each embedder backend in a fresh process: load time, batch and one-query speed, and peak memory after
    a turn of every strategy (embedded Redis and Chroma included)."""
    out: dict[str, Any] = {}
    for backend in ("onnx", "torch"):
        env = {**os.environ, "MEMLAB_EMBEDDER": backend, "BENCH_DIR": str(folder / backend)}
        env.pop("REDIS_URL", None)
        env.pop("CHROMA_HOST", None)
        root = str(Path(__file__).parent.parent)
        proc = subprocess.run([sys.executable, "-c", _MODEL_PROBE], capture_output=True, text=True, env=env, cwd=root)
        try:
            used, loaded, batch, one, rss_load, rss_turns = proc.stdout.split()[-6:]
            out[backend] = {
                "backend": used,
                "load_s": round(float(loaded), 2),
                "embed_256_s": round(float(batch), 3),
                "embed_one_ms": round(float(one) * 1000, 2),
                "rss_after_load_mb": round(int(rss_load) / 1024),
                "rss_after_a_turn_per_strategy_mb": round(int(rss_turns) / 1024),
            }
        except ValueError:
            out[backend] = {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    return out


# -- the run ---------------------------------------------------------------------------------------------
def run(quick: bool = False, progress: Progress | None = None) -> Report:
    from ..backends.redis_server import EmbeddedRedis
    from ..config import Settings
    from ..lab import MemoryLab

    say = progress or (lambda _message: None)
    report = Report(quick)
    folder = Path(tempfile.mkdtemp(prefix="memlab-bench-"))
    server = EmbeddedRedis(folder / "redis")
    try:
        state = server.ensure_running()
        lab = MemoryLab(replace(Settings(), data_dir=folder / "data", redis_url=state.url, upkeep_mode="inline"))
        say("loading the embedding model")
        lab.embed(["warm up"])
        say("buffer turn")
        # The turn as a user waits for it: upkeep queued in the reply's round trip (every strategy's upkeep now
        # keeps the user's whole memory, statements and turn index included, and runs in a worker, not inline).
        turn_lab = MemoryLab(replace(lab.settings, data_dir=folder / "data-turn", upkeep_mode="external"))
        report.sections["turn"] = bench_turn(turn_lab, state.url, repeats=200 if quick else 2000)
        turn_lab.close()
        sizes, total, queries = ([200, 1000], 3000, 10) if quick else ([1000, 10000], 100_000, 40)
        report.sections["facts_search"] = bench_facts_search(lab, sizes, total, queries, say, folder / "data-small")
        say("storing facts")
        report.sections["ingest"] = bench_ingest(lab, 100 if quick else 500, f"bench{sizes[-1]}", sizes[-1])
        say("episode upkeep")
        report.sections["episodes"] = bench_episodes(lab, 60 if quick else 120)
        if not quick:
            say("CLI start-up")
            report.sections["startup"] = bench_startup(folder / "cli")
            say("embedding model, each backend in a fresh process")
            report.sections["model"] = bench_model(folder / "model")
        lab.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report.sections["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    _targets(report)
    return report


def _targets(report: Report) -> None:
    s = report.sections
    turn = {r["path"]: r for r in s["turn"]["rows"]}
    ours = turn["Memory Lab turn (Turn.begin + finish, trace)"]
    t = report.targets
    t.append(Target("buffer turn round trips", ours["round_trips"], 2, "lower", ""))
    t.append(Target("buffer turn vs raw floor", ours["ratio"], 2.5, "lower"))
    last = s["facts_search"]["rows"][-1]
    t.append(Target(f"facts search at {last['facts']:,} facts vs bare query", last["ratio"], 1.3, "lower"))
    growth = s["facts_search"]["growth"]
    t.append(
        Target(
            "facts search growth vs bare query's, memory 10×", round(growth["ours"] / growth["bare"], 2), 1.0, "lower"
        )
    )
    same, total = (int(x) for x in last["same_top5"].split("/"))
    t.append(Target("same top-5 as a full read", same / total, 1.0, "higher", ""))
    for label, row in s["ingest"].items():
        if label.endswith("50 turns a batch"):  # the target is about ingesting a conversation
            t.append(Target(f"storing facts ({label})", row["facts_per_s"], 100, "higher", " facts/s"))
    t.append(Target("episode upkeep per turn, late / middle of the session", s["episodes"]["ratio"], 1.5, "lower"))
    for command, row in s.get("startup", {}).items():
        t.append(Target(f"`{command}` start-up", row["seconds"], 1.0, "lower", " s"))
    model = s.get("model", {})
    if "load_s" in model.get("onnx", {}) and "load_s" in model.get("torch", {}):
        ratio = round(model["onnx"]["load_s"] / model["torch"]["load_s"], 2)
        t.append(Target("model load, ONNX / torch", ratio, 1, "lower"))


def render(report: Report) -> str:
    s = report.sections
    lines = [f"Memory Lab bench{' (quick)' if report.quick else ''} — {s['machine']['cpus']} CPUs", ""]
    lines.append("Buffer turn (store user message, read context, store reply), p50:")
    for r in s["turn"]["rows"]:
        lines.append(f"  {r['path']:<46} {r['p50_us']:>9,.1f} µs  {r['ratio']:>5.2f}×  {r['round_trips']} round trips")
    lines.append("")
    lines.append("Facts search (embed the query + top-5), p50:")
    head = ("facts", "rows", "bare", "ours", "ratio", "full read", "first", "same top-5")
    widths = (7, 8, 9, 9, 6, 10, 9, 10)
    lines.append("  " + " ".join(f"{h:>{w}}" for h, w in zip(head, widths)))
    for r in s["facts_search"]["rows"]:
        lines.append(
            f"  {r['facts']:>7,} {r['collection_rows']:>8,} {r['bare_p50_ms']:>7.2f}ms {r['ours_p50_ms']:>7.2f}ms "
            f"{r['ratio']:>5.2f}× {r['full_read_p50_ms']:>8.1f}ms {r['first_search_ms']:>7.1f}ms {r['same_top5']:>10}"
        )
    rows = s["facts_search"]["rows"]
    lines.append(
        "  ours without embedding the query: "
        + ", ".join(f"{r['facts']:,}/{r['collection_rows']:,} {r['ours_without_embedding_p50_ms']} ms" for r in rows)
    )
    g, fixed = s["facts_search"]["growth"], s["facts_search"]["growth_fixed_collection"]
    first, last = rows[0], rows[-1]
    lines.append(
        f"  growth as memory grows ({first['facts']:,} facts in {first['collection_rows']:,} rows → "
        f"{last['facts']:,} in {last['collection_rows']:,}): bare {g['bare']}×, ours {g['ours']}×"
    )
    lines.append(
        f"  growth of the user's facts alone ({last['collection_rows']:,} rows both): "
        f"bare {fixed['bare']}×, ours {fixed['ours']}×"
    )
    lines.append("")
    lines.append("Storing facts (extract, embed, dedupe, store):")
    for label, r in s["ingest"].items():
        rate = f"{r['facts']:>5} facts in {r['seconds']:>6.2f} s = {r['facts_per_s']:>7.1f} facts/s"
        lines.append(f"  {label:<42} {rate}")
    e = s["episodes"]
    lines.append("")
    windows = ", ".join(f"{k} {v} ms" for k, v in e["per_turn_ms"].items())
    lines.append(f"Episode upkeep per turn (incremental): {windows} (late / middle {e['ratio']}×)")
    lines.append("  summariser input per turn, incremental vs re-summarising the whole session (the method before):")
    for at, w in e["whole_session_ms_at_turn"].items():
        lines.append(
            f"    turn {at:>4}: {w['incremental_input_tokens']:>5} vs {w['summariser_input_tokens']:>6} tokens "
            f"(whole-session pass with the offline summariser: {w['ms']} ms)"
        )
    if "startup" in s:
        lines.append("")
        lines.append("CLI start-up (fresh process, no model):")
        for command, r in s["startup"].items():
            lines.append(f"  python -m memory {command:<14} {r['seconds']:>5.2f} s (exit {r['exit']})")
    if "model" in s:
        lines.append("")
        lines.append(
            "Embedding model in a fresh process (load, 256 texts, one query; peak RSS after load / a turn each):"
        )
        for backend, m in s["model"].items():
            if "error" in m:
                lines.append(f"  {backend:<6} failed: {m['error']}")
                continue
            lines.append(
                f"  {backend:<6} {m['load_s']:>5.2f} s  {m['embed_256_s']:>6.3f} s  {m['embed_one_ms']:>6.2f} ms  "
                f"{m['rss_after_load_mb']:>5} MB / {m['rss_after_a_turn_per_strategy_mb']:>5} MB"
            )
    lines.append("")
    lines.append("Targets:")
    for target in report.targets:
        mark = "✓" if target.met else "✗"
        op = "≤" if target.better == "lower" else "≥"
        lines.append(f"  {mark} {target.name}: {target.value:g}{target.unit} ({op} {target.limit:g}{target.unit})")
    return "\n".join(lines)
