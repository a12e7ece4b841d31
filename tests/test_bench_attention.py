"""bench/attention.py: its parity measurements agree with PyTorch, and --quick runs."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench" / "attention.py"
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_attention", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_parity_errors_are_below_tolerance(bench, dtype):
    for mask in bench.MASKS:
        assert bench.sdpa_parity(dtype, mask) < TOLERANCE[dtype]
        assert bench.tiled_parity(dtype, mask) < TOLERANCE[dtype]
        for batch_first in (True, False):
            assert bench.mha_parity(dtype, mask, batch_first) < TOLERANCE[dtype]


def test_masks_combine_padding_and_causal(bench):
    mask = bench._masks("padding + causal", [3, 1], 3, 3)
    assert mask[0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert mask[1].tolist() == [[True, False, False]] * 3
    assert bench._masks("none", [3], 3, 3) is None


def test_quick_run_reports_every_row_and_writes_nothing(bench, tmp_path):
    output = tmp_path / "attention.txt"
    report = bench.main(["--quick", "--output", str(output)])
    assert not output.exists()
    starts = ("scaled_dot", "tiled", "MultiHead")
    rows = [line for line in report.splitlines() if line.startswith(starts)]
    assert len(rows) == 2 * 4 * len(bench.MASKS)
    assert all(float(line.split()[-1]) < 1e-5 for line in rows)
    assert "MHA, both need_weights=False:" in report
    ratios = [line for line in report.splitlines() if line.rstrip().endswith("x")]
    assert len(ratios) == 4 and all(float(line.split()[-1][:-1]) > 0 for line in ratios)


def test_results_record_keeps_the_largest_error_of_each_function_and_dtype(bench):
    rows = [
        ("scaled_dot_product_attention", "none", "float32", 2.0e-7),
        ("scaled_dot_product_attention", "causal", "float32", 3.0e-7),
        ("MultiHeadAttention (batch_first=True)", "padding", "float32", 1.0e-7),
        ("MultiHeadAttention (batch_first=False)", "none", "float32", 4.0e-7),
        ("MultiHeadAttention (batch_first=True)", "none", "float64", 1.0e-15),
    ]
    times = {"ours": 0.5, "theirs": 0.25}
    record = bench.results_record(rows, times, {"batch": 8}, repeats=3, load_average=1.5)
    largest = record["largest_parity_error"]
    assert largest["scaled_dot_product_attention"]["float32"] == {"error": 3.0e-7, "mask": "causal"}
    assert largest["MultiHeadAttention"]["float32"] == {"error": 4.0e-7, "mask": "none"}
    assert largest["MultiHeadAttention"]["float64"]["error"] == 1.0e-15
    assert len(record["parity"]) == len(rows)
    assert record["speed"]["median_ms"] == {"ours": 500.0, "theirs": 250.0}
    assert record["speed"]["load_average"] == 1.5
