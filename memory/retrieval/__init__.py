"""Ranking shared by the app's strategies and the recall benchmark: BM25, dense, fusion, neighbours.

One copy of the method, so the numbers the Recall Lab reports are the
numbers the facts, episodic and hybrid strategies get.
"""

from .bm25 import BM25, LiveBM25, tokenize
from .ranking import RETRIEVERS, WEIGHTS, Candidate, CandidateIndex, Weights, fuse, rank_candidates, rank_groups

__all__ = [
    "BM25",
    "RETRIEVERS",
    "WEIGHTS",
    "Weights",
    "Candidate",
    "CandidateIndex",
    "LiveBM25",
    "fuse",
    "rank_candidates",
    "rank_groups",
    "tokenize",
]
