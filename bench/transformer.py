"""Chapter 4's Transformer on the CPU: against PyTorch's layer, and against recurrence.

Run from the repository root::

    .venv/bin/python bench/transformer.py            # writes bench/results/transformer.txt
    .venv/bin/python bench/transformer.py --quick    # small sizes, a few seconds, prints only

1. Speed parity. `lessons.transformer.EncoderLayer` against
   ``nn.TransformerEncoderLayer(batch_first=True)`` with the same weights
   (`EncoderLayer.from_torch`): batch 8, length 256, d_model 256, 8 heads,
   dim_feedforward 1024, dropout 0, float32. Timed: the forward pass in train mode (autograd
   recording), forward + backward in train mode, and the forward pass in eval mode under
   ``torch.no_grad()``. Which path PyTorch took is read from the profiler: the fused
   ``aten::_transformer_encoder_layer_fwd`` is its eval "fast path", and
   ``aten::_scaled_dot_product_flash_attention_for_cpu`` its fused attention kernel. The
   outputs and the gradients (input and parameters) of the two layers are compared in the
   same run, and the profiler's self CPU time per operator says where each one spends a
   forward + backward pass.

2. Why it beats recurrence. One training step (forward, backward, Adam) of four models
   of about the same number of parameters, on the same random inputs and targets (batch
   16, 256 features, mean squared error), at lengths 16 to 512:

   * ``transformer``: `lessons.transformer.Encoder`, 2 layers, d_model 256, 8 heads,
     dim_feedforward 1024, dropout 0, no embeddings or positions (the timed part is the
     stack);
   * ``nn.TransformerEncoder``: PyTorch's, the same sizes and final LayerNorm; its
     attention is the fused kernel, which never stores the (length x length) weights;
   * ``LSTM, projection``: two ``nn.LSTM`` layers with projection, the shape of each
     direction of chapter 2's biLM (``nn.LSTM(d, cells, proj_size=d)``, here d = 256;
     without the biLM's residual connection), with as many cells as give the
     transformer's parameter count. PyTorch runs it with its own per-step kernels (oneDNN
     has no projection);
   * ``LSTM``: two plain ``nn.LSTM`` layers of 256 inputs, cells chosen the same way;
     PyTorch runs them with oneDNN's fused kernel, its fastest CPU LSTM.

   The slope of log(time) against log(length) (least squares) says how each scales.

3. Maximum path length, measured on the autograd graph: from output position n back to
   input position 0, the largest number of matrix multiplications on one path of
   ``grad_fn`` nodes (``mm``, ``addmm``, ``bmm``: `matmul_depth`). The input is built from
   one leaf tensor per position, so position 0 is its own node. Self-attention joins all
   positions in one matrix product, so the transformer's count does not depend on n. For
   the LSTMs the graph is taken two ways: run one position at a time (both layers at
   position t, then t + 1), which leaves in the graph only the true dependencies, the
   path length of Vaswani et al.'s Table 1; and as PyTorch runs a layer, the whole
   sequence through layer 1, then through layer 2 (the sequential chain of that
   schedule). The plain LSTM's graph is read with oneDNN off (one fused node per layer
   hides the steps); the numbers are the same.

Timing: ``torch.set_num_threads`` pinned (``--threads``, recorded); every repeat times
each contender once, in an order reversed every other repeat, after warm-up runs; the
report gives medians and ratios. The load average at the start is recorded. Besides the
report, the numbers are saved with `lessons.core.results.save_results` as
``transformer_speed`` (``src/lessons/results/transformer_speed.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import platform
import statistics
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from lessons.core.results import save_results
from lessons.core.timing import median_times
from lessons.transformer import Encoder, EncoderLayer

ROOT = Path(__file__).resolve().parent.parent
#: Section 1's layer: batch, length and the layer's sizes.
LAYER_SHAPE = dict(batch=8, length=256, d_model=256, heads=8, dim_feedforward=1024)
#: Section 2's models and batches.
STACK = dict(d_model=256, heads=8, dim_feedforward=1024, layers=2)
LENGTHS = (16, 32, 64, 128, 256, 512)
BATCH = 16
#: LSTM cells that give about the transformer stack's parameter count (1,580,032):
#: 2 * (4 c (d + d) + 8 c + d c) = 4624 c with projection, 12 c^2 + 1040 c without.
LSTM_CELLS = {"LSTM, projection": 342, "LSTM": 322}
#: Profiler names of PyTorch's fused kernels (which path it took).
FAST_PATH = "aten::_transformer_encoder_layer_fwd"
FUSED_ATTENTION = "aten::_scaled_dot_product_flash_attention_for_cpu"
#: The autograd nodes that are matrix multiplications.
MATMUL_NODES = frozenset(
    {"MmBackward0", "AddmmBackward0", "BmmBackward0", "BaddbmmBackward0", "MvBackward0"}
)


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# 1. Our encoder layer against PyTorch's
# --------------------------------------------------------------------------------------


def layer_pair(
    d_model: int, heads: int, dim_feedforward: int, seed: int = 0
) -> tuple[EncoderLayer, nn.TransformerEncoderLayer]:
    """(ours, PyTorch's), the same weights, dropout 0, train mode; PyTorch's biases and
    LayerNorm weights are randomised so that copying them is tested too."""
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(
        d_model, heads, dim_feedforward, dropout=0.0, batch_first=True
    )
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            if "bias" in name or "norm" in name:
                parameter.normal_(0.0 if "bias" in name else 1.0, 0.1)
    return EncoderLayer.from_torch(theirs), theirs


def layer_inputs(batch: int, length: int, d_model: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed))


def forward_backward(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The input's gradient after one forward and backward pass of ``layer`` (its
    parameters' gradients are set afresh)."""
    layer.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    layer(x).backward(grad)
    return x.grad


def layer_agreement(
    batch: int, length: int, d_model: int, heads: int, dim_feedforward: int
) -> dict[str, float]:
    """Largest absolute differences, ours against PyTorch: outputs in train mode and in
    eval mode under ``no_grad`` (PyTorch's fast path) and the input gradient; for the
    parameter gradients (sums over every position of the batch, so larger), the largest
    difference over the largest |gradient|, of the worst parameter."""
    ours, theirs = layer_pair(d_model, heads, dim_feedforward)
    x = layer_inputs(batch, length, d_model)
    grad = layer_inputs(batch, length, d_model, seed=2)
    train = (ours(x) - theirs(x)).abs().max().item()
    input_grad = (forward_backward(ours, x, grad) - forward_backward(theirs, x, grad)).abs()
    ours_grads = _parameter_grads(ours)
    theirs_grads = _parameter_grads(theirs)
    parameter_grad = max(
        ((ours_grads[name] - grad).abs().max() / grad.abs().max()).item()
        for name, grad in theirs_grads.items()
    )
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        eval_no_grad = (ours(x) - theirs(x)).abs().max().item()
    return {
        "output, train": train,
        "output, eval no_grad": eval_no_grad,
        "input gradient": input_grad.max().item(),
        "parameter gradients, relative": parameter_grad,
    }


def _parameter_grads(layer: nn.Module) -> dict[str, torch.Tensor]:
    """Parameter gradients under PyTorch's names (ours unpack ``in_proj``; pack them)."""
    grads = {name: p.grad for name, p in layer.named_parameters()}
    if isinstance(layer, EncoderLayer):
        for kind in ("weight", "bias"):
            parts = [grads.pop(f"self_attn.{p}_proj.{kind}") for p in "qkv"]
            grads[f"self_attn.in_proj_{kind}"] = torch.cat(parts)
        grads = {name.replace("feed_forward.", ""): g for name, g in grads.items()}
    return grads


def torch_kernels(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> dict[str, bool]:
    """Which of PyTorch's fused kernels one forward pass of ``layer`` ran, as it is (train
    mode, autograd on) and in eval mode under ``no_grad``: ``{"<mode>: <kernel>": ran}``."""
    found = {}
    for mode in ("train", "eval no_grad"):
        layer.train(mode == "train")
        with _profile() as profiler, torch.set_grad_enabled(mode == "train"):
            layer(x)
        names = {event.name for event in profiler.function_events}
        for kernel in (FAST_PATH, FUSED_ATTENTION):
            found[f"{mode}: {kernel}"] = kernel in names
    layer.train()
    return found


def layer_speed(
    batch: int, length: int, d_model: int, heads: int, dim_feedforward: int, repeats: int
) -> dict[str, float]:
    """Median seconds of the six contenders: ours and PyTorch's, forward (train),
    forward + backward (train), forward (eval, no_grad)."""
    ours, theirs = layer_pair(d_model, heads, dim_feedforward)
    ours_eval, theirs_eval = copy.deepcopy(ours).eval(), copy.deepcopy(theirs).eval()
    x = layer_inputs(batch, length, d_model)
    grad = layer_inputs(batch, length, d_model, seed=2)

    def no_grad(layer: nn.Module) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return layer(x)

        return run

    return median_times(
        {
            "ours, forward (train)": lambda: ours(x),
            "torch, forward (train)": lambda: theirs(x),
            "ours, forward + backward": lambda: forward_backward(ours, x, grad),
            "torch, forward + backward": lambda: forward_backward(theirs, x, grad),
            "ours, forward (eval, no_grad)": no_grad(ours_eval),
            "torch, forward (eval, no_grad)": no_grad(theirs_eval),
        },
        repeats,
    )


def profile_ops(
    batch: int, length: int, d_model: int, heads: int, dim_feedforward: int, steps: int = 3
) -> dict[str, dict[str, float]]:
    """``{"ours" | "torch": {operator: self CPU ms per forward + backward}}``, the mean of
    ``steps`` profiled steps after one unprofiled one."""
    ours, theirs = layer_pair(d_model, heads, dim_feedforward)
    x = layer_inputs(batch, length, d_model)
    grad = layer_inputs(batch, length, d_model, seed=2)
    out = {}
    for name, layer in (("ours", ours), ("torch", theirs)):
        forward_backward(layer, x, grad)
        with _profile() as profiler:
            for _ in range(steps):
                forward_backward(layer, x, grad)
        out[name] = {
            event.key.replace("autograd::engine::evaluate_function: ", "evaluate: "): (
                event.self_cpu_time_total / 1e3 / steps
            )
            for event in profiler.key_averages()
            if event.self_cpu_time_total > 0
        }
    return out


def _profile() -> torch.autograd.profiler.profile:
    """PyTorch's operator profiler without Kineto (which logs to stderr on every use)."""
    return torch.autograd.profiler.profile(use_kineto=False)


# --------------------------------------------------------------------------------------
# 2. The transformer stack against LSTMs
# --------------------------------------------------------------------------------------


class StackedLSTM(nn.Module):
    """``num_layers`` single-layer ``nn.LSTM`` s, batch first, one after the other.

    ``forward(x)``: ``(batch, seq, d_model)`` -> ``(batch, seq, features)`` (``d_model``
    with ``projection``, else ``cells``), each layer over the whole sequence, as PyTorch
    runs a multi-layer LSTM. `forward_by_position` gives the same numbers one position at
    a time.
    """

    def __init__(self, d_model: int, cells: int, num_layers: int = 2, projection: bool = False):
        super().__init__()
        proj_size = d_model if projection else 0
        widths = [d_model] + [d_model if projection else cells] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.LSTM(width, cells, proj_size=proj_size, batch_first=True) for width in widths
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lstm in self.layers:
            x = _quiet(lstm, x)[0]
        return x

    def forward_by_position(self, x: torch.Tensor) -> torch.Tensor:
        """The same output, every layer at position t before any layer at t + 1 (for the
        autograd graph of section 3; not timed)."""
        states: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.layers)
        outputs = []
        for t in range(x.shape[1]):
            h = x[:, t : t + 1]
            for i, lstm in enumerate(self.layers):
                h, states[i] = _quiet(lstm, h, states[i])
            outputs.append(h)
        return torch.cat(outputs, dim=1)


def _quiet(
    lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN"
        warnings.filterwarnings("ignore", message="LSTM with projections is not")
        return lstm(x, state)


def stack_models(
    d_model: int, heads: int, dim_feedforward: int, layers: int, lstm_cells: dict[str, int]
) -> dict[str, nn.Module]:
    """The four models of section 2, seeded, dropout 0, in train mode."""
    torch.manual_seed(0)
    torch_layer = nn.TransformerEncoderLayer(
        d_model, heads, dim_feedforward, dropout=0.0, batch_first=True
    )
    models: dict[str, nn.Module] = {
        "transformer": Encoder(
            layers, d_model, heads, dim_feedforward=dim_feedforward, dropout=0.0
        ),
        "nn.TransformerEncoder": nn.TransformerEncoder(
            torch_layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        ),
    }
    for name, cells in lstm_cells.items():
        models[name] = StackedLSTM(d_model, cells, layers, projection="projection" in name)
    return {name: model.train() for name, model in models.items()}


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def step_times(
    models: dict[str, nn.Module],
    lengths: tuple[int, ...],
    batch: int,
    d_model: int,
    repeats: int,
    progress: bool = True,
) -> dict[str, list[float]]:
    """``{model: [median seconds of one training step at each length]}``: forward, mean
    squared error against a random target, backward, Adam (lr 0: the weights stay put).
    Shorter steps are repeated more often (`repeats_at`)."""
    out: dict[str, list[float]] = {name: [] for name in models}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=0.0) for name, m in models.items()}
    for length in lengths:
        g = torch.Generator().manual_seed(length)
        x = torch.randn(batch, length, d_model, generator=g)
        contenders = {}
        for name, model in models.items():
            with torch.no_grad():
                features = model(x[:, :1]).shape[-1]
            target = torch.randn(batch, length, features, generator=g)
            contenders[name] = lambda m=model, o=optimizers[name], x=x, y=target: train_step(
                m, o, x, y
            )
        times = median_times(contenders, repeats_at(length, repeats), warmup=1)
        for name, seconds in times.items():
            out[name].append(seconds)
        if progress:
            shown = ", ".join(f"{n} {1e3 * s:.0f} ms" for n, s in times.items())
            print(f"length {length}: {shown}", file=sys.stderr, flush=True)
    return out


