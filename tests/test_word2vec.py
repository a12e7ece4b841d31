"""word2vec from scratch: the loss, its gradients, the tables, training and KeyedVectors,
each checked against a hand computation, autograd or gensim."""

import math
from collections import Counter

import gensim
import numpy as np
import pytest
import torch

from lessons.core import data
from lessons.core.keyed_vectors import KeyedVectors, UnknownWordError
from lessons.word2vec import (
    MAX_BATCH_SIZE,
    MAX_ROW_LOAD,
    Word2Vec,
    analogy,
    cosine_neighbours,
    keep_probability,
    log_sigmoid,
    negative_sampling_gradients,
    negative_sampling_loss,
    noise_distribution,
)

# --------------------------------------------------------------------------- the loss


def test_log_sigmoid_is_exact_and_stable():
    values = [-1000.0, -30.0, -1.0, 0.0, 2.0, 30.0, 1000.0]
    # log σ(x) = x - log(1 + e^x) = -log(1 + e^-x), the form that does not overflow
    expected = [x - math.log1p(math.exp(x)) if x < 0 else -math.log1p(math.exp(-x)) for x in values]
    got = log_sigmoid(torch.tensor(values, dtype=torch.float64))
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-14, atol=0)
    assert got[3] == -math.log(2) and torch.isfinite(got).all()


def test_negative_sampling_loss_matches_a_hand_computation():
    v = torch.tensor([[1.0, 0.0]])  # input vector
    u_o = torch.tensor([[2.0, 0.0]])  # true word: score 2
    u_k = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])  # noise words: scores 0 and -1
    # -log σ(2) - log σ(-0) - log σ(1) = log(1 + e^-2) + log 2 + log(1 + e^-1)
    expected = math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.exp(-1))
    assert negative_sampling_loss(v, u_o, u_k).item() == pytest.approx(expected, rel=1e-6)


