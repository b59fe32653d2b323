"""Answering a question from the context a strategy assembled, without a model: rank, quote, never gate.

The offline provider's replies must agree with the trace: whatever the
context holds, it finds; what it does not hold, it says it does not have.
The method is general, and the same as retrieval's:

1. **Quotes.** Every memory in the context becomes quotable units: the
   items of each prompt part (facts, summary, episodes, past turns) and the
   messages of the conversation, split into sentences, each without its
   questions and requests ("…, and I was wondering if you could…?"), in the
   second person, with a reference back to its item and when it was said.
2. **Ranking.** The question's clauses ("What's my name and where do I
   live?" is two) are each ranked against the quotes by the hybrid ranking
   of ``memory/retrieval`` (BM25 and cosine fused, the neighbour and group
   boosts, the question's related words). A question in the first person
   ("where do I…") asks about what the user said; one in the second ("what
   did you recommend") about what the assistant said: those quotes gain.
3. **Newest wins.** Among the quotes about the same subject as the best one
   (close in meaning, as relevant to the question) the newest is said, so
   "I have four bikes now" wins over "I have three bikes"; a question about
   how things were ("previously", "used to", "originally") takes the oldest.
4. **A floor, not a gate.** "I don't find it" only when the best quote's
   relevance — how much of the question's content it holds (by idf, related
   words counted at their cosine) mixed with its cosine — is below
   ``RELEVANCE_FLOOR``, chosen by cross-validation over LongMemEval's
   development questions (docs/recall.md). No topic decides what may be said.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..messages import Message, Role
from ..retrieval import WEIGHTS, CandidateIndex, tokenize
from ..retrieval.ranking import Candidate
from ..trace import PromptPart
from .rules import changes_from_text, second_person, split_sentences
from .statements import clauses as clauses_of
from .statements import declarative_part, is_statement
from .statements import to_second_person as statement_to_second_person

Embed = Callable[[list[str]], np.ndarray]
# The relevance (0-1) the best quote must reach for the reply to quote it; below, the reply says it does not
# find the answer. Chosen by cross-validation over LongMemEval's development questions (docs/recall.md).
RELEVANCE_FLOOR = 0.2
# How relevance mixes the question's content held by the quote (idf-weighted) with the quote's cosine.
COVERAGE_SHARE = 0.5
# What relevance loses for the share of the question's given words that the whole context never says (a question
# about a hamster, asked of a memory that knows only a cat).
ABSENT_WEIGHT = 0.0
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
SECOND_WITHIN = 0.15
# A quote said in a later conversation than the best (this much later, in seconds), and ranked within this much
# of it, is how things are now.
NEWER_WITHIN = 0.35
CONVERSATION_GAP = 3600.0
MAX_QUOTES = 400  # the longest contexts (a whole buffer of pasted text) are read from their newest quotes
# A memory's recency where the part does not say when it was said: older than anything dated; past sessions <
# summary < current facts.
_PART_ORDER = {"past turns": 0.0, "episodes": 1.0, "summary": 2.0, "facts": 3.0}
MIN_QUOTE_WORDS = 4
_MARKUP = re.compile(r"\*\*|__|^\s*(?:[*+#>-]+|\d+[.)])\s+", re.M)  # bold, and list or heading markers
_USER_PREFIX = re.compile(r"^(?:User(?: said)?|The user said):\s*", re.I)
_NOTED = re.compile(r"^\s*Noted:\s*", re.I)
_SELF_TALK = re.compile(r"\b(?:my memory|memory I was given|I don't find|offline provider|I answer from)\b", re.I)
_FROM = re.compile(r"\s*\(from [^)]*\)\s*$")
_WH = re.compile(r"^\s*(?:what|who|where|when|which|why|how|do|does|did|is|are|am|can|could|have|has|tell me)\b", re.I)
_ABOUT_USER = re.compile(r"\b(?:I|I'm|I've|I'd|me|my|mine|myself|we|our|us)\b", re.I)
_ABOUT_ASSISTANT = re.compile(r"\b(?:you|your|you've|you'd|you're)\b", re.I)
# What a question asks for (its wh-phrase's noun: "what play did I…", "which design tool…", "what's my name",
# "what is the name of…"): an answer is an instance of it, so the memory need not use the words; the
# question's other words are what it takes as given, and the memory must hold them.
_AUX = r"(?:do|does|did|is|are|was|were|am|have|has|had|can|could|should|would|will|i|my|you|your)"
_ASKED = [
    re.compile(r"^\s*(?:what|which)\s+(kind|type|sort|brand|make|model|size|colou?r|flavou?r|style)\s+of\b", re.I),
    re.compile(r"^\s*how\s+(many|much|long|often|old|far|big|soon|late|early)\b", re.I),
    re.compile(rf"^\s*(?:what|which|whose)\s+"
               rf"(?!{_AUX}\b)((?:[\w'-]+\s+){{0,2}}?[\w'-]+)\s+(?={_AUX}\b)", re.I),
    re.compile(r"^\s*(?:what|who|which)(?:'s|\s+is|\s+was|\s+are|\s+were)\s+(?:my|your|our|the|a|an)?\s*"
               r"((?:[\w'-]+\s+){0,3}?[\w'-]+)\s*(?=\b(?:of|for|in|on|at|with|from|that|which|when|i|you)\b|[?,.]|$)",
               re.I),
]  # fmt: skip


# The kind of answer a question's wh-word expects, and how to see one in a quote (general knowledge of English:
# numbers, days and months, names are capitalised). A quote that holds the kind asked for ranks higher.
_NUMBER = (
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|dozen|half|once|twice|couple|few|several|daily|weekly|monthly|yearly|every)\b"
)
_WHEN = (
    r"\d|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july|"
    r"august|september|october|november|december|yesterday|today|tomorrow|tonight|morning|evening|weekend|week|"
    r"month|year|ago|last|next|spring|summer|autumn|fall|winter)\b"
)
_NAME = r"(?<=[a-z,;:] )[A-Z][\w'\-]+"  # a capitalised word inside a sentence
_EXPECTS: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"^\s*(?:who|whom|whose)\b", re.I), re.compile(_NAME)),
    (re.compile(r"^\s*(?:how (?:many|much|long|old|often|far)|what (?:time|year|date|percentage))\b", re.I),
     re.compile(_NUMBER, re.I)),
    (re.compile(r"^\s*(?:when|what day)\b", re.I), re.compile(_WHEN, re.I)),
    (re.compile(r"^\s*where\b", re.I), re.compile(_NAME + r"|\b(?:at|in|from|to) (?:the|a|my|your)\b")),
]  # fmt: skip


def expected_kind(clause: str) -> re.Pattern[str] | None:
    """How to see the kind of answer the question expects (a name, a number, a time, a place), if it says."""
    return next((shape for wh, shape in _EXPECTS if wh.search(clause)), None)


def asked_for(clause: str) -> set[str]:
    """The stems of the noun phrase a question asks for: "name", "design tool", "camera lens". ("How many
    bikes…" asks for a number: the bikes are taken as given.)"""
    for pattern in _ASKED:
        m = pattern.search(clause)
        if m:
            return set(tokenize(re.split(r"'s\s+", m.group(1))[-1]))  # "my dog's name": the dog is given
    return set()


_PAST = re.compile(r"\b(?:previous|previously|before|used to|originally|at first|initially|formerly|old)\b", re.I)


@dataclass(frozen=True)
class Quote:
    text: str  # what to say back, in the second person (an assistant's own words as it said them)
    ref: str  # the context item it came from: "fact:<id>", "summary", "message:<id>"...
    source: str  # where, in words
    order: float  # higher is newer
    speaker: str = "user"  # whose words: "user" or "assistant"
    quotable: bool = True  # a question or request is context for its neighbours, never an answer
    slots: frozenset[str] = frozenset()  # what the slot rules read in it ("location"): same slot, same subject
    reads: str = ""  # the slot rules' reading of it ("you live in Malmö" for "You moved to Malmö"), for ranking

    @property
    def ranked_text(self) -> str:
        return f"{self.text} ({self.reads})" if self.reads else self.text


@dataclass
class Answer:
    text: str
    used: list[str]
    relevance: float = 0.0  # the best quote's relevance (the lowest over the question's clauses)
    quoted: str = field(default="")  # what it would have said had nothing been below the floor
    signals: dict[str, float] = field(default_factory=dict)  # the best quote's held, cosine and absent share


_THIRD_PERSON = [
    (re.compile(p, re.I), r) for p, r in (
        (r"\bthey (?:are|were|was)\b", "you were"), (r"\bthey have\b", "you have"), (r"\bthey\b", "you"),
        (r"\btheir\b", "your"), (r"\bthem\b", "you"), (r"\btheirs\b", "yours"), (r"\bthemselves\b", "yourself"),
    )
]  # fmt: skip


def to_second_person(sentence: str) -> str:
    """A memory's sentence as said to the user: 'User: I live in Oslo' / 'The user lives in Oslo.' →
    'You live in Oslo'."""
    text = _USER_PREFIX.sub("", sentence.strip())
    if text.startswith("The user"):  # a summary's third person ("The user mentioned: they were…")
        text = second_person(text)
        for pattern, repl in _THIRD_PERSON:
            text = pattern.sub(repl, text)
    text = statement_to_second_person(text).rstrip(".")
    return text[:1].upper() + text[1:]


def _kept(text: str) -> list[tuple[str, bool]]:
    """A memory's text (a fact, a summary) as (sentence, quotable): its sentences in the second person."""
    return [(to_second_person(s), True) for s in split_sentences(text) if not s.endswith("?") and len(s.split()) >= 2]


_FIRST_PERSON = [
    (re.compile(p, re.I), r) for p, r in (
        (r"\byou are\b|\byou're\b", "I'm"), (r"\byou've\b", "I've"), (r"\byou were\b", "I was"),
        (r"\byour\b", "my"), (r"\byou\b", "I"),
    )
]  # fmt: skip


def annotate(quote: Quote) -> Quote:
    """The slot rules' reading of a second-person sentence, as if the user said it: "You moved to Malmö" fills
    the location slot and reads "you live in Malmö", so a question about where you live finds it."""
    first = quote.text
    for pattern, repl in _FIRST_PERSON:
        first = pattern.sub(repl, first)
    changes = [c for c in changes_from_text(first.rstrip(".") + ".") if c.action == "set"]
    reads = "; ".join(dict.fromkeys(second_person(c.text) for c in changes))
    return replace(quote, slots=frozenset(c.slot for c in changes if c.slot), reads=reads)


def _said(text: str) -> list[tuple[str, bool]]:
    """A user's text as (clause, quotable): each sentence's clauses, without its questions and requests, which
    follow as context (they often name what the statement beside them is about)."""
    out = []
    for sentence in split_sentences(_MARKUP.sub(" ", _USER_PREFIX.sub("", text.strip()))):
        kept = declarative_part(sentence)
        for clause in clauses_of(kept) if kept else []:  # "My name is Zoe and I live in Oslo": two answers
            # A heading or a list item ("Sister's birthday") is context; a statement or a sentence is an answer.
            if is_statement(clause) or len(clause.split()) >= MIN_QUOTE_WORDS:
                out.append((to_second_person(clause), True))
            elif len(clause.split()) >= 2:
                out.append((clause, False))
        rest = sentence.replace(kept, "", 1).strip(" ,;-—") if kept else sentence
        if len(rest.split()) >= 2:
            out.append((rest, False))
    return out


def _replied(text: str) -> list[str]:
    """An assistant's reply as quotable sentences: what it stated, not what it said about itself."""
    body = _MARKUP.sub(" ", _FROM.sub("", _NOTED.sub("", text)))
    return [
        part.strip()[:1].upper() + part.strip()[1:].rstrip(".")
        for s in split_sentences(body)
        if not s.endswith("?") and not _SELF_TALK.search(s)
        for part in s.split("; ")
        if len(part.split()) >= MIN_QUOTE_WORDS or (_NOTED.match(text) and len(part.split()) >= 2)
    ]


def gather(system_parts: list[PromptPart], history: list[Message]) -> list[Quote]:
    """Every quotable sentence in the context, with where it came from and how recent it is."""
    out: list[Quote] = []
    for part in system_parts:
        if part.name == "instructions":
            continue
        base = _PART_ORDER.get(part.name, 1.5)
        items = part.items or [{"ref": part.name, "text": line} for line in part.text.splitlines()[1:]]
        for item in items:
            # When it was said (unix seconds) where the part knows; else by the part's kind, older than any date.
            order = _number(item.get("at")) or base
            own_words = part.name == "past turns" or bool(_USER_PREFIX.match(item["text"]))
            for text, quotable in (_said if own_words else _kept)(item["text"]):
                out.append(Quote(text, item["ref"], part.name, order, quotable=quotable))
    answered = 0.0  # when the message a reply answers was said
    for message in history:
        ref, order = f"message:{message.id}", message.created_at
        if message.role is Role.USER:
            answered = order
            out.extend(Quote(t, ref, "this conversation", order, quotable=q) for t, q in _said(message.content))
        elif message.role is Role.ASSISTANT:
            # "Noted: you…" restates the user's message: just before it, so the user's own words are credited first.
            speaker = "user" if _NOTED.match(message.content) else "assistant"
            order = min(order, answered - 1e-3) if answered else order
            out.extend(Quote(t, ref, "an earlier reply", order, speaker) for t in _replied(message.content))
    unique: dict[tuple[str, str, bool], Quote] = {}
    for quote in out:  # a sentence said again (a fact also in a past turn) is one quote, as new as its newest
        key = (quote.text.lower(), quote.speaker, quote.quotable)
        if key not in unique or quote.order > unique[key].order:
            unique[key] = quote
    quotes = sorted(unique.values(), key=lambda q: q.order)[-MAX_QUOTES:]
    return [annotate(q) if q.quotable and q.speaker == "user" else q for q in quotes]


def _number(value: object) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def clauses(question: str) -> list[str]:
    """'What's my name and where do I live?' -> ['What's my name', 'where do I live']."""
    parts = [
        p.strip(" ?,")
        for p in re.split(
            r"\s*(?:\?|;|\band\s+(?=(?:what|who|where|when|which|how|do|does|did|is|are)\b))\s*", question, flags=re.I
        )
        if p.strip(" ?,")
    ]
    return [p for p in parts if _WH.match(p)] or [question.strip()]


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
    holds: list[frozenset[str]]  # which of the question's given words each quote holds


class Ranker:
    """The hybrid ranking of ``memory/retrieval`` over one context's quotes, built once for all clauses."""

    def __init__(self, quotes: list[Quote], embed: Embed) -> None:
        self.quotes = quotes
        self.embed = embed
        self.index = CandidateIndex(
            [Candidate(str(i), q.ranked_text, q.ref, i, q.speaker) for i, q in enumerate(quotes)], use_neighbours=True
        )
        texts = [q.ranked_text for q in quotes]
        self.vectors = _unit(embed(texts)) if quotes else np.zeros((0, 384), dtype=np.float32)
        own = [set(tokenize(t)) for t in texts]
        # What a quote is about includes its neighbours', as the keyword ranking reads it (``CandidateIndex``).
        self.tokens = [
            own[i] | (own[p] if p >= 0 else set()) | (own[n] if n >= 0 else set())
            for i, (p, n) in enumerate(zip(self.index.prev, self.index.next))
        ]
        self.unquotable = np.array([not q.quotable for q in quotes], dtype=bool)
        self.own = own
        self.said = set().union(*own) if own else set()  # every word the context says

    def rank(self, clause: str) -> Ranked:
        qvec = _unit(self.embed([clause]))[0]
        cosine = self.vectors @ qvec
        related = self.index.related.terms(clause, self.embed, self.index.name_words())
        parts = self.index.components(clause, cosine, "hybrid", WEIGHTS, related)
        score = parts["score"].copy()
        about_user, about_assistant = bool(_ABOUT_USER.search(clause)), bool(_ABOUT_ASSISTANT.search(clause))
        if about_user != about_assistant:
            wanted = "user" if about_user else "assistant"
            score += SPEAKER_PRIOR * np.array([q.speaker == wanted for q in self.quotes], dtype=np.float64)
        shape = expected_kind(clause)
        if shape is not None:
            score += ANSWER_KIND * np.array([bool(shape.search(q.text)) for q in self.quotes], dtype=np.float64)
        score[self.unquotable] = -np.inf
        held, absent, holds = self._held(clause, related)
        relevance = COVERAGE_SHARE * held + (1 - COVERAGE_SHARE) * np.clip(cosine, 0.0, 1.0) - ABSENT_WEIGHT * absent
        return Ranked(self.quotes, score, cosine, relevance, self.vectors, held, absent, holds)

    def _held(self, clause: str, related: dict[str, float]) -> tuple[np.ndarray, float, list[frozenset[str]]]:
        """How much of what the question takes as given each quote holds (idf-weighted; a related word at its
        cosine), and how much of it the whole context never says: an absolute 0-1 scale, unlike the ranking's."""
        wanted = asked_for(clause)
        asked = [t for t in dict.fromkeys(tokenize(clause)) if t not in wanted]  # what the question takes as given
        n = len(self.quotes)
        held = np.ones(n)  # "What's my name?" takes nothing as given: nothing it presupposes is missing
        holds = [frozenset(t for t in asked if t in tokens) for tokens in self.own]
        if not asked:
            return held, 0.0, holds
        idf = self.index.turn_bm25.idf
        most = math.log(1 + (n + 0.5) / 0.5)
        weights = np.array([idf.get(t, most) for t in asked])
        for i, tokens in enumerate(self.tokens):
            got = [1.0 if t in tokens else 0.0 for t in asked]
            bonus = max((c for t, c in related.items() if t in tokens), default=0.0)
            if bonus and 0.0 in got:
                got[got.index(0.0)] = bonus  # a related word stands for one word the quote lacks
            held[i] = float(np.dot(weights, got) / weights.sum())
        absent = float(sum(w for t, w in zip(asked, weights) if t not in self.said) / weights.sum())
        return held, absent, holds


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
    sign = -1.0 if _PAST.search(clause) else 1.0
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
    if rest and float(ranked.score[rest[0]]) >= float(ranked.score[top]) - SECOND_WITHIN:
        second = _newest_alike(ranked, clause, rest[0])
        return [first] if second == first else [first, second]
    return [first]


def _alike(ranked: Ranked, best: int) -> list[int]:
    """Quotes about the same subject as ``best``: a shared slot, or close in meaning and holding at least the
    question's words it holds ("four bikes" and "three bikes" for "how many bikes…", not "tennis balls" and
    "tennis racket" for "where did I buy my racket")."""
    close = ranked.vectors @ ranked.vectors[best]
    wanted = ranked.holds[best]
    shared = np.array([bool(q.slots & ranked.quotes[best].slots) for q in ranked.quotes], dtype=bool)
    covering = np.array([wanted <= h for h in ranked.holds], dtype=bool)
    same = np.flatnonzero((shared | ((close >= SAME_SUBJECT) & covering)) & np.isfinite(ranked.score))
    return [int(i) for i in same] or [best]


def _newest_alike(ranked: Ranked, clause: str, best: int) -> int:
    same = _alike(ranked, best)
    orders = [ranked.quotes[i].order for i in same]
    pick = min if _PAST.search(clause) else max
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
    ranker = Ranker(quotes, embed) if any(q.quotable for q in quotes) else None
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
            signals = {"held": float(ranked.held[top]), "cosine": float(ranked.cosine[top]), "absent": ranked.absent}
        texts = [_yes_or_no(clause, picks[0].text)] + [q.text for q in picks[1:]]
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


_YES_NO = re.compile(r"^\s*(?:do|does|did|is|are|am|was|were|have|has|had|can|could|will|would|should)\b", re.I)
_NEGATED = re.compile(r"\b(?:not|no longer|never|n't|no)\b", re.I)


def _yes_or_no(clause: str, text: str) -> str:
    """A yes/no question ("Do I still…?", "Is my mom…?") is answered yes or no, then by what says so."""
    if not _YES_NO.match(clause):
        return text
    return ("No: " if _NEGATED.search(text) and not _NEGATED.search(clause) else "Yes: ") + text[:1].lower() + text[1:]


def _sentence_join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0] + "."
    lowered = [parts[0]] + [p[:1].lower() + p[1:] if not p.startswith(("I ", "I'")) else p for p in parts[1:]]
    return ", ".join(lowered[:-1]) + ", and " + lowered[-1] + "."
