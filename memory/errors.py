"""One exception hierarchy for the engine.

Every error the engine raises on purpose is a ``MemoryLabError``: the CLI
turns it into one line and an exit code, the pages into a banner. Backend
libraries' own errors (redis-py, chromadb, httpx) are wrapped where the
engine calls them, so a caller never needs to know which library failed,
and the message says what the real cause is and what to check.

Exit codes (documented in the README, "When things go wrong"):

====  =====================================================================
0     done
1     the command ran but reports a problem (``doctor`` found a backend
      down; ``chat`` stored the message but the LLM call failed)
2     bad input: an id, a message, an argument or a setting
3     a backend is unreachable, hung, or could not be started
4     stored data could not be read (corrupt beyond skipping)
5     refused for safety (e.g. ``redis stop`` could not prove the process
      is our redis-server)
70    an internal error (a bug); ``MEMLAB_DEBUG=1`` prints the traceback
====  =====================================================================
"""

from __future__ import annotations


class MemoryLabError(Exception):
    """Base of every error the engine raises deliberately."""

    exit_code = 70
    title = "Memory Lab error"


class InputError(MemoryLabError, ValueError):
    """The caller gave something the engine will not accept (ids, text, settings)."""

    exit_code = 2
    title = "Invalid input"


class InvalidIdError(InputError):
    """A user or session id that Memory Lab will not put in a key."""


class StaleEditError(InputError):
    """An edit made on a text the fact no longer holds (another tab, a chat turn, the CLI changed it since):
    saving it would overwrite a change the editor never saw. ``current`` is what the fact holds now."""

    def __init__(self, message: str, current: str) -> None:
        super().__init__(message)
        self.current = current


class BackendError(MemoryLabError):
    """A backend (Redis, Chroma, the embedding model, the LLM) failed."""

    exit_code = 3
    title = "Backend error"


class BackendUnavailable(BackendError):
    """A backend could not be reached or started; the message says what to check."""

    title = "Backend unavailable"


class BackendTimeout(BackendUnavailable):
    """A backend accepted the connection but did not answer in time (hung or overloaded)."""

    title = "Backend not answering"


class RedisStartError(BackendUnavailable):
    """The embedded redis-server could not be started."""


class VectorStoreError(BackendError):
    """Chroma is unreachable, hung, or refused an operation."""

    title = "Vector store error"

    def __init__(self, message: str, hung: bool = False) -> None:
        super().__init__(message)
        self.hung = hung


class EmbedderError(BackendError):
    """The packaged embedding model could not be loaded."""

    title = "Embedding model error"


class LLMError(BackendError):
    """The LLM provider failed; the message is fit to show a user as it is."""

    title = "LLM error"


class StoredDataError(MemoryLabError):
    """Something stored (a key, an entry, a file) is not what the engine wrote."""

    exit_code = 4
    title = "Stored data is corrupt"


class RefusedError(MemoryLabError):
    """The engine refused an action it could not prove safe."""

    exit_code = 5
    title = "Refused"
