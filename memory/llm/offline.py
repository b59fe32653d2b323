"""The offline provider: deterministic, model-free, good enough to demo memory honestly.

- **Replies** answer from the context the strategy assembled (``answer.py``),
  name which items they used, and say "not in memory" only when nothing in
  the context answers.
- **Acknowledgements** say what was understood and only promise what the
  strategy actually keeps (the instructions part says it).
- **Summaries** read as one: the user's current facts in the third person
  (a newer value replaces an older one, "no longer" removes it), then the
  user's other first-person statements, most central first, within the
  token budget. Questions and small talk are left out.
- **Facts** come from the rules in ``rules.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ..records.messages import Message, Role
from ..records.tokens import count_tokens
from ..records.trace import PromptPart
from .answer import answer
from .base import LLM, ExtractedFact, LLMReply
from .quotes import to_second_person
from .rules import (
    DIETS,
    PETS,
    RELATIONS,
    changes_from_text,
    reads_as_english,
    split_sentences,
    whole_word,
)
from .statements import extract_statements, statements

MODEL_ID = "offline-extractive-v2"
_QUESTION_START = re.compile(
    r"^(what|who|where|when|which|why|how|do|does|did|is|are|am|can|could|should|would|will|have|has|"
    r"tell me|remind me)\b",
    re.IGNORECASE,
)
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
# Topics a person has several of: every current fact is kept, not just the newest.
_MANY = {"uses", "likes", "allergy", "trip", "pet"}


def _fmt(template: str, m: re.Match[str]) -> str:
    return template.format(*(g.lower() for g in m.groups() if g)) if "{0}" in template else template


def fact_topic(fact: str) -> str | None:
    """The slot a summary's third-person fact fills ("The user lives in Oslo." → "location"), newest wins."""
    for pattern, template in _FACT_TOPICS:
        m = pattern.search(fact)
        if m:
            return _fmt(template, m)
    return None


Embed = Callable[[list[str]], np.ndarray]


def is_question(text: str) -> bool:
    stripped = text.strip()
    return stripped.endswith("?") or bool(_QUESTION_START.match(stripped))


def third_person(sentence: str) -> str:
    """'I need to call my mother.' -> 'The user said they need to call their mother.'

    "said they" takes the verb as "I" does, so no verb needs conjugating ("The
    user need to" was wrong); "we" is not guessed to be a team. A sentence
    whose first person is not at its start is quoted as it was said, and one
    in a language the rules do not read is left as it was said.
    """
    text = sentence.strip().rstrip(".!").replace("\u2019", "'")
    if not reads_as_english(text):
        return sentence.strip()
    if not re.match(r"(?:I|I'm|I've|I'll|We|My|Our)\b", text):
        return f'The user said: "{text}{"" if text[-1:] in ".:;?…" else "."}"'
    for pattern, repl in (
        (r"^I'm\b", "The user is"), (r"^I am\b", "The user is"), (r"^I've\b", "The user has"),
        (r"^I'll\b", "The user will"), (r"^I was\b", "The user was"), (r"^I\b", "The user said they"),
        (r"^We\b", "The user said they"), (r"^(?:My|Our)\b", "The user's"),
        (r"\bI'm\b", "they are"), (r"\bI am\b", "they are"), (r"\bI've\b", "they have"), (r"\bI was\b", "they were"),
        (r"\bI\b", "they"), (r"\bmy\b", "their"), (r"\bme\b", "them"), (r"\bmine\b", "theirs"), (r"\bwe\b", "they"),
        (r"\bour\b", "their"),
    ):  # fmt: skip
        text = re.sub(pattern, repl, text)
    return text + "."


