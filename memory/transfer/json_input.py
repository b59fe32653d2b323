"""Files a person hands Memory Lab (imports, Compare scenarios, evaluation data): read whole, bounded, typed.

What is *stored* is read leniently (``stored.py``: skip the corrupt entry,
report it, read the rest). A file someone chose is the opposite case: it is
refused whole, with one line naming what is wrong, before anything is
written — an ``InputError`` (exit 2 on the CLI, a red box on a page).

Every reader goes through ``read_json``: bounded bytes (also after gunzip,
so a gzip bomb stops at the limit), UTF-8 with the offset of a bad byte, JSON
without NaN, Infinity, repeated keys or numbers no float can hold, and a
bounded nesting depth. Fields are then read with the accessors below, each
naming where the value sits (``turns[3].user``) and holding it to the same
limits as the interactive paths.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError
from ..keys import is_valid_id
from ..records.stored import MAX_TIMESTAMP, as_dict, as_number, as_text, kind_of

MAX_DEPTH = 32  # every format here nests less than 10 deep; free-form parts (trace settings) stay far below
MB = 1024 * 1024
# A turn of an evaluation data set: above the chat's own MEMLAB_MAX_MESSAGE_CHARS (32,000 by default),
# because LongMemEval's assistant turns reach 76,560 characters and the benchmark must read as published.
DATASET_TEXT_CHARS = 100_000
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"
_MAX_DIGITS = 20  # a whole number longer than this is not a count, a category or a timestamp
_REQUIRED = object()

Reader = TypeVar("Reader", bound=Callable[..., Any])


def refused_as(error: type[InputError]) -> Callable[[Reader], Reader]:
    """A reader raises its own ``InputError`` subclass (``ScenarioError``...): the accessors' errors, as it."""

    def wrap(reader: Reader) -> Reader:
        @functools.wraps(reader)
        def read(*args: Any, **kwargs: Any) -> Any:
            try:
                return reader(*args, **kwargs)
            except InputError as exc:
                if isinstance(exc, error):
                    raise
                raise error(str(exc)) from exc

        return read  # type: ignore[return-value]

    return wrap


# -- bytes ----------------------------------------------------------------------------------------------------


def read_source(source: str | Path | bytes, what: str, max_bytes: int) -> bytes:
    """The bytes of a file (or the bytes given), gunzipped when they are gzip, refused beyond ``max_bytes``.

    A path is read up to one byte past the limit, so ``/dev/zero`` or a
    200 GB file is refused without being read whole.
    """
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    else:
        try:
            with open(source, "rb") as handle:
                raw = handle.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot read {str(source)[:200]!r}: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise InputError(f"{what} is larger than {_size(max_bytes)}, the most Memory Lab reads")
    if raw[:2] == _GZIP_MAGIC:
        return _gunzip(raw, what, max_bytes)
    return raw


