"""Train chapter 4's language model in several processes at once, with PyTorch's own engine.

The same training step as in one process, run by ``N`` processes that ``torchrun``
starts. Every process draws the same global batch of the duplication task (chapter 6:
sequences ``0 w 0 w``, the loss on the second copy), keeps its share
(`lessons.memory.shard_batch`), and computes the mean loss over that share; the engine
averages the gradients over the processes, so each takes the step one process would
take on the whole batch. ``--strategy ddp`` uses ``DistributedDataParallel`` (every
process holds the whole model); ``--strategy fsdp`` uses FSDP2's ``fully_shard`` (each
holds ``1 / N`` of the parameters, gradients and optimiser states: ZeRO stage 3).
``--accumulate k`` splits each share into ``k`` micro-batches and synchronises the
gradients only after the last one.

On CPUs (the gloo backend)::

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --steps 20

and unchanged on a machine with 8 GPUs, where `lessons.memory.setup_process_group` picks
the nccl backend and one GPU per process (a path the tests, which run on CPUs, do not
exercise)::

    torchrun --standalone --nproc_per_node=8 scripts/train_ddp.py --steps 20

Rank 0 prints the loss of every step (the mean over all processes) and, with
``--output``, writes them as JSON with the per-process parameter bytes. The losses do not
depend on the number of processes (up to float rounding) as long as it divides the batch
size; dropout is off by default, since each process would draw its own dropout masks.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lessons.memory import distribute, local_parameter_bytes, setup_process_group, shard_batch
from lessons.reformer import duplication_batch, duplication_loss
from lessons.transformer import TransformerLM


def sync_gradients(model: torch.nn.Module, sync: bool):
    """A context in which the backward pass averages the gradients over the processes
    (``sync``) or only adds them up locally (gradient accumulation, all micro-batches but
    the last). Entered *before* the forward pass: DDP decides there."""
    if isinstance(model, DistributedDataParallel):
        return nullcontext() if sync else model.no_sync()
    model.set_requires_gradient_sync(sync)  # FSDP2: a switch rather than a context
    return nullcontext()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16, help="global: all processes")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per share")
    parser.add_argument("--w", type=int, default=8, help="symbols per copy")
    parser.add_argument("--vocab-size", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--output", type=Path, default=None, help="JSON written by rank 0")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    rank, world_size, device = setup_process_group()
    torch.manual_seed(args.seed)  # the same initial weights in every process
    model = TransformerLM(
        args.vocab_size,
        d_model=args.d_model,
        num_heads=4,
        num_layers=args.layers,
        ff_dim=4 * args.d_model,
        max_len=2 * args.w + 2,
        dropout=args.dropout,
    )
    model = distribute(model, args.strategy, device, units=model.decoder.layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    data = torch.Generator().manual_seed(args.seed + 1)  # the same batches in every process

    losses = []
    for step in range(1, args.steps + 1):
        batch = duplication_batch(args.batch_size, args.w, args.vocab_size, data)
        micro_batches = shard_batch(batch, rank, world_size).to(device).chunk(args.accumulate)
        total = torch.zeros((), device=device)
        for i, micro_batch in enumerate(micro_batches):
            with sync_gradients(model, sync=i == len(micro_batches) - 1):
                loss = duplication_loss(model, micro_batch) / len(micro_batches)
                loss.backward()
            total += loss.detach()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dist.all_reduce(total)  # for the log only: the mean loss over all processes
        losses.append(total.item() / world_size)
        if rank == 0:
            print(f"step {step:>4}  loss {losses[-1]:.6f}", flush=True)

    held = torch.tensor([local_parameter_bytes(model)], device=device)
    per_process = [torch.zeros_like(held) for _ in range(world_size)]
    dist.all_gather(per_process, held)
    if rank == 0:
        print(f"parameter bytes per process: {[int(b) for b in per_process]}")
        if args.output is not None:
            results = {
                "strategy": args.strategy,
                "world_size": world_size,
                "backend": dist.get_backend(),
                "accumulate": args.accumulate,
                "losses": losses,
                "parameter_bytes": [int(b) for b in per_process],
            }
            args.output.write_text(json.dumps(results, indent=1) + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
