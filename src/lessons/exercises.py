"""Code exercises that check the learner's function at once.

A chapter declares each exercise once, beside its own code::

    register(Exercise(id="basics.softmax", chapter="basics", prompt=..., signature=...,
                      solution=softmax, cases=softmax_cases, hints=(...), wrong_answers=(...)))

and a learner works on it in a notebook::

    exercises.show("basics.softmax")          # the task; hints and solution behind clicks
    exercises.check("basics.softmax", my_softmax)

`check` runs the learner's function on every case, compares it with the reference
solution (type, shape, dtype, values within a tolerance, gradients where asked for,
inputs left unmodified) and reports case by case, with the first hint that fits the
mistake. It never raises on the learner's behalf: exceptions, wrong types, ``None``,
non-callables and runs that take too long all become feedback.
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import importlib
import inspect
import json
import os
import re
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lessons.source import in_kernel

__all__ = [
    "Attempt",
    "Case",
    "CaseResult",
    "CheckResult",
    "Exercise",
    "Hint",
    "Progress",
    "UnknownExerciseError",
    "check",
    "get",
    "progress",
    "register",
    "registry",
    "show",
]

#: Modules that declare exercises (and quiz questions). `registry()` imports them
#: lazily, so it sees every exercise of the book even before a chapter was imported.
#: A new chapter module appends itself here.
TOPIC_MODULES: tuple[str, ...] = (
    "lessons.basics",
    "lessons.word2vec",
    "lessons.elmo",
    "lessons.attention",
)

#: Seconds a learner's function may run on one case before the checker gives up on it.
DEFAULT_TIMEOUT_S = 5.0

_REGISTRY: dict[str, Exercise] = {}


# --------------------------------------------------------------------------------------
# Declaring exercises
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input to run both the reference and the learner's function on."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    """What went wrong on one case; hint predicates look at it to pick a hint.

    ``problem`` is one of "exception", "timeout", "type", "shape", "dtype", "values",
    "modified" (the learner changed an input) and "grad".
    """

    case: Case
    expected: Any
    got: Any
    problem: str
    error: BaseException | None = None


@dataclass(frozen=True)
class Hint:
    """A hint, and optionally the mistakes it fits (``fits(attempt) -> bool``)."""

    text: str
    fits: Callable[[Attempt], bool] | None = None


@dataclass(frozen=True)
class Exercise:
    """A code exercise: the task, the reference solution and how to check an answer.

    ``cases`` is a function returning the cases (seeded, so always the same ones).
    ``hints`` are ordered from gentle to telling. ``wrong_answers`` are typical
    mistakes that the check must fail: a test enforces it for every exercise.
    Values must agree within ``rtol``/``atol`` (as in `torch.allclose`); with
    ``check_grad`` the gradients of ``sum(output * w)`` for a fixed random ``w``
    with respect to every floating-point input must agree too.
    """

    id: str
    chapter: str
    prompt: str
    signature: str
    solution: Callable[..., Any]
    cases: Callable[[], Sequence[Case]]
    hints: tuple[Hint, ...]
    wrong_answers: tuple[Callable[..., Any], ...]
    rtol: float = 1e-5
    atol: float = 1e-6
    check_grad: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", self.id):
            raise ValueError(f"exercise id {self.id!r} is not of the form '<topic>.<name>'")
        if not self.hints:
            raise ValueError(f"exercise {self.id!r} declares no hints")

    def solution_source(self) -> str:
        """The source code of the reference solution."""
        return inspect.getsource(self.solution)

    def hint_for(self, attempt: Attempt) -> Hint:
        """The first hint that fits the mistake, else the first hint."""
        for hint in self.hints:
            if hint.fits is not None and _safe_predicate(hint.fits, attempt):
                return hint
        return self.hints[0]


class UnknownExerciseError(KeyError):
    """Raised for an exercise id that no topic module declares."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the book's registry; ids must be unique."""
    known = _REGISTRY.get(exercise.id)
    if known is not None and known is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is declared twice")
    _REGISTRY[exercise.id] = exercise
    return exercise


def load_topics() -> None:
    """Import every topic module, so that their exercises and questions register."""
    for name in TOPIC_MODULES:
        importlib.import_module(name)


