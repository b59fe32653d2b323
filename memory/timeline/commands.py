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
from ..records.stored import iso_date
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
    _print_state(state)
    if diff is not None:
        _print_diff(diff)
    return 0


def _print_state(state: Any) -> None:
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


def _print_diff(diff: Any) -> None:
    print(f"\nchanged from turn {diff.before} to turn {diff.after}:")
    for fold in diff.folds:
        print(f"  fold {fold.number} at {when_text(fold.at)} took {len(fold.message_ids)} messages into the summary")
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


def pin_fact(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``facts pin ID`` / ``facts unpin ID``: a pinned fact is never removed by a retention policy."""
    from .retention import pin

    if not a.fact:
        raise InputError(f"facts {a.action} needs a fact id: python -m memory facts {a.action} FACT_ID --user USER")
    pin(lab, a.user, a.fact, a.action == "pin")
    print(f"{a.action}ned: {a.fact}" if not a.json else json.dumps({"fact": a.fact, "pinned": a.action == "pin"}))
    return 0


def retention_command(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``retention show|set|preview|apply|undo``: a user's policy, what it removes, applying it, undoing a run."""
    from . import retention as rt

    if a.action == "set":
        chosen = rt.RetentionPolicy(a.max_age_days, a.max_idle_days, a.then, a.grace_days)
        rt.set_policy(lab, a.user, chosen)
        print("no retention policy (nothing set)" if chosen.empty else f"policy set: {_policy_words(chosen)}")
        return 0
    if a.action == "undo":
        if not a.run:
            raise InputError("retention undo needs --run RUN_ID (see: python -m memory retention show)")
        back = rt.undo(lab, a.user, a.run)
        print(_json({"run": a.run, "restored": back}) if a.json else f"undone: {back} fact(s) back")
        return 0
    policy = rt.get_policy(lab, a.user)
    if a.action == "show":
        return _show_retention(lab, a, policy)
    if policy is None:
        raise InputError(f"user {a.user!r} has no retention policy: python -m memory retention set --user USER ...")
    if a.action == "preview":
        removals = rt.preview(lab, a.user, policy)
        if a.json:
            _print_json({"policy": policy.__dict__, "would_remove": [r.to_dict() for r in removals]})
        else:
            print(f"{_policy_words(policy)}: would remove {len(removals)} fact(s)")
            for r in removals:
                print(f"{r.id}\t{r.reason} {r.days:g} days\t{r.text}")
        return 0
    run = rt.apply(lab, a.user, policy, expected=a.expect.split(",") if a.expect is not None else None)
    if a.json:
        _print_json(run.to_dict())
    else:
        print(f"run {run.id}: removed {len(run.removed)} fact(s), undoable until {when_text(run.until)}")
        for r in run.removed:
            print(f"{r.id}\t{r.reason} {r.days:g} days\t{r.text}")
    return 0


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _policy_words(policy: Any) -> str:
    parts = []
    if policy.max_age_days is not None:
        parts.append(f"facts older than {policy.max_age_days:g} days")
    if policy.max_idle_days is not None:
        parts.append(f"facts idle for {policy.max_idle_days:g} days")
    how = "summarised, then forgotten" if policy.action == "summarise" else "forgotten"
    return f"{' or '.join(parts)} are {how} (undoable for {policy.grace_days:g} days); pinned facts stay"


def duplicates_command(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``facts duplicates`` (near-duplicate pairs, side by side) and ``facts merge KEEP --drop ID [--text T]``."""
    from .duplicates import merge, near_duplicates

    if a.action == "merge":
        if not a.fact or not a.drop:
            raise InputError("facts merge needs the fact to keep and --drop FACT_ID (see: facts duplicates)")
        events = merge(lab.facts, a.user, a.fact, a.drop, a.text)
        if a.json:
            _print_json({"kept": a.fact, "dropped": a.drop, "events": [e.event for e in events]})
        else:
            print(f"merged: {a.drop} into {a.fact}" if events else "nothing changed")
        return 0
    pairs = near_duplicates(lab.facts, a.user)
    if a.json:
        _print_json({"pairs": [p.to_dict() for p in pairs]})
        return 0
    for p in pairs:
        print(f"{p.similarity:.3f}\t{p.left_id}\t{p.left}\n\t{p.right_id}\t{p.right}")
    if not pairs:
        print("no near-duplicate facts")
    return 0


def _show_retention(lab: MemoryLab, a: argparse.Namespace, policy: Any) -> int:
    from . import retention as rt

    runs, damaged = rt.runs(lab, a.user)
    if a.json:
        _print_json(
            {
                "policy": None if policy is None else policy.__dict__,
                "pinned": sorted(rt.pins(lab, a.user)),
                "runs": [r.to_dict() for r in runs],
                "damaged_runs": damaged,
            }
        )
        return 0
    print(f"policy: {_policy_words(policy) if policy else 'none'}")
    print(f"pinned facts: {len(rt.pins(lab, a.user))}")
    for kept in runs:
        print(
            f"run {kept.id} at {when_text(kept.at)}: removed {len(kept.removed)}, "
            f"undoable until {when_text(kept.until)}"
        )
    return 0
