"""The lab handle and the current user/session, shared by every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import streamlit as st

from memory import MemoryLab, Settings
from memory.backends.vector_store import VectorStoreError
from memory.keys import InvalidIdError
from memory.lab import BackendUnavailable

DEFAULT_USER = "demo"
BACKEND_ERRORS = (redis.RedisError, BackendUnavailable, VectorStoreError, OSError)


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
    """Show a clear error instead of a traceback when a backend or an input fails; the page goes on."""
    try:
        yield
    except InvalidIdError as exc:
        st.error(str(exc))
    except BACKEND_ERRORS as exc:
        st.error(f"{what} failed: {type(exc).__name__}: {exc}. Check the backend status in the sidebar.")
    except ValueError as exc:
        st.error(f"{what}: {exc}")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def md_escape(text: str) -> str:
    """User text shown through markdown is escaped, so it renders as typed, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)
