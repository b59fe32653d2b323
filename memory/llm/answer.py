"""Answering a question from the context a strategy assembled, without a model: rank, quote, never gate.

The offline provider's replies must agree with the trace: whatever the
context holds, it finds; what it does not hold, it says it does not have.
The method is general, and the same as retrieval's:

1. **Quotes** (``quotes.py``): every memory in the context as sentences and
   clauses in the second person, with their item, time and speaker; the
   user's questions and requests only as context.
2. **Ranking.** Each clause of the question ("What's my name and where do I
   live?" is two; ``question.py``) ranks the quotes by the hybrid ranking of
   ``memory/retrieval`` (BM25 and cosine fused, the neighbour and group
   boosts, the question's related words). A question about the user's words
   ("where do I…") favours them, one about the assistant's ("what did you
   recommend") those; a quote holding the kind of answer the wh-word expects
   (a name, a number, a time) gains.
3. **Newest wins.** Among the quotes about the same subject as the best one
   (a shared slot, or close in meaning and holding the question's words) and
   among those of a later conversation that rank nearly as well, the newest
   is said, so "I have four bikes now" wins over "I have three bikes"; a
   question about how things were ("previously", "used to") takes the
   oldest. A second quote about something else that ranks nearly as well is
   said too.
4. **A floor, not a gate.** "I don't find it" only when the best quote's
   relevance — how much of what the question takes as given it holds (by
   idf, related words at their cosine, a word no memory says by how close
   the quote's nearest word means it), its cosine, less how much of it the
   whole context neither says nor means (a specific word weighing more than
   a common one) and how many of the names it takes as given the context
   never says — is below ``RELEVANCE_FLOOR``. The floor and the mix were
   chosen by ten-fold cross-validation over LongMemEval questions
   (``benchmarks/answer_floor.py``; every fold chose the same setting,
   docs/answers.md). No topic decides what may be said.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..records.messages import Message
from ..records.trace import PromptPart
from ..retrieval import WEIGHTS, CandidateIndex, tokenize
from ..retrieval.bm25 import _stem
from ..retrieval.ranking import Candidate
from ..retrieval.related import content_words
from .question import about_whom, asked_for, asks_how_things_were, clauses, expected_kind, names_in, yes_or_no
from .quotes import Quote, gather
from .words import specificity

Embed = Callable[[list[str]], np.ndarray]
# The relevance (0-1) the best quote must reach for the reply to quote it; below, the reply says it does not find
# the answer. This and ABSENT_WEIGHT, UNNAMED_WEIGHT, COVERAGE_SHARE and UNSAID_COSINE are the setting ten-fold
# cross-validation over LongMemEval's oracle questions chose (``benchmarks/answer_floor.py``: every fold chose it;
# held out, abstention 80 % for facts and hybrid). Its cost: a question none of whose words any memory says or means
# the same as is refused even when the right memory ranked first (docs/answers.md).
RELEVANCE_FLOOR = 0.38
# A question word no memory says is held by a quote in proportion to how close, as a word of its own, the nearest
# word of the quote is: nothing at this cosine or below, fully at 1 ("travelling" for "trip" is 0.75, "hamster" for
# "cat" 0.53, "violin" for "guitar" 0.52 with all-MiniLM-L6-v2: a synonym tells it, a sibling does not).
WORD_FLOOR = 0.5
# ... or at this share of the quote's cosine to the whole question, when that is more: a memory reworded throughout
# ("Your team deploys everything on a Raspberry Pi cluster" for "what do we host our apps on") shares no close
# word, only its meaning. 1 favours answering a paraphrase, 0 abstaining on a neighbouring thing; both are recorded
# (``Answer.signals``) so ``benchmarks/answer_floor.py`` can measure the choice.
UNSAID_COSINE = 0.0
UNSAID_VARIANTS = {"held_word": 0.0, "held_half": 0.5, "held_cos": 1.0}
# How relevance mixes the question's content held by the quote (idf-weighted) with the quote's cosine.
COVERAGE_SHARE = 0.5
# What relevance loses for the share of the question's given words that the whole context never says nor means
# (a question about a hamster, asked of a memory that knows only a cat).
ABSENT_WEIGHT = 0.6
# What relevance loses for the share of the names the question takes as given that the context never says.
UNNAMED_WEIGHT = 0.2
# What a quote gains when the question is about its speaker ("I…" asks about the user's words, "you…" about
# the assistant's): a share of the ranking's own scale (its match part runs 0-1).
SPEAKER_PRIOR = 1.0
# What a quote gains when it holds the kind of answer the question's wh-word expects (a name for "who", a number
# for "how many", a time for "when"...): on the same scale.
ANSWER_KIND = 0.3
# Quotes about the same subject as the best one: this cosine to it or more (and the question's words it holds).
SAME_SUBJECT = 0.6
# A second quote is said too when it is about something else and scores within this much of the best (the answer
# is often in the sentence beside the one that matches the question best): on the ranking's own scale.
SECOND_WITHIN = 0.3
# ... and the best-ranked quote holding the kind of answer asked for, when the best lacks it, within this much.
KIND_WITHIN = 1.0
# A quote said in a later conversation than the best (this much later, in seconds), and ranked within this much
# of it, is how things are now.
NEWER_WITHIN = 0.35
CONVERSATION_GAP = 3600.0


@dataclass
class Answer:
    text: str
    used: list[str]
    relevance: float = 0.0  # the best quote's relevance (the lowest over the question's clauses)
    quoted: str = field(default="")  # what it would have said had nothing been below the floor
    signals: dict[str, float] = field(default_factory=dict)  # the best quote's held, cosine and absent share


@dataclass
class Ranked:
    """The quotes ranked for one clause: each one's score, cosine and relevance."""

    quotes: list[Quote]
    score: np.ndarray
    cosine: np.ndarray
    relevance: np.ndarray
    vectors: np.ndarray
    held: np.ndarray  # the share of what the question takes as given that each quote holds (idf-weighted)
    absent: float  # the share of it the whole context never says (idf-weighted)
    unnamed: float  # the share of the names the question takes as given that the whole context never says
    holds: list[frozenset[str]]  # which of the question's words each quote holds
    holds_kind: np.ndarray | None = None  # which quotes hold the kind of answer the question expects, if it says
    held_variants: dict[str, np.ndarray] = field(default_factory=dict)  # ``held`` under each ``UNSAID_VARIANTS``


