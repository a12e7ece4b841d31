"""word2vec from scratch: skip-gram and CBOW with negative sampling, against gensim.

Used in: notebooks/01_word2vec.ipynb, sections 2 to 5.

The interface mirrors gensim's, so a reader can move between the two::

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1)
    model.wv.most_similar("king")                        # as gensim's model.wv
    model.wv.evaluate_word_pairs(data.wordsim353_path())  # same numbers as gensim's

Names follow word2vec.c and gensim: ``syn0`` (= ``wv.vectors``) holds the input vectors,
``syn1neg`` the output vectors of negative sampling, ``cum_table`` the cumulative noise
distribution (gensim's name), ``unigram_table`` the table noise words are drawn from
(word2vec.c's) and ``keep_probability`` the chance that subsampling keeps a word.

The trained vectors are a `lessons.core.keyed_vectors.KeyedVectors` (``model.wv``), the
word -> vector table every chapter that has word vectors uses.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lessons.core import checks
from lessons.core.keyed_vectors import KeyedVectors

__all__ = [
    "Word2Vec",
    "analogy",
    "cosine_neighbours",
    "keep_probability",
    "log_sigmoid",
    "negative_sampling_gradients",
    "negative_sampling_loss",
    "noise_distribution",
]


# ---------------------------------------------------------------------- the pieces


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log σ(x) = -log(1 + exp(-x)), without overflow for large ``|x|``.

    For x >= 0 it is ``-log1p(exp(-x))``; for x < 0 it is ``x - log1p(exp(x))``: both only
    ever exponentiate a non-positive number.

    Used in: notebooks/01_word2vec.ipynb, section 2 (and its exercise 1).
    """
    return torch.minimum(x, torch.zeros_like(x)) - torch.log1p(torch.exp(-x.abs()))


