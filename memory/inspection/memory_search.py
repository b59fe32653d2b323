"""One query over a user's whole long-term memory (facts and episodes), ranked on one scale.

The Vector memory page asks "what is nearest to this?" across both stores;
cosine similarity is the scale they share. The facts strategy ranks facts by
BM25 fused with the dense score, so each fact also carries its rank there:
the difference between the two orders is often why a fact was (not) used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.vector_store import Hit
from ..stores.episode_store import EpisodeStore
from ..stores.fact_store import FactStore


@dataclass(frozen=True)
class MemoryHit:
    kind: str  # "fact" or "episode"
    hit: Hit
    strategy_rank: int | None  # the fact's rank in the facts strategy; None for an episode


def search_memories(
    facts: FactStore, episodes: EpisodeStore, user_id: str, query: str, query_vector: np.ndarray, k: int
) -> list[MemoryHit]:
    """The top ``k`` facts and episodes by cosine similarity to the query."""
    fact_hits = facts.search(user_id, query_vector, k, query_text=query)
    ranks = {h.id: i + 1 for i, (h, _) in enumerate(fact_hits)}
    merged = [MemoryHit("fact", h, ranks[h.id]) for h, _ in fact_hits]
    merged += [MemoryHit("episode", h, None) for h in episodes.search(user_id, query_vector, k)]
    return sorted(merged, key=lambda m: -m.hit.similarity)[:k]
