"""Import a chat transcript into a user's memory as if it had been chatted, to see what each strategy keeps.

Two formats (a plain ``[{role, content, date?}]`` list, and a LongMemEval
history), read whole and checked before anything is stored: a file that
fails says what and where in one line and leaves no trace.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from memory.errors import InputError
from memory.transfer.transcript import MAX_BYTES, TranscriptError, read_transcript

from .conftest import assert_one_line_error, run_cli

EXCERPT = Path(__file__).parent / "fixtures" / "longmemeval_oracle_excerpt.json"
CHAT = [
    {"role": "user", "content": "I'm Lena and I just started a pottery class on Tuesdays.", "date": "2024-03-05T18:00"},
    {"role": "assistant", "content": "How lovely! Enjoy the class.", "date": "2024-03-05T18:00:05"},
    {"role": "user", "content": "My kiln-owning friend Marek fires my pieces.", "date": "2024-03-09T10:00:00"},
    {"role": "assistant", "content": "That's handy.", "date": "2024-03-09T10:00:04"},
]


def test_a_plain_list_is_one_session_per_day_with_its_dates():
    transcript = read_transcript(json.dumps(CHAT).encode(), 32_000)
    assert [s.id for s in transcript.sessions] == ["import-2024-03-05", "import-2024-03-09"]
    assert [m.role.value for m in transcript.sessions[0].messages] == ["user", "assistant"]
    undated = read_transcript(json.dumps({"messages": [{"role": "user", "content": "I knit."}]}).encode(), 100)
    assert [s.id for s in undated.sessions] == ["import-1"]


def test_a_longmemeval_file_needs_the_question_whose_history_to_import():
    raw = gzip.compress(EXCERPT.read_bytes())
    with pytest.raises(TranscriptError, match="choose one by its question id"):
        read_transcript(raw, 32_000)
    transcript = read_transcript(raw, 32_000, "66f24dbb")
    assert transcript.kind == "longmemeval" and transcript.question == "66f24dbb" and transcript.messages > 0


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[{]", "not valid JSON"),
        (b"[]", "no messages"),
        (b'{"role": "user"}', "expected a list"),
        (b'[{"role": "bot", "content": "hi"}]', "role must be"),
        (b'[{"role": "user", "content": 5}]', "content must be text"),
        (b'[{"role": "user", "content": "  "}]', "is empty"),
        (b'[{"role": "user", "content": "hi", "date": "last tuesday"}]', "is not ISO 8601"),
        (b'[{"role": "user", "content": "hi", "date": 1e300}]', "plausible unix time"),
        (b'[{"role": "user", "content": "\\ud800"}]', "Unicode"),
        (json.dumps([{"role": "user", "content": "x" * 101}]).encode(), "the limit is 100"),
        (b" " * (MAX_BYTES + 1), "larger than"),
    ],
)
def test_bad_input_is_refused_with_one_clear_line(raw, says):
    with pytest.raises(InputError, match=says):
        read_transcript(raw, 100)


def test_the_cli_imports_once_and_refuses_bad_files_without_writing(lab, tmp_path):
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(CHAT))
    first = run_cli("import-chat", str(path), "--user", "lena", "--strategy", "facts", "--json", "--quiet", env=env)
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert (report["messages"], report["stored"], report["strategy"]) == (4, 4, "facts") and report["facts"] >= 2
    again = run_cli("import-chat", str(path), "--user", "lena", "--json", "--quiet", env=env)
    assert json.loads(again.out)["stored"] == 0, "importing again stores nothing twice"
    facts = [r.text for r in lab.facts.all("lena")]
    assert "Your kiln-owning friend Marek fires your pieces." in facts
    reply = lab.chat("lena", "new", "Who fires my pottery pieces?", strategy="facts").reply.content
    assert "Marek" in reply

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(CHAT[:2] + [{"role": "robot", "content": "beep"}]))
    refused = run_cli("import-chat", str(bad), "--user", "nobody", "--quiet", env=env)
    assert_one_line_error(refused, 2, "message 3", "role must be")
    assert lab.sessions.sessions("nobody") == [] and lab.facts.all("nobody") == [], "nothing half-written"
