"""Browser tests of the built book: every TOC page loads cleanly in headless Chromium.

Needs a built site (``make book``; or ``LESSONS_SITE_DIR=...``) and Debian's Chromium.
The network is cut: every request off 127.0.0.1 is blocked, and a page that makes one
fails. The site serves its own MathJax and Jupyter widget manager, so every page
must still render its maths and its saved widgets, with no error in the console, both
from the local server and from its files (``file://``, as from a USB stick). A
full-page screenshot of every page is written to ``<site dir>/../screens/<page>.png``
for a human to look at.
"""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from site_fixtures import BOOK_ROOT, book_config, is_local, screens_path, toc_entries, toc_pages

pytestmark = pytest.mark.browser

#: Built pages that the TOC does not list but Sphinx always writes.
SPHINX_PAGES = {"index.html", "search.html", "genindex.html", "py-modindex.html"}
#: A word the book surely contains, for the search test.
SEARCH_WORD = "attention"
#: How long MathJax and the widget manager get to finish a page, in milliseconds.
RENDER_TIMEOUT_MS = 15_000
#: The scripts, served by the site itself (book/_static/vendor), that draw a page's
#: maths and its saved widgets: ``{what: a part of the script's file name}``.
MATHS_SCRIPTS = {"MathJax": "tex-"}
WIDGET_SCRIPTS = {"RequireJS": "require", "the widget manager": "embed-amd"}

#: Once MathJax has finished the page (``MathJax.startup.promise``): the maths elements
#: that Sphinx wrote (``.math``), which MathJax must each have replaced by an
#: ``mjx-container``; MathJax's TeX errors; and the text outside code and rendered maths
#: that still holds a TeX delimiter, i.e. maths shown raw.
MATHS_REPORT = r"""async (timeout) => {
    const report = {maths: 0, version: null, finished: false, unrendered: [], errors: [], raw: []};
    const maths = Array.from(document.querySelectorAll(".math"));
    report.maths = maths.length;
    const mathjax = window.MathJax;
    if (mathjax && mathjax.startup && mathjax.startup.promise) {
        report.version = mathjax.version || null;
        const late = new Promise((resolve) => setTimeout(() => resolve(false), timeout));
        report.finished = await Promise.race([mathjax.startup.promise.then(() => true), late]);
    }
    report.unrendered = maths
        .filter((element) => !element.querySelector("mjx-container"))
        .map((element) => element.textContent.trim().slice(0, 80));
    report.errors = Array.from(
        document.querySelectorAll("[data-mjx-error], mjx-merror"),
        (element) => (element.getAttribute("data-mjx-error") || element.textContent).slice(0, 80),
    );
    const skip = "pre, code, kbd, samp, script, style, textarea, mjx-container";
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.parentElement && node.parentElement.closest(skip)) continue;
        if (["\\(", "\\[", "$$"].some((delimiter) => node.textContent.includes(delimiter))) {
            report.raw.push(node.textContent.trim().slice(0, 80));
        }
    }
    return report;
}"""
#: Waits until the widget manager has drawn a widget for every saved widget view (the
#: ``<script type="application/vnd.jupyter.widget-view+json">`` that myst-nb writes),
#: or the time is up; returns how many views there are and how many were drawn.
WIDGETS_REPORT = r"""async (timeout) => {
    const views = document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]').length;
    const drawn = () => Array.from(document.querySelectorAll(".widget-subarea"))
        .filter((area) => area.querySelector(".jupyter-widgets")).length;
    const end = Date.now() + timeout;
    while (drawn() < views && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {views, drawn: drawn()};
}"""


