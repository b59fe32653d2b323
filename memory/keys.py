"""Every Redis key name Memory Lab uses, built in one place.

All keys of one session share the hash tag ``{user:session}`` so the
multi-key Lua scripts (folding) and MULTI blocks also work on Redis Cluster.
Per-user keys use the tag ``{user}``. Ids are validated here, at the edge,
so a bad id is a clear ``InvalidIdError`` rather than a malformed key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TypeGuard

from .errors import InvalidIdError

# Matched with fullmatch: with re.match, "$" also matches before a trailing
# newline, so "alice\n" used to pass and make keys forget could not find.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")

__all__ = [
    "ID_PATTERN",
    "KEY_KINDS",
    "InvalidIdError",
    "KeyKind",
    "Keys",
    "SessionKeys",
    "UserKeys",
    "is_valid_id",
    "validate_id",
]


def is_valid_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def validate_id(kind: str, value: object) -> str:
    if not is_valid_id(value):
        raise InvalidIdError(
            f"{kind} id {value!r} is not valid: use 1-64 characters from letters, digits, "
            "'_', '.', '-', starting with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class SessionKeys:
    user_id: str
    session_id: str
    prefix: str

    @functools.cached_property
    def tag(self) -> str:
        return f"{{{self.user_id}:{self.session_id}}}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}:s:{self.tag}:{name}"

    @functools.cached_property
    def log(self) -> str:
        """Full transcript of the session, never trimmed (history, episodes)."""
        return self._key("log")

    @functools.cached_property
    def buffer(self) -> str:
        """Working window the strategies read: trimmed to N or folded into the summary."""
        return self._key("buffer")

    @functools.cached_property
    def summary(self) -> str:
        return self._key("summary")

    @functools.cached_property
    def folds(self) -> str:
        return self._key("folds")

    @functools.cached_property
    def traces(self) -> str:
        """Hash: assistant message id -> JSON trace of what the model saw."""
        return self._key("traces")

    @functools.cached_property
    def ids(self) -> str:
        """Set of the message ids appended so far: a retried append of the same message is a no-op."""
        return self._key("ids")

    @functools.cached_property
    def meta(self) -> str:
        """JSON: the strategy and settings this session was last used with, so every page can restore them."""
        return self._key("meta")

    @functools.cached_property
    def jobs(self) -> str:
        """Hash: assistant message id -> JSON outcome of that turn's upkeep job (done by a worker, later)."""
        return self._key("jobs")

    def all(self) -> list[str]:
        return list(self.types())

    def types(self) -> dict[str, str]:
        """Each session key and the Redis type Memory Lab keeps in it, in one place with the names."""
        return {
            self.log: "list",
            self.buffer: "list",
            self.ids: "set",
            self.summary: "string",
            self.folds: "list",
            self.traces: "hash",
            self.meta: "string",
            self.jobs: "hash",
        }


