"""The Recall Lab through AppTest: a run, the drill-down into a question, answers, a bad upload."""

from __future__ import annotations

import pytest

from .page_app import BAD_UPLOADS, assert_clean, errors_shown, open_page, picker, upload


def test_recall_lab_runs_and_drills_into_a_question(app_env):
    at = open_page("pages/recall_lab.py")
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "11" and metrics["R@5"] == "100.0%"
    at.radio(key="rl_show").set_value("all").run()
    picker(at).set_value(0).run()
    assert not at.exception
    assert at.code[0].value == "What kind of dog did Nadia adopt?"
    evidence = next(df.value for df in at.dataframe if "evidence" in df.value.columns)
    assert list(evidence["evidence"]) == ["D1:1"] and "greyhound" in evidence["text"].iloc[0]
    assert not any("Related words" in m.value for m in at.markdown)
    picker(at).set_value(1).run()  # "Which race is Tom training for?": the sample's turns say "marathon"
    related = [m.value for m in at.markdown if "Related words" in m.value]
    assert len(related) == 1 and "marathon (0." in related[0], related
    picker(at).set_value(3).run()
    at.selectbox(key="rl_unit").set_value("session").run()
    at.button(key="rl_run").click().run()  # a second run: the question shown is the one the box names
    box = picker(at)
    assert box.key.startswith("rl_pick_2-") and at.code[0].value in box.options[box.index]


def test_recall_lab_answers_questions_and_says_why_evidence_was_missed(app_env):
    at = open_page("pages/recall_lab.py")
    at.multiselect(key="rl_k").set_value([1]).run()
    at.toggle(key="rl_answers").set_value(True).run()
    at.number_input(key="rl_answer_k").set_value(3).run()
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Answer token F1 (top 3 turns)"].endswith("%") and metrics["Judge: correct"] == "—"
    at.radio(key="rl_show").set_value("all").run()
    whys = []
    for i in range(len(picker(at).options)):
        picker(at).set_value(i).run()
        evidence = next(df.value for df in at.dataframe if "why" in df.value.columns)
        whys += list(evidence["why"])
        for _, row in evidence.iterrows():  # each ranked evidence turn's score, part by part
            if row["rank"] is not None and row["rank"] == row["rank"]:
                parts = row["match (fused + neighbour, 0-1)"] + row["+ session"] + row["+ speaker"] + row["+ date"]
                assert abs(parts - row["score"]) < 1e-3 and -1 <= row["cosine"] <= 1
        assert any("token F1" in md.value for md in at.markdown)
    assert any(w.startswith("retrieved (rank 1") for w in whys)
    assert any(w.startswith("ranked below the cut-off") for w in whys), whys
    assert all(" at rank 1)" in w for w in whys if w.startswith("ranked below")), whys  # the score it had to beat


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        *BAD_UPLOADS,
        pytest.param(b'[{"conversation": {"session_1": ["Hi"]}}]', "session_1[0] is not a JSON object", id="turn"),
        pytest.param(b'[{"conversation": {}, "qa": ["Who?"]}]', "qa[0] is not a JSON object", id="question"),
        pytest.param(
            b'[{"conversation": {}, "qa": [{"question": "Who?", "category": "x"}]}]', "category is not a number", id="x"
        ),
        pytest.param(
            b'[{"conversation": {}, "qa": [{"question": "Who?", "category": Infinity}]}]', "Infinity", id="inf"
        ),
    ],
)
def test_a_bad_data_set_upload_is_a_clear_error_on_recall_lab(app_env, raw, words):
    at = open_page("pages/recall_lab.py")
    at.selectbox(key="rl_source").set_value("Upload a LoCoMo or LongMemEval JSON file").run()
    upload(at, "rl_upload", raw)
    assert words in errors_shown(at)
    assert at.button(key="rl_run").disabled
