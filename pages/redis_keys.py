"""Redis keys: a live browser of Memory Lab's keys, their TTLs and decoded contents."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from memory.inspection.foreign import find_conversations
from memory.inspection.key_browser import KeyInspector, KeyRow
from memory.keys import KEY_KINDS
from memory.lab import MemoryLab
from memory.presentation.format import human_bytes, human_duration, ttl_cell, when
from memory.records.stored import clean_text, with_iso_dates
from memory.upkeep.jobs import MAX_DEAD_LETTERS
from ui.charts import hbar
from ui.confirm import confirmed
from ui.layout import page
from ui.state import code_span, guarded, md_text
from ui.tables import CLICK_A_ROW, selected_row, text_table

ctx = page("pages/redis_keys.py")
lab = ctx.lab
prefix = lab.keys.prefix
st.caption("Live view of the keys Memory Lab writes. SCAN and pipelines only (never KEYS); one page at a time.")

f0, f1, f2, f3 = st.columns([1.2, 3, 1, 1])
user_pattern = lab.keys.user_keys_pattern(ctx.user_id)  # the current user's keys by default
every = f0.toggle("All keys", value=False, key="key_all", help="Off: only the current user's keys.")
state = st.session_state
if state.get("key_pattern_user") != ctx.user_id:  # another user: their keys
    state["key_pattern_user"] = ctx.user_id
    state["key_pattern"] = state["_keep_key_pattern"] = user_pattern
# Streamlit drops a widget's value when another page is shown: back here, the pattern came back empty and the
# table showed every user's keys. The shadow key outlives the page change.
state.setdefault("key_pattern", state.get("_keep_key_pattern", user_pattern))
pattern = f1.text_input(
    "Pattern (Redis glob)",
    key="key_pattern",
    help=f"e.g. `{prefix}:*` for every key of Memory Lab, `{prefix}:s:*:buffer` for all buffers",
    disabled=every,
)
state["_keep_key_pattern"] = pattern
if every:
    pattern = "*"
page_size = f2.selectbox("Page size", [50, 100, 250, 500], index=1, key="key_page_size")
live = f3.toggle("Live TTLs", value=True, key="key_live", help="Refresh the TTL column every second.")

if state.get("key_scan_for") != (pattern, page_size):
    state["key_scan_for"] = (pattern, page_size)
    state["key_cursors"] = [0]

inspector: KeyInspector | None = None
rows = []
with guarded("Scanning keys"):
    inspector = KeyInspector(lab.redis, lab.keys, lab.audit)
    cursors = state["key_cursors"]
    scanned = inspector.scan_page(pattern, cursors[-1], page_size)
    rows = scanned.rows
    total = inspector.count()
    nav = st.columns([1, 1, 4])
    if nav[0].button("Previous page", disabled=len(cursors) == 1, key="key_prev"):
        cursors.pop()
        st.rerun()
    if nav[1].button("Next page", disabled=scanned.next_cursor == 0, key="key_next"):
        cursors.append(scanned.next_cursor)
        st.rerun()
    nav[2].caption(
        f"Page {len(cursors)} · {len(rows)} keys on this page · {total:,} keys in the database"
        + ("" if scanned.next_cursor else " · end of scan")
    )

if inspector is not None and not rows:
    st.info(
        "No keys match. A first-time user has none: send a message on the **Chat playground** and come back; "
        f"or widen the pattern to `{prefix}:*`."
    )


def render_key(inspector: KeyInspector, row: KeyRow) -> None:
    """One key's value, decoded, with TTL and delete forms (confirmed)."""
    chosen = row.key
    ttl = f"TTL {row.ttl:,} s ({human_duration(row.ttl)})" if row.ttl >= 0 else "no TTL"
    if described := KEY_KINDS.get(row.kind):
        lasts = "it expires with its session" if described.expires else "it is kept until deleted, by design"
        st.caption(f"A **{row.kind}** key: {md_text(described.holds)}; {lasts}. Now: {ttl}.")
    else:
        st.caption(f"Now: {ttl}.")
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
                text_table(frame[first], "key_messages_table", ["content"])
            for bad in contents["corrupt"]:
                st.error(f"Entry #{bad['index']} is corrupt ({md_text(bad['error'])}):")
                st.code(bad["raw"][:200], language=None, wrap_lines=True)
        if "rows" in contents:
            shown = contents["rows"]
            st.caption(f"{len(shown)} {contents['type']} entries" + (" (first 200)" if contents["truncated"] else ""))
            if shown:
                frame = pd.DataFrame([{k: v for k, v in r.items() if k != "json"} for r in shown])
                text_table(
                    frame,
                    "key_rows_table",
                    [c for c in ("value", "member") if c in frame],
                    json_of=lambda i: shown[i].get("json"),
                )
        if "json" in contents:
            st.caption("A string holding JSON (a time in seconds since 1970 has its date beside it, ending in _iso)")
            st.json(with_iso_dates(contents["json"]), expanded=2)
        if "text" in contents:
            st.caption(f"A string of {len(contents['text']):,} characters")
            st.code(contents["text"], language=None, wrap_lines=True)

        a, b = st.columns(2)
        with a.form("ttl_form"):
            seconds = st.number_input("New TTL in seconds (0 = never expire)", 0, 10 * 365 * 24 * 3600, 3600)
            if confirmed("I want to change this key's TTL", "Set TTL"):
                inspector.set_ttl(chosen, int(seconds))
                st.toast(f"TTL of {md_text(clean_text(chosen))} set to {seconds or 'none'}")
        with b.form("delete_form"):
            st.markdown("Delete this key. This cannot be undone.")
            if confirmed("I want to delete this key", "Delete key", kind="primary"):
                inspector.delete(chosen)
                st.toast(f"Deleted {md_text(clean_text(chosen))}")
                st.rerun()


