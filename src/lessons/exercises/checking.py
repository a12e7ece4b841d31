"""Checking a learner's answer: run it on every case, compare with the reference, explain.

`evaluate` runs the learner's function on every case of an exercise, in a worker
process (`sandbox` runs it), and compares the result here with the reference solution:
type, shape, dtype, values within a tolerance, gradients where asked for, inputs left
unmodified. It never raises on the learner's behalf: exceptions, crashes, wrong or odd
results, ``None``, non-callables and runs that take too long all become feedback, case
by case, with the first hint that fits the mistake and what the function printed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from lessons.exercises import sandbox
from lessons.exercises.feedback import BOX, e, html_block
from lessons.exercises.framework import Attempt, Case, Exercise
from lessons.exercises.sandbox import Opaque, Outcome, clone, input_gradients, one_line

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
    #: What the learner's function printed on this case (capped, see `sandbox.PRINT_LIMIT`).
    printed: str = ""
    #: True when the case was not run, after a case that timed out or crashed.
    skipped: bool = False


@dataclass(frozen=True)
class CheckResult:
    """The outcome of `check`: ``passed`` and the case by case results.

    ``problem`` is set when no case could run at all (e.g. the answer is not a function);
    ``notes`` say how the check ran where the learner should know (e.g. in-process).
    """

    exercise_id: str
    cases: tuple[CaseResult, ...]
    problem: str = ""
    hint: str = ""
    notes: tuple[str, ...] = ()

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
        lines = [self._headline(), *(f"  note:     {note}" for note in self.notes)]
        if self.problem:
            lines.append(f"  problem:  {self.problem}")
            lines.append(f"  hint:     {self.hint}")
        shown_problems: dict[str, int] = {}
        for number, case in enumerate(self.cases, 1):
            mark = "✓" if case.passed else "✗"
            lines.append(f"  {mark} case {number}: {case.name}")
            if case.skipped:
                lines.append(f"      {case.problem}")
            elif case.passed:
                pass
            elif case.problem in shown_problems:
                lines.append(f"      same problem as case {shown_problems[case.problem]}")
            else:
                shown_problems[case.problem] = number
                lines += [
                    f"      input:    {case.inputs}",
                    f"      expected: {case.expected}",
                    f"      got:      {case.got}",
                    f"      problem:  {case.problem}",
                    f"      hint {case.hint_number}:   {case.hint}",
                ]
            lines += _printed_lines(case.printed)
        return "\n".join(lines)

    def to_html(self) -> str:
        """The report as HTML, one coloured block per case (readable on light and dark)."""
        parts = [f'<div class="lessons-check" style="{BOX}">', f"<b>{e(self._headline())}</b>"]
        parts += [f"<div><i>note: {e(note)}</i></div>" for note in self.notes]
        if self.problem:
            parts.append(html_block(False, "", [("problem", self.problem), ("hint", self.hint)]))
        shown_problems: dict[str, int] = {}
        for number, case in enumerate(self.cases, 1):
            rows = []
            if case.skipped:
                rows = [("problem", case.problem)]
            elif case.passed:
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
            block = html_block(case.passed, f"case {number}: {case.name}", rows)
            parts.append(_with_printed(block, case.printed))
        parts.append("</div>")
        return "\n".join(parts)

    def _headline(self) -> str:
        if self.passed:
            return f"{self.exercise_id}: all {len(self.cases)} cases passed. Well done!"
        if self.problem:
            return f"{self.exercise_id}: could not check your answer."
        failed = len(self.failed_cases)
        return f"{self.exercise_id}: {failed} of {len(self.cases)} cases failed."


def _printed_lines(printed: str) -> list[str]:
    """The printed text under a case of the text report, aligned with the other values."""
    if not printed:
        return []
    first, *rest = printed.rstrip("\n").splitlines() or [""]
    return [f"      printed:  {first}", *(f"                {line}" for line in rest)]


_PRINTED = "margin:.2em 0;padding:.3em;white-space:pre-wrap;max-height:16em;overflow:auto"


def _with_printed(block: str, printed: str) -> str:
    """``block`` (one case's ``<div>`` from `html_block`) with the printed text inside, last."""
    if not printed:
        return block
    shown = f'<div><b>printed:</b></div><pre style="{_PRINTED}">{e(printed)}</pre>'
    return block.removesuffix("</div>") + shown + "</div>"


def evaluate(exercise: Exercise, answer: Any) -> CheckResult:
    """Run ``answer`` on every case of ``exercise`` and compare with the reference.

    The answer runs in a worker process (see `sandbox`); after a case that timed out or
    stopped the worker, the remaining cases are not run.
    """
    if not callable(answer):
        return CheckResult(
            exercise.id,
            (),
            problem=f"expected a function, got {_describe(answer)}.",
            hint=f"Define a function and pass the function itself: {exercise.signature}",
        )
    with sandbox.session(answer) as runner:
        cases = tuple(_run_case(exercise, runner, case) for case in exercise.cases())
    return CheckResult(exercise.id, cases, notes=(runner.note,) if runner.note else ())


def _run_case(exercise: Exercise, runner: sandbox.Runner, case: Case) -> CaseResult:
    inputs = _describe_inputs(exercise, case)
    if runner.halted:
        return CaseResult(case.name, False, inputs, "", "(not run)", runner.halted, skipped=True)
    expected = exercise.solution(*clone(case.args), **clone(case.kwargs))
    outcome = runner.run("call", case.args, case.kwargs, exercise.timeout_s)
    kind, problem = _diagnose(exercise, runner, case, expected, outcome)
    attempt = None
    if kind is not None:
        got = None if outcome.error_text or outcome.stopped else outcome.value
        attempt = Attempt(case, expected, got, kind, outcome.error)
    hint = None if attempt is None else exercise.hint_for(attempt)
    return CaseResult(
        name=case.name,
        passed=attempt is None,
        inputs=inputs,
        expected=_describe(expected),
        got=_describe_got(runner, outcome),
        problem=problem,
        hint="" if hint is None else hint.text,
        hint_number=0 if hint is None else exercise.hints.index(hint) + 1,
        printed=outcome.printed,
    )


def _diagnose(
    exercise: Exercise, runner: sandbox.Runner, case: Case, expected: Any, outcome: Outcome
) -> tuple[str | None, str]:
    """(kind of problem, explanation) for one case, or (None, "") when it passed."""
    if outcome.timed_out:
        return "timeout", f"did not return within {exercise.timeout_s:g} s (an endless loop?)"
    if outcome.stopped:
        return "exception", outcome.stopped
    if outcome.error_text:
        return "exception", f"raised {outcome.error_text}"
    try:
        kind, problem = _compare(expected, outcome.value, exercise.rtol, exercise.atol)
    except Exception as error:  # noqa: BLE001 - an odd result is feedback, not a traceback
        return "type", f"your result could not be compared with the expected one: {one_line(error)}"
    if kind is None and not _unchanged(outcome.inputs, case):
        return "modified", "your function changed its input; work on a new tensor"
    if kind is None and exercise.check_grad:
        return _compare_gradients(exercise, runner, case)
    return kind, problem


def _describe_got(runner: sandbox.Runner, outcome: Outcome) -> str:
    if outcome.timed_out:
        return "(nothing: it was stopped)" if runner.stops_runaways else "(nothing: still running)"
    if outcome.stopped:
        return "(nothing: the worker process stopped)"
    if outcome.error_text:
        return "(nothing: it raised an exception)"
    return _describe(outcome.value)


def _unchanged(inputs: tuple[tuple[Any, ...], dict[str, Any]] | None, case: Case) -> bool:
    """Whether the inputs after the call still equal the case's (True when unknown)."""
    if inputs is None:
        return True
    try:
        return _same(inputs[0], case.args) and _same(inputs[1], case.kwargs)
    except Exception:  # noqa: BLE001 - inputs turned into something not comparable
        return False


def _compare_gradients(
    exercise: Exercise, runner: sandbox.Runner, case: Case
) -> tuple[str | None, str]:
    """Compare the gradients of `weighted_sum` of the output with respect to the inputs."""
    learner = runner.run("gradients", case.args, case.kwargs, exercise.timeout_s)
    failure = "timed out" if learner.timed_out else learner.stopped or learner.error_text
    if failure:
        return "grad", f"backpropagating through your output failed: {failure}"
    reference = input_gradients(exercise.solution, case.args, case.kwargs)
    try:
        for want, have in zip(reference, learner.value, strict=True):
            if have is None:
                return "grad", "no gradient reached the input: is your output detached from it?"
            if not torch.allclose(have, want, rtol=exercise.rtol * 10, atol=exercise.atol * 10):
                return "grad", "the values are right but the gradients are not"
    except Exception as error:  # noqa: BLE001 - odd gradients are feedback too
        return "grad", f"your gradients could not be compared: {one_line(error)}"
    return None, ""


# --------------------------------------------------------------------------------------
# Comparing values (torch-aware)
# --------------------------------------------------------------------------------------


def _compare(expected: Any, got: Any, rtol: float, atol: float) -> tuple[str | None, str]:
    """(kind of mismatch, explanation), or (None, "") when ``got`` matches ``expected``."""
    if got is None and expected is not None:
        return "type", "your function returned None: did you forget `return`?"
    if isinstance(got, Opaque):
        return "type", (
            f"your function returned {_a(got.type_name)}, which cannot be compared; "
            f"return {_kind(expected)}"
        )
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return "type", f"expected a torch.Tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return "shape", f"shape {_shape(got)} instead of {_shape(expected)}"
        if got.dtype != expected.dtype:
            return "dtype", f"dtype {_dtype(got)} instead of {_dtype(expected)}"
        if got.is_meta:
            return "type", "a meta tensor, which has a shape but no values: compute real values"
        if got.layout != expected.layout:
            return "type", f"a {_layout(got)} tensor instead of a dense one: use `.to_dense()`"
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


def _kind(expected: Any) -> str:
    """What the learner should return, e.g. "a torch.Tensor" or "a tuple of 2 values"."""
    if isinstance(expected, torch.Tensor):
        return "a torch.Tensor"
    if isinstance(expected, tuple | list):
        return f"a {type(expected).__name__} of {len(expected)} values"
    return _a(type(expected).__name__)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


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


# --------------------------------------------------------------------------------------
# Describing values for the learner
# --------------------------------------------------------------------------------------


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(map(str, t.shape)) + "]"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _layout(t: torch.Tensor) -> str:
    return str(t.layout).removeprefix("torch.")


def _describe(value: Any) -> str:
    """A one-line description: type, shape and (a few) values; never raises."""
    try:
        return _description(value)
    except Exception as error:  # noqa: BLE001 - e.g. a tensor too odd to print
        return f"{type(value).__name__} (cannot be shown: {one_line(error)})"


def _description(value: Any) -> str:
    if isinstance(value, Opaque):
        return f"{value.type_name} {value.description}"
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            return f"{_dtype(value)}{_shape(value)} (a meta tensor: no values)"
        if value.layout != torch.strided:
            values = _values(value.detach().cpu().to_dense())
            return f"{_dtype(value)}{_shape(value)} {_layout(value)} {values}"
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
