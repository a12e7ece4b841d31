"""Pre-train chapter 5's tiny BERT from scratch on the Wikipedia sample and ship it.

A `lessons.bert.BertForPreTraining` (4 layers of width 256, 4 heads, feed-forward 768,
128 positions) with the 8,000-entry WordPiece vocabulary of ``scripts/train_wordpiece.py``
learns masked-LM and next-sentence prediction on sentence pairs of the training
articles (`lessons.bert.nsp_pairs`, fresh pairs every epoch, batched by length; articles
of fewer than two sentences dropped), masked by `lessons.bert.pretraining_batch` and scored by
`lessons.bert.pretraining_loss`. AdamW; the learning rate warms up linearly for
``--warmup`` steps, then falls linearly to zero at the end of the ``--minutes`` budget,
on one thread.

Then it is measured on held-out text: fill-in-the-blank on a fixed sample of
validation sentences (one word hidden, among the words that are one WordPiece of the
tiny vocabulary and a word of chapter 2's biLM), against always guessing the most
frequent training word and against chapter 2's biLM (`lessons.bert.bilm_blank_scores`);
and next-sentence accuracy on pairs of the validation articles (the majority baseline is
0.5 by construction). The results go to ``bert_pretraining`` (JSON in the package) and
``bench/results/bert_pretraining.txt``.

The shipped model comes from::

    .venv/bin/python scripts/pretrain_bert.py --minutes 30 --seed 0

and is stored in float16 (``src/lessons/pretrained/bert-tiny.safetensors``);
``lessons.bert.load_pretrained("tiny")`` reads it back in float32 with its tokenizer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lessons import elmo
from lessons.bert import (
    PRETRAINED_DIR,
    BertConfig,
    BertForPreTraining,
    BertModel,
    NSPPair,
    bilm_blank_scores,
    init_bert_weights,
    mlm_blank_scores,
    nsp_pairs,
    pretraining_batch,
    pretraining_loss,
)
from lessons.core import data
from lessons.core.results import save_results
from lessons.core.train import set_seed
from lessons.wordpiece import WordPieceTokenizer

ROOT = Path(__file__).resolve().parents[1]


def documents(split: str) -> list[list[list[str]]]:
    """The articles of ``split`` with at least two sentences, each a list of sentences."""
    return [list(a.sentences) for a in data.wikipedia_articles(split) if len(a.sentences) >= 2]


def length_batches(
    pairs: list[NSPPair], lengths: dict[tuple[str, ...], int], size: int, rng: random.Random
) -> list[list[NSPPair]]:
    """``pairs`` in batches of ``size`` pairs of similar length (less padding): shuffled,
    cut into pools of 50 batches, each pool sorted by length and cut into batches, and the
    batches shuffled. ``lengths`` holds each sentence's number of WordPiece tokens."""
    pairs = list(pairs)
    rng.shuffle(pairs)
    batches = []
    pool = 50 * size
    for start in range(0, len(pairs), pool):
        chunk = sorted(
            pairs[start : start + pool],
            key=lambda pair: lengths[tuple(pair.first)] + lengths[tuple(pair.second)],
        )
        batches += [chunk[i : i + size] for i in range(0, len(chunk) - size + 1, size)]
    rng.shuffle(batches)
    return batches


def blank_items(
    tokenizer: WordPieceTokenizer, bilm_words: set[str], count: int, seed: int
) -> list[tuple[list[str], int]]:
    """``count`` (sentence, position) pairs drawn without replacement from the validation
    sentences, among the words that are one piece of ``tokenizer`` and in ``bilm_words``."""
    sentences = data.wikipedia("validation")
    single = {}
    eligible = []
    for s, sentence in enumerate(sentences):
        for p, word in enumerate(sentence):
            if word not in single:
                single[word] = tokenizer.tokenize(word) == [word] and word in bilm_words
            if single[word]:
                eligible.append((s, p))
    chosen = random.Random(seed).sample(eligible, count)
    return [(sentences[s], p) for s, p in chosen]


