"""Times, durations and sizes as people read them: one formatter for the pages, the CLI and the exports.

Times are local (the person reading is where the app runs); a number that is
not a plausible time (a score of 3, a corrupt field) reads as nothing rather
than as 1970, so a table of stored values never shows a made-up date.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from ..keys import KEY_KINDS
from ..records.stored import MAX_TIMESTAMP, MIN_TIMESTAMP  # 2000-01-01 .. the year 3000

_FORMATS = {"second": "%Y-%m-%d %H:%M:%S", "minute": "%Y-%m-%d %H:%M", "clock": "%H:%M:%S", "day": "%Y-%m-%d"}


def when(timestamp: object, to: Literal["second", "minute", "clock", "day"] = "second") -> str:
    """A local date and time for an epoch timestamp: to the ``second`` ("2026-12-07 22:50:01"), the ``minute``,
    the time of day (``clock``) or the ``day``; '' for anything that is not a time between 2000 and 3000."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return ""
    if not (math.isfinite(timestamp) and MIN_TIMESTAMP <= timestamp <= MAX_TIMESTAMP):
        return ""
    return dt.datetime.fromtimestamp(timestamp).strftime(_FORMATS[to])


def day_and_time(timestamp: float) -> str:
    """A recent moment in few characters: "today 14:31", "Dec 07 14:31" ('' for anything that is not a time)."""
    if not when(timestamp):
        return ""
    stamp = dt.datetime.fromtimestamp(timestamp)
    day = "today" if stamp.date() == dt.date.today() else stamp.strftime("%b %d")
    return f"{day} {stamp:%H:%M}"


def human_duration(seconds: float, words: bool = False) -> str:
    """A TTL as people say it: "6 d 23 h", "3 h 5 min", "42 s"; -1 is "never expires", -2 "gone".

    ``words`` spells the units out ("7 days", "1 hour 30 minutes"), for a setting someone chooses.
    """
    if seconds == -1:
        return "never expires"
    if seconds < 0:
        return "gone"
    s = int(seconds)
    amounts = [s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60]
    names = ("day", "hour", "minute", "second") if words else ("d", "h", "min", "s")
    first = next((i for i, n in enumerate(amounts) if n), 3)
    shown = [(amounts[i], names[i]) for i in (first, first + 1) if i < 4 and (i == first or amounts[i])]
    return " ".join(f"{n} {name}" + ("s" if words and n != 1 else "") for n, name in shown)


def ttl_cell(kind: str, ttl: int) -> str:
    """A key's TTL as people say it; a key without one is marked ∞ when its kind is kept by design (``KEY_KINDS``),
    else ⚠: a key that should expire but will not."""
    if ttl != -1:
        return human_duration(ttl)
    known = KEY_KINDS.get(kind)
    return "∞ kept" if known is not None and not known.expires else "⚠ never expires"


def human_bytes(size: float) -> str:
    """A size as people read it: "812 B", "4.2 KiB", "1.5 MiB"."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
