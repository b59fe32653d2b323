"""LongMemEval retrieval through the engine's own turn store: recall_any, recall_all and NDCG by question type.

Each question's history is stored as an evaluation user of its own (histories never mix) in the turn
store the app's episodic and hybrid strategies search (``TurnStore``: Chroma, the packaged embedder), each
user turn as the app stores one (``"User: ..."``, speaker ``User``, said at its session's date). Sessions
are ranked by ``TurnStore.explain_sessions`` (what ``search_sessions`` sorts by) and turns by
``TurnStore.explain`` (what ``search_turns`` sorts by): the app's ranking, not a copy of it.

What is indexed follows the app and the benchmark's own scripts: the user's turns. Assistant turns are
not (the app's turn index holds the user's words; docs/recall.md has the cost and what they would add).
So at the turn unit, a question whose evidence lies only in assistant turns has nothing to find: it is
left out and counted, as abstention questions are (they have no evidence at all).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..retrieval import RETRIEVERS, WEIGHTS, Weights
from ..stores.turn_store import embedded_texts, turn_words
from .longmemeval import LmeQuestion
from .recall import ndcg, recall_all, recall_any
from .runner import explain_ranks, rows_by_key
from .services import DatasetIndex

UNITS = ("session", "turn")
KS = [1, 3, 5, 10, 30, 50]  # the benchmark's own
METRICS = ("recall_any", "recall_all", "ndcg")
INDEX_LAYOUT = "lme-user-turns-2"  # what is stored for a history (change it to store the data again)
Progress = Callable[[int, int, str], None]
Row = tuple[str, str, int, float, str]


@dataclass
class LmeResult:
    question_id: str
    question_type: str  # the type, or "abstention"
    question: str
    answer: str
    question_date: str
    evidence: list[str]  # session ids, or turn ids ("<session id>_<turn number from 1>")
    scores: dict[str, dict[int, float]]  # metric -> k -> value
    evidence_ranks: dict[str, int | None]
    top: list[dict[str, Any]] = field(default_factory=list)
    # Each ranked evidence item's score by part, and the score at each k (what it had to beat).
    evidence_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    cutoff_scores: dict[int, float] = field(default_factory=dict)
    related_words: dict[str, float] = field(default_factory=dict)


@dataclass
class LmeReport:
    unit: str
    retriever: str
    k: list[int]
    n_questions: int
    overall: dict[str, dict[int, float]]  # metric -> k -> mean
    by_type: dict[str, dict[str, dict[int, float]]]
    left_out: dict[str, int]  # why questions were not scored -> how many
    seconds: float  # wall time, indexing included
    cpu_seconds: float  # this process's CPU time (the machine may be shared: wall time is noisy)
    index_seconds: float  # of ``seconds``, storing the histories (0 when they were stored already)
    questions: list[LmeResult]

    def to_json(self, with_questions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "data_set": "longmemeval",
            "unit": self.unit,
            "retriever": self.retriever,
            "k": self.k,
            "n_questions": self.n_questions,
            "overall": table_json(self.overall),
            "by_type": {t: table_json(table) for t, table in self.by_type.items()},
            "left_out": self.left_out,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "index_seconds": round(self.index_seconds, 2),
        }
        if with_questions:
            data["questions"] = [asdict(q) for q in self.questions]
        return data


def table_json(table: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    return {metric: {str(k): round(v, 4) for k, v in by_k.items()} for metric, by_k in table.items()}


def turn_id(session_id: str, position: int) -> str:
    """A turn's id, as the benchmark names it: the session id and the turn's number from 1."""
    return f"{session_id}_{position + 1}"


def history_rows(q: LmeQuestion) -> dict[str, list[Row]]:
    """The question's history as turn-store rows per session: its user turns, as the app stores them.

    A session listed twice in one history (the S file has a few, always the same turns) is stored once.
    """
    rows: dict[str, list[Row]] = {}
    for session in q.sessions:
        if session.id in rows:
            continue
        base = session.date.timestamp() if session.date else 0.0
        rows[session.id] = [
            (turn_id(session.id, i), f"User: {t.content}", i, base + i, "User")
            for i, t in enumerate(session.turns)
            if t.role == "user"
        ]
    return rows


def eval_user(q: LmeQuestion, rows: dict[str, list[Row]]) -> str:
    """The evaluation user holding this question's history; a changed history (or layout) is a new user."""
    digest = hashlib.sha1(INDEX_LAYOUT.encode())
    for session_id, turns in rows.items():
        digest.update(f"\0{session_id}".encode())
        for row in turns:
            digest.update(f"\1{row[1]}\1{row[3]}".encode("utf-8", "surrogatepass"))
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", q.question_id)[:30].strip("-.") or "q"
    return f"lme-{slug}-{digest.hexdigest()[:10]}"