@torch.no_grad()
def evaluate_nsp(
    model: BertForPreTraining, tokenizer: WordPieceTokenizer, max_length: int, seed: int
) -> dict[str, float]:
    """Next-sentence accuracy, and masked-LM accuracy and losses, on validation pairs."""
    pairs = nsp_pairs(documents("validation"), seed=seed)
    generator = torch.Generator().manual_seed(seed)
    totals = Counter()
    for start in range(0, len(pairs), 64):
        chunk = pairs[start : start + 64]
        batch = pretraining_batch(chunk, tokenizer, max_length, generator=generator)
        out = pretraining_loss(model, batch)
        masked = int((batch.mlm_labels != -100).sum())
        totals["pairs"] += len(chunk)
        totals["masked"] += masked
        totals["nsp_correct"] += out.nsp_accuracy * len(chunk)
        totals["nsp_loss"] += out.nsp.item() * len(chunk)
        totals["mlm_correct"] += out.mlm_accuracy * masked
        totals["mlm_loss"] += out.mlm.item() * masked
    return {
        "pairs": totals["pairs"],
        "positives": sum(p.label == 0 for p in pairs),
        "nsp_accuracy": totals["nsp_correct"] / totals["pairs"],
        "nsp_loss": totals["nsp_loss"] / totals["pairs"],
        "masked_tokens": totals["masked"],
        "mlm_accuracy": totals["mlm_correct"] / totals["masked"],
        "mlm_loss": totals["mlm_loss"] / totals["masked"],
    }


def evaluate_blanks(
    model: BertForPreTraining, tokenizer: WordPieceTokenizer, count: int, seed: int
) -> dict[str, object]:
    """Top-1 fill-in-the-blank accuracy of the tiny BERT, the most frequent training word
    and chapter 2's biLM on the same items."""
    bilm, vocab = elmo.load_pretrained()
    bilm_words = {vocab.index_to_key[i] for i in range(1, len(vocab))}  # id 0 is <unk>
    items = blank_items(tokenizer, bilm_words, count, seed)
    answers = [sentence[p] for sentence, p in items]
    # The shared candidates: whole words of the tiny vocabulary that the biLM knows.
    shared = sorted(w for w in tokenizer.vocab if w in bilm_words)
    bert_shared = torch.tensor([tokenizer.vocab[w] for w in shared])
    bilm_shared = torch.tensor([vocab.key_to_index[w] for w in shared])
    counts = Counter(w for sentence in data.wikipedia("train") for w in sentence)
    most_frequent = counts.most_common(1)[0][0]

    correct = Counter()
    examples = []
    for start in tqdm(range(0, len(items), 50), desc="blanks", unit="batch", mininterval=5):
        chunk = items[start : start + 50]
        sentences = [s for s, _ in chunk]
        positions = [p for _, p in chunk]
        truth = answers[start : start + 50]
        bert = mlm_blank_scores(model, tokenizer, sentences, positions)
        bilm_scores = bilm_blank_scores(bilm, sentences, positions)
        bilm_scores[:, 0] = -torch.inf  # never guess <unk>
        guesses = {
            "bert": [tokenizer.ids_to_tokens[i] for i in bert.argmax(-1).tolist()],
            "bert_shared": [shared[i] for i in bert[:, bert_shared].argmax(-1).tolist()],
            "bilm": [vocab.index_to_key[i] for i in bilm_scores.argmax(-1).tolist()],
            "bilm_shared": [shared[i] for i in bilm_scores[:, bilm_shared].argmax(-1).tolist()],
            "most_frequent": [most_frequent] * len(chunk),
        }
        for name, guessed in guesses.items():
            correct[name] += sum(g == t for g, t in zip(guessed, truth, strict=True))
        if start == 0:
            for i in range(8):
                sentence, p = chunk[i]
                shown = " ".join([*sentence[:p], "___", *sentence[p + 1 :]])
                examples.append(
                    {
                        "sentence": shown,
                        "answer": truth[i],
                        "bert": guesses["bert"][i],
                        "bilm": guesses["bilm"][i],
                    }
                )
    return {
        "items": len(items),
        "seed": seed,
        "shared_candidates": len(shared),
        "most_frequent_word": most_frequent,
        "accuracy": {name: correct[name] / len(items) for name in correct},
        "examples": examples,
    }


