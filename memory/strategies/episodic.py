from __future__ import annotations

from ..records.messages import Message
from ..records.trace import Trace
from ..stores.session_store import Reads, SessionView
from .base import Context, Strategy
from .parts import (
    embed_query,
    episode_items,
    episodes_part,
    instructions,
    keep_whole_memory,
    turn_items,
    turns_part,
)


class EpisodicStrategy(Strategy):
    name = "episodic"
    description = "Whole past sessions, ranked by their turns (BM25 + dense), shown as summaries."
    uses = ("episodes_k", "top_k", "ttl_s")

    def keeps(self) -> str:
        return "summaries of past sessions and what was said in them (not the current session's messages)"

    def reads(self) -> Reads:
        return Reads()

    @property
    def waits_for_own_session(self) -> bool:
        return False  # the context is other sessions' episodes and turns only

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        vector = embed_query(self.s, query, trace)
        items = episode_items(self.s, user_id, session_id, query, vector, self.config.episodes_k, trace)
        turns = turn_items(self.s, user_id, session_id, query, vector, self.config.top_k, trace)
        trace.retrieved.extend(items + turns)
        parts = [instructions(self.keeps())]
        for part in (episodes_part(items), turns_part(turns)):
            if part:
                parts.append(part)
        return Context(parts, [query])

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        keep_whole_memory(self.s, user_id, session_id, turn, self.config, trace)
