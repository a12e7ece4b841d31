"""Our word2vec against gensim's: speed, quality and gensim's own sanity check, side by side.

Run from the repository root::

    .venv/bin/python bench/word2vec.py            # the full run (a few minutes on 2 cores)
    .venv/bin/python bench/word2vec.py --quick    # fewer seeds: 1 Wikipedia, 3 Lee

It prints one report and writes it to ``bench/results/word2vec.txt`` (``--output``).

1. Wikipedia sample (``data.wikipedia("train")``), gensim's default settings for both
   (vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, alpha=0.025, epochs=5,
   seeds 1..3; gensim with workers=2), skip-gram and CBOW: training time, words per second,
   WordSim-353 and SimLex-999 Spearman (with the share of pairs out of vocabulary) and
   analogy accuracy (with how many of the 19,544 questions were covered). Every score is
   computed by gensim's own ``evaluate_*`` on both models' vectors.
   Words per second = raw corpus tokens (out-of-vocabulary ones included) x epochs / the
   wall time of the whole constructor call (vocabulary + training), the same for both.
2. gensim's calibrated sanity check (``test_sg_neg`` in gensim/test/test_word2vec.py): the
   Lee corpus as gensim's test builds it (``lee_background.cor``, one document per line,
   ``gensim.utils.simple_preprocess``), sg=1, window=4, negative=15, min_count=5, epochs=10;
   it passes when "bombings" ranks in the top 50 of ``most_similar("attacks")``. We count
   the seeds (1..10) that pass, for ours and for gensim.
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
from lessons.word2vec import Word2Vec

SETTINGS = dict(vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, epochs=5)
LEE_SETTINGS = dict(sg=1, window=4, negative=15, min_count=5, epochs=10)


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
        "wordsim": ws_spearman[0],
        "wordsim_oov": ws_oov,
        "simlex": sl_spearman[0],
        "simlex_oov": sl_oov,
        "analogy": accuracy,
        "covered": covered,
    }


def timed(build) -> tuple[object, float]:
    start = time.perf_counter()
    model = build()
    return model, time.perf_counter() - start


def wikipedia_rows(seeds: int, batch_size: int | None) -> list[str]:
    """Train both implementations with seeds 1..``seeds``; report means over the seeds."""
    sentences = data.wikipedia("train")
    words = sum(len(s) for s in sentences)
    epochs = SETTINGS["epochs"]
    lines = [
        f"Wikipedia sample (train): {len(sentences):,} sentences, {words:,} tokens; "
        f"settings {SETTINGS}; gensim workers=2; ours batch_size={batch_size or 'default'}; "
        f"means over seeds 1..{seeds}",
        "words/s = raw corpus tokens x epochs / wall time of the constructor (vocab + training)",
        "",
        f"{'':<10}{'impl':<8}{'time s':>8}{'words/s':>11}{'ours/gensim':>12}"
        f"{'WS353 rho':>11}{'SL999 rho':>11}{'analogy':>9}{'covered':>9}",
    ]
    per_seed = []
    for sg, name in ((1, "skip-gram"), (0, "CBOW")):
        runs = {"gensim": [], "ours": []}
        for seed in range(1, seeds + 1):
            theirs, their_seconds = timed(
                lambda sg=sg, seed=seed: gensim.models.Word2Vec(
                    sentences, sg=sg, workers=2, seed=seed, **SETTINGS
                )
            )
            ours, our_seconds = timed(
                lambda sg=sg, seed=seed: Word2Vec(
                    sentences, sg=sg, seed=seed, batch_size=batch_size, progress=False, **SETTINGS
                )
            )
            runs["gensim"].append((their_seconds, scores(theirs.wv)))
            runs["ours"].append((our_seconds, scores(gensim_vectors(ours))))
        rates = {impl: words * epochs / np.mean([t for t, _ in r]) for impl, r in runs.items()}
        for impl, results in runs.items():
            mean = {k: np.mean([s[k] for _, s in results]) for k in results[0][1]}
            ratio = f"{rates['ours'] / rates['gensim']:.2f}x" if impl == "ours" else ""
            lines.append(
                f"{name:<10}{impl:<8}{np.mean([t for t, _ in results]):>8.1f}{rates[impl]:>11,.0f}"
                f"{ratio:>12}{mean['wordsim']:>11.3f}{mean['simlex']:>11.3f}"
                f"{mean['analogy']:>9.3f}{mean['covered']:>9,.0f}"
            )
            per_seed.append(
                f"  {name:<10}{impl:<8}WS353 "
                + " ".join(f"{s['wordsim']:6.3f}" for _, s in results)
                + "   SL999 "
                + " ".join(f"{s['simlex']:6.3f}" for _, s in results)
            )
    oov = results[0][1]
    lines.append(
        f"OOV share (same vocabulary for both, min_count=5): WordSim-353 "
        f"{oov['wordsim_oov']:.1f}% of pairs, SimLex-999 {oov['simlex_oov']:.1f}%; analogy "
        "covered = questions with all four words in the vocabulary, of 19,544"
    )
    lines.append("Spearman per seed:")
    lines.extend(per_seed)
    return lines


def lee_corpus() -> list[list[str]]:
    """The Lee corpus exactly as gensim's tests build it (``gensim.test.utils.LeeCorpus``)."""
    lines = data.bundled_files()["lee"].read_text(encoding="utf-8").splitlines()
    return [simple_preprocess(line) for line in lines]


def rank_of_bombings(keyed) -> int:
    neighbours = keyed.most_similar("attacks", topn=len(keyed.index_to_key))
    return [word for word, _ in neighbours].index("bombings")


def lee_rows(seeds: int, batch_size: int | None) -> list[str]:
    corpus = lee_corpus()
    ours_ranks, their_ranks = [], []
    for seed in range(1, seeds + 1):
        theirs = gensim.models.Word2Vec(corpus, workers=2, seed=seed, **LEE_SETTINGS)
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
    return lines


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
    body = wikipedia_rows(1 if args.quick else 3, args.batch_size)
    print("\n".join(body), end="\n\n", flush=True)
    lee = lee_rows(3 if args.quick else 10, args.batch_size)
    print("\n".join(lee), flush=True)
    footer = (
        f"\n# total bench time {time.perf_counter() - start:.0f} s; "
        f"load average at the end: {_load()}"
    )
    print(footer)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join([*header, *body, "", *lee, footer]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
