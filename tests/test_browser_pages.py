"""Each page in a real browser, as a newcomer meets it: the app process every browser module shares.

The users ``maya`` and ``jonas`` are populated through the engine before the
app starts (tests/browser_app.py). Each check is what a screenshot of
the walkthrough showed wrong: history entries per page change, the sidebar's
controls above the fold, code in a message, the token budget, the upkeep
outcome in words, the theme switch, the Redis keys page's notes and the
charts' labels. Screenshots of every page go to artifacts/screenshots.
"""

from __future__ import annotations

import re

import pytest

from .browser_app import CHROMIUM, SHOTS, idle, new_page

DARK, LIGHT = "rgb(15, 20, 25)", "rgb(255, 255, 255)"
BACKGROUND = "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
# (link label, address path, title): the order a newcomer clicks through them
TOUR = [
    ("Redis keys", "redis_keys", "Redis keys"),
    ("Summaries", "summaries", "Summaries"),
    ("Session replay", "session_replay", "Session replay"),
    ("Vector memory", "vector_memory", "Vector memory"),
    ("Audit trail", "audit", "Audit trail"),
    ("Compare", "compare", "Compare strategies"),
    ("Recall Lab", "recall_lab", "Recall Lab"),
    ("Home", "", "Memory Lab"),
    ("Chat playground", "chat", "Chat playground"),
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'); `make test` installs it where it can",
)


@pytest.fixture()
def app(walkthrough):
    return walkthrough.url


@pytest.fixture()
def page(chromium):
    page = new_page(chromium, viewport={"width": 1400, "height": 900})
    try:
        yield page
    finally:
        page.context.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("text=Backends", timeout=120_000)
    idle(page)


def _click_link(page, label: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a", has_text=label).click()
    idle(page)


def _title(page) -> str:
    return page.get_by_role("heading", level=1).first.inner_text().strip()


def _params(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlparse

    return dict(parse_qsl(urlparse(url).query))


def _shot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its own container, so the viewport grows to hold it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        "Math.max(...['stAppScrollToBottomContainer', 'stMain', 'stSidebarContent'].map("
        "t => (document.querySelector(`[data-testid=${t}]`) || {scrollHeight: 0}).scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": min(max(900, height + 40), 8000)})
    idle(page, start_s=0.3)  # a new size starts no run: the layout settles
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 900})


def test_one_page_change_is_one_history_entry_with_that_pages_own_parameters(app, page):
    _open(page, app + "chat?user=maya&session=s2")
    seen = [(_title(page), page.url)]
    for label, path, title in TOUR:
        before = page.evaluate("history.length")
        _click_link(page, label)
        assert _title(page) == title
        assert page.evaluate("history.length") == before + 1, f"going to {title} added more than one entry"
        assert page.url.split("?")[0] == app + path
        expected = {"user": "maya", "session": "s2"} | ({"strategy": "hybrid"} if path == "chat" else {})
        assert _params(page.url) == expected, f"{title} shows another page's parameters: {page.url}"
        box = page.get_by_role("combobox", name="Session", exact=True).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, f"the session picker is below the fold on {title}"
        _shot(page, f"light-maya-{path or 'home'}")
        seen.append((title, page.url))
    for title, url in reversed(seen[:-1]):  # Back, one press per page, lands where it was
        page.go_back()
        idle(page)
        assert (_title(page), page.url) == (title, url)


def test_back_returns_to_the_session_shown_before(app, page):
    _open(page, app + "chat?user=maya&session=s2")
    page.get_by_role("combobox", name="Session", exact=True).click()
    options = page.get_by_role("option").all_inner_texts()
    assert any("Hi, I'm Maya" in o for o in options), f"sessions are listed by their first words: {options}"
    assert not any(re.fullmatch(r"s\d", o) for o in options), options
    page.get_by_role("option", name=re.compile("Hi, I'm Maya")).click()
    idle(page)
    assert _params(page.url)["session"] == "s1" and page.get_by_text("session s1").count() >= 1
    page.go_back()
    idle(page)
    assert _params(page.url)["session"] == "s2"
    assert page.get_by_text("I moved to Malmö last month.").count() >= 1, "the page shows what its address names"


