"""bench/transformer.py: our layer agrees with PyTorch's, the path lengths it measures on
the autograd graph are the ones the architectures imply, and --quick runs."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench" / "transformer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_transformer", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_our_layer_agrees_with_pytorchs_in_every_mode(bench, one_thread):
    differences = bench.layer_agreement(batch=2, length=7, d_model=16, heads=4, dim_feedforward=32)
    assert set(differences) == {
        "output, train",
        "output, eval no_grad",
        "input gradient",
        "parameter gradients, relative",
    }
    assert all(0 <= value < 1e-5 for value in differences.values()), differences


def test_the_parameter_gradients_are_compared_under_one_name(bench, one_thread):
    ours, theirs = bench.layer_pair(d_model=8, heads=2, dim_feedforward=16)
    x = bench.layer_inputs(2, 3, 8)
    bench.forward_backward(ours, x, torch.ones(2, 3, 8))
    bench.forward_backward(theirs, x, torch.ones(2, 3, 8))
    ours_grads, theirs_grads = bench._parameter_grads(ours), bench._parameter_grads(theirs)
    assert set(ours_grads) == set(theirs_grads)
    for name, grad in theirs_grads.items():
        assert ours_grads[name].shape == grad.shape, name


def test_the_profiler_sees_which_path_pytorch_takes(bench, one_thread):
    _, theirs = bench.layer_pair(d_model=16, heads=4, dim_feedforward=32)
    kernels = bench.torch_kernels(theirs, bench.layer_inputs(2, 5, 16))
    assert kernels == {
        f"train: {bench.FAST_PATH}": False,
        f"train: {bench.FUSED_ATTENTION}": True,
        f"eval no_grad: {bench.FAST_PATH}": True,
        f"eval no_grad: {bench.FUSED_ATTENTION}": False,
    }
    assert theirs.training  # put back in train mode


def test_matmul_depth_counts_the_longest_chain_of_products(bench):
    a = torch.randn(3, 3, requires_grad=True)
    b = torch.randn(3, 3, requires_grad=True)
    w = torch.randn(3, 3)
    chain = ((a @ w) @ w).relu() @ w  # three products in a row
    assert bench.matmul_depth(chain, a) == 3
    assert bench.matmul_depth(chain + a, a) == 3  # a shortcut does not shorten the longest
    assert bench.matmul_depth(torch.addmm(b, a, w), a) == 1
    assert bench.matmul_depth(torch.bmm(a[None], w[None]), a) == 1
    assert bench.matmul_depth(a * 2, a) == 0
    assert bench.matmul_depth(chain, b) is None  # no path
    assert bench.matmul_depth(w @ w, a) is None  # no graph at all


@pytest.mark.parametrize("projection", [True, False])
def test_the_lstm_gives_the_same_numbers_by_position_and_with_onednn(bench, projection):
    torch.manual_seed(0)
    lstm = bench.StackedLSTM(6, 10, num_layers=3, projection=projection)
    x = torch.randn(2, 5, 6)
    whole = lstm(x)
    assert whole.shape == (2, 5, 6 if projection else 10)
    torch.testing.assert_close(lstm.forward_by_position(x), whole, rtol=0, atol=1e-6)
    with bench.without_onednn():
        torch.testing.assert_close(lstm(x), whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_path_lengths_are_the_ones_the_architectures_imply(bench, layers):
    """From input position 0 to output position n - 1 (lengths n = 1, 2, 5, 9):

    * transformer: 6 products per layer, whatever n (q or k projection, Q K^T,
      weights @ V, output projection, the two linear maps of the feed-forward network);
    * LSTM by position: layer l enters at some position k (its input projection) and
      the path crosses n - 1 positions in all, one hidden-to-hidden product each; with a
      projection every step and every entry also has the projection of the output:
      (n - 1) + layers without, 2 (n - 1) + 2 layers with;
    * LSTM layer after layer: each layer runs all n steps before the next starts, and
      its input projection waits for the whole previous layer: n products per layer
      without projection, 2 n with (the first step's hidden-to-hidden product acts on
      the zero initial state, not on the input).
    """
    lengths = (1, 2, 5, 9)
    models = bench.stack_models(
        d_model=8,
        heads=2,
        dim_feedforward=16,
        layers=layers,
        lstm_cells={"LSTM, projection": 12, "LSTM": 12},
    )
    depths = bench.path_lengths(models, lengths, d_model=8)
    assert depths == {
        "transformer": [6 * layers] * len(lengths),
        "LSTM, projection, by position": [2 * (n - 1) + 2 * layers for n in lengths],
        "LSTM, projection, layer after layer": [2 * n * layers for n in lengths],
        "LSTM, by position": [(n - 1) + layers for n in lengths],
        "LSTM, layer after layer": [n * layers for n in lengths],
    }


def test_the_models_have_about_the_same_number_of_parameters(bench):
    models = bench.stack_models(**bench.STACK, lstm_cells=bench.LSTM_CELLS)
    counts = {name: bench.parameter_count(model) for name, model in models.items()}
    assert counts == {
        "transformer": 1_580_032,
        "nn.TransformerEncoder": 1_580_032,
        "LSTM, projection": 1_581_408,
        "LSTM": 1_579_088,
    }
    # the formulas of the comment on LSTM_CELLS
    d, c, p = 256, bench.LSTM_CELLS["LSTM, projection"], bench.LSTM_CELLS["LSTM"]
    assert counts["LSTM, projection"] == 2 * (4 * c * (d + d) + 8 * c + d * c)
    assert counts["LSTM"] == 12 * p**2 + 1040 * p


def test_loglog_slope_recovers_a_power_law(bench):
    lengths = (16, 32, 64, 128)
    assert bench.loglog_slope(lengths, [3e-4 * n**1.5 for n in lengths]) == pytest.approx(1.5)
    assert bench.loglog_slope(lengths, [0.2] * 4) == pytest.approx(0.0, abs=1e-12)


def table(report: str, title: str) -> dict[str, list[str]]:
    """The rows of the report's table that starts with the line ``title``: {name: cells}."""
    lines = report.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        rows[name] = cells
    return rows


