"""Fusing dense and keyword scores, with the neighbour boost for conversational turns.

Why this shape (measured on LoCoMo, see docs/recall.md): dense cosine and
BM25 miss different things, and z-scored weighted fusion keeps the size of
each signal's lead where rank fusion throws it away. A question is often
asked in one turn and answered in the next, so a turn also gains part of its
best same-session neighbour's score; and BM25 reads each turn together with
its neighbours for the same reason. Then a turn gains part of its whole
session's score: the answer usually sits in the session about the topic.
Last, two plain facts about the question: if it names one participant, what
that participant said gains; if it names a date, what was said around it
gains (both chosen leave-one-conversation-out, docs/recall.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import InputError
from .bm25 import BM25, tokenize
from .dates import date_ranges
from .related import RelatedWords

RETRIEVERS = ("dense", "bm25", "hybrid")
KEYWORD_MEMO_FLOATS = 2_000_000  # the BM25 scores an index keeps for questions asked again (16 MB at most)
DAYS_BEFORE, DAYS_AFTER = 1, 7  # the window around a named date (``Weights.date``)
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "Melanie's" names Melanie
# A question in the present perfect asks across time ("What has Melanie painted?"): its answers lie in many
# sessions, so no one session is favoured (``Weights.over_time``).
_OVER_TIME = re.compile(r"\b(?:has|have)\b", re.I)
# The parts of a turn's score (``CandidateIndex.components``) and of a session's (``group_components``), in
# the order they add up, each with the name a table of them shows: a page lists these, never its own copy.
TURN_PARTS = {
    "cosine": "cosine",
    "bm25": "BM25",
    "match": "match (fused + neighbour, 0-1)",
    "session": "+ session",
    "speaker": "+ speaker",
    "date": "+ date",
    "score": "score",
}
SESSION_PARTS = {
    "cosine": "best turn cosine",
    "bm25": "BM25 (whole session)",
    "match": "match (fused, 0-1)",
    "date": "+ date",
    "score": "score",
}


@dataclass(frozen=True)
class Weights:
    """The ranking's knobs; the defaults are what the app uses (docs/recall.md: how they were chosen)."""

    dense: float = 0.6  # the cosine's share in the fused score (BM25 has the rest)
    neighbour: float = 0.3  # how much of its best same-session neighbour's score a turn gains
    session: float = 0.5  # how much of its session's score a turn gains
    # A session's score: its best turn cosine's share (its BM25 has the rest). 0.35 was chosen by
    # leave-one-conversation-out on session recall: every fold's six other conversations picked it.
    group_dense: float = 0.35
    # What a turn gains when the query names its speaker and no other speaker of the conversation: a question
    # about one participant is answered by what that participant said. Chosen leave-one-conversation-out.
    speaker: float = 0.4
    # What a turn gains when the query names a date (a day, or a month: ``dates.py``) and the turn was said
    # from a day before it to a week after: what people tell, they mostly tell soon after it happens.
    date: float = 0.5
    # The share of the question asked in the named participant's own voice ("Where did I go?", ``voice.py``)
    # in the cosine of that participant's turns: they tell their life as "I", questions ask by name. Applied
    # where the cosines are computed (``TurnStore.components``). Chosen leave-one-conversation-out.
    voice: float = 0.7
    # The weight in the keyword score of the conversation's rare words related to the question's rare words
    # ("martial arts" → "taekwondo", ``related.py``), times their cosine. Chosen leave-one-conversation-out.
    related: float = 0.5
    # The share of the session prior that a question asked across time keeps ("What has Melanie painted?",
    # "has"/"have"): its answers lie in many sessions, not in the one that matches best. Chosen
    # leave-one-conversation-out.
    over_time: float = 0.0


WEIGHTS = Weights()
DENSE_WEIGHT = WEIGHTS.dense