def test_a_users_code_block_is_shown_as_code(app, page):
    _open(page, app + "chat?user=maya&session=s2")
    message = page.get_by_test_id("stChatMessage").filter(has_text="Here is my script")
    code = message.get_by_test_id("stCode")
    code.first.wait_for(timeout=30_000)
    assert code.count() == 1
    assert "def greet(name):\n    if name:\n        print(f'hi {name}')" in code.inner_text()
    assert "```" not in message.inner_text()


def _open_traces(page) -> list[str]:
    """Open every 'What the model saw' panel, one by one (each draws when opened); their context lines."""
    panels = page.locator("summary", has_text="What the model saw")
    for i in range(panels.count()):
        panels.nth(i).click()
        idle(page)
    return page.locator("strong", has_text=re.compile(r"^Context: ~")).all_inner_texts()


def test_the_hybrid_context_bar_keeps_the_budget(app, page):
    _open(page, app + "chat?user=jonas&session=j3")
    titles = _open_traces(page)
    assert len(titles) == 5, titles
    for title in titles:
        used, budget = (int(n.replace(",", "")) for n in re.findall(r"~([\d,]+) tokens of the ([\d,]+)", title)[0])
        assert budget == 300 and used <= budget, title
    _shot(page, "light-jonas-chat-traces")


