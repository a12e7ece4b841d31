"""The smallest neural language model: guess the next word from the current one.

Used in: ``notebooks/00_getting_started.ipynb`` ("Training a tiny model").

It is tiny on purpose: an embedding table and one linear layer, trained in seconds on a
CPU. Yet it already holds the two ideas the book grows from: words become vectors
(chapter 1), and a model is judged by how well it predicts text (chapter 2).
Quality is measured by perplexity, :math:`\\exp` of the mean cross-entropy: the number of
words the model is, on average, as unsure between as if it chose uniformly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import TensorDataset

from lessons.core import checks
from lessons.core.vocab import Vocabulary

__all__ = ["BigramLanguageModel", "bigram_dataset", "unigram_perplexity"]


class BigramLanguageModel(nn.Module):
    """Scores for the next word: ``Linear(Embedding(word))``.

    Input ``(batch,)`` word ids; output ``(batch, vocab_size)`` unnormalised scores (logits).
    """

    def __init__(self, vocab_size: int, dim: int = 64):
        super().__init__()
        checks.positive_int("vocab_size", vocab_size, minimum=2)
        checks.positive_int("dim", dim)
        self.embedding = nn.Embedding(vocab_size, dim)
        self.output = nn.Linear(dim, vocab_size)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        if words.dtype != torch.long:
            raise TypeError(f"words: expected word ids of dtype torch.long, got {words.dtype}")
        return self.output(self.embedding(words))


def bigram_dataset(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> TensorDataset:
    """Every pair of neighbouring words as ids: inputs ``(pairs,)`` and targets ``(pairs,)``."""
    current, following = [], []
    for sentence in sentences:
        ids = vocab.encode(sentence)
        current.extend(ids[:-1])
        following.extend(ids[1:])
    if not current:
        raise ValueError("sentences: expected at least one sentence of two or more words")
    return TensorDataset(torch.tensor(current), torch.tensor(following))


def unigram_perplexity(train: TensorDataset, test: TensorDataset, vocab_size: int) -> float:
    """Perplexity on ``test`` of a model that ignores context: word frequencies in ``train``.

    Add-one smoothing keeps unseen words from getting probability zero. This is the
    baseline a model that reads the current word must beat.
    """
    counts = torch.bincount(train.tensors[1], minlength=vocab_size).double() + 1
    log_probs = torch.log(counts / counts.sum())
    return math.exp(-log_probs[test.tensors[1]].mean().item())
