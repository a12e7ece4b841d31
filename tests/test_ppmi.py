"""The count-based baseline: co-occurrence counts, PPMI and truncated SVD, checked by hand."""

import math
import random

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lessons.core import data
from lessons.core.keyed_vectors import KeyedVectors
from lessons.ppmi import build_vocabulary, cooccurrence_matrix, ppmi, ppmi_svd, svd_vectors

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]
# counts: cat 2, sat 2, the 2, a 1, dog 1 -> ids by frequency, then alphabet
VOCAB = ["cat", "sat", "the", "a", "dog"]
CAT, SAT, THE, A, DOG = range(5)


def test_vocabulary_is_word2vecs():
    assert build_vocabulary(SENTENCES, min_count=1) == VOCAB
    assert build_vocabulary(SENTENCES, min_count=2) == ["cat", "sat", "the"]


def test_cooccurrence_counts_by_hand():
    index = {w: i for i, w in enumerate(VOCAB)}
    counts = cooccurrence_matrix(SENTENCES, index, window=1)
    assert isinstance(counts, sp.csr_matrix) and counts.shape == (5, 5)
    expected = np.zeros((5, 5))
    # neighbours at distance 1: the-cat, cat-sat | the-dog, dog-sat | a-cat; both directions
    for w, c in [(THE, CAT), (CAT, SAT), (THE, DOG), (DOG, SAT), (A, CAT)]:
        expected[w, c] = expected[c, w] = 1
    np.testing.assert_array_equal(counts.toarray(), expected)
    # window 2 adds the pairs at distance 2: the-sat twice
    wider = cooccurrence_matrix(SENTENCES, index, window=2).toarray()
    expected[THE, SAT] = expected[SAT, THE] = 2
    np.testing.assert_array_equal(wider, expected)


def test_cooccurrence_window_skips_rare_words_and_stops_at_sentences():
    index = {"a": 0, "b": 1}
    # "zzz" is not in the vocabulary: removed first, so a and b become neighbours
    assert cooccurrence_matrix([["a", "zzz", "b"]], index, window=1).toarray().tolist() == [
        [0, 1],
        [1, 0],
    ]
    assert cooccurrence_matrix([["a"], ["b"]], index, window=5).nnz == 0
    # a word next to itself counts on the diagonal, once per direction
    assert cooccurrence_matrix([["a", "a"]], index, window=1).toarray().tolist() == [
        [2, 0],
        [0, 0],
    ]


def test_dynamic_window_weights_by_distance():
    index = {"a": 0, "b": 1, "c": 2}
    counts = cooccurrence_matrix([["a", "b", "c"]], index, window=2, dynamic=True).toarray()
    # distance 1 weighs (2 - 1 + 1) / 2 = 1, distance 2 weighs (2 - 2 + 1) / 2 = 0.5
    assert counts[0].tolist() == [0, 1, 0.5]
    assert counts[2].tolist() == [0.5, 1, 0]


def test_ppmi_by_hand():
    index = {w: i for i, w in enumerate(VOCAB)}
    counts = cooccurrence_matrix(SENTENCES, index, window=1)
    # row (= column) totals: cat 3, sat 2, the 2, a 1, dog 2; N = 10
    plain = ppmi(counts, alpha=1.0).toarray()
    assert plain[CAT, THE] == pytest.approx(math.log(1 * 10 / (3 * 2)))  # log 5/3
    assert plain[CAT, A] == pytest.approx(math.log(1 * 10 / (3 * 1)))  # log 10/3
    assert plain[SAT, DOG] == pytest.approx(math.log(1 * 10 / (2 * 2)))  # log 5/2
    # smoothed: P(c) ∝ total(c)^0.75, normalised by the sum over all contexts
    smoothed = ppmi(counts, alpha=0.75).toarray()
    z = 3**0.75 + 3 * 2**0.75 + 1**0.75
    assert smoothed[CAT, A] == pytest.approx(math.log((1 / 10) / ((3 / 10) * (1 / z))))
    assert smoothed[A, CAT] == pytest.approx(math.log((1 / 10) / ((1 / 10) * (3**0.75 / z))))
    # smoothing raises a rare context's probability, so lowers its PMI
    assert smoothed[CAT, A] < plain[CAT, A]


def test_ppmi_clips_negative_pmi_and_keeps_zeros():
    counts = np.array([[10.0, 1.0], [1.0, 10.0]])  # N = 22, every total 11
    # PMI(0, 1) = log(1 * 22 / 121) < 0 -> 0; PMI(0, 0) = log(10 * 22 / 121)
    result = ppmi(counts, alpha=1.0).toarray()
    np.testing.assert_allclose(result, [[math.log(220 / 121), 0], [0, math.log(220 / 121)]])
    random_counts = sp.random(30, 20, density=0.2, random_state=0, format="csr") * 10
    before = random_counts.copy()
    result = ppmi(random_counts).toarray()
    assert (result >= 0).all()
    assert (result[random_counts.toarray() == 0] == 0).all()
    assert (random_counts != before).nnz == 0  # the input is not changed


