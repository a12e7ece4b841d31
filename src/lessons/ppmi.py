"""A count-based baseline for word vectors: co-occurrence counts, PPMI, truncated SVD.

Used in: notebooks/01_word2vec.ipynb, section 1 (the baseline that word2vec must beat),
and section 5 (the comparison).

The distributional hypothesis says that words in similar contexts have similar meanings.
The most direct way to use it is to count contexts:

1. :func:`cooccurrence_matrix` counts, for every pair of vocabulary words (w, c), how
   often c occurs within ``window`` positions of w in the same sentence: a ``(V, V)``
   sparse matrix ``M``.
2. :func:`ppmi` turns counts into positive pointwise mutual information,
   ``PPMI(w, c) = max(0, log P(w, c) / (P(w) P(c)))``: how much more often w and c meet
   than they would by chance.
3. :func:`svd_vectors` compresses the ``V``-dimensional PPMI rows to ``dim`` dimensions
   with a truncated SVD, ``PPMI ≈ U Σ Vᵀ``, keeping ``U Σ^p`` as the word vectors.

:func:`ppmi_svd` does all three on tokenised sentences and returns a
:class:`lessons.core.keyed_vectors.KeyedVectors`, so the baseline is evaluated with exactly the
same code as word2vec. The choices follow Levy, Goldberg and Dagan (2015), "Improving
distributional similarity with lessons learned from word embeddings", TACL 3:

* the vocabulary and window mean what they mean in word2vec: words seen at least
  ``min_count`` times, sorted by frequency (descending) then alphabetically; rarer
  words are removed from the sentences *before* windows are taken (as word2vec does),
  and windows never cross a sentence boundary;
* every pair inside the window counts 1 by default (``dynamic=False``);
  ``dynamic=True`` weights a pair at distance d by ``(window - d + 1) / window``, the
  expected weight under word2vec's randomly shrunk ("dynamic") window;
* context distribution smoothing: ``P(c)`` is computed from counts raised to
  ``alpha = 0.75``, as word2vec's noise distribution is; ``alpha=1`` gives plain PPMI.
  Smoothing raises the probability of rare contexts and so lowers their PMI, which
  removes PMI's well-known bias towards rare words;
* the word vectors are ``U Σ^0.5`` (``power=0.5``, the "symmetric" variant): Levy et al.
  found ``p = 0.5`` or ``p = 0`` better than the textbook ``U Σ`` on similarity tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

from lessons.core import checks
from lessons.core.keyed_vectors import KeyedVectors

__all__ = ["build_vocabulary", "cooccurrence_matrix", "ppmi", "ppmi_svd", "svd_vectors"]


# --------------------------------------------------------------------------- counts


def build_vocabulary(sentences: Iterable[Sequence[str]], min_count: int = 5) -> list[str]:
    """The words seen at least ``min_count`` times, most frequent first, ties alphabetical.

    This is word2vec's (and gensim's) vocabulary rule; the list's order gives the ids.
    """
    checks.positive_int("min_count", min_count)
    sentences = checks.sentences(sentences)
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    if not kept:
        raise ValueError(
            f"min_count={min_count}: no word occurs at least {min_count} times "
            f"(the corpus has {len(counts)} distinct words, the most frequent seen "
            f"{max(counts.values())} times)"
        )
    return kept


def cooccurrence_matrix(
    sentences: Iterable[Sequence[str]],
    vocab_index: dict[str, int],
    window: int = 5,
    dynamic: bool = False,
) -> sp.csr_matrix:
    """Count word–context pairs: a sparse ``(V, V)`` float64 matrix, ``V = len(vocab_index)``.

    ``M[w, c]`` is the number of times word ``c`` occurs at most ``window`` positions
    before or after word ``w`` in the same sentence (so ``M`` is symmetric). Tokens not
    in ``vocab_index`` are removed first, as word2vec removes rare words, so the window
    reaches over them. With ``dynamic=True`` a pair at distance ``d`` adds
    ``(window - d + 1) / window`` instead of 1 (word2vec's expected dynamic-window weight).

    Vectorised: all sentences are joined into one flat array of ids with a parallel array
    of sentence numbers; for each offset ``d = 1 .. window`` the pairs
    ``(ids[i], ids[i + d])`` with equal sentence numbers are counted in both directions.
    """
    checks.positive_int("window", window)
    if not isinstance(vocab_index, dict) or not vocab_index:
        raise ValueError(f"vocab_index: expected a non-empty dict word -> id, got {vocab_index!r}")
    size = len(vocab_index)
    ids_of = [
        [vocab_index[t] for t in sentence if t in vocab_index]
        for sentence in checks.sentences(sentences)
    ]
    lengths = np.array([len(s) for s in ids_of], dtype=np.int64)
    ids = np.fromiter((i for s in ids_of for i in s), dtype=np.int64, count=int(lengths.sum()))
    sentence_of = np.repeat(np.arange(len(ids_of)), lengths)
    counts = sp.csr_matrix((size, size), dtype=np.float64)
    for d in range(1, window + 1):
        same = sentence_of[:-d] == sentence_of[d:]
        left, right = ids[:-d][same], ids[d:][same]
        weight = (window - d + 1) / window if dynamic else 1.0
        # (word, the word d places later); converting to CSR sums repeated pairs
        pairs = sp.coo_matrix(
            (np.full(len(left), weight), (left, right)), shape=(size, size), dtype=np.float64
        ).tocsr()
        counts = counts + pairs + pairs.T  # both directions: the window is symmetric
    return counts.tocsr()


# --------------------------------------------------------------------------- PPMI


def ppmi(matrix: sp.spmatrix | np.ndarray, alpha: float = 0.75) -> sp.csr_matrix:
    """Positive pointwise mutual information of a ``(V, C)`` count matrix, same shape.

    With ``N = Σ M``, ``P(w, c) = M[w, c] / N`` and ``P(w) = Σ_c M[w, c] / N``, and the
    context probability smoothed by ``alpha``:
    ``P_α(c) = (Σ_w M[w, c])^α / Σ_c' (Σ_w M[w, c'])^α``,

        PMI(w, c)  = log P(w, c) / (P(w) P_α(c))
        PPMI(w, c) = max(0, PMI(w, c)).

    Where ``M[w, c] = 0`` the PMI is log 0 = -inf, so the PPMI is 0: the result is as
    sparse as ``M``. ``alpha=1`` is plain PPMI; 0.75 is Levy et al.'s smoothing.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 1:
        raise ValueError(f"alpha: expected a number in (0, 1], got {alpha!r}")
    counts = sp.csr_matrix(matrix, dtype=np.float64, copy=True)  # never change the caller's
    counts.eliminate_zeros()
    if counts.nnz == 0:
        raise ValueError(f"matrix: expected some positive counts, got all zeros {counts.shape}")
    if counts.data.min() < 0:
        raise ValueError(f"matrix: expected counts >= 0, got {counts.data.min()}")
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context_totals = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    # log P(w,c) - log P(w) - log P_α(c), written with counts so that N cancels.
    pmi = (
        np.log(counts.data)
        - np.log(word_totals[rows])
        - np.log(context_totals[counts.indices])
        + np.log(context_totals.sum())
    )
    result = sp.csr_matrix(
        (np.maximum(pmi, 0.0), counts.indices.copy(), counts.indptr.copy()), counts.shape
    )
    result.eliminate_zeros()
    return result


