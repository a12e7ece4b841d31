"""bench/reformer.py: the saved memory results are consistent and a small run reproduces them.

Bytes saved for backward are deterministic, so the 2-block measurement is re-run here and
must match the saved number exactly; timings are only checked to be recorded.
"""

import importlib.util
from pathlib import Path

import pytest

from lessons.core.results import load_results

BENCH = Path(__file__).resolve().parent.parent / "bench" / "reformer.py"
FLOAT32 = 4


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_reformer", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results():
    return load_results("reformer_memory")


def test_results_were_measured_at_the_bench_sizes(bench, results):
    assert results["shape"] == bench.SHAPE
    assert results["depths"] == list(bench.DEPTHS)
    assert results["threads"] == 1


def test_plain_stack_grows_linearly_with_depth(results):
    depths, plain = results["depths"], results["saved_bytes"]["plain"]
    per_layer = [b / d for b, d in zip(plain, depths, strict=True)]
    assert max(per_layer) / min(per_layer) < 1.01
    assert results["bytes_per_layer"]["plain"] == pytest.approx(per_layer[-1], rel=0.01)


def test_one_plain_block_accounts_for_the_growth_per_block(results):
    shape, breakdown = results["shape"], results["one_plain_block_by_shape"]
    assert sum(breakdown.values()) == pytest.approx(results["bytes_per_layer"]["plain"])
    weights = str((shape["batch"], shape["heads"], shape["seq"], shape["seq"]))
    assert breakdown[weights] == shape["batch"] * shape["heads"] * shape["seq"] ** 2 * FLOAT32


def test_reversible_stack_stays_flat(results):
    reversible = results["saved_bytes"]["reversible"]
    assert max(reversible) / min(reversible) < 1.03
    assert abs(results["bytes_per_layer"]["reversible"]) < 0.01 * min(reversible)


def test_reversible_stack_saves_only_its_two_outputs(results):
    shape = results["shape"]
    outputs = 2 * shape["batch"] * shape["seq"] * shape["d_model"] * FLOAT32
    assert results["saved_bytes"]["reversible"] == [outputs] * len(results["depths"])


def test_ratio_at_the_deepest_stack_is_recorded(results):
    plain, reversible = (
        results["saved_bytes"]["plain"][-1],
        results["saved_bytes"]["reversible"][-1],
    )
    assert results["ratio_at_deepest"] == pytest.approx(plain / reversible)
    assert results["ratio_at_deepest"] > 100


def test_step_times_are_recorded_at_every_depth(results):
    times = results["step_seconds"]
    assert set(times) == {"plain", "reversible"}
    ratios = [r / p for p, r in zip(times["plain"], times["reversible"], strict=True)]
    assert len(ratios) == len(results["depths"])
    assert results["step_ratio_reversible_over_plain"] == pytest.approx(ratios)


def test_two_blocks_reproduce_the_saved_bytes_exactly(bench, results):
    measured = bench.saved_bytes(2, **bench.SHAPE)
    index = results["depths"].index(2)
    assert measured == {kind: results["saved_bytes"][kind][index] for kind in bench.KINDS}


def test_report_agrees_with_the_results(results):
    text = (BENCH.parent / "results" / "reformer_memory.txt").read_text(encoding="utf-8")
    assert f"{results['ratio_at_deepest']:.1f}x" in text
    for ratio in results["step_ratio_reversible_over_plain"]:
        assert f"{ratio:.2f}x" in text
