"""Chat playground: talk through a memory strategy and see what the model saw on each turn."""

from __future__ import annotations

import streamlit as st

from memory import STRATEGIES
from memory.health import llm_status
from memory.records.messages import Message, new_message_id
from memory.records.trace import Trace
from ui.layout import page
from ui.state import (
    CONFIG_WIDGETS,
    guarded,
    md_escape,
    md_text,
    restore_session_settings,
    session_config,
    setting_shown,
    show_in_address,
    show_text,
    ttl_choices,
    ttl_words,
    warm_model,
)
from ui.trace_view import render_trace

ctx = page("pages/chat.py", names_strategy=True)
lab, user, session = ctx.lab, ctx.user_id, ctx.session_id
llm = llm_status(lab)
st.caption(f"User **{md_escape(user)}** · session **{md_escape(session)}** · LLM: {llm.mode} ({llm.version})")

names = list(STRATEGIES)
restore_session_settings(lab, user, session, default_strategy=names[0])
top = st.columns([2, 3])
strategy = top[0].selectbox(
    "Memory strategy",
    names,
    key="strategy",
    help="\n\n".join(f"**{n}**: {STRATEGIES[n].description}" for n in names),
)
top[0].caption(STRATEGIES[strategy].description)
used = [f for f in CONFIG_WIDGETS if f in STRATEGIES[strategy].uses]
with top[1].expander("Strategy settings", expanded=False):
    columns = st.columns(3)
    for i, field_name in enumerate(used):
        key = setting_shown(lab, field_name)
        _, label, low, high = CONFIG_WIDGETS[field_name]
        if field_name == "ttl_s":
            columns[i % 3].selectbox(label, ttl_choices(st.session_state[key]), key=key, format_func=ttl_words)
        else:
            columns[i % 3].number_input(label, low, high, key=key)
    st.caption(
        f"The settings {strategy} uses. Stored with the session on its next turn, and restored whenever it is "
        "opened again."
    )
config = session_config(lab, used)
show_in_address(strategy=strategy)
if config.summary_keep >= config.summary_threshold:
    st.warning("'Keep after fold' must be below the fold threshold; using threshold − 1.")
    config = config.with_(summary_keep=config.summary_threshold - 1)


def show_message(message: Message, trace: Trace | None) -> None:
    """One message, and under a reply (or a failed turn) what the model saw, drawn only when opened."""
    with st.chat_message(message.role.value):
        show_text(message.content)
        if trace is None or not (message.role.value == "assistant" or trace.error):
            return
        label = "What the model saw" if not trace.error else "What the model would have seen (call failed)"
        panel = st.expander(
            f"{label} · {md_escape(trace.strategy)} · ~{trace.total_tokens} tokens",
            key=f"trace-{message.id}",
            on_change="rerun",
        )
        if panel.open:  # lazy: a long session stays fast
            with panel:
                render_trace(trace, key=message.id)


hint = st.empty()
with guarded("Reading the session"):
    log = lab.sessions.log(user, session)
    stored = lab.sessions.traces(user, session)
    traces = dict(stored.items)
    if not log.messages and not log.corrupt:
        hint.info(
            "This session is empty. Say something below — e.g. *My name is Alice. I use Python.* — then "
            "start a new session in the sidebar and ask *What is my name?* with the facts or hybrid strategy."
        )
    for bad in log.corrupt:
        st.warning(f"Entry #{bad.index} of this session's log is corrupt and was skipped: {md_text(bad.error)}")
    for bad in stored.corrupt:
        st.warning(f"Stored trace #{bad.index} of this session is corrupt and was skipped: {md_text(bad.error)}")
    for message in log.messages:
        show_message(message, traces.get(message.id))

pending = st.session_state.get("chat_pending")
if pending and st.button("Retry the last message", icon=":material/replay:", key="chat_retry"):
    st.session_state["chat_resend"] = pending["text"]

