"""Statement memory: what a user says about themselves, kept in their own words, turned to the second person.

Why: slot rules (``rules.py``) fire on a few percent of what people say; a
person's life does not fit a grammar of names, cities and employers. So
every self-statement is kept: a message is split into sentences and
clauses, and each clause that is a first-person declarative is kept as a
memory, "I moved to Lisbon last spring" becoming "You moved to Lisbon last
spring", with the id and time of the message it came from.

Which clauses are statements is decided by their shape, never by their
topic:

- a first-person subject near the start ("I", "we", "my sister", "our
  team"; after a short lead-in such as "By the way," or "Last month");
- declarative mood: not a question (no "?", no inverted auxiliary or
  question word in front), not a request to the assistant (no "you", no
  "please", no asking for help or advice), not a condition ("if I...");
- some content beyond acknowledgement ("I see", "I'm glad", "I'll try
  that") and no pointing back at the assistant's words ("those ideas").

Clauses are split where a coordinator starts a new subject ("I'm Priya and
I just moved to Porto" is two statements), so several facts in one
sentence are all kept, each in full, with the names beside their relation
("your brother Diego"). The slot rules still read each statement and
annotate it (name, home, employer...), so a newer statement in the same
slot supersedes the older one (``fact_store.py``); a statement with a
change cue ("now", "moved", "switched", "no longer"...) also supersedes a
close older statement about the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..records.messages import Message, Role
from .base import ExtractedFact
from .rules import Change, changes_from_text, second_person, split_sentences

MAX_WORDS = 60  # a longer clause is a pasted text or a run-on, not a statement to keep
# Where a clause ends inside a sentence: a semicolon, a coordinator before a new subject, a dash, a question
# tagged on after a comma. Not "but": a contrast keeps its two halves together ("I used Sketch for years but I
# switched to Figma"); not a bare comma: the clause after it mostly goes on about the same thing ("I'm going back
# to Hawaii, I loved it there").
# Only a first-person subject starts a new statement: "and it took me 4 hours", "and he loves it" go on about
# what the clause before them said, and stay with it.
_SUBJECTS = r"(?:I|I'm|I've|I'd|I'll|I am|we|we're|we've|we'd|we'll|my|our)"
_CLAUSE_SPLIT = re.compile(
    rf"\s*;\s*|,?\s+(?:and|so|or|plus)\s+(?={_SUBJECTS}\b)|\s+[-—]\s+|:\s+(?=[A-Z])"
    r"|,\s+(?=(?:have|has|do|does|did|can|could|would|will|should|is|are|was|were)\s+you\b)"  # ", have you…?"
)
_DASH = re.compile(r"\s+[-—]\s+")
# A first-person subject: "I" (and its contractions), "we", or a first-person possessive starting the subject.
_FIRST_SUBJECT = re.compile(r"^(?:I|I'm|I've|I'd|I'll|Im|Ive|we|we're|we've|we'd|we'll)$", re.I)
_POSSESSIVE = re.compile(r"^(?:my|our)$", re.I)
_LEAD_WORDS = 4  # words a lead-in may take before the subject ("Last month I...", "So I think I...")
_QUESTION_START = re.compile(
    r"^(?:what|who|whom|whose|where|when|which|why|how|do|does|did|is|are|am|was|were|can|could|should|would|will|"
    r"shall|may|might|have|has|had|isn't|aren't|don't|doesn't|didn't|won't|wouldn't|can't|couldn't|shouldn't)\b",
    re.I,
)
_WH_QUESTION = re.compile(
    r"^(?:what|who|where|when|which|why|how)(?:'s|'re)?\s+(?:is|are|was|were|do|does|did|can|could|should|would|"
    r"will|have|has|had|much|many|long|often|about|else|kind|sort|type)\b",
    re.I,
)
_CONDITION = re.compile(r"^(?:if|unless|whether|in case|suppose|supposing|imagine)\b", re.I)
_ADDRESSEE = re.compile(r"\b(?:you|your|yours|yourself|you're|you've|you'd|you'll|u|please|pls)\b", re.I)
# Asking, in the first person, for the assistant's input: a request however it is worded.
_ASKING = re.compile(
    r"\b(?:wonder(?:ing|ed)?|curious (?:about|to|if|whether|how|what)|"
    r"(?:need|want|would like|'d like|would love|'d love|looking for|searching for|seeking|hoping for|"
    r"interested in|could use|appreciate)\s+(?:some |any |a few |more |your |a bit of )?"
    r"(?:help|advice|tips|suggestions?|recommendations?|ideas|guidance|information|info|feedback|input|"
    r"resources|pointers|insights?|options|assistance)|"
    r"(?:want|need|'d like|would like|wanted) to (?:know|ask|learn more|find out|understand|get some)|"
    r"help me|tell me|show me|remind me|give me|let me know)\b",
    re.I,
)
# Words that acknowledge or manage the talk rather than say something: a clause of only these says nothing.
_TALK = frozenset(
    """