@dataclass(frozen=True)
class UserKeys:
    user_id: str
    prefix: str

    @property
    def sessions(self) -> str:
        """Sorted set: session id -> last activity (unix seconds)."""
        return f"{self.prefix}:u:{{{self.user_id}}}:sessions"

    @property
    def expiries(self) -> str:
        """Sorted set: session id -> when its keys expire (inf = never); expired sessions are pruned by it."""
        return f"{self.prefix}:u:{{{self.user_id}}}:expiries"

    @property
    def fact_log(self) -> str:
        """List of JSON events: every add/update/duplicate of a long-term fact."""
        return f"{self.prefix}:u:{{{self.user_id}}}:factlog"

    @property
    def pending(self) -> str:
        """Sorted set: upkeep job id -> when it was queued; a job leaves it when a worker has done it."""
        return f"{self.prefix}:u:{{{self.user_id}}}:pending"

    @property
    def forgotten(self) -> str:
        """String: the upkeep stream id at which the user was last forgotten; a job queued before it is dropped.

        Not in ``all()``: it outlives the forget it marks (it holds no content, only a stream id)."""
        return f"{self.prefix}:u:{{{self.user_id}}}:forgotten"

    @property
    def cleared(self) -> str:
        """Hash: session id -> the upkeep stream id at which that session was last cleared (no content).

        A job that was running when its session was cleared erases the session
        again when it ends (what it wrote may have landed after the clear)."""
        return f"{self.prefix}:u:{{{self.user_id}}}:cleared"

    @property
    def upkeep_lock(self) -> str:
        """String with a TTL: held by the worker applying one of this user's jobs, so jobs apply one at a time."""
        return f"{self.prefix}:u:{{{self.user_id}}}:upkeeplock"

    @property
    def turns_version(self) -> str:
        """String: a token that changes whenever the user's indexed turns change (their in-process copies check it)."""
        return f"{self.prefix}:u:{{{self.user_id}}}:turnsver"

    @property
    def pins(self) -> str:
        """Set: ids of the user's pinned facts, which no retention policy removes."""
        return f"{self.prefix}:u:{{{self.user_id}}}:pins"

    @property
    def retention(self) -> str:
        """String: JSON of the user's retention policy and when it was last applied."""
        return f"{self.prefix}:u:{{{self.user_id}}}:retention"

    @property
    def retention_runs(self) -> str:
        """Hash: retention run id -> JSON of the facts it removed, kept to undo it until its grace period ends."""
        return f"{self.prefix}:u:{{{self.user_id}}}:retentionruns"

    def all(self) -> list[str]:
        return [
            self.sessions,
            self.expiries,
            self.fact_log,
            self.pending,
            self.cleared,
            self.upkeep_lock,
            self.turns_version,
            self.pins,
            self.retention,
            self.retention_runs,
        ]


# The last part of each key name, per kind of key: what ``Keys.parse`` (and so the key browser's bulk actions)
# accepts as ours. Kept beside the properties that build them; tests check the two agree.
SESSION_KINDS = frozenset({"log", "buffer", "summary", "folds", "traces", "ids", "meta", "jobs"})
USER_KINDS = frozenset(
    {"sessions", "expiries", "factlog", "pending", "cleared", "upkeeplock", "turnsver", "forgotten", "pins"}
    | {"retention", "retentionruns"}
)
_SESSION_KEY = re.compile(r"s:\{([^:{}]+):([^:{}]+)\}:(\w+)")
_USER_KEY = re.compile(r"u:\{([^:{}]+)\}:(\w+)")


@dataclass(frozen=True)
class Keys:
    prefix: str = "memlab"

    def session(self, user_id: str, session_id: str) -> SessionKeys:
        if isinstance(user_id, str) and isinstance(session_id, str):
            return _session_keys(self.prefix, user_id, session_id)
        return SessionKeys(validate_id("user", user_id), validate_id("session", session_id), self.prefix)

    def user(self, user_id: str) -> UserKeys:
        return UserKeys(validate_id("user", user_id), self.prefix)

    def user_session_pattern(self, user_id: str) -> str:
        """SCAN pattern for all session keys of one user (ids hold no glob characters)."""
        return f"{self.prefix}:s:{{{validate_id('user', user_id)}:*"

    def user_keys_pattern(self, user_id: str | None) -> str:
        """SCAN pattern for every key of one user: its session keys (hash tag ``{user:session}``) and its user
        keys (``{user}``), no other user's (``{al`` is not ``{alice``); every Memory Lab key without a valid id."""
        if not is_valid_id(user_id):
            return self.all_pattern
        return f"{self.prefix}:*{{{user_id}[:}}]*"

    @property
    def jobs(self) -> str:
        """Stream of upkeep jobs, read by the workers' consumer group (one stream for every user)."""
        return f"{self.prefix}:jobs"

    @property
    def dead_letters(self) -> str:
        """List of JSON records, newest first and bounded: upkeep jobs refused by the workers, with the reason."""
        return f"{self.prefix}:jobs:dead"

    @property
    def all_pattern(self) -> str:
        return f"{self.prefix}:*"

    def parse(self, key: str) -> dict[str, str] | None:
        """Split a key this module builds into its parts; None for any other name, even under our prefix.

        The one answer to "is this key ours": the key browser labels rows with
        it, and its delete and TTL actions change no key it refuses
        (``memlab:other-app:cache:1`` is not ours, nor is ``memlab:u:{bad id}:x``).
        """
        if not isinstance(key, str) or not key.startswith(self.prefix + ":"):
            return None
        rest = key[len(self.prefix) + 1 :]
        if rest in ("jobs", "jobs:dead"):  # the streams: not a session's "jobs" hash
            return {"kind": "jobstream" if rest == "jobs" else "deadletters"}
        m = _SESSION_KEY.fullmatch(rest)
        if m is not None:
            user, session, kind = m.groups()
            if kind in SESSION_KINDS and is_valid_id(user) and is_valid_id(session):
                return {"user_id": user, "session_id": session, "kind": kind}
            return None
        m = _USER_KEY.fullmatch(rest)
        if m is not None and m.group(2) in USER_KINDS and is_valid_id(m.group(1)):
            return {"user_id": m.group(1), "kind": m.group(2)}
        return None

    def owns(self, key: str) -> bool:
        """Whether Memory Lab builds this key name (see ``parse``)."""
        return self.parse(key) is not None


