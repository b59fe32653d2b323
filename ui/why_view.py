"""The "Why wasn't it retrieved?" panel, shared by the Vector memory page and the chat trace."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memory.inspection.why import why_not
from memory.lab import MemoryLab

from .state import guarded, md_text

_ICONS = {
    "retrieved": ":material/check_circle:",
    "ranked below the cut-off": ":material/low_priority:",
    "deleted": ":material/delete:",
    "stored for another user": ":material/person_off:",
    "in another session": ":material/forum:",
    "expired": ":material/timer_off:",
    "never stored": ":material/help:",
}


def why_panel(lab: MemoryLab, user_id: str, query: str, k: int, session_id: str, key: str) -> None:
    """Ask about one memory (its text or fact id) for ``query``; show the case, the ranks and the scores."""
    memory = st.text_input(
        "A memory you expected to be retrieved (its text, or a fact id)",
        key=f"why_{key}",
        placeholder="e.g. The user lives in Oslo.",
    )
    if not memory.strip():
        return
    if not query.strip():
        st.caption("Type the query above first.")
        return
    with guarded("Explaining"):
        answer = why_not(lab, user_id, query, memory, k=k, session_id=session_id)
        box = st.success if answer.case == "retrieved" else st.warning
        box(f"**{answer.case.capitalize()}.** {md_text(answer.explanation)}", icon=_ICONS.get(answer.case))
        if answer.components:
            st.dataframe(
                pd.DataFrame(
                    [
                        {"": "this memory", "rank": answer.rank, **_rounded(answer.components)},
                        {
                            "": f"the last one retrieved (k={answer.k})",
                            "rank": min(answer.k or 0, answer.of or 0),
                            **_rounded(answer.cutoff),
                        },
                    ]  # fmt: skip
                ),
                hide_index=True,
                width="stretch",
            )
        for line in answer.evidence:
            st.caption(md_text(line))


def _rounded(components: dict[str, float]) -> dict[str, float]:
    return {"cosine": round(components["cosine"], 4), "BM25": round(components["bm25"], 3),
            "fused score": round(components["score"], 4)}  # fmt: skip