def registry() -> dict[str, Exercise]:
    """Every exercise of the book, by id, sorted by id."""
    load_topics()
    return dict(sorted(_REGISTRY.items()))


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; an unknown id raises, naming close matches."""
    exercises = registry()
    if exercise_id in exercises:
        return exercises[exercise_id]
    close = difflib.get_close_matches(str(exercise_id), exercises, n=3, cutoff=0.8)
    if close:
        raise UnknownExerciseError(
            f"No exercise {exercise_id!r}. Did you mean {' or '.join(map(repr, close))}?"
        )
    raise UnknownExerciseError(f"No exercise {exercise_id!r}. Known: {', '.join(exercises)}.")


# --------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case, as described to the learner."""

    name: str
    passed: bool
    inputs: str
    expected: str
    got: str
    problem: str = ""
    hint: str = ""
    hint_number: int = 0


@dataclass(frozen=True)
class CheckResult:
    """The outcome of `check`: ``passed`` and the case by case results.

    ``problem`` is set when no case could run at all (e.g. the answer is not a function).
    """

    exercise_id: str
    cases: tuple[CaseResult, ...]
    problem: str = ""
    hint: str = ""

    @property
    def passed(self) -> bool:
        return not self.problem and bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failed_cases(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.passed)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        ok = sum(c.passed for c in self.cases)
        return f"<CheckResult {self.exercise_id}: {verdict}, {ok}/{len(self.cases)} cases>"

    def report(self) -> str:
        """A plain-text report, case by case."""
        lines = [self._headline()]
        if self.problem:
            lines.append(f"  problem:  {self.problem}")
            lines.append(f"  hint:     {self.hint}")
        shown_problems: dict[str, int] = {}
        for number, case in enumerate(self.cases, 1):
            mark = "✓" if case.passed else "✗"
            lines.append(f"  {mark} case {number}: {case.name}")
            if case.passed:
                continue
            if case.problem in shown_problems:
                lines.append(f"      same problem as case {shown_problems[case.problem]}")
                continue
            shown_problems[case.problem] = number
            lines += [
                f"      input:    {case.inputs}",
                f"      expected: {case.expected}",
                f"      got:      {case.got}",
                f"      problem:  {case.problem}",
                f"      hint {case.hint_number}:   {case.hint}",
            ]
        return "\n".join(lines)

    def to_html(self) -> str:
        """The report as HTML, one coloured block per case (readable on light and dark)."""
        parts = [f'<div class="lessons-check" style="{_BOX}">', f"<b>{_e(self._headline())}</b>"]
        if self.problem:
            parts.append(_html_block(False, "", [("problem", self.problem), ("hint", self.hint)]))
        shown_problems: dict[str, int] = {}
        for number, case in enumerate(self.cases, 1):
            rows = []
            if case.passed:
                pass
            elif case.problem in shown_problems:
                rows = [("same problem as case", str(shown_problems[case.problem]))]
            else:
                shown_problems[case.problem] = number
                rows = [
                    ("input", case.inputs),
                    ("expected", case.expected),
                    ("got", case.got),
                    ("problem", case.problem),
                    (f"hint {case.hint_number}", case.hint),
                ]
            parts.append(_html_block(case.passed, f"case {number}: {case.name}", rows))
        parts.append("</div>")
        return "\n".join(parts)

    def _headline(self) -> str:
        if self.passed:
            return f"{self.exercise_id}: all {len(self.cases)} cases passed. Well done!"
        if self.problem:
            return f"{self.exercise_id}: could not check your answer."
        failed = len(self.failed_cases)
        return f"{self.exercise_id}: {failed} of {len(self.cases)} cases failed."


def check(exercise_id: str, answer: Any, *, display_feedback: bool = True) -> CheckResult:
    """Check the learner's function against exercise ``exercise_id``.

    Shows the feedback (a widget in Jupyter and Colab, a text report elsewhere) unless
    ``display_feedback`` is false, records a pass in the progress file, and returns the
    `CheckResult`. An unknown id raises `UnknownExerciseError`; anything wrong with the
    answer becomes feedback.
    """
    exercise = get(exercise_id)
    result = evaluate(exercise, answer)
    if result.passed:
        _record_pass(exercise.id)
    if display_feedback:
        _show_feedback(exercise, result)
    return result


def evaluate(exercise: Exercise, answer: Any) -> CheckResult:
    """Run ``answer`` on every case of ``exercise`` and compare with the reference."""
    if not callable(answer):
        return CheckResult(
            exercise.id,
            (),
            problem=f"expected a function, got {_describe(answer)}.",
            hint=f"Define a function and pass the function itself: {exercise.signature}",
        )
    return CheckResult(exercise.id, tuple(_run_case(exercise, answer, c) for c in exercise.cases()))


