"""The Vector memory page's retention: the user's policy, pinned facts, the preview of what it removes, applying
it (the preview's ids: refused if memory changed since), and undoing a recent run (``timeline/retention.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from memory import MemoryLab
from memory.backends.vector_store import Record
from memory.timeline import retention as rt
from memory.timeline.versions import when_text

from .state import guarded
from .tables import text_table

_NOTICE = "vec_notice"  # the memory editor's: shown once after the rerun


def retention_section(lab: MemoryLab, user: str, facts: Sequence[Record]) -> None:
    with guarded("Reading the retention policy"):
        policy = rt.get_policy(lab, user) or rt.RetentionPolicy()
        pinned = rt.pins(lab, user)
        _policy_form(lab, user, policy)
        _pins(lab, user, facts, pinned)
        if not policy.empty:
            _preview(lab, user, policy)
        _runs(lab, user)


def _policy_form(lab: MemoryLab, user: str, policy: rt.RetentionPolicy) -> None:
    with st.form("retention_policy", border=False):
        age, idle, then = st.columns(3)
        max_age = age.number_input(
            "Forget facts older than (days)",
            0.0,
            36500.0,
            value=policy.max_age_days,
            key="ret_age",
            placeholder="never",
        )
        max_idle = idle.number_input(
            "…or idle for (days)",
            0.0,
            36500.0,
            value=policy.max_idle_days,
            key="ret_idle",
            placeholder="never",
            help="Not said again nor changed for this long.",
        )
        action = then.selectbox(
            "Then",
            list(rt.ACTIONS),
            index=list(rt.ACTIONS).index(policy.action),
            key="ret_action",
            format_func=lambda a: "forget them" if a == "forget" else "summarise them into one fact, then forget",
        )
        if st.form_submit_button("Save the policy", icon=":material/save:"):
            with guarded("Saving the policy"):
                rt.set_policy(lab, user, rt.RetentionPolicy(max_age, max_idle, action, policy.grace_days))
                st.session_state[_NOTICE] = "Retention policy saved; nothing is removed until it is applied."
                st.rerun()
    st.caption(
        "The upkeep worker applies a saved policy at most once an hour, after one of this user's turns; every "
        f"removal is in the fact log and the audit trail, and a run can be undone for {policy.grace_days:g} days."
    )


def _pins(lab: MemoryLab, user: str, facts: Sequence[Record], pinned: set[str]) -> None:
    by_id = {r.id: r.text for r in facts}
    chosen = st.multiselect(
        "Pinned facts (never removed by a policy)",
        list(by_id),
        default=[i for i in by_id if i in pinned],
        format_func=lambda i: str(by_id.get(i) or i)[:90],
        key="ret_pins",
    )
    if set(chosen) != pinned & set(by_id):
        for fact_id in set(chosen) - pinned:
            rt.pin(lab, user, fact_id)
        for fact_id in (pinned & set(by_id)) - set(chosen):
            rt.pin(lab, user, fact_id, pinned=False)
        st.rerun()


def _preview(lab: MemoryLab, user: str, policy: rt.RetentionPolicy) -> None:
    removals = rt.preview(lab, user, policy)
    st.markdown(f"**Preview: applying the policy now removes {len(removals)} fact(s)**")
    if not removals:
        return
    text_table(
        pd.DataFrame(
            [
                {"fact": r.text, "why": f"{r.reason} {r.days:g} days", "superseded": r.superseded, "id": r.id}
                for r in removals
            ]
        ),
        "ret_preview_table",
        ["fact"],
    )
    with st.form("retention_apply", border=False):
        sure = st.checkbox(f"Remove these {len(removals)} fact(s)", key="ret_sure")
        if st.form_submit_button("Apply the policy now", type="primary", icon=":material/auto_delete:"):
            if not sure:
                st.warning("Tick the box to confirm.")
            else:
                with guarded("Applying the policy"):
                    run = rt.apply(lab, user, policy, expected=[r.id for r in removals])
                    st.session_state[_NOTICE] = f"Removed {len(run.removed)} fact(s) (run {run.id}; undoable below)."
                    del st.session_state["ret_sure"]
                    st.rerun()


def _runs(lab: MemoryLab, user: str) -> None:
    runs, damaged = rt.runs(lab, user)
    if damaged:
        st.warning(f"{damaged} stored retention runs are damaged and cannot be undone from here.")
    for run in runs[:5]:
        left, right = st.columns([4, 1])
        left.markdown(
            f"Run `{run.id}` at {when_text(run.at)} removed {len(run.removed)} fact(s); undoable until "
            f"{when_text(run.until)}."
        )
        if right.button("Undo", key=f"ret_undo:{run.id}", icon=":material/undo:"):
            with guarded("Undoing the run"):
                back = rt.undo(lab, user, run.id)
                st.session_state[_NOTICE] = f"Run {run.id} undone: {back} fact(s) back."
                st.rerun()
