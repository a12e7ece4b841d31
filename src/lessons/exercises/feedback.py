"""Showing exercises and feedback: HTML everywhere, widgets in a live kernel, text elsewhere.

The task (`show`) and the case-by-case report are plain HTML, so that they also show on
the static site; the buttons that reveal hints one at a time and then the solution are
an ipywidgets box below the report (ipywidgets 7.7 and 8 both work).
"""

from __future__ import annotations

import html
import re
from typing import Any

from lessons.core.source import in_kernel
from lessons.exercises import sandbox
from lessons.exercises.framework import Exercise, get

__all__ = [
    "BOX",
    "FeedbackControls",
    "e",
    "html_block",
    "show",
    "show_feedback",
    "task_html",
    "task_text",
]

# Translucent tints over the page's own background keep the text readable in light
# and dark themes; the text colour is inherited.
BOX = "border:1px solid rgba(127,127,127,.5);border-radius:6px;padding:.5em .8em;margin:.3em 0"
_PASS = "background:rgba(40,167,69,.15);border-left:4px solid rgb(40,167,69)"
_FAIL = "background:rgba(220,53,69,.15);border-left:4px solid rgb(220,53,69)"
_TINT = "padding:.3em .6em;margin:.3em 0;border-radius:4px;"


def e(text: str) -> str:
    return html.escape(text, quote=True)


def _inline_code(text: str) -> str:
    """Escape ``text`` and turn `backticks` into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(text))


def html_block(passed: bool, title: str, rows: list[tuple[str, str]]) -> str:
    mark = "✓" if passed else "✗"
    body = "".join(
        f"<div><b>{e(label)}:</b> <code>{e(value)}</code></div>"
        if label in ("input", "expected", "got")
        else f"<div><b>{e(label)}:</b> {_inline_code(value)}</div>"
        for label, value in rows
    )
    heading = f"<div>{mark} {e(title)}</div>" if title else ""
    style = _TINT + (_PASS if passed else _FAIL)
    return f'<div class="lessons-case" style="{style}">{heading}{body}</div>'


def task_html(exercise: Exercise) -> str:
    """The task as HTML; hints and solution collapsed in ``<details>`` (works without a kernel)."""
    hints = "".join(
        f"<details><summary>Hint {i}</summary><p>{_inline_code(h.text)}</p></details>"
        for i, h in enumerate(exercise.hints, 1)
    )
    return (
        f'<div class="lessons-exercise" style="{BOX}">'
        f"<p><b>Exercise <code>{e(exercise.id)}</code></b></p>"
        f"<p>{_inline_code(exercise.prompt)}</p>"
        f"<pre><code>{e(exercise.signature)}</code></pre>"
        f"{hints}"
        f"<details><summary>Solution</summary><pre><code>{e(exercise.solution_source())}"
        f"</code></pre></details>"
        f"<p>Check your answer with <code>exercises.check({exercise.id!r}, your_function)"
        f"</code>.</p></div>"
    )


def task_text(exercise: Exercise) -> str:
    """The task as text, without giving away hints or solution."""
    return (
        f"Exercise {exercise.id}\n{exercise.prompt}\n\n    {exercise.signature}\n\n"
        f"{len(exercise.hints)} hints and the solution: exercises.get({exercise.id!r}).hints, "
        f".solution_source()\nCheck with: exercises.check({exercise.id!r}, your_function)"
    )


def show(exercise_id: str) -> None:
    """Show the task: HTML with collapsed hints and solution in Jupyter, text elsewhere.

    While the learner reads it, the worker that will run their answer starts in the
    background (`lessons.exercises.sandbox.warm_up`), so the first check does not wait.
    """
    exercise = get(exercise_id)
    sandbox.warm_up()
    if in_kernel():
        from IPython.display import display

        display({"text/html": task_html(exercise), "text/plain": task_text(exercise)}, raw=True)
    else:
        print(task_text(exercise))


class FeedbackControls:
    """The interactive part of the feedback: reveal the hints one by one, then the solution.

    ``widget`` is an ipywidgets box (works with ipywidgets 7.7 and 8).
    """

    def __init__(self, exercise: Exercise) -> None:
        import ipywidgets as widgets

        self.exercise = exercise
        self.hints_shown = 0
        # Font Awesome 4 (ipywidgets 7, Colab) names the icon "lightbulb-o"; 5 and 6 "lightbulb".
        bulb = "lightbulb-o" if widgets.__version__.startswith("7.") else "lightbulb"
        self.hint_button = widgets.Button(description="Next hint", icon=bulb)
        self.solution_button = widgets.Button(description="Show solution", icon="eye")
        self.hints = widgets.HTML("")
        self.solution = widgets.HTML("")
        self.hint_button.on_click(self._next_hint)
        self.solution_button.on_click(self._reveal_solution)
        self.widget = widgets.VBox(
            [widgets.HBox([self.hint_button, self.solution_button]), self.hints, self.solution]
        )

    def _next_hint(self, _button: Any = None) -> None:
        hints = self.exercise.hints
        self.hints_shown = min(self.hints_shown + 1, len(hints))
        self.hints.value = "".join(
            f'<div style="{_TINT}{_HINT}"><b>Hint {i}:</b> {_inline_code(h.text)}</div>'
            for i, h in enumerate(hints[: self.hints_shown], 1)
        )
        if self.hints_shown == len(hints):
            self.hint_button.disabled = True

    def _reveal_solution(self, _button: Any = None) -> None:
        self.solution.value = (
            f'<div style="{_TINT}{_HINT}"><b>Solution</b>'
            f"<pre><code>{e(self.exercise.solution_source())}</code></pre></div>"
        )
        self.solution_button.disabled = True


_HINT = "background:rgba(13,110,253,.12);border-left:4px solid rgb(13,110,253)"


def show_feedback(exercise: Exercise, result: Any) -> None:
    """Show a `lessons.exercises.checking.CheckResult`: HTML and hint buttons, or text."""
    if not in_kernel():
        print(result.report())
        return
    from IPython.display import display

    # The case report is plain HTML, so that it also shows on the static site (which
    # cannot run widgets); the hint and solution buttons are a widget below it.
    display({"text/html": result.to_html(), "text/plain": result.report()}, raw=True)
    display(FeedbackControls(exercise).widget)
