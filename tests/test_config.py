"""The book's configuration: _config.yml and _toc.yml say what the book needs.

jupyter-book only *warns* about a misspelt key or a TOC entry whose file is missing,
so these tests turn such slips into failures. They also hold the repository URL in
_config.yml as the single source for every link to the repository: each notebook's
Colab badge and Colab install cell, and the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

TOC_TOP_KEYS = {"format", "root", "parts", "chapters", "defaults"}
TOC_PART_KEYS = {"caption", "chapters", "numbered"}
TOC_CHAPTER_KEYS = {"file", "sections", "title", "url"}

COLAB_BADGE = re.compile(
    r"https://colab\.research\.google\.com/github/"
    r"(?P<owner>[^/\s)\"']+)/(?P<repo>[^/\s)\"']+)/blob/(?P<branch>[^/\s)\"']+)/"
    r"(?P<path>[^\s)\"'#?]+\.ipynb)"
)
GIT_INSTALL = re.compile(
    r"git\+https://github\.com/(?P<owner>[^/\s\"']+)/(?P<repo>[^/\s\"'@#]+?)(?:\.git)?(?=[\s\"'@#/]|$)"
)
GITHUB_REPO = re.compile(
    r"https?://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?(?=[/\s)\"'#?>`]|$)"
)


def repository() -> tuple[str, str]:
    """``(owner, repo)`` of the book's repository, from _config.yml."""
    parts = urlsplit(CONFIG["repository"]["url"])
    owner, repo = parts.path.strip("/").removesuffix(".git").split("/")
    return owner, repo


def toc_documents() -> list[str]:
    """Every ``file`` of the TOC (root first), as written there (no suffix)."""
    files = [TOC["root"]]

    def walk(items: list[dict]) -> None:
        for item in items:
            if "file" in item:
                files.append(item["file"])
            walk(item.get("sections", []))

    for part in TOC.get("parts", []):
        walk(part.get("chapters", []))
    walk(TOC.get("chapters", []))
    return files


def source_file(document: str) -> Path | None:
    """The .md or .ipynb file behind a TOC entry, or None."""
    base = ROOT / document
    if base.suffix in (".md", ".ipynb") and base.is_file():
        return base
    for suffix in (".md", ".ipynb"):
        if base.with_name(base.name + suffix).is_file():
            return base.with_name(base.name + suffix)
    return None


