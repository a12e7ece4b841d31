"""The package's shape: import rules read from the source, so they hold without anyone
remembering them (see src/lessons/README.md).

* ``lessons.core`` (and the package's ``__init__``) imports no chapter;
* a chapter module imports the core and the chapter modules listed before it in
  ``lessons.CHAPTER_MODULES``, never one listed after it;
* ``lessons.figures`` and ``lessons.exercises`` import the core and chapters; no
  chapter and no core module imports them;
* there are no cycles anywhere.

Imports inside functions count: a lazy import is still an import. A violation fails
with the file, the line and the offending import. The rules are checked on the real
package and, to show that each one can fail, on small packages written to a temporary
folder.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import lessons

PACKAGE_ROOT = Path(lessons.__file__).resolve().parent
SUBPACKAGES = ("core", "figures", "exercises")


@dataclass(frozen=True)
class Import:
    """One import statement of the package's own modules."""

    source: str  # the importing module, e.g. "lessons.seq2seq"
    target: str  # the imported module, e.g. "lessons.attention"
    where: str  # "src/lessons/seq2seq.py:45"
    text: str  # the statement as written


def module_name(root: Path, file: Path) -> str:
    parts = [root.name, *file.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` by dotted name."""
    return {module_name(root, file): file for file in sorted(root.rglob("*.py"))}


def imports(root: Path) -> list[Import]:
    """Every import of one of the package's own modules, found by reading the source."""
    modules = package_modules(root)
    package = root.name
    found = []
    for name, file in modules.items():
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        is_package = file.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                for alias in node.names:  # `from pkg import module` imports the module
                    child = f"{stem}.{alias.name}"
                    targets.append(child if child in modules else stem)
            for target in targets:
                if target == package or target.startswith(package + "."):
                    while target not in modules and "." in target:  # `import a.b.c` -> a.b
                        target = target.rsplit(".", 1)[0]
                    where = f"{file.relative_to(root.parent)}:{node.lineno}"
                    found.append(Import(name, target, where, ast.unparse(node)))
    return found


def kind(module: str, package: str, chapters: tuple[str, ...]) -> str:
    """``"package"``, ``"core"``, ``"chapter"``, ``"figures"``, ``"exercises"`` or ``"unknown"``."""
    if module == package:
        return "package"
    part = module.split(".")[1]
    if part in SUBPACKAGES:
        return part
    return "chapter" if part in chapters else "unknown"


def violations(root: Path, chapters: tuple[str, ...]) -> list[str]:
    """Every broken rule of the package at ``root``, one line each, empty when it is clean."""
    package = root.name
    problems = []
    for module in package_modules(root):
        if kind(module, package, chapters) == "unknown":
            problems.append(
                f"{module}: a top-level module that is neither a chapter module (add it to "
                f"CHAPTER_MODULES in the book's order) nor part of {', '.join(SUBPACKAGES)}"
            )
    order = {f"{package}.{name}": index for index, name in enumerate(chapters)}
    allowed = {
        "package": {"core"},
        "core": {"core"},
        "chapter": {"core", "chapter"},
        "figures": {"core", "chapter", "figures"},
        "exercises": {"core", "chapter", "exercises"},
    }
    for imp in imports(root):
        source = kind(imp.source, package, chapters)
        target = kind(imp.target, package, chapters)
        if source == "unknown" or target == "unknown":
            continue
        if target not in allowed[source]:
            problems.append(
                f"{imp.where}: {imp.text!r}: a {source} module may not import a {target} module"
            )
        elif source == target == "chapter" and order[imp.target] >= order[imp.source]:
            problems.append(
                f"{imp.where}: {imp.text!r}: {imp.source} may import only chapter modules "
                f"listed before it in CHAPTER_MODULES"
            )
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(imports(root))]
    return problems


def cycles(found: list[Import]) -> list[list[str]]:
    """The import cycles among the modules, found by a depth-first search."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
    result, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                result.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return result


# ------------------------------------------------------------------- the real package
def test_the_package_follows_the_import_rules() -> None:
    problems = violations(PACKAGE_ROOT, lessons.CHAPTER_MODULES)
    assert not problems, "\n".join(problems)


def test_every_chapter_module_exists_and_the_rules_see_the_imports() -> None:
    for name in lessons.CHAPTER_MODULES:
        assert (PACKAGE_ROOT / f"{name}.py").is_file(), name
    found = {(imp.source, imp.target) for imp in imports(PACKAGE_ROOT)}
    assert ("lessons.seq2seq", "lessons.attention") in found  # a chapter along the story
    assert ("lessons.figures.elmo", "lessons.elmo") in found
    assert ("lessons.exercises.basics", "lessons.basics") in found


def test_the_readme_names_every_module() -> None:
    readme = (PACKAGE_ROOT / "README.md").read_text(encoding="utf-8")
    for module, file in package_modules(PACKAGE_ROOT).items():
        if file.name == "__init__.py" and module != "lessons.exercises":
            continue
        shown = file.relative_to(PACKAGE_ROOT).as_posix()
        assert f"`{shown}`" in readme, f"src/lessons/README.md does not describe {shown}"


# ------------------------------------------------------- the rules catch violations
def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for sub in SUBPACKAGES:
        (root / sub).mkdir(exist_ok=True)
        (root / sub / "__init__.py").touch()
    return root


CHAPTERS = ("first", "second")


def test_a_clean_package_passes(tmp_path: Path) -> None:
    root = write_package(
        tmp_path,
        {
            "core/util.py": "import torch\n",
            "first.py": "from pkg.core import util\n",
            "second.py": "from pkg import first\nfrom pkg.core.util import x\n",
            "figures/second.py": "from pkg import second\n",
            "exercises/second.py": "from pkg.second import f\nfrom pkg.exercises import quiz\n",
            "exercises/quiz.py": "from pkg.core import util\n",
        },
    )
    assert violations(root, CHAPTERS) == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"core/util.py": "def f():\n    from pkg import second\n", "second.py": ""},
            "pkg/core/util.py:2: 'from pkg import second': a core module may not import a "
            "chapter module",
        ),
        (
            {"first.py": "import pkg.second\n", "second.py": ""},
            "pkg/first.py:1: 'import pkg.second': pkg.first may import only chapter modules "
            "listed before it in CHAPTER_MODULES",
        ),
        (
            {"first.py": "from pkg.figures.first import draw\n", "figures/first.py": ""},
            "pkg/first.py:1: 'from pkg.figures.first import draw': a chapter module may not "
            "import a figures module",
        ),
        (
            {"__init__.py": "from pkg.first import f\n", "first.py": ""},
            "pkg/__init__.py:1: 'from pkg.first import f': a package module may not import a "
            "chapter module",
        ),
        (
            {"core/a.py": "from pkg.core import b\n", "core/b.py": "from . import a\n"},
            "import cycle: pkg.core.a -> pkg.core.b -> pkg.core.a",
        ),
        (
            {"third.py": ""},
            "pkg.third: a top-level module that is neither a chapter module",
        ),
    ],
)
def test_each_rule_can_fail(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    root = write_package(tmp_path, files)
    problems = violations(root, CHAPTERS)
    assert any(problem.startswith(expected) for problem in problems), problems


# ------------------------------------------------- the exercise registry finds modules
def test_a_new_exercise_module_is_found_without_a_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a file to lessons.exercises is enough: a folder added to the package's path
    stands in for a new chapter's file, so the real source tree is never written."""
    from lessons import exercises
    from lessons.exercises import framework

    (tmp_path / "ch99_demo.py").write_text(
        "import torch\n"
        "from lessons.exercises.framework import Case, Exercise, Hint, register\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "register(Exercise(id='demo.double', chapter='demo', prompt='Double x.',\n"
        "    signature='def double(x)', solution=double,\n"
        "    cases=lambda: [Case('ones', (torch.ones(2),))], hints=(Hint('2 * x'),),\n"
        "    wrong_answers=(lambda x: x,)))\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(exercises, "__path__", [*exercises.__path__, str(tmp_path)])
    monkeypatch.setattr(framework, "_REGISTRY", dict(framework._REGISTRY))
    monkeypatch.delitem(sys.modules, "lessons.exercises.ch99_demo", raising=False)
    try:
        assert "demo.double" in exercises.registry()
        assert exercises.check("demo.double", lambda x: x + x, display_feedback=False).passed
    finally:
        sys.modules.pop("lessons.exercises.ch99_demo", None)
        importlib.invalidate_caches()
