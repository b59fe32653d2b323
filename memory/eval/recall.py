"""Recall@k as the LoCoMo paper defines it.

For one question: the fraction of its evidence turn ids found among the
top-k retrieved items, where a retrieved session covers every turn in it.
Questions with no evidence are not scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def recall_at_k(evidence: Sequence[str], retrieved: Sequence[Iterable[str]], k: int) -> float | None:
    """``retrieved`` lists, best first, the set of turn ids each retrieved item covers."""
    if not evidence:
        return None
    covered: set[str] = set()
    for item in retrieved[:k]:
        covered.update(item)
    return sum(1 for e in set(evidence) if e in covered) / len(set(evidence))


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
