"""LLM providers behind one interface; `make_llm` picks one from the settings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import Settings
from .base import LLM, ExtractedFact, LLMError, LLMReply

__all__ = ["LLM", "ExtractedFact", "LLMError", "LLMReply", "make_llm"]


def make_llm(settings: Settings, embed: Callable[[list[str]], np.ndarray]) -> LLM:
    if settings.anthropic_api_key:
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