# --------------------------------------------------------------------------- helpers
class _Anchors(HTMLParser):
    """Collects the fragment targets of an HTML page: every id, and <a name=...>."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.targets.add(value)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


@functools.cache
def _parse(file: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(file.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def _local_file(site: Path, url: str) -> Path:
    """The file under the site folder that a local URL points at."""
    path = unquote(urlsplit(url).path).lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return site / path


def _page_title(site: Path, page: str) -> str:
    """A page's own title, as the sidebar shows it: its <title> less the book's name."""
    return _parse(site / page).title.rsplit(" \N{EM DASH} ", 1)[0].strip()


def link_problems(site: Path, links: list[tuple[str, str]]) -> list[str]:
    """Problems with the local links ``(text, absolute href)`` of a page.

    A local link must point at an existing file; one to an HTML page with a
    ``#fragment`` must find an element with that id there.
    """
    problems = []
    for text, href in sorted(set(links)):
        if not is_local(href) or urlsplit(href).scheme not in ("http", "https"):
            continue
        label = f"link {text.strip()[:40]!r} -> {href}"
        target = _local_file(site, href)
        if not target.is_file():
            problems.append(f"{label}: no file {target.relative_to(site)}")
            continue
        fragment = unquote(urlsplit(href).fragment)
        if fragment and target.suffix == ".html" and fragment not in _parse(target).targets:
            problems.append(f"{label}: no id {fragment!r} in {target.relative_to(site)}")
    return problems


def expected_header_links(page: str, config: dict) -> dict[str, str]:
    """The header buttons that _config.yml asks for on a page: ``{what: href prefix}``.

    The repository button on every page; on a notebook's page, launch buttons for
    Colab and Binder that open that notebook.
    """
    repo_url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    expected = {}
    if config.get("html", {}).get("use_repository_button"):
        expected["repository button"] = repo_url
    source = BOOK_ROOT / Path(page).with_suffix(".ipynb")
    if source.is_file():
        owner_repo = urlsplit(repo_url).path.strip("/")
        in_repo = (config["repository"].get("path_to_book") or "").strip("/")
        notebook = "/".join(filter(None, [in_repo, Path(page).with_suffix(".ipynb").as_posix()]))
        launch = config.get("launch_buttons", {})
        if launch.get("colab_url"):
            expected["Colab launch button"] = (
                f"{launch['colab_url'].rstrip('/')}/github/{owner_repo}/blob/{branch}/{notebook}"
            )
        if launch.get("binderhub_url"):
            expected["Binder launch button"] = (
                f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{owner_repo}/{branch}"
            )
    return expected


def watch(tab: Page, problems: list[str]) -> list[str]:
    """Records a page's console errors, uncaught errors and failed local requests in
    ``problems``; returns the list of local URLs that it loads successfully."""
    loaded: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            problems.append(f"console error: {message.text} (at {where})")

    def on_request_failed(request: Request) -> None:
        if is_local(request.url):
            problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(response: Response) -> None:
        if not is_local(response.url):
            return
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")
        else:
            loaded.append(response.url)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"uncaught JavaScript error: {error}"))
    tab.on("requestfailed", on_request_failed)
    tab.on("response", on_response)
    return loaded


def maths_and_widget_problems(tab: Page, loaded: list[str]) -> list[str]:
    """Waits for MathJax and the widget manager to finish the loaded page, then lists
    what they left undone: maths not rendered or rendered with errors, TeX shown raw,
    saved widgets not drawn, and the scripts for them not loaded from the site."""
    problems = []
    maths = tab.evaluate(MATHS_REPORT, RENDER_TIMEOUT_MS)
    if maths["maths"] and maths["version"] is None:
        problems.append(f"{maths['maths']} maths elements, but MathJax did not load")
    elif maths["version"] is not None and not maths["finished"]:
        problems.append(f"MathJax did not finish in {RENDER_TIMEOUT_MS} ms")
    elif maths["version"] is not None and not maths["version"].startswith("3."):
        problems.append(f"MathJax {maths['version']}, not the vendored MathJax 3")
    problems += [f"maths not rendered: {text!r}" for text in maths["unrendered"]]
    problems += [f"TeX error from MathJax: {text!r}" for text in maths["errors"]]
    problems += [f"raw TeX in the page's text: {text!r}" for text in maths["raw"]]

    widgets = tab.evaluate(WIDGETS_REPORT, RENDER_TIMEOUT_MS)
    if widgets["drawn"] < widgets["views"]:
        problems.append(f"{widgets['drawn']} of {widgets['views']} saved widgets drawn")

    needed = dict(MATHS_SCRIPTS) if maths["maths"] else {}
    if widgets["views"]:
        needed.update(WIDGET_SCRIPTS)
    names = [unquote(urlsplit(url).path).rsplit("/", 1)[-1] for url in loaded]
    for what, part in needed.items():
        if not any(part in name and name.endswith(".js") for name in names):
            problems.append(f"{what} was not loaded from the site (no *{part}*.js)")
    return problems


def _screenshot_name(page: str) -> Path:
    return screens_path() / Path(page).with_suffix(".png")


# ----------------------------------------------------------------------------- tests
def test_built_pages_are_the_toc_pages(site_dir: Path) -> None:
    """The site holds exactly the TOC's pages (plus Sphinx's index/search pages)."""
    built = {
        p.relative_to(site_dir).as_posix()
        for p in site_dir.rglob("*.html")
        if not p.relative_to(site_dir).parts[0].startswith("_")
    }
    expected = set(toc_pages())
    assert expected - built == set(), "TOC pages missing from the built site"
    assert built - expected - SPHINX_PAGES == set(), "built pages that the TOC does not list"


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(page: str, context: BrowserContext, page_url, site_dir: Path) -> None:
    """The page loads with HTTP 200, has a title and a body, no errors, no broken
    images or internal links; it asks no other host for anything, and its maths and
    saved widgets are rendered by the site's own MathJax and widget manager; a
    full-page screenshot is saved."""
    tab: Page = context.new_page()
    problems: list[str] = []
    loaded = watch(tab, problems)

    response = tab.goto(page_url(page), wait_until="load")
    assert response is not None and response.status == 200, f"{page}: {response}"
    problems += maths_and_widget_problems(tab, loaded)

    # Let every image finish (or fail) before judging, then take the screenshot.
    tab.evaluate(
        """() => Promise.all(Array.from(document.images, (img) => {
               img.loading = "eager";
               return img.decode().catch(() => null);
           }))"""
    )
    shot = _screenshot_name(page)
    shot.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(shot), full_page=True, animations="disabled")

    title = tab.title().strip()
    if not title or title.startswith("<no title>"):
        problems.append(f"no title: {title!r}")
    body = tab.locator("main article, main, article").first
    if body.count() == 0 or len(body.inner_text().strip()) < 20:
        problems.append("no <main>/<article> content")
    if tab.locator("main h1, article h1").count() == 0:
        problems.append("no <h1> heading in the page body")

    broken_images = tab.evaluate(
        """() => Array.from(document.images)
               .filter((img) => new URL(img.currentSrc || img.src, location.href).origin
                                === location.origin)
               .filter((img) => !img.complete || img.naturalWidth === 0)
               .map((img) => img.currentSrc || img.src)"""
    )
    problems += [f"broken image: {src}" for src in broken_images]

    header = tab.locator(".bd-header-article")
    for what, href in expected_header_links(page, book_config()).items():
        if header.locator(f'a[href^="{href}"]').count() == 0:
            problems.append(f"no {what} (a link to {href}) in the page header")

    links = tab.evaluate(
        "() => Array.from(document.querySelectorAll('a[href]'), (a) => [a.textContent, a.href])"
    )
    problems += link_problems(site_dir, [tuple(link) for link in links])
    tab.close()
    problems += [f"asked another host for {url} (blocked)" for url in context.blocked]

    assert not problems, f"{page} (screenshot {shot}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", toc_pages())
def test_page_reads_from_its_files(page: str, context: BrowserContext, site_dir: Path) -> None:
    """Opened from the built files (``file://``: a copy on a USB stick, no server, no
    network), the page renders its maths and widgets with no errors."""
    tab: Page = context.new_page()
    problems: list[str] = []
    loaded = watch(tab, problems)
    tab.goto((site_dir / page).as_uri(), wait_until="load")
    problems += maths_and_widget_problems(tab, loaded)
    tab.close()
    problems += [f"asked another host for {url} (blocked)" for url in context.blocked]
    assert not problems, f"{page} from file://:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (r"<p class='math'>\(x\)</p>", ["maths not rendered", "raw TeX"]),
        (r"<p>costs $$5</p>", ["raw TeX"]),
        (r"<div>\[ x \]</div>", ["raw TeX"]),
        (r"<pre>\(x\) $$</pre><code>\[</code>", []),
    ],
)
def test_maths_check_finds_raw_tex(body: str, expected: list[str], context: BrowserContext):
    """The maths check reports TeX left raw, outside code (so that it can fail)."""
    tab = context.new_page()
    tab.set_content(f"<html><body>{body}</body></html>")
    problems = maths_and_widget_problems(tab, loaded=[])
    tab.close()
    found = sorted({kind for kind in expected for problem in problems if kind in problem})
    assert found == sorted(expected), problems
    if not expected:
        assert problems == []


def test_landing_page_shows_the_table_of_contents(
    context: BrowserContext, page_url, site_dir: Path
) -> None:
    """index.html forwards to the root page, whose sidebar lists every TOC entry."""
    entries = toc_entries()
    pages = toc_pages()
    tab = context.new_page()
    tab.goto(page_url("index.html"), wait_until="load")
    tab.wait_for_url(re.compile(re.escape(page_url(pages[0])) + r"$"))
    tab.wait_for_load_state("load")

    nav = tab.locator("nav.bd-docs-nav")
    assert nav.count() == 1 and nav.is_visible(), "no visible navigation sidebar"
    nav_text = nav.inner_text()
    problems = []
    home = tab.locator("a.navbar-brand")
    home_href = home.first.evaluate("(a) => a.href") if home.count() else ""
    if home_href.split("#")[0] != page_url(pages[0]):
        problems.append(f"the book's title links to {home_href!r}, not the root page {pages[0]}")
    for caption in dict.fromkeys(e["part"] for e in entries if e["part"]):
        if caption not in nav_text:
            problems.append(f"part caption {caption!r} not in the sidebar")
    # The root page is the book's home: it is the logo/title link, not a sidebar item.
    for entry, page in list(zip(entries, pages, strict=True))[1:]:
        title = entry.get("title") or _page_title(site_dir, page)
        link = nav.locator(f'a[href$="{Path(page).name}"]').filter(has_text=title)
        if link.count() == 0:
            problems.append(f"no sidebar link {title!r} to {page}")
        elif entry["depth"] == 0 and not link.first.is_visible():
            problems.append(f"sidebar link {title!r} to {page} is hidden")
    assert not problems, "\n".join(problems)


def test_search_finds_results(context: BrowserContext, page_url) -> None:
    """The offline search page finds a word that the book uses."""
    tab = context.new_page()
    tab.goto(page_url(f"search.html?q={SEARCH_WORD}"), wait_until="load")
    results = tab.locator("#search-results ul.search li")
    try:
        results.first.wait_for(state="attached", timeout=15_000)
    except PlaywrightTimeoutError:
        status = tab.locator("#search-results").inner_text()[:200]
        pytest.fail(f"search for {SEARCH_WORD!r} listed no results in 15 s: {status!r}")
    hrefs = results.locator("a").evaluate_all("(links) => links.map((a) => a.href)")
    assert results.count() >= 1
    assert any(is_local(href) and ".html" in href for href in hrefs), hrefs
