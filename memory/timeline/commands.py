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


def replay_turn(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``replay SESSION --turn N [--diff M]``: memory at turn N (and what changed since turn M)."""
    from .replay import SessionReplay

    replay = SessionReplay(lab, a.user, a.session)
    state = replay.at(a.turn)
    diff = replay.diff(a.diff, a.turn) if a.diff is not None else None
    if a.json:
        _print_json({"turn": state.to_dict(), **({"diff": diff.to_dict()} if diff else {})})
        return 0
    print(f"turn {state.turn} of {state.turns} · {when_text(state.at)}")
    print(f"user: {state.user_message}")
    print(f"reply: {state.reply if state.reply is not None else '(none stored)'}")
    made = f"made by fold {state.fold.number} at {when_text(state.fold.at)}" if state.fold else "no fold yet"
    print(f"\nsummary ({made}):\n  {state.summary or '(empty)'}")
    print(f"\nbuffer ({len(state.buffer)} messages):")
    for m in state.buffer:
        print(f"  {m.role.value}: {m.content}")
    print(f"\nfacts valid then ({len(state.facts)}):")
    for f in state.facts:
        print(f"  {f.text}  (v{f.version}, {when_text(f.valid_from)} → {when_text(f.valid_until)})")
    print(f"\nepisodes ({len(state.episodes)}):")
    for e in state.episodes:
        print(f"  [{e.session_id}{'' if e.exact else ', changed since'}] {e.text}")
    if state.trace is not None:
        print(f"\nsent to the model ({state.trace.strategy}): {len(state.trace.messages)} messages, parts:")
        for part in state.trace.system_parts:
            print(f"  {part.name}: {' '.join(part.text.split())[:200]}")
    for note in state.notes:
        print(f"note: {note}")
    if diff is not None:
        print(f"\nchanged from turn {diff.before} to turn {diff.after}:")
        for fold in diff.folds:
            print(
                f"  fold {fold.number} at {when_text(fold.at)} took {len(fold.message_ids)} messages into the summary"
            )
        if diff.summary:
            print(f"  summary: {diff_text(diff.summary)}")
        print(f"  buffer: +{len(diff.buffer_added)} −{len(diff.buffer_removed)} messages")
        for f in diff.facts_added:
            print(f"  + fact: {f.text}")
        for f in diff.facts_removed:
            print(f"  − fact: {f.text}")
        for _, _, parts in diff.facts_changed:
            print(f"  ~ fact: {diff_text(parts)}")
        for sid in diff.episodes_changed:
            print(f"  ~ episode of session {sid}")
    return 0
