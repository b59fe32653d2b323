"""Anthropic provider, through the official SDK (retries and timeouts are the SDK's).

``ANTHROPIC_BASE_URL`` is honoured so a compatible local server can stand in,
which is also how the tests exercise this code with the real SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from ..messages import Message, Role
from ..trace import PromptPart
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


def _to_api_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Anthropic takes user/assistant turns; tool results become user text, same roles merge."""
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


def parse_facts_json(text: str, source_ids: tuple[str, ...]) -> list[ExtractedFact]:
    """Parse the extraction reply; raises ValueError with a readable reason when it is not our JSON."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        raise ValueError("the reply holds no JSON object")
    data = json.loads(match.group(0))
    items = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("the JSON has no 'facts' list")
    facts: list[ExtractedFact] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("fact"), str) and item["fact"].strip():
            slot = item.get("slot")
            facts.append(ExtractedFact(item["fact"].strip(), slot if isinstance(slot, str) else None, source_ids))
    return facts


@contextmanager
def _errors() -> Iterator[None]:
    """The SDK's errors as one LLMError each, worded for a user."""
    try:
        yield
    except anthropic.AuthenticationError as exc:
        raise LLMError("Anthropic rejected the API key (check ANTHROPIC_API_KEY).") from exc
    except anthropic.APIConnectionError as exc:
        raise LLMError(f"Cannot reach Anthropic ({exc}); check the network or ANTHROPIC_BASE_URL.") from exc
    except anthropic.APIStatusError as exc:
        raise LLMError(f"Anthropic returned HTTP {exc.status_code}: {exc.message}") from exc
    except anthropic.APIError as exc:
        raise LLMError(f"Anthropic call failed: {exc}") from exc


def _to_reply(response: Any, model: str) -> LLMReply:
    text = "".join(getattr(block, "text", "") for block in response.content)
    usage = {}
    if response.usage is not None:
        usage = {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens}
    return LLMReply(text=text, model_id=response.model or model, usage=usage)


class AnthropicLLM(LLM):
    provider = "anthropic"

    def __init__(
        self, api_key: str, model: str, small_model: str, base_url: str | None = None, timeout_s: float = 60.0
    ) -> None:
        self.model = model
        self.small_model = small_model
        self.label = f"Anthropic ({model})"
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=2)

    def _call(self, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int) -> LLMReply:
        with _errors():
            response = self._client.messages.create(
                model=model,
                max_tokens=max_tokens,
                system=system,
                messages=messages,  # type: ignore[arg-type]
            )
        return _to_reply(response, model)

    def reply(self, system_parts: list[PromptPart], messages: list[Message]) -> LLMReply:
        system = "\n\n".join(p.text for p in system_parts if p.text)
        return self._call(self.model, system, _to_api_messages(messages), 1024)

    def stream_reply(self, system_parts: list[PromptPart], messages: list[Message]) -> Generator[str, None, LLMReply]:
        system = "\n\n".join(p.text for p in system_parts if p.text)
        with _errors():
            with self._client.messages.stream(
                model=self.model,
                max_tokens=1024,
                system=system,
                messages=_to_api_messages(messages),  # type: ignore[arg-type]
            ) as stream:
                yield from stream.text_stream
                final = stream.get_final_message()
        return _to_reply(final, self.model)

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
        except (ValueError, json.JSONDecodeError) as exc:
            warning = f"fact extraction reply was not valid JSON ({exc}); used the rule-based extractor instead"
            return rule_facts(user_messages), [warning]
