"""Chapter 7's tricks on a GPU: the peak memory and the time of a training step with each.

Run from the repository root on a machine with CUDA (sized to finish within 5 minutes on one
GPU)::

    .venv/bin/python scripts/gpu_memory_check.py   # writes bench/results/gpu_memory.txt

The model is chapter 4's `lessons.transformer.TransformerLM` at ``d_model`` 1,024, 12
layers, 16 heads, a feed-forward width of 4,096 and a vocabulary of 16,384 (about 168
million parameters, dropout 0.1), trained with Adam (learning rate 1e-4) on batches of 8
sequences of 512 random tokens. Each trick trains a fresh model from the same seed:

* ``fp32 Adam``: the baseline, float32 throughout;
* ``accumulation 4``: the same batch as 4 micro-batches of 2 sequences;
* ``checkpointing``: every layer recomputed in the backward pass;
* ``bf16 autocast`` and ``fp16 autocast + GradScaler``: mixed precision (the weights and
  Adam's states stay in float32);
* ``set_to_none=False``: the gradients zeroed rather than freed after each step;
* ``Adam on the CPU``: `lessons.memory.OffloadedAdam`, Adam's states on the CPU.

Each runs ``--warmup`` steps, then ``--steps`` timed steps (`run_step`), each between
``torch.cuda.synchronize()`` calls. Peak: ``torch.cuda.max_memory_allocated`` over the
timed steps; held: ``torch.cuda.memory_allocated`` after them, between two steps. Both
count from what was allocated before the model was built, so the CUDA context and the
batch are left out; neither sees the allocator's cached but unused blocks.

The calculator is checked first: `lessons.memory.training_memory` for float32 Adam (16
bytes per parameter: weights, gradients and Adam's two states) against
``torch.cuda.memory_allocated`` after one step, the gradients still held and no
activation alive; they must agree within 15% (`STATIC_TOLERANCE`), or the script exits
with status 1 after writing its report.

The report goes to ``bench/results/gpu_memory.txt``, with the GPU named, and the numbers
to `lessons.core.results.save_results` as ``gpu_memory``. On a machine without CUDA the
script says so and exits with status 0, writing nothing.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from lessons.core.results import save_results
from lessons.memory import (
    OffloadedAdam,
    accumulate_gradients,
    optimizer_state_bytes,
    training_memory,
)
from lessons.transformer import TransformerLM

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "results" / "gpu_memory.txt"
COMMAND = ".venv/bin/python scripts/gpu_memory_check.py"
#: The model and the batch: chapter 4's language model, large enough for the numbers to
#: mean something on a GPU.
CONFIG = dict(
    vocab_size=16_384, d_model=1024, num_heads=16, num_layers=12, ff_dim=4096, batch=8, seq=512
)
LR = 1e-4
#: How far the measured model states may be from `training_memory`'s prediction.
STATIC_TOLERANCE = 0.15
GB = 1e9


@dataclass(frozen=True)
class Trick:
    """One row of the table: how `run_step` trains."""

    name: str
    micro_batches: int = 1
    checkpoint: bool = False
    autocast_dtype: torch.dtype | None = None
    scaler: bool = False
    set_to_none: bool = True
    offload: bool = False


TRICKS = (
    Trick("fp32 Adam"),
    Trick("accumulation 4", micro_batches=4),
    Trick("checkpointing", checkpoint=True),
    Trick("bf16 autocast", autocast_dtype=torch.bfloat16),
    Trick("fp16 autocast + GradScaler", autocast_dtype=torch.float16, scaler=True),
    Trick("set_to_none=False", set_to_none=False),
    Trick("Adam on the CPU", offload=True),
)


def build_model(config: dict[str, int], seed: int = 0, dropout: float = 0.1) -> TransformerLM:
    """Chapter 4's language model at the sizes of ``config``, from ``seed``, on the CPU."""
    torch.manual_seed(seed)
    return TransformerLM(
        config["vocab_size"],
        d_model=config["d_model"],
        num_heads=config["num_heads"],
        num_layers=config["num_layers"],
        ff_dim=config["ff_dim"],
        max_len=config["seq"],
        dropout=dropout,
    )


