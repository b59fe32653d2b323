"""Anthropic provider, through the official SDK (retries and timeouts are the SDK's).

``ANTHROPIC_BASE_URL`` is honoured so a compatible local server can stand in,
which is also how the tests exercise this code with the real SDK.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import anthropic

from ..records.messages import Message
from ..records.trace import PromptPart
from .base import LLMReply
from .hosted import REPLY_MAX_TOKENS, HostedLLM, chat_turns, sdk_errors, system_text


def _to_reply(response: Any, model: str) -> LLMReply:
    text = "".join(getattr(block, "text", "") for block in response.content)
    usage = {}
    if response.usage is not None:
        usage = {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens}
    return LLMReply(text=text, model_id=response.model or model, usage=usage)


class AnthropicLLM(HostedLLM):
    provider = "anthropic"

    def __init__(
        self, api_key: str, model: str, small_model: str, base_url: str | None = None, timeout_s: float = 60.0
    ) -> None:
        super().__init__(model, small_model)
        self.label = f"Anthropic ({model})"
        self._timeout_s = timeout_s
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=2)

    def _errors(self) -> Any:
        return sdk_errors(anthropic, "Anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", self._timeout_s)

    def _call(self, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int) -> LLMReply:
        with self._errors():
            response = self._client.messages.create(
                model=model,
                max_tokens=max_tokens,
                system=system,
                messages=messages,  # type: ignore[arg-type]
            )
            return _to_reply(response, model)

    def stream_reply(self, system_parts: list[PromptPart], messages: list[Message]) -> Generator[str, None, LLMReply]:
        with self._errors():
            with self._client.messages.stream(
                model=self.model,
                max_tokens=REPLY_MAX_TOKENS,
                system=system_text(system_parts),
                messages=chat_turns(messages),  # type: ignore[arg-type]
            ) as stream:
                yield from stream.text_stream
                final = stream.get_final_message()
            return _to_reply(final, self.model)