def test_quick_run_reports_everything_and_writes_nothing(bench, tmp_path):
    threads = torch.get_num_threads()
    output = tmp_path / "transformer.txt"
    try:
        report = bench.main(["--quick", "--output", str(output)])
    finally:
        torch.set_num_threads(threads)
    assert not output.exists()
    differences = table(report, "largest |ours - torch|")
    assert len(differences) == 4 and all(float(d) < 1e-5 for (d,) in differences.values())
    ratios = table(report, "ratio ours / torch")
    assert len(ratios) == 3 and all(float(r.removesuffix("x")) > 0 for (r,) in ratios.values())
    steps = table(report, "ms per step / length")
    assert list(steps) == ["transformer", "nn.TransformerEncoder", "LSTM, projection", "LSTM"]
    assert all(len(cells) == 4 and all(float(c) > 0 for c in cells) for cells in steps.values())
    paths = table(report, "matmuls / length n")  # lengths 4, 8, 16, 32; two layers
    assert paths == {
        "transformer": ["12"] * 4,
        "LSTM, projection, by position": ["10", "18", "34", "66"],
        "LSTM, projection, layer after layer": ["16", "32", "64", "128"],
        "LSTM, by position": ["5", "9", "17", "33"],
        "LSTM, layer after layer": ["8", "16", "32", "64"],
    }


def test_the_shipped_results_agree_with_the_report():
    """src/lessons/results/transformer_speed.json and bench/results/transformer.txt come
    from one run and say the same numbers, and the path lengths are the formulas of
    `test_path_lengths_are_the_ones_the_architectures_imply` at the real sizes."""
    from lessons.core.results import load_results

    results = load_results("transformer_speed")
    assert results["_about"]["command"].startswith("bench/transformer.py")
    report = (BENCH.parent / "results" / "transformer.txt").read_text(encoding="utf-8")
    assert f"{results['threads']} thread" in report
    layer, recurrence, paths = results["layer"], results["recurrence"], results["path_length"]
    assert table(report, "contender") == {
        name: [f"{ms:.2f}"] for name, ms in layer["median_ms"].items()
    }
    assert table(report, "ratio ours / torch") == {
        mode: [f"{r:.2f}x"] for mode, r in layer["ratio_ours_over_torch"].items()
    }
    assert table(report, "ms per step / length") == {
        name: [f"{v:.1f}" for v in values] for name, values in recurrence["step_ms"].items()
    }
    for name, count in recurrence["parameters"].items():
        assert f"\n{name:<26}{count:>11,}   " in report, name
    assert table(report, "matmuls / length n") == {
        name: [str(v) for v in values] for name, values in paths["matmuls"].items()
    }
    layers, lengths = recurrence["layers"], paths["lengths"]
    assert paths["matmuls"] == {
        "transformer": [6 * layers] * len(lengths),
        "LSTM, projection, by position": [2 * (n - 1) + 2 * layers for n in lengths],
        "LSTM, projection, layer after layer": [2 * n * layers for n in lengths],
        "LSTM, by position": [(n - 1) + layers for n in lengths],
        "LSTM, layer after layer": [n * layers for n in lengths],
    }


def test_short_steps_are_repeated_more_often(bench):
    assert [bench.repeats_at(n, 5) for n in (16, 32, 64, 100, 128, 512)] == [40, 20, 10, 7, 5, 5]
