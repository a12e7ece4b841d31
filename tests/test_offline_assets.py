"""The site reads anywhere: MathJax, RequireJS and the widget manager are the book's own.

Fast checks of the sources (run by the unit stage): the configuration jupyter-book hands
to Sphinx points only at vendored files, those files are the ones ``SHA256SUMS`` lists,
with their licences, and the notebooks' saved widgets are ones the vendored manager
draws. The checks marked ``browser`` read the built site (``make book``) without a
browser: no page asks another host for a script, style sheet or image.
"""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "book" / "_static" / "vendor"
CONFIG_FILE = ROOT / "_config.yml"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Hosts of the CDNs that Sphinx, myst-nb and sphinx-thebe load from by default.
CDN_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com")
#: The widget models that the vendored manager (html-manager 1.x) bundles, by the
#: versions that ipywidgets 8 writes into a notebook's widget state.
BUNDLED_WIDGET_MODULES = {
    "@jupyter-widgets/base": "2.0.0",
    "@jupyter-widgets/controls": "2.0.0",
    "@jupyter-widgets/output": "1.0.0",
}
#: The inline script of JupyterQuiz's output (in the committed notebooks) that loads
#: MathJax from a CDN if a page has none. Every quiz page has MathJax before the quiz
#: runs, so it never fires; the browser test proves that nothing is requested.
QUIZ_MATHJAX_FALLBACK = "Trying to force load MathJax 3"


@pytest.fixture(scope="module")
def final_config() -> dict:
    """The Sphinx configuration that jupyter-book builds from _config.yml."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(
        user_yaml=CONFIG_FILE, cli_config={"latex_individualpages": False}, sourcedir=ROOT
    )
    return config


def _static_file(config: dict, path: str) -> Path | None:
    """The source file behind a path relative to the built site's ``_static``."""
    for folder in config.get("html_static_path", []):
        candidate = ROOT / folder / path
        if candidate.is_file():
            return candidate
    return None


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("//")


# -------------------------------------------------------------- the vendored files
def _sums() -> dict[str, str]:
    sums = {}
    for line in (VENDOR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    return sums


def test_vendored_files_are_the_ones_listed_with_their_sums() -> None:
    sums = _sums()
    present = {
        p.relative_to(VENDOR).as_posix()
        for p in VENDOR.rglob("*")
        if p.is_file() and p.name not in ("README.md", "SHA256SUMS")
    }
    assert present == set(sums), "book/_static/vendor and its SHA256SUMS disagree"
    for name, digest in sums.items():
        actual = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed: refresh it as the README says"


def test_every_vendored_package_has_its_licence_and_provenance() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    packages = [p for p in VENDOR.iterdir() if p.is_dir()]
    assert {re.sub(r"-\d[\w.]*$", "", p.name) for p in packages} == {
        "mathjax",
        "requirejs",
        "html-manager",
    }
    for package in packages:
        assert re.search(r"-\d+\.\d+\.\d+$", package.name), f"{package.name}: no pinned version"
        licence = package / "LICENSE"
        assert licence.is_file() and len(licence.read_text(encoding="utf-8")) > 500, package
        assert f"`{package.name}/`" in readme, (
            f"README.md does not say where {package.name} is from"
        )
    fonts = list((VENDOR).glob("html-manager-*/*.woff2"))
    assert fonts and (fonts[0].parent / "FONTAWESOME-LICENSE.txt").is_file()


# ------------------------------------------------------------------- configuration
def test_mathjax_is_the_vendored_copy(final_config: dict) -> None:
    path = final_config["mathjax_path"]
    assert not _is_remote(path), path
    assert re.fullmatch(r"vendor/mathjax-3\.[\d.]+/tex-\w+(-full)?\.js", path), path
    assert _static_file(final_config, path), f"{path} is not under html_static_path"


def test_widget_scripts_are_the_vendored_copies(final_config: dict) -> None:
    scripts = final_config["nb_ipywidgets_js"]
    paths = list(scripts)
    assert [Path(p).name for p in paths] == [
        "require.js",
        "jupyter-widgets-offline.js",
        "embed-amd.js",
    ], "RequireJS, then the glue, then the manager"
    for path, attributes in scripts.items():
        assert not _is_remote(path), path
        assert _static_file(final_config, path), f"{path} is not under html_static_path"
        # No CDN fallback for widget modules, and no CORS attributes (they break file://).
        assert not set(attributes) & {"crossorigin", "integrity", "data-jupyter-widgets-cdn"}
    glue = _static_file(final_config, paths[1]).read_text(encoding="utf-8")
    manager_folder = Path(paths[2]).parent.as_posix()
    assert f'"{manager_folder}/"' in glue, "jupyter-widgets-offline.js names another folder"


def test_no_top_level_static_folder(final_config: dict) -> None:
    """jupyter-book adds every .js under html_static_path to every page once a
    top-level _static/ exists (jupyter_book/config.py): MathJax and the widget
    manager would then load everywhere, twice. The book's static files live in
    book/_static."""
    assert not (ROOT / "_static").exists(), "move _static/ into book/_static/"
    assert "html_js_files" not in final_config, final_config.get("html_js_files")


def test_config_names_no_cdn(final_config: dict) -> None:
    text = json.dumps(final_config, default=str)
    assert not [host for host in CDN_HOSTS if host in text]


def test_thebe_is_dropped_and_nothing_else(final_config: dict) -> None:
    """_config.yml lists the extensions to leave sphinx-thebe out; that list must stay
    jupyter-book's own (defaults, bibtex, local extensions) less sphinx-thebe."""
    from jupyter_book.config import get_final_config

    user = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    del user["sphinx"]["config"]["extensions"]
    jupyter_books, _ = get_final_config(
        user_yaml=user, cli_config={"latex_individualpages": False}, sourcedir=ROOT
    )
    assert "sphinx_thebe" in jupyter_books["extensions"], "jupyter-book no longer adds it?"
    expected = [e for e in jupyter_books["extensions"] if e != "sphinx_thebe"]
    assert final_config["extensions"] == expected
    assert "offline_site" in final_config["extensions"]


def test_colab_badge_has_a_local_copy() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import offline_site
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    assert offline_site.LOCAL_BADGE.is_file()
    assert offline_site.LOCAL_BADGE.read_text(encoding="utf-8").lstrip().startswith("<svg")
    for notebook in NOTEBOOKS:
        assert offline_site.COLAB_BADGE_URL in notebook.read_text(encoding="utf-8"), (
            f"{notebook.name}: its Colab badge is not the image offline_site.py replaces"
        )


# ------------------------------------------------------------ the notebooks' widgets
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_widgets_are_ones_the_vendored_manager_draws(notebook: Path) -> None:
    metadata = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]
    saved = metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    if not saved:
        pytest.skip("no saved widgets")
    assert saved["version_major"] == 2, "widget-state schema 2 (ipywidgets 7 and 8)"
    used = set()
    for model in saved["state"].values():
        used.add((model["model_module"], model["model_module_version"]))
        if model["state"].get("_view_module"):
            used.add((model["state"]["_view_module"], model["state"]["_view_module_version"]))
    unknown = {(module, v) for module, v in used if BUNDLED_WIDGET_MODULES.get(module) != v}
    assert not unknown, f"widget modules the vendored html-manager does not bundle: {unknown}"


