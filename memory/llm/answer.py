"""Answering a question from the context a strategy assembled, without a model.

The offline provider's replies must agree with the trace: whatever the
context holds, it finds; what it does not hold, it says it does not have.
The method is general:

1. **Candidates.** Every memory in the context becomes candidates: the
   items of each prompt part (facts, summary, episodes, past turns) and the
   user's earlier messages, split into sentences, each with a reference back
   to the item it came from and its recency (the conversation is newer than
   a summary, which is newer than past sessions). The fact rules read each
   sentence, so "I moved to Malmö" and "The user lives in Malmö." both become
   a *location* candidate.
2. **Clauses.** "What's my name and where do I live?" is two questions.
3. **Topics.** A clause that asks for something a person has (a name, a
   home, an employer, a diet, a trip...) is answered by the newest candidate
   about it, so an update wins over what it replaced, and a "no longer" wins
   over the fact it took back. Anything else goes to embedding similarity,
   with a floor below which the answer is "not in memory".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..messages import Message, Role
from ..trace import PromptPart
from .rules import DIETS, PETS, RELATIONS, changes_from_text, reads_as_english, second_person, split_sentences

Embed = Callable[[list[str]], np.ndarray]
MIN_SIMILARITY = 0.35
# A part's recency: past sessions < summary < current facts < this conversation (by position).
# An episode summary is a past session's end state, so it outranks that session's single turns.
_PART_ORDER = {"past turns": 0.0, "episodes": 1.0, "summary": 2.0, "facts": 3.0}


@dataclass(frozen=True)
class Candidate:
    sentence: str  # as found (the user's own words, or a stored fact)
    answer: str  # what to say back, in the second person
    ref: str  # the context item it came from: "fact:<id>", "summary", "message:<id>"...
    source: str  # where, in words
    order: float  # higher is newer
    topic: str | None = None  # e.g. "location", "trip:kyoto", "uses"
    negated: bool = False  # "I no longer...": answers the topic by taking it back


# What a question asks about; the first match wins, most specific first.
_TOPICS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bfavou?rite ([a-z]+(?: [a-z]+)?)\b", re.I), "favorite:{0}"),
    (re.compile(rf"\bmy ({RELATIONS})(?:'s)?\b", re.I), "relation:{0}"),
    (re.compile(rf"\b(?:my ({PETS})|pets?)\b", re.I), "pet"),
    (re.compile(r"\b(?:my name|who am i|what am i called|what do you call me)\b", re.I), "name"),
    (re.compile(r"\b(?:where am i from|where do i come from|my (?:origin|home ?country))\b", re.I), "origin"),
    (
        re.compile(
            r"\bwhere (?:do|did) i (?:live|move|stay)|\bwhere am i (?:based|living)|\b(?:which|what) city|"
            r"\bmy (?:city|home ?town|address|location)\b|\bwhere i live\b",
            re.I,
        ),
        "location",
    ),  # fmt: skip
    (
        re.compile(
            r"\bwhere (?:do|did) i work|\bwho do i work for|\b(?:which|what) company|\bmy (?:employer|company)\b|"
            r"\bwhere i work\b",
            re.I,
        ),
        "employer",
    ),  # fmt: skip
    (
        re.compile(r"\bwhat do i do\b|\bmy (?:job|role|title|profession|position)\b|\bwhat(?:'s| is) my job\b", re.I),
        "role",
    ),
    (re.compile(r"\b(?:programming )?languages?\b|\bwhat do i (?:code|program|write) in\b", re.I), "language"),
    (
        re.compile(
            r"\bdiet\b|\bvegetarian\b|\bvegan\b|\bdo i eat\b|\bi (?:don't|do not|can't) eat\b|\beat meat\b", re.I
        ),
        "diet",
    ),
    (re.compile(r"\ballerg", re.I), "allergy"),
    (re.compile(r"\b(?:trips?|travel\w*|vacation|holiday|flying|visit\w*|going to)\b", re.I), "trip"),
    (re.compile(r"\b(?:stack|tools?|tech(?:nology|nologies)?|databases?|use|using|run\w*)\b", re.I), "uses"),
    (re.compile(r"\b(?:like|enjoy|love|into)\b", re.I), "likes"),
]
_FACT_TOPICS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^The user's name is"), "name"),
    (re.compile(r"^The user lives in"), "location"),
    (re.compile(r"^The user is from"), "origin"),
    (re.compile(r"^The user works at"), "employer"),
    (re.compile(r"^The user works as"), "role"),
    (re.compile(r"^The user codes in"), "language"),
    (re.compile(rf"^The user (?:is (?:{'|'.join(re.escape(d) for d in sorted(DIETS))})|doesn't eat)\b"), "diet"),
    (re.compile(r"^The user is allergic to"), "allergy"),
    (
        re.compile(r"^The user is planning a trip to ([\w'\- ]+?)(?: (?:in|on|this|next|from|for|with)\b|\.|$)"),
        "trip:{0}",
    ),
    (re.compile(r"^The user's favorite ([a-z]+(?: [a-z]+)?) is"), "favorite:{0}"),
    (re.compile(rf"^The user's ({RELATIONS}) is called"), "relation:{0}"),
    (re.compile(rf"^The user has an? ({PETS}) called"), "pet:{0}"),
    (re.compile(r"^The user(?:'s team)? uses"), "uses"),
    (re.compile(r"^The user likes"), "likes"),
    (re.compile(r"^The user dislikes"), "dislikes"),
]
# Topics a person has several of: every current candidate answers, not just the newest.
_MANY = {"uses", "likes", "allergy", "trip", "pet"}
# Topics read off a common verb ("like", "use"): a fact that names what was asked about answers first.
_BROAD = {"uses", "likes"}
_TOPIC_WORDS = {
    "name": "your name", "location": "where you live", "origin": "where you are from", "employer": "where you work",
    "role": "what you do", "language": "your programming language", "diet": "your diet", "allergy": "allergies",
    "trip": "a trip", "uses": "what you use", "likes": "what you like", "pet": "a pet",
}  # fmt: skip
_WH = re.compile(r"^\s*(?:what|who|where|when|which|why|how|do|does|did|is|are|am|can|could|have|has|tell me)\b", re.I)
_USER_PREFIX = re.compile(r"^(?:User(?: said)?|The user said):\s*", re.I)


def _fmt(template: str, m: re.Match[str]) -> str:
    return template.format(*(g.lower() for g in m.groups() if g)) if "{0}" in template else template


def question_topic(clause: str) -> str | None:
    for pattern, template in _TOPICS:
        m = pattern.search(clause)
        if m:
            return _fmt(template, m)
    return None


def fact_topic(fact: str) -> str | None:
    for pattern, template in _FACT_TOPICS:
        m = pattern.search(fact)
        if m:
            return _fmt(template, m)
    return None


def _matches(question: str, candidate: str | None) -> bool:
    if candidate is None:
        return False
    return candidate == question or candidate.startswith(question + ":") or question.startswith(candidate + ":")


def to_second_person(sentence: str) -> str:
    text = _USER_PREFIX.sub("", sentence.strip()).strip('"')
    if not reads_as_english(text):
        return text  # the rules read English only: another language is quoted as it was said
    if text.startswith("The user"):
        text = second_person(text)
    for pattern, repl in (
        (r"^The user said they\b", "you said you"),
        (r"\bI am\b", "you are"), (r"\bI'm\b", "you're"), (r"\bI've\b", "you've"), (r"\bI'll\b", "you'll"),
        (r"\bI was\b", "you were"), (r"\bmy\b", "your"), (r"\bMy\b", "Your"), (r"\bme\b", "you"), (r"\bI\b", "you"),
        (r"\bmine\b", "yours"), (r"\bwe\b", "you"), (r"\bWe\b", "You"), (r"\bour\b", "your"), (r"\bOur\b", "Your"),
    ):  # fmt: skip
        text = re.sub(pattern, repl, text)
    text = text.rstrip(" .!")
    return text[:1].upper() + text[1:]


def _from_sentence(sentence: str, ref: str, source: str, order: float) -> list[Candidate]:
    """A sentence of memory as candidates: the facts it states (with topics), or the sentence itself."""
    plain = _USER_PREFIX.sub("", sentence.strip())
    if not plain or plain.endswith("?"):
        return []
    topic = fact_topic(plain)
    if topic:
        return [Candidate(plain, to_second_person(plain), ref, source, order, topic)]
    out = []
    for change in changes_from_text(plain):
        topic = fact_topic(change.text)
        if change.action == "delete":
            out.append(Candidate(plain, to_second_person(plain), ref, source, order, topic, negated=True))
        elif change.action == "set":
            out.append(Candidate(plain, to_second_person(change.text), ref, source, order, topic))
    return out or [Candidate(plain, to_second_person(plain), ref, source, order)]


def gather(system_parts: list[PromptPart], history: list[Message]) -> list[Candidate]:
    """Every candidate answer in the context, with where it came from and how recent it is."""
    out: list[Candidate] = []
    for part in system_parts:
        if part.name == "instructions":
            continue
        order = _PART_ORDER.get(part.name, 1.5)
        items = part.items or [{"ref": part.name, "text": line} for line in part.text.splitlines()[1:]]
        for item in items:
            for sentence in split_sentences(item["text"]):
                out.extend(_from_sentence(sentence, item["ref"], part.name, order))
    for position, message in enumerate(history):
        # A reply ranks just below the statement it answered, so the user's own words are credited first.
        ref, order = f"message:{message.id}", 10.0 + position - (1.5 if message.role is Role.ASSISTANT else 0.0)
        if message.role is Role.USER:
            for sentence in split_sentences(message.content):
                out.extend(_from_sentence(sentence, ref, "this conversation", order))
        elif message.role is Role.ASSISTANT and _STATES.search(message.content):
            # What an earlier reply stated about the user is in the context too ("Noted: you live in Oslo"),
            # but not what it said about itself ("My memory keeps...", "I don't find...").
            for statement in re.split(r"[;.]\s+|\.$", _NOTED.sub("", message.content)):
                if _SELF_TALK.search(statement):
                    continue
                found = _from_sentence(_first_person(statement), ref, "an earlier reply", order)
                out.extend(c for c in found if c.topic)
    return out


_NOTED = re.compile(r"^\s*Noted:\s*", re.I)
# Replies that state facts: acknowledgements, and answers naming their source.
_STATES = re.compile(r"^\s*Noted:|\(from [^)]*\)\s*$", re.I)
_SELF_TALK = re.compile(r"\b(?:my memory|memory I was given|I don't find|offline provider)\b", re.I)


def _first_person(statement: str) -> str:
    """A reply's 'you live in Oslo' back into the user's 'I live in Oslo', for the fact rules."""
    text = re.sub(r"\s*\(from [^)]*\)\s*$", "", statement.strip())
    for pattern, repl in (
        (r"\byou are\b", "I'm"), (r"\byou're\b", "I'm"), (r"\byou have\b", "I have"), (r"\byour\b", "my"),
        (r"\bYour\b", "My"), (r"\byou\b", "I"), (r"\bYou\b", "I"),
    ):  # fmt: skip
        text = re.sub(pattern, repl, text)
    return text


def clauses(question: str) -> list[str]:
    """'What's my name and where do I live?' -> ['What's my name', 'where do I live']."""
    parts = [p.strip(" ?,") for p in re.split(r"\s*(?:,|;|\?|\band\b|\balso\b|&)\s*", question) if p.strip(" ?,")]
    out: list[str] = []
    for part in parts:
        standalone = _WH.match(part) or question_topic(part) not in (None, "uses", "likes")
        if out and not standalone:
            out[-1] = f"{out[-1]} and {part}"
        elif out and not _WH.match(part):
            out.append(f"what is my {part}" if not part.lower().startswith("my ") else f"what is {part}")
        else:
            out.append(part)
    return out or [question]


@dataclass
class Answer:
    text: str
    used: list[str]


_GENERIC = {
    "what", "which", "where", "when", "does", "have", "about", "with", "that", "this", "your", "like", "likes",
    "love", "enjoy", "into", "used", "using", "uses", "doing", "there", "they", "them", "would", "should",
}  # fmt: skip


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)} - _GENERIC


def _by_topic(topic: str, clause: str, candidates: list[Candidate]) -> list[Candidate]:
    """The current answer(s) about ``topic``: the newest statement wins, a newer "no longer" takes it back."""
    about = [c for c in candidates if _matches(topic, c.topic)]
    if topic in _BROAD:
        # "Which editor do I like?" asks for a favorite editor: a fact naming the thing asked about answers it.
        words = _content_words(clause)
        naming = [c for c in candidates if c.topic and words & _content_words(c.sentence)]
        about = naming or about
    if not about:
        return []
    newest: dict[str, Candidate] = {}
    for c in sorted(about, key=lambda c: c.order):
        newest[c.topic or topic] = c  # per slot: "trip:kyoto" and "trip:lisbon" are two trips
    current = [c for c in newest.values() if not c.negated] or [max(newest.values(), key=lambda c: c.order)]
    base = topic.split(":")[0]
    if base in _MANY and len(current) > 1:
        words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", clause)}
        focused = [c for c in current if words & {w.lower() for w in re.findall(r"[A-Za-z]{3,}", c.answer)}]
        return (focused or current)[:3]
    return [max(current, key=lambda c: c.order)]


def _by_similarity(clause: str, candidates: list[Candidate], embed: Embed) -> list[Candidate]:
    plain = [c for c in candidates if not c.negated]
    if not plain:
        return []
    vectors = embed([clause] + [c.sentence for c in plain])
    scores = vectors[1:] @ vectors[0]
    best = int(np.argmax(scores))
    return [plain[best]] if float(scores[best]) >= MIN_SIMILARITY else []


def answer(question: str, system_parts: list[PromptPart], history: list[Message], embed: Embed, keeps: str) -> Answer:
    candidates = gather(system_parts, history)
    said: list[str] = []
    used: list[str] = []
    missing: list[str] = []
    for clause in clauses(question):
        topic = question_topic(clause)
        chosen = _by_topic(topic, clause, candidates) if topic else []
        if not chosen and candidates:
            chosen = _by_similarity(clause, [c for c in candidates if topic is None or c.topic is None], embed)
        if not chosen:
            missing.append(_TOPIC_WORDS.get((topic or "").split(":")[0], "that"))
            continue
        for c in chosen:
            if c.answer not in said:
                said.append(c.answer)
            used.append(c.ref)
    sources = sorted({_source_of(ref, candidates) for ref in used})
    text = ""
    if said:
        text = _sentence_join(said) + f" (from {', '.join(sources)})"
    if missing:
        gap = f"I don't find {' or '.join(dict.fromkeys(missing))} in the memory I was given"
        scope = f" — it keeps {keeps}" if keeps and not said else ""
        text = (text + " " if text else "") + gap + scope + "."
    return Answer(text, list(dict.fromkeys(used)))


def _source_of(ref: str, candidates: list[Candidate]) -> str:
    return next((c.source for c in candidates if c.ref == ref), "memory")


def _sentence_join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0] + "."
    lowered = [parts[0]] + [p[:1].lower() + p[1:] if not p.startswith(("I ", "I'")) else p for p in parts[1:]]
    return ", ".join(lowered[:-1]) + ", and " + lowered[-1] + "."