i i'm i've i'd i'll im ive me my mine myself we we're we've we'd we'll us our ours ourselves a an the and or but so
to of in on at for with it it's its that that's this these those there here is are was were be been being am do
does did done have has had just really very too also actually definitely totally certainly probably maybe
think thought guess suppose believe know knew see saw agree agreed understand understood glad happy excited
thanks thank appreciate appreciated great good nice cool awesome perfect wonderful amazing helpful useful
interesting sure ok okay alright yes yeah yep no nope right true fine well sounds sound seems seem makes make
sense try tried trying check checking look looking give go going will would could should can might must
much lot lots bit some any all more most now then again still already idea ideas tip tips suggestion
suggestions advice help information point points way thing things stuff
""".split()
)
_DEIXIS = re.compile(r"\b(?:these|those)\b", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.:/%\-]*")
_LEAD_IN = re.compile(r"^[^,]{1,40},\s+")
# The user as subject or owner ("me" alone is mostly the object of a request: "call me Mai", "tell me…").
_FIRST_ANYWHERE = re.compile(r"\b(?:I|I'm|I've|I'd|I'll|my|mine|we|our)\b")
# A statement that says something changed: it may take the place of a close older statement without a shared slot.
CHANGE_CUE = re.compile(
    r"\b(?:now|currently|these days|nowadays|no longer|not anymore|anymore|any more|instead|moved|relocated|"
    r"switched|switching|changed|quit|sold|left|stopped|replaced|upgraded|downgraded|gave up|got rid of|"
    r"started|began|became|finished|cancel+ed|ended|broke up|retired|updated)\b",
    re.I,
)


@dataclass(frozen=True)
class Statement:
    """One self-statement: the user's clause, the same in the second person, and the slot rules' reading of it."""

    clause: str
    text: str  # second person: what the memory keeps and what a reply quotes
    changes: tuple[Change, ...] = ()
    cue: bool = False


def _pieces(sentence: str) -> list[tuple[str, str]]:
    """The sentence's clauses, each with the separator before it. Two dashes are a parenthesis, not two ends
    ("my mixed ethnicity - Irish and Italian - has shaped my upbringing")."""
    pieces: list[tuple[str, str]] = []
    start, separator = 0, ""
    paired = len(_DASH.findall(sentence)) > 1
    for m in _CLAUSE_SPLIT.finditer(sentence):
        after = sentence[m.end() :]
        # A dash ends a clause only before another ("… - remember when I…?"), not before what it adds ("my
        # highest score in Ticket to Ride - 132 points").
        if _DASH.fullmatch(m.group(0)) and (
            paired or (_subject_at(after) is None and not after.rstrip().endswith("?"))
        ):
            continue
        pieces.append((sentence[start : m.start()], separator))
        separator, start = m.group(0), m.end()
    pieces.append((sentence[start:], separator))
    return pieces


def clauses(sentence: str) -> list[str]:
    """A sentence's clauses, split where a new subject starts ("I'm Priya and I just moved to Porto")."""
    return [c.strip(" ,") for c, _ in _pieces(sentence) if c and c.strip(" ,")]


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _strip_lead_in(clause: str) -> str:
    """'By the way, speaking of my health, I'm…' → "I'm…": short lead-ins before a comma go when they hold no
    first-person subject and what follows them starts with one."""
    rest = clause
    for _ in range(3):
        m = _LEAD_IN.match(rest)
        if not m or any(_FIRST_SUBJECT.match(w) for w in _words(m.group(0))):
            break
        rest = rest[m.end() :]
        if _subject_at(rest) is not None:
            return rest
    return clause


