"""Our small biLM against a Kneser-Ney trigram: held-out perplexity, each direction.

Run from the repository root, after ``scripts/train_elmo.py`` has written the model::

    .venv/bin/python bench/elmo.py
    .venv/bin/python bench/elmo.py --check-tokens 0    # skip the check against nltk (faster)

It prints one table and writes it to ``bench/results/elmo.txt`` (``--output``); the
numbers also go to ``src/lessons/results/elmo.json`` (`lessons.core.results.save_results`),
which chapter 2 reads with ``load_results("elmo")``.

What is measured, the same way for every model:

* Data: trained on ``data.wikipedia("train")``, measured on all of
  ``data.wikipedia("validation")`` (2,244 sentences, 34,324 words).
* Vocabulary: ``src/lessons/pretrained/elmo-small.vocab.txt`` (the 10,000 most frequent
  training words and ``<unk>``). Every word outside it counts as ``<unk>``, in the
  training data of the trigram and in every target. ``<unk>`` is predicted like any word
  (this flatters both models the same way; 15% of the validation words are ``<unk>``).
* Predicted tokens: forward, every word of a sentence and then the end of the sentence
  (``</S>`` for the biLM, ``</s>`` for the trigram), each from the words before it in the
  same sentence (the trigram sees the last two, padded with ``<s> <s>``); backward, every
  word from last to first and then the start of the sentence (``<S>``), each from the
  words after it. That is ``words + 1`` tokens per sentence in each direction: 36,568.
  The backward trigram is trained and measured on reversed sentences.
* Perplexity: ``exp`` of the mean negative log-likelihood over those tokens.
* The biLM is also scored on the whole training split, measured the same way, so that its
  training and validation perplexities can be compared (a model that underfits scores
  about the same on both).

The one difference in what the models see: the biLM reads its *inputs* as characters, so
it sees the spelling of a word that is outside the vocabulary (it is its target that
becomes ``<unk>``), while the trigram's contexts hold ``<unk>``. That is how ELMo works;
it is an advantage of the model, not of the measurement.

The trigram is nltk's ``KneserNeyInterpolated(3)`` fitted with
``padded_everygram_pipeline``. nltk scores a token by scanning every trigram context
(``KneserNey._continuation_counts``): about 0.1 s per token, an hour per direction
here. So the scores are computed by `FastKneserNey`, which reads the same counts from
the fitted nltk model and precomputes the continuation counts; it implements nltk's
formulas line by line and is checked against ``lm.logscore`` on the first
``--check-tokens`` validation tokens of each direction (the largest difference is
printed). nltk's default discount is 0.1; the table also shows 0.75, the usual choice,
which gives the trigram a lower perplexity. No score is infinite: every vocabulary word
occurs in the training data, so its unigram continuation count is at least one, and
contexts never seen back off to the lower order as in nltk.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import nltk
import torch
from nltk.lm import KneserNeyInterpolated
from nltk.lm.preprocessing import padded_everygram_pipeline

from lessons.core import data
from lessons.core.results import save_results
from lessons.core.vocab import UNK, Vocabulary
from lessons.elmo import PRETRAINED_DIR, BiLM, perplexities

ROOT = Path(__file__).resolve().parent.parent
MODEL = PRETRAINED_DIR / "elmo-small.safetensors"
VOCAB = PRETRAINED_DIR / "elmo-small.vocab.txt"


# --------------------------------------------------------------------------------------
# The Kneser-Ney trigram
# --------------------------------------------------------------------------------------


def fit_trigram(sentences: Sequence[Sequence[str]]) -> KneserNeyInterpolated:
    """nltk's interpolated Kneser-Ney trigram (default discount) on ``sentences``."""
    grams, words = padded_everygram_pipeline(3, sentences)
    lm = KneserNeyInterpolated(3)
    lm.fit(grams, words)
    return lm


