"""The embedded redis-server: started once, shared, persistent, restartable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from memory.backends.redis_server import EmbeddedRedis, pid_alive
from memory.config import Settings
from memory.errors import BackendTimeout
from memory.health import redis_status
from memory.lab import MemoryLab

from .conftest import assert_one_line_error, kill_pid, run_cli


def test_start_reuse_stop_and_restart_keep_the_data(tmp_path):
    first = EmbeddedRedis(tmp_path)
    state = first.ensure_running()
    try:
        assert EmbeddedRedis(tmp_path).ensure_running() == state  # a second process reuses it
        client = redis.Redis.from_url(state.url, decode_responses=True)
        client.rpush("k", "survives")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("bind")["bind"].startswith("127.0.0.1")
        assert first.stop() is True
        assert not pid_alive(state.pid)
        assert first.read_state() is None

        again = first.ensure_running()
        assert again.pid != state.pid
        assert redis.Redis.from_url(again.url, decode_responses=True).lrange("k", 0, -1) == ["survives"]
    finally:
        first.stop()
        kill_pid(state.pid)


def test_a_stale_state_file_is_replaced(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "server.json").write_text(json.dumps({"pid": dead.pid, "port": 1}))
    server = EmbeddedRedis(tmp_path)
    state = server.ensure_running()
    try:
        assert state.pid != dead.pid
        assert redis.Redis.from_url(state.url).ping()
    finally:
        server.stop()
        kill_pid(state.pid)


def test_a_garbled_state_file_is_replaced(tmp_path):
    (tmp_path / "server.json").write_text("{not json")
    server = EmbeddedRedis(tmp_path)
    state = server.ensure_running()
    try:
        assert redis.Redis.from_url(state.url).ping()
    finally:
        server.stop()
        kill_pid(state.pid)


def test_stop_when_nothing_runs_says_so(tmp_path):
    assert EmbeddedRedis(tmp_path).stop() is False


def _our_servers(data_dir: Path) -> list[int]:
    """pids of redis-server processes whose working directory is ``data_dir``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
            cwd = Path(os.readlink(f"/proc/{entry}/cwd")).resolve()
        except OSError:
            continue
        if name == "redis-server" and cwd == data_dir.resolve() and pid_alive(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture()
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh MEMLAB_DATA_DIR whose embedded server (if any) is stopped, by pid, whatever happens."""
    yield tmp_path
    for pid in _our_servers(tmp_path / "redis"):
        os.kill(pid, signal.SIGCONT)
        kill_pid(pid)


def test_a_hung_server_is_reported_within_seconds_and_blocks_no_other_process(data_dir):
    env = {"MEMLAB_DATA_DIR": str(data_dir)}
    state = EmbeddedRedis(data_dir / "redis").ensure_running()
    os.kill(state.pid, signal.SIGSTOP)
    lab = None
    try:
        # In process: the first command fails with a clear error well within 5 seconds.
        lab = MemoryLab(Settings.from_env(env))
        started = time.monotonic()
        with pytest.raises(BackendTimeout, match="hung"):
            lab.sessions.log("alice", "s1")
        assert time.monotonic() - started < 5

        # Three CLI processes at once: none queues behind another, each says what is wrong. Beside them
        # run the same commands against a refused port: they start the same interpreter and imports and
        # fail at once, so the difference is the wait for the hung server whatever the machine's load.
        commands = [
            ("history", "--user", "alice", "--session", "s1"),
            ("chat", "--user", "alice", "--session", "s1", "hello"),
            ("doctor", "--quick"),
        ]
        refused_env = {**env, "REDIS_URL": "redis://127.0.0.1:1"}
        with ThreadPoolExecutor(6) as pool:
            hung_runs = [pool.submit(run_cli, *args, env=env, timeout=60) for args in commands]
            baseline_runs = [pool.submit(run_cli, *args, env=refused_env, timeout=60) for args in commands]
            runs = [f.result() for f in hung_runs]
            baselines = [f.result() for f in baseline_runs]
        history, chat, doctor = runs
        assert_one_line_error(history, 3, "did not answer", "hung")
        assert_one_line_error(chat, 3, "did not answer", "hung")
        assert doctor.code == 1 and "DOWN" in doctor.out and "hung" in doctor.out and "Traceback" not in doctor.err
        # The wait for Redis is bounded by the 2 s probe: queueing behind one another would add 2 s per run.
        waits = [run.seconds - base.seconds for run, base in zip(runs, baselines, strict=True)]
        assert max(waits) < 5, (waits, [r.seconds for r in runs], [b.seconds for b in baselines])
        assert _our_servers(data_dir / "redis") == [state.pid], "a hung server must not be replaced by a second"
    finally:
        os.kill(state.pid, signal.SIGCONT)
        if lab is not None:
            lab.close()  # its upkeep thread must not start a server after the fixture stops this one
    # `redis stop` also works on a server that was stopped (it is continued, then shut down).
    os.kill(state.pid, signal.SIGSTOP)
    stop = run_cli("redis", "stop", env=env, timeout=60)
    assert stop.code == 0, stop.err
    assert not pid_alive(state.pid)


def test_stop_never_signals_a_process_it_cannot_prove_is_our_server(data_dir):
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        (data_dir / "redis").mkdir()
        (data_dir / "redis" / "server.json").write_text(json.dumps({"pid": bystander.pid, "port": 1}))
        run = run_cli("redis", "stop", env={"MEMLAB_DATA_DIR": str(data_dir)})
        assert_one_line_error(run, 5, f"pid {bystander.pid}", "not signalled")
        assert bystander.poll() is None, "the unrelated process was signalled"

        # Starting also leaves it alone: a fresh server replaces the state file.
        (data_dir / "redis" / "server.json").write_text(json.dumps({"pid": bystander.pid, "port": 1}))
        state = EmbeddedRedis(data_dir / "redis").ensure_running()
        assert state.pid != bystander.pid and bystander.poll() is None
        assert EmbeddedRedis(data_dir / "redis").stop() is True
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_refuses_when_the_port_answers_as_another_server(data_dir, redis_server):
    """A state file naming our pid but another server's port: SHUTDOWN goes to no one but our pid."""
    ours = EmbeddedRedis(data_dir / "redis").ensure_running()
    (data_dir / "redis" / "server.json").write_text(json.dumps({"pid": ours.pid, "port": redis_server.port}))
    assert EmbeddedRedis(data_dir / "redis").stop() is True
    assert not pid_alive(ours.pid)
    assert redis.Redis(port=redis_server.port).ping(), "the other server was shut down"


@pytest.mark.parametrize("damage", ["garbage", "deleted", "deleted with pidfile"])
def test_one_server_per_data_dir_whatever_happened_to_the_state_file(data_dir, damage):
    first = EmbeddedRedis(data_dir / "redis").ensure_running()
    state_file = data_dir / "redis" / "server.json"
    if damage == "garbage":
        state_file.write_text("{garbage")
    else:
        state_file.unlink()
        if damage == "deleted with pidfile":
            (data_dir / "redis" / "redis.pid").unlink()
    run = run_cli("history", "--user", "alice", "--session", "s1", env={"MEMLAB_DATA_DIR": str(data_dir)})
    assert run.code == 0, run.err
    assert _our_servers(data_dir / "redis") == [first.pid]
    assert EmbeddedRedis(data_dir / "redis").read_state() == first, "the state file is written again"
    assert EmbeddedRedis(data_dir / "redis").stop() is True
    assert _our_servers(data_dir / "redis") == []


def test_two_processes_starting_at_once_share_one_server(data_dir):
    env = {"MEMLAB_DATA_DIR": str(data_dir)}
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: run_cli("sessions", "--user", "alice", env=env), range(4)))
    assert all(r.code == 0 for r in runs), [r.err for r in runs]
    assert len(_our_servers(data_dir / "redis")) == 1


