"""Timing side by side, for the benchmarks in bench/ and the timings a chapter shows.

`median_times` runs every contender in every repeat, reversing their order every other
repeat, so that a slow spell of the machine (another job, a frequency change) falls on
all of them alike. Quote the ratios between contenders, not the absolute times.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from lessons.core import checks

__all__ = ["median_times"]


def median_times(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, float]:
    """The median seconds of each contender (a function of no arguments), over
    ``repeats`` repeats after ``warmup`` untimed runs of each; every repeat runs all of
    them, in an order that is reversed every other repeat."""
    if not contenders:
        raise ValueError("contenders: expected at least one function to time, got none")
    checks.positive_int("repeats", repeats)
    checks.positive_int("warmup", warmup, minimum=0)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