def _gunzip(raw: bytes, what: str, max_bytes: int) -> bytes:
    """Every gzip member of ``raw``, never more than ``max_bytes`` out (a small bomb cannot fill the memory)."""
    out = bytearray()
    data = raw
    while data:
        if data[:2] != _GZIP_MAGIC:
            raise InputError(f"{what} is damaged: bytes that are not gzip follow the compressed data")
        unpack = zlib.decompressobj(wbits=31)
        try:
            while True:
                out += unpack.decompress(data, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise InputError(f"{what} unpacks to more than {_size(max_bytes)}, the most Memory Lab reads")
                if unpack.eof:
                    break
                data = unpack.unconsumed_tail
                if not data:
                    raise InputError(f"{what} is damaged: the gzip data ends early")
        except zlib.error as exc:
            raise InputError(f"{what} is damaged: {exc}") from exc
        data = unpack.unused_data
    return bytes(out)


def _size(n: int) -> str:
    return f"{n / MB:,.0f} MB" if n >= MB else f"{n:,} bytes"


def decode_utf8(raw: bytes, what: str) -> str:
    """The text of ``raw`` (a leading byte-order mark dropped), or one line naming the first bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise InputError(f"{what} is not UTF-8 text (byte 0x{bad} at offset {exc.start:,}); save it as UTF-8") from None
    return text[1:] if text.startswith(_BOM) else text


# -- JSON -------------------------------------------------------------------------------------------------------


def read_json(source: str | Path | bytes, what: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a file a person gave: every failure is one ``InputError`` line, nothing else escapes."""
    return parse_json(decode_utf8(read_source(source, what, max_bytes), what), what, max_depth)


def parse_json(text: str, what: str, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{what} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # raised by the hooks below
        raise InputError(f"{what} is not valid JSON: {exc}") from None
    check_depth(value, what, max_depth)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object; a key given twice is refused (parsers disagree on which one wins, so the file is ambiguous)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(f"the key {key[:60]!r} appears twice in one object")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise InputError(f"a number with {len(digits.lstrip('-')):,} digits is out of range")
    return int(digits)


def _finite_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise InputError(f"the number {digits[:30]} is out of range")
    return number


def check_depth(value: Any, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse data nested deeper than ``max_depth`` (walked without recursion, so any depth is safe to check)."""
    if not isinstance(value, (dict, list)):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    raise InputError(f"{what} is nested more than {max_depth} levels deep")
                stack.append((child, depth + 1))


# -- fields -----------------------------------------------------------------------------------------------------


def obj(value: Any, where: str) -> dict[str, Any]:
    return as_dict(value, where, error=InputError)


def field(data: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> Any:
    """``data[key]``; a missing (or null) required field names its place."""
    value = data.get(key)
    if value is None:
        if default is _REQUIRED:
            raise InputError(f"{where} has no {key!r}" if where else f"{key!r} is missing")
        return default
    return value


def known_keys(data: dict[str, Any], allowed: Sequence[str], where: str) -> dict[str, Any]:
    """Refuse keys the format does not have: a misspelt one (``expected`` for ``expect``, ``fcts`` for
    ``facts``) would otherwise be ignored and the file read as if the part were empty."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        named = ", ".join(repr(key[:40]) for key in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise InputError(f"{where} has unknown key(s) {named}; expected only {', '.join(allowed)}")
    return data


def items(value: Any, where: str, max_items: int, empty: bool = True) -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"{where} is not a list (it is {kind_of(value)})")
    if len(value) > max_items:
        raise InputError(f"{where} has {len(value):,} entries; the limit is {max_items:,}")
    if not value and not empty:
        raise InputError(f"{where} is an empty list")
    return value


def text(value: Any, where: str, max_chars: int, empty: bool = False, limit: str = "") -> str:
    """Text of at most ``max_chars`` characters (blank refused unless ``empty``)."""
    result: str = as_text(value, where, error=InputError)
    if len(result) > max_chars:
        named = f" ({limit})" if limit else ""
        raise InputError(f"{where} has {len(result):,} characters; the limit is {max_chars:,}{named}")
    if not empty and not result.strip():
        raise InputError(f"{where} is empty")
    return result


def name(value: Any, where: str, max_chars: int = 200) -> str:
    """A short name shown on one line (a model id): no line break, tab or other control or format character."""
    result = text(value, where, max_chars)
    bad = next((ch for ch in result if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise InputError(f"{where} holds the control character U+{ord(bad):04X}; a name is one line of text")
    return result


def label(value: Any, where: str, max_chars: int = 200) -> str:
    """A short name that data sets write as text or as a number (an answer "4", a session 2): as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = number(value, where, -1e15, 1e15)  # a count or a year, not 300 digits of text
        return str(int(result)) if result.is_integer() else str(result)
    return text(value, where, max_chars)


def number(value: Any, where: str, low: float, high: float) -> float:
    result = float(as_number(value, where, error=InputError))
    if not low <= result <= high:
        raise InputError(f"{where} is {result:g}; expected {low:g} to {high:g}")
    return result


def whole(value: Any, where: str, low: int, high: int) -> int:
    result = number(value, where, low, high)
    if not result.is_integer():
        raise InputError(f"{where} is {result:g}; expected a whole number")
    return int(result)


def flag(value: Any, where: str) -> bool:
    """true/false, with null (or absent) as false."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{where} is not true/false (it is {kind_of(value)})")
    return value


def ident(value: Any, where: str) -> str:
    """An id by ``keys.py``'s rules (1-64 of letters, digits, '_', '.', '-'; no look-alike letters, no spaces)."""
    if not is_valid_id(value):
        shown = repr(value)[:80] if isinstance(value, str) else kind_of(value)
        raise InputError(
            f"{where} {shown} is not a valid id: use 1-64 characters from letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


def message_date(date: dt.datetime | None, text: str, where: str, spread_s: float = 0.0) -> dt.datetime | None:
    """A data set's date that its messages will carry (``spread_s`` seconds of them from it): refused when
    outside 1970 to the year 3000, the times a stored message may have (``stored.MAX_TIMESTAMP``)."""
    if date is None:
        return None
    try:
        stamp = date.timestamp()
    except (OverflowError, OSError, ValueError):
        stamp = -1.0
    if not 0 <= stamp <= MAX_TIMESTAMP - spread_s:
        raise InputError(f"{where} {text[:60]!r} is outside 1970 to 3000, the times a message can have")
    return date


def one_of(value: Any, where: str, choices: Sequence[str]) -> str:
    result = text(value, where, 200)
    if result not in choices:
        raise InputError(f"{where} is {result[:60]!r}; expected one of {', '.join(choices)}")
    return result


def unique(values: Sequence[str], where: Callable[[int], str], what: str) -> None:
    """Refuse a repeated id: which entry repeats which (an export never holds one, so the file was altered)."""
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in first:
            raise InputError(f"{where(i)} repeats the {what} {value[:64]!r} of {where(first[value])}")
        first[value] = i
