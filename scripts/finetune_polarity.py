"""What pre-training buys on chapter 2's 200 film-review sentences: MiniLM as frozen
features, and MiniLM fine-tuned end to end, on chapter 2's cross-validation folds.

Chapter 2 (notebooks/02_elmo.ipynb, section 5) probed word2vec and ELMo features on the
polarity sentences of ``lessons.core.data.polarity()`` with
``cross_validate(features, labels, folds=10, repeats=3)`` (seed 0). This script uses
exactly those folds (`lessons.core.probe.stratified_folds(labels, 10, 3, 0)`) for:

* **Frozen features** (a logistic-regression probe, `cross_validate`, chapter 2's
  settings): all-MiniLM-L6-v2's sentence embedding (mean pooling over the real tokens,
  then L2 normalisation, `lessons.bert.sentence_embeddings`), its last-layer ``[CLS]``
  vector, and its pooled output (tanh of a dense layer on ``[CLS]``); and, recomputed as
  chapter 2 computed them, word2vec's mean word vector and the mean over words of each
  ELMo layer and their scalar mix.
* **Fine-tuned** (per fold of every repeat, 30 runs per head): a fresh copy of MiniLM
  with a classification head, every weight trained on the 180 training sentences, then
  tested on the 20 held out. Two heads: BERT's (`lessons.bert.BertForSequenceClassification`:
  dropout and a linear layer on the pooled ``[CLS]`` vector), and the same on the mean of
  the last layer over the real tokens (the pooling MiniLM's sentence training used).

The fine-tuning hyperparameters were FIXED IN ADVANCE from the grid of the BERT paper
(Devlin et al., 2019, appendix A.3: batch 16 or 32, learning rate 5e-5, 3e-5 or 2e-5,
2 to 4 epochs) and never tuned on the held-out folds: AdamW, learning rate 3e-5, batch 16,
3 epochs, linear warm-up over the first 10% of the steps then linear decay to zero,
weight decay 0.01 on the weight matrices (not on biases and LayerNorm), dropout 0.1.
The sentences are at most 62 WordPiece tokens long, so nothing is truncated. Run ``r``,
fold ``k`` is seeded ``1000 + 10 r + k`` (the head's initialisation, dropout and the
order of the batches); one thread.

One row was added POST HOC, after these results had been seen, and is labelled so
(`LONGER`, ``"post_hoc"`` in its entry of the JSON). Both fine-tuned heads scored below
the frozen sentence embedding; but 3 epochs of batch 16 on 180 sentences are only
36 optimiser steps, so fine-tuning may simply have been too short. The row fine-tunes
the mean-pooled head for 10 epochs (120 steps), everything else unchanged (learning
rate, batch, 10% warm-up then linear decay, the per-run seeds), on the same folds, and
is compared, paired, with the frozen sentence embedding and the 3-epoch mean-pooled head.
It was run last, alone (``--post-hoc``), without re-running anything else.

Saves ``src/lessons/results/bert_polarity.json`` (`lessons.core.results.save_results`):
the labels, the folds, and for every method the 30 fold accuracies and the held-out
outcome of every example in every repeat (chapter 2's ``CrossValidation.correct``
layout, so that ``CrossValidation.from_outcomes(correct, folds).paired_difference(...)``
works on them), with the hyperparameters and the minutes each part took; and the
table ``bench/results/bert_polarity.txt``. Run::

    .venv/bin/python scripts/finetune_polarity.py

(the full run ends with the post-hoc row). ``--post-hoc`` only (re)runs the post-hoc
row and merges it, with its paired differences and minutes, into the saved results;
it saves after every repeat, so that a run stopped early keeps its complete repeats
(the row's ``"repeats"`` says how many ran; its paired differences are then on those
repeats only). ``--report`` only rewrites the table from the saved results.
``--limit K`` fine-tunes only the first K folds of each head and saves nothing: a
timing check. One fold of four epochs took 45 s on one thread, so the epochs were set to
three (in the paper's grid) before any accuracy had been measured. The minutes each
part took are in the JSON; the first fold of the post-hoc row took 81 s.
"""

from __future__ import annotations