# --------------------------------------------------------------------------- SVD


def svd_vectors(
    matrix: sp.spmatrix | np.ndarray, dim: int = 100, seed: int = 0, power: float = 0.5
) -> np.ndarray:
    """Rows of a ``(V, C)`` matrix compressed to ``(V, dim)`` by a truncated SVD.

    ``matrix ≈ U Σ Vᵀ`` keeping the ``dim`` largest singular values (``scipy.sparse.linalg
    .svds``, ARPACK, started from a vector drawn with ``seed`` so the result is
    deterministic). Returns ``U Σ^power``: ``power=1`` is the textbook ``U Σ``, 0.5 (the
    default) the symmetric variant, 0 drops Σ. Columns are ordered by decreasing singular
    value and each column's sign is fixed so its largest entry (in absolute value) is
    positive, since an SVD is only defined up to such signs.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    smaller = min(matrix.shape)
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not 1 <= dim < smaller:
        raise ValueError(
            f"dim: expected an int in [1, {smaller - 1}] (less than the vocabulary size, "
            f"{smaller}), got {dim!r}"
        )
    if isinstance(power, bool) or not isinstance(power, int | float) or power < 0:
        raise ValueError(f"power: expected a number >= 0, got {power!r}")
    start = np.random.default_rng(seed).standard_normal(smaller)
    u, s, _ = svds(matrix, k=dim, v0=start, solver="arpack")
    order = np.argsort(s)[::-1]
    u, s = u[:, order], s[order]
    biggest = np.abs(u).argmax(axis=0)
    u = u * np.sign(u[biggest, np.arange(dim)])
    return u * s**power


# --------------------------------------------------------------------------- all together


def ppmi_svd(
    sentences: Iterable[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    min_count: int = 5,
    alpha: float = 0.75,
    seed: int = 0,
    power: float = 0.5,
    dynamic: bool = False,
) -> KeyedVectors:
    """Word vectors from counts: vocabulary, co-occurrences, PPMI, truncated SVD.

    ``sentences`` are lists of string tokens. Returns a `lessons.core.keyed_vectors.KeyedVectors`
    of ``dim``-dimensional float32 vectors, one per word seen at least ``min_count``
    times (most frequent first). See the module docstring for each step and choice.
    """
    sentences = checks.sentences(sentences)
    checks.positive_int("window", window)
    checks.positive_int("dim", dim)
    index_to_key = build_vocabulary(sentences, min_count)
    if dim >= len(index_to_key):
        raise ValueError(
            f"dim: expected an int in [1, {len(index_to_key) - 1}] (less than the vocabulary "
            f"size, {len(index_to_key)} words with min_count={min_count}), got {dim!r}"
        )
    vocab_index = {word: i for i, word in enumerate(index_to_key)}
    cooccurrences = cooccurrence_matrix(sentences, vocab_index, window, dynamic=dynamic)
    vectors = svd_vectors(ppmi(cooccurrences, alpha), dim, seed, power)
    counts = Counter(token for sentence in sentences for token in sentence)
    return KeyedVectors(
        index_to_key,
        torch.from_numpy(vectors.astype(np.float32)),
        counts=counts,
        min_count=min_count,
    )
