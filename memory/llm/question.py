"""What a question asks: its clauses, the noun phrase it asks for, the kind of answer it expects, whom it is about.

Read from the question's syntax (its wh-word, its pronouns, its auxiliary),
never from its topic, so the answerer (``answer.py``) can weigh what the
memory holds against what the question takes as given.
"""

from __future__ import annotations

import re

from ..retrieval import tokenize

_WH = re.compile(r"^\s*(?:what|who|where|when|which|why|how|do|does|did|is|are|am|can|could|have|has|tell me)\b", re.I)
_ABOUT_USER = re.compile(r"\b(?:I|I'm|I've|I'd|me|my|mine|myself|we|our|us)\b", re.I)
_ABOUT_ASSISTANT = re.compile(r"\b(?:you|your|you've|you'd|you're)\b", re.I)
# What a question asks for (its wh-phrase's noun: "what play did I…", "which design tool…", "what's my name",
# "what is the name of…"): an answer is an instance of it, so the memory need not use the words; the
# question's other words are what it takes as given, and the memory must hold them.
_AUX = r"(?:do|does|did|is|are|was|were|am|have|has|had|can|could|should|would|will|i|my|you|your)"
_ASKED = [
    # "What kind of business do I run?" asks for a kind of business: "a bakery" answers it without saying either.
    re.compile(r"^\s*(?:what|which)\s+((?:kind|type|sort|brand|make|model|size|colou?r|flavou?r|style)\s+of"
               rf"(?:\s+(?!{_AUX}\b)[\w'-]+){{0,2}}?)(?=\s+{_AUX}\b|\s*[?,.]|$)", re.I),
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
    # "What play did I see?", "which brand…": an instance of the thing asked for, mostly a name or a number.
    (re.compile(rf"^\s*(?:what|which)\s+(?!{_AUX}\b)[\w'-]+(?:\s+[\w'-]+)?\s+{_AUX}\b", re.I),
     re.compile(_NAME + r"|\d")),
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


_PAST = re.compile(
    r"\b(?:previous|previously|before|used to|originally|at first|initially|formerly|(?<!how )old)\b", re.I
)


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


_YES_NO = re.compile(r"^\s*(?:do|does|did|is|are|am|was|were|have|has|had|can|could|will|would|should)\b", re.I)
_NEGATED = re.compile(r"\b(?:not|no longer|never|n't|no)\b", re.I)


def yes_or_no(clause: str, text: str) -> str:
    """A yes/no question ("Do I still…?", "Is my mom…?") is answered yes or no, then by what says so."""
    if not _YES_NO.match(clause):
        return text
    return ("No: " if _NEGATED.search(text) and not _NEGATED.search(clause) else "Yes: ") + text[:1].lower() + text[1:]


def about_whom(clause: str) -> str | None:
    """ "user" for a question about what the user said ("where do I…"), "assistant" for one about what the
    assistant said ("what did you recommend"), None when it is about both or neither."""
    user, assistant = bool(_ABOUT_USER.search(clause)), bool(_ABOUT_ASSISTANT.search(clause))
    return None if user == assistant else ("user" if user else "assistant")


def asks_how_things_were(clause: str) -> bool:
    """ "What was my previous…", "how often did I play before": the oldest of a subject's statements answers."""
    return _PAST.search(clause) is not None


_CAPITALISED = re.compile(r"(?<=[\w,;:'\"] )[A-Z][\w'\-]*")


def names_in(clause: str) -> list[str]:
    """The capitalised words inside a question (not its first word, not "I"): the names it takes as given."""
    return [w for w in _CAPITALISED.findall(clause) if w not in ("I", "I'm", "I've", "I'd", "I'll")]
