"""Near-duplicate facts, listed side by side for a person to merge: pairs too close to be two memories, not close
enough for the store to have merged them when they were said (a hand edit, an import, two wordings).

Why a listing and not an automatic merge: below the store's duplicate
threshold two facts can differ in what matters ("three cats" / "two cats");
a person picks which wording stays. Read from the fact index (the user's
unit vectors already in the process): no Chroma read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..keys import validate_id
from ..stores.fact_store import FactEvent, FactStore

# Listed from this cosine up. Not fitted: the MiniLM cosine of two paraphrases is usually above 0.7
# (``supersession.py``); from 0.8 a pair is most likely one memory said twice; 0.9 is the store's own merge.
NEAR = 0.8
BLOCK = 512  # rows compared at once: a block's similarities are BLOCK x n floats


@dataclass(frozen=True)
class NearPair:
    left_id: str
    left: str
    right_id: str
    right: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def near_duplicates(facts: FactStore, user_id: str, threshold: float = NEAR, limit: int = 50) -> list[NearPair]:
    """The user's current facts closest to each other, most similar first (at most ``limit`` pairs)."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"the similarity threshold must be above 0 and at most 1, not {threshold}")
    with facts.index.lock:
        current = facts.index.current(validate_id("user", user_id))
        rows = current.rows()
        if len(rows) < 2:
            return []
        vectors = np.asarray(current.vectors[rows], dtype=np.float32)
        found: list[tuple[float, int, int]] = []
        for start in range(0, len(rows), BLOCK):
            sims = vectors[start : start + BLOCK] @ vectors.T
            for i, j in zip(*np.nonzero(sims >= threshold)):
                a, b = start + int(i), int(j)
                if a < b:
                    found.append((float(sims[i, j]), a, b))
        found.sort(key=lambda t: -t[0])
        return [
            NearPair(
                current.ids[rows[a]], current.texts[rows[a]], current.ids[rows[b]], current.texts[rows[b]], round(s, 4)
            )
            for s, a, b in found[:limit]
        ]


def merge(facts: FactStore, user_id: str, keep_id: str, drop_id: str, text: str | None = None) -> list[FactEvent]:
    """Merge two facts into ``keep_id``: it takes ``text`` when given (an EDIT), and ``drop_id`` is deleted, its
    DELETE naming the fact it was merged into (its text and where it came from stay in its history)."""
    if keep_id == drop_id:
        raise InputError("a fact cannot be merged with itself: pick two facts")
    kept = {r.id for r in facts.all(validate_id("user", user_id), superseded=False) if r.id in (keep_id, drop_id)}
    missing = [i for i in (keep_id, drop_id) if i not in kept]
    if missing:
        raise InputError(f"user {user_id!r} has no current fact {missing[0]!r} (deleted or merged meanwhile?)")
    events: list[FactEvent] = []
    if text is not None:
        edited = facts.edit(user_id, keep_id, text)
        if edited is not None:
            events.append(edited)
    if facts.delete(user_id, drop_id, job=f"merge-into-{keep_id}"):
        events.append(facts.history(user_id).items[-1])
    return events
