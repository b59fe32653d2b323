"""Answer quality: token F1 as LoCoMo scores it, the offline answers on the shipped sample, and an LLM judge."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from memory.eval.answers import answer_eval, answer_tokens, token_f1
from memory.eval.locomo import load_locomo
from memory.eval.runner import evaluate
from memory.lab import MemoryLab

from .anthropic_stub import MessagesServer, message_body
from .test_recall import SAMPLE


@pytest.mark.parametrize(
    ("prediction", "gold", "f1"),
    [
        ("Sweden", "Sweden", 1.0),
        ("She moved from Sweden.", "Sweden", 0.4),  # precision 1/4, recall 1
        ("The guitar", "guitar", 1.0),  # articles and case do not count
        ("playing guitars", "plays guitar", 1.0),  # stems
        ("7 May, 2023", "7 May 2023", 1.0),
        ("I do not know.", "Sweden", 0.0),
        ("", "Sweden", 0.0),
    ],
)
def test_token_f1_scores_as_locomo_does(prediction, gold, f1):
    assert token_f1(prediction, gold) == pytest.approx(f1)


def test_answer_tokens_drop_punctuation_and_articles():
    assert answer_tokens("The cat, a dog and an owl!") == ["cat", "dog", "owl"]


def test_offline_answers_on_the_shipped_sample(lab):
    recall = evaluate(lab, load_locomo(SAMPLE), "turn", "hybrid", [1, 5, 10], [1, 2, 3, 4])
    report = answer_eval(lab, recall, k=5)
    assert report.provider == "offline" and report.n_questions == recall.n_questions
    assert report.judge_accuracy is None and report.judged == 0, "no judge without a key"
    assert all(q.prediction and len(q.context) <= 5 for q in report.questions)
    assert 0.0 < report.mean_f1 <= 1.0 and set(report.f1_by_category) <= {1, 2, 3, 4}
    best = max(report.questions, key=lambda q: q.f1)
    assert best.f1 > 0.3, (best.question, best.prediction, best.gold)
    fewer = answer_eval(lab, recall, k=1)
    assert all(len(q.context) == 1 for q in fewer.questions)
    data = report.to_json(with_questions=True)
    assert data["questions"][0]["gold"] and json.dumps(data)


def _grader(body):
    system = body.get("system") or ""
    asked = body["messages"][-1]["content"]
    if "You grade an answer" in system:
        if "Omar" in asked:
            return 200, message_body("Not JSON, sorry.")
        verdict = "CORRECT" if "guitar" in asked.split("Answer to grade:")[-1].lower() else "WRONG"
        return 200, message_body(json.dumps({"verdict": verdict, "reason": "compared with the gold answer"}))
    return 200, message_body("guitar" if "instrument" in asked else "I do not know.")


def test_an_llm_judge_grades_each_answer_and_keeps_its_prompt(settings):
    with MessagesServer(_grader) as server:
        lab = MemoryLab(replace(settings, anthropic_api_key="sk-test", anthropic_base_url=server.url))
        try:
            recall = evaluate(lab, load_locomo(SAMPLE), "turn", "hybrid", [5], [1, 2, 3, 4])
            report = answer_eval(lab, recall, k=5)
        finally:
            lab.close()
    assert report.provider == "anthropic"
    verdicts = {q.question: q.judge.get("verdict") for q in report.questions}
    assert set(verdicts.values()) <= {"CORRECT", "WRONG", "unreadable"}
    omar = [q for q in report.questions if "Omar" in q.question]
    assert omar and all(q.judge["verdict"] == "unreadable" and q.judge["raw"] == "Not JSON, sorry." for q in omar)
    judged = [q for q in report.questions if q.judge["verdict"] in ("CORRECT", "WRONG")]
    assert report.judged == len(judged) and judged
    assert all("Gold answer:" in q.judge["prompt"] and q.judge["reason"] for q in judged)
    correct = [q for q in judged if q.judge["verdict"] == "CORRECT"]
    assert report.judge_accuracy == pytest.approx(len(correct) / len(judged))
    assert all("guitar" in q.prediction for q in correct)
    answer_requests = [r for r in server.requests if "as few words as possible" in (r.get("system") or "")]
    assert len(answer_requests) == report.n_questions and "past turns" not in answer_requests[0]["messages"][0]


def test_the_eval_cli_prints_answer_f1(settings):
    from .conftest import run_cli

    env = {"REDIS_URL": settings.redis_url, "MEMLAB_DATA_DIR": str(settings.data_dir)}
    run = run_cli("eval", "--data", str(SAMPLE), "--k", "1,5", "--answers", "5", "--quiet", env=env, timeout=300)
    assert run.code == 0, run.err
    assert "token F1" in run.out and "no judge" in run.out
    data = run_cli("eval", "--data", str(SAMPLE), "--answers", "3", "--json", "--quiet", env=env, timeout=300)
    answers = json.loads(data.out)["answers"]
    assert answers["k"] == 3 and 0 < answers["mean_f1"] <= 1 and answers["judge_accuracy"] is None
    wrong = run_cli("eval", "--data", str(SAMPLE), "--unit", "session", "--answers", "3", "--quiet", env=env)
    assert wrong.code == 2 and "--unit turn" in wrong.err
