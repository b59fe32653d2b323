"""Okapi BM25 with Porter stemming and English stopwords removed."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import snowballstemmer

STOPWORDS = frozenset(
    """
a about above after again against all am an and any are aren't as at be because been before being below between
both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from
further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his
how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor
not of off on once only or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's these they they'd
they'll they're they've this those through to too under until up very was wasn't we we'd we'll we're we've were
weren't what what's when when's where where's which while who who's whom why why's with won't would wouldn't you
you'd you'll you're you've your yours yourself yourselves s t just also really yeah oh hey hi
""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_stemmer = snowballstemmer.stemmer("porter")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def tokenize(text: str) -> list[str]:
    return [_stem(w.split("'")[0]) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25:
    def __init__(self, documents: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.n = len(documents)
        self.lengths = np.array([len(d) for d in documents], dtype=np.float64)
        self.avg = float(self.lengths.mean()) if self.n else 0.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, doc in enumerate(documents):
            for term, tf in Counter(doc).items():
                self.postings.setdefault(term, []).append((i, tf))
        self.idf = {t: math.log(1 + (self.n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def scores(self, query: list[str], extra: Mapping[str, float] | None = None) -> np.ndarray:
        """Each document's score for the query's terms (each once), plus ``extra`` terms at their weight."""
        out = np.zeros(self.n)
        if not self.n:
            return out
        norm = self.k1 * (1 - self.b + self.b * self.lengths / (self.avg or 1.0))
        weighted = dict(extra or {})
        weighted.update(dict.fromkeys(query, 1.0))
        for term, weight in weighted.items():
            for i, tf in self.postings.get(term, ()):
                out[i] += weight * self.idf[term] * tf * (self.k1 + 1) / (tf + norm[i])
        return out


class LiveBM25:
    """BM25 over a set of documents that changes: add, replace or remove one without rebuilding the rest.

    Scores equal ``BM25``'s over the live documents (same k1, b, idf and
    length norm); rows keep their number until ``compact`` renumbers them.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[int, int]] = {}
        self.lengths = np.zeros(0, dtype=np.float64)
        self.docs: list[Counter[str] | None] = []
        self.live = 0
        self.total = 0.0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a term's posting as arrays, until it changes

    def set(self, row: int, tokens: list[str]) -> None:
        """Make ``row`` hold ``tokens`` (a new row must be the next number)."""
        if row < len(self.docs):
            self.remove(row)
        else:
            assert row == len(self.docs), "rows are added in order"
            self.docs.append(None)
            self.lengths = np.append(self.lengths, 0.0)
        counts = Counter(tokens)
        self.docs[row] = counts
        for term, tf in counts.items():
            self.postings.setdefault(term, {})[row] = tf
            self._arrays.pop(term, None)
        self.lengths[row] = len(tokens)
        self.live += 1
        self.total += len(tokens)

    def remove(self, row: int) -> None:
        counts = self.docs[row]
        if counts is None:
            return
        for term in counts:
            posting = self.postings[term]
            del posting[row]
            self._arrays.pop(term, None)
            if not posting:
                del self.postings[term]
        self.docs[row] = None
        self.live -= 1
        self.total -= self.lengths[row]
        self.lengths[row] = 0.0

    def scores(self, query: list[str]) -> np.ndarray:
        """A score per row (removed rows score 0)."""
        out = np.zeros(len(self.docs))
        if not self.live:
            return out
        scale = self.b / ((self.total / self.live) or 1.0)
        for term in set(query):
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (self.live - len(posting) + 0.5) / (len(posting) + 0.5))
            rows, tfs = self._posting_arrays(term, posting)
            norm = self.k1 * (1 - self.b + scale * self.lengths[rows])  # only the rows that hold the term
            out[rows] += idf * tfs * (self.k1 + 1) / (tfs + norm)
        return out

    def _posting_arrays(self, term: str, posting: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The term's rows and counts as arrays, built once per change of the term (a query reuses them)."""
        arrays = self._arrays.get(term)
        if arrays is None:
            rows = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            arrays = self._arrays[term] = (rows, tfs)
        return arrays
