"""Token estimates for budgets and charts.

Claude's tokenizer is not public, so counts are an estimate: about four
characters per token for English, which is what budgets need (a ratio, not an
invoice). Anthropic's reported usage is shown beside it when available.
"""

from __future__ import annotations

import math


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return max(1, math.ceil(len(text) / 4))