def evidence_of(q: LmeQuestion, unit: str, rows: dict[str, list[Row]]) -> list[str]:
    """What the question's evidence is at ``unit``, among what is stored."""
    if unit == "session":
        return [s for s in q.evidence_sessions if rows.get(s)]
    stored = {row[0] for turns in rows.values() for row in turns}
    return [t for t in (turn_id(s, i) for s, i in q.evidence_turns()) if t in stored]


def ingest(lab: DatasetIndex, questions: Sequence[LmeQuestion], progress: Progress | None = None) -> list[str]:
    """Store every question's history under its own user (once: a stored history is kept); their users.

    The next history's texts and words are embedded (into the disk cache) in a second thread while the
    current one is written to the store: the embedder and the vector store's writes share the cores.
    """
    store = lab.dataset_turns  # vectors from the disk cache
    planned = [(q, history_rows(q)) for q in questions]
    users = [eval_user(q, rows) for q, rows in planned]
    todo = [
        (user, rows)
        for user, (_, rows) in zip(users, planned)
        if store.count(user) != sum(len(turns) for turns in rows.values())
    ]

    def embed_ahead(rows: dict[str, list[Row]]) -> None:
        every = [row for turns in rows.values() for row in turns]
        lab.dataset_embed(embedded_texts(every))  # one call: batches of even lengths, each new text once
        store.short_texts(turn_words(row[1] for row in every))

    with ThreadPoolExecutor(1, thread_name_prefix="lme-embed") as pool:
        ahead = pool.submit(embed_ahead, todo[0][1]) if todo else None
        for n, (user, rows) in enumerate(todo):
            assert ahead is not None
            ahead.result()
            ahead = pool.submit(embed_ahead, todo[n + 1][1]) if n + 1 < len(todo) else None
            store.forget_user(user)  # a history stored in part (an interrupted run) is stored again
            store.add_sessions(user, {s: turns for s, turns in rows.items() if turns})
            if progress is not None:
                progress(n + 1, len(todo), f"storing histories {n + 1}/{len(todo)}")
    return users


def score(evidence: Sequence[str], ranked: Sequence[str], ks: Sequence[int]) -> dict[str, dict[int, float]]:
    return {
        "recall_any": {k: recall_any(evidence, ranked, k) for k in ks},
        "recall_all": {k: recall_all(evidence, ranked, k) for k in ks},
        "ndcg": {k: ndcg(evidence, ranked, k) for k in ks},
    }


