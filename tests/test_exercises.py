"""Tests of lessons.exercises (the checker) and of the exercises of lessons.exercises.basics."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from lessons import basics, exercises
from lessons.exercises import Case, CheckResult, Exercise, Hint
from lessons.exercises import basics as basics_exercises

# ipywidgets 7.7.1 (Colab's) still opens comms through ipykernel's deprecated class.
pytestmark = pytest.mark.filterwarnings("ignore:The `ipykernel.comm.Comm` class:DeprecationWarning")


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never record progress from these tests, whatever the environment says."""
    monkeypatch.setenv("LESSONS_PROGRESS", "off")


def double(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


def toy(**overrides) -> Exercise:
    """A small exercise (not registered): double a tensor."""
    fields = dict(
        id="toy.double",
        chapter="toy",
        prompt="Return `2 * x`.",
        signature="def double(x: torch.Tensor) -> torch.Tensor",
        solution=double,
        cases=lambda: [Case("ones", (torch.ones(2, 3),)), Case("arange", (torch.arange(4.0),))],
        hints=(Hint("Multiply by two.", fits=lambda a: a.problem == "values"), Hint("Return it.")),
        wrong_answers=(lambda x: x, lambda x: 3 * x),
    )
    return Exercise(**{**fields, **overrides})


# --- The registry: every exercise of the book ---------------------------------------------


def test_registry_lists_the_demo_exercises_by_id() -> None:
    found = exercises.registry()
    assert {"basics.softmax", "basics.cosine_similarity"} <= set(found)
    assert all(exercise.id == key for key, exercise in found.items())
    assert list(found) == sorted(found)


@pytest.mark.parametrize("exercise_id", sorted(exercises.registry()))
def test_reference_solution_passes_its_own_check(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    result = exercises.check(exercise_id, exercise.solution, display_feedback=False)
    assert result.passed, result.report()
    assert len(result.cases) >= 4


@pytest.mark.parametrize("exercise_id", sorted(exercises.registry()))
def test_every_typical_wrong_answer_fails(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    assert len(exercise.wrong_answers) >= 2, "declare at least two typical wrong answers"
    for wrong in exercise.wrong_answers:
        result = exercises.check(exercise_id, wrong, display_feedback=False)
        assert not result.passed, f"{wrong.__name__} passes the check of {exercise_id}"
        assert all(case.hint and case.problem for case in result.failed_cases)


@pytest.mark.parametrize("exercise_id", sorted(exercises.registry()))
def test_exercise_is_fully_declared(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    assert exercise.id.split(".")[0] == exercise.chapter
    assert exercise.prompt and exercise.signature.startswith("def ")
    assert "def " in exercise.solution_source()
    assert [case.name for case in exercise.cases()] == [case.name for case in exercise.cases()]


def test_registry_imports_topic_modules_lazily() -> None:
    code = (
        "import sys\n"
        "from lessons import exercises\n"
        "assert 'lessons.basics' not in sys.modules\n"
        "print(sorted(exercises.registry()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "basics.softmax" in out.stdout


def test_unknown_id_lists_close_matches() -> None:
    with pytest.raises(exercises.UnknownExerciseError) as error:
        exercises.check("basics.sofmax", basics.softmax)
    assert str(error.value) == "No exercise 'basics.sofmax'. Did you mean 'basics.softmax'?"
    assert isinstance(error.value, KeyError)
    with pytest.raises(KeyError, match=r"No exercise 'zzz'\. Known: .*basics\.softmax"):
        exercises.show("zzz")


def test_ids_must_be_unique_and_well_formed() -> None:
    exercise = exercises.get("basics.softmax")
    assert exercises.register(exercise) is exercise  # registering the same one is harmless
    with pytest.raises(ValueError, match="declared twice"):
        exercises.register(toy(id="basics.softmax"))
    with pytest.raises(ValueError, match="<topic>.<name>"):
        toy(id="Softmax")
    with pytest.raises(ValueError, match="no hints"):
        toy(hints=())


# --- Checking: comparisons and feedback -------------------------------------------------------


def test_correct_answer_passes_every_case() -> None:
    result = exercises.evaluate(toy(), lambda x: x + x)
    assert isinstance(result, CheckResult)
    assert result.passed and [c.passed for c in result.cases] == [True, True]
    assert result.report().splitlines() == [
        "toy.double: all 2 cases passed. Well done!",
        "  ✓ case 1: ones",
        "  ✓ case 2: arange",
    ]
    assert repr(result) == "<CheckResult toy.double: passed, 2/2 cases>"


def test_wrong_values_report_input_expected_got_and_fitting_hint() -> None:
    result = exercises.evaluate(toy(), lambda x: 3 * x)
    assert not result.passed
    case = result.cases[1]
    assert case.inputs == "x=float32[4] [0, 1, 2, 3]"
    assert case.expected == "float32[4] [0, 2, 4, 6]"
    assert case.got == "float32[4] [0, 3, 6, 9]"
    assert case.problem == "values differ by up to 3 (rtol=1e-05, atol=1e-06)"
    assert (case.hint, case.hint_number) == ("Multiply by two.", 1)
    assert "same problem" not in result.report()


def test_repeated_problem_is_reported_once() -> None:
    result = exercises.evaluate(toy(), lambda x: 1 / 0)
    lines = result.report().splitlines()
    assert lines[0] == "toy.double: 2 of 2 cases failed."
    assert lines[-1] == "      same problem as case 1"
    assert result.cases[0].problem.startswith("raised ZeroDivisionError: division by zero")


def test_values_within_tolerance_pass() -> None:
    assert exercises.evaluate(toy(), lambda x: 2 * x + 1e-7).passed
    assert not exercises.evaluate(toy(atol=1e-9, rtol=0.0), lambda x: 2 * x + 1e-7).passed


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (lambda x: None, "your function returned None: did you forget `return`?"),
        (lambda x: (2 * x).tolist(), "expected a torch.Tensor, got list"),
        (lambda x: (2 * x).numpy(), "expected a torch.Tensor, got ndarray"),
        (lambda x: (2 * x).double(), "dtype float64 instead of float32"),
        (lambda x: (2 * x).reshape(-1, 1), "shape [6, 1] instead of [2, 3]"),
        (lambda x: x / 0 * 0, "6 NaN value(s) where numbers were expected"),
    ],
)
def test_wrong_results_become_feedback(answer, problem: str) -> None:
    result = exercises.evaluate(toy(), answer)
    assert not result.passed
    assert result.cases[0].problem == problem


def test_exception_in_learners_code_becomes_feedback() -> None:
    def crashing(x):
        return x / undefined_name  # noqa: F821

    result = exercises.evaluate(toy(), crashing)
    case = result.cases[0]
    assert case.problem.startswith(
        "raised NameError: name 'undefined_name' is not defined (in crashing, line "
    )
    assert case.problem.endswith(": return x / undefined_name  # noqa: F821)")
    assert case.got == "(nothing: it raised an exception)"
    assert case.hint == "Multiply by two."  # no hint fits: the first one


@pytest.mark.parametrize("answer", [None, 3, "softmax", torch.ones(2)])
def test_non_callable_becomes_feedback(answer) -> None:
    result = exercises.check("basics.softmax", answer, display_feedback=False)
    assert not result.passed and result.cases == ()
    assert result.problem.startswith("expected a function, got ")
    assert "def softmax(x: torch.Tensor, dim: int = -1)" in result.hint
    assert result.report().splitlines()[0] == "basics.softmax: could not check your answer."


def test_slow_answer_times_out() -> None:
    def slow(x):
        time.sleep(10.0)
        return 2 * x

    assert exercises.evaluate(toy(), lambda x: 2 * x).passed  # the worker is up: time the check
    start = time.monotonic()
    result = exercises.evaluate(toy(timeout_s=0.1), slow)
    # Intended: the timeout plus a process round trip and a kill, well under 1 s; the
    # assertion allows for a busy machine and still proves that nobody waited 10 s.
    assert time.monotonic() - start < 0.1 + 4.0
    assert result.cases[0].problem == "did not return within 0.1 s (an endless loop?)"
    assert result.cases[0].got == "(nothing: it was stopped)"
    assert (
        result.cases[1].skipped and result.cases[1].problem == "not run: an earlier case timed out"
    )


def test_modified_input_is_caught() -> None:
    def in_place(x):
        return x.mul_(2)

    result = exercises.evaluate(toy(), in_place)
    assert result.cases[0].problem == "your function changed its input; work on a new tensor"


def test_tuples_and_floats_are_compared_item_by_item() -> None:
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, float]:
        return x.sum(0), float(x.mean())

    exercise = toy(solution=stats)
    assert exercises.evaluate(exercise, stats).passed
    result = exercises.evaluate(exercise, lambda x: (x.sum(0), float(x.mean()) + 1))
    assert result.cases[0].problem.startswith("item 1: 2.0 instead of 1.0")
    result = exercises.evaluate(exercise, lambda x: (x.sum(0),))
    assert result.cases[0].problem == "expected a tuple of 2 values"


def test_gradients_are_checked_where_asked() -> None:
    exercise = toy(check_grad=True, solution=lambda x: x**2)
    assert exercises.evaluate(exercise, lambda x: x * x).passed
    detached = exercises.evaluate(exercise, lambda x: (x**2).detach())
    assert detached.cases[0].problem.startswith("backpropagating through your output failed")
    wrong_grad = exercises.evaluate(exercise, lambda x: (x**2).detach() + 0 * x)
    assert wrong_grad.cases[0].problem == "the values are right but the gradients are not"


def test_gradients_of_tuple_outputs_cover_every_float_item() -> None:
    def square_and_triple(x):
        return x**2, 3 * x, x.shape[-1]

    exercise = toy(check_grad=True, solution=square_and_triple)
    assert exercises.evaluate(exercise, lambda x: (x * x, x + x + x, x.shape[-1])).passed
    result = exercises.evaluate(exercise, lambda x: (x * x, (3 * x).detach(), x.shape[-1]))
    assert result.cases[0].problem == "the values are right but the gradients are not"


def test_weighted_sum_weights_each_item_with_its_own_fixed_weights() -> None:
    from lessons.exercises.sandbox import weighted_sum

    x, y = torch.ones(2, 3), torch.ones(4)
    first = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(weighted_sum(x), first.sum())  # one tensor: as before tuples
    both = weighted_sum((x, (y, torch.tensor([True]))))
    assert both == weighted_sum([x, y]) and both != weighted_sum((y, x))
    with pytest.raises(TypeError, match="no floating-point tensor"):
        weighted_sum((1, torch.tensor([1, 2])))


# --- The demo exercises: the hint that fits each typical mistake ------------------------------


@pytest.mark.parametrize(
    ("wrong", "hint_number"),
    [
        (basics_exercises._softmax_without_keepdim, 1),
        (basics_exercises._softmax_wrong_axis, 2),
        (basics_exercises._naive_softmax, 3),
        (basics_exercises._softmax_in_place, 4),
    ],
)
def test_softmax_mistakes_get_their_hint(wrong, hint_number: int) -> None:
    result = exercises.check("basics.softmax", wrong, display_feedback=False)
    assert result.failed_cases[0].hint_number == hint_number


def test_naive_softmax_fails_only_on_large_values() -> None:
    result = exercises.check(
        "basics.softmax", basics_exercises._naive_softmax, display_feedback=False
    )
    assert [c.name for c in result.failed_cases] == [
        "large values (around 1000)",
        "large negative values",
    ]
    assert result.failed_cases[0].got == "float32[1, 4] [[nan, nan, nan, 0]]"


@pytest.mark.parametrize(
    ("wrong", "hint_number"),
    [
        (basics_exercises._cosine_dot_only, 1),
        (basics_exercises._cosine_one_side, 1),
        (basics_exercises._cosine_no_eps, 3),
    ],
)
def test_cosine_mistakes_get_their_hint(wrong, hint_number: int) -> None:
    result = exercises.check("basics.cosine_similarity", wrong, display_feedback=False)
    assert result.failed_cases[0].hint_number == hint_number


def test_basics_match_torch() -> None:
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    for dim in (0, 1, -1):
        torch.testing.assert_close(basics.softmax(x, dim), torch.softmax(x, dim))
    big = torch.tensor([1000.0, 0.0])
    torch.testing.assert_close(basics.softmax(big), torch.tensor([1.0, 0.0]))
    a, b = x[0], x[1]
    torch.testing.assert_close(basics.cosine_similarity(a, b), F.cosine_similarity(a, b, dim=-1))
    zero = basics.cosine_similarity(torch.zeros(3), torch.ones(3))
    assert zero.item() == 0.0


# --- Rendering --------------------------------------------------------------------------------


def test_check_prints_a_text_report_outside_jupyter(capsys: pytest.CaptureFixture[str]) -> None:
    result = exercises.check("basics.softmax", basics_exercises._naive_softmax)
    printed = capsys.readouterr().out
    assert printed.strip() == result.report()
    assert "✗ case 5: large values (around 1000)" in printed
    assert "hint 3:   `exp(1000)` overflows to inf" in printed


def test_show_prints_the_task_without_giving_it_away(capsys: pytest.CaptureFixture[str]) -> None:
    exercises.show("basics.softmax")
    printed = capsys.readouterr().out
    assert printed.startswith("Exercise basics.softmax\nWrite `softmax(x, dim=-1)`")
    assert "def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor" in printed
    assert "amax" not in printed  # neither hints nor solution


def test_task_html_collapses_hints_and_solution() -> None:
    exercise = exercises.get("basics.softmax")
    page = exercises.task_html(exercise)
    assert page.count("<details>") == len(exercise.hints) + 1
    assert "<summary>Hint 1</summary>" in page and "<summary>Solution</summary>" in page
    assert "shifted = x - x.amax(dim=dim, keepdim=True)" in page
    assert "-&gt; torch.Tensor" in page  # escaped
    assert "<code>keepdim=True</code>" in page  # `backticks` become code


def test_report_html_colours_each_case() -> None:
    result = exercises.check(
        "basics.softmax", basics_exercises._naive_softmax, display_feedback=False
    )
    page = result.to_html()
    assert page.count('class="lessons-case"') == 7
    assert page.count("rgba(40,167,69,.15)") == 5 and page.count("rgba(220,53,69,.15)") == 2
    assert "<code>exp(1000)</code>" in page


@pytest.fixture
def kernel_displays(monkeypatch: pytest.MonkeyPatch) -> list:
    """Pretend to run in Jupyter; collect what would be displayed."""
    shown: list = []
    monkeypatch.setattr("lessons.exercises.feedback.in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    return shown


@pytest.mark.widgets7
def test_check_in_jupyter_shows_report_and_hint_widget(kernel_displays: list) -> None:
    import ipywidgets as widgets

    exercises.check("basics.softmax", basics_exercises._naive_softmax)
    report, controls = kernel_displays
    assert "lessons-case" in report["text/html"]
    assert report["text/plain"].startswith("basics.softmax: 2 of 7 cases failed.")
    assert isinstance(controls, widgets.VBox)


@pytest.mark.widgets7
def test_show_in_jupyter_displays_html(kernel_displays: list) -> None:
    exercises.show("basics.cosine_similarity")
    assert "<summary>Solution</summary>" in kernel_displays[0]["text/html"]
    assert kernel_displays[0]["text/plain"].startswith("Exercise basics.cosine_similarity")


@pytest.mark.widgets7
def test_feedback_buttons_reveal_hints_in_order_then_solution() -> None:
    exercise = exercises.get("basics.softmax")
    controls = exercises.FeedbackControls(exercise)
    assert controls.hints.value == "" and controls.solution.value == ""
    controls.hint_button.click()
    assert "Hint 1:" in controls.hints.value and "Hint 2:" not in controls.hints.value
    for _ in exercise.hints[1:]:
        controls.hint_button.click()
    assert f"Hint {len(exercise.hints)}:" in controls.hints.value
    assert controls.hint_button.disabled
    controls.solution_button.click()
    assert "def softmax(x: torch.Tensor, dim: int = -1)" in controls.solution.value
    assert controls.solution_button.disabled


# --- Progress ---------------------------------------------------------------------------------


def test_progress_records_first_pass(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    path = tmp_path / "sub" / "progress.json"
    monkeypatch.delenv("LESSONS_PROGRESS")
    monkeypatch.setenv("LESSONS_PROGRESS_FILE", str(path))
    exercises.check("basics.softmax", basics_exercises._naive_softmax, display_feedback=False)
    assert not path.exists()
    exercises.check("basics.softmax", basics.softmax, display_feedback=False)
    first = json.loads(path.read_text())["passed"]
    assert list(first) == ["basics.softmax"]
    exercises.check("basics.softmax", basics.softmax, display_feedback=False)
    assert json.loads(path.read_text())["passed"] == first  # the first pass is kept
    state = exercises.progress()
    assert state.passed == first and state.path == path
    assert "basics.cosine_similarity" in state.exercises
    lines = repr(state).splitlines()
    assert lines[0] == f"Passed 1 of {len(state.exercises)} exercises:"
    assert "  · basics.cosine_similarity" in lines and "  ✓ basics.softmax" in lines
    assert len(lines) == 1 + len(state.exercises)
    assert list(tmp_path.glob("sub/.progress-*")) == []  # no temporary file left


def test_progress_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    path = tmp_path / "progress.json"
    monkeypatch.setenv("LESSONS_PROGRESS_FILE", str(path))
    exercises.check("basics.softmax", basics.softmax, display_feedback=False)
    assert not path.exists()
    assert exercises.progress_file() is None
    assert repr(exercises.progress()) == (
        "Progress tracking is off (LESSONS_PROGRESS=off): passed exercises are not remembered."
    )


def test_progress_location(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("LESSONS_PROGRESS")
    monkeypatch.delenv("LESSONS_PROGRESS_FILE", raising=False)
    monkeypatch.setenv("LESSONS_DATA_DIR", str(tmp_path))
    assert exercises.progress_file() == tmp_path / "progress.json"
    monkeypatch.delenv("LESSONS_DATA_DIR")
    assert exercises.progress_file().parts[-2:] == ("lessons", "progress.json")


def test_corrupt_progress_file_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    path = tmp_path / "progress.json"
    path.write_text("{not json")
    monkeypatch.delenv("LESSONS_PROGRESS")
    monkeypatch.setenv("LESSONS_PROGRESS_FILE", str(path))
    assert exercises.progress().passed == {}
    exercises.check("basics.cosine_similarity", basics.cosine_similarity, display_feedback=False)
    assert list(exercises.progress().passed) == ["basics.cosine_similarity"]