KIND_HELP = "\n\n".join(
    f"**{kind}**: {holds.holds}" + ("" if holds.expires else " (never expires)") for kind, holds in KEY_KINDS.items()
)


def bulk_actions(inspector: KeyInspector, pattern: str) -> None:
    """Delete, or set the TTL of, every key the pattern matches (not just this page), after a count and a tick."""
    with guarded("Counting the matching keys"):
        names, complete = inspector.matching(pattern)
        ours = len(inspector.owned(names))
        st.markdown(
            f"**{len(names):,}** keys match"
            + ("" if complete else " (the count stopped early: a very large match)")
            + (
                f"; **{len(names) - ours:,}** of them are not keys Memory Lab builds (even under its prefix) "
                "and will be left alone."
                if ours < len(names)
                else "."
            )
        )
        with st.form("bulk_form"):
            action = st.radio("Action", ["Set TTL", "Delete"], horizontal=True, key="bulk_action")
            seconds = st.number_input(
                "TTL in seconds (0 = never expire)", 0, 10 * 365 * 24 * 3600, 3600, key="bulk_ttl"
            )
            if confirmed(f"I want to change these {ours:,} keys", "Apply", "bulk_confirm", "primary", not ours):
                result = inspector.bulk(names, None if action == "Delete" else int(seconds))
                verb = "Deleted" if action == "Delete" else "Set the TTL of"
                st.success(f"{verb} {result.changed:,} keys; left {result.skipped:,} other keys alone.")


def dead_letters(inspector: KeyInspector) -> None:
    """Upkeep jobs the workers refused (poison entries, ownership refusals, gone sessions), with the reason."""
    st.caption(
        "Entries of the upkeep stream that a worker would not apply: not a job, a job whose user or session id, "
        "settings or messages are not valid, one naming messages its user never said in that session, one for "
        "a session that expired or was cleared, one that workers kept dying on. Each was acknowledged and moved "
        f"here (`{lab.keys.dead_letters}`, the newest {MAX_DEAD_LETTERS:,} kept); the worker went on with the "
        "next. Jobs of a forgotten user are dropped and only logged. A readable job's messages are not kept."
    )
    with guarded("Reading the dead letters"):
        found = inspector.dead_letters()
        for bad in found.corrupt:
            st.warning(f"Dead letter #{bad.index} is unreadable ({md_text(bad.error)})")
        if not found.items:
            st.success("No dead letters: every job on the stream was applied (or is waiting).")
            return
        frame = pd.DataFrame(
            [
                {
                    "when": when(d.at),
                    "reason": d.reason,
                    "user": d.user_id,
                    "session": d.session_id,
                    "job": d.job_id,
                    "entry": d.entry,
                    "entry as stored (start)": d.raw,
                }
                for d in found.items
            ]
        )
        st.caption(f"{len(found.items)} dead letter(s), newest first.")
        text_table(frame, "dead_letters_table", ["reason", "entry as stored (start)"])