class OfflineLLM(LLM):
    provider = "offline"
    label = "Offline provider (extractive, no model)"

    def __init__(self, embed: Embed) -> None:
        self._embed = embed
        self._notes: dict[str, np.ndarray] = {}

    # -- replies ---------------------------------------------------------
    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply:
        users = [m for m in messages if m.role is Role.USER]
        if not users:
            return LLMReply("Say something and I will answer from memory.", MODEL_ID)
        question = users[-1]
        keeps = next((p.keeps for p in system_parts if p.name == "instructions" and p.keeps), "")
        if not is_question(question.content):
            return LLMReply(self._acknowledge(question.content, keeps), MODEL_ID)
        history = [m for m in messages if m.id != question.id]
        found = answer(question.content, system_parts, history, self._embed, keeps)
        return LLMReply(found.text, MODEL_ID, used=tuple(found.used))

    @staticmethod
    def _acknowledge(text: str, keeps: str) -> str:
        """What was understood, as memory keeps it: each self-statement in the second person."""
        said = list(dict.fromkeys(s.text.rstrip(".") for s in statements(text)))
        if not said:
            return "Noted." + (f" (Offline provider: I answer from memory, which keeps {keeps}.)" if keeps else "")
        said = [t[:1].lower() + t[1:] for t in said]
        scope = f" My memory keeps {keeps}." if keeps else ""
        return "Noted: " + "; ".join(said) + "." + scope

    # -- summaries -------------------------------------------------------
    def summarize(self, previous: str, messages: list[Message], max_tokens: int) -> str:  # noqa: C901 - a fold, one pass
        facts: dict[str, str] = {}  # one key per slot (or per fact where a person has many): newest wins
        notes: list[str] = []
        for sentence in split_sentences(previous):
            topic = fact_topic(sentence)
            if topic:
                facts[_key(topic, sentence)] = sentence
            elif sentence not in notes:
                notes.append(sentence)
        for message in messages:
            if message.role is not Role.USER:
                continue  # replies only echo memory; the user's words carry the content
            for sentence in split_sentences(message.content):
                if not reads_as_english(sentence):  # kept as it was said: the rules read English only
                    if len(sentence.split()) >= 4 and sentence not in notes:
                        notes.append(sentence)
                    continue
                changes = changes_from_text(sentence)
                for c in changes:
                    _apply(facts, c.action, c.text, c.slot, c.value, c.old_value)
                if changes:
                    continue
                # The user's other self-statements (``statements.py``: no questions, requests or small talk).
                for statement in statements(sentence):
                    note = third_person(statement.clause)
                    if note not in notes and len(statement.clause.split()) >= 3:
                        notes.append(note)
        return self._fit(list(facts.values()), notes, max_tokens)

    def _fit(self, facts: list[str], notes: list[str], max_tokens: int) -> str:
        """Facts first (they are what memory is for), then the most central notes, within the budget."""
        chosen: list[str] = []
        used = 0
        for sentence in facts:
            cost = count_tokens(sentence) + 1
            if used + cost <= max_tokens:
                chosen.append(sentence)
                used += cost
        if notes:
            vectors = self._note_vectors(notes)
            centroid = vectors.mean(axis=0)
            centrality = vectors @ (centroid / (float(np.linalg.norm(centroid)) or 1.0))
            ranked = sorted(range(len(notes)), key=lambda i: (-float(centrality[i]), i))
            kept = set()
            for i in ranked:
                cost = count_tokens(notes[i]) + 1
                if used + cost <= max_tokens:
                    kept.add(i)
                    used += cost
            chosen.extend(notes[i] for i in sorted(kept))
        return " ".join(chosen)

    def _note_vectors(self, notes: list[str]) -> np.ndarray:
        """Embeddings of summary notes, remembered: a rolling summary brings back the same notes every turn,
        so a fold or an episode update embeds only the new ones and costs the same at turn 300 as at 30."""
        cache = self._notes  # shared by the page and the upkeep worker threads: single dict operations only
        known = {n: v for n in dict.fromkeys(notes) if (v := cache.get(n)) is not None}
        missing = [n for n in dict.fromkeys(notes) if n not in known]
        if missing:
            for note, vector in zip(missing, self._embed(missing)):
                known[note] = cache[note] = vector
            while len(cache) > 4096:
                try:
                    cache.pop(next(iter(cache)), None)
                except (RuntimeError, StopIteration):  # another thread changed it meanwhile
                    break
        return np.stack([known[n] for n in notes])

    # -- facts -----------------------------------------------------------
    def extract_facts(self, messages: list[Message]) -> tuple[list[ExtractedFact], list[str]]:
        return extract_statements(messages), []


def _key(topic: str | None, text: str) -> str:
    if topic and topic.split(":")[0] not in _MANY:
        return topic
    return text.lower()


def _apply(facts: dict[str, str], action: str, text: str, slot: str | None, value: str | None, old: str | None) -> None:
    """One change to the summary's facts, as the fact store would make it."""
    if action == "set":
        key = slot or _key(fact_topic(text), text)
        facts.pop(key, None)  # re-inserted last: the summary lists facts in the order they became true
        facts[key] = text
        return
    needle = (old if action == "replace" else value) or ""
    pattern = whole_word(needle)
    for key, fact in list(facts.items()):
        holds = needle and pattern.search(fact)
        if action == "delete" and (holds or (slot and key == slot and not value)):
            del facts[key]
        elif action == "replace" and holds and value:
            facts[key] = pattern.sub(value, fact)


__all__ = ["MODEL_ID", "OfflineLLM", "is_question", "third_person", "to_second_person"]
