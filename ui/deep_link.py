"""What a link's `?user=…&session=…&strategy=…` opens, and what it says about the parts it cannot.

A link is read once per browser session. Each part either takes effect or is
refused with a note the page shows; nothing is replaced silently. A refused
user refuses the whole link: the page then waits for a user typed in the
sidebar, because any stand-in (``demo``) would store the next message under a
user the person never chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from memory.keys import is_valid_id
from memory.strategies import STRATEGIES

from .state import code_span

ID_RULE = "1-64 letters, digits, '_', '.', '-', starting with a letter or digit"


@dataclass(frozen=True)
class LinkNote:
    level: Literal["error", "warning", "info"]
    text: str  # markdown, stored values already escaped


@dataclass
class LinkView:
    """What the link opens: ``None`` keeps the browser's current value (the part was absent or refused)."""

    user: str | None = None
    session: str | None = None
    strategy: str | None = None
    user_refused: bool = False
    notes: list[LinkNote] = field(default_factory=list)


def shown(value: str, limit: int = 80) -> str:
    """A refused value as inline code, with look-alikes and invisible characters spelled out (``\\u0430``)."""
    spelled = ascii(value)[1:-1]  # Cyrillic 'а', zero-width spaces and newlines become visible escapes
    return code_span(spelled if len(spelled) <= limit else spelled[:limit] + "…")


def _one(values: Sequence[str], what: str) -> tuple[str | None, str | None]:
    """The part's single value, or why there is none usable (empty, or several different ones)."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        return None, f"names {len(distinct)} different {what}s ({', '.join(shown(v, 30) for v in distinct[:3])})"
    if distinct[0] == "":
        return None, f"names an empty {what} (`{what}=` with no value)"
    return distinct[0], None


def _read_strategy(view: LinkView, strategies: Sequence[str]) -> None:
    """The link's strategy into ``view``, or a note why the session keeps its own."""
    strategy, problem = _one(strategies, "strategy")
    if problem is None and strategy not in STRATEGIES:
        problem = f"names the strategy {shown(str(strategy))}, which is not one of {', '.join(STRATEGIES)}"
    if problem is None:
        view.strategy = strategy
    else:
        view.notes.append(LinkNote("warning", f"This link {problem}; the session keeps its own strategy."))


def read_link(
    params: Mapping[str, Sequence[str]], current_user: str, sessions_of: Callable[[str], list[str] | None]
) -> LinkView:
    """Decide what a link opens. ``params`` maps a part to every value the URL gives it; ``current_user`` is
    the user a link without ``user=`` opens a session of; ``sessions_of(user)`` lists a user's sessions, newest
    first (``None`` when they cannot be read: the backend is down)."""
    view = LinkView()
    users, sessions, strategies = (list(params.get(name) or []) for name in ("user", "session", "strategy"))
    if users:
        user, problem = _one(users, "user")
        if problem is None and not is_valid_id(user):
            problem = f"names the user {shown(str(user))}, which is not a valid user id ({ID_RULE})"
        if problem is not None:
            view.user_refused = True
            view.notes.append(LinkNote("error", f"This link {problem}, so it was not opened."))
            return view
        view.user = user
    if strategies:
        _read_strategy(view, strategies)
    if not sessions and view.user is None:
        return view
    owner = view.user or current_user
    known = sessions_of(owner) if is_valid_id(owner) else None
    newest = known[0] if known else "s1"  # a user without a session gets a first one
    if not sessions:
        view.session = newest
        return view
    session, problem = _one(sessions, "session")
    if problem is None and not is_valid_id(session):
        problem = f"names the session {shown(str(session))}, which is not a valid session id ({ID_RULE})"
    if problem is None:
        view.session = session
        if known is not None and session not in known:
            view.notes.append(
                LinkNote(
                    "info",
                    f"When this link was opened, user {code_span(owner)} had no session {code_span(str(session))} "
                    "(never used, expired or cleared; session ids are per user), so it started empty.",
                )
            )
    elif view.user is None:
        view.notes.append(LinkNote("warning", f"This link {problem}; the current session stays open."))
    else:
        view.session = newest
        view.notes.append(LinkNote("warning", f"This link {problem}; session {code_span(newest)} is open instead."))
    return view