def toc_key_problems(toc: dict) -> list[str]:
    """Keys of the TOC that jupyter-book would ignore or reject, by level."""
    problems = [f"top level: unknown key {key!r}" for key in set(toc) - TOC_TOP_KEYS]

    def chapters(items: list, where: str) -> None:
        if not isinstance(items, list) or not items:
            problems.append(f"{where}: expected a non-empty list")
            return
        for index, item in enumerate(items):
            here = f"{where}[{index}]"
            if not isinstance(item, dict):
                problems.append(f"{here}: expected a mapping, got {item!r}")
                continue
            problems.extend(f"{here}: unknown key {key!r}" for key in set(item) - TOC_CHAPTER_KEYS)
            if "file" not in item and "url" not in item:
                problems.append(f"{here}: neither 'file' nor 'url'")
            if "sections" in item:
                chapters(item["sections"], f"{here}.sections")

    for index, part in enumerate(toc.get("parts", [])):
        where = f"parts[{index}]"
        if not isinstance(part, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        problems.extend(f"{where}: unknown key {key!r}" for key in set(part) - TOC_PART_KEYS)
        chapters(part.get("chapters"), f"{where}.chapters")
    if "chapters" in toc:
        chapters(toc["chapters"], "chapters")
    return problems


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# ---------------------------------------------------------------------- _config.yml
def known_config_keys() -> dict[str, set[str]]:
    """The keys jupyter-book reads: ``{"": top-level keys, section: its keys}``.

    From jupyter-book's own default config and JSON schema, plus the few top-level
    keys its code reads that neither lists.
    """
    import jupyter_book

    package = Path(jupyter_book.__file__).parent
    default = yaml.safe_load((package / "default_config.yml").read_text(encoding="utf-8"))
    schema = json.loads((package / "config_schema.json").read_text(encoding="utf-8"))
    known: dict[str, set[str]] = {
        "": set(default) | set(schema["properties"]) | {"project", "bibtex_reference_style"}
    }
    for section in known[""]:
        keys = set(default.get(section) or {}) if isinstance(default.get(section), dict) else set()
        keys |= set(schema["properties"].get(section, {}).get("properties", {}))
        if keys:
            known[section] = keys
    return known


def config_key_problems(config: dict) -> list[str]:
    """Keys of a _config.yml that jupyter-book silently ignores (typos, unknown keys)."""
    known = known_config_keys()
    problems = [f"unknown top-level key {key!r}" for key in sorted(set(config) - known[""])]
    for section, keys in known.items():
        value = config.get(section) if section else None
        if not isinstance(value, dict):
            continue
        for key in sorted(set(value) - keys):
            if section == "parse" and key.startswith("myst_"):
                continue  # passed through to MyST
            problems.append(f"unknown key {section}.{key}")
    return sorted(problems)


def test_config_keys_are_ones_jupyter_book_reads() -> None:
    assert not config_key_problems(CONFIG), config_key_problems(CONFIG)


def test_config_key_check_catches_typos() -> None:
    bad = {"titel": "x", "execute": {"execute_notebook": "off"}, "html": {"use_repo_button": 1}}
    assert config_key_problems(bad) == [
        "unknown key execute.execute_notebook",
        "unknown key html.use_repo_button",
        "unknown top-level key 'titel'",
    ]


def test_config_builds_only_the_toc_and_never_executes() -> None:
    assert CONFIG.get("only_build_toc_files") is True
    assert CONFIG.get("execute", {}).get("execute_notebooks") == "off"


def test_config_names_the_repository() -> None:
    url = CONFIG.get("repository", {}).get("url", "")
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert CONFIG["repository"].get("branch") == "main"


def test_config_has_launch_buttons() -> None:
    launch = CONFIG.get("launch_buttons", {})
    assert launch.get("colab_url", "").startswith("https://colab.research.google.com")
    assert launch.get("binderhub_url", "").startswith("https://")


def test_config_bibliography_exists() -> None:
    assert "book/references.bib" in CONFIG.get("bibtex_bibfiles", [])
    for bib in CONFIG["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file(), f"{bib} is missing"


# ------------------------------------------------------------------------- _toc.yml
def test_toc_keys_are_known() -> None:
    assert TOC.get("format") == "jb-book"
    assert not toc_key_problems(TOC), toc_key_problems(TOC)


def test_toc_key_check_catches_typos() -> None:
    bad = {
        "format": "jb-book",
        "root": "x",
        "part": [],
        "parts": [{"caption": "A", "chapter": []}, {"chapters": [{"file": "a", "section": []}]}],
    }
    problems = "\n".join(toc_key_problems(bad))
    assert "top level: unknown key 'part'" in problems
    assert "parts[0]: unknown key 'chapter'" in problems
    assert "parts[0].chapters: expected a non-empty list" in problems
    assert "parts[1].chapters[0]: unknown key 'section'" in problems


@pytest.mark.parametrize("document", toc_documents())
def test_toc_file_exists(document: str) -> None:
    assert source_file(document) is not None, f"{document}(.md|.ipynb) is missing"


def test_toc_lists_each_file_once() -> None:
    documents = toc_documents()
    assert len(documents) == len(set(documents))


# ---------------------------------------------------- one repository URL everywhere
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_points_at_this_notebook(notebook: Path) -> None:
    owner, repo = repository()
    branch = CONFIG["repository"]["branch"]
    in_repo = (CONFIG["repository"].get("path_to_book") or "").strip("/")
    expected_path = "/".join(filter(None, [in_repo, notebook.relative_to(ROOT).as_posix()]))
    markdown = "\n".join(_source(c) for c in _cells(notebook) if c["cell_type"] == "markdown")
    badges = list(COLAB_BADGE.finditer(markdown))
    assert badges, f"{notebook.name}: no Colab badge"
    for badge in badges:
        assert (badge["owner"], badge["repo"]) == (owner, repo), badge[0]
        assert badge["branch"] == branch, badge[0]
        assert badge["path"] == expected_path, badge[0]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_install_cell_installs_from_this_repository(notebook: Path) -> None:
    owner, repo = repository()
    code = "\n".join(_source(c) for c in _cells(notebook) if c["cell_type"] == "code")
    installs = list(GIT_INSTALL.finditer(code))
    assert installs, f"{notebook.name}: no `git+https://github.com/...` install for Colab"
    for install in installs:
        assert (install["owner"], install["repo"]) == (owner, repo), install[0]


def test_readme_names_the_same_repository() -> None:
    readme = ROOT / "README.md"
    assert readme.is_file(), "README.md is missing (pyproject.toml names it as the readme)"
    owner, repo = repository()
    text = readme.read_text(encoding="utf-8")
    ours = [m for m in GITHUB_REPO.finditer(text) if m["owner"] == owner]
    ours += list(GIT_INSTALL.finditer(text))
    ours += list(COLAB_BADGE.finditer(text))
    clones = re.findall(r"git clone\s+(\S+)", text)
    assert ours or clones, "README.md never names the repository"  # else the loops check nothing
    for match in ours:
        assert (match["owner"], match["repo"]) == (owner, repo), match[0]
    for clone in clones:
        assert clone.removesuffix(".git").rstrip("/") == CONFIG["repository"]["url"], clone


def test_repository_patterns_read_real_links() -> None:
    """The patterns above find what they should (so that the tests can fail)."""
    badge = COLAB_BADGE.search(
        "[![c](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/o/r/blob/main/notebooks/01_x.ipynb)"
    )
    assert badge and badge.group("owner", "repo", "branch", "path") == (
        "o",
        "r",
        "main",
        "notebooks/01_x.ipynb",
    )
    for text in (
        '"lessons @ git+https://github.com/o/r"',
        "pip install git+https://github.com/o/r.git@main",
        "pip install 'git+https://github.com/o/r#egg=lessons'",
    ):
        install = GIT_INSTALL.search(text)
        assert install and (install["owner"], install["repo"]) == ("o", "r"), text
    clone = GITHUB_REPO.search("git clone https://github.com/o/r.git")
    assert clone and (clone["owner"], clone["repo"]) == ("o", "r")
