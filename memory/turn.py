"""One chat turn, in two halves around the LLM call, so a reply can be awaited whole or streamed.

Two round trips to Redis per turn. ``Turn.begin`` checks the input, then
stores the user's message and reads what the context needs in one round
trip (first: a Redis problem shows before any slow work). If the user has
upkeep jobs still running and the strategy's context depends on them, it
waits for them (briefly; the trace says which were still pending): a
strategy that sends this session's messages unfolded, or retrieves from other
sessions only, waits for other sessions' jobs only, so a long message's
upkeep does not hold the next message of its own session. Then it
loads the model if needed and builds the context with its trace.
``finish`` stores the reply, the trace, the session's settings and the
turn's upkeep job in the second round trip; a worker does the upkeep
(folding, facts, episodes) after the reply is shown and writes its outcome
beside the trace (see ``upkeep/queue.py``). ``fail`` stores the trace of a turn
whose LLM call failed: the user's message is already safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .backends.embedder import Embedder
from .backends.redis_client import RedisClient
from .config import Settings
from .errors import InputError, LLMError
from .keys import validate_id
from .llm import LLM, LLMReply
from .records.messages import Message, Role
from .records.trace import Trace
from .stores.audit import AuditTrail, message_events
from .stores.fact_store import FactStore
from .stores.session_store import SessionStore
from .strategies import Context, Strategy, StrategyConfig
from .upkeep.jobs import Job
from .upkeep.queue import Upkeep

log = logging.getLogger(__name__)


class TurnServices(Protocol):
    """What a turn uses of the engine (``MemoryLab`` is one): the session store, the model, the upkeep queue.

    Why a Protocol: the turn is a step the lab runs, not a part of it; naming
    what it needs keeps the lab out of its imports (no import cycle) and lets
    a test or another front end hand it just these.
    """

    settings: Settings

    @property
    def redis(self) -> RedisClient: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def audit(self) -> AuditTrail: ...
    @property
    def llm(self) -> LLM: ...
    @property
    def embedder(self) -> Embedder: ...
    @property
    def upkeep(self) -> Upkeep: ...
    @property
    def facts(self) -> FactStore: ...

    def strategy(self, name: str, config: StrategyConfig | None = None) -> Strategy: ...
    def wait_for_upkeep(
        self,
        user_id: str,
        timeout_s: float | None = None,
        only: Collection[str] | None = None,
        settled: Callable[[list[str]], Collection[str]] | None = None,
    ) -> list[str]: ...
    def ensure_worker(self) -> None: ...


@dataclass
class ChatResult:
    user_message: Message
    reply: Message | None
    trace: Trace
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reply": self.reply.content if self.reply else None,
            "error": self.error,
            "user_message": self.user_message.to_dict(),
            "reply_message": self.reply.to_dict() if self.reply else None,
            "trace": self.trace.to_dict(),
        }


def checked_text(text: str, limit: int) -> str:
    """A message or query as the engine accepts it: stripped, not empty, within the limit."""
    text = (text or "").strip()
    if not text:
        raise InputError("the message is empty")
    if len(text) > limit:
        raise InputError(f"the message has {len(text):,} characters; the limit is {limit:,} (MEMLAB_MAX_MESSAGE_CHARS)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the message is not valid UTF-8 text") from None
    return text


@dataclass
class Turn:
    lab: TurnServices
    strategy: Strategy
    user_id: str
    session_id: str
    user_message: Message
    trace: Trace
    context: Context
    started: float

    @classmethod
    def begin(
        cls,
        lab: TurnServices,
        user_id: str,
        session_id: str,
        text: str,
        strategy: str,
        config: StrategyConfig | None,
        message_id: str | None,
    ) -> Turn:
        validate_id("user", user_id)
        validate_id("session", session_id)
        text = checked_text(text, lab.settings.max_message_chars)
        strat = lab.strategy(strategy, config)
        trace = Trace(strategy=strat.name, user_id=user_id, session_id=session_id, settings=strat.config.to_dict())
        trace.llm = {"provider": lab.llm.provider, "label": lab.llm.label}
        user_message = Message(Role.USER, text)
        if message_id:
            user_message = replace(user_message, id=validate_id("message", message_id))
        started = time.perf_counter()
        reads = strat.reads()
        with trace.timed("redis.store_and_read"):
            view = lab.sessions.append_and_read(
                user_id, session_id, user_message, reads, strat.trim_to(), strat.config.ttl_s
            )
        lab.audit.record_turn(message_events(user_id, session_id, [user_message]))  # stored: recorded now
        awaited = view.pending if strat.waits_for_upkeep else []
        own = lab.sessions.holds(user_id, session_id, awaited) if awaited else set()
        settled = None
        if not strat.waits_for_own_session:  # only other sessions' jobs add to this context
            awaited = [job for job in awaited if job not in own]
        elif own and strat.own_jobs_done_at_facts:  # this session's jobs: until their facts are written

            def settled(pending: list[str]) -> set[str]:
                return lab.facts.jobs_logged(user_id, [job for job in pending if job in own])

        if awaited:
            with trace.timed("upkeep.wait"):
                still = lab.wait_for_upkeep(user_id, only=set(awaited), settled=settled)
                view = lab.sessions.read(user_id, session_id, reads)
            if still:
                trace.job["pending_before"] = still
                trace.warnings.append(
                    f"memory still updating: {len(still)} earlier upkeep job(s) had not finished within "
                    f"{lab.settings.upkeep_wait_s:g}s, so this context may miss what they add"
                )
        if "embedder" not in lab.__dict__:
            with trace.timed("embedder.load"):
                _ = lab.embedder
        context = strat.build_context(user_id, session_id, user_message, trace, view)
        trace.system_parts = context.system_parts
        trace.set_messages(context.messages)
        return cls(lab, strat, user_id, session_id, user_message, trace, context, started)

    @property
    def meta(self) -> dict[str, Any]:
        return {"strategy": self.strategy.name, "config": self.strategy.config.to_dict()}

    def _total(self) -> None:
        self.trace.timings_ms["total"] = round((time.perf_counter() - self.started) * 1000, 2)

    def fail(self, exc: LLMError) -> ChatResult:
        self.trace.error = str(exc)
        self._total()
        self.lab.sessions.save_trace(
            self.user_id,
            self.session_id,
            self.user_message.id,
            self.trace.to_dict(derived=False),
            self.strategy.config.ttl_s,
            self.meta,
        )
        return ChatResult(self.user_message, None, self.trace, error=str(exc))

    def finish(self, answer: LLMReply, reply_id: str | None = None) -> ChatResult:
        """Store the reply with its trace and queue the upkeep: one round trip (the upkeep runs inline if so set).

        ``reply_id`` names the reply (an agent's retry then stores it once); by default it is new.
        """
        lab, trace, strat = self.lab, self.trace, self.strategy
        trace.llm.update(model_id=answer.model_id, usage=answer.usage)
        trace.mark_used(list(answer.used))
        reply = Message(Role.ASSISTANT, answer.text, model_id=answer.model_id)
        if reply_id is not None:
            reply = replace(reply, id=reply_id)
        turn = [self.user_message, reply]
        job: Job | None = None
        if strat.has_upkeep and lab.settings.upkeep_mode == "inline":
            self._upkeep_inline(turn)
        elif strat.has_upkeep:
            job = Job(reply.id, self.user_id, self.session_id, strat.name, strat.config.to_dict(), turn)
            trace.job.update(status="queued", id=reply.id)
        self._total()
        with trace.timed("redis.store_reply"), lab.redis.pipeline(transaction=False) as pipe:
            lab.sessions.stage_append(
                pipe,
                self.user_id,
                self.session_id,
                reply,
                strat.trim_to(),
                strat.config.ttl_s,
                trace.to_dict(derived=False),
                self.meta,
            )
            if job is not None:
                lab.upkeep.stage(pipe, job)
            lab.sessions.run(pipe, self.user_id, self.session_id)
        if job is not None:
            lab.ensure_worker()
        lab.audit.record_turn(message_events(self.user_id, self.session_id, [reply]))
        return ChatResult(self.user_message, reply, trace)

    def _upkeep_inline(self, turn: list[Message]) -> None:
        """MEMLAB_UPKEEP=inline: the upkeep runs before the reply is stored, as before there were workers."""
        trace = self.trace
        try:
            self.strategy.after_turn(self.user_id, self.session_id, turn, trace)
            trace.job = {"status": "inline"}
        except Exception as exc:  # upkeep must never lose the turn already stored
            log.warning("memory upkeep failed for %s/%s", self.user_id, self.session_id, exc_info=True)
            trace.warnings.append(f"memory upkeep failed: {type(exc).__name__}: {exc}")
            trace.job = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}

    def stream(self, llm: LLM) -> Generator[str, None, ChatResult]:
        """Yield the reply's text as it arrives; return the finished turn."""
        started = time.perf_counter()
        try:
            answer = yield from llm.stream_reply(self.context.system_parts, self.context.messages)
        except LLMError as exc:
            return self.fail(exc)
        finally:
            self.trace.timings_ms["llm.reply"] = round((time.perf_counter() - started) * 1000, 2)
        return self.finish(answer)


class TurnStream:
    """Iterate for the reply's text (e.g. ``st.write_stream``); ``result`` is the whole turn once it has run out."""

    def __init__(self, generator: Generator[str, None, ChatResult]) -> None:
        self._generator = generator
        self.result: ChatResult | None = None

    def __iter__(self) -> Iterator[str]:
        self.result = yield from self._generator
