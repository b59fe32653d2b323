"""Any server that speaks OpenAI's Chat Completions API (OpenAI, Ollama, vLLM, LM Studio, llama.cpp...).

Through the official ``openai`` SDK, as the Anthropic provider goes through
``anthropic``: its retries, timeouts, server-sent-event parsing and typed
errors are what a hand-written HTTP client would have to copy, and its
errors have the same names, so ``hosted.sdk_errors`` words both alike.
Many local servers ignore the key; the SDK still wants one, so a placeholder
is sent when only ``OPENAI_BASE_URL`` is set.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import openai

from ..records.messages import Message
from ..records.trace import PromptPart
from .base import LLMError, LLMReply
from .hosted import REPLY_MAX_TOKENS, HostedLLM, chat_turns, sdk_errors, system_text

WHO = "the OpenAI-compatible server"
WHO_ = "The OpenAI-compatible server"
NO_KEY = "unused"  # local servers (Ollama, vLLM...) accept any key


def _usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def _to_reply(response: Any, model: str) -> LLMReply:
    if not response.choices:
        raise LLMError(f"{WHO_} returned no choices (model {model})")
    choice = response.choices[0]
    text = choice.message.content
    if text is None:
        text = choice.message.refusal
    if text is None:
        raise LLMError(f"{WHO_} returned no text (finish reason {choice.finish_reason!r})")
    return LLMReply(text=text, model_id=response.model or model, usage=_usage(response.usage))


def _with_system(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return ([{"role": "system", "content": system}] if system else []) + messages


class OpenAICompatibleLLM(HostedLLM):
    provider = "openai"

    def __init__(
        self,
        model: str,
        small_model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(model, small_model)
        self.label = f"OpenAI-compatible ({model})"
        self.base_url = base_url
        self._timeout_s = timeout_s
        self._client = openai.OpenAI(api_key=api_key or NO_KEY, base_url=base_url, timeout=timeout_s, max_retries=2)

    def _errors(self) -> Any:
        return sdk_errors(openai, WHO, "OPENAI_API_KEY", "OPENAI_BASE_URL", self._timeout_s)

    def _call(self, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int) -> LLMReply:
        with self._errors():
            response = self._client.chat.completions.create(
                model=model,
                max_tokens=max_tokens,
                messages=_with_system(system, messages),  # type: ignore[arg-type]
            )
            return _to_reply(response, model)

    def stream_reply(self, system_parts: list[PromptPart], messages: list[Message]) -> Generator[str, None, LLMReply]:
        """The reply's text deltas as they arrive; usage comes in the last chunk (``include_usage``)."""
        pieces: list[str] = []
        model_id, usage, choices, finished = self.model, None, 0, False
        with self._errors():
            stream = self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                max_tokens=REPLY_MAX_TOKENS,
                messages=_with_system(system_text(system_parts), chat_turns(messages)),
                stream=True,
                stream_options={"include_usage": True},
            )
            with stream:
                for chunk in stream:
                    model_id = chunk.model or model_id
                    usage = chunk.usage or usage
                    choices += len(chunk.choices)
                    for choice in chunk.choices:
                        finished = finished or choice.finish_reason is not None
                        if choice.index == 0 and choice.delta.content:
                            pieces.append(choice.delta.content)
                            yield choice.delta.content
        if not choices:
            raise LLMError(f"{WHO_} streamed no choices (model {self.model})")
        if not finished:
            raise LLMError(f"{WHO_}'s stream ended before the reply was finished (no finish reason); try again")
        return LLMReply(text="".join(pieces), model_id=model_id, usage=_usage(usage))
