"""Run recall@k over LoCoMo-format conversations through the engine's own storage.

Each conversation is ingested once into the turn store (Chroma + the
packaged embedder) under its own evaluation user, keyed by a fingerprint of
its text, so a second run reuses the index. Every question is then a query
through the same ranking code the app's strategies use.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..retrieval import RETRIEVERS, WEIGHTS, Weights
from ..stores.turn_store import embedded_texts
from .locomo import Conversation
from .recall import mean, recall_at_k
from .services import DatasetIndex

UNITS = ("turn", "session", "fact")
INDEX_LAYOUT = "speaker+sentences3"  # what is stored beside each row's text (change it to store the data again)
Progress = Callable[[int, int, str], None]


@dataclass
class QuestionResult:
    sample_id: str
    question: str
    answer: str
    category: int
    evidence: list[str]
    recall: dict[int, float]
    evidence_ranks: dict[str, int | None]
    top: list[dict[str, Any]] = field(default_factory=list)
    # Turn unit: each ranked evidence turn's score by part (``CandidateIndex.components``), and the score at
    # each k (what an evidence turn had to beat).
    evidence_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    cutoff_scores: dict[int, float] = field(default_factory=dict)
    # Turn unit: the conversation's words the keyword score counted as related to the question's (cosine).
    related_words: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalReport:
    unit: str
    retriever: str
    k: list[int]
    categories: list[int]
    n_questions: int
    overall: dict[int, float]
    by_category: dict[int, dict[int, float]]
    by_conversation: dict[str, dict[int, float]]
    seconds: float
    questions: list[QuestionResult]

    def to_json(self, with_questions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "unit": self.unit,
            "retriever": self.retriever,
            "k": self.k,
            "categories": self.categories,
            "n_questions": self.n_questions,
            "overall": {str(k): round(v, 4) for k, v in self.overall.items()},
            "by_category": {str(c): {str(k): round(v, 4) for k, v in r.items()} for c, r in self.by_category.items()},
            "by_conversation": {
                s: {str(k): round(v, 4) for k, v in r.items()} for s, r in self.by_conversation.items()
            },
            "seconds": round(self.seconds, 2),
        }
        if with_questions:
            data["questions"] = [asdict(q) for q in self.questions]
        return data


def rows_by_key(keys: Sequence[str]) -> dict[str, list[int]]:
    """The rows of each item key (a turn can have several rows: the fact unit's facts of one turn)."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return rows


def explain_ranks(
    parts: dict[str, np.ndarray], rows_of: Mapping[str, list[int]], evidence: Sequence[str], ks: Sequence[int]
) -> tuple[np.ndarray, dict[str, int | None], dict[str, dict[str, float]], dict[int, float]]:
    """The ranking by ``parts["score"]`` (rows, best first), where each evidence item ranked (None: not
    stored), and why: its score's parts, beside the score at each k (what it had to beat)."""
    order = np.argsort(-parts["score"], kind="stable")
    rank_of = np.empty(len(order), dtype=int)
    rank_of[order] = np.arange(1, len(order) + 1)
    ranks = {e: int(rank_of[rows_of[e]].min()) if e in rows_of else None for e in evidence}
    parts_of = {
        e: {name: round(float(v[order[r - 1]]), 4) for name, v in parts.items()}
        for e, r in ranks.items()
        if r is not None
    }
    cutoffs = {k: round(float(parts["score"][order[k - 1]]), 4) for k in ks if k <= len(order)}
    return order, ranks, parts_of, cutoffs


def eval_user(conv: Conversation, unit: str) -> str:
    text = "\n".join(t.display for t in conv.turns)
    if unit == "fact":
        text += "\n".join(f for f, _ in conv.observations)
    # The layout's version is in the digest: turns stored before they carried their speaker are stored again.
    digest = hashlib.sha1(f"{INDEX_LAYOUT}\n{text}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", conv.sample_id)[:30].strip("-.") or "conv"
    return f"eval-{slug}-{'f' if unit == 'fact' else 't'}{digest}"


def _ingest(lab: DatasetIndex, conv: Conversation, unit: str, progress: Callable[[int, int], None]) -> str:
    user = eval_user(conv, unit)
    store = lab.dataset_turns  # vectors from the disk cache
    if unit == "fact":
        rows = {f"D{t.session}": [] for t in conv.turns}  # type: dict[str, list[tuple[str, str, int, float, str]]]
        by_id = {t.dia_id: t for t in conv.turns}
        for j, (fact, source) in enumerate(conv.observations):
            turn = by_id[source]
            rows[f"D{turn.session}"].append((f"F{j}|{source}", fact, turn.position, 0.0, turn.speaker))
        expected = len(conv.observations)
    else:
        rows = {
            f"D{s.index}": [
                (t.dia_id, t.display, t.position, m.created_at, t.speaker) for t, m in zip(s.turns, conv.messages(s))
            ]
            for s in conv.sessions
        }
        expected = len(conv.turns)
    if store.count(user) != expected:
        store.forget_user(user)
        lab.dataset_embed(embedded_texts([row for turns in rows.values() for row in turns]))  # one call: even batches
        done = 0
        for session_id, turns in rows.items():
            if turns:
                store.add(user, session_id, turns)
            done += len(turns)
            progress(done, expected)
    return user


def _indexing_progress(
    report: Callable[[int, int, str], None], at: int, total: int, sample: str, d: int, t: int
) -> None:
    report(at, total, f"{sample}: indexing {d}/{t}")


def evaluate(
    lab: DatasetIndex,
    conversations: list[Conversation],
    unit: str = "turn",
    retriever: str = "hybrid",
    ks: list[int] | None = None,
    categories: list[int] | None = None,
    progress: Progress | None = None,
    keep_top: int = 25,
    weights: Weights = WEIGHTS,
) -> EvalReport:
    if unit not in UNITS:
        raise InputError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    if retriever not in RETRIEVERS:
        raise InputError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
    ks = sorted(set(ks or [1, 5, 10, 25]))
    if not ks or ks[0] < 1:
        raise InputError("k values must be whole numbers of at least 1")
    categories = sorted(set(categories or [1, 2, 3, 4]))
    if unit == "fact" and not any(c.observations for c in conversations):
        raise InputError("the fact unit needs 'observation' facts in the data, and this file has none")
    start = time.perf_counter()
    report_progress = progress or (lambda d, t, label: None)
    scored = [(c, [q for q in c.questions if q.category in categories and q.evidence]) for c in conversations]
    total = sum(len(qs) for _, qs in scored) + len(conversations)
    done = 0
    results: list[QuestionResult] = []
    for conv, questions in scored:
        user = _ingest(
            lab,
            conv,
            unit,
            functools.partial(_indexing_progress, report_progress, done, total, conv.sample_id),
        )
        done += 1
        if not questions:
            continue
        vectors = lab.dataset_embed([q.question for q in questions])
        session_turns = {f"D{s.index}": [t.dia_id for t in s.turns] for s in conv.sessions}
        dia_of: tuple[object, list[str]] = (None, [])
        rows_of: dict[str, list[int]] = {}
        for q, vec in zip(questions, vectors):
            parts_of: dict[str, dict[str, float]] = {}
            related: dict[str, float] = {}
            cutoffs: dict[int, float] = {}
            if unit == "session":
                hits = lab.dataset_turns.search_sessions(
                    user, q.question, vec, len(session_turns), retriever, weights=weights
                )
                covers = [session_turns.get(h.session_id, []) for h in hits]
                ids = [h.session_id for h in hits]
                top = [
                    {
                        "rank": i + 1,
                        "id": h.session_id,
                        "score": round(h.score, 4),
                        "similarity": round(h.similarity, 4),
                        "covers": covers[i][:3] + (["…"] if len(covers[i]) > 3 else []),
                    }
                    for i, h in enumerate(hits[:keep_top])
                ]
                ranks = {
                    e: next((i + 1 for i, sid in enumerate(ids) if e in session_turns.get(sid, [])), None)
                    for e in q.evidence
                }
            else:
                cands, parts, found = lab.dataset_turns.explain(user, q.question, vec, retriever, weights=weights)
                if dia_of[0] is not cands:  # the turn id of each candidate, and its rows, once per index
                    dia_of = (cands, [c.id.split("|")[-1] for c in cands])
                    rows_of = rows_by_key(dia_of[1])
                order, ranks, parts_of, cutoffs = explain_ranks(parts, rows_of, q.evidence, ks)
                covers = [[dia_of[1][i]] for i in order[: max(max(ks), keep_top)]]
                top = [
                    {
                        "rank": r + 1,
                        "id": cands[i].id,
                        "text": cands[i].text,
                        "score": round(float(parts["score"][i]), 4),
                        "similarity": round(float(parts["cosine"][i]), 4),
                        "covers": covers[r],
                    }
                    for r, i in enumerate(order[:keep_top])
                ]
                if keep_top:
                    related = {w: round(c, 3) for w, c in sorted(found.items(), key=lambda wc: -wc[1])}
            recall = {k: recall_at_k(q.evidence, covers, k) or 0.0 for k in ks}
            results.append(
                QuestionResult(
                    conv.sample_id,
                    q.question,
                    q.answer,
                    q.category,
                    list(q.evidence),
                    recall,
                    ranks,
                    top,
                    parts_of,
                    cutoffs,
                    related,
                )  # fmt: skip
            )
            done += 1
            report_progress(done, total, f"{conv.sample_id}: questions")
    seconds = time.perf_counter() - start

    def table(rows: list[QuestionResult]) -> dict[int, float]:
        return {k: mean(r.recall[k] for r in rows) or 0.0 for k in ks}

    return EvalReport(
        unit=unit,
        retriever=retriever,
        k=ks,
        categories=categories,
        n_questions=len(results),
        overall=table(results),
        by_category={
            c: table([r for r in results if r.category == c])
            for c in categories
            if any(r.category == c for r in results)
        },
        by_conversation={
            c.sample_id: table([r for r in results if r.sample_id == c.sample_id])
            for c in conversations
            if any(r.sample_id == c.sample_id for r in results)
        },
        seconds=seconds,
        questions=results,
    )
