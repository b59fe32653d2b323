"""Retention you can see: a user's policy (forget facts past an age, or idle too long, or summarise them first),
pinned facts it never touches, a preview that is exactly what applying it removes, and an undo for a grace period.

Why this shape: a policy that removes memory silently is what people distrust
in memory products. Here ``preview`` and ``apply`` share one function that
picks the facts, so what the preview lists is what apply removes (apply takes
the preview's ids and refuses when memory changed since it was shown). Each
removal is a DELETE in the fact log (so in the audit trail, and in the fact's
versions) naming the run; the run keeps the removed facts, text and metadata,
so ``undo`` puts them back exactly until the grace period ends.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends.vector_store import FACTS, Record
from ..errors import InputError, StoredDataError
from ..keys import validate_id
from ..records.messages import Message, Role
from ..records.stored import as_dict, as_number, as_text, load_json
from ..stores.fact_store import tidy_fact

DAY_S = 86_400.0
ACTIONS = ("forget", "summarise")
GRACE_S = 7 * DAY_S  # how long a run can be undone
EVERY_S = 3_600.0  # the upkeep worker applies a user's policy at most this often
SUMMARY_TOKENS = 200


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_days: float | None = None  # a fact said longer ago than this goes
    max_idle_days: float | None = None  # a fact not said again nor changed for this long goes
    action: str = "forget"  # forget | summarise (one fact that sums up those removed, then forget them)
    grace_days: float = GRACE_S / DAY_S

    def __post_init__(self) -> None:
        for name in ("max_age_days", "max_idle_days", "grace_days"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 36_500):
                raise InputError(f"{name} must be a number of days from 0 to 36500, not {value!r}")
        if self.action not in ACTIONS:
            raise InputError(f"the retention action must be one of {', '.join(ACTIONS)}, not {self.action!r}")

    @property
    def empty(self) -> bool:
        return self.max_age_days is None and self.max_idle_days is None

    @classmethod
    def from_dict(cls, data: Any) -> RetentionPolicy:
        d = as_dict(data, "retention policy")

        def days(name: str) -> float | None:
            value = as_number(d.get(name), name, optional=True)
            return None if value is None else float(value)

        try:
            return cls(
                days("max_age_days"),
                days("max_idle_days"),
                as_text(d.get("action", "forget"), "action"),
                float(as_number(d.get("grace_days", GRACE_S / DAY_S), "grace_days")),
            )
        except InputError as exc:
            raise StoredDataError(f"the stored retention policy is not valid: {exc}") from exc


@dataclass(frozen=True)
class Removal:
    """A fact a policy removes, and why."""

    id: str
    text: str
    reason: str  # "age" | "idle"
    days: float  # its age or idle time, in days
    superseded: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RetentionRun:
    id: str
    at: float
    until: float  # undoable until then
    removed: list[Removal]
    summary_fact: str | None = None  # the fact "summarise" added
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)  # what undo puts back

    def to_dict(self, with_records: bool = False) -> dict[str, Any]:
        data = {
            "id": self.id,
            "at": self.at,
            "until": self.until,
            "removed": [r.to_dict() for r in self.removed],
            "summary_fact": self.summary_fact,
        }
        return {**data, "records": self.records} if with_records else data


def _stored(lab: Any, user_id: str) -> dict[str, Any] | None:
    """The user's stored policy record, or None; ``StoredDataError`` saying so when it is damaged."""
    raw = lab.redis.get(lab.keys.user(user_id).retention)
    if raw is None:
        return None
    try:
        data = as_dict(load_json(raw), "retention")
        RetentionPolicy.from_dict(data.get("policy"))
    except StoredDataError as exc:
        raise StoredDataError(
            f"the retention policy stored for user {user_id} is damaged ({exc}); set it again "
            "(python -m memory retention set) — nothing was removed"
        ) from exc
    return data


def get_policy(lab: Any, user_id: str) -> RetentionPolicy | None:
    data = _stored(lab, user_id)
    return None if data is None else RetentionPolicy.from_dict(data.get("policy"))


