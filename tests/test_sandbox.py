"""Tests of lessons.exercises.sandbox: the learner's code runs in a worker process.

Whatever the answer does (loop forever in Python or in C, crash, print without end,
return something odd), the check ends with feedback and the next check works. The
timing bounds are generous on purpose (a busy 2-core machine); the intended bounds
are in the comments.
"""

from __future__ import annotations

import dataclasses
import linecache
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lessons import exercises
from lessons.basics import softmax
from lessons.exercises import sandbox
from lessons.exercises.sandbox import PRINT_LIMIT

CUT_NOTE = f"... (cut: only the first {PRINT_LIMIT} characters are shown)"
IN_PROCESS = "your code ran inside the notebook's own process: an endless loop cannot be stopped"


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONS_PROGRESS", "off")
    monkeypatch.delenv(sandbox.SANDBOX_ENV, raising=False)


@pytest.fixture(params=["worker", "thread"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the learner's code in the worker, then in a thread (the fallback)."""
    if request.param == "thread":
        monkeypatch.setenv(sandbox.SANDBOX_ENV, "off")
    return request.param


def softmax_exercise(timeout_s: float = 1.0) -> exercises.Exercise:
    """basics.softmax (7 cases, gradients checked) with a short timeout."""
    return dataclasses.replace(exercises.get("basics.softmax"), timeout_s=timeout_s)


def printed_pid(result: exercises.CheckResult) -> int:
    return int(result.cases[0].printed.split()[0])


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(") ", 1)[-1].startswith("Z"))


def wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


def settle() -> None:
    """Wait for workers starting in the background (after an earlier test's timeout)."""
    for thread in threading.enumerate():
        if thread.name == "lessons-check-warm-up":
            thread.join(timeout=60)


def warm() -> None:
    """Have a worker ready, so that timings measure the check and not the start."""
    assert exercises.evaluate(softmax_exercise(), softmax).passed


# --- Endless loops, crashes: the check ends, nothing keeps running, the next check works -----


def spin_in_python(x, dim=-1):
    print(os.getpid(), flush=True)
    while True:
        pass


def spin_in_c(x, dim=-1):
    print(os.getpid(), flush=True)
    return sum(range(10**12))  # one C call: never releases the GIL


def power_tower(x, dim=-1):
    print(os.getpid(), flush=True)
    return 10**10**8  # a C-level big-integer power, minutes long


@pytest.mark.parametrize("endless", [spin_in_python, spin_in_c, power_tower])
def test_endless_loop_times_out_and_the_worker_is_killed(endless) -> None:
    warm()
    start = time.monotonic()
    result = exercises.evaluate(softmax_exercise(timeout_s=1.0), endless)
    # Intended: within timeout_s + 2 s; asserted with room for a busy machine.
    assert time.monotonic() - start < 1.0 + 4.0
    first, *rest = result.cases
    assert first.problem == "did not return within 1 s (an endless loop?)"
    assert first.got == "(nothing: it was stopped)"
    assert all(c.skipped and c.problem == "not run: an earlier case timed out" for c in rest)
    assert "      not run: an earlier case timed out" in result.report()
    assert result.to_html().count('class="lessons-case"') == len(result.cases)
    assert wait_until_gone(printed_pid(result), seconds=1.0)  # printed before the timeout

    start = time.monotonic()
    assert exercises.check("basics.softmax", softmax, display_feedback=False).passed
    # Intended: a new worker's start (about 2 s here), begun in the background already.
    assert time.monotonic() - start < 30.0


def test_endless_gradient_run_times_out_too() -> None:
    def slow_backward(x, dim=-1):
        out = softmax(x, dim)
        return out if not out.requires_grad else out + spin_in_python(x)

    result = exercises.evaluate(softmax_exercise(timeout_s=1.0), slow_backward)
    assert result.cases[0].problem == "backpropagating through your output failed: timed out"
    assert result.cases[1].skipped


@pytest.mark.parametrize(
    ("crash", "code"),
    [
        ("os._exit(3)", "exit code 3"),
        ("__import__('ctypes').string_at(0)", "exit code -11, SIGSEGV"),
    ],
)
def test_crashing_worker_becomes_feedback_and_the_next_check_works(crash: str, code: str) -> None:
    crashing = eval(f"lambda x, dim=-1: {crash}")  # noqa: S307 - the learner's crash
    result = exercises.evaluate(softmax_exercise(), crashing)
    first, *rest = result.cases
    assert first.problem == f"the worker process stopped ({code}) while running your function"
    assert first.got == "(nothing: the worker process stopped)"
    msg = "not run: an earlier case stopped the worker process"
    assert all(c.skipped and c.problem == msg for c in rest)
    assert exercises.check("basics.softmax", softmax, display_feedback=False).passed


def test_worker_is_reused_with_one_torch_thread_and_a_clean_state() -> None:
    def probe(x, dim=-1):
        print(os.getpid(), torch.get_num_threads(), torch.get_default_dtype())
        torch.set_default_dtype(torch.float64)  # must not leak into the next case
        torch.set_grad_enabled(False)
        return softmax(x, dim)

    first = exercises.evaluate(softmax_exercise(), probe)
    second = exercises.evaluate(softmax_exercise(), probe)
    assert {c.printed.split(" ", 1)[1] for c in first.cases} == {"1 torch.float32\n"}
    assert printed_pid(first) == printed_pid(second) != os.getpid()
    assert torch.get_default_dtype() == torch.float32  # and nothing leaked into this process


def test_threads_left_running_retire_the_worker() -> None:
    def leaves_a_thread(x, dim=-1):
        print(os.getpid())
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        return softmax(x, dim)

    result = exercises.evaluate(softmax_exercise(), leaves_a_thread)
    assert result.passed
    assert wait_until_gone(printed_pid(result))


# --- Printing ----------------------------------------------------------------------------------


def test_prints_are_captured_per_case_and_shown(mode: str) -> None:
    def chatty(x, dim=-1):
        print("shape", tuple(x.shape))
        print("a warning", file=sys.stderr)
        return softmax(x, dim)

    result = exercises.evaluate(softmax_exercise(), chatty)
    assert result.passed
    assert result.cases[0].printed == "shape (2, 5)\na warning\n"
    assert result.cases[1].printed.startswith("shape (2, 3, 4)")
    lines = result.report().splitlines()
    assert lines[1 + (mode == "thread") : 5 + (mode == "thread")] == [
        "  ✓ case 1: random 2x5, over the last dim",
        "      printed:  shape (2, 5)",
        "                a warning",
        "  ✓ case 2: 3-D input, over dim=1",
    ]
    page = result.to_html()
    assert page.count('class="lessons-case"') == 7
    assert "shape (2, 5)\na warning\n</pre></div>" in page


def test_huge_printed_output_is_cut(mode: str) -> None:
    def flood(x, dim=-1):
        print("<" + "x" * 10**6 + ">")
        print("never shown")
        return softmax(x, dim)

    result = exercises.evaluate(softmax_exercise(), flood)
    assert result.passed
    printed = result.cases[0].printed
    assert printed == "<" + "x" * (PRINT_LIMIT - 1) + "\n" + CUT_NOTE
    assert len(result.report()) < 8 * (PRINT_LIMIT + 200)


def test_endless_printing_is_cut_and_shown_after_the_timeout() -> None:
    def shouting(x, dim=-1):
        while True:
            print("again")

    result = exercises.evaluate(softmax_exercise(timeout_s=1.0), shouting)
    printed = result.cases[0].printed
    assert printed.startswith("again\nagain\n") and printed.endswith(CUT_NOTE)
    assert len(printed) <= PRINT_LIMIT + len(CUT_NOTE) + 1
    assert result.cases[0].problem == "did not return within 1 s (an endless loop?)"


# --- Odd return values -------------------------------------------------------------------------


def odd_answers() -> dict[str, tuple]:
    """name: (answer, problem, got): each answer defined here, as in a notebook cell."""

    class BadRepr:
        def __repr__(self):
            raise ValueError("no repr")

    class BadEq:
        def __eq__(self, other):
            raise RuntimeError("no eq")

        __hash__ = object.__hash__

    def nested(x, dim=-1):
        loop = []
        loop.append(loop)
        return loop

    cannot = "which cannot be compared; return a torch.Tensor"
    return {
        "meta": (
            lambda x, dim=-1: torch.empty_like(x, device="meta"),
            "a meta tensor, which has a shape but no values: compute real values",
            "float32[2, 5] (a meta tensor: no values)",
        ),
        "sparse": (
            lambda x, dim=-1: softmax(x, dim).to_sparse(),
            "a sparse_coo tensor instead of a dense one: use `.to_dense()`",
            "float32[2, 5] sparse_coo [[",
        ),
        "generator": (
            lambda x, dim=-1: (row for row in x),
            f"your function returned a generator, {cannot}",
            "generator <generator object",
        ),
        "repr raises": (
            lambda x, dim=-1: BadRepr(),
            f"your function returned a BadRepr, {cannot}",
            "BadRepr (its repr raised ValueError)",
        ),
        "eq raises": (lambda x, dim=-1: BadEq(), f"your function returned a BadEq, {cannot}", ""),
        "open file": (
            lambda x, dim=-1: open(os.devnull),  # noqa: SIM115
            f"your function returned a TextIOWrapper, {cannot}",
            "TextIOWrapper <_io.TextIOWrapper name='/dev/null'",
        ),
        "function": (
            lambda x, dim=-1: softmax,
            f"your function returned a function, {cannot}",
            "function <function softmax at",
        ),
        "nested tuple": (
            lambda x, dim=-1: ((softmax(x, dim),),),
            "expected a torch.Tensor, got tuple",
            "((float32[2, 5] [[",
        ),
        "list in itself": (nested, "expected a torch.Tensor, got list", "[[[[[[[["),
        "numpy array": (
            lambda x, dim=-1: softmax(x, dim).numpy(),
            "expected a torch.Tensor, got ndarray",
            "ndarray array([[",
        ),
        "None": (
            lambda x, dim=-1: None,
            "your function returned None: did you forget `return`?",
            "",
        ),
    }


@pytest.mark.parametrize("name", list(odd_answers()))
def test_odd_return_values_become_feedback(name: str, mode: str) -> None:
    answer, problem, got = odd_answers()[name]
    result = exercises.evaluate(softmax_exercise(), answer)
    case = result.cases[0]
    assert not result.passed and case.problem == problem
    assert case.got.startswith(got)
    assert case.hint  # a hint, even if no predicate fits
    result.report(), result.to_html()  # noqa: B018 - rendering must not raise either


def test_tensors_that_require_grad_are_compared(mode: str) -> None:
    def attached(x, dim=-1):
        return softmax(x.requires_grad_(), dim)

    def new_leaf(x, dim=-1):
        return softmax(x, dim).detach().requires_grad_()

    assert exercises.evaluate(softmax_exercise(), attached).passed
    problem = exercises.evaluate(softmax_exercise(), new_leaf).cases[0].problem
    assert problem == "no gradient reached the input: is your output detached from it?"


# --- Where the worker cannot run the answer: in a thread, and the report says so ----------------


def test_switched_off_runs_in_process_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.SANDBOX_ENV, "off")

    def mine(x, dim=-1):
        print(os.getpid())
        return softmax(x, dim)

    result = exercises.evaluate(softmax_exercise(), mine)
    assert result.passed and printed_pid(result) == os.getpid()
    assert result.notes == (f"{sandbox.SANDBOX_ENV}=off: {IN_PROCESS} there",)
    assert result.report().splitlines()[1] == f"  note:     {result.notes[0]}"
    assert "<i>note: LESSONS_CHECK_SANDBOX=off: your code ran inside" in result.to_html()


