"""When a backend is down, hung or holds bad data, the CLI says so in one line with a documented exit code."""

from __future__ import annotations

import os
import signal
import time

import pytest

from memory.backends.redis_server import free_port
from memory.backends.vector_store import ChromaStore
from memory.errors import VectorStoreError

from .conftest import assert_one_line_error, run_cli


@pytest.fixture()
def env(settings) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url, "MEMLAB_DATA_DIR": str(settings.data_dir)}


def test_unreachable_redis_url(env):
    run = run_cli(
        "history", "--user", "u", "--session", "s", env={**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    assert_one_line_error(run, 3, "cannot reach Redis", "Connection refused")


def test_a_redis_url_that_is_not_one(env):
    run = run_cli("history", "--user", "u", "--session", "s", env={**env, "REDIS_URL": "http://nope"})
    assert_one_line_error(run, 3, "not a Redis URL")


def test_unreachable_chroma_server(env):
    run = run_cli(
        "chat", "--user", "u", "--session", "s", "--strategy", "facts", "hi",
        env={**env, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(free_port())},
    )  # fmt: skip
    assert_one_line_error(run, 3, "cannot reach Chroma", "CHROMA_HOST")


def test_a_hung_chroma_server_is_an_error_within_seconds(env, chroma_server):
    port, proc = chroma_server
    store = ChromaStore(host="127.0.0.1", port=port, timeout_s=2)
    assert store.count("memlab_facts") == 0
    os.kill(proc.pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(VectorStoreError, match="did not answer"):
        store.count("memlab_facts")
    assert time.monotonic() - started < 5
    run = run_cli(
        "chat", "--user", "u", "--session", "s", "--strategy", "facts", "hi",
        env={**env, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port)},
    )  # fmt: skip
    assert_one_line_error(run, 3, "Chroma", "did not answer")
    assert run.seconds < 15


def test_a_damaged_chroma_file_is_named_and_stays_named(env, settings):
    chroma_dir = settings.data_dir / "chroma"
    chroma_dir.mkdir(parents=True)
    (chroma_dir / "chroma.sqlite3").write_bytes(os.urandom(8192))
    run = run_cli("chat", "--user", "u", "--session", "s", "--strategy", "facts", "hi", env=env)
    assert_one_line_error(run, 3, "damaged", str(chroma_dir))
    # A second open in the same process used to fail with "'RustBindingsAPI' object has no attribute 'bindings'".
    for _ in range(2):
        with pytest.raises(VectorStoreError, match="damaged") as caught:
            ChromaStore(path=chroma_dir)
        assert "RustBindingsAPI" not in str(caught.value)
    quick = run_cli("doctor", "--quick", env=env)  # the quick check reads the file's header, not chromadb
    assert quick.code == 1 and "not a SQLite database" in quick.out and quick.seconds < 5, quick


def test_bad_input_and_bad_settings_exit_2(env):
    assert_one_line_error(run_cli("chat", "--user", "alice\n", "--session", "s1", "hi", env=env), 2, "not valid")
    assert_one_line_error(
        run_cli("history", "--user", "u", "--session", "s", env={**env, "MEMLAB_BUFFER_SIZE": "x"}), 2
    )
    assert_one_line_error(run_cli("chat", "--user", "u", "--session", "s", " ", env=env), 2, "empty")
    too_long = run_cli("chat", "--user", "u", "--session", "s", "x" * 40_000, env=env)
    assert_one_line_error(too_long, 2, "MEMLAB_MAX_MESSAGE_CHARS")


def test_a_key_prefix_with_glob_characters_is_refused(env, lab):
    """forget SCANs ``PREFIX:s:{user:*``: a prefix holding ``*`` or ``[`` would match other keys."""
    for prefix in ("mem*", "m[a]", "a:b", "x" * 65):
        run = run_cli("forget", "--user", "alice", env={**env, "MEMLAB_KEY_PREFIX": prefix})
        assert_one_line_error(run, 2, "MEMLAB_KEY_PREFIX must be 1-64 letters")
    assert run_cli("sessions", "--user", "alice", env={**env, "MEMLAB_KEY_PREFIX": "team-a.memlab"}).code == 0


def test_an_id_with_a_trailing_newline_creates_nothing(env, lab):
    run = run_cli("chat", "--user", "alice\n", "--session", "s1", "hi", env=env)
    assert run.code == 2
    assert list(lab.redis.scan_iter(match="*")) == []


@pytest.mark.parametrize("quick", [False, True])
def test_doctor_names_qdrant_when_it_is_the_vector_store(env, quick):
    run = run_cli("doctor", *(["--quick"] if quick else []), env={**env, "MEMLAB_VECTOR_STORE": "qdrant"})
    assert run.code == 0, run.err
    line = next(line for line in run.out.splitlines() if "Qdrant" in line)
    assert "embedded" in line and "Chroma" not in run.out


def test_an_unknown_vector_store_is_one_clear_line(env):
    run = run_cli("doctor", env={**env, "MEMLAB_VECTOR_STORE": "pinecone"})
    assert_one_line_error(run, 2, "MEMLAB_VECTOR_STORE must be chroma or qdrant")
