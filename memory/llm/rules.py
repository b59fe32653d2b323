"""Rule-based fact extraction over the user's own statements.

Used by the offline provider, and as the fallback when a real model's
extraction reply cannot be parsed. Each rule yields a third-person fact and,
where a user has only one of a thing (a name, a home town), a *slot*: a new
fact in the same slot updates the old one instead of piling up beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..messages import Message, Role
from .base import ExtractedFact

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_VALUE = r"(.{1,120}?)"
_END = r"\s*(?:[.!,;]|$|\s+(?:and|but|so)\s)"


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], tuple[str, str | None]]


def _rule(regex: str, build: Callable[[re.Match[str]], tuple[str, str | None]], flags: int = re.IGNORECASE) -> Rule:
    return Rule(re.compile(regex, flags), build)


def _clean(value: str) -> str:
    return value.strip().strip(" .!,;:\"'")


RULES: list[Rule] = [
    # Case-sensitive apart from the lead-in, so only a capitalised second word joins the name.
    _rule(
        r"\b(?i:my name is|call me|i'm called|i am called)\s+([A-Za-z][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,2})",
        lambda m: (f"The user's name is {_clean(m.group(1))}.", "name"),
        flags=0,
    ),
    _rule(
        r"\bmy favou?rite ([a-z]+(?: [a-z]+)?) (?:is|are)\s+" + _VALUE + _END,
        lambda m: (
            f"The user's favorite {m.group(1).lower()} is {_clean(m.group(2))}.",
            f"favorite:{m.group(1).lower()}",
        ),
    ),
    _rule(
        r"\bi(?:'m| am) allergic to\s+" + _VALUE + _END,
        lambda m: (f"The user is allergic to {_clean(m.group(1))}.", None),
    ),
    _rule(
        r"\bi (?:live in|am based in|'m based in|reside in)\s+" + _VALUE + _END,
        lambda m: (f"The user lives in {_clean(m.group(1))}.", "location"),
    ),
    _rule(
        r"\bi(?:'m| am) (?:from|originally from)\s+" + _VALUE + _END,
        lambda m: (f"The user is from {_clean(m.group(1))}.", "origin"),
    ),
    _rule(
        r"\bi work (?:at|for)\s+" + _VALUE + _END, lambda m: (f"The user works at {_clean(m.group(1))}.", "employer")
    ),
    _rule(r"\bi work as (?:an? )?" + _VALUE + _END, lambda m: (f"The user works as {_clean(m.group(1))}.", "role")),
    _rule(
        r"\b(?:we use|we're using|we are using|we run|we're running|we are running|we deploy (?:on|to)|"
        r"we host on|our stack is|our team uses)\s+" + _VALUE + _END,
        lambda m: (f"The user's team uses {_clean(m.group(1))}.", None),
    ),
    _rule(
        r"\b(?:i use|i'm using|i am using|i code in|i write|i program in)\s+" + _VALUE + _END,
        lambda m: (f"The user uses {_clean(m.group(1))}.", None),
    ),
    _rule(
        r"\bi (?:really )?(?:like|love|enjoy|prefer)\s+" + _VALUE + _END,
        lambda m: (f"The user likes {_clean(m.group(1))}.", None),
    ),
    _rule(
        r"\bi (?:don't like|do not like|hate|dislike|can't stand)\s+" + _VALUE + _END,
        lambda m: (f"The user dislikes {_clean(m.group(1))}.", None),
    ),
    _rule(r"\bi have (?:an? |two |three )?" + _VALUE + _END, lambda m: (f"The user has {_clean(m.group(1))}.", None)),
    _rule(
        r"\bmy ([a-z]+(?: [a-z]+)?) (?:is|are)\s+" + _VALUE + _END,
        lambda m: (f"The user's {m.group(1).lower()} is {_clean(m.group(2))}.", f"my:{m.group(1).lower()}"),
    ),
]


def facts_from_text(text: str) -> list[tuple[str, str | None]]:
    """All (fact, slot) pairs the rules find in one user message; questions are skipped."""
    found: list[tuple[str, str | None]] = []
    for sentence in split_sentences(text):
        if sentence.endswith("?"):
            continue
        taken: list[tuple[int, int]] = []
        for rule in RULES:  # most specific first; a later rule may not reuse matched text
            for match in rule.pattern.finditer(sentence):
                start, end = match.span()
                if any(start < t_end and t_start < end for t_start, t_end in taken):
                    continue
                if not _clean(match.group(match.lastindex or 1)):
                    continue
                taken.append((start, end))
                fact = rule.build(match)
                if fact not in found:
                    found.append(fact)
    return found


def extract_facts(messages: list[Message]) -> list[ExtractedFact]:
    facts: list[ExtractedFact] = []
    for message in messages:
        if message.role is not Role.USER:
            continue
        for text, slot in facts_from_text(message.content):
            facts.append(ExtractedFact(text=text, slot=slot, source_ids=(message.id,)))
    return facts


def second_person(fact: str) -> str:
    """'The user's name is Alice.' -> "your name is Alice" (for offline acknowledgements)."""
    text = fact.rstrip(".")
    text = re.sub(r"^The user's team ", "your team ", text)
    text = re.sub(r"^The user's ", "your ", text)
    text = re.sub(r"^The user is ", "you are ", text)
    text = re.sub(r"^The user (\w+?)s\b", r"you \1", text)
    return text