def report(results: dict, path: Path, command: str) -> None:
    """The human-readable summary of ``results`` in ``path``."""
    blanks, nsp, model = results["blanks"], results["nsp"], results["model"]
    acc = blanks["accuracy"]
    lines = [
        "Chapter 5's tiny BERT, pre-trained from scratch on the Wikipedia sample",
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"command: {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{results['training']['threads']} thread",
        "",
        f"model: {model['parameters']:,} parameters ({model['config']}), "
        f"{model['file_mb']:.2f} MB in float16",
        f"vocabulary: {model['config']['vocab_size']} WordPiece entries learned from the "
        "training split",
        f"training: {results['training']['minutes']:.1f} min, {results['training']['steps']} "
        f"steps of {results['training']['batch_size']} pairs, "
        f"{results['training']['tokens_seen']:,} tokens seen "
        f"({results['training']['epochs']} epochs of {results['training']['pairs_per_epoch']} "
        "pairs)",
        "",
        f"fill in the blank: {blanks['items']} validation words (one WordPiece of the tiny "
        "vocabulary and a word of chapter 2's biLM), top-1 accuracy",
        f"  tiny BERT, whole vocabulary ({model['config']['vocab_size']})     {acc['bert']:.3f}",
        f"  tiny BERT, shared words ({blanks['shared_candidates']})          "
        f"{acc['bert_shared']:.3f}",
        f"  biLM (chapter 2), its vocabulary             {acc['bilm']:.3f}",
        f"  biLM (chapter 2), shared words               {acc['bilm_shared']:.3f}",
        f"  always {blanks['most_frequent_word']!r} (most frequent training word)"
        f"   {acc['most_frequent']:.3f}",
        "",
        f"next sentence: {nsp['pairs']} validation pairs ({nsp['positives']} real), "
        f"accuracy {nsp['nsp_accuracy']:.3f} (majority baseline 0.5)",
        f"masked LM on the same pairs: accuracy {nsp['mlm_accuracy']:.3f} over "
        f"{nsp['masked_tokens']} selected tokens, loss {nsp['mlm_loss']:.3f}",
        "",
        "learning curve (mean over each logging window, with dropout):",
        "   step    min    loss  mlm acc  nsp acc",
    ]
    for row in results["curve"]:
        lines.append(
            f"{row['step']:7d} {row['minutes']:6.1f} {row['loss']:7.3f} "
            f"{row['mlm_accuracy']:8.3f} {row['nsp_accuracy']:8.3f}"
        )
    lines += ["", "examples:"]
    for example in blanks["examples"]:
        lines.append(
            f"  {example['sentence']}\n    answer {example['answer']!r}, "
            f"BERT {example['bert']!r}, biLM {example['bilm']!r}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="time budget (training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=768)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=200, help="steps of linear warm-up")
    parser.add_argument("--log-every", type=int, default=100, help="steps per curve point")
    parser.add_argument("--blanks", type=int, default=2000, help="fill-in-the-blank items")
    parser.add_argument("--output", type=Path, default=PRETRAINED_DIR / "bert-tiny.safetensors")
    parser.add_argument(
        "--report", type=Path, default=ROOT / "bench" / "results" / "bert_pretraining.txt"
    )
    args = parser.parse_args(argv)
    command = "python scripts/pretrain_bert.py " + " ".join(sys.argv[1:] if argv is None else argv)

    torch.set_num_threads(1)
    set_seed(args.seed)
    tokenizer = WordPieceTokenizer.from_vocab_file(PRETRAINED_DIR / "bert-tiny.vocab.txt")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        max_position_embeddings=args.max_length,
    )
    model = init_bert_weights(BertForPreTraining(config), seed=args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {parameters:,} parameters, {config}", flush=True)
    train_documents = documents("train")
    lengths = {
        tuple(sentence): len(tokenizer.tokenize(" ".join(sentence)))
        for document in train_documents
        for sentence in document
    }

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )
    budget = args.minutes * 60
    generator = torch.Generator().manual_seed(args.seed)
    rng = random.Random(args.seed)
    start = time.perf_counter()
    step, epoch, tokens_seen = 0, 0, 0
    window: Counter = Counter()
    curve = []
    bar = tqdm(total=round(budget), desc="pre-training", unit="s", mininterval=10)
    model.train()
    while time.perf_counter() - start < budget:
        pairs = nsp_pairs(train_documents, seed=args.seed + epoch)  # new negatives each epoch
        epoch += 1
        for chunk in length_batches(pairs, lengths, args.batch_size, rng):
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                break
            step += 1
            factor = min(1.0, step / args.warmup) * max(0.0, 1.0 - elapsed / budget)
            for group in optimizer.param_groups:
                group["lr"] = args.lr * factor
            batch = pretraining_batch(
                chunk,
                tokenizer,
                args.max_length,
                generator=generator,
            )
            out = pretraining_loss(model, batch)
            optimizer.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            tokens_seen += int(batch.attention_mask.sum())
            window.update(
                steps=1,
                loss=out.loss.item(),
                mlm=out.mlm.item(),
                nsp=out.nsp.item(),
                mlm_accuracy=out.mlm_accuracy,
                nsp_accuracy=out.nsp_accuracy,
            )
            if step % args.log_every == 0:
                n = window.pop("steps")
                row = {"step": step, "minutes": round(elapsed / 60, 2)}
                row |= {key: round(value / n, 4) for key, value in window.items()}
                curve.append(row)
                window.clear()
                bar.update(round(elapsed) - bar.n)
                bar.write(
                    f"step {step} ({row['minutes']:.1f} min, epoch {epoch}): loss "
                    f"{row['loss']:.3f} (MLM {row['mlm']:.3f}, NSP {row['nsp']:.3f}), "
                    f"MLM acc {row['mlm_accuracy']:.3f}, NSP acc {row['nsp_accuracy']:.3f}"
                )
    bar.close()
    minutes = (time.perf_counter() - start) / 60
    pairs_per_epoch = len(nsp_pairs(train_documents, seed=args.seed))
    print(f"trained {step} steps ({epoch} epochs started) in {minutes:.1f} min", flush=True)

    notes = {  # read back with lessons.core.checkpoint.checkpoint_notes
        "command": command,
        "data": "Wikipedia sample, training articles with at least 2 sentences",
        "steps": step,
        "epochs_started": epoch,
        "batch_size": args.batch_size,
        "tokens_seen": tokens_seen,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "minutes": round(minutes, 1),
        "parameters": parameters,
        "stored_as": "float16",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model.half().save(args.output, notes=notes)
    file_mb = args.output.stat().st_size / 1e6
    print(f"saved {args.output} ({file_mb:.2f} MB)", flush=True)

    shipped = BertForPreTraining.load(args.output).float().eval()  # what the package ships
    nsp = evaluate_nsp(shipped, tokenizer, args.max_length, seed=args.seed)
    print(f"validation: {nsp}", flush=True)
    blanks = evaluate_blanks(shipped, tokenizer, args.blanks, seed=args.seed)
    print(f"blanks: {blanks['accuracy']}", flush=True)
    minilm_parameters = sum(p.numel() for p in BertModel.from_minilm().parameters())
    results = {
        "description": (
            f"BertForPreTraining with {args.layers} layers of width {args.hidden}, "
            f"{args.heads} heads, feed-forward {args.intermediate}, an 8,000-entry WordPiece "
            f"vocabulary; masked LM + next-sentence prediction on the Wikipedia sample's "
            f"training articles for {minutes:.0f} minutes on 1 CPU thread"
        ),
        "model": {
            "parameters": parameters,
            "file_mb": round(file_mb, 2),
            "config": {
                key: getattr(config, key)
                for key in (
                    "vocab_size",
                    "hidden_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "intermediate_size",
                    "max_position_embeddings",
                )
            },
        },
        "training": {
            "minutes": round(minutes, 2),
            "steps": step,
            "epochs": round(step * args.batch_size / pairs_per_epoch, 2),
            "pairs_per_epoch": pairs_per_epoch,
            "batch_size": args.batch_size,
            "tokens_seen": tokens_seen,
            "lr": args.lr,
            "warmup": args.warmup,
            "threads": torch.get_num_threads(),
            "seed": args.seed,
            "final": curve[-1] if curve else None,
        },
        "curve": curve,
        "nsp": nsp,
        "blanks": blanks,
        "minilm_parameters": minilm_parameters,
    }
    save_results("bert_pretraining", results, command=command.strip())
    report(results, args.report, command.strip())
    print(args.report.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
