"""Train the encoder-decoders of Chapter 3 (attention) and save them to models/.

Trains every variant of `VARIANTS` with a fixed seed, one CPU thread, and writes
``models/seq2seq-<name>.safetensors`` (`lessons.seq2seq.load_model` reads it back; the
training settings and seconds are in its notes, `lessons.seq2seq.checkpoint_notes`):

* the date task, ``lessons.tasks.date_splits()`` (sources of 10 to 30 characters):
  ``dates-none`` (no attention), ``dates-additive``, ``dates-dot``, ``dates-general``,
  ``dates-transformer`` (no recurrence; the encoder learns order with convolutions) and
  ``dates-transformer-sinusoidal`` (the same with the Transformer's sinusoidal positions);
* the copy task, ``lessons.tasks.copy_splits()`` (strings of 1 to 20 letters):
  ``copy-none`` and ``copy-additive``.

Reproduce the shipped weights (each variant trains for a fixed number of epochs, so the
result does not depend on the machine's speed; the seconds do)::

    .venv/bin/python scripts/train_seq2seq.py
    .venv/bin/python scripts/train_seq2seq.py --only dates-additive copy-none

Each variant takes 45 to 90 seconds on one thread of a shared 2-core CPU (about 9
minutes in all; the seconds are in ``bench/results/seq2seq.txt``). Then
``bench/seq2seq.py`` measures them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from lessons.seq2seq import RNNSeq2Seq, TransformerSeq2Seq, train_seq2seq
from lessons.tasks import LengthSplits, batches, copy_splits, date_splits

ROOT = Path(__file__).resolve().parent.parent

TASKS: dict[str, Callable[[], LengthSplits]] = {"dates": date_splits, "copy": copy_splits}


class Variant(NamedTuple):
    task: str
    make_model: Callable[[], RNNSeq2Seq | TransformerSeq2Seq]
    epochs: int
    lr: float = 3e-3


def rnn(attention: str | None) -> Callable[[], RNNSeq2Seq]:
    return lambda: RNNSeq2Seq(attention=attention, embedding_dim=32, hidden_dim=48)


def transformer(source_positions: str) -> Callable[[], TransformerSeq2Seq]:
    return lambda: TransformerSeq2Seq(
        d_model=64, num_heads=4, num_layers=2, ff_dim=128, source_positions=source_positions
    )


VARIANTS: dict[str, Variant] = {
    "dates-none": Variant("dates", rnn(None), epochs=3),
    "dates-additive": Variant("dates", rnn("additive"), epochs=2),
    "dates-dot": Variant("dates", rnn("dot"), epochs=2),
    "dates-general": Variant("dates", rnn("general"), epochs=2),
    "dates-transformer": Variant("dates", transformer("convolution"), epochs=2),
    "dates-transformer-sinusoidal": Variant("dates", transformer("sinusoidal"), epochs=2),
    "copy-none": Variant("copy", rnn(None), epochs=5),
    "copy-additive": Variant("copy", rnn("additive"), epochs=5),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="these variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    splits = {name: make() for name, make in TASKS.items()}
    for name in args.only or VARIANTS:
        variant = VARIANTS[name]
        torch.manual_seed(args.seed)
        model = variant.make_model()
        train_batches = batches(
            splits[variant.task].train, model.vocab, args.batch_size, seed=args.seed
        )
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name}: {parameters:,} parameters, {variant.epochs} epochs", flush=True)
        start = time.perf_counter()
        history = train_seq2seq(
            model, train_batches, epochs=variant.epochs, lr=variant.lr, seed=args.seed
        )
        seconds = time.perf_counter() - start
        path = args.output_dir / f"seq2seq-{name}.safetensors"
        notes = {
            "task": variant.task,
            "epochs": variant.epochs,
            "lr": variant.lr,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "threads": args.threads,
            "train_examples": len(splits[variant.task].train),
            "steps": len(history.step_loss),
            "seconds": round(seconds, 1),
            "final_train_loss": round(history.epochs[-1]["train_loss"], 5),
        }
        model.save(path, notes)
        print(
            f"  {seconds:.0f} s ({seconds / variant.epochs:.0f} s per epoch), final loss "
            f"{notes['final_train_loss']}, saved {path} ({path.stat().st_size / 1e6:.2f} MB)",
            flush=True,
        )
    print("reproduce: .venv/bin/python scripts/train_seq2seq.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
