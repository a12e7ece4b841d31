"""lessons.core.timing: every contender runs in every repeat, in alternating order."""

import pytest

from lessons.core.timing import median_times


def test_every_contender_runs_warmup_plus_repeats_times_in_alternating_order():
    calls: list[str] = []
    times = median_times({n: (lambda n=n: calls.append(n)) for n in "abc"}, repeats=4, warmup=1)
    assert calls == list("abc" + "abc" + "cba" + "abc" + "cba")
    assert {n: calls.count(n) for n in "abc"} == {"a": 5, "b": 5, "c": 5}  # equally often
    assert set(times) == set("abc") and all(t >= 0 for t in times.values())


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="contenders"):
        median_times({}, repeats=3)
    with pytest.raises(ValueError, match="repeats"):
        median_times({"a": lambda: None}, repeats=0)
