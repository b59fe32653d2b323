"""One call at the top of every page: page config, grouped navigation, the shared sidebar and the banner.

Pages live in `pages/`, so Streamlit serves each one by its own URL
(`/redis_keys`) and runs only that file; the default page list is hidden
(`client.showSidebarNavigation = false`) and this module draws the grouped
links instead, so a deep link shows the same sidebar as a click does.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from memory.keys import is_valid_id
from memory.paths import app_root
from memory.strategies import STRATEGIES

from .deep_link import ID_RULE
from .sidebar import link_notes, render_banner, render_sidebar
from .state import Current, current, forget_in_address, load_session_settings

ICON = str(app_root() / "assets" / "icon.png")  # local: emoji icons come from a CDN


@dataclass(frozen=True)
class NavLink:
    path: str  # relative to app.py, as st.page_link wants it
    label: str  # the link's words in the sidebar
    icon: str
    title: str  # the page's heading (and its browser tab's, but Home's tab says "Home")
    blurb: str = ""  # what it is for, on the home page


# Every page of the app, once: the sidebar's groups, the pages' headings, the home page's cards (and the tests').
NAVIGATION: dict[str, list[NavLink]] = {
    "": [NavLink("app.py", "Home", ":material/home:", "Memory Lab")],
    "Playground": [
        NavLink(
            "pages/chat.py",
            "Chat playground",
            ":material/chat:",
            "Chat playground",
            "Chat through a strategy and open each turn's trace: what was recalled and what the model saw.",
        ),
        NavLink(
            "pages/compare.py",
            "Compare",
            ":material/compare_arrows:",
            "Compare strategies",
            "Run one scripted conversation through every strategy and compare recall, tokens and time.",
        ),
    ],
    "Inspect memory": [
        NavLink(
            "pages/redis_keys.py",
            "Redis keys",
            ":material/key:",
            "Redis keys",
            "Browse the keys, their TTLs and memory use; other libraries' chat memory too.",
        ),
        NavLink(
            "pages/summaries.py",
            "Summaries",
            ":material/summarize:",
            "Summaries",
            "Watch the rolling summary grow fold by fold, and which messages each fold took.",
        ),
        NavLink(
            "pages/session_replay.py",
            "Session replay",
            ":material/replay:",
            "Session replay",
            "Step through a session turn by turn: what memory held then and what changed.",
        ),
        NavLink(
            "pages/vector_memory.py",
            "Vector memory",
            ":material/hub:",
            "Vector memory",
            "The long-term facts and episodes on a map, and a query's nearest neighbours.",
        ),
        NavLink(
            "pages/audit.py",
            "Audit trail",
            ":material/history:",
            "Audit trail",
            "Every memory write (messages, folds, facts, deletions), filtered by user and time.",
        ),
    ],
    "Evaluate": [
        NavLink(
            "pages/recall_lab.py",
            "Recall Lab",
            ":material/query_stats:",
            "Recall Lab",
            "Measure recall on LoCoMo and LongMemEval conversations and see why a question was missed.",
        )
    ],
}
LINKS = {link.path: link for links in NAVIGATION.values() for link in links}


_NOTE_SHOW = {
    "error": lambda text: st.error(text, icon=":material/link_off:"),
    "warning": lambda text: st.warning(text, icon=":material/link_off:"),
    "info": lambda text: st.info(text, icon=":material/info:"),
}


HOME = "app.py"
CHAT = "pages/chat.py"  # the one page whose address also names a strategy


def link_params(path: str, on_chat: bool = False) -> dict[str, str]:
    """The address parameters of the view a link to ``path`` opens: the user and session, and on the chat page
    the strategy it will show. A link that carries them opens its page at its final address in one history
    entry; without them the page added its parameters afterwards, as a second entry, and Back stopped there.
    ``on_chat``: drawn on the chat page, whose strategy picker holds the newest choice."""
    ss = st.session_state
    user, session = ss.get("user_id"), ss.get("session_id")
    if not (is_valid_id(user) and is_valid_id(session)):
        return {}
    params = {"user": user, "session": session}
    strategy = (on_chat and ss.get("strategy")) or ss.get("_keep_strategy") or next(iter(STRATEGIES))
    if path == CHAT and strategy in STRATEGIES:
        params["strategy"] = str(strategy)
    return params


def page(path: str, uses_user: bool = True, names_strategy: bool = False) -> Current:
    """Set up the page at ``path`` (a key of ``LINKS``) and return the current lab, user and session; call it
    first on every page.

    A page that ``uses_user`` stops here while the user or session id is not
    valid (a refused link, a typo in the sidebar): it shows nothing of anyone's
    and cannot store a message under a user the person did not choose. Only a
    page that ``names_strategy`` keeps ``strategy=`` in its address.
    """
    this = LINKS[path]
    tab = this.label if path == HOME else this.title
    st.set_page_config(page_title=f"{tab} · Memory Lab", page_icon=ICON, layout="wide")
    links = st.sidebar.container()
    statuses = render_sidebar()
    ctx = current(statuses)
    if is_valid_id(ctx.user_id) and is_valid_id(ctx.session_id):
        load_session_settings(ctx.lab, ctx.user_id, ctx.session_id)
    if not names_strategy:
        forget_in_address("strategy")  # another page's parameter: this address names what this page shows
    with links:
        for group, entries in NAVIGATION.items():
            if group:
                st.caption(group)
            for link in entries:
                params = link_params(link.path, on_chat=names_strategy)
                st.page_link(link.path, label=link.label, icon=link.icon, query_params=params)
        st.divider()
    render_banner(statuses)
    st.title(this.title)
    for note in link_notes(this.title):
        _NOTE_SHOW[note.level](note.text)
    if uses_user and not (is_valid_id(ctx.user_id) and is_valid_id(ctx.session_id)):
        st.info(
            f"Type a user id in the sidebar to go on ({ID_RULE}). Until then this page shows no one's memory "
            "and stores nothing.",
            icon=":material/person_search:",
        )
        st.stop()
    return ctx
