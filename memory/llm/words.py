"""How specific a word is in English at large: what a word the memory never says tells about the question.

A question whose given word no memory says ("the name of my hamster" of a
memory that knows a cat) is asking about something the memory lacks when the
word is specific, and is merely reworded when it is common ("what do I use
for deliveries" of "I drive an electric van for deliveries"). The context's
own idf cannot tell the two apart (it has never seen either word), so the
word's frequency in general English (wordfreq's Zipf scale, shipped with the
package, no download) does.
"""

from __future__ import annotations

from functools import lru_cache

from wordfreq import zipf_frequency

# Zipf frequency (log10 of uses per billion words): about 7 for "the", 5.5 for "use", 3.3 for "hamster".
COMMONEST = 7.0
SPAN = 4.0  # from COMMONEST down this much, a word goes from telling nothing to telling all


@lru_cache(maxsize=65536)
def specificity(word: str) -> float:
    """0 for the commonest English words, 1 for rare ones (Zipf 3 and below) and words English does not know."""
    zipf = zipf_frequency(word, "en")
    if zipf <= 0.0:
        return 1.0  # a name, a made-up word or a typo: nothing general says it is common
    return min(1.0, max(0.0, (COMMONEST - zipf) / SPAN))
