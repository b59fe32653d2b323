"""The Vector memory page's near-duplicate facts, side by side, each pair with a merge that keeps one wording."""

from __future__ import annotations

import streamlit as st

from memory import MemoryLab
from memory.timeline.duplicates import NEAR, merge, near_duplicates
from memory.timeline.versions import word_diff

from .fact_versions import diff_markdown
from .state import guarded, md_text

_NOTICE = "vec_notice"  # the memory editor's: shown once after the rerun


def duplicates_section(lab: MemoryLab, user: str) -> None:
    with guarded("Finding near-duplicate facts"):
        pairs = near_duplicates(lab.facts, user)
        if not pairs:
            st.caption(f"No two current facts are this close (cosine ≥ {NEAR}).")
            return
        st.caption(
            f"Pairs of current facts with cosine ≥ {NEAR}, closest first. Merging keeps one wording and deletes the "
            "other (its text and where it came from stay in its history; undo brings it back)."
        )
        for p in pairs[:10]:
            with st.container(border=True):
                st.markdown(f"**{p.similarity:.3f}** · " + diff_markdown(word_diff(p.left, p.right)))
                left, right = st.columns(2)
                left.markdown(md_text(p.left))
                right.markdown(md_text(p.right))
                for col, keep, drop, text in (
                    (left, p.left_id, p.right_id, p.left),
                    (right, p.right_id, p.left_id, p.right),
                ):
                    if col.button("Keep this one", key=f"vec_merge:{keep}:{drop}", icon=":material/merge:"):
                        with guarded("Merging"):
                            merge(lab.facts, user, keep, drop)
                            st.session_state[_NOTICE] = f"Merged: kept {text}"
                            st.rerun()
