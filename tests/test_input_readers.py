"""Files people hand Memory Lab (scenarios, LoCoMo and LongMemEval data, imports): refused whole, in one line.

Whatever the bytes, a reader returns the document or raises ``InputError``
naming what is wrong: never a RecursionError, UnicodeDecodeError,
AttributeError or OverflowError (a traceback on a page, exit 70 on the CLI).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.errors import InputError
from memory.eval.compare import ScenarioError, load_scenario, parse_scenario
from memory.eval.locomo import DatasetError, load_locomo
from memory.eval.longmemeval import LongMemEvalError, load_longmemeval
from memory.transfer.json_input import read_json, read_source
from memory.transfer.portability import load_document, read_document

from .conftest import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "recall_sample.json"
SCENARIO = ROOT / "scenarios" / "name_and_stack.json"


def _locomo(**over: Any) -> list[dict[str, Any]]:
    """A one-sample LoCoMo-format file, written for this test."""
    sample: dict[str, Any] = {
        "sample_id": "s-1",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Bo",
            "session_1_date_time": "9:15 am on 3 March, 2024",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a greyhound."},
                {"speaker": "Bo", "dia_id": "D1:2", "text": "Lovely!"},
            ],
        },
        "qa": [{"question": "What dog did Ana adopt?", "answer": "a greyhound", "evidence": ["D1:1"], "category": 4}],
    }
    sample.update(over)
    return [sample]


def _conversation(**over: Any) -> list[dict[str, Any]]:
    """The sample with fields of its conversation replaced (dates, sessions)."""
    return _locomo(conversation=_locomo()[0]["conversation"] | over)


def _turn(dia_id: str) -> dict[str, Any]:
    return {"speaker": "Ana", "dia_id": dia_id, "text": "Hi."}


def _qa(**over: Any) -> list[dict[str, Any]]:
    return _locomo(qa=[{"question": "What dog?", "answer": "a greyhound", "evidence": ["D1:1"], "category": 4} | over])


def _lme(**over: Any) -> list[dict[str, Any]]:
    question: dict[str, Any] = {
        "question_id": "q1",
        "question_type": "single-session-user",
        "question": "What dog did I adopt?",
        "answer": "a greyhound",
        "question_date": "2023/06/01 (Thu) 10:00",
        "haystack_session_ids": ["a1"],
        "haystack_dates": ["2023/05/20 (Sat) 02:21"],
        "haystack_sessions": [[{"role": "user", "content": "I adopted a greyhound.", "has_answer": True}]],
        "answer_session_ids": ["a1"],
    }
    question.update(over)
    return [question]


def _scenario(**over: Any) -> dict[str, Any]:
    return {"name": "t", "turns": [{"user": "My name is Ada."}, {"user": "Name?", "expect": ["Ada"]}]} | over


READERS: dict[str, tuple[Callable[[bytes], Any], type[InputError]]] = {
    "scenario": (load_scenario, ScenarioError),
    "locomo": (load_locomo, DatasetError),
    "longmemeval": (load_longmemeval, LongMemEvalError),
    "import": (load_document, InputError),
}

# What each reader was seen to let escape (issue 21), and what it must say instead.
HOSTILE_BYTES = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels deep", id="deep-nesting"),
    pytest.param(b'{"name": "caf\xe9"}', "is not UTF-8 text (byte 0xe9 at offset 13)", id="latin-1"),
    pytest.param(b"\xff\xfe[\x00]\x00", "is not UTF-8 text (byte 0xff at offset 0)", id="utf-16"),
    pytest.param(b"[" + b"7" * 5000 + b"]", "a number with 5,000 digits is out of range", id="5000-digits"),
    pytest.param(b"[1e999]", "the number 1e999 is out of range", id="1e999"),
    pytest.param(b"[Infinity]", "Infinity is not a JSON number", id="infinity"),
    pytest.param(b'{"a": 1, "a": 2}', "the key 'a' appears twice", id="duplicate-key"),
    pytest.param(b"", "not valid JSON", id="empty"),
]


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize(("raw", "words"), HOSTILE_BYTES)
def test_hostile_bytes_are_refused_in_one_line(reader, raw, words):
    load, error = READERS[reader]
    with pytest.raises(error) as caught:
        load(raw)
    message = str(caught.value)
    assert words in message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize(
    ("reader", "path"),
    [
        ("scenario", ("turns", 0, "user")),
        ("locomo", (0, "conversation", "session_1", 0, "text")),
        ("longmemeval", (0, "haystack_sessions", 0, 0, "content")),
        ("import", ("facts", 0, "text")),
    ],
)
def test_text_that_is_not_valid_unicode_is_refused(reader, path):
    """A JSON escape of half a surrogate pair decodes to text no store can hold."""
    raw = json.dumps(_replaced(VALID[reader], path, "MARK")).replace("MARK", "\\ud800").encode()
    with pytest.raises(InputError, match="is not valid Unicode"):
        _read(reader, raw)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_scenario(turns=["My name is Ada."]), "turns[0] is not a JSON object (it is text)"),
        (_scenario(turns=[{"user": 5}]), "turns[0].user is not a string (it is a number)"),
        (_scenario(turns=[{"user": "x" * 32_001}]), "turns[0].user has 32,001 characters; the limit is 32,000"),
        (_scenario(turns=[{"user": "Hi", "expect": "Ada"}]), "turns[0].expect is not a list (it is text)"),
        (_scenario(turns=[{"user": "Hi", "session": "x" * 64}]), "turns[0].session has 64 characters"),
        (_scenario(turns=[{"user": "Hi", "session": "2\n"}]), "turns[0].session, as the session id"),
        (_scenario(turns=[{"user": "Hi", "session": True}]), "turns[0].session is not a string (it is true/false)"),
        (_scenario(turns=[]), "turns is an empty list"),
        ([], "the scenario is not a JSON object (it is a list)"),
    ],
)
def test_a_scenario_is_checked_field_by_field(data, words):
    with pytest.raises(ScenarioError, match=re.escape(words)):
        load_scenario(json.dumps(data).encode())


def test_a_misspelt_key_in_a_scenario_is_refused_not_read_as_an_empty_part():
    expected = {"name": "t", "turns": [{"user": "My name is Ada."}, {"user": "Name?", "expected": ["Ada"]}]}
    with pytest.raises(ScenarioError, match=re.escape("turns[1] has unknown key(s) 'expected'; expected only user")):
        parse_scenario(expected)
    with pytest.raises(ScenarioError, match=re.escape("the scenario has unknown key(s) 'turn'")):
        parse_scenario(_scenario(turn=[]))


def test_a_scenario_reads_with_numbers_for_sessions_and_the_chats_own_limit():
    scenario = load_scenario(json.dumps(_scenario(turns=[{"user": "Hi", "session": 2}])).encode())
    assert scenario.turns[0].session == "2"
    with pytest.raises(ScenarioError, match="the limit is 10"):
        load_scenario(json.dumps(_scenario()).encode(), max_message_chars=10)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_locomo(conversation={"session_1": ["Hi there"]}), "conversation.session_1[0] is not a JSON object"),
        (_locomo(qa=["What dog?"]), "sample 0.qa[0] is not a JSON object (it is text)"),
        (_qa(category="x"), "sample 0.qa[0].category is not a number (it is text)"),
        (_qa(category=7), "sample 0.qa[0].category is 7; expected 1 to 5"),
        (_qa(category=2.5), "sample 0.qa[0].category is 2.5; expected a whole number"),
        (_qa(evidence=[["D1:1"]]), "sample 0.qa[0].evidence[0] is not a string (it is a list)"),
        (_qa(answer={"a": 1}), "sample 0.qa[0].answer is not a string (it is an object)"),
        (_locomo(conversation={"session_" + "9" * 5000: []}), "sessions are numbered up to 1,000"),
        (_locomo(observation={"s1": {"Ana": [["a fact"]]}}), "observation.s1.Ana[0] is not a [fact, evidence] pair"),
        ([_locomo()[0], "not a sample"], "sample 1 is not a JSON object"),
        (
            _conversation(session_1_date_time="9:15 am on 3 March, 1901"),
            "sample 0.conversation.session_1_date_time '9:15 am on 3 March, 1901' is outside 1970 to 3000",
        ),
        (_conversation(session_1_date_time="9:15 am on 3 March, 3500"), "'9:15 am on 3 March, 3500' is outside"),
        (
            _conversation(session_1=[_turn("D1:1"), _turn("D1:1")]),
            "sample 0.conversation.session_1[1] repeats the dia_id 'D1:1' of sample 0.conversation.session_1[0]",
        ),
        (
            _conversation(session_2=[_turn("D1:01")], session_2_date_time="9:15 am on 4 March, 2024"),
            "session_2[0] repeats the dia_id 'D1:1' of sample 0.conversation.session_1[0]",
        ),
    ],
)
def test_a_locomo_file_is_checked_field_by_field(data, words):
    with pytest.raises(DatasetError, match=re.escape(words)):
        load_locomo(json.dumps(data).encode())


def test_a_longmemeval_file_given_as_locomo_is_named_as_such():
    with pytest.raises(DatasetError, match="sample 0 has no 'conversation': it is a LongMemEval question"):
        load_locomo(json.dumps(_lme()).encode())


def test_locomo_infinity_as_a_category_is_refused_not_an_overflow():
    with pytest.raises(DatasetError, match="Infinity is not a JSON number"):
        load_locomo(json.dumps(_qa(category=float("inf"))).encode())  # json.dumps writes Infinity


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_lme(haystack_sessions=[["I adopted a greyhound."]]), "session 'a1', turn 0 is not a JSON object"),
        (["a question"], "question 0 is not a JSON object (it is text)"),
        (_lme(question_id="q\u04271"), "question 0: question_id 'qЧ1' is not a valid id"),  # a Cyrillic letter
        (_lme(question_type="x"), "question_type is 'x'; expected one of"),
        (_lme(answer=[4]), "answer is not a string (it is a list)"),
        (_lme(haystack_sessions=[[{"role": "user", "content": "x", "has_answer": "yes"}]]), "has_answer is not"),
        (_lme(answer_session_ids="a1"), "answer_session_ids is not a list (it is text)"),
        (_lme() + _lme(), "question 1 repeats the question_id 'q1' of question 0"),
        (_lme(haystack_dates=["1960/05/20 (Fri) 02:21"]), "haystack_dates[0] '1960/05/20 (Fri) 02:21' is outside"),
        (_lme(haystack_dates=["9999/05/20 (Thu) 02:21"]), "haystack_dates[0] '9999/05/20 (Thu) 02:21' is outside"),
    ],
)
def test_a_longmemeval_file_is_checked_field_by_field(data, words):
    with pytest.raises(LongMemEvalError, match=re.escape(words)):
        load_longmemeval(json.dumps(data).encode())


def test_the_real_data_sets_still_read(tmp_path):
    assert [c.sample_id for c in load_locomo(SAMPLE)] == ["sample-1", "sample-2"]
    assert load_scenario(SCENARIO).probes > 0
    [q] = load_longmemeval(gzip.compress(json.dumps(_lme(answer=4)).encode()))
    assert q.answer == "4" and q.evidence_turns() == (("a1", 0),)
    assert load_locomo(b"\xef\xbb\xbf" + json.dumps(_locomo()).encode())[0].speaker_a == "Ana"  # a BOM is fine


def test_a_gzip_bomb_stops_at_the_limit():
    """Half a megabyte that unpacks to 1 GB (128 gzip members of 8 MB each): refused once the limit is passed."""
    bomb = gzip.compress(b" " * (8 << 20), compresslevel=9) * 128
    assert len(bomb) < 2 << 20
    with pytest.raises(InputError, match="unpacks to more than 10 MB"):
        read_source(bomb, "the data set", 10 * 1024 * 1024)
    with pytest.raises(LongMemEvalError, match="unpacks to more than 320 MB"):
        load_longmemeval(bomb)


def test_damaged_and_concatenated_gzip():
    raw = json.dumps(_lme()).encode()
    packed = gzip.compress(raw)
    with pytest.raises(InputError, match="the gzip data ends early"):
        read_source(packed[: len(packed) // 2], "the file", 1 << 20)
    with pytest.raises(InputError, match="bytes that are not gzip follow"):
        read_source(packed + b"junk", "the file", 1 << 20)
    assert read_source(gzip.compress(raw[:10]) + gzip.compress(raw[10:]), "the file", 1 << 20) == raw


def test_a_file_too_large_is_refused_without_being_read_whole(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # 200 MB, sparse: nothing is written to disk
        f.truncate(200 * 1024 * 1024)
    with pytest.raises(DatasetError, match="the data set is larger than 64 MB"):
        load_locomo(huge)
    with pytest.raises(InputError, match="larger than 1 MB"):
        read_json(Path("/dev/zero"), "the file", 1024 * 1024)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path)  # a folder


def test_eval_on_a_bad_file_exits_2_with_one_line(lab, tmp_path):
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    bad = tmp_path / "bad.json"
    for data, words in [
        (json.dumps(_qa(category="x")), "category is not a number"),
        ("[" * 100_000, "nested more than 32 levels deep"),
        (json.dumps(_locomo(conversation={"session_1": ["Hi"]})), "is not a JSON object (it is text)"),
        (json.dumps(_conversation(session_1_date_time="9:15 am on 3 March, 1901")), "is outside 1970 to 3000"),
        (json.dumps(_conversation(session_1=[_turn("D1:1"), _turn("D1:1")])), "repeats the dia_id 'D1:1'"),
    ]:
        bad.write_text(data)
        assert_one_line_error(run_cli("eval", "--data", str(bad), "--quiet", env=env), 2, words)


# -- property: whatever the bytes, depth or JSON types, a reader reads or says why --------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
VALID: dict[str, Any] = {
    "scenario": _scenario(),
    "locomo": _locomo(),
    "longmemeval": _lme(),
    "import": {
        "kind": "memlab.user-memory",
        "version": 1,
        "user_id": "bob",
        "facts": [{"id": "f1", "text": "The user likes tea.", "metadata": {"slot": ""}}],
        "episodes": [{"id": "bob/s1", "text": "Tea talk.", "metadata": {"session_id": "s1"}}],
    },
}


def _read(reader: str, raw: bytes) -> Any:
    load, _ = READERS[reader]
    value = load(raw)
    return read_document(value, 32_000) if reader == "import" else value


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (to put something else there)."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copy


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(reader=st.sampled_from(list(READERS)), raw=st.binary(max_size=200))
def test_property_arbitrary_bytes_read_or_raise_input_error(reader, raw):
    try:
        _read(reader, raw)
    except InputError:
        pass


@FAST
@given(reader=st.sampled_from(list(READERS)), value=json_values, depth=st.integers(0, 3000))
def test_property_any_json_at_any_depth_reads_or_raises_input_error(reader, value, depth):
    raw = ("[" * depth + json.dumps(value) + "]" * depth).encode()
    try:
        _read(reader, raw)
    except InputError:
        pass


@FAST
@given(reader=st.sampled_from(list(READERS)), data=st.data(), value=json_values)
def test_property_a_valid_document_with_one_field_replaced_reads_or_raises_input_error(reader, data, value):
    doc = VALID[reader]
    assert _read(reader, json.dumps(doc).encode()) is not None  # the document itself reads
    path = data.draw(st.sampled_from(_paths(doc)))
    try:
        _read(reader, json.dumps(_replaced(doc, path, value)).encode())
    except InputError:
        pass
