"""The lab handle and the current user/session, shared by every page."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from memory import MemoryLab, Settings
from memory.errors import BackendError, InputError, MemoryLabError, StoredDataError
from memory.stored import clean_text

log = logging.getLogger(__name__)

DEFAULT_USER = "demo"
BACKEND_ERRORS = (MemoryLabError,)


@st.cache_resource(show_spinner="Opening the memory backends…")
def _lab_for(_settings: Settings, key: str) -> MemoryLab:
    return MemoryLab(_settings)


def get_lab() -> MemoryLab:
    """One lab per distinct configuration, shared by every rerun, page and browser tab."""
    settings = Settings.from_env()
    return _lab_for(settings, repr(settings))


@st.cache_resource(show_spinner="Loading the embedding model (first time only)…")
def warm_model(_lab: MemoryLab, key: str) -> bool:
    _lab.embed(["warm up"])
    return True


@dataclass(frozen=True)
class Current:
    lab: MemoryLab
    user_id: str
    session_id: str


def current() -> Current:
    lab = get_lab()
    return Current(lab, st.session_state.get("user_id", DEFAULT_USER), st.session_state.get("session_id", "s1"))


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
    except Exception as exc:  # noqa: BLE001 - a page must never crash; the log keeps the traceback
        log.exception("unexpected error while %s", what)
        st.error(f"{md_text(what)} failed unexpectedly: {md_text(type(exc).__name__)}: {md_text(str(exc))}")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")
# A bare URL, minus punctuation that more likely ends the sentence than the link.
_URL = re.compile(r"https?://[^\s<>\"'`]+?(?=[.,;:!?)\]]*(?:\s|$))", re.IGNORECASE)


def md_escape(text: str) -> str:
    """Stored or typed text escaped for markdown: it renders as written, never as markup or an image."""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(text))


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
