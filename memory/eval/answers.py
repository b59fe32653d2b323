"""Answer quality, not only recall: the configured LLM answers each question from what was retrieved.

For each question of a turn-level recall run, the top-``k`` retrieved turns
become the model's memory (a "past turns" prompt part, as the strategies
send it) and the question its message. The reply is scored against the gold
answer with LoCoMo's token F1 (lowercased, punctuation and articles dropped,
stemmed, overlap of tokens), and, when an Anthropic key is set, by an LLM
judge whose prompt and verdict are kept per question. The offline provider
answers extractively, so the mode runs, and is tested, without a key.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from statistics import mean
from typing import Any

from ..errors import InputError, LLMError
from ..records.messages import Message, Role
from ..records.tokens import count_tokens
from ..records.trace import PromptPart
from .runner import EvalReport
from .services import ModelHolder

ANSWER_INSTRUCTIONS = (
    "You answer questions about a long conversation between two people. Use only the conversation excerpts "
    "in memory below; answer in as few words as possible (a name, a date, a place, a short phrase). "
    "If the excerpts do not hold the answer, say you do not know."
)
JUDGE_INSTRUCTIONS = (
    "You grade an answer to a question about a conversation against the gold answer. The answer is CORRECT "
    "if it states the same fact as the gold answer (wording, detail and date format may differ), else WRONG. "
    'Reply with JSON only: {"verdict": "CORRECT" or "WRONG", "reason": "<one sentence>"}'
)
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def _stem(word: str) -> str:
    import snowballstemmer  # type: ignore[import-untyped]

    return str(snowballstemmer.stemmer("english").stemWord(word))


def answer_tokens(text: str) -> list[str]:
    """LoCoMo's normalisation: lowercase, no punctuation, no articles, single spaces, then stems."""
    text = str(text).lower().replace(",", "")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return [_stem(w) for w in text.split()]


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall between the prediction and the gold answer."""
    predicted, expected = answer_tokens(prediction), answer_tokens(gold)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected or common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


@dataclass
class AnswerResult:
    sample_id: str
    question: str
    category: int
    gold: str
    prediction: str
    f1: float
    context: list[str]  # the retrieved turn ids the answer was given
    context_tokens: int
    judge: dict[str, Any] = field(default_factory=dict)  # prompt, raw reply, verdict, reason (with a key)
    error: str = ""


@dataclass
class AnswerReport:
    k: int
    provider: str
    n_questions: int
    mean_f1: float
    f1_by_category: dict[int, float]
    judged: int  # questions with a readable verdict
    judge_accuracy: float | None  # share judged CORRECT, None without a judge
    seconds: float
    questions: list[AnswerResult]

    def to_json(self, with_questions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "k": self.k,
            "provider": self.provider,
            "n_questions": self.n_questions,
            "mean_f1": round(self.mean_f1, 4),
            "f1_by_category": {str(c): round(v, 4) for c, v in self.f1_by_category.items()},
            "judged": self.judged,
            "judge_accuracy": None if self.judge_accuracy is None else round(self.judge_accuracy, 4),
            "seconds": round(self.seconds, 2),
        }
        if with_questions:
            data["questions"] = [asdict(q) for q in self.questions]
        return data


def answer_eval(
    lab: ModelHolder,
    report: EvalReport,
    k: int = 10,
    judge: bool | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> AnswerReport:
    """Answer every question of a turn-level ``report`` from its top ``k`` turns; score F1 (and a judge)."""
    if report.unit != "turn":
        raise InputError("the answer mode reads retrieved turns: run the recall with unit 'turn'")
    if k < 1:
        raise InputError("k must be at least 1")
    judge = lab.llm.provider != "offline" if judge is None else judge
    started = time.perf_counter()
    results: list[AnswerResult] = []
    for i, q in enumerate(report.questions):
        top = q.top[:k]
        items = [{"ref": f"turn:{t['id']}", "text": str(t.get("text", ""))} for t in top]
        memory = "\n".join(f"- {item['text']}" for item in items)
        parts = [
            PromptPart("instructions", ANSWER_INSTRUCTIONS, count_tokens(ANSWER_INSTRUCTIONS)),
            PromptPart("past turns", memory, count_tokens(memory), items),
        ]
        result = AnswerResult(
            q.sample_id, q.question, q.category, q.answer, "", 0.0, [str(t["id"]) for t in top], count_tokens(memory)
        )
        try:
            result.prediction = lab.llm.reply(parts, [Message(Role.USER, q.question)]).text
        except LLMError as exc:
            result.error = str(exc)
        result.f1 = token_f1(result.prediction, q.answer)
        if judge and not result.error:
            result.judge = _judge(lab, q.question, q.answer, result.prediction)
        results.append(result)
        if progress is not None:
            progress(i + 1, len(report.questions), f"{q.sample_id}: answers")
    verdicts = [r.judge["verdict"] for r in results if r.judge.get("verdict") in ("CORRECT", "WRONG")]
    categories = sorted({r.category for r in results})
    return AnswerReport(
        k=k,
        provider=lab.llm.provider,
        n_questions=len(results),
        mean_f1=mean(r.f1 for r in results) if results else 0.0,
        f1_by_category={c: mean(r.f1 for r in results if r.category == c) for c in categories},
        judged=len(verdicts),
        judge_accuracy=(verdicts.count("CORRECT") / len(verdicts)) if verdicts else None,
        seconds=time.perf_counter() - started,
        questions=results,
    )


def _judge(lab: ModelHolder, question: str, gold: str, prediction: str) -> dict[str, Any]:
    """Ask the model for a verdict; a reply that is not the JSON asked for is kept and marked unreadable."""
    prompt = f"Question: {question}\nGold answer: {gold}\nAnswer to grade: {prediction}"
    out: dict[str, Any] = {"prompt": prompt, "instructions": JUDGE_INSTRUCTIONS}
    try:
        raw = lab.llm.reply(
            [PromptPart("instructions", JUDGE_INSTRUCTIONS, count_tokens(JUDGE_INSTRUCTIONS))],
            [Message(Role.USER, prompt)],
        ).text
    except LLMError as exc:
        return {**out, "verdict": "error", "reason": str(exc)}
    out["raw"] = raw
    found = re.search(r"\{.*\}", raw, re.S)
    try:
        data = json.loads(found.group(0)) if found else None
    except ValueError:
        data = None
    verdict = str(data.get("verdict", "")).upper() if isinstance(data, dict) else ""
    if verdict not in ("CORRECT", "WRONG"):
        return {**out, "verdict": "unreadable", "reason": "the judge's reply was not the JSON asked for"}
    return {**out, "verdict": verdict, "reason": str(data.get("reason", "")) if isinstance(data, dict) else ""}
