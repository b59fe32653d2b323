"""LongMemEval results as text for the terminal: each measure at each k, overall and by question type."""

from __future__ import annotations

from collections.abc import Sequence

from .lme_cv import CvReport
from .lme_retrieval import METRICS, LmeReport

LABELS = {"recall_any": "recall_any", "recall_all": "recall_all", "ndcg": "NDCG"}


def _table(
    metric: str, ks: list[int], rows: Sequence[tuple[str, dict[str, dict[int, float]], int | None]]
) -> list[str]:
    head = (
        f"  {LABELS[metric]:<26}"
        + "".join(f"{'@' + str(k):>7}" for k in ks)
        + ("" if rows[0][2] is None else f"{'n':>6}")
    )
    lines = [head]
    for label, table, n in rows:
        values = table.get(metric, {})
        cells = "".join(f"{values[k] * 100:>7.1f}" if k in values else f"{'-':>7}" for k in ks)
        lines.append(f"  {label:<26}{cells}" + ("" if n is None else f"{n:>6}"))
    return lines


def _left_out(left_out: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in left_out.items()) or "none"


def render_report(report: LmeReport, source: str) -> str:
    lines = [
        f"LongMemEval retrieval on {source}: unit={report.unit} retriever={report.retriever}, "
        f"{report.n_questions} questions scored (left out: {_left_out(report.left_out)})",
        f"  time {report.seconds:.1f} s wall, {report.cpu_seconds:.1f} s CPU "
        f"(storing the histories: {report.index_seconds:.1f} s wall)",
    ]
    counts = {t: sum(1 for q in report.questions if q.question_type == t) for t in report.by_type}
    rows = [("overall", report.overall, report.n_questions)]
    rows += [(t, table, counts[t]) for t, table in report.by_type.items()]
    for metric in METRICS:
        lines += _table(metric, report.k, rows)
    return "\n".join(lines)


def render_cv(cv: CvReport, source: str) -> str:
    metric, k = cv.target.split("@")
    ks = sorted(cv.plain[metric])
    lines = [
        f"LongMemEval, {cv.folds}-fold cross-validation over questions on {source}: unit={cv.unit}, "
        f"{cv.n_questions} questions (left out: {_left_out(cv.left_out)}), {cv.settings} settings, "
        f"each fold's chosen by {cv.target} on the other folds",
        f"  plain (the app's weights): {cv.target} {cv.plain[metric][int(k)] * 100:.1f}",
        f"  cross-validated: {cv.target} {cv.cv[metric][int(k)] * 100:.1f}",
        f"  best single setting in hindsight: {cv.target} {cv.hindsight * 100:.1f}",
        f"  time {cv.seconds:.1f} s wall, {cv.cpu_seconds:.1f} s CPU "
        f"(storing the histories: {cv.index_seconds:.1f} s wall)",
    ]
    for name, overall, by_type in (("plain", cv.plain, cv.plain_by_type), ("cross-validated", cv.cv, cv.cv_by_type)):
        lines.append(f"  -- {name} --")
        rows = [("overall", overall, None)] + [(t, table, None) for t, table in by_type.items()]
        for m in METRICS:
            lines += _table(m, ks, rows)
    for i, chosen in enumerate(cv.chosen):
        lines.append(f"  fold {i + 1}: " + ", ".join(f"{name}={v:g}" for name, v in chosen.items()))
    return "\n".join(lines)
