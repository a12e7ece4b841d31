"""Shared fixtures and helpers for the browser tests of the built site.

The built book (``make book``) is served from a local HTTP server on 127.0.0.1 (or
opened from its files) and driven with Playwright through Debian's Chromium;
Playwright's own browser downloads are never used. Any request to another host is
blocked at the browser, so the tests run as if offline, and prove the site needs no
network: it serves MathJax and the widget manager itself.

Use from a test module::

    import site_fixtures

    browser = site_fixtures.browser  # likewise site_dir, site_server, page_url, context

(or list this module in ``pytest_plugins`` of the root ``conftest.py``).

Settings, from the environment:

* ``LESSONS_SITE_DIR``: the built HTML (default ``_build/html`` in the repository).
* ``LESSONS_CHROMIUM``: the Chromium binary (default ``/usr/bin/chromium``).
* ``LESSONS_BOOK_DIR``: the book whose ``_toc.yml`` lists the pages (default: this
  repository); set it only to test the tests against a scratch book.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The book's sources (``_toc.yml``); another folder only to test a scratch book.
BOOK_ROOT = Path(os.environ.get("LESSONS_BOOK_DIR", REPO_ROOT)).resolve()
LOCAL_HOST = "127.0.0.1"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]


def site_path() -> Path:
    """The built site's folder: ``$LESSONS_SITE_DIR`` or ``_build/html`` in the repo."""
    configured = os.environ.get("LESSONS_SITE_DIR")
    path = Path(configured) if configured else Path("_build/html")
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path.resolve()


def screens_path() -> Path:
    """Where the page screenshots go: the ``screens`` folder beside the site folder."""
    return site_path().parent / "screens"


def toc_entries(toc_file: Path = BOOK_ROOT / "_toc.yml") -> list[dict]:
    """Every document entry of the TOC in reading order, the root first.

    Each entry is the TOC's mapping (``file``, optionally ``title``) plus ``part``, the
    caption of the part it belongs to (``None`` for the root or a part-less TOC) and
    ``depth`` (0 for the root and chapters, 1 for their sections, ...).
    """
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    entries: list[dict] = [{"file": toc["root"], "part": None, "depth": 0}]

    def walk(items: list[dict], part: str | None, depth: int) -> None:
        for item in items:
            if "file" in item:
                entries.append({**item, "part": part, "depth": depth})
            walk(item.get("sections", []), part, depth + 1)

    for part in toc.get("parts", []):
        walk(part.get("chapters", []), part.get("caption"), 0)
    walk(toc.get("chapters", []), None, 0)
    return entries


def book_config() -> dict:
    """The book's ``_config.yml``."""
    return yaml.safe_load((BOOK_ROOT / "_config.yml").read_text(encoding="utf-8"))


def toc_pages() -> list[str]:
    """The pages the TOC lists, as paths of HTML files relative to the site folder."""
    return [
        f"{entry['file'].removesuffix('.md').removesuffix('.ipynb')}.html"
        for entry in toc_entries()
    ]


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built site; fails (never skips) when it has not been built."""
    path = site_path()
    if not (path / "index.html").is_file():
        pytest.fail(
            f"No built site at {path} (no index.html). Run `make book` first, "
            "or point LESSONS_SITE_DIR at a built site.",
            pytrace=False,
        )
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def site_server(site_dir: Path) -> Iterator[str]:
    """Serves the site on 127.0.0.1 (a free port); yields its base URL with a final /."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def page_url(site_server: str) -> Callable[[str], str]:
    """``page_url("book/preface.html")`` -> the page's URL on the local server."""

    def url(page: str) -> str:
        return site_server + page.lstrip("/")

    return url


def is_local(url: str) -> bool:
    """Whether a URL points at the local test server (or is a data:/blob:/file: URL)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    return parts.hostname == LOCAL_HOST


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (Debian's, never a downloaded one)."""
    executable = os.environ.get("LESSONS_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        pytest.fail(
            f"No Chromium at {executable}: run `make chromium` "
            "(or set LESSONS_CHROMIUM to a Chromium binary).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def context(browser: Browser, site_server: str) -> Iterator[BrowserContext]:
    """A fresh browser context in which every request off 127.0.0.1 is blocked.

    ``context.blocked`` lists the URLs that were blocked.
    """
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def block(route: Route) -> None:
        blocked.append(route.request.url)
        route.abort("blockedbyclient")

    ctx.route(lambda url: not is_local(url), block)
    ctx.blocked = blocked  # type: ignore[attr-defined]
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()
