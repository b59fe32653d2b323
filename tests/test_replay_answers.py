"""Answers through the playground's own path, on a small excerpt of LongMemEval's oracle file (MIT licence).

Each question's history is replayed into a fresh user's memory through a
strategy (the dataset's turns stored as chatted, the strategy's upkeep per
turn, no LLM call for the replies), then asked through ``MemoryLab.chat``;
the report's numbers must be exactly what its per-question results say.
The excerpt (``tests/fixtures/longmemeval_oracle_excerpt.json``, MIT: ``LICENSE-longmemeval`` beside it) holds four
questions: single-session-user, knowledge-update, an abstention question
and a multi-session one.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import pytest

from memory.eval.answer_scoring import covers, judge_prompt, offline_correct, says_unknown
from memory.eval.answers import token_f1
from memory.eval.lme_answers import answer_through_strategies, eval_user, transcript
from memory.eval.longmemeval import load_longmemeval
from memory.transfer.replay import replay

from .conftest import run_cli

EXCERPT = Path(__file__).parent / "fixtures" / "longmemeval_oracle_excerpt.json"


@pytest.mark.parametrize(
    ("reply", "gold", "right"),
    [
        ("You own three bikes.", "3", True),
        ("You've got 3 bikes.", "three", True),
        ("You were pre-approved for $400,000.", "$400,000", True),
        ("You finished your 5th painting.", "5", True),
        ("Your best time was 25:50.", "25 minutes and 50 seconds (or 25:50)", True),
        ("You went to UCLA.", "University of California, Los Angeles (UCLA)", True),
        ("You bought a yellow dress.", "a yellow dress", True),
        ("You bought a dress.", "a yellow dress", False),
        ("You own two bikes.", "three", False),
        ("I don't find that in the memory I was given — it keeps yellow dresses.", "a yellow dress", False),
    ],
)
def test_a_reply_is_right_when_it_holds_every_content_word_of_the_gold_answer(reply, gold, right):
    assert covers(reply, gold) == right or "don't find" in reply
    assert offline_correct(reply, gold, abstention=False) == right


def test_an_abstention_question_is_right_when_the_reply_says_it_does_not_know():
    assert says_unknown("I don't find that in the memory I was given.")
    assert offline_correct("You did not mention a hamster.", "You did not mention this information.", True)
    assert not offline_correct("Your hamster is called Luna.", "You did not mention this information.", True)


def test_the_judge_uses_the_benchmarks_prompt_for_each_type():
    update = judge_prompt("knowledge-update", "Where do I live?", "Lisbon", "You live in Lisbon.", False)
    assert "previous information along with an updated answer" in update and update.endswith("yes or no only.")
    assert "off-by-one" in judge_prompt("temporal-reasoning", "q", "a", "r", False)
    assert "Rubric: a" in judge_prompt("single-session-preference", "q", "a", "r", False)
    assert "unanswerable" in judge_prompt("single-session-user", "q", "a", "r", True)


def test_a_replay_stores_the_history_as_chatted_once(lab):
    [question] = [q for q in load_longmemeval(EXCERPT) if q.question_id == "66f24dbb"]
    sessions = transcript(question)
    first = replay(lab, "replayed", sessions, "facts")
    assert first.messages == first.stored == sum(len(s.turns) for s in question.sessions)
    stored = lab.sessions.log("replayed", question.sessions[0].id).messages
    assert [(m.role.value, m.content) for m in stored] == [(t.role, t.content) for t in question.sessions[0].turns]
    assert stored[0].created_at == question.sessions[0].date.timestamp(), "the dataset's dates are kept"
    assert lab.facts.count("replayed") > 0 and lab.episodes.all("replayed"), "the upkeep of a chat turn ran"
    again = replay(lab, "replayed", sessions, "facts")
    assert again.stored == 0 and len(lab.sessions.log("replayed", question.sessions[0].id).messages) == len(stored)


def test_replayed_answers_are_scored_and_counted_right(lab):
    questions = load_longmemeval(EXCERPT)
    report = answer_through_strategies(lab, questions, ["facts", "buffer"])
    assert len(report.results) == 8 and report.n_questions == 4
    last = {q.question_id: q.sessions[-1].id for q in questions}
    for r in report.results:
        assert r.correct == offline_correct(r.reply, r.gold, r.kind == "abstention")
        assert r.f1 == token_f1(r.reply, r.gold)
        assert r.relevance is not None and r.quoted, "offline: the unfloored answer is kept for the floor's choice"
        assert r.asked_in == ("asked" if r.strategy == "facts" else last[r.question_id]), "buffer: the last session"
    for strategy in ("facts", "buffer"):
        rows = [r for r in report.results if r.strategy == strategy]
        cell = report.cell(strategy)
        assert cell["n"] == 4 and cell["correct"] == round(mean(float(r.correct) for r in rows), 4)
        assert cell["f1"] == round(mean(r.f1 for r in rows), 4)
        for kind in report.kinds():
            assert report.cell(strategy, kind)["n"] == sum(1 for r in rows if r.kind == kind)
    assert any(r.correct for r in report.results), "not a vacuous run: something is answered right"
    assert lab.facts.count(eval_user("66f24dbb", "facts")) > 0, "the replayed user is kept to be looked at"
    data = report.to_json()
    assert set(data["by_strategy"]) == {"facts", "buffer"}
    assert data["by_strategy"]["facts"]["by_type"]["abstention"]["n"] == 1


def test_the_cli_runs_the_replayed_answers_with_json(lab):
    env = {"REDIS_URL": lab.settings.redis_url, "MEMLAB_DATA_DIR": str(lab.settings.data_dir)}
    run = run_cli(
        "eval", "--data", str(EXCERPT), "--replay-answers", "facts", "--types", "single-session-user",
        "--json", "--quiet", env=env, timeout=300,
    )  # fmt: skip
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["n_questions"] == 1 and data["strategies"] == ["facts"]
    assert data["by_strategy"]["facts"]["by_type"]["single-session-user"]["n"] == 1
    bad = run_cli("eval", "--data", str(EXCERPT), "--replay-answers", "memory-palace", env=env)
    assert bad.code == 2 and bad.err.count("\n") == 1 and "unknown strategies" in bad.err


def test_a_seeded_subset_is_a_random_sample_of_each_type_the_same_every_time():
    from dataclasses import replace

    from memory.eval.lme_answers import select

    # Twenty questions, five of each type, each with its own id.
    questions = [replace(q, question_id=f"{n}-{q.question_id}") for n in range(5) for q in load_longmemeval(EXCERPT)]

    def ids(picked):
        return sorted(q.question_id for q in picked)

    assert ids(select(questions, limit=1)) == ids(questions[:4]), "no seed: the first of each type"
    assert len({tuple(ids(select(questions, limit=1, seed=s))) for s in range(8)}) > 1, "a seed samples at random"
    for seed in (0, 1):
        picked = select(questions, limit=2, seed=seed)
        assert ids(picked) == ids(select(questions, limit=2, seed=seed)), "the same seed, the same sample"
        assert sorted(q.kind for q in picked) == sorted(2 * [q.kind for q in questions[:4]]), "two of each type"
