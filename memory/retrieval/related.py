"""Related words: a question's rare words, answered in the conversation's own rare words for the same thing.

Why (docs/recall.md): "What martial arts has John done?" is answered by
"I'm off to do some taekwondo!". The two share no word, and one vector for
the whole turn dilutes the one word that matches. So each rare content word
of the question is compared, as a word of its own (the same MiniLM), with
the rare words the candidates use; the close ones join the keyword query at
their cosine times ``Weights.related``. Only rare words count, on both
sides: a common word ("now", "week", "maybe") is near too many others to
tell anything, and the question's rare words are the ones BM25 cannot
match, often because the conversation never uses them ("destress",
"partake", "martial").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection

import numpy as np

from .bm25 import STOPWORDS, _stem

THRESHOLD = 0.55  # a word vector's cosine to the question's word, at least
NEAREST = 8  # of the conversation's words nearest to one question word, those above the threshold count
RARE_SHARE = 0.01  # rare: used in at most 1% of the candidates (and in at least one word's worth: one)
# The rarest words kept, at most: each needs a vector, and a process embeds a user's words once (about 0.7 ms
# a word), on their first question after it starts; a conversation of 700 turns has about 1,500.
MAX_WORDS = 5000
MIN_LETTERS = 3
MEMO = 4096  # questions whose related words an index keeps (the eval's grid asks each again per setting)
_LETTERS = re.compile(r"[a-z]+")

EmbedWords = Callable[[list[str]], np.ndarray]


def content_words(text: str) -> list[str]:
    """The words of ``text`` worth comparing: letters only, three or more, not stopwords, each once."""
    words = (w for w in _LETTERS.findall(text.lower()) if len(w) >= MIN_LETTERS and w not in STOPWORDS)
    return list(dict.fromkeys(words))


class RelatedWords:
    """The rare words of a candidate set, and the question words' neighbours among them.

    The word vectors are fetched on the first question (``terms``), through the caller's embedder, so an
    index that is never asked costs only the word count.
    """

    def __init__(self, texts: list[str]) -> None:
        used_in: Counter[str] = Counter()  # stem -> how many texts use it
        surface: dict[str, None] = {}
        for text in texts:
            words = content_words(text)
            surface.update(dict.fromkeys(words))
            used_in.update({_stem(w) for w in words})
        self.used_in = used_in
        self.limit = max(1, int(RARE_SHARE * len(texts)))
        rare = [w for w in surface if used_in[_stem(w)] <= self.limit]
        if len(rare) > MAX_WORDS:
            rare = sorted(rare, key=lambda w: used_in[_stem(w)])[:MAX_WORDS]  # (stable: first said first)
        self.words = rare
        self.stems = [_stem(w) for w in self.words]
        self.word_of: dict[str, str] = {}  # each stem as the candidates first spell it ("famili" → "family")
        for word, stem in zip(self.words, self.stems):
            self.word_of.setdefault(stem, word)
        self.vectors: np.ndarray | None = None
        self._asked: dict[tuple[str, ...], dict[str, float]] = {}  # the last questions' terms (bounded)

    def spelled(self, stems: dict[str, float]) -> dict[str, float]:
        """The same terms under a word the candidates use (for people: "famili" reads as "family")."""
        return {self.word_of.get(stem, stem): cosine for stem, cosine in stems.items()}

    def rare(self, word: str) -> bool:
        return self.used_in.get(_stem(word), 0) <= self.limit

    def sources(self, query: str, skip: Collection[str] = ()) -> list[str]:
        """The question's words to find relatives for: its rare content words, less ``skip`` (names)."""
        return [w for w in content_words(query) if w not in skip and self.rare(w)]

    def terms(self, query: str, embed_words: EmbedWords, skip: Collection[str] = ()) -> dict[str, float]:
        """Stems of the candidates' rare words related to the question's rare words, with their cosine.

        Empty when the question has no rare word or the candidates none. A word the question already
        uses (by stem) is not added again.
        """
        sources = self.sources(query, skip)
        if not sources or not self.words:
            return {}
        key = (query, *sorted(skip))
        if key in self._asked:
            return dict(self._asked[key])
        if len(self._asked) >= MEMO:
            self._asked.clear()
        self._asked[key] = found = self._terms(query, sources, embed_words)
        return dict(found)

    def _terms(self, query: str, sources: list[str], embed_words: EmbedWords) -> dict[str, float]:
        if self.vectors is None:
            self.vectors = np.asarray(embed_words(self.words), dtype=np.float32)
        asked = {_stem(w) for w in content_words(query)}
        found: dict[str, float] = {}
        sims = np.asarray(embed_words(sources), dtype=np.float32) @ self.vectors.T
        for row in sims:
            for j in np.argsort(-row)[:NEAREST]:
                stem, sim = self.stems[j], float(row[j])
                if sim >= THRESHOLD and stem not in asked and sim > found.get(stem, 0.0):
                    found[stem] = sim
        return found
