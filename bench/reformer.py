"""Chapter 6's reversible layers on the CPU: activation memory and time against depth.

Run from the repository root::

    .venv/bin/python bench/reformer.py            # writes bench/results/reformer_memory.txt
    .venv/bin/python bench/reformer.py --quick    # small sizes, a few seconds, prints only

The same Reformer blocks (`lessons.reformer.ReversibleBlock` of a `SelfAttentionSublayer`
and a `FeedForwardSublayer`, dropout 0, float32) run as two stacks:

* ``plain``: ``ReversibleStack(blocks, reversible=False)``, an ordinary residual stack
  that autograd remembers block by block;
* ``reversible``: ``ReversibleStack(blocks)``, whose backward pass recomputes each
  block's inputs from its outputs.

1. Memory (Kitaev et al.'s claim that reversible layers make activation memory
   independent of depth). For 2, 4, 8 and 16 blocks, the bytes of the distinct storages
   autograd saves for the backward pass during one forward pass
   (`lessons.core.activations.SavedActivations`, parameters excluded). The input does
   not require grad. Bytes are deterministic: no timing, no randomness in them.

2. Time. One training step (forward, then backward of the sum of the output) of each
   stack at each depth, with `lessons.core.timing.median_times` (every repeat times
   both, in an order reversed every other repeat, after warm-up runs). The ratio
   reversible / plain is the cost of recomputing instead of remembering.

Sizes: batch 1, length 1,024, d_model 128, 4 heads, dim_feedforward 512, attention over
the whole sequence (chapter 3's `MultiHeadAttention`). ``torch.set_num_threads`` pinned
(``--threads``, recorded). Besides the report, the numbers are saved with
`lessons.core.results.save_results` as ``reformer_memory``
(``src/lessons/results/reformer_memory.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch

from lessons.core.activations import SavedActivations
from lessons.core.results import save_results
from lessons.core.timing import median_times
from lessons.reformer import (
    FeedForwardSublayer,
    ReversibleBlock,
    ReversibleStack,
    SelfAttentionSublayer,
)

ROOT = Path(__file__).resolve().parent.parent
SHAPE = dict(batch=1, seq=1024, d_model=128, heads=4, d_ff=512)
QUICK_SHAPE = dict(batch=1, seq=64, d_model=32, heads=4, d_ff=64)
DEPTHS = (2, 4, 8, 16)
KINDS = ("plain", "reversible")


def make_stack(
    layers: int, d_model: int, heads: int, d_ff: int, reversible: bool, seed: int = 0
) -> ReversibleStack:
    """``layers`` Reformer blocks (attention as F, feed-forward as G), dropout 0, seeded."""
    torch.manual_seed(seed)
    blocks = [
        ReversibleBlock(SelfAttentionSublayer(d_model, heads), FeedForwardSublayer(d_model, d_ff))
        for _ in range(layers)
    ]
    return ReversibleStack(blocks, reversible=reversible).train()


def make_inputs(batch: int, seq: int, d_model: int, seed: int = 1) -> torch.Tensor:
    """``(batch, seq, d_model)`` standard normal inputs from a seeded generator."""
    return torch.randn(batch, seq, d_model, generator=torch.Generator().manual_seed(seed))


def saved_bytes(
    layers: int, batch: int, seq: int, d_model: int, heads: int, d_ff: int
) -> dict[str, int]:
    """Bytes autograd saves during one forward pass of each stack: ``{"plain": ...,
    "reversible": ...}`` (distinct storages, parameters excluded)."""
    x = make_inputs(batch, seq, d_model)
    found = {}
    for kind in KINDS:
        stack = make_stack(layers, d_model, heads, d_ff, reversible=kind == "reversible")
        with SavedActivations(exclude=stack.parameters()) as saved:
            out = stack(x)
        found[kind] = saved.bytes
        del out
    return found


def one_block_breakdown(
    batch: int, seq: int, d_model: int, heads: int, d_ff: int
) -> dict[str, int]:
    """Bytes autograd saves for one plain block, by saved tensor shape, largest first."""
    x = make_inputs(batch, seq, d_model)
    stack = make_stack(1, d_model, heads, d_ff, reversible=False)
    with SavedActivations(exclude=stack.parameters()) as saved:
        stack(x)
    return {str(shape): size for shape, size in saved.by_shape.items()}


def step_times(
    layers: int, batch: int, seq: int, d_model: int, heads: int, d_ff: int, repeats: int
) -> dict[str, float]:
    """Median seconds of one forward + backward pass of each stack."""
    x = make_inputs(batch, seq, d_model)
    stacks = {
        kind: make_stack(layers, d_model, heads, d_ff, reversible=kind == "reversible")
        for kind in KINDS
    }

    def step(stack: ReversibleStack) -> None:
        stack.zero_grad(set_to_none=True)
        stack(x).sum().backward()

    return median_times({kind: (lambda s=s: step(s)) for kind, s in stacks.items()}, repeats)


def report(
    shape: dict[str, int],
    memory: dict[int, dict[str, int]],
    times: dict[int, dict[str, float]],
    breakdown: dict[str, int],
    meta: dict,
) -> str:
    """The human-readable report."""
    lines = [
        "Reversible layers of chapter 6 on the CPU: activation memory and time against depth",
        f"date: {meta['date']}",
        f"command: {meta['command']}",
        f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
        f"{meta['threads']} thread (torch.set_num_threads), load average (1 min) "
        f"{meta['load']:.2f} at the start, {meta['load_end']:.2f} at the end",
        "",
        f"blocks: SelfAttentionSublayer + FeedForwardSublayer, batch {shape['batch']}, "
        f"length {shape['seq']}, d_model {shape['d_model']}, {shape['heads']} heads, "
        f"dim_feedforward {shape['d_ff']}, dropout 0, float32",
        "",
        "1. bytes autograd saves for the backward pass during one forward pass",
        "(distinct storages, parameters excluded; not the peak memory of the step)",
        f"{'blocks':>6}  {'plain MiB':>12}  {'reversible MiB':>15}  {'plain / reversible':>19}",
    ]
    for layers, found in memory.items():
        plain, reversible = found["plain"] / 2**20, found["reversible"] / 2**20
        lines.append(
            f"{layers:>6}  {plain:>12.2f}  {reversible:>15.2f}  {plain / reversible:>18.1f}x"
        )
    per_layer = _per_layer(memory)
    lines += [
        "",
        f"plain: {per_layer['plain'] / 2**20:.2f} MiB per block (least squares over depth)",
        f"reversible: {per_layer['reversible'] / 2**20:.4f} MiB per block",
        "",
        "what one plain block saves, by tensor shape (the block's input included)",
        *(f"  {shape:<22} {size / 2**20:8.2f} MiB" for shape, size in breakdown.items()),
        "",
        "2. one training step (forward + backward of the output's sum)",
        f"median of {meta['repeats']} repeats after 2 warm-up runs, order alternating",
        f"{'blocks':>6}  {'plain ms':>10}  {'reversible ms':>14}  {'reversible / plain':>19}",
    ]
    for layers, found in times.items():
        plain, reversible = found["plain"] * 1e3, found["reversible"] * 1e3
        lines.append(
            f"{layers:>6}  {plain:>10.1f}  {reversible:>14.1f}  {reversible / plain:>18.2f}x"
        )
    return "\n".join(lines) + "\n"


def _per_layer(memory: dict[int, dict[str, int]]) -> dict[str, float]:
    """Least-squares slope of bytes against depth, per stack."""
    depths = list(memory)
    mean_depth = sum(depths) / len(depths)
    slopes = {}
    for kind in KINDS:
        values = [memory[d][kind] for d in depths]
        mean_value = sum(values) / len(values)
        numerator = sum(
            (d - mean_depth) * (v - mean_value) for d, v in zip(depths, values, strict=True)
        )
        slopes[kind] = numerator / sum((d - mean_depth) ** 2 for d in depths)
    return slopes


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "reformer_memory.txt"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = QUICK_SHAPE if args.quick else SHAPE
    command = " ".join([".venv/bin/python bench/reformer.py", *(argv or sys.argv[1:])])
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "threads": args.threads,
        "load": os.getloadavg()[0],
        "repeats": args.repeats,
    }
    memory = {layers: saved_bytes(layers, **shape) for layers in DEPTHS}
    times = {layers: step_times(layers, **shape, repeats=args.repeats) for layers in DEPTHS}
    breakdown = one_block_breakdown(**shape)
    meta["load_end"] = os.getloadavg()[0]
    text = report(shape, memory, times, breakdown, meta)
    print(text, end="")
    if not args.quick:
        args.output.write_text(text, encoding="utf-8")
        per_layer = _per_layer(memory)
        deepest = max(DEPTHS)
        save_results(
            "reformer_memory",
            {
                "shape": shape,
                "threads": args.threads,
                "dtype": "float32",
                "depths": list(DEPTHS),
                "saved_bytes": {kind: [memory[d][kind] for d in DEPTHS] for kind in KINDS},
                "bytes_per_layer": per_layer,
                "one_plain_block_by_shape": breakdown,
                "ratio_at_deepest": memory[deepest]["plain"] / memory[deepest]["reversible"],
                "step_seconds": {kind: [times[d][kind] for d in DEPTHS] for kind in KINDS},
                "step_ratio_reversible_over_plain": [
                    times[d]["reversible"] / times[d]["plain"] for d in DEPTHS
                ],
                "repeats": args.repeats,
            },
            command=command,
        )
    return text


if __name__ == "__main__":
    main()
