"""Chapter 6's LSH attention on the CPU: time and peak memory against sequence length.

Run from the repository root::

    .venv/bin/python bench/reformer_attention.py          # writes bench/results/
    .venv/bin/python bench/reformer_attention.py --quick  # small sizes, prints only

1. Attention cost against length (Kitaev et al.'s claim: LSH attention costs
   O(L log L) where full attention costs O(L^2)). One `lessons.reformer.LSHSelfAttention`
   layer (batch 1, 2 heads of 64, d_model 128, chunk length 64, ``2 L / 64`` buckets so
   that a bucket holds half a chunk on average, the paper's rule) gives the shared
   query-keys and values; then, forward only (no graph, as at inference):

   * ``full``: chapter 3's `lessons.attention.scaled_dot_product_attention`, which
     materialises the ``(heads, L, L)`` scores and weights;
   * ``sdpa``: PyTorch's fused ``F.scaled_dot_product_attention``, the exact reference;
   * ``lsh-1`` ... ``lsh-8``: the LSH layer itself with 1, 2, 4 and 8 hash rounds.

   All include the two projections. For L from 512 to 16,384: the median time over
   ``--repeats`` (every repeat runs all contenders, in an order reversed every other
   repeat, after a warm-up), and the peak memory of one call
   (`lessons.core.activations.peak_memory`, the profiler's allocation events). The
   slopes of log time and log memory against log L (least squares over L >= 2,048),
   and the crossover: the shortest length from which an LSH variant is faster than
   ``full`` at every longer length measured.

2. Chunked feed-forward (the paper's Table 3: chunking replaces the ``b l d_ff``
   intermediate by ``b c d_ff``): the peak memory of one feed-forward sublayer (batch 1,
   L = 16,384, d_model 128, d_ff 512; no graph, as in the forward pass of a reversible
   stack), whole and in chunks of 4,096, 1,024 and 256 positions, beside the sizes the
   formula predicts.

``torch.set_num_threads`` is pinned (``--threads``, recorded). Besides the report, the
numbers are saved with `lessons.core.results.save_results` as ``reformer_attention``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.nn import functional as F

from lessons.attention import scaled_dot_product_attention
from lessons.core.activations import peak_memory
from lessons.core.results import save_results
from lessons.core.timing import median_times
from lessons.reformer import ChunkedFeedForward, FeedForwardSublayer, LSHSelfAttention

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (512, 1024, 2048, 4096, 8192, 16384)
QUICK_LENGTHS = (256, 512, 1024)
ROUNDS = (1, 2, 4, 8)
HEADS, D_HEAD, CHUNK = 2, 64, 64
FF_LENGTH, FF_D_MODEL, FF_D_FF = 16384, 128, 512
FF_CHUNKS = (4096, 1024, 256)
FIT_FROM = 2048
MiB = 2**20


def make_layer(length: int, seed: int = 0) -> LSHSelfAttention:
    """The LSH layer measured at ``length``: ``2 * length / CHUNK`` buckets."""
    torch.manual_seed(seed)
    return LSHSelfAttention(
        HEADS * D_HEAD,
        HEADS,
        D_HEAD,
        num_buckets=max(2, 2 * length // CHUNK),
        chunk_length=CHUNK,
        hash_seed=seed,
    ).eval()


def contenders(layer: LSHSelfAttention, x: torch.Tensor) -> dict[str, object]:
    """Functions of no arguments, one per kind of attention, on the same layer and input."""

    def projected() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, seq, _ = x.shape
        qk = layer.query_key(x).view(batch, seq, HEADS, D_HEAD).transpose(1, 2)
        values = layer.value(x).view(batch, seq, HEADS, D_HEAD).transpose(1, 2)
        return qk, F.normalize(qk, dim=-1), values

    def full() -> torch.Tensor:
        query, key, value = projected()
        return scaled_dot_product_attention(query, key, value, need_weights=False)[0]

    def sdpa() -> torch.Tensor:
        query, key, value = projected()
        return F.scaled_dot_product_attention(query, key, value)

    functions: dict[str, object] = {"full": full, "sdpa": sdpa}
    for rounds in ROUNDS:
        functions[f"lsh-{rounds}"] = lambda rounds=rounds: layer(x, num_hashes=rounds)
    return functions


def slope(lengths: list[int], values: list[float], fit_from: int = FIT_FROM) -> float:
    """The least-squares slope of log(value) against log(length) over lengths >= fit_from."""
    points = [
        (math.log(n), math.log(v)) for n, v in zip(lengths, values, strict=True) if n >= fit_from
    ]
    mean_x = sum(p[0] for p in points) / len(points)
    mean_y = sum(p[1] for p in points) / len(points)
    numerator = sum((px - mean_x) * (py - mean_y) for px, py in points)
    return numerator / sum((px - mean_x) ** 2 for px, _ in points)


def crossover(lengths: list[int], lsh: list[float], full: list[float]) -> int | None:
    """The shortest length from which ``lsh`` is faster than ``full`` at every longer one."""
    found = None
    for n, mine, theirs in reversed(list(zip(lengths, lsh, full, strict=True))):
        if mine >= theirs:
            break
        found = n
    return found


def attention_cost(lengths: tuple[int, ...], repeats: int, fit_from: int) -> dict[str, object]:
    seconds: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    for length in lengths:
        layer = make_layer(length)
        x = torch.randn(1, length, HEADS * D_HEAD, generator=torch.Generator().manual_seed(1))
        functions = contenders(layer, x)
        with torch.no_grad():
            times = median_times(functions, repeats=repeats, warmup=1)
            for name, fn in functions.items():
                seconds.setdefault(name, []).append(times[name])
                peaks.setdefault(name, []).append(peak_memory(fn))
        line = "  ".join(f"{name} {times[name] * 1e3:8.1f} ms" for name in functions)
        print(f"L {length:6d}: {line}", flush=True)
    lengths_list = list(lengths)
    return {
        "lengths": lengths_list,
        "seconds": seconds,
        "peak_bytes": peaks,
        "slopes": {
            "seconds": {
                name: slope(lengths_list, values, fit_from) for name, values in seconds.items()
            },
            "peak_bytes": {
                name: slope(lengths_list, [float(v) for v in values], fit_from)
                for name, values in peaks.items()
            },
        },
        "crossover": {
            f"lsh-{r}": crossover(lengths_list, seconds[f"lsh-{r}"], seconds["full"])
            for r in ROUNDS
        },
        "crossover_sdpa": {
            f"lsh-{r}": crossover(lengths_list, seconds[f"lsh-{r}"], seconds["sdpa"])
            for r in ROUNDS
        },
        "fit_from": fit_from,
        "layer": {
            "batch": 1,
            "heads": HEADS,
            "d_head": D_HEAD,
            "chunk_length": CHUNK,
            "num_buckets": "2 L / chunk_length",
            "forward only": True,
        },
    }


def feed_forward_peaks(length: int, chunks: tuple[int, ...]) -> dict[str, object]:
    torch.manual_seed(0)
    sublayer = FeedForwardSublayer(FF_D_MODEL, FF_D_FF).eval()
    x = torch.randn(1, length, FF_D_MODEL, generator=torch.Generator().manual_seed(1))
    rows = []
    with torch.no_grad():
        for chunk in (None, *chunks):
            module = sublayer if chunk is None else ChunkedFeedForward(sublayer, chunk)
            positions = length if chunk is None else chunk
            rows.append(
                {
                    "chunk": chunk,
                    "peak_bytes": peak_memory(lambda module=module: module(x)),
                    # the (b, c, d_ff) intermediate, and the (b, L, d_model) output
                    "intermediate_bytes": positions * FF_D_FF * 4,
                    "output_bytes": length * FF_D_MODEL * 4,
                }
            )
    return {"length": length, "d_model": FF_D_MODEL, "d_ff": FF_D_FF, "rows": rows}


def report(results: dict[str, object], header: str) -> str:
    cost = results["attention"]
    lines = [header, "", "1. attention, forward only: median time (ms) and peak memory (MiB)"]
    names = list(cost["seconds"])
    lines.append("L        " + "".join(f"{name:>10}" for name in names))
    for i, length in enumerate(cost["lengths"]):
        times = "".join(f"{cost['seconds'][name][i] * 1e3:10.1f}" for name in names)
        lines.append(f"{length:<6d} ms{times}")
        peaks = "".join(f"{cost['peak_bytes'][name][i] / MiB:10.1f}" for name in names)
        lines.append(f"{'':6} MiB{peaks[1:]}")
    lines.append("")
    lines.append(f"slopes of log time and log peak memory against log L (L >= {cost['fit_from']})")
    for name in names:
        lines.append(
            f"  {name:7} time {cost['slopes']['seconds'][name]:5.2f}   "
            f"memory {cost['slopes']['peak_bytes'][name]:5.2f}"
        )
    lines.append("crossover (shortest L from which LSH is faster at every longer L)")
    for name, length in cost["crossover"].items():
        against_sdpa = cost["crossover_sdpa"][name]
        lines.append(f"  {name}: vs full {length}, vs sdpa {against_sdpa}")
    if 8192 in cost["lengths"]:
        i = cost["lengths"].index(8192)
        full = cost["peak_bytes"]["full"][i]
        lines.append("peak memory at L = 8,192 as a fraction of full attention's")
        for name in names:
            lines.append(f"  {name:7} {cost['peak_bytes'][name][i] / full:6.3f}")
    ff = results["feed_forward"]
    lines += [
        "",
        f"2. one feed-forward sublayer, no graph: L {ff['length']}, d_model {ff['d_model']}, "
        f"d_ff {ff['d_ff']}",
        "chunk      peak MiB   (b, c, d_ff) MiB   (b, L, d_model) MiB",
    ]
    for row in ff["rows"]:
        chunk = "whole" if row["chunk"] is None else str(row["chunk"])
        lines.append(
            f"{chunk:8} {row['peak_bytes'] / MiB:10.1f} {row['intermediate_bytes'] / MiB:18.1f}"
            f" {row['output_bytes'] / MiB:21.1f}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths = QUICK_LENGTHS if args.quick else LENGTHS
    load = os.getloadavg()[0]
    results = {
        "attention": attention_cost(lengths, args.repeats, 0 if args.quick else FIT_FROM),
        "feed_forward": feed_forward_peaks(
            1024 if args.quick else FF_LENGTH, (256, 64) if args.quick else FF_CHUNKS
        ),
        "threads": torch.get_num_threads(),
    }
    command = ".venv/bin/python bench/reformer_attention.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    header = "\n".join(
        [
            "LSH attention of chapter 6 on the CPU: time and peak memory against length",
            f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"command: {command.strip()}",
            f"python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.machine()}, {torch.get_num_threads()} thread(s), load average (1 min) "
            f"{load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        ]
    )
    text = report(results, header)
    print(text)
    if not args.quick:
        (ROOT / "bench" / "results" / "reformer_attention.txt").write_text(text, encoding="utf-8")
        save_results("reformer_attention", results, command=command.strip())
    return text


if __name__ == "__main__":
    main()
