"""The design's acceptance test, through the CLI with the embedded Redis restarted in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory.backends.redis_server import EmbeddedRedis

from .conftest import kill_pid

ROOT = Path(__file__).resolve().parent.parent


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CHROMA_HOST", "ANTHROPIC_API_KEY"}}
    env["MEMLAB_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "memory", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("strategy", ["buffer", "hybrid"])
def test_alice_is_remembered_across_a_redis_and_process_restart(tmp_path, strategy):
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        told = run_cli(
            tmp_path, "chat", "--user", "alice", "--session", "s1", "--strategy", strategy, "My name is Alice."
        )
        assert told.returncode == 0, told.stderr
        first_pid = server.read_state().pid
        stopped = run_cli(tmp_path, "redis", "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert server.read_state() is None

        asked = run_cli(
            tmp_path, "chat", "--json", "--user", "alice", "--session", "s1", "--strategy", strategy, "What is my name?"
        )
        assert asked.returncode == 0, asked.stderr
        out = json.loads(asked.stdout)
        assert server.read_state().pid != first_pid  # a new redis-server, same data
        seen = out["trace"]["system_prompt"] + " ".join(m["content"] for m in out["trace"]["messages"])
        assert "Alice" in seen
        assert "Alice" in out["reply"]
    finally:
        state = server.read_state()
        server.stop()
        kill_pid(state.pid if state else None)


def test_cli_chat_json_works_for_every_strategy(settings, monkeypatch, capsys):
    from memory.strategies import STRATEGIES
    from memory.tools.cli import main

    monkeypatch.setenv("MEMLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    for name in STRATEGIES:
        assert main(["chat", "--json", "--user", "u1", "--session", name, "--strategy", name, "My name is Alice."]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["trace"]["strategy"] == name
        assert out["trace"]["messages"][-1]["content"] == "My name is Alice."
        assert "timings_ms" in out["trace"] and "tokens" in out["trace"]
    assert main(["history", "--json", "--user", "u1", "--session", "hybrid"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    assert main(["sessions", "--user", "u1"]) == 0
    assert set(capsys.readouterr().out.split()) >= set(STRATEGIES)
    assert main(["doctor", "--quick"]) == 0
    assert "Redis" in capsys.readouterr().out
    assert main(["chat", "--user", "bad id", "--session", "s", "hi"]) == 2
    assert "not valid" in capsys.readouterr().err
    assert main(["forget", "--user", "u1"]) == 0
    assert main(["sessions", "--user", "u1"]) == 0
    assert "no sessions" in capsys.readouterr().out
