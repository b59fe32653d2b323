"""Recall@k, the LoCoMo loader and its quirks, the shared ranking, and the eval end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from memory.eval.locomo import load_locomo, normalise_evidence
from memory.eval.recall import mean, recall_at_k
from memory.eval.runner import evaluate
from memory.retrieval import BM25, Candidate, Weights, rank_candidates, rank_groups, tokenize
from memory.stores.turn_store import TURNS, TurnStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "recall_sample.json"
DEV = ROOT.parent / "shared" / "data" / "locomo" / "locomo_dev.json"


def test_recall_at_k_counts_the_share_of_evidence_covered():
    retrieved = [["D1:1"], ["D2:3"], ["D1:2", "D1:3"]]  # the third item is a session covering two turns
    assert recall_at_k(["D1:1"], retrieved, 1) == 1.0
    assert recall_at_k(["D1:3", "D1:1"], retrieved, 1) == 0.5
    assert recall_at_k(["D1:3", "D1:1"], retrieved, 2) == 0.5
    assert recall_at_k(["D1:3", "D1:1"], retrieved, 3) == 1.0
    assert recall_at_k(["D9:9"], retrieved, 3) == 0.0
    assert recall_at_k([], retrieved, 3) is None
    assert mean([1.0, None, 0.0]) == 0.5


def test_evidence_quirks_are_normalised():
    known = {"D8:6", "D9:17", "D9:1", "D4:4", "D11:26", "D30:5"}
    assert normalise_evidence(["D8:6; D9:17"], known) == (("D8:6", "D9:17"), ())
    assert normalise_evidence(["D9:1 D4:4"], known) == (("D9:1", "D4:4"), ())
    assert normalise_evidence(["D:11:26", "D30:05"], known) == (("D11:26", "D30:5"), ())
    assert normalise_evidence(["D99:1", "D8:6"], known) == (("D8:6",), ("D99:1",))


def test_loader_reads_the_sample_with_its_quirks():
    convs = load_locomo(SAMPLE)
    assert [c.sample_id for c in convs] == ["sample-1", "sample-2"]
    first = convs[0]
    assert [s.index for s in first.sessions] == [1, 2, 3]  # session 4 has a date but no turns
    assert first.sessions[0].date.isoformat() == "2024-03-03T09:15:00"
    messages = first.messages(first.sessions[0])
    assert messages[0].content.startswith("Nadia: ") and messages[0].role.value == "user"
    assert messages[1].role.value == "assistant" and messages[1].created_at > messages[0].created_at
    multi = next(q for q in first.questions if q.question.startswith("What will Nadia do"))
    assert multi.evidence == ("D3:1", "D3:3")
    adversarial = next(q for q in first.questions if q.category == 5)
    assert adversarial.answer == "Yes"
    second = convs[1]
    by_q = {q.question: q for q in second.questions}
    assert by_q["What course did Omar sign up for?"].evidence == ("D2:6",)
    assert by_q["What is special about Lena's new oven?"].evidence == ("D2:1",)
    assert by_q["What hobby does Omar share with Lena's customers?"].evidence == ()
    assert ("Omar is learning the oud.", "D1:1") in second.observations


def test_live_bm25_scores_as_a_rebuilt_bm25_through_adds_replacements_and_removals():
    from memory.retrieval import LiveBM25

    rng = np.random.default_rng(11)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    live, docs = LiveBM25(), {}
    queries = [list(rng.choice(words, 3)) for _ in range(5)]
    for step in range(120):
        row = int(rng.integers(0, len(live.docs) + 1)) if live.docs else 0
        if row < len(live.docs) and rng.random() < 0.3:
            live.remove(row)
            docs.pop(row, None)
        else:
            row = row if row < len(live.docs) else len(live.docs)
            doc = list(rng.choice(words, int(rng.integers(1, 8))))
            live.set(row, doc)
            docs[row] = doc
        if step % 10 == 9 and docs:  # queries between changes: cached postings must follow every change
            rows = sorted(docs)
            rebuilt = BM25([docs[r] for r in rows])
            for q in queries:
                got = live.scores(q)
                np.testing.assert_allclose(got[rows], rebuilt.scores(q), rtol=1e-9)
                assert not got[[r for r in range(len(live.docs)) if r not in docs]].any()


def test_bm25_prefers_the_matching_document_and_stems():
    index = BM25([tokenize("I adopted a dog"), tokenize("We are running a marathon"), tokenize("Pottery class")])
    scores = index.scores(tokenize("who runs marathons?"))
    assert int(np.argmax(scores)) == 1 and scores[0] == 0.0


def test_neighbour_boost_lifts_the_answer_after_a_question():
    cands = [
        Candidate("a1", "Tom: How was the pottery class?", "s1", 0),
        Candidate("a2", "Nadia: I made a lopsided bowl.", "s1", 1),
        Candidate("b1", "Tom: The bus was late.", "s2", 0),
        Candidate("b2", "Nadia: I bought a new bowl for soup.", "s2", 1),
    ]
    dense = np.array([0.6, 0.3, 0.1, 0.35])
    plain = rank_candidates("what did Nadia make at the pottery class?", dense, cands, "hybrid", use_neighbours=False)
    boosted = rank_candidates("what did Nadia make at the pottery class?", dense, cands, "hybrid")
    assert plain[3] > plain[1]  # without context the wrong bowl wins
    assert boosted[1] > boosted[3]  # the turn answering the question next to it wins
    groups = rank_groups("pottery class bowl", dense, cands, "hybrid")
    assert max(groups, key=groups.get) == "s1"


def test_a_query_naming_one_speaker_favours_what_that_speaker_said():
    from memory.retrieval import CandidateIndex, Weights

    cands = [
        Candidate("t1", "Ana: I love hiking in the hills.", "s1", 0, "Ana Lima"),
        Candidate("t2", "Ben: I love hiking too, mostly by the sea.", "s1", 1, "Ben"),
        Candidate("t3", "Ana: My sister visited.", "s2", 0, "Ana Lima"),
        Candidate("t4", "Ben: Sounds fun.", "s2", 1, "Ben"),
    ]
    index = CandidateIndex(cands)
    dense = np.array([0.50, 0.55, 0.1, 0.1])  # Ben's turn is a little closer to the question
    assert index.named_speaker("Where does ana like hiking?") == 0  # any word of the name, any case
    assert index.named_speaker("Where do Ana and Ben hike?") is None  # both named: no preference
    assert index.named_speaker("Where do they hike?") is None
    assert index.named_speaker("What is Banana's favorite?") is None  # a whole word, not a part of one
    named = index.rank("Where does Ana's family like hiking?", dense)
    assert named[0] > named[1]
    off = index.rank("Where does Ana's family like hiking?", dense, weights=Weights(speaker=0.0))
    assert off[1] > off[0]  # without the boost the closer turn wins
    parts = index.components("Where does Ana's family like hiking?", dense)
    np.testing.assert_allclose(parts["score"], named)
    np.testing.assert_allclose(parts["match"] + parts["session"] + parts["speaker"] + parts["date"], named)
    assert list(parts["speaker"]) == [0.4, 0.0, 0.4, 0.0] and not parts["date"].any()
    # One speaker only (the app's own turn index): nothing to prefer, the ranking is unchanged.
    alone = CandidateIndex([dataclasses.replace(c, speaker="") for c in cands])
    assert alone.named_speaker("Where does Ana like hiking?") is None
    np.testing.assert_allclose(alone.rank("Where does Ana like hiking?", dense), off)


def test_eval_end_to_end_on_the_shipped_sample(vector_lab):
    lab = vector_lab  # the turn, session and fact units on the embedded Chroma and on a Chroma server
    report = evaluate(lab, load_locomo(SAMPLE), "turn", "hybrid", [1, 5], [1, 2, 3, 4])
    assert report.n_questions == 11  # the adversarial question and the one without evidence are not scored
    assert report.overall[5] == 1.0 and report.overall[1] >= 0.7
    assert set(report.by_category) == {1, 2, 4}
    q = next(q for q in report.questions if q.question == "Which instrument is Omar learning?")
    assert q.top[0]["id"] == "D1:1" and q.evidence_ranks == {"D1:1": 1}
    sessions = evaluate(lab, load_locomo(SAMPLE), "session", "hybrid", [1], [1, 2, 3, 4])
    assert sessions.overall[1] >= report.overall[1]
    facts = evaluate(lab, load_locomo(SAMPLE), "fact", "dense", [1, 5], [4])
    assert facts.overall[5] == 1.0


def test_eval_cli_json(lab, settings, monkeypatch, capsys):
    from memory.tools.cli import main

    monkeypatch.setenv("MEMLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert main(["eval", "--data", str(SAMPLE), "--k", "1,5", "--categories", "4", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unit"] == "turn" and out["retriever"] == "hybrid" and out["k"] == [1, 5]
    assert out["n_questions"] == 8 and set(out["by_category"]) == {"4"}
    assert 0 <= out["overall"]["1"] <= out["overall"]["5"] <= 1 and out["seconds"] >= 0
    assert main(["eval", "--data", str(ROOT / "README.md"), "--quiet"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.skipif(not DEV.is_file(), reason=f"the LoCoMo dev split is not at {DEV} (it is not shipped: licence)")
def test_dev_split_beats_the_papers_retriever(lab):
    convs = load_locomo(DEV)
    turns = evaluate(lab, convs, "turn", "hybrid", [5, 10, 25], [1, 2, 3, 4])
    sessions = evaluate(lab, convs, "session", "hybrid", [5, 10], [1, 2, 3, 4])
    assert turns.n_questions > 1000
    assert turns.overall[10] >= 0.81, turns.overall
    assert sessions.overall[5] >= 0.88, sessions.overall


def test_leave_one_conversation_out_scores_each_conversation_with_weights_chosen_on_the_others(lab):
    from memory.eval.loco import leave_one_out
    from memory.retrieval import WEIGHTS, Weights

    conversations = load_locomo(SAMPLE)
    grid = [WEIGHTS, Weights(dense=1.0, neighbour=0.0, session=0.0), Weights(dense=0.0, neighbour=0.0, session=0.0)]
    report = leave_one_out(lab, conversations, "turn", [1, 2, 3, 4], grid=grid, k=1)
    assert report.k == 1 and report.questions == 11 and len(report.per_conversation) == 2
    plain = evaluate(lab, conversations, "turn", "hybrid", [1], [1, 2, 3, 4])
    assert report.plain == pytest.approx(plain.overall[1])
    per_setting = [evaluate(lab, conversations, "turn", "hybrid", [1], [1, 2, 3, 4], weights=w) for w in grid]
    assert report.hindsight == pytest.approx(max(r.overall[1] for r in per_setting))
    for held, row in report.per_conversation.items():
        (other,) = [c for c in report.per_conversation if c != held]
        best = max(range(len(grid)), key=lambda j: (per_setting[j].by_conversation[other][1], -j))
        assert row["chosen"] == dataclasses.asdict(grid[best]), "chosen on the other conversation only"
        assert row["loco"] == pytest.approx(per_setting[best].by_conversation[held][1])
    assert report.loco <= report.hindsight + 1e-9
    assert report.per_category, "a held-out number per question category"
    for category, row in report.per_category.items():
        held_out = [
            q.recall[1]
            for held, chosen in report.per_conversation.items()
            for q in per_setting[grid.index(Weights(**chosen["chosen"]))].questions
            if q.sample_id == held and q.category == category
        ]
        assert row["loco"] == pytest.approx(sum(held_out) / len(held_out))
        in_plain = [q.recall[1] for q in plain.questions if q.category == category]
        assert row["plain"] == pytest.approx(sum(in_plain) / len(in_plain)) and row["questions"] == len(in_plain)
    with pytest.raises(ValueError, match="two conversations"):
        leave_one_out(lab, conversations[:1], "turn", grid=grid)


def test_the_turn_store_keeps_each_turns_speaker_for_the_ranking(lab):
    rows = [
        ("t1", "Ana: I love hiking in the hills.", 0, 1.0, "Ana"),
        ("t2", "Ben: I love hiking too, mostly by the sea.", 1, 2.0, "Ben"),
        ("t3", "Ana: My sister visited.", 2, 3.0, "Ana"),
    ]
    lab.turns.add("u1", "s1", rows)
    lab.turns.add("u1", "s2", [("t4", "Ben: Sounds fun.", 0, 4.0)])  # a row without a speaker is still stored
    query = "Where does Ana like hiking?"
    hits = lab.turns.search_turns("u1", query, lab.embed([query])[0], 4)
    assert hits[0].id == "t1"
    records = {r.metadata["turn_id"]: r.metadata for r in lab.turns.vectors.get(TURNS, where={"user_id": "u1"})}
    assert records["t2"]["speaker"] == "Ben" and "speaker" not in records["t4"]


def test_a_question_is_asked_again_in_the_named_participants_voice():
    from memory.retrieval.voice import in_voice

    assert in_voice("What activities does Melanie partake in?", "Melanie") == "What activities does I partake in?"
    assert in_voice("What did melanie's kids do with her?", "Melanie") == "What did my kids do with my?"
    assert in_voice("Where did John Smith go after John's talk?", "John Smith") == "Where did I go after my talk?"
    assert in_voice("Did Joanna meet Jo?", "Jo") == "Did Joanna meet I?"  # whole words only
    assert in_voice("What did she say to Ben?", "Ana") == "What did she say to Ben?"  # not named: unchanged
    assert in_voice("What did Ana say?", "") == "What did Ana say?"


def test_the_named_participants_turns_mix_in_the_cosine_of_the_question_in_their_voice(lab):
    rows = [
        ("t1", "Ana: I adopted a puppy last spring.", 0, 1.0, "Ana"),
        ("t2", "Ben: Ana adopted a puppy, and I have a cat.", 1, 2.0, "Ben"),
        ("t3", "Ana: My sister visited in May.", 2, 3.0, "Ana"),
    ]
    lab.turns.add("u1", "s1", rows)
    query, voiced = "What pet did Ana adopt?", "What pet did I adopt?"
    plain_vec, voiced_vec = lab.embed([query, voiced])
    cands, off = lab.turns.components("u1", query, plain_vec, weights=Weights(voice=0.0))
    _, on = lab.turns.components("u1", query, plain_vec, weights=Weights(voice=0.5))
    assert [c.id for c in cands] == ["t1", "t2", "t3"]
    texts = [r[1] for r in rows]
    plain = lab.embed(texts) @ plain_vec  # (each turn here is one sentence: its own vector is its cosine)
    again = lab.embed(texts) @ voiced_vec
    np.testing.assert_allclose(off["cosine"], plain, atol=1e-5)
    np.testing.assert_allclose(
        on["cosine"], [0.5 * plain[0] + 0.5 * again[0], plain[1], 0.5 * plain[2] + 0.5 * again[2]], atol=1e-5
    )
    assert not np.allclose(on["cosine"], off["cosine"])
    # A question naming nobody, or both, is not asked again.
    for neutral in ("Who adopted a puppy?", "Did Ana or Ben adopt a pet?"):
        vec = lab.embed([neutral])[0]
        a = lab.turns.components("u1", neutral, vec, weights=Weights(voice=0.0))[1]["cosine"]
        b = lab.turns.components("u1", neutral, vec, weights=Weights(voice=0.5))[1]["cosine"]
        np.testing.assert_array_equal(a, b)


def test_sentences_worth_a_vector_of_their_own():
    from memory.stores.turn_store import sentences

    text = "Ana: Wow, great news! I just signed up for a pottery class. [shares a photo: a bowl] It is fun. Yes."
    assert sentences(text, "Ana") == [
        "Ana: Wow, great news!",
        "Ana: I just signed up for a pottery class.",
        "Ana: It is fun.",
    ]  # asides and sentences of under three words ("Yes.") are left to the whole turn
    assert sentences("Ana: One sentence only, nothing to split.", "Ana") == []
    assert sentences("No speaker here. Two sentences in it.") == ["No speaker here.", "Two sentences in it."]
    from memory.stores.turn_store import MAX_SENTENCES

    pasted = " ".join(f"This is sentence number {i}." for i in range(5000))
    assert len(sentences(pasted)) == MAX_SENTENCES  # a huge message costs a bounded number of vectors


def test_a_turn_is_as_close_as_its_closest_sentence_and_its_sentences_go_with_it(lab):
    from memory.stores.turn_store import SENTENCES

    long = (
        "Ben: The weather was grey all week and the trains were late again. "
        "My sister adopted a black cat named Pepper last Sunday. "
        "Work has been busy with the quarterly reports."
    )
    lab.turns.add("u2", "s1", [("t1", long, 0, 1.0, "Ben"), ("t2", "Ben: I like tea.", 1, 2.0, "Ben")])
    query = "What is the name of the cat Ben's sister adopted?"
    q = lab.embed([query])[0]
    (hit,) = [h for h in lab.turns.search_turns("u2", query, q, 2) if h.id == "t1"]
    parts = lab.embed([long, "Ben: My sister adopted a black cat named Pepper last Sunday."])
    whole, sentence = float(parts[0] @ q), float(parts[1] @ q)
    assert sentence > whole  # the buried sentence is closer than the turn as a whole...
    assert hit.similarity == pytest.approx(sentence, abs=1e-5)  # ...and the turn is ranked by it
    assert len(lab.turns.vectors.get(SENTENCES, where={"user_id": "u2"})) == 3
    lab.turns.clear_session("u2", "s1")
    assert lab.turns.vectors.get(SENTENCES, where={"user_id": "u2"}) == []
    lab.turns.add("u2", "s2", [("t3", long, 0, 3.0, "Ben")])
    lab.turns.forget_user("u2")
    assert lab.turns.vectors.get(SENTENCES, where={"user_id": "u2"}) == []


def test_dates_a_query_names():
    import datetime as dt

    from memory.retrieval.dates import date_ranges

    day = dt.date(2023, 10, 24)
    assert date_ranges("What did Audrey eat on October 24, 2023?") == [(day, day)]
    assert date_ranges("on the 24th of Oct 2023") == [(day, day)]
    assert date_ranges("During March 2023 and sept. 2024?") == [
        (dt.date(2023, 3, 1), dt.date(2023, 3, 31)),
        (dt.date(2024, 9, 1), dt.date(2024, 9, 30)),
    ]
    assert date_ranges("31 February 2023") == [(dt.date(2023, 2, 1), dt.date(2023, 2, 28))]  # no such day: the month
    assert date_ranges("in 2023, last week, maybe 12 of them") == []


def test_a_query_naming_a_date_favours_what_was_said_around_it():
    import datetime as dt

    from memory.retrieval import CandidateIndex, Weights

    def at(day: int) -> float:
        return dt.datetime(2023, 10, day, 12).timestamp()

    cands = [
        Candidate("a", "Ana: We had sushi tonight.", "s1", 0, "Ana", at(2)),
        Candidate("b", "Ana: Sushi again, with friends.", "s2", 0, "Ana", at(25)),  # the day after the 24th
        Candidate("c", "Ana: The weather is grey.", "s3", 0, "Ana", dt.datetime(2023, 11, 1, 12).timestamp()),
    ]
    index = CandidateIndex(cands)
    dense = np.array([0.6, 0.5, 0.1])
    query = "What did Ana eat on October 24, 2023?"
    near = index.rank(query, dense)
    assert list(index.near_named_dates(query)) == [False, True, False]
    assert near[1] > near[0]
    off = index.rank(query, dense, weights=Weights(date=0.0))
    assert off[0] > off[1]
    sessions = index.rank_groups(query, dense)
    assert max(sessions, key=sessions.get) == "s2"
    assert index.near_named_dates("What did Ana eat?") is None
    undated = CandidateIndex([dataclasses.replace(c, at=0.0) for c in cands])
    assert undated.near_named_dates(query) is None  # nothing to place: the ranking is unchanged
    np.testing.assert_allclose(
        undated.rank(query, dense), CandidateIndex(cands).rank(query, dense, weights=Weights(date=0.0))
    )


def _talk_about_pets_and_music() -> list[Candidate]:
    """Ana and Ben's turns: the dog is talked of often, the puppy, the guitar and the taekwondo once each."""
    said = [
        "Ana: I played the guitar all evening.",
        "Ana: I'm off to do some taekwondo!",
        "Ben: We adopted a puppy last spring.",
        "Ben: The dog sleeps all day.",
        "Ana: Your dog is lovely.",
        "Ben: The dog ate my shoe.",
    ] + [f"{'Ana' if i % 2 else 'Ben'}: Nice weather today, number {i}." for i in range(20)]
    return [Candidate(f"t{i}", text, f"s{i // 5}", i % 5, text.split(":")[0]) for i, text in enumerate(said)]


