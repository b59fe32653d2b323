"""The upkeep job format: what a turn hands the workers, what they record, and the one reader for each.

A job is a stream entry anyone with access to Redis could have written, so
the worker reads it as untrusted input, field by field: ids by the rules of
``keys.py``, the strategy by name, its settings as whole numbers in range,
every message decoded by the message codec, sizes bounded. What fails is a
``JobError`` carrying what could still be read (user, session, job id), so
the worker can move the entry aside as a dead letter and say why, instead of
raising on it at every read. The outcome a worker records, and the dead
letter it leaves, are read back through the same kind of reader here.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError, StoredDataError
from ..keys import is_valid_id
from ..records.messages import Message, MessageDecodeError, Role, decode, encode
from ..records.stored import as_dict, as_text, as_timestamp, dump_json, load_json, preview

# A job carries one turn: its user message(s) and the reply they got, each within MEMLAB_MAX_MESSAGE_CHARS,
# and the settings. These bounds are far above that and far below what could hurt a worker.
MAX_JOB_CHARS = 2_000_000
MAX_MESSAGES = 8
# The chat's own limit when the reader is not told the configured one (Settings.max_message_chars).
DEFAULT_MAX_MESSAGE_CHARS = 32_000
# Dead letters kept (newest first); older ones fall off the list.
MAX_DEAD_LETTERS = 1000
# How much of an unreadable entry a dead letter keeps, to show what it was.
RAW_PREVIEW_CHARS = 300


class JobError(StoredDataError):
    """A stream entry that is not a job this worker may apply; says why, with the ids that could be read."""

    def __init__(self, reason: str, user_id: str = "", session_id: str = "", job_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id
        self.session_id = session_id
        self.job_id = job_id


@dataclass
class Job:
    """One turn's upkeep: what the strategy's ``after_turn`` needs, carried whole in the stream entry."""

    id: str  # the reply's message id: one job per turn
    user_id: str
    session_id: str
    strategy: str
    config: dict[str, Any]
    messages: list[Message]
    queued_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        data = asdict(self)
        data["messages"] = [encode(m) for m in self.messages]
        return dump_json(data)

    @classmethod
    def from_json(cls, raw: Any) -> Job:
        return read_job(raw)


def read_job(raw: Any, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> Job:
    """The job in a stream entry's ``job`` field, every field checked; ``JobError`` says what is wrong.

    A job has the shape of one turn: the user's message(s), then the one
    assistant reply they got (whose id is the job's), each message within
    ``max_message_chars`` (MEMLAB_MAX_MESSAGE_CHARS), as chat holds them.
    """
    if raw is None:
        raise JobError("the entry has no 'job' field: not an upkeep job")
    if not isinstance(raw, str):
        raise JobError("the 'job' field is not text")
    if len(raw) > MAX_JOB_CHARS:
        raise JobError(f"the job has {len(raw):,} characters; a job holds one turn (at most {MAX_JOB_CHARS:,})")
    try:
        data = as_dict(load_json(raw), "the job")
    except StoredDataError as exc:
        raise JobError(f"not a job: {exc}") from None
    found = {name: _id_or_blank(data.get(name)) for name in ("user_id", "session_id", "id")}
    try:
        return _checked(data, found, max_message_chars)
    except (StoredDataError, InputError) as exc:
        raise JobError(str(exc), found["user_id"], found["session_id"], found["id"]) from None


def _id_or_blank(value: Any) -> str:
    return value if is_valid_id(value) else ""


def _checked(data: dict[str, Any], found: dict[str, str], max_chars: int) -> Job:
    for name, what in (("user_id", "user"), ("session_id", "session"), ("id", "job")):
        if not found[name]:
            raise InputError(f"{name} {preview(repr(data.get(name)), 60)} is not a valid {what} id")
    from ..strategies import STRATEGIES, StrategyConfig  # the format names strategies; they import the stores

    strategy = as_text(data.get("strategy"), "strategy")
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {preview(strategy, 40)!r}")
    config = data.get("config", {})
    StrategyConfig.checked(config, StrategyConfig())
    messages = _messages(data.get("messages"), max_chars)
    if messages[-1].id != found["id"]:
        raise InputError("the job's id is not the id of its last message (the reply it follows)")
    return Job(
        id=found["id"],
        user_id=found["user_id"],
        session_id=found["session_id"],
        strategy=strategy,
        config=dict(config),
        messages=messages,
        queued_at=as_timestamp(data.get("queued_at"), "queued_at"),
    )


def _messages(raws: Any, max_chars: int) -> list[Message]:
    if not isinstance(raws, list) or not raws:
        raise InputError("a job without messages")
    if len(raws) > MAX_MESSAGES:
        raise InputError(f"a job with {len(raws)} messages; a turn has at most {MAX_MESSAGES}")
    messages = []
    for i, raw in enumerate(raws):
        try:
            message = decode(as_text(raw, f"message #{i}"))
        except MessageDecodeError as exc:
            raise InputError(f"message #{i}: {exc}") from None
        last = i == len(raws) - 1
        # A turn is the user's message(s), then the reply; an agent may also remember one message on its own
        # (``agent_memory``: a user's or an assistant's), which is then the whole job.
        alone = len(raws) == 1 and message.role in (Role.USER, Role.ASSISTANT)
        if message.role is not (Role.ASSISTANT if last else Role.USER) and not alone:
            raise InputError(
                f"message #{i} is a {message.role.value} message; a turn is the user's message(s), then the "
                "assistant's reply"
            )
        if not is_valid_id(message.id):
            raise InputError(f"message #{i} has an id that is not valid ({preview(message.id, 60)!r})")
        if len(message.content) > max_chars:
            raise InputError(
                f"message #{i} has {len(message.content):,} characters; the limit is {max_chars:,} "
                "(MEMLAB_MAX_MESSAGE_CHARS)"
            )
        messages.append(message)
    if len({m.id for m in messages}) != len(messages):
        raise InputError("two messages of the job share an id")
    return messages


@dataclass(frozen=True)
class DeadLetter:
    """A stream entry a worker refused, moved aside: when, why, and whose it was.

    A readable job's messages are not kept (a forget must not leave them
    here); an unreadable entry keeps its first characters, to show what it was.
    """

    at: float
    entry: str  # the stream entry id
    reason: str
    job_id: str = ""
    user_id: str = ""
    session_id: str = ""
    raw: str = ""

    def to_json(self) -> str:
        return dump_json(asdict(self))

    @classmethod
    def from_stored(cls, raw: Any) -> DeadLetter:
        d = as_dict(load_json(raw), "dead letter")
        ids = {}
        for name in ("job_id", "user_id", "session_id"):
            value = as_text(d.get(name, ""), name)
            if value and not is_valid_id(value):
                raise StoredDataError(f"{name} is not a valid id")
            ids[name] = value
        return cls(
            at=as_timestamp(d.get("at"), "at"),
            entry=preview(as_text(d.get("entry"), "entry"), 60),
            reason=preview(as_text(d.get("reason"), "reason"), 1000),
            raw=preview(as_text(d.get("raw", ""), "raw"), RAW_PREVIEW_CHARS),
            **ids,
        )


def dead_letter(entry: str, error: JobError | str, raw: Any = None, **ids: str) -> DeadLetter:
    """The dead letter for a refused entry; ``raw`` (an unreadable entry's text) is kept only in part."""
    if isinstance(error, JobError):
        ids = {"user_id": error.user_id, "session_id": error.session_id, "job_id": error.job_id, **ids}
    kept = preview(raw if isinstance(raw, str) else repr(raw), RAW_PREVIEW_CHARS) if raw is not None else ""
    return DeadLetter(time.time(), preview(str(entry), 60), preview(str(error), 1000), raw=kept, **ids)
