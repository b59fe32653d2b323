"""LLM providers behind one interface; `make_llm` picks one from the settings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import Settings
from .base import LLM, ExtractedFact, LLMError, LLMReply

__all__ = ["KNOWN_PROVIDERS", "LLM", "ExtractedFact", "LLMError", "LLMReply", "make_llm"]

# Who can write a turn's reply: our providers, or an agent's own model through the MCP server (``mcp_server.py``).
KNOWN_PROVIDERS = ("offline", "anthropic", "openai", "agent")


def make_llm(settings: Settings, embed: Callable[[list[str]], np.ndarray]) -> LLM:
    """The provider ``settings.llm_provider`` names; the SDK of a provider not in use is never imported."""
    if settings.llm_provider == "openai":
        from .openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM(
            model=settings.openai_model,
            small_model=settings.openai_small_model or settings.openai_model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout_s=settings.llm_timeout_s,
        )
    if settings.llm_provider == "anthropic" and settings.anthropic_api_key:
        from .anthropic_llm import AnthropicLLM

        return AnthropicLLM(
            api_key=settings.anthropic_api_key,
            model=settings.anthropic_model,
            small_model=settings.anthropic_small_model,
            base_url=settings.anthropic_base_url,
            timeout_s=settings.llm_timeout_s,
        )
    from .offline import OfflineLLM

    return OfflineLLM(embed)