@dataclass(frozen=True)
class KeyKind:
    holds: str  # what a key of this kind holds, in a few words
    expires: bool  # False: kept until deleted, by design (the key browser then does not flag its missing TTL)


# Every kind of key above, as the key browser explains it. Session keys and the user's session index slide
# with the session's TTL (MEMLAB_SESSION_TTL, 0 = keep forever); the rest is long-term memory or bookkeeping.
KEY_KINDS: dict[str, KeyKind] = {
    "log": KeyKind("the session's whole transcript", True),
    "buffer": KeyKind("the messages the strategy reads: the last N, or what is left after folding", True),
    "ids": KeyKind("ids of the messages stored, so a retried message is stored once", True),
    "summary": KeyKind("the session's rolling summary", True),
    "folds": KeyKind("one record per fold: when, which messages, tokens before and after", True),
    "traces": KeyKind("what the model saw on each turn", True),
    "meta": KeyKind("the strategy and settings the session was last used with", True),
    "jobs": KeyKind("each turn's upkeep outcome: which worker, what changed", True),
    "sessions": KeyKind("the user's sessions by last activity", True),
    "expiries": KeyKind("when each of the user's sessions expires", True),
    "upkeeplock": KeyKind("held while a worker applies one of the user's jobs", True),
    "factlog": KeyKind("every change to the user's long-term facts, for undo and history; long-term", False),
    "turnsver": KeyKind(
        "a version token of the user's indexed turns, which live in the vector store; long-term", False
    ),
    "pending": KeyKind("the user's upkeep jobs not yet done; empties itself", False),
    "pins": KeyKind("the user's pinned facts, which no retention policy removes; long-term", False),
    "retention": KeyKind("the user's retention policy and when it was last applied; long-term", False),
    "retentionruns": KeyKind("the facts each recent retention run removed, kept to undo it; long-term", False),
    "forgotten": KeyKind("where in the upkeep stream the user was last forgotten; older jobs are dropped", False),
    "cleared": KeyKind(
        "where in the upkeep stream each of the user's sessions was cleared; older jobs are dropped", True
    ),
    "jobstream": KeyKind("the upkeep jobs of every user, read by the workers (a Redis Stream)", False),
    "deadletters": KeyKind("upkeep jobs the workers refused, each with its reason (a capped Redis Stream)", False),
}


@functools.lru_cache(maxsize=4096)
def _session_keys(prefix: str, user_id: str, session_id: str) -> SessionKeys:
    """Every turn names its session's keys several times; valid ids are checked once (a bad one raises, uncached)."""
    return SessionKeys(validate_id("user", user_id), validate_id("session", session_id), prefix)
