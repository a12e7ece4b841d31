"""Checking a learner's answer: run it on every case, compare with the reference, explain.

`evaluate` runs the learner's function on every case of an exercise and compares it
with the reference solution: type, shape, dtype, values within a tolerance, gradients
where asked for, inputs left unmodified. It never raises on the learner's behalf:
exceptions, wrong types, ``None``, non-callables and runs that take too long all become
feedback, case by case, with the first hint that fits the mistake.
"""

from __future__ import annotations

import inspect
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lessons.exercises.feedback import BOX, e, html_block
from lessons.exercises.framework import Attempt, Case, Exercise

__all__ = ["CaseResult", "CheckResult", "evaluate"]


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
        parts = [f'<div class="lessons-check" style="{BOX}">', f"<b>{e(self._headline())}</b>"]
        if self.problem:
            parts.append(html_block(False, "", [("problem", self.problem), ("hint", self.hint)]))
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
            parts.append(html_block(case.passed, f"case {number}: {case.name}", rows))
        parts.append("</div>")
        return "\n".join(parts)

    def _headline(self) -> str:
        if self.passed:
            return f"{self.exercise_id}: all {len(self.cases)} cases passed. Well done!"
        if self.problem:
            return f"{self.exercise_id}: could not check your answer."
        failed = len(self.failed_cases)
        return f"{self.exercise_id}: {failed} of {len(self.cases)} cases failed."


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