def test_the_upkeep_outcome_is_said_in_words_with_the_json_one_click_away(app, page):
    _open(page, app + "chat?user=maya&session=s1")
    page.locator("summary", has_text="What the model saw").first.click()
    idle(page)
    said = page.get_by_text(
        re.compile(
            "^Facts: remembered “You're Maya.”; remembered “You live in Lisbon and work at Klarna as a data engineer.”"
        )
    ).first
    said.wait_for(timeout=30_000)
    assert page.get_by_text("This session's episode summary now includes the turn.").count() == 1
    page.get_by_role("button", name=re.compile("The outcome as JSON")).first.click()
    json_view = page.get_by_test_id("stJson")
    json_view.first.wait_for(timeout=30_000)
    assert "fact_events" in json_view.first.inner_text()


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _dot_contrast(page, background: tuple[int, int, int]) -> float:
    """WCAG contrast of a fact dot on the map (its colour blended by its opacity) against the background."""
    point = page.locator("[data-testid=stPlotlyChart] .scatterlayer .trace .point").first
    point.wait_for(timeout=30_000)
    fill, opacity = point.evaluate("p => [getComputedStyle(p).fill, getComputedStyle(p).opacity]")
    alpha = float(opacity)
    shown = [alpha * float(c) + (1 - alpha) * b for c, b in zip(re.findall(r"[\d.]+", fill)[:3], background)]
    lighter, darker = sorted((_luminance(tuple(shown)), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_theme_switch_changes_the_page_in_place_and_is_kept(app, page):
    _open(page, app + "?user=maya&session=s1")
    assert page.evaluate(BACKGROUND) == LIGHT, "no choice made: the system's light setting"
    page.evaluate("window.__not_reloaded = true")
    page.get_by_test_id("stSidebar").locator("button", has_text="Dark").click()
    page.wait_for_function(f"{BACKGROUND} === '{DARK}'", timeout=30_000)
    assert page.evaluate("window.__not_reloaded"), "the switch reloaded the page (its state would be lost)"
    for label, path, title in TOUR:
        _click_link(page, label)
        assert page.evaluate(BACKGROUND) == DARK, f"{title} is not dark after the switch"
        if path == "vector_memory":
            assert _dot_contrast(page, (15, 20, 25)) >= 4.5, "the map's fact dots sink into the dark background"
        _shot(page, f"dark-maya-{path or 'home'}")
    page.reload()
    page.wait_for_selector("text=Backends", timeout=120_000)
    page.wait_for_function(f"{BACKGROUND} === '{DARK}'", timeout=30_000)
    page.get_by_test_id("stSidebar").locator("button", has_text="Light").click()
    page.wait_for_function(f"{BACKGROUND} === '{LIGHT}'", timeout=30_000)


def test_redis_keys_says_what_is_normal_and_counts_every_key(app, page):
    _open(page, app + "redis_keys?user=maya&session=s1")
    assert page.get_by_test_id("stAlertContentWarning").count() == 0, "a normal state is no warning"
    assert page.get_by_text(re.compile("Long-term keys \\(marked ∞")).count() == 1
    page.get_by_role("tab", name="Other libraries' memory").click()
    idle(page)
    note = page.get_by_text(re.compile("No other library's chat memory in this Redis")).inner_text()
    count = int(re.search(r"all ([\d,]+) keys", note).group(1).replace(",", ""))
    assert count > 0, note
    pattern = page.get_by_role("textbox", name="Pattern (Redis glob)")
    assert pattern.input_value() == "memlab:*{maya[:}]*"
    _click_link(page, "Summaries")
    _click_link(page, "Redis keys")
    assert pattern.input_value() == "memlab:*{maya[:}]*", "back on the page, the pattern (and the table) is maya's"
    page.get_by_role("combobox", name="Key", exact=True).click()
    page.keyboard.type("s1}:meta")
    page.get_by_role("option", name=re.compile(r"s1\}:meta$")).first.click()
    idle(page)
    tree = page.get_by_test_id("stJson").first.inner_text()
    assert re.search(r'"\w+_iso"\s*:\s*"\d{4}-\d\d-\d\dT', tree), tree  # a moment has its date beside it
    _shot(page, "light-maya-redis_keys-json")
    page.get_by_role("tab", name="Memory analysis").click()
    idle(page)
    _shot(page, "light-maya-redis_keys-memory")


def test_bar_labels_are_level_and_compare_takes_every_strategy(app, page):
    _open(page, app + "audit?user=maya&session=s1")
    labels = page.locator("[data-testid=stPlotlyChart] .bartext")
    labels.first.wait_for(timeout=30_000)
    transforms = [labels.nth(i).get_attribute("transform") or "" for i in range(labels.count())]
    assert transforms and not any("rotate" in t for t in transforms), transforms
    _open(page, app + "compare?user=maya&session=s1")
    chosen = page.locator(".st-key-cmp_strategies").get_by_test_id("stMultiSelect").inner_text()
    assert all(name in chosen for name in ("buffer", "summary", "facts", "episodic", "hybrid")), chosen


def test_every_page_opens_for_a_user_with_nothing_stored_in_both_themes(app, page):
    """A newcomer's first look: no page errors for an empty user, light or dark (the screenshots are looked at)."""
    _open(page, app + "?user=newcomer&session=s1")
    for theme, colour in (("light", LIGHT), ("dark", DARK)):
        if theme == "dark":
            page.get_by_test_id("stSidebar").locator("button", has_text="Dark").click()
            page.wait_for_function(f"{BACKGROUND} === '{colour}'", timeout=30_000)
        for label, path, title in TOUR:
            _click_link(page, label)
            assert _title(page) == title and page.evaluate(BACKGROUND) == colour
            assert page.get_by_test_id("stException").count() == 0, f"{title} fails for an empty user"
            assert _params(page.url)["user"] == "newcomer"
            _shot(page, f"{theme}-empty-{path or 'home'}")


def test_the_picker_shows_a_strategys_whole_description_and_only_its_settings(app, page):
    from memory.strategies import STRATEGIES

    _open(page, app + "chat?user=maya&session=s1&strategy=buffer")
    assert page.get_by_text(STRATEGIES["buffer"].description, exact=True).count() == 1
    page.locator("summary", has_text="Strategy settings").click()
    idle(page)
    settings = page.get_by_test_id("stExpanderDetails").first
    assert settings.get_by_text("Buffer size N (messages)").count() == 1
    assert settings.get_by_text("Top-k facts and turns").count() == 0, "a setting buffer does not use"
    shown = settings.get_by_role("combobox", name="Expires when idle for").input_value()
    assert shown == "7 days", shown
    _shot(page, "light-maya-chat-buffer-settings")


def test_compare_runs_every_strategy_and_says_what_reached_the_context(app, page):
    _open(page, app + "compare?user=maya&session=s1")
    page.get_by_role("button", name="Run comparison").click()
    page.get_by_text(re.compile("^reached the context: ")).first.wait_for(timeout=240_000)
    idle(page)
    reached = page.get_by_text(re.compile("^reached the context: \\d+%$")).all_inner_texts()
    assert len(reached) == 5, reached
    assert page.locator("[data-testid=stMetricDelta]").count() == 0, "no arrow: reaching the context is no change"
    _shot(page, "light-maya-compare-results")
