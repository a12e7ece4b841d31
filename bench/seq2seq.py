"""The encoder-decoders of Chapter 3 on inputs as long as and longer than in training.

Run from the repository root, after ``scripts/train_seq2seq.py`` has written the models
(into ``src/lessons/pretrained/``, where ``lessons.seq2seq.load_pretrained`` finds them)::

    .venv/bin/python bench/seq2seq.py

It prints one report and writes it to ``bench/results/seq2seq.txt`` (``--output``).

What is measured, the same way for every model (``src/lessons/pretrained/seq2seq-*``):

* Data: the test lists of the model's task, rebuilt with the defaults that training
  used: ``lessons.core.tasks.date_extraction_splits()`` (a date among filler words; train
  sources of 10-40 characters; ``test``: 2,000 more of 10-40, none seen in training;
  ``long test``: 2,000 of 41-120) or
  ``lessons.core.tasks.copy_splits()`` (train strings of 1-20 letters; ``test``: 1,000 of
  1-20; ``long test``: 1,000 of 21-30).
* Exact match: the greedy output (`lessons.seq2seq.greedy_decode`, at most 12
  characters for dates and 32 for copy, ``</s>`` included) equals the target, every
  character. Also by source-length bucket; the buckets after ``|`` hold sources longer
  than any training source.
* Training seconds: as recorded by the training script (one thread, wall clock, on a
  shared machine: expect some noise). ``ms/step``: the mean wall time of one training
  step (forward, backward, Adam; batch of 64 training examples) measured here, one
  thread, on the same batches for every model of a task.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from lessons.core.checkpoint import checkpoint_notes
from lessons.core.tasks import LengthSplits, batches, copy_splits, date_extraction_splits
from lessons.seq2seq import (
    accuracy_by_length,
    exact_match,
    load_model,
    predict,
    seq2seq_loss,
)

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "src" / "lessons" / "pretrained"

TASKS = {"extract": date_extraction_splits, "copy": copy_splits}
MAX_LEN = {"extract": 12, "copy": 32}  # output characters, </s> included
BUCKETS = {
    "extract": [(10, 20), (21, 30), (31, 40), (41, 60), (61, 80), (81, 100), (101, 120)],
    "copy": [(1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 30)],
}
ORDER = ["none", "none-48", "additive", "dot", "general", "transformer", "transformer-sinusoidal"]


def bucket_accuracy(by_length: dict[int, tuple[float, int]], low: int, high: int) -> float:
    """Exact match over the sources of ``low ... high`` characters."""
    hits = sum(acc * n for length, (acc, n) in by_length.items() if low <= length <= high)
    count = sum(n for length, (_, n) in by_length.items() if low <= length <= high)
    return hits / count


def ms_per_step(model, train_batches, steps: int) -> float:
    """Mean milliseconds of one training step over ``steps`` batches (after one warm-up)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: weights unchanged
    model.train()
    times = []
    for batch in train_batches[: steps + 1]:
        start = time.perf_counter()
        loss = seq2seq_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    return 1000 * sum(times[1:]) / len(times[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=MODELS)
    parser.add_argument("--timing-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "seq2seq.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    paths = sorted(args.models.glob("seq2seq-*.safetensors"))
    if not paths:
        raise SystemExit(f"no seq2seq-*.safetensors in {args.models}: train them first")
    by_task: dict[str, list[Path]] = {}
    for path in paths:
        by_task.setdefault(checkpoint_notes(path)["task"], []).append(path)

    lines = [
        "Encoder-decoders of Chapter 3: exact match by source length",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python bench/seq2seq.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), {platform.machine()}",
        "trained by: .venv/bin/python scripts/train_seq2seq.py (fixed seeds and epochs)",
        f"load average at the start (shared machine): {os.getloadavg()[0]:.1f}",
    ]
    for task in ("extract", "copy"):
        if task not in by_task:
            continue
        splits: LengthSplits = TASKS[task]()
        longest = splits.max_train_len
        buckets = BUCKETS[task]
        lines += [
            "",
            f"task: {task}; train {len(splits.train)} examples, sources of at most {longest} "
            f"characters; test {len(splits.test)} (same lengths), long test "
            f"{len(splits.long_test)} (longer than any training source)",
        ]
        head = f"{'model':<30}{'params':>9}{'train s':>9}{'epochs':>7}{'ms/step':>9}"
        head += f"{'test %':>8}{'long %':>8}   "
        head += " ".join(
            ("| " if low > longest >= buckets[i - 1][1] else "")
            + f"{low}-{high}".rjust(max(5, len(f"{low}-{high}")))
            for i, (low, high) in enumerate(buckets)
        )
        lines += [head]
        timing_batches = batches(splits.train[:4096], load_model(by_task[task][0]).vocab, 64)
        names = sorted(by_task[task], key=lambda p: ORDER.index(p.stem.split("-", 2)[2]))
        for path in names:
            model = load_model(path).eval()
            notes = checkpoint_notes(path)
            pairs = splits.test + splits.long_test
            predictions = predict(model, [s for s, _ in pairs], MAX_LEN[task])
            by_length = accuracy_by_length(pairs, predictions)
            n = len(splits.test)
            test = exact_match(predictions[:n], [t for _, t in splits.test])
            long = exact_match(predictions[n:], [t for _, t in splits.long_test])
            params = sum(p.numel() for p in model.parameters())
            step = ms_per_step(model, timing_batches, args.timing_steps)
            row = f"{path.stem.removeprefix('seq2seq-'):<30}{params:>9,}"
            row += f"{notes['seconds']:>9.0f}{notes['epochs']:>7}{step:>9.0f}"
            row += f"{100 * test:>8.1f}{100 * long:>8.1f}   "
            row += " ".join(
                ("| " if low > longest >= buckets[i - 1][1] else "")
                + f"{100 * bucket_accuracy(by_length, low, high):.1f}".rjust(
                    max(5, len(f"{low}-{high}"))
                )
                for i, (low, high) in enumerate(buckets)
            )
            lines.append(row)
            print(row, file=sys.stderr, flush=True)
    lines += [
        "",
        "test % / long %: exact match on the test (same lengths as training) and long test",
        "(longer than any training source); then exact match by source length, in percent.",
        "train s: training wall-clock seconds (all epochs, 1 thread, shared 2-core machine).",
        "ms/step: one training step measured here, one thread, same batches for every model",
        "of a task (on a shared machine too: compare within one run).",
        "extract-none/additive/dot/general: RNNSeq2Seq with hidden_dim 24 (the decoder",
        "without attention sees one vector of 48 numbers); copy-*: hidden_dim 48;",
        "transformers: d_model 64, 2 layers, 4 heads.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
