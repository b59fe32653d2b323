from __future__ import annotations

from ..records.messages import Message
from ..records.trace import Trace
from ..stores.session_store import SessionView
from .base import Context, Strategy
from .parts import instructions, keep_whole_memory, recent_messages


class BufferStrategy(Strategy):
    name = "buffer"
    description = "The last N messages from a Redis list with a sliding TTL."
    uses = ("buffer_size", "ttl_s")

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        messages = recent_messages(view, trace)
        return Context([instructions(self.keeps())], messages)

    @property
    def waits_for_upkeep(self) -> bool:
        return False  # the buffer's context is the session's last messages: no upkeep changes it

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        keep_whole_memory(self.s, user_id, session_id, turn, self.config, trace)
