"""Our word2vec against gensim's: speed, quality and gensim's own sanity check, side by side.

Run from the repository root::

    .venv/bin/python bench/word2vec.py            # the full run (about 15 minutes, 1 core)
    .venv/bin/python bench/word2vec.py --quick    # fewer seeds: 1 Wikipedia, 3 Lee

It prints one report and writes it to ``bench/results/word2vec.txt`` (``--output``).

1. Wikipedia sample (``data.wikipedia("train")``), gensim's default settings for both
   (vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, alpha=0.025, epochs=5,
   seeds 1..3; one thread each: gensim with workers=1, torch with one thread, as in the
   chapter), skip-gram and CBOW: training time, words per second,
   WordSim-353 and SimLex-999 Spearman (with the share of pairs out of vocabulary and the
   p-value of WordSim-353's correlation) and analogy accuracy (with how many of the 19,544
   questions were covered). Every score is computed by gensim's own ``evaluate_*`` on both
   models' vectors. Words per second = raw corpus tokens (out-of-vocabulary ones
   included) x epochs / the wall time of the whole constructor call (vocabulary +
   training), the same for both.
2. CBOW's learning rate: gensim uses alpha=0.025 for CBOW and skip-gram alike, where
   word2vec.c starts CBOW at 0.05 (``if (cbow) alpha = 0.05;``). Both implementations'
   CBOW with alpha 0.025 and 0.05, for 5 and 15 epochs, seeds 1..3: the same scores, and
   the mean length of the word vectors (how far training has moved them from their small
   random start).
3. gensim's calibrated sanity check (``test_sg_neg`` in gensim/test/test_word2vec.py): the
   Lee corpus as gensim's test builds it (``lee_background.cor``, one document per line,
   ``gensim.utils.simple_preprocess``), sg=1, window=4, negative=15, min_count=5, epochs=10;
   it passes when "bombings" ranks in the top 50 of ``most_similar("attacks")``. We count
   the seeds (1..10) that pass, for ours and for gensim.

The numbers also go to ``lessons/results/word2vec.json`` (`lessons.core.results`), which
Chapter 1 reads.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import gensim
import numpy as np
import torch
from gensim.utils import simple_preprocess

from lessons.core import data
from lessons.core.results import save_results
from lessons.word2vec import Word2Vec

SETTINGS = dict(vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, epochs=5)
LEE_SETTINGS = dict(sg=1, window=4, negative=15, min_count=5, epochs=10)
#: CBOW's learning rates (gensim's default, word2vec.c's default for CBOW) and epochs.
CBOW_GRID = [(alpha, epochs) for epochs in (5, 15) for alpha in (0.025, 0.05)]


def gensim_vectors(model: Word2Vec) -> gensim.models.KeyedVectors:
    """Our vectors in a gensim ``KeyedVectors``, so both are scored by the same code."""
    keyed = gensim.models.KeyedVectors(model.vector_size)
    keyed.add_vectors(model.wv.index_to_key, model.wv.vectors.numpy())
    return keyed


def scores(keyed: gensim.models.KeyedVectors) -> dict[str, float]:
    _, ws_spearman, ws_oov = keyed.evaluate_word_pairs(str(data.wordsim353_path()))
    _, sl_spearman, sl_oov = keyed.evaluate_word_pairs(str(data.simlex999_path()))
    accuracy, sections = keyed.evaluate_word_analogies(str(data.analogies_path()))
    covered = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    return {
        "wordsim": float(ws_spearman[0]),
        "wordsim_p": float(ws_spearman[1]),
        "wordsim_oov": float(ws_oov),
        "simlex": float(sl_spearman[0]),
        "simlex_oov": float(sl_oov),
        "analogy": float(accuracy),
        "covered": covered,
        "mean_norm": float(np.linalg.norm(keyed.vectors, axis=1).mean()),
    }


def summary(runs: list[tuple[float, dict[str, float]]], words: int, epochs: int) -> dict:
    """Means over the seeds of ``(seconds, scores)`` runs, and every seed's value."""
    result: dict[str, object] = {
        key: float(np.mean([s[key] for _, s in runs])) for key in runs[0][1]
    }
    result["seconds"] = float(np.mean([t for t, _ in runs]))
    result["words_per_second"] = words * epochs / result["seconds"]
    for key in ("wordsim", "simlex", "analogy", "wordsim_p"):
        result[f"{key}_per_seed"] = [s[key] for _, s in runs]
    return result


def timed(build) -> tuple[object, float]:
    start = time.perf_counter()
    model = build()
    return model, time.perf_counter() - start


