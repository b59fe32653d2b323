"""Fact rules that keep up with a person's life, through the real fact store (Chroma, the real model).

One person's year, statement by statement, with what each must do to their
long-term memory: ADD (the statement in the user's words), SUPERSEDE (an
older statement the new one takes the place of: same slot, or a value it
takes back — kept, marked, logged old -> new), DUPLICATE, or nothing. Moves,
switches and job changes supersede the slot's statement; "no longer",
"stopped", "left", "cancelled" supersede the statement they take back;
small talk and questions change nothing.
"""

from __future__ import annotations

import pytest

from memory.llm.rules import changes_from_text
from memory.llm.statements import extract_statements
from memory.records.messages import Message, Role

LIFE: list[tuple[str, list[str]]] = [
    ("My name is Maya Lindqvist.", ["ADD"]),
    ("I live in Gothenburg.", ["ADD"]),
    ("I work at Klarna as a backend engineer.", ["ADD"]),
    ("I use Go and Kafka.", ["ADD"]),
    ("I'm vegetarian.", ["ADD"]),
    ("I'm planning a trip to Kyoto in April.", ["ADD"]),
    ("My sister is called Anna.", ["ADD"]),
    ("I have a dog named Rex.", ["ADD"]),
    ("The weather is lovely today.", []),
    ("What is my name?", []),
    ("I moved to Malmö last month.", ["ADD", "SUPERSEDE"]),
    ("I switched to Rust.", ["ADD", "SUPERSEDE"]),
    ("I joined Spotify.", ["ADD", "SUPERSEDE"]),
    ("I'm now a staff engineer.", ["ADD"]),
    ("I'm no longer vegetarian.", ["ADD", "SUPERSEDE"]),
    ("I cancelled my trip to Kyoto.", ["ADD", "SUPERSEDE"]),
    ("I stopped using Kafka.", ["ADD"]),
    ("I live in Malmö.", ["ADD", "SUPERSEDE"]),
    ("I no longer live in Berlin.", ["ADD"]),  # kept as said; Berlin is not the stored value: nothing superseded
    ("My favorite editor is Helix.", ["ADD"]),
    ("My favorite editor is Zed now.", ["ADD", "SUPERSEDE"]),
    ("I'm allergic to peanuts.", ["ADD"]),
    ("I'm going to Lisbon next month with my partner.", ["ADD"]),
    ("I'm going to Lisbon in June.", ["ADD", "SUPERSEDE"]),
    ("We use Postgres for billing.", ["ADD"]),
    ("We switched from Postgres to MySQL.", ["ADD", "SUPERSEDE"]),
    ("I stopped eating meat.", ["ADD", "SUPERSEDE"]),
    ("I'm vegan now.", ["ADD", "SUPERSEDE"]),
    ("I left Spotify.", ["ADD", "SUPERSEDE"]),
    ("I started a new job at Northwind Labs.", ["ADD", "SUPERSEDE"]),
    ("Actually, call me Mai.", ["ADD", "SUPERSEDE"]),
    ("I'm originally from Uppsala.", ["ADD"]),
    ("My brother's name is Erik.", ["ADD"]),
    ("My brother is called Erik.", ["DUPLICATE"]),
    ("I don't like meetings.", ["ADD"]),
    ("I like hiking in the mountains.", ["ADD"]),
    ("I don't like hiking anymore.", ["ADD", "SUPERSEDE"]),
    ("I don't use Rust anymore.", ["ADD", "SUPERSEDE"]),
    ("I have a cat called Mochi.", ["ADD"]),
    ("My manager is called Tom.", ["ADD"]),
    ("Hi there, how are you?", []),
    ("I code in Python and TypeScript.", ["ADD", "SUPERSEDE"]),
    ("Ok thanks.", []),
    ("I got promoted to principal engineer at Northwind Labs.", ["ADD", "SUPERSEDE", "SUPERSEDE"]),
]


def test_the_table_is_large_enough():
    assert len(LIFE) >= 40


def test_a_year_of_statements_updates_memory_as_a_person_would_expect(lab):
    """Each statement is kept in the user's words (second person); a newer one in the same slot, or one that takes
    a value back, supersedes the older, which stays in the store and the log as superseded (old -> new)."""
    store = lab.facts
    for i, (statement, expected) in enumerate(LIFE):
        message = Message(Role.USER, statement)
        events = store.remember("maya", "s1", extract_statements([message]))
        assert [e.event for e in events] == expected, f"#{i + 1} {statement!r}: {[(e.event, e.text) for e in events]}"
    facts = sorted(r.text for r in store.all("maya"))
    assert facts == sorted(
        [
            "Your name is Mai.",
            "You live in Malmö.",
            "You no longer live in Berlin.",
            "You got promoted to principal engineer at Northwind Labs.",
            "You're vegan now.",
            "You cancelled your trip to Kyoto.",
            "You're going to Lisbon in June.",
            "Your sister is called Anna.",
            "You have a dog named Rex.",
            "You have a cat called Mochi.",
            "Your favorite editor is Zed now.",
            "You're allergic to peanuts.",
            "You switched from Postgres to MySQL.",
            "You stopped using Kafka.",
            "You're originally from Uppsala.",
            "Your brother's name is Erik.",
            "You don't like meetings.",
            "You don't like hiking anymore.",
            "Your manager is called Tom.",
            "You code in Python and TypeScript.",
        ]
    )
    log = store.history("maya").items
    moved = next(e for e in log if e.event == "SUPERSEDE" and "Malmö" in e.text)
    assert (moved.previous, moved.text) == ("You live in Gothenburg.", "You moved to Malmö last month.")
    kept = {r.text: r.metadata for r in store.all("maya", superseded=True)}
    assert kept["You're vegetarian."]["superseded_by"], "the older statement stays in the store, marked"


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