def random_batch(
    config: dict[str, int], device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of random tokens, each ``(batch, seq)``, on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (config["batch"], config["seq"])
    inputs = torch.randint(config["vocab_size"], shape, generator=generator)
    targets = torch.randint(config["vocab_size"], shape, generator=generator)
    return inputs.to(device), targets.to(device)


def static_prediction(model: nn.Module) -> float:
    """The bytes `training_memory` predicts for float32 Adam: 16 per parameter."""
    n_params = sum(p.numel() for p in model.parameters())
    return training_memory(n_params, precision="fp32", optimizer="adam").total


def make_optimizer(model: nn.Module, trick: Trick) -> torch.optim.Adam | OffloadedAdam:
    """Adam over ``model``'s parameters, its states on the CPU for ``trick.offload``."""
    if trick.offload:
        return OffloadedAdam(model.parameters(), lr=LR, offload_device="cpu")
    return torch.optim.Adam(model.parameters(), lr=LR)


def run_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Adam | OffloadedAdam,
    trick: Trick,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, bool]:
    """One training step as ``trick`` says; returns ``(loss, skipped)``.

    The loop of nanoGPT's ``train.py``: forward and backward over the micro-batches
    (`lessons.memory.accumulate_gradients`), the optimiser step (through ``scaler`` when
    there is one: ``skipped`` when it skipped an overflowing step), then
    ``zero_grad(set_to_none=trick.set_to_none)``, so that zeroed gradients, unlike freed
    ones, are held through the next step.
    """
    inputs, targets = batch
    micro_batches = list(
        zip(inputs.chunk(trick.micro_batches), targets.chunk(trick.micro_batches), strict=True)
    )
    loss = accumulate_gradients(
        model,
        micro_batches,
        checkpoint=trick.checkpoint,
        autocast_dtype=trick.autocast_dtype,
        scaler=scaler,
    )
    skipped = False
    if scaler is None:
        optimizer.step()
    else:
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = scaler.get_scale() < scale
    optimizer.zero_grad(set_to_none=trick.set_to_none)
    return loss, skipped


