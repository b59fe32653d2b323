"""The Compare page's real conversations, through Streamlit's AppTest against real backends: LongMemEval
questions answered through each strategy side by side, and a pasted chat imported into a user's memory."""

from __future__ import annotations

import json
from pathlib import Path

from .page_app import assert_clean, open_page

EXCERPT = Path(__file__).parent / "fixtures" / "longmemeval_oracle_excerpt.json"


def test_longmemeval_answers_side_by_side_per_strategy(app_env):
    at = open_page("pages/compare.py")
    at.text_input(key="lme_path").set_value(str(EXCERPT))
    at.multiselect(key="lme_kinds").set_value(["single-session-user", "abstention"])
    at.number_input(key="lme_limit").set_value(1)
    at.multiselect(key="lme_strategies").set_value(["buffer", "facts"]).run()
    at.button(key="lme_run").click().run()
    assert_clean(at, "Compare strategies")
    result = at.session_state["lme_result"]
    assert result["strategies"] == ["buffer", "facts"] and result["n_questions"] == 2
    table = next(df.value for df in at.dataframe if "facts" in df.value.columns and "buffer" in df.value.columns)
    assert set(table.index) == {"overall", "single-session-user", "abstention"}
    assert len(result["questions"]) == 4


def test_a_pasted_chat_is_imported_and_a_bad_one_refused(app_env):
    chat = [
        {"role": "user", "content": "I'm Ravi and I volunteer at the animal shelter on Saturdays."},
        {"role": "assistant", "content": "That's wonderful."},
    ]
    at = open_page("pages/compare.py")
    at.text_area(key="imp_paste").set_value(json.dumps(chat))
    at.text_input(key="imp_user").set_value("ravi")
    at.selectbox(key="imp_s").set_value("facts").run()
    at.button(key="imp_run").click().run()
    assert_clean(at, "Compare strategies")
    done = at.session_state["imp_result"]
    assert (done["user"], done["messages"], done["strategy"]) == ("ravi", 2, "facts") and done["facts"] == 2
    assert any("Imported 2 messages" in s.value for s in at.success)

    at.text_area(key="imp_paste").set_value('[{"role": "user", "content": "I like kites.", "date": "soon"}]')
    at.text_input(key="imp_user").set_value("kite").run()
    at.button(key="imp_run").click().run()
    assert not at.exception and any("date 'soon' is not" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.success, "the last import's success is not shown for a failed one"
