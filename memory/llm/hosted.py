"""What the providers behind a vendor SDK share: prompts, turn format, error wording, summaries and extraction.

Anthropic's and OpenAI's SDKs (both Stainless-generated) raise errors of the
same names, so one mapping words them for a user. A provider only says how
to make one call (``_call``) and how to stream a reply.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ..records.messages import Message, Role
from ..records.trace import PromptPart
from .base import LLM, ExtractedFact, LLMError, LLMReply
from .statements import extract_statements as rule_facts

SUMMARY_PROMPT = (
    "You maintain a running summary of a conversation for an assistant's memory. Merge the previous "
    "summary with the new messages into one concise summary in third person. Keep names, preferences, "
    "decisions and facts about the user; drop small talk. At most {max_tokens} tokens. Reply with the "
    "summary only."
)
FACTS_PROMPT = (
    "Extract durable facts the USER states about themselves, their work or their preferences from the "
    "messages below. Reply with JSON only, in this form: "
    '{"facts": [{"fact": "The user\'s name is Alice.", "slot": "name"}]}. '
    "Write each fact in third person. 'slot' names a thing a user has only one of (name, location, "
    'employer, role, favorite:<thing>) or is null. Reply {"facts": []} when there are none.'
)
REPLY_MAX_TOKENS = 1024


def chat_turns(messages: list[Message]) -> list[dict[str, Any]]:
    """User/assistant turns for a chat API: tool results become user text, same roles merge, a user turn first."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        role = "assistant" if m.role is Role.ASSISTANT else "user"
        text = m.content if m.role is not Role.TOOL else f"[tool result {m.tool_call_id}] {m.content}"
        text = text or "(empty)"
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + text
        else:
            out.append({"role": role, "content": text})
    if not out or out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": "(conversation continues)"})
    return out


def system_text(parts: list[PromptPart]) -> str:
    return "\n\n".join(p.text for p in parts if p.text)


def parse_facts_json(text: str, source_ids: tuple[str, ...]) -> list[ExtractedFact]:
    """Parse the extraction reply; raises LLMError with a readable reason when it is not our JSON."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        raise LLMError("the reply holds no JSON object")
    data = json.loads(match.group(0))
    items = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise LLMError("the JSON has no 'facts' list")
    facts: list[ExtractedFact] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("fact"), str) and item["fact"].strip():
            slot = item.get("slot")
            facts.append(ExtractedFact(item["fact"].strip(), slot if isinstance(slot, str) else None, source_ids))
    return facts


@contextmanager
def sdk_errors(sdk: ModuleType, who: str, key_var: str, url_var: str, timeout_s: float) -> Iterator[None]:
    """The SDK's errors (and a reply it could not read) as one LLMError each, worded for a user."""
    starts = who[:1].upper() + who[1:]
    try:
        yield
    except sdk.AuthenticationError as exc:
        raise LLMError(f"{starts} rejected the API key (check {key_var}).") from exc
    except sdk.APITimeoutError as exc:
        raise LLMError(f"{starts} did not answer within {timeout_s:g}s (MEMLAB_LLM_TIMEOUT); try again.") from exc
    except sdk.APIConnectionError as exc:
        raise LLMError(f"Cannot reach {who} ({exc}); check the network or {url_var}.") from exc
    except sdk.APIStatusError as exc:
        raise LLMError(f"{starts} returned HTTP {exc.status_code}: {exc.message}") from exc
    except sdk.APIError as exc:
        raise LLMError(f"{starts} call failed: {exc}") from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a 200 whose body is not the API's shape
        raise LLMError(f"{starts} sent a reply that is not the API's format ({type(exc).__name__}: {exc})") from exc


class HostedLLM(LLM):
    """A provider behind a vendor SDK: replies with ``model``, summaries and fact extraction with ``small_model``."""

    streams = True

    def __init__(self, model: str, small_model: str) -> None:
        self.model = model
        self.small_model = small_model

    @abstractmethod
    def _call(self, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int) -> LLMReply: ...

    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply:
        return self._call(self.model, system_text(system_parts), chat_turns(messages), REPLY_MAX_TOKENS)

    def summarize(self, previous: str, messages: list[Message], max_tokens: int) -> str:
        transcript = "\n".join(f"{m.role.value}: {m.content}" for m in messages)
        body = f"Previous summary:\n{previous or '(none)'}\n\nNew messages:\n{transcript}"
        reply = self._call(
            self.small_model,
            SUMMARY_PROMPT.format(max_tokens=max_tokens),
            [{"role": "user", "content": body}],
            max_tokens * 2,
        )
        return reply.text.strip()

    def extract_facts(self, messages: list[Message]) -> tuple[list[ExtractedFact], list[str]]:
        user_messages = [m for m in messages if m.role is Role.USER]
        if not user_messages:
            return [], []
        ids = tuple(m.id for m in user_messages)
        transcript = "\n".join(f"USER: {m.content}" for m in user_messages)
        reply = self._call(self.small_model, FACTS_PROMPT, [{"role": "user", "content": transcript}], 512)
        try:
            return parse_facts_json(reply.text, ids), []
        except (LLMError, json.JSONDecodeError) as exc:
            warning = f"fact extraction reply was not valid JSON ({exc}); used the rule-based extractor instead"
            return rule_facts(user_messages), [warning]