def train_both(sentences, sg: int, seed: int, batch_size: int | None, **settings):
    """gensim's and our model on the same sentences and settings: ``{impl: (s, scores)}``."""
    theirs, their_seconds = timed(
        lambda: gensim.models.Word2Vec(sentences, sg=sg, workers=1, seed=seed, **settings)
    )
    ours, our_seconds = timed(
        lambda: Word2Vec(
            sentences, sg=sg, seed=seed, batch_size=batch_size, progress=False, **settings
        )
    )
    return {
        "gensim": (their_seconds, scores(theirs.wv)),
        "ours": (our_seconds, scores(gensim_vectors(ours))),
    }


def wikipedia_rows(seeds: int, batch_size: int | None) -> tuple[list[str], dict]:
    """Train both implementations with seeds 1..``seeds``; report means over the seeds."""
    sentences = data.wikipedia("train")
    words = sum(len(s) for s in sentences)
    epochs = SETTINGS["epochs"]
    lines = [
        f"Wikipedia sample (train): {len(sentences):,} sentences, {words:,} tokens; "
        f"settings {SETTINGS}, alpha=0.025 (gensim's default); gensim workers=1, torch 1 "
        "thread; ours "
        f"batch_size={batch_size or 'default'}; means over seeds 1..{seeds}",
        "words/s = raw corpus tokens x epochs / wall time of the constructor (vocab + training)",
        "p(WS) = the p-value of WordSim-353's Spearman correlation (no correlation as the null)",
        "",
        f"{'':<10}{'impl':<8}{'time s':>8}{'words/s':>11}{'ours/gensim':>12}"
        f"{'WS353 rho':>11}{'p(WS)':>8}{'SL999 rho':>11}{'analogy':>9}{'covered':>9}",
    ]
    per_seed, results = [], {"words": words, "sentences": len(sentences)}
    for sg, name in ((1, "skip-gram"), (0, "CBOW")):
        runs = {"gensim": [], "ours": []}
        for seed in range(1, seeds + 1):
            for impl, run in train_both(sentences, sg, seed, batch_size, **SETTINGS).items():
                runs[impl].append(run)
        results[name] = {impl: summary(r, words, epochs) for impl, r in runs.items()}
        rates = {impl: results[name][impl]["words_per_second"] for impl in runs}
        results[name]["speed_ratio"] = rates["ours"] / rates["gensim"]
        for impl in runs:
            mean = results[name][impl]
            ratio = f"{results[name]['speed_ratio']:.2f}x" if impl == "ours" else ""
            lines.append(
                f"{name:<10}{impl:<8}{mean['seconds']:>8.1f}{mean['words_per_second']:>11,.0f}"
                f"{ratio:>12}{mean['wordsim']:>11.3f}{mean['wordsim_p']:>8.2g}"
                f"{mean['simlex']:>11.3f}{mean['analogy']:>9.3f}{mean['covered']:>9,.0f}"
            )
            per_seed.append(
                f"  {name:<10}{impl:<8}WS353 "
                + " ".join(f"{v:6.3f}" for v in mean["wordsim_per_seed"])
                + "   SL999 "
                + " ".join(f"{v:6.3f}" for v in mean["simlex_per_seed"])
            )
    oov = results["CBOW"]["ours"]
    lines.append(
        f"OOV share (same vocabulary for both, min_count=5): WordSim-353 "
        f"{oov['wordsim_oov']:.1f}% of pairs, SimLex-999 {oov['simlex_oov']:.1f}%; analogy "
        "covered = questions with all four words in the vocabulary, of 19,544"
    )
    lines.append("Spearman per seed:")
    lines.extend(per_seed)
    return lines, results