def memory_analysis(inspector: KeyInspector, pattern: str) -> None:
    """Bytes per key kind and per user, and the largest keys (RedisInsight's memory analysis, for our keys)."""
    cached = state.get("key_memory")
    fresh = st.button("Analyse again", key="key_memory_refresh", icon=":material/refresh:")
    if fresh or not cached or cached[0] != pattern:
        with guarded("Analysing memory"):
            bar = st.progress(0.0, text="Measuring keys…")

            def measured(done: int, total: int) -> None:
                bar.progress(done / max(total, 1), text=f"{done:,} of {total:,} keys")

            report = inspector.memory_report(pattern, progress=measured)
            bar.empty()
            state["key_memory"] = cached = (pattern, report)
    if not cached:
        return
    report = cached[1]
    st.caption(
        f"Keys matching {code_span(pattern)}: MEMORY USAGE of each, as Redis counts it (value, key name and overhead)."
        + ("" if report.complete else " The scan stopped early: a very large match, so these are partial sums.")
    )
    m1, m2 = st.columns(2)
    m1.metric("Keys", f"{report.keys:,}")
    m2.metric("Memory", human_bytes(report.bytes))
    if not report.keys:
        st.info("No keys match.")
        return
    left, right = st.columns(2)
    for column, table, title in ((left, report.by_kind, "By key kind"), (right, report.by_user, "By user")):
        ordered = dict(sorted(table.items(), key=lambda kv: -kv[1][1])[:15])
        column.plotly_chart(
            hbar({k: round(v[1] / 1024, 1) for k, v in ordered.items()}, title, "KiB"),
            width="stretch",
            key=f"key_memory_{title}",
        )
    st.markdown("**Largest keys**")
    st.dataframe(
        pd.DataFrame([{"key": clean_text(n), "memory": human_bytes(b), "bytes": b} for n, b in report.top]),
        hide_index=True,
        width="stretch",
    )


def other_libraries(lab: MemoryLab) -> None:
    """Chat memory written by LangChain, RedisVL or the Agent Memory Server in this Redis, as conversations."""
    st.caption(
        "Memory Lab also reads chat memory that other libraries keep in this Redis: LangChain's "
        "`RedisChatMessageHistory` (`message_store:<session>` lists), RedisVL's `MessageHistory` (one hash per "
        "message) and Redis Agent Memory Server's working memory (`working_memory:…`). Read only."
    )
    if st.button("Look again", key="foreign_refresh", icon=":material/refresh:") or "foreign" not in state:
        with guarded("Looking for other libraries' memory"):
            state["foreign"] = find_conversations(lab.redis, lab.keys.prefix)
    found = state.get("foreign")
    if found is None:
        return
    if not found.conversations:
        if not found.total:
            looked = "this Redis holds no keys yet."
        elif not found.scanned:
            looked = f"all {found.total:,} keys in it are Memory Lab's."
        else:
            looked = (
                f"of its {found.total:,} keys, {found.total - found.scanned:,} are Memory Lab's and the other "
                f"{found.scanned:,} hold no conversation of those libraries."
            )
        st.caption(
            "No other library's chat memory in this Redis: "
            + looked
            + ("" if found.complete else " The scan stopped early (a very large database), so it may miss some.")
        )
        return
    frame = pd.DataFrame(
        [
            {
                "written by": c.library,
                "session": clean_text(c.session),
                "messages": len(c.messages),
                "TTL": human_duration(c.ttl),
                "keys": clean_text(", ".join(c.keys[:3])) + (f" … (+{len(c.keys) - 3})" if len(c.keys) > 3 else ""),
                "problems": len(c.problems),
            }
            for c in found.conversations
        ]
    )
    st.caption(f"{len(found.conversations)} conversation(s) among {found.scanned:,} keys. Click one to read it.")
    event = st.dataframe(
        frame, key="foreign_table", on_select="rerun", selection_mode=CLICK_A_ROW, hide_index=True, width="stretch"
    )
    row = selected_row(event)
    conversation = found.conversations[row if row is not None and row < len(found.conversations) else 0]
    st.markdown(
        f"**{md_text(conversation.session)}** · written by {conversation.library} · "
        f"TTL {human_duration(conversation.ttl)}"
    )
    for problem in conversation.problems:
        st.warning(f"Could not read: {md_text(problem)}")
    for message in conversation.messages:
        avatar = {"user": ":material/person:", "assistant": ":material/smart_toy:"}.get(message.role, ":material/info:")
        with st.chat_message(message.role if message.role in ("user", "assistant") else "ai", avatar=avatar):
            label = f"{message.raw_role or message.role}" + (f" · {when(message.at)}" if message.at else "")
            st.caption(label)
            st.markdown(md_text(message.content))
    if conversation.truncated:
        st.caption("Only the latest 500 messages are shown.")


