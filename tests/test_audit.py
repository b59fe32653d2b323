"""The audit trail: every memory write appended, on SQLite by default and on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from memory.backends.redis_server import free_port
from memory.inspection.key_browser import KeyInspector
from memory.lab import MemoryLab
from memory.stores.audit import AuditEvent, AuditTrail

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def audited(request, settings):
    """A lab whose trail is the embedded SQLite file, then a real PostgreSQL (emptied first)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS memlab_audit")
        settings = replace(settings, audit_database_url=url)
    lab = MemoryLab(settings)
    yield lab
    lab.close()


def _actions(lab, user):
    lab.audit.flush()
    return [e.action for e in reversed(lab.audit.query(user_id=user))]


def test_every_kind_of_memory_write_is_recorded(audited):
    lab = audited
    assert lab.audit.mode == ("postgresql" if lab.settings.audit_database_url else "sqlite")
    config = lab.default_config().with_(summary_threshold=4, summary_keep=2)
    for text in ["My name is Alice.", "I live in Oslo.", "I live in Bergen now.", "It is raining."]:
        lab.chat("alice", "s1", text, strategy="hybrid", config=config, wait_upkeep=True)
    actions = _actions(lab, "alice")
    assert actions.count("message_stored") == 8 and "fold" in actions
    assert {"fact_add", "fact_update"} <= set(actions)
    stored = lab.audit.query(user_id="alice", actions=["message_stored"], limit=100)
    assert "My name is Alice." in [e.content for e in stored] and {e.details["role"] for e in stored} == {
        "user",
        "assistant",
    }
    update = lab.audit.query(user_id="alice", actions=["fact_update"])[0]
    assert "Bergen" in update.content and "Oslo" in update.details["previous"]
    fold = lab.audit.query(user_id="alice", actions=["fold"])[0]
    assert fold.target and fold.details["messages"] >= 3

    fact = lab.facts.all("alice")[0]
    lab.facts.edit("alice", fact.id, "The user's name is Alice Smith.")
    inspector = KeyInspector(lab.redis, lab.keys, lab.audit)
    k = lab.keys.session("alice", "s1")
    inspector.set_ttl(k.meta, 60)
    inspector.delete(k.traces)
    lab.clear_session("alice", "s1")
    assert _actions(lab, "alice")[-4:] == ["fact_edit", "key_ttl_changed", "key_deleted", "session_cleared"]
    ttl = lab.audit.query(actions=["key_ttl_changed"])[0]
    assert ttl.target == k.meta and ttl.details == {"ttl_s": 60} and ttl.session_id == "s1"

    since = time.time() - 3600
    assert lab.audit.query(user_id="alice", since=since, until=time.time() + 1)
    assert lab.audit.query(user_id="alice", until=since) == []
    assert lab.audit.query(user_id="nobody") == [] and "alice" in lab.audit.users()


def test_forgetting_blanks_the_users_content_and_keeps_that_it_happened(audited):
    lab = audited
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
    lab.chat("bob", "s1", "My name is Bob.", strategy="facts", wait_upkeep=True)
    report = lab.forget_user("alice")
    assert report.ok, report.errors
    assert report.counts["audit rows blanked"] >= 3
    lab.audit.flush()
    rows = lab.audit.query(user_id="alice")
    assert rows and all(e.content == "" for e in rows), "no trace of what Alice said"
    assert rows[0].action == "user_forgotten" and {"message_stored", "fact_add"} <= {e.action for e in rows}
    assert any("Bob" in e.content for e in lab.audit.query(user_id="bob")), "other users are untouched"


def test_the_same_write_recorded_twice_is_one_row(tmp_path):
    trail = AuditTrail(None, tmp_path)
    event = AuditEvent("fact:f1:ADD:job-1:0", time.time(), "fact_add", "alice", "s1", "f1", "The user likes tea.")
    trail.record([event])
    trail.record([event, replace(event, id="fact:f2:ADD:job-1:1", target="f2")])
    assert trail.count() == 2 and [e.target for e in trail.query()] == ["f2", "f1"]
    trail.close()


