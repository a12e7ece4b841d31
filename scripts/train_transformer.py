"""Train chapter 4's Transformer on chapter 3's date task with the paper's recipe, and ship it.

The model is ``lessons.transformer.TransformerSeq2Seq`` as Vaswani et al. (2017) built it:
post-norm layers, sinusoidal positions for the source and the target, dropout 0.1 after
every sublayer and on the embeddings, label smoothing 0.1, and Adam with the warm-up
schedule (`lessons.transformer.train_transformer`, `lessons.transformer.paper_optimizer`).
The data are chapter 3's: ``lessons.core.tasks.date_extraction_splits()``, the 20,000
training texts of 10 to 40 characters that the ``extract-*`` models of
``scripts/train_seq2seq.py`` were trained on, in batches of 64 cut the same way.

It writes ``src/lessons/pretrained/transformer-dates.safetensors`` (package data, read
by ``lessons.transformer.load_pretrained("dates")``), with the command, the settings,
the number of steps and the seconds in its notes
(`lessons.core.checkpoint.checkpoint_notes`). The model trains for a fixed number of
epochs, so the weights do not depend on the machine's speed; the seconds do.

Reproduce the shipped weights (a few minutes on one CPU thread)::

    .venv/bin/python scripts/train_transformer.py

Then ``bench/transformer_dates.py`` measures it beside chapter 3's models.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from lessons.core.tasks import batches, date_extraction_splits
from lessons.transformer import TransformerSeq2Seq, train_transformer

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "src" / "lessons" / "pretrained" / "transformer-dates.safetensors"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    parser.add_argument("--ff-dim", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=400, help="warm-up steps")
    parser.add_argument("--factor", type=float, default=1.0, help="times the paper's rate")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    splits = date_extraction_splits()
    torch.manual_seed(args.seed)
    model = TransformerSeq2Seq(
        d_model=args.d_model,
        num_heads=args.heads,
        num_layers=args.layers,
        ff_dim=args.ff_dim,
        dropout=args.dropout,
        source_positions="sinusoidal",
        norm_first=False,
    )
    train_batches = batches(splits.train, model.vocab, args.batch_size, seed=args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"transformer-dates: {parameters:,} parameters, {args.epochs} epochs of "
        f"{len(train_batches)} steps, warm-up {args.warmup} steps",
        flush=True,
    )
    start = time.perf_counter()
    history = train_transformer(
        model,
        train_batches,
        epochs=args.epochs,
        warmup=args.warmup,
        factor=args.factor,
        epsilon=args.label_smoothing,
        seed=args.seed,
    )
    seconds = time.perf_counter() - start
    command = "scripts/train_transformer.py " + " ".join(argv if argv is not None else sys.argv[1:])
    notes = {
        "command": command.strip(),
        "task": "extract",
        "recipe": "post-norm, sinusoidal positions, dropout, label smoothing, "
        "Adam (0.9, 0.98, 1e-9) with the warm-up schedule",
        "epochs": args.epochs,
        "warmup": args.warmup,
        "factor": args.factor,
        "label_smoothing": args.label_smoothing,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "threads": args.threads,
        "train_examples": len(splits.train),
        "steps": len(history.step_loss),
        "seconds": round(seconds, 1),
        "final_train_loss": round(history.epochs[-1]["train_loss"], 5),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.output, notes)
    print(
        f"  {seconds:.0f} s ({seconds / args.epochs:.0f} s per epoch), final loss "
        f"{notes['final_train_loss']} (label-smoothed), saved {args.output} "
        f"({args.output.stat().st_size / 1e6:.2f} MB)",
        flush=True,
    )


if __name__ == "__main__":
    main()
