"""Recall Lab: recall@k on a long-conversation benchmark (LoCoMo, LongMemEval), and a drill-down into every miss."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from memory.eval.answers import answer_eval
from memory.eval.datasets import data_kind
from memory.eval.lme_retrieval import KS as LME_KS
from memory.eval.lme_retrieval import UNITS as LME_UNITS
from memory.eval.lme_retrieval import LmeReport, evaluate_lme
from memory.eval.locomo import CATEGORY_NAMES, Conversation, DatasetError, load_locomo
from memory.eval.longmemeval import TYPES, LmeQuestion, load_longmemeval, read_bytes
from memory.eval.runner import UNITS, EvalReport, evaluate
from memory.paths import app_root
from memory.retrieval import RETRIEVERS
from memory.retrieval.ranking import SESSION_PARTS, TURN_PARTS
from ui.layout import page
from ui.recall_views import evidence_table, recall_bars, related_words, top_table
from ui.state import guarded, md_text, progress_bar, warm_model
from ui.tables import CLICK_A_ROW, selected_row

SAMPLE = app_root() / "samples" / "recall_sample.json"
LME_FILES = {  # the LongMemEval files offered when they are in MEMLAB_LONGMEMEVAL_DIR
    "longmemeval_s_dev.json.gz": "LongMemEval S dev (302 questions, ~50 sessions each)",
    "longmemeval_oracle_dev.json.gz": "LongMemEval oracle dev (302 questions, evidence sessions only)",
}


ctx = page("pages/recall_lab.py", uses_user=False)
lab = ctx.lab
st.caption(
    "Does the memory bring back the turns that hold the answer? On LoCoMo, recall@k as its paper defines it: "
    "the share of a question's evidence turns among the top-k retrieved items (a retrieved session covers "
    "all its turns); on LongMemEval, as its scripts compute it: recall_any@k (any evidence session or turn in "
    "the top k) and recall_all@k (all of them). Retrieval runs through the app's own turn store and ranking code."
)


@st.cache_data(show_spinner="Reading the data set…", max_entries=4)
def _load(raw: bytes) -> list[Conversation]:
    return load_locomo(raw)


@st.cache_resource(show_spinner="Reading LongMemEval…", max_entries=2)
def _load_lme(path: str, _stamp: tuple[float, int]) -> list[LmeQuestion]:
    """A LongMemEval file, parsed once per version of it (the S file is ~300 MB of JSON: never copied per run)."""
    return load_longmemeval(path)


@st.cache_resource(show_spinner="Reading LongMemEval…", max_entries=2)
def _load_lme_upload(digest: str, _raw: bytes) -> list[LmeQuestion]:
    return load_longmemeval(_raw)


sources: dict[str, Path] = {"Shipped sample (written for Memory Lab)": SAMPLE}
if lab.settings.locomo_path.is_file():
    sources["LoCoMo dev split (7 conversations)"] = lab.settings.locomo_path
for name, label in LME_FILES.items():
    if (lab.settings.longmemeval_dir / name).is_file():
        sources[label] = lab.settings.longmemeval_dir / name
c1, c2, c3, c4 = st.columns([3, 1, 1, 2])
choice = c1.selectbox("Data", list(sources) + ["Upload a LoCoMo or LongMemEval JSON file"], key="rl_source")
missing = []
if not lab.settings.locomo_path.is_file():
    missing.append(f"the LoCoMo dev split is not at {lab.settings.locomo_path} (set MEMLAB_LOCOMO_PATH)")
if not any((lab.settings.longmemeval_dir / name).is_file() for name in LME_FILES):
    missing.append(f"no LongMemEval files in {lab.settings.longmemeval_dir} (set MEMLAB_LONGMEMEVAL_DIR)")
if missing:
    said = "; ".join(missing)
    c1.caption(md_text(said[:1].upper() + said[1:] + "."))  # (not str.capitalize: it lowers the settings' names)
raw: bytes | None = None
conversations: list[Conversation] | None = None
questions: list[LmeQuestion] | None = None
with guarded("Reading the data set"):
    if choice in sources and sources[choice].name in LME_FILES:
        stat = sources[choice].stat()
        questions = _load_lme(str(sources[choice]), (stat.st_mtime, stat.st_size))
    else:
        if choice in sources:
            raw = sources[choice].read_bytes()
        else:
            upload = c1.file_uploader("LoCoMo or LongMemEval JSON (plain or gzip)", key="rl_upload")
            raw = read_bytes(upload.getvalue()) if upload is not None else None
        if raw is not None and data_kind(raw) == "longmemeval":
            questions = _load_lme_upload(hashlib.sha1(raw).hexdigest(), raw)
        elif raw is not None:
            try:
                conversations = _load(raw)
            except DatasetError as exc:
                st.error(f"That file is not in LoCoMo or LongMemEval format: {md_text(str(exc))}")
lme = questions is not None
unit = c2.selectbox(
    "Unit",
    LME_UNITS if lme else UNITS,
    key="rl_lme_unit" if lme else "rl_unit",
    help="turn: the user's turns (LongMemEval) or dialog turns; session: whole sessions; fact: the "
    "data set's observations, each pointing at its source turn",
)
retriever = c3.selectbox("Retriever", RETRIEVERS, index=2, key="rl_retriever")
if lme:
    ks = c4.multiselect("k", LME_KS, default=[1, 3, 5, 10], key="rl_lme_k")
    kinds = st.multiselect("Question types", TYPES, default=list(TYPES), key="rl_types")
    categories: list[int] = []
else:
    ks = c4.multiselect("k", [1, 3, 5, 10, 25, 50], default=[1, 5, 10, 25], key="rl_k")
    categories = st.multiselect(
        "Question categories",
        [1, 2, 3, 4, 5],
        default=[1, 2, 3, 4],
        key="rl_cats",
        format_func=lambda c: f"{c} {CATEGORY_NAMES[c]}",
    )

a1, a2 = st.columns([3, 1])
with_answers = a1.toggle(
    "Also answer each question from its retrieved turns (token F1; an LLM judge with an Anthropic key)",
    value=False,
    key="rl_answers",
    disabled=unit != "turn" or lme,
    help="LoCoMo, turn unit: the configured LLM answers from the top turns; the offline provider answers extractively.",
)
answer_k = a2.number_input("Turns given", 1, 50, 10, key="rl_answer_k", disabled=not with_answers)
if lme:
    picked = [q for q in questions or [] if q.question_type in kinds]
    st.caption(
        f"{len(picked)} questions, each history stored as its own user (the user's turns, as the app stores "
        "them). The S file takes minutes the first time (its ~75,000 user turns are embedded and stored once), "
        "about a minute after that."
    )
dataset_label = (
    "LongMemEval"
    if lme
    else {SAMPLE: "sample", lab.settings.locomo_path: "LoCoMo dev"}.get(sources.get(choice), "upload")  # type: ignore[arg-type]
)
ready = (picked if lme else conversations) and ks and (lme or categories)

if st.button("Run evaluation", type="primary", disabled=not ready, key="rl_run") and ready:
    with guarded("Running the evaluation"):
        warm_model(lab, repr(lab.settings))
        bar, progress = progress_bar("Indexing…")

        answers = None
        if lme:
            report: EvalReport | LmeReport = evaluate_lme(lab, picked, unit, retriever, ks, progress)
        else:
            assert conversations is not None
            report = locomo = evaluate(lab, conversations, unit, retriever, ks, categories, progress=progress)
            if with_answers and unit == "turn":
                answers = answer_eval(lab, locomo, k=int(answer_k), progress=progress)
        bar.empty()
        runs = st.session_state.setdefault("rl_runs", [])
        runs.append(
            {
                "label": f"#{len(runs) + 1} {dataset_label} {unit}/{retriever}",
                "data_hash": hashlib.sha1(raw or b"").hexdigest(),
                "report": report,
                "answers": answers,
                "questions": {q.question_id: q for q in picked} if lme else None,
            }
        )

runs = st.session_state.get("rl_runs", [])
if not runs:
    st.info(
        "Pick the data, unit and retriever, then **Run evaluation**. The shipped sample runs in seconds; the "
        "LoCoMo dev split takes about a minute the first time (its turns are embedded and stored once)."
    )
    st.stop()

run = runs[-1]
latest = run["report"]
lme_run = run.get("questions") is not None
st.subheader(f"Latest run: {run['label']}")
if lme_run:
    m = st.columns(len(latest.k) + 3)
    for col, k in zip(m, latest.k):
        col.metric(f"recall_any@{k}", f"{latest.overall['recall_any'][k]:.1%}")
    k5 = 5 if 5 in latest.k else latest.k[-1]
    m[-3].metric(f"recall_all@{k5}", f"{latest.overall['recall_all'][k5]:.1%}")
    m[-2].metric("Questions", latest.n_questions, help=", ".join(f"{n} {why}" for why, n in latest.left_out.items()))
    m[-1].metric("Time", f"{latest.seconds:.1f} s", help=f"{latest.cpu_seconds:.1f} s of CPU time")
else:
    m = st.columns(len(latest.k) + 2)
    for col, k in zip(m, latest.k):
        col.metric(f"R@{k}", f"{latest.overall[k]:.1%}")
    m[-2].metric("Questions", latest.n_questions)
    m[-1].metric("Time", f"{latest.seconds:.1f} s")
latest_answers = run.get("answers")
if latest_answers is not None:
    n = st.columns(3)
    n[0].metric(f"Answer token F1 (top {latest_answers.k} turns)", f"{latest_answers.mean_f1:.1%}")
    n[1].metric(
        "Judge: correct",
        "—" if latest_answers.judge_accuracy is None else f"{latest_answers.judge_accuracy:.1%}",
        help="Set ANTHROPIC_API_KEY for an LLM judge." if latest_answers.judge_accuracy is None else None,
    )
    n[2].metric("Answered by", latest_answers.provider)

left, right = st.columns(2)
if lme_run:
    any_by_type = {t: table["recall_any"] for t, table in latest.by_type.items()}
    all_by_type = {t: table["recall_all"] for t, table in latest.by_type.items()}
    left.plotly_chart(
        recall_bars(any_by_type, "question type", "recall_any@k by question type", "@"),
        width="stretch",
        key="rl_type_any",
    )
    right.plotly_chart(
        recall_bars(all_by_type, "question type", "recall_all@k by question type", "@"),
        width="stretch",
        key="rl_type_all",
    )
elif latest.by_category:
    by_category = {f"{c} {CATEGORY_NAMES.get(c, '')}": row for c, row in latest.by_category.items()}
    left.plotly_chart(
        recall_bars(by_category, "category", "Recall@k per category (latest run)"), width="stretch", key="rl_cat_chart"
    )


def _overall(report: object) -> dict[int, float]:
    """The run's headline curve: recall@k (LoCoMo) or recall_any@k (LongMemEval)."""
    overall = getattr(report, "overall", {})
    return dict(overall["recall_any"]) if "recall_any" in overall else dict(overall)


