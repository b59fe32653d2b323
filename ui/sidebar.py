"""The shared sidebar: backend health, LLM provider, and the current user and session."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from memory.errors import MemoryLabError
from memory.keys import InvalidIdError, is_valid_id, validate_id
from memory.lab import BackendStatus

from .deep_link import LinkNote, read_link
from .state import BACKEND_ERRORS, DEFAULT_USER, get_lab, md_text, start_model_warmup


def new_session_id() -> str:
    return "s-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _new_session() -> None:
    _leave_link()
    st.session_state["session_id"] = new_session_id()


def _leave_link() -> None:
    """Another session was picked: what the link opened (its strategy) and said (its notes) was about the
    session it came with, so both go, and nothing of the link reaches the session picked."""
    st.session_state.pop(_LINK_STRATEGY, None)
    st.session_state.pop(_LINK_NOTES, None)


# The user and session live in plain state ("user_id", "session_id"); the widgets that edit them have
# their own keys and are filled from that state on every page. Each file in `pages/` draws its own
# sidebar, and Streamlit forgets a widget's value when a page without that very widget runs.
_USER_BOX, _SESSION_BOX = "_user_box", "_session_box"
_LINK_NOTES = "_link_notes"
_LINK_STRATEGY = "_link_strategy"  # (user, session, strategy): the link's strategy, for the session it named


def _session_picked() -> None:
    if st.session_state[_SESSION_BOX] != st.session_state.get("session_id"):
        _leave_link()
    st.session_state["session_id"] = st.session_state[_SESSION_BOX]


def _sessions_of(user: str) -> list[str] | None:
    """The user's session ids, newest first; None when they cannot be read (the banner says why)."""
    try:
        return [sid for sid, _ in get_lab().sessions.sessions(user)]
    except MemoryLabError:
        return None


def _user_changed() -> None:
    """Switching user opens that user's newest session (or a first one), never the previous user's session id."""
    user = st.session_state[_USER_BOX]
    if user != st.session_state.get("user_id"):
        _leave_link()
    st.session_state["user_id"] = user
    if is_valid_id(user):
        st.session_state["session_id"] = (_sessions_of(user) or ["s1"])[0]


def apply_deep_link() -> None:
    """`?user=…&session=…&strategy=…` reproduce a view; read once per browser session, then kept in sync."""
    ss = st.session_state
    if ss.get("_deep_link_read"):
        return
    ss["_deep_link_read"] = True
    params = {name: st.query_params.get_all(name) for name in ("user", "session", "strategy")}
    view = read_link(params, ss.get("user_id", DEFAULT_USER), _sessions_of)
    if view.user_refused:
        ss["user_id"] = ""  # no stand-in: the pages wait for a user typed in the sidebar
    if view.user is not None:
        ss["user_id"] = view.user
    if view.session is not None:
        ss["session_id"] = view.session
    if view.strategy is not None:
        ss[_LINK_STRATEGY] = (ss.get("user_id", DEFAULT_USER), ss.get("session_id", "s1"), view.strategy)
    elif "strategy" in st.query_params:
        del st.query_params["strategy"]  # refused: the address no longer claims it
    if view.notes:
        ss[_LINK_NOTES] = (ss.get("user_id", DEFAULT_USER), ss.get("session_id", "s1"), view.notes)


def link_notes() -> list[LinkNote]:
    """What the link could not open, while the view it opened is still the current one."""
    ss = st.session_state
    user, session, notes = ss.get(_LINK_NOTES) or ("", "", [])
    return notes if (user, session) == (ss.get("user_id"), ss.get("session_id")) else []


def render_banner(statuses: list[BackendStatus]) -> None:
    """A clear banner at the top of every page for each backend that is down."""
    for s in statuses:
        if not s.ok:
            st.error(
                f"**{s.name} is {s.problem}** ({md_text(s.mode)}, {md_text(s.location)}). {md_text(s.fix)}. "
                f"Details: {md_text(s.detail)}",
                icon=":material/error:",
            )


def render_sidebar() -> list[BackendStatus]:
    lab = get_lab()
    apply_deep_link()
    st.session_state.setdefault("user_id", DEFAULT_USER)
    st.session_state.setdefault("session_id", "s1")
    statuses = lab.doctor(load_model=False, open_store=True)
    model_ready = start_model_warmup(lab, repr(lab.settings))
    with st.sidebar:
        st.subheader("Backends")
        for s in statuses:
            icon = ":green[:material/check_circle:]" if s.ok else ":red[:material/error:]"
            label = f"{icon} **{s.name}** · {s.mode}" + (f" · {s.version}" if s.version else "")
            st.markdown(label)
            if s.name == "LLM" and s.mode == "offline":
                st.caption(
                    "Offline provider: replies quote the memory they were given (set ANTHROPIC_API_KEY for Claude, "
                    "or MEMLAB_LLM=openai and OPENAI_BASE_URL for any OpenAI-compatible server)."
                )
            elif not s.ok:
                st.caption(f"Fix: {md_text(s.fix)}")
            elif s.name == "Embeddings" and not model_ready.is_set():
                st.caption(":material/hourglass_top: Loading the model in the background (first start only)…")
        st.divider()
        st.subheader("User & session")
        st.session_state[_USER_BOX] = st.session_state["user_id"]
        st.text_input(
            "User id",
            key=_USER_BOX,
            on_change=_user_changed,
            help="Letters, digits, '_', '.', '-' (1-64 characters). Switching opens that user's newest session.",
        )
        user = st.session_state["user_id"]
        if not user:
            st.caption("Type a user id to go on.")
            return statuses
        try:
            validate_id("user", user)
        except InvalidIdError as exc:
            st.error(md_text(str(exc)))
            return statuses
        sessions: list[str] = []
        try:
            sessions = [sid for sid, _ in lab.sessions.sessions(user)]
        except BACKEND_ERRORS as exc:
            st.caption(f"Sessions unavailable: {md_text(str(exc))}")
        current = st.session_state["session_id"]
        options = sessions if current in sessions else [current] + sessions
        st.session_state[_SESSION_BOX] = current
        st.selectbox(
            "Session",
            options,
            key=_SESSION_BOX,
            on_change=_session_picked,
            help="Sessions of this user, newest first. A new one starts empty.",
        )
        st.button("New session", icon=":material/add:", on_click=_new_session, width="stretch")
    st.query_params.update({"user": user, "session": st.session_state["session_id"]})  # a link reproduces the view
    return statuses