import argparse
import copy
import math
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from lessons import elmo
from lessons.bert import (
    BertForSequenceClassification,
    BertModel,
    mean_pooling,
    sentence_embeddings,
)
from lessons.core import data
from lessons.core.probe import CrossValidation, cross_validate, stratified_folds
from lessons.core.results import load_results, save_results
from lessons.core.train import set_seed
from lessons.word2vec import Word2Vec
from lessons.wordpiece import WordPieceTokenizer

FOLDS, REPEATS, SEED = 10, 3, 0  # chapter 2's cross-validation
HYPERPARAMETERS = {
    "optimizer": "AdamW",
    "learning_rate": 3e-5,
    "batch_size": 16,
    "epochs": 3,
    "warmup_share": 0.1,
    "schedule": "linear warm-up, then linear decay to 0",
    "weight_decay": 0.01,
    "weight_decay_on": "weight matrices only (not biases, not LayerNorm)",
    "dropout": 0.1,
    "max_length": None,
    "chosen": "fixed in advance from the BERT paper's grid (Devlin et al., 2019, A.3); "
    "never tuned on the held-out folds",
}
COMMAND = "python scripts/finetune_polarity.py"
LONGER = "MiniLM fine-tuned, mean-pooled, 10 epochs (post hoc)"
LONGER_HYPERPARAMETERS = HYPERPARAMETERS | {
    "epochs": 10,
    "chosen": "post hoc, after the 3-epoch results: only the epochs changed, 3 -> 10",
}
LONGER_WHY = (
    "Added after the 3-epoch results had been seen. With 180 training sentences, 3 epochs "
    "of batch 16 are only 36 optimiser steps, so fine-tuning may simply have been too "
    "short; this row trains the mean-pooled head for 10 epochs (120 steps) with everything "
    "else unchanged (learning rate, batch, 10% warm-up then linear decay, the per-run seeds)."
)
REPORT = Path(__file__).resolve().parent.parent / "bench" / "results" / "bert_polarity.txt"


class MeanPooledClassifier(nn.Module):
    """MiniLM, then dropout and a linear layer on the mean of the last layer over the
    real tokens (`lessons.bert.mean_pooling`): ``(batch, seq)`` ids -> ``(batch, 2)`` logits.
    """

    def __init__(self, bert: BertModel, num_labels: int = 2):
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(HYPERPARAMETERS["dropout"])
        self.classifier = nn.Linear(bert.config["config"]["hidden_size"], num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.classifier(self.dropout(mean_pooling(hidden, attention_mask)))


def cls_head(minilm: BertModel) -> nn.Module:
    """BERT's recipe: `BertForSequenceClassification` holding a copy of MiniLM."""
    model = BertForSequenceClassification(minilm.config["config"], 2)
    model.bert.load_state_dict(minilm.state_dict())
    return model


def mean_head(minilm: BertModel) -> nn.Module:
    """The mean-pooled head on a copy of MiniLM."""
    return MeanPooledClassifier(copy.deepcopy(minilm))


HEADS: dict[str, Callable[[BertModel], nn.Module]] = {
    "MiniLM fine-tuned, [CLS] pooled (BERT's head)": cls_head,
    "MiniLM fine-tuned, mean-pooled": mean_head,
}


def logits_of(model: nn.Module, tokenizer: WordPieceTokenizer, texts: list[str]) -> torch.Tensor:
    """``model``'s logits ``(len(texts), 2)`` on a padded batch of ``texts``."""
    batch = tokenizer(texts)
    return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])


