"""The shared sidebar: backend health, LLM provider, and the current user and session."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from memory.errors import MemoryLabError
from memory.health import BackendStatus, doctor
from memory.keys import InvalidIdError, is_valid_id, validate_id
from memory.lab import MemoryLab
from memory.presentation.format import day_and_time
from memory.records.stored import clean_text

from .deep_link import LinkNote, read_link
from .state import (
    ADDRESS,
    BACKEND_ERRORS,
    DEFAULT_USER,
    address,
    forget_in_address,
    get_lab,
    md_text,
    show_in_address,
    start_model_warmup,
)
from .theme import theme_switch


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


def _names_another_view(params: dict[str, list[str]]) -> bool:
    """Whether the address names a user, session or strategy other than the ones shown (a missing part names none)."""
    ss = st.session_state
    shown = {
        "user": ss.get("user_id"),
        "session": ss.get("session_id"),
        "strategy": ss.get("_keep_strategy"),
    }
    return any(values and values != [shown[name]] for name, values in params.items())


def apply_deep_link() -> None:
    """`?user=…&session=…&strategy=…` reproduce a view: read when a browser session opens, and again when the
    address changes from outside the page (Back, Forward) to name another view. An address the page wrote
    itself, or one a page link gave for the view already shown, changes nothing."""
    ss = st.session_state
    params = address()
    if ss.get("_deep_link_read") and (ss.get(ADDRESS) == params or not _names_another_view(params)):
        ss[ADDRESS] = params
        return
    ss["_deep_link_read"] = True
    ss[ADDRESS] = params
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
        forget_in_address("strategy")  # refused: the address no longer claims it
    if view.notes:
        ss[_LINK_NOTES] = (ss.get("user_id", DEFAULT_USER), ss.get("session_id", "s1"), view.notes, None)


def link_notes(page: str) -> list[LinkNote]:
    """What the link could not open: on the page it opened, while the view it opened is the current one (a tour
    of the other pages from there does not repeat it)."""
    ss = st.session_state
    stored: tuple[str, str, list[LinkNote], str | None] = ss.get(_LINK_NOTES) or ("", "", [], None)
    user, session, notes, shown_on = stored
    if (user, session) != (ss.get("user_id"), ss.get("session_id")) or shown_on not in (None, page):
        return []
    ss[_LINK_NOTES] = (user, session, notes, page)
    return list(notes)


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
    """User and session first (they are what every page is about), the theme, then the backends' health."""
    lab = get_lab()
    apply_deep_link()
    st.session_state.setdefault("user_id", DEFAULT_USER)
    st.session_state.setdefault("session_id", "s1")
    statuses = doctor(lab, load_model=False, open_store=True)
    with st.sidebar:
        _user_and_session()
        theme_switch()
        _backends(lab, statuses)
    return statuses


def _user_and_session() -> None:
    lab = get_lab()
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
        return
    try:
        validate_id("user", user)
    except InvalidIdError as exc:
        st.error(md_text(str(exc)))
        return
    sessions: list[tuple[str, float]] = []
    openings: dict[str, str] = {}
    try:
        sessions = lab.sessions.sessions(user)
        openings = lab.sessions.openings(user, [sid for sid, _ in sessions[:_LABELLED]])
    except BACKEND_ERRORS as exc:
        st.caption(f"Sessions unavailable: {md_text(str(exc))}")
    current = st.session_state["session_id"]
    ids = [sid for sid, _ in sessions]
    options = ids if current in ids else [current] + ids
    last = dict(sessions)
    st.session_state[_SESSION_BOX] = current
    st.selectbox(
        "Session",
        options,
        key=_SESSION_BOX,
        on_change=_session_picked,
        format_func=lambda sid: session_label(sid, last.get(sid), openings.get(sid)),
        help="Sessions of this user, newest first: when each was last used, and how it began. A new one starts empty.",
    )
    st.button("New session", icon=":material/add:", on_click=_new_session, width="stretch")
    show_in_address(user=user, session=st.session_state["session_id"])  # a link reproduces the view


_LABELLED = 200  # sessions whose first words are read for the list (the rest show their time and id)


def session_label(session_id: str, last_active: float | None, opening: str | None, width: int = 34) -> str:
    """'Dec 07 14:31 · Hi, I'm Maya. I live in…': when it was last used, and its first words (else its id)."""
    if last_active is None:
        return f"{session_id} · new, empty"
    words = " ".join(clean_text(opening or "").split())
    if len(words) > width:
        words = words[: width - 1].rstrip() + "…"
    return f"{day_and_time(last_active)} · {words or session_id}"


def _backends(lab: MemoryLab, statuses: list[BackendStatus]) -> None:
    model_ready = start_model_warmup(lab, repr(lab.settings))
    st.divider()
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