def _run_case(exercise: Exercise, answer: Callable[..., Any], case: Case) -> CaseResult:
    expected = exercise.solution(*_clone(case.args), **_clone(case.kwargs))
    args, kwargs = _clone(case.args), _clone(case.kwargs)
    outcome = _call_with_deadline(answer, args, kwargs, exercise.timeout_s)

    attempt: Attempt | None = None
    if outcome.timed_out:
        attempt = Attempt(case, expected, None, "timeout")
        problem = f"did not return within {exercise.timeout_s:g} s (an endless loop?)"
    elif outcome.error is not None:
        attempt = Attempt(case, expected, None, "exception", outcome.error)
        problem = f"raised {_format_exception(outcome.error)}"
    else:
        kind, problem = _compare(expected, outcome.value, exercise.rtol, exercise.atol)
        if kind is None and not (_same(args, case.args) and _same(kwargs, case.kwargs)):
            kind, problem = "modified", "your function changed its input; work on a new tensor"
        if kind is None and exercise.check_grad:
            kind, problem = _compare_gradients(exercise, answer, case)
        if kind is not None:
            attempt = Attempt(case, expected, outcome.value, kind)

    hint = None if attempt is None else exercise.hint_for(attempt)
    if outcome.timed_out:
        got = "(nothing: still running)"
    elif outcome.error is not None:
        got = "(nothing: it raised an exception)"
    else:
        got = _describe(outcome.value)
    return CaseResult(
        name=case.name,
        passed=attempt is None,
        inputs=_describe_inputs(exercise, case),
        expected=_describe(expected),
        got=got,
        problem="" if attempt is None else problem,
        hint="" if hint is None else hint.text,
        hint_number=0 if hint is None else exercise.hints.index(hint) + 1,
    )


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False