def set_policy(lab: Any, user_id: str, policy: RetentionPolicy | None) -> None:
    """Store the user's policy (None or an empty policy: none)."""
    key = lab.keys.user(validate_id("user", user_id)).retention
    if policy is None or policy.empty:
        lab.redis.delete(key)
    else:
        lab.redis.set(key, json.dumps({"policy": asdict(policy), "last_applied": 0.0}))


def pins(lab: Any, user_id: str) -> set[str]:
    return set(lab.redis.smembers(lab.keys.user(user_id).pins))


def pin(lab: Any, user_id: str, fact_id: str, pinned: bool = True) -> None:
    """Pin (or unpin) one of the user's facts; ``InputError`` when the user has no such fact."""
    validate_id("user", user_id)
    if pinned and not any(r.metadata.get("user_id") == user_id for r in lab.vectors.get(FACTS, ids=[fact_id])):
        raise InputError(f"user {user_id!r} has no fact {fact_id!r}")
    key = lab.keys.user(user_id).pins
    (lab.redis.sadd if pinned else lab.redis.srem)(key, fact_id)


def _when(meta: dict[str, Any], *names: str) -> float:
    for name in names:
        value = meta.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 0.0


def _chosen(records: list[Record], pinned: set[str], policy: RetentionPolicy, now: float) -> list[Removal]:
    out: list[Removal] = []
    for r in records:
        if r.id in pinned:
            continue
        age = (now - _when(r.metadata, "said_at", "created_at")) / DAY_S
        idle = (now - _when(r.metadata, "updated_at", "said_at", "created_at")) / DAY_S
        superseded = bool(r.metadata.get("superseded_by"))
        if policy.max_age_days is not None and age > policy.max_age_days:
            out.append(Removal(r.id, r.text, "age", round(age, 2), superseded))
        elif policy.max_idle_days is not None and idle > policy.max_idle_days:
            out.append(Removal(r.id, r.text, "idle", round(idle, 2), superseded))
    return sorted(out, key=lambda x: -x.days)


def preview(lab: Any, user_id: str, policy: RetentionPolicy | None = None, now: float | None = None) -> list[Removal]:
    """Exactly the facts ``apply`` would remove now (pinned ones never; superseded statements too)."""
    policy = policy or get_policy(lab, user_id)
    if policy is None or policy.empty:
        return []
    records = lab.facts.all(validate_id("user", user_id), superseded=True)
    return _chosen(records, pins(lab, user_id), policy, time.time() if now is None else now)


def apply(
    lab: Any,
    user_id: str,
    policy: RetentionPolicy | None = None,
    now: float | None = None,
    expected: list[str] | None = None,
) -> RetentionRun:
    """Remove what ``preview`` lists, as one run (logged and audited per fact, undoable for the grace period).

    ``expected`` is the ids a preview showed: when memory changed since (a
    fact said again, pinned, added), nothing is removed and ``InputError``
    says to look again, so apply never removes what the person did not see.
    """
    policy = policy or get_policy(lab, user_id)
    if policy is None or policy.empty:
        raise InputError(f"user {user_id!r} has no retention policy (set one first)")
    now = time.time() if now is None else now
    chosen = preview(lab, user_id, policy, now)
    if expected is not None and sorted(expected) != sorted(r.id for r in chosen):
        raise InputError("memory changed since the preview; nothing was removed: preview again, then apply")
    run = RetentionRun(uuid.uuid4().hex[:12], now, now + policy.grace_days * DAY_S, chosen)
    if not chosen:
        _mark_applied(lab, user_id, now)
        return run
    job = f"retention-{run.id}"
    by_id = {r.id: r for r in lab.facts.all(user_id, superseded=True)}
    run.records = [{"id": r.id, "text": by_id[r.id].text, "metadata": by_id[r.id].metadata} for r in chosen]
    if policy.action == "summarise":
        run.summary_fact = _summarise(lab, user_id, chosen, job)
    _save_run(lab, user_id, run)  # before the removals: a crash half-way can still be undone
    for removal in chosen:
        lab.facts.delete(user_id, removal.id, job=job)
    _mark_applied(lab, user_id, now)
    return run


