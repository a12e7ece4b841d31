"""bench/memory.py: the saved table of chapter 7's tricks is consistent, and a run here
reproduces its deterministic numbers.

The bytes autograd saves are deterministic, so every row's forward pass is re-measured and
must match the saved number exactly; so must the baseline's peak (the profiler's allocation
events of two steps, in one thread). What each trick must leave unchanged is checked on the
saved differences from the baseline; timings are only checked to be recorded.
"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from lessons.core.results import load_results

pytestmark = pytest.mark.usefixtures("one_thread")

BENCH = Path(__file__).resolve().parent.parent / "bench" / "memory.py"
FLOAT32 = 4


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_memory", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def results():
    return load_results("memory")


@pytest.fixture(scope="module")
def rows(results):
    return results["rows"]


def test_results_were_measured_at_the_bench_sizes(bench, results):
    assert results["shape"] == bench.SHAPE
    assert results["micro_batches"] == bench.MICRO_BATCHES
    assert results["lr"] == bench.LR
    assert results["threads"] == 1
    assert list(results["rows"]) == list(bench.TRICKS)
    assert results["labels"] == {name: trick.label for name, trick in bench.TRICKS.items()}
    model = bench.make_model(bench.SHAPE)
    assert results["parameters"] == sum(p.numel() for p in model.parameters())


def test_ratios_are_to_the_baseline(rows):
    base = rows["baseline"]
    for name, row in rows.items():
        assert row["peak_ratio"] == pytest.approx(row["peak_bytes"] / base["peak_bytes"]), name
        assert row["saved_ratio"] == pytest.approx(row["saved_bytes"] / base["saved_bytes"]), name
        assert row["time_ratio"] == pytest.approx(row["step_seconds"] / base["step_seconds"]), name
    assert base["peak_ratio"] == base["saved_ratio"] == base["time_ratio"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "baseline",
        "accumulation",
        "checkpointing",
        "bf16",
        "checkpointing_accumulation",
        "zero_filled",
        "offload",
    ],
)
def test_saved_bytes_are_reproduced_exactly(bench, rows, name):
    assert bench.saved_bytes(bench.TRICKS[name], bench.SHAPE) == rows[name]["saved_bytes"]


def test_baseline_peak_is_reproduced_exactly(bench, rows):
    peak, _ = bench.two_steps(bench.TRICKS["baseline"], bench.SHAPE)
    assert peak == rows["baseline"]["peak_bytes"]


def test_the_memory_tricks_save_memory(rows):
    """Accumulation over 4 micro-batches saves a quarter of the activations at a time (the
    causal mask, shared by the batch, a little more); checkpointing saves only each layer's
    input and what lies outside the layers; together they save the least."""
    base = rows["baseline"]["saved_bytes"]
    assert rows["accumulation"]["saved_ratio"] == pytest.approx(0.25, abs=0.005)
    assert rows["checkpointing"]["saved_ratio"] < 0.2
    assert rows["bf16"]["saved_ratio"] < 0.8
    assert (
        rows["checkpointing_accumulation"]["saved_bytes"] < rows["checkpointing"]["saved_bytes"] / 3
    )
    for name in ("accumulation", "checkpointing", "bf16", "checkpointing_accumulation"):
        assert rows[name]["saved_bytes"] < base, name
        assert rows[name]["peak_ratio"] < 1, name


def test_zero_filled_gradients_and_offload_hold_one_more_copy_of_the_parameters(results, rows):
    """Neither changes the forward pass; zero-filled gradients stay allocated through the
    next forward pass, and offloading to the device the model is on adds the float32 master
    copies: either way the peak rises by exactly the parameters' bytes."""
    base = rows["baseline"]
    parameter_bytes = FLOAT32 * results["parameters"]
    for name in ("zero_filled", "offload"):
        assert rows[name]["saved_bytes"] == base["saved_bytes"], name
        assert rows[name]["peak_bytes"] - base["peak_bytes"] == parameter_bytes, name


def test_every_trick_but_bf16_leaves_the_training_unchanged(results, rows):
    """Checkpointing, zero-filled gradients and offloading do the same arithmetic: no
    difference at all. Accumulation sums in another order: gradients within 1e-5 of the
    largest. Adam's step, lr·m/(√v + eps), magnifies a rounding difference in a gradient
    near eps = 1e-8 (not the direction, the fraction of lr the parameter moves), so the
    parameters differ more than the gradients, but by far less than one step of lr."""
    for name in ("baseline", "checkpointing", "zero_filled", "offload"):
        assert rows[name]["max_parameter_difference"] == 0, name
        assert rows[name]["max_gradient_difference"] == 0, name
    for name in ("accumulation", "checkpointing_accumulation"):
        assert 0 < rows[name]["max_gradient_difference"] < 1e-5, name
        assert 0 < rows[name]["max_parameter_difference"] < 0.1 * results["lr"], name


def test_bf16_differences_are_recorded_and_within_bfloat16_precision(rows):
    """bfloat16 keeps 8 significant bits (a relative precision of 2⁻⁸ ≈ 0.4%): the
    gradients differ from float32's, by a fraction of a percent of the largest."""
    bf16 = rows["bf16"]
    assert 1e-4 < bf16["max_gradient_difference"] < 0.05
    assert bf16["max_parameter_difference"] > 0


def test_step_times_are_recorded(rows):
    for name, row in rows.items():
        assert row["step_seconds"] > 0, name


def test_zero_filled_adam_keeps_the_gradients(bench):
    model = torch.nn.Linear(3, 2)
    model(torch.ones(1, 3)).sum().backward()
    bench.ZeroFilledAdam(model.parameters()).zero_grad(set_to_none=True)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def test_report_agrees_with_the_results(bench, rows):
    text = (BENCH.parent / "results" / "memory.txt").read_text(encoding="utf-8")
    for name, row in rows.items():
        line = next(line for line in text.splitlines() if line.startswith(bench.TRICKS[name].label))
        assert f"{row['peak_bytes'] / 2**20:.1f}" in line
        assert f"{row['peak_ratio']:.2f}" in line
        assert f"{row['saved_ratio']:.2f}" in line
        assert f"{row['time_ratio']:.2f}" in line
