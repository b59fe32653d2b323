"""Statement memory: self-statements kept in the user's words, in the second person, superseded when they change.

Sentences written for these tests, none from a data set or a shipped
scenario. The extraction is checked by shape (first person kept, questions
and requests dropped, clauses split, names kept with their relation); the
supersession through the real fact store (Chroma, the real model).
"""

from __future__ import annotations

import pytest

from memory.llm.statements import declarative_part, extract_statements, statements, to_second_person
from memory.records.messages import Message, Role


def _texts(text: str) -> list[str]:
    return [s.text for s in statements(text)]


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("I adopted a greyhound in March.", ["You adopted a greyhound in March."]),
        ("We repainted our kitchen a pale green.", ["You repainted your kitchen a pale green."]),
        ("My landlord raised the rent again.", ["Your landlord raised the rent again."]),
        ("Last winter I learned to knit.", ["Last winter you learned to knit."]),
        ("By the way, I'm allergic to shellfish.", ["You're allergic to shellfish."]),
        ("I prefer window seats on long flights.", ["You prefer window seats on long flights."]),
        ("I'm planning to run a half marathon in October.", ["You're planning to run a half marathon in October."]),
    ],
)
def test_a_first_person_statement_is_kept_in_the_second_person(said, kept):
    assert _texts(said) == kept


@pytest.mark.parametrize(
    "said",
    [
        "Where did I put my passport?",
        "Do you know a good ramen place near the station?",
        "Could you suggest a gift for a ten-year-old?",
        "I was wondering if you could explain compound interest.",
        "I need some tips for sleeping on planes.",
        "Please keep your answers short.",
        "Thanks, that's really helpful!",
        "I see.",
        "If I win the lottery I'll buy a boat.",
        "The weather was awful all week.",
        "I'll definitely try those ideas.",
    ],
)
def test_questions_requests_and_small_talk_are_not_statements(said):
    assert _texts(said) == []


def test_several_facts_in_one_sentence_are_all_kept_each_whole():
    said = "I'm Priya and I just moved to Porto with my brother Diego, and my cat Miso hates the new flat."
    assert _texts(said) == [
        "You're Priya.",
        "You just moved to Porto with your brother Diego.",
        "Your cat Miso hates the new flat.",
    ]


def test_a_statement_beside_a_question_is_kept_without_the_question():
    said = "I've been baking sourdough every weekend, and I was wondering if you could recommend a flour?"
    assert _texts(said) == ["You've been baking sourdough every weekend."]
    assert declarative_part(said) == "I've been baking sourdough every weekend"


def test_the_second_person_rewrite_keeps_everything_else():
    assert to_second_person("I was born in Quito, and my mother still lives there") == (
        "You were born in Quito, and your mother still lives there."
    )
    assert to_second_person("we've been married for ten years") == "You've been married for ten years."


def test_a_statement_points_to_its_message_and_carries_its_slot_and_change_cue():
    message = Message(Role.USER, "I moved to Tallinn last spring. Can you recommend a sauna?", created_at=1.7e9)
    [fact] = extract_statements([message])
    assert fact.text == "You moved to Tallinn last spring." and fact.source_ids == (message.id,)
    assert fact.action == "state" and fact.slot == "location" and fact.change_cue and fact.said_at == 1.7e9
    assert extract_statements([Message(Role.ASSISTANT, "I moved to Tallinn.")]) == [], "replies state nothing"


def _remember(lab, user: str, *said: str) -> list[list[tuple[str, str]]]:
    out = []
    for text in said:
        events = lab.facts.remember(user, "s1", extract_statements([Message(Role.USER, text)]))
        out.append([(e.event, e.text if e.event != "SUPERSEDE" else e.previous or "") for e in events])
    return out


def test_a_newer_statement_supersedes_the_older_which_stays_marked(lab):
    events = _remember(
        lab,
        "ines",
        "I live in Ghent.",
        "I drive a red Fiat Panda.",
        "I sold the Fiat Panda and now I cycle everywhere.",
        "I moved to Leuven in June.",
    )
    assert events[2] == [
        ("ADD", "You sold the Fiat Panda and now you cycle everywhere."),
        ("SUPERSEDE", "You drive a red Fiat Panda."),
    ], "a close statement with a change cue ('sold', 'now') supersedes, without any slot"
    assert events[3] == [("ADD", "You moved to Leuven in June."), ("SUPERSEDE", "You live in Ghent.")], "same slot"
    current = sorted(r.text for r in lab.facts.all("ines"))
    assert current == ["You moved to Leuven in June.", "You sold the Fiat Panda and now you cycle everywhere."]
    kept = {r.text: r.metadata for r in lab.facts.all("ines", superseded=True)}
    assert kept["You live in Ghent."]["superseded_by"] and kept["You drive a red Fiat Panda."]["superseded_by"]
    log = [e for e in lab.facts.history("ines").items if e.event == "SUPERSEDE"]
    assert [(e.previous, e.text) for e in log][-1] == ("You live in Ghent.", "You moved to Leuven in June.")


def test_statements_about_different_things_both_stay(lab):
    events = _remember(lab, "omar", "I play the cello in a community orchestra.", "I started learning Portuguese.")
    assert [e for e, _ in events[1]] == ["ADD"], "a change cue alone supersedes nothing unrelated"
    assert len(lab.facts.all("omar")) == 2


@pytest.mark.parametrize("strategy", ["facts", "hybrid"])
def test_a_newer_count_wins_through_the_store_and_the_reply(lab, strategy):
    """The issue's own failure: "three bikes", then "four bikes" — the newer value is current and is the answer."""
    user = f"bikes-{strategy}"
    lab.chat(user, "s1", "I have three bikes in the garage.", strategy=strategy, wait_upkeep=True)
    lab.chat(user, "s1", "I bought a gravel bike, so I have four bikes now.", strategy=strategy, wait_upkeep=True)
    current = [r.text for r in lab.facts.all(user)]
    assert not any("three bikes" in t for t in current), current
    assert any(r.metadata.get("superseded_by") for r in lab.facts.all(user, superseded=True))
    reply = lab.chat(user, "s2", "How many bikes do I have?", strategy=strategy).reply.content
    assert "four" in reply and "three" not in reply, reply