# --------------------------------------------------- the built site (no browser needed)
class _Resources(HTMLParser):
    """What a page loads: script/style/image/frame URLs, and its inline scripts."""

    LOADING_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon", "manifest"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline_scripts: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "link" and set(attr.get("rel", "").lower().split()) & self.LOADING_RELS:
            self.urls.append((tag, attr.get("href", "")))
        elif tag in ("script", "img", "iframe", "source", "audio", "video", "embed"):
            if attr.get("src"):
                self.urls.append((tag, attr["src"]))
            if tag == "img" and attr.get("srcset"):
                self.urls += [(tag, part.split()[0]) for part in attr["srcset"].split(",")]
        if tag == "script" and not attr.get("src"):
            self._script = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.inline_scripts.append("".join(self._script))
            self._script = None


def _built_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if not p.relative_to(site).parts[0] == "_static")


@pytest.mark.browser
def test_built_pages_load_nothing_from_other_hosts(site_dir: Path) -> None:
    problems = []
    for page in _built_pages(site_dir):
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        name = page.relative_to(site_dir).as_posix()
        for tag, url in parser.urls:
            if _is_remote(url) or urlsplit(url).scheme not in ("", "data"):
                problems.append(f"{name}: <{tag}> loads {url}")
        for script in parser.inline_scripts:
            if any(host in script for host in CDN_HOSTS) and QUIZ_MATHJAX_FALLBACK not in script:
                problems.append(f"{name}: an inline script names a CDN: {script[:120]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_built_site_holds_the_vendored_files(site_dir: Path) -> None:
    for name, digest in _sums().items():
        built = site_dir / "_static" / "vendor" / name
        assert built.is_file(), f"{name} is not in the built site"
        assert hashlib.sha256(built.read_bytes()).hexdigest() == digest, name
    for page in _built_pages(site_dir):
        text = page.read_text(encoding="utf-8")
        assert "THEBE_JS_URL" not in text and "sphinx-thebe" not in text, page
