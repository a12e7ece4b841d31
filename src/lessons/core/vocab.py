"""A vocabulary: the map between words and the integer ids a model works with.

Used in: ``notebooks/00_getting_started.ipynb`` ("Training a tiny model") and later chapters.

Ids are given by frequency: the special tokens first (``<unk>`` is id 0), then words
from the most to the least frequent, ties broken alphabetically so the order never
depends on the order of the corpus. Names follow gensim: ``index_to_key`` and
``key_to_index``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from lessons.core import checks

__all__ = ["UNK", "Vocabulary"]

UNK = "<unk>"


class Vocabulary:
    """Words and their ids, built from tokenised sentences with `Vocabulary.from_sentences`."""

    def __init__(self, counts: Counter[str], max_size: int | None = None, min_count: int = 1):
        if max_size is not None:
            checks.positive_int("max_size", max_size)
        checks.positive_int("min_count", min_count)
        kept = sorted(
            (word for word, count in counts.items() if count >= min_count),
            key=lambda word: (-counts[word], word),
        )
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            raise ValueError(
                f"no word occurs at least min_count={min_count} times "
                f"(the corpus has {len(counts)} distinct words)"
            )
        self.index_to_key: list[str] = [UNK, *kept]
        self.key_to_index: dict[str, int] = {word: i for i, word in enumerate(self.index_to_key)}
        self.counts: dict[str, int] = {word: counts[word] for word in kept}
        self.counts[UNK] = sum(counts.values()) - sum(self.counts.values())

    @classmethod
    def from_sentences(
        cls, sentences: Iterable[Sequence[str]], max_size: int | None = None, min_count: int = 1
    ) -> Vocabulary:
        """Count the words of ``sentences`` (lists of tokens) and keep the frequent ones."""
        counts: Counter[str] = Counter()
        for sentence in checks.sentences(sentences):
            counts.update(sentence)
        return cls(counts, max_size=max_size, min_count=min_count)

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> int:
        """The id of ``word``; unknown words get the id of ``<unk>`` (0)."""
        return self.key_to_index.get(word, 0)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``, with ``<unk>`` for unknown words."""
        if isinstance(tokens, str):
            raise TypeError(f"tokens: expected a list of words, got the string {tokens[:40]!r}")
        return [self[token] for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids``."""
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self):
                raise IndexError(f"ids: {i} is out of range for a vocabulary of {len(self)} words")
            words.append(self.index_to_key[i])
        return words

    def save(self, path: str | Path) -> None:
        """Write the words to ``path``, one per line in id order (line 1 is ``<unk>``)."""
        Path(path).write_text("\n".join(self.index_to_key) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """The vocabulary `save` wrote to ``path``: the same words with the same ids.

        The file keeps the order, not the counts: ``counts`` of the result are made-up
        numbers that rebuild that order.
        """
        words = Path(path).read_text(encoding="utf-8").splitlines()
        if not words or words[0] != UNK:
            first = words[0] if words else "nothing"
            raise ValueError(f"{path}: expected {UNK!r} on the first line, got {first!r}")
        counts = Counter({word: len(words) - i for i, word in enumerate(words[1:])})
        vocab = cls(counts)
        if vocab.index_to_key != words:
            raise ValueError(f"{path}: not a vocabulary file (a repeated or empty word?)")
        return vocab

    def __repr__(self) -> str:
        preview = ", ".join(self.index_to_key[1:6])
        return f"Vocabulary({len(self)} words: {UNK}, {preview}, ...)"
