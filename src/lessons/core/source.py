"""Show the package's own code inside a chapter, so book and package never drift apart.

Used in: every chapter, first in ``notebooks/00_getting_started.ipynb`` ("Where the code lives").

A chapter never keeps a second copy of the code it teaches. It calls
``show_source(lessons.core.train.train)``, which reads the function from the installed
package and shows it with the file and lines it came from: highlighted in a notebook
(and on the book's site), plain text anywhere else.
"""

from __future__ import annotations

import html
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

__all__ = ["SourceView", "get_source", "in_kernel", "show_source"]


@dataclass(frozen=True, repr=False)
class SourceView:
    """The source of one object: its code, the file it lives in and its line numbers."""

    name: str
    code: str
    path: str
    first_line: int
    last_line: int

    @property
    def caption(self) -> str:
        return f"{self.name} — {self.path}, lines {self.first_line}–{self.last_line}"

    def __str__(self) -> str:
        return f"# {self.caption}\n{self.code}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        formatter = HtmlFormatter(
            noclasses=True,
            style="default",
            linenos="inline",
            linenostart=self.first_line,
            prestyles="margin: 0; padding: 0.6em; line-height: 1.35; background: #f8f8f8;"
            " color: #1e1e1e; overflow-x: auto;",
        )
        code = highlight(self.code, PythonLexer(), formatter)
        return (
            '<figure class="lessons-source" style="margin: 0.5em 0;">'
            '<figcaption style="font-family: monospace; font-size: 0.85em; padding: 0.2em 0.6em;'
            ' background: #e8eef4; color: #1e1e1e;">'
            f"{html.escape(self.caption)}</figcaption>{code}</figure>"
        )


def _display_path(file: str) -> str:
    """``lessons/core/train.py`` for files of this package; the file name otherwise."""
    path = Path(file).resolve()
    package_root = Path(__file__).resolve().parent.parent  # lessons/, above lessons/core/
    if path.is_relative_to(package_root):
        return str(Path("lessons") / path.relative_to(package_root))
    return path.name


def get_source(obj: object) -> SourceView:
    """Read the source of a function, class, method or module as a `SourceView`."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    if not (
        inspect.isfunction(target)
        or inspect.ismethod(target)
        or inspect.isclass(target)
        or inspect.ismodule(target)
    ):
        raise TypeError(
            "show_source(obj): expected a function, class, method or module, "
            f"got {type(obj).__name__} {obj!r:.60}"
        )
    try:
        lines, first_line = inspect.getsourcelines(target)
        file = inspect.getsourcefile(target)
    except (OSError, TypeError) as error:
        raise TypeError(
            f"show_source(obj): no Python source is available for {obj!r:.60} "
            "(built-in or defined interactively)"
        ) from error
    first_line = max(first_line, 1)  # modules report line 0
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    module = getattr(target, "__module__", None)
    if module and not inspect.ismodule(target):
        name = f"{module}.{name}"
    return SourceView(
        name=name,
        code=textwrap.dedent("".join(lines)).rstrip("\n"),
        path=_display_path(file or "<unknown>"),
        first_line=first_line,
        last_line=first_line + len(lines) - 1,
    )


def in_kernel() -> bool:
    """True inside a Jupyter kernel (including Colab), False in a terminal or a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_source(obj: object) -> None:
    """Show the source of ``obj`` from the package: highlighted in a notebook, plain elsewhere."""
    view = get_source(obj)
    if in_kernel():
        from IPython.display import display

        display(view)
    else:
        print(view)
