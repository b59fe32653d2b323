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


# -- the Vector memory page -------------------------------------------------------------------------------

on_the_page = pytest.mark.usefixtures("app_env")


def _open_vector_page(user="maya"):
    from streamlit.testing.v1 import AppTest

    from .page_app import APP

    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["user_id"], at.session_state["session_id"] = user, "s1"
    at.switch_page("pages/vector_memory.py")
    return at.run()


def _two_facts(lab) -> tuple[str, str]:
    first, second = "a" * 32, "b" * 32
    lab.facts.restore("maya", first, "The user's name is Maya.", "name", "s1", event="ADD")
    lab.facts.restore("maya", second, "The user lives in Malmö.", "location", "s1", event="ADD")
    return first, second


def _texts(lab, user="maya") -> dict[str, str]:
    return {r.id: r.text for r in lab.facts.all(user)}


def _box(at, fact_id):
    return at.text_area(key=f"edit_fact_text:{fact_id}")


def _save(at):
    return at.button[[b.label for b in at.button].index("Save the edit")].click().run()


@on_the_page
def test_the_edit_box_follows_the_picked_fact(lab):
    first, second = _two_facts(lab)
    at = _open_vector_page()
    at.selectbox(key="edit_fact_pick").set_value(second).run()
    assert _box(at, second).value == "The user lives in Malmö."
    _save(at)  # saved as shown: no change, and never the first fact's text over the second
    assert not at.exception
    assert _texts(lab) == {first: "The user's name is Maya.", second: "The user lives in Malmö."}
    assert _events(lab) == ["ADD", "ADD"]
    assert any("Nothing to save" in s.value for s in at.success)


@on_the_page
def test_a_double_save_on_the_page_is_one_change_and_undo_restores_the_old_text(lab):
    first, _ = _two_facts(lab)
    at = _open_vector_page()
    _box(at, first).set_value("The user's name is Maya\nSvensson.")
    _save(at)
    _save(at)  # the button again, after Ctrl+Enter
    assert _texts(lab)[first] == "The user's name is Maya Svensson."
    assert _events(lab) == ["ADD", "ADD", "EDIT"]
    assert _box(at, first).value == "The user's name is Maya Svensson.", "the box shows the stored text"
    at.button(key="undo_fact").click().run()
    assert _texts(lab)[first] == "The user's name is Maya."
    assert _box(at, first).value == "The user's name is Maya.", "after undo the box follows the fact"


@on_the_page
def test_a_fact_deleted_while_its_form_is_open_changes_no_other_fact(lab):
    first, second = _two_facts(lab)
    at = _open_vector_page()
    at.selectbox(key="edit_fact_pick").set_value(second).run()
    _box(at, second).set_value("My draft.")
    lab.facts.delete("maya", second)  # another tab, or the CLI
    _save(at)
    assert not at.exception
    assert _texts(lab) == {first: "The user's name is Maya."}
    assert any("deleted while it was open" in w.value for w in at.warning)
    assert _box(at, second).value == "My draft.", "what was typed is kept"
    assert _events(lab) == ["ADD", "ADD", "DELETE"]


@on_the_page
def test_a_memory_deleted_while_the_delete_form_is_open_takes_no_other_with_it(lab):
    first, second = _two_facts(lab)
    at = _open_vector_page()
    at.selectbox(key="delete_memory_pick").set_value(f"fact:{second}")
    at.checkbox(key="delete_memory_sure").check()
    lab.facts.delete("maya", second)
    at.button[[b.label for b in at.button].index("Delete")].click().run()
    assert not at.exception
    assert _texts(lab) == {first: "The user's name is Maya."}
    assert any("already gone" in w.value for w in at.warning)


@on_the_page
def test_two_tabs_editing_one_fact_do_not_overwrite_each_other_unseen(lab):
    first, _ = _two_facts(lab)
    one, two = _open_vector_page(), _open_vector_page()
    _box(one, first).set_value("Tab one's text.")
    _save(one)
    _box(two, first).set_value("Tab two's text.")
    _save(two)
    assert _texts(lab)[first] == "Tab one's text."
    assert any("Tab one's text" in w.value and "save again" in w.value for w in two.warning)
    assert _box(two, first).value == "Tab two's text.", "the refused text stays in the box"
    _save(two)
    assert _texts(lab)[first] == "Tab two's text."
    assert _events(lab) == ["ADD", "ADD", "EDIT", "EDIT"]


@on_the_page
def test_undo_on_the_page_with_a_damaged_last_log_entry_says_so_and_changes_nothing(lab, raw_redis):
    first, _ = _two_facts(lab)
    lab.facts.edit("maya", first, "The user's name is Maya Svensson.")
    raw_redis.rpush(lab.keys.user("maya").fact_log, b"\xff not json")
    at = _open_vector_page()
    at.button(key="undo_fact").click().run()
    assert not at.exception
    assert any("damaged" in e.value and "nothing was undone" in e.value for e in at.error), [e.value for e in at.error]
    assert _texts(lab)[first] == "The user's name is Maya Svensson."


def test_an_edit_then_a_delete_then_undo_gives_back_the_edited_text_and_where_it_came_from(lab):
    """Undo of a delete used to put the text back with fresh metadata: the messages and session the fact came from,
    and when it was said, were lost (and with them the pages' links to its source)."""
    from memory.llm.base import ExtractedFact

    [added] = lab.facts.remember(
        "maya", "s7", [ExtractedFact("The user lives in Berlin.", slot="location", source_ids=("m-41",))], job="m-42"
    )
    lab.facts.edit("maya", added.fact_id, "The user lives in Berlin, Kreuzberg.")
    [edited] = lab.facts.all("maya")
    lab.facts.delete("maya", added.fact_id)
    lab.facts.undo_last("maya")
    [back] = lab.facts.all("maya")
    assert back.text == "The user lives in Berlin, Kreuzberg."
    assert back.metadata == edited.metadata, "its provenance (source messages, session, times, slot) comes back too"
