"""Why wasn't it retrieved? Each case, made to happen for real, then explained."""

from __future__ import annotations

import time

import pytest

from memory.errors import InputError
from memory.inspection.why import why_not


def test_a_stored_fact_below_the_cut_off_shows_its_rank_and_scores(lab):
    for text in [
        "My name is Alice.",
        "I live in Oslo.",
        "I work as a nurse.",
        "I like cycling and jazz.",
        "My sister is called Maja.",
    ]:
        lab.chat("alice", "s1", text, strategy="facts", wait_upkeep=True)
    query = "Where do I live?"
    top = why_not(lab, "alice", query, "You live in Oslo.", k=1)
    assert top.case == "retrieved" and top.rank == 1 and top.of == 5

    missed = why_not(lab, "alice", query, "Your sister is called Maja.", k=1)
    assert missed.case == "ranked below the cut-off" and missed.rank > 1 and missed.of == 5
    assert missed.components["score"] < missed.cutoff["score"] == top.components["score"]
    assert set(missed.components) == {"cosine", "bm25", "score"} and "ranks" in missed.explanation
    hits = [h.text for h, _ in lab.facts.search("alice", lab.embed([query])[0], missed.rank, query_text=query)]
    assert hits[-1] == "Your sister is called Maja.", "the rank is the one the facts strategy uses"

    by_id = why_not(lab, "alice", query, missed.memory["id"], k=5)
    assert by_id.case == "retrieved" and by_id.memory["text"] == "Your sister is called Maja."
    close = why_not(lab, "alice", query, "your sister is named Maja", k=1)
    assert close.case == "ranked below the cut-off" and "closest" in close.explanation


def test_a_deleted_or_replaced_fact_is_named_with_what_did_it(lab):
    lab.chat("alice", "s1", "I live in Oslo.", strategy="facts", wait_upkeep=True)
    lab.chat("alice", "s1", "I live in Bergen now.", strategy="facts", wait_upkeep=True)
    replaced = why_not(lab, "alice", "Where do I live?", "You live in Oslo.")
    assert replaced.case == "deleted" and "replaced by “You live in Bergen now.”" in replaced.explanation
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
    fact = next(f for f in lab.facts.all("alice") if "Alice" in f.text)
    lab.facts.delete("alice", fact.id)
    deleted = why_not(lab, "alice", "What is my name?", fact.id)
    assert deleted.case == "deleted" and deleted.evidence and "deleted on" in deleted.explanation


def test_another_users_fact_is_never_this_users(lab):
    lab.chat("bob", "s1", "I like jazz.", strategy="facts", wait_upkeep=True)
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
    answer = why_not(lab, "alice", "What music do I like?", "You like jazz.")
    assert answer.case == "stored for another user" and answer.memory["user"] == "bob"


def test_words_said_in_another_session_or_in_an_expired_one(lab):
    buffer = lab.default_config()
    lab.chat("alice", "trip", "The car is on level 3.", strategy="buffer", config=buffer, wait_upkeep=True)
    elsewhere = why_not(lab, "alice", "Where is the car?", "The car is on level 3.", session_id="now")
    assert elsewhere.case == "in another session" and elsewhere.memory["session"] == "trip"

    short = buffer.with_(ttl_s=1)
    lab.chat("alice", "brief", "The gate code is 4711.", strategy="buffer", config=short, wait_upkeep=True)
    lab.audit.flush()
    deadline = time.monotonic() + 10
    while lab.sessions.log("alice", "brief").messages and time.monotonic() < deadline:
        time.sleep(0.2)
    expired = why_not(lab, "alice", "What is the gate code?", "The gate code is 4711.", session_id="now")
    assert expired.case == "expired" and "TTL" in expired.explanation and expired.evidence

    lab.chat("alice", "gone", "The wifi password is swordfish.", strategy="buffer", wait_upkeep=True)
    lab.audit.flush()
    lab.clear_session("alice", "gone")
    cleared = why_not(lab, "alice", "What is the wifi password?", "The wifi password is swordfish.")
    assert cleared.case == "expired" and "cleared" in cleared.explanation


def test_something_never_said_is_never_stored(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
    answer = why_not(lab, "alice", "What is my dog called?", "The user's dog is called Rex.")
    assert answer.case == "never stored"
    with pytest.raises(InputError):
        why_not(lab, "alice", "", "anything")


def test_the_cli_answers_why_in_one_line(lab):
    import json

    from .conftest import run_cli

    lab.chat("alice", "s1", "I like jazz.", strategy="facts", wait_upkeep=True)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    lab.close()  # hand the embedded stores to the CLI's process
    said = run_cli("why", "--user", "bob", "--query", "What music do I like?", "--memory", "You like jazz.", env=env)
    assert said.code == 0 and said.out.startswith("stored for another user:"), said.out + said.err
    data = run_cli("why", "--user", "alice", "--query", "music?", "--memory", "You like jazz.", "--json", env=env)
    assert json.loads(data.out)["case"] == "retrieved"