def test_in_process_timeout_skips_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.SANDBOX_ENV, "off")

    def slow(x, dim=-1):
        time.sleep(3.0)  # keeps sleeping in its thread after the check: it cannot be stopped

    result = exercises.evaluate(softmax_exercise(timeout_s=0.2), slow)
    assert result.cases[0].got == "(nothing: still running)"
    assert result.cases[0].problem == "did not return within 0.2 s (an endless loop?)"
    assert all(c.skipped for c in result.cases[1:])


def test_exception_points_at_the_learners_line(mode: str) -> None:
    def crashing(x, dim=-1):
        return x / undefined_name  # noqa: F821

    case = exercises.evaluate(softmax_exercise(), crashing).cases[0]
    assert case.problem.startswith(
        "raised NameError: name 'undefined_name' is not defined (in crashing, line "
    )
    assert case.problem.endswith(": return x / undefined_name  # noqa: F821)")
    assert case.got == "(nothing: it raised an exception)"


def test_function_from_a_notebook_cell_shows_its_line(monkeypatch, tmp_path) -> None:
    source = "def cell_answer(x, dim=-1):\n    return x / undefined_name\n"
    filename = str(tmp_path / "ipykernel_cell.py")  # never written: it lives in linecache
    monkeypatch.setitem(
        linecache.cache, filename, (len(source), None, [*source.splitlines(True)], filename)
    )
    namespace = {"__name__": "__main__"}  # as in a notebook: sent by value
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    case = exercises.evaluate(softmax_exercise(), namespace["cell_answer"]).cases[0]
    assert case.problem.endswith("(in cell_answer, line 2: return x / undefined_name)")


