from __future__ import annotations

from ..records.messages import Message
from ..records.tokens import count_tokens
from ..records.trace import Trace
from ..stores.session_store import Reads, SessionView
from .base import Context, Strategy, folding_cap
from .parts import (
    embed_query,
    episode_items,
    episodes_part,
    fact_items,
    facts_part,
    fit_part,
    fold_if_needed,
    instructions,
    keep_whole_memory,
    recent_messages,
    summary_part,
    turn_items,
    turns_part,
)


class HybridStrategy(Strategy):
    name = "hybrid"
    description = "Buffer, rolling summary, facts and past episodes within one token budget."
    uses = ("token_budget", "top_k", "episodes_k", "summary_threshold", "summary_keep", "ttl_s")

    def trim_to(self) -> int | None:
        return folding_cap(self.config)

    def keeps(self) -> str:
        return "long-term facts from every session, a running summary, past sessions and recent messages"

    def reads(self) -> Reads:
        return Reads(last=None, summary=True)

    @property
    def waits_for_own_session(self) -> bool:
        return False  # this session's turns are sent unfolded until their own job folds them; retrieval skips it

    def build_context(self, user_id: str, session_id: str, query: Message, trace: Trace, view: SessionView) -> Context:
        """Fill the budget in order of value per token: facts, summary, episodes, past turns, then recent turns.

        Every part is measured as it is sent (headers and tags included), so
        the context never exceeds the budget unless the instructions and the
        message alone do, which the trace then says.
        """
        c = self.config
        parts = [instructions(self.keeps())]
        budget = c.token_budget - parts[0].tokens - count_tokens(query.content)
        if budget < 0:
            trace.warnings.append(
                f"the instructions and this message alone take {c.token_budget - budget:,} tokens, "
                f"over the {c.token_budget:,}-token budget: nothing else was added"
            )

        vector = embed_query(self.s, query, trace)
        facts = fact_items(self.s, user_id, query, vector, c.top_k, trace)
        part = fit_part(facts_part, facts, budget, trace)
        if part:
            parts.append(part)
            budget -= part.tokens

        summary = summary_part(view)
        if summary and summary.tokens <= budget:
            parts.append(summary)
            budget -= summary.tokens
        elif summary:
            trace.dropped.append(f"summary ({summary.tokens} tokens) over budget")

        episodes = episode_items(self.s, user_id, session_id, query, vector, c.episodes_k, trace)
        turns = turn_items(self.s, user_id, session_id, query, vector, c.top_k, trace)
        for build, items in ((episodes_part, episodes), (turns_part, turns)):
            part = fit_part(build, items, budget, trace)
            if part:
                parts.append(part)
                budget -= part.tokens
        trace.retrieved.extend(facts + episodes + turns)

        history = recent_messages(view, trace)
        kept: list[Message] = []
        for message in reversed(history):
            if message.id == query.id:
                continue
            cost = count_tokens(message.content)
            if cost > budget:
                trace.dropped.append(f"{len(history) - len(kept) - 1} older buffer message(s) over budget")
                break
            kept.append(message)
            budget -= cost
        kept.reverse()
        return Context(parts, kept + [query])

    def after_turn(self, user_id: str, session_id: str, turn: list[Message], trace: Trace) -> None:
        c = self.config
        fold_if_needed(self.s, user_id, session_id, c, turn, trace)
        keep_whole_memory(self.s, user_id, session_id, turn, c, trace)