def _call_with_deadline(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float
) -> _Outcome:
    """Call ``fn`` in a worker thread and wait at most ``timeout_s`` seconds.

    A thread works in Jupyter, where signals (SIGALRM) are only usable from the main
    thread. Python cannot kill a thread: a function that never returns keeps running in
    this daemon thread after we report the timeout, until the kernel restarts.
    """
    outcome = _Outcome()

    def target() -> None:
        try:
            outcome.value = fn(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - the learner's error is feedback
            outcome.error = error

    worker = threading.Thread(target=target, name="lessons-check", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return _Outcome(timed_out=True)
    return outcome


def _compare_gradients(
    exercise: Exercise, answer: Callable[..., Any], case: Case
) -> tuple[str | None, str]:
    """Compare the gradients of ``sum(output * w)`` with respect to the float inputs."""

    def gradients(fn: Callable[..., Any]) -> _Outcome:
        args = tuple(_leaf(a) for a in case.args)
        kwargs = {k: _leaf(v) for k, v in case.kwargs.items()}

        def run() -> list[torch.Tensor | None]:
            output = fn(*args, **kwargs)
            weight = torch.randn(output.shape, generator=torch.Generator().manual_seed(0))
            (output * weight.to(output.dtype)).sum().backward()
            return [t.grad for t in (*args, *kwargs.values()) if _is_float_tensor(t)]

        return _call_with_deadline(run, (), {}, exercise.timeout_s)

    reference, learner = gradients(exercise.solution), gradients(answer)
    if learner.timed_out or learner.error is not None:
        detail = "timed out" if learner.timed_out else _format_exception(learner.error)
        return "grad", f"backpropagating through your output failed: {detail}"
    for want, have in zip(reference.value, learner.value, strict=True):
        if have is None:
            return "grad", "no gradient reached the input: is your output detached from it?"
        if not torch.allclose(have, want, rtol=exercise.rtol * 10, atol=exercise.atol * 10):
            return "grad", "the values are right but the gradients are not"
    return None, ""


# --------------------------------------------------------------------------------------
# Comparing values (torch-aware)
# --------------------------------------------------------------------------------------


def _compare(expected: Any, got: Any, rtol: float, atol: float) -> tuple[str | None, str]:
    """(kind of mismatch, explanation), or (None, "") when ``got`` matches ``expected``."""
    if got is None and expected is not None:
        return "type", "your function returned None: did you forget `return`?"
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return "type", f"expected a torch.Tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return "shape", f"shape {_shape(got)} instead of {_shape(expected)}"
        if got.dtype != expected.dtype:
            return "dtype", f"dtype {_dtype(got)} instead of {_dtype(expected)}"
        have, want = got.detach().cpu(), expected.detach().cpu()
        if not want.is_floating_point() and not want.is_complex():
            return (None, "") if torch.equal(have, want) else ("values", "the values differ")
        bad = torch.isnan(have) & ~torch.isnan(want)
        if bad.any():
            return "values", f"{int(bad.sum())} NaN value(s) where numbers were expected"
        if not torch.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
            error = (have - want).abs().nan_to_num(posinf=float("inf")).max().item()
            return "values", f"values differ by up to {error:.3g} (rtol={rtol:g}, atol={atol:g})"
        return None, ""
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return "type", f"expected a {type(expected).__name__} of {len(expected)} values"
        for index, (want, have) in enumerate(zip(expected, got, strict=True)):
            kind, problem = _compare(want, have, rtol, atol)
            if kind is not None:
                return kind, f"item {index}: {problem}"
        return None, ""
    if isinstance(expected, float):
        if not isinstance(got, int | float) or isinstance(got, bool):
            return "type", f"expected a float, got {type(got).__name__}"
        close = abs(got - expected) <= atol + rtol * abs(expected)
        return (None, "") if close else ("values", f"{got!r} instead of {expected!r}")
    if type(got) is not type(expected):
        return "type", f"expected {type(expected).__name__}, got {type(got).__name__}"
    return (None, "") if got == expected else ("values", f"{got!r} instead of {expected!r}")


def _same(a: Any, b: Any) -> bool:
    """Whether ``a`` still equals ``b`` exactly (used to detect modified inputs)."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b).all())
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is b or a == b


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple | list):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _leaf(value: Any) -> Any:
    value = _clone(value)
    return value.requires_grad_(True) if _is_float_tensor(value) else value


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _safe_predicate(predicate: Callable[[Attempt], bool], attempt: Attempt) -> bool:
    try:
        return bool(predicate(attempt))
    except Exception:  # noqa: BLE001 - a predicate that cannot judge does not fit
        return False


# --------------------------------------------------------------------------------------
# Describing values for the learner
# --------------------------------------------------------------------------------------


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(map(str, t.shape)) + "]"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _describe(value: Any) -> str:
    """A one-line description: type, shape and (a few) values."""
    if isinstance(value, torch.Tensor):
        return f"{_dtype(value)}{_shape(value)} {_values(value.detach().cpu())}"
    if isinstance(value, tuple | list):
        inner = ", ".join(_describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    if not isinstance(value, int | float | str | bool | type(None)):
        text = f"{type(value).__name__} {text}"
    return text if len(text) <= 120 else text[:117] + "..."


def _values(t: torch.Tensor, limit: int = 16) -> str:
    """The values with 4 significant digits; for large tensors the first few and the range."""

    def fmt(x: Any) -> str:
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    def nested(x: Any) -> str:
        return "[" + ", ".join(map(nested, x)) + "]" if isinstance(x, list) else fmt(x)

    if t.numel() <= limit:
        return nested(t.tolist())
    flat = t.flatten()
    first = ", ".join(fmt(x) for x in flat[:4].tolist())
    if t.is_floating_point():
        low, high = fmt(flat.min().item()), fmt(flat.max().item())
        return f"[{first}, ...] ({t.numel()} values in [{low}, {high}])"
    return f"[{first}, ...] ({t.numel()} values)"


def _describe_inputs(exercise: Exercise, case: Case) -> str:
    try:
        bound = inspect.signature(exercise.solution).bind(*case.args, **case.kwargs)
        named = bound.arguments.items()
    except (TypeError, ValueError):
        named = [(f"arg{i}", a) for i, a in enumerate(case.args)] + list(case.kwargs.items())
    return ", ".join(f"{name}={_describe(value)}" for name, value in named)


def _format_exception(error: BaseException | None) -> str:
    """``TypeError: message (line 3: x.sum(dim=9))`` pointing at the learner's code."""
    if error is None:
        return ""
    lines = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
    text = lines[0] + (" ..." if len(lines) > 1 else "")
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).resolve() != Path(__file__).resolve()
    ]
    if frames and frames[0].line:
        text += f" (in {frames[0].name}, line {frames[0].lineno}: {frames[0].line.strip()})"
    return text


# --------------------------------------------------------------------------------------
# Rendering: HTML everywhere, widgets in a live kernel, text elsewhere
# --------------------------------------------------------------------------------------