curve = [{"run": r["label"], "k": k, "recall": v} for r in runs for k, v in _overall(r["report"]).items()]
curve_fig = px.line(
    pd.DataFrame(curve),
    x="k",
    y="recall",
    color="run",
    markers=True,
    range_y=[0, 1],
    title="Recall (LongMemEval: recall_any) vs k, all runs",
    log_x=True,
)
ks_used = sorted({point["k"] for point in curve})
curve_fig.update_xaxes(tickvals=ks_used, ticktext=[str(k) for k in ks_used])  # the k values, not log-scale minors
(st if lme_run else right).plotly_chart(curve_fig, width="stretch", key="rl_curve")
if not lme_run and len(latest.by_conversation) > 1:
    st.plotly_chart(
        recall_bars(latest.by_conversation, "conversation", "Recall@k per conversation (latest run)"),
        width="stretch",
        key="rl_conv_chart",
    )

st.subheader("Questions")
q1, q2 = st.columns([1, 3])
k_at = q1.selectbox("Hit or miss at k", latest.k, index=min(2, len(latest.k) - 1), key="rl_hit_k")
show = q2.radio("Show", ["misses", "all"], horizontal=True, key="rl_show")
if lme_run:
    rows = [
        {
            "#": i,
            "type": q.question_type,
            "question": q.question,
            f"recall_any@{k_at}": q.scores["recall_any"][k_at],
            f"recall_all@{k_at}": q.scores["recall_all"][k_at],
            "hit": q.scores["recall_any"][k_at] >= 1.0,
            "evidence rank": min((r for r in q.evidence_ranks.values() if r), default=None),
        }
        for i, q in enumerate(latest.questions)
    ]
