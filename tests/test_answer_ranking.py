"""The offline answerer ranks what it was given (the retrieval ranking), quotes the best, lets the newest win,
and says it does not find the answer only below its relevance floor.

Statements written for these tests (the real model embeds them); none comes
from a data set or a shipped scenario.
"""

from __future__ import annotations

from memory.llm.answer import RELEVANCE_FLOOR, answer
from memory.records.messages import Message, Role
from memory.records.trace import PromptPart


def _facts(*statements: tuple[str, float]) -> list[PromptPart]:
    items = [{"ref": f"fact:{i}", "text": text, "at": f"{at:.3f}"} for i, (text, at) in enumerate(statements)]
    return [PromptPart("facts", "Known facts about the user:\n" + "\n".join(t for t, _ in statements), items=items)]


LIFE = _facts(
    ("You play the cello in a community orchestra.", 1.0e9),
    ("You started learning Portuguese last autumn.", 1.1e9),
    ("You work night shifts at the Riverside hospital.", 1.2e9),
)


def test_below_the_floor_it_says_it_does_not_find_it_and_above_it_quotes(embed):
    missing = answer("What is the name of my hamster?", LIFE, [], embed, "facts")
    assert "don't find" in missing.text and missing.relevance < RELEVANCE_FLOOR and not missing.used
    assert missing.quoted, "it ranked something: the floor, not a topic, decided"
    found = answer("Where do I work?", LIFE, [], embed, "facts")
    assert found.text.startswith("You work night shifts at the Riverside hospital.") and found.used == ["fact:2"]
    assert found.relevance >= RELEVANCE_FLOOR
    forced = answer("What is the name of my hamster?", LIFE, [], embed, "facts", floor=float("-inf"))
    assert "don't find" not in forced.text


def test_the_newest_of_two_statements_on_one_subject_is_quoted(embed):
    parts = _facts(
        ("You have four bikes now, since you bought a gravel bike.", 2.0e9),  # listed first, said last
        ("You have three bikes in the garage.", 1.0e9),
        ("You're saving for a trip to Chile.", 1.5e9),
    )
    now = answer("How many bikes do I have?", parts, [], embed, "facts")
    assert "four" in now.text and "three" not in now.text
    before = answer("How many bikes did I have previously?", parts, [], embed, "facts")
    assert "three" in before.text and "four" not in before.text


def test_a_question_is_answered_by_what_it_asks_about_not_by_a_routed_topic(embed):
    parts = _facts(
        ("You code in Python at work.", 1.0e9),
        ("You speak Spanish and a bit of Portuguese.", 1.1e9),
        ("You use a band saw for your furniture projects.", 1.2e9),
        ("You run a small bike repair shop on weekends.", 1.3e9),
        ("You're Tomas, a data analyst.", 1.4e9),
    )
    assert "Spanish" in answer("What languages do I speak?", parts, [], embed, "facts").text
    assert "bike repair shop" in answer("What kind of shop do I run?", parts, [], embed, "facts").text
    assert "Tomas" in answer("What's my name?", parts, [], embed, "facts").text


def test_in_a_conversation_the_users_words_answer_about_the_user_and_replies_about_the_assistant(embed):
    history = [
        Message(Role.USER, "I bought a yellow dress for my sister's birthday. Can you suggest a card message?"),
        Message(Role.ASSISTANT, "You could write: 'Happy birthday to the brightest person I know!'"),
    ]
    mine = answer("What did I buy for my sister's birthday?", [], history, embed, "this session")
    assert "yellow dress" in mine.text and mine.used == [f"message:{history[0].id}"]
    theirs = answer("What card message did you suggest?", [], history, embed, "this session")
    assert "brightest person" in theirs.text


