"""Chapter 7's tricks on the CPU: the memory each one saves and the time each one costs.

Run from the repository root::

    .venv/bin/python bench/memory.py            # writes bench/results/memory.txt
    .venv/bin/python bench/memory.py --quick    # small sizes, a few seconds, prints only

The model is chapter 4's `lessons.transformer.TransformerLM` (vocabulary 1,000, d_model
256, 4 heads, 4 layers, ff_dim 1,024, learned positions, pre-norm, GeLU; dropout 0, so
that every row draws no random numbers and can be compared with the baseline exactly),
float32 parameters, trained with Adam (lr 1e-3) by `lessons.memory.train_step` on
batches of 16 sequences of 128 random tokens (no padding). Each trick is one row:

* ``baseline``: one batch per step, float32, ``zero_grad(set_to_none=True)`` (what
  `train_step` does, PyTorch's default);
* ``accumulation``: 4 micro-batches of 4 sequences per step (the same 16 sequences);
* ``checkpointing``: every decoder layer checkpointed (`lessons.memory.checkpointed_layers`);
* ``bf16``: the forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)``;
* ``checkpointing + accumulation``: both;
* ``zero-filled gradients``: the optimiser's ``zero_grad`` fills the gradients with
  zeros (``set_to_none=False``) instead of freeing them;
* ``offload``: `lessons.memory.OffloadedAdam`, with its states "offloaded" to the CPU,
  which is also where the model is.

Columns, each also as a ratio to the baseline:

1. Peak memory: the highest point of the memory torch allocated during the first two
   optimiser steps from a fresh model (`lessons.core.activations.peak_memory`, the
   profiler's allocation events), above what existed before them (the parameters and
   the batches). The first step creates Adam's states and the gradients; the second
   starts with the first one's gradients held. So the peak counts the gradients, the
   optimiser states, the activations and every temporary buffer. The optimiser is built
   inside the measured call, so `OffloadedAdam`'s master copies count too.
2. Saved activations: the bytes autograd saves for the backward pass during the forward
   pass of one micro-batch (`lessons.core.activations.SavedActivations`, distinct
   storages, parameters excluded): the most that is held at once, since each
   micro-batch's backward pass frees its own. Deterministic.
3. Step time: the median seconds of one optimiser step (`lessons.core.timing.median_times`:
   every repeat times every row, in an order reversed every other repeat, after 2
   warm-up steps), each row on its own model and optimiser, in one process.
4. Same result?: after the two steps of column 1, the largest absolute difference of any
   parameter from the baseline's, and the largest absolute difference of any gradient
   (of the second step) divided by the largest absolute gradient of the baseline. Adam's
   step, ``lr·m/(√v + eps)``, magnifies a rounding difference in a gradient near
   ``eps = 1e-8`` (it changes the fraction of ``lr`` that the parameter moves), so where
   the gradients differ by rounding (accumulation sums in another order) the parameters
   differ by more than the gradients do, though by far less than ``lr``.

``torch.set_num_threads`` is pinned (``--threads``, recorded). Besides the report, the
numbers are saved with `lessons.core.results.save_results` as ``memory``
(``src/lessons/results/memory.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from lessons.core.activations import SavedActivations, peak_memory
from lessons.core.results import save_results
from lessons.core.timing import median_times
from lessons.memory import (
    OffloadedAdam,
    checkpointed_layers,
    summed_token_loss,
    train_step,
)
from lessons.transformer import TransformerLM

ROOT = Path(__file__).resolve().parent.parent
SHAPE = dict(vocab=1000, d_model=256, heads=4, layers=4, ff_dim=1024, batch=16, seq=128)
QUICK_SHAPE = dict(vocab=100, d_model=32, heads=2, layers=2, ff_dim=64, batch=8, seq=16)
LR = 1e-3
MICRO_BATCHES = 4
Batch = tuple[torch.Tensor, torch.Tensor]


class ZeroFilledAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose ``zero_grad`` fills the gradients with zeros and keeps
    them allocated between steps (``set_to_none=False``), whatever its caller asks for."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none=False)


@dataclass(frozen=True)
class Trick:
    """One row of the table: how `train_step` is called and with which optimiser."""

    label: str
    micro_batches: int = 1
    checkpoint: bool = False
    autocast_dtype: torch.dtype | None = None
    optimizer: Callable[..., object] = torch.optim.Adam


TRICKS = {
    "baseline": Trick("float32 Adam, set_to_none (baseline)"),
    "accumulation": Trick("accumulation, 4 micro-batches", micro_batches=MICRO_BATCHES),
    "checkpointing": Trick("checkpointing, every layer", checkpoint=True),
    "bf16": Trick("bf16 autocast", autocast_dtype=torch.bfloat16),
    "checkpointing_accumulation": Trick(
        "checkpointing + accumulation", micro_batches=MICRO_BATCHES, checkpoint=True
    ),
    "zero_filled": Trick("gradients zero-filled, not freed", optimizer=ZeroFilledAdam),
    "offload": Trick("OffloadedAdam, model on the CPU too", optimizer=OffloadedAdam),
}


def make_model(shape: dict[str, int], seed: int = 0) -> TransformerLM:
    """Chapter 4's language model at ``shape``, dropout 0, seeded: the same weights each call."""
    torch.manual_seed(seed)
    return TransformerLM(
        shape["vocab"],
        d_model=shape["d_model"],
        num_heads=shape["heads"],
        num_layers=shape["layers"],
        ff_dim=shape["ff_dim"],
        max_len=shape["seq"],
        dropout=0.0,
    ).train()


