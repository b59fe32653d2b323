"""Rule-based fact extraction over the user's own statements.

Used by the offline provider, and as the fallback when a real model's
extraction reply cannot be parsed. Each statement yields *changes* to the
user's memory, not just facts:

- **set**: a third-person fact, with a *slot* where a person has only one of
  a thing (name, home town, employer, main language, diet, a trip to one
  place...): a new value in the slot updates the old one;
- **delete**: "I no longer live in Berlin", "I stopped using Go", "I left
  Klarna". Negated statements are rewritten into their positive form and run
  through the same rules, so every positive rule has its negation for free;
- **replace**: "we switched from Postgres to MySQL" rewrites whichever fact
  mentions the old value.

The small word lists (programming languages, diets, relations, job nouns)
are general knowledge that decides which slot a value belongs to; nothing
here knows any particular conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..records.messages import Message, Role
from ..retrieval.bm25 import STOPWORDS
from .base import ExtractedFact

# A sentence ends at . ! ? before a space, except after a title or a common abbreviation ("Mrs. Johnson").
_SENTENCE_SPLIT = re.compile(
    r"(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bMt\.)(?<!\bvs\.)"
    r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bProf\.)(?<=[.!?])\s+|\n+"
)
_VALUE = r"(.{1,120}?)"
_END = r"\s*(?:[.!,;]|$|\s+(?:and|but|so|because|since|with)\s)"
# A team's tool may come with its purpose ("Go and Kafka for our payment services"): stop only at a new clause.
_CLAUSE_END = (
    r"(?=\s*[.!;?]|\s*$|,?\s+and\s+(?:we|i|my|our|they|he|she|it)\b|\s+(?:but|so|because|since)\s"
    r"|,\s+(?:we|i|but|so)\b)"
)
# A value that may be a list ("Python, Go and Rust") ends where a new clause starts ("... and we run ...").
# What someone likes may be a list ("cycling and jazz"): "and" ends it only where a new clause starts.
_LIKES_END = (
    r"(?=\s*[.!;?,]|\s*$|\s+(?:but|so|because|since|with)\s"
    r"|\s+and\s+(?:we|i|my|our|they|he|she|it|the|this|that)\b)"
)
_LIST_END = (
    r"(?=\s*[.!;?]|\s*$|\s+(?:but|so|because|since|with|for|at|to|on)\s"
    r"|,?\s+and\s+(?:we|i|my|our|they|he|she|it|the|this|that)\b|,\s+(?:we|i|my|our|but|so)\b)"
)
_CAP = r"([A-Z][\w'\-]*(?:\s+(?:de|da|del|van|von|la|le)?\s*[A-Z][\w'\-]*){0,3})"
_WHEN = (
    r"(\s+(?:in|on|this|next|from|between|during|over|around|for|at the (?:end|start) of|early|late|mid)\b"
    r"[^,.;!?]{0,40}?)?(?=\s+with\b|[,.;!?]|$)"
)

LANGUAGES = {
    "python", "go", "golang", "rust", "java", "javascript", "typescript", "c", "c++", "c#", "ruby", "php",
    "kotlin", "swift", "scala", "elixir", "erlang", "haskell", "clojure", "r", "julia", "perl", "lua", "dart",
    "ocaml", "f#", "zig", "nim", "cobol", "fortran", "matlab", "objective-c", "groovy", "crystal",
}  # fmt: skip
DIETS = {
    "vegetarian", "vegan", "pescatarian", "pescetarian", "gluten-free", "keto", "halal", "kosher", "paleo",
    "flexitarian", "lactose intolerant", "dairy-free", "plant-based",
}  # fmt: skip
RELATIONS = (
    "sister|brother|wife|husband|partner|girlfriend|boyfriend|fiancee|fiancé|fiance|mother|mom|mum|father|dad|"
    "son|daughter|manager|boss|best friend|friend|cousin|aunt|uncle|grandmother|grandfather|grandma|grandpa|"
    "colleague|roommate|flatmate|neighbour|neighbor|mentor|teammate"
)
PETS = "dog|cat|puppy|kitten|rabbit|hamster|parrot|horse|guinea pig|turtle|fish|bird"
JOB_NOUNS = (
    r"engineer|developer|designer|manager|teacher|nurse|doctor|scientist|analyst|consultant|architect|student|"
    r"researcher|writer|lawyer|accountant|administrator|admin|programmer|founder|ceo|cto|director|lead|intern|"
    r"editor|journalist|chef|pharmacist|professor|lecturer|technician|officer|specialist|coordinator|sre"
)
_TRAILING = re.compile(r"\s+(?:now|these days|nowadays|at the moment|currently|again|instead|as well|too)$", re.I)


# A sentence is read as English when at least this share of its words are English function words (the
# stopwords BM25 drops). On LoCoMo's English turns 99 % of the sentences of four words or more reach it;
# a sentence in another language rarely does (its "a", "me" or "in" are a few words among many).
ENGLISH_SHARE = 0.2
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def reads_as_english(text: str) -> bool:
    """Whether the English rules can rewrite ``text``; text in another language is left as it was said.

    Rewriting the pronouns of a sentence in another language turned "Hola, me
    llamo Lucía" into "Hola, them llamo Lucía".
    """
    words = [w.lower() for w in _WORD.findall(text.replace("\u2019", "'"))]
    return not words or sum(w in STOPWORDS for w in words) >= ENGLISH_SHARE * len(words)


def whole_word(phrase: str, plurals: bool = False) -> re.Pattern[str]:
    """``phrase`` as a whole word or phrase, ignoring case: "Go" is not in "Gothenburg"."""
    return re.compile(rf"(?<!\w){re.escape(phrase)}{'(?:s|es)?' if plurals else ''}(?!\w)", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


def _clean(value: str) -> str:
    value = value.strip().strip(" .!,;:\"'")
    previous = None
    while previous != value:
        previous, value = value, _TRAILING.sub("", value).strip(" .!,;:\"'")
    return value


def _is_language_list(value: str) -> bool:
    items = [v.strip().lower() for v in re.split(r",\s*|\s+and\s+|\s+or\s+|\s*&\s*", value) if v.strip()]
    return bool(items) and all(item in LANGUAGES for item in items)


def _diet(value: str) -> str | None:
    v = value.lower().strip()
    return v if v in DIETS else None


@dataclass(frozen=True)
class Change:
    """One change a statement makes: set a fact, delete one, or replace a value inside one."""

    action: str  # "set" | "delete" | "replace"
    text: str
    slot: str | None = None
    value: str | None = None
    old_value: str | None = None


Build = Callable[[re.Match[str]], "Change | list[Change] | None"]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    build: Build


def _rule(regex: str, build: Build, flags: int = re.IGNORECASE) -> Rule:
    return Rule(re.compile(regex, flags), build)


def _set(text: str, slot: str | None, value: str) -> Change:
    return Change("set", text, slot, value)


def _their(value: str) -> str:
    return re.sub(r"\b(?:our|my)\b", "their", value)


def _items(value: str) -> list[str]:
    return [v.strip() for v in re.split(r",\s*(?:and\s+)?|\s+and\s+|\s*&\s*", value) if v.strip()]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _uses(value: str) -> list[Change]:
    """Languages go to the one 'language' slot; anything else is a tool the user uses (several may be)."""
    items = _items(value)
    languages = [i for i in items if i.lower() in LANGUAGES]
    others = [i for i in items if i.lower() not in LANGUAGES]
    out = [_set(f"The user codes in {_join(languages)}.", "language", _join(languages))] if languages else []
    if others:
        out.append(_set(f"The user uses {_join(others)}.", None, _join(others)))
    return out


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _leading_languages(value: str) -> str | None:
    """'Rust for the new services' -> 'Rust': the languages a value starts with, if any."""
    words = re.split(r"\s+(?:for|in|on|at|to|because|since|as)\s+", value, maxsplit=1)[0]
    return words if _is_language_list(words) else None


def _switch(m: re.Match[str]) -> Change | None:
    old, new = _clean(m.group(1) or ""), _clean(m.group(2))
    if not new:
        return None
    new = _leading_languages(new) or new
    if _is_language_list(new):
        return _set(f"The user codes in {new}.", "language", new)
    if _diet(new):
        return _set(f"The user is {new.lower()}.", "diet", new)
    if old:
        return Change("replace", f"The user uses {new}.", None, new, old)
    return _set(f"The user uses {new}.", None, new)


def _trip(m: re.Match[str]) -> Change:
    place = _clean(m.group(1))
    when = (m.group(2) or "").strip()
    company = f" with their {m.group(3).lower()}" if m.lastindex and m.lastindex >= 3 and m.group(3) else ""
    return _set(
        f"The user is planning a trip to {place}{' ' + when if when else ''}{company}.", f"trip:{place.lower()}", place
    )


_WITH = rf"(?:\s+with\s+(?:my|our)\s+({RELATIONS}|family|kids|friends))?"

# Most specific first: a later rule may not reuse text an earlier one matched.
RULES: list[Rule] = [
    # Case-sensitive apart from the lead-in, so only capitalised words join a name or a place.
    _rule(
        r"\b(?i:my name is|call me|i'm called|i am called|my name's)\s+([A-Za-z][\w'\-]*(?:\s+[A-Z][\w'\-]*){0,2})",
        lambda m: _set(f"The user's name is {_clean(m.group(1))}.", "name", _clean(m.group(1))),
        flags=0,
    ),
    _rule(
        r"\b(?i:i(?:'ve| have)?|we(?:'ve| have)?)\s+(?i:just\s+|recently\s+|finally\s+)?(?i:moved|relocated)"
        r"\s+(?i:from\s+[A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*)*\s+)?(?i:to)\s+" + _CAP,
        lambda m: _set(f"The user lives in {_clean(m.group(1))}.", "location", _clean(m.group(1))),
        flags=0,
    ),
    _rule(
        r"\bi(?:'ve| have)?\s+(?:just\s+)?(?:switched|migrated|changed|moved)(?:\s+over)?(?:\s+from\s+(.{1,40}?))?"
        r"\s+to\s+" + _VALUE + _END,
        _switch,
    ),
    _rule(
        r"\bwe(?:'ve| have)?\s+(?:just\s+)?(?:switched|migrated|changed|moved)(?:\s+over)?(?:\s+from\s+(.{1,40}?))?"
        r"\s+to\s+" + _VALUE + _END,
        _switch,
    ),
    _rule(
        r"\b(?i:i(?:'m| am)|we(?:'re| are)|i(?:'ll| will) be)\s+(?i:planning|taking|going on|off on|booking|booked)"
        r"\s+(?i:a|my|our|the)\s+(?i:trip|holiday|vacation|journey|visit)\s+(?i:to)\s+" + _CAP + _WHEN + _WITH,
        _trip,
        flags=0,
    ),
    _rule(
        r"\b(?i:i(?:'m| am)|we(?:'re| are)|i(?:'ll| will) be|i plan to be|i(?:'m| am) planning to)\s+"
        r"(?i:going|travel(?:l)?ing|flying|heading|visiting|going back|travel|fly|go)\s+(?i:to\s+)?"
        + _CAP
        + _WHEN
        + _WITH,
        _trip,
        flags=0,
    ),
    _rule(
        r"\bmy (?:(?:new|current) )?favou?rite ([a-z]+(?: [a-z]+)?) (?:is|are)\s+" + _VALUE + _END,
        lambda m: _set(
            f"The user's favorite {m.group(1).lower()} is {_clean(m.group(2))}.",
            f"favorite:{m.group(1).lower()}",
            _clean(m.group(2)),
        ),
    ),
    _rule(
        rf"\bmy ({RELATIONS})(?:'s name is| is called| is named|,?\s+who is called)\s+"
        + r"([A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*)?)",
        lambda m: _set(
            f"The user's {m.group(1).lower()} is called {m.group(2)}.", f"relation:{m.group(1).lower()}", m.group(2)
        ),
        flags=re.IGNORECASE,
    ),
    _rule(
        rf"\bi have an? ({PETS}) (?:called|named)\s+([A-Z][\w'\-]*)",
        lambda m: _set(
            f"The user has a {m.group(1).lower()} called {m.group(2)}.", f"pet:{m.group(1).lower()}", m.group(2)
        ),
    ),
    _rule(
        rf"\bi have an? ({RELATIONS}) (?:called|named)\s+([A-Z][\w'\-]*)",
        lambda m: _set(
            f"The user's {m.group(1).lower()} is called {m.group(2)}.", f"relation:{m.group(1).lower()}", m.group(2)
        ),
    ),
    _rule(
        r"\bi(?:'m| am) (?:married to|engaged to)\s+([A-Z][\w'\-]*(?:\s+[A-Z][\w'\-]*)?)",
        lambda m: _set(f"The user's partner is called {m.group(1)}.", "relation:partner", m.group(1)),
    ),
    _rule(
        r"\bi(?:'m| am) allergic to\s+" + _VALUE + _END,
        lambda m: _set(f"The user is allergic to {_clean(m.group(1))}.", None, _clean(m.group(1))),
    ),
    _rule(
        r"\bi (?:(?:stopped|quit|gave up) eating|(?:don't|do not|no longer) eat)\s+" + _VALUE + _END,
        lambda m: _set(f"The user doesn't eat {_clean(m.group(1))}.", "diet", _clean(m.group(1))),
    ),
    _rule(
        r"\bi(?:'m| am)(?: now| currently)?(?: a| an)?\s+(" + "|".join(re.escape(d) for d in sorted(DIETS)) + r")\b",
        lambda m: _set(f"The user is {m.group(1).lower()}.", "diet", m.group(1)),
    ),
    _rule(
        r"\bi(?: now| currently)? (?:live in|reside in)\s+" + _VALUE + _END,
        lambda m: _set(f"The user lives in {_clean(m.group(1))}.", "location", _clean(m.group(1))),
    ),
    _rule(
        r"\bi(?:'m| am)(?: now| currently)? based in\s+" + _VALUE + _END,
        lambda m: _set(f"The user lives in {_clean(m.group(1))}.", "location", _clean(m.group(1))),
    ),
    _rule(
        r"\bi(?:'m| am) (?:from|originally from)\s+" + _VALUE + _END,
        lambda m: _set(f"The user is from {_clean(m.group(1))}.", "origin", _clean(m.group(1))),
    ),
    _rule(
        r"\b(?i:i)\s+(?i:(?:now |currently )?work (?:at|for)|joined|started (?:a new job |working |my new job )?at|"
        r"got a (?:new )?job (?:at|with)|(?:have |'ve )?moved jobs to|took a job at)\s+" + _CAP,
        lambda m: _set(f"The user works at {_clean(m.group(1))}.", "employer", _clean(m.group(1))),
        flags=0,
    ),
    _rule(
        r"\bi work as (?:an? )?" + _VALUE + _END,
        lambda m: _set(f"The user works as {_article(_clean(m.group(1)))}.", "role", _clean(m.group(1))),
    ),
    _rule(
        r"\b(?i:(?:i(?:'m| am|'ve become| became| got promoted to)(?: now)?|as) (?:an? |the )?((?:[a-z\-]+ ){0,3}(?:"
        + JOB_NOUNS
        + r")))\b(?:\s+(?i:at|for|with)\s+"
        + _CAP
        + r")?",
        lambda m: (
            [_set(f"The user works as {_article(m.group(1).lower())}.", "role", m.group(1))]
            + ([_set(f"The user works at {_clean(m.group(2))}.", "employer", _clean(m.group(2)))] if m.group(2) else [])
        ),
        flags=0,
    ),
    _rule(
        r"\b(?:we use|we're using|we are using|we run|we're running|we are running|we deploy (?:on|to)|"
        r"we host on|our stack is|our team uses)\s+(.{1,120}?)" + _CLAUSE_END,
        lambda m: _set(f"The user's team uses {_their(_clean(m.group(1)))}.", None, _their(_clean(m.group(1)))),
    ),
    _rule(
        r"\bi(?: now| mostly| mainly)? (?:use|code in|program in|write|work in)\s+(.{1,120}?)" + _LIST_END,
        lambda m: _uses(_clean(m.group(1))),
    ),
    _rule(
        r"\bi(?:'m| am) (?:now )?using\s+(.{1,120}?)" + _LIST_END,
        lambda m: _uses(_clean(m.group(1))),
    ),
    _rule(
        r"\bi (?:really )?(?:like|love|enjoy|prefer)\s+(.{1,120}?)" + _LIKES_END,
        lambda m: _set(f"The user likes {_clean(m.group(1))}.", None, _clean(m.group(1))),
    ),
    _rule(
        r"\bi (?:don't like|do not like|hate|dislike|can't stand)\s+" + _VALUE + _END,
        lambda m: _set(f"The user dislikes {_clean(m.group(1))}.", None, _clean(m.group(1))),
    ),
    _rule(
        r"\bmy ([a-z]+(?: [a-z]+)?) (?:is|are)\s+" + _VALUE + _END,
        lambda m: _set(
            f"The user's {m.group(1).lower()} is {_clean(m.group(2))}.", f"my:{m.group(1).lower()}", _clean(m.group(2))
        ),
    ),
    _rule(
        r"\bi have (?:an? |two |three )?" + _VALUE + _END,
        lambda m: _set(f"The user has {_clean(m.group(1))}.", None, _clean(m.group(1))),
    ),
]

# Statements that take something away. Each rewrites the sentence into the
# positive statement it negates; the rules above then say what to delete.
_NEGATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bi(?:'m| am) (?:no longer|not) (.+?)(?:\s+any ?more)?$", re.I), r"I'm \1"),
    (re.compile(r"\bi no longer (.+?)(?:\s+any ?more)?$", re.I), r"I \1"),
    # "I don't like meetings" states a dislike; only "... anymore" takes something back.
    (re.compile(r"\bi (?:don't|do not) (.+?)\s+any ?more$", re.I), r"I \1"),
    (re.compile(r"\bi(?:'ve| have)? (?:stopped|quit|gave up) using (.+)$", re.I), r"I use \1"),
    (re.compile(r"\bwe(?:'ve| have)? (?:stopped|quit) using (.+)$", re.I), r"we use \1"),
    (re.compile(r"\bwe no longer (.+?)(?:\s+any ?more)?$", re.I), r"we \1"),
    (re.compile(r"\bwe (?:don't|do not) (.+?)\s+any ?more$", re.I), r"we \1"),
    (
        re.compile(
            r"\b(?i:i)(?:'ve| have)? (?i:left|quit)(?i: my job at| my job with| working at| working for)? ([A-Z].+)$"
        ),
        r"I work at \1",
    ),
    (
        re.compile(r"\bi(?:'ve| have)? (?:cancel+ed|called off) (?:my|our|the) (trip|holiday|vacation) to (.+)$", re.I),
        r"I'm planning a \1 to \2",
    ),
]


def _delete(change: Change) -> Change:
    return Change("delete", change.text, change.slot, change.value)


def _deletions(sentence: str) -> list[Change]:
    body = sentence.rstrip(".!")
    for pattern, positive in _NEGATIONS:
        m = pattern.search(body)
        if m and not re.search(
            r"\b(?:stopped|quit|gave up) eating\b|\bdon't eat\b|\bdo not eat\b|\bno longer eat\b", body, re.I
        ):
            rewritten = pattern.sub(positive, body, count=1)
            return [_delete(c) for c in _apply_rules(rewritten) if c.action == "set"]
    return []


def _apply_rules(sentence: str) -> list[Change]:
    found: list[Change] = []
    taken: list[tuple[int, int]] = []
    for rule in RULES:
        for match in rule.pattern.finditer(sentence):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            if not _clean(match.group(match.lastindex or 1) or ""):
                continue
            built = rule.build(match)
            changes = [c for c in (built if isinstance(built, list) else [built]) if c is not None and c.value]
            if not changes:
                continue
            taken.append((start, end))
            found.extend(c for c in changes if c not in found)
    return found


def changes_from_text(text: str) -> list[Change]:
    """Every change one user message makes to their memory; questions change nothing."""
    out: list[Change] = []
    for sentence in split_sentences(text):
        if sentence.endswith("?"):
            continue
        changes = _deletions(sentence) or _apply_rules(sentence)
        out.extend(c for c in changes if c not in out)
    return out


def facts_from_text(text: str) -> list[tuple[str, str | None]]:
    """The (fact, slot) pairs a message states (set changes only)."""
    return [(c.text, c.slot) for c in changes_from_text(text) if c.action == "set"]


def extract_facts(messages: list[Message]) -> list[ExtractedFact]:
    facts: list[ExtractedFact] = []
    for message in messages:
        if message.role is not Role.USER:
            continue
        for c in changes_from_text(message.content):
            facts.append(ExtractedFact(c.text, c.slot, (message.id,), c.action, c.value, c.old_value))
    return facts


def second_person(fact: str) -> str:
    """'The user's name is Alice.' -> "your name is Alice" (for offline replies)."""
    text = fact.rstrip(".")
    text = re.sub(r"\bThe user's team\b", "your team", text)
    text = re.sub(r"\bThe user's\b", "your", text)
    text = re.sub(r"\bThe user is\b", "you are", text)
    text = re.sub(r"\bThe user was\b", "you were", text)
    text = re.sub(r"\bThe user doesn't\b", "you don't", text)
    text = re.sub(r"\bThe user has\b", "you have", text)
    text = re.sub(r"\bThe user does\b", "you do", text)
    text = re.sub(r"\bThe user mentioned:\s*", "", text)  # a summary's note: the user's own sentence follows
    text = re.sub(r"\bThe user (\w+?)s\b", r"you \1", text)
    text = re.sub(r"\btheir\b", "your", text)
    return text
