"""Dates a query names ("on 24 October, 2023", "in March 2023", "two weeks ago"), as ranges of days.

Why: a question that names a date is usually about what was told around
then; the turns carry when they were said, so the ranking can favour those
(``Weights.date``). Explicit dates always count: a day with its month and
year in either order, or a month with its year. Dates said relative to
when the question is asked ("three weeks ago", "last month", "in the past
two weeks", "last Saturday", "yesterday", "in February") count only when
that day is known (``today``): a chat message has its time, a benchmark
question its date. A year alone, or "recently", names too much to place.
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


def date_ranges(text: str, today: dt.date | None = None) -> list[tuple[dt.date, dt.date]]:
    """Each date the text names, as (first day, last day): one day, or a whole month; with ``today``, also
    the dates it names relative to that day (``relative_ranges``)."""
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
    if today is not None:
        found.extend(relative_ranges(text, today, taken))
    return found


_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3, "several": 3,
}  # fmt: skip
_N = r"(\d{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + ")"
_UNIT = r"(day|week|month|year)s?"
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_AGO = re.compile(rf"\b{_N}\s+{_UNIT}\s+ago\b", re.I)
_PAST = re.compile(rf"\b(?:(?:past|last|previous)\s+{_N}|past)\s+{_UNIT}\b", re.I)
_LAST = re.compile(r"\b(?:last|previous)\s+(week|month|year|weekend|" + "|".join(_WEEKDAYS) + r")\b", re.I)
_THIS = re.compile(r"\bthis\s+(week|month|year)\b", re.I)
_YESTERDAY = re.compile(r"\byesterday\b", re.I)
_IN_MONTH = re.compile(rf"\b(?:in|during|since|of|early|late|mid)[\s-]+({_M})\b(?!\.?,?\s+\d)", re.I)


def _count(word: str) -> int:
    word = " ".join(word.lower().split())
    return int(word) if word.isdigit() else _NUMBERS[word]


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def relative_ranges(  # noqa: C901 - one branch per phrase the docstring lists, read in one pass over the matches
    text: str, today: dt.date, taken: list[tuple[int, int]] | None = None
) -> list[tuple[dt.date, dt.date]]:
    """The days the text names relative to ``today``, each as (first day, last day), never after today.

    "N units ago" is the day N units back, give or take half a unit (a day ago: that day); "the past N
    units" (or "the past unit") is from N units back to today; "last week/month/year" the calendar week
    (from Monday), month or year before this one; "last weekend" and "last Monday" the latest before
    today; "this week/month/year" from its first day to today; "in February" (no year) the latest
    February not after today.
    """
    taken = list(taken or [])
    found: list[tuple[dt.date, dt.date]] = []

    def free(m: re.Match[str]) -> bool:
        if any(start < m.end() and m.start() < end for start, end in taken):
            return False
        taken.append(m.span())
        return True

    for m in _AGO.finditer(text):
        if free(m):
            days = _count(m.group(1)) * _DAYS[m.group(2).lower()]
            half = _DAYS[m.group(2).lower()] // 2
            found.append((today - dt.timedelta(days=days + half), today - dt.timedelta(days=max(days - half, 0))))
    for m in _PAST.finditer(text):
        if free(m):
            n = _count(m.group(1)) if m.group(1) else 1  # "the past month": one
            found.append((today - dt.timedelta(days=n * _DAYS[m.group(2).lower()]), today))
    for m in _LAST.finditer(text):
        if not free(m):
            continue
        what = m.group(1).lower()
        if what == "week":
            monday = today - dt.timedelta(days=today.weekday() + 7)
            found.append((monday, monday + dt.timedelta(days=6)))
        elif what == "month":
            first = today.replace(day=1) - dt.timedelta(days=1)
            found.append(_month_range(first.year, first.month))
        elif what == "year":
            found.append((dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)))
        elif what == "weekend":
            saturday = today - dt.timedelta(days=(today.weekday() - 5) % 7 or 7)
            found.append((saturday, min(saturday + dt.timedelta(days=1), today)))
        else:
            day = today - dt.timedelta(days=(today.weekday() - _WEEKDAYS[what]) % 7 or 7)
            found.append((day, day))
    for m in _THIS.finditer(text):
        if free(m):
            what = m.group(1).lower()
            first = {
                "week": today - dt.timedelta(days=today.weekday()),
                "month": today.replace(day=1),
                "year": today.replace(month=1, day=1),
            }[what]
            found.append((first, today))
    for m in _YESTERDAY.finditer(text):
        if free(m):
            found.append((today - dt.timedelta(days=1), today - dt.timedelta(days=1)))
    for m in _IN_MONTH.finditer(text):
        if free(m):
            month = _MONTHS[m.group(1).lower()]
            year = today.year if month <= today.month else today.year - 1
            found.append(_month_range(year, month))
    return found
