"""The embedded redis-server: started once, shared, persistent, restartable."""

from __future__ import annotations

import json
import subprocess
import sys

import redis

from memory.backends.redis_server import EmbeddedRedis, pid_alive

from .conftest import kill_pid


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