def test_hand_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    batch, negative, d = 6, 4, 5
    v = torch.randn(batch, d, generator=g, dtype=torch.float64, requires_grad=True)
    u = torch.randn(batch, 1 + negative, d, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.ones(batch, 1 + negative, dtype=torch.float64)
    weights[2, 3] = 0  # a noise word equal to the true word is skipped

    loss, grad_v, grad_u = negative_sampling_gradients(v, u, weights)
    reference = negative_sampling_loss(v, u[:, 0], u[:, 1:])
    skipped = torch.zeros(batch, dtype=torch.float64)
    skipped[2] = 1
    reference = reference + skipped * log_sigmoid(-(u[2, 3] * v[2]).sum())  # drop that term
    assert torch.allclose(loss, reference.detach())
    reference.sum().backward()
    assert torch.allclose(grad_v, v.grad, atol=1e-12)
    assert torch.allclose(grad_u, u.grad, atol=1e-12)
    assert grad_u[2, 3].abs().max() == 0

    _, step_v, step_u = negative_sampling_gradients(v.detach(), u.detach(), weights, scale=-0.1)
    assert torch.allclose(step_v, -0.1 * grad_v) and torch.allclose(step_u, -0.1 * grad_u)


# --------------------------------------------------------------------------- the tables


def test_noise_distribution_is_counts_to_the_three_quarters():
    counts = torch.tensor([16, 1, 81])
    expected = torch.tensor([8.0, 1.0, 27.0]) / 36.0  # 16^0.75 = 8, 81^0.75 = 27
    assert torch.allclose(noise_distribution(counts), expected.double())
    assert torch.allclose(noise_distribution(counts, exponent=1.0), counts.double() / 98)


def test_keep_probability_matches_the_formula():
    counts = torch.tensor([500, 100, 10, 1])
    s = 0.01
    # (sqrt(f / s) + 1) s / f = sqrt(s / f) + s / f, with s / f = 0.01 * 611 / count:
    # 500 -> 0.01222: 0.11054 + 0.01222 = 0.12276; 100 -> 0.0611: 0.24718 + 0.0611 = 0.30828;
    # 10 -> 0.611: 0.7817 + 0.611 > 1, kept; 1 -> 6.11, kept
    expected = torch.tensor([0.12276, 0.30828, 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(keep_probability(counts, s), expected, atol=1e-5)
    assert keep_probability(counts, s)[-1] == 1  # rare words are always kept
    assert torch.equal(keep_probability(counts, 0), torch.ones(4, dtype=torch.float64))


def _skewed_corpus() -> list[list[str]]:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    weights = 1.0 / np.arange(1, 41)  # Zipf-like
    tokens = rng.choice(words, size=3000, p=weights / weights.sum()).tolist()
    return [tokens[i : i + 10] for i in range(0, 3000, 10)]


def test_tables_agree_with_gensims():
    corpus = _skewed_corpus()
    ours = Word2Vec(corpus, min_count=3, sample=1e-2, epochs=1, vector_size=4, progress=False)
    theirs = gensim.models.Word2Vec(vector_size=4, min_count=3, sample=1e-2)
    theirs.build_vocab(corpus)
    assert sorted(ours.wv.index_to_key) == sorted(theirs.wv.index_to_key)
    for word, i in ours.wv.key_to_index.items():
        sample_int = theirs.wv.get_vecattr(word, "sample_int")
        assert ours.keep_probabilities[i].item() == pytest.approx(sample_int / 2**32, abs=1e-9)
    # gensim's cum_table is the cumulative noise distribution scaled to 2**31 - 1
    their_noise = np.diff(theirs.cum_table, prepend=0) / theirs.cum_table[-1]
    our_noise = torch.diff(ours.cum_table, prepend=torch.zeros(1))
    for word, i in ours.wv.key_to_index.items():
        j = theirs.wv.key_to_index[word]
        assert our_noise[i].item() == pytest.approx(their_noise[j], abs=1e-8)


def test_negatives_follow_the_noise_distribution():
    model = Word2Vec(_skewed_corpus(), min_count=1, epochs=1, vector_size=4, progress=False)
    draws = model._draw_negatives(20_000).reshape(-1)
    frequencies = torch.bincount(draws, minlength=len(model.wv)).double() / len(draws)
    expected = noise_distribution(model.counts)
    assert (frequencies - expected).abs().max() < 0.01


# --------------------------------------------------------------------------- training


def _two_clusters(sentences: int = 1500, seed: int = 0) -> list[list[str]]:
    """Animals appear between animal contexts, vehicles between vehicle contexts."""
    rng = np.random.default_rng(seed)
    clusters = {
        ("cat", "dog", "cow", "horse"): ("feeds", "pets", "barn", "milk"),
        ("car", "bus", "truck", "train"): ("drives", "road", "fuel", "garage"),
    }
    corpus = []
    for _ in range(sentences):
        members, contexts = list(clusters.items())[rng.integers(2)]
        corpus.append(
            [rng.choice(contexts), rng.choice(members), rng.choice(contexts), rng.choice(contexts)]
        )
    return corpus


def _cluster_gap(wv: KeyedVectors) -> float:
    animals, vehicles = ["cat", "dog", "cow", "horse"], ["car", "bus", "truck", "train"]
    within = [wv.similarity(a, b) for group in (animals, vehicles) for a in group for b in group]
    within = [s for s in within if s < 0.99999]  # leave out a word with itself
    between = [wv.similarity(a, b) for a in animals for b in vehicles]
    return float(np.mean(within) - np.mean(between))


@pytest.mark.parametrize(("sg", "batch_size"), [(1, 256), (0, None)])
def test_training_separates_planted_clusters(sg, batch_size):
    model = Word2Vec(
        _two_clusters(), vector_size=16, window=2, min_count=1, sg=sg, sample=0, epochs=5,
        batch_size=batch_size, progress=False,
    )  # fmt: skip
    assert _cluster_gap(model.wv) > 0.5
    assert model.wv.most_similar("cat", topn=3)[0][0] in {"dog", "cow", "horse"}
    losses = [h["loss"] for h in model.history]
    assert losses[-1] < losses[0]
    assert len(model.history) == 5
    # raw corpus words (1500 sentences of 4) times 5 epochs, per second of training
    assert model.words_per_second == pytest.approx(1500 * 4 * 5 / model.train_seconds)
    examples, size = model.history[0]["examples"], model.history[0]["batch_size"]
    if batch_size is None:  # the default leaves a tiny corpus 100 steps per epoch
        assert size == math.ceil(examples / 100)
    else:
        assert size == batch_size


def _dominated_corpus(share: float, tokens: int = 60_000) -> list[list[str]]:
    """A Zipf-like text in which "the" makes up ``share`` of the tokens, as in English."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    weights = 1.0 / np.arange(1, 301)
    drawn = rng.choice(words, size=tokens, p=weights / weights.sum()).tolist()
    drawn = [w if rng.random() > share else "the" for w in drawn]
    return [drawn[i : i + 20] for i in range(0, tokens, 20)]


def test_default_batch_bounds_the_busiest_words_load():
    model = Word2Vec([["a", "b", "c", "a"]] * 20, min_count=1, vector_size=4, window=1,
                     negative=3, sample=0, epochs=1, progress=False)  # fmt: skip
    # inputs: a a b c; outputs: b c a a; a is drawn as noise with probability p_a
    inputs, outputs = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 2, 0, 0])
    p_a = 40**0.75 / (40**0.75 + 2 * 20**0.75)
    expected = (2 * (1 + 3) + 2 + 4 * 3 * p_a) / 4  # word a: as input, output and noise
    assert model._row_load(inputs, outputs) == pytest.approx(expected)
    assert model._default_batch_size(2.0, 10**9) == MAX_ROW_LOAD // 2
    assert model._default_batch_size(1e-6, 10**9) == MAX_BATCH_SIZE
    assert model._default_batch_size(1e-6, 5_000) == 50  # 100 steps per epoch
    cbow = torch.tensor([[0, -1], [1, 0]])  # CBOW contexts, -1 for none: a twice, b once
    assert model._row_load(cbow, torch.tensor([1, 2])) == pytest.approx((2 * 4 + 2 * 3 * p_a) / 2)


def test_a_frequent_word_without_subsampling_trains_stably(one_thread):
    """With "the" at 8% of the text, no subsampling and 15 noise words, a batch of 4,096
    pairs sums so many stale updates of "the" that training diverges (and says so); the
    default batch keeps its load bounded and learns."""
    corpus = _dominated_corpus(share=0.08, tokens=30_000)
    settings = dict(vector_size=50, min_count=1, sample=0, negative=15, epochs=2, progress=False)
    model = Word2Vec(corpus, **settings)
    assert model.history[0]["batch_size"] < 1000
    assert torch.isfinite(model.wv.vectors).all() and torch.isfinite(model.syn1neg).all()
    assert model.history[1]["loss"] < model.history[0]["loss"] < 4.0
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1.*batch_size=4096"):
        Word2Vec(corpus, batch_size=4096, **{**settings, "epochs": 1})


def test_same_seed_same_vectors():
    settings = dict(vector_size=8, window=2, min_count=1, epochs=2, progress=False)
    first = Word2Vec(_two_clusters(300), seed=3, **settings)
    again = Word2Vec(_two_clusters(300), seed=3, **settings)
    other = Word2Vec(_two_clusters(300), seed=4, **settings)
    assert torch.equal(first.wv.vectors, again.wv.vectors)
    assert torch.equal(first.syn1neg, again.syn1neg)
    assert not torch.equal(first.wv.vectors, other.wv.vectors)


def test_skipgram_pairs_respect_windows_and_sentences():
    model = Word2Vec([["a", "b", "c"], ["d", "e"]], min_count=1, window=2, epochs=1,
                     vector_size=2, progress=False)  # fmt: skip
    ids = np.arange(5)
    sentence = np.array([0, 0, 0, 1, 1])
    pairs = {tuple(p) for p in model._skipgram_pairs(ids, sentence).tolist()}
    full = {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (3, 4), (4, 3)}
    assert pairs <= full  # never across a sentence boundary, never beyond the window
    assert {(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)} <= pairs  # distance 1 always in
    windows = model._cbow_windows(ids, sentence)
    assert windows.shape == (5, 5) and windows[:, 0].tolist() == [0, 1, 2, 3, 4]
    within = {0: {1, 2}, 1: {0, 2}, 2: {0, 1}, 3: {4}, 4: {3}}  # same sentence, window 2
    nearest = {0: {1}, 1: {0, 2}, 2: {1}, 3: {4}, 4: {3}}  # distance 1: always in
    for centre, *context in windows.tolist():
        assert nearest[centre] <= set(context) - {-1} <= within[centre], (centre, context)


def test_subsampling_keeps_words_at_their_rate():
    corpus = [["the"] * 50 + [f"w{i}" for i in range(50)] for _ in range(40)]
    model = Word2Vec(corpus, min_count=1, sample=1e-2, epochs=1, vector_size=2, progress=False)
    kept, _ = model._subsample()
    the = model.wv.key_to_index["the"]
    rate = (kept == the).sum() / 2000
    assert rate == pytest.approx(model.keep_probabilities[the].item(), abs=0.05)
    assert model.keep_probabilities[the] < 0.5


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("sentences", "error", "match"),
    [
        ([], ValueError, "sentences: got an empty corpus"),
        ([[], []], ValueError, "sentences: got an empty corpus"),
        ([["a", "b"], ["c"]], ValueError, r"min_count=5.*occurs 1 time"),
        ([["a", 3, "b"]], TypeError, r"sentences\[0\]\[1\]: expected a string token, got int 3"),
        (["the cat sat"], TypeError, "split it into words"),
        ("the cat sat", TypeError, "one string"),
    ],
)
def test_bad_corpora_raise_clear_errors(sentences, error, match):
    with pytest.raises(error, match=match):
        Word2Vec(sentences, progress=False)


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="sg"):
        Word2Vec([["a"]], sg=2, min_count=1)
    with pytest.raises(ValueError, match="window"):
        Word2Vec([["a"]], window=0, min_count=1)


def test_unknown_word_names_the_word_and_the_count_it_needed():
    corpus = [["cat", "sat", "on", "the", "mat"]] * 5 + [["kitten"]] * 2
    model = Word2Vec(corpus, min_count=3, vector_size=4, epochs=1, progress=False)
    with pytest.raises(UnknownWordError, match=r"'kitten'.*occurs 2 times.*min_count=3"):
        model.wv.most_similar("kitten")
    with pytest.raises(KeyError, match=r"'kat'.*never occurs.*close words.*cat"):
        model.wv["kat"]
    with pytest.raises(TypeError, match="expected a word"):
        model.wv.similarity("cat", 3)


# --------------------------------------------------------------------------- KeyedVectors


def test_keyed_vectors_lookup_and_checks():
    wv = KeyedVectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    assert wv.vector_size == 2 and len(wv) == 3 and "b" in wv and "z" not in wv
    assert torch.equal(wv["b"], torch.tensor([0.0, 2.0]))
    assert wv[["c", "a"]].shape == (2, 2)
    assert wv.similarity("a", "c") == pytest.approx(1 / math.sqrt(2))
    assert [w for w, _ in wv.most_similar("a")] == ["c", "b"]
    with pytest.raises(ValueError, match="2 words"):
        KeyedVectors(["a", "b"], torch.zeros(3, 2))
    with pytest.raises(ValueError, match="more than once"):
        KeyedVectors(["a", "a"], torch.zeros(2, 2))


def test_cosine_neighbours_and_analogy():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 2.1]])
    assert cosine_neighbours(vectors, torch.tensor([1.0, 1.0]), 2).tolist() == [2, 4]
    # man (0) is to king (4) as woman (1) is to ?: unit(king) - unit(man) + unit(woman)
    assert analogy(vectors, 0, 4, 1) == 2


def _evaluation_vectors() -> KeyedVectors:
    """Random vectors for every word of the evaluation sets, with planted capitals
    (capital = country + a shared offset) so that some analogies are right."""
    rng = np.random.default_rng(0)
    words = set()
    for first, second, _ in data.wordsim353() + data.simlex999():
        words |= {first, second}
    capitals = data.analogies()["capital-common-countries"]
    for question in capitals:
        words |= set(question)
    words = sorted(words)
    vectors = rng.normal(size=(len(words), 20)).astype(np.float32)
    offset = 3 * rng.normal(size=20).astype(np.float32)
    index = {w: i for i, w in enumerate(words)}
    for _, _, country, capital in capitals:
        vectors[index[capital]] = vectors[index[country]] + offset + rng.normal(size=20) * 0.5
    words.append("Athens")  # a second case of a word, after its first: ignored when folded
    vectors = np.vstack([vectors, rng.normal(size=(1, 20)).astype(np.float32)])
    return KeyedVectors(words, torch.from_numpy(vectors))


@pytest.fixture(scope="module")
def both_vectors() -> tuple[KeyedVectors, gensim.models.KeyedVectors]:
    ours = _evaluation_vectors()
    theirs = gensim.models.KeyedVectors(ours.vector_size)
    theirs.add_vectors(ours.index_to_key, ours.vectors.numpy())
    return ours, theirs


@pytest.mark.parametrize("path", [data.wordsim353_path(), data.simlex999_path()])
def test_evaluate_word_pairs_agrees_with_gensim(both_vectors, path):
    ours, theirs = both_vectors
    (pearson, _), (spearman, p_value), oov = ours.evaluate_word_pairs(path)
    their_pearson, their_spearman, their_oov = theirs.evaluate_word_pairs(str(path))
    assert pearson == pytest.approx(their_pearson[0], abs=1e-6)
    assert spearman == pytest.approx(their_spearman[0], abs=1e-6)
    assert p_value == pytest.approx(their_spearman[1], rel=1e-4)
    assert oov == pytest.approx(their_oov)
    restricted = ours.evaluate_word_pairs(path, restrict_vocab=500)
    assert restricted[2] == pytest.approx(
        theirs.evaluate_word_pairs(str(path), restrict_vocab=500)[2]
    )


def test_evaluate_word_analogies_agrees_with_gensim(both_vectors):
    ours, theirs = both_vectors
    score, sections = ours.evaluate_word_analogies(data.analogies_path())
    their_score, their_sections = theirs.evaluate_word_analogies(str(data.analogies_path()))
    assert score == pytest.approx(their_score) and score > 0.5
    assert sections == their_sections
    assert sections[-1]["section"] == "Total accuracy"


def test_most_similar_agrees_with_gensim(both_vectors):
    ours, theirs = both_vectors
    query = {"positive": ["paris", "germany"], "negative": ["france"], "topn": 5}
    our_words = ours.most_similar(**query)
    their_words = theirs.most_similar(**query)
    assert [w for w, _ in our_words] == [w for w, _ in their_words]
    assert np.allclose([s for _, s in our_words], [s for _, s in their_words], atol=1e-6)


def test_counts_of_a_trained_model():
    corpus = _skewed_corpus()
    model = Word2Vec(corpus, min_count=3, epochs=1, vector_size=4, progress=False)
    counts = Counter(t for s in corpus for t in s)
    assert model.counts.tolist() == sorted((n for n in counts.values() if n >= 3), reverse=True)
    assert model.corpus_words == 3000
