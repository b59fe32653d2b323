"""Chat playground: talk through a memory strategy and see what the model saw on each turn."""

from __future__ import annotations

import streamlit as st

from memory import STRATEGIES, StrategyConfig
from ui.state import current, guarded, md_escape, warm_model
from ui.trace_view import render_trace

st.title("Chat playground")
ctx = current()
lab, user, session = ctx.lab, ctx.user_id, ctx.session_id
llm = lab.llm_status()
st.caption(f"User **{md_escape(user)}** · session **{md_escape(session)}** · LLM: {llm.mode} ({llm.version})")

names = list(STRATEGIES)
top = st.columns([2, 3])
strategy = top[0].selectbox(
    "Memory strategy", names, key="strategy", format_func=lambda n: f"{n} — {STRATEGIES[n].description}"
)
base = lab.default_config()
with top[1].expander("Strategy settings", expanded=False):
    c1, c2, c3 = st.columns(3)
    config = StrategyConfig(
        buffer_size=c1.number_input("Buffer size N (messages)", 1, 500, base.buffer_size, key="cfg_n"),
        ttl_s=c1.number_input("Session TTL (seconds, 0 = none)", 0, 365 * 24 * 3600, base.ttl_s, key="cfg_ttl"),
        summary_threshold=c2.number_input("Fold when buffer passes", 2, 500, base.summary_threshold, key="cfg_thr"),
        summary_keep=c2.number_input("Keep after fold", 0, 499, base.summary_keep, key="cfg_keep"),
        summary_max_tokens=base.summary_max_tokens,
        top_k=c3.number_input("Top-k facts", 1, 50, base.top_k, key="cfg_k"),
        episodes_k=c3.number_input("Top-k episodes", 1, 20, base.episodes_k, key="cfg_ek"),
        token_budget=c3.number_input("Token budget (hybrid)", 100, 200_000, base.token_budget, key="cfg_budget"),
    )
if config.summary_keep >= config.summary_threshold:
    st.warning("'Keep after fold' must be below the fold threshold; using threshold − 1.")
    config = config.with_(summary_keep=config.summary_threshold - 1)

with guarded("Reading the session"):
    log = lab.sessions.log(user, session)
    traces = lab.sessions.traces(user, session)
    if not log.messages:
        st.info(
            "This session is empty. Say something below — e.g. *My name is Alice. I use Python.* — then "
            "start a new session in the sidebar and ask *What is my name?* with the facts or hybrid strategy."
        )
    for bad in log.corrupt:
        st.warning(f"Entry #{bad.index} of this session's log is corrupt and was skipped: {bad.error}")
    for message in log.messages:
        with st.chat_message(message.role.value):
            st.markdown(md_escape(message.content))
            trace = traces.get(message.id)
            if trace is not None and (message.role.value == "assistant" or trace.get("error")):
                label = (
                    "What the model saw" if not trace.get("error") else "What the model would have seen (call failed)"
                )
                with st.expander(f"{label} · {trace.get('strategy')} · ~{trace.get('total_tokens', 0)} tokens"):
                    render_trace(trace, key=message.id)

if error := st.session_state.pop("chat_error", None):
    st.error(f"{error} — your message was saved; send again to retry.")

prompt = st.chat_input(f"Message through the {strategy} strategy")
if prompt:
    with guarded("Sending the message"):
        warm_model(lab, repr(lab.settings))
        with st.spinner("Building the context and asking the model…"):
            result = lab.chat(user, session, prompt, strategy=strategy, config=config)
        if result.error:
            st.session_state["chat_error"] = result.error
        st.rerun()

st.divider()
b1, b2, b3 = st.columns(3)
if b1.button("Clear this session", icon=":material/mop:", width="stretch"):
    st.session_state["confirm"] = "clear"
if b2.button("Forget this user", icon=":material/person_remove:", width="stretch"):
    st.session_state["confirm"] = "forget"
confirm = st.session_state.get("confirm")
if confirm:
    what = (
        f"delete every message, summary and trace of session '{session}'"
        if confirm == "clear"
        else f"delete every Redis key, fact and episode of user '{user}'"
    )
    st.warning(f"This will {what}. It cannot be undone.")
    y, n = st.columns(2)
    if y.button("Yes, delete", type="primary", key="confirm_yes"):
        with guarded("Deleting"):
            if confirm == "clear":
                lab.clear_session(user, session)
                st.toast(f"Session {session} cleared")
            else:
                counts = lab.forget_user(user)
                st.toast(f"Forgot {user}: {counts}")
        st.session_state.pop("confirm", None)
        st.rerun()
    if n.button("Cancel", key="confirm_no"):
        st.session_state.pop("confirm", None)
        st.rerun()
