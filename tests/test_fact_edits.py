"""Hand edits of a fact and their undo: a save is one logged change, undo gives back exactly the text before it."""

from __future__ import annotations

import threading

import pytest

from memory.errors import InputError, StaleEditError, StoredDataError

from .conftest import assert_one_line_error, run_cli

OLD = "The user  lives in Berlin – Kreuzberg."  # stored as written: undo must give back these very characters
FACT = "f" * 32


def _fact(lab, user="maya", text=OLD) -> str:
    lab.facts.restore(user, FACT, text, "location", "s1", event="ADD")
    return FACT


def _text(lab, user="maya") -> str:
    [record] = lab.facts.all(user)
    return record.text


def _events(lab, user="maya") -> list[str]:
    return [e.event for e in lab.facts.history(user).items]


def test_an_edit_then_undo_restores_the_exact_old_text(lab):
    fact = _fact(lab)
    event = lab.facts.edit("maya", fact, "The user lives in Berlin.")
    assert (event.previous, event.text) == (OLD, "The user lives in Berlin.")
    undone = lab.facts.undo_last("maya")
    assert _text(lab) == OLD == undone.text
    assert _events(lab) == ["ADD", "EDIT", "UNDO"]


def test_saving_the_same_edit_twice_is_one_change_and_undo_still_finds_the_old_text(lab):
    fact = _fact(lab)
    assert lab.facts.edit("maya", fact, "The user lives in Berlin.") is not None  # Enter in the box
    assert lab.facts.edit("maya", fact, "The user lives in Berlin.") is None  # then the button
    assert lab.facts.edit("maya", fact, "  The user lives\nin Berlin. ") is None, "the same text, spaced otherwise"
    assert _events(lab) == ["ADD", "EDIT"]
    lab.facts.undo_last("maya")
    assert _text(lab) == OLD


def test_saving_the_text_a_fact_already_has_logs_nothing(lab):
    fact = _fact(lab, text="The user lives in Berlin.")
    assert lab.facts.edit("maya", fact, "The user lives in Berlin.") is None
    assert _events(lab) == ["ADD"]


def test_two_edits_then_undo_restore_the_first_edits_text(lab):
    fact = _fact(lab)
    lab.facts.edit("maya", fact, "First edit.")
    lab.facts.edit("maya", fact, "Second edit.")
    assert lab.facts.undo_last("maya").text == "First edit."
    assert _text(lab) == "First edit."
    with pytest.raises(InputError, match="already undone"):
        lab.facts.undo_last("maya")
    assert _text(lab) == "First edit."


def test_an_edit_begun_on_a_text_the_fact_no_longer_has_is_refused(lab):
    """Two tabs open the same fact; the first saves; the second's save must not overwrite what it never saw."""
    fact = _fact(lab)
    lab.facts.edit("maya", fact, "Tab one's text.", expected=OLD)
    with pytest.raises(StaleEditError, match="Tab one's text") as refused:
        lab.facts.edit("maya", fact, "Tab two's text.", expected=OLD)
    assert refused.value.current == "Tab one's text."
    assert _text(lab) == "Tab one's text." and _events(lab) == ["ADD", "EDIT"]
    lab.facts.edit("maya", fact, "Tab two's text.", expected=refused.value.current)  # saved again, knowingly
    assert _text(lab) == "Tab two's text."


def test_editing_a_fact_deleted_meanwhile_is_refused_and_logs_nothing(lab):
    fact = _fact(lab)
    lab.facts.delete("maya", fact)
    with pytest.raises(InputError, match="deleted meanwhile"):
        lab.facts.edit("maya", fact, "Too late.", expected=OLD)
    assert lab.facts.all("maya") == [] and _events(lab) == ["ADD", "DELETE"]


def test_concurrent_saves_of_the_same_edit_are_one_change(lab):
    fact = _fact(lab)
    start = threading.Barrier(4)
    results: list[object] = []

    def save() -> None:
        start.wait()
        results.append(lab.facts.edit("maya", fact, "The user lives in Berlin.", expected=OLD))

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1, results
    assert _events(lab) == ["ADD", "EDIT"]
    lab.facts.undo_last("maya")
    assert _text(lab) == OLD


@pytest.mark.parametrize("damaged", [b"{not json", b'{"event": "EDIT"}', b"\xff\xfe", b'"a string"'])
def test_undo_refuses_when_the_logs_last_entry_is_damaged(lab, raw_redis, damaged):
    fact = _fact(lab)
    lab.facts.edit("maya", fact, "The user lives in Berlin.")
    raw_redis.rpush(lab.keys.user("maya").fact_log, damaged)
    with pytest.raises(StoredDataError, match="entry #2 is damaged"):
        lab.facts.undo_last("maya")
    assert _text(lab) == "The user lives in Berlin.", "nothing was undone on a guess"
    lab.facts.edit("maya", fact, "A later edit.")  # a change after the damage can be undone again
    assert lab.facts.undo_last("maya").text == "The user lives in Berlin."


def test_undo_skips_a_same_text_edit_logged_by_an_older_version(lab, raw_redis):
    """Logs written before saves were checked hold EDITs whose text equals the previous one: not a change."""
    import json
    import time

    fact = _fact(lab)
    lab.facts.edit("maya", fact, "The user lives in Berlin.")
    noop = {"at": time.time(), "event": "EDIT", "fact_id": fact, "text": "The user lives in Berlin."}
    raw_redis.rpush(lab.keys.user("maya").fact_log, json.dumps({**noop, "previous": noop["text"]}))
    lab.facts.undo_last("maya")
    assert _text(lab) == OLD


def test_undo_refuses_when_the_fact_changed_since_its_logged_change(lab):
    fact = _fact(lab)
    lab.facts.edit("maya", fact, "The user lives in Berlin.")
    lab.facts.restore("maya", fact, "Written by another process, unlogged.", "location")
    with pytest.raises(StaleEditError, match="unlogged"):
        lab.facts.undo_last("maya")
    assert _text(lab) == "Written by another process, unlogged."


def test_undo_of_a_delete_refuses_when_the_fact_is_back(lab):
    fact = _fact(lab)
    lab.facts.delete("maya", fact)
    lab.facts.restore("maya", fact, "Imported again.", "location")
    with pytest.raises(InputError, match="exists again"):
        lab.facts.undo_last("maya")
    assert _text(lab) == "Imported again."


def test_the_cli_edits_once_and_undoes_to_the_exact_old_text(lab, raw_redis):
    fact = _fact(lab)
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    edit = ("facts", "edit", "--user", "maya", "--fact-id", fact, "--text", "The user lives in Berlin.")
    first, second = run_cli(*edit, env=env), run_cli(*edit, env=env)
    assert first.code == 0 and "edited" in first.out, first.err
    assert second.code == 0 and "unchanged" in second.out, second.err
    assert _events(lab) == ["ADD", "EDIT"]
    undo = run_cli("facts", "undo", "--user", "maya", env=env)
    assert undo.code == 0, undo.err
    assert _text(lab) == OLD
    lab.facts.edit("maya", fact, "Edited again.")
    raw_redis.rpush(lab.keys.user("maya").fact_log, b"{damaged")
    assert_one_line_error(run_cli("facts", "undo", "--user", "maya", env=env), 4, "damaged", "nothing was undone")
    assert _text(lab) == "Edited again."
