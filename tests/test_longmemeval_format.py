"""LongMemEval files load the same plain or gzip, sessions in date order, with clear errors for other files."""

from __future__ import annotations

import gzip
import json

import pytest

from memory.eval.longmemeval import LongMemEvalError, is_longmemeval, load_longmemeval, parse_longmemeval


def _question(**over: object) -> dict[str, object]:
    q: dict[str, object] = {
        "question_id": "q1",
        "question_type": "knowledge-update",
        "question": "How many bikes do I have?",
        "answer": 4,
        "question_date": "2023/06/01 (Thu) 10:00",
        "haystack_session_ids": ["late", "early"],
        "haystack_dates": ["2023/05/20 (Sat) 02:21", "2023/05/01 (Mon) 09:00"],
        "haystack_sessions": [
            [{"role": "user", "content": "I bought a fourth bike.", "has_answer": True}],
            [
                {"role": "user", "content": "I have three bikes.", "has_answer": True},
                {"role": "assistant", "content": "Nice collection!"},
            ],
        ],
        "answer_session_ids": ["late", "early"],
    }
    q.update(over)
    return q


def test_plain_and_gzip_read_the_same(tmp_path):
    raw = json.dumps([_question(), _question(question_id="q2_abs", answer_session_ids=[])]).encode()
    plain, packed = tmp_path / "s.json", tmp_path / "s.json.gz"
    plain.write_bytes(raw)
    packed.write_bytes(gzip.compress(raw))
    assert load_longmemeval(plain) == load_longmemeval(packed)
    q, abstain = load_longmemeval(packed)
    assert [s.id for s in q.sessions] == ["early", "late"]  # sorted by date, not file order
    assert q.answer == "4" and not q.abstention and q.kind == "knowledge-update"
    assert abstain.abstention and abstain.kind == "abstention" and abstain.evidence_sessions == ()
    assert q.evidence_turns() == (("early", 0), ("late", 0))
    messages = q.messages(q.sessions[0])
    assert [m.role.value for m in messages] == ["user", "assistant"]
    assert messages[0].created_at < messages[1].created_at < q.messages(q.sessions[1])[0].created_at


def test_format_detection():
    assert is_longmemeval([_question()])
    assert not is_longmemeval([{"conversation": {}}])
    assert not is_longmemeval({"question_id": "x"})


@pytest.mark.parametrize(
    "data, words",
    [
        ([], "list"),
        ([_question(haystack_dates=["2023/05/20 (Sat) 02:21"])], "differ in length"),
        ([_question(haystack_sessions=["text", []])], "session 'late': turns is not a list"),
        ([_question(haystack_sessions=[[{"role": "system", "content": "x"}], []])], "expected one of user, assistant"),
        ([{k: v for k, v in _question().items() if k != "question"}], "'question'"),
        (["a string"], "not a JSON object"),
    ],
)
def test_bad_files_are_refused_with_the_reason(data, words):
    with pytest.raises(LongMemEvalError, match=words):
        parse_longmemeval(data)


def test_damaged_gzip_and_bad_json(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(gzip.compress(b"[1, 2]")[:-6])
    with pytest.raises(LongMemEvalError, match="gzip"):
        load_longmemeval(bad)
    with pytest.raises(LongMemEvalError, match="JSON"):
        load_longmemeval(b"[{")
