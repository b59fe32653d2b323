"""Dates a query names ("on 24 October, 2023", "in March 2023"), as ranges of days.

Why: a question that names a date is usually about what was told around
then; the turns carry when they were said, so the ranking can favour those
(``Weights.date``). Only explicit dates count: a day with its month and year
in either order, or a month with its year. A year alone, or "last week",
names too much or nothing that can be placed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_M = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DAY_MONTH_YEAR = re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_M})\.?,?\s+(\d{{4}})\b", re.I)
_MONTH_DAY_YEAR = re.compile(rf"\b({_M})\.?\s+{_DAY},?\s+(\d{{4}})\b", re.I)
_MONTH_YEAR = re.compile(rf"\b({_M})\.?,?\s+(\d{{4}})\b", re.I)


def _day(year: str, month: str, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), _MONTHS[month.lower()], int(day))
    except ValueError:  # "31 February"
        return None


def date_ranges(text: str) -> list[tuple[dt.date, dt.date]]:
    """Each date the text names, as (first day, last day): one day, or a whole month."""
    found: list[tuple[dt.date, dt.date]] = []
    taken: list[tuple[int, int]] = []
    for pattern, order in ((_DAY_MONTH_YEAR, (3, 2, 1)), (_MONTH_DAY_YEAR, (3, 1, 2))):
        for m in pattern.finditer(text):
            day = _day(*(m.group(i) for i in order))
            if day is not None:
                found.append((day, day))
                taken.append(m.span())
    for m in _MONTH_YEAR.finditer(text):
        if any(start <= m.start() < end for start, end in taken):
            continue
        year, month = int(m.group(2)), _MONTHS[m.group(1).lower()]
        if dt.MINYEAR <= year <= dt.MAXYEAR:
            last = calendar.monthrange(year, month)[1]
            found.append((dt.date(year, month, 1), dt.date(year, month, last)))
    return found
