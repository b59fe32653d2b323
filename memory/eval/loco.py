"""Leave-one-conversation-out: recall with every ranking setting chosen without the conversation it is scored on.

The ranking's weights (``retrieval.Weights``) were chosen on the LoCoMo dev
conversations; scoring them on the same conversations flatters them. Here
each setting of a small grid is evaluated once on every conversation; then,
for each conversation, the setting that did best on the *other*
conversations is scored on it. The LOCO number is the question-weighted mean
of those held-out scores, printed beside the plain number (the app's
defaults on every conversation) and the best single setting in hindsight.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..retrieval import WEIGHTS, Weights
from .locomo import Conversation
from .runner import QuestionResult, evaluate

if TYPE_CHECKING:
    from ..lab import MemoryLab

# The knobs each unit's ranking reads: a turn reads all of them, a session its own mix, the date's weight and
# the related words'. The speaker's, the date's and the voice's values are every value tried while building
# them; the related words' and the over-time share's are the ends and the middle of what was tried
# (docs/recall.md lists the rest, measured on every conversation).
GRIDS: dict[str, list[Weights]] = {
    "turn": [
        Weights(d, n, s, g, p, t, v, r, o)
        for d, n, s, g, p, t, v, r, o in itertools.product(
            (0.4, 0.6, 0.8),
            (0.0, 0.3),
            (0.0, 0.5, 1.0),
            (WEIGHTS.group_dense,),
            (0.0, 0.2, 0.4, 0.6),
            (0.0, 0.3, 0.5),
            (0.0, 0.3, 0.5, 0.7),
            (0.0, 0.5, 1.0),
            (0.0, 1.0),
        )
    ],
    "session": [
        Weights(group_dense=g, date=t, related=r)
        for g in (0.2, 0.35, 0.5, 0.65, 0.8)
        for t in (0.0, 0.5)
        for r in (0.0, 0.5, 1.0)
    ],
}
TARGET_K = {"turn": 10, "session": 5}


@dataclass
class LocoReport:
    unit: str
    k: int
    plain: float  # the app's weights, every conversation
    loco: float  # each conversation scored with the weights chosen on the others
    hindsight: float  # the best single setting of the grid, chosen on all conversations
    per_conversation: dict[str, dict[str, Any]]  # plain, loco, the weights chosen without it
    # Per question category: plain, and each question scored with the weights chosen without its conversation.
    per_category: dict[int, dict[str, float]]
    grid: list[dict[str, float]]
    questions: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def choose_held_out(scores: np.ndarray, folds: Sequence[Hashable]) -> tuple[dict[Hashable, int], np.ndarray]:
    """Cross-validation's choice: for each fold, the setting (a row of ``scores``, settings x questions) with
    the best mean over the questions of the *other* folds, the first on a tie (the app's weights come first).

    Returns the setting chosen for each fold, and for each question the one it is scored with: never a
    setting chosen on itself.
    """
    label = {fold: i for i, fold in enumerate(dict.fromkeys(folds))}
    fold_of = np.array([label[f] for f in folds])
    chosen: dict[Hashable, int] = {}
    used = np.zeros(len(folds), dtype=int)
    for fold, i in label.items():
        held = fold_of == i
        if held.all():
            raise InputError("cross-validation needs at least two folds")
        best = int(np.argmax(scores[:, ~held].mean(axis=1)))
        chosen[fold] = best
        used[held] = best
    return chosen, used


def leave_one_out(
    lab: MemoryLab,
    conversations: list[Conversation],
    unit: str = "turn",
    categories: list[int] | None = None,
    grid: list[Weights] | None = None,
    k: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> LocoReport:
    if unit not in GRIDS:
        raise InputError(f"leave-one-conversation-out covers the units {', '.join(GRIDS)}")
    grid = list(grid or GRIDS[unit])
    if WEIGHTS not in grid:
        grid.insert(0, WEIGHTS)
    k = k or TARGET_K[unit]
    reports = []
    for i, weights in enumerate(grid):
        reports.append(evaluate(lab, conversations, unit, "hybrid", [k], categories, keep_top=0, weights=weights))
        if progress is not None:
            progress(i + 1, len(grid), f"setting {i + 1} of {len(grid)}")
    names = list(reports[0].by_conversation)
    if len(names) < 2:
        raise InputError("leave-one-conversation-out needs at least two conversations with scored questions")
    counts = {c: sum(1 for q in reports[0].questions if q.sample_id == c) for c in names}
    plain_report = reports[grid.index(WEIGHTS)]
    folds = [q.sample_id for q in reports[0].questions]
    chosen, used = choose_held_out(np.array([[q.recall[k] for q in r.questions] for r in reports]), folds)
    # each question, scored with the weights chosen without its conversation
    held_out: list[QuestionResult] = [reports[j].questions[i] for i, j in enumerate(used)]
    per: dict[str, dict[str, Any]] = {
        held: {
            "plain": plain_report.by_conversation[held][k],
            "loco": reports[chosen[held]].by_conversation[held][k],
            "chosen": asdict(grid[chosen[held]]),
            "questions": counts[held],
        }
        for held in names
    }
    per_category: dict[int, dict[str, float]] = {}
    for category in sorted({q.category for q in plain_report.questions}):
        plain_qs = [q.recall[k] for q in plain_report.questions if q.category == category]
        loco_qs = [q.recall[k] for q in held_out if q.category == category]
        per_category[category] = {
            "plain": sum(plain_qs) / len(plain_qs),
            "loco": sum(loco_qs) / len(loco_qs),
            "questions": len(plain_qs),
        }
    total = sum(counts.values())
    return LocoReport(
        unit=unit,
        k=k,
        plain=sum(q.recall[k] for q in plain_report.questions) / total,
        loco=sum(q.recall[k] for q in held_out) / total,
        hindsight=max(sum(q.recall[k] for q in r.questions) / total for r in reports),
        per_conversation=per,
        per_category=per_category,
        grid=[asdict(w) for w in grid],
        questions=total,
    )
