from __future__ import annotations

from ..records.messages import Message
from ..records.trace import Trace
from ..stores.session_store import Reads, SessionView
from .base import Context, Strategy
from .parts import embed_query, fact_items, facts_part, instructions, keep_whole_memory


class FactsStrategy(Strategy):
    name = "facts"
    description = "Long-term facts from what you say about yourself, kept across sessions, retrieved by similarity."
    uses = ("top_k", "ttl_s")

    def keeps(self) -> str:
        return "long-term facts from every session (name, home, work, likes…), not the conversation itself"

    def reads(self) -> Reads:
        return Reads()

    @property
    def own_jobs_done_at_facts(self) -> bool:
        return True

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        items = fact_items(self.s, user_id, query, embed_query(self.s, query, trace), self.config.top_k, trace)
        trace.retrieved.extend(items)
        parts = [instructions(self.keeps())]
        facts = facts_part(items)
        if facts:
            parts.append(facts)
        return Context(parts, [query])

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        keep_whole_memory(self.s, user_id, session_id, turn, self.config, trace)
