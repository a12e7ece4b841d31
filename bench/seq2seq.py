"""The encoder-decoders of Chapter 3 on inputs as long as and longer than in training.

Run from the repository root, after ``scripts/train_seq2seq.py`` has written the models
(into ``src/lessons/pretrained/``, where ``lessons.seq2seq.load_pretrained`` and, for the
models without recurrence, ``lessons.transformer.load_pretrained`` find them)::

    .venv/bin/python bench/seq2seq.py

It prints one report and writes it to ``bench/results/seq2seq.txt`` (``--output``).

What is measured, the same way for every model (``src/lessons/pretrained/seq2seq-*`` and
``transformer-extract-*``):

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
* Training seconds: as recorded by the training script (one thread, wall clock). They
  are times of separate runs and move with whatever else the CPU is doing, so they do
  not compare models. ``ms/step``: the mean wall time of one training step (forward,
  backward, Adam; batch of 64 training examples) measured here, one thread, on the same
  batches for every model of a task, one model after the other.
* Step time by source length, the comparison of chapter 3, section 6: the time of one
  training step of `STEP_MODELS` on batches of 64 sources of about 20, 40, 80 and 120
  characters, the fastest of 15 repeats (the one least disturbed by other work on the
  machine); every repeat times each model once, in an order that alternates, so that a
  change in the machine's load falls on both.

Besides the report, the numbers are saved with `lessons.core.results.save_results` as
``seq2seq`` (``src/lessons/results/seq2seq.json``), where chapter 3 reads them.
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
from lessons.core.results import save_results
from lessons.core.tasks import (
    LengthSplits,
    batches,
    copy_splits,
    date_extraction_examples,
    date_extraction_splits,
    make_batch,
)
from lessons.seq2seq import accuracy_by_length, exact_match, predict, seq2seq_loss
from lessons.seq2seq import load_model as load_recurrent
from lessons.transformer import load_model as load_transformer

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "src" / "lessons" / "pretrained"

TASKS = {"extract": date_extraction_splits, "copy": copy_splits}
MAX_LEN = {"extract": 12, "copy": 32}  # output characters, </s> included
BUCKETS = {
    "extract": [(10, 20), (21, 30), (31, 40), (41, 60), (61, 80), (81, 100), (101, 120)],
    "copy": [(1, 5), (6, 10), (11, 15), (16, 20), (21, 25), (26, 30)],
}
#: The order of the report: names are file names without ``seq2seq-`` and ``.safetensors``.
ORDER = [
    "extract-none",
    "extract-none-48",
    "extract-additive",
    "extract-dot",
    "extract-general",
    "transformer-extract-convolution",
    "transformer-extract-convolution-sinusoidal",
    "transformer-extract-sinusoidal",
    "copy-none",
    "copy-additive",
]
#: The models whose training steps are timed side by side, by source length.
STEP_MODELS = ("extract-additive", "transformer-extract-convolution")
STEP_LENGTHS = (20, 40, 80, 120)


def model_name(path: Path) -> str:
    """``extract-additive`` for ``seq2seq-extract-additive.safetensors``; the models of
    `lessons.transformer` keep their ``transformer-`` prefix."""
    return path.stem.removeprefix("seq2seq-")


def load_model(path: Path):
    """A shipped model of either chapter module, in eval mode."""
    if path.stem.startswith("transformer-"):
        return load_transformer(path).eval()
    return load_recurrent(path).eval()


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


def _train_step(model, batch, optimizer) -> float:
    """Seconds of one training step: forward, backward, Adam."""
    start = time.perf_counter()
    loss = seq2seq_loss(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def step_ms_by_length(
    models: dict[str, object], lengths=STEP_LENGTHS, repeats: int = 15, batch_size: int = 64
) -> dict[str, list[float]]:
    """``{name: [ms of one training step at each length, the fastest of the repeats]}``.

    At each length, one batch of ``batch_size`` date-extraction sources of ``length - 4``
    to ``length`` characters (seed 5); one warm-up step per model, then ``repeats``
    rounds that time every model once, in an order reversed every other round.
    """
    names = list(models)
    out: dict[str, list[float]] = {name: [] for name in names}
    optimizers = {
        name: torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: weights unchanged
        for name, model in models.items()
    }
    for model in models.values():
        model.train()
    for length in lengths:
        pairs = date_extraction_examples(batch_size, seed=5, min_len=length - 4, max_len=length)
        batch = make_batch(pairs, models[names[0]].vocab)
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            _train_step(models[name], batch, optimizers[name])
        for repeat in range(repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                times[name].append(_train_step(models[name], batch, optimizers[name]))
        for name in names:
            out[name].append(round(1000 * min(times[name]), 1))
    for model in models.values():
        model.eval()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=MODELS)
    parser.add_argument("--timing-steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step-repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "seq2seq.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    paths = sorted(args.models.glob("seq2seq-*.safetensors"))
    paths += sorted(args.models.glob("transformer-extract-*.safetensors"))
    if not paths:
        raise SystemExit(f"no seq2seq-*.safetensors in {args.models}: train them first")
    by_task: dict[str, list[Path]] = {}
    for path in paths:
        by_task.setdefault(checkpoint_notes(path)["task"], []).append(path)

    command = f"bench/seq2seq.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip()
    load_average = os.getloadavg()[0]
    lines = [
        "Encoder-decoders of Chapter 3: exact match by source length",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), {platform.machine()}",
        "trained by: .venv/bin/python scripts/train_seq2seq.py (fixed seeds and epochs)",
        f"load average at the start: {load_average:.1f}",
    ]
    record: dict[str, object] = {"threads": args.threads, "load_average": round(load_average, 2)}
    measured: dict[str, dict[str, object]] = {}
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
        head = f"{'model':<44}{'params':>9}{'train s':>9}{'epochs':>7}{'ms/step':>9}"
        head += f"{'test %':>8}{'long %':>8}   "
        head += " ".join(
            ("| " if low > longest >= buckets[i - 1][1] else "")
            + f"{low}-{high}".rjust(max(5, len(f"{low}-{high}")))
            for i, (low, high) in enumerate(buckets)
        )
        lines += [head]
        timing_batches = batches(splits.train[:4096], load_model(by_task[task][0]).vocab, 64)
        for path in sorted(by_task[task], key=lambda p: ORDER.index(model_name(p))):
            model = load_model(path)
            notes = checkpoint_notes(path)
            pairs = splits.test + splits.long_test
            predictions = predict(model, [s for s, _ in pairs], MAX_LEN[task])
            by_length = accuracy_by_length(pairs, predictions)
            n = len(splits.test)
            test = exact_match(predictions[:n], [t for _, t in splits.test])
            long = exact_match(predictions[n:], [t for _, t in splits.long_test])
            params = sum(p.numel() for p in model.parameters())
            step = ms_per_step(model, timing_batches, args.timing_steps)
            name = model_name(path)
            measured[name] = {
                "task": task,
                "parameters": params,
                "epochs": notes["epochs"],
                "steps": notes["steps"],
                "train_seconds": notes["seconds"],
                "ms_per_step": round(step, 1),
                "test": round(test, 4),
                "long_test": round(long, 4),
                "buckets": {
                    f"{low}-{high}": round(bucket_accuracy(by_length, low, high), 4)
                    for low, high in buckets
                },
            }
            row = f"{name:<44}{params:>9,}"
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
    by_name = {model_name(path): path for path in paths}
    step_models = {name: load_model(by_name[name]) for name in STEP_MODELS}
    by_length = step_ms_by_length(step_models, repeats=args.step_repeats)
    lines += [
        "",
        f"training step by source length: ms, the fastest of {args.step_repeats} alternating "
        f"repeats, batch of 64, {args.threads} thread(s)",
        f"{'model':<44}" + "".join(f"{f'~{n} chars':>11}" for n in STEP_LENGTHS),
        *(
            f"{name:<44}" + "".join(f"{ms:>11.1f}" for ms in by_length[name])
            for name in STEP_MODELS
        ),
        f"{'ratio (second / first)':<44}"
        + "".join(
            f"{b / a:>11.2f}"
            for a, b in zip(by_length[STEP_MODELS[0]], by_length[STEP_MODELS[1]], strict=True)
        ),
    ]
    record["models"] = measured
    record["step_ms_by_length"] = {
        "lengths": list(STEP_LENGTHS),
        "repeats": args.step_repeats,
        **by_length,
    }
    lines += [
        "",
        "test % / long %: exact match on the test (same lengths as training) and long test",
        "(longer than any training source); then exact match by source length, in percent.",
        "train s: training wall-clock seconds (all epochs, 1 thread), from separate runs:",
        "they move with the load of the machine and do not compare models.",
        "ms/step: one training step measured here, one thread, same batches for every model",
        "of a task, one model after the other; the step times by source length alternate",
        "the models within each repeat, and are the ones to compare.",
        "extract-none/additive/dot/general: RNNSeq2Seq with hidden_dim 24 (the decoder",
        "without attention sees one vector of 48 numbers); extract-none-48 and copy-*:",
        "hidden_dim 48; transformer-*: lessons.transformer.TransformerSeq2Seq, d_model 64,",
        "2 layers, 4 heads, pre-norm, no dropout, trained as the recurrent models (Adam,",
        "cross-entropy); the order of the source from two convolutions (-convolution),",
        "convolutions and sinusoidal positions (-convolution-sinusoidal) or sinusoidal",
        "positions alone (-sinusoidal).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    save_results("seq2seq", record, command=command)


if __name__ == "__main__":
    main()