def _summarise(lab: Any, user_id: str, chosen: list[Removal], job: str) -> str:
    """One fact that sums up the facts about to go (the summariser the folds use), added before they go."""
    said = [Message(Role.USER, r.text) for r in chosen if not r.superseded] or [Message(Role.USER, chosen[0].text)]
    text = lab.llm.summarize("", said, SUMMARY_TOKENS).strip() or "; ".join(m.content for m in said)
    fact_id = uuid.uuid5(uuid.NAMESPACE_URL, f"memlab:retention:{user_id}:{job}").hex
    lab.facts.restore(
        user_id, fact_id, tidy_fact(f"Earlier: {text}", "the retention summary"), None, event="ADD", job=job
    )
    return fact_id


def _save_run(lab: Any, user_id: str, run: RetentionRun) -> None:
    lab.redis.hset(lab.keys.user(user_id).retention_runs, run.id, json.dumps(run.to_dict(with_records=True)))


def _mark_applied(lab: Any, user_id: str, now: float) -> None:
    key = lab.keys.user(user_id).retention
    raw = lab.redis.get(key)
    if raw is None:
        return
    try:
        data = as_dict(load_json(raw), "retention")
    except StoredDataError:
        return
    lab.redis.set(key, json.dumps({**data, "last_applied": now}))


def runs(lab: Any, user_id: str) -> tuple[list[RetentionRun], int]:
    """The user's runs still kept (newest first), and how many stored entries were damaged."""
    out: list[RetentionRun] = []
    damaged = 0
    for raw in lab.redis.hgetall(lab.keys.user(validate_id("user", user_id)).retention_runs).values():
        try:
            d = as_dict(load_json(raw), "retention run")
            out.append(
                RetentionRun(
                    as_text(d.get("id"), "id"),
                    float(as_number(d.get("at"), "at")),
                    float(as_number(d.get("until"), "until")),
                    [Removal(**as_dict(r, "removal")) for r in d.get("removed") or []],
                    as_text(d.get("summary_fact"), "summary_fact", optional=True),
                    [as_dict(r, "record") for r in d.get("records") or []],
                )
            )
        except (StoredDataError, TypeError):
            damaged += 1
    return sorted(out, key=lambda r: -r.at), damaged


def undo(lab: Any, user_id: str, run_id: str, now: float | None = None) -> int:
    """Put back the facts run ``run_id`` removed, exactly as stored (and drop its summary fact); how many came back.

    Refused after the grace period (the run's record is then dropped): the
    DELETE events in the fact log still show what it removed.
    """
    now = time.time() if now is None else now
    found = {r.id: r for r in runs(lab, user_id)[0]}
    run = found.get(run_id)
    key = lab.keys.user(user_id).retention_runs
    if run is None:
        raise InputError(f"user {user_id!r} has no retention run {run_id!r} to undo (already undone, or expired)")
    if now > run.until:
        lab.redis.hdel(key, run_id)
        raise InputError(f"retention run {run_id} can no longer be undone: its grace period ended")
    job = f"retention-{run.id}"
    records = [Record(str(r.get("id")), str(r.get("text")), dict(r.get("metadata") or {})) for r in run.records]
    back = lab.facts.reinstate(user_id, records, job)
    if run.summary_fact:
        lab.facts.delete(user_id, run.summary_fact, job=job)
    lab.redis.hdel(key, run_id)
    return len(back)


def apply_due(lab: Any, user_id: str, now: float | None = None) -> RetentionRun | None:
    """The upkeep worker's call after a user's job: apply the user's policy when it was not applied in the last
    ``EVERY_S`` seconds; drop runs past their grace period. None when nothing was due."""
    now = time.time() if now is None else now
    data = _stored(lab, user_id)
    if data is None:
        return None
    last = data.get("last_applied")
    if isinstance(last, (int, float)) and now - float(last) < EVERY_S:
        return None
    for run in runs(lab, user_id)[0]:
        if now > run.until:
            lab.redis.hdel(lab.keys.user(user_id).retention_runs, run.id)
    return apply(lab, user_id, RetentionPolicy.from_dict(data.get("policy")), now)