def test_a_questions_rare_words_find_the_conversations_rare_words_that_mean_the_same(lab, monkeypatch):
    from memory.backends.embedding_cache import VectorMemo
    from memory.retrieval import CandidateIndex
    from memory.retrieval.bm25 import _stem

    index = CandidateIndex(_talk_about_pets_and_music())
    words = VectorMemo(lab.embed)
    related = index.related.terms("What instruments does Ana play?", words, skip=index.name_words())
    assert _stem("guitar") in related and related[_stem("guitar")] >= 0.55
    assert _stem("taekwondo") not in related and _stem("weather") not in related
    assert _stem("instruments") not in related, "the question's own words are not added again"
    pets = index.related.terms("Which pets has Ben had?", words, skip=index.name_words())
    assert _stem("puppy") in pets
    assert _stem("dog") not in pets, "a word used in several turns is too common to be a relative"
    assert index.related.terms("Ana Ben", words, skip=index.name_words()) == {}, "names are not looked up"
    assert index.related.terms("What is the weather like?", words) == {}, "a common word has no relatives"
    from memory.retrieval import related as related_module

    monkeypatch.setattr(related_module, "MAX_WORDS", 3)  # a huge vocabulary keeps its rarest words only
    few = related_module.RelatedWords(["zebra zebra", "guitar", "zebra violin", "puppy", "lemur"] + ["x"] * 400)
    assert few.limit == 4 and few.words == ["guitar", "violin", "puppy"]
    # The ranking counts them in the keyword score, at their cosine times Weights.related.
    dense = np.zeros(len(index.cands))
    query = "What instruments does Ana play?"
    on = index.components(query, dense, weights=Weights(related=0.5), related=related)
    off = index.components(query, dense, weights=Weights(related=0.0), related=related)
    alone = index.turn_bm25.scores([], {_stem("guitar"): related[_stem("guitar")]})
    np.testing.assert_allclose(on["bm25"], off["bm25"] + 0.5 * index.turn_bm25.scores([], related))
    assert on["bm25"][0] > off["bm25"][0] and alone[0] > 0
    assert np.argmax(on["score"]) == 0
    np.testing.assert_array_equal(index.components(query, dense, "bm25", related=related)["bm25"], off["bm25"])