# Translucent tints over the page's own background keep the text readable in light
# and dark themes; the text colour is inherited.
_BOX = "border:1px solid rgba(127,127,127,.5);border-radius:6px;padding:.5em .8em;margin:.3em 0"
_PASS = "background:rgba(40,167,69,.15);border-left:4px solid rgb(40,167,69)"
_FAIL = "background:rgba(220,53,69,.15);border-left:4px solid rgb(220,53,69)"
_TINT = "padding:.3em .6em;margin:.3em 0;border-radius:4px;"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _inline_code(text: str) -> str:
    """Escape ``text`` and turn `backticks` into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _html_block(passed: bool, title: str, rows: list[tuple[str, str]]) -> str:
    mark = "✓" if passed else "✗"
    body = "".join(
        f"<div><b>{_e(label)}:</b> <code>{_e(value)}</code></div>"
        if label in ("input", "expected", "got")
        else f"<div><b>{_e(label)}:</b> {_inline_code(value)}</div>"
        for label, value in rows
    )
    heading = f"<div>{mark} {_e(title)}</div>" if title else ""
    style = _TINT + (_PASS if passed else _FAIL)
    return f'<div class="lessons-case" style="{style}">{heading}{body}</div>'


def task_html(exercise: Exercise) -> str:
    """The task as HTML; hints and solution collapsed in ``<details>`` (works without a kernel)."""
    hints = "".join(
        f"<details><summary>Hint {i}</summary><p>{_inline_code(h.text)}</p></details>"
        for i, h in enumerate(exercise.hints, 1)
    )
    return (
        f'<div class="lessons-exercise" style="{_BOX}">'
        f"<p><b>Exercise <code>{_e(exercise.id)}</code></b></p>"
        f"<p>{_inline_code(exercise.prompt)}</p>"
        f"<pre><code>{_e(exercise.signature)}</code></pre>"
        f"{hints}"
        f"<details><summary>Solution</summary><pre><code>{_e(exercise.solution_source())}"
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
    """Show the task: HTML with collapsed hints and solution in Jupyter, text elsewhere."""
    exercise = get(exercise_id)
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
        self.hint_button = widgets.Button(description="Next hint", icon="lightbulb-o")
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
            f"<pre><code>{_e(self.exercise.solution_source())}</code></pre></div>"
        )
        self.solution_button.disabled = True


_HINT = "background:rgba(13,110,253,.12);border-left:4px solid rgb(13,110,253)"


def _show_feedback(exercise: Exercise, result: CheckResult) -> None:
    if not in_kernel():
        print(result.report())
        return
    from IPython.display import display

    # The case report is plain HTML, so that it also shows on the static site (which
    # cannot run widgets); the hint and solution buttons are a widget below it.
    display({"text/html": result.to_html(), "text/plain": result.report()}, raw=True)
    display(FeedbackControls(exercise).widget)


# --------------------------------------------------------------------------------------
# Progress: which exercises the learner passed
# --------------------------------------------------------------------------------------


def progress_file() -> Path | None:
    """Where progress is kept, or None when LESSONS_PROGRESS=off.

    LESSONS_PROGRESS_FILE overrides the place; else ``$LESSONS_DATA_DIR/progress.json``;
    else ``progress.json`` in the user's data directory (platformdirs).
    """
    if os.environ.get("LESSONS_PROGRESS", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    if os.environ.get("LESSONS_PROGRESS_FILE"):
        return Path(os.environ["LESSONS_PROGRESS_FILE"]).expanduser()
    if os.environ.get("LESSONS_DATA_DIR"):
        return Path(os.environ["LESSONS_DATA_DIR"]).expanduser() / "progress.json"
    import platformdirs

    return Path(platformdirs.user_data_dir("lessons")) / "progress.json"


def _load_progress(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    passed = data.get("passed", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in passed.items()} if isinstance(passed, dict) else {}


def _record_pass(exercise_id: str) -> None:
    """Note the first pass of an exercise; written atomically, never failing the check."""
    path = progress_file()
    if path is None:
        return
    passed = _load_progress(path)
    if exercise_id in passed:
        return
    passed[exercise_id] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".progress-", delete=False
        ) as tmp:
            json.dump({"passed": passed}, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError:
        pass  # progress is a convenience; a read-only home must not break the exercise


@dataclass(frozen=True)
class Progress:
    """Which exercises the learner passed (id -> first time, UTC) out of all of them."""

    passed: dict[str, str]
    exercises: tuple[str, ...]
    path: Path | None

    def __repr__(self) -> str:
        if self.path is None:
            return "Progress tracking is off (LESSONS_PROGRESS=off)."
        lines = [f"Passed {len(self.passed)} of {len(self.exercises)} exercises ({self.path}):"]
        for exercise_id in self.exercises:
            when = self.passed.get(exercise_id)
            lines.append(f"  {'✓' if when else '·'} {exercise_id}" + (f"  {when}" if when else ""))
        return "\n".join(lines)


def progress() -> Progress:
    """The exercises passed so far, read from the progress file."""
    path = progress_file()
    passed = {} if path is None else _load_progress(path)
    return Progress(passed=passed, exercises=tuple(registry()), path=path)
