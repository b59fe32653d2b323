"""The Vector memory page's facts over time: the facts valid at a date, and one fact's versions with word diffs
and a restore button per version (``memory/timeline/versions.py``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memory import MemoryLab
from memory.timeline.provenance import Source, replay_link
from memory.timeline.versions import DiffPart, fact_history, parse_when, restore_version, valid_at, when_text, word_diff

from .state import guarded, md_escape, md_text
from .tables import text_table

_NOTICE = "vec_notice"  # the memory editor's: shown once after the rerun


def diff_markdown(parts: list[DiffPart]) -> str:
    """A word diff as Markdown: removed words struck through on red, added ones on green (escaped text)."""
    out = []
    for p in parts:
        text = md_escape(p.text.strip()) if p.text.strip() else ""
        if not text:
            out.append(" " if p.text else "")
        elif p.op == "removed":
            out.append(f":red-background[~~{text}~~]")
        elif p.op == "added":
            out.append(f":green-background[{text}]")
        else:
            out.append(md_escape(p.text))
    return "".join(out)


def as_of_section(lab: MemoryLab, user: str) -> None:
    """The facts valid at a chosen date, each with the interval its version was valid in."""
    typed = st.text_input(
        "Facts as of",
        key="vec_as_of",
        placeholder="2026-12-01, or 2026-12-01 14:30",
        help="A date (its end) or a date and time. Empty: the facts now (the table above).",
    )
    if not typed.strip():
        st.caption("Type a date to see the facts as they were then, superseded ones included, each with its interval.")
        return
    with guarded("Reading the facts as of that date"):
        at = parse_when(typed, "the date")
        facts, skipped = valid_at(lab.facts, user, at)
        if skipped:
            st.warning(f"{skipped} damaged fact log entries were skipped: facts they named may be missing here.")
        if not facts:
            st.caption(f"No fact was valid at {when_text(at)}.")
            return
        text_table(
            pd.DataFrame(
                [
                    {
                        "fact": f.text,
                        "valid from": when_text(f.valid_from),
                        "valid until": when_text(f.valid_until),
                        "version": f.version,
                        "id": f.id,
                    }
                    for f in facts
                ]
            ),
            "vec_as_of_table",
            ["fact"],
        )


def history_section(lab: MemoryLab, user: str) -> None:
    """One fact's whole history (deleted and superseded facts too): causes, word diffs, restore any version."""
    with guarded("Reading the fact log"):
        log = lab.facts.history(user).items
        last_text: dict[str, str] = {}
        changed: dict[str, int] = {}  # fact id -> index of its latest event
        for i, e in enumerate(log):
            last_text[e.fact_id] = e.text or e.previous or last_text.get(e.fact_id, "")
            changed[e.fact_id] = i
        if not last_text:
            st.caption("No fact has a history yet.")
            return
        ids = sorted(changed, key=lambda i: -changed[i])  # most recently changed first
        fact_id = st.selectbox(
            "Fact",
            ids,
            key="vec_history_pick",
            format_func=lambda i: f"{last_text.get(i, '')[:90]}  ·  {i[:8]}",
        )
        if fact_id is None:
            return
        history = fact_history(lab.facts, user, fact_id)
        if history.skipped:
            st.warning(f"{history.skipped} damaged fact log entries were skipped; they may have named this fact.")
        previous = ""
        for v in history.versions:
            state = v.state if v.until is None else f"was {v.state}"  # an earlier version: it is no longer so
            head = f"**v{v.number}** · {when_text(v.at)} → {when_text(v.until)} · `{v.event}` · {state}"
            turn = (
                replay_link(user, Source(v.session_id, v.job))
                if v.job and v.session_id and not v.job.startswith(("retention-", "merge-"))
                else None
            )
            st.markdown(f"{head}  \n{md_text(v.cause)}" + (f" ([open that turn]({turn}))" if turn else ""))
            body, button = st.columns([5, 1])
            body.markdown(diff_markdown(word_diff(previous, v.text)) if previous else md_text(v.text))
            latest = v.number == len(history.versions)
            if v.state != "deleted" and not (latest and v.state == "current"):
                if button.button("Restore", key=f"vec_restore:{fact_id}:{v.number}", icon=":material/restore:"):
                    with guarded("Restoring the version"):
                        event = restore_version(lab.facts, user, fact_id, v.number)
                        st.session_state[_NOTICE] = (
                            f"Restored version {v.number}: {event.text}" if event else "That version is current."
                        )
                        st.rerun()
            previous = v.text