else:
    rows = [
        {
            "#": i,
            "conversation": q.sample_id,
            "category": q.category,
            "question": q.question,
            f"R@{k_at}": q.recall[k_at],
            "hit": q.recall[k_at] >= 1.0,
            "evidence rank": min((r for r in q.evidence_ranks.values() if r), default=None),
        }
        for i, q in enumerate(latest.questions)
    ]
shown = [r for r in rows if show == "all" or not r["hit"]]
if not shown:
    st.success(f"No misses at k={k_at}.")
    st.stop()
# Widgets keyed by the run and the filter: a choice made for another run's list never shows for this one.
view = f"{len(runs)}-{k_at}-{show}"
st.caption("Click a row to open the question.")
table = st.dataframe(
    pd.DataFrame(shown),
    hide_index=True,
    width="stretch",
    height=min(36 * (len(shown) + 1), 360),
    on_select="rerun",
    selection_mode=CLICK_A_ROW,
    key=f"rl_table_{view}",
)
clicked = selected_row(table)
if clicked is not None and st.session_state.get(f"rl_clicked_{view}") != clicked:  # a new click
    st.session_state[f"rl_clicked_{view}"] = clicked
    st.session_state[f"rl_pick_{view}"] = shown[clicked]["#"]


def _label(i: int) -> str:
    q = latest.questions[i]
    return f"{q.question_type}: {q.question}" if lme_run else f"{q.sample_id}: {q.question}"


