"""Audit: every memory write, who and what and when, filtered and exported."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from memory.presentation.format import when
from memory.stores.audit import ACTIONS
from memory.transfer.csv_export import to_csv
from ui.charts import hbar
from ui.layout import page
from ui.state import guarded, md_text, settle_upkeep
from ui.tables import text_table

ctx = page("pages/audit.py")
lab = ctx.lab
trail = lab.audit
st.caption(
    f"Every write to memory, appended ({trail.mode}: {md_text(trail.location)}). Forgetting a user blanks "
    "their content here and keeps the rows, so the trail still shows that it happened."
)

f1, f2, f3 = st.columns([1.2, 2.5, 1.6])
everyone = f1.toggle("All users", value=False, key="audit_all", help="Off: only the current user's writes.")
actions = f2.multiselect("Actions", list(ACTIONS), default=[], key="audit_actions", placeholder="All actions")
today = dt.date.today()
period = f3.date_input("Between", (today - dt.timedelta(days=30), today), key="audit_period")

since = until = None
if isinstance(period, tuple) and len(period) == 2:
    since = dt.datetime.combine(period[0], dt.time.min).timestamp()
    until = dt.datetime.combine(period[1], dt.time.max).timestamp()

events = None
if not everyone:
    settle_upkeep(lab, ctx.user_id)  # the facts of the last turn are written by its upkeep job
with guarded("Reading the audit trail"):
    trail.flush(timeout_s=2.0)
    events = trail.query(
        user_id=None if everyone else ctx.user_id, actions=actions or None, since=since, until=until, limit=5000
    )

if events is not None and not events:
    st.info(
        "No memory writes match. Chat on the **Chat playground** (every message, fold and fact is recorded), "
        "or widen the filters."
    )
elif events:
    rows = [
        {
            "when": when(e.at),
            "action": e.action,
            "user": e.user_id,
            "session": e.session_id,
            "target": e.target,
            "content": e.content,
            "details": ", ".join(f"{k}={v}" for k, v in e.details.items()),
        }
        for e in events
    ]
    frame = pd.DataFrame(rows)
    st.caption(f"{len(events):,} writes, newest first" + (" (the latest 5,000)" if len(events) == 5000 else ""))
    counts = frame["action"].value_counts()
    chart = hbar({str(a): int(n) for a, n in counts.items()}, "Writes by action", "writes")
    st.plotly_chart(chart, width="stretch", key="audit_chart")
    text_table(frame, "audit_table", ["content", "details"], height=min(36 * (len(frame) + 1), 480))
    st.download_button(
        "Download as CSV",
        to_csv(rows),
        file_name=f"memory-lab-audit-{dt.datetime.now():%Y%m%d-%H%M%S}.csv",
        mime="text/csv",
        key="audit_csv",
    )
