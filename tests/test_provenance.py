"""Provenance: every fact, episode, fold and retrieved item links to the message it came from."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from memory.timeline.provenance import replay_link, source_of
from memory.timeline.replay import SessionReplay


def _params(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


def _chat(lab):
    lab.chat("maya", "s1", "Hello there.", strategy="hybrid", wait_upkeep=True)
    said = lab.chat("maya", "s1", "I live in Berlin.", strategy="hybrid", wait_upkeep=True)
    asked = lab.chat("maya", "s2", "Where do I live?", strategy="hybrid", wait_upkeep=True)
    return said, asked


def test_a_fact_an_episode_and_a_retrieved_item_link_to_the_message_they_came_from(lab):
    said, asked = _chat(lab)
    [fact] = [r for r in lab.facts.all("maya") if "Berlin" in r.text]
    link = replay_link("maya", source_of(fact.metadata))
    assert _params(link) == {"user": "maya", "session": "s1", "message": said.user_message.id}
    assert SessionReplay(lab, "maya", "s1").turn(2).user.id == said.user_message.id
    [episode] = [r for r in lab.episodes.all("maya") if r.metadata.get("session_id") == "s1"]
    assert _params(replay_link("maya", source_of(episode.metadata)))["message"] == said.reply.id
    [item] = [i for i in asked.trace.retrieved if i.kind == "fact" and "Berlin" in i.text]
    assert _params(replay_link("maya", source_of(item.source)))["message"] == said.user_message.id


def test_a_fact_deleted_and_brought_back_keeps_its_link(lab):
    said, _ = _chat(lab)
    [fact] = [r for r in lab.facts.all("maya") if "Berlin" in r.text]
    lab.facts.delete("maya", fact.id)
    lab.facts.undo_last("maya")
    [back] = [r for r in lab.facts.all("maya") if r.id == fact.id]
    assert _params(replay_link("maya", source_of(back.metadata)))["message"] == said.user_message.id


def test_damaged_provenance_gives_no_link_rather_than_a_wrong_one():
    assert source_of({"session_id": "s1", "source_ids": "{not json"}).message_id is None
    assert source_of({"session_id": "bad id!", "source_ids": '["m1"]'}) is None
    assert replay_link("maya", None) is None


@pytest.mark.usefixtures("app_env")
def test_the_vector_memory_page_links_a_fact_to_its_message_and_the_link_opens_that_turn(lab):
    from streamlit.testing.v1 import AppTest

    from .page_app import APP
    from .test_fact_edits import _open_vector_page

    said, _ = _chat(lab)
    at = _open_vector_page()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    [link] = [row["said in"] for _, row in table.iterrows() if "Berlin" in row["fact"]]
    params = _params(link)
    opened = AppTest.from_file(APP, default_timeout=180)
    for name, value in params.items():
        opened.query_params[name] = value
    opened.switch_page("pages/session_replay.py")
    opened.run()
    assert not opened.exception, [e.value for e in opened.exception]
    assert opened.slider(key="replay_turn:maya:s1").value == 2