def test_svd_vectors_match_numpy():
    matrix = np.random.default_rng(0).random((8, 6))
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    ours = svd_vectors(sp.csr_matrix(matrix), dim=3, seed=0, power=1.0)
    assert ours.shape == (8, 3)
    signs = np.sign((ours * u[:, :3]).sum(0))  # an SVD is defined up to column signs
    np.testing.assert_allclose(ours, u[:, :3] * s[:3] * signs, atol=1e-10)
    half = svd_vectors(matrix, dim=3, seed=0)  # power 0.5 by default
    np.testing.assert_allclose(half, u[:, :3] * np.sqrt(s[:3]) * signs, atol=1e-10)
    np.testing.assert_allclose(svd_vectors(matrix, 3, 0, power=0), u[:, :3] * signs, atol=1e-10)
    # a rank-2 matrix is rebuilt exactly from U Σ Vᵀ with two dimensions
    low_rank = matrix[:, :2] @ matrix[:2, :]
    us = svd_vectors(low_rank, dim=2, power=1.0)
    v = np.linalg.lstsq(us, low_rank, rcond=None)[0]
    np.testing.assert_allclose(us @ v, low_rank, atol=1e-10)


def _planted_corpus() -> list[list[str]]:
    """Animals and vehicles: each group shares its own contexts, never the other's."""
    rng = random.Random(0)
    groups = {
        ("cat", "dog", "cow", "horse"): ["eats", "sleeps", "barks", "grazes", "furry"],
        ("car", "bus", "truck", "train"): ["drives", "parks", "brakes", "fuel", "wheels"],
    }
    sentences = []
    for _ in range(400):
        nouns, contexts = rng.choice(list(groups.items()))
        sentences.append([rng.choice(contexts), rng.choice(nouns), rng.choice(contexts)])
    return sentences


def test_planted_clusters_separate():
    wv = ppmi_svd(_planted_corpus(), dim=4, window=2, min_count=1)
    assert isinstance(wv, KeyedVectors) and wv.vectors.shape == (18, 4)
    assert wv.vectors.dtype == torch.float32
    animals, vehicles = ["cat", "dog", "cow", "horse"], ["car", "bus", "truck", "train"]
    within = [wv.similarity(a, b) for g in (animals, vehicles) for a in g for b in g if a < b]
    across = [wv.similarity(a, b) for a in animals for b in vehicles]
    assert min(within) > 0.9 and max(across) < 0.1
    neighbours = [word for word, _ in wv.most_similar("cat", topn=3)]
    assert set(neighbours) == {"dog", "cow", "horse"}


def test_deterministic_with_a_seed():
    corpus = _planted_corpus()
    first = ppmi_svd(corpus, dim=3, window=2, min_count=1, seed=3)
    again = ppmi_svd(corpus, dim=3, window=2, min_count=1, seed=3)
    assert first.index_to_key == again.index_to_key
    assert torch.equal(first.vectors, again.vectors)


def test_unknown_word_message_says_why():
    wv = ppmi_svd(SENTENCES * 3, dim=2, window=1, min_count=6)  # cat, sat, the seen 6 times
    with pytest.raises(KeyError, match="fewer than min_count=6"):
        wv["dog"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ppmi_svd([]), ValueError, "sentences: got an empty corpus"),
        (lambda: ppmi_svd([[], []]), ValueError, "sentences: got an empty corpus"),
        (lambda: ppmi_svd("the cat sat"), TypeError, "sentences: expected a list of token"),
        (
            lambda: ppmi_svd(["the cat"]),
            TypeError,
            "sentences\\[0\\]: expected a list of string tokens, got 'the cat'",
        ),
        (
            lambda: ppmi_svd([["a", 3]]),
            TypeError,
            "sentences\\[0\\]\\[1\\]: expected a string token, got int 3",
        ),
        (lambda: ppmi_svd(SENTENCES, min_count=5), ValueError, "min_count=5: no word occurs"),
        (lambda: ppmi_svd(SENTENCES, min_count=0), ValueError, "min_count: expected an int >= 1"),
        (lambda: ppmi_svd(SENTENCES, window=0), ValueError, "window: expected an int >= 1, got 0"),
        (
            lambda: ppmi_svd(SENTENCES, window=1.5),
            TypeError,
            "window: expected an int >= 1, got float 1.5",
        ),
        (
            lambda: ppmi_svd(SENTENCES, dim=5, min_count=1),
            ValueError,
            r"dim: expected an int in \[1, 4\] \(less than the vocabulary size, 5 words",
        ),
        (lambda: ppmi_svd(SENTENCES, dim=0), ValueError, "dim: expected an int >= 1, got 0"),
        (lambda: ppmi_svd(SENTENCES, alpha=0, min_count=1, dim=2), ValueError, "alpha"),
        (lambda: ppmi(np.array([[1.0, -1.0]])), ValueError, "matrix: expected counts >= 0"),
        (lambda: ppmi(np.zeros((2, 2))), ValueError, "matrix: expected some positive counts"),
        (lambda: svd_vectors(np.eye(3), dim=3), ValueError, r"dim: expected an int in \[1, 2\]"),
        (lambda: svd_vectors(np.eye(3), dim=1, power=-1), ValueError, "power"),
        (lambda: cooccurrence_matrix(SENTENCES, {}, 2), ValueError, "vocab_index"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_wikipedia_baseline_correlates_with_people():
    """The numbers the chapter quotes (train split, dim 100, window 5, min_count 5):
    WordSim-353 Spearman 0.437, SimLex-999 0.166, with 41% / 56% of pairs out of
    vocabulary."""
    wv = ppmi_svd(data.wikipedia("train"), dim=100, window=5, min_count=5)
    assert len(wv) == 7947
    _, (wordsim, _), wordsim_oov = wv.evaluate_word_pairs(data.wordsim353_path())
    _, (simlex, _), simlex_oov = wv.evaluate_word_pairs(data.simlex999_path())
    assert wordsim == pytest.approx(0.437, abs=0.01)
    assert simlex == pytest.approx(0.166, abs=0.01)
    assert wordsim_oov == pytest.approx(41.08, abs=0.01)
    assert simlex_oov == pytest.approx(55.96, abs=0.01)
