"""A fact's versions from the fact log: history with causes and diffs, restore of any version, facts as of a date."""

from __future__ import annotations

import json
import time

import pytest

from memory.errors import InputError
from memory.llm.base import ExtractedFact
from memory.timeline.versions import diff_text, fact_history, restore_version, valid_at, word_diff

from .conftest import assert_one_line_error, run_cli


def _said(lab, text, job, user="maya", session="s1"):
    return lab.facts.remember(user, session, [ExtractedFact(text, slot="location")], job=job)


def _updated_twice(lab):
    [added] = _said(lab, "The user lives in Berlin.", "m1")
    _said(lab, "The user lives in Lisbon.", "m2")
    _said(lab, "The user lives in Porto now.", "m3")
    return added.fact_id


def test_a_fact_updated_twice_then_restored_to_its_first_version(lab):
    fact = _updated_twice(lab)
    history = fact_history(lab.facts, "maya", fact)
    assert [(v.number, v.event, v.text) for v in history.versions] == [
        (1, "ADD", "The user lives in Berlin."),
        (2, "UPDATE", "The user lives in Lisbon."),
        (3, "UPDATE", "The user lives in Porto now."),
    ]
    assert history.versions[1].cause == "updated by a newer statement (upkeep of turn m2 in session s1)"
    assert history.versions[0].until == history.versions[1].at and history.versions[2].until is None
    assert diff_text(word_diff(history.versions[1].text, history.versions[2].text)) == (
        "The user lives in [-Lisbon.-]{+Porto now.+}"
    )
    event = restore_version(lab.facts, "maya", fact, 1)
    assert (event.event, event.text, event.previous) == (
        "RESTORE",
        "The user lives in Berlin.",
        "The user lives in Porto now.",
    )
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Berlin."]
    after = fact_history(lab.facts, "maya", fact).versions
    assert [(v.number, v.event, v.cause) for v in after][-1] == (4, "RESTORE", "an earlier version restored by hand")
    assert restore_version(lab.facts, "maya", fact, 1) is None, "already current: no second step"
    lab.facts.undo_last("maya")  # the restore is a step like any other: undo takes it back
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Porto now."]
    assert [a.action for a in lab.audit.query("maya")][:2] == ["fact_undo", "fact_restore"]


def test_a_superseded_statement_keeps_its_interval_and_shows_as_of_a_date(lab):
    old = lab.facts.remember(
        "maya", "s1", [ExtractedFact("You live in Berlin.", slot="location", action="state")], job="m1"
    )
    time.sleep(0.01)
    between = time.time()
    time.sleep(0.01)
    new = lab.facts.remember(
        "maya", "s1", [ExtractedFact("You live in Lisbon.", slot="location", action="state")], job="m2"
    )
    old_id, new_id = old[0].fact_id, new[0].fact_id
    assert [e.event for e in new] == ["ADD", "SUPERSEDE"]
    history = fact_history(lab.facts, "maya", old_id).versions
    assert [(v.state, v.text) for v in history] == [
        ("current", "You live in Berlin."),
        ("superseded", "You live in Berlin."),
    ]
    assert history[1].cause.startswith("superseded by a newer statement") and "Lisbon" in history[1].cause
    then, _ = valid_at(lab.facts, "maya", between)
    assert [(f.id, f.text, f.valid_until is not None) for f in then] == [(old_id, "You live in Berlin.", True)]
    now, _ = valid_at(lab.facts, "maya", time.time())
    assert [f.id for f in now] == [new_id]
    restore_version(lab.facts, "maya", old_id, 1)  # a superseded statement made current again
    assert {r.text for r in lab.facts.all("maya")} == {"You live in Berlin.", "You live in Lisbon."}
    lab.facts.undo_last("maya")  # and undo supersedes it again (the text alone was the same)
    assert [r.text for r in lab.facts.all("maya")] == ["You live in Lisbon."]


def test_a_deleted_fact_can_be_restored_and_a_version_out_of_range_is_refused(lab):
    fact = _updated_twice(lab)
    lab.facts.delete("maya", fact)
    versions = fact_history(lab.facts, "maya", fact).versions
    assert (versions[-1].state, versions[-1].cause) == ("deleted", "deleted by hand")
    with pytest.raises(InputError, match="deletion"):
        restore_version(lab.facts, "maya", fact, len(versions))
    with pytest.raises(InputError, match="no version 9"):
        restore_version(lab.facts, "maya", fact, 9)
    with pytest.raises(InputError, match="no fact"):
        fact_history(lab.facts, "maya", "nope")
    restore_version(lab.facts, "maya", fact, 2)
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Lisbon."]
    lab.facts.undo_last("maya")  # it was gone before the restore: undo removes it again
    assert lab.facts.all("maya") == []


def test_history_skips_a_damaged_log_entry_and_says_so(lab, raw_redis):
    fact = _updated_twice(lab)
    raw_redis.rpush(lab.keys.user("maya").fact_log, b"\xff{not json")
    history = fact_history(lab.facts, "maya", fact)
    assert len(history.versions) == 3 and history.skipped == 1


def test_the_cli_shows_history_restores_a_version_and_lists_facts_as_of_a_date(lab):
    fact = _updated_twice(lab)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    shown = run_cli("facts", "history", fact, "--user", "maya", "--json", env=env)
    assert shown.code == 0, shown.err
    assert [v["text"] for v in json.loads(shown.out)["versions"]][0] == "The user lives in Berlin."
    text = run_cli("facts", "history", fact, "--user", "maya", env=env)
    assert "[-Lisbon.-]{+Porto now.+}" in text.out
    restored = run_cli("facts", "restore", fact, "--version", "1", "--user", "maya", env=env)
    assert restored.code == 0, restored.err
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Berlin."]
    as_of = run_cli("facts", "list", "--as-of", "2000-01-01", "--user", "maya", "--json", env=env)
    assert as_of.code == 0 and json.loads(as_of.out)["facts"] == []
    assert_one_line_error(run_cli("facts", "history", "nope", "--user", "maya", env=env), 2, "no fact")
    assert_one_line_error(run_cli("facts", "list", "--as-of", "yesterday-ish", "--user", "maya", env=env), 2, "date")
    assert_one_line_error(run_cli("facts", "restore", fact, "--user", "maya", env=env), 2, "--version")


@pytest.mark.usefixtures("app_env")
def test_the_vector_memory_page_shows_a_facts_versions_and_restores_the_first(lab):
    from .test_fact_edits import _open_vector_page

    fact = _updated_twice(lab)
    at = _open_vector_page()
    assert not at.exception
    at.selectbox(key="vec_history_pick").set_value(fact).run()
    shown = " ".join(m.value for m in at.markdown)
    assert ":red-background[~~Lisbon\\.~~]" in shown and ":green-background[Porto now\\.]" in shown
    at.button(key=f"vec_restore:{fact}:1").click().run()
    assert not at.exception
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Berlin."]
    assert any("Restored version 1" in s.value for s in at.success), [s.value for s in at.success + at.error]
    at.text_input(key="vec_as_of").set_value("2000-01-01").run()
    assert any("No fact was valid" in c.value for c in at.caption), (
        at.exception,
        [e.value for e in at.error],
        [c.value for c in at.caption],
    )
