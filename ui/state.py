"""The lab handle and the current user/session, shared by every page."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import streamlit as st

from memory import MemoryLab, Settings
from memory.errors import BackendError, InputError, MemoryLabError, StoredDataError
from memory.health import BackendStatus
from memory.logs import configure_logging
from memory.presentation.format import human_duration
from memory.records.stored import clean_text
from memory.strategies import StrategyConfig
from memory.transfer.markdown import md_escape, split_fenced

log = logging.getLogger(__name__)

DEFAULT_USER = "demo"
BACKEND_ERRORS = (MemoryLabError,)


@st.cache_resource(show_spinner="Opening the memory backends…")
def _lab_for(_settings: Settings, key: str) -> MemoryLab:
    return MemoryLab(_settings)


def get_lab() -> MemoryLab:
    """One lab per distinct configuration, shared by every rerun, page and browser tab."""
    configure_logging()  # every page gets the lab: the engine's warnings reach the app's log
    settings = Settings.from_env()
    return _lab_for(settings, settings.cache_key())


@st.cache_resource(show_spinner=False)
def start_model_warmup(_lab: MemoryLab, key: str) -> threading.Event:
    """Load the embedding model in the background when the app starts, so the first turn does not wait for it."""
    done = threading.Event()

    def load() -> None:
        try:
            _lab.embed(["warm up"])
        except MemoryLabError:
            log.warning("the embedding model could not be loaded in the background", exc_info=True)
        finally:
            done.set()

    threading.Thread(target=load, name="memlab-model-warmup", daemon=True).start()
    return done


def progress_bar(text: str) -> tuple[Any, Callable[[int, int, str], None]]:
    """A progress bar and the ``progress(done, total, label)`` callback the engine's long runs report to."""
    bar = st.progress(0.0, text=text)

    def progress(done: int, total: int, label: str) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=label)

    return bar, progress


def warm_model(lab: MemoryLab, key: str) -> None:
    """Before work that embeds: wait for the background load (started by the sidebar), with a visible note."""
    done = start_model_warmup(lab, key)
    if not done.is_set():
        with st.spinner("Loading the embedding model (first time only)…"):
            done.wait()


# Widgets whose values belong to a session: restored from its stored settings, kept across page switches.
# field -> (widget key, label, min, max)
CONFIG_WIDGETS: dict[str, tuple[str, str, int, int]] = {
    "buffer_size": ("cfg_n", "Buffer size N (messages)", 1, 500),
    "ttl_s": ("cfg_ttl", "Expires when idle for", 0, 365 * 24 * 3600),
    "summary_threshold": ("cfg_thr", "Fold when buffer passes", 2, 500),
    "summary_keep": ("cfg_keep", "Keep after fold", 0, 499),
    "top_k": ("cfg_k", "Top-k facts and turns", 1, 50),
    "episodes_k": ("cfg_ek", "Top-k episodes", 1, 20),
    "token_budget": ("cfg_budget", "Token budget (hybrid)", 100, 200_000),
}
_SETTING_KEYS = ["strategy", *(key for key, *_ in CONFIG_WIDGETS.values())]


def restore_session_settings(lab: MemoryLab, user: str, session: str, default_strategy: str) -> None:
    """Before the chat page's widgets exist: the session's stored strategy and settings, else this browser's
    last choice, else those of the user's most recent session, else the defaults.

    Streamlit forgets a widget's value when a page without it runs, so each
    value is also kept under a shadow key (``keep_session_settings``).
    """
    ss = st.session_state
    load_session_settings(lab, user, session)
    ss.setdefault("strategy", ss.get("_keep_strategy", default_strategy))


def setting_shown(lab: MemoryLab, field_name: str) -> str:
    """Before a setting's widget is drawn: its value in place (kept, else the default); returns the widget key."""
    key, _, low, high = CONFIG_WIDGETS[field_name]
    default = min(max(int(getattr(lab.default_config(), field_name)), low), high)
    st.session_state.setdefault(key, st.session_state.get(f"_keep_{key}", default))
    return key


def session_config(lab: MemoryLab, shown: Sequence[str]) -> StrategyConfig:
    """After the widgets: the settings in use, from the widgets ``shown`` and the kept values of the others.

    A setting the strategy does not use has no widget; its key is dropped,
    since a value set for a widget that is not drawn outlives the widget's own
    value when the page is left (and came back as the old number).
    """
    ss = st.session_state
    base = lab.default_config()
    values = {}
    for field_name, (key, _, low, high) in CONFIG_WIDGETS.items():
        if field_name in shown:
            ss[f"_keep_{key}"] = ss[key]
        else:
            ss.pop(key, None)
        values[field_name] = int(ss.get(f"_keep_{key}", min(max(int(getattr(base, field_name)), low), high)))
    ss["_keep_strategy"] = ss.get("strategy", ss.get("_keep_strategy"))
    return base.with_(**values)


