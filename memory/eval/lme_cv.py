"""LongMemEval recall with the ranking's weights chosen by cross-validation over questions.

LongMemEval's histories are one per question, so the folds are groups of
questions (as leave-one-conversation-out's are conversations on LoCoMo):
every setting of a small grid of ``Weights`` ranks every question once;
then, for each fold, the setting with the best target measure (session
``recall_any@5``, turn ``recall_any@10``) on the *other* folds scores the
fold's questions (``loco.choose_held_out``). No question is ever scored
with weights chosen on it. The plain number (the app's one setting on
every question) is printed beside it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..retrieval import WEIGHTS, Weights
from .lme_retrieval import (
    KS,
    LmeResult,
    Progress,
    ingest,
    mean_table,
    rank_question,
    scored_questions,
    table_json,
    types_of,
)
from .loco import GRIDS, choose_held_out
from .services import DatasetIndex

if TYPE_CHECKING:
    from .longmemeval import LmeQuestion

# The session grid is LoCoMo's (the knobs a session's score reads). For turns, LoCoMo's 5,184 settings would
# take hours over 282 histories; the speaker and voice knobs do nothing with one speaker, so the grid keeps
# the knobs a single speaker's turns read, at the values LoCoMo's grid tries.
LME_GRIDS: dict[str, list[Weights]] = {
    "session": GRIDS["session"],
    "turn": [
        Weights(dense=d, neighbour=n, session=s, related=r, date=t)
        for d, n, s, r, t in itertools.product(
            (0.4, 0.6, 0.8), (0.0, 0.3), (0.0, 0.5, 1.0), (0.0, 0.5, 1.0), (0.0, 0.5)
        )
    ],
}
TARGET = {"session": ("recall_any", 5), "turn": ("recall_any", 10)}
FOLDS = 5


@dataclass
class CvReport:
    unit: str
    target: str  # the measure each fold's setting is chosen by, e.g. "recall_any@5"
    folds: int
    n_questions: int
    plain: dict[str, dict[int, float]]  # the app's weights on every question
    cv: dict[str, dict[int, float]]  # each question with the weights chosen without its fold
    hindsight: float  # the target measure of the grid's best single setting, chosen on every question
    plain_by_type: dict[str, dict[str, dict[int, float]]]
    cv_by_type: dict[str, dict[str, dict[int, float]]]
    chosen: list[dict[str, float]]  # each fold's weights
    settings: int
    left_out: dict[str, int]
    seconds: float
    cpu_seconds: float
    index_seconds: float  # of ``seconds``, storing the histories (0 when they were stored already)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("plain", "cv"):
            data[name] = table_json(getattr(self, name))
        for name in ("plain_by_type", "cv_by_type"):
            data[name] = {t: table_json(table) for t, table in getattr(self, name).items()}
        data["overall"] = data["cv"]  # the cross-validated numbers are the ones to quote
        data["by_type"] = data["cv_by_type"]
        for name in ("seconds", "cpu_seconds", "index_seconds"):
            data[name] = round(data[name], 2)
        return data


def question_folds(kinds: Sequence[str], ids: Sequence[str], folds: int) -> list[int]:
    """A fold per question, dealt in turn within each question type (each fold holds every type)."""
    order = sorted(range(len(ids)), key=lambda i: (kinds[i], ids[i]))
    fold = [0] * len(ids)
    for n, i in enumerate(order):
        fold[i] = n % folds
    return fold


def cross_validate(
    lab: DatasetIndex,
    questions: Sequence[LmeQuestion],
    unit: str = "session",
    ks: Sequence[int] | None = None,
    folds: int = FOLDS,
    grid: Sequence[Weights] | None = None,
    progress: Progress | None = None,
) -> CvReport:
    if unit not in LME_GRIDS:
        raise InputError(f"cross-validation covers the units {', '.join(LME_GRIDS)}")
    metric, target_k = TARGET[unit]
    ks = sorted(set(ks or KS) | {target_k})
    settings = list(grid or LME_GRIDS[unit])
    if WEIGHTS in settings:
        settings.remove(WEIGHTS)
    settings.insert(0, WEIGHTS)  # first: it wins a tie
    start, cpu_start = time.perf_counter(), time.process_time()
    users = ingest(lab, questions, progress)
    index_seconds = time.perf_counter() - start
    kept, left_out = scored_questions(questions, unit)
    if len(kept) < folds or folds < 2:
        raise InputError(f"{folds}-fold cross-validation needs at least {max(folds, 2)} scored questions")
    vectors = lab.dataset_embed([q.question for _, q, _ in kept])
    results: list[list[LmeResult]] = [[] for _ in settings]
    for n, ((i, q, evidence), vector) in enumerate(zip(kept, vectors)):
        for j, weights in enumerate(settings):  # one question under every setting: its index stays loaded
            results[j].append(rank_question(lab, users[i], q, vector, unit, evidence, ks, "hybrid", weights, 0))
        lab.dataset_turns.unload(users[i])
        if progress is not None:
            progress(n + 1, len(kept), f"{len(settings)} settings: question {n + 1}/{len(kept)}")
    fold_of = question_folds([q.kind for _, q, _ in kept], [q.question_id for _, q, _ in kept], folds)
    target = np.array([[r.scores[metric][target_k] for r in per] for per in results])
    chosen, used = choose_held_out(target, fold_of)
    held_out = [results[j][n] for n, j in enumerate(used)]
    plain = results[0]
    return CvReport(
        unit=unit,
        target=f"{metric}@{target_k}",
        folds=folds,
        n_questions=len(kept),
        plain=mean_table(plain),
        cv=mean_table(held_out),
        hindsight=float(target.mean(axis=1).max()),
        plain_by_type={t: mean_table([r for r in plain if r.question_type == t]) for t in types_of(plain)},
        cv_by_type={t: mean_table([r for r in held_out if r.question_type == t]) for t in types_of(held_out)},
        chosen=[asdict(settings[chosen[f]]) for f in range(folds)],
        settings=len(settings),
        left_out=left_out,
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start,
        index_seconds=index_seconds,
    )
