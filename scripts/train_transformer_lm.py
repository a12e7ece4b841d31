"""Train chapter 4's word-level Transformer language model and ship it in the package.

A decoder-only `lessons.transformer.TransformerLM` learns to predict the next word of the
sentences of chapter 2's Wikipedia training split, with chapter 2's vocabulary (the
10,000 most frequent training words and ``<unk>``). Its validation perplexity counts the
same tokens as chapter 2's forward LM (every word and ``</S>`` of every validation
sentence), so the numbers compare directly with the biLM's forward direction and the
Kneser-Ney trigram.

The time budget is the biLM's: ``--minutes 31`` on two threads (the biLM's notes say
how long it trained). The learning rate warms up linearly for ``--warmup`` steps and then
falls linearly to zero at the end of the budget, so a slower machine sees fewer steps;
``--epochs`` runs a fixed number of passes instead, the same steps everywhere.

The shipped weights come from::

    .venv/bin/python scripts/train_transformer_lm.py --minutes 31 --seed 0

and are stored in float16 (``src/lessons/pretrained/transformer-lm.safetensors``, with
``transformer-lm.vocab.txt`` beside it); ``lessons.transformer.load_pretrained("lm")``
reads them back in float32. The checkpoint's notes record the command, the steps, the
minutes and the training and validation perplexity after every epoch; chapter 4 prints
them.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from lessons.core import data
from lessons.core.train import set_seed
from lessons.core.vocab import Vocabulary
from lessons.transformer import PRETRAINED_DIR, TransformerLM, lm_batch, perplexity


def batches(
    sentences: list[list[str]], vocab: Vocabulary, batch_tokens: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`lm_batch` es of sentences of similar length, each about ``batch_tokens`` words."""
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i]), i))
    groups: list[list[list[str]]] = [[]]
    for i in order:
        if groups[-1] and (len(groups[-1]) + 1) * (len(sentences[i]) + 1) > batch_tokens:
            groups.append([])
        groups[-1].append(sentences[i])
    return [lm_batch(group, vocab) for group in groups]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=31.0, help="time budget (training)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (no time budget)")
    parser.add_argument("--vocab-size", type=int, default=10_000, help="words besides <unk>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--ff-dim", type=int, default=1024)
    parser.add_argument("--max-len", type=int, default=160, help="longest sentence + 1")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batch-tokens", type=int, default=1_000, help="words per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=300, help="steps of linear warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--output", type=Path, default=PRETRAINED_DIR / "transformer-lm.safetensors"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    train_sentences = data.wikipedia("train")
    val_sentences = data.wikipedia("validation")
    vocab = Vocabulary.from_sentences(train_sentences, max_size=args.vocab_size)
    model = TransformerLM(
        len(vocab) + 3,  # the words, <S>, </S> and <pad>: lm_specials
        d_model=args.d_model,
        num_heads=args.heads,
        num_layers=args.layers,
        ff_dim=args.ff_dim,
        max_len=args.max_len,
        dropout=args.dropout,
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(f"vocabulary: {len(vocab)} words (with <unk>); model: {parameters:,} parameters")
    print(f"config: {model.config}")

    train_batches = batches(train_sentences, vocab, args.batch_tokens)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    rng = random.Random(args.seed)
    budget = math.inf if args.epochs else args.minutes * 60
    epochs = args.epochs or 10_000
    total_steps = epochs * len(train_batches)

    def lr_factor(step: int) -> float:
        """Linear warm-up, then linear decay to 0 at the end of the steps or the budget."""
        done = max(step / total_steps, (time.perf_counter() - start) / budget)
        return min(1.0, step / args.warmup) * max(0.0, 1.0 - done)

    start = time.perf_counter()
    step = 0
    history = []
    for epoch in range(1, epochs + 1):
        rng.shuffle(train_batches)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(train_batches, desc=f"epoch {epoch}", unit="batch", mininterval=10)
        for inputs, targets in bar:
            if time.perf_counter() - start > budget:
                break
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = args.lr * lr_factor(step)
            loss = F.cross_entropy(model(inputs).transpose(1, 2), targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            predicted = int((targets != -100).sum())
            total += loss.item() * predicted
            count += predicted
        bar.close()
        if count == 0:  # the budget ran out at the end of the previous epoch
            break
        val = perplexity(model, vocab, val_sentences)
        elapsed = time.perf_counter() - start
        history.append((epoch, math.exp(total / count), val, elapsed))
        print(
            f"epoch {epoch}: {step} steps, train ppl {math.exp(total / count):.1f} (with "
            f"dropout, during the epoch), validation ppl {val:.1f}, {elapsed / 60:.1f} min",
            flush=True,
        )
        if time.perf_counter() - start > budget:
            break

    minutes = (time.perf_counter() - start) / 60
    train_ppl = perplexity(model, vocab, train_sentences)  # eval mode, final weights
    notes = {  # read back with lessons.core.checkpoint.checkpoint_notes; chapter 4 quotes them
        "command": "scripts/train_transformer_lm.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "epochs": len(history),
        "steps": step,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "minutes": round(minutes, 1),
        "parameters": parameters,
        "train_perplexity_per_epoch": [round(p, 1) for _, p, _, _ in history],
        "validation_perplexity_per_epoch": [round(v, 1) for _, _, v, _ in history],
        "minutes_per_epoch": [round(t / 60, 1) for _, _, _, t in history],
        "validation_perplexity": round(history[-1][2], 1),
        "train_perplexity": round(train_ppl, 1),
        "stored_as": "float16",
    }
    print(f"final: train ppl {train_ppl:.1f} (eval mode), validation ppl {history[-1][2]:.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model.half().save(args.output, notes=notes)
    vocab_path = args.output.with_name(args.output.name.removesuffix(".safetensors") + ".vocab.txt")
    vocab.save(vocab_path)
    size = args.output.stat().st_size / 1e6
    print(f"saved {args.output} ({size:.1f} MB) and {vocab_path}")
    print(f"trained {step} steps in {minutes:.1f} min")


if __name__ == "__main__":
    main()