def test_function_that_cannot_be_pickled_runs_in_process() -> None:
    lock = threading.Lock()

    def locked(x, dim=-1):
        with lock:
            return softmax(x, dim)

    result = exercises.evaluate(softmax_exercise(), locked)
    assert result.passed
    assert result.notes[0].startswith(
        "your function could not be sent to a separate process (TypeError: cannot pickle"
    )
    assert result.notes[0].endswith(f"so {IN_PROCESS} there")


def test_function_the_worker_cannot_import_runs_in_process(monkeypatch, tmp_path) -> None:
    (tmp_path / "lessons_learner_module.py").write_text(
        "from lessons.basics import softmax\n\ndef answer(x, dim=-1):\n    return softmax(x, dim)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from lessons_learner_module import answer  # by reference: the worker imports it

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    result = exercises.evaluate(softmax_exercise(), answer)
    assert result.passed
    assert result.notes[0].startswith(
        "the worker process could not load your function (ModuleNotFoundError: No module named"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # the worker gets sys.path
    assert exercises.evaluate(softmax_exercise(), answer).notes == ()


def test_without_subprocesses_checks_run_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    settle()
    sandbox.shutdown()
    monkeypatch.setattr(sandbox, "_start_failure", "")  # restored afterwards: workers again
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # as on Pyodide: no process
    sandbox.warm_up()  # harmless: fails quietly in its thread
    result = exercises.evaluate(softmax_exercise(), softmax)
    assert result.passed
    assert result.notes[0].startswith("the worker process could not start (FileNotFoundError")
    sandbox.warm_up()  # does nothing once starting failed


def test_warm_up_starts_the_worker_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.SANDBOX_ENV, "off")
    settle()
    sandbox.shutdown()
    sandbox.warm_up()
    assert sandbox._worker is None  # switched off: nothing started
    monkeypatch.delenv(sandbox.SANDBOX_ENV)
    sandbox.warm_up()
    deadline = time.monotonic() + 60
    while (sandbox._worker is None or not sandbox._worker.alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = sandbox._worker
    assert exercises.evaluate(softmax_exercise(), softmax).passed
    assert sandbox._worker is worker  # the check used the warm worker


# --- Plain scripts and the end of the process ---------------------------------------------------

SCRIPT = """\
import os, time
from lessons import exercises
from lessons.basics import softmax

def answer(x, dim=-1):
    print(os.getpid())
    return softmax(x, dim)

result = exercises.check("basics.softmax", answer, display_feedback=False)
print("passed", result.passed, "worker", result.cases[0].printed.strip(), flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
"""


def run_script(tmp_path: Path, **env: str) -> subprocess.Popen:
    """A plain script, no ``if __name__ == "__main__":`` guard: the worker must not rerun it."""
    script = tmp_path / "learner.py"
    script.write_text(SCRIPT)
    environment = {**os.environ, "LESSONS_PROGRESS": "off", **env}
    return subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=environment
    )


def test_script_checks_once_and_the_worker_ends_with_it(tmp_path: Path) -> None:
    process = run_script(tmp_path)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    (line,) = output.splitlines()  # the script's top level ran once, not again in the worker
    assert line.startswith("passed True worker ")
    assert wait_until_gone(int(line.split()[-1]))  # atexit stopped the worker


def test_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    process = run_script(tmp_path, SLEEP="60")
    line = process.stdout.readline()
    assert line.startswith("passed True worker ")
    process.send_signal(signal.SIGKILL)  # no atexit: the worker sees its socket close
    process.wait()
    assert wait_until_gone(int(line.split()[-1]))
