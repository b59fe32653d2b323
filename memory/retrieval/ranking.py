"""Fusing dense and keyword scores, with the neighbour boost for conversational turns.

Why this shape (measured on LoCoMo, see docs/recall.md): dense cosine and
BM25 miss different things, and z-scored weighted fusion keeps the size of
each signal's lead where rank fusion throws it away. A question is often
asked in one turn and answered in the next, so a turn also gains part of its
best same-session neighbour's score; and BM25 reads each turn together with
its neighbours for the same reason. Finally a turn gains part of its whole
session's score: the answer usually sits in the session about the topic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bm25 import BM25, tokenize

RETRIEVERS = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class Weights:
    """The ranking's knobs; the defaults are what the app uses (docs/recall.md: how they were chosen)."""

    dense: float = 0.6  # the cosine's share in the fused score (BM25 has the rest)
    neighbour: float = 0.3  # how much of its best same-session neighbour's score a turn gains
    session: float = 0.5  # how much of its session's score a turn gains
    # A session's score: its best turn cosine's share (its BM25 has the rest). 0.35 was chosen by
    # leave-one-conversation-out on session recall: every fold's six other conversations picked it.
    group_dense: float = 0.35


WEIGHTS = Weights()
DENSE_WEIGHT = WEIGHTS.dense


@dataclass(frozen=True)
class Candidate:
    """One retrievable item: its own text, its group (session) and order within it."""

    id: str
    text: str
    group: str = ""
    position: int = 0


def zscore(x: np.ndarray) -> np.ndarray:
    std = float(x.std())
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def fuse(
    dense: np.ndarray, sparse: np.ndarray, retriever: str = "hybrid", dense_weight: float = DENSE_WEIGHT
) -> np.ndarray:
    """One score per candidate from its cosine and its BM25 score: z-scored, weighted (see the module doc)."""
    _check(retriever)
    if retriever == "dense":
        return np.asarray(dense, dtype=np.float64)
    if retriever == "bm25":
        return sparse
    return dense_weight * zscore(np.asarray(dense, dtype=np.float64)) + (1 - dense_weight) * zscore(sparse)


def _neighbours(cands: list[Candidate]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous and next candidate in the same group (-1 where none)."""
    order = sorted(range(len(cands)), key=lambda i: (cands[i].group, cands[i].position))
    prev = np.full(len(cands), -1)
    nxt = np.full(len(cands), -1)
    for a, b in zip(order, order[1:]):
        if cands[a].group == cands[b].group and cands[a].group:
            nxt[a], prev[b] = b, a
    return prev, nxt


class CandidateIndex:
    """Keyword indexes over a fixed candidate set, built once and reused for every query."""

    def __init__(self, cands: list[Candidate], use_neighbours: bool = True) -> None:
        self.cands = cands
        n = len(cands)
        self.prev, self.next = _neighbours(cands) if use_neighbours else (np.full(n, -1), np.full(n, -1))
        self.use_neighbours = use_neighbours
        tokens = [tokenize(c.text) for c in cands]
        contexts = [
            (tokens[p] if p >= 0 else []) + tokens[i] + (tokens[q] if q >= 0 else [])
            for i, (p, q) in enumerate(zip(self.prev, self.next))
        ]
        self.turn_bm25 = BM25(contexts)
        self.groups = list(dict.fromkeys(c.group for c in cands))
        self._group_of = np.array([self.groups.index(c.group) for c in cands]) if n else np.zeros(0, dtype=int)
        group_docs: list[list[str]] = [[] for _ in self.groups]
        for gi, toks in zip(self._group_of, tokens):
            group_docs[gi].extend(toks)
        self.group_bm25 = BM25(group_docs)

    def rank(self, query: str, dense: np.ndarray, retriever: str = "hybrid", weights: Weights = WEIGHTS) -> np.ndarray:
        """A score per candidate (higher is better). ``dense`` holds each candidate's cosine to the query."""
        _check(retriever)
        if not self.cands:
            return np.zeros(0)
        dense = np.asarray(dense, dtype=np.float64)
        if retriever == "dense":
            return dense
        sparse = self.turn_bm25.scores(tokenize(query))
        fused = fuse(dense, sparse, retriever, weights.dense)
        if retriever == "bm25" or not self.use_neighbours:
            return fused
        base = minmax(fused)
        prev, nxt = self.prev, self.next
        best_neighbour = np.maximum(np.where(prev >= 0, base[prev], 0.0), np.where(nxt >= 0, base[nxt], 0.0))
        scores = minmax(base + weights.neighbour * best_neighbour)
        if len(self.groups) > 1:
            # A turn in the session that best matches the question is more likely to hold the answer.
            session = self.rank_groups(query, dense, "hybrid", weights)
            prior = minmax(np.array([session[g] for g in self.groups]))[self._group_of]
            scores = scores + weights.session * prior
        return scores

    def best_per_group(self, dense: np.ndarray) -> np.ndarray:
        """Each group's highest candidate cosine, in the order of ``self.groups``."""
        best = np.full(len(self.groups), -1.0)
        np.maximum.at(best, self._group_of, np.asarray(dense, dtype=np.float64))
        return best

    def rank_groups(
        self, query: str, dense: np.ndarray, retriever: str = "hybrid", weights: Weights = WEIGHTS
    ) -> dict[str, float]:
        """A score per group (session): BM25 over the group's whole text, fused with its best candidate cosine."""
        _check(retriever)
        if not self.groups:
            return {}
        best = self.best_per_group(dense)
        if retriever == "dense":
            scores = best
        else:
            sparse = self.group_bm25.scores(tokenize(query))
            mix = weights.group_dense
            scores = sparse if retriever == "bm25" else mix * minmax(best) + (1 - mix) * minmax(sparse)
        return {g: float(s) for g, s in zip(self.groups, scores)}


def _check(retriever: str) -> None:
    if retriever not in RETRIEVERS:
        raise ValueError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")


def rank_candidates(
    query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid", use_neighbours: bool = True
) -> np.ndarray:
    """One-off ranking of a candidate set (builds the index; reuse a CandidateIndex for many queries)."""
    return CandidateIndex(cands, use_neighbours).rank(query, dense, retriever)


def rank_groups(query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid") -> dict[str, float]:
    return CandidateIndex(cands).rank_groups(query, dense, retriever)
