"""The Vector memory page's hand changes: delete a memory, edit a fact, undo the last change.

Widgets are keyed by the memory they act on, so a form shows the memory that
is picked (a form keyed by nothing kept the previous fact's text, and saving
it overwrote the fact picked since). A memory that disappears while it is
picked (another tab, a chat turn, the CLI) stays picked and is shown as gone:
Streamlit would otherwise fall back to the first memory listed, and the next
click would change that one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from memory import MemoryLab
from memory.backends.vector_store import Record
from memory.errors import StaleEditError
from memory.stores.episode_store import episode_session

from .confirm import confirmed
from .state import guarded, md_text

_NOTICE = "vec_notice"  # shown once after the rerun a change asks for
_DELETE_PICK, _DELETE_SURE, _EDIT_PICK = "delete_memory_pick", "delete_memory_sure", "edit_fact_pick"
_EDIT_RESET = "_edit_fact_reset"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _picker(
    label: str,
    options: Sequence[str],
    key: str,
    describe: Callable[[str], str],
    keep_gone: Callable[[str], bool] = lambda _: True,
) -> str | None:
    """A selectbox over memory ids that stays on the memory picked, whatever happens to the list.

    The browser sends a choice back as its label, and a label changes when its
    memory's text does (an edit): the id picked is therefore kept apart
    (``key:id``) and written into the widget on every run, so the browser holds
    the label of now. A picked memory that is gone stays listed, as gone,
    instead of the choice falling to the first one (while ``keep_gone`` says
    there is a reason to: a click to act on, a draft to keep).
    """
    ss = st.session_state
    id_key = f"{key}:id"
    picked = ss.get(id_key)
    choices = list(options)
    if not isinstance(picked, str) or not picked or (picked not in choices and not keep_gone(picked)):
        if not choices:
            return None
        picked = choices[0]
    if picked not in choices:
        choices.append(picked)
    ss[key] = picked

    def chosen() -> None:
        ss[id_key] = ss[key]

    chosen()
    return st.selectbox(label, choices, key=key, format_func=describe, on_change=chosen)


def delete_form(lab: MemoryLab, user: str, facts: Sequence[Record], episodes: Sequence[Record]) -> None:
    memories = {f"fact:{r.id}": ("fact", r.id, r.text) for r in facts}
    for r in episodes:
        session = episode_session(r)
        memories[f"episode:{session}"] = ("episode", session, r.text)
    if not memories and not st.session_state.get(f"{_DELETE_PICK}:id"):
        return
    st.subheader("Delete a memory")

    def label(option: str) -> str:
        if option not in memories:
            return f"(gone) {option.split(':', 1)[0]} {option.split(':', 1)[1][:8]}"
        kind, memory_id, text = memories[option]
        return f"{kind}: {_short(text)}  ·  {memory_id[:8]}"

    choice = _picker("Memory", list(memories), _DELETE_PICK, label)  # outside the form: forms take no callbacks
    with st.form("delete_memory"):
        if confirmed("I want to delete this memory", "Delete", _DELETE_SURE, "primary"):
            if choice not in memories:
                st.warning("That memory is already gone (deleted in another tab, by a chat turn or the CLI).")
            else:
                with guarded("Deleting"):
                    kind, memory_id, _ = memories[choice]
                    deleted = lab.delete_memory(user, kind, memory_id)
                    st.session_state[_NOTICE] = "Deleted." if deleted else "It was already gone."
                    st.session_state.pop(f"{_DELETE_PICK}:id", None)  # gone by this click: not kept as gone
                    del st.session_state[_DELETE_SURE]  # the next deletion is confirmed again
                    st.rerun()


def edit_section(lab: MemoryLab, user: str, facts: Sequence[Record]) -> None:
    st.subheader("Edit, undo, take away")
    edit_col, undo_col = st.columns([3, 1])
    with edit_col:
        _edit_form(lab, user, {r.id: r for r in facts})
    if undo_col.button("Undo the last change", icon=":material/undo:", key="undo_fact", width="stretch"):
        with guarded("Undoing"):
            event = lab.facts.undo_last(user)
            st.session_state[_NOTICE] = f"Undone: {event.previous or '(nothing)'} → {event.text or '(removed)'}"
            st.rerun()
    if notice := st.session_state.pop(_NOTICE, None):
        st.success(md_text(notice))


def _edit_form(lab: MemoryLab, user: str, by_id: dict[str, Record]) -> None:
    """The picked fact's text in a box of its own; what was typed stays until it is saved or the fact changes."""
    ss = st.session_state
    fact_id = _picker(
        "Fact",
        list(by_id),
        _EDIT_PICK,
        lambda i: f"{_short(by_id[i].text)}  ·  {i[:8]}" if i in by_id else f"(deleted) fact {i[:8]}",
        keep_gone=lambda i: ss.get(f"edit_fact_text:{i}") not in (None, ss.get(f"edit_fact_base:{i}")),
    )
    if fact_id is None:
        st.caption("No facts to edit.")
        return
    record = by_id.get(fact_id)
    text_key, base_key = f"edit_fact_text:{fact_id}", f"edit_fact_base:{fact_id}"
    if ss.get(_EDIT_RESET) == fact_id and record is not None:  # just saved: the box shows the stored text
        ss[text_key] = ss[base_key] = record.text
        del ss[_EDIT_RESET]
    if record is None:
        st.warning(
            "This fact was deleted while it was open here (in another tab, by a chat turn or the CLI). "
            "What you typed is kept below; pick another fact to go on.",
            icon=":material/delete:",
        )
    elif ss.get(text_key) is None or ss.get(text_key) == ss.get(base_key):
        ss[text_key] = ss[base_key] = record.text  # nothing typed: the box shows what the fact holds now
    with st.form(f"edit_fact:{fact_id}", border=False):
        new_text = st.text_area(
            "New text", key=text_key, height=100, help="Ctrl+Enter saves. Line breaks and repeated spaces become one."
        )
        save = st.form_submit_button("Save the edit", icon=":material/edit:", disabled=record is None)
    if save and record is not None:
        with guarded("Editing the fact"):
            try:
                event = lab.facts.edit(user, fact_id, new_text, expected=ss.get(base_key))
            except StaleEditError as exc:
                ss[base_key] = exc.current  # now seen: saving again replaces it
                st.warning(
                    f"Not saved: this fact changed since you began (in another tab, by a chat turn or the CLI). "
                    f"It now reads: {md_text(exc.current)}. Your text is still in the box; save again to replace it.",
                    icon=":material/sync_problem:",
                )
                return
            if event is None:
                ss[_NOTICE] = "Nothing to save: the fact already reads that."
            else:
                ss[_NOTICE] = f"Edited: {event.previous} → {event.text}"
                ss[base_key] = event.text
                ss[_EDIT_RESET] = fact_id  # on the rerun the box shows the text as stored (spaces folded)
            st.rerun()
