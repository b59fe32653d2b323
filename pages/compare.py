"""Compare: one scripted conversation through several strategies, side by side."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from memory import STRATEGIES
from memory.eval.compare import ScenarioError, load_scenario, run_comparison, shipped_scenarios
from memory.transfer.csv_export import to_csv
from ui.answer_runs import import_chat, longmemeval_answers
from ui.charts import STRATEGY_COLORS, per_turn, score_chart
from ui.layout import page
from ui.state import guarded, md_text, progress_bar, warm_model
from ui.tables import text_table

ctx = page("pages/compare.py", uses_user=False)
lab = ctx.lab
st.caption(
    "Run a scripted conversation — facts planted early, distractor turns, then questions — through each "
    "strategy in its own fresh user. Each question is judged twice: did the planted fact **reach the context**, "
    "and did the reply **answer correctly** (the expected words, and not a value the user has since changed)."
)

scenarios = shipped_scenarios()
c1, c2 = st.columns([2, 3])
source = c1.radio("Conversation", ["Shipped scenario", "Upload JSON"], horizontal=True, key="cmp_source")
scenario = None
if source == "Shipped scenario":
    name = c1.selectbox("Scenario", list(scenarios), format_func=lambda n: scenarios[n].name, key="cmp_scenario")
    scenario = scenarios[name]
else:
    upload = c1.file_uploader("Scenario file (.json)", type=["json"], key="cmp_upload")
    c1.caption(
        'Format: `{"name": "...", "turns": [{"user": "My name is Ada."}, '
        '{"user": "What is my name?", "expect": ["Ada"], "session": "2"}]}`'
    )
    if upload is not None:
        try:
            scenario = load_scenario(upload.getvalue(), lab.settings.max_message_chars)
        except ScenarioError as exc:
            st.error(f"That file is not a scenario: {md_text(str(exc))}")
chosen = c2.multiselect(
    "Strategies",
    list(STRATEGIES),
    default=list(STRATEGIES),
    key="cmp_strategies",
    help="Every strategy unless you take one out.",
)
base = lab.default_config()
s1, s2, s3 = c2.columns(3)
config = base.with_(
    buffer_size=s1.number_input("Buffer N", 1, 200, 6, key="cmp_n"),
    summary_threshold=s2.number_input("Fold threshold", 2, 200, 6, key="cmp_thr"),
    summary_keep=2,
    token_budget=s3.number_input("Hybrid budget", 100, 100_000, base.token_budget, key="cmp_budget"),
)

if scenario is not None:
    with st.expander(f"{scenario.name}: {len(scenario.turns)} turns, {scenario.probes} questions"):
        st.caption(scenario.description)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "turn": i + 1,
                        "session": t.session,
                        "user": t.user,
                        "expect": ", ".join(t.expect),
                        "must not answer": ", ".join(t.reject),
                    }
                    for i, t in enumerate(scenario.turns)
                ]
            ),
            hide_index=True,
            width="stretch",
        )

run = st.button("Run comparison", type="primary", disabled=scenario is None or len(chosen) < 1, key="cmp_run")
if run and scenario is not None:
    with guarded("Running the comparison"):
        warm_model(lab, repr(lab.settings))
        bar, progress = progress_bar("Starting…")
        result = run_comparison(lab, scenario, chosen, config, progress=progress)
        bar.empty()
        st.session_state["cmp_result"] = {
            "rows": result.rows(),
            "summary": result.summary(),
            "scenario": result.scenario,
            "run_id": result.run_id,
        }

data = st.session_state.get("cmp_result")
if not data:
    st.info(
        "Pick a scenario and strategies, then **Run comparison**. Each strategy gets its own fresh user "
        "(`cmp-<run>-<strategy>`), so you can open its memory on the other pages afterwards."
    )
else:
    frame = pd.DataFrame(data["rows"])
    st.subheader(f"Results: {data['scenario']} (run {data['run_id']})")
    summary = pd.DataFrame(data["summary"])
    cols = st.columns(len(summary))
    for col, row in zip(cols, summary.to_dict("records")):
        col.metric(
            f"{row['strategy']}: answered",
            f"{row['answered correctly']:.0%}",
            help="Answered correctly: the reply holds the expected words and no replaced value. "
            "Reached the context: the expected words were in what the model was sent.",
        )
        col.caption(f"reached the context: {row['reached context']:.0%}")
    st.plotly_chart(score_chart(summary), width="stretch", key="cmp_scores")
    st.dataframe(
        summary,
        hide_index=True,
        width="stretch",
        column_config={
            "reached context": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
            "answered correctly": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
            "tokens per turn": st.column_config.NumberColumn(format="%.0f"),
            "mean latency ms": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    left, right = st.columns(2)
    left.plotly_chart(
        per_turn(frame, "tokens_sent", "Tokens sent per turn (estimate)", "tokens"), width="stretch", key="cmp_tokens"
    )
    right.plotly_chart(per_turn(frame, "latency_ms", "Latency per turn", "ms"), width="stretch", key="cmp_latency")
    probes = frame[frame["is_probe"]].copy()
    if not probes.empty:
        probes["label"] = "turn " + probes["turn"].astype(str) + ": " + probes["user"].str.slice(0, 40)
        probes["answered"] = probes["correct"].astype(float)
        fig = px.bar(  # questions down the side, so their words read level, not turned on their side
            probes,
            y="label",
            x="answered",
            orientation="h",
            color="strategy",
            barmode="group",
            title="Which questions each strategy answered correctly",
            range_x=[0, 1.05],
            color_discrete_map=STRATEGY_COLORS,
            labels={"label": "", "answered": "answered correctly"},
            height=140 + 14 * len(probes),
        )
        fig.update_traces(base=0, marker_line_width=1.5, marker_line_color="rgba(0,0,0,0.35)")
        fig.update_xaxes(tickformat=".0%")
        fig.update_yaxes(autorange="reversed")
        st.plotly_chart(fig, width="stretch", key="cmp_recall")
    text_table(
        frame[
            [
                "strategy",
                "turn",
                "session",
                "user",
                "tokens_sent",
                "latency_ms",
                "expected",
                "found",
                "recall",
                "correct",
                "rejected",
                "reply",
                "error",
            ]
        ].reset_index(drop=True),
        "cmp_turns_table",
        ["user", "reply", "error"],
    )
    st.download_button(
        "Download results as CSV",
        to_csv(data["rows"]),
        file_name=f"memory-lab-compare-{data['run_id']}.csv",
        mime="text/csv",
        key="cmp_csv",
    )

st.divider()
longmemeval_answers(lab)
st.divider()
import_chat(lab)