def test_a_question_asked_across_time_favours_no_one_session():
    from memory.retrieval import CandidateIndex

    index = CandidateIndex(_talk_about_pets_and_music())
    dense = np.linspace(0.1, 0.6, len(index.cands))
    at_once = index.components("What did Ben do with the dog?", dense, weights=Weights(over_time=0.0))
    assert at_once["session"].any()
    across = index.components("What has Ben done with the dog?", dense, weights=Weights(over_time=0.0))
    assert not across["session"].any()
    half = index.components("What has Ben done with the dog?", dense, weights=Weights(over_time=0.5))
    full = index.components("What has Ben done with the dog?", dense, weights=Weights(over_time=1.0))
    np.testing.assert_allclose(half["session"], full["session"] / 2)
    assert full["session"].any()


def test_the_turn_store_adds_related_words_and_embeds_each_word_once(lab):
    from memory.backends.embedding_cache import VectorMemo

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return lab.embed(texts)

    memo = VectorMemo(embed, limit=3)
    first = memo(["guitar", "violin", "guitar"])
    np.testing.assert_allclose(first, lab.embed(["guitar", "violin", "guitar"]), atol=1e-6)
    memo(["violin"])
    assert calls == [["guitar", "violin"]], "each text once"
    memo(["drum", "flute"])  # past the limit it starts again
    memo(["guitar"])
    assert calls[-1] == ["guitar"] and len(memo(["drum", "flute"])) == 2
    rows = [(c.id, c.text, c.position, 1.0 + i, c.speaker) for i, c in enumerate(_talk_about_pets_and_music())]
    store = TurnStore(lab.vectors, embed)
    store.add("u1", "s1", rows)
    calls.clear()
    query = "What instruments does Ana play?"
    assert "guitar" in store.related_words("u1", query)
    assert calls == [["instruments", "play"]], (
        "the turns' words were embedded when they were stored, the question's now"
    )
    related = lab.turns.related_words("u1", query)
    assert "guitar" in related
    # A pasted document: storing it embeds its first few hundred words, not all of them.
    from memory.stores.turn_store import WORDS_PER_TURN

    document = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}" for i in range(2000))
    calls.clear()
    store.add("u1", "s2", [("doc", "Ana: " + document, 0, 99.0, "Ana")])
    assert sum(len(c) for c in calls[1:]) <= WORDS_PER_TURN, "the words embedded beside the turn's own texts"
    assert lab.turns.related_words("u1", query, weights=Weights(related=0.0)) == {}
    vec = lab.embed([query])[0]
    _, on = lab.turns.components("u1", query, vec)
    _, off = lab.turns.components("u1", query, vec, weights=Weights(related=0.0))
    assert on["bm25"][0] > off["bm25"][0]
    hits = lab.turns.search_turns("u1", query, vec, 1)
    assert hits[0].id == "t0"


