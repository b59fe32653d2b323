"""LongMemEval retrieval: the benchmark's measures, each history as its own user, CV over questions, the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.eval.recall import ndcg, recall_all, recall_any
from tests.page_app import assert_clean, open_page, picker

ROOT = Path(__file__).resolve().parent.parent
EXCERPT = ROOT / "samples" / "longmemeval_excerpt.json"  # five questions of the MIT-licensed dev file, cut short
LOCOMO_SAMPLE = ROOT / "samples" / "recall_sample.json"


def test_recall_any_all_and_ndcg_as_the_benchmarks_scripts_compute_them():
    ranked = ["a", "x", "b", "y", "z"]
    evidence = {"a", "b"}
    assert [recall_any(evidence, ranked, k) for k in (1, 2, 3)] == [1.0, 1.0, 1.0]
    assert [recall_all(evidence, ranked, k) for k in (1, 2, 3)] == [0.0, 0.0, 1.0]  # "all" needs both in the top k
    # The benchmark's DCG: 1 at the first place, 1/log2(i + 1) at 0-based place i >= 1 (so places 0 and 1 tie).
    assert ndcg(evidence, ranked, 1) == 1.0
    assert ndcg(evidence, ranked, 3) == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert ndcg({"x"}, ranked, 5) == 1.0  # second place counts fully, as in eval_utils.dcg
    assert ndcg({"b"}, ranked, 5) == pytest.approx(1 / math.log2(3))
    assert ndcg({"b"}, ranked, 2) == 0.0
    assert recall_any(set(), ranked, 5) == 0.0 and ndcg(set(), ranked, 5) == 0.0  # no evidence: nothing found


@pytest.fixture()
def env(lab, settings, monkeypatch):
    monkeypatch.setenv("MEMLAB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    return lab


def _cli_json(capsys, *args: str) -> dict:
    from memory.tools.cli import main

    assert main(["eval", "--quiet", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_eval_reads_longmemeval_and_prints_recall_any_and_recall_all_by_type(env, capsys, tmp_path):
    out = _cli_json(capsys, "--data", str(EXCERPT), "--unit", "session")
    assert out["data_set"] == "longmemeval" and out["unit"] == "session"
    overall = out["overall"]
    for metric in ("recall_any", "recall_all", "ndcg"):
        assert list(overall[metric]) == ["1", "3", "5", "10", "30", "50"]
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in overall[metric].values())
    assert set(out["by_type"]) == {
        "multi-session",
        "single-session-user",
        "single-session-assistant",
        "knowledge-update",
    }
    # Abstention questions have no evidence: left out, as the benchmark leaves them out.
    assert out["n_questions"] == 4 and out["left_out"] == {"abstention": 1}
    # Two evidence sessions cannot both be in the top 1: "all" misses where "any" finds.
    multi = out["by_type"]["multi-session"]
    assert multi["recall_any"]["1"] == 1.0 and multi["recall_all"]["1"] == 0.0
    assert multi["recall_all"]["5"] == 1.0
    assert out["seconds"] >= 0 and out["cpu_seconds"] > 0

    turns = _cli_json(capsys, "--data", str(EXCERPT), "--unit", "turn", "--k", "1,10")
    # At the turn unit, the assistant-only question has nothing among the user's turns to find.
    assert turns["n_questions"] == 3
    assert turns["left_out"] == {"abstention": 1, "evidence not in the user's turns": 1}
    assert list(turns["overall"]["recall_any"]) == ["1", "10"]

    packed = tmp_path / "excerpt.bin"  # any name: the format and the compression come from the bytes
    packed.write_bytes(gzip.compress(EXCERPT.read_bytes()))
    again = _cli_json(capsys, "--data", str(packed), "--unit", "session")
    assert again["overall"] == overall and again["by_type"] == out["by_type"]


def test_each_history_is_its_own_user_and_is_stored_once(env):
    from memory.eval.lme_retrieval import eval_user, evaluate_lme, history_rows
    from memory.eval.longmemeval import load_longmemeval

    questions = load_longmemeval(EXCERPT)
    first = evaluate_lme(env, questions, "session", ks=[1, 5])
    users = {eval_user(q, history_rows(q)) for q in questions}
    assert len(users) == len(questions)
    for q in questions:
        rows = history_rows(q)
        user = eval_user(q, rows)
        stored = env.dataset_turns.vectors.get("memlab_turns", where={"user_id": user})
        assert {r.metadata["session_id"] for r in stored} == {s for s, turns in rows.items() if turns}
        assert all(r.text.startswith("User: ") for r in stored)  # the user's turns, as the app stores them
    assert first.index_seconds > 0
    second = evaluate_lme(env, questions, "session", ks=[1, 5])
    assert second.overall == first.overall
    q = next(r for r in second.questions if r.question_type == "multi-session")
    assert set(q.evidence_ranks) == set(q.evidence) and all(r is not None for r in q.evidence_ranks.values())
    for e, rank in q.evidence_ranks.items():  # why each evidence session ranked where it did
        assert q.top[rank - 1]["id"] == e and q.evidence_scores[e]["score"] == q.top[rank - 1]["score"]
        assert set(q.evidence_scores[e]) == {"cosine", "bm25", "match", "date", "score"}


def test_the_format_is_detected_from_the_bytes():
    from memory.eval.datasets import data_kind

    assert data_kind(EXCERPT.read_bytes()) == "longmemeval"
    assert data_kind(b"\xef\xbb\xbf \n" + EXCERPT.read_bytes()) == "longmemeval"
    assert data_kind(LOCOMO_SAMPLE.read_bytes()) == "locomo"
    assert data_kind(b"") == "locomo"  # its loader then says what is wrong


def test_cli_errors_for_longmemeval_are_one_line(env, capsys):
    from memory.tools.cli import main

    for args, needle in (
        (["--unit", "fact"], "session or turn"),
        (["--loco"], "--cv"),
        (["--cv", "--folds", "1"], "--folds"),
    ):
        assert main(["eval", "--quiet", "--data", str(EXCERPT), *args]) == 2
        assert needle in capsys.readouterr().err
    assert main(["eval", "--quiet", "--data", str(LOCOMO_SAMPLE), "--cv"]) == 2
    assert "--loco" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda settings_n: st.tuples(
            st.lists(
                st.lists(st.sampled_from([0.0, 1.0]), min_size=8, max_size=8), min_size=settings_n, max_size=settings_n
            ),
            st.lists(st.integers(0, 2), min_size=8, max_size=8).filter(lambda f: len(set(f)) > 1),
            st.integers(0, 7),
            st.lists(st.sampled_from([0.0, 1.0]), min_size=settings_n, max_size=settings_n),
        )
    )
)
def test_a_question_is_never_scored_with_weights_chosen_on_it(case):
    from memory.eval.loco import choose_held_out

    scores, folds, question, replaced = case
    matrix = np.array(scores)
    chosen, used = choose_held_out(matrix, folds)
    for fold, setting in chosen.items():
        others = [i for i, f in enumerate(folds) if f != fold]
        means = matrix[:, others].mean(axis=1)
        assert setting == int(np.flatnonzero(means == means.max())[0])  # the best on the other folds, first on a tie
    # Whatever a question scores under each setting, the setting it is scored with does not change.
    changed = matrix.copy()
    changed[:, question] = replaced
    assert choose_held_out(changed, folds)[1][question] == used[question]


def test_question_folds_hold_every_type():
    from memory.eval.lme_cv import question_folds

    kinds = ["a"] * 5 + ["b"] * 5
    folds = question_folds(kinds, [f"q{i}" for i in range(10)], 5)
    assert sorted(folds) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert {folds[i] for i in range(5)} == {folds[i] for i in range(5, 10)} == {0, 1, 2, 3, 4}


def test_cross_validation_prints_the_plain_and_the_held_out_numbers(env, capsys):
    from memory.eval.lme_cv import cross_validate
    from memory.eval.lme_retrieval import evaluate_lme
    from memory.eval.longmemeval import load_longmemeval
    from memory.retrieval import WEIGHTS, Weights

    questions = load_longmemeval(EXCERPT)
    grid = [WEIGHTS, Weights(group_dense=1.0, related=0.0)]
    cv = cross_validate(env, questions, "session", [1, 5], folds=2, grid=grid)
    plain = evaluate_lme(env, questions, "session", ks=[1, 5])
    assert cv.plain == plain.overall and cv.n_questions == 4 and cv.settings == 2
    assert cv.target == "recall_any@5" and len(cv.chosen) == 2
    assert 0.0 <= cv.cv["recall_any"][5] <= cv.hindsight + 1e-9
    out = _cli_json(capsys, "--data", str(EXCERPT), "--cv", "--folds", "2", "--k", "1,5")
    assert set(out["overall"]) == {"recall_any", "recall_all", "ndcg"} and "plain" in out and "by_type" in out
    assert out["overall"] == out["cv"] and list(out["overall"]["recall_all"]) == ["1", "5"]
    assert out["by_type"]["multi-session"]["recall_all"]["1"] == 0.0  # two evidence sessions never fit in one
    assert out["index_seconds"] >= 0 and out["cpu_seconds"] > 0 and len(out["chosen"]) == 2


def test_dates_said_relative_to_the_day_of_the_question():
    from memory.retrieval.dates import date_ranges

    wednesday = dt.date(2023, 5, 24)
    day = dt.timedelta(days=1)
    assert date_ranges("What did I do three weeks ago?") == []  # no day to count from: nothing placed
    assert date_ranges("What did I do three weeks ago?", wednesday) == [(wednesday - 24 * day, wednesday - 18 * day)]
    assert date_ranges("in the past two weeks", wednesday) == [(wednesday - 14 * day, wednesday)]
    assert date_ranges("during the past month", wednesday) == [(wednesday - 30 * day, wednesday)]
    assert date_ranges("last month", wednesday) == [(dt.date(2023, 4, 1), dt.date(2023, 4, 30))]
    assert date_ranges("last week", wednesday) == [(dt.date(2023, 5, 15), dt.date(2023, 5, 21))]
    assert date_ranges("last weekend", wednesday) == [(dt.date(2023, 5, 20), dt.date(2023, 5, 21))]
    assert date_ranges("last Saturday", wednesday) == [(dt.date(2023, 5, 20), dt.date(2023, 5, 20))]
    assert date_ranges("yesterday", wednesday) == [(wednesday - day, wednesday - day)]
    assert date_ranges("in February", wednesday) == [(dt.date(2023, 2, 1), dt.date(2023, 2, 28))]
    assert date_ranges("in August", wednesday) == [(dt.date(2022, 8, 1), dt.date(2022, 8, 31))]  # not after today
    assert date_ranges("May I ask about the previous chat?", wednesday) == []
    assert date_ranges("in March 2021", wednesday) == [(dt.date(2021, 3, 1), dt.date(2021, 3, 31))]


def test_a_question_asked_on_a_day_favours_what_was_said_around_the_day_it_names():
    from memory.retrieval import Candidate, CandidateIndex, Weights

    asked = dt.datetime(2023, 5, 24, 12)

    def days_before(n: int) -> float:
        return (asked - dt.timedelta(days=n)).timestamp()

    cands = [
        Candidate("a", "User: We went to an art gallery opening.", "s1", 0, "User", days_before(60)),
        Candidate("b", "User: I saw an art fair downtown.", "s2", 0, "User", days_before(13)),
        Candidate("c", "User: The weather was grey all day.", "s3", 0, "User", days_before(1)),
    ]
    index = CandidateIndex(cands)
    dense = np.array([0.6, 0.55, 0.0])
    query = "Where was the art event I went to two weeks ago?"
    plain = index.group_components(query, dense, weights=Weights(date=0.5))
    placed = index.group_components(query, dense, weights=Weights(date=0.5), asked_at=asked.timestamp())
    assert list(plain["date"]) == [0.0, 0.0, 0.0]  # without the day it is asked, "two weeks ago" is nowhere
    assert list(placed["date"]) == [0.0, 0.5, 0.0]
    assert plain["score"][0] > plain["score"][1] and placed["score"][1] > placed["score"][0]
    assert index.rank_groups(query, dense, asked_at=asked.timestamp()) == dict(zip(index.groups, placed["score"]))


@pytest.mark.usefixtures("app_env")
def test_the_recall_lab_offers_longmemeval_by_type_with_the_why_of_each_evidence_session(monkeypatch, tmp_path):
    folder = tmp_path / "longmemeval"
    folder.mkdir()
    (folder / "longmemeval_oracle_dev.json.gz").write_bytes(gzip.compress(EXCERPT.read_bytes()))
    monkeypatch.setenv("MEMLAB_LONGMEMEVAL_DIR", str(folder))
    monkeypatch.setenv("MEMLAB_LOCOMO_PATH", str(tmp_path / "no-locomo.json"))
    at = open_page("pages/recall_lab.py")
    said = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "(set MEMLAB_LOCOMO_PATH)" in said  # the setting's name as it is typed, not lowered
    source = at.selectbox(key="rl_source")
    label = next(o for o in source.options if o.startswith("LongMemEval oracle"))
    source.set_value(label).run()
    assert list(at.selectbox(key="rl_lme_unit").options) == ["session", "turn"]
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "4" and "recall_any@5" in metrics and "recall_all@5" in metrics
    at.radio(key="rl_show").set_value("all").run()
    box = picker(at)
    multi = next(i for i, o in enumerate(box.options) if o.startswith("multi-session"))
    box.set_value(box.options[multi]).run()
    assert not at.exception, [e.value for e in at.exception]
    evidence = next(df.value for df in at.dataframe if "why" in df.value.columns)
    assert list(evidence["evidence"]) == ["answer_86c505e7_1", "answer_86c505e7_2"]
    assert all(w.startswith("retrieved (rank") or w.startswith("ranked below") for w in evidence["why"])
    assert "best turn cosine" in evidence.columns and all(evidence["text"].str.len() > 0)

    # The turn unit ranks the user's turns: the question whose evidence is the assistant's is left out.
    at.selectbox(key="rl_lme_unit").set_value("turn").run()
    at.button(key="rl_run").click().run()
    assert_clean(at, "Recall Lab")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Questions"] == "3" and metrics["recall_any@1"].endswith("%")
    at.radio(key="rl_show").set_value("all").run()
    box = picker(at)
    assert not any(o.startswith("single-session-assistant") for o in box.options)
    box.set_value(box.options[next(i for i, o in enumerate(box.options) if o.startswith("multi-session"))]).run()
    assert not at.exception, [e.value for e in at.exception]
    evidence = next(df.value for df in at.dataframe if "why" in df.value.columns)
    assert list(evidence["evidence"]) == ["answer_86c505e7_1_1", "answer_86c505e7_2_1"]  # turns, numbered from 1
    assert all(evidence["text"].str.startswith("User: "))


def test_a_turn_whose_sentences_cover_it_is_not_embedded_whole(lab):
    from memory.stores.turn_store import TURNS, TurnStore, embedded_texts

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return lab.embed(texts)

    store = TurnStore(lab.vectors, embed)
    told = "User: I adopted a greyhound last spring. She sleeps on the sofa all day."
    shown = "User: [shares a photo of a dog] This is Comet. He hates the rain."
    short = "User: I like tea."
    rows = [("t1", told, 0, 1.0, "User"), ("t2", shown, 1, 2.0, "User"), ("t3", short, 2, 3.0, "User")]
    store.add("u-cover", "s1", rows)
    embedded = calls[0]  # (then the turns' words, for related words)
    assert told not in embedded  # its two sentences say all it says: their vectors, not a third
    assert shown in embedded and short in embedded  # an aside its sentences leave out; a single sentence
    assert embedded == embedded_texts(rows)  # what an eval embeds beforehand, exactly
    sentences = lab.embed(["User: I adopted a greyhound last spring.", "User: She sleeps on the sofa all day."])
    mean = sentences.mean(axis=0) / np.linalg.norm(sentences.mean(axis=0))
    (record,) = lab.vectors.get(TURNS, ids=["u-cover/s1/t1"], with_embeddings=True)
    np.testing.assert_allclose(record.embedding, mean, atol=1e-5)
    query = "What breed is my dog?"
    q = lab.embed([query])[0]
    (hit,) = [h for h in store.search_turns("u-cover", query, q, 3) if h.id == "t1"]
    assert hit.similarity == pytest.approx(max(float(mean @ q), float((sentences @ q).max())), abs=1e-5)
    store.forget_user("u-cover")
