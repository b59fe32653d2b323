from __future__ import annotations

from ..records.messages import Message
from ..records.trace import Trace
from ..stores.session_store import Reads, SessionView
from .base import Context, Strategy, folding_cap
from .parts import fold_if_needed, instructions, keep_whole_memory, recent_messages, summary_part


class SummaryStrategy(Strategy):
    name = "summary"
    description = "Recent messages plus a rolling summary that older messages fold into."
    uses = ("summary_threshold", "summary_keep", "ttl_s")

    def trim_to(self) -> int | None:
        return folding_cap(self.config)

    def keeps(self) -> str:
        return (
            "this session's recent messages and a running summary of older ones; nothing carries over to a new session"
        )

    def reads(self) -> Reads:
        return Reads(last=None, summary=True)

    @property
    def waits_for_upkeep(self) -> bool:
        return False  # only this session's fold, and the buffer holds its messages whole until the fold is done

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        parts = [instructions(self.keeps())]
        summary = summary_part(view)
        if summary:
            parts.append(summary)
        return Context(parts, recent_messages(view, trace))

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        c = self.config
        fold_if_needed(self.s, user_id, session_id, c, turn, trace)
        keep_whole_memory(self.s, user_id, session_id, turn, c, trace)
