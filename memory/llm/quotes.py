"""A context's quotable sentences: what a strategy gave the model, as things the offline answerer may say back.

Every memory in the context becomes quotes — the items of each prompt part
(facts, summary, episodes, past turns) and the conversation's messages —
split into sentences and clauses, each in the second person, with a
reference to its item, when it was said, and whose words it is. A user's
questions and requests stay as context for the sentences beside them, never
as answers; headings and list items too. The slot rules read each user quote
("You moved to Malmö" reads "you live in Malmö") so a question about where
you live finds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..records.messages import Message, Role
from ..records.trace import PromptPart
from .rules import changes_from_text, reads_as_english, second_person, split_sentences
from .statements import clauses as clauses_of
from .statements import declarative_part, is_statement
from .statements import to_second_person as statement_to_second_person

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
    context: str = ""  # what was said around it, where its item says (a statement's message): for keywords

    @property
    def ranked_text(self) -> str:
        return f"{self.text} ({self.reads})" if self.reads else self.text


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
    if not reads_as_english(text):
        return text  # the person-swapping reads English only: another language is quoted as it was said
    if text.startswith("The user"):  # a summary's third person ("The user mentioned: they were…")
        text = second_person(text)
        for pattern, repl in _THIRD_PERSON:
            text = pattern.sub(repl, text)
        text = re.sub(r"^The user (\w+ly) (\w+?(?:o|ch|sh|x|ss))es\b", r"you \1 \2", text)  # "…usually goes"
        text = re.sub(r"^The user (\w+ly) (\w+?)s\b", r"you \1 \2", text)  # "…mostly uses"
        text = re.sub(r"\bThe user's\b", "your", re.sub(r"\bThe user\b", "you", text))
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
            context = item.get("context", "")
            for text, quotable in (_said if own_words else _kept)(item["text"]):
                out.append(Quote(text, item["ref"], part.name, order, quotable=quotable, context=context))
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