def _subject_at(clause: str) -> int | None:
    """Where the first-person subject stands (word index), if the clause has one near its start."""
    words = _words(clause)
    for i, word in enumerate(words[: _LEAD_WORDS + 1]):
        if _FIRST_SUBJECT.match(word):
            return i
        if _POSSESSIVE.match(word) and i <= 1 and len(words) > i + 2:
            return i
        if i == 0 and _QUESTION_START.match(word):
            return None
    return None


def is_question(clause: str) -> bool:
    text = clause.strip()
    return text.endswith("?") or bool(_WH_QUESTION.match(text)) or bool(_QUESTION_START.match(text) and " you" in text)


def is_request(clause: str) -> bool:
    """Addressed to the assistant (second person, "please") or asking for its input ("I was wondering…")."""
    return bool(_ADDRESSEE.search(clause) or _ASKING.search(clause))


def says_something(clause: str, at_least: int = 1) -> bool:
    """More than acknowledgement, and not about the assistant's last words ("I'll try those ideas")."""
    content = [w for w in _words(clause.lower()) if w.strip("'") not in _TALK]
    return len(content) >= at_least and not _DEIXIS.search(clause)


def is_statement(clause: str) -> bool:
    """A first-person declarative that says something: the shape of a self-statement. The first person is its
    subject ("I moved…", "my sister lives…"), or is in it, about a thing of the user's ("Nike has been my
    favourite brand"), saying more than a passing judgement ("That sounds perfect for my trip")."""
    words = _words(clause)
    if not 2 <= len(words) <= MAX_WORDS:
        return False
    if _subject_at(clause) is None and not (_FIRST_ANYWHERE.search(clause) and says_something(clause, 2)):
        return False
    if is_question(clause) or _CONDITION.match(clause) or is_request(clause):
        return False
    return says_something(clause)


_SECOND_PERSON: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, flags), repl)
    for pattern, repl, flags in (
        (r"\bI am\b", "you are", 0), (r"\bI'm\b|\bIm\b", "you're", 0), (r"\bI was\b", "you were", 0),
        (r"\bI wasn't\b", "you weren't", 0), (r"\bI've\b|\bIve\b", "you've", 0), (r"\bI'll\b", "you'll", 0),
        (r"\bI'd\b", "you'd", 0), (r"\bI\b", "you", 0), (r"\bme\b", "you", re.I), (r"\bmy\b", "your", re.I),
        (r"\bmine\b", "yours", re.I), (r"\bmyself\b", "yourself", re.I), (r"\bwe're\b", "you're", re.I),
        (r"\bwe've\b", "you've", re.I), (r"\bwe'll\b", "you'll", re.I), (r"\bwe'd\b", "you'd", re.I),
        (r"\bwe were\b", "you were", re.I), (r"\bwe\b", "you", re.I), (r"\bour\b", "your", re.I),
        (r"\bours\b", "yours", re.I), (r"\bus\b", "you", 0), (r"\bourselves\b", "yourselves", re.I),
    )
]  # fmt: skip


