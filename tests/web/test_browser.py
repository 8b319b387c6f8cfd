"""The catalog in a real browser: Debian's chromium, headless, driven by Playwright's client.

The catalog runs as ``samverka hub web`` (a real process, the real uvicorn server)
against the seeded hub. The browser comes from the project's set-up (``make browser``,
which ``make test`` runs); it is never downloaded by Playwright. A missing browser
FAILS these tests: it is a broken set-up, not a reason to skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from webkit import FALUN, KUNGSBACKA, Federation

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def catalog_url(federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``samverka hub web`` on a free loopback port, stopped (SIGTERM) afterwards."""
    folder = tmp_path_factory.mktemp("hub-web")
    address_file = folder / "address.json"
    log = open(folder / "web.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "samverka", "hub", "web", "--dir", str(federation.hub.dir),
         "--listen", "127.0.0.1:0", "--address-file", str(address_file)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "SAMVERKA_LOG_FORMAT": "json"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not address_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"hub web did not start:\n{(folder / 'web.log').read_text()}")
            time.sleep(0.05)
        yield "http://" + json.loads(address_file.read_text())["web"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0, (folder / "web.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser` (make test does) to install Debian's "
            "chromium; the browser tests never download one",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="sv-SE", viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # e.g. a Content-Security-Policy violation
            problems.append(message.text)

    opened.on("console", on_console)
    opened.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        yield opened
    finally:
        context.close()
    assert problems == [], problems


def result_titles(page: Page) -> list[str]:
    return page.locator("#resultat .result-title a").all_inner_texts()


def test_search_for_a_swedish_term_finds_the_records(page: Page, catalog_url: str) -> None:
    page.goto(catalog_url + "/")
    page.get_by_label("Sök bland användningsfall").fill("äldreomsorg")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sok?q=*")
    assert "Taligenkänning för dokumentation i hemtjänsten" in result_titles(page)
    page.goto(catalog_url + "/sok?q=copilot")
    titles = result_titles(page)
    assert "Pilot med Microsoft 365 Copilot i administrationen" in titles
    assert "Copilot kräver ordning i behörigheterna" in titles


def test_filters_narrow_the_list(page: Page, catalog_url: str) -> None:
    page.goto(catalog_url + "/sok?q=AI")
    everything = result_titles(page)
    assert len(everything) >= 4
    page.get_by_label("Pilot", exact=True).check()
    page.get_by_role("button", name="Visa träffar").click()
    page.wait_for_url("**status=pilot**")
    assert result_titles(page) == ["Pilot med Microsoft 365 Copilot i administrationen"]
    page.get_by_label("Pilot", exact=True).uncheck()
    page.get_by_label("Verksamhetsområde").select_option(label="IT och digitalisering")
    page.get_by_role("button", name="Visa träffar").click()
    page.wait_for_url("**area=it**")
    assert result_titles(page) == ["Delad AI-assistent för kommunens medarbetare"]
    assert page.get_by_role("heading", name="1 träff").is_visible()


def test_record_page_shows_the_verified_signature(
    page: Page, catalog_url: str, federation: Federation
) -> None:
    page.goto(catalog_url + f"/post/{KUNGSBACKA}/uc-delad-assistent")
    mark = page.get_by_role("heading", name="Signatur verifierad")
    assert mark.is_visible()
    key_id = federation.members[KUNGSBACKA].key.key_id
    assert page.locator(".signature .key-id").inner_text() == key_id
    with page.expect_download() as download:
        page.get_by_role("link", name="Ladda ner den signerade posten").click()
    assert download.value.suggested_filename == f"{KUNGSBACKA}-uc-delad-assistent.samverka-entry"


def test_coverage_chart_renders_290_kommuner(page: Page, catalog_url: str) -> None:
    page.goto(catalog_url + "/tackning")
    chart = page.locator("svg.coverage")
    assert chart.is_visible()
    assert chart.locator("rect.kommun").count() == 290
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 300
    assert page.locator("svg.coverage rect.level-3").count() == 2
    assert page.get_by_role("img", name="Kommuner som delar AI-användningsfall").count() == 1
    page.get_by_text("Visa tabellen med alla 290 kommuner").click()
    assert page.locator("table.kommun-table tbody tr").count() == 290


def test_keyboard_reaches_the_search_box_and_the_results(page: Page, catalog_url: str) -> None:
    page.goto(catalog_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Hoppa till innehållet"
    page.keyboard.press("Enter")  # the skip link: focus moves to <main>
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("Copilot")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sok?q=Copilot")
    reached = ""
    for _ in range(40):
        page.keyboard.press("Tab")
        reached = page.evaluate(
            "document.activeElement.closest('#resultat') ? document.activeElement.href : ''"
        )
        if reached:
            break
    assert "/post/" in reached, "Tab never reached a search result"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("Enter")
    page.wait_for_url("**/post/**")
    assert page.locator("h1").count() == 1


def test_phone_screen_has_no_horizontal_scroll(browser: Browser, catalog_url: str) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        for path in [
            "/",
            "/sok?q=AI",
            f"/post/{KUNGSBACKA}/uc-delad-assistent",
            f"/post/{FALUN}/uc-hostile",
            f"/kommun/{KUNGSBACKA}",
            "/tackning",
            "/beprovat?min=1",
            "/om",
        ]:
            phone.goto(catalog_url + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
    finally:
        context.close()


def test_hostile_record_runs_nothing(page: Page, catalog_url: str) -> None:
    page.goto(catalog_url + f"/post/{FALUN}/uc-hostile")
    assert page.title().startswith('<script>alert("xss")</script> Chattbot')
    assert page.locator("script").count() == 0
    assert page.locator("h1").inner_text().startswith("<script>")
    # the page fixture fails the test on any dialog, page error or CSP violation