def cbow_rows(seeds: int, batch_size: int | None) -> tuple[list[str], list[dict]]:
    """CBOW with gensim's and word2vec.c's learning rates, for 5 and 15 epochs."""
    sentences = data.wikipedia("train")
    words = sum(len(s) for s in sentences)
    lines = [
        "CBOW's learning rate: gensim's default alpha=0.025 against word2vec.c's CBOW default "
        f"0.05, 5 and 15 epochs, other settings as above; means over seeds 1..{seeds}",
        "|v| = mean length of the word vectors (they start below 0.03 and grow as they learn)",
        "",
        f"{'alpha':>6}{'epochs':>7}  {'impl':<8}{'WS353 rho':>11}{'p(WS)':>8}{'SL999 rho':>11}"
        f"{'analogy':>9}{'|v|':>7}   WS353 per seed",
    ]
    rows = []
    for alpha, epochs in CBOW_GRID:
        settings = {**SETTINGS, "epochs": epochs, "alpha": alpha}
        runs = {"gensim": [], "ours": []}
        for seed in range(1, seeds + 1):
            for impl, run in train_both(sentences, 0, seed, batch_size, **settings).items():
                runs[impl].append(run)
        row = {"alpha": alpha, "epochs": epochs}
        for impl, impl_runs in runs.items():
            row[impl] = summary(impl_runs, words, epochs)
            mean = row[impl]
            lines.append(
                f"{alpha:>6}{epochs:>7}  {impl:<8}{mean['wordsim']:>11.3f}"
                f"{mean['wordsim_p']:>8.2g}{mean['simlex']:>11.3f}{mean['analogy']:>9.3f}"
                f"{mean['mean_norm']:>7.2f}   "
                + " ".join(f"{v:6.3f}" for v in mean["wordsim_per_seed"])
            )
        rows.append(row)
    return lines, rows


def lee_corpus() -> list[list[str]]:
    """The Lee corpus exactly as gensim's tests build it (``gensim.test.utils.LeeCorpus``)."""
    lines = data.bundled_files()["lee"].read_text(encoding="utf-8").splitlines()
    return [simple_preprocess(line) for line in lines]


def rank_of_bombings(keyed) -> int:
    neighbours = keyed.most_similar("attacks", topn=len(keyed.index_to_key))
    return [word for word, _ in neighbours].index("bombings")


def lee_rows(seeds: int, batch_size: int | None) -> tuple[list[str], dict]:
    corpus = lee_corpus()
    ours_ranks, their_ranks = [], []
    for seed in range(1, seeds + 1):
        theirs = gensim.models.Word2Vec(corpus, workers=1, seed=seed, **LEE_SETTINGS)
        ours = Word2Vec(corpus, seed=seed, batch_size=batch_size, progress=False, **LEE_SETTINGS)
        their_ranks.append(rank_of_bombings(theirs.wv))
        ours_ranks.append(rank_of_bombings(ours.wv))
    lines = [
        f"gensim's sanity check on the Lee corpus ({len(corpus)} documents, simple_preprocess, "
        f"{sum(map(len, corpus)):,} tokens), {LEE_SETTINGS}:",
        'rank of "bombings" in most_similar("attacks") (0 = nearest; passes when < 50)',
        f"{'seed':<8}" + "".join(f"{s:>6}" for s in range(1, seeds + 1)) + f"{'passed':>9}",
    ]
    for name, ranks in (("gensim", their_ranks), ("ours", ours_ranks)):
        passed = sum(r < 50 for r in ranks)
        lines.append(f"{name:<8}" + "".join(f"{r:>6}" for r in ranks) + f"{passed:>6}/{seeds}")
    return lines, {"ours": ours_ranks, "gensim": their_ranks, "seeds": seeds}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 Wikipedia seed instead of 3, 3 Lee seeds instead of 10",
    )
    parser.add_argument("--batch-size", type=int, help="our batch size (default: the model's)")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "word2vec.txt"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core each: gensim runs with workers=1
    start = time.perf_counter()
    header = [
        f"# bench/word2vec.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"# torch {torch.__version__}, gensim {gensim.__version__}, numpy {np.__version__}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}",
        f"# load average at the start: {_load()} (other processes on the machine slow both "
        "implementations and make timings noisy)",
        "",
    ]
    print("\n".join(header), flush=True)
    seeds = 1 if args.quick else 3
    body, wikipedia = wikipedia_rows(seeds, args.batch_size)
    print("\n".join(body), end="\n\n", flush=True)
    cbow, cbow_grid = cbow_rows(seeds, args.batch_size)
    print("\n".join(cbow), end="\n\n", flush=True)
    lee, lee_ranks = lee_rows(3 if args.quick else 10, args.batch_size)
    print("\n".join(lee), flush=True)
    footer = (
        f"\n# total bench time {time.perf_counter() - start:.0f} s; "
        f"load average at the end: {_load()}"
    )
    print(footer)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([*header, *body, "", *cbow, "", *lee, footer]) + "\n"
    args.output.write_text(text, encoding="utf-8")
    if not args.quick:
        results = {
            "settings": SETTINGS,
            "seeds": seeds,
            "wikipedia": wikipedia,
            "cbow_learning_rate": cbow_grid,
            "lee": lee_ranks,
        }
        save_results("word2vec", results, command=" ".join(["python", *sys.argv]))


if __name__ == "__main__":
    main()
