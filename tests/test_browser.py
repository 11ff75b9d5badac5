"""The built book in a real browser: headless Chromium (Debian's) driven by Playwright.

Every page of the table of contents is opened from a local server: it loads
with no console error and no failed request, its formulas are typeset, the
MXNet/PyTorch tabs switch every tab set on the page (and the choice carries to
the next page), it fits a phone's width, and a screenshot of it is written to
``_build/screenshots/``. Needs ``make book`` first (``make test`` does it).
"""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from playwright.sync_api import sync_playwright

from chapters import BOOK, chapters

HTML = BOOK.parent / "_build" / "html"
SCREENSHOTS = BOOK.parent / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic would fail on a machine without a network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """The base URL of ``_build/html`` served on localhost."""
    assert (HTML / "index.html").exists(), "the book is not built: run `make book` (or `make test`, which builds it)"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A page opened in a fresh context, with its console errors and failed requests collected."""

    def __init__(self, browser, url, viewport=None):
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(f"console: {message.text} ({message.location.get('url')})"))
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        # A request that the next navigation cancels (ERR_ABORTED) has not failed.
        self.page.on("requestfailed", lambda request: "ERR_ABORTED" not in (request.failure or "") and self.errors.append(f"request failed: {request.url} {request.failure}"))
        self.page.on("response", lambda response: response.status >= 400 and self.errors.append(f"HTTP {response.status}: {response.url}"))
        self.goto(url)

    def goto(self, url):
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url}: HTTP {response.status if response else 'no response'}"
        # MathJax typesets after load; wait until it has, where the page has formulas.
        self.page.wait_for_function("() => !window.MathJax || !window.MathJax.Hub || window.MathJax.Hub.queue.pending === 0 && window.MathJax.Hub.queue.running === 0")

    def close(self):
        self.context.close()


def toc_links(page, base):
    """The page addresses of the primary sidebar's table of contents, in order."""
    hrefs = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.href)")
    pages = []
    for href in hrefs:
        address = urljoin(base, urlparse(href).path)
        if address not in pages:
            pages.append(address)
    return pages


def _visible(page, framework):
    """How many of the page's cells of ``framework`` are shown, and how many there are."""
    return page.evaluate(
        """framework => {
            const cells = [...document.querySelectorAll('div.cell.tag_' + framework)];
            return [cells.filter(cell => cell.offsetParent !== null).length, cells.length];
        }""",
        framework,
    )


def test_the_table_of_contents_lists_every_chapter_and_every_link_resolves(site, browser):
    visit = Visit(browser, site + "index.html")
    visit.page.wait_for_url(re.compile(r"/book/intro\.html$"))  # the root page forwards to the introduction
    pages = toc_links(visit.page, site)
    for chapter in chapters():
        assert any(page.endswith(f"/book/{chapter.stem}.html") for page in pages), f"{chapter.stem} is not in the sidebar: {pages}"
    for page in pages:
        visit.goto(page)
    assert not visit.errors, visit.errors
    visit.close()


def test_every_page_names_its_icon_so_no_browser_asks_for_favicon_ico():
    # Without a <link rel="icon">, Chromium requests /favicon.ico: a 404 in the
    # console, and only when the page lives long enough, so a flaky one to catch in a browser.
    pages = sorted(page for page in HTML.rglob("*.html") if "_static" not in page.parts)  # _static holds templates, not pages
    assert HTML / "index.html" in pages
    missing = [str(page.relative_to(HTML)) for page in pages if not re.search(r'<link rel="(shortcut )?icon"', page.read_text(encoding="utf-8"))]
    assert not missing, f"pages without an icon link: {missing}"


@pytest.mark.parametrize("chapter", [path.stem for path in chapters()])
def test_chapter_loads_cleanly_and_its_framework_tabs_switch_together(site, browser, chapter):
    url = f"{site}book/{chapter}.html"
    visit = Visit(browser, url)
    page = visit.page
    bars = page.locator(".framework-tabs")
    mxnet_cells = _visible(page, "mxnet")[1]
    if mxnet_cells:
        assert bars.count() >= 1, "tagged cells but no tab bar"
        # MXNet first by default: every PyTorch cell hidden, every MXNet cell shown.
        assert _visible(page, "mxnet") == [mxnet_cells, mxnet_cells] and _visible(page, "pytorch")[0] == 0
        # One click on the first tab bar switches every tab set on the page.
        bars.first.get_by_role("tab", name="PyTorch").click()
        pytorch_cells = _visible(page, "pytorch")[1]
        assert _visible(page, "pytorch") == [pytorch_cells, pytorch_cells] and _visible(page, "mxnet")[0] == 0
        assert bars.last.get_by_role("tab", name="PyTorch").get_attribute("aria-selected") == "true"
        # The choice is remembered on the next visit.
        visit.goto(url)
        assert _visible(page, "mxnet")[0] == 0 and _visible(page, "pytorch")[0] == pytorch_cells
        bars.last.get_by_role("tab", name="MXNet").click()
        assert _visible(page, "pytorch")[0] == 0 and _visible(page, "mxnet")[0] == mxnet_cells
    # Formulas are typeset (no raw TeX delimiters left in the text).
    text = page.inner_text("main")
    assert "\\(" not in text and "$$" not in text, "a formula was not typeset"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{chapter}.png"), full_page=True)
    assert not visit.errors, visit.errors
    visit.close()

    # On a phone the page does not scroll sideways (wide code scrolls in its own box).
    phone = Visit(browser, url, viewport=PHONE)
    overflow = phone.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    phone.page.screenshot(path=str(SCREENSHOTS / f"{chapter}-phone.png"))
    assert overflow <= 1, f"{chapter} is {overflow}px wider than a phone's screen"
    assert not phone.errors, phone.errors
    phone.close()
