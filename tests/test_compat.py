"""The private parts of redis-py and chromadb the engine uses (memory/backends/compat.py) still work as assumed.

Why: an upgrade that renames one of them must fail here, by name, not in a
turn. Each test runs the real library (and a real server where one is needed).
"""

from __future__ import annotations

import redis

from memory.backends.compat import RelocatingConnection, forget_chroma_system, pipeline_commands


def test_a_pipelines_queued_commands_are_read_back_in_order() -> None:
    pipe = redis.Redis(host="127.0.0.1", port=1).pipeline(transaction=False)  # queued only: nothing is sent
    pipe.set("a", "1")
    pipe.evalsha("0" * 40, 1, "k", "v")
    assert pipeline_commands(pipe) == [("SET", "a", "1"), ("EVALSHA", "0" * 40, 1, "k", "v")]


def test_a_cluster_pipelines_queued_commands_are_read_back(redis_cluster) -> None:
    client = redis.RedisCluster.from_url(redis_cluster.url)
    try:
        pipe = client.pipeline()
        pipe.set("{u}:a", "1")
        pipe.get("{u}:a")
        assert pipeline_commands(pipe) == [("SET", "{u}:a", "1"), ("GET", "{u}:a")]
    finally:
        client.close()


def test_a_relocating_connection_asks_where_the_server_is_on_each_new_socket(redis_server) -> None:
    asked: list[int] = []

    def locate() -> tuple[str, int]:
        asked.append(redis_server.port)
        return "127.0.0.1", redis_server.port

    pool = redis.ConnectionPool(connection_class=RelocatingConnection, host="127.0.0.1", port=1, locate=locate)
    client = redis.Redis(connection_pool=pool)
    try:
        assert client.ping() and asked == [redis_server.port]
        pool.disconnect()
        assert client.ping() and len(asked) == 2, "a new socket asks again"
    finally:
        client.close()


def test_chromas_cached_system_of_a_folder_is_forgotten(tmp_path) -> None:
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient

    folder = str(tmp_path / "chroma")
    chromadb.PersistentClient(path=folder, settings=chromadb.config.Settings(anonymized_telemetry=False))
    assert any(folder in i for i in SharedSystemClient._identifier_to_system)
    forget_chroma_system(folder)
    assert not any(folder in i for i in SharedSystemClient._identifier_to_system)
    assert not any(folder in i for i in SharedSystemClient._identifier_to_refcount)
