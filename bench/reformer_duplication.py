"""The duplication task of chapter 6: the paper's Table 2 in shape, from the shipped models.

Run from the repository root, after ``scripts/train_reformer_duplication.py`` has trained
the four models (full attention, LSH-1, LSH-2, LSH-4)::

    .venv/bin/python bench/reformer_duplication.py   # writes bench/results/

Each model (`lessons.reformer.load_pretrained`) is evaluated on 1,024 fresh test
sequences ``0 w 0 w`` (``w = 63`` symbols from 1..63; ``torch.Generator().manual_seed(2)``,
a stream neither the training data nor the held-out set of the training log used) with
full attention and with LSH attention of 1, 2, 4 and 8 rounds. The test set is split
into 8 batches of 128; each batch hashes with its own random rotations (seeded by the
batch's index), so the table gives the mean accuracy over the 8 batches and its standard
error, which includes the luck of the rotations. Kitaev et al.'s (2020) Table 2 is stored
beside it: their sequences were 1,024 long (``w = 511``, 127 symbols), their model had
``d_model = d_ff = 256`` and 4 heads, and it trained for 150K steps.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

import torch

from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import save_results
from lessons.reformer import (
    duplication_accuracy,
    duplication_batch,
    load_pretrained,
    pretrained_path,
)

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "full": "duplication-full",
    "lsh4": "duplication-lsh4",
    "lsh2": "duplication-lsh2",
    "lsh1": "duplication-lsh1",
}
EVALUATIONS = ("full", "lsh-8", "lsh-4", "lsh-2", "lsh-1")
#: Kitaev et al. (2020), Table 2: rows trained with, columns evaluated with (percent).
PAPER_TABLE = {
    "full": {"full": 100.0, "lsh-8": 94.8, "lsh-4": 92.5, "lsh-2": 76.9, "lsh-1": 52.5},
    "lsh4": {"full": 0.8, "lsh-8": 100.0, "lsh-4": 99.9, "lsh-2": 99.4, "lsh-1": 91.9},
    "lsh2": {"full": 0.8, "lsh-8": 100.0, "lsh-4": 99.9, "lsh-2": 98.1, "lsh-1": 86.8},
    "lsh1": {"full": 0.8, "lsh-8": 99.9, "lsh-4": 99.6, "lsh-2": 94.8, "lsh-1": 77.9},
}
BATCHES, BATCH_SIZE = 8, 128


def evaluate(name: str, test: list[torch.Tensor]) -> dict[str, dict[str, float]]:
    """Mean accuracy and its standard error over the test batches, per evaluation."""
    model = load_pretrained(name)
    scores = {}
    for evaluation in EVALUATIONS:
        attention = "full" if evaluation == "full" else "lsh"
        rounds = None if evaluation == "full" else int(evaluation.split("-")[1])
        per_batch = [
            duplication_accuracy(model, batch, attention, rounds, seed=i)
            for i, batch in enumerate(test)
        ]
        scores[evaluation] = {
            "mean": statistics.fmean(per_batch),
            "se": statistics.stdev(per_batch) / len(per_batch) ** 0.5,
        }
    return scores


def report(results: dict, header: str) -> str:
    lines = [header, "", "accuracy on the second copy, mean over 8 batches of 128 (+- s.e.)"]
    lines.append("trained with  " + "".join(f"{e:>16}" for e in EVALUATIONS))
    for trained, scores in results["table"].items():
        cells = "".join(
            f"{100 * scores[e]['mean']:9.1f} +- {100 * scores[e]['se']:3.1f}" for e in EVALUATIONS
        )
        lines.append(f"{trained:12}  {cells}")
    lines += ["", "Kitaev et al. (2020), Table 2 (w = 511, 150K steps), percent"]
    lines.append("trained with  " + "".join(f"{e:>9}" for e in EVALUATIONS))
    for trained, scores in PAPER_TABLE.items():
        lines.append(f"{trained:12}  " + "".join(f"{scores[e]:9.1f}" for e in EVALUATIONS))
    lines += ["", "training (from the checkpoints' notes)"]
    for trained, notes in results["training"].items():
        lines.append(
            f"{trained:12}  {notes['steps']} steps of {notes['batch_size']}, "
            f"{notes['minutes']} min, {notes['threads']} thread(s)"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    torch.set_num_threads(1)
    notes = {trained: checkpoint_notes(pretrained_path(name)) for trained, name in MODELS.items()}
    w, vocab = notes["full"]["w"], 64
    generator = torch.Generator().manual_seed(2)
    test = [duplication_batch(BATCH_SIZE, w, vocab, generator) for _ in range(BATCHES)]
    results = {
        "w": w,
        "sequence_length": 2 * w + 2,
        "symbols": vocab - 1,
        "chance": 1 / (vocab - 1),
        "test_sequences": BATCHES * BATCH_SIZE,
        "table": {trained: evaluate(name, test) for trained, name in MODELS.items()},
        "paper_table": PAPER_TABLE,
        "paper_setting": {
            "w": 511,
            "sequence_length": 1024,
            "symbols": 127,
            "steps": 150_000,
            "d_model": 256,
            "d_ff": 256,
            "heads": 4,
            "layers": 1,
        },
        "curves": {trained: note["log"] for trained, note in notes.items()},
        "training": {
            trained: {key: note[key] for key in ("steps", "batch_size", "minutes", "threads")}
            for trained, note in notes.items()
        },
    }
    command = ".venv/bin/python bench/reformer_duplication.py"
    header = "\n".join(
        [
            "The duplication task of chapter 6 (Kitaev et al. 2020, section 2.1, Table 2)",
            f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"command: {command}",
            f"python {platform.python_version()}, torch {torch.__version__}",
            f"w = {w} (sequences of {2 * w + 2}), {vocab - 1} symbols, chance "
            f"{100 / (vocab - 1):.1f}%; 1 layer, d_model 128, 2 heads, d_ff 256, chunks of 16, "
            "8 buckets",
        ]
    )
    text = report(results, header)
    print(text)
    (ROOT / "bench" / "results" / "reformer_duplication.txt").write_text(text, encoding="utf-8")
    save_results("reformer_duplication", results, command=command)
    return text


if __name__ == "__main__":
    main()
