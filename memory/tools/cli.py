"""`python -m memory`: chat, inspect and manage memory from a terminal.

Every failure is one line on stderr and an exit code (see ``errors.py`` and
the README's "When things go wrong"); a traceback only with MEMLAB_DEBUG=1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InputError, MemoryLabError
from ..health import doctor
from ..lab import MemoryLab
from ..logs import configure_logging
from ..presentation.format import when
from ..records.trace import Trace
from ..strategies import STRATEGIES

if TYPE_CHECKING:
    from ..eval.answers import AnswerReport
    from ..eval.loco import LocoReport
    from ..eval.runner import EvalReport

EXIT_INTERNAL = 70


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def render_trace(trace: Trace) -> str:
    lines = [f"-- what the model saw ({trace.strategy}, ~{trace.total_tokens} tokens) --"]
    for part in trace.system_parts:
        lines.append(f"[{part.name}, {part.tokens} tok] {part.text}")
    for item in trace.retrieved:
        mark = "" if item.included else " (left out: over budget)"
        related = f" [related words: {item.source['related words']}]" if item.source.get("related words") else ""
        lines.append(f"  {item.kind} sim={item.similarity:.3f} dist={item.distance:.3f}: {item.text}{mark}{related}")
    for m in trace.messages:
        lines.append(f"  {m['role']}: {m['content']}")
    lines.append("tokens: " + ", ".join(f"{k}={v}" for k, v in trace.tokens.items()))
    lines.append("timings ms: " + ", ".join(f"{k}={v}" for k, v in trace.timings_ms.items()))
    lines.extend(f"warning: {w}" for w in trace.warnings)
    lines.extend(f"dropped: {d}" for d in trace.dropped)
    return "\n".join(lines)


def cmd_chat(lab: MemoryLab, a: argparse.Namespace) -> int:
    if a.no_wait:
        lab.worker_autostart = False  # leave the job queued for a worker rather than half-do it on exit
    result = lab.chat(a.user, a.session, " ".join(a.text), strategy=a.strategy, message_id=a.message_id)
    if not a.no_wait:
        result = lab.settle(result)  # the next process then sees this turn's facts, folds and episode
    if a.json:
        _print_json(
            {
                "reply": result.reply.content if result.reply else None,
                "error": result.error,
                "trace": result.trace.to_dict(),
            }
        )
    else:
        if a.trace:
            print(render_trace(result.trace))
        if result.error:
            print(f"error: {result.error} (your message was saved)", file=sys.stderr)
        else:
            print(result.reply.content if result.reply else "")
        for w in result.trace.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 1 if result.error else 0


def cmd_history(lab: MemoryLab, a: argparse.Namespace) -> int:
    read = lab.sessions.log(a.user, a.session)
    if a.json:
        _print_json({"messages": [m.to_dict() for m in read.messages], "corrupt": [c.to_dict() for c in read.corrupt]})
        return 0
    if not read.messages and not read.corrupt:
        print(f"no messages for user {a.user!r} in session {a.session!r}")
    for m in read.messages:
        who = m.role.value + (f" ({m.model_id})" if m.model_id else "")
        print(f"{when(m.created_at)} {who}: {m.content}")
    for c in read.corrupt:
        print(f"corrupt entry #{c.index} skipped: {c.error}", file=sys.stderr)
    return 0


def cmd_sessions(lab: MemoryLab, a: argparse.Namespace) -> int:
    rows = lab.sessions.sessions(a.user)
    if a.json:
        _print_json([{"session_id": s, "last_active": t} for s, t in rows])
    elif not rows:
        print(f"no sessions for user {a.user!r}")
    for s, t in rows if not a.json else []:
        print(f"{s}\tlast active {when(t)}")
    return 0


def cmd_forget(lab: MemoryLab, a: argparse.Namespace) -> int:
    report = lab.forget_user(a.user)
    print(f"forgot user {a.user!r}: {report.describe()}")
    return 0 if report.ok else 3


def cmd_clear(lab: MemoryLab, a: argparse.Namespace) -> int:
    report = lab.clear_session(a.user, a.session)
    print(f"cleared session {a.session!r} of user {a.user!r}: {report.describe()} (the user's facts are kept)")
    return 0 if report.ok else 3


def cmd_why(lab: MemoryLab, a: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..inspection.why import why_not

    answer = why_not(lab, a.user, a.query, a.memory, k=a.k, session_id=a.session or "")
    if a.json:
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=2))
    else:
        print(f"{answer.case}: {answer.explanation}")
        for line in answer.evidence:
            print(f"  {line}")
    return 0


def cmd_doctor(lab: MemoryLab, a: argparse.Namespace) -> int:
    statuses = doctor(lab, load_model=not a.quick)
    if a.json:
        _print_json([s.__dict__ for s in statuses])
    else:
        for s in statuses:
            state = "ok" if s.ok else "DOWN"
            print(f"{s.name:<11} {state:<5} {s.mode:<9} {s.version:<24} {s.location}")
            if s.detail:
                print(f"{'':<11} {s.detail}")
            if not s.ok and s.fix:
                print(f"{'':<11} fix: {s.fix}")
    return 0 if all(s.ok for s in statuses) else 1


def cmd_redis(lab: MemoryLab, a: argparse.Namespace) -> int:
    if a.action == "stop":
        stopped = lab.stop_embedded_redis()
        print("embedded redis-server stopped" if stopped else "embedded redis-server was not running")
    elif a.action == "start":
        state = lab.embedded_redis.ensure_running() if lab.embedded_redis else None
        print(f"embedded redis-server at {state.url} (pid {state.pid})" if state else "Redis is external (REDIS_URL)")
    return 0


def cmd_export(lab: MemoryLab, a: argparse.Namespace) -> int:
    from ..transfer.portability import dumps, export_session, export_user, session_markdown

    if a.session:
        data = export_session(lab, a.user, a.session)
        print(session_markdown(data) if a.markdown else dumps(data))
    else:
        if a.markdown:
            raise InputError("--markdown is for a session export (give --session)")
        print(dumps(export_user(lab, a.user)))
    return 0


def cmd_import(lab: MemoryLab, a: argparse.Namespace) -> int:
    from pathlib import Path

    from ..transfer.json_input import read_source
    from ..transfer.portability import MAX_IMPORT_BYTES, import_document, load_document

    limit = MAX_IMPORT_BYTES
    raw = sys.stdin.buffer.read(limit + 1) if a.file == "-" else read_source(Path(a.file), "the file", limit)
    document = load_document(raw)
    with _progress_bar("facts") as progress:
        report = import_document(lab, document, a.user, progress)
    print(report.describe())
    return 0


@contextlib.contextmanager
def _progress_bar(unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while a long write runs (shown in a terminal only, so piped output stays clean)."""
    from tqdm import tqdm

    bar = tqdm(total=0, file=sys.stderr, unit=unit, disable=None, dynamic_ncols=True, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


def cmd_import_chat(lab: MemoryLab, a: argparse.Namespace) -> int:
    """A chat transcript into a user's memory as if it had been chatted (``transcript.py``, ``replay.py``)."""
    from tqdm import tqdm

    from ..transfer.replay import replay
    from ..transfer.transcript import read_transcript

    try:
        raw = sys.stdin.buffer.read() if a.file == "-" else open(a.file, "rb").read()
    except OSError as exc:
        raise InputError(f"cannot read {a.file}: {exc.strerror or exc}") from exc
    transcript = read_transcript(raw, lab.settings.max_message_chars, a.question)
    with tqdm(total=transcript.messages, file=sys.stderr, unit="msg", disable=a.quiet, dynamic_ncols=True) as bar:

        def progress(done: int, total: int, label: str) -> None:
            bar.n = done
            bar.set_description(label[:40])
            bar.refresh()

        report = replay(lab, a.user, transcript.sessions, a.strategy, progress=progress)
    summary = {
        "user": report.user_id,
        "strategy": report.strategy,
        "sessions": report.sessions,
        "messages": report.messages,
        "stored": report.stored,
        "facts": lab.facts.count(report.user_id),
        "warnings": report.warnings,
    }
    if a.json:
        _print_json(summary)
    else:
        print(
            f"imported {report.messages:,} messages ({report.stored:,} new) in {len(report.sessions)} session(s) "
            f"into {report.user_id!r} through {report.strategy}: {summary['facts']} facts kept"
        )
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_facts(lab: MemoryLab, a: argparse.Namespace) -> int:
    if a.action in ("duplicates", "merge"):
        from ..timeline.commands import duplicates_command

        return duplicates_command(lab, a)
    if a.action in ("pin", "unpin"):
        from ..timeline.commands import pin_fact

        return pin_fact(lab, a)
    if a.action in ("history", "restore") or a.as_of:
        from ..timeline.commands import facts_over_time

        return facts_over_time(lab, a)
    if a.action == "edit":
        if not a.fact_id or not a.text:
            raise InputError("facts edit needs --fact-id and --text")
        event = lab.facts.edit(a.user, a.fact_id, a.text)
        print(f"edited: {event.previous!r} -> {event.text!r}" if event else "unchanged: the fact already reads that")
    elif a.action == "undo":
        event = lab.facts.undo_last(a.user)
        print(f"undone: now {event.text!r}" if event.text else f"undone: fact {event.fact_id} removed again")
    else:
        for r in lab.facts.all(a.user):
            print(f"{r.id}\t{r.metadata.get('slot') or '-'}\t{r.text}")
    return 0


def cmd_retention(lab: MemoryLab, a: argparse.Namespace) -> int:
    from ..timeline.commands import retention_command

    return retention_command(lab, a)


def cmd_replay(lab: MemoryLab, a: argparse.Namespace) -> int:
    from ..timeline.commands import replay_turn

    return replay_turn(lab, a)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from exc
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _eval_progress_bar(quiet: bool) -> tuple[Any, Callable[[int, int, str], None]]:
    from tqdm import tqdm

    bar = tqdm(total=1, file=sys.stderr, unit="step", disable=quiet, dynamic_ncols=True)

    def progress(done: int, total: int, label: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(label[:40])
        bar.refresh()

    return bar, progress


def cmd_eval(lab: MemoryLab, a: argparse.Namespace) -> int:
    from ..eval.datasets import data_kind
    from ..eval.locomo import DatasetError, load_locomo
    from ..eval.longmemeval import read_bytes
    from ..eval.runner import evaluate

    if a.replay_answers:
        return _replay_answers(lab, a)
    raw = read_bytes(a.data)
    if data_kind(raw) == "longmemeval":
        return _eval_longmemeval(lab, raw, a)
    if a.cv:
        raise InputError("--cv is for LongMemEval (folds of questions); on LoCoMo use --loco")
    a.unit = a.unit or "turn"
    a.k = a.k or [1, 5, 10, 25]
    try:
        conversations = load_locomo(raw)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar, progress = _eval_progress_bar(a.quiet)
    if a.loco:
        from ..eval.loco import leave_one_out

        loco = leave_one_out(lab, conversations, a.unit, a.categories, progress=progress)
        bar.close()
        if a.json:
            _print_json(loco.to_json())
            return 0
        _print_loco(a.data, loco)
        return 0
    report = evaluate(lab, conversations, a.unit, a.retriever, a.k, a.categories, progress)
    answers = None
    if a.answers:
        if report.unit != "turn":
            bar.close()
            print("error: --answers reads retrieved turns: use --unit turn", file=sys.stderr)
            return 2
        from ..eval.answers import answer_eval

        answers = answer_eval(lab, report, k=a.answers, progress=progress)
    bar.close()
    if a.json:
        data = report.to_json(with_questions=a.questions)
        if answers is not None:
            data["answers"] = answers.to_json(with_questions=a.questions)
        _print_json(data)
        return 0
    _print_recall(a.data, report, answers)
    return 0


def _print_loco(data: str, loco: LocoReport) -> None:
    """The leave-one-conversation-out result, as ``eval --loco`` prints it."""
    print(
        f"leave-one-conversation-out on {data}: unit={loco.unit}, R@{loco.k} over {loco.questions} questions, "
        f"{len(loco.grid)} settings"
    )
    print(f"  plain (the app's weights): {loco.plain * 100:.1f}")
    print(f"  LOCO (weights chosen without the scored conversation): {loco.loco * 100:.1f}")
    print(f"  best single setting in hindsight: {loco.hindsight * 100:.1f}")
    for name, held in loco.per_conversation.items():
        chosen = ", ".join(f"{k}={v:g}" for k, v in held["chosen"].items())
        print(f"  {name:<10} plain {held['plain'] * 100:5.1f}  LOCO {held['loco'] * 100:5.1f}  ({chosen})")
    from ..eval.locomo import CATEGORY_NAMES

    for category, scores in loco.per_category.items():
        label = CATEGORY_NAMES.get(category, f"category {category}")
        plain, held_out, n = scores["plain"] * 100, scores["loco"] * 100, scores["questions"]
        print(f"  {label:<12} plain {plain:5.1f}  LOCO {held_out:5.1f}  ({n:g} questions)")


def _print_recall(data: str, report: EvalReport, answers: AnswerReport | None) -> None:
    """A LoCoMo recall report (and the answers' scores, when asked for), as ``eval`` prints it."""
    ks = report.k
    print(
        f"recall@k on {data}: unit={report.unit} retriever={report.retriever} "
        f"questions={report.n_questions} time={report.seconds:.1f}s"
    )
    print(f"{'':<16}" + "".join(f"{'R@' + str(k):>8}" for k in ks) + f"{'n':>7}")

    def row(label: str, values: dict[int, float], n: int) -> None:
        print(f"{label:<16}" + "".join(f"{values[k] * 100:>8.1f}" for k in ks) + f"{n:>7}")

    row("overall", report.overall, report.n_questions)
    from ..eval.locomo import CATEGORY_NAMES

    for c, values in report.by_category.items():
        row(f"{c} {CATEGORY_NAMES.get(c, '')}", values, sum(1 for q in report.questions if q.category == c))
    for sample, values in report.by_conversation.items():
        row(sample, values, sum(1 for q in report.questions if q.sample_id == sample))
    if answers is not None:
        judged = (
            f", judge accuracy {answers.judge_accuracy * 100:.1f}% of {answers.judged}"
            if answers.judge_accuracy is not None
            else " (no judge: the offline provider; set ANTHROPIC_API_KEY or MEMLAB_LLM)"
        )
        print(
            f"\nanswers from the top {answers.k} turns by {answers.provider}: "
            f"token F1 {answers.mean_f1 * 100:.1f}{judged}"
        )
        for c, f1 in answers.f1_by_category.items():
            print(f"  F1 {c} {CATEGORY_NAMES.get(c, '')}: {f1 * 100:.1f}")


def _replay_answers(lab: MemoryLab, a: argparse.Namespace) -> int:
    """``eval --replay-answers``: a LongMemEval file's histories replayed through strategies, questions asked."""
    from tqdm import tqdm

    from ..eval.lme_answers import answer_through_strategies, parse_strategies, render, select
    from ..eval.longmemeval import load_longmemeval

    strategies = parse_strategies(a.replay_answers)
    if a.limit is not None and a.limit < 1:
        raise InputError("--limit must be at least 1")
    lab.embeddings_on_disk = True  # the same histories are replayed on every run: their vectors come from disk
    kinds = [k.strip() for k in (a.types or "").split(",") if k.strip()]
    questions = select(load_longmemeval(a.data), kinds, a.limit, a.seed)
    with tqdm(total=len(questions) * len(strategies), file=sys.stderr, disable=a.quiet, dynamic_ncols=True) as bar:

        def progress(done: int, total: int, label: str) -> None:
            bar.n = done
            bar.set_description(label[:40])
            bar.refresh()

        report = answer_through_strategies(lab, questions, strategies, progress=progress)
    if a.json:
        _print_json(report.to_json(with_questions=a.questions))
    else:
        print(render(report, a.data))
    return 0


def _eval_longmemeval(lab: MemoryLab, raw: bytes, a: argparse.Namespace) -> int:
    """``eval`` on a LongMemEval file: recall_any, recall_all and NDCG by question type (or cross-validated)."""
    from ..eval.lme_cv import cross_validate
    from ..eval.lme_report import render_cv, render_report
    from ..eval.lme_retrieval import KS, UNITS, evaluate_lme
    from ..eval.longmemeval import load_longmemeval

    unit = a.unit or "session"
    if unit not in UNITS:
        raise InputError(f"LongMemEval is scored by session or turn, not {unit!r}")
    if a.loco:
        raise InputError("LongMemEval has one history per question: use --cv (folds of questions), not --loco")
    if a.answers:
        raise InputError("--answers reads LoCoMo; LongMemEval's answers are scored by replaying the histories")
    if a.cv and not 2 <= a.folds <= 50:
        raise InputError("--folds must be between 2 and 50")
    questions = load_longmemeval(raw)
    bar, progress = _eval_progress_bar(a.quiet)
    try:
        if a.cv:
            if a.retriever != "hybrid":
                raise InputError("--cv chooses the hybrid ranking's weights: leave --retriever at hybrid")
            cv = cross_validate(lab, questions, unit, a.k or KS, a.folds, progress=progress)
        else:
            report = evaluate_lme(lab, questions, unit, a.retriever, a.k or KS, progress)
    finally:
        bar.close()
    if a.cv:
        print(json.dumps(cv.to_json(), ensure_ascii=False, indent=2) if a.json else render_cv(cv, a.data))
    elif a.json:
        _print_json(report.to_json(with_questions=a.questions))
    else:
        print(render_report(report, a.data))
    return 0


def cmd_worker(lab: MemoryLab, a: argparse.Namespace) -> int:
    """Apply upkeep jobs from the stream until stopped (SIGTERM, Ctrl-C), or until none are left (``--once``)."""
    import signal

    from ..upkeep.queue import GROUP
    from ..upkeep.worker import Worker

    worker = Worker(lab, name=a.name, claim_idle_s=a.claim_after)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    configure_logging(logging.WARNING)  # a worker's log is its report: dead letters, drops, retries
    where = lab.settings.redis_url or "embedded Redis"
    print(f"upkeep worker {worker.name} on {where}, stream {lab.keys.jobs}, group {GROUP}", flush=True)
    if a.once:
        worker.block_ms = 200
        while worker.run_once():
            pass
    else:
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop.set()
    print(
        f"upkeep worker {worker.name} stopped: {worker.done} done, {worker.failed} failed, "
        f"{worker.refused} refused (see the dead letters), {worker.dropped} dropped",
        flush=True,
    )
    return 0


def cmd_bench(lab: MemoryLab, a: argparse.Namespace) -> int:
    """The speed targets side by side (own throwaway servers; the user's data is not touched)."""
    if a.load or a.pages:
        from importlib import import_module

        tool = import_module("memory.tools.load_bench" if a.load else "memory.tools.page_bench")
        return int(tool.main(quick=a.quick, as_json=a.json, plot=a.plot))
    from .bench import render, run

    report = run(quick=a.quick, progress=None if a.json else lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    if a.json:
        _print_json(report.to_dict())
    else:
        print(render(report))
    return 0


def cmd_mcp(lab: MemoryLab, a: argparse.Namespace) -> int:
    """An MCP server over this lab: stdio (the client starts this command) or streamable HTTP (``--http PORT``)."""
    import signal

    from .mcp_server import serve

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt  # the client's SIGTERM: close the lab (the upkeep thread finishes its job) first

    if a.http is None:
        signal.signal(signal.SIGTERM, stop)  # over HTTP, uvicorn handles SIGTERM itself
    else:
        print(f"Memory Lab MCP server at http://{a.host}:{a.http}/mcp", file=sys.stderr, flush=True)
    serve(lab, http_port=a.http, host=a.host)
    return 0


def cmd_run(lab: MemoryLab, a: argparse.Namespace) -> int:
    from .dashboard import serve

    print(f"Memory Lab at http://{a.host}:{a.port}", file=sys.stderr, flush=True)
    serve(a.host, a.port)


def build_parser(prog: str = "python -m memory") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Memory Lab's engine from the terminal.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("chat", help="send one message through a memory strategy")
    c.add_argument("--user", required=True)
    c.add_argument("--session", required=True)
    c.add_argument("--strategy", default="buffer", choices=list(STRATEGIES))
    c.add_argument("--json", action="store_true", help="print {reply, trace} as JSON")
    c.add_argument("--trace", action="store_true", help="print what the model saw before the reply")
    c.add_argument("--message-id", help="an id for this message; sending it again with the same id stores it once")
    c.add_argument(
        "--no-wait", action="store_true", help="do not wait for this turn's memory upkeep (a worker does it later)"
    )
    c.add_argument("text", nargs="+")
    c.set_defaults(func=cmd_chat)

    w = sub.add_parser("worker", help="apply memory upkeep jobs (facts, folds, episodes) from the Redis stream")
    w.add_argument("--name", help="consumer name in the group (default: host-pid-random)")
    w.add_argument("--claim-after", type=float, help="take over another worker's job idle this many seconds")
    w.add_argument("--once", action="store_true", help="apply the jobs waiting now, then exit")
    w.set_defaults(func=cmd_worker)

    h = sub.add_parser("history", help="the full transcript of a session")
    h.add_argument("--user", required=True)
    h.add_argument("--session", required=True)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_history)

    s = sub.add_parser("sessions", help="a user's sessions, newest first")
    s.add_argument("--user", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sessions)

    f = sub.add_parser("forget", help="delete a user's Redis keys, facts, episodes and indexed turns")
    f.add_argument("--user", required=True)
    f.set_defaults(func=cmd_forget)

    cl = sub.add_parser("clear", help="delete one session: messages, summary, traces, its episode and turns")
    cl.add_argument("--user", required=True)
    cl.add_argument("--session", required=True)
    cl.set_defaults(func=cmd_clear)

    y = sub.add_parser("why", help="why a memory was (not) retrieved for a query: its rank, or where it is instead")
    y.add_argument("--user", required=True)
    y.add_argument("--query", required=True)
    y.add_argument("--memory", required=True, help="the memory's text, or a fact id")
    y.add_argument("--k", type=int, default=5, help="how many facts a turn retrieves (default 5)")
    y.add_argument("--session", help="the session asking (conversation memory reads only that one)")
    y.add_argument("--json", action="store_true")
    y.set_defaults(func=cmd_why)

    d = sub.add_parser("doctor", help="which backends are in use and whether they answer")
    d.add_argument("--json", action="store_true")
    d.add_argument("--quick", action="store_true", help="do not load the embedding model")
    d.set_defaults(func=cmd_doctor)

    e = sub.add_parser(
        "eval", help="recall@k on a LoCoMo or LongMemEval file (plain or gzip), through the engine's own storage"
    )
    e.add_argument("--data", required=True, help="a LoCoMo or LongMemEval JSON file, plain or gzip (detected)")
    e.add_argument(
        "--unit", choices=["turn", "session", "fact"], help="default: turn on LoCoMo, session on LongMemEval"
    )
    e.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default="hybrid")
    e.add_argument("--k", type=_int_list, help="e.g. 1,5,10,25 (default: LoCoMo 1,5,10,25; LongMemEval 1,3,5,10,30,50)")
    e.add_argument("--categories", type=_int_list, default=[1, 2, 3, 4], help="e.g. 1,2,3,4")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--questions", action="store_true", help="with --json: include every question's result")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument(
        "--answers",
        type=int,
        metavar="K",
        help="also answer each question from its top K turns with the configured LLM: token F1 (and a judge)",
    )
    e.add_argument(
        "--replay-answers",
        metavar="STRATEGIES",
        help="a LongMemEval file: replay each question's history through these strategies (e.g. facts,hybrid) "
        "and ask it in a chat turn; right offline (and judged with a key) by question type and strategy",
    )
    e.add_argument("--types", help="with --replay-answers: only these question types (comma-separated)")
    e.add_argument("--limit", type=int, help="with --replay-answers: at most this many questions of each type")
    e.add_argument(
        "--seed",
        type=int,
        help="with --replay-answers --limit: a random sample of each type (this seed), not the first",
    )
    e.add_argument(
        "--loco",
        action="store_true",
        help="leave-one-conversation-out: recall with the ranking weights chosen without the scored conversation",
    )
    e.add_argument(
        "--cv",
        action="store_true",
        help="LongMemEval: recall with the ranking weights chosen by cross-validation over questions, beside the plain",
    )
    e.add_argument("--folds", type=int, default=5, help="with --cv: how many folds of questions (default 5)")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", help="a session (transcript + traces, JSON or Markdown) or a user's memory (JSON)")
    x.add_argument("--user", required=True)
    x.add_argument("--session", help="export this session; without it, the user's facts and episodes")
    x.add_argument("--markdown", action="store_true", help="a session as Markdown instead of JSON")
    x.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="load an export back (idempotent)")
    i.add_argument("file", help="an export file, or - for standard input")
    i.add_argument("--user", help="import into this user id instead of the one in the file")
    i.set_defaults(func=cmd_import)

    ic = sub.add_parser(
        "import-chat",
        help="replay a chat transcript (LongMemEval, or [{role, content, date?}]) into a user's memory as if chatted",
    )
    ic.add_argument("file", help="a JSON file (plain or gzip), or - for standard input")
    ic.add_argument("--user", required=True)
    ic.add_argument("--strategy", default="hybrid", choices=list(STRATEGIES), help="whose upkeep runs (default hybrid)")
    ic.add_argument(
        "--question", help="a LongMemEval file of several histories: the question id whose history to import"
    )
    ic.add_argument("--json", action="store_true")
    ic.add_argument("--quiet", action="store_true", help="no progress bar")
    ic.set_defaults(func=cmd_import_chat)

    fa = sub.add_parser("facts", help="list, edit or undo a user's facts; a fact's history, restore a version")
    fa.add_argument(
        "action", choices=["list", "edit", "undo", "history", "restore", "pin", "unpin", "duplicates", "merge"]
    )
    fa.add_argument("fact", nargs="?", help="history, restore, pin, unpin: the fact id; merge: the one to keep")
    fa.add_argument("--user", required=True)
    fa.add_argument("--fact-id")
    fa.add_argument("--text")
    fa.add_argument("--version", type=int, help="restore: the version number (from facts history)")
    fa.add_argument("--drop", help="merge: the fact merged into the one kept (deleted, its history kept)")
    fa.add_argument("--as-of", help="list: the facts valid at this date or time (ISO 8601), with their interval")
    fa.add_argument("--json", action="store_true")
    fa.set_defaults(func=cmd_facts)

    rp = sub.add_parser("replay", help="a session at turn N: buffer, summary, facts, episodes, what the model got")
    rp.add_argument("session")
    rp.add_argument("--user", required=True)
    rp.add_argument("--turn", type=int, required=True, help="the turn (1 = the session's first user message)")
    rp.add_argument("--diff", type=int, metavar="M", help="also what changed in memory from turn M to turn N")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_replay)

    rt = sub.add_parser("retention", help="a user's retention policy: set, show, preview, apply, undo a run")
    rt.add_argument("action", choices=["show", "set", "preview", "apply", "undo"])
    rt.add_argument("--user", required=True)
    rt.add_argument("--max-age-days", type=float, help="set: remove facts said longer ago than this")
    rt.add_argument("--max-idle-days", type=float, help="set: remove facts not said again nor changed for this long")
    rt.add_argument("--then", choices=["forget", "summarise"], default="forget", help="set: forget, or summarise first")
    rt.add_argument("--grace-days", type=float, default=7.0, help="set: how long a run can be undone (default 7)")
    rt.add_argument("--expect", help="apply: the comma-separated fact ids a preview listed (refused if it changed)")
    rt.add_argument("--run", help="undo: the run id (from apply or show)")
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=cmd_retention)

    b = sub.add_parser("bench", help="measure the speed targets side by side (throwaway servers)")
    b.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    b.add_argument("--json", action="store_true")
    b.add_argument("--load", action="store_true", help="many users at once, long sessions (memory/tools/load_bench.py)")
    b.add_argument("--pages", action="store_true", help="the pages' own cost in a browser (memory/tools/page_bench.py)")
    b.add_argument("--plot", metavar="SVG", help="with --load: write the backlog over time to this SVG file")
    b.set_defaults(func=cmd_bench)

    rn = sub.add_parser("run", help="serve the dashboard (the Streamlit app) at http://HOST:PORT")
    rn.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    rn.add_argument("--port", type=int, default=8501, help="the port (default 8501)")
    rn.set_defaults(func=cmd_run)

    m = sub.add_parser("mcp", help="serve memory to an agent over MCP: stdio, or streamable HTTP with --http PORT")
    m.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP at http://HOST:PORT/mcp")
    m.add_argument("--host", default="127.0.0.1", help="with --http: the address to listen on (default 127.0.0.1)")
    m.set_defaults(func=cmd_mcp)

    r = sub.add_parser("redis", help="manage the embedded redis-server")
    r.add_argument("action", choices=["stop", "start"])
    r.set_defaults(func=cmd_redis)
    return p


def main(argv: list[str] | None = None, prog: str = "python -m memory") -> int:
    debug = configure_logging(logging.ERROR) == logging.DEBUG
    args = build_parser(prog).parse_args(argv)
    lab: MemoryLab | None = None
    try:
        lab = MemoryLab()
        return int(args.func(lab, args))
    except MemoryLabError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's promise: one line, never a traceback
        if debug:
            traceback.print_exc()
        print(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} (a bug; MEMLAB_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        if lab is not None:
            lab.close()


def entry() -> None:
    """The installed ``memory-lab`` command: the same subcommands as ``python -m memory``, and ``run``."""
    sys.exit(main(prog="memory-lab"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:2000] or type(exc).__name__
