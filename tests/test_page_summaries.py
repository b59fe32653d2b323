"""The Summaries page through AppTest: the summary, the buffer against the session's threshold, the folds."""

from __future__ import annotations

from .page_app import assert_clean, open_page


def test_summaries_show_folds(app_env):
    at = open_page("pages/chat.py")
    at.selectbox(key="strategy").set_value("summary").run()
    at.number_input(key="cfg_thr").set_value(4).run()
    at.number_input(key="cfg_keep").set_value(2).run()
    for text in ["My name is Alice.", "I live in Berlin.", "It is raining."]:
        at.chat_input[0].set_value(text).run()
    at.switch_page("pages/summaries.py").run()
    assert_clean(at, "Summaries")
    assert at.slider(key="sum_threshold_alice_s1").value == 4, "the gauge compares against the session's threshold"
    assert "Alice" in at.code[0].value
    folds = at.dataframe[-1].value
    assert len(folds) >= 1 and folds["messages folded"].iloc[0] >= 3
    assert list(folds["fold"])[0] == "fold 1"  # numbered on the chart's axis, not timestamps
    assert at.expander[-1].label.startswith(f"Fold {len(folds)} ·")
    folded = at.table[0].value
    assert "My name is Alice." in list(folded["content"]) and list(folded["role"])[0] == "user"


def test_the_gauge_starts_at_the_threshold_the_session_was_run_with(app_env, lab):
    """The stored settings are read back by the engine (``lab.session_settings``), whatever their size: a session
    that folds at 150 messages is compared against 150, not against the default."""
    config = lab.default_config().with_(summary_threshold=150, summary_keep=6)
    lab.chat("alice", "s1", "My name is Alice.", strategy="summary", config=config)
    at = open_page("pages/summaries.py")
    assert_clean(at, "Summaries")
    slider = at.slider(key="sum_threshold_alice_s1")
    assert slider.value == 150 and slider.max >= 150
