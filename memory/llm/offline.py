"""The offline provider: deterministic, model-free, good enough to demo memory.

It never invents: a reply quotes what the strategy put in the context, so
"What is my name?" is answered only when the memory actually held the name.
Summaries are extractive (the most central sentences, by embedding, within a
token budget) and facts come from the rules in ``rules.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ..messages import Message, Role
from ..tokens import count_tokens
from ..trace import PromptPart
from .base import LLM, ExtractedFact, LLMReply
from .rules import extract_facts, facts_from_text, second_person, split_sentences

MODEL_ID = "offline-extractive-v1"
MIN_SIMILARITY = 0.25
_QUESTION_START = re.compile(
    r"^(what|who|where|when|which|why|how|do|does|did|is|are|am|can|could|should|would|will|have|has|tell me)\b",
    re.IGNORECASE,
)
_MY_THING = re.compile(
    r"\b(?:what(?:'s| is| are)|do you know|tell me|remind me of) my ([a-z]+(?: [a-z]+)?)\b", re.IGNORECASE
)

Embed = Callable[[list[str]], np.ndarray]


def _is_question(text: str) -> bool:
    stripped = text.strip()
    return stripped.endswith("?") or bool(_QUESTION_START.match(stripped))


def _to_second_person(sentence: str) -> str:
    text = re.sub(r"^(?:User|user)(?: said)?:\s*", "", sentence.strip())
    text = re.sub(r"\bI am\b", "you are", text)
    text = re.sub(r"\bI'm\b", "you're", text)
    text = re.sub(r"\bmy\b", "your", text)
    text = re.sub(r"\bMy\b", "Your", text)
    text = re.sub(r"\bI\b", "you", text)
    return text


class OfflineLLM(LLM):
    provider = "offline"
    label = "Offline provider (extractive, no model)"

    def __init__(self, embed: Embed) -> None:
        self._embed = embed

    # -- replies ---------------------------------------------------------
    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply:
        users = [m for m in messages if m.role is Role.USER]
        if not users:
            return LLMReply("Say something and I will answer from memory.", MODEL_ID)
        question = users[-1]
        if not _is_question(question.content):
            return LLMReply(self._acknowledge(question.content), MODEL_ID)
        candidates = self._candidates(system_parts, [m for m in messages if m.id != question.id])
        return LLMReply(self._answer(question.content, candidates), MODEL_ID)

    def _acknowledge(self, text: str) -> str:
        facts = facts_from_text(text)
        if facts:
            return "Got it — I'll remember that " + "; ".join(second_person(f) for f, _ in facts) + "."
        return "Noted. (Offline provider: I answer questions from what the memory gives me.)"

    @staticmethod
    def _candidates(system_parts: list[PromptPart], history: list[Message]) -> list[tuple[str, str]]:
        """(sentence, where it came from): memory parts first, then earlier user turns."""
        out: list[tuple[str, str]] = []
        for part in system_parts:
            if part.name == "instructions":
                continue
            for line in part.text.splitlines():
                line = re.sub(r"^\s*(?:[-*•]|\d+\.)\s*", "", line).strip()
                if not line or line.endswith(":"):
                    continue
                line = re.sub(r"^\[[^\]]*\]\s*", "", line)  # "[score 0.81]" style prefixes
                out.extend((s, part.name) for s in split_sentences(line) if not s.endswith("?"))
        for message in history:
            if message.role is Role.USER and not _is_question(message.content):
                out.extend((s, "conversation") for s in split_sentences(message.content))
        return out

    def _answer(self, question: str, candidates: list[tuple[str, str]]) -> str:
        if not candidates:
            return "I don't have anything in memory about that yet."
        thing = _MY_THING.search(question)
        if thing:
            noun = re.escape(thing.group(1).lower())
            slot = re.compile(
                rf"\b(?:my|the user's|user's|your) {noun} (?:is|are)\s+(.+?)\s*(?:[.!,;]|\s(?:and|but|so)\s|$)",
                re.IGNORECASE,
            )
            for sentence, source in reversed(candidates):  # the newest statement wins
                m = slot.search(sentence)
                if m:
                    return f"Your {thing.group(1)} is {m.group(1).strip()}. (from {source}: “{sentence}”)"
        vectors = self._embed([question] + [re.sub(r"^User said:\s*", "", c) for c, _ in candidates])
        scores = vectors[1:] @ vectors[0]
        best = int(np.argmax(scores))
        if float(scores[best]) < MIN_SIMILARITY:
            return "I don't find anything about that in the memory I was given."
        sentence, source = candidates[best]
        return f"From {source} (similarity {float(scores[best]):.2f}): “{_to_second_person(sentence)}”"

    # -- summaries -------------------------------------------------------
    def summarize(self, previous: str, messages: list[Message], max_tokens: int) -> str:
        sentences: list[tuple[str, float]] = [(s, 0.0) for s in split_sentences(previous)]
        for m in messages:
            if m.role is not Role.USER:
                continue  # offline replies only echo memory; the user's words carry the content
            for s in split_sentences(m.content):
                bonus = 0.2 if facts_from_text(s) else 0.0
                sentences.append((f"User said: {s}" if not s.startswith("User said:") else s, bonus))
        if not sentences:
            return previous
        unique = list(dict.fromkeys(s for s, _ in sentences))
        bonuses = {s: b for s, b in sentences}
        vectors = self._embed(unique)
        centroid = vectors.mean(axis=0)
        norm = float(np.linalg.norm(centroid)) or 1.0
        centrality = vectors @ (centroid / norm)
        order = sorted(range(len(unique)), key=lambda i: -(float(centrality[i]) + bonuses[unique[i]]))
        chosen: set[int] = set()
        used = 0
        for i in order:
            cost = count_tokens(unique[i])
            if used + cost > max_tokens:
                continue
            chosen.add(i)
            used += cost
        return " ".join(unique[i] if unique[i].endswith((".", "!", "?")) else unique[i] + "." for i in sorted(chosen))

    # -- facts -----------------------------------------------------------
    def extract_facts(self, messages: list[Message]) -> tuple[list[ExtractedFact], list[str]]:
        return extract_facts(messages), []
