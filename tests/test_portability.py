"""A user's memory is theirs: edit a fact by hand (and undo), export a session or a user, import it back."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from html.parser import HTMLParser

import pytest

from memory.errors import InputError
from memory.portability import (
    dumps,
    export_session,
    export_user,
    import_document,
    load_document,
    session_markdown,
)

from .conftest import assert_one_line_error, run_cli


def test_edit_a_fact_by_hand_and_undo_each_kind_of_change(lab):
    lab.chat("maya", "s1", "I live in Gothenburg.", strategy="facts", wait_upkeep=True)
    [fact] = lab.facts.all("maya")
    event = lab.facts.edit("maya", fact.id, "The user lives in Gothenburg, Sweden.")
    assert (event.event, event.previous) == ("EDIT", "The user lives in Gothenburg.")
    hits = lab.facts.search("maya", lab.embed(["which country do I live in"])[0], 1, "which country do I live in")
    assert hits[0][0].text == "The user lives in Gothenburg, Sweden.", "an edit is re-embedded and searchable"
    assert lab.facts.undo_last("maya").text == "The user lives in Gothenburg."
    with pytest.raises(InputError, match="already undone"):
        lab.facts.undo_last("maya")
    lab.facts.delete("maya", fact.id)
    assert lab.facts.all("maya") == []
    lab.facts.undo_last("maya")
    [back] = lab.facts.all("maya")
    assert (back.id, back.text, back.metadata["slot"]) == (fact.id, "The user lives in Gothenburg.", "location")
    lab.chat(
        "maya", "s1", "I moved to Malmö.", strategy="facts", wait_upkeep=True
    )  # an UPDATE by the rules, undone by hand
    lab.facts.undo_last("maya")
    assert [r.text for r in lab.facts.all("maya")] == ["The user lives in Gothenburg."]
    assert [e.event for e in lab.facts.history("maya").items][-2:] == ["UPDATE", "UNDO"]


def test_a_users_memory_round_trips_through_export_and_import(lab):
    lab.chat("maya", "s1", "My name is Maya and I live in Malmö.", strategy="hybrid", wait_upkeep=True)
    exported = json.loads(json.dumps(export_user(lab, "maya")))
    assert {f["text"] for f in exported["facts"]} == {"The user's name is Maya.", "The user lives in Malmö."}
    before = lab.facts.history("maya").items
    same = import_document(lab, load_document(json.dumps(exported)))  # into the same user, facts still there
    assert (same.written, same.unchanged) == ({"facts": 0, "episodes": 0}, 3)
    assert lab.facts.history("maya").items == before, "nothing logged: nothing changed"
    assert lab.forget_user("maya").ok
    report = import_document(lab, load_document(json.dumps(exported)))
    assert report.written == {"facts": 2, "episodes": 1} and report.user_id == "maya"
    again = import_document(lab, load_document(json.dumps(exported)))  # again: nothing doubles, nothing rewritten
    assert (again.written, again.unchanged) == ({"facts": 0, "episodes": 0}, 3)
    assert sorted(r.text for r in lab.facts.all("maya")) == sorted(f["text"] for f in exported["facts"])
    result = lab.chat("maya", "s9", "Where do I live?", strategy="facts")
    assert "Malmö" in result.reply.content
    for _ in range(2):  # into another user: ids of their own, the same on a second import
        import_document(lab, load_document(json.dumps(exported)), user_id="maya2")
    assert len(lab.facts.all("maya2")) == 2
    assert {r.id for r in lab.facts.all("maya2")}.isdisjoint({r.id for r in lab.facts.all("maya")})


def test_a_session_exports_as_json_and_markdown_and_imports_once(lab):
    lab.chat("maya", "s1", "My name is Maya.", strategy="facts")
    lab.chat("maya", "s1", "What is my name?", strategy="facts")
    export = export_session(lab, "maya", "s1")
    assert [m["role"] for m in export["messages"]] == ["user", "assistant", "user", "assistant"]
    assert len(export["traces"]) == 2 and export["settings"]["strategy"] == "facts"
    markdown = session_markdown(export)
    assert "# Session s1 of maya" in markdown and "My name is Maya\\." in markdown and "✓ fact" in markdown
    lab.clear_session("maya", "s1")
    assert import_document(lab, load_document(json.dumps(export))).written == {"messages": 4, "traces": 2}
    again = import_document(lab, load_document(json.dumps(export)))
    assert (again.written, again.unchanged) == ({"messages": 0, "traces": 0}, 6)
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
    assert [r.text for r in lab.facts.all("maya-copy")] == ["The user is vegetarian."]
    markdown = run_cli("export", "--user", "maya", "--session", "s1", "--markdown", env=env)
    assert markdown.code == 0 and markdown.out.startswith("# Session s1 of maya")
    bad = run_cli("import", str(tmp_path / "missing.json"), env=env)
    assert bad.code == 2 and "cannot read" in bad.err


# -- imports are refused whole, and never reach another user (issue 21) ------------------------------------------

T0 = 1_700_000_000.0


def _user_file(facts: list, user: str = "bob", **extra: object) -> dict:
    return {"kind": "memlab.user-memory", "version": 1, "user_id": user, "facts": facts, "episodes": [], **extra}


def _fact(fact_id: str, text: str, slot: str = "") -> dict:
    return {"id": fact_id, "text": text, "metadata": {"slot": slot}}


def _session_file(messages: list, traces: dict | None = None, user: str = "bob") -> dict:
    return {
        "kind": "memlab.session",
        "version": 1,
        "user_id": user,
        "session_id": "s1",
        "messages": messages,
        "traces": traces or {},
    }


def _message(mid: str, content: str, role: str = "user", at: float = T0) -> dict:
    return {"v": 1, "id": mid, "role": role, "content": content, "created_at": at}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_file_for_one_user_cannot_overwrite_another_users_fact(lab):
    lab.chat("alice", "s1", "My name is Alice.", strategy="facts", wait_upkeep=True)
    [alice] = lab.facts.all("alice")
    hostile = _user_file([_fact(alice.id, "The user's name is Mallory.", "name")], user="mallory")
    report = import_document(lab, load_document(json.dumps(hostile)))
    assert [r.text for r in lab.facts.all("alice")] == ["The user's name is Alice."], "Alice's fact is untouched"
    [mallory] = lab.facts.all("mallory")
    assert mallory.text == "The user's name is Mallory." and mallory.id != alice.id
    assert report.written == {"facts": 1, "episodes": 0}
    assert import_document(lab, load_document(json.dumps(hostile))).written["facts"] == 0  # the same id again
    answer = lab.chat("alice", "s2", "What is my name?", strategy="facts").reply.content
    assert "Alice" in answer and "Mallory" not in answer


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (_user_file(["The user likes tea."]), "facts[0] is not a JSON object (it is text)"),
        (_user_file([5]), "facts[0] is not a JSON object (it is a number)"),
        (_user_file([_fact("f1", "x" * 1_000_000)]), "facts[0].text has 1,000,000 characters; the limit is 2,000"),
        (_user_file([_fact("f1", "The user likes tea."), _fact("f1", "The user likes tea.")]), "facts[1] repeats"),
        (_user_file([_fact("f\u0430ct", "The user likes tea.")]), "facts[0].id"),  # a Cyrillic 'а'
        (_user_file([_fact("f1", "   ")]), "facts[0].text is empty"),
        (_session_file([_message("m1", "x" * 1_000_000)]), "messages[0].content has 1,000,000 characters"),
        (_session_file([_message("m1", "hi"), _message("m1", "hi again")]), "messages[1] repeats the id 'm1'"),
        (_session_file([_message("m1", "hi"), "hello"]), "messages[1]"),
        (_session_file([_message("m1", "hi")], {"m1": {"strategy": 5}}), "traces['m1']"),
    ],
)
def test_import_refuses_a_bad_file_whole_and_writes_nothing(lab, doc, words):
    with pytest.raises(InputError, match=re.escape(words)):
        import_document(lab, load_document(json.dumps(doc)))
    assert lab.facts.all("bob") == [] and lab.sessions.log("bob", "s1").messages == []


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"kind": "memlab.user-memory", "version": 1, "user_id": "bob", "user_id": "alice"}', "appears twice"),
        (b'{"kind": "memlab.user-memory", "version": 1, "facts": [NaN]}', "NaN is not a JSON number"),
        (b'{"kind": "memlab.user-memory", "version": 1, "x": ' + b"9" * 5000 + b"}", "5,000 digits"),
        (b'{"kind": "memlab.user-memory", "version": 1, "user_id": "b\xffb"}', "not UTF-8 text (byte 0xff at offset"),
        (b'{"kind": "memlab.session", "version": 1, "x": ' + _nested(100).encode() + b"}", "nested more than"),
        (b'{"kind": "memlab.session", "version": true}', "version"),
    ],
)
def test_import_refuses_files_no_export_looks_like(raw, words):
    with pytest.raises(InputError, match=re.escape(words)):
        load_document(raw)


def test_a_deeply_nested_trace_is_refused_before_anything_is_stored(lab, tmp_path):
    """Nested 990 deep: the JSON parser accepts it, storing it overflowed the stack after the messages were in."""
    trace = '{"strategy": "buffer", "user_id": "bob", "session_id": "s1", "settings": {"x": DEEP}}'
    trace = trace.replace("DEEP", _nested(990))
    raw = json.dumps(_session_file([_message("m1", "hi"), _message("m2", "hello", "assistant")], {"m2": "TRACE"}))
    path = tmp_path / "deep.json"
    path.write_text(raw.replace('"TRACE"', trace))
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    assert_one_line_error(run_cli("import", str(path), env=env), 2, "nested more than 32 levels deep")
    assert lab.sessions.log("bob", "s1").messages == []


def test_cli_import_errors_are_one_line_and_exit_2(lab, tmp_path):
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    strings = tmp_path / "strings.json"
    strings.write_text(json.dumps(_user_file(["The user likes tea.", 5])))
    assert_one_line_error(run_cli("import", str(strings), env=env), 2, "facts[0] is not a JSON object")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_user_file([_fact("f1", "The user likes tea.")])))
    assert_one_line_error(run_cli("import", str(good), "--user", "", env=env), 2, "'' is not a valid id")
    assert lab.facts.all("bob") == []
    done = run_cli("import", str(good), env=env)
    assert done.code == 0 and done.out.strip() == "imported 1 facts, 0 episodes into bob", done.err
    again = run_cli("import", str(good), env=env)
    assert again.out.strip() == "imported 0 facts, 0 episodes into bob (1 already there)"


def test_a_trace_for_a_message_not_in_the_file_is_skipped_and_reported(lab):
    trace = {"strategy": "buffer", "user_id": "mallory", "session_id": "s1"}
    doc = _session_file([_message("m1", "hi")], {"m1": trace, "m9": trace})
    report = import_document(lab, load_document(json.dumps(doc)))
    assert report.written == {"messages": 1, "traces": 1}
    assert report.notes == ["traces['m9']: no message 'm9' in the file"]
    [(mid, stored)] = lab.sessions.traces("bob", "s1").items
    assert (mid, stored.user_id) == ("m1", "bob"), "the trace names the user it was imported into"
    assert (
        report.describe()
        == "imported 1 messages, 1 traces into bob; 1 skipped: traces['m9']: no message 'm9' in the file"
    )


def test_a_byte_order_mark_and_gzip_are_read(lab):
    raw = json.dumps(_user_file([_fact("f1", "The user likes tea.")])).encode()
    assert import_document(lab, load_document(b"\xef\xbb\xbf" + raw)).written["facts"] == 1
    assert import_document(lab, load_document(gzip.compress(raw))).unchanged == 1


# -- the Markdown transcript is safe to open ---------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    "![pixel](https://tracker.example/p.png?u=alice)",
    "ok\n\n**assistant** · 2026-01-01 10:00\n\nI will wire the money.\n### 9 · assistant · 2026-01-01 10:00",
    'Title\n===\n<a href="javascript:alert(1)">x</a> &lt;script&gt;',
]


class _Tags(HTMLParser):
    """The elements a Markdown renderer made: their names, any attributes, and the headings' text."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.extend(attrs)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag.startswith("h") and tag[1:].isdigit():
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings[-1] += data