def negative_sampling_loss(
    inputs: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Negative-sampling loss of each pair of a batch: ``(batch,)``.

    ``inputs`` ``(batch, d)`` are input vectors v (rows of ``syn0``, or the mean of a CBOW
    context), ``positives`` ``(batch, d)`` the output vectors u_o of the true words (rows of
    ``syn1neg``) and ``negatives`` ``(batch, negative, d)`` the output vectors u_k of the
    noise words. The loss is ``-log σ(u_o·v) - Σ_k log σ(-u_k·v)``.

    Used in: notebooks/01_word2vec.ipynb, section 2.
    """
    positive_scores = (inputs * positives).sum(-1)  # (batch,)
    negative_scores = torch.einsum("bkd,bd->bk", negatives, inputs)  # (batch, negative)
    return -log_sigmoid(positive_scores) - log_sigmoid(-negative_scores).sum(-1)


def negative_sampling_gradients(
    inputs: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of `negative_sampling_loss` and its gradients, by hand.

    ``inputs`` ``(batch, d)`` are the input vectors v; ``outputs`` ``(batch, 1 + negative,
    d)`` the output vectors, the true word's u_o first, then the noise words' u_k;
    ``weights`` ``(batch, 1 + negative)`` is 1, or 0 for a noise word that happens to be
    the true word (word2vec.c skips those).

    With s = u·v the score of an output word and label 1 for the true word, 0 for noise,
    the derivative of its loss term (``-log σ(s)`` or ``-log σ(-s)``) by s is the error
    ``σ(s) - label``; the chain rule through s = u·v multiplies it by v for u and by u for v.

    Returns ``(loss (batch,), grad_inputs (batch, d), grad_outputs (batch, 1 + negative,
    d))``, the gradients multiplied by ``scale`` (SGD passes minus the learning rate: that
    gives the updates directly, without another pass over the largest tensor).

    Used in: notebooks/01_word2vec.ipynb, section 2.
    """
    scores = (outputs * inputs[:, None, :]).sum(-1)  # (batch, 1 + negative)
    signs = torch.ones_like(scores)
    signs[:, 1:] = -1  # +1 for the true word, -1 for noise words
    loss = -(torch.nn.functional.logsigmoid(signs * scores) * weights).sum(1)
    labels = (signs > 0).to(scores.dtype)
    error = (torch.sigmoid(scores) - labels) * weights * scale  # (batch, 1 + negative)
    grad_inputs = torch.bmm(error[:, None, :], outputs)[:, 0, :]  # (batch, d)
    grad_outputs = error[:, :, None] * inputs[:, None, :]  # (batch, 1 + negative, d)
    return loss, grad_inputs, grad_outputs


def noise_distribution(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    """The distribution negative samples are drawn from: ``counts ** exponent``, normalised.

    ``counts`` ``(vocab,)``; returns float64 probabilities ``(vocab,)``. Raising to 0.75
    flattens the unigram distribution: rare words are drawn more often than their share.

    Used in: notebooks/01_word2vec.ipynb, section 2.
    """
    weights = counts.to(torch.float64) ** exponent
    return weights / weights.sum()


def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """The chance that subsampling keeps each occurrence of a word: ``(vocab,)`` float64.

    With f = count / total the word's share of the corpus and s = ``sample``, word2vec.c and
    gensim keep it with probability ``(sqrt(f / s) + 1) * s / f``, at most 1. Words with
    f <= s (1 + √5)² / 4 ≈ 2.62 s are always kept; much more frequent words about
    sqrt(s / f) of the time: "the", 8.3% of the words that the Wikipedia sample keeps with
    ``min_count=5``, about one time in eight with s = 1e-3. ``sample=0`` keeps everything.

    Used in: notebooks/01_word2vec.ipynb, section 2.
    """
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts)
    share = counts / counts.sum()
    return ((torch.sqrt(share / sample) + 1) * sample / share).clamp(max=1.0)


# ---------------------------------------------------------------------- training


def _count_words(sentences: Iterable[Sequence[str]]) -> tuple[Counter[str], list[Sequence[str]]]:
    """Check the corpus (`lessons.core.checks.sentences`) and count its tokens."""
    corpus = checks.sentences(sentences)
    counts: Counter[str] = Counter()
    for sentence in corpus:
        counts.update(sentence)
    return counts, corpus


#: The default batch size: fast on a CPU, and as good as gensim on the Wikipedia sample.
MAX_BATCH_SIZE = 4096
#: With the default batch size, an epoch takes at least this many SGD steps.
MIN_STEPS_PER_EPOCH = 100
#: With the default batch size, no word's vector receives more gradient terms than this
#: in one step (see `Word2Vec._default_batch_size`).
MAX_ROW_LOAD = 1024
#: Slots of the unigram table noise words are drawn from (word2vec.c uses 1e8; a word whose
#: noise probability is p gets round(p * size) slots, so 1e6 keeps the error below 1e-6).
UNIGRAM_TABLE_SIZE = 1_000_000


def _rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table[ids]``: shape ``(*ids.shape, d)`` (``index_select``, faster than indexing)."""
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[1])


def _add_rows(table: torch.Tensor, ids: torch.Tensor, updates: torch.Tensor) -> None:
    """``table[ids] += updates`` in place, summing over repeated ids; ``updates`` has shape
    ``(*ids.shape, d)``. (``scatter_add_``: like ``index_add_``, and faster on the CPU.)"""
    d = table.shape[1]
    flat_ids = ids.reshape(-1, 1).expand(-1, d)
    table.scatter_add_(0, flat_ids, updates.reshape(-1, d))


class Word2Vec:
    """word2vec with negative sampling, trained when constructed, like gensim's ``Word2Vec``.

    ``sentences`` is a list of sentences, each a list of string tokens. ``sg=1`` trains
    skip-gram (each context word predicts the centre word), ``sg=0`` CBOW (the mean of the
    context vectors predicts the centre word). The other arguments have gensim's names and
    defaults: ``vector_size``, ``window`` (largest distance between centre and context),
    ``min_count`` (rarer words are dropped), ``negative`` (noise words per true word),
    ``ns_exponent`` (of the noise distribution), ``sample`` (subsampling threshold),
    ``alpha`` -> ``min_alpha`` (learning rate, decayed linearly), ``epochs`` and ``seed``.
    ``batch_size`` is how many (input, output) pairs one update uses (ours only: gensim
    updates after every pair). Training needs enough updates, so by default (``None``) it
    is `MAX_BATCH_SIZE` pairs, or fewer where that leaves an epoch `MIN_STEPS_PER_EPOCH`
    updates (a tiny corpus learns nothing from a handful of huge steps) or where a very
    frequent word would pile up more than `MAX_ROW_LOAD` gradient terms in one step
    (`_default_batch_size`). Training that diverges (a loss that is not finite) stops
    with a FloatingPointError.
    ``progress=False`` hides the progress bar.

    What one epoch does, as in word2vec.c: drop each occurrence of a word with probability
    ``1 - keep_probabilities[word]``; shrink the window of each centre word to a random
    ``window - b`` with b uniform in ``[0, window)``; make every (context, centre) pair in
    those windows, within a sentence; shuffle them and take SGD steps on batches, drawing
    ``negative`` noise words per pair from ``unigram_table``. In CBOW each context word gets the
    whole update of the mean, as in word2vec.c and gensim (the exact gradient would give it
    1/count of that). Unlike gensim, one step sums the updates of a whole batch.

    After training: ``wv`` (a `KeyedVectors`: the input vectors ``syn0``), ``syn1neg``
    (the output vectors), ``history`` (one dict per epoch: ``epoch``, ``loss`` (the mean
    over its examples), ``examples`` (pairs, or CBOW windows), ``batch_size``, ``seconds`` and
    ``words_per_second``), ``train_seconds`` and ``words_per_second`` (raw corpus words,
    out-of-vocabulary ones included, times epochs, divided by the training time).

    Used in: notebooks/01_word2vec.ipynb, sections 3 (training) and 5 (against gensim).
    """

    def __init__(
        self,
        sentences: Iterable[Sequence[str]],
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        sg: int = 1,
        negative: int = 5,
        ns_exponent: float = 0.75,
        sample: float = 1e-3,
        alpha: float = 0.025,
        min_alpha: float = 1e-4,
        epochs: int = 5,
        batch_size: int | None = None,
        seed: int = 1,
        progress: bool = True,
    ):
        self.vector_size = checks.positive_int("vector_size", vector_size)
        self.window = checks.positive_int("window", window)
        self.min_count = checks.positive_int("min_count", min_count)
        self.negative = checks.positive_int("negative", negative)
        self.epochs = checks.positive_int("epochs", epochs)
        self.batch_size = (
            None if batch_size is None else checks.positive_int("batch_size", batch_size)
        )
        self.seed = checks.positive_int("seed", seed, minimum=0)
        if sg not in (0, 1):
            raise ValueError(f"sg: expected 1 (skip-gram) or 0 (CBOW), got {sg!r}")
        if not 0 <= min_alpha <= alpha or alpha <= 0:
            raise ValueError(
                f"need 0 <= min_alpha <= alpha and alpha > 0, got alpha={alpha}, "
                f"min_alpha={min_alpha}"
            )
        if sample < 0:
            raise ValueError(
                f"sample: expected a number >= 0 (0 turns subsampling off), got {sample}"
            )
        self.sg, self.ns_exponent, self.sample = sg, ns_exponent, sample
        self.alpha, self.min_alpha, self.progress = alpha, min_alpha, progress

        raw_counts, corpus = _count_words(sentences)
        self.corpus_words = sum(raw_counts.values())
        kept = sorted(
            (w for w, n in raw_counts.items() if n >= min_count), key=lambda w: (-raw_counts[w], w)
        )
        if not kept:
            top, top_count = raw_counts.most_common(1)[0]
            raise ValueError(
                f"no word occurs at least min_count={min_count} times: the most frequent, "
                f"{top!r}, occurs {top_count} time{'s' * (top_count != 1)}; lower min_count "
                "or give more text"
            )
        self.counts = torch.tensor([raw_counts[w] for w in kept])  # (vocab,)
        self.keep_probabilities = keep_probability(self.counts, sample)  # (vocab,)
        self.cum_table = noise_distribution(self.counts, ns_exponent).cumsum(0)  # (vocab,)
        # word2vec.c's unigram table: word i fills a share of the slots equal to its noise
        # probability, so a uniform random slot is a draw from the noise distribution.
        slot_ends = torch.round(self.cum_table * UNIGRAM_TABLE_SIZE).long()
        slots = torch.diff(slot_ends, prepend=torch.zeros(1, dtype=torch.long))
        self.unigram_table = torch.repeat_interleave(torch.arange(len(kept)), slots)

        self._torch_rng = torch.Generator().manual_seed(seed)
        self._numpy_rng = np.random.default_rng(seed)
        syn0 = (torch.rand(len(kept), vector_size, generator=self._torch_rng) - 0.5) / vector_size
        self.wv = KeyedVectors(kept, syn0, counts=raw_counts, min_count=min_count)
        self.syn1neg = torch.zeros(len(kept), vector_size)

        # The corpus as one flat array of word ids (words below min_count left out, as gensim
        # does before it makes windows) and the sentence each token belongs to.
        index = self.wv.key_to_index
        ids = [[index.get(t, -1) for t in s] for s in corpus]
        self._ids = np.fromiter((i for s in ids for i in s), dtype=np.int64)
        self._sentence = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
        known = self._ids >= 0
        self._ids, self._sentence = self._ids[known], self._sentence[known]

        self.history: list[dict[str, float]] = []
        self._train()

    @property
    def syn0(self) -> torch.Tensor:
        """The input vectors ``(vocab, vector_size)``: the same tensor as ``wv.vectors``."""
        return self.wv.vectors

    def __repr__(self) -> str:
        kind = "skip-gram" if self.sg else "CBOW"
        return f"Word2Vec({kind}, {len(self.wv)} words, vector_size={self.vector_size})"

    # ------------------------------------------------------------------ one epoch's data

    def _subsample(self) -> tuple[np.ndarray, np.ndarray]:
        """Drop occurrences of frequent words at random: the kept ids and their sentences."""
        keep = self._numpy_rng.random(len(self._ids)) < self.keep_probabilities.numpy()[self._ids]
        return self._ids[keep], self._sentence[keep]

    def _skipgram_pairs(self, ids: np.ndarray, sentence: np.ndarray) -> np.ndarray:
        """All (input, output) = (context, centre) pairs of one epoch: ``(pairs, 2)``.

        Each centre word gets the window ``window - b``, b uniform in ``[0, window)``. One
        loop over the offsets 1..window, none over words.
        """
        reach = self.window - self._numpy_rng.integers(0, self.window, size=len(ids))
        pairs = []
        for offset in range(1, self.window + 1):
            same = sentence[offset:] == sentence[:-offset]  # positions i and i + offset
            left, right = ids[:-offset], ids[offset:]
            right_centre = same & (reach[offset:] >= offset)  # centre i + offset, context i
            left_centre = same & (reach[:-offset] >= offset)  # centre i, context i + offset
            pairs.append(np.stack([left[right_centre], right[right_centre]], 1))
            pairs.append(np.stack([right[left_centre], left[left_centre]], 1))
        return np.concatenate(pairs)

    def _cbow_windows(self, ids: np.ndarray, sentence: np.ndarray) -> np.ndarray:
        """Each centre word with its context: ``(centres, 1 + 2 * window)``, column 0 the
        centre, then the context ids, -1 where there is none (shrunk window, sentence end)."""
        reach = self.window - self._numpy_rng.integers(0, self.window, size=len(ids))
        n = len(ids)
        rows = np.full((n, 1 + 2 * self.window), -1, dtype=np.int64)
        rows[:, 0] = ids
        for offset in range(1, self.window + 1):
            same = sentence[offset:] == sentence[:-offset]
            before = same & (reach[offset:] >= offset)  # centre i + offset, context i
            after = same & (reach[:-offset] >= offset)  # centre i, context i + offset
            rows[offset:, 2 * offset - 1] = np.where(before, ids[:-offset], -1)
            rows[:-offset, 2 * offset] = np.where(after, ids[offset:], -1)
        return rows[(rows[:, 1:] >= 0).any(1)]

    # ------------------------------------------------------------------ SGD

    def _draw_negatives(self, n: int) -> torch.Tensor:
        """``(n, negative)`` noise words drawn from the noise distribution, with replacement."""
        slots = torch.randint(
            len(self.unigram_table), (n, self.negative), generator=self._torch_rng
        )
        return self.unigram_table[slots]

    def _sgd_step(self, inputs: torch.Tensor, outputs: torch.Tensor, lr: float) -> float:
        """One SGD step on a batch; returns the summed loss.

        ``inputs`` is ``(batch,)`` input word ids (skip-gram) or ``(batch, 2 * window)``
        context ids with -1 for none (CBOW); ``outputs`` ``(batch,)`` the true output words.
        """
        negatives = self._draw_negatives(len(outputs))  # (batch, negative)
        targets = torch.cat([outputs[:, None], negatives], 1)  # (batch, 1 + negative)
        weights = torch.ones(targets.shape)
        weights[:, 1:] = (negatives != outputs[:, None]).to(torch.float32)
        if self.sg:
            hidden = _rows(self.syn0, inputs)  # (batch, d)
        else:
            present = (inputs >= 0).to(torch.float32)  # (batch, 2 * window)
            count = present.sum(1, keepdim=True)
            context = inputs.clamp_min(0)
            hidden = (_rows(self.syn0, context) * present[:, :, None]).sum(1) / count  # mean
        loss, step_hidden, step_outputs = negative_sampling_gradients(
            hidden, _rows(self.syn1neg, targets), weights, scale=-lr
        )
        _add_rows(self.syn1neg, targets, step_outputs)
        if self.sg:
            _add_rows(self.syn0, inputs, step_hidden)
        else:  # like word2vec.c and gensim: each context word gets the mean's whole update
            _add_rows(self.syn0, context, step_hidden[:, None, :] * present[:, :, None])
        return float(loss.sum())

    def _row_load(self, inputs: torch.Tensor, outputs: torch.Tensor) -> float:
        """The largest expected number of gradient terms one word's vector receives per
        example of an epoch whose examples are ``inputs`` ``(examples,)`` or ``(examples,
        2 * window)`` (-1 for none) and ``outputs`` ``(examples,)``.

        A word's occurrences as an input count ``1 + negative`` terms each (the true
        word's and every noise word's), as the true output one, and its expected draws as
        a noise word one each. A batch of B examples gives the busiest word about B times
        this many terms, all computed from the same vectors and summed. 0 for no examples.
        """
        if not len(outputs):
            return 0.0
        vocab = len(self.wv)
        load = (1 + self.negative) * torch.bincount(inputs[inputs >= 0], minlength=vocab)
        load = load.double() + torch.bincount(outputs, minlength=vocab).double()
        noise = torch.diff(self.cum_table, prepend=torch.zeros(1, dtype=torch.float64))
        load += len(outputs) * self.negative * noise
        return float(load.max()) / len(outputs)

    def _default_batch_size(self, load: float, examples: int) -> int:
        """The batch size of an epoch of ``examples`` examples whose busiest word gets
        ``load`` gradient terms per example (`_row_load`).

        At most `MAX_BATCH_SIZE`, and small enough to leave `MIN_STEPS_PER_EPOCH` steps.
        And a third limit: a step sums the updates of a batch, all computed from the same
        vectors, where gensim applies them one pair at a time. For a word that fills many
        slots of one batch the sum overshoots: without subsampling and with 15 noise
        words, "the" receives about 7,100 gradient terms per step of 4,096 pairs on the
        Wikipedia sample, and skip-gram diverges to NaN in its first epoch (at 1,560 pairs,
        2,700 terms, it still does; at 512 it learns). So the batch also keeps the busiest
        word's load at most `MAX_ROW_LOAD`, which keeps every setting of the chapter and
        of ``scripts/word2vec_ablation.py`` stable; the chapter's skip-gram (855 terms at
        4,096 pairs) keeps `MAX_BATCH_SIZE`. A text where one word is a much larger share
        can still diverge; `_train` then stops with an error that says what to change.
        """
        steps_limit = -(-examples // MIN_STEPS_PER_EPOCH)
        load_limit = int(MAX_ROW_LOAD / load) if load > 0 else MAX_BATCH_SIZE
        return max(1, min(MAX_BATCH_SIZE, steps_limit, load_limit))

    def _train(self) -> None:
        bar = tqdm(total=self.epochs, unit="epoch", disable=not self.progress, desc="word2vec")
        start = time.perf_counter()
        for epoch in range(self.epochs):
            epoch_start = time.perf_counter()
            ids, sentence = self._subsample()
            if self.sg:
                examples = self._skipgram_pairs(ids, sentence)
                inputs_all, outputs_all = examples[:, 0], examples[:, 1]
            else:
                examples = self._cbow_windows(ids, sentence)
                inputs_all, outputs_all = examples[:, 1:], examples[:, 0]
            order = torch.from_numpy(self._numpy_rng.permutation(len(examples)))
            inputs_all = torch.from_numpy(inputs_all)[order]
            outputs_all = torch.from_numpy(outputs_all)[order]
            load = self._row_load(inputs_all, outputs_all)
            size = self.batch_size or self._default_batch_size(load, len(order))
            total_loss = 0.0
            for first in range(0, len(order), size):
                progress = (epoch + first / len(order)) / self.epochs
                lr = self.alpha - (self.alpha - self.min_alpha) * progress
                batch = slice(first, first + size)
                total_loss += self._sgd_step(inputs_all[batch], outputs_all[batch], lr)
            if not math.isfinite(total_loss):
                bar.close()
                raise FloatingPointError(
                    f"training diverged in epoch {epoch + 1}: the loss is {total_loss}. With "
                    f"batch_size={size}, the most frequent word received about "
                    f"{load * size:,.0f} gradient terms per step, summed; pass a smaller "
                    "batch_size, turn on subsampling (sample > 0) or lower alpha"
                )
            seconds = time.perf_counter() - epoch_start
            self.history.append(
                {
                    "epoch": epoch + 1,
                    "loss": total_loss / max(len(order), 1),
                    "examples": len(order),
                    "batch_size": size,
                    "seconds": seconds,
                    "words_per_second": self.corpus_words / seconds,
                }
            )
            bar.set_postfix(
                loss=f"{self.history[-1]['loss']:.3f}",
                words_per_s=f"{self.corpus_words / seconds:,.0f}",
            )
            bar.update()
        bar.close()
        self.train_seconds = time.perf_counter() - start
        self.words_per_second = self.corpus_words * self.epochs / self.train_seconds


# ---------------------------------------------------------------------- what the vectors know


def cosine_neighbours(vectors: torch.Tensor, query: torch.Tensor, topn: int) -> torch.Tensor:
    """Rows of ``vectors`` ``(n, d)`` with the largest cosine to ``query`` ``(d,)``:
    their indices ``(topn,)``, most similar first (a zero row has cosine 0).

    Used in: notebooks/01_word2vec.ipynb, section 4 (and its exercise 5).
    """
    norms = vectors.norm(dim=1).clamp_min(1e-12) * query.norm().clamp_min(1e-12)
    return torch.topk(vectors @ query / norms, topn).indices


def analogy(vectors: torch.Tensor, a: int, b: int, c: int) -> int:
    """3CosAdd: "a is to b as c is to ?" answered by the row, other than a, b and c, with
    the largest cosine to unit(b) - unit(a) + unit(c). ``vectors`` ``(n, d)``.

    Used in: notebooks/01_word2vec.ipynb, section 4 (and its exercise 6).
    """
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosines = unit @ (unit[b] - unit[a] + unit[c])
    cosines[[a, b, c]] = -math.inf
    return int(cosines.argmax())
