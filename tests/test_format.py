"""One formatter for times, durations and sizes (memory/presentation/format.py), used by pages, CLI and exports."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from memory.presentation.format import day_and_time, when

AT = dt.datetime(2026, 12, 7, 22, 50, 1).timestamp()  # local time, as the formatter shows it


@pytest.mark.parametrize(
    ("to", "shown"),
    [("second", "2026-12-07 22:50:01"), ("minute", "2026-12-07 22:50"), ("clock", "22:50:01"), ("day", "2026-12-07")],
)
def test_a_moment_reads_to_the_second_the_minute_the_clock_or_the_day(to, shown):
    assert when(AT, to) == shown


@pytest.mark.parametrize("value", [3.0, -1, 1e400, float("nan"), "2026", None, True, 1e15])
def test_what_is_not_a_time_reads_as_nothing_never_1970_or_a_crash(value):
    assert when(value) == "" and when(value, "clock") == ""
    if isinstance(value, float):
        assert day_and_time(value) == ""


def test_a_recent_moment_says_today_or_its_day():
    assert day_and_time(time.time()).startswith("today ")
    assert day_and_time(AT) in ("Dec 07 22:50", "today 22:50")
