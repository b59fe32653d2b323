"""Session replay: what each part of memory held at turn N of a session, what the model was sent, and what changed
between two turns; rebuilt from what is stored (``memory/timeline/replay.py``), with what cannot be exact said."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memory.timeline.provenance import Source, replay_link, source_of
from memory.timeline.replay import NothingToReplay, SessionReplay, TurnState
from memory.timeline.versions import when_text
from ui.fact_versions import diff_markdown
from ui.layout import page
from ui.provenance import SOURCE_COLUMN
from ui.state import guarded, md_escape, md_text, settle_upkeep, show_text
from ui.tables import text_table
from ui.trace_view import render_trace

ctx = page("pages/session_replay.py")
lab, user, session = ctx.lab, ctx.user_id, ctx.session_id
st.caption(
    f"User **{md_escape(user)}** · session **{md_escape(session)}**. Pick a turn: the buffer, the summary (and the "
    "fold that made it), the facts valid then and the episodes, as they stood when that turn's reply was written, "
    "and what the model was sent. Rebuilt from the transcript, the traces, the fold log, the fact log and the audit "
    "trail; what they do not keep exactly is said, never guessed."
)


def _message_turn(replay: SessionReplay, message_id: str) -> int | None:
    """The turn a message belongs to (a deep link's ``message=``), or None."""
    for turn in replay.turns:
        if message_id in (turn.user.id, turn.reply.id if turn.reply else None):
            return turn.number
    return None


def _show_state(replay: SessionReplay, state: TurnState) -> None:
    damaged = [n for n in state.notes if "damaged" in n]  # stored data gone bad: a warning
    limits = [n for n in state.notes if n not in damaged]  # what the stores never kept: said, as information
    if damaged:
        st.warning("Damaged entries:\n" + "\n".join(f"- {md_text(n)}" for n in damaged), icon=":material/broken_image:")
    if limits:
        st.info(
            "Not everything of this turn can be rebuilt exactly:\n" + "\n".join(f"- {md_text(n)}" for n in limits),
            icon=":material/history_toggle_off:",
        )
    with st.container(border=True):
        st.markdown(f"**Turn {state.turn} of {state.turns}** · {when_text(state.at)}")
        with st.chat_message("user"):
            show_text(state.user_message)
        with st.chat_message("assistant"):
            show_text(state.reply if state.reply is not None else "(no reply stored)")
    left, right = st.columns(2)
    with left:
        st.subheader(f"Buffer ({len(state.buffer)} messages)")
        if state.buffer:
            text_table(
                pd.DataFrame(
                    [{"role": m.role.value, "message": m.content, "at": when_text(m.created_at)} for m in state.buffer]
                ),
                f"replay_buffer_{state.turn}",
                ["message"],
            )
        st.subheader("Summary")
        if state.fold is None:
            st.caption("No fold yet at this turn: no summary.")
        else:
            first = replay_link(user, Source(session, state.fold.message_ids[0])) if state.fold.message_ids else None
            st.caption(
                f"Made by fold {state.fold.number} at {when_text(state.fold.at)}, "
                f"from {len(state.fold.message_ids)} messages" + (f" ([the first of them]({first}))." if first else ".")
            )
            if state.fold.summary is None:
                st.caption("Its text is not stored (see above).")
            else:
                st.code(state.summary or "(empty)", language=None, wrap_lines=True)
    with right:
        st.subheader(f"Facts valid then ({len(state.facts)})")
        if state.facts:
            text_table(
                pd.DataFrame(
                    [
                        {
                            "fact": f.text,
                            "version": f.version,
                            "valid from": when_text(f.valid_from),
                            "valid until": when_text(f.valid_until),
                            "said in": replay_link(user, source_of(replay.fact_meta.get(f.id, {}))),
                        }
                        for f in state.facts
                    ]
                ),
                f"replay_facts_{state.turn}",
                ["fact"],
                column_config={"said in": SOURCE_COLUMN},
            )
        st.subheader(f"Episodes ({len(state.episodes)})")
        if state.episodes:
            text_table(
                pd.DataFrame(
                    [
                        {
                            "session": e.session_id,
                            "episode": e.text,
                            "as at this turn": "yes" if e.exact else "no: changed since, shown as now",
                            "session link": replay_link(user, Source(e.session_id, None)) if e.session_id else None,
                        }
                        for e in state.episodes
                    ]
                ),
                f"replay_episodes_{state.turn}",
                ["episode"],
                column_config={"session link": SOURCE_COLUMN},
            )
    st.subheader("What the model was sent")
    if state.trace is None:
        st.caption("No trace is stored for this turn.")
    else:
        render_trace(state.trace, f"replay_trace_{state.turn}")


settle_upkeep(lab, user)
replay: SessionReplay | None = None
empty = False
with guarded("Reading the session's history"):
    try:
        replay = SessionReplay(lab, user, session)
    except NothingToReplay:
        empty = True
if empty:
    st.info(
        "Nothing to replay in this session yet: chat a few turns on the **Chat playground** (any strategy), "
        "then come back and move through them turn by turn."
    )
    st.stop()
if replay is None:
    st.stop()  # the error is shown above

n = len(replay.turns)
link_message = st.query_params.get("message")
if link_message and st.session_state.get("_replay_link") != link_message:
    st.session_state["_replay_link"] = link_message  # read once: the slider is the person's afterwards
    found = _message_turn(replay, link_message)
    if found is None:
        st.warning(f"This link names message {md_escape(link_message[:40])}, which is not in this session.")
    else:
        st.session_state[f"replay_turn:{user}:{session}"] = found
elif link_message and _message_turn(replay, link_message) is None:
    st.warning(f"This link names message {md_escape(link_message[:40])}, which is not in this session.")
turn_key = f"replay_turn:{user}:{session}"
if not 1 <= int(st.session_state.get(turn_key, 0)) <= n:
    st.session_state[turn_key] = n  # first visit (the newest turn), or a turn of a session since cleared
turn = st.slider("Turn", 1, n, key=turn_key) if n > 1 else 1
compare = st.toggle("Compare with another turn", key="replay_compare")
other = None
if compare and n > 1:
    other = st.slider("What changed since turn", 1, n, value=max(1, turn - 1), key=f"replay_other:{user}:{session}")

with guarded("Replaying the turn"):
    state = replay.at(int(turn))
    if other is not None:
        diff = replay.diff(int(other), int(turn))
        with st.container(border=True):
            st.subheader(f"What changed in memory from turn {diff.before} to turn {diff.after}")
            for fold in diff.folds:
                st.markdown(
                    f"- fold {fold.number} at {when_text(fold.at)} took {len(fold.message_ids)} messages "
                    "into the summary"
                )
            if diff.summary:
                st.markdown("**Summary**  \n" + diff_markdown(diff.summary))
            st.markdown(
                f"**Buffer**: {len(diff.buffer_added)} messages in, {len(diff.buffer_removed)} out · "
                f"**Facts**: {len(diff.facts_added)} new, {len(diff.facts_removed)} gone, "
                f"{len(diff.facts_changed)} changed · **Episodes changed**: {len(diff.episodes_changed)}"
            )
            for f in diff.facts_added:
                st.markdown(f":green-background[+] {md_text(f.text)}")
            for f in diff.facts_removed:
                st.markdown(f":red-background[−] ~~{md_escape(f.text)}~~")
            for _, _, parts in diff.facts_changed:
                st.markdown("~ " + diff_markdown(parts))
            if not (diff.folds or diff.summary or diff.buffer_added or diff.buffer_removed or diff.facts_added):
                if not (diff.facts_removed or diff.facts_changed or diff.episodes_changed):
                    st.caption("Nothing changed in memory between these turns.")
    _show_state(replay, state)
