"""Which of a user's stored statements a new statement supersedes: the same thing, said again as it is now.

Why: people say how things are now, not which fact they are replacing
("I moved to Lisbon", "we have four bikes now"). A newer statement takes
the place of an older one when either

- they share a slot the rules read ("location", "employer", "trip:kyoto"),
- the newer one takes back a value the older holds ("I left Spotify", "we
  switched from Postgres to MySQL"), or
- the newer one says something changed ("now", "moved", "switched", "no
  longer"...: ``statements.CHANGE_CUE``) and the two are close: similar in
  meaning (cosine) and sharing a content word that is not common in the
  user's statements (what they are both about).

The older statement is not deleted: it stays in the store marked with the
statement that superseded it (out of every search), and the fact log says
old → new.
"""

from __future__ import annotations

import re

import numpy as np

from ..llm.base import ExtractedFact
from ..llm.rules import whole_word
from ..retrieval.bm25 import STOPWORDS, _stem
from .fact_index import UserFacts, slots_of

# Two statements are about the same thing at this cosine or above (and share a content word). Not fitted: the
# MiniLM cosine of two paraphrases is usually above 0.7 and of two statements about one subject above 0.5.
CLOSE_COSINE = 0.55
# A statement this close to an older one, with another number or name in it, says what changed (the fact store's
# duplicate threshold: closer than this, a statement is the same one said again unless its details changed).
REWORDED = 0.9
# A shared word counts when at most this share of the user's statements use it ("like", "really" do not), or at
# most ``FEW`` of them: among a handful of statements, a word two of them share is what they are about, not common.
COMMON_SHARE = 0.2
FEW = 2
_LETTERS = re.compile(r"[a-z0-9]+")
_PRONOUNS = frozenset({"you", "your", "yours", "yourself", "i", "my", "me", "we", "our"})


def content_stems(text: str) -> set[str]:
    return {_stem(w) for w in _LETTERS.findall(text.lower()) if w not in STOPWORDS and w not in _PRONOUNS}


_DETAIL = re.compile(
    r"\d[\d,.:/%]*|(?<=\w )[A-Z][\w'\-]*|\b(?i:an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|twenty|thirty|forty|fifty|hundred|thousand|dozen|half|once|twice|couple|few|several)\b"
)


def details(text: str) -> set[str]:
    """What tells two near-identical statements apart: their numbers (in digits or words: "an hour" is not "two
    hours") and their names (capitalised words)."""
    return {d.rstrip(".,").replace(",", "").lower() for d in _DETAIL.findall(text)}


def same_details(a: str, b: str) -> bool:
    return details(a) == details(b)


def said_at(meta: dict[str, object]) -> float:
    """When a fact was said (its message's time), else when it was stored."""
    for key in ("said_at", "created_at"):
        value = meta.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0


def superseded_rows(
    current: UserFacts,
    fact: ExtractedFact,
    rows: np.ndarray,
    cosines: np.ndarray,
    when: float,
    reworded: float = REWORDED,
) -> list[int]:
    """Rows of the user's live facts that ``fact`` (said at ``when``) takes the place of; only older ones."""
    found: set[int] = set()
    taken_from = {slot for slot, _ in fact.takes_back}
    for slot in slots_of(fact.slot):
        if slot not in taken_from:  # "I no longer live in Berlin" fills the slot, but only takes back Berlin
            found.update(current.in_slot(slot))
    for slot, value in fact.takes_back:
        pattern = whole_word(value)
        candidates = current.in_slot(slot) if slot else [int(r) for r in rows]
        found.update(r for r in candidates if pattern.search(current.texts[r]))
    if fact.change_cue and len(rows):
        found.update(_close(current, fact.text, rows, cosines))
    # The same statement with another number or name ("pre-approved for $350,000" → "$400,000") is an update.
    found.update(
        int(r) for r, c in zip(rows, cosines) if c >= reworded and not same_details(fact.text, current.texts[int(r)])
    )
    return sorted(r for r in found if said_at(current.metas[r]) <= when)


def _close(current: UserFacts, text: str, rows: np.ndarray, cosines: np.ndarray) -> list[int]:
    """Live rows close to ``text``: cosine at least ``CLOSE_COSINE`` and a shared, not common, content word."""
    near = [(int(r), float(c)) for r, c in zip(rows, cosines) if c >= CLOSE_COSINE]
    if not near:
        return []
    mine = content_stems(text)
    limit = max(float(FEW), COMMON_SHARE * len(rows))
    used_in: dict[str, int] = {}
    for r in rows:
        for stem in content_stems(current.texts[int(r)]) & mine:
            used_in[stem] = used_in.get(stem, 0) + 1
    rare = {stem for stem, n in used_in.items() if n <= limit}
    return [r for r, _ in near if content_stems(current.texts[r]) & rare]
