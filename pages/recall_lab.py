"""Recall Lab: recall@k on a long-conversation benchmark, and a drill-down into every miss."""

from __future__ import annotations

import hashlib

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from memory.eval.answers import answer_eval
from memory.eval.locomo import CATEGORY_NAMES, Conversation, DatasetError, load_locomo
from memory.eval.runner import UNITS, evaluate
from memory.paths import app_root
from memory.retrieval import RETRIEVERS
from ui.layout import page
from ui.state import guarded, md_text, warm_model
from ui.tables import CLICK_A_ROW, selected_row

SAMPLE = app_root() / "samples" / "recall_sample.json"


def _why_evidence(rank: int | None, k: int, score: float | None = None, cutoff: float | None = None) -> str:
    """The "why not?" of an evidence turn: every turn of the conversation is stored, so it is its rank (and, for
    turns, its score against the k-th item's)."""
    if rank is None:
        return "not stored (not in the indexed turns)"
    if rank <= k:
        return f"retrieved (rank {rank} ≤ {k})"
    gap = f" (score {score:.3f} against {cutoff:.3f} at rank {k})" if score is not None and cutoff is not None else ""
    return f"ranked below the cut-off: {rank} > k = {k}{gap}"


# The parts of a turn's score (CandidateIndex.components), as the evidence table names them.
SCORE_PARTS = {
    "cosine": "cosine",
    "bm25": "BM25",
    "match": "match (fused + neighbour, 0-1)",
    "session": "+ session",
    "speaker": "+ speaker",
    "date": "+ date",
    "score": "score",
}


ctx = page("Recall Lab", uses_user=False)
lab = ctx.lab
st.caption(
    "Does the memory bring back the turns that hold the answer? Recall@k as the LoCoMo paper defines it: "
    "the share of a question's evidence turns among the top-k retrieved items (a retrieved session covers "
    "all its turns). Retrieval runs through the app's own turn store and ranking code."
)


@st.cache_data(show_spinner="Reading the data set…", max_entries=4)
def _load(raw: bytes) -> list[Conversation]:
    return load_locomo(raw)


sources = {"Shipped sample (written for Memory Lab)": SAMPLE}
if lab.settings.locomo_path.is_file():
    sources["LoCoMo dev split (7 conversations)"] = lab.settings.locomo_path
c1, c2, c3, c4 = st.columns([3, 1, 1, 2])
choice = c1.selectbox("Data", list(sources) + ["Upload a LoCoMo-format JSON file"], key="rl_source")
if not lab.settings.locomo_path.is_file():
    c1.caption(f"The LoCoMo dev split is not at {lab.settings.locomo_path} (set MEMLAB_LOCOMO_PATH).")
raw: bytes | None = None
if choice in sources:
    raw = sources[choice].read_bytes()
else:
    upload = c1.file_uploader("LoCoMo-format JSON", type=["json"], key="rl_upload")
    raw = upload.getvalue() if upload is not None else None
unit = c2.selectbox(
    "Unit",
    UNITS,
    key="rl_unit",
    help="turn: dialog turns; session: whole sessions; fact: the "
    "data set's observations, each pointing at its source turn",
)
retriever = c3.selectbox("Retriever", RETRIEVERS, index=2, key="rl_retriever")
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
    disabled=unit != "turn",
    help="The configured LLM answers from the top turns; the offline provider answers extractively.",
)
answer_k = a2.number_input("Turns given", 1, 50, 10, key="rl_answer_k", disabled=not with_answers)

conversations: list[Conversation] | None = None
if raw is not None:
    try:
        conversations = _load(raw)
    except DatasetError as exc:
        st.error(f"That file is not in LoCoMo format: {md_text(str(exc))}")
dataset_label = {SAMPLE: "sample", lab.settings.locomo_path: "LoCoMo dev"}.get(sources.get(choice), "upload")

if (
    st.button(
        "Run evaluation", type="primary", disabled=conversations is None or not ks or not categories, key="rl_run"
    )
    and conversations is not None
):
    with guarded("Running the evaluation"):
        warm_model(lab, repr(lab.settings))
        bar = st.progress(0.0, text="Indexing…")
        report = evaluate(
            lab,
            conversations,
            unit,
            retriever,
            ks,
            categories,
            progress=lambda d, t, label: bar.progress(min(1.0, d / max(t, 1)), text=label),
        )
        answers = None
        if with_answers and unit == "turn":
            answers = answer_eval(
                lab,
                report,
                k=int(answer_k),
                progress=lambda d, t, label: bar.progress(min(1.0, d / max(t, 1)), text=label),
            )
        bar.empty()
        runs = st.session_state.setdefault("rl_runs", [])
        runs.append(
            {
                "label": f"#{len(runs) + 1} {dataset_label} {unit}/{retriever}",
                "data_hash": hashlib.sha1(raw or b"").hexdigest(),
                "report": report,
                "answers": answers,
            }
        )

runs = st.session_state.get("rl_runs", [])
if not runs:
    st.info(
        "Pick the data, unit and retriever, then **Run evaluation**. The shipped sample runs in seconds; the "
        "LoCoMo dev split takes about a minute the first time (its turns are embedded and stored once)."
    )
    st.stop()

