"""The Recall Lab's drill-down into one question, shared by LoCoMo and LongMemEval runs.

A question's result (``eval.runner.QuestionResult``, ``eval.lme_retrieval.LmeResult``) carries the
same fields for it: its evidence, where each evidence item ranked, the parts of its score, the score at
each k, its related words and the top items. These helpers render them; they never rank anything (the parts'
names are the ranking's, ``retrieval.ranking.TURN_PARTS``; why an item was missed is ``eval.recall``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from memory.eval.recall import why_evidence

from .state import md_text


def recall_bars(table: Mapping[str, Mapping[Any, float]], axis: str, title: str, prefix: str = "R@") -> go.Figure:
    """Grouped bars of a measure at each k, one group per row of ``table`` (a category, a type, a conversation)."""
    rows = [{axis: name, "k": f"{prefix}{k}", "value": v} for name, row in table.items() for k, v in row.items()]
    return px.bar(pd.DataFrame(rows), x=axis, y="value", color="k", barmode="group", range_y=[0, 1], title=title)


def related_words(q: Any) -> None:
    if q.related_words:
        st.markdown(
            "**Related words** the keyword score also counted (the history's rare words nearest the "
            "question's, by cosine): " + ", ".join(f"{md_text(w)} ({c:.2f})" for w, c in q.related_words.items())
        )


def evidence_table(q: Any, cut: int, text_of: Callable[[str], str], parts: Mapping[str, str]) -> float | None:
    """Each evidence item: its rank, why it was (not) retrieved at ``cut``, its score by part, its text.
    Returns the score at rank ``cut`` (what an evidence item had to beat), if there is one."""
    cutoff = q.cutoff_scores.get(cut)
    rows = []
    for e in q.evidence:
        scored = q.evidence_scores.get(e, {})
        row: dict[str, object] = {
            "evidence": e,
            "rank": q.evidence_ranks.get(e),
            "why": why_evidence(q.evidence_ranks.get(e), cut, scored.get("score"), cutoff),
        }
        row.update({label: scored.get(name) for name, label in parts.items() if scored})
        row["text"] = text_of(e)
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    return cutoff


def top_table(
    q: Any, k: int, holds_evidence: Callable[[dict[str, Any]], bool], text_of: Callable[[dict[str, Any]], str]
) -> None:
    """The top ``k`` retrieved items, the ones holding evidence marked and shaded."""
    top_rows = [
        {
            "rank": t["rank"],
            "evidence?": "✓" if holds_evidence(t) else "",
            "id": t["id"],
            "score": t["score"],
            "cosine": t["similarity"],
            "text": text_of(t),
        }
        for t in q.top[:k]
    ]
    st.markdown(f"**Top {len(top_rows)} retrieved** (✓ = holds evidence)")
    frame = pd.DataFrame(top_rows)
    st.dataframe(
        frame.style.apply(lambda r: ["background-color: #e3f4e1" if r["evidence?"] else "" for _ in r], axis=1),
        hide_index=True,
        width="stretch",
        height=36 * (len(top_rows) + 1) + 4,
    )