def repeats_at(length: int, repeats: int) -> int:
    """``repeats`` from length 128 on, more below (as many as take about the same time)."""
    return max(repeats, math.ceil(repeats * 128 / length))


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor
) -> None:
    """Forward, mean squared error, backward, one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(model(x), target).backward()
    optimizer.step()


def loglog_slope(lengths: tuple[int, ...], seconds: list[float]) -> float:
    """The least-squares slope of log(seconds) against log(length): time ~ length^slope."""
    xs = [math.log(n) for n in lengths]
    ys = [math.log(s) for s in seconds]
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    covariance = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    return covariance / sum((x - x_mean) ** 2 for x in xs)


# --------------------------------------------------------------------------------------
# 3. Path length on the autograd graph
# --------------------------------------------------------------------------------------


def matmul_depth(output: torch.Tensor, source: torch.Tensor) -> int | None:
    """The largest number of matrix multiplications (`MATMUL_NODES`) on one path of the
    autograd graph from ``output`` back to ``source``, a leaf tensor that requires grad;
    None if ``output`` does not depend on ``source``.

    Walks ``grad_fn.next_functions`` depth first, without recursion; each node's count
    is computed once (the graph is a DAG with many shared nodes).
    """
    if output.grad_fn is None:
        return None
    best: dict[object, int | None] = {}
    stack: list[tuple[object, bool]] = [(output.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if node in best:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in best)
            continue
        if getattr(node, "variable", None) is source:
            best[node] = 0
            continue
        reached = [best[child] for child in children if best[child] is not None]
        is_matmul = type(node).__name__ in MATMUL_NODES
        best[node] = max(reached) + is_matmul if reached else None
    return best[output.grad_fn]


def position_leaves(batch: int, length: int, d_model: int) -> list[torch.Tensor]:
    """One leaf tensor ``(batch, 1, d_model)`` per position; `torch.cat` them on dim 1."""
    g = torch.Generator().manual_seed(3)
    return [torch.randn(batch, 1, d_model, generator=g).requires_grad_() for _ in range(length)]


@contextlib.contextmanager
def without_onednn() -> Iterator[None]:
    """oneDNN off (PyTorch's own kernels: an LSTM step per autograd node), quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def path_lengths(models: dict[str, nn.Module], lengths: tuple[int, ...], d_model: int) -> dict:
    """``{row: [matmul_depth from input position 0 to output position n - 1, per length
    n]}``: the transformer once, each LSTM by position and as PyTorch runs it (layer after
    layer); with oneDNN off so that every LSTM step is a node."""
    rows: dict[str, list[int | None]] = {}
    with without_onednn():
        for length in lengths:
            leaves = position_leaves(1, length, d_model)
            x = torch.cat(leaves, dim=1)
            for name, model in models.items():
                if isinstance(model, nn.TransformerEncoder):
                    continue  # its fused attention is one node: ours stands for both
                runs = {name: model.forward}
                if isinstance(model, StackedLSTM):
                    runs = {
                        f"{name}, by position": model.forward_by_position,
                        f"{name}, layer after layer": model.forward,
                    }
                for row, run in runs.items():
                    depth = matmul_depth(run(x)[:, -1], leaves[0])
                    rows.setdefault(row, []).append(depth)
    return rows


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


#: The sizes of the real run and of ``--quick`` (a few seconds, for the smoke test).
FULL = dict(layer=LAYER_SHAPE, stack=STACK, lengths=LENGTHS, batch=BATCH, lstm_cells=LSTM_CELLS)
QUICK = dict(
    layer=dict(batch=2, length=16, d_model=32, heads=4, dim_feedforward=64),
    stack=dict(d_model=32, heads=4, dim_feedforward=64, layers=2),
    lengths=(4, 8, 16, 32),
    batch=2,
    lstm_cells={"LSTM, projection": 40, "LSTM": 40},
)


def measure(sizes: dict, repeats: int, step_repeats: int, progress: bool = True) -> dict:
    """Every measurement of the report, as JSON: milliseconds rounded to 0.01, ratios and
    slopes to 0.001; the profile keeps each side's 12 most expensive operators."""
    load_average = os.getloadavg()[0]
    shape, stack, lengths, batch = sizes["layer"], sizes["stack"], sizes["lengths"], sizes["batch"]
    agreement = layer_agreement(**shape)
    _, theirs = layer_pair(shape["d_model"], shape["heads"], shape["dim_feedforward"])
    kernels = torch_kernels(theirs, layer_inputs(shape["batch"], shape["length"], shape["d_model"]))
    times = layer_speed(**shape, repeats=repeats)
    ops = profile_ops(**shape)

    models = stack_models(**stack, lstm_cells=sizes["lstm_cells"])
    steps = step_times(models, lengths, batch, stack["d_model"], step_repeats, progress)
    depths = path_lengths(models, lengths, stack["d_model"])

    modes = ("forward (train)", "forward + backward", "forward (eval, no_grad)")
    tail = lengths[2:]
    return {
        "threads": torch.get_num_threads(),
        "load_average": round(load_average, 2),
        "layer": {
            "shape": dict(shape),
            "dropout": 0.0,
            "repeats": repeats,
            "max_abs_difference": {k: float(f"{v:.3g}") for k, v in agreement.items()},
            "torch_kernels": kernels,
            "median_ms": {name: round(1e3 * s, 2) for name, s in times.items()},
            "ratio_ours_over_torch": {
                mode: round(times[f"ours, {mode}"] / times[f"torch, {mode}"], 3) for mode in modes
            },
            "profile_self_cpu_ms": {
                side: dict(sorted(((k, round(v, 2)) for k, v in table.items()), key=_by_value)[:12])
                for side, table in ops.items()
            },
        },
        "recurrence": {
            **stack,
            "batch": batch,
            "lengths": list(lengths),
            "repeats": [repeats_at(n, step_repeats) for n in lengths],
            "lstm_cells": dict(sizes["lstm_cells"]),
            "parameters": {name: parameter_count(m) for name, m in models.items()},
            "step_ms": {
                name: [round(1e3 * s, 2) for s in values] for name, values in steps.items()
            },
            "us_per_token": {
                name: [
                    round(1e6 * s / (batch * n), 3) for s, n in zip(values, lengths, strict=True)
                ]
                for name, values in steps.items()
            },
            "ratio_over_transformer": {
                name: [round(s / t, 3) for s, t in zip(values, steps["transformer"], strict=True)]
                for name, values in steps.items()
                if name != "transformer"
            },
            "loglog_slope": {
                name: {
                    "all": round(loglog_slope(lengths, values), 3),
                    f"from {tail[0]}": round(loglog_slope(tail, values[2:]), 3),
                }
                for name, values in steps.items()
            },
        },
        "path_length": {
            "lengths": list(lengths),
            "from_input_position": 0,
            "to_output_position": [n - 1 for n in lengths],
            "unit": "matrix multiplications on the longest path of the autograd graph",
            "matmuls": depths,
        },
    }


def _by_value(item: tuple[str, float]) -> float:
    return -item[1]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=21, help="section 1")
    parser.add_argument("--step-repeats", type=int, default=5, help="section 2, from length 128 on")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "transformer.txt"
    )
    parser.add_argument("--note", default="", help="a line about the conditions, e.g. the load")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        record = measure(QUICK, repeats=3, step_repeats=3, progress=False)
    else:
        record = measure(FULL, args.repeats, args.step_repeats)
    command = " ".join(["bench/transformer.py", *(sys.argv[1:] if argv is None else argv)])
    report = format_report(record, command, args.note)
    print(report)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        save_results("transformer_speed", record, command=command)
    return report


