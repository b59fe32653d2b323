"""A user's memory is theirs to take away: export a session or a user's memory, and load it back.

Two JSON documents, each with a ``kind`` and a ``version`` so an import can
say clearly what it will not read:

- ``memlab.session``: a session's transcript, traces, summary and settings
  (also rendered as Markdown for people);
- ``memlab.user-memory``: a user's facts (with their slots), episodes and
  fact log.

An import reads the whole file first (``read_document``: sizes, depth, every
field, the chat's and the fact editor's length limits, repeated ids) and
writes nothing unless all of it is good. Ids in a file are namespaced to the
user it is imported into: a fact id is kept only when it already names one
of that user's facts, any other becomes an id derived from the user and the
file's id — so a file can never address another user's fact, and importing
it again derives the same ids. Importing is idempotent: messages go through
the append-by-id script, a fact, episode or trace already there as in the
file is left alone, so loading a file twice changes nothing the second time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InputError, StoredDataError
from ..lab import MemoryLab
from ..presentation.format import when
from ..records.messages import Message
from ..records.stored import dump_json, kind_of, preview, with_iso_dates, without_iso_dates
from ..records.trace import Trace
from ..stores.episode_store import EMPTY
from ..stores.fact_store import FactWrite, Progress, imported_id, slot_of, tidy_fact
from ..strategies import STRATEGIES, StrategyConfig
from . import json_input as J
from .json_input import MB
from .markdown import md_inline, md_lines

SESSION_KIND = "memlab.session"
USER_KIND = "memlab.user-memory"
VERSION = 1
MAX_IMPORT_BYTES = 64 * MB
# What the app can show and use: the chat page draws every message of a session (20,000 took 40 s to draw, so
# 2,000 draw in about 4 s), and a user's facts are searched in memory (benchmarked to 10,000: docs/benchmarks.md).
MAX_SESSION_MESSAGES = 2_000  # messages (and traces) in one session file
MAX_FACTS = 10_000  # facts, and episodes, in one user-memory file
MAX_SLOT_CHARS = 200
MAX_NAME_CHARS = 200  # a model id
# A turn's trace holds what the model was sent: at most the buffer's messages (20 of 32,000 characters by
# default) and what was retrieved. The same bound as a job's.
MAX_TRACE_CHARS = 2_000_000


def export_session(lab: MemoryLab, user_id: str, session_id: str) -> dict[str, Any]:
    log = lab.sessions.log(user_id, session_id)
    traces = lab.sessions.traces(user_id, session_id)
    return {
        "kind": SESSION_KIND,
        "version": VERSION,
        "exported_at": time.time(),
        "user_id": user_id,
        "session_id": session_id,
        "settings": lab.sessions.meta(user_id, session_id),
        "summary": lab.sessions.summary(user_id, session_id),
        "messages": [m.to_dict() for m in log.messages],
        "traces": {mid: trace.to_dict() for mid, trace in traces.items},
        "skipped_corrupt_entries": len(log.corrupt) + len(traces.corrupt),
    }


def session_markdown(export: dict[str, Any]) -> str:
    """The transcript for people: each turn, and under each reply what the model saw, briefly.

    Stored text is escaped (``markdown.py``): no live HTML, no image, no
    heading or bold of its own. So the numbered turn headings written here
    are the only headings, and a message cannot forge one.
    """
    lines = [f"# Session {md_inline(export['session_id'])} of {md_inline(export['user_id'])}", ""]
    settings = export.get("settings") or {}
    if settings:
        lines += [f"Strategy: **{md_inline(settings.get('strategy', '?'))}**", ""]
    if export.get("summary"):
        lines += ["## Summary", "", md_lines(export["summary"]), ""]
    lines += ["## Transcript", ""]
    traces = export.get("traces", {})
    for n, m in enumerate(export["messages"], 1):
        said_at = when(m["created_at"], "minute")
        who = m["role"] + (f" ({m['model_id']})" if m.get("model_id") else "")
        lines += [f"### {n} · {md_inline(who)} · {said_at}", "", md_lines(m["content"]), ""]
        trace = traces.get(m["id"])
        if trace:
            parts = ", ".join(f"{md_inline(p['name'])} {int(p['tokens'])}" for p in trace.get("system_parts", []))
            used = trace.get("used") or []
            total = int(trace.get("total_tokens", 0))
            lines += [f"> context: ~{total} tokens ({parts}); drew on {len(used)} item(s)", ""]
            for item in trace.get("retrieved", []):
                mark = "✓" if item.get("used") else "·"
                lines.append(
                    f"> {mark} {md_inline(item['kind'])} {float(item['similarity']):.3f}: {md_inline(item['text'])}  "
                )
            lines.append("")
    return "\n".join(lines)


def export_user(lab: MemoryLab, user_id: str) -> dict[str, Any]:
    facts = lab.facts.all(user_id)
    episodes = lab.episodes.all(user_id)
    return {
        "kind": USER_KIND,
        "version": VERSION,
        "exported_at": time.time(),
        "user_id": user_id,
        "facts": [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in facts],
        "episodes": [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in episodes],
        "fact_log": [asdict(e) for e in lab.facts.history(user_id).items],
    }


# -- reading a file ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedFact:
    id: str  # as in the file; namespaced to the importing user when written
    text: str
    slot: str | None


@dataclass(frozen=True)
class Document:
    """An export, read whole and checked; nothing of it is written yet."""

    kind: str
    user_id: str | None  # whose export it was
    session_id: str | None = None
    messages: tuple[Message, ...] = ()
    traces: dict[str, Trace] = field(default_factory=dict)
    facts: tuple[ImportedFact, ...] = ()
    episodes: tuple[tuple[str, str], ...] = ()  # (session id, text)
    notes: tuple[str, ...] = ()  # what will be skipped, and why
    settings: dict[str, Any] | None = None  # the session's strategy and settings, checked as a job's are


def load_document(raw: bytes | str) -> dict[str, Any]:
    """The JSON of an export (its bytes or text), bounded in size and depth, of a kind and version this Memory
    Lab reads. Text that is not valid Unicode becomes bytes that are not UTF-8, refused as such."""
    raw = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    data = J.obj(J.read_json(raw, "the file", MAX_IMPORT_BYTES), "the file")
    _envelope(data)
    return data


def _envelope(data: dict[str, Any]) -> str:
    kind = data.get("kind")
    if kind not in (SESSION_KIND, USER_KIND):
        shown = repr(kind)[:40] if isinstance(kind, str) else kind_of(kind)
        raise InputError(f"not a Memory Lab export (kind {shown}; expected {SESSION_KIND} or {USER_KIND})")
    version = data.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise InputError(f"this export has version {str(version)[:10]!r}; this Memory Lab reads {VERSION}")
    return str(kind)


# The top-level keys of each kind of export (as ``export_session`` and ``export_user`` write them).
KEYS = {
    SESSION_KIND: (
        "kind",
        "version",
        "exported_at",
        "user_id",
        "session_id",
        "settings",
        "summary",
        "messages",
        "traces",
        "skipped_corrupt_entries",
    ),
    USER_KIND: ("kind", "version", "exported_at", "user_id", "facts", "episodes", "fact_log"),
}


def read_document(data: Any, max_message_chars: int) -> Document:
    """Check every field of an export against the limits a person typing it would meet; refuse it whole."""
    J.check_depth(data, "the file")
    data = J.obj(without_iso_dates(data), "the file")
    kind = _envelope(data)
    J.known_keys(data, KEYS[kind], "the file")
    user_id = J.ident(data["user_id"], "user_id") if data.get("user_id") is not None else None
    if kind == SESSION_KIND:
        return _read_session(data, user_id, max_message_chars)
    return _read_user_memory(data, user_id, max_message_chars)


def _read_session(data: dict[str, Any], user_id: str | None, max_chars: int) -> Document:
    session_id = J.ident(J.field(data, "session_id", "the file"), "session_id")
    messages = []
    for i, raw in enumerate(J.items(J.field(data, "messages", "the file", []), "messages", MAX_SESSION_MESSAGES)):
        where = f"messages[{i}]"
        try:
            message = Message.from_dict(raw)
        except StoredDataError as exc:
            raise InputError(f"{where}: {exc}") from None
        J.ident(message.id, f"{where}.id")
        J.text(message.content, f"{where}.content", max_chars, empty=True, limit="MEMLAB_MAX_MESSAGE_CHARS")
        if message.model_id is not None:
            J.name(message.model_id, f"{where}.model_id", MAX_NAME_CHARS)
        messages.append(message)
    J.unique([m.id for m in messages], lambda i: f"messages[{i}]", "id")
    present = {m.id for m in messages}
    traces: dict[str, Trace] = {}
    notes = []
    raw_traces = J.obj(J.field(data, "traces", "the file", {}), "traces")
    if len(raw_traces) > MAX_SESSION_MESSAGES:
        raise InputError(f"traces has {len(raw_traces):,} entries; the limit is {MAX_SESSION_MESSAGES:,}")
    for mid, raw in raw_traces.items():
        where = f"traces[{mid[:64]!r}]"
        J.ident(mid, f"{where}'s message id")
        size = len(dump_json(raw))
        if size > MAX_TRACE_CHARS:
            raise InputError(f"{where} has {size:,} characters of JSON; the limit is {MAX_TRACE_CHARS:,}")
        try:
            trace = Trace.from_dict(raw)
        except StoredDataError as exc:
            raise InputError(f"{where}: {exc}") from None
        if mid in present:
            traces[mid] = trace
        else:
            notes.append(f"{where}: no message {mid!r} in the file")
    if J.text(J.field(data, "summary", "the file", ""), "summary", MAX_TRACE_CHARS, empty=True).strip():
        # Every imported message goes into the buffer: the next fold summarises them again, and a summary
        # written now would hold them twice.
        notes.append("summary: not imported; the session's summary is made again from its messages by folding")
    settings = _read_settings(data.get("settings"))
    return Document(SESSION_KIND, user_id, session_id, tuple(messages), traces, notes=tuple(notes), settings=settings)


def _read_settings(raw: Any) -> dict[str, Any] | None:
    """The session's strategy and settings (``SessionStore.meta``): a known strategy, settings as a job's."""
    if raw is None:
        return None
    settings = J.known_keys(J.obj(raw, "settings"), ("strategy", "config"), "settings")
    strategy = J.one_of(J.field(settings, "strategy", "settings"), "settings.strategy", sorted(STRATEGIES))
    try:
        config = StrategyConfig.checked(J.field(settings, "config", "settings", {}), StrategyConfig())
    except InputError as exc:
        raise InputError(f"settings.config: {exc}") from None
    return {"strategy": strategy, "config": config.to_dict()}


def _read_user_memory(data: dict[str, Any], user_id: str | None, max_chars: int) -> Document:
    facts = []
    for i, raw in enumerate(J.items(J.field(data, "facts", "the file", []), "facts", MAX_FACTS)):
        where = f"facts[{i}]"
        fact = J.obj(raw, where)
        meta = J.obj(J.field(fact, "metadata", where, {}), f"{where}.metadata")
        slot = J.text(J.field(meta, "slot", where, ""), f"{where}.metadata.slot", MAX_SLOT_CHARS, empty=True)
        if slot:
            J.name(slot, f"{where}.metadata.slot", MAX_SLOT_CHARS)
        facts.append(
            ImportedFact(
                J.ident(J.field(fact, "id", where), f"{where}.id"),
                tidy_fact(J.text(J.field(fact, "text", where), f"{where}.text", MAX_IMPORT_BYTES), f"{where}.text"),
                slot_of({"slot": slot}),
            )
        )
    J.unique([f.id for f in facts], lambda i: f"facts[{i}]", "id")
    episodes = []
    for i, raw in enumerate(J.items(J.field(data, "episodes", "the file", []), "episodes", MAX_FACTS)):
        where = f"episodes[{i}]"
        episode = J.obj(raw, where)
        meta = J.obj(J.field(episode, "metadata", where), f"{where}.metadata")
        session_id = J.ident(J.field(meta, "session_id", f"{where}.metadata"), f"{where}.metadata.session_id")
        text = J.text(J.field(episode, "text", where), f"{where}.text", max_chars, limit="MEMLAB_MAX_MESSAGE_CHARS")
        episodes.append((session_id, text))
    J.unique([sid for sid, _ in episodes], lambda i: f"episodes[{i}]", "session")
    return Document(USER_KIND, user_id, facts=tuple(facts), episodes=tuple(episodes))


# -- writing it -------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    user_id: str
    written: dict[str, int]  # what the import added, by kind
    unchanged: int = 0  # items already there as in the file
    notes: list[str] = field(default_factory=list)  # items skipped, each with its reason
    replaced: list[str] = field(default_factory=list)  # facts whose text the file's replaced: which, old -> new
    completed: int = 0  # facts an earlier import wrote but cut short before logging: logged now

    def describe(self) -> str:
        done = ", ".join(f"{n} {what}" for what, n in self.written.items())
        line = f"imported {done} into {self.user_id}"
        if self.unchanged:
            line += f" ({self.unchanged} already there)"
        if self.replaced:
            line += f"; replaced {len(self.replaced)} fact(s) (undo takes back the last): " + "; ".join(
                self.replaced[:5]
            )
        if self.completed:
            line += f"; logged {self.completed} fact(s) an earlier import stored without logging"
        if self.notes:
            line += f"; {len(self.notes)} skipped: " + "; ".join(self.notes[:5])
        return line


def import_document(
    lab: MemoryLab,
    data: dict[str, Any] | Document,
    user_id: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Load an export back (into ``user_id`` if given, else the file's user): all checked first, then written.

    ``progress(done, total)`` hears how many of the file's facts are written.
    """
    doc = data if isinstance(data, Document) else read_document(data, lab.settings.max_message_chars)
    if user_id is None and doc.user_id is None:
        raise InputError("the file names no user_id: give the user to import into")
    target = J.ident(doc.user_id if user_id is None else user_id, "the user to import into")
    if doc.kind == SESSION_KIND:
        return _write_session(lab, doc, target)
    return _write_user_memory(lab, doc, target, progress)


