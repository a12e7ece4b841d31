"""Chapter 3's date task with chapter 4's Transformer, beside chapter 3's models.

Run from the repository root, after ``scripts/train_transformer.py`` (the Transformer)
and ``scripts/train_seq2seq.py`` (chapter 3's models) have written their weights into
``src/lessons/pretrained/``::

    .venv/bin/python bench/transformer_dates.py

It prints one report and writes it to ``bench/results/transformer_dates.txt``
(``--output``); the numbers are saved with `lessons.core.results.save_results` as
``transformer_dates`` (``src/lessons/results/transformer_dates.json``).

What is measured, the same way for every model:

* Data: chapter 3's test sets, rebuilt with the defaults every model was trained with,
  ``lessons.core.tasks.date_extraction_splits()``: ``test``, 2,000 texts of 10 to 40
  characters (the training lengths), none seen in training; ``long test``, 2,000 texts
  of 41 to 120 characters, longer than any training text.
* Exact match: the output equals the ISO date, every character, with at most 12 output
  tokens (``</s>`` included); also by source-length bucket (the buckets after ``|``
  hold texts longer than any training text).
* Models: ``transformer-dates`` (chapter 4's recipe: post-norm, sinusoidal positions,
  dropout, label smoothing, warm-up), decoded greedily and with beam search of size 4
  (``lessons.transformer.translate``); chapter 3's GRU encoder-decoders with additive
  attention and without attention (``lessons.seq2seq.load_pretrained``); chapter 3's
  models without recurrence (``lessons.transformer.load_pretrained("extract-…")``:
  pre-norm, no dropout, plain cross-entropy and Adam at a fixed rate, order from
  convolutions, sinusoidal positions or both). Chapter 3's models are decoded greedily
  (``lessons.seq2seq.predict``).
* A check: greedy decoding of ``transformer-dates`` through ``lessons.seq2seq.predict``
  (the model's own ``greedy``) and through ``translate`` (beam search of size 1) must
  give the same strings; the report says in how many texts they agree.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lessons import seq2seq, transformer
from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import save_results
from lessons.core.tasks import date_extraction_splits

ROOT = Path(__file__).resolve().parent.parent
MAX_LEN = 12  # output tokens, </s> included: chapter 3's setting for dates
BUCKETS = [(10, 20), (21, 30), (31, 40), (41, 60), (61, 80), (81, 100), (101, 120)]
BATCH = 250  # sources decoded at once


def bucket_accuracy(by_length: dict[int, tuple[float, int]], low: int, high: int) -> float:
    """Exact match over the sources of ``low ... high`` characters."""
    hits = sum(acc * n for length, (acc, n) in by_length.items() if low <= length <= high)
    count = sum(n for length, (_, n) in by_length.items() if low <= length <= high)
    return hits / count


def translate_all(model, sources: Sequence[str], beam_size: int) -> list[str]:
    """`lessons.transformer.translate` over ``sources``, `BATCH` at a time."""
    out: list[str] = []
    for start in tqdm(range(0, len(sources), BATCH), desc=f"beam {beam_size}", leave=False):
        chunk = list(sources[start : start + BATCH])
        out += transformer.translate(model, chunk, beam_size=beam_size, max_len=MAX_LEN)
    return out


def decoders(dates) -> dict[str, tuple[str, object, Callable[[Sequence[str]], list[str]]]]:
    """``{row name: (shipped file stem, model, decode)}`` in the order of the report;
    ``dates`` is the shipped ``transformer-dates`` model."""
    rows: dict[str, tuple[str, object, Callable[[Sequence[str]], list[str]]]] = {
        "transformer-dates, greedy": (
            "transformer-dates",
            dates,
            lambda sources: translate_all(dates, sources, beam_size=1),
        ),
        "transformer-dates, beam 4": (
            "transformer-dates",
            dates,
            lambda sources: translate_all(dates, sources, beam_size=4),
        ),
    }
    for name in ("extract-additive", "extract-none"):
        model = seq2seq.load_pretrained(name)
        rows[name] = (
            f"seq2seq-{name}",
            model,
            lambda sources, m=model: seq2seq.predict(m, list(sources), MAX_LEN),
        )
    for name in ("extract-convolution", "extract-convolution-sinusoidal", "extract-sinusoidal"):
        model = transformer.load_pretrained(name)
        rows[f"transformer-{name}"] = (
            f"transformer-{name}",
            model,
            lambda sources, m=model: seq2seq.predict(m, list(sources), MAX_LEN),
        )
    return rows


def notes_of(stem: str) -> dict[str, object]:
    if stem.startswith("transformer-"):
        return checkpoint_notes(transformer.pretrained_path(stem.removeprefix("transformer-")))
    return checkpoint_notes(seq2seq.pretrained_path(stem.removeprefix("seq2seq-")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "transformer_dates.txt"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "bench/transformer_dates.py " + " ".join(argv if argv is not None else sys.argv[1:])
    command = command.strip()

    splits = date_extraction_splits()
    pairs = splits.test + splits.long_test
    sources = [source for source, _ in pairs]
    n = len(splits.test)
    longest = splits.max_train_len
    load_average = os.getloadavg()[0]
    lines = [
        "Chapter 3's date task: chapter 4's Transformer beside chapter 3's models",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), {platform.machine()}",
        "trained by: scripts/train_transformer.py (transformer-dates) and "
        "scripts/train_seq2seq.py (the others)",
        f"load average at the start: {load_average:.1f}",
        "",
        f"train {len(splits.train)} texts of 10-{longest} characters; test {len(splits.test)} "
        f"(same lengths), long test {len(splits.long_test)} "
        f"({longest + 1}-{max(len(s) for s, _ in splits.long_test)} characters)",
    ]
    head = f"{'model':<44}{'params':>9}{'steps':>7}{'train s':>9}{'decode s':>10}"
    head += f"{'test %':>8}{'long %':>8}   "
    head += " ".join(
        ("| " if low > longest >= BUCKETS[i - 1][1] else "")
        + f"{low}-{high}".rjust(max(5, len(f"{low}-{high}")))
        for i, (low, high) in enumerate(BUCKETS)
    )
    lines.append(head)
    measured: dict[str, dict[str, object]] = {}
    predictions_of: dict[str, list[str]] = {}
    dates = transformer.load_pretrained("dates")
    for row_name, (stem, model, decode) in decoders(dates).items():
        start = time.perf_counter()
        predictions = decode(sources)
        decode_seconds = time.perf_counter() - start
        predictions_of[row_name] = predictions
        by_length = seq2seq.accuracy_by_length(pairs, predictions)
        test = seq2seq.exact_match(predictions[:n], [t for _, t in splits.test])
        long = seq2seq.exact_match(predictions[n:], [t for _, t in splits.long_test])
        notes = notes_of(stem)
        params = sum(p.numel() for p in model.parameters())
        buckets = {f"{low}-{high}": bucket_accuracy(by_length, low, high) for low, high in BUCKETS}
        measured[row_name] = {
            "file": f"{stem}.safetensors",
            "parameters": params,
            "epochs": notes["epochs"],
            "steps": notes["steps"],
            "train_seconds": notes["seconds"],
            "decode_seconds": round(decode_seconds, 1),
            "test": round(test, 4),
            "long_test": round(long, 4),
            "buckets": {key: round(value, 4) for key, value in buckets.items()},
        }
        row = f"{row_name:<44}{params:>9,}{notes['steps']:>7}{notes['seconds']:>9.0f}"
        row += f"{decode_seconds:>10.1f}{100 * test:>8.1f}{100 * long:>8.1f}   "
        row += " ".join(
            ("| " if low > longest >= BUCKETS[i - 1][1] else "")
            + f"{100 * buckets[f'{low}-{high}']:.1f}".rjust(max(5, len(f"{low}-{high}")))
            for i, (low, high) in enumerate(BUCKETS)
        )
        lines.append(row)
        print(row, file=sys.stderr, flush=True)

    own_greedy = seq2seq.predict(dates, sources, MAX_LEN)
    agree = sum(
        a == b for a, b in zip(own_greedy, predictions_of["transformer-dates, greedy"], strict=True)
    )
    notes = notes_of("transformer-dates")
    config = dates.config
    lines += [
        "",
        f"check: greedy through model.greedy and through translate(beam_size=1) agree on "
        f"{agree} of {len(sources)} texts",
        "",
        f"transformer-dates: d_model {config['d_model']}, {config['num_heads']} heads, "
        f"{config['num_layers']} encoder and {config['num_layers']} decoder layers, "
        f"feed-forward {config['ff_dim']}, dropout {config['dropout']}, "
        f"norm_first={config['norm_first']}, source_positions={config['source_positions']!r};",
        f"  {notes['epochs']} epochs ({notes['steps']} steps of {notes['batch_size']}), "
        f"warm-up {notes['warmup']} steps, label smoothing {notes['label_smoothing']}, "
        f"{notes['seconds']:.0f} s on {notes['threads']} thread(s); "
        f"{notes['command']}",
        "",
        "test % / long %: exact match on the test (training lengths) and long test (longer",
        "than any training text); then exact match by source length, in percent.",
        "train s: training wall-clock seconds from each checkpoint's notes (separate runs,",
        "one thread; they move with the load of the machine). decode s: the wall time of",
        "decoding the 4,000 texts here, in batches of 250, one model after the other.",
        "Chapter 3's models (extract-*) are decoded greedily; extract-additive and",
        "extract-none are GRU encoder-decoders (hidden_dim 24); transformer-extract-* are",
        "TransformerSeq2Seq in chapter 3's setting (pre-norm, no dropout, cross-entropy,",
        "Adam at 3e-3), order from convolutions, convolutions and sinusoidal positions, or",
        "sinusoidal positions alone (trained 3x the steps).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    record = {
        "threads": args.threads,
        "load_average": round(load_average, 2),
        "max_len": MAX_LEN,
        "max_train_len": longest,
        "test_size": len(splits.test),
        "long_test_size": len(splits.long_test),
        "buckets": [f"{low}-{high}" for low, high in BUCKETS],
        "greedy_agreement": agree / len(sources),
        "transformer_dates_config": dict(config),
        "transformer_dates_notes": notes,
        "models": measured,
    }
    save_results("transformer_dates", record, command=command)


if __name__ == "__main__":
    main()
