"""Deletion has one owner: MemoryLab walks every store and reports every count, or every failure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from memory.backends.redis_server import free_port
from memory.lab import MemoryLab

from .conftest import run_cli


@pytest.fixture()
def lab(vector_lab):  # every test here runs on the embedded Chroma and on a Chroma server
    return vector_lab


def test_clearing_a_session_removes_it_from_recall(lab):
    lab.chat("alice", "s1", "I adopted a greyhound called Comet.", strategy="hybrid")
    lab.chat("alice", "s2", "My name is Alice.", strategy="hybrid", wait_upkeep=True)
    assert lab.turns.count("alice") == 2
    report = lab.clear_session("alice", "s1")
    assert report.ok, report.errors
    assert report.counts["turns"] == 1 and report.counts["episodes"] == 1 and report.counts["redis_keys"] >= 4
    assert lab.sessions.log("alice", "s1").messages == []
    assert [s for s, _ in lab.sessions.sessions("alice")] == ["s2"]
    result = lab.chat("alice", "s3", "What is my dog called?", strategy="episodic", wait_upkeep=True)
    assert all("Comet" not in item.text for item in result.trace.retrieved)
    assert "Comet" not in result.reply.content
    assert lab.turns.count("alice") == 2  # s2's turn and the question just asked: s1's is gone


def test_a_failing_store_is_reported_and_the_others_still_run(settings, lab):
    # Upkeep done first: every strategy's job now indexes the turn in Chroma, and a job still queued would be
    # run (and fail) by the broken lab's worker, which would then re-clear the session before the report.
    lab.chat("alice", "s1", "hello", strategy="buffer", wait_upkeep=True)
    broken = MemoryLab(replace(settings, chroma_host="127.0.0.1", chroma_port=free_port()))
    report = broken.clear_session("alice", "s1")
    assert not report.ok
    assert set(report.errors) == {"episodes", "turns"} and "cannot reach Chroma" in report.errors["turns"]
    assert report.counts["redis_keys"] >= 3 and "facts" not in report.counts, (report.counts, report.errors)
    assert "turns failed" in report.describe()
    assert lab.sessions.log("alice", "s1").messages == []


def test_cli_forget_and_clear_report_every_count(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="hybrid")
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    if lab.settings.vector_store == "qdrant":  # local mode belongs to one process: hand it to the CLI's
        env["MEMLAB_VECTOR_STORE"] = "qdrant"
        lab.wait_for_upkeep("alice")
        lab.close()
    if lab.settings.chroma_host:
        env |= {
            "CHROMA_HOST": lab.settings.chroma_host,
            "CHROMA_PORT": str(lab.settings.chroma_port),
            "CHROMA_DATABASE": lab.settings.chroma_database,
        }
    cleared = run_cli("clear", "--user", "alice", "--session", "s1", env=env)
    assert cleared.code == 0, cleared.err
    assert "1 turns" in cleared.out and "1 episodes" in cleared.out and "facts are kept" in cleared.out
    forgot = run_cli("forget", "--user", "alice", env=env)
    assert forgot.code == 0 and "1 facts" in forgot.out and "0 turns" in forgot.out