def test_a_memory_told_in_other_words_than_the_question_is_quoted_when_a_word_of_it_means_the_same(embed):
    """The memory's own wording ("deploys", "learning") need not be the question's: a word of the quote that means
    the same carries it above the floor. A question none of whose words any memory says or means the same as is
    below it, even when the ranking found the right memory: the cost, measured on LongMemEval, of abstaining on
    questions about a neighbouring thing (docs/answers.md)."""
    parts = _facts(
        ("Your team deploys everything on a Raspberry Pi cluster.", 1.0e9),
        ("You started learning Portuguese last autumn.", 1.1e9),
        ("You work night shifts at the Riverside hospital.", 1.2e9),
        ("You booked a trip to Oslo for March.", 1.3e9),
    )
    travelling = answer("Where am I travelling in March?", parts, [], embed, "facts")
    assert travelling.text.startswith("You booked a trip to Oslo for March.")
    assert travelling.relevance >= RELEVANCE_FLOOR
    learning = answer("Which language am I learning?", parts, [], embed, "facts")
    assert "Portuguese" in learning.text and "don't find" not in learning.text
    assert "don't find" in answer("What is the name of my hamster?", parts, [], embed, "facts").text
    reworded = answer("What do we host our apps on?", parts, [], embed, "facts")
    assert "don't find" in reworded.text and reworded.quoted.startswith("Your team deploys everything")


def test_a_question_whose_words_two_clauses_of_one_sentence_share_is_answered_by_both(embed):
    """'We keep two beehives at the allotment and I grow tomatoes for the whole street': a question holding
    'keep' from one clause and 'street' from the other is answered with both, not with the better ranked alone."""
    said = [
        ("You keep two beehives at the allotment", "I grow tomatoes for the whole street."),
        ("You grow tomatoes for the whole street", "We keep two beehives at the allotment"),
        ("Your brother teaches chemistry in Leeds", ""),
    ]
    items = [{"ref": f"fact:{i}", "text": t, "at": f"{1e9 + i:.3f}", "context": c} for i, (t, c) in enumerate(said)]
    parts = [PromptPart("facts", "Known facts about the user:\n" + "\n".join(t for t, _ in said), items=items)]
    reply = answer("What do we keep for the street?", parts, [], embed, "facts").text
    assert "beehives" in reply and "tomatoes" in reply and "chemistry" not in reply


def test_a_word_no_memory_says_is_held_by_a_word_that_means_the_same_not_by_a_neighbouring_thing(embed):
    """ "trip" tells "travelling"; "cat" does not tell "hamster", though both sentences are about the same topic.
    The recorded variants let ``benchmarks/answer_floor.py`` choose between holding such a word by that closeness
    alone and by the whole sentence's cosine."""
    parts = _facts(
        ("You have a cat called Miso.", 1.0e9),
        ("You booked a trip to Oslo for March.", 1.1e9),
    )
    pet = answer("What is the name of my hamster?", parts, [], embed, "facts", floor=float("-inf"))
    travel = answer("Where am I travelling in March?", parts, [], embed, "facts", floor=float("-inf"))
    assert "Miso" in pet.text and "Oslo" in travel.text
    assert pet.signals["held_word"] < pet.signals["held_cos"], "by closeness alone a neighbouring pet holds less"
    assert pet.signals["held_word"] < 0.2 < travel.signals["held_word"]


def test_a_quote_that_ends_in_its_own_stop_is_not_stopped_twice(embed):
    parts = _facts(("You moved to Tallinn in May...", 1.0e9), ("You keep bees on the roof…", 1.1e9))
    moved = answer("Where did I move in May?", parts, [], embed, "facts").text
    assert "Tallinn in May" in moved and ".." not in moved and "…." not in moved, moved
    bees = answer("What do I keep on the roof?", parts, [], embed, "facts").text
    assert "bees on the roof…" in bees and "…." not in bees, bees


def test_what_kind_of_thing_a_question_asks_for_is_not_a_word_the_memory_must_say(embed):
    """'What kind of business do I run?' is answered by 'a bakery': the business is what the answer is, not
    something the memory must have said."""
    from memory.llm.question import asked_for

    assert {"kind", "busi"} <= asked_for("What kind of business do I run")
    parts = _facts(("You run a small bakery in Leith with your sister.", 1.0e9), ("You have a cat called Miso.", 1.1e9))
    reply = answer("What kind of business do I run?", parts, [], embed, "facts")
    assert reply.text.startswith("You run a small bakery") and reply.signals["absent"] == 0.0, reply


def test_a_common_word_no_memory_says_weighs_less_than_a_specific_one():
    from memory.llm.words import specificity

    assert specificity("the") == 0.0 and specificity("zqxvyname") == 1.0
    assert specificity("use") < specificity("travelling") < specificity("hamster")
