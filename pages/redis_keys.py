"""Redis keys: a live browser of Memory Lab's keys, their TTLs and decoded contents."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from memory.inspect import KeyInspector, human_duration, when
from memory.stored import clean_text
from ui.layout import page
from ui.state import guarded, md_text

ctx = page("Redis keys")
lab = ctx.lab
prefix = lab.keys.prefix
st.caption("Live view of the keys Memory Lab writes. SCAN and pipelines only (never KEYS); one page at a time.")

f0, f1, f2, f3 = st.columns([1.2, 3, 1, 1])
# The current user's keys by default ("{alice:" session keys and "{alice}" user keys; ids hold no glob characters).
user_pattern = f"{prefix}:*{{{ctx.user_id}[:}}]*" if ctx.user_id else f"{prefix}:*"
every = f0.toggle("All keys", value=False, key="key_all", help="Off: only the current user's keys.")
if st.session_state.get("key_pattern_user") != ctx.user_id:  # another user: their keys
    st.session_state["key_pattern_user"] = ctx.user_id
    st.session_state["key_pattern"] = user_pattern
pattern = f1.text_input(
    "Pattern (Redis glob)",
    key="key_pattern",
    help=f"e.g. `{prefix}:*` for every key of Memory Lab, `{prefix}:s:*:buffer` for all buffers",
    disabled=every,
)
if every:
    pattern = "*"
page_size = f2.selectbox("Page size", [50, 100, 250, 500], index=1, key="key_page_size")
live = f3.toggle("Live TTLs", value=True, key="key_live", help="Refresh the TTL column every second.")

state = st.session_state
if state.get("key_scan_for") != (pattern, page_size):
    state["key_scan_for"] = (pattern, page_size)
    state["key_cursors"] = [0]

inspector: KeyInspector | None = None
rows = []
with guarded("Scanning keys"):
    inspector = KeyInspector(lab.redis, lab.keys)
    cursors = state["key_cursors"]
    page = inspector.scan_page(pattern, cursors[-1], page_size)
    rows = page.rows
    total = inspector.count()
    nav = st.columns([1, 1, 4])
    if nav[0].button("Previous page", disabled=len(cursors) == 1, key="key_prev"):
        cursors.pop()
        st.rerun()
    if nav[1].button("Next page", disabled=page.next_cursor == 0, key="key_next"):
        cursors.append(page.next_cursor)
        st.rerun()
    nav[2].caption(
        f"Page {len(cursors)} · {len(rows)} keys on this page · {total:,} keys in the database"
        + ("" if page.next_cursor else " · end of scan")
    )

if inspector is not None and not rows:
    st.info(
        "No keys match. A first-time user has none: send a message on the **Chat playground** and come back; "
        f"or widen the pattern to `{prefix}:*`."
    )

if inspector is not None and rows:
    no_ttl = [r.key for r in rows if r.ttl == -1]
    if no_ttl:
        st.warning(
            f"{len(no_ttl)} key(s) on this page have no TTL and never expire (flagged ⚠ below). "
            "The fact log is meant to be permanent; session keys normally slide with activity."
        )

    @st.fragment(run_every=1.0 if live else None)
    def key_table() -> None:
        names = [r.key for r in rows]
        with guarded("Refreshing TTLs"):
            ttls = inspector.ttls(names) if live else {r.key: r.ttl for r in rows}
            frame = pd.DataFrame(
                [
                    {
                        "key": clean_text(r.key),
                        "type": r.type,
                        "kind": r.kind,
                        "user": r.user_id,
                        "session": r.session_id,
                        "length": r.length,
                        "memory (bytes)": r.memory,
                        "TTL": ("⚠ " if ttls.get(r.key, r.ttl) == -1 else "") + human_duration(ttls.get(r.key, r.ttl)),
                        "expires": when(time.time() + ttls.get(r.key, r.ttl)) if ttls.get(r.key, r.ttl) >= 0 else "",
                        "TTL (s)": ttls.get(r.key, r.ttl),
                    }
                    for r in rows
                ]
            )
            st.dataframe(
                frame,
                hide_index=True,
                width="stretch",
                height=min(38 * (len(rows) + 1), 420),
                column_config={"TTL (s)": st.column_config.NumberColumn(format="%d")},
            )

    key_table()

    st.subheader("Inspect a key")
    # Options by position: a key name may hold bytes that are not text; the raw name is what we operate on.
    picked = st.selectbox(
        "Key", list(range(len(rows))), format_func=lambda i: clean_text(rows[i].key), key="key_chosen_index"
    )
    chosen = rows[picked].key if picked is not None and picked < len(rows) else None
    if chosen:
        with guarded("Reading the key"):
            contents = inspector.contents(chosen)
            if contents["type"] == "none":
                st.info("This key no longer exists (expired or deleted).")
            if "messages" in contents:
                msgs = contents["messages"]
                st.caption(f"{len(msgs)} typed messages" + (" (first 200 shown)" if contents["truncated"] else ""))
                if msgs:
                    frame = pd.DataFrame(msgs)
                    first = [c for c in ("role", "content", "at", "id", "model_id", "tool_call_id") if c in frame]
                    st.dataframe(frame[first], hide_index=True, width="stretch")
                for bad in contents["corrupt"]:
                    st.error(f"Entry #{bad['index']} is corrupt ({md_text(bad['error'])}):")
                    st.code(bad["raw"][:200], language=None, wrap_lines=True)
            if "rows" in contents:
                shown = contents["rows"]
                st.caption(
                    f"{len(shown)} {contents['type']} entries" + (" (first 200)" if contents["truncated"] else "")
                )
                if shown:
                    st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch")
            if "json" in contents:
                st.caption("A string holding JSON")
                st.json(contents["json"], expanded=2)
            if "text" in contents:
                st.caption(f"A string of {len(contents['text']):,} characters")
                st.code(contents["text"], language=None, wrap_lines=True)

            a, b = st.columns(2)
            with a.form("ttl_form"):
                seconds = st.number_input("New TTL in seconds (0 = never expire)", 0, 10 * 365 * 24 * 3600, 3600)
                confirm_ttl = st.checkbox("I want to change this key's TTL")
                if st.form_submit_button("Set TTL"):
                    if not confirm_ttl:
                        st.warning("Tick the box to confirm.")
                    else:
                        inspector.set_ttl(chosen, int(seconds))
                        st.toast(f"TTL of {md_text(clean_text(chosen))} set to {seconds or 'none'}")
            with b.form("delete_form"):
                st.markdown("Delete this key. This cannot be undone.")
                confirm_del = st.checkbox("I want to delete this key")
                if st.form_submit_button("Delete key", type="primary"):
                    if not confirm_del:
                        st.warning("Tick the box to confirm.")
                    else:
                        inspector.delete(chosen)
                        st.toast(f"Deleted {md_text(clean_text(chosen))}")
                        st.rerun()