def owned_fact_id(user_id: str, file_id: str, own: set[str]) -> str:
    """The id a file's fact gets in ``user_id``'s memory: kept when it already names one of theirs, else
    derived from the user and the file's id (the same on every import, and never another user's id)."""
    if file_id in own:
        return file_id
    return imported_id(user_id, file_id)


def _write_session(lab: MemoryLab, doc: Document, user_id: str) -> ImportReport:
    assert doc.session_id is not None
    session_id = doc.session_id
    report = ImportReport(user_id, {"messages": 0, "traces": 0}, notes=list(doc.notes))
    held = {m.id: m for m in lab.sessions.log(user_id, session_id).messages}
    for i, message in enumerate(doc.messages):
        if lab.sessions.append(user_id, session_id, message):
            report.written["messages"] += 1
        elif held.get(message.id, message) == message:
            report.unchanged += 1
        else:  # the id is taken by another message: the session's own stays, and the report says so
            report.notes.append(f"messages[{i}]: the session holds another message under the id {message.id!r}")
    stored = {mid for mid, _ in lab.sessions.traces(user_id, session_id).items}
    for mid, trace in doc.traces.items():
        if mid in stored:  # a trace already there is the session's own: never overwritten
            report.unchanged += 1
            continue
        mine = replace(trace, user_id=user_id, session_id=session_id)
        lab.sessions.save_trace(user_id, session_id, mid, mine.to_dict(derived=False))
        report.written["traces"] += 1
    if doc.settings is not None and doc.messages:  # settings alone would be a key of no session
        _write_settings(lab, doc.settings, user_id, session_id, report)
    return report