class Ranker:
    """The hybrid ranking of ``memory/retrieval`` over one context's quotes, built once for all clauses."""

    def __init__(self, quotes: list[Quote], embed: Embed, told: dict[str, set[str]] | None = None) -> None:
        """``told`` maps an item's ref to the words of the item as it was given (its speaker's name, "Nadia:",
        included), which its quotes, turned to the second person, no longer say."""
        self.quotes = quotes
        self.embed = embed
        self.index = CandidateIndex(
            [Candidate(str(i), f"{q.ranked_text} {q.context}", q.ref, i, q.speaker) for i, q in enumerate(quotes)],
            use_neighbours=True,
        )  # (its keywords are read with what was said around it, as a turn's are with its neighbours')
        texts = [q.ranked_text for q in quotes]
        self.vectors = _unit(embed(texts)) if quotes else np.zeros((0, 384), dtype=np.float32)
        own = [set(tokenize(t)) for t in texts]
        told = told or {}
        around = [set(tokenize(q.context)) | told.get(q.ref, set()) for q in quotes]
        # What a quote is about includes its neighbours', as the keyword ranking reads it (``CandidateIndex``).
        self.tokens = [
            own[i] | around[i] | (own[p] if p >= 0 else set()) | (own[n] if n >= 0 else set())
            for i, (p, n) in enumerate(zip(self.index.prev, self.index.next))
        ]
        self.unquotable = np.array([not q.quotable for q in quotes], dtype=bool)
        self.own = own
        # Each quote's words as said (with those around it), for a question word no memory says; their vectors are
        # fetched the first time a question needs them.
        self.words = [content_words(f"{q.ranked_text} {q.context}") for q in quotes]
        self._word_vectors: dict[str, np.ndarray] = {}
        self._quote_matrix: np.ndarray | None = None
        self._quote_rows: list[np.ndarray] = []
        self.said = set().union(*own, *told.values()) if own else set()  # every word the context says

    def rank(self, clause: str) -> Ranked:
        qvec = _unit(self.embed([clause]))[0]
        cosine = self.vectors @ qvec
        related = self.index.related.terms(clause, self.embed, self.index.name_words())
        parts = self.index.components(clause, cosine, "hybrid", WEIGHTS, related)
        score = parts["score"].copy()
        wanted = about_whom(clause)
        if wanted is not None:
            score += SPEAKER_PRIOR * np.array([q.speaker == wanted for q in self.quotes], dtype=np.float64)
        shape = expected_kind(clause)
        holds_kind = None if shape is None else np.array([bool(shape.search(q.text)) for q in self.quotes])
        if holds_kind is not None:
            score += ANSWER_KIND * holds_kind
        score[self.unquotable] = -np.inf
        held, absent, holds, variants = self._held(clause, related, cosine)
        unnamed = self._unnamed(clause)
        relevance = COVERAGE_SHARE * held + (1 - COVERAGE_SHARE) * np.clip(cosine, 0.0, 1.0)
        relevance -= ABSENT_WEIGHT * absent + UNNAMED_WEIGHT * unnamed
        return Ranked(
            self.quotes, score, cosine, relevance, self.vectors, held, absent, unnamed, holds, holds_kind, variants
        )

    def _unnamed(self, clause: str) -> float:
        """The share of the names a question takes as given ("…my apartment in Shinjuku", "…Tom or Alex") that the
        whole context never says: a memory that never names them cannot be about them."""
        names = {t for word in names_in(clause) for t in tokenize(word)} - asked_for(clause)
        return sum(1 for t in names if t not in self.said) / len(names) if names else 0.0

    def _held(
        self, clause: str, related: dict[str, float], cosine: np.ndarray
    ) -> tuple[np.ndarray, float, list[frozenset[str]], dict[str, np.ndarray]]:
        """How much of what the question takes as given each quote holds (idf-weighted; a related word at its
        cosine), and how much of it the whole context never says: an absolute 0-1 scale, unlike the ranking's.

        A word the whole context never says is held by how close the quote's nearest word is to it, as words of
        their own (``WORD_FLOOR``): no quote can hold it word for word, and a memory that tells it in other words
        ("your trip to Kyoto" for "where am I travelling") is told from one about a neighbouring thing ("your cat
        Luna" for "what is my hamster's name", "tennis" for "table tennis") by whether its word means the same,
        not by whether the sentence is about the same topic. That no quote says it is weighed apart
        (``ABSENT_WEIGHT``)."""
        wanted = asked_for(clause)
        asked = [t for t in dict.fromkeys(tokenize(clause)) if t not in wanted]  # what the question takes as given
        n = len(self.quotes)
        every = list(dict.fromkeys(tokenize(clause)))  # (what it asks for too: "ethnicity" in "what's my ethnicity")
        holds = [frozenset(t for t in every if t in tokens) for tokens in self.own]
        if not asked:  # "What's my name?" takes nothing as given: nothing it presupposes is missing
            held = np.ones(n)
            return held, 0.0, holds, {name: held for name in UNSAID_VARIANTS}
        idf = self.index.turn_bm25.idf
        most = math.log(1 + (n + 0.5) / 0.5)
        never = [t not in self.said for t in asked]
        surface = {_stem(w): w for w in content_words(clause)}
        weights = np.array([idf.get(t, most) for t in asked])
        closeness = self._closeness({t: surface.get(t, t) for t, gone in zip(asked, never) if gone})
        # A word no memory says tells as much as it is specific in English at large: "use" unsaid is a rewording
        # (held all but its specificity by every quote), "hamster" unsaid a gap (held only by a word meaning it).
        specific = {t: specificity(surface.get(t, t)) for t in closeness}
        # Unsaid, and meant by no quote either: what the nearest word of the whole context leaves of it.
        unmeant = {t: specific[t] * (1.0 - float(c.max(initial=0.0))) for t, c in closeness.items()}
        closeness = {t: np.maximum(c, 1.0 - specific[t]) for t, c in closeness.items()}
        by_share = {share: np.ones(n) for share in {*UNSAID_VARIANTS.values(), UNSAID_COSINE}}  # each share once
        for i, tokens in enumerate(self.tokens):
            meaning = max(float(cosine[i]), 0.0)
            bonus = max((c for t, c in related.items() if t in tokens), default=0.0)
            for share, values in by_share.items():
                values[i] = self._held_one(asked, never, tokens, closeness, i, share * meaning, weights, bonus)
        absent = float(sum(w * unmeant[t] for t, w in zip(asked, weights) if t not in self.said) / weights.sum())
        variants = {name: by_share[share] for name, share in UNSAID_VARIANTS.items()}
        return by_share[UNSAID_COSINE].copy(), absent, holds, variants

    @staticmethod
    def _held_one(
        asked: list[str],
        never: list[bool],
        tokens: set[str],
        closeness: dict[str, np.ndarray],
        i: int,
        meaning: float,
        weights: np.ndarray,
        bonus: float,
    ) -> float:
        got = [
            1.0 if t in tokens else max(float(closeness[t][i]), meaning) if gone else 0.0
            for t, gone in zip(asked, never)
        ]
        lacking = int(np.argmin(got))
        if bonus > got[lacking]:
            got[lacking] = bonus  # a related word stands for one word the quote lacks
        return float(np.dot(weights, got) / weights.sum())

    def _closeness(self, unsaid: dict[str, str]) -> dict[str, np.ndarray]:
        """For each question word that no quote says (its stem -> the word as asked): per quote, how far its
        nearest word means the same (0-1 above ``WORD_FLOOR``)."""
        if not unsaid:
            return {}
        matrix, rows = self._quote_words()
        missing = [w for w in dict.fromkeys(unsaid.values()) if w not in self._word_vectors]
        if missing:
            self._word_vectors.update(zip(missing, _unit(self.embed(missing))))
        out: dict[str, np.ndarray] = {}
        for stem, word in unsaid.items():
            sims = matrix @ self._word_vectors[word]
            near = np.array([float(sims[r].max()) if len(r) else 0.0 for r in rows])
            out[stem] = np.clip((near - WORD_FLOOR) / (1.0 - WORD_FLOOR), 0.0, 1.0)
        return out

    def _quote_words(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The quotes' words as vectors (one row each, embedded on the first question that needs them) and, per
        quote, the rows of its words."""
        if self._quote_matrix is None:
            vocabulary = list(dict.fromkeys(w for ws in self.words for w in ws))
            missing = [w for w in vocabulary if w not in self._word_vectors]
            if missing:
                self._word_vectors.update(zip(missing, _unit(self.embed(missing))))
            row = {w: j for j, w in enumerate(vocabulary)}
            self._quote_matrix = (
                np.stack([self._word_vectors[w] for w in vocabulary]) if vocabulary else np.zeros((0, 384), np.float32)
            )
            self._quote_rows = [np.array([row[w] for w in ws], dtype=np.int64) for ws in self.words]
        return self._quote_matrix, self._quote_rows


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def choose(ranked: Ranked, clause: str) -> list[int]:
    """The best quote — or the newest about the same subject (the oldest when the question asks how things
    were) — and a second about something else that scores nearly as well."""
    top = int(np.argmax(ranked.score))
    first = _newest_alike(ranked, clause, top)
    # Across conversations the newest wins too: what a later conversation says about it, ranked nearly as well,
    # is how things are now (the earliest conversation's, when the question asks how things were).
    sign = -1.0 if asks_how_things_were(clause) else 1.0
    at = np.array([q.order if q.order > 1e6 else np.nan for q in ranked.quotes])
    later = np.isfinite(ranked.score) & (ranked.score >= ranked.score[top] - NEWER_WITHIN)
    later &= sign * (at - at[first]) >= CONVERSATION_GAP  # (false wherever a time is not known)
    if later.any():
        last = float(np.nanmax(sign * at[later]))
        same = np.flatnonzero(later & (sign * at >= last - CONVERSATION_GAP))
        top = int(same[np.argmax(ranked.score[same])])
        first = _newest_alike(ranked, clause, top)
    # A second quote, about something else, from no older a conversation than the first's.
    alike = set(_alike(ranked, top))
    current = ~(sign * (at - at[first]) <= -CONVERSATION_GAP)  # (true wherever a time is not known)
    rest = [
        int(i)
        for i in np.argsort(-ranked.score, kind="stable")
        if int(i) not in alike and np.isfinite(ranked.score[i]) and current[i]
    ]
    best = float(ranked.score[top])
    within = [i for i in rest if float(ranked.score[i]) >= best - SECOND_WITHIN]
    if ranked.holds_kind is not None and not ranked.holds_kind[first]:
        # The best match lacks the kind of answer asked for (a place for "where", a number for "how many"): the
        # best-ranked quote that holds one is said with it (the answer is often told in another sentence).
        within = [i for i in rest if ranked.holds_kind[i] and float(ranked.score[i]) >= best - KIND_WITHIN] or within
    if not within:
        within = _rest_of_its_sentence(ranked, first, rest)
    if within:
        second = _newest_alike(ranked, clause, within[0])
        return [first] if second == first else [first, second]
    return [first]


def _rest_of_its_sentence(ranked: Ranked, first: int, rest: list[int]) -> list[int]:
    """Clauses said with ``first`` (of its item, or what was said around it) that hold the question's words it
    lacks: "We run Kubernetes on GKE and I use Python for our services" answers "what do we run our services on"
    in both its clauses, one holding "services", the other "run"."""
    quote = ranked.quotes[first]
    around = set(tokenize(quote.context))

    def told_with(other: Quote) -> bool:
        own = set(tokenize(other.text))
        return other.ref == quote.ref or bool(own) and own <= around

    return [i for i in rest if told_with(ranked.quotes[i]) and ranked.holds[i] - ranked.holds[first]]


def _alike(ranked: Ranked, best: int) -> list[int]:
    """Quotes about the same subject as ``best``: a shared slot, or close in meaning and holding at least the
    question's words it holds ("four bikes" and "three bikes" for "how many bikes…", not "tennis balls" and
    "tennis racket" for "where did I buy my racket", nor "Irish heritage" and "mixed ethnicity" for "what's my
    ethnicity")."""
    close = ranked.vectors @ ranked.vectors[best]
    wanted = ranked.holds[best]
    shared = np.array([bool(q.slots & ranked.quotes[best].slots) for q in ranked.quotes], dtype=bool)
    covering = np.array([wanted <= h for h in ranked.holds], dtype=bool)
    same = np.flatnonzero((shared | ((close >= SAME_SUBJECT) & covering)) & np.isfinite(ranked.score))
    return [int(i) for i in same] or [best]


def _newest_alike(ranked: Ranked, clause: str, best: int) -> int:
    """The newest (or, for how things were, the oldest) quote about the same subject as ``best``; of those that
    hold the kind of answer the question expects, when some do."""
    same = _alike(ranked, best)
    if ranked.holds_kind is not None and any(ranked.holds_kind[i] for i in same):
        same = [i for i in same if ranked.holds_kind[i]]
    orders = [ranked.quotes[i].order for i in same]
    pick = min if asks_how_things_were(clause) else max
    return same[orders.index(pick(orders))]


def answer(
    question: str,
    system_parts: list[PromptPart],
    history: list[Message],
    embed: Embed,
    keeps: str,
    floor: float = RELEVANCE_FLOOR,
) -> Answer:
    quotes = gather(system_parts, history)
    said: list[str] = []
    used: list[str] = []
    relevance = 1.0
    signals: dict[str, float] = {}
    quoted: list[str] = []
    missing = False
    ranker = Ranker(quotes, embed, _told(system_parts, history)) if any(q.quotable for q in quotes) else None
    for clause in clauses(question):
        if ranker is None:
            relevance, missing = 0.0, True
            continue
        ranked = ranker.rank(clause)
        picks = [quotes[i] for i in choose(ranked, clause)]
        top = int(np.argmax(ranked.score))
        best = float(ranked.relevance[top])
        if best < relevance:
            relevance = best
            signals = {
                "held": float(ranked.held[top]),
                "cosine": float(ranked.cosine[top]),
                "absent": ranked.absent,
                "unnamed": ranked.unnamed,
                **{name: float(values[top]) for name, values in ranked.held_variants.items()},
            }
        texts = [yes_or_no(clause, picks[0].text)] + [q.text for q in picks[1:]]
        quoted.extend(t for t in texts if t not in quoted)
        if best < floor:
            missing = True
            continue
        said.extend(t for t in texts if t not in said)
        used.extend(q.ref for q in picks)
    sources = sorted({next(q.source for q in quotes if q.ref == ref) for ref in used})
    text = ""
    if said:
        text = _sentence_join(said) + f" (from {', '.join(sources)})"
    if missing:
        gap = "I don't find " + ("the rest" if said else "that") + " in the memory I was given"
        scope = f" — it keeps {keeps}" if keeps and not said else ""
        text = (text + " " if text else "") + gap + scope + "."
    return Answer(
        text,
        list(dict.fromkeys(used)),
        relevance if quotes else 0.0,
        _sentence_join(quoted) if quoted else "",
        signals,
    )


def _told(system_parts: list[PromptPart], history: list[Message]) -> dict[str, set[str]]:
    """Each context item's words as given, by ref (a conversation's "Nadia: I adopted a dog" names its speaker)."""
    told: dict[str, set[str]] = {}
    for part in system_parts:
        for item in part.items:
            told.setdefault(str(item.get("ref", part.name)), set()).update(tokenize(str(item.get("text", ""))))
    for message in history:
        told.setdefault(f"message:{message.id}", set()).update(tokenize(message.content))
    return told


def _sentence_join(parts: list[str]) -> str:
    """The quotes as one sentence, ending once ("You said it…", not "You said it…." or "..")."""
    parts = [p.rstrip().rstrip(".,;:") or p for p in parts]
    end = "" if parts[-1].endswith(("!", "?", "…")) else "."
    if len(parts) == 1:
        return parts[0] + end
    lowered = [parts[0]] + [p[:1].lower() + p[1:] if not p.startswith(("I ", "I'")) else p for p in parts[1:]]
    return ", ".join(lowered[:-1]) + ", and " + lowered[-1] + end
