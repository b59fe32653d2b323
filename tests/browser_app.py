"""What the browser tests share: `streamlit run` on a free port, headless Chromium, and waiting for a run to end.

One app process and one Chromium serve every browser module (the session-scoped
``walkthrough`` and ``chromium`` fixtures in conftest.py): starting the app and
loading the model in it cost more than most checks. The app runs on a Redis of
its own (other tests flush theirs), with the users of :func:`populate`; a test
that stores more writes under a user of its own through ``walkthrough.settings``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from memory.backends.redis_server import free_port
from memory.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCRIPT = "Here is my script:\n```python\ndef greet(name):\n    if name:\n        print(f'hi {name}')\n```"

# Counts the app's script runs from the moment it is installed (once per document): the root element says
# whether a run is going on, and a click's run starts only when the server answers, maybe seconds later on a
# busy machine; until then the page still says "not running" (a page change has even cleared the page).
_WATCH = """(() => {
  if (window.__memlabRuns !== undefined) return;
  window.__memlabRuns = 0;
  window.__memlabSeen = 0;
  const attach = () => {
    const app = document.querySelector('[data-testid=stApp]');
    if (!app) return false;
    new MutationObserver(() => {
      if (app.dataset.testScriptState !== 'notRunning') window.__memlabRuns += 1;
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
    return true;
  };
  if (!attach()) {
    const timer = setInterval(() => { if (attach()) clearInterval(timer); }, 10);
  }
})()"""
_STARTED = (
    "window.__memlabRuns > window.__memlabSeen"
    " || document.querySelector('[data-testid=stApp]')?.dataset.testScriptState !== 'notRunning'"
)
_RUN_OVER = (
    "(() => { const app = document.querySelector('[data-testid=stApp]');"
    " return !!app && app.dataset.testScriptState === 'notRunning'"
    " && app.dataset.testConnectionState === 'CONNECTED'"
    " && !document.querySelector('[data-testid=stSpinner]'); })()"
)


@dataclass(frozen=True)
class ServedApp:
    url: str  # ends in "/"
    settings: Settings  # the app's Redis and data folder, for a test that stores through the engine


def serve(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port; yields its URL and stops it by process group."""
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(url + "_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not come up: " + (tmp_path / "streamlit.log").read_text()[-2000:])
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def launch(playwright: Any) -> Any:
    """Headless Debian Chromium with the flags this machine needs (no background networking)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def new_page(browser: Any, **context: Any) -> Any:
    """A page in a context of its own (cookies, theme) that counts the app's runs from its first moment."""
    page = browser.new_context(**context).new_page()
    page.context.add_init_script(_WATCH)
    return page


def idle(page: Any, start_s: float = 2.0) -> None:
    """Wait until the run the last action started is over (and its spinners gone).

    A run counts when it began after the previous call returned; an action that starts none (typing in a box,
    opening a tab) is given ``start_s`` to start one.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.evaluate(_WATCH)
    try:
        page.wait_for_function(_STARTED, timeout=start_s * 1000)
    except PlaywrightTimeout:
        pass
    page.wait_for_function(_RUN_OVER, timeout=120_000)
    page.evaluate("window.__memlabSeen = window.__memlabRuns")


def say(page: Any, url: str, text: str) -> None:
    """Open the chat page at ``url``, send ``text`` and wait for the reply."""
    page.goto(url)
    page.wait_for_selector("text=Backends", timeout=120_000)
    before = page.get_by_test_id("stChatMessage").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=stChatMessage]').length >= {before + 2}", timeout=120_000
    )


def populate(settings: Settings) -> None:
    """Users ``maya`` (facts, a fold, past sessions, a code block) and ``jonas`` (turns at a tight hybrid budget)."""
    from memory.lab import MemoryLab

    lab = MemoryLab(replace(settings, upkeep_mode="inline"))
    try:
        small = lab.default_config().with_(summary_threshold=4, summary_keep=2)
        for text in (
            "Hi, I'm Maya. I live in Lisbon and work at Klarna as a data engineer.",
            "My favorite food is ramen.",
            "I'm planning a trip to Kyoto in April with my sister.",
        ):
            lab.chat("maya", "s1", text, strategy="hybrid", config=small)
        for text in ("I moved to Malmö last month.", SCRIPT, "Where do I live?"):
            lab.chat("maya", "s2", text, strategy="hybrid", config=small)
        scenario = json.loads((ROOT / "scenarios" / "life_changes.json").read_text())
        tight = lab.default_config().with_(token_budget=300)
        for turn in scenario["turns"]:
            lab.chat("jonas", f"j{turn.get('session', '1')}", turn["user"], strategy="hybrid", config=tight)
    finally:
        lab.close()