def test_a_trail_that_cannot_be_written_never_fails_a_turn(settings, caplog):
    lab = MemoryLab(replace(settings, audit_database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x"))
    try:
        result = lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
        assert result.error is None and result.reply is not None
        lab.audit.flush()
        ok, problem = lab.audit.status()
        assert not ok and "cannot be opened" in problem
        assert any("not recorded" in r.getMessage() for r in caplog.records)
        assert lab.facts.all("alice"), "the memory write itself went through"
    finally:
        lab.close()


def test_a_url_that_is_not_postgresql_is_refused_clearly(tmp_path):
    from memory.stores.audit import AuditError

    with pytest.raises(AuditError, match="postgresql://"):
        AuditTrail("mysql://db/x", tmp_path)


def test_doctor_and_the_sidebar_name_a_trail_that_is_down(settings):
    from .conftest import run_cli

    env = {"REDIS_URL": settings.redis_url, "MEMLAB_DATA_DIR": str(settings.data_dir)}
    fine = run_cli("doctor", "--quick", env=env)
    assert fine.code == 0 and any(line.startswith("Audit") and " ok " in line for line in fine.out.splitlines())
    down = run_cli(
        "doctor", "--quick", env={**env, "AUDIT_DATABASE_URL": f"postgresql://postgres:pw@127.0.0.1:{free_port()}/x"}
    )
    assert down.code == 1 and "Check AUDIT_DATABASE_URL" in down.out and "pw" not in down.out, down.out


# A worker process that dies by SIGKILL the moment it would record an audit row of one action: after the
# memory write that row describes (the fact log, the fold), before the row is in the trail.
_CRASHING_WORKER = """
import os, signal, sys
from memory.stores.audit import AuditTrail
record = AuditTrail.record
def crash(self, events):
    events = list(events)
    if any(e.action == sys.argv[1] for e in events):
        os.kill(os.getpid(), signal.SIGKILL)
    return record(self, events)
AuditTrail.record = crash
from memory.tools.cli import main
sys.exit(main(["worker", "--once", "--name", "doomed"]))
"""


@pytest.mark.parametrize(
    ("strategy", "action", "texts"),
    [
        ("facts", "fact_add", ["My name is Alice and I live in Oslo."]),
        ("summary", "fold", ["I moved to Lima.", "I work at Klarna."]),  # the second turn's job folds
    ],
)
def test_a_worker_killed_between_a_memory_write_and_its_audit_row_leaves_no_gap(settings, strategy, action, texts):
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "MEMLAB_DATA_DIR": str(settings.data_dir),
        "MEMLAB_SUMMARY_THRESHOLD": "2",
        "MEMLAB_SUMMARY_KEEP": "0",
    }
    for text in texts:
        args = ("chat", "--no-wait", "--user", "alice", "--session", "s1", "--strategy", strategy, text)
        assert run_cli(*args, env=env).code == 0
    doomed = subprocess.run(
        [sys.executable, "-c", _CRASHING_WORKER, action], env=env, cwd=str(ROOT), capture_output=True, timeout=120
    )
    assert doomed.returncode == -signal.SIGKILL, doomed.stderr
    lab = MemoryLab(replace(settings, summary_threshold=2, summary_keep=0))
    try:
        if action == "fact_add":
            logged = [e.event for e in lab.facts.history("alice").items]
            assert logged == ["ADD", "ADD"], "the fact log was written before the crash"
        else:
            assert len(lab.sessions.folds("alice", "s1").items) == 1, "the fold was made before the crash"
        assert lab.audit.query(user_id="alice", actions=[action]) == []
        lab.close()  # the next worker is another process (embedded Chroma belongs to one process at a time)

        time.sleep(0.3)
        rescue = run_cli("worker", "--once", "--claim-after", "0.2", env=env)
        assert rescue.code == 0, rescue.err
        lab = MemoryLab(replace(settings, summary_threshold=2, summary_keep=0))
        rows = lab.audit.query(user_id="alice", actions=[action])
        if action == "fact_add":
            assert sorted(r.content for r in rows) == ["You live in Oslo.", "Your name is Alice."]
            assert [e.event for e in lab.facts.history("alice").items] == ["ADD", "ADD"], "applied once"
        else:
            [fold] = lab.sessions.folds("alice", "s1").items
            [row] = rows
            assert row.target == ",".join(fold.message_ids) and row.content == lab.sessions.summary("alice", "s1")
            assert "Lima" in row.content
        last = dict(lab.sessions.traces("alice", "s1").items)[lab.sessions.log("alice", "s1").messages[-1].id]
        assert last.job["status"] == "done" and last.job["worker"] != "doomed"
    finally:
        lab.close()


# A process killed (SIGKILL) the moment a turn returns: nothing of it may be missing from the trail.
_KILLED_AFTER_A_TURN = """
import os, signal, sys
from dataclasses import replace
from memory.config import Settings
from memory.lab import MemoryLab
lab = MemoryLab(replace(Settings.from_env(), upkeep_mode="external"))
lab.audit.count()  # the trail is open, as in a process that served turns before
lab.chat("alice", sys.argv[1], "My favourite colour is teal.", strategy="buffer")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_right_after_a_turn_leaves_its_messages_in_the_trail(settings):
    env = {**os.environ, "REDIS_URL": settings.redis_url or "", "MEMLAB_DATA_DIR": str(settings.data_dir)}
    for session in ("k1", "k2", "k3"):
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_AFTER_A_TURN, session], env=env, cwd=str(ROOT), capture_output=True
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    lab = MemoryLab(settings)
    try:
        for session in ("k1", "k2", "k3"):
            stored = lab.sessions.log("alice", session).messages
            rows = lab.audit.query(user_id="alice", actions=["message_stored"])
            assert len(stored) == 2
            assert sorted(r.target for r in rows if r.session_id == session) == sorted(m.id for m in stored)
    finally:
        lab.close()