def make_batches(shape: dict[str, int], n: int = 2, seed: int = 1) -> list[Batch]:
    """``n`` batches ``(inputs, targets)``, each ``(batch, seq)``, of random tokens."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(
        shape["vocab"], (n, shape["batch"], shape["seq"] + 1), generator=generator
    )
    return [(ids[:, :-1], ids[:, 1:]) for ids in tokens]


def split(batch: Batch, k: int) -> list[Batch]:
    """``batch`` cut into ``k`` micro-batches of ``batch_size / k`` sequences each."""
    inputs, targets = batch
    return list(zip(inputs.chunk(k), targets.chunk(k), strict=True))


def step(trick: Trick, model: nn.Module, optimizer: object, batch: Batch) -> None:
    """One optimiser step of ``model`` over ``batch`` with ``trick`` turned on."""
    train_step(
        model,
        split(batch, trick.micro_batches),
        optimizer,
        checkpoint=trick.checkpoint,
        autocast_dtype=trick.autocast_dtype,
    )


def saved_bytes(trick: Trick, shape: dict[str, int]) -> int:
    """Bytes autograd saves during the forward pass of one micro-batch under ``trick``."""
    model = make_model(shape)
    micro_batch = split(make_batches(shape)[0], trick.micro_batches)[0]
    dtype = trick.autocast_dtype
    with (
        checkpointed_layers(model) if trick.checkpoint else nullcontext(),
        torch.autocast("cpu", dtype=dtype, enabled=dtype is not None),
        SavedActivations(exclude=model.parameters()) as saved,
    ):
        summed_token_loss(model, micro_batch)
    return saved.bytes


def two_steps(trick: Trick, shape: dict[str, int]) -> tuple[int, TransformerLM]:
    """The peak memory of two optimiser steps from a fresh model, and the model after them."""
    model, batches = make_model(shape), make_batches(shape)

    def train() -> None:
        optimizer = trick.optimizer(model.parameters(), lr=LR)
        for batch in batches:
            step(trick, model, optimizer, batch)

    return peak_memory(train), model


@torch.no_grad()
def differences(model: nn.Module, baseline: nn.Module) -> tuple[float, float]:
    """The largest absolute parameter difference from ``baseline``, and the largest absolute
    gradient difference divided by the baseline's largest absolute gradient."""
    pairs = list(zip(model.parameters(), baseline.parameters(), strict=True))
    parameters = max(float((p - q).abs().max()) for p, q in pairs)
    gradients = max(float((p.grad - q.grad).abs().max()) for p, q in pairs)
    largest = max(float(q.grad.abs().max()) for _, q in pairs)
    return parameters, gradients / largest


def step_times(shape: dict[str, int], repeats: int) -> dict[str, float]:
    """Median seconds of one optimiser step under each trick, side by side."""
    batch = make_batches(shape)[0]
    contenders = {}
    for name, trick in TRICKS.items():
        model = make_model(shape)
        optimizer = trick.optimizer(model.parameters(), lr=LR)
        contenders[name] = lambda t=trick, m=model, o=optimizer: step(t, m, o, batch)
    return median_times(contenders, repeats)


