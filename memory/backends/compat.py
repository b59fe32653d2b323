"""Every use of a private or undocumented part of redis-py and chromadb, in one place with its tests.

Why: these parts may change in any release. Keeping them here, each behind
a small function or class with a test of its own (tests/test_compat.py),
means an upgrade that breaks one fails that test, not a turn; the versions
they were written against are the lower bounds in requirements.txt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis


def pipeline_commands(pipe: Any) -> list[tuple[Any, ...]]:
    """The commands queued on a pipeline, as argument tuples (redis-py 5+; a cluster pipeline: redis-py 6+).

    A plain pipeline keeps ``command_stack`` (undocumented); a cluster
    pipeline keeps its queue on its private execution strategy.
    """
    strategy = getattr(pipe, "_execution_strategy", None)
    if strategy is not None:
        return [tuple(command.args) for command in strategy.command_queue]
    return [tuple(args) for args, _options in pipe.command_stack]


def forget_chroma_system(location: str) -> None:
    """Drop chromadb's cached system for ``location`` (chromadb 1.x): it keeps one even when it failed to start."""
    from chromadb.api.shared_system_client import SharedSystemClient

    for identifier in [i for i in SharedSystemClient._identifier_to_system if location in i]:
        SharedSystemClient._identifier_to_system.pop(identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)


class RelocatingConnection(redis.Connection):
    """A connection that asks where the server is now each time it opens a socket (the embedded server's).

    The embedded redis-server listens on a port picked when it starts: once
    killed and started again, by this process or any other, it is elsewhere.
    Asking on every new socket (a file read, no network: ``EmbeddedRedis.current``)
    lets a long-lived process follow it by itself on its next command, with
    redis-py's one retry of a dropped connection. A hung server is still
    found where it was, and reported by the command's timeout, never replaced.
    """

    def __init__(self, *args: Any, locate: Callable[[], tuple[str, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locate = locate

    def _connect(self) -> Any:
        if self.locate is not None:
            self.host, self.port = self.locate()
        return super()._connect()