def rank_question(
    lab: DatasetIndex,
    user: str,
    q: LmeQuestion,
    vector: np.ndarray,
    unit: str,
    evidence: Sequence[str],
    ks: Sequence[int],
    retriever: str = "hybrid",
    weights: Weights = WEIGHTS,
    keep_top: int = 25,
) -> LmeResult:
    """One question ranked through the turn store, scored, with where its evidence ranked and why."""
    store = lab.dataset_turns
    asked_at = q.question_date.timestamp() if q.question_date else 0.0  # "two weeks ago" is from the question's day
    if unit == "session":
        keys, parts, found = store.explain_sessions(user, q.question, vector, retriever, None, weights, asked_at)
        texts: list[str] = []
    else:
        cands, parts, found = store.explain(user, q.question, vector, retriever, None, weights, asked_at)
        keys, texts = [c.id for c in cands], [c.text for c in cands]
    order, ranks, parts_of, cutoffs = explain_ranks(parts, rows_by_key(keys), evidence, ks)
    ranked = [keys[i] for i in order]
    top = [
        {
            "rank": r + 1,
            "id": keys[i],
            "score": round(float(parts["score"][i]), 4),
            "similarity": round(float(parts["cosine"][i]), 4),
        }
        | ({"text": texts[i]} if texts else {})
        for r, i in enumerate(order[:keep_top])
    ]
    return LmeResult(
        question_id=q.question_id,
        question_type=q.kind,
        question=q.question,
        answer=q.answer,
        question_date=q.question_date_text,
        evidence=list(evidence),
        scores=score(evidence, ranked, ks),
        evidence_ranks=ranks,
        top=top,
        evidence_scores=parts_of,
        cutoff_scores=cutoffs,
        related_words={w: round(c, 3) for w, c in sorted(found.items(), key=lambda wc: -wc[1])} if keep_top else {},
    )


def _check(unit: str, retriever: str, ks: Sequence[int]) -> None:
    if unit not in UNITS:
        raise InputError(f"LongMemEval is scored by {' or '.join(UNITS)}, not {unit!r}")
    if retriever not in RETRIEVERS:
        raise InputError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
    if not ks or min(ks) < 1:
        raise InputError("k values must be whole numbers of at least 1")


def scored_questions(
    questions: Sequence[LmeQuestion], unit: str
) -> tuple[list[tuple[int, LmeQuestion, list[str]]], dict[str, int]]:
    """The questions recall scores (index, question, evidence), and how many were left out and why."""
    kept, left_out = [], {"abstention": 0, "evidence not in the user's turns": 0}
    for i, q in enumerate(questions):
        if q.abstention:
            left_out["abstention"] += 1
            continue
        evidence = evidence_of(q, unit, history_rows(q))
        if not evidence:
            left_out["evidence not in the user's turns"] += 1
            continue
        kept.append((i, q, evidence))
    return kept, {why: n for why, n in left_out.items() if n}


def evaluate_lme(
    lab: DatasetIndex,
    questions: Sequence[LmeQuestion],
    unit: str = "session",
    retriever: str = "hybrid",
    ks: Sequence[int] | None = None,
    progress: Progress | None = None,
    keep_top: int = 25,
    weights: Weights = WEIGHTS,
) -> LmeReport:
    ks = sorted(set(ks or KS))
    _check(unit, retriever, ks)
    start, cpu_start = time.perf_counter(), time.process_time()
    users = ingest(lab, questions, progress)
    index_seconds = time.perf_counter() - start
    kept, left_out = scored_questions(questions, unit)
    vectors = lab.dataset_embed([q.question for _, q, _ in kept])
    results = []
    for n, ((i, q, evidence), vector) in enumerate(zip(kept, vectors)):
        results.append(rank_question(lab, users[i], q, vector, unit, evidence, ks, retriever, weights, keep_top))
        lab.dataset_turns.unload(users[i])  # each history is read once: hold one in memory at a time
        if progress is not None:
            progress(n + 1, len(kept), f"ranking {n + 1}/{len(kept)}")
    return LmeReport(
        unit=unit,
        retriever=retriever,
        k=ks,
        n_questions=len(results),
        overall=mean_table(results),
        by_type={t: mean_table([r for r in results if r.question_type == t]) for t in types_of(results)},
        left_out=left_out,
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start,
        index_seconds=index_seconds,
        questions=results,
    )


def types_of(results: Sequence[LmeResult]) -> list[str]:
    return sorted({r.question_type for r in results})


def mean_table(results: Sequence[LmeResult]) -> dict[str, dict[int, float]]:
    """Each metric's mean at each k over ``results``."""
    if not results:
        return {}
    return {
        metric: {k: float(np.mean([r.scores[metric][k] for r in results])) for k in results[0].scores[metric]}
        for metric in METRICS
    }