def measure(shape: dict[str, int], repeats: int) -> dict[str, dict[str, float]]:
    """Every column of the table, for every row: ``{row: {column: value}}``."""
    rows: dict[str, dict[str, float]] = {}
    baseline_model = None
    for name, trick in TRICKS.items():
        peak, model = two_steps(trick, shape)
        if baseline_model is None:
            baseline_model = model
        parameters, gradients = differences(model, baseline_model)
        rows[name] = {
            "peak_bytes": peak,
            "saved_bytes": saved_bytes(trick, shape),
            "max_parameter_difference": parameters,
            "max_gradient_difference": gradients,
        }
    for name, seconds in step_times(shape, repeats).items():
        rows[name]["step_seconds"] = seconds
    base = rows["baseline"]
    for row in rows.values():
        row["peak_ratio"] = row["peak_bytes"] / base["peak_bytes"]
        row["saved_ratio"] = row["saved_bytes"] / base["saved_bytes"]
        row["time_ratio"] = row["step_seconds"] / base["step_seconds"]
    return rows


def report(shape: dict[str, int], rows: dict[str, dict[str, float]], meta: dict) -> str:
    """The human-readable report."""
    n_params = sum(p.numel() for p in make_model(shape).parameters())
    lines = [
        "Chapter 7's tricks on the CPU: memory saved against time paid, one Adam step each",
        f"date: {meta['date']}",
        f"command: {meta['command']}",
        f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
        f"{meta['threads']} thread (torch.set_num_threads), load average (1 min) "
        f"{meta['load']:.2f} at the start, {meta['load_end']:.2f} at the end",
        "",
        f"model: chapter 4's TransformerLM, vocabulary {shape['vocab']}, d_model "
        f"{shape['d_model']}, {shape['heads']} heads, {shape['layers']} layers, ff_dim "
        f"{shape['ff_dim']}, dropout 0, float32, {n_params:,} parameters "
        f"({4 * n_params / 2**20:.1f} MiB)",
        f"batch: {shape['batch']} sequences of {shape['seq']} random tokens; Adam, lr {LR}; "
        f"accumulation: {MICRO_BATCHES} micro-batches of {shape['batch'] // MICRO_BATCHES}",
        "",
        "peak: torch's allocations during the first two steps from a fresh model, above the",
        "  parameters and batches (gradients, Adam's states, activations, temporaries)",
        "saved: bytes autograd saves in the forward pass of one micro-batch",
        f"time: median of {meta['repeats']} repeats of one step after 2 warm-up steps, "
        "order alternating",
        "same result: max |parameter - baseline| after the two steps; max |gradient -",
        "  baseline| / max |baseline gradient| of the second step (Adam's lr*m/(sqrt(v) + eps)",
        "  magnifies rounding differences in gradients near eps = 1e-8 into the parameters)",
        "",
        f"{'trick':<38}{'peak MiB':>9}{'x base':>8}{'saved MiB':>10}{'x base':>8}"
        f"{'ms':>7}{'x base':>8}{'max dparam':>12}{'max dgrad':>11}",
    ]
    for name, row in rows.items():
        lines.append(
            f"{TRICKS[name].label:<38}{row['peak_bytes'] / 2**20:>9.1f}{row['peak_ratio']:>8.2f}"
            f"{row['saved_bytes'] / 2**20:>10.1f}{row['saved_ratio']:>8.2f}"
            f"{row['step_seconds'] * 1e3:>7.0f}{row['time_ratio']:>8.2f}"
            f"{row['max_parameter_difference']:>12.1e}{row['max_gradient_difference']:>11.1e}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "memory.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = QUICK_SHAPE if args.quick else SHAPE
    command = " ".join([".venv/bin/python bench/memory.py", *(argv or sys.argv[1:])])
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "threads": args.threads,
        "load": os.getloadavg()[0],
        "repeats": args.repeats,
    }
    rows = measure(shape, args.repeats)
    meta["load_end"] = os.getloadavg()[0]
    text = report(shape, rows, meta)
    print(text, end="")
    if not args.quick:
        args.output.write_text(text, encoding="utf-8")
        save_results(
            "memory",
            {
                "shape": shape,
                "micro_batches": MICRO_BATCHES,
                "lr": LR,
                "threads": args.threads,
                "dtype": "float32",
                "parameters": sum(p.numel() for p in make_model(shape).parameters()),
                "labels": {name: trick.label for name, trick in TRICKS.items()},
                "rows": rows,
                "repeats": args.repeats,
            },
            command=command,
        )
    return text


if __name__ == "__main__":
    main()
