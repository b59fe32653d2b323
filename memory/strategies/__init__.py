"""The five memory strategies, by name."""

from __future__ import annotations

from .base import Context, Services, Strategy, StrategyConfig
from .buffer import BufferStrategy
from .episodic import EpisodicStrategy
from .facts import FactsStrategy
from .hybrid import HybridStrategy
from .summary import SummaryStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (BufferStrategy, SummaryStrategy, FactsStrategy, EpisodicStrategy, HybridStrategy)
}

__all__ = ["STRATEGIES", "Context", "Services", "Strategy", "StrategyConfig"]