def load_session_settings(lab: MemoryLab, user: str, session: str) -> None:
    """On any page: the strategy and settings the chat page will show for this session, in the shadow keys
    (``_keep_…``), read from storage when the session changes; a link's strategy wins."""
    ss = st.session_state
    if ss.get("_settings_for") != (user, session):
        ss["_settings_for"] = (user, session)
        try:
            stored = lab.session_settings(user, session)
            if stored is None and "_keep_strategy" not in ss:
                stored = lab.latest_settings(user)  # a new session continues with the user's latest strategy
        except MemoryLabError as exc:
            log.info("could not read the settings of %s/%s: %s", user, session, exc)
            stored = None
        if stored is not None:
            name, config = stored
            ss["_keep_strategy"] = name
            for field_name, (key, _, low, high) in CONFIG_WIDGETS.items():
                ss[f"_keep_{key}"] = min(max(int(getattr(config, field_name)), low), high)
            for key in _SETTING_KEYS:
                ss.pop(key, None)
    link = ss.pop("_link_strategy", None)  # (user, session, strategy), set by the sidebar from a deep link
    if isinstance(link, tuple) and link[:2] == (user, session):  # only for the session the link named
        ss["_keep_strategy"] = link[2]
        ss.pop("strategy", None)


@dataclass(frozen=True)
class Current:
    lab: MemoryLab
    user_id: str
    session_id: str
    statuses: tuple[BackendStatus, ...] = ()  # the sidebar's health check of this run


def current(statuses: Sequence[BackendStatus] = ()) -> Current:
    lab = get_lab()
    user, session = st.session_state.get("user_id", DEFAULT_USER), st.session_state.get("session_id", "s1")
    return Current(lab, user, session, tuple(statuses))


ADDRESS = "_address"  # the view parameters of the address as this page last read or wrote them
LINK_PARTS = ("user", "session", "strategy")


def address() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in LINK_PARTS}


def show_in_address(**params: str) -> None:
    """Put the view's parameters in the page's address, writing only those that differ.

    Every write sends the browser a new address, and one sent while a page
    link is being followed was pushed as a history entry of its own (under
    the page being left): a page change then took two presses of Back.
    """
    changed = {k: v for k, v in params.items() if st.query_params.get_all(k) != [v]}
    if changed:
        st.query_params.update(changed)
    st.session_state[ADDRESS] = address()


def forget_in_address(name: str) -> None:
    """Take a parameter out of the address (one this page does not show)."""
    if name in st.query_params:
        del st.query_params[name]
    st.session_state[ADDRESS] = address()


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Show a clear error instead of a traceback when a backend, an input or stored data fails; the page goes on."""
    try:
        yield
    except InputError as exc:
        st.error(f"{md_text(what)}: {md_text(str(exc))}", icon=":material/edit_off:")
    except BackendError as exc:
        st.error(
            f"{md_text(what)} failed: {md_text(str(exc))}. Check the backend status in the sidebar.",
            icon=":material/cloud_off:",
        )
    except StoredDataError as exc:
        st.error(f"{md_text(what)}: stored data is damaged: {md_text(str(exc))}", icon=":material/broken_image:")
    except MemoryLabError as exc:
        st.error(f"{md_text(what)} failed: {md_text(str(exc))}")
    except Exception as exc:  # a page must never crash; the log keeps the traceback
        log.exception("unexpected error while %s", what)
        st.error(f"{md_text(what)} failed unexpectedly: {md_text(type(exc).__name__)}: {md_text(str(exc))}")


def settle_upkeep(lab: MemoryLab, user_id: str, wait_s: float = 2.0) -> None:
    """Let the user's running upkeep jobs finish before a memory page reads (briefly); say so if they are not done."""
    with guarded("Checking memory upkeep"):
        still = lab.wait_for_upkeep(user_id, timeout_s=wait_s)
        if still:
            st.info(
                f"Memory updating… {len(still)} upkeep job(s) of this user are still running; reload to see them.",
                icon=":material/sync:",
            )


# A bare URL, minus punctuation that more likely ends the sentence than the link.
_URL = re.compile(r"https?://[^\s<>\"'`]+?(?=[.,;:!?)\]]*(?:\s|$))", re.IGNORECASE)


def code_span(text: str) -> str:
    """Text shown verbatim as inline code (markdown escapes do not apply inside it; a backtick would end it)."""
    return "`" + clean_text(str(text)).replace("`", "'") + "`"


_TTLS = [0, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400, 365 * 86400]


def ttl_choices(current: int) -> list[int]:
    """The session TTLs offered, in seconds, with the one in use even when it is not a round one."""
    return sorted({*_TTLS, int(current)})


def ttl_words(seconds: int) -> str:
    return "never (kept until cleared)" if not seconds else human_duration(seconds, words=True)


def show_text(text: str) -> None:
    """A message as the chat shows it, whoever wrote it: fenced code blocks as code (verbatim, indentation kept),
    the rest as escaped Markdown. Nothing stored becomes live HTML or a fetched image either way."""
    for block in split_fenced(text):
        if block.kind == "code":
            st.code(block.text, language=block.language, wrap_lines=True)
        else:
            st.markdown(md_text(block.text))


def md_text(text: str) -> str:
    """Like ``md_escape``, but bare URLs stay readable links (an autolink is never an image, never fetched)."""
    text = clean_text(str(text))
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        out.append(md_escape(text[pos : m.start()]))
        out.append(f"<{m.group(0)}>")
        pos = m.end()
    out.append(md_escape(text[pos:]))
    return "".join(out).replace("\n", "  \n")