def fine_tune(
    make: Callable[[BertModel], nn.Module],
    minilm: BertModel,
    tokenizer: WordPieceTokenizer,
    texts: list[str],
    labels: torch.Tensor,
    train: torch.Tensor,
    seed: int,
    hyperparameters: dict[str, object] = HYPERPARAMETERS,
) -> nn.Module:
    """A fresh model from ``make(minilm)`` with every weight trained on the examples
    ``train`` (a bool mask over ``texts``) with ``hyperparameters`` (`HYPERPARAMETERS`, or
    `LONGER_HYPERPARAMETERS` for the post-hoc row); returned in eval mode."""
    set_seed(seed)
    model = make(minilm).train()
    indices = train.nonzero().flatten()
    size, epochs = hyperparameters["batch_size"], hyperparameters["epochs"]
    steps = epochs * math.ceil(len(indices) / size)
    warmup = round(hyperparameters["warmup_share"] * steps)
    decayed = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": hyperparameters["weight_decay"]},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=hyperparameters["learning_rate"],
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / warmup if step < warmup else (steps - step) / (steps - warmup),
    )
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = indices[torch.randperm(len(indices), generator=generator)]
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            logits = logits_of(model, tokenizer, [texts[i] for i in chosen])
            loss = nn.functional.cross_entropy(logits, labels[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def fine_tuned_cross_validation(
    make: Callable[[BertModel], nn.Module],
    minilm: BertModel,
    tokenizer: WordPieceTokenizer,
    texts: list[str],
    labels: torch.Tensor,
    fold_of: torch.Tensor,
    name: str,
    limit: int | None,
    hyperparameters: dict[str, object] = HYPERPARAMETERS,
    after_repeat: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Held-out correctness ``(repeats, examples)`` of a model fine-tuned per fold, on
    the repeats of ``fold_of`` ``(repeats, examples)``. ``after_repeat``, if given, is
    called with the outcomes ``(r, examples)`` of the first ``r`` repeats as each ends."""
    correct = torch.zeros(fold_of.shape, dtype=torch.bool)
    runs = [(r, k) for r in range(fold_of.shape[0]) for k in range(FOLDS)][:limit]
    for repeat, fold in tqdm(runs, desc=name, unit="fold"):
        test = fold_of[repeat] == fold
        model = fine_tune(
            make,
            minilm,
            tokenizer,
            texts,
            labels,
            ~test,
            seed=1000 + 10 * repeat + fold,
            hyperparameters=hyperparameters,
        )
        held_out = [texts[i] for i in test.nonzero().flatten()]
        with torch.no_grad():
            predicted = logits_of(model, tokenizer, held_out).argmax(dim=-1)
        correct[repeat, test] = predicted == labels[test]
        if after_repeat is not None and fold == FOLDS - 1:
            after_repeat(correct[: repeat + 1])
    return correct


def frozen_features(
    minilm: BertModel, tokenizer: WordPieceTokenizer, texts: list[str]
) -> dict[str, torch.Tensor]:
    """MiniLM's frozen sentence vectors ``(examples, 384)``, in float64 as chapter 2's."""
    batch = tokenizer(texts)
    with torch.no_grad():
        output = minilm(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return {
            "MiniLM frozen, mean-pooled (sentence embedding)": sentence_embeddings(
                minilm, **batch
            ).double(),
            "MiniLM frozen, [CLS] last layer": output.last_hidden_state[:, 0].double(),
            "MiniLM frozen, pooled output": output.pooled.double(),
        }


def chapter2_features(sentences: list[list[str]]) -> dict[str, torch.Tensor]:
    """word2vec's and ELMo's features exactly as notebooks/02_elmo.ipynb computes them."""
    train_sentences = data.wikipedia("train")
    w2v = Word2Vec(train_sentences, sg=1, vector_size=100, window=5, min_count=5, epochs=5, seed=1)
    word2vec = torch.stack(
        [
            torch.stack([w2v.wv[w] for w in s if w in w2v.wv]).mean(dim=0)
            if any(w in w2v.wv for w in s)
            else torch.zeros(w2v.wv.vector_size)
            for s in sentences
        ]
    )
    bilm, _ = elmo.load_pretrained()
    layers = torch.stack([x.mean(dim=1) for x in elmo.embed_sentences(bilm, sentences)])
    return {
        "word2vec (mean)": word2vec.double(),
        "ELMo layer 0": layers[:, 0].double(),
        "ELMo layer 1": layers[:, 1].double(),
        "ELMo layer 2": layers[:, 2].double(),
        "ELMo scalar mix": layers.double(),
    }


def summary(result: CrossValidation, kind: str) -> dict[str, object]:
    return {
        "kind": kind,
        "mean": result.mean,
        "standard_error": result.standard_error,
        "repeat_spread": result.std,
        "repeat_means": result.repeat_means,
        "accuracies": result.accuracies,
        "correct": result.correct,
    }


def with_longer_row(
    results: dict[str, object], correct: torch.Tensor, minutes: float
) -> dict[str, object]:
    """``results`` (as saved, without ``_about``) with the post-hoc row `LONGER` from its
    outcomes ``correct`` ``(r, examples)`` on the first ``r`` repeats, its paired
    differences against the frozen sentence embedding and the 3-epoch mean-pooled head (on
    those ``r`` repeats), and its ``minutes``."""
    repeats = correct.shape[0]
    fold_of = torch.tensor(results["fold_of"])[:repeats]

    def outcome(name: str) -> CrossValidation:
        return CrossValidation.from_outcomes(results["methods"][name]["correct"][:repeats], fold_of)

    longer = CrossValidation.from_outcomes(correct, fold_of)
    row = summary(longer, "fine-tuned") | {
        "repeats": repeats,
        "hyperparameters": LONGER_HYPERPARAMETERS,
        "post_hoc": LONGER_WHY,
    }
    paired = dict(results["paired_differences"])
    for other in ("MiniLM frozen, mean-pooled (sentence embedding)", list(HEADS)[1]):
        difference, error = longer.paired_difference(outcome(other))
        paired[f"{LONGER} - {other}"] = {"difference": difference, "standard_error": error}
    return results | {
        "methods": results["methods"] | {LONGER: row},
        "paired_differences": paired,
        "minutes": results["minutes"] | {LONGER: minutes},
    }


def report(results: dict[str, object]) -> str:
    """The human-readable table of ``results`` (as saved, without ``_about``)."""
    width = max(50, *(len(name) + 2 for name in results["methods"]))
    lines = [
        "Sentence polarity, chapter 2's 200 film-review sentences (100 positive, 100 negative),",
        f"the same {REPEATS} x {FOLDS}-fold stratified cross-validation (seed {SEED}) for every "
        "row.",
        "Frozen rows: a logistic-regression probe on the features (cross_validate). Fine-tuned",
        "rows: a fresh MiniLM and head trained end to end per fold on 180 sentences, tested on 20.",
    ]
    lines += [
        f"The row {name!r} ran on the first {row['repeats']} repeat(s) only."
        for name, row in results["methods"].items()
        if row.get("repeats", results["repeats"]) < results["repeats"]
    ]
    lines += ["", f"{'method':<{width}}{'accuracy':>9}{'binom. s.e.':>13}{'repeat spread':>15}"]
    for name, row in results["methods"].items():
        lines.append(
            f"{name:<{width}}{row['mean']:>9.3f}{row['standard_error']:>13.3f}"
            f"{row['repeat_spread']:>15.3f}"
        )
    lines += ["", "Paired differences on the same examples (first minus second, mean ± s.e.):"]
    for name, row in results["paired_differences"].items():
        first, second = name.split(" - ")
        lines.append(f"  {row['difference']:+.3f} ± {row['standard_error']:.3f}  {first}")
        lines.append(f"  {'':14}  minus {second}")
    lines += ["", "Fine-tuning hyperparameters:"]
    lines += [f"  {key}: {value}" for key, value in results["hyperparameters"].items()]
    for name, row in results["methods"].items():
        if "post_hoc" not in row:
            continue
        changed = {
            key: value
            for key, value in row["hyperparameters"].items()
            if value != results["hyperparameters"][key]
        }
        lines += ["", f"{name}:"]
        lines += textwrap.wrap(row["post_hoc"], 86, initial_indent="  ", subsequent_indent="  ")
        lines += [f"  {key}: {value}" for key, value in changed.items()]
        lines.append(f"  repeats: {row['repeats']} of {results['repeats']}")
    lines += ["", f"Minutes on {results['threads']} thread(s):"]
    lines += [f"  {value:5.1f}  {key}" for key, value in results["minutes"].items()]
    return "\n".join(lines) + "\n"


def save(results: dict[str, object]) -> None:
    """Save ``results`` and rewrite the report from them."""
    path = save_results("bert_polarity", results, command=COMMAND)
    REPORT.write_text(report(results), encoding="utf-8")
    print(f"saved {path} and {REPORT}")
    print(REPORT.read_text(encoding="utf-8"))


def run_longer(
    results: dict[str, object],
    minilm: BertModel,
    tokenizer: WordPieceTokenizer,
    texts: list[str],
    labels: torch.Tensor,
    fold_of: torch.Tensor,
    limit: int | None,
) -> None:
    """Fine-tune the post-hoc row `LONGER` and merge it into ``results``, saved after every
    repeat (so that a run stopped early keeps its complete repeats); with ``limit``, only
    time the first ``limit`` folds and save nothing."""
    start = time.perf_counter()

    def merge(correct: torch.Tensor) -> None:
        save(with_longer_row(results, correct, round((time.perf_counter() - start) / 60, 1)))

    fine_tuned_cross_validation(
        HEADS["MiniLM fine-tuned, mean-pooled"],
        minilm,
        tokenizer,
        texts,
        labels,
        fold_of,
        LONGER,
        limit,
        LONGER_HYPERPARAMETERS,
        merge if limit is None else None,
    )
    if limit is not None:
        print(f"{LONGER}: {limit} fold(s) in {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="fine-tune only K folds per head")
    parser.add_argument(
        "--report", action="store_true", help="only rewrite the report from the saved results"
    )
    parser.add_argument(
        "--post-hoc",
        action="store_true",
        help=f"only (re)run the row {LONGER!r} and merge it into the saved results",
    )
    args = parser.parse_args()
    if args.report:
        saved = {k: v for k, v in load_results("bert_polarity").items() if k != "_about"}
        REPORT.write_text(report(saved), encoding="utf-8")
        print(REPORT.read_text(encoding="utf-8"))
        return
    torch.set_num_threads(1)

    polarity = data.polarity()
    sentences = [tokens for tokens, _ in polarity]
    texts = [" ".join(tokens) for tokens in sentences]
    labels = torch.tensor([label for _, label in polarity])
    fold_of = stratified_folds(labels, FOLDS, REPEATS, SEED)
    tokenizer = WordPieceTokenizer.from_minilm()
    minilm = BertModel.from_minilm()
    if args.post_hoc:
        saved = {k: v for k, v in load_results("bert_polarity").items() if k != "_about"}
        run_longer(saved, minilm, tokenizer, texts, labels, fold_of, args.limit)
        return
    minutes: dict[str, float] = {}

    methods: dict[str, dict[str, object]] = {}
    outcomes: dict[str, CrossValidation] = {}
    start = time.perf_counter()
    features = frozen_features(minilm, tokenizer, texts)
    features |= chapter2_features(sentences)
    for name, f in features.items():
        set_seed(SEED)  # the probes' initial weights come from the global generator
        outcomes[name] = cross_validate(
            f, labels, folds=FOLDS, repeats=REPEATS, seed=SEED, make_mix=elmo.ScalarMix
        )
        methods[name] = summary(outcomes[name], "frozen")
        print(f"{name}: {outcomes[name]}")
    minutes["frozen features and probes"] = round((time.perf_counter() - start) / 60, 1)

    for name, make in HEADS.items():
        start = time.perf_counter()
        correct = fine_tuned_cross_validation(
            make, minilm, tokenizer, texts, labels, fold_of, name, args.limit
        )
        minutes[name] = round((time.perf_counter() - start) / 60, 1)
        if args.limit is not None:
            print(f"{name}: {args.limit} fold(s) in {minutes[name] * 60:.0f} s")
            continue
        outcomes[name] = CrossValidation.from_outcomes(correct, fold_of)
        methods[name] = summary(outcomes[name], "fine-tuned")
        print(f"{name}: {outcomes[name]}")
    if args.limit is not None:
        run_longer({}, minilm, tokenizer, texts, labels, fold_of, args.limit)
        return

    frozen = "MiniLM frozen, mean-pooled (sentence embedding)"
    pairs = [(tuned, frozen) for tuned in HEADS] + [
        (list(HEADS)[0], list(HEADS)[1]),
        (frozen, "word2vec (mean)"),
    ]
    paired = {}
    for a, b in pairs:
        difference, error = outcomes[a].paired_difference(outcomes[b])
        paired[f"{a} - {b}"] = {"difference": difference, "standard_error": error}
    ordered = dict(sorted(methods.items(), key=lambda item: item[1]["kind"] == "fine-tuned"))
    results = {
        "labels": labels.tolist(),
        "folds": FOLDS,
        "repeats": REPEATS,
        "seed": SEED,
        "fold_of": fold_of.tolist(),
        "methods": ordered,
        "paired_differences": paired,
        "hyperparameters": HYPERPARAMETERS,
        "run_seeds": "1000 + 10 * repeat + fold",
        "max_tokens": max(len(tokenizer.encode(t)[0]) for t in texts),
        "threads": torch.get_num_threads(),
        "minutes": minutes,
    }
    save(results)
    run_longer(results, minilm, tokenizer, texts, labels, fold_of, None)


if __name__ == "__main__":
    main()