class FastKneserNey:
    """nltk's ``KneserNeyInterpolated`` scores for a trigram, with precomputed tables.

    Same formulas as nltk 3.10 (``nltk.lm.models.InterpolatedLanguageModel`` and
    ``nltk.lm.smoothing.KneserNey``), with ``d`` the discount and ``N1+`` a number of
    distinct types:

    * trigram ``(a, b) -> w``: ``max(c(a b w) - d, 0) / c(a b) + d N1+(a b .) / c(a b)``
      times the bigram score; a context ``(a, b)`` never seen gives the bigram score;
    * bigram ``b -> w``: ``max(N1+(. b w) - d, 0) / N1+(. b .) + d N1+(b .) / N1+(. b .)``
      times the unigram score; a ``b`` never seen gives the unigram score;
    * unigram: ``N1+(. w) / N1+(. .)``.
    """

    def __init__(self, lm: KneserNeyInterpolated, discount: float | None = None):
        self.discount = lm.estimator.discount if discount is None else discount
        self.bigrams = lm.counts[2]  # (a,) -> FreqDist of w
        self.trigrams = lm.counts[3]  # (a, b) -> FreqDist of w
        self.unigram_continuations: Counter[str] = Counter()
        for (_,), followers in self.bigrams.items():
            self.unigram_continuations.update(followers.keys())
        self.unigram_total = sum(self.unigram_continuations.values())
        self.bigram_continuations: dict[str, Counter[str]] = defaultdict(Counter)
        self.bigram_totals: Counter[str] = Counter()
        for (_, b), followers in self.trigrams.items():
            self.bigram_continuations[b].update(followers.keys())
            self.bigram_totals[b] += len(followers)
        self.vocab = lm.vocab

    def score(self, word: str, context: Sequence[str]) -> float:
        """P(word | the last two words of context), as nltk's ``lm.score``."""
        word = self.vocab.lookup(word)
        a, b = self.vocab.lookup(tuple(context[-2:]))
        d = self.discount
        p = self.unigram_continuations[word] / self.unigram_total
        followers = self.bigrams[(b,)]
        if followers:
            total = self.bigram_totals[b]
            alpha = max(self.bigram_continuations[b][word] - d, 0.0) / total
            p = alpha + d * len(followers) / total * p
        followers = self.trigrams[(a, b)]
        if followers:
            total = followers.N()
            p = max(followers[word] - d, 0.0) / total + d * len(followers) / total * p
        return p


def trigram_events(sentences: Sequence[Sequence[str]]):
    """``(word, context)`` for every predicted token: the words, then ``</s>``."""
    for sentence in sentences:
        padded = ["<s>", "<s>", *sentence, "</s>"]
        for i in range(2, len(padded)):
            yield padded[i], padded[i - 2 : i]


def trigram_perplexity(model: FastKneserNey, sentences) -> tuple[float, int]:
    nll, count = 0.0, 0
    for word, context in trigram_events(sentences):
        p = model.score(word, context)
        nll -= math.log(p) if p > 0 else -math.inf
        count += 1
    return math.exp(nll / count), count