def format_report(record: dict, command: str, note: str = "") -> str:
    """The human-readable report of `results_record`."""
    layer, recurrence, paths = record["layer"], record["recurrence"], record["path_length"]
    shape = layer["shape"]
    lines = [
        "The Transformer of chapter 4 on the CPU: against PyTorch's layer, and against recurrence",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
        f"{record['threads']} thread{'s' if record['threads'] > 1 else ''} "
        f"(torch.set_num_threads), load average at the start {record['load_average']:.1f}",
    ]
    if note:
        lines.append(f"note: {note}")
    kernels = layer["torch_kernels"]

    def ran(mode: str, kernel: str) -> str:
        return "ran" if kernels[f"{mode}: {kernel}"] else "did not run"

    lines += [
        "",
        "1. lessons.transformer.EncoderLayer against nn.TransformerEncoderLayer(batch_first=True),",
        f"the same weights (EncoderLayer.from_torch): batch {shape['batch']}, length "
        f"{shape['length']}, d_model {shape['d_model']}, {shape['heads']} heads,",
        f"dim_feedforward {shape['dim_feedforward']}, dropout 0, float32",
        "",
        "largest |ours - torch| in the same run:",
        *(f"  {name:<32}{value:>9.1e}" for name, value in layer["max_abs_difference"].items()),
        "",
        "PyTorch's path, from the profiler:",
        f"  train:         fused attention {FUSED_ATTENTION} {ran('train', FUSED_ATTENTION)}; "
        f"fast path {FAST_PATH} {ran('train', FAST_PATH)}",
        f"  eval no_grad:  fast path {FAST_PATH} {ran('eval no_grad', FAST_PATH)}",
        "",
        f"median of {layer['repeats']} repeats after 2 warm-up runs, order alternating",
        f"{'contender':<42}{'median ms':>10}",
        *(f"{name:<42}{ms:>10.2f}" for name, ms in layer["median_ms"].items()),
        "",
        "ratio ours / torch (below 1: ours is faster):",
        *(f"  {mode:<40}{r:>6.2f}x" for mode, r in layer["ratio_ours_over_torch"].items()),
        "",
        "where forward + backward spends its time: self CPU ms per step (profiler, mean of 3),",
        "the 12 most expensive operators of each",
        f"{'ours':<40}{'ms':>8}    {'torch':<48}{'ms':>8}",
    ]
    ours_ops = list(layer["profile_self_cpu_ms"]["ours"].items())
    torch_ops = list(layer["profile_self_cpu_ms"]["torch"].items())
    for i in range(max(len(ours_ops), len(torch_ops))):
        left = f"{ours_ops[i][0]:<40}{ours_ops[i][1]:>8.2f}" if i < len(ours_ops) else " " * 48
        right = f"{torch_ops[i][0]:<48}{torch_ops[i][1]:>8.2f}" if i < len(torch_ops) else ""
        lines.append(f"{left}    {right}".rstrip())

    lengths = recurrence["lengths"]
    d, cells = recurrence["d_model"], recurrence["lstm_cells"]
    described = {
        "transformer": f"lessons.transformer.Encoder: {recurrence['layers']} layers, d_model {d}, "
        f"{recurrence['heads']} heads, dim_feedforward {recurrence['dim_feedforward']}",
        "nn.TransformerEncoder": "PyTorch's, the same sizes",
    }
    for name, c in cells.items():
        if "projection" in name:
            described[name] = f"{recurrence['layers']} x nn.LSTM({d}, {c}, proj_size={d})"
        else:
            described[name] = (
                f"nn.LSTM({d}, {c}), then {recurrence['layers'] - 1} x nn.LSTM({c}, {c})"
            )

    def table(title: str, rows: dict[str, list[float]], fmt: str) -> list[str]:
        head = f"{title:<38}" + "".join(f"{n:>10}" for n in lengths)
        return [
            head,
            *(
                f"{name:<38}" + "".join(f"{v:>10{fmt}}" for v in values)
                for name, values in rows.items()
            ),
        ]

    slopes = recurrence["loglog_slope"]
    windows = list(next(iter(slopes.values())))
    lines += [
        "",
        "2. One training step (forward, mean squared error, backward, Adam) by sequence length;",
        f"batch {recurrence['batch']}, random inputs of {d} features, dropout 0; median of "
        f"{', '.join(map(str, recurrence['repeats']))} repeats (by length) after 1 warm-up "
        "step, order alternating",
        f"{'model':<26}{'parameters':>11}   layers",
        *(
            f"{name:<26}{recurrence['parameters'][name]:>11,}   {described[name]}"
            for name in recurrence["step_ms"]
        ),
        "",
        *table("ms per step / length", recurrence["step_ms"], ".1f"),
        "",
        *table("µs per token / length", recurrence["us_per_token"], ".2f"),
        "",
        *table("ratio to transformer (ours)", recurrence["ratio_over_transformer"], ".2f"),
        "",
        "log-log slope of the step time against the length (time ~ length^slope):",
        f"{'':<26}" + "".join(f"{w + ' lengths' if w == 'all' else w:>14}" for w in windows),
        *(f"{name:<26}" + "".join(f"{s[w]:>14.2f}" for w in windows) for name, s in slopes.items()),
    ]
    lines += [
        "",
        "3. Path length from input position 0 to the last output position (n - 1): the most",
        "matrix multiplications on one path of the autograd graph (grad_fn nodes mm, addmm,",
        "bmm), one leaf tensor per input position; LSTMs with oneDNN off so that every step",
        "is a node. 'by position': every layer at position t before t + 1 (the dependencies",
        "alone); 'layer after layer': the whole sequence through each layer in turn, as",
        "nn.LSTM runs.",
        *table("matmuls / length n", paths["matmuls"], ""),
        "",
        f"These are the counts the architectures imply, for L = {recurrence['layers']} layers:",
        "  transformer: 6 L whatever n (per layer: the q or k projection, Q K^T, weights @ V,",
        "    the output projection, the two linear maps of the feed-forward network);",
        "  LSTM by position: (n - 1) + L (a hidden-to-hidden product for each position",
        "    crossed, an input product for each layer entered);",
        "  LSTM layer after layer: n L (each layer runs all n steps before the next starts);",
        "  with projection, twice as many: the projection follows each of those products.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
