"""The built book in a real browser: headless Chromium (Debian's) driven by Playwright.

Every page of the table of contents is opened from a local server: it loads
with no console error and no failed request, its formulas are typeset, the
MXNet/PyTorch tabs switch every tab set on the page (and the choice carries to
the next page), by mouse and by keyboard, no code block scrolls sideways at
1280 px, no code cell shows the book's ``glue(...)`` plumbing, the chapters show
no project status (failed targets, missing measurements), it fits a phone's
width, and a screenshot of it is written to ``_build/screenshots/``. Chapter 2's
window explorer is driven and its output sizes compared with poolkit's. Needs
``make book`` first (``make test`` does it).
"""

import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest
import yaml
from playwright.sync_api import sync_playwright

import poolkit

from chapters import BOOK, chapters

HTML = BOOK.parent / "_build" / "html"
SCREENSHOTS = BOOK.parent / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic would fail on a machine without a network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
FRAMEWORKS = ("pytorch", "mxnet")  # the tabs' order; PyTorch is the default, as in the notebooks
TABBED = [path.stem for path in chapters() if ":tags: [mxnet]" in path.read_text(encoding="utf-8")]


def toc_pages():
    """Every page of ``_toc.yml`` (its root, then each file), as paths under ``_build/html``."""
    toc = yaml.safe_load((BOOK.parent / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    return [f"{file}.html" for file in files]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A page closed while one of its requests was still being answered: the browser hung up, the book is fine.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def site():
    """The base URL of ``_build/html`` served on localhost."""
    assert (HTML / "index.html").exists(), "the book is not built: run `make book` (or `make test`, which builds it)"
    server = _Server(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
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
        self.context = browser.new_context(viewport=viewport or DESKTOP)
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
        # PyTorch by default, as in the notebooks: every MXNet cell hidden, every PyTorch cell shown.
        pytorch_cells = _visible(page, "pytorch")[1]
        assert _visible(page, "pytorch") == [pytorch_cells, pytorch_cells] and _visible(page, "mxnet")[0] == 0
        # One click on the first tab bar switches every tab set on the page.
        bars.first.get_by_role("tab", name="MXNet").click()
        assert _visible(page, "mxnet") == [mxnet_cells, mxnet_cells] and _visible(page, "pytorch")[0] == 0
        assert bars.last.get_by_role("tab", name="MXNet").get_attribute("aria-selected") == "true"
        # The choice is remembered on the next visit.
        visit.goto(url)
        assert _visible(page, "pytorch")[0] == 0 and _visible(page, "mxnet")[0] == mxnet_cells
        bars.last.get_by_role("tab", name="PyTorch").click()
        assert _visible(page, "mxnet")[0] == 0 and _visible(page, "pytorch")[0] == pytorch_cells
    # Formulas are typeset (no raw TeX delimiters left in the text).
    text = page.inner_text("main")
    assert "\\(" not in text and "$$" not in text, "a formula was not typeset"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{chapter}.png"), full_page=True)
    assert not visit.errors, visit.errors
    visit.close()

    # On a phone the page does not scroll sideways (long code lines wrap; the explorer scrolls in its own box).
    phone = Visit(browser, url, viewport=PHONE)
    overflow = phone.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    phone.page.screenshot(path=str(SCREENSHOTS / f"{chapter}-phone.png"))
    assert overflow <= 1, f"{chapter} is {overflow}px wider than a phone's screen"
    assert not phone.errors, phone.errors
    phone.close()


def _tab_state(page):
    """For every tab bar: its tabs' framework, aria-selected and tabIndex, and whether the panel each controls is shown."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.framework-tabs')].map(bar =>
            [...bar.querySelectorAll('[role=tab]')].map(tab => {
                const panel = document.getElementById(tab.getAttribute('aria-controls'));
                return [tab.dataset.framework, tab.getAttribute('aria-selected'), tab.tabIndex,
                        panel.getAttribute('role'), panel.getAttribute('aria-labelledby') === tab.id, !panel.hidden];
            }))"""
    )


def _assert_selected(page, framework):
    """Every tab set shows ``framework`` alone: its tab selected and in the tab order, the other out of it."""
    for bar in _tab_state(page):
        assert [tab[0] for tab in bar] == list(FRAMEWORKS)
        for name, selected, tab_index, role, labelled, shown in bar:
            chosen = name == framework
            assert (selected, tab_index, shown) == (str(chosen).lower(), 0 if chosen else -1, chosen), bar
            assert role == "tabpanel" and labelled, bar
    other = FRAMEWORKS[1 - FRAMEWORKS.index(framework)]
    assert _visible(page, framework)[0] == _visible(page, framework)[1] > 0 and _visible(page, other)[0] == 0
    focused = page.evaluate("() => [document.activeElement.getAttribute('role'), document.activeElement.dataset.framework]")
    assert focused == ["tab", framework], f"focus is on {focused}, not on the {framework} tab"


@pytest.mark.parametrize("chapter", TABBED)
def test_framework_tabs_work_by_keyboard(site, browser, chapter):
    # The WAI-ARIA tabs pattern: the selected tab alone is in the tab order, the arrow keys
    # move to the next or previous tab (wrapping), Home and End to the first and last, and
    # the tab that gets the focus is selected, in every tab set of the page.
    visit = Visit(browser, f"{site}book/{chapter}.html")
    page = visit.page
    page.focus(".framework-tabs [role=tab][aria-selected=true]")
    _assert_selected(page, "pytorch")
    for key, framework in [("ArrowRight", "mxnet"), ("ArrowRight", "pytorch"), ("ArrowLeft", "mxnet"), ("Home", "pytorch"), ("End", "mxnet"), ("ArrowLeft", "pytorch")]:
        page.keyboard.press(key)
        _assert_selected(page, framework)
    # Tab leaves the tab list for the shown panel, not for the unselected tab.
    page.keyboard.press("Tab")
    assert page.evaluate("() => [document.activeElement.getAttribute('role'), document.activeElement.dataset.framework]") == ["tabpanel", "pytorch"]
    assert not visit.errors, visit.errors
    visit.close()


# Every <pre> that is wider than its box, with the start of its longest line; collapsed cells opened first.
OVERFLOWING_PRE = """() => {
    document.querySelectorAll('details').forEach(details => { details.open = true; });
    return [...document.querySelectorAll('pre')].filter(pre => pre.scrollWidth > pre.clientWidth).map(pre =>
        `${pre.scrollWidth}px in ${pre.clientWidth}px: ` + pre.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a).slice(0, 80));
}"""


@pytest.mark.parametrize("page_path", toc_pages())
def test_no_code_block_scrolls_sideways_at_1280_px(site, browser, page_path):
    # The point of a cell is often at the end of its line: a block cut off on the right hides it.
    visit = Visit(browser, site + page_path)
    page = visit.page
    tabs = page.locator(".framework-tabs").count()
    for framework in FRAMEWORKS if tabs else [None]:
        if framework:  # the hidden tab's code has no width: measure each framework's shown
            page.locator(f".framework-tabs [role=tab][data-framework={framework}]").first.click()
        overflowing = page.evaluate(OVERFLOWING_PRE)
        assert not overflowing, f"{page_path} ({framework or 'no tabs'}): {len(overflowing)} code blocks scroll sideways at 1280 px: {overflowing}"
    assert not visit.errors, visit.errors
    visit.close()


@pytest.mark.parametrize("page_path", toc_pages())
def test_no_code_cell_shows_glue(site, browser, page_path):
    # glue(...) is how the book hands computed numbers to its prose: plumbing, not a lesson.
    # Every code cell on the page counts, shown or behind a tab or a toggle.
    visit = Visit(browser, site + page_path)
    blocks = visit.page.evaluate("() => [...document.querySelectorAll('div.highlight')].map(block => block.textContent)")
    glued = [line.strip()[:100] for block in blocks for line in block.splitlines() if "glue(" in line]
    assert not glued, f"{page_path}: {len(glued)} lines of glue(...) shown to readers, e.g. {glued[:3]}"
    visit.close()


@pytest.mark.parametrize("chapter", [path.stem for path in chapters()])
def test_chapters_show_no_project_status(site, browser, chapter):
    # A course page teaches; the project's own targets and missing measurements belong in bench/.
    visit = Visit(browser, f"{site}book/{chapter}.html")
    page = visit.page
    # Every text node, shown or in the hidden tab, apart: a table's cells must not run together.
    text = page.evaluate(
        """() => {
            const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
            const parts = [];
            while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
            return parts.join('\\n');
        }"""
    )
    found = [phrase for phrase in ("not measured", "No GPU results", "none have been measured") if phrase.lower() in text.lower()]
    found += re.findall(r"\bFAIL\b", text)
    assert not found, f"{chapter} shows the project's status: {found}"
    headers = page.evaluate("() => [...document.querySelectorAll('main table')].map(table => [...table.querySelectorAll('th')].map(th => th.textContent.trim().toLowerCase()))")
    targets = [row for row in headers if any("target" in cell for cell in row)]
    assert not targets, f"{chapter} has a performance-target table: {targets}"
    visit.close()


def _explore(page, n, k, s, p, d, ceil):
    for key, value in zip("nkspd", (n, k, s, p, d)):
        page.fill(f"#we-{key}", str(value))
    page.set_checked("#we-ceil", ceil)
    return _explorer_state(page)


def _explorer_state(page):
    return page.evaluate(
        """() => {
            const root = document.getElementById('window-explorer');
            const size = name => root.querySelector(`.we-size[data-framework=${name}]`);
            const error = root.querySelector('.we-error');
            return {
                pytorch: size('pytorch').dataset.size, mxnet: size('mxnet').dataset.size,
                text: root.querySelector('.we-results').textContent,
                error: error.hidden ? '' : error.textContent,
                differs: root.querySelector('.we-verdict').classList.contains('we-differs'),
                rows: root.querySelectorAll('.we-grid tbody tr').length,
                marked: root.querySelectorAll('.we-grid tbody tr.we-only').length,
            };
        }"""
    )


def _mxnet_size(n, k, s, p, ceil):
    """MXNet's output length (poolkit.mxnet_pooling is mx.nd.Pooling), or None where it refuses."""
    try:
        out = poolkit.mxnet_pooling(np.zeros((1, 1, n)), kernel=(k,), stride=(s,), pad=(p,), pooling_convention="full" if ceil else "valid")
    except ValueError:
        return None
    return out.shape[-1]


def _pytorch_size(n, k, s, p, d, ceil):
    try:
        return poolkit.pool_output_size(n, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    except ValueError:
        return None


def test_window_explorer_gives_both_frameworks_output_sizes(site, browser):
    visit = Visit(browser, f"{site}book/02-padding-and-stride.html")
    page = visit.page
    cases = [
        (5, 2, 2, 1, 1, True),   # the chapter's example: PyTorch drops a window that MXNet's 'full' keeps
        (7, 3, 2, 1, 1, True),   # ceil mode where the two agree
        (4, 2, 2, 0, 1, False),  # rounding down, both frameworks
        (9, 3, 2, 1, 1, True),   # ceil mode with a window hanging over the end
        (6, 2, 3, 1, 1, True),   # a stride larger than the window
        (10, 3, 3, 1, 2, False),  # dilation: PyTorch only, MXNet's Pooling has none
        (5, 3, 2, 2, 1, True),   # padding over half the window: MXNet only
    ]
    differing = 0
    for n, k, s, p, d, ceil in cases:
        state = _explore(page, n, k, s, p, d, ceil)
        expected_pt, expected_mx = _pytorch_size(n, k, s, p, d, ceil), (_mxnet_size(n, k, s, p, ceil) if d == 1 else None)
        case = f"n={n} k={k} s={s} p={p} d={d} ceil={ceil}: {state}"
        assert state["pytorch"] == ("" if expected_pt is None else str(expected_pt)), case
        assert state["mxnet"] == ("" if expected_mx is None else str(expected_mx)), case
        assert not state["error"], case
        # Every window is drawn, and where the sizes differ the extra windows are marked.
        assert state["rows"] == max(expected_pt or 0, expected_mx or 0), case
        both = expected_pt is not None and expected_mx is not None
        assert state["differs"] == (both and expected_pt != expected_mx), case
        assert state["marked"] == (abs(expected_pt - expected_mx) if both else 0), case
        differing += state["differs"]
    assert differing >= 1, "no case where the frameworks differ"
    # The reasons are named: PyTorch's padding rule, MXNet's missing dilation.
    assert "padding p = 2 is more than half the window" in _explore(page, 5, 3, 2, 2, 1, True)["text"]
    assert "no dilation" in _explore(page, 10, 3, 3, 1, 2, False)["text"]
    # Parameters out of range get a message that names the parameter, and no sizes.
    for key, value, name in [("k", "0", "k (window size)"), ("s", "", "s (stride)"), ("p", "-1", "p (padding)"), ("n", "2.5", "n (input length)")]:
        _explore(page, 5, 2, 2, 1, 1, False)
        page.fill(f"#we-{key}", value)
        state = _explorer_state(page)
        assert state["error"].startswith(name), state
        assert state["pytorch"] == state["mxnet"] == "" and state["rows"] == 0, state
        assert page.get_attribute(f"#we-{key}", "aria-invalid") == "true"
    # The keyboard alone drives it: ArrowUp in the focused input raises n, and the sizes follow.
    _explore(page, 5, 2, 2, 1, 1, True)
    page.focus("#we-n")
    page.keyboard.press("ArrowUp")
    state = _explorer_state(page)
    assert state["pytorch"] == str(poolkit.pool_output_size(6, 2, stride=2, padding=1, ceil_mode=True)), state
    assert state["mxnet"] == str(_mxnet_size(6, 2, 2, 1, True)), state
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "we-k"
    assert not visit.errors, visit.errors
    visit.close()