def _write_settings(
    lab: MemoryLab, settings: dict[str, Any], user_id: str, session_id: str, report: ImportReport
) -> None:
    """The file's strategy and settings, for a session that has none yet: the session's own are never changed."""
    own = lab.sessions.meta(user_id, session_id)
    if own == settings:
        report.unchanged += 1
    elif own is not None:
        report.notes.append(f"settings: the session keeps its own (strategy {own['strategy']!r})")
    else:
        with lab.redis.pipeline(transaction=False) as p:
            lab.sessions.stage_append(p, user_id, session_id, None, meta=settings)
            lab.sessions.run(p, user_id, session_id)
        report.written["settings"] = 1


def _write_user_memory(lab: MemoryLab, doc: Document, user_id: str, progress: Progress | None) -> ImportReport:
    """Facts first (batched), then episodes. A fact already there with the file's text is left alone (and its
    log completed if an earlier import was cut short); one whose text differs is replaced and reported, each
    logged as an UPDATE of the exact text it had."""
    report = ImportReport(user_id, {"facts": 0, "episodes": 0})
    current = {r.id: r for r in lab.facts.all(user_id)}
    placed = [(owned_fact_id(user_id, f.id, set(current)), f) for f in doc.facts]
    J.unique([fid for fid, _ in placed], lambda i: f"facts[{i}]", "fact (after namespacing)")
    same, writes = [], []
    for i, (fact_id, fact) in enumerate(placed):
        old = current.get(fact_id)
        if old is not None and old.text == fact.text:
            same.append(old)
            continue
        writes.append(
            FactWrite(fact_id, fact.text, fact.slot, old.text if old else None, old.metadata if old else None)
        )
        if old is not None:
            report.replaced.append(f"facts[{i}] {preview(old.text, 80)!r} -> {preview(fact.text, 80)!r}")
    report.unchanged += len(same)
    report.completed = len(lab.facts.complete_log(user_id, same))
    lab.facts.put_facts(user_id, writes, progress)
    report.written["facts"] = len(writes) - len(report.replaced)
    stored = {
        str(r.metadata.get("session_id")): r.text for r in lab.episodes.get(user_id, [s for s, _ in doc.episodes])
    }
    for session_id, text in doc.episodes:
        if stored.get(session_id) == (text.strip() or EMPTY):  # as the episode store keeps it
            report.unchanged += 1
            continue
        lab.episodes.upsert(user_id, session_id, text, [], lab.keys.session(user_id, session_id).log)
        report.written["episodes"] += 1
    return report


def dumps(data: dict[str, Any]) -> str:
    """The export as people and programs read it: every moment as epoch seconds and as an ISO date beside it."""
    return json.dumps(with_iso_dates(data), ensure_ascii=False, indent=2)
