"""Our attention against PyTorch's: the same numbers (parity) and the time it takes (CPU).

Run from the repository root::

    .venv/bin/python bench/attention.py            # writes bench/results/attention.txt
    .venv/bin/python bench/attention.py --quick    # small sizes, a few seconds, prints only

Parity: the largest absolute difference between `lessons.attention` and PyTorch on the
same random inputs (the same weights for multi-head attention, copied with
`MultiHeadAttention.from_torch`): ``scaled_dot_product_attention`` and
``tiled_attention`` against ``F.scaled_dot_product_attention``, and `MultiHeadAttention`
against ``nn.MultiheadAttention``, without a mask, with a padding mask, with a causal
mask and with both, in float64 and float32. For multi-head attention the weights are
compared too (ours per head against ``average_attn_weights=False``); for
``scaled_dot_product_attention`` both of our paths (``need_weights`` True and False);
``tiled_attention`` with blocks of 4 keys (11 keys: two full blocks and a partial one).

Speed: forward passes of self-attention on random float32 inputs of shape (batch 8,
length 512, d_model 256) with 8 heads, in eval mode under ``torch.no_grad()``. Each
repeat times every contender once, in an order that alternates from repeat to repeat,
after warm-up runs; the table gives the median and the ratio ours / PyTorch.

Besides the report, the numbers are saved with `lessons.core.results.save_results` as
``attention`` (``src/lessons/results/attention.json``), where chapter 3 reads them.

What PyTorch runs here: in eval mode under ``torch.no_grad()``, with batch_first=True and
query, key and value the same tensor, ``nn.MultiheadAttention`` takes its "fast path",
the fused C++ ``torch._native_multi_head_attention``, for both ``need_weights``
settings; with ``need_weights=False`` that calls a fused scaled-dot-product kernel
(blocked, FlashAttention-style) that never stores the (length x length) weights, as does
``F.scaled_dot_product_attention``. Ours is plain PyTorch tensor code: it always stores
the scores; with ``need_weights=False`` it normalises at the end and in place (see
`lessons.attention.scaled_dot_product_attention`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from lessons.attention import (
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    tiled_attention,
)
from lessons.core.results import save_results
from lessons.core.timing import median_times

ROOT = Path(__file__).resolve().parent.parent
MASKS = ("none", "padding", "causal", "padding + causal")


def _masks(kind: str, lengths: list[int], q_len: int, k_len: int) -> torch.Tensor | None:
    """Our bool mask (True = may attend), ``(batch, q_len, k_len)``, or None."""
    if kind == "none":
        return None
    mask = torch.ones(len(lengths), q_len, k_len, dtype=torch.bool)
    if "padding" in kind:
        mask &= padding_mask(lengths, k_len)
    if "causal" in kind:
        mask &= causal_mask(q_len, k_len)
    return mask


def _sdpa_inputs(dtype: torch.dtype, mask_kind: str, seed: int) -> tuple:
    """(q, k, v, mask): batch 3, heads 4, 9 queries, 11 keys, d_k 16, d_v 8."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(3, 4, 9, 16, generator=g, dtype=dtype)
    k = torch.randn(3, 4, 11, 16, generator=g, dtype=dtype)
    v = torch.randn(3, 4, 11, 8, generator=g, dtype=dtype)
    mask = _masks(mask_kind, [11, 7, 3], 9, 11)
    return q, k, v, None if mask is None else mask.unsqueeze(1)


def sdpa_parity(dtype: torch.dtype, mask_kind: str, seed: int = 0) -> float:
    """Largest |ours - F.scaled_dot_product_attention| on (batch 3, heads 4, 9 x 11, d 16),
    with and without ``need_weights``."""
    q, k, v, mask = _sdpa_inputs(dtype, mask_kind, seed)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ours, _ = scaled_dot_product_attention(q, k, v, mask)
    ours_without_weights, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    return max((o - theirs).abs().max().item() for o in (ours, ours_without_weights))


def tiled_parity(dtype: torch.dtype, mask_kind: str, seed: int = 0) -> float:
    """Largest |tiled_attention - F.scaled_dot_product_attention|, same inputs as
    `sdpa_parity`, blocks of 4 keys."""
    q, k, v, mask = _sdpa_inputs(dtype, mask_kind, seed)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return (tiled_attention(q, k, v, mask, block_size=4) - theirs).abs().max().item()


def mha_parity(dtype: torch.dtype, mask_kind: str, batch_first: bool, seed: int = 0) -> float:
    """Largest difference of outputs and weights, ours against ``nn.MultiheadAttention``."""
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(32, 4, batch_first=batch_first).to(dtype).eval()
    with torch.no_grad():
        theirs.in_proj_bias.normal_()
        theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    g = torch.Generator().manual_seed(seed + 1)
    query = torch.randn(3, 9, 32, generator=g, dtype=dtype)
    memory = torch.randn(3, 11, 32, generator=g, dtype=dtype)
    lengths = [11, 7, 3]
    mask = _masks(mask_kind, lengths, 9, 11)
    key_padding_mask = ~padding_mask(lengths, 11)[:, 0] if "padding" in mask_kind else None
    attn_mask = ~causal_mask(9, 11) if "causal" in mask_kind else None
    with torch.no_grad():
        output, weights = ours(query, memory, memory, mask=mask)
        inputs = (query, memory, memory)
        if not batch_first:
            inputs = tuple(t.transpose(0, 1) for t in inputs)
        expected, expected_weights = theirs(
            *inputs,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            average_attn_weights=False,
        )
    if not batch_first:
        expected = expected.transpose(0, 1)
    return max(
        (output - expected).abs().max().item(), (weights - expected_weights).abs().max().item()
    )


