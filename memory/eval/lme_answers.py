"""LongMemEval answers through the playground's own path: replay a question's history, then ask it in a chat turn.

Why: the number that matters to a user is whether the strategy they chat
through answers a question about what they said, not whether a retriever
ranked a turn. So each question's history is replayed into a fresh user's
memory through the strategy (``replay.py``: the user's turns as the user,
the dataset's assistant turns as the replies, the upkeep of a chat turn),
and the question is asked through ``MemoryLab.chat`` — in a new session, or
in the last one for ``buffer`` and ``summary``, which keep nothing across
sessions. The reply is scored offline (``answer_scoring.py``) and, with an
Anthropic key, by the benchmark's own judge prompt for the question's type.

Each (question, strategy) is its own user, ``lme-<question id>-<strategy>``,
forgotten before it is replayed and kept afterwards, so its memory can be
opened on the other pages.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import mean
from typing import TYPE_CHECKING, Any

from ..errors import InputError, LLMError
from ..keys import validate_id
from ..records.messages import Message, Role
from ..records.tokens import count_tokens
from ..records.trace import PromptPart
from ..strategies import STRATEGIES, StrategyConfig
from ..transfer.replay import TranscriptSession, replay
from .answer_scoring import judge_prompt, judge_verdict, offline_correct
from .answers import token_f1
from .longmemeval import ABSTENTION, TYPES, LmeQuestion

if TYPE_CHECKING:
    from ..lab import MemoryLab
    from ..turn import ChatResult

# Strategies that keep nothing across sessions: the question is asked in the history's last session.
SAME_SESSION = ("buffer", "summary")
ASK_SESSION = "asked"
KINDS = (*TYPES, ABSTENTION)
JUDGE_INSTRUCTIONS = "You grade a model's answer. Answer yes or no only."
Progress = Callable[[int, int, str], None]


@dataclass
class ReplayedAnswer:
    question_id: str
    kind: str  # the question type, or "abstention"
    strategy: str
    question: str
    gold: str
    reply: str
    correct: bool  # offline: the gold answer's content words in the reply (abstention: it says it does not know)
    f1: float
    asked_in: str  # the session the question was asked in
    context_tokens: int
    seconds: float
    judge: dict[str, Any] = field(default_factory=dict)  # prompt, raw reply and verdict (with a key)
    error: str = ""
    # Offline only: the best quote's relevance and what the reply would have said with no floor, so the floor
    # can be chosen by cross-validation from one run (``benchmarks/answer_floor.py``).
    relevance: float | None = None
    quoted: str = ""
    signals: dict[str, float] = field(default_factory=dict)  # what the relevance was made of (held, cosine...)


@dataclass
class ReplayedAnswers:
    strategies: list[str]
    provider: str
    results: list[ReplayedAnswer]
    seconds: float

    @property
    def n_questions(self) -> int:
        return len({r.question_id for r in self.results})

    @property
    def judged(self) -> bool:
        return any("verdict" in r.judge for r in self.results)

    def kinds(self) -> list[str]:
        present = {r.kind for r in self.results}
        return [k for k in KINDS if k in present] + sorted(present - set(KINDS))

    def cell(self, strategy: str, kind: str | None = None) -> dict[str, Any]:
        """Accuracy (offline), mean token F1, judge accuracy and count, for one strategy (and one kind)."""
        rows = [r for r in self.results if r.strategy == strategy and (kind is None or r.kind == kind)]
        verdicts = [r.judge["verdict"] for r in rows if isinstance(r.judge.get("verdict"), bool)]
        return {
            "n": len(rows),
            "correct": round(mean(float(r.correct) for r in rows), 4) if rows else None,
            "f1": round(mean(r.f1 for r in rows), 4) if rows else None,
            "judge": round(mean(float(v) for v in verdicts), 4) if verdicts else None,
        }

    def to_json(self, with_questions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mode": "replayed answers",
            "provider": self.provider,
            "strategies": self.strategies,
            "n_questions": self.n_questions,
            "seconds": round(self.seconds, 2),
            "by_strategy": {
                s: {"overall": self.cell(s), "by_type": {k: self.cell(s, k) for k in self.kinds()}}
                for s in self.strategies
            },
        }
        if with_questions:
            data["questions"] = [asdict(r) for r in self.results]
        return data


def eval_user(question_id: str, strategy: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", question_id)[:48].strip("-.") or "q"
    return validate_id("user", f"lme-{slug}-{strategy}"[:64])


def parse_strategies(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise InputError(f"unknown strategies {', '.join(unknown) or '(none)'}; choose from {', '.join(STRATEGIES)}")
    return list(dict.fromkeys(names))


def select(
    questions: Sequence[LmeQuestion], kinds: Sequence[str] = (), limit: int | None = None, seed: int | None = None
) -> list[LmeQuestion]:
    """The questions of the given kinds (all when none), at most ``limit`` of each kind: the first in file order,
    or with ``seed`` a random sample of each kind (the same for the same seed), so a subset stands for its type."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"unknown question types {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    if seed is not None:
        questions = random.Random(seed).sample(list(questions), len(questions))
    taken: dict[str, int] = {}
    out = []
    for q in questions:
        if kinds and q.kind not in kinds:
            continue
        if limit is not None and taken.get(q.kind, 0) >= limit:
            continue
        taken[q.kind] = taken.get(q.kind, 0) + 1
        out.append(q)
    return out


def transcript(question: LmeQuestion) -> list[TranscriptSession]:
    return [TranscriptSession(s.id, tuple(question.messages(s))) for s in question.sessions]


def answer_one(
    lab: MemoryLab,
    question: LmeQuestion,
    strategy: str,
    config: StrategyConfig | None = None,
    judge: bool = False,
) -> ReplayedAnswer:
    """Replay the question's history into its own fresh user through ``strategy``, ask, and score the reply."""
    started = time.perf_counter()
    user = eval_user(question.question_id, strategy)
    lab.forget_user(user)
    sessions = transcript(question)
    replay(lab, user, sessions, strategy, config)
    ids = {s.id for s in sessions}
    if strategy in SAME_SESSION and sessions:
        asked_in = sessions[-1].id
    else:
        asked_in = ASK_SESSION if ASK_SESSION not in ids else f"{ASK_SESSION}-{len(ids)}"
    result = lab.chat(user, asked_in, question.question, strategy=strategy, config=config, wait_upkeep=True)
    reply = result.reply.content if result.reply else ""
    answer = ReplayedAnswer(
        question_id=question.question_id,
        kind=question.kind,
        strategy=strategy,
        question=question.question,
        gold=question.answer,
        reply=reply,
        correct=offline_correct(reply, question.answer, question.abstention) if reply else False,
        f1=token_f1(reply, question.answer),
        asked_in=asked_in,
        context_tokens=result.trace.total_tokens,
        seconds=0.0,
        error=result.error or "",
    )
    answer.relevance, answer.quoted, answer.signals = _unfloored(lab, question.question, result)
    if judge and reply:
        answer.judge = _judge(lab, question, reply)
    answer.seconds = round(time.perf_counter() - started, 3)
    return answer


def answer_through_strategies(
    lab: MemoryLab,
    questions: Sequence[LmeQuestion],
    strategies: Sequence[str],
    config: StrategyConfig | None = None,
    judge: bool | None = None,
    progress: Progress | None = None,
) -> ReplayedAnswers:
    """Every question through every strategy (``answer_one``); judged when a key is set (or ``judge``)."""
    judge = bool(lab.settings.anthropic_api_key) if judge is None else judge
    started = time.perf_counter()
    results: list[ReplayedAnswer] = []
    total = len(questions) * len(strategies)
    for i, question in enumerate(questions):
        for j, strategy in enumerate(strategies):
            results.append(answer_one(lab, question, strategy, config, judge))
            if progress is not None:
                progress(i * len(strategies) + j + 1, total, f"{question.question_id} {strategy}")
    return ReplayedAnswers(list(strategies), lab.llm.provider, results, time.perf_counter() - started)


def _unfloored(lab: MemoryLab, question: str, result: ChatResult) -> tuple[float | None, str, dict[str, float]]:
    """The offline answerer again on the very context the turn sent, with no floor: its relevance, what it would
    have said, and what the relevance was made of."""
    if lab.llm.provider != "offline" or result.reply is None:
        return None, "", {}
    from ..llm.answer import answer

    history = [Message.from_dict(m) for m in result.trace.messages if m.get("id") != result.user_message.id]
    parts = result.trace.system_parts
    keeps = next((p.keeps for p in parts if p.name == "instructions" and p.keeps), "")
    found = answer(question, parts, history, lab.embed, keeps, floor=-math.inf)
    return round(found.relevance, 4), found.quoted, {k: round(v, 4) for k, v in found.signals.items()}


def _judge(lab: MemoryLab, question: LmeQuestion, reply: str) -> dict[str, Any]:
    prompt = judge_prompt(question.question_type, question.question, question.answer, reply, question.abstention)
    parts = [PromptPart("instructions", JUDGE_INSTRUCTIONS, count_tokens(JUDGE_INSTRUCTIONS))]
    try:
        raw = lab.llm.reply(parts, [Message(Role.USER, prompt)]).text
    except LLMError as exc:
        return {"prompt": prompt, "error": str(exc)}
    return {"prompt": prompt, "raw": raw, "verdict": judge_verdict(raw)}


def render(report: ReplayedAnswers, source: str) -> str:
    """The report as a table: question types down, strategies across, offline accuracy (token F1) per cell."""
    judged = report.judged
    lines = [
        f"answers through the playground on {source}: {report.n_questions} questions x "
        f"{len(report.strategies)} strategies, replies by {report.provider}, time {report.seconds:.1f}s",
        "each cell: right offline % (token F1)" + (" / judge %" if judged else ""),
        f"{'':<26}" + "".join(f"{s:>20}" for s in report.strategies) + f"{'n':>6}",
    ]

    def row(label: str, kind: str | None) -> None:
        cells = []
        for s in report.strategies:
            c = report.cell(s, kind)
            text = "-" if c["correct"] is None else f"{c['correct'] * 100:.1f} ({c['f1'] * 100:.1f})"
            if judged and c["judge"] is not None:
                text += f" / {c['judge'] * 100:.1f}"
            cells.append(f"{text:>20}")
        n = report.cell(report.strategies[0], kind)["n"] if report.strategies else 0
        lines.append(f"{label:<26}" + "".join(cells) + f"{n:>6}")

    row("overall", None)
    for kind in report.kinds():
        row(kind, kind)
    return "\n".join(lines)
