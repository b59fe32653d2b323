"""Both hosted providers behind one test interface: a local server speaking each API, the real SDK pointed at it.

A test writes one ``answer(ask)`` for what the model should say; each
provider's server turns it into its own API's body (the Messages API for
Anthropic, Chat Completions for OpenAI-compatible servers), so the same
test runs through both SDKs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from memory.config import Settings

from .anthropic_stub import MessagesServer, message_body
from .openai_stub import CompletionsServer, completion_body, error_body


@dataclass(frozen=True)
class Ask:
    """One request as a model sees it, whichever API carried it."""

    system: str
    messages: list[dict[str, Any]]
    model: str
    stream: bool


Answer = Callable[[Ask], tuple[int, str, str]]  # (status, reply text or error message, model)


@dataclass(frozen=True)
class Provider:
    name: str
    who: str  # how errors name it
    default_model: str

    def settings(self, base: Settings, url: str, model: str = "", small: str = "", timeout: int = 0) -> Settings:
        if self.name == "anthropic":
            s = replace(base, anthropic_api_key="sk-test", anthropic_base_url=url)
            s = replace(
                s, anthropic_model=model or s.anthropic_model, anthropic_small_model=small or s.anthropic_small_model
            )
        else:
            s = replace(base, llm="openai", openai_api_key="sk-test", openai_base_url=url)
            s = replace(s, openai_model=model or s.openai_model, openai_small_model=small)
        return replace(s, llm_timeout_s=timeout or s.llm_timeout_s)

    @contextmanager
    def serve(self, answer: Answer) -> Iterator[Any]:
        """A started server of this provider's API answering with ``answer``; ``.asks`` lists what it was asked."""
        if self.name == "anthropic":

            def anthropic_reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                status, text, model = answer(_anthropic_ask(body))
                if status != 200:
                    return status, {"type": "error", "error": {"type": "api_error", "message": text}}
                return 200, message_body(text, model=model)

            with MessagesServer(anthropic_reply) as server:
                server.asks = _Asks(server.requests, _anthropic_ask)
                yield server
        else:

            def openai_reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                status, text, model = answer(_openai_ask(body))
                return (200, completion_body(text, model=model)) if status == 200 else (status, error_body(text))

            with CompletionsServer(openai_reply) as server:
                server.asks = _Asks(server.requests, _openai_ask)
                yield server

    def key_sent(self, server: Any) -> str:
        headers = server.headers[-1]
        return str(headers.get("x-api-key") or headers.get("authorization", "")).removeprefix("Bearer ")


class _Asks:
    def __init__(self, requests: list[dict[str, Any]], read: Callable[[dict[str, Any]], Ask]) -> None:
        self._requests, self._read = requests, read

    def __iter__(self) -> Iterator[Ask]:
        return iter([self._read(r) for r in self._requests])


def _anthropic_ask(body: dict[str, Any]) -> Ask:
    return Ask(body.get("system") or "", body["messages"], body["model"], bool(body.get("stream")))


def _openai_ask(body: dict[str, Any]) -> Ask:
    messages = body["messages"]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    return Ask(system, rest, body["model"], bool(body.get("stream")))


PROVIDERS = {
    "anthropic": Provider("anthropic", "Anthropic", "claude-sonnet-4-5"),
    "openai": Provider("openai", "the OpenAI-compatible server", "gpt-4o-mini"),
}
