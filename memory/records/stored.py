"""Reading what is stored: any failure to decode is a corrupt entry, never a crash.

Redis and Chroma hold whatever anyone wrote there. Every reader of stored
JSON goes through ``load_json``, which turns *any* failure (bytes that are
not UTF-8, broken syntax, nesting deep enough to exhaust the parser,
numbers out of range) into one ``StoredDataError``; readers then skip the
entry and report it with its index. ``CorruptEntry`` is that report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import MemoryLabError, StoredDataError

# Timestamps outside this range (before 1970, after the year 3000, inf, NaN)
# are not ones Memory Lab wrote, and datetime cannot show some of them.
MAX_TIMESTAMP = 32_503_680_000.0


@dataclass(frozen=True)
class CorruptEntry:
    """An entry that could not be decoded; kept so the pages and the CLI can show it."""

    index: int
    raw: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "raw": self.raw, "error": self.error}


def clean_text(text: str) -> str:
    """``text`` with anything that is not valid Unicode (undecodable bytes) shown as U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8")


def printable(value: Any, depth: int = 0) -> Any:
    """JSON-like data made safe to display: text cleaned, non-finite numbers as text, depth bounded."""
    if depth > 40 and isinstance(value, (dict, list, tuple)):
        return "… (nested more than 40 levels deep)"
    if isinstance(value, dict):
        return {clean_text(str(k)): printable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v, depth + 1) for v in value]
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# Seconds since 1970 between 2000 and the year 3000: what a field named for a moment holds when Memory Lab wrote it.
MIN_TIMESTAMP = 946_684_800.0


def iso_date(timestamp: float) -> str:
    """An epoch timestamp as an ISO 8601 date and time in UTC, to the second."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def with_iso_dates(value: Any, depth: int = 0) -> Any:
    """JSON-like data where each moment (a field named ``at`` or ``…_at`` holding epoch seconds) also gets its
    ISO date beside it (``created_at_iso``): the number stays for programs, the date is there for people."""
    if depth > 40:
        return value
    if isinstance(value, list):
        return [with_iso_dates(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        out[key] = with_iso_dates(item, depth + 1)
        moment = isinstance(key, str) and (key == "at" or key.endswith("_at"))
        if moment and isinstance(item, (int, float)) and not isinstance(item, bool):
            if MIN_TIMESTAMP <= item <= MAX_TIMESTAMP and f"{key}_iso" not in value:
                out[f"{key}_iso"] = iso_date(item)
    return out


def without_iso_dates(value: Any, depth: int = 0) -> Any:
    """``with_iso_dates`` undone: each ``<moment>_iso`` beside its ``<moment>`` goes (the number is what is read),
    so a file Memory Lab exported reads back whole under the importer's known-keys check."""
    if depth > 40:
        return value
    if isinstance(value, list):
        return [without_iso_dates(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        key: without_iso_dates(item, depth + 1)
        for key, item in value.items()
        if not (isinstance(key, str) and key.endswith("_iso") and key[: -len("_iso")] in value)
    }


def preview(raw: str | bytes, limit: int = 500) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else clean_text(str(raw))
    return text[:limit]


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:200] or type(exc).__name__


def load_json(raw: str | bytes | None) -> Any:
    """Parse one stored JSON value; every failure becomes a ``StoredDataError``."""
    if raw is None:
        raise StoredDataError("the entry is missing")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        text.encode("utf-8")  # undecodable bytes from Redis arrive as lone surrogates
    except UnicodeError as exc:
        raise StoredDataError("not valid UTF-8") from exc
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # the standard parser decides, so what counts as valid (NaN, huge integers) never changed
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError, OverflowError) as exc:
        raise StoredDataError(f"not valid JSON: {_short(exc)}") from exc


def dump_json(value: Any) -> str:
    """Compact JSON text, as every hot-path write stores it (orjson: a turn's trace in ~3 µs instead of ~40).

    Values orjson refuses (text with undecodable bytes, integers beyond 64
    bits, non-text keys) go through the standard encoder, as they always did.
    """
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# The type of error a field accessor raises: StoredDataError for what was stored, InputError for a file
# a person gave (``json_input.py``); the checks are the same.
Failure = type[MemoryLabError]


def kind_of(value: Any) -> str:
    """What a JSON value is, in words, for an error message ("a number", not "int")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def as_text(value: Any, name: str, optional: bool = False, error: Failure = StoredDataError) -> Any:
    """A string field of a stored record (valid Unicode), or None when optional and absent."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise error(f"{name} is not a string (it is {kind_of(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{name} is not valid Unicode") from exc
    return value


def as_number(value: Any, name: str, optional: bool = False, error: Failure = StoredDataError) -> Any:
    """A finite number field of a stored record."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{name} is not a number (it is {kind_of(value)})")
    try:
        number = float(value)
    except OverflowError as exc:
        raise error(f"{name} is out of range") from exc
    if not math.isfinite(number):
        raise error(f"{name} is not finite")
    return value if isinstance(value, int) and abs(value) < 2**53 else number


def as_timestamp(value: Any, name: str = "timestamp") -> float:
    number = float(as_number(value, name))
    if not 0 <= number <= MAX_TIMESTAMP:
        raise StoredDataError(f"{name} {number!r} is not a plausible time")
    return number


def as_int(value: Any, name: str) -> int:
    number = as_number(value, name)
    if isinstance(number, float) and not number.is_integer():
        raise StoredDataError(f"{name} is not a whole number")
    return int(number)


def as_dict(value: Any, name: str, error: Failure = StoredDataError) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise error(f"{name} is not a JSON object (it is {kind_of(value)})")
    return value
