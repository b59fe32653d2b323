"""Fact rules that keep up with a person's life, through the real fact store (Chroma, the real model).

One person's year, statement by statement, with what each must do to their
long-term memory: ADD, UPDATE (old -> new, logged), DELETE, DUPLICATE, or
nothing. Moves, switches and job changes update the slot; "no longer",
"stopped", "left", "cancelled" delete; small talk and questions change
nothing.
"""

from __future__ import annotations

import pytest

from memory.llm.rules import changes_from_text, extract_facts
from memory.messages import Message, Role

LIFE: list[tuple[str, list[str]]] = [
    ("My name is Maya Lindqvist.", ["ADD"]),
    ("I live in Gothenburg.", ["ADD"]),
    ("I work at Klarna as a backend engineer.", ["ADD", "ADD"]),
    ("I use Go and Kafka.", ["ADD", "ADD"]),
    ("I'm vegetarian.", ["ADD"]),
    ("I'm planning a trip to Kyoto in April.", ["ADD"]),
    ("My sister is called Anna.", ["ADD"]),
    ("I have a dog named Rex.", ["ADD"]),
    ("The weather is lovely today.", []),
    ("What is my name?", []),
    ("I moved to Malmö last month.", ["UPDATE"]),
    ("I switched to Rust.", ["UPDATE"]),
    ("I joined Spotify.", ["UPDATE"]),
    ("I'm now a staff engineer.", ["UPDATE"]),
    ("I'm no longer vegetarian.", ["DELETE"]),
    ("I cancelled my trip to Kyoto.", ["DELETE"]),
    ("I stopped using Kafka.", ["DELETE"]),
    ("I live in Malmö.", ["DUPLICATE"]),
    ("I no longer live in Berlin.", []),  # not the stored value: nothing to take back
    ("My favorite editor is Helix.", ["ADD"]),
    ("My favorite editor is Zed now.", ["UPDATE"]),
    ("I'm allergic to peanuts.", ["ADD"]),
    ("I'm going to Lisbon next month with my partner.", ["ADD"]),
    ("I'm going to Lisbon in June.", ["UPDATE"]),
    ("We use Postgres for billing.", ["ADD"]),
    ("We switched from Postgres to MySQL.", ["UPDATE"]),
    ("I stopped eating meat.", ["ADD"]),
    ("I'm vegan now.", ["UPDATE"]),
    ("I left Spotify.", ["DELETE"]),
    ("I started a new job at Northwind Labs.", ["ADD"]),
    ("Actually, call me Mai.", ["UPDATE"]),
    ("I'm originally from Uppsala.", ["ADD"]),
    ("My brother's name is Erik.", ["ADD"]),
    ("My brother is called Erik.", ["DUPLICATE"]),
    ("I don't like meetings.", ["ADD"]),
    ("I like hiking in the mountains.", ["ADD"]),
    ("I don't like hiking anymore.", ["DELETE"]),
    ("I don't use Rust anymore.", ["DELETE"]),
    ("I have a cat called Mochi.", ["ADD"]),
    ("My manager is called Tom.", ["ADD"]),
    ("Hi there, how are you?", []),
    ("I code in Python and TypeScript.", ["ADD"]),
    ("Ok thanks.", []),
    ("I got promoted to principal engineer at Northwind Labs.", ["UPDATE", "DUPLICATE"]),
]


def test_the_table_is_large_enough():
    assert len(LIFE) >= 40


def test_a_year_of_statements_updates_memory_as_a_person_would_expect(lab):
    store = lab.facts
    for i, (statement, expected) in enumerate(LIFE):
        message = Message(Role.USER, statement)
        events = store.remember("maya", "s1", extract_facts([message]))
        assert [e.event for e in events] == expected, f"#{i + 1} {statement!r}: {[(e.event, e.text) for e in events]}"
    facts = sorted(r.text for r in store.all("maya"))
    assert facts == sorted(
        [
            "The user's name is Mai.",
            "The user lives in Malmö.",
            "The user works at Northwind Labs.",
            "The user works as a principal engineer.",
            "The user is vegan.",
            "The user is planning a trip to Lisbon in June.",
            "The user's sister is called Anna.",
            "The user has a dog called Rex.",
            "The user has a cat called Mochi.",
            "The user's favorite editor is Zed.",
            "The user is allergic to peanuts.",
            "The user's team uses MySQL for billing.",
            "The user is from Uppsala.",
            "The user's brother is called Erik.",
            "The user dislikes meetings.",
            "The user's manager is called Tom.",
            "The user codes in Python and TypeScript.",
        ]
    )
    log = store.history("maya").items
    moved = next(e for e in log if e.event == "UPDATE" and "Malmö" in e.text)
    assert moved.previous == "The user lives in Gothenburg."  # old -> new, in the log
    assert any(e.event == "DELETE" and e.text == "The user is vegetarian." for e in log)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("I moved to Malmö.", ("set", "location", "The user lives in Malmö.")),
        ("We just relocated to Berlin.", ("set", "location", "The user lives in Berlin.")),
        ("I switched from Go to Rust.", ("set", "language", "The user codes in Rust.")),
        ("I'm planning a trip to Kyoto in April with my sister.", ("set", "trip:kyoto", None)),
        ("I no longer work at Klarna.", ("delete", "employer", None)),
        ("I'm not vegetarian anymore.", ("delete", "diet", None)),
    ],
)
def test_changes_name_their_slot(statement, expected):
    [change] = changes_from_text(statement)
    action, slot, text = expected
    assert (change.action, change.slot) == (action, slot)
    if text:
        assert change.text == text
    if slot == "trip:kyoto":
        assert "in April" in change.text and "with their sister" in change.text


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("I like cycling and jazz.", ["The user likes cycling and jazz."]),
        ("I enjoy painting on weekends.", ["The user likes painting on weekends."]),
        ("I like tea but not coffee.", ["The user likes tea."]),
        (
            "I love jazz and cycling, and I live in Oslo.",
            ["The user lives in Oslo.", "The user likes jazz and cycling."],
        ),
    ],
)
def test_a_list_of_likes_is_kept_whole(statement, expected):
    """'I like cycling and jazz' once lost 'jazz': 'and' ends what someone likes only where a new clause starts."""
    assert [c.text for c in changes_from_text(statement)] == expected
