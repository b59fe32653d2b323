"""Choose the offline answerer's relevance floor by cross-validation over LongMemEval questions, and report the
held-out accuracy by strategy and question type.

Why: "I don't find it" must come from a floor chosen on data, and the number
reported must be one the floor was not chosen on. The answerer's relevance
mixes how much of what the question takes as given the best quote holds
(``held``), the quote's cosine, how much of it the whole context never says
(``absent``) and how many of the names it takes as given the context never
says (``unnamed``): relevance = share * held + (1 - share) * cosine -
absent_weight * absent - unnamed_weight * unnamed (``memory/llm/answer.py``). One run of ``python -m memory eval
--replay-answers ... --json --questions`` records, per question and strategy,
these three signals and what the reply would have said with no floor; so
every setting's accuracy is computed here without replaying anything.

Questions are split into ten folds by their id (a stable hash). For each
fold the setting is chosen on the other nine — the one with the best mean
over question types of the accuracy (every type weighs the same, as
LongMemEval reports its task-averaged accuracy) over all strategies — and
the fold's questions are scored with it. The held-out scores, per strategy
and type, are what this prints beside the setting chosen on all questions.

    python -m benchmarks.answer_floor RUN.json [RUN2.json ...] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.eval.answer_scoring import offline_correct

FOLDS = 10
SHARES = (0.3, 0.5, 0.7)
ABSENT_WEIGHTS = (0.0, 0.2, 0.4, 0.6)
UNNAMED_WEIGHTS = (0.0, 0.2, 0.4, 0.6)
# How a question word no memory says is held (``memory/llm/answer.py``, UNSAID_VARIANTS): by the nearest word's
# closeness alone, or at least at half or all of the quote's cosine. Runs recorded before the variants: "held".
UNSAID = ("held_word", "held_half", "held_cos")
NAMES = ("share", "absent_weight", "unnamed_weight", "floor", "unsaid")
FLOORS = tuple(round(0.02 * i, 2) for i in range(0, 46))  # 0.00 .. 0.90


Setting = tuple[float, float, float, float, str]


@dataclass(frozen=True)
class Row:
    question_id: str
    strategy: str
    kind: str
    held: dict[str, float]  # under each way of holding an unsaid word (UNSAID)
    cosine: float
    absent: float
    unnamed: float
    answer_right: bool  # what the reply would have said with no floor holds the gold answer

    @property
    def abstention(self) -> bool:
        return self.kind == "abstention"

    def right(self, share: float, weight: float, unnamed: float, floor: float, unsaid: str) -> bool:
        relevance = share * self.held[unsaid] + (1 - share) * max(0.0, self.cosine) - weight * self.absent
        relevance -= unnamed * self.unnamed
        return self.abstention if relevance < floor else (not self.abstention and self.answer_right)


def load_rows(paths: list[Path]) -> list[Row]:
    rows = []
    for path in paths:
        for q in json.loads(path.read_text())["questions"]:
            signals = q.get("signals") or {}
            if not signals:
                continue  # a reply with no context at all: nothing to choose a floor on
            rows.append(
                Row(
                    q["question_id"],
                    q["strategy"],
                    q["kind"],
                    {name: float(signals.get(name, signals.get("held", 0.0))) for name in UNSAID},
                    float(signals.get("cosine", 0.0)),
                    float(signals.get("absent", 0.0)),
                    float(signals.get("unnamed", 0.0)),
                    offline_correct(q.get("quoted", ""), q["gold"], False),
                )
            )
    return rows


def fold_of(question_id: str) -> int:
    return int(hashlib.sha1(question_id.encode()).hexdigest(), 16) % FOLDS


def task_averaged(rows: list[Row], setting: Setting) -> float:
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row.right(*setting))
    return sum(sum(v) / len(v) for v in by_kind.values()) / len(by_kind) if by_kind else 0.0


def best_setting(rows: list[Row]) -> Setting:
    grid = list(itertools.product(SHARES, ABSENT_WEIGHTS, UNNAMED_WEIGHTS, FLOORS, UNSAID))
    return max(grid, key=lambda s: (round(task_averaged(rows, s), 6), -s[3]))  # ties: the lower floor


def run(rows: list[Row]) -> dict[str, Any]:
    held_out: dict[tuple[str, str], list[bool]] = defaultdict(list)  # (strategy, kind) -> right or not
    chosen: list[Setting] = []
    for fold in range(FOLDS):
        train = [r for r in rows if fold_of(r.question_id) != fold]
        test = [r for r in rows if fold_of(r.question_id) == fold]
        setting = best_setting(train)
        chosen.append(setting)
        for row in test:
            right = row.right(*setting)
            held_out[(row.strategy, row.kind)].append(right)
            held_out[(row.strategy, "overall")].append(right)
    everything = best_setting(rows)
    in_sample: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for row in rows:
        in_sample[(row.strategy, row.kind)].append(row.right(*everything))
        in_sample[(row.strategy, "overall")].append(row.right(*everything))

    def table(cells: dict[tuple[str, str], list[bool]]) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for (strategy, kind), values in sorted(cells.items()):
            out[strategy][kind] = {"right": round(sum(values) / len(values), 4), "n": len(values)}
        return dict(out)

    return {
        "folds": FOLDS,
        "questions": len({r.question_id for r in rows}),
        "chosen_per_fold": [dict(zip(NAMES, c)) for c in chosen],
        "most_chosen": dict(zip(NAMES, Counter(chosen).most_common(1)[0][0])),
        "chosen_on_all": dict(zip(NAMES, everything)),
        "held_out": table(held_out),
        "in_sample": table(in_sample),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON from eval --replay-answers --json --questions")
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args(argv)
    rows = load_rows(a.runs)
    if not rows:
        print("error: no offline replies with their signals in these runs", file=sys.stderr)
        return 2
    result = run(rows)
    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['questions']} questions, {FOLDS} folds by question id; setting chosen on the other nine folds")
    print(f"chosen on all questions: {result['chosen_on_all']}; most often per fold: {result['most_chosen']}")
    strategies = list(result["held_out"])
    kinds = sorted({k for cells in result["held_out"].values() for k in cells if k != "overall"})
    print("held-out right % (in sample with the setting chosen on all)")
    print(f"{'':26}" + "".join(f"{s:>18}" for s in strategies))
    for kind in ["overall", *kinds]:
        cells = []
        for s in strategies:
            held, seen = result["held_out"][s].get(kind), result["in_sample"][s].get(kind)
            cells.append(f"{held['right'] * 100:5.1f} ({seen['right'] * 100:5.1f})" if held and seen else "-")
        print(f"{kind:26}" + "".join(f"{c:>18}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
