"""The deployment topology on one machine: two app processes and upkeep workers on shared real servers.

App A and app B are two `streamlit run` processes on two ports (as two
replicas behind a load balancer), each with a data folder of its own so
nothing is shared through disk. They and the workers share a Redis Cluster
(3 primaries, one replica each), a Chroma server and a PostgreSQL audit
trail, all on loopback and started by the fixtures. A turn sent through A shows on B's pages; its
upkeep is done by a worker process; a worker killed in the middle of a job
loses nothing and the job is applied once. `make topology` runs this alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace

import psycopg
import pytest
import redis

from memory.config import Settings
from memory.lab import MemoryLab
from memory.upkeep.queue import GROUP

from .browser_app import CHROMIUM, launch, say
from .browser_app import idle as _idle
from .browser_app import serve as _serve
from .conftest import new_chroma_database
from .test_upkeep import _wait, _worker

pytestmark = [
    pytest.mark.topology,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')"),
]


@pytest.fixture()
def shared_env(redis_cluster, shared_chroma_server, postgres_url):
    """The settings every process of the topology shares (their data folders are their own)."""
    chroma_port, _ = shared_chroma_server
    client = redis.RedisCluster.from_url(redis_cluster.url)
    client.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
    client.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS memlab_audit")
    return {
        "REDIS_CLUSTER_URL": redis_cluster.url,
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_port),
        "CHROMA_DATABASE": new_chroma_database(chroma_port),
        "AUDIT_DATABASE_URL": postgres_url,
        "MEMLAB_UPKEEP": "external",
    }


def _app(env: dict[str, str], folder):  # type: ignore[no-untyped-def]
    folder.mkdir()
    server = _serve({**os.environ, **env, "MEMLAB_DATA_DIR": str(folder / "data")}, folder)
    return server, next(server)


def test_two_apps_and_workers_share_one_memory(shared_env, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    observer = MemoryLab(replace(Settings.from_env(shared_env), data_dir=tmp_path / "observer"))
    workers: list[subprocess.Popen[str]] = []
    servers = []
    try:
        workers.append(_worker({**shared_env, "MEMLAB_DATA_DIR": str(tmp_path / "w1")}, "worker-1"))
        server_a, url_a = _app(shared_env, tmp_path / "a")
        server_b, url_b = _app(shared_env, tmp_path / "b")
        servers += [server_a, server_b]
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                say(page, url_a + "chat?user=topo&session=s1&strategy=facts", "My name is Alice and I live in Oslo.")
                _wait(lambda: len(observer.facts.all("topo")) == 2, 60, "the worker to store the facts")

                page.goto(url_b + "chat?user=topo&session=s1")  # the other replica
                page.get_by_test_id("stChatMessage").nth(1).wait_for(timeout=60_000)
                shown = page.get_by_test_id("stChatMessage").all_inner_texts()
                assert "My name is Alice and I live in Oslo." in shown[0] and "Alice" in shown[1], shown
                page.goto(url_b + "vector_memory?user=topo&session=s1")
                # The table is drawn on a canvas; its cells are also in the page, for screen readers.
                page.locator("[data-testid=stDataFrame] td", has_text="You live in Oslo.").first.wait_for(
                    state="attached", timeout=60_000
                )
                page.goto(url_b + "audit?user=topo&session=s1")
                page.get_by_role("heading", name="Audit trail", level=1).wait_for(timeout=60_000)
                _idle(page)
                main = page.get_by_test_id("stMain")
                assert main.get_by_text("Every write to memory, appended (postgresql:").count() == 1
                assert observer.audit.mode == "postgresql"
                actions = {e.action for e in observer.audit.query(user_id="topo")}
                assert {"message_stored", "fact_add"} <= actions
            finally:
                browser.close()

        # A worker killed in the middle of a job: another takes the job over and applies it once.
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        slow = _worker({**shared_env, "MEMLAB_DATA_DIR": str(tmp_path / "w2"), "MEMLAB_UPKEEP_DELAY": "120"}, "slow")
        workers.append(slow)
        turn = observer.chat("topo", "s1", "I like cycling and jazz.", strategy="facts")

        def taken_by_slow():  # type: ignore[no-untyped-def]
            rows = observer.redis.xpending_range(observer.keys.jobs, GROUP, "-", "+", 10)
            return [r for r in rows if r["consumer"] == "slow"]

        _wait(taken_by_slow, 60, "the slow worker to take the job")
        time.sleep(0.5)
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
        assert observer.upkeep.outcome("topo", "s1", turn.reply.id) is None
        rescuer = _worker(
            {**shared_env, "MEMLAB_DATA_DIR": str(tmp_path / "w3"), "MEMLAB_UPKEEP_CLAIM": "1"}, "rescuer"
        )
        workers.append(rescuer)
        outcome = _wait(lambda: observer.upkeep.outcome("topo", "s1", turn.reply.id), 60, "the rescuer")
        assert outcome["status"] == "done" and outcome["worker"] == "rescuer"
        texts = sorted(r.text for r in observer.facts.all("topo"))
        assert texts == ["You like cycling and jazz.", "You live in Oslo.", "Your name is Alice."]
        assert [e.event for e in observer.facts.history("topo").items] == ["ADD", "ADD", "ADD"], "applied once"
        assert observer.redis.xpending(observer.keys.jobs, GROUP)["pending"] == 0
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for server in servers:
            server.close()
        observer.close()