def test_a_turn_is_stored_even_when_its_words_cannot_be_embedded_ahead_of_time(lab, caplog):
    calls = 0

    def embed_turns_only(texts: list[str]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 2:  # the words' call, after the turn's own
            raise RuntimeError("embedder gone")
        return lab.embed(texts)

    store = TurnStore(lab.vectors, embed_turns_only)
    store.add("u9", "s1", [("t1", "User: I play the oud on Sundays.", 0, 1.0)])
    assert "could not embed the words" in caplog.text
    query = "What instrument do I play?"
    hits = store.search_turns("u9", query, lab.embed([query])[0], 1)
    assert [h.id for h in hits] == ["t1"], "the turn is stored, and a question embeds the words it needs"


def test_the_session_ceiling_starts_from_the_apps_ranking_and_holds_each_conversation_out(lab):
    from benchmarks.session_ceiling import app_weights, ceiling, recall, session_signals

    conversations = load_locomo(SAMPLE)
    plain = evaluate(lab, conversations, "session", "hybrid", [1], [1, 2, 3, 4])
    qs = session_signals(lab, conversations)
    assert len(qs.size) == plain.n_questions
    assert recall(qs, app_weights(), 1) == pytest.approx([q.recall[1] for q in plain.questions])
    result = ceiling(qs, steps=(0.4,), restarts=1, k=1)
    assert result.app == pytest.approx(plain.overall[1]) and result.hindsight >= result.app - 1e-12
    sizes = {conv: int((qs.conversation == conv).sum()) for conv, *_ in result.folds}
    assert sum(held * sizes[conv] for conv, _, held, _ in result.folds) / len(qs.size) == pytest.approx(result.loco)
    for conv, _, _, app in result.folds:
        assert app == pytest.approx(plain.by_conversation[conv][1])


def test_the_session_ceiling_finds_the_weights_of_a_signal_that_knows_the_answer():
    from benchmarks.session_ceiling import SIGNALS, Questions, app_weights, ascend, recall

    rng = np.random.default_rng(1)
    n, sessions = 40, 6
    signals = rng.uniform(0, 1, (n, sessions, len(SIGNALS)))
    evidence = np.zeros((n, sessions))
    evidence[np.arange(n), rng.integers(0, sessions, n)] = 1
    signals[..., 3] = evidence + 0.1 * signals[..., 3]  # one signal puts the evidence session first
    qs = Questions(signals, evidence, np.ones(n), np.array(["a", "b"] * (n // 2)), np.ones(n, dtype=int))
    assert recall(qs, app_weights(), 1).mean() < 0.5
    weights, best = ascend(qs, restarts=0, k=1)
    assert best == 1.0 and weights[3] > 0