def parity_rows() -> list[tuple[str, str, str, float]]:
    """``(function, mask, dtype, largest error)`` for every combination."""
    rows = []
    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        for mask_kind in MASKS:
            rows.append(
                ("scaled_dot_product_attention", mask_kind, name, sdpa_parity(dtype, mask_kind))
            )
        for mask_kind in MASKS:
            rows.append(("tiled_attention", mask_kind, name, tiled_parity(dtype, mask_kind)))
        for batch_first in (True, False):
            for mask_kind in MASKS:
                error = mha_parity(dtype, mask_kind, batch_first)
                label = f"MultiHeadAttention (batch_first={batch_first})"
                rows.append((label, mask_kind, name, error))
    return rows


def speed(
    batch: int = 8, length: int = 512, d_model: int = 256, heads: int = 8, repeats: int = 11
) -> dict[str, float]:
    """Median forward time (seconds) of each contender, self-attention in eval mode."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(d_model, heads, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    x = torch.randn(batch, length, d_model)
    d_head = d_model // heads
    q, k, v = (torch.randn(batch, heads, length, d_head) for _ in range(3))
    with torch.no_grad():
        return median_times(
            {
                "ours MHA, need_weights=True": lambda: ours(x, x, x),
                "ours MHA, need_weights=False": lambda: ours(x, x, x, need_weights=False),
                "torch MHA, need_weights=True": lambda: theirs(x, x, x),
                "torch MHA, need_weights=False": lambda: theirs(x, x, x, need_weights=False),
                "ours sdpa, need_weights=True": lambda: scaled_dot_product_attention(q, k, v),
                "ours sdpa, need_weights=False": lambda: scaled_dot_product_attention(
                    q, k, v, need_weights=False
                ),
                "torch F.scaled_dot_product_attention": lambda: F.scaled_dot_product_attention(
                    q, k, v
                ),
            },
            repeats,
        )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "attention.txt")
    parser.add_argument("--note", default="", help="a line about the conditions, e.g. the load")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_average = os.getloadavg()[0]
    sizes = dict(batch=2, length=64, d_model=64, heads=4) if args.quick else {}
    repeats = 3 if args.quick else args.repeats

    rows = parity_rows()
    times = speed(**sizes, repeats=repeats)
    shape = {**dict(batch=8, length=512, d_model=256, heads=8), **sizes}

    def ratio(ours: str, theirs: str) -> str:
        return f"{times[ours] / times[theirs]:.2f}x"

    command = f"bench/attention.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip()
    lines = [
        "Attention from scratch against PyTorch: parity and CPU speed",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} threads, load average at the "
        f"start {load_average:.1f}",
    ]
    if args.note:
        lines.append(f"note: {args.note}")
    lines += ["", "Parity: largest absolute difference, ours vs PyTorch (outputs and weights)"]
    lines.append(f"{'function':<42}{'mask':<18}{'dtype':<9}{'max |diff|':>10}")
    lines += [f"{f:<42}{m:<18}{d:<9}{e:>10.1e}" for f, m, d, e in rows]
    lines += [
        "",
        f"Speed: forward, eval, torch.no_grad(), float32, batch {shape['batch']}, length "
        f"{shape['length']}, d_model {shape['d_model']}, {shape['heads']} heads; median of "
        f"{repeats} repeats after 2 warm-up runs, order alternating",
        f"{'contender':<42}{'median ms':>10}",
        *(f"{name:<42}{seconds * 1e3:>10.2f}" for name, seconds in times.items()),
        "",
        "ratios ours / PyTorch (below 1: ours is faster):",
        "MHA, both need_weights=True:              "
        + ratio("ours MHA, need_weights=True", "torch MHA, need_weights=True"),
        "MHA, both need_weights=False:             "
        + ratio("ours MHA, need_weights=False", "torch MHA, need_weights=False"),
        "sdpa (need_weights=True) vs F.sdpa:       "
        + ratio("ours sdpa, need_weights=True", "torch F.scaled_dot_product_attention"),
        "sdpa (need_weights=False) vs F.sdpa:      "
        + ratio("ours sdpa, need_weights=False", "torch F.scaled_dot_product_attention"),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        record = results_record(rows, times, shape, repeats, load_average)
        save_results("attention", record, command=command)
    return report


def results_record(
    rows: list[tuple[str, str, str, float]],
    times: dict[str, float],
    shape: dict[str, int],
    repeats: int,
    load_average: float,
) -> dict[str, object]:
    """What chapter 3 quotes: the largest parity error of each function and dtype (over
    the four masks, with the mask where it occurs), every row, and the speed table."""
    largest: dict[str, dict[str, dict[str, object]]] = {}
    for function, mask, dtype, error in rows:
        family = function.split(" (")[0]  # both batch_first settings of MultiHeadAttention
        best = largest.setdefault(family, {}).get(dtype)
        if best is None or error > best["error"]:
            largest[family][dtype] = {"error": error, "mask": mask}
    return {
        "largest_parity_error": largest,
        "parity": [{"function": f, "mask": m, "dtype": d, "error": e} for f, m, d, e in rows],
        "speed": {
            "shape": shape,
            "threads": torch.get_num_threads(),
            "repeats": repeats,
            "load_average": round(load_average, 2),
            "median_ms": {name: round(seconds * 1e3, 2) for name, seconds in times.items()},
        },
    }


if __name__ == "__main__":
    main()
