"""Train a one-layer Reformer on the paper's duplication task and ship it in the package.

The task (Kitaev et al., 2020, section 2.1): sequences ``0 w 0 w`` of ``w`` random
symbols; the loss counts only the second copy, which a model can predict only by
attending ``w`` positions back. The paper trains a one-layer model (d_model = d_ff = 256,
4 heads) on ``w = 511`` (sequences of 1,024, 127 symbols) for 150K steps. This script is
sized for a CPU: ``w = 63`` (sequences of 128, 63 symbols), d_model 128, 2 heads, d_ff
256, chunks of 16 and 8 buckets, so that hashing really decides which pairs meet, and
3,000 steps of 32 sequences. Positions are a learned table (no axial factorisation: 128
positions need no saving).

``--attention lsh --num-hashes 4`` trains with LSH attention (4 rounds; also 1 and 2);
``--attention full`` trains the same model with full attention (the same shared-QK
weights, so it can be evaluated with LSH afterwards). Adam; the learning rate warms up
for ``--warmup`` steps and then stays constant; training stops after ``--steps`` (or
when the ``--minutes`` budget runs out). Every ``--eval-every`` steps the accuracy on a
fixed set of 512 held-out sequences is logged (full attention and LSH with 1, 2, 4, 8
rounds), and the log goes into the checkpoint's notes. One layer stores little, so the
reversible trick is off (`ReformerLM(..., reversible=False)`).

The shipped weights (float32, about 0.6 MB each) come from::

    .venv/bin/python scripts/train_reformer_duplication.py --attention full
    .venv/bin/python scripts/train_reformer_duplication.py --attention lsh --num-hashes 4
    .venv/bin/python scripts/train_reformer_duplication.py --attention lsh --num-hashes 2
    .venv/bin/python scripts/train_reformer_duplication.py --attention lsh --num-hashes 1

(``src/lessons/pretrained/reformer-duplication-{full,lsh4,lsh2,lsh1}.safetensors``);
``lessons.reformer.load_pretrained`` reads them back and ``bench/reformer_duplication.py``
fills the table. ``--device cuda`` and a larger ``--w`` get closer to the paper's setting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lessons.core.train import set_seed
from lessons.reformer import (
    PRETRAINED_DIR,
    ReformerConfig,
    ReformerLM,
    duplication_accuracy,
    duplication_batch,
    duplication_loss,
)

EVAL_MODES = (("full", None), ("lsh", 1), ("lsh", 2), ("lsh", 4), ("lsh", 8))


def evaluate(model: ReformerLM, sequences: torch.Tensor) -> dict[str, float]:
    """Accuracy on ``sequences`` with full attention and with LSH-1, 2, 4, 8."""
    scores = {}
    for attention, rounds in EVAL_MODES:
        name = "full" if attention == "full" else f"lsh-{rounds}"
        scores[name] = round(duplication_accuracy(model, sequences, attention, rounds), 4)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attention", choices=("lsh", "full"), default="lsh")
    parser.add_argument("--num-hashes", type=int, default=4, help="rounds when training LSH")
    parser.add_argument("--w", type=int, default=63, help="symbols per copy")
    parser.add_argument("--vocab-size", type=int, default=64, help="symbols + the separator 0")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--ff-dim", type=int, default=256)
    parser.add_argument("--chunk-length", type=int, default=16)
    parser.add_argument("--buckets", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=55.0)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    length = 2 * args.w + 2
    config = ReformerConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.d_model,
        num_attention_heads=args.heads,
        attention_head_size=args.d_model // args.heads,
        attn_layers=("lsh",),
        feed_forward_size=args.ff_dim,
        num_buckets=args.buckets,
        num_hashes=args.num_hashes,
        lsh_attn_chunk_length=args.chunk_length,
        axial_pos_embds=False,
        max_position_embeddings=length,
    )
    model = ReformerLM(config, reversible=False).to(args.device)  # one layer: nothing to save
    model.use_attention(args.attention)
    name = "full" if args.attention == "full" else f"lsh{args.num_hashes}"
    output = args.output or PRETRAINED_DIR / f"reformer-duplication-{name}.safetensors"
    parameters = sum(p.numel() for p in model.parameters())
    print(f"training with {name} attention, w = {args.w} (length {length}), {parameters:,} params")

    held_out = duplication_batch(512, args.w, args.vocab_size, torch.Generator().manual_seed(1))
    held_out = held_out.to(args.device)
    data = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    log = []
    step = 0
    bar = tqdm(total=args.steps, unit="step", mininterval=30)
    while step < args.steps and time.perf_counter() - start < args.minutes * 60:
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / args.warmup)
        batch = duplication_batch(args.batch_size, args.w, args.vocab_size, data)
        loss = duplication_loss(model, batch.to(args.device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.update()
        if step % args.eval_every == 0:
            scores = evaluate(model, held_out)
            minutes = round((time.perf_counter() - start) / 60, 2)
            log.append({"step": step, "minutes": minutes, "loss": round(loss.item(), 4), **scores})
            print(json.dumps(log[-1]), flush=True)
    bar.close()
    minutes = (time.perf_counter() - start) / 60
    final = evaluate(model, held_out)
    notes = {
        "command": "scripts/train_reformer_duplication.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "trained_with": name,
        "w": args.w,
        "sequence_length": length,
        "steps": step,
        "batch_size": args.batch_size,
        "minutes": round(minutes, 1),
        "threads": torch.get_num_threads(),
        "device": str(args.device),
        "parameters": parameters,
        "log": log,
        "final_accuracy": final,
        "held_out": "512 sequences from torch.Generator().manual_seed(1)",
    }
    print(f"final after {step} steps ({minutes:.1f} min): {final}")
    output.parent.mkdir(parents=True, exist_ok=True)
    model.cpu().save(output, notes=notes)
    print(f"saved {output} ({output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
