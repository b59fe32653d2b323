"""A question about one participant, asked again in that participant's own voice.

Why: people tell their own lives in the first person ("I went camping"),
and questions ask about them by name ("Where did Melanie go camping?").
A sentence embedding puts the name and "I" far apart, so a participant's
own turns match a question about them worse than a turn that mentions
them by name. Asking the question again as they would ("Where did I go
camping?") and mixing that cosine into their turns' (``Weights.voice``)
closes the gap (docs/recall.md: turn R@10 82.6 → 83.8, and 82.3 → 83.3
leave-one-conversation-out).
"""

from __future__ import annotations

import re

_PRONOUNS = ((re.compile(r"\b(?:her|his)\b", re.I), "my"), (re.compile(r"\b(?:she|he)\b", re.I), "I"))


def in_voice(query: str, name: str) -> str:
    """``query`` as ``name`` would ask it: their name (any word of it) as "I", "Name's" as "my".

    Third-person "she"/"he" become "I" and "her"/"his" "my" as well: in a question that names one
    participant they are mostly that participant. The result equals ``query`` when nothing changed.
    """
    words = sorted({w for w in re.findall(r"[^\W\d_]+", name) if len(w) > 1}, key=len, reverse=True)
    if not words:
        return query
    one = "(?:" + "|".join(re.escape(w) for w in words) + ")"
    whole = rf"\b{one}(?:\s+{one})*"  # "John Smith" is one "I"
    voiced = re.sub(rf"{whole}(?:'s|’s)(?!\w)", "my", query, flags=re.I)
    voiced = re.sub(rf"{whole}\b", "I", voiced, flags=re.I)
    if voiced == query:
        return query
    for pattern, replacement in _PRONOUNS:
        voiced = pattern.sub(replacement, voiced)
    return voiced