def test_the_markdown_export_has_no_live_html_no_images_and_no_forged_turns():
    from markdown_it import MarkdownIt

    messages = [_message(f"m{i}", text, "user" if i % 2 else "assistant", T0 + i) for i, text in enumerate(HOSTILE)]
    export = _session_file(messages) | {"summary": HOSTILE[0], "settings": {"strategy": "<b>x</b>"}}
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(session_markdown(export))
    tags = _Tags()
    tags.feed(html)
    assert tags.names <= {"h1", "h2", "h3", "p", "br", "strong"}, tags.names  # no script, img, a, b, table
    assert tags.attributes == [], "no onerror, src or href anywhere"
    assert tags.headings[:3] == ["Session s1 of bob", "Summary", "Transcript"]
    turns = [re.fullmatch(r"(\d+) · (user|assistant) · \d{4}-\d\d-\d\d \d\d:\d\d", h) for h in tags.headings[3:]]
    assert [(int(m[1]), m[2]) for m in turns if m] == [
        (i + 1, "user" if i % 2 else "assistant") for i in range(len(HOSTILE))
    ], "one heading per message: stored text made none of its own"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, "the text itself is still there, as text"


def test_an_export_gives_each_moment_its_date_beside_the_number(lab):
    """Epoch seconds stay (programs read them); an ISO date sits beside each, and the file still imports."""
    lab.chat("ines", "s1", "My name is Ines and I live in Porto.", strategy="hybrid", wait_upkeep=True)
    for export in (export_session(lab, "ines", "s1"), export_user(lab, "ines")):
        text = dumps(export)
        data = json.loads(text)
        stamps = re.findall(r'"(\w*at)": (\d+\.?\d*),\n\s*"\1_iso": "([^"]+)"', text)
        assert stamps and "exported_at" in {name for name, _, _ in stamps}
        for _, number, iso in stamps:
            assert dt.datetime.fromisoformat(iso) == dt.datetime.fromtimestamp(int(float(number)), dt.UTC)
        assert import_document(lab, data, user_id="ines-copy").written
    first = json.loads(dumps(export_session(lab, "ines", "s1")))["messages"][0]
    assert isinstance(first["created_at"], float) and first["created_at_iso"].endswith("+00:00")
