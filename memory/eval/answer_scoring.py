"""Scoring a reply against a gold answer without a model, and LongMemEval's own judge prompts for with one.

Offline, a reply is right when it holds every content word of the gold
answer, after one general normalisation of both: case, punctuation, number
words as digits ("three" is "3", "twenty-five" is "25", "$400,000" is
"400000", "5th" is "5"), word stems ("bikes" is "bike"). A parenthesis in a gold answer
gives another way to say it or a note ("25 minutes and 50 seconds (or
25:50)", "University of California, Los Angeles (UCLA)"): the reply may match
the answer outside the parentheses or any one inside. An abstention
question (the history does not hold the answer) is right when the reply
says it does not know.

With a model, each question type is judged with the benchmark's prompt
(LongMemEval, ``src/evaluation/evaluate_qa.py``, MIT licence): the judge
answers yes or no.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..retrieval.bm25 import STOPWORDS

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)} | _TENS
_COMPOUND = re.compile(rf"\b({'|'.join(_TENS)})[- ]({'|'.join(_UNITS[1:10])})\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_TOKEN = re.compile(r"[a-z0-9]+")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_PARENS = re.compile(r"\(([^()]*)\)")
_ALTERNATIVE_LEAD = re.compile(r"^\s*(?:or|i\.e\.|e\.g\.|aka|also)\s+", re.I)
# A reply that says it cannot tell: "I don't find…", "I don't know", "not mentioned", "no information about".
_UNKNOWN = re.compile(
    r"\b(?:i (?:don't|do not|can't|cannot|couldn't|could not) (?:find|know|tell|see|recall|remember)|"
    r"(?:not|never) (?:mentioned|said|stated|told|in (?:the|my) memory)|"
    r"(?:no|not enough) (?:information|record|mention|memory)|"
    r"(?:you )?(?:haven't|have not|didn't|did not) (?:mention|say|tell))\b",
    re.I,
)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    import snowballstemmer  # type: ignore[import-untyped]

    return str(snowballstemmer.stemmer("english").stemWord(word))


def normalised_tokens(text: str) -> list[str]:
    """Lower case, number words as digits, thousands separators dropped, letters and digits only, stemmed."""
    text = _ORDINAL.sub(r"\1", _THOUSANDS.sub("", str(text).lower()))
    text = _COMPOUND.sub(lambda m: str(_TENS[m.group(1)] + _UNITS.index(m.group(2))), text)
    out = []
    for word in _TOKEN.findall(text):
        out.append(str(NUMBER_WORDS[word]) if word in NUMBER_WORDS else _stem(word))
    return out


def content_tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` that carry content (stopwords and articles left out)."""
    text = _THOUSANDS.sub("", str(text).lower())
    words = [w for w in _TOKEN.findall(text) if w not in STOPWORDS]
    return normalised_tokens(" ".join(words))


def answer_forms(gold: str) -> list[str]:
    """The gold answer without its parentheses, then each parenthesis as another way to say it."""
    inside = [_ALTERNATIVE_LEAD.sub("", p).strip() for p in _PARENS.findall(gold)]
    outside = _PARENS.sub(" ", gold).strip()
    return [f for f in [outside, *inside] if content_tokens(f)] or [gold]


def covers(reply: str, gold: str) -> bool:
    """Whether the reply holds every content word of the gold answer (in one of its forms)."""
    said = set(normalised_tokens(reply))
    return any(all(t in said for t in content_tokens(form)) for form in answer_forms(gold))


def says_unknown(reply: str) -> bool:
    """Whether the reply says the answer is not known (how an abstention question is answered right)."""
    return _UNKNOWN.search(reply) is not None


def offline_correct(reply: str, gold: str, abstention: bool) -> bool:
    """Right offline: an abstention question is answered by saying so; any other by what the reply states before
    it says what it lacks (so the words of its "I don't find…" part never count as an answer)."""
    if abstention:
        return says_unknown(reply)
    return covers(_UNKNOWN.split(reply, maxsplit=1)[0], gold)


# LongMemEval's judge prompts (src/evaluation/evaluate_qa.py, MIT licence), by question type.
_JUDGE_PLAIN = (
    "I will give you a question, a correct answer, and a response from a model. Please answer yes if the response "
    "contains the correct answer. Otherwise, answer no. If the response is equivalent to the correct answer or "
    "contains all the intermediate steps to get the correct answer, you should also answer yes. If the response "
    "only contains a subset of the information required by the answer, answer no."
)
_JUDGE_TEMPORAL = _JUDGE_PLAIN + (
    " In addition, do not penalize off-by-one errors for the number of days. If the question asks for the number "
    "of days/weeks/months, etc., and the model makes off-by-one errors (e.g., predicting 19 days when the answer "
    "is 18), the model's response is still correct."
)
_JUDGE_UPDATE = (
    "I will give you a question, a correct answer, and a response from a model. Please answer yes if the response "
    "contains the correct answer. Otherwise, answer no. If the response contains some previous information along "
    "with an updated answer, the response should be considered as correct as long as the updated answer is the "
    "required answer."
)
_JUDGE_PREFERENCE = (
    "I will give you a question, a rubric for desired personalized response, and a response from a model. Please "
    "answer yes if the response satisfies the desired response. Otherwise, answer no. The model does not need to "
    "reflect all the points in the rubric. The response is correct as long as it recalls and utilizes the user's "
    "personal information correctly."
)
_JUDGE_ABSTENTION = (
    "I will give you an unanswerable question, an explanation, and a response from a model. Please answer yes if "
    "the model correctly identifies the question as unanswerable. The model could say that the information is "
    "incomplete, or some other information is given but the asked information is not."
)
_ASK = "\n\nQuestion: {question}\n\n{label}: {answer}\n\nModel Response: {response}\n\n{ending}"


def judge_prompt(question_type: str, question: str, answer: str, response: str, abstention: bool) -> str:
    """The benchmark's judge prompt for a question of this type."""
    if abstention:
        head, label, ending = _JUDGE_ABSTENTION, "Explanation", "Does the model correctly identify the question "
        ending += "as unanswerable? Answer yes or no only."
    else:
        head = {
            "temporal-reasoning": _JUDGE_TEMPORAL,
            "knowledge-update": _JUDGE_UPDATE,
            "single-session-preference": _JUDGE_PREFERENCE,
        }.get(question_type, _JUDGE_PLAIN)
        label = "Rubric" if question_type == "single-session-preference" else "Correct Answer"
        ending = "Is the model response correct? Answer yes or no only."
    return head + _ASK.format(question=question, label=label, answer=answer, response=response, ending=ending)


def judge_verdict(reply: str) -> bool:
    """The benchmark reads a judge's reply as yes when it contains 'yes'."""
    return "yes" in reply.lower()
