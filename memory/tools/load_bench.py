"""`python -m memory bench --load`: many users chatting at once against one deployment, and whether upkeep keeps up.

Why: every earlier benchmark is one user on a quiet machine. A team's
deployment meets many people at once: replies queue behind each other, and
the upkeep jobs (facts, turn index, episodes) arrive faster than one worker
may apply them. This runs simulated users for a fixed time and reports what
they would feel (reply latency), what the memory lags behind (reply to
memory updated), whether the job stream's backlog grows, and how far a
second worker process raises the upkeep throughput.

Two deployments, each on its own throwaway servers:

- embedded: one process, users as threads sharing one ``MemoryLab``, the
  app's own upkeep thread, the embedded Chroma (what ``memory-lab run`` is);
- servers: a redis-server and a ``chroma run`` server, users as threads in
  two client processes, upkeep in one or two ``python -m memory worker``
  processes (what deploy/ describes, with one Redis instead of a Cluster:
  the Cluster needs six servers, which two cores cannot host beside the rest).

Users think between messages (``think_s``, uniform from half to one and a
half times it), as people do: with no pause, any upkeep slower than a reply
falls behind by construction. Upkeep throughput is measured apart, by
draining a stream of queued jobs with one and then two workers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .bench import Target, finish_report
from .session_bench import user_text

Say = Callable[[str], None]
STRATEGIES = ("buffer", "summary", "facts", "episodic", "hybrid")


@dataclass
class Sizes:
    users: int = 16
    seconds: float = 20.0
    think_s: float = 4.0
    drain_jobs: int = 64
    strategies: tuple[str, ...] = STRATEGIES

    @classmethod
    def quick(cls) -> Sizes:
        return cls(users=3, seconds=3.0, think_s=0.5, drain_jobs=6, strategies=("buffer", "hybrid"))


@dataclass
class Run:
    """One timed run: each turn's (wall time replied, reply seconds, user, session, job id) and backlog samples."""

    label: str
    turns: list[tuple[float, float, str, str, str]] = field(default_factory=list)
    backlog: list[tuple[float, int]] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        replies = [t[1] for t in self.turns]
        return {
            "turns": len(self.turns),
            "turns_per_s": round(len(self.turns) / self.seconds, 2) if self.seconds else 0.0,
            "reply_p50_ms": _pct(replies, 50),
            "reply_p99_ms": _pct(replies, 99),
            "lag_p50_ms": _pct(self.lags, 50),
            "lag_p95_ms": _pct(self.lags, 95),
            "jobs_done": len(self.lags),
            "backlog": [[round(t, 2), n] for t, n in self.backlog],
            "backlog_growth": _growth(self.backlog),
        }


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else 0.0


def _growth(samples: list[tuple[float, int]]) -> float:
    """Jobs per second the backlog grew by over the second half of the run (0 or less: it keeps up)."""
    half = [(t, n) for t, n in samples if t >= samples[-1][0] / 2] if samples else []
    if len(half) < 3:
        return 0.0
    slope = np.polyfit([t for t, _ in half], [n for _, n in half], 1)[0]
    return round(float(slope), 3)


# -- the users ------------------------------------------------------------------------------------------------
def chat_loop(lab: Any, user: str, strategy: str, until: float, think_s: float, seed: int, out: list[Any]) -> None:
    """One user: a message, the reply, a pause; until ``until`` (monotonic). Appends (replied, seconds, ...)."""
    rng = random.Random(seed)
    words = np.random.default_rng(seed)
    session = f"load-{strategy}"
    i = 0
    while time.monotonic() < until:
        started = time.perf_counter()
        result = lab.chat(user, session, user_text(words, i), strategy)
        took = time.perf_counter() - started
        out.append((time.time(), took, user, session, str(result.trace.job.get("id") or "")))
        i += 1
        pause = think_s * rng.uniform(0.5, 1.5)
        time.sleep(max(0.0, min(pause, until - time.monotonic())))