latest = runs[-1]["report"]
st.subheader(f"Latest run: {runs[-1]['label']}")
m = st.columns(len(latest.k) + 2)
for col, k in zip(m, latest.k):
    col.metric(f"R@{k}", f"{latest.overall[k]:.1%}")
m[-2].metric("Questions", latest.n_questions)
m[-1].metric("Time", f"{latest.seconds:.1f} s")
latest_answers = runs[-1].get("answers")
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


def recall_bars(table: dict[str, dict[int, float]], axis: str, title: str) -> go.Figure:
    """Grouped bars of recall@k, one group per row of ``table`` (category or conversation)."""
    rows = [{axis: name, "k": f"R@{k}", "recall": v} for name, row in table.items() for k, v in row.items()]
    return px.bar(pd.DataFrame(rows), x=axis, y="recall", color="k", barmode="group", range_y=[0, 1], title=title)


if latest.by_category:
    by_category = {f"{c} {CATEGORY_NAMES.get(c, '')}": row for c, row in latest.by_category.items()}
    left.plotly_chart(
        recall_bars(by_category, "category", "Recall@k per category (latest run)"), width="stretch", key="rl_cat_chart"
    )
curve = [{"run": r["label"], "k": k, "recall": v} for r in runs for k, v in r["report"].overall.items()]
curve_fig = px.line(
    pd.DataFrame(curve),
    x="k",
    y="recall",
    color="run",
    markers=True,
    range_y=[0, 1],
    title="Recall vs k (all runs)",
    log_x=True,
)
ks_used = sorted({point["k"] for point in curve})
curve_fig.update_xaxes(tickvals=ks_used, ticktext=[str(k) for k in ks_used])  # the k values, not log-scale minors
right.plotly_chart(curve_fig, width="stretch", key="rl_curve")
if len(latest.by_conversation) > 1:
    st.plotly_chart(
        recall_bars(latest.by_conversation, "conversation", "Recall@k per conversation (latest run)"),
        width="stretch",
        key="rl_conv_chart",
    )

st.subheader("Questions")
q1, q2 = st.columns([1, 3])
k_at = q1.selectbox("Hit or miss at k", latest.k, index=min(2, len(latest.k) - 1), key="rl_hit_k")
show = q2.radio("Show", ["misses", "all"], horizontal=True, key="rl_show")
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
else:
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
    pick = st.selectbox(
        "Open a question",
        [r["#"] for r in shown],
        key=f"rl_pick_{view}",
        format_func=lambda i: f"{latest.questions[i].sample_id}: {latest.questions[i].question}",
    )
    q = latest.questions[pick]
    turn_text = {}
    if conversations is not None:
        for conv in conversations:
            if conv.sample_id == q.sample_id:
                turn_text = {t.dia_id: t.display for t in conv.turns}
    st.markdown("**Question**")
    st.code(q.question, language=None, wrap_lines=True)
    st.markdown(
        f"**Gold answer**: {md_text(str(q.answer))} · category {q.category} {CATEGORY_NAMES.get(q.category, '')}"
    )
    if q.related_words:
        st.markdown(
            "**Related words** the keyword score also counted (the conversation's rare words nearest the "
            "question's, by cosine): " + ", ".join(f"{md_text(w)} ({c:.2f})" for w, c in q.related_words.items())
        )
    st.markdown("**Evidence turns**: where they ranked, and why one was not retrieved")
    cut = k_at  # the k the list above is filtered by: "why not?" answers for that cut-off
    cutoff = q.cutoff_scores.get(cut)
    rows = []
    for e in q.evidence:
        parts = q.evidence_scores.get(e, {})
        row: dict[str, object] = {
            "evidence": e,
            "rank": q.evidence_ranks.get(e),
            "why": _why_evidence(q.evidence_ranks.get(e), cut, parts.get("score"), cutoff),
        }
        row.update({label: parts.get(name) for name, label in SCORE_PARTS.items() if parts})
        row["text"] = turn_text.get(e, "")
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if q.evidence_scores:
        st.caption(
            "A turn's score is its match (BM25 and cosine fused, with its best neighbour's, rescaled to 0-1) plus "
            "its session's share, plus a boost when the question names its speaker or a date near it. When the "
            "question names its speaker, the cosine mixes in the question asked in the speaker's own voice "
            '("Where did I go?"); BM25 also counts the related words above. A question asked across time '
            '("What has she painted?") gets no session share: its answers lie in many sessions'
            + (f"; the turn at rank {cut} scored {cutoff:.3f}." if cutoff is not None else ".")
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
    evidence = set(q.evidence)
    top_rows = [
        {
            "rank": t["rank"],
            "evidence?": "✓" if evidence & set(t["covers"]) else "",
            "id": t["id"],
            "score": t["score"],
            "cosine": t["similarity"],
            "text": t.get("text") or ", ".join(t["covers"]),
        }
        for t in q.top[: max(latest.k)]
    ]
    st.markdown(f"**Top {len(top_rows)} retrieved** (✓ = holds evidence)")
    frame = pd.DataFrame(top_rows)
    st.dataframe(
        frame.style.apply(lambda r: ["background-color: #e3f4e1" if r["evidence?"] else "" for _ in r], axis=1),
        hide_index=True,
        width="stretch",
        height=36 * (len(top_rows) + 1) + 4,
    )