def _fresh_start(device: torch.device) -> int:
    """Free what the previous model left and return the bytes still allocated."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.synchronize(device)
    return torch.cuda.memory_allocated(device)


def measure_static(config: dict[str, int], device: torch.device) -> dict[str, float]:
    """`static_prediction` against the bytes allocated after one float32 Adam step."""
    batch = random_batch(config, device)
    start = _fresh_start(device)
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    accumulate_gradients(model, [batch])
    optimizer.step()  # the gradients stay: no zero_grad before measuring
    torch.cuda.synchronize(device)
    measured = torch.cuda.memory_allocated(device) - start
    predicted = static_prediction(model)
    n_params = sum(p.numel() for p in model.parameters())
    del model, optimizer
    return {
        "n_params": n_params,
        "predicted_bytes": predicted,
        "measured_bytes": measured,
        "relative_difference": measured / predicted - 1,
    }


def measure_trick(
    trick: Trick, config: dict[str, int], device: torch.device, steps: int, warmup: int
) -> dict[str, object]:
    """Peak and held bytes, optimiser-state bytes on the GPU and step times of ``trick``."""
    batch = random_batch(config, device)
    start = _fresh_start(device)
    model = build_model(config).to(device)
    optimizer = make_optimizer(model, trick)
    scaler = torch.amp.GradScaler("cuda") if trick.scaler else None
    for _ in range(warmup):
        run_step(model, batch, optimizer, trick, scaler)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    seconds, losses, skipped = [], [], 0
    for _ in range(steps):
        begin = time.perf_counter()
        loss, was_skipped = run_step(model, batch, optimizer, trick, scaler)
        torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - begin)
        losses.append(loss if math.isfinite(loss) else None)  # JSON has no inf or nan
        skipped += was_skipped
    result = {
        "trick": trick.name,
        "peak_bytes": torch.cuda.max_memory_allocated(device) - start,
        "held_bytes": torch.cuda.memory_allocated(device) - start,
        "state_bytes_on_gpu": optimizer_state_bytes(optimizer).get(str(device), 0),
        "median_seconds": statistics.median(seconds),
        "losses": losses,
        "skipped_steps": skipped,
    }
    del model, optimizer, scaler
    return result


def format_report(
    header: Sequence[str], static: dict[str, float], rows: Sequence[dict[str, object]]
) -> str:
    """The report: ``header`` lines, the calculator's check, one line per trick."""
    within = abs(static["relative_difference"]) <= STATIC_TOLERANCE
    predicted, measured = static["predicted_bytes"], static["measured_bytes"]
    lines = [
        *header,
        "",
        "1. the calculator against the measurement: float32 Adam after one step",
        "   (weights, gradients and Adam's two states; no activation alive)",
        f"   parameters                                  {static['n_params']:>14,}",
        f"   predicted: training_memory, 16 bytes each   {predicted / GB:>11.3f} GB",
        f"   measured: torch.cuda.memory_allocated       {measured / GB:>11.3f} GB",
        f"   difference {static['relative_difference']:+.2%} "
        f"({'within' if within else 'NOT within'} {STATIC_TOLERANCE:.0%})",
        "",
        "2. one training step with each trick",
        f"{'trick':<28}{'peak GB':>9}{'x fp32':>8}{'held GB':>9}{'states GB':>11}"
        f"{'step ms':>9}{'x fp32':>8}{'skipped':>9}",
    ]
    base = rows[0]
    for row in rows:
        lines.append(
            f"{row['trick']:<28}{row['peak_bytes'] / GB:>9.2f}"
            f"{row['peak_bytes'] / base['peak_bytes']:>8.2f}{row['held_bytes'] / GB:>9.2f}"
            f"{row['state_bytes_on_gpu'] / GB:>11.2f}{row['median_seconds'] * 1e3:>9.0f}"
            f"{row['median_seconds'] / base['median_seconds']:>8.2f}{row['skipped_steps']:>9}"
        )
    lines += [
        "",
        "GB = 10^9 bytes. peak: torch.cuda.max_memory_allocated over the timed steps; held:",
        "torch.cuda.memory_allocated between two steps; both above what was allocated before",
        "the model was built. states: the optimiser's state tensors on the GPU",
        "(lessons.memory.optimizer_state_bytes). x fp32: against the first row.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per trick")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per trick first")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_memory_check: no CUDA device here; nothing measured, nothing written.")
        return 0
    device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device)
    total = torch.cuda.get_device_properties(device).total_memory
    static = measure_static(CONFIG, device)
    rows = []
    for trick in TRICKS:
        print(f"measuring {trick.name} ...", flush=True)
        rows.append(measure_trick(trick, CONFIG, device, args.steps, args.warmup))
    header = [
        "Chapter 7's tricks on a GPU: peak memory and time of one training step",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {COMMAND}",
        f"GPU: {name} ({total / GB:.1f} GB), CUDA {torch.version.cuda}, torch "
        f"{torch.__version__}, TF32 matrix products "
        f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}",
        f"model: chapter 4's TransformerLM, {CONFIG}, dropout 0.1; Adam, lr {LR}; "
        f"{args.warmup} warm-up steps, then the median of {args.steps}",
    ]
    report = format_report(header, static, rows)
    REPORT.write_text(report, encoding="utf-8")
    save_results(
        "gpu_memory",
        {
            "device": name,
            "device_bytes": total,
            "config": CONFIG,
            "steps": args.steps,
            "warmup": args.warmup,
            "static": static,
            "tolerance": STATIC_TOLERANCE,
            "tricks": rows,
            "trick_settings": [
                {**asdict(t), "autocast_dtype": str(t.autocast_dtype)} for t in TRICKS
            ],
        },
        command=COMMAND,
    )
    print(report)
    if abs(static["relative_difference"]) > STATIC_TOLERANCE:
        print(f"gpu_memory_check: the calculator is off by more than {STATIC_TOLERANCE:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
