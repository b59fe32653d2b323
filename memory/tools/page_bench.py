"""`python -m memory bench --pages`: what the dashboard's pages cost in a browser, against a bare Streamlit floor.

Why a floor: a chat turn in the browser measured 0.14-0.7 s and a page
change 0.4-1.6 s, with nothing to say how much of that is Streamlit's own
round trip (websocket, rerun, diff, render) and how much is ours. The floor
is the least a Streamlit app can do: one ``st.chat_input`` that echoes, a
second page with a title, served and driven the same way in the same run.
Targets: Enter → reply rendered at most 1.5× the floor's plus the engine's
own time for the turn; a page change at most 1.5× the floor's; a fresh tab
on any page under 2 s.

Everything runs on throwaway servers (a redis-server, a data folder, two
``streamlit run`` processes on free loopback ports), stopped by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import env_setting
from ..paths import app_root
from .bench import Target, finish_report

Say = Callable[[str], None]
CHROMIUM = env_setting("chromium") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (path, the page's title): every page of the dashboard, in the sidebar's order.
PAGES = [
    ("", "Memory Lab"),
    ("chat", "Chat playground"),
    ("compare", "Compare strategies"),
    ("redis_keys", "Redis keys"),
    ("summaries", "Summaries"),
    ("vector_memory", "Vector memory"),
    ("audit", "Audit trail"),
    ("recall_lab", "Recall Lab"),
]
FLOOR = """
import streamlit as st


def chat() -> None:
    st.title("Floor chat")
    st.session_state.setdefault("said", [])
    for role, text in st.session_state["said"]:
        st.chat_message(role).write(text)
    if text := st.chat_input("Say something"):
        st.session_state["said"] += [("user", text), ("assistant", f"You said: {text}")]
        st.chat_message("user").write(text)
        st.chat_message("assistant").write(f"You said: {text}")


def other() -> None:
    st.title("Floor other")
    st.write("A second page.")


st.navigation([st.Page(chat, title="Floor chat", default=True), st.Page(other, title="Floor other")]).run()
"""
IDLE = "!document.querySelector('[data-testid=stStatusWidget]')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def streamlit(script: Path, cwd: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``streamlit run script`` on a free loopback port until its page answers; stopped by pid."""
    import httpx

    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1"]
            + ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"streamlit did not come up (see {log})")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _settle(page: Any, title: str, timeout_ms: int = 120_000) -> None:
    """Wait until ``title`` is the page's heading and its script has finished running."""
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=timeout_ms)
    page.wait_for_function(IDLE, timeout=timeout_ms)


def time_enter(page: Any, text: str, timeout_ms: int = 120_000) -> float:
    """Type ``text`` in the chat box, press Enter; seconds until the reply's message is on the page."""
    page.bring_to_front()
    before = page.get_by_test_id("stChatMessage").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    started = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(
        f"(() => {{ const m = document.querySelectorAll('[data-testid=stChatMessage]');"
        f" return m.length >= {before + 2} && m[m.length - 1].innerText.trim().length > 0; }})()",
        timeout=timeout_ms,
        polling=10,
    )
    took = time.perf_counter() - started
    page.wait_for_function(IDLE, timeout=timeout_ms)
    return took


def time_link(page: Any, label: str, title: str) -> float:
    """Click the sidebar's link ``label``; seconds until page ``title`` has rendered and finished."""
    page.bring_to_front()
    link = page.locator("[data-testid=stSidebar] a", has_text=label).first
    started = time.perf_counter()
    link.click()
    _settle(page, title)
    return time.perf_counter() - started


def time_fresh(browser: Any, url: str, title: str) -> float:
    """A new tab (a new browser context: nothing cached) opening ``url``; seconds until it has rendered."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        _settle(page, title)
        return time.perf_counter() - started
    finally:
        context.close()


def engine_turn_s(settings: Any, user: str, rounds: int) -> float:
    """The engine's own time for a chat turn (hybrid, worker thread), p50, in this process."""
    from ..lab import MemoryLab

    lab = MemoryLab(replace(settings, data_dir=settings.data_dir.parent / "engine"))
    try:
        lab.chat(user, "warm", "hello", "hybrid")
        times = []
        for i in range(rounds):
            started = time.perf_counter()
            lab.chat(user, "s1", f"I walked to the market on day {i} and bought figs.", "hybrid")
            times.append(time.perf_counter() - started)
            lab.wait_for_upkeep(user, 30)
        return statistics.median(times)
    finally:
        lab.close()


