"""Redis Cluster (``REDIS_CLUSTER_URL``): the engine's client contract on redis-py's cluster client.

Memory Lab's keys are hash-tagged so that every command and script touches
one slot: a session's keys share ``{user:session}``, a user's keys
``{user}``, and the upkeep stream is one key. A turn's round trip holds a
script on the user's keys and one on the session's keys; the cluster
pipeline sends each to the primary that owns its slot, in parallel.

What this class adds to ``RedisCluster``, matching ``RedisClient``:

- errors become the engine's own, with a short circuit breaker;
- ``run`` executes a pipeline of scripts and commands, loading the scripts
  on every primary when one answers NOSCRIPT (a failed-over replica has an
  empty script cache) and sending the rest again;
- ``scan`` walks every primary in turn behind one integer cursor, so the
  key browser's pages work as on one server.

After a primary dies, the client follows the replica that takes its slots
over (MOVED, then a refreshed slot map); writes acknowledged by the old
primary but not yet replicated are lost, as Redis documents for its
asynchronous replication (``tests/test_redis_cluster.py`` measures it).
"""

from __future__ import annotations

from typing import Any, cast

from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from ..errors import BackendError, BackendUnavailable
from .compat import pipeline_commands
from .redis_client import Guarded, Lua, client_options


class ClusterClient(Guarded, RedisCluster):
    # -- scripts ---------------------------------------------------------
    def load_scripts(self) -> None:
        """Load every ``Lua`` script on every primary (SCRIPT LOAD goes to all of them)."""
        for body in Lua.registry.values():
            self.script_load(body)
        self._scripts_loaded = True

    def run(self, pipe: Any) -> list[Any]:
        """Execute a pipeline of scripts and commands (each to its slot's primary)."""
        stack = pipeline_commands(pipe)
        if not self._scripts_loaded:
            self.load_scripts()
        return self.finish_run(stack, pipe.execute(raise_on_error=False))

    # -- one cursor over every primary -----------------------------------
    def scan(  # type: ignore[override]
        self, cursor: int = 0, match: Any = None, count: int | None = None, _type: str | None = None, **kwargs: Any
    ) -> tuple[int, list[str]]:
        """SCAN the primaries one after another; the cursor holds the node's index and that node's cursor."""
        primaries = sorted(self.get_primaries(), key=lambda n: n.name)
        slots = len(primaries) + 1
        index, node_cursor = cursor % slots - 1 if cursor else 0, cursor // slots
        if index < 0 or index >= len(primaries):
            return 0, []
        args: list[Any] = ["SCAN", node_cursor]
        if match is not None:
            args += ["MATCH", match]
        if count is not None:
            args += ["COUNT", count]
        if _type is not None:
            args += ["TYPE", _type]
        reply = self.execute_command(*args, target_nodes=primaries[index])
        if isinstance(reply, dict):  # one node's reply, keyed by the node
            reply = reply[primaries[index].name]
        raw_cursor, keys = reply
        if isinstance(raw_cursor, dict):  # redis-py's cluster SCAN callback keys the cursor by node
            raw_cursor = next(iter(raw_cursor.values()))
        next_cursor = int(raw_cursor)
        if next_cursor:
            return next_cursor * slots + index + 1, list(keys)
        return (index + 2 if index + 1 < len(primaries) else 0), list(keys)

    def dbsize(self, **kwargs: Any) -> int:  # type: ignore[override]
        """Keys in the whole cluster: the sum over the primaries."""
        return sum(int(self.execute_command("DBSIZE", target_nodes=node)) for node in self.get_primaries())

    def scan_iter(self, match: Any = None, count: int | None = None, _type: str | None = None, **kwargs: Any) -> Any:
        cursor = None
        while cursor != 0:
            cursor, keys = self.scan(cursor or 0, match=match, count=count, _type=_type)
            yield from keys


def connect_cluster(url: str, timeout_s: float) -> ClusterClient:
    """A cluster client for any node's URL; the slot map is read on first use."""
    try:
        client = cast(
            ClusterClient,
            ClusterClient.from_url(
                url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3), **client_options(timeout_s)
            ),
        )
    except Exception as exc:  # RedisClusterException is not a RedisError
        if isinstance(exc, BackendError):
            raise
        raise BackendUnavailable(f"REDIS_CLUSTER_URL {url!r} is not a reachable Redis Cluster: {exc}") from exc
    client.where = url.split("://", 1)[-1].split("/", 1)[0] + " (cluster)"
    client.timeout_s = timeout_s
    return client
