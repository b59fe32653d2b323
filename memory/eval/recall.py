"""Recall@k as the LoCoMo paper defines it, and LongMemEval's recall_any, recall_all and NDCG.

LoCoMo, for one question: the fraction of its evidence turn ids found among
the top-k retrieved items, where a retrieved session covers every turn in
it. Questions with no evidence are not scored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence


def recall_at_k(evidence: Sequence[str], retrieved: Sequence[Iterable[str]], k: int) -> float | None:
    """``retrieved`` lists, best first, the set of turn ids each retrieved item covers."""
    if not evidence:
        return None
    covered: set[str] = set()
    for item in retrieved[:k]:
        covered.update(item)
    return sum(1 for e in set(evidence) if e in covered) / len(set(evidence))


def why_evidence(rank: int | None, k: int, score: float | None = None, cutoff: float | None = None) -> str:
    """Why an evidence item was or was not among the top ``k``: every item of a history is stored, so a miss is
    its rank (with its score against the k-th item's, when known), or it was never indexed."""
    if rank is None:
        return "not stored (not in the indexed turns)"
    if rank <= k:
        return f"retrieved (rank {rank} ≤ {k})"
    gap = f" (score {score:.3f} against {cutoff:.3f} at rank {k})" if score is not None and cutoff is not None else ""
    return f"ranked below the cut-off: {rank} > k = {k}{gap}"


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


# LongMemEval's retrieval measures, as its own scripts compute them (xiaowu0162/LongMemEval,
# src/retrieval/eval_utils.py: ``evaluate_retrieval`` and ``ndcg``), on ids ranked best first.


def recall_any(evidence: Collection[str], ranked: Sequence[str], k: int) -> float:
    """1.0 when at least one evidence id is among the top ``k`` (0.0 with no evidence, as the benchmark's any())."""
    top = set(ranked[:k])
    return float(any(e in top for e in evidence))


def recall_all(evidence: Collection[str], ranked: Sequence[str], k: int) -> float:
    """1.0 when every evidence id is among the top ``k``."""
    top = set(ranked[:k])
    return float(all(e in top for e in evidence))


def _dcg(relevances: Sequence[float], k: int) -> float:
    """The benchmark's DCG: the first item undiscounted, the item at 0-based position i ≥ 1 divided by log2(i + 1).

    (So positions 0 and 1 both count fully: it is not the rel/log2(i + 2) some reimplementations use.)
    """
    kept = list(relevances[:k])
    return sum(r if i == 0 else r / math.log2(i + 1) for i, r in enumerate(kept))


def ndcg(evidence: Collection[str], ranked: Sequence[str], k: int) -> float:
    """NDCG@k with binary relevance, against the ideal order of the whole ranked list (0.0 with no evidence)."""
    wanted = set(evidence)
    relevances = [1.0 if r in wanted else 0.0 for r in ranked]
    ideal = _dcg(sorted(relevances, reverse=True), k)
    return _dcg(relevances, k) / ideal if ideal else 0.0