def check_against_nltk(lm, fast: FastKneserNey, sentences, tokens: int) -> float:
    """The largest |log2 difference| between nltk's ``logscore`` and ours."""
    worst = 0.0
    for i, (word, context) in enumerate(trigram_events(sentences)):
        if i >= tokens:
            break
        worst = max(worst, abs(lm.logscore(word, context) - math.log2(fast.score(word, context))))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--vocab", type=Path, default=VOCAB)
    parser.add_argument("--check-tokens", type=int, default=100, help="checked against nltk")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "elmo.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    vocab = Vocabulary.load(args.vocab)
    model = BiLM.load(args.model)
    train = data.wikipedia("train")
    validation = data.wikipedia("validation")

    def mapped(sentences, reverse=False):
        out = [[word if word in vocab else UNK for word in s] for s in sentences]
        return [s[::-1] for s in out] if reverse else out

    start = time.perf_counter()
    forward, backward = perplexities(model, vocab, validation)
    predicted = sum(len(s) + 1 for s in validation)
    bilm_seconds = time.perf_counter() - start
    oov = sum(w not in vocab for s in validation for w in s) / sum(len(s) for s in validation)
    train_forward, train_backward = perplexities(model, vocab, train)

    rows = {}
    checks = []
    worst_differences = {}
    for name, reverse in (("forward", False), ("backward", True)):
        start = time.perf_counter()
        lm = fit_trigram(mapped(train, reverse))
        held_out = mapped(validation, reverse)
        for discount in (lm.estimator.discount, 0.75):
            fast = FastKneserNey(lm, discount)
            ppl, count = trigram_perplexity(fast, held_out)
            assert count == predicted, (count, predicted)
            rows.setdefault(discount, {})[name] = ppl
        if args.check_tokens:
            worst = check_against_nltk(lm, FastKneserNey(lm), held_out, args.check_tokens)
            checks.append(f"{name}: largest |log2 p| difference {worst:.1e}")
            worst_differences[name] = worst
        print(f"trigram {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)

    params = sum(p.numel() for p in model.parameters())
    size = args.model.stat().st_size / 1e6
    lines = [
        "Held-out perplexity, Wikipedia sample: forward and backward language models",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python bench/elmo.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        f"python {platform.python_version()}, torch {torch.__version__}, nltk {nltk.__version__}",
        f"train: {len(train)} sentences; validation: {len(validation)} sentences, "
        f"{predicted} predicted tokens per direction (words + 1 per sentence)",
        f"vocabulary: {len(vocab)} words with <unk>; validation words outside it: {oov:.1%}",
        f"biLM: {args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model}"
        f" ({params:,} parameters, {size:.1f} MB), config {model.config}; "
        f"scored in {bilm_seconds:.0f} s",
        "",
        f"{'model':<52}{'forward':>10}{'backward':>10}",
        f"{'biLM (ours, scripts/train_elmo.py)':<52}{forward:>10.1f}{backward:>10.1f}",
    ]
    for discount, row in rows.items():
        note = " (nltk's default)" if discount == next(iter(rows)) else ""
        label = f"Kneser-Ney trigram, discount {discount}{note}"
        lines.append(f"{label:<52}{row['forward']:>10.1f}{row['backward']:>10.1f}")
    lines += [
        "",
        f"biLM on the training split ({len(train)} sentences, the same measurement): "
        f"forward {train_forward:.1f}, backward {train_backward:.1f}",
        "",
        "trigram scores checked against nltk's lm.logscore on the first "
        f"{args.check_tokens} validation tokens of each direction:",
        *checks,
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    if (args.model.resolve(), args.vocab.resolve()) != (MODEL, VOCAB):
        print("not the shipped biLM: src/lessons/results/elmo.json is left as it is")
        return
    command = f"bench/elmo.py {' '.join(argv or sys.argv[1:])}".rstrip()
    save_results(
        "elmo",
        {
            "train_sentences": len(train),
            "train_words": sum(len(s) for s in train),
            "validation_sentences": len(validation),
            "validation_words": sum(len(s) for s in validation),
            "predicted_tokens_per_direction": predicted,
            "vocabulary_size": len(vocab),
            "validation_oov_share": round(oov, 4),
            "bilm_parameters": params,
            "bilm_megabytes": round(size, 2),
            "bilm_validation_perplexity": {
                "forward": round(forward, 4),
                "backward": round(backward, 4),
            },
            "bilm_train_perplexity": {
                "forward": round(train_forward, 4),
                "backward": round(train_backward, 4),
            },
            "trigram_validation_perplexity": {
                str(discount): {name: round(value, 4) for name, value in row.items()}
                for discount, row in rows.items()
            },
            "trigram_default_discount": next(iter(rows)),  # nltk's: the first fitted
            "trigram_check_tokens": args.check_tokens,
            "trigram_check_largest_log2_difference": worst_differences,
        },
        command=command,
    )


if __name__ == "__main__":
    main()