def test_an_unusable_data_dir_is_named_with_its_cause(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = run_cli("history", "--user", "u", "--session", "s", env={"MEMLAB_DATA_DIR": str(blocker / "data")})
    assert_one_line_error(run, 3, str(blocker / "data" / "redis"), "Not a directory", "MEMLAB_DATA_DIR")
    doctor = run_cli("doctor", "--quick", env={"MEMLAB_DATA_DIR": str(blocker / "data")})
    assert doctor.code == 1 and "make run" not in doctor.out and "Not a directory" in doctor.out


def test_a_killed_server_is_restarted_by_the_next_health_check_with_its_data(data_dir):
    lab = MemoryLab(Settings.from_env({"MEMLAB_DATA_DIR": str(data_dir)}))
    try:
        lab.chat("alice", "s1", "My name is Alice.", strategy="buffer")
        first = EmbeddedRedis(data_dir / "redis").read_state()
        assert first is not None
        time.sleep(1.2)  # appendfsync everysec: what was acknowledged a second ago is on disk
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pid_alive(first.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The page's sidebar runs this on every load: the held client's server is gone, so it finds or starts one.
        status = redis_status(lab)
        assert status.ok, status.detail
        assert status.extra["pid"] != first.pid
        assert [m.content for m in lab.sessions.log("alice", "s1").messages][0] == "My name is Alice."
        assert _our_servers(data_dir / "redis") == [status.extra["pid"]]
    finally:
        lab.close()  # its upkeep thread would otherwise start the server again after the fixture stops it


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("restarted_by", ["the next call", "another process"])
def test_a_lab_follows_its_embedded_server_killed_and_restarted_between_two_calls(data_dir, restarted_by):
    """No health check in between: the lab's next call finds the server again (or starts it), wherever it is."""
    env = {"MEMLAB_DATA_DIR": str(data_dir)}
    lab = MemoryLab(Settings.from_env(env))
    try:
        lab.chat("alice", "s1", "My name is Alice.", strategy="buffer")
        first = EmbeddedRedis(data_dir / "redis").read_state()
        assert first is not None
        time.sleep(1.2)  # appendfsync everysec: what was acknowledged a second ago is on disk
        _kill(first.pid)
        if restarted_by == "another process":
            assert run_cli("doctor", "--quick", env=env).code == 0  # starts it again, on another port
        result = lab.chat("alice", "s1", "What is my name?", strategy="buffer")
        assert [m["content"] for m in result.trace.messages][0] == "My name is Alice."
        now = EmbeddedRedis(data_dir / "redis").read_state()
        assert now is not None and now.pid != first.pid
        assert _our_servers(data_dir / "redis") == [now.pid], "one server for the data folder"
        assert len(lab.sessions.log("alice", "s1").messages) == 4
    finally:
        lab.close()


def test_a_held_lab_reports_its_hung_server_and_never_starts_a_second(data_dir):
    lab = MemoryLab(Settings.from_env({"MEMLAB_DATA_DIR": str(data_dir)}))
    try:
        lab.chat("alice", "s1", "My name is Alice.", strategy="buffer")
        state = EmbeddedRedis(data_dir / "redis").read_state()
        assert state is not None
        os.kill(state.pid, signal.SIGSTOP)
        try:
            for _ in range(2):  # the held connection times out; the next one finds the same (hung) server
                with pytest.raises(BackendTimeout, match="hung"):
                    lab.sessions.log("alice", "s1")
                time.sleep(2.1)  # past the client's short circuit breaker: a real second attempt
            assert _our_servers(data_dir / "redis") == [state.pid]
        finally:
            os.kill(state.pid, signal.SIGCONT)
        time.sleep(2.1)  # past the breaker that the upkeep thread's own timed-out command may have tripped
        assert lab.sessions.log("alice", "s1").messages[0].content == "My name is Alice."
    finally:
        lab.close()


def _turn_path(client, *pairs: tuple[str, str]) -> list:
    """Writes sent the way a turn's round trips go (``RedisClient.run``'s own connections)."""
    with client.pipeline(transaction=False) as p:
        for key, value in pairs:
            p.zadd(key, {value: 1})
        return client.run(p)


def test_the_turn_path_survives_a_killed_connection_and_never_reuses_a_dirty_one(engine_client, redis_client):
    assert _turn_path(engine_client, ("k", "a")) == [1]
    redis_client.client_kill_filter(_type="normal", skipme=True)  # every connection but the test's own
    assert _turn_path(engine_client, ("k", "b")) == [1]  # retried once on a fresh connection
    assert redis_client.zrange("k", 0, -1) == ["a", "b"]

    # A read interrupted after the first of three replies leaves two unread: that connection must be dropped,
    # or the next round trip would take those stale replies for its own.
    from redis.connection import AbstractConnection

    original, calls = AbstractConnection.read_response, []

    def interrupted(conn, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(conn, *args, **kwargs)

    AbstractConnection.read_response = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            _turn_path(engine_client, ("k", "c"), ("k", "d"), ("k", "e"))
    finally:
        AbstractConnection.read_response = original
    assert _turn_path(engine_client, ("k", "c"), ("other", "x")) == [0, 1]  # its own replies, not the stale ones
    assert redis_client.zrange("other", 0, -1) == ["x"]


def test_a_forked_child_opens_its_own_connection_for_the_turn_path(engine_client, redis_client):
    _turn_path(engine_client, ("k", "parent"))
    parents = list(engine_client._spares)
    assert parents  # the parent keeps its connection for the next turn
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = _turn_path(engine_client, ("k", "child")) == [1]
            ok = ok and not any(c in parents for c in engine_client._spares)  # a socket of its own
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 8) == b"ok"
    os.close(read)
    assert _turn_path(engine_client, ("k", "parent2")) == [1]
    assert engine_client._spares == parents
    assert set(redis_client.zrange("k", 0, -1)) == {"parent", "child", "parent2"}