def to_second_person(clause: str) -> str:
    """'I moved to Lisbon last spring' → 'You moved to Lisbon last spring.' (the statement as memory keeps it)."""
    text = clause.strip().rstrip(" .!;,:")
    for pattern, repl in _SECOND_PERSON:
        text = pattern.sub(repl, text)
    text = re.sub(r"\byou (?:really |also |actually |just |still |now )?am\b", lambda m: m.group(0)[:-2] + "are", text)
    return text[:1].upper() + text[1:] + "."


def declarative_part(sentence: str) -> str:
    """The sentence without its questions and requests ("I've been trying noodles, and I was wondering if you
    could…?" → "I've been trying noodles"), in its own words; "" when nothing is left."""
    kept: list[str] = []
    for clause, before in _pieces(sentence):
        text = clause.strip()
        if not text:
            continue
        if is_question(text) or is_request(text):
            if kept:
                break  # what follows a question or a request belongs to it
            continue
        kept.append((before if kept else "") + text)
    return "".join(kept).strip(" ,;-—")


def _rule_fact(change: Change) -> str:
    """A slot rule's own fact ('The user's name is Mai.'), in the second person ('Your name is Mai.')."""
    text = second_person(change.text).strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def statements(text: str) -> list[Statement]:
    """Every self-statement of a user's message, in order; a slot rule that reads a clause which is not a
    statement (an imperative such as "call me Mai") keeps its own fact, in the second person."""
    out: list[Statement] = []
    for sentence in split_sentences(text):
        for raw in clauses(sentence):
            clause = _strip_lead_in(raw)
            changes = tuple(changes_from_text(clause if clause.endswith("?") else clause.rstrip(".!") + "."))
            if is_statement(clause):
                out.append(Statement(clause, to_second_person(clause), changes, bool(CHANGE_CUE.search(clause))))
            elif not clause.endswith("?") and not is_question(clause):
                for change in changes:
                    if change.action == "set":
                        out.append(Statement(clause, _rule_fact(change), (change,), bool(CHANGE_CUE.search(clause))))
    return out


def as_fact(statement: Statement, message: Message) -> ExtractedFact:
    """A statement as a change to memory: its slots (what it sets), what it takes back, its source message."""
    sets = [c for c in statement.changes if c.action == "set" and c.slot]
    takes_back = tuple((c.slot or "", c.value) for c in statement.changes if c.action == "delete" and c.value) + tuple(
        ("", c.old_value) for c in statement.changes if c.action == "replace" and c.old_value
    )
    slots = list(dict.fromkeys([c.slot for c in sets if c.slot] + [c.slot for c in statement.changes if c.slot]))
    return ExtractedFact(
        statement.text,
        "|".join(slots) or None,
        (message.id,),
        action="state",
        value="; ".join(c.value for c in sets if c.value) or None,
        said_at=message.created_at,
        change_cue=statement.cue,
        takes_back=takes_back,
        reads="; ".join(dict.fromkeys(second_person(c.text) for c in statement.changes if c.action == "set")),
    )


CONTEXT_CHARS = 300  # of what was said around a statement, kept for search


def extract_statements(messages: list[Message]) -> list[ExtractedFact]:
    """The user's self-statements in ``messages``, as facts to remember (assistant messages say none), each with
    the clauses said just before and after it in its message: "I loved it there" is found by a question about
    Hawaii when the clause before it named Hawaii."""
    facts: list[ExtractedFact] = []
    for message in messages:
        if message.role is not Role.USER:
            continue
        said = [c for sentence in split_sentences(message.content) for c in clauses(sentence)]
        for statement in statements(message.content):
            at = next((i for i, c in enumerate(said) if statement.clause in c), -1)
            around = [said[i] for i in (at - 1, at + 1) if at >= 0 and 0 <= i < len(said)]
            fact = as_fact(statement, message)
            facts.append(replace(fact, context=" … ".join(around)[:CONTEXT_CHARS]) if around else fact)
    return facts