pick = st.selectbox("Open a question", [r["#"] for r in shown], key=f"rl_pick_{view}", format_func=_label)
q = latest.questions[pick]
st.markdown("**Question**")
st.code(q.question, language=None, wrap_lines=True)
if lme_run:
    history = run["questions"][q.question_id]
    turn_text = {
        f"{s.id}_{i + 1}": f"User: {t.content}"
        for s in history.sessions
        for i, t in enumerate(s.turns)
        if t.role == "user"
    }
    session_text = {
        s.id: f"{s.date_text} · " + " / ".join(t.content for t in s.turns if t.role == "user")[:400]
        for s in history.sessions
    }
    text_of = (session_text if latest.unit == "session" else turn_text).get
    st.markdown(
        f"**Gold answer**: {md_text(str(q.answer))} · {md_text(q.question_type)} · asked {md_text(q.question_date)}"
    )
    related_words(q)
    st.markdown(f"**Evidence {latest.unit}s**: where they ranked, and why one was not retrieved")
    cutoff = evidence_table(
        q, k_at, lambda e: text_of(e, ""), SESSION_PARTS if latest.unit == "session" else TURN_PARTS
    )
    if q.evidence_scores:
        st.caption(
            (
                "A session's score is its match (its best user turn's cosine and BM25 over its whole text, each "
                "rescaled to 0-1, fused) plus a boost when the question names a date near it, also relative to the "
                'day it is asked ("two weeks ago")'
                if latest.unit == "session"
                else "A turn's score is its match (BM25 and cosine fused, with its best neighbour's, rescaled to "
                "0-1) plus its session's share, plus a boost when the question names a date near it"
            )
            + (f"; the {latest.unit} at rank {k_at} scored {cutoff:.3f}." if cutoff is not None else ".")
        )
    top_table(q, max(latest.k), lambda t: t["id"] in set(q.evidence), lambda t: t.get("text") or text_of(t["id"], ""))
    st.stop()

turn_text = {}
if conversations is not None:
    for conv in conversations:
        if conv.sample_id == q.sample_id:
            turn_text = {t.dia_id: t.display for t in conv.turns}
st.markdown(f"**Gold answer**: {md_text(str(q.answer))} · category {q.category} {CATEGORY_NAMES.get(q.category, '')}")
related_words(q)
st.markdown("**Evidence turns**: where they ranked, and why one was not retrieved")
cutoff = evidence_table(q, k_at, lambda e: turn_text.get(e, ""), TURN_PARTS)
if q.evidence_scores:
    st.caption(
        "A turn's score is its match (BM25 and cosine fused, with its best neighbour's, rescaled to 0-1) plus "
        "its session's share, plus a boost when the question names its speaker or a date near it. When the "
        "question names its speaker, the cosine mixes in the question asked in the speaker's own voice "
        '("Where did I go?"); BM25 also counts the related words above. A question asked across time '
        '("What has she painted?") gets no session share: its answers lie in many sessions'
        + (f"; the turn at rank {k_at} scored {cutoff:.3f}." if cutoff is not None else ".")
    )
if latest_answers is not None:
    answered = next(
        (a for a in latest_answers.questions if a.question == q.question and a.sample_id == q.sample_id), None
    )
    if answered is not None:
        st.markdown(
            f"**Answer** from the top {latest_answers.k} turns: {md_text(answered.prediction) or '(none)'} · "
            f"token F1 **{answered.f1:.2f}**"
        )
        if answered.judge:
            st.markdown(
                f"**Judge**: {md_text(str(answered.judge.get('verdict')))} — "
                f"{md_text(str(answered.judge.get('reason', '')))}"
            )
            with st.expander("The judge's prompt and reply"):
                st.code(answered.judge.get("instructions", "") + "\n\n" + answered.judge.get("prompt", ""),
                        language=None, wrap_lines=True)  # fmt: skip
                st.code(str(answered.judge.get("raw", "")), language=None, wrap_lines=True)
top_table(
    q,
    max(latest.k),
    lambda t: bool(set(q.evidence) & set(t["covers"])),
    lambda t: t.get("text") or ", ".join(t["covers"]),
)