prompt = st.chat_input(f"Message through the {strategy} strategy") or st.session_state.pop("chat_resend", None)
if prompt:
    # The new turn is drawn in place (no second run of the page), so a turn costs little beyond the engine's time.
    hint.empty()
    # A retry of a message that failed keeps its id, so the engine stores it once however often it is sent.
    same = pending and pending["text"] == prompt.strip() and pending["user"] == user and pending["session"] == session
    message_id = pending["id"] if same and pending else new_message_id()
    st.session_state["chat_pending"] = {"id": message_id, "text": prompt.strip(), "user": user, "session": session}
    with guarded("Sending the message"):
        warm_model(lab, repr(lab.settings))
        if lab.llm.streams:  # a hosted model: stream the reply as it is written
            with st.chat_message("user"):
                show_text(prompt)
            with st.spinner("Building the context…"):
                turn = lab.chat_stream(user, session, prompt, strategy=strategy, config=config, message_id=message_id)
            with st.chat_message("assistant"):
                st.write_stream(md_text(piece) for piece in turn)  # a reply is untrusted text too
            result = turn.result
        else:
            with st.spinner("Building the context and asking the model…"):
                result = lab.chat(user, session, prompt, strategy=strategy, config=config, message_id=message_id)
            show_message(result.user_message, result.trace if result.error else None)
            if result.reply is not None:
                show_message(result.reply, result.trace)
        if result is not None and result.error:
            st.error(f"{md_text(result.error)} — your message was saved; send it again (or press Retry) to retry.")
        elif result is not None:
            st.session_state.pop("chat_pending", None)
            if result.trace.job.get("status") == "queued" and result.reply is not None:
                st.session_state["upkeep_watch"] = (user, session, result.reply.id)


@st.fragment(run_every=0.5)
def upkeep_watch() -> None:
    """'Memory updating…' under the new turn until its upkeep job is done, then redraw the page with the outcome."""
    watched = st.session_state.get("upkeep_watch")
    if not watched or watched[:2] != (user, session):
        return
    outcome = None
    with guarded("Checking memory upkeep"):
        outcome = lab.upkeep.outcome(*watched)
    if outcome is None:
        st.caption(":material/sync: Memory updating… (facts, summary, episode are written after the reply)")
        return
    st.session_state.pop("upkeep_watch", None)
    st.rerun()  # the whole page: the turn's trace now shows what the upkeep did


if st.session_state.get("upkeep_watch"):
    upkeep_watch()

st.divider()
b1, b2, b3 = st.columns(3)
export_panel = b3.popover(
    "Export this session", icon=":material/download:", width="stretch", key="export_panel", on_change="rerun"
)
if export_panel.open:  # built only when opened
    with export_panel, guarded("Exporting"):
        from memory.transfer.portability import dumps, export_session, session_markdown

        export = export_session(lab, user, session)
        st.download_button("Transcript and traces (JSON)", dumps(export), f"{user}-{session}.json", "application/json")
        st.download_button("Transcript (Markdown)", session_markdown(export), f"{user}-{session}.md", "text/markdown")
        st.caption("`python -m memory import FILE` loads the JSON back.")
if b1.button("Clear this session", icon=":material/mop:", width="stretch"):
    st.session_state["confirm"] = "clear"
if b2.button("Forget this user", icon=":material/person_remove:", width="stretch"):
    st.session_state["confirm"] = "forget"
if deleted := st.session_state.pop("chat_deleted", None):
    what, detail, ok = deleted
    (st.success if ok else st.error)(f"{md_escape(what)}: {md_text(detail)}")
confirm = st.session_state.get("confirm")
if confirm:
    what = (
        f"delete every message, summary and trace of session '{session}', its episode and its indexed turns "
        "(the user's facts are kept)"
        if confirm == "clear"
        else f"delete every Redis key, fact, episode and indexed turn of user '{user}'"
    )
    st.warning(f"This will {md_escape(what)}. It cannot be undone.")
    y, n = st.columns(2)
    if y.button("Yes, delete", type="primary", key="confirm_yes"):
        with guarded("Deleting"):
            report = lab.clear_session(user, session) if confirm == "clear" else lab.forget_user(user)
            what = f"Session {session} cleared" if confirm == "clear" else f"Forgot {user}"
            st.session_state["chat_deleted"] = (what, report.describe(), report.ok)
        st.session_state.pop("confirm", None)
        st.rerun()
    if n.button("Cancel", key="confirm_no"):
        st.session_state.pop("confirm", None)
        st.rerun()
