"""Memory is the user's, not the strategy's: a session chatted under one strategy is seen by every other.

A user may chat under ``buffer`` today and switch to ``hybrid`` tomorrow;
the upkeep of every turn (statements to the facts, words to the turn index,
the turn to its session's episode) runs whichever strategy the turn was
chatted under, and no session is remembered as "(empty session)".
"""

from __future__ import annotations

import pytest

from memory.stores.episode_store import EMPTY

TOLD = ["I'm training for the Seville marathon in February.", "My coach is called Ingrid."]


@pytest.mark.parametrize("chatted_under", ["buffer", "summary"])
@pytest.mark.parametrize("asked_under", ["facts", "episodic", "hybrid"])
def test_a_session_chatted_under_one_strategy_is_seen_by_another(lab, chatted_under, asked_under):
    for text in TOLD:
        lab.chat("noor", "s1", text, strategy=chatted_under, wait_upkeep=True)
    result = lab.chat("noor", "s2", "Which marathon am I training for?", strategy=asked_under)
    assert "Seville" in result.trace.system_prompt, f"{asked_under} did not see the {chatted_under} session"
    assert "Seville" in result.reply.content
    [episode] = lab.episodes.all("noor")
    assert episode.metadata["session_id"] == "s1" and "Seville" in episode.text


def test_a_session_of_only_questions_is_an_episode_about_its_questions(lab):
    lab.chat("noor", "s1", "How do I descale a kettle?", strategy="buffer", wait_upkeep=True)
    [episode] = lab.episodes.all("noor")
    assert episode.text != EMPTY and "descale a kettle" in episode.text
    hits = lab.chat("noor", "s2", "What did I ask about the kettle?", strategy="episodic").trace.retrieved
    assert any("kettle" in h.text for h in hits if h.kind == "episode")


def test_an_episode_listed_is_deleted_by_the_session_the_engine_names(lab):
    from memory.stores.episode_store import episode_session

    for session in ("s1", "s2"):
        lab.chat("noor", session, f"In {session} I said my coach is Ingrid.", strategy="buffer", wait_upkeep=True)
    listed = {episode_session(r) for r in lab.episodes.all("noor")}
    assert listed == {"s1", "s2"}
    assert lab.delete_memory("noor", "episode", episode_session(lab.episodes.all("noor")[0])) == 1
    assert len(lab.episodes.all("noor")) == 1