def run_users(lab: Any, users: list[str], strategy: str, seconds: float, think_s: float, seed: int = 0) -> list[Any]:
    """``users`` chatting at once from this process's threads for ``seconds``; every turn's record."""
    until = time.monotonic() + seconds
    out: list[Any] = []
    threads = [
        threading.Thread(target=chat_loop, args=(lab, u, strategy, until, think_s, seed + n, out), daemon=True)
        for n, u in enumerate(users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _sample_backlog(lab: Any, stop: threading.Event, started: float, out: list[tuple[float, int]]) -> None:
    while not stop.wait(0.5):
        try:
            out.append((time.monotonic() - started, int(lab.redis.xlen(lab.keys.jobs))))
        except Exception:  # noqa: BLE001 - a sample lost under load is not a result
            continue


def collect_lags(lab: Any, run: Run, wait_s: float) -> None:
    """Wait for the run's jobs (at most ``wait_s``), then read each one's outcome: finished minus replied."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and int(lab.redis.xlen(lab.keys.jobs)) > 0:
        time.sleep(0.2)
    for replied, _, user, session, job in run.turns:
        if not job:
            continue
        outcome = lab.upkeep.outcome(user, session, job)
        if outcome and outcome.get("finished_at"):  # the job was queued in the reply's round trip
            run.lags.append(max(0.0, float(outcome["finished_at"]) - replied))


def timed_run(lab: Any, label: str, turns: Callable[[], list[Any]]) -> Run:
    """``turns()`` while the stream's length is sampled every half second; then every job's lag."""
    run = Run(label)
    stop = threading.Event()
    started = time.monotonic()
    sampler = threading.Thread(target=_sample_backlog, args=(lab, stop, started, run.backlog), daemon=True)
    sampler.start()
    try:
        run.turns = turns()
    finally:
        run.seconds = time.monotonic() - started
        stop.set()
        sampler.join()
    collect_lags(lab, run, wait_s=60)
    return run


# -- deployments -------------------------------------------------------------------------------------------
@contextmanager
def chroma_server(folder: Path) -> Iterator[int]:
    """A throwaway ``chroma run`` on a free loopback port, stopped by its pid."""
    import socket

    import httpx

    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        raise RuntimeError("the chroma CLI (shipped by chromadb) is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [exe, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chroma run did not come up within 60 s") from None
                time.sleep(0.2)
        yield port
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _env(settings: Any, chroma_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": str(settings.redis_url),
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_port),
        "MEMLAB_DATA_DIR": str(settings.data_dir),
        "MEMLAB_UPKEEP": "external",
        "HF_HUB_OFFLINE": "1",
    }


@contextmanager
def workers(env: dict[str, str], n: int) -> Iterator[list[subprocess.Popen[Any]]]:
    """``n`` ``python -m memory worker`` processes, stopped by pid (SIGTERM: each finishes its job)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "memory", "worker", "--name", f"load-w{i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(n)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            _stop(proc)


def client_processes(env: dict[str, str], users: list[str], strategy: str, sizes: Sizes, processes: int) -> list[Any]:
    """The users split over ``processes`` client processes (threads inside each); every turn's record."""
    groups = [users[i::processes] for i in range(processes)]
    procs = []
    for n, group in enumerate(groups):
        spec = json.dumps(
            {"users": group, "strategy": strategy, "seconds": sizes.seconds, "think": sizes.think_s, "seed": 100 * n}
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "memory.tools.load_bench", spec],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    out: list[Any] = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=sizes.seconds + 300)
        if proc.returncode == 0 and stdout.strip():
            out.extend(tuple(row) for row in json.loads(stdout.strip().splitlines()[-1]))
    return out


def _client_main(spec: str) -> int:
    """A client process: its users chat for the run's time; prints their turns as one JSON line."""
    from ..lab import MemoryLab

    s = json.loads(spec)
    lab = MemoryLab()
    try:
        lab.chat("warm-up", "w", "hello", s["strategy"])  # load the model before the clock starts
        start_at = time.time()
        rows = run_users(lab, s["users"], s["strategy"], s["seconds"], s["think"], s["seed"])
        print(json.dumps([r for r in rows if r[0] >= start_at]))
    finally:
        lab.close()
    return 0


def drain(lab: Any, env: dict[str, str] | None, jobs: int, n_workers: int, tag: str) -> dict[str, Any]:
    """Queue ``jobs`` hybrid turns (16 users, no worker running), then time ``n_workers`` workers clearing them.

    With ``env`` the workers are processes against the servers; without, threads of this process.
    """
    from ..upkeep.worker import Worker

    users = [f"drain-{tag}-{i:02d}" for i in range(16)]
    words = np.random.default_rng(5)
    lab.worker_autostart = False
    for i in range(jobs):
        lab.chat(users[i % len(users)], "s1", user_text(words, i), "hybrid")
    queued = int(lab.redis.xlen(lab.keys.jobs))
    started = time.monotonic()
    if env is not None:
        with workers(env, n_workers):
            while int(lab.redis.xlen(lab.keys.jobs)) > 0 and time.monotonic() - started < 600:
                time.sleep(0.1)
            took = time.monotonic() - started
    else:
        pool = [Worker(lab, name=f"drain-{i}", block_ms=100) for i in range(n_workers)]
        threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
        for t in threads:
            t.start()
        while int(lab.redis.xlen(lab.keys.jobs)) > 0 and time.monotonic() - started < 600:
            time.sleep(0.1)
        took = time.monotonic() - started
        for w in pool:
            w.stop.set()
        for t in threads:
            t.join()
    lab.worker_autostart = True
    return {"workers": n_workers, "jobs": queued, "seconds": round(took, 2), "jobs_per_s": round(queued / took, 2)}


# -- the run -------------------------------------------------------------------------------------------------
def _lab(settings: Any, **changes: Any) -> Any:
    from ..lab import MemoryLab

    return MemoryLab(replace(settings, **changes))


def bench_embedded(base: Any, folder: Path, sizes: Sizes, say: Say) -> dict[str, Any]:
    """One process: users as threads, the app's upkeep thread, embedded Chroma."""
    lab = _lab(base, data_dir=folder / "embedded", upkeep_mode="thread")
    out: dict[str, Any] = {"runs": {}}
    try:
        lab.chat("warm-up", "w", "hello", "hybrid")
        say("embedded: one user, hybrid")
        single = timed_run(lab, "1 user", lambda: run_users(lab, ["solo"], "hybrid", sizes.seconds, sizes.think_s))
        out["single_hybrid"] = single.summary()
        for strategy in sizes.strategies:
            say(f"embedded: {sizes.users} users, {strategy}")
            users = [f"e-{strategy}-{i:02d}" for i in range(sizes.users)]
            run = timed_run(lab, strategy, partial(run_users, lab, users, strategy, sizes.seconds, sizes.think_s))
            out["runs"][strategy] = run.summary()
    finally:
        lab.close()
    return out


def bench_servers(base: Any, folder: Path, sizes: Sizes, say: Say) -> dict[str, Any]:
    """Redis + ``chroma run``; users in two client processes, upkeep in one or two worker processes."""
    out: dict[str, Any] = {"runs": {}, "drain": []}
    with chroma_server(folder / "chroma-server") as port:
        settings = replace(base, data_dir=folder / "servers", chroma_host="127.0.0.1", chroma_port=port)
        env = _env(settings, port)
        lab = _lab(settings, upkeep_mode="external")
        try:
            lab.chat("warm-up", "w", "hello", "hybrid")
            lab.redis.delete(lab.keys.jobs)
            for n_workers in (1, 2):
                say(f"servers: {sizes.users} users in 2 processes, hybrid, {n_workers} worker process(es)")
                users = [f"s{n_workers}-{i:02d}" for i in range(sizes.users)]
                with workers(env, n_workers):
                    run = timed_run(lab, f"{n_workers}w", partial(client_processes, env, users, "hybrid", sizes, 2))
                out["runs"][f"hybrid, {n_workers} worker(s)"] = run.summary()
            for n_workers in (1, 2):
                say(f"servers: draining {sizes.drain_jobs} queued jobs with {n_workers} worker process(es)")
                out["drain"].append(drain(lab, env, sizes.drain_jobs, n_workers, f"p{n_workers}"))
        finally:
            lab.close()
    return out


def run(quick: bool = False, progress: Say | None = None, servers: bool = True) -> dict[str, Any]:
    """Every load section on throwaway servers; returns the report (sections and targets)."""
    from ..backends.redis_server import EmbeddedRedis
    from ..config import Settings

    say = progress or (lambda _m: None)
    sizes = Sizes.quick() if quick else Sizes()
    folder = Path(tempfile.mkdtemp(prefix="memlab-load-"))
    server = EmbeddedRedis(folder / "redis")
    report: dict[str, Any] = {"quick": quick, "sizes": sizes.__dict__ | {"strategies": list(sizes.strategies)}}
    try:
        state = server.ensure_running()
        base = replace(Settings(), data_dir=folder / "data", redis_url=state.url)
        report["embedded"] = bench_embedded(base, folder, sizes, say)
        if servers:
            try:
                report["servers"] = bench_servers(base, folder, sizes, say)
            except RuntimeError as exc:  # no `chroma` CLI, or it did not start: the embedded numbers still stand
                report["servers_skipped"] = str(exc)
        from .session_bench import run_sections

        lab = _lab(base, data_dir=folder / "long", upkeep_mode="external", key_prefix="long")
        try:
            report["long"] = run_sections(lab, quick, say)
        finally:
            lab.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return finish_report(report, targets(report))


def targets(report: dict[str, Any]) -> list[Target]:
    from .session_bench import targets as long_targets

    target = Target
    rows = []
    embedded = report["embedded"]
    base = embedded["single_hybrid"]["reply_p50_ms"]
    hybrid = embedded["runs"].get("hybrid")
    users = report["sizes"]["users"]
    if hybrid and base:
        rows.append(
            target(
                f"embedded, {users} users, hybrid: reply p99 / single-user p50",
                round(hybrid["reply_p99_ms"] / base, 2),
                3,
                "lower",
            )
        )
        rows.append(
            target(f"embedded, {users} users, hybrid: upkeep lag p95", hybrid["lag_p95_ms"] / 1000, 2, "lower", " s")
        )
        rows.append(target("embedded, hybrid: backlog growth", hybrid["backlog_growth"], 0.1, "lower", " jobs/s"))
    servers = report.get("servers")
    if servers:
        for label, r in servers["runs"].items():
            rows.append(target(f"servers, {label}: upkeep lag p95", r["lag_p95_ms"] / 1000, 2, "lower", " s"))
            rows.append(target(f"servers, {label}: backlog growth", r["backlog_growth"], 0.1, "lower", " jobs/s"))
        one, two = servers["drain"][0], servers["drain"][1]
        if one["jobs_per_s"]:
            rows.append(
                target(
                    "2 workers / 1, upkeep throughput", round(two["jobs_per_s"] / one["jobs_per_s"], 2), 1.6, "higher"
                )
            )
    if "long" in report:
        rows.extend(long_targets(report["long"], target))
    return rows


def render(report: dict[str, Any]) -> str:
    from .session_bench import render_sections

    sizes = report["sizes"]
    lines = [
        f"Memory Lab load bench{' (quick)' if report['quick'] else ''} — {report['machine']['cpus']} CPUs, "
        f"load {report['machine']['load_1min']} at the end (a shared machine: numbers are noisy)",
        f"{sizes['users']} users, {sizes['seconds']:g} s a run, {sizes['think_s']:g} s think time (±50 %)",
        "",
    ]
    names = ("turns/s", "reply p50", "p99", "lag p50", "p95", "backlog", "growth")
    head = f"  {'run':<28} " + " ".join(f"{n:>{w}}" for n, w in zip(names, (7, 10, 9, 9, 9, 8, 8)))

    def row(label: str, r: dict[str, Any]) -> str:
        peak = max((n for _, n in r["backlog"]), default=0)
        return (
            f"  {label:<28} {r['turns_per_s']:>7.2f} {r['reply_p50_ms']:>8.1f}ms {r['reply_p99_ms']:>7.1f}ms "
            f"{r['lag_p50_ms']:>7.1f}ms {r['lag_p95_ms']:>7.1f}ms {peak:>8} {r['backlog_growth']:>6.2f}/s"
        )

    lines.append("Embedded (one process, users as threads, the app's upkeep thread):")
    lines.append(head)
    lines.append(row("1 user, hybrid", report["embedded"]["single_hybrid"]))
    for strategy, r in report["embedded"]["runs"].items():
        lines.append(row(f"{sizes['users']} users, {strategy}", r))
    if "servers_skipped" in report:
        lines += ["", f"Servers: skipped ({report['servers_skipped']})"]
    if "servers" in report:
        lines.append("")
        lines.append("Servers (redis-server + chroma run; users in 2 processes; worker processes):")
        lines.append(head)
        for label, r in report["servers"]["runs"].items():
            lines.append(row(label, r))
        for d in report["servers"]["drain"]:
            lines.append(
                f"  drain {d['jobs']} queued hybrid jobs, {d['workers']} worker(s): "
                f"{d['seconds']} s = {d['jobs_per_s']} jobs/s"
            )
    if "long" in report:
        lines.append("")
        lines.extend(render_sections(report["long"]))
    lines.append("")
    lines.append("Targets:")
    for t in report["targets"]:
        mark = "✓" if t["met"] else "✗"
        op = "≤" if t["better"] == "lower" else "≥"
        lines.append(f"  {mark} {t['name']}: {t['value']:g}{t['unit']} ({op} {t['limit']:g}{t['unit']})")
    return "\n".join(lines)


def backlog_svg(report: dict[str, Any], width: int = 640, height: int = 240) -> str:
    """The job stream's length over each run as a small SVG line chart (for the docs; no plotting library)."""
    series: list[tuple[str, list[list[float]]]] = [
        (f"embedded, {s}", r["backlog"]) for s, r in report["embedded"]["runs"].items()
    ]
    series += [(f"servers, {label}", r["backlog"]) for label, r in report.get("servers", {}).get("runs", {}).items()]
    t_max = max((p[0] for _, pts in series for p in pts), default=1.0) or 1.0
    n_max = max((p[1] for _, pts in series for p in pts), default=1) or 1
    left, bottom, top, right = 40, 30, 10, 170
    w, h = width - left - right, height - top - bottom
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="black"/>',
        f'<text x="{left + w / 2}" y="{height - 5}" text-anchor="middle">seconds into the run (max {t_max:.0f})</text>',
        f'<text x="{left - 5}" y="{top + 8}" text-anchor="end">{n_max}</text>',
        f'<text x="{left - 5}" y="{top + h}" text-anchor="end">0</text>',
        f'<text x="12" y="{top + h / 2}" transform="rotate(-90 12 {top + h / 2})" '
        'text-anchor="middle">jobs queued</text>',
    ]
    for i, (label, pts) in enumerate(series):
        colour = colours[i % len(colours)]
        path = " ".join(f"{left + w * t / t_max:.1f},{top + h - h * n / n_max:.1f}" for t, n in pts)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        y = top + 12 + 14 * i
        out.append(f'<line x1="{left + w + 10}" y1="{y - 4}" x2="{left + w + 25}" y2="{y - 4}" stroke="{colour}"/>')
        out.append(f'<text x="{left + w + 30}" y="{y}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main(quick: bool = False, as_json: bool = False, plot: str | None = None) -> int:
    """``bench --load``: run, print the report (text or JSON), write the backlog plot if asked."""
    from ..errors import InputError

    if plot and not os.access(Path(plot).resolve().parent, os.W_OK):  # say so now, not after minutes of running
        raise InputError(f"--plot: cannot write to the folder of {plot}")
    report = run(quick=quick, progress=None if as_json else lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    if plot:
        Path(plot).write_text(backlog_svg(report), encoding="utf-8")
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0


if __name__ == "__main__":  # a client process of ``bench_servers``
    sys.exit(_client_main(sys.argv[1]))
