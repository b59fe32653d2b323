"""The command line's view of memory over time: ``facts history|restore``, ``facts list --as-of``, ``replay`` and
``retention``; text for a terminal or JSON (``--json``), as the rest of the CLI writes it.

Why apart from ``cli.py``: these commands only read the timeline modules and print; keeping them here leaves
``cli.py`` one dispatch line per command.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InputError
from ..lab import MemoryLab
from ..stored import iso_date
from .versions import diff_text, fact_history, parse_when, restore_version, valid_at, when_text, word_diff


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def facts_over_time(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``facts history ID``, ``facts restore ID --version N`` and ``facts list --as-of DATE``."""
    if a.action in ("history", "restore") and not a.fact:
        raise InputError(f"facts {a.action} needs a fact id: python -m memory facts {a.action} FACT_ID --user USER")
    if a.action == "history":
        history = fact_history(lab.facts, a.user, a.fact)
        if a.json:
            _print_json(history.to_dict())
            return 0
        previous = ""
        for v in history.versions:
            print(f"v{v.number}  {when_text(v.at)} → {when_text(v.until)}  {v.event} ({v.state}) — {v.cause}")
            print(f"    {diff_text(word_diff(previous, v.text)) if previous else v.text}")
            previous = v.text
        if history.skipped:
            print(f"note: {history.skipped} damaged fact log entries were skipped; they may have named this fact")
        return 0
    if a.action == "restore":
        if a.version is None:
            raise InputError("facts restore needs --version N (see: python -m memory facts history FACT_ID)")
        event = restore_version(lab.facts, a.user, a.fact, a.version)
        if a.json:
            _print_json({"restored": event is not None, "text": event.text if event else None})
        else:
            print(f"restored version {a.version}: {event.text!r}" if event else "unchanged: that version is current")
        return 0
    at = parse_when(a.as_of)
    facts, skipped = valid_at(lab.facts, a.user, at)
    if a.json:
        _print_json({"as_of": iso_date(at), "facts": [f.to_dict() for f in facts], "skipped_log_entries": skipped})
    else:
        for f in facts:
            print(f"{f.id}\tv{f.version}\t{when_text(f.valid_from)} → {when_text(f.valid_until)}\t{f.text}")
        if skipped:
            print(f"note: {skipped} damaged fact log entries were skipped")
    return 0

