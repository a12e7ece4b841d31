"""word2vec's tricks switched off one at a time: negative samples K, the 3/4 power and
subsampling, skip-gram on the Wikipedia sample (Chapter 1, section 5).

Mikolov et al. (2013b, Table 1) compared negative sampling with K = 5 and K = 15, with
and without subsampling of frequent words, on analogies, and reported that the unigram
distribution raised to the 3/4 power beat the plain unigram and the uniform distribution
as the noise distribution. This script asks the same questions of `lessons.word2vec`
on our 385,000-word sample:

* K (``negative``) = 2, 5, 15, with subsampling (``sample=1e-3``) and without (``0``);
* the noise exponent (``ns_exponent``) = 0.75, 1 (the unigram distribution) and 0
  (uniform), with K = 5 and subsampling;
* a control: the default settings with batches of 590 pairs, the smallest batch that
  the runs without subsampling take (their default batch shrinks to bound the load on
  the most frequent word, see `lessons.word2vec.Word2Vec._default_batch_size`).

Every other setting is the chapter's (vector_size=100, window=5, min_count=5,
alpha=0.025, sg=1) and every model is trained ``--epochs`` passes (5 by default, as in
the chapter),
seeds 1..``--seeds`` (3), on one torch thread. Each is scored on WordSim-353 and
SimLex-999 (Spearman) and on the Google analogies (3CosAdd accuracy over the questions
the vocabulary covers) with `lessons.core.keyed_vectors.KeyedVectors`, whose scores are
tested equal to gensim's.

Run from the repository root::

    .venv/bin/python scripts/word2vec_ablation.py       # about 25 minutes on one core

It writes the human-readable table to ``bench/results/word2vec_ablation.txt`` and the
numbers to ``lessons/results/word2vec_ablation.json`` (`lessons.core.results`), which
the chapter reads.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lessons.core import data
from lessons.core.results import save_results
from lessons.word2vec import Word2Vec

#: What every run shares: the chapter's settings, skip-gram.
BASE = dict(sg=1, vector_size=100, window=5, min_count=5, alpha=0.025)
#: The runs: a name, and the settings that differ from the word2vec defaults
#: (negative=5, ns_exponent=0.75, sample=1e-3).
CONFIGS: dict[str, dict[str, float]] = {
    "K=5, 3/4 power, subsampling (default)": dict(negative=5, ns_exponent=0.75, sample=1e-3),
    "K=2": dict(negative=2, ns_exponent=0.75, sample=1e-3),
    "K=15": dict(negative=15, ns_exponent=0.75, sample=1e-3),
    "K=2, no subsampling": dict(negative=2, ns_exponent=0.75, sample=0.0),
    "K=5, no subsampling": dict(negative=5, ns_exponent=0.75, sample=0.0),
    "K=15, no subsampling": dict(negative=15, ns_exponent=0.75, sample=0.0),
    "unigram noise (power 1)": dict(negative=5, ns_exponent=1.0, sample=1e-3),
    "uniform noise (power 0)": dict(negative=5, ns_exponent=0.0, sample=1e-3),
    # A control: runs without subsampling take smaller batches (the load limit of
    # `Word2Vec._default_batch_size`); the default settings with the smallest of them.
    "default settings, batches of 590 pairs": dict(
        negative=5, ns_exponent=0.75, sample=1e-3, batch_size=590
    ),
}
METRICS = ("wordsim", "simlex", "analogy")


def score(model: Word2Vec) -> dict[str, float]:
    """WordSim-353 and SimLex-999 Spearman, and analogy accuracy, of a trained model."""
    wv = model.wv
    wordsim = wv.evaluate_word_pairs(data.wordsim353_path())[1][0]
    simlex = wv.evaluate_word_pairs(data.simlex999_path())[1][0]
    analogy, sections = wv.evaluate_word_analogies(data.analogies_path())
    total = sections[-1]
    return {
        "wordsim": float(wordsim),
        "simlex": float(simlex),
        "analogy": float(analogy),
        "analogy_covered": len(total["correct"]) + len(total["incorrect"]),
    }


def run(epochs: int, seeds: int) -> dict[str, dict[str, object]]:
    """Train every configuration with seeds 1..``seeds``; the scores and times of each."""
    sentences = data.wikipedia("train")
    rows: dict[str, dict[str, object]] = {}
    bar = tqdm(total=len(CONFIGS) * seeds, unit="model", desc="ablation")
    for name, settings in CONFIGS.items():
        runs = []
        for seed in range(1, seeds + 1):
            start = time.perf_counter()
            model = Word2Vec(
                sentences, epochs=epochs, seed=seed, progress=False, **BASE, **settings
            )
            runs.append({**score(model), "seconds": time.perf_counter() - start})
            runs[-1]["pairs_per_epoch"] = float(np.mean([h["examples"] for h in model.history]))
            runs[-1]["batch_size"] = float(model.history[0]["batch_size"])
            bar.set_postfix(config=name[:24], wordsim=f"{runs[-1]['wordsim']:.3f}")
            bar.update()
        row: dict[str, object] = {"settings": settings}
        for key in (*METRICS, "seconds", "pairs_per_epoch", "batch_size"):
            values = [r[key] for r in runs]
            row[key] = statistics.fmean(values)
            row[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            row[f"{key}_per_seed"] = values
        row["analogy_covered"] = runs[0]["analogy_covered"]
        rows[name] = row
    bar.close()
    return rows


def report(rows: dict[str, dict[str, object]], epochs: int, seeds: int) -> list[str]:
    """The table: mean ± standard deviation over the seeds, then every seed's scores."""
    lines = [
        f"skip-gram on the Wikipedia sample (train), {BASE}, epochs={epochs}, "
        f"seeds 1..{seeds}, 1 torch thread",
        "mean ± standard deviation over the seeds; WordSim-353 and SimLex-999 are Spearman's "
        "rho, analogy the 3CosAdd accuracy",
        "",
        f"{'configuration':<40}{'WS353':>15}{'SL999':>15}{'analogy':>15}"
        f"{'pairs/epoch':>13}{'batch':>7}{'time s':>9}",
    ]
    for name, row in rows.items():
        cells = "".join(f"{row[m]:>8.3f} ± {row[m + '_sd']:.3f}" for m in METRICS)
        lines.append(
            f"{name:<40}{cells}{row['pairs_per_epoch']:>13,.0f}{row['batch_size']:>7,.0f}"
            f"{row['seconds']:>9.1f}"
        )
    covered = next(iter(rows.values()))["analogy_covered"]
    lines += [
        "",
        f"analogy questions covered by the vocabulary: {covered:,} of 19,544; batch = the "
        "first epoch's batch size; time = wall time per model, on a machine shared with "
        "other work (a rough guide only: pairs/epoch measures the cost)",
        "",
    ]
    lines.append("per seed (WS353 | SL999 | analogy):")
    for name, row in rows.items():
        per_seed = " | ".join(" ".join(f"{v:.3f}" for v in row[f"{m}_per_seed"]) for m in METRICS)
        lines.append(f"  {name:<40}{per_seed}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "bench" / "results" / "word2vec_ablation.txt",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="do not write the results the chapter reads"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = " ".join(["python", "scripts/word2vec_ablation.py", *sys.argv[1:]])
    start = time.perf_counter()
    rows = run(args.epochs, args.seeds)
    minutes = (time.perf_counter() - start) / 60
    header = [
        f"# scripts/word2vec_ablation.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"# command: {command}",
        f"# torch {torch.__version__}, numpy {np.__version__}, python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, torch threads 1",
        "",
    ]
    footer = f"\n# total {minutes:.1f} minutes"
    text = "\n".join([*header, *report(rows, args.epochs, args.seeds), footer]) + "\n"
    print(text)
    if not args.no_save:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        results = {"epochs": args.epochs, "seeds": args.seeds, "base": BASE, "rows": rows}
        save_results("word2vec_ablation", results, command=command)


if __name__ == "__main__":
    main()