tab_keys, tab_memory, tab_dead, tab_foreign = st.tabs(
    ["Keys", "Memory analysis", "Upkeep dead letters", "Other libraries' memory"]
)

with tab_keys:
    if inspector is not None and rows:
        st.caption(
            "Session keys expire together when the session has been idle for its TTL (each turn starts it again). "
            "Long-term keys (marked ∞: the fact log, the turn index's version, the upkeep queue) are kept until "
            "deleted, by design. ⚠ marks a key that would normally expire but has no TTL (a session whose TTL is "
            "set to never, or a TTL removed by hand)."
        )

        @st.fragment(run_every=1.0 if live else None)
        def key_table(inspector: KeyInspector = inspector) -> None:
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
                            "memory": human_bytes(r.memory) if r.memory is not None else "",
                            "TTL": ttl_cell(r.kind, ttls.get(r.key, r.ttl)),
                            "expires": when(time.time() + ttls.get(r.key, r.ttl))[:16]
                            if ttls.get(r.key, r.ttl) >= 0
                            else "",
                        }
                        for r in rows
                    ]
                )
                event = st.dataframe(
                    frame,
                    key="key_table",
                    on_select="rerun",
                    selection_mode=CLICK_A_ROW,
                    hide_index=True,
                    width="stretch",
                    height=min(38 * (len(rows) + 1), 420),
                    column_config={
                        "key": st.column_config.TextColumn(width="medium"),
                        "type": st.column_config.TextColumn(width="small"),
                        "kind": st.column_config.TextColumn(width="small", help=KIND_HELP),
                        "user": st.column_config.TextColumn(width="small"),
                        "session": st.column_config.TextColumn(width="small"),
                        "length": st.column_config.NumberColumn(width="small"),
                        "memory": st.column_config.TextColumn(width="small"),
                        "TTL": st.column_config.TextColumn(width="small", help="seconds: on the key, below"),
                        "expires": st.column_config.TextColumn(width="medium", help="local time"),
                    },
                )
                clicked = selected_row(event)
                if clicked is not None and clicked != state.get("key_clicked"):
                    state["key_clicked"] = clicked  # a click opens that key below (the whole page reruns once)
                    state["key_chosen_index"] = clicked
                    st.rerun()

        key_table()
        st.caption("Click a row to inspect its key.")

        st.subheader("Inspect a key")
        # Options by position: a key name may hold bytes that are not text; the raw name is what we operate on.
        if state.get("key_chosen_index") is not None and state["key_chosen_index"] >= len(rows):
            state["key_chosen_index"] = 0
        picked = st.selectbox(
            "Key", list(range(len(rows))), format_func=lambda i: clean_text(rows[i].key), key="key_chosen_index"
        )
        chosen = rows[picked] if picked is not None and picked < len(rows) else None
        if chosen:
            render_key(inspector, chosen)

    if inspector is not None and pattern:
        with st.expander(f"Change every key matching {code_span(pattern)}", icon=":material/edit_note:"):
            bulk_actions(inspector, pattern)

with tab_memory:
    if inspector is not None:
        memory_analysis(inspector, pattern)

with tab_dead:
    if inspector is not None:
        dead_letters(inspector)

with tab_foreign:
    if inspector is not None:
        other_libraries(lab)