@dataclass(frozen=True)
class Candidate:
    """One retrievable item: its own text, its group (session) and order within it."""

    id: str
    text: str
    group: str = ""
    position: int = 0
    speaker: str = ""  # who said it, where the candidates come from more than one speaker
    at: float = 0.0  # when it was said (unix seconds; 0: unknown)


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
        self.speakers = sorted({c.speaker for c in cands if c.speaker})
        self._speaker_of = np.array([self.speakers.index(c.speaker) if c.speaker else -1 for c in cands], dtype=int)
        # A speaker is named by any word of their name (two letters or more), whole and in any case.
        self._name_words = [{w for w in _WORD.findall(name.lower()) if len(w) > 1} for name in self.speakers]
        self._day = np.array([_ordinal_day(c.at) for c in cands], dtype=np.int64)
        self._keyword_memo: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray | None]] = {}

    @cached_property
    def related(self) -> RelatedWords:
        """The candidates' rare words, for the question's related words (``related.py``)."""
        return RelatedWords([c.text for c in self.cands])

    def name_words(self) -> set[str]:
        """Every word of every speaker's name (lower case): a name is not a word to find relatives of."""
        return set().union(*self._name_words) if self._name_words else set()

    def near_named_dates(self, query: str, asked_at: float = 0.0) -> np.ndarray | None:
        """Which candidates were said from a day before to a week after a date the query names (None: no date).

        ``asked_at`` (unix seconds; 0: unknown) places the dates it names relative to its day ("two weeks
        ago", ``dates.relative_ranges``).
        """
        today = _ordinal_day(asked_at)
        ranges = date_ranges(query, dt.date.fromordinal(today) if today else None) if (self._day > 0).any() else []
        if not ranges:
            return None
        near = np.zeros(len(self.cands), dtype=bool)
        for first, last in ranges:
            near |= (self._day >= first.toordinal() - DAYS_BEFORE) & (self._day <= last.toordinal() + DAYS_AFTER)
        return near

    def named_speaker(self, query: str) -> int | None:
        """The index of the one speaker the query names, or None (none, or several, or a single speaker)."""
        if len(self.speakers) < 2:
            return None
        words = set(_WORD.findall(query.lower()))
        named = [i for i, names in enumerate(self._name_words) if names & words]
        return named[0] if len(named) == 1 else None

    def said_by(self, speaker: int) -> np.ndarray:
        """Which candidates the speaker of that index (in ``self.speakers``) said."""
        return self._speaker_of == speaker

    def rank(self, query: str, dense: np.ndarray, retriever: str = "hybrid", weights: Weights = WEIGHTS) -> np.ndarray:
        """A score per candidate (higher is better). ``dense`` holds each candidate's cosine to the query."""
        return self.components(query, dense, retriever, weights)["score"]

    def components(
        self,
        query: str,
        dense: np.ndarray,
        retriever: str = "hybrid",
        weights: Weights = WEIGHTS,
        related: Mapping[str, float] | None = None,
        asked_at: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """Every part of each candidate's score, so a page can say why one ranked where it did.

        ``cosine`` and ``bm25`` are the raw signals (``bm25`` counts the ``related`` words, stem → cosine,
        at ``weights.related`` times their cosine, in the hybrid); ``match`` is their fusion with the
        neighbour boost, rescaled to 0-1; ``session``, ``speaker`` and ``date`` are what each boost added;
        ``score`` is the sum the ranking sorts by. A part the retriever does not use is zeros.
        """
        _check(retriever)
        n = len(self.cands)
        dense = np.asarray(dense, dtype=np.float64)
        zeros = np.zeros(n)
        parts = {"cosine": dense, "bm25": zeros, "match": zeros, "session": zeros, "speaker": zeros, "date": zeros}
        if not n or retriever == "dense":
            return {**parts, "match": dense, "score": dense}
        sparse = self._keywords(self.turn_bm25, query, related if retriever == "hybrid" else None, weights)
        fused = fuse(dense, sparse, retriever, weights.dense)
        parts["bm25"] = sparse
        if retriever == "bm25" or not self.use_neighbours:
            return {**parts, "match": fused, "score": fused}
        base = minmax(fused)
        prev, nxt = self.prev, self.next
        best_neighbour = np.maximum(np.where(prev >= 0, base[prev], 0.0), np.where(nxt >= 0, base[nxt], 0.0))
        parts["match"] = minmax(base + weights.neighbour * best_neighbour)
        prior = weights.session * (weights.over_time if _OVER_TIME.search(query) else 1.0)
        if len(self.groups) > 1 and prior:
            # A turn in the session that best matches the question is more likely to hold the answer.
            session = self.rank_groups(query, dense, "hybrid", weights, related, asked_at)
            parts["session"] = prior * minmax(np.array([session[g] for g in self.groups]))[self._group_of]
        named = self.named_speaker(query) if weights.speaker else None
        if named is not None:
            parts["speaker"] = weights.speaker * self.said_by(named)
        near = self.near_named_dates(query, asked_at) if weights.date else None
        if near is not None:
            parts["date"] = weights.date * near
        parts["score"] = parts["match"] + parts["session"] + parts["speaker"] + parts["date"]
        return parts

    def _keywords(self, bm25: BM25, query: str, related: Mapping[str, float] | None, weights: Weights) -> np.ndarray:
        """The query's BM25 scores, plus the related words' (each at its cosine) times ``weights.related``.

        The two parts are kept for the last questions asked (bounded), as the leave-one-conversation-out
        grid asks each question again under every setting of the weights.
        """
        tokens = tokenize(query)
        extra = {t: c for t, c in (related or {}).items() if t not in tokens} if weights.related else {}
        key = (id(bm25), tuple(tokens), tuple(sorted(extra.items())))
        known = self._keyword_memo.get(key)
        if known is None:
            known = (bm25.scores(tokens), bm25.scores([], extra) if extra else None)
            if len(self._keyword_memo) >= max(16, KEYWORD_MEMO_FLOATS // max(bm25.n, 1)):
                self._keyword_memo.clear()
            self._keyword_memo[key] = known
        plain, extra_scores = known
        return plain if extra_scores is None else plain + weights.related * extra_scores

    def best_per_group(self, dense: np.ndarray) -> np.ndarray:
        """Each group's highest candidate cosine, in the order of ``self.groups``."""
        best = np.full(len(self.groups), -1.0)
        np.maximum.at(best, self._group_of, np.asarray(dense, dtype=np.float64))
        return best

    def rank_groups(
        self,
        query: str,
        dense: np.ndarray,
        retriever: str = "hybrid",
        weights: Weights = WEIGHTS,
        related: Mapping[str, float] | None = None,
        asked_at: float = 0.0,
    ) -> dict[str, float]:
        """A score per group (session): BM25 over the group's whole text (with the ``related`` words, as in
        ``components``), fused with its best candidate cosine, plus ``weights.date`` for a session said near
        a date the query names."""
        scores = self.group_components(query, dense, retriever, weights, related, asked_at)["score"]
        return {g: float(s) for g, s in zip(self.groups, scores)}

    def group_components(
        self,
        query: str,
        dense: np.ndarray,
        retriever: str = "hybrid",
        weights: Weights = WEIGHTS,
        related: Mapping[str, float] | None = None,
        asked_at: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """Every part of each group's score, in the order of ``self.groups`` (``rank_groups`` sorts by it).

        ``cosine``: the group's best candidate cosine; ``bm25``: its whole text's keyword score; ``match``:
        the two fused (each min-max scaled); ``date``: what a named date added; ``score``: their sum.
        """
        _check(retriever)
        n = len(self.groups)
        zeros = np.zeros(n)
        best = self.best_per_group(dense)
        parts = {"cosine": best, "bm25": zeros, "match": best, "date": zeros}
        if not n:
            return {**parts, "score": zeros}
        if retriever != "dense":
            sparse = self._keywords(self.group_bm25, query, related if retriever == "hybrid" else None, weights)
            mix = weights.group_dense
            parts["bm25"] = sparse
            parts["match"] = sparse if retriever == "bm25" else mix * minmax(best) + (1 - mix) * minmax(sparse)
        near = self.near_named_dates(query, asked_at) if retriever == "hybrid" and weights.date else None
        if near is not None:  # a session is near a named date when any of its turns is
            parts["date"] = weights.date * (np.bincount(self._group_of[near], minlength=n) > 0)
        parts["score"] = parts["match"] + parts["date"]
        return parts


def _ordinal_day(at: float) -> int:
    """The local calendar day of a unix time, as an ordinal (0: unknown or unplaceable)."""
    try:
        return dt.date.fromtimestamp(at).toordinal() if at > 0 else 0
    except (OverflowError, OSError, ValueError):
        return 0


def _check(retriever: str) -> None:
    if retriever not in RETRIEVERS:
        raise InputError(f"unknown retriever {retriever!r}; choose one of {', '.join(RETRIEVERS)}")


def rank_candidates(
    query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid", use_neighbours: bool = True
) -> np.ndarray:
    """One-off ranking of a candidate set (builds the index; reuse a CandidateIndex for many queries)."""
    return CandidateIndex(cands, use_neighbours).rank(query, dense, retriever)


def rank_groups(query: str, dense: np.ndarray, cands: list[Candidate], retriever: str = "hybrid") -> dict[str, float]:
    return CandidateIndex(cands).rank_groups(query, dense, retriever)
