"""Train the small biLM of Chapter 2 (ELMo) on the Wikipedia sample and save it.

Produces ``src/lessons/pretrained/elmo-small.safetensors`` (the `lessons.elmo.BiLM`,
saved with its ``save``; how it was trained goes in the checkpoint's notes) and
``elmo-small.vocab.txt`` beside it (`Vocabulary.save`: the words one per line in id
order, line 1 ``<unk>``). Load both with
``lessons.elmo.load_pretrained()``.

The shipped weights come from this command (six passes over the training split, the
learning rate falling linearly to zero)::

    .venv/bin/python scripts/train_elmo.py --epochs 6 --lr-decay linear --seed 0

The checkpoint's notes record how it was trained: the command, the number of epochs and
threads, the minutes it took and the validation perplexity of each direction after every
epoch. Chapter 2 prints them::

    from lessons.core.checkpoint import checkpoint_notes
    checkpoint_notes("src/lessons/pretrained/elmo-small.safetensors")

``--minutes`` stops a run after a time budget instead (a faster or slower machine then
sees more or fewer batches); ``--epochs`` does exactly the same steps everywhere.

Each epoch visits every training sentence once, in batches of sentences of similar
length (less padding); sentences longer than ``--max-tokens`` are cut into pieces for
training (the validation perplexity is measured on whole sentences). After each epoch it
prints each direction's validation perplexity: ``exp`` of the mean cross-entropy over
the tokens that direction predicts (forward: every word and </S>; backward: every word
and <S>), words outside the vocabulary being ``<unk>``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch

from lessons.core import data
from lessons.core.train import set_seed
from lessons.core.vocab import Vocabulary
from lessons.elmo import PRETRAINED_DIR, BiLM, make_batch, perplexities


def chunks(sentences: list[list[str]], max_tokens: int) -> list[list[str]]:
    """Every sentence, those longer than ``max_tokens`` cut into consecutive pieces."""
    out = []
    for sentence in sentences:
        for start in range(0, len(sentence), max_tokens):
            out.append(sentence[start : start + max_tokens])
    return out


def batches(sentences, vocab, max_chars, batch_tokens, shuffle_rng=None):
    """Batches of sentences of similar length, each about ``batch_tokens`` words.

    Returns a list of ``(char_ids, mask, targets, predicted)`` where ``predicted`` is the
    number of tokens each direction predicts in the batch (words plus one per sentence).
    """
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i]), i))
    groups, current = [], []
    for i in order:
        if current and (len(current) + 1) * len(sentences[i]) > batch_tokens:
            groups.append(current)
            current = []
        current.append(sentences[i])
    if current:
        groups.append(current)
    out = []
    for group in groups:
        char_ids, mask, targets = make_batch(group, vocab, max_chars)
        out.append((char_ids, mask, targets, sum(len(s) + 1 for s in group)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget (training)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (no time budget)")
    parser.add_argument("--vocab-size", type=int, default=10_000, help="words besides <unk>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-dim", type=int, default=64)
    parser.add_argument("--lstm-dim", type=int, default=256)
    parser.add_argument("--max-chars", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=50, help="longest training piece")
    parser.add_argument("--batch-tokens", type=int, default=1_000, help="words per batch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--lr-decay", choices=["none", "linear"], default="none", help="linear: to 0 at the end"
    )
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=PRETRAINED_DIR / "elmo-small.safetensors")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    train_sentences = data.wikipedia("train")
    val_sentences = data.wikipedia("validation")
    vocab = Vocabulary.from_sentences(train_sentences, max_size=args.vocab_size)
    model = BiLM(
        len(vocab),
        token_dim=args.token_dim,
        lstm_dim=args.lstm_dim,
        max_chars=args.max_chars,
        dropout=args.dropout,
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(f"vocabulary: {len(vocab)} words (with <unk>); model: {parameters:,} parameters")
    print(f"config: {model.config}")

    train_batches = batches(
        chunks(train_sentences, args.max_tokens), vocab, args.max_chars, args.batch_tokens
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = random.Random(args.seed)
    budget = math.inf if args.epochs else args.minutes * 60
    epochs = args.epochs or 10_000
    total_steps = epochs * len(train_batches)

    def progress() -> float:
        """The fraction of the run done: of the steps, or of the time budget."""
        return max(step / total_steps, (time.perf_counter() - start) / budget)

    start = time.perf_counter()
    step = 0
    history = []
    for epoch in range(1, epochs + 1):
        rng.shuffle(train_batches)
        total, count = 0.0, 0
        for char_ids, mask, targets, predicted in train_batches:
            if time.perf_counter() - start > budget:
                break
            if args.lr_decay == "linear":
                for group in optimizer.param_groups:
                    group["lr"] = args.lr * (1 - progress())
            loss = model.loss(char_ids, mask, targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            total += loss.item() * predicted
            count += predicted
        if count == 0:  # the budget ran out at the end of the previous epoch
            break
        fwd, bwd = perplexities(model, vocab, val_sentences)
        model.train()
        elapsed = time.perf_counter() - start
        history.append((epoch, math.exp(total / count), fwd, bwd, elapsed))
        print(
            f"epoch {epoch}: {step} steps, train ppl {math.exp(total / count):.1f} "
            f"(mean of both directions), validation ppl forward {fwd:.1f} backward {bwd:.1f}, "
            f"{elapsed / 60:.1f} min",
            flush=True,
        )
        if time.perf_counter() - start > budget:
            break

    args.output.parent.mkdir(parents=True, exist_ok=True)
    minutes = (time.perf_counter() - start) / 60
    notes = {  # read back with lessons.core.checkpoint.checkpoint_notes; chapter 2 quotes them
        "command": "scripts/train_elmo.py " + " ".join(sys.argv[1:]),
        "epochs": len(history),
        "lr_decay": args.lr_decay,
        "dropout": args.dropout,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "minutes": round(minutes, 1),
        "validation_perplexity_per_epoch": {
            "forward": [round(fwd, 1) for _, _, fwd, _, _ in history],
            "backward": [round(bwd, 1) for _, _, _, bwd, _ in history],
        },
        "validation_perplexity": {
            "forward": round(history[-1][2], 1),
            "backward": round(history[-1][3], 1),
        },
    }
    model.save(args.output, notes=notes)
    vocab_path = args.output.with_name(args.output.name.removesuffix(".safetensors") + ".vocab.txt")
    vocab.save(vocab_path)
    size = args.output.stat().st_size / 1e6
    print(f"saved {args.output} ({size:.1f} MB) and {vocab_path}")
    print(f"trained {step} steps in {minutes:.1f} min")
    print("reproduce: .venv/bin/python scripts/train_elmo.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
