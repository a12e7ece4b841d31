"""What running the learner's code in a worker process costs a check (`lessons.exercises`).

Run from the repository root::

    .venv/bin/python bench/exercises.py            # writes bench/results/exercises.txt
    .venv/bin/python bench/exercises.py --quick    # a few repeats, prints only

Per check: the wall time of ``exercises.evaluate`` on a correct answer, with the
learner's code in the worker process (`lessons.exercises.sandbox`, warm: started and
reused) and in a thread of this process (``LESSONS_CHECK_SANDBOX=off``, the fallback and
the checker's old way), on two typical exercises: ``basics.softmax`` (7 cases, gradients
checked) and ``attention.scaled_dot_product_attention`` (6 cases, tuple outputs,
gradients checked). Both include the reference solution and the comparison, which run
here either way; the difference is what the worker adds. The answers are defined in this
script's ``__main__``, so they travel by value, as a notebook's functions do. Each repeat
times both ways, in an order that alternates from repeat to repeat, after warm-up
checks; the table gives the median.

Cold: the first check after the worker stopped, which starts a new one (a fresh Python
that imports torch); the median of a few. Recovery: an endless loop with ``timeout_s=1``
(the check returns once the worker is killed), then the next check of a correct answer,
which waits for the new worker that began to start in the background.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from lessons import attention as taught
from lessons import basics
from lessons.exercises import evaluate, get, sandbox

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ("basics.softmax", "attention.scaled_dot_product_attention")


def softmax(x, dim=-1):
    """A learner's correct softmax, defined here as in a notebook cell."""
    return basics.softmax(x, dim)


def scaled_dot_product_attention(query, key, value, mask=None):
    """A learner's correct attention, defined here as in a notebook cell."""
    return taught.scaled_dot_product_attention(query, key, value, mask)


ANSWERS = {EXERCISES[0]: softmax, EXERCISES[1]: scaled_dot_product_attention}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check(exercise_id: str, in_process: bool) -> None:
    """One check of the correct answer, in the worker or (``in_process``) in a thread."""
    if in_process:
        os.environ[sandbox.SANDBOX_ENV] = "off"
    try:
        result = evaluate(get(exercise_id), ANSWERS[exercise_id])
    finally:
        os.environ.pop(sandbox.SANDBOX_ENV, None)
    assert result.passed and bool(result.notes) == in_process, result.report()


def per_check(exercise_id: str, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per check, warm worker and in-process, alternating order."""
    ways = {"worker (warm)": False, "in-process thread": True}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(warmup):
        for in_process in ways.values():
            check(exercise_id, in_process)
    for repeat in range(repeats):
        for way in list(ways) if repeat % 2 == 0 else list(ways)[::-1]:
            times[way].append(timed(lambda: check(exercise_id, ways[way])))  # noqa: B023
    return {way: statistics.median(values) for way, values in times.items()}


def cold(repeats: int) -> float:
    """Median seconds of a check that starts the worker."""
    times = []
    for _ in range(repeats):
        sandbox.shutdown()
        times.append(timed(lambda: check(EXERCISES[0], in_process=False)))
    return statistics.median(times)


def endless(x, dim=-1):
    while True:
        pass


def recovery() -> tuple[float, float]:
    """Seconds of a check whose first case loops forever (timeout_s=1), and of the next."""
    exercise = dataclasses.replace(get(EXERCISES[0]), timeout_s=1.0)
    check(EXERCISES[0], in_process=False)  # warm
    start = time.perf_counter()
    result = evaluate(exercise, endless)
    looping = time.perf_counter() - start
    assert result.cases[0].problem.startswith("did not return within 1 s"), result.report()
    return looping, timed(lambda: check(EXERCISES[0], in_process=False))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few repeats; print, write nothing")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--cold-repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "exercises.txt")
    parser.add_argument("--note", default="", help="a line about the machine, e.g. shared")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    cold_repeats = 1 if args.quick else args.cold_repeats
    load = os.getloadavg()[0]

    rows = {exercise_id: per_check(exercise_id, repeats) for exercise_id in EXERCISES}
    first = cold(cold_repeats)
    looping, after = recovery()

    lines = [
        "Exercise checks: the cost of running the learner's code in a worker process",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python bench/exercises.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} threads here, 1 in the worker",
        f"load average at the start: {load:.2f}",
    ]
    if args.note:
        lines.append(f"note: {args.note}")
    lines += [
        "",
        f"Per check of a correct answer: median of {repeats} repeats after 2 warm-up checks, "
        "order alternating",
        f"{'exercise':<40}{'cases':>6}{'worker ms':>11}{'thread ms':>11}{'added ms':>10}",
    ]
    for exercise_id, times in rows.items():
        worker, thread = times["worker (warm)"], times["in-process thread"]
        cases = len(get(exercise_id).cases())
        lines.append(
            f"{exercise_id:<40}{cases:>6}{worker * 1e3:>11.1f}{thread * 1e3:>11.1f}"
            f"{(worker - thread) * 1e3:>10.1f}"
        )
    lines += [
        "",
        f"Cold: first check, starting the worker (median of {cold_repeats}): {first * 1e3:.0f} ms",
        f"Endless loop, timeout_s=1: the check returned after {looping * 1e3:.0f} ms; the next "
        f"check took {after * 1e3:.0f} ms (it waits for the new worker)",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
