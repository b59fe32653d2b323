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
from memory.retrieval import BM25, Candidate, rank_candidates, rank_groups, tokenize

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
    from memory.cli import main

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
    assert turns.overall[10] >= 0.72, turns.overall
    assert sessions.overall[5] >= 0.85, sessions.overall


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
    with pytest.raises(ValueError, match="two conversations"):
        leave_one_out(lab, conversations[:1], "turn", grid=grid)
