"""Train the encoder-decoders of Chapter 3 (attention) and ship them inside the package.

Trains every variant of `VARIANTS` with a fixed seed, one CPU thread, and writes it into
``src/lessons/pretrained/`` (package data: after a pip install the chapters read them
back; the training settings and seconds are in each file's notes,
`lessons.core.checkpoint.checkpoint_notes`):

* finding the date in a text, ``lessons.core.tasks.date_extraction_splits()`` (sources of
  10 to 40 characters), recurrent models (``seq2seq-<name>.safetensors``,
  ``lessons.seq2seq.load_pretrained(name)``): ``extract-none`` (no attention: the decoder
  sees one fixed-length vector; ``extract-none-48`` the same with twice the state),
  ``extract-additive`` (Bahdanau), ``extract-dot`` and ``extract-general`` (Luong);
* the same task without recurrence, chapter 4's ``lessons.transformer.TransformerSeq2Seq``
  in chapter 3's setting (pre-norm, no dropout, Adam and plain cross-entropy as for the
  recurrent models), saved as ``<name>.safetensors`` and read by
  ``lessons.transformer.load_pretrained(name.removeprefix("transformer-"))``:
  ``transformer-extract-convolution`` (the encoder learns order with convolutions),
  ``transformer-extract-convolution-sinusoidal`` (the same model and training with
  sinusoidal positions added: the positions are the only change) and
  ``transformer-extract-sinusoidal`` (order as the Transformer gives it: sinusoidal
  positions and no convolutions; it learns more slowly and trains for 6 epochs, not 2);
* the copy task, ``lessons.core.tasks.copy_splits()`` (strings of 1 to 20 letters):
  ``copy-none`` and ``copy-additive``.

Reproduce the shipped weights (each variant trains for a fixed number of epochs, so the
result does not depend on the machine's speed; the seconds do)::

    .venv/bin/python scripts/train_seq2seq.py
    .venv/bin/python scripts/train_seq2seq.py --only extract-additive copy-none

Each variant takes one to a few minutes on one CPU thread (the seconds of each run are
in its notes and in ``bench/results/seq2seq.txt``; they move with the load of the
machine). Then ``bench/seq2seq.py`` measures them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from lessons.core.tasks import LengthSplits, batches, copy_splits, date_extraction_splits
from lessons.seq2seq import RNNSeq2Seq, train_seq2seq
from lessons.transformer import TransformerSeq2Seq

ROOT = Path(__file__).resolve().parent.parent

TASKS: dict[str, Callable[[], LengthSplits]] = {
    "extract": date_extraction_splits,
    "copy": copy_splits,
}


class Variant(NamedTuple):
    task: str
    make_model: Callable[[], RNNSeq2Seq | TransformerSeq2Seq]
    epochs: int
    lr: float = 3e-3


def rnn(attention: str | None, hidden_dim: int = 48) -> Callable[[], RNNSeq2Seq]:
    return lambda: RNNSeq2Seq(attention=attention, embedding_dim=32, hidden_dim=hidden_dim)


def transformer(source_positions: str) -> Callable[[], TransformerSeq2Seq]:
    """Chapter 3's model without recurrence: pre-norm, no dropout (chapter 4's default is
    the paper's post-norm with dropout)."""
    return lambda: TransformerSeq2Seq(
        d_model=64,
        num_heads=4,
        num_layers=2,
        ff_dim=128,
        dropout=0.0,
        source_positions=source_positions,
        norm_first=True,
    )


def file_name(name: str) -> str:
    """The file of variant ``name``: ``transformer-…`` names are `lessons.transformer`'s,
    the others ``seq2seq-<name>`` of `lessons.seq2seq`."""
    stem = name if name.startswith("transformer-") else f"seq2seq-{name}"
    return f"{stem}.safetensors"


VARIANTS: dict[str, Variant] = {
    # the recurrent models of the date task are small (hidden_dim 24: the decoder without
    # attention gets a vector of 48 numbers) so that the bottleneck shows; extract-none-48,
    # the same model with hidden_dim 48 (96 numbers), shows how much a larger vector
    # holds: one date fits in it, and a GRU learns to keep it there
    "extract-none": Variant("extract", rnn(None, hidden_dim=24), epochs=3),
    "extract-none-48": Variant("extract", rnn(None, hidden_dim=48), epochs=3),
    "extract-additive": Variant("extract", rnn("additive", hidden_dim=24), epochs=2),
    "extract-dot": Variant("extract", rnn("dot", hidden_dim=24), epochs=2),
    "extract-general": Variant("extract", rnn("general", hidden_dim=24), epochs=2),
    "transformer-extract-convolution": Variant("extract", transformer("convolution"), epochs=2),
    # transformer-extract-convolution with sinusoidal positions added and nothing else
    # changed (same parameters, initial weights, batches and steps): like with like
    "transformer-extract-convolution-sinusoidal": Variant(
        "extract", transformer("convolution+sinusoidal"), epochs=2
    ),
    # the Transformer's positions and no convolutions learn more slowly: this one
    # trains for three times the steps of the others, and bench/seq2seq.py says so
    "transformer-extract-sinusoidal": Variant("extract", transformer("sinusoidal"), epochs=6),
    "copy-none": Variant("copy", rnn(None), epochs=5),
    "copy-additive": Variant("copy", rnn("additive"), epochs=5),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="these variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "src" / "lessons" / "pretrained")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS)
    needed = {VARIANTS[name].task for name in names}
    splits = {task: make() for task, make in TASKS.items() if task in needed}
    for name in names:
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
        path = args.output_dir / file_name(name)
        notes = {
            "command": f"scripts/train_seq2seq.py --only {name} --seed {args.seed} "
            f"--batch-size {args.batch_size} --threads {args.threads}",
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
