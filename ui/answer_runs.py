"""The Compare page's real conversations: LongMemEval answered through each strategy, and your own chat imported.

Both go through the engine's replay (``memory/transfer/replay.py``): a history is
stored as if chatted, with each strategy's upkeep, then asked (LongMemEval)
or left for you to open on the other pages (your import). The page only
renders what the engine returns.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from memory import STRATEGIES, MemoryLab
from memory.config import PROJECT_ROOT
from memory.eval.lme_answers import KINDS, answer_through_strategies, select
from memory.eval.longmemeval import load_longmemeval
from memory.keys import validate_id
from memory.transfer.replay import replay
from memory.transfer.transcript import read_transcript
from ui.state import guarded, md_text, progress_bar, warm_model

ORACLE = PROJECT_ROOT.parent / "shared" / "data" / "longmemeval" / "longmemeval_oracle_dev.json.gz"


def longmemeval_answers(lab: MemoryLab) -> None:
    """Replay LongMemEval histories through the chosen strategies, ask each question, show right/wrong per type."""
    st.subheader("Real conversations: LongMemEval, answered through each strategy")
    st.caption(
        "Each question's history (a user telling an assistant about their life) is replayed into a fresh user "
        "through the strategy — the user's turns and the assistant's as they were, with the strategy's upkeep — "
        "then the question is asked in a chat turn: in a new session, or in the last one for buffer and summary. "
        "Right means the reply holds every content word of the gold answer (abstention: it says it does not know)."
    )
    c1, c2, c3 = st.columns([3, 3, 1])
    path = c1.text_input("LongMemEval file (S or oracle, plain or gzip)", str(ORACLE), key="lme_path")
    kinds = c2.multiselect(
        "Question types", list(KINDS), ["single-session-user", "knowledge-update", "abstention"], key="lme_kinds"
    )
    limit = int(c3.number_input("Per type", 1, 500, 2, key="lme_limit"))
    strategies = st.multiselect(
        "Strategies", list(STRATEGIES), ["buffer", "summary", "facts", "hybrid"], key="lme_strategies"
    )
    if st.button("Answer through the strategies", disabled=not strategies or not kinds, key="lme_run"):
        st.session_state.pop("lme_result", None)
        with guarded("Answering LongMemEval questions"):
            warm_model(lab, repr(lab.settings))
            questions = select(load_longmemeval(path), kinds, limit)
            bar, progress = progress_bar("Replaying…")
            report = answer_through_strategies(lab, questions, strategies, progress=progress)
            bar.empty()
            st.session_state["lme_result"] = report.to_json(with_questions=True)
    data: dict[str, Any] | None = st.session_state.get("lme_result")
    if not data:
        return
    rows = []
    for strategy, cells in data["by_strategy"].items():
        for kind, cell in [("overall", cells["overall"]), *cells["by_type"].items()]:
            rows.append({"type": kind, "strategy": strategy, "right": cell["correct"], "n": cell["n"]})
    table = (
        pd.DataFrame(rows).pivot(index="type", columns="strategy", values="right").reindex(columns=data["strategies"])
    )
    st.caption(f"{data['n_questions']} questions, replies by the {data['provider']} provider, {data['seconds']:.0f} s")
    st.dataframe(
        table,
        width="stretch",
        key="lme_table",
        column_config={s: st.column_config.ProgressColumn(s, min_value=0.0, max_value=1.0, format="percent")
                       for s in data["strategies"]},
    )  # fmt: skip
    questions = pd.DataFrame(data["questions"])[["strategy", "kind", "question", "gold", "reply", "correct", "f1"]]
    st.dataframe(questions, hide_index=True, width="stretch", key="lme_questions")


def import_chat(lab: MemoryLab) -> None:
    """Import a transcript into a user's memory through a strategy, as if it had been chatted."""
    st.subheader("Your own conversation: see what a strategy keeps of it")
    st.caption(
        'A JSON list `[{"role": "user"|"assistant", "content": "…", "date": "2024-05-01T18:30"}]` (one session '
        "per day; date optional), or a LongMemEval file and a question id. It is stored as if it had been chatted "
        "— your words as yours, the replies as the assistant's, no model call — with the strategy's upkeep."
    )
    c1, c2 = st.columns(2)
    upload = c1.file_uploader("Transcript (.json or .json.gz)", type=["json", "gz"], key="imp_upload")
    pasted = c1.text_area("…or paste it", height=100, key="imp_paste")
    user = c2.text_input("Into user", "imported", key="imp_user")
    strategy = c2.selectbox("Through strategy", list(STRATEGIES), index=list(STRATEGIES).index("hybrid"), key="imp_s")
    question = c2.text_input("LongMemEval question id (for a LongMemEval file)", key="imp_question")
    raw = upload.getvalue() if upload is not None else pasted.encode("utf-8")
    if st.button("Import", disabled=not raw.strip(), key="imp_run"):
        st.session_state.pop("imp_result", None)  # a failed import must not show the last one's success
        with guarded("Importing the conversation"):
            validate_id("user", user)
            transcript = read_transcript(raw, lab.settings.max_message_chars, question.strip() or None)
            warm_model(lab, repr(lab.settings))
            bar, progress = progress_bar("Importing…")
            report = replay(lab, user, transcript.sessions, strategy, progress=progress)
            bar.empty()
            st.session_state["imp_result"] = {
                "user": user,
                "strategy": report.strategy,
                "messages": report.messages,
                "stored": report.stored,
                "sessions": len(report.sessions),
                "facts": lab.facts.count(user),
                "episodes": len(lab.episodes.all(user)),
            }
    done: dict[str, Any] | None = st.session_state.get("imp_result")
    if done:
        st.success(
            f"Imported {done['messages']:,} messages ({done['stored']:,} new) in {done['sessions']} session(s) into "
            f"**{md_text(done['user'])}** through {done['strategy']}: {done['facts']} facts and "
            f"{done['episodes']} episodes kept. [Open it in the chat playground](chat?user={done['user']}) "
            "and ask it something in a new session.",
            icon=":material/upload:",
        )