def run(quick: bool = False, progress: Say | None = None) -> dict[str, Any]:
    from ..backends.redis_server import EmbeddedRedis
    from ..config import Settings
    from ..errors import InputError

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise InputError("bench --pages needs playwright (pip install -r requirements-dev.txt)") from None
    if not Path(CHROMIUM).is_file():
        raise InputError(f"bench --pages needs headless Chromium at {CHROMIUM} (Debian: apt install chromium)")

    say = progress or (lambda _m: None)
    rounds = 2 if quick else 7
    pages = PAGES[:3] if quick else PAGES
    folder = Path(tempfile.mkdtemp(prefix="memlab-pages-"))
    server = EmbeddedRedis(folder / "redis")
    report: dict[str, Any] = {"quick": quick, "rounds": rounds}
    try:
        state = server.ensure_running()
        settings = replace(Settings(), data_dir=folder / "data", redis_url=state.url)
        say("the engine's own turn")
        report["engine_turn_ms"] = round(engine_turn_s(settings, "engine", rounds) * 1000, 1)
        (folder / "floor").mkdir()
        floor_script = folder / "floor" / "floor.py"
        floor_script.write_text(FLOOR, encoding="utf-8")
        env = dict(os.environ, MEMLAB_DATA_DIR=str(settings.data_dir), REDIS_URL=state.url, HF_HUB_OFFLINE="1")
        with (
            streamlit(floor_script, floor_script.parent, env, folder / "floor.log") as floor,
            streamlit(app_root() / "app.py", app_root(), env, folder / "app.log") as app,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                report |= _measure(browser, floor, app, pages, rounds, say)
            finally:
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return finish_report(report, targets(report))


def _measure(browser: Any, floor: str, app: str, pages: list[tuple[str, str]], rounds: int, say: Say) -> dict[str, Any]:
    """Each measurement alternates floor and app, so drift on the shared machine falls on both."""
    out: dict[str, Any] = {}
    contexts = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2)]
    floor_page, app_page = (c.new_page() for c in contexts)
    floor_page.goto(floor)
    _settle(floor_page, "Floor chat")
    app_page.goto(app + "chat?user=pagebench&session=s1&strategy=hybrid")
    _settle(app_page, "Chat playground", 180_000)
    say("Enter → reply rendered")
    time_enter(floor_page, "warm up")
    time_enter(app_page, "warm up: load the model")
    enter: dict[str, list[float]] = {"floor": [], "app": []}
    for i in range(rounds):
        text = f"I walked to the market on day {i} and bought figs."
        enter["floor"].append(time_enter(floor_page, text))
        enter["app"].append(time_enter(app_page, text))
    out["enter_ms"] = {k: round(statistics.median(v) * 1000, 1) for k, v in enter.items()}
    say("page changes")
    floor_changes: list[float] = []
    changes: dict[str, list[float]] = {title: [] for _, title in pages}
    nav = dict(_nav_labels())
    for _ in range(rounds):
        for path, title in pages:
            floor_changes.append(time_link(floor_page, "Floor other", "Floor other"))
            floor_changes.append(time_link(floor_page, "Floor chat", "Floor chat"))
            changes[title].append(time_link(app_page, nav[path], title))
    out["page_change_ms"] = {"floor": round(statistics.median(floor_changes) * 1000, 1)}
    out["page_change_ms"] |= {title: round(statistics.median(v) * 1000, 1) for title, v in changes.items()}
    say("fresh tabs")
    fresh: dict[str, list[float]] = {"floor": []}
    for _ in range(max(1, rounds // 2)):
        fresh["floor"].append(time_fresh(browser, floor, "Floor chat"))
        for path, title in pages:
            fresh.setdefault(title, []).append(time_fresh(browser, f"{app}{path}?user=pagebench", title))
    out["fresh_tab_ms"] = {k: round(statistics.median(v) * 1000, 1) for k, v in fresh.items()}
    for c in contexts:
        c.close()
    return out


def _nav_labels() -> list[tuple[str, str]]:
    """(path, the sidebar link's label) of each page: the labels are shorter than some titles."""
    labels = ["Home", "Chat playground", "Compare", "Redis keys", "Summaries", "Vector memory", "Audit trail"]
    return list(zip([p for p, _ in PAGES], [*labels, "Recall Lab"]))


def targets(report: dict[str, Any]) -> list[Target]:
    target = Target
    rows = []
    enter, engine = report["enter_ms"], report["engine_turn_ms"]
    rows.append(
        target(
            "Enter → reply rendered / (floor's + engine's own turn)",
            round(enter["app"] / (enter["floor"] + engine), 2),
            1.5,
            "lower",
        )
    )
    changes = report["page_change_ms"]
    for title, ms in changes.items():
        if title != "floor":
            rows.append(target(f"page change to {title} / floor's", round(ms / changes["floor"], 2), 1.5, "lower"))
    for title, ms in report["fresh_tab_ms"].items():
        if title != "floor":
            rows.append(target(f"fresh tab on {title}", round(ms / 1000, 2), 2, "lower", " s"))
    return rows


def render(report: dict[str, Any]) -> str:
    enter, changes, fresh = report["enter_ms"], report["page_change_ms"], report["fresh_tab_ms"]
    lines = [
        f"Memory Lab page bench{' (quick)' if report['quick'] else ''} — {report['machine']['cpus']} CPUs, "
        f"load {report['machine']['load_1min']} at the end (a shared machine: numbers are noisy); "
        f"p50 of {report['rounds']} each, headless Chromium",
        "",
        f"Enter → reply rendered: floor {enter['floor']} ms, Chat playground {enter['app']} ms "
        f"(the engine's own hybrid turn: {report['engine_turn_ms']} ms)",
        f"Page change (sidebar link → page rendered, script finished): floor {changes['floor']} ms",
    ]
    lines += [f"  {title:<20} {ms:>8.1f} ms" for title, ms in changes.items() if title != "floor"]
    lines.append(f"Fresh tab (new browser context → page rendered): floor {fresh['floor']} ms")
    lines += [f"  {title:<20} {ms:>8.1f} ms" for title, ms in fresh.items() if title != "floor"]
    lines += ["", "Targets:"]
    for t in report["targets"]:
        mark = "✓" if t["met"] else "✗"
        op = "≤" if t["better"] == "lower" else "≥"
        lines.append(f"  {mark} {t['name']}: {t['value']:g}{t['unit']} ({op} {t['limit']:g}{t['unit']})")
    return "\n".join(lines)


def main(quick: bool = False, as_json: bool = False, plot: str | None = None) -> int:
    """``bench --pages``: run and print the report (text or JSON)."""
    report = run(quick=quick, progress=None if as_json else lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0
