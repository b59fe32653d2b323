"""A user's memory is theirs: edit a fact by hand (and undo), export a session or a user, import it back."""

from __future__ import annotations

import json

import pytest

from memory.errors import InputError
from memory.portability import export_session, export_user, import_document, load_document, session_markdown

from .conftest import run_cli


def test_edit_a_fact_by_hand_and_undo_each_kind_of_change(lab):
    lab.chat("maya", "s1", "I live in Gothenburg.", strategy="facts", wait_upkeep=True)
    [fact] = lab.facts.all("maya")
    event = lab.facts.edit("maya", fact.id, "You live in Gothenburg, Sweden.")
    assert (event.event, event.previous) == ("EDIT", "You live in Gothenburg.")
    hits = lab.facts.search("maya", lab.embed(["which country do I live in"])[0], 1, "which country do I live in")
    assert hits[0][0].text == "You live in Gothenburg, Sweden.", "an edit is re-embedded and searchable"
    assert lab.facts.undo_last("maya").text == "You live in Gothenburg."
    with pytest.raises(InputError, match="already undone"):
        lab.facts.undo_last("maya")
    lab.facts.delete("maya", fact.id)
    assert lab.facts.all("maya") == []
    lab.facts.undo_last("maya")
    [back] = lab.facts.all("maya")
    assert (back.id, back.text, back.metadata["slot"]) == (fact.id, "You live in Gothenburg.", "location")
    lab.chat(
        "maya", "s1", "I moved to Malmö.", strategy="facts", wait_upkeep=True
    )  # a statement superseding the older one, undone by hand: the older one is current again
    lab.facts.undo_last("maya")
    assert [r.text for r in lab.facts.all("maya")] == ["You live in Gothenburg."]
    assert [e.event for e in lab.facts.history("maya").items][-4:] == ["ADD", "SUPERSEDE", "UNDO", "UNDO"]


def test_a_users_memory_round_trips_through_export_and_import(lab):
    lab.chat("maya", "s1", "My name is Maya and I live in Malmö.", strategy="hybrid", wait_upkeep=True)
    exported = json.loads(json.dumps(export_user(lab, "maya")))
    assert {f["text"] for f in exported["facts"]} == {"Your name is Maya.", "You live in Malmö."}
    assert lab.forget_user("maya").ok
    counts = import_document(lab, load_document(json.dumps(exported)))
    assert counts == {"facts": 2, "episodes": 1}
    assert import_document(lab, load_document(json.dumps(exported))) == counts  # again: nothing doubles
    assert sorted(r.text for r in lab.facts.all("maya")) == sorted(f["text"] for f in exported["facts"])
    result = lab.chat("maya", "s9", "Where do I live?", strategy="facts")
    assert "Malmö" in result.reply.content
    import_document(lab, load_document(json.dumps(exported)), user_id="maya2")
    assert {r.id for r in lab.facts.all("maya2")}.isdisjoint({r.id for r in lab.facts.all("maya")})


def test_a_session_exports_as_json_and_markdown_and_imports_once(lab):
    lab.chat("maya", "s1", "My name is Maya.", strategy="facts")
    lab.chat("maya", "s1", "What is my name?", strategy="facts")
    export = export_session(lab, "maya", "s1")
    assert [m["role"] for m in export["messages"]] == ["user", "assistant", "user", "assistant"]
    assert len(export["traces"]) == 2 and export["settings"]["strategy"] == "facts"
    markdown = session_markdown(export)
    assert "# Session s1 of maya" in markdown and "My name is Maya." in markdown and "✓ fact" in markdown
    lab.clear_session("maya", "s1")
    assert import_document(lab, load_document(json.dumps(export)))["messages"] == 4
    assert import_document(lab, load_document(json.dumps(export)))["messages"] == 0
    assert [m.content for m in lab.sessions.log("maya", "s1").messages][0] == "My name is Maya."


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b'{"kind": "other"}', b'{"kind": "memlab.user-memory", "version": 99}']
)
def test_import_refuses_what_it_cannot_read(lab, raw):
    with pytest.raises(InputError):
        load_document(raw)


def test_cli_export_and_import(lab, tmp_path):
    lab.chat("maya", "s1", "I'm vegetarian.", strategy="facts")
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    exported = run_cli("export", "--user", "maya", env=env)
    assert exported.code == 0, exported.err
    path = tmp_path / "maya.json"
    path.write_text(exported.out)
    imported = run_cli("import", str(path), "--user", "maya-copy", env=env)
    assert imported.code == 0 and "imported 1 facts" in imported.out, imported.err
    assert [r.text for r in lab.facts.all("maya-copy")] == ["You're vegetarian."]
    markdown = run_cli("export", "--user", "maya", "--session", "s1", "--markdown", env=env)
    assert markdown.code == 0 and markdown.out.startswith("# Session s1 of maya")
    bad = run_cli("import", str(tmp_path / "missing.json"), env=env)
    assert bad.code == 2 and "cannot read" in bad.err
