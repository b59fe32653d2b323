from __future__ import annotations

from ..messages import Message
from ..session_store import SessionView
from ..trace import Trace
from .base import Context, Strategy
from .parts import instructions, recent_messages


class BufferStrategy(Strategy):
    name = "buffer"
    description = "The last N messages from a Redis list with a sliding TTL."
    uses = ("buffer_size", "ttl_s")

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        messages = recent_messages(view, trace)
        return Context([instructions(self.keeps())], messages)
