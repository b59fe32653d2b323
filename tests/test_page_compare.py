"""The Compare page through AppTest: a run's context and answers, a bad upload."""

from __future__ import annotations

import json

import pytest

from .page_app import BAD_UPLOADS, assert_clean, errors_shown, open_page, upload


def test_compare_runs_and_reports_context_and_answers(app_env):
    at = open_page("pages/compare.py")
    at.multiselect(key="cmp_strategies").set_value(["buffer", "facts"]).run()
    at.button(key="cmp_run").click().run()
    assert_clean(at, "Compare strategies")
    metrics = {m.label: m.value for m in at.metric}
    # facts answers 4 of the 5 probes: the relevance floor refuses "Which programming language do I use?" of
    # "I switched to Rust" (docs/answers.md, the floor's cost); buffer keeps nothing across sessions
    assert metrics["facts: answered"] == "80%" and metrics["buffer: answered"] == "0%"
    assert not any(m.delta for m in at.metric), "no arrow: reaching the context is not a change"
    reached = [c.value for c in at.caption if c.value.startswith("reached the context")]
    assert reached == ["reached the context: 0%", "reached the context: 100%"]
    result = at.session_state["cmp_result"]
    assert {r["strategy"] for r in result["rows"]} == {"buffer", "facts"}
    json.dumps(result)  # exportable


@pytest.mark.parametrize(
    ("raw", "words"),
    [*BAD_UPLOADS, pytest.param(b'{"turns": ["My name is Ada."]}', "turns[0] is not a JSON object", id="turn-text")],
)
def test_a_bad_scenario_upload_is_a_clear_error_on_compare(app_env, raw, words):
    at = open_page("pages/compare.py")
    at.radio(key="cmp_source").set_value("Upload JSON").run()
    upload(at, "cmp_upload", raw)
    assert words in errors_shown(at)
    assert at.button(key="cmp_run").disabled
