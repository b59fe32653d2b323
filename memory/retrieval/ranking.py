"""Fusing dense and keyword scores, with the neighbour boost for conversational turns.

Why this shape (measured on LoCoMo, see docs/recall.md): dense cosine and
BM25 miss different things, and z-scored weighted fusion keeps the size of
each signal's lead where rank fusion throws it away. A question is often
asked in one turn and answered in the next, so a turn also gains part of its
best same-session neighbour's score; and BM25 reads each turn together with
its neighbours for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bm25 import BM25, tokenize

RETRIEVERS = ("dense", "bm25", "hybrid")
DENSE_WEIGHT = 0.6
NEIGHBOUR_WEIGHT = 0.3


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


def _neighbours(cands: list[Candidate]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous and next candidate in the same group (-1 where none)."""
    order = sorted(range(len(cands)), key=lambda i: (cands[i].group, cands[i].position))
    prev = np.full(len(cands), -1)
    nxt = np.full(len(cands), -1)
    for a, b in zip(order, order[1:]):
        if cands[a].group == cands[b].group and cands[a].group:
            nxt[a], prev[b] = b, a
    return prev, nxt


def rank_candidates(query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid",
                    use_neighbours: bool = True) -> np.ndarray:
    """A score per candidate (higher is better). ``dense`` holds each candidate's cosine to the query."""
    if retriever not in RETRIEVERS:
        raise ValueError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
    if not cands:
        return np.zeros(0)
    if retriever == "dense":
        return np.asarray(dense, dtype=np.float64)
    prev, nxt = _neighbours(cands) if use_neighbours else (np.full(len(cands), -1), np.full(len(cands), -1))
    texts = [
        " ".join(t for t in (cands[p].text if p >= 0 else "", c.text, cands[n].text if n >= 0 else "") if t)
        for c, p, n in zip(cands, prev, nxt)
    ]
    sparse = BM25([tokenize(t) for t in texts]).scores(tokenize(query))
    if retriever == "bm25":
        return sparse
    fused = DENSE_WEIGHT * zscore(np.asarray(dense, dtype=np.float64)) + (1 - DENSE_WEIGHT) * zscore(sparse)
    if not use_neighbours:
        return fused
    base = minmax(fused)
    best_neighbour = np.maximum(np.where(prev >= 0, base[prev], 0.0), np.where(nxt >= 0, base[nxt], 0.0))
    return base + NEIGHBOUR_WEIGHT * best_neighbour


def rank_groups(query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid") -> dict[str, float]:
    """A score per group (session): BM25 over the group's whole text, fused with its best candidate cosine."""
    if retriever not in RETRIEVERS:
        raise ValueError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")
    groups = list(dict.fromkeys(c.group for c in cands))
    if not groups:
        return {}
    index = {g: i for i, g in enumerate(groups)}
    best = np.full(len(groups), -1.0)
    docs: list[list[str]] = [[] for _ in groups]
    for c, d in zip(cands, dense):
        gi = index[c.group]
        best[gi] = max(best[gi], float(d))
        docs[gi].extend(tokenize(c.text))
    if retriever == "dense":
        scores = best
    else:
        sparse = BM25(docs).scores(tokenize(query))
        scores = sparse if retriever == "bm25" else 0.5 * minmax(best) + 0.5 * minmax(sparse)
    return {g: float(s) for g, s in zip(groups, scores)}
