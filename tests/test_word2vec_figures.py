"""The word2vec chapter's figures draw exactly the numbers they claim to."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors as GensimKeyedVectors
from gensim.models import Word2Vec as GensimWord2Vec
from matplotlib.figure import Figure

from lessons.core import explorer
from lessons.core.keyed_vectors import KeyedVectors
from lessons.core.plot import PALETTE
from lessons.figures.word2vec import (
    EXAMPLE_SENTENCE,
    draw_analogy,
    draw_embedding_map,
    draw_model,
    draw_neighbours,
    draw_noise_distribution,
    draw_subsampling,
    subsampling_keep,
)
from lessons.word2vec import keep_probability

WORDS = ["king", "queen", "man", "woman", "paris", "france", "apple"]
VECTORS = torch.tensor(
    [
        [1.0, 0.0, 1.0, 0.0],
        [1.0, 1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.2, 1.0],
        [0.1, 0.0, 0.0, 1.0],
        [-1.0, 0.5, 0.0, 0.3],
    ]
)


@pytest.fixture
def wv() -> KeyedVectors:
    return KeyedVectors(WORDS, VECTORS, counts={"zebra": 2}, min_count=5)


@pytest.fixture
def ax():
    return Figure().add_subplot()


def _bar_starts(ax, container: int = 0) -> list[float]:
    return [p.get_x() for p in ax.containers[container].patches]


def _bar_lengths(ax, container: int = 0) -> list[float]:
    patches = ax.containers[container].patches
    return [p.get_width() if ax.containers[container].orientation == "horizontal"
            else p.get_height() for p in patches]  # fmt: skip


def _labels(ticks) -> list[str]:
    return [t.get_text() for t in ticks]


def _cosines(word: str) -> dict[str, float]:
    unit = VECTORS.numpy() / np.linalg.norm(VECTORS.numpy(), axis=1, keepdims=True)
    row = unit @ unit[WORDS.index(word)]
    return {w: float(c) for w, c in zip(WORDS, row, strict=True) if w != word}


# --------------------------------------------------------------------------- the models


@pytest.mark.parametrize("kind", ["skip-gram", "cbow"])
def test_model_figure_marks_the_window_and_the_vectors(ax, kind):
    context = draw_model(ax, kind, window=2, noise=("music", "river", "red"))
    assert EXAMPLE_SENTENCE[3] == "france"
    assert context == ["capital", "of", "is", "paris"]  # two words on each side of france
    boxes = {t.get_text(): t for t in ax.texts}
    assert all(word in boxes for word in EXAMPLE_SENTENCE)
    outputs = [t for t in boxes if t.startswith(r"$\mathbf{u}")]
    inputs = [t for t in boxes if t.startswith(r"$\mathbf{v}")]
    noise = [rf"$\mathbf{{u}}_{{\mathrm{{{w}}}}}$" for w in ("music", "river", "red")]
    assert set(noise) <= set(outputs)
    if kind == "skip-gram":  # the centre's input vector against each context word's output
        assert inputs == [r"$\mathbf{v}_{\mathrm{france}}$"]
        assert len(outputs) == 4 + 3
        assert "K = 3 noise words per pair" in boxes
        assert ax.get_title().startswith("skip-gram")
    else:  # the context's input vectors, averaged, against the centre word's output
        assert len(inputs) == 4 and len(outputs) == 1 + 3
        assert r"$\mathbf{u}_{\mathrm{france}}$" in outputs
        assert "K = 3 noise words" in boxes
        assert ax.get_title().startswith("CBOW")
    assert [t.get_text() for t in ax.texts].count("σ → 1") == (4 if kind == "skip-gram" else 1)
    assert [t.get_text() for t in ax.texts].count("σ → 0") == 3
    centre = next(p for p in ax.patches if getattr(p, "get_facecolor", None)
                  and np.allclose(p.get_facecolor()[:3], [230 / 255, 159 / 255, 0]))  # fmt: skip
    assert centre is not None


def test_model_figure_at_the_sentence_edge_and_bad_input(ax):
    assert draw_model(ax, "cbow", sentence=["a", "b", "c"], centre=0, window=5) == ["b", "c"]
    with pytest.raises(ValueError, match="kind: expected 'skip-gram' or 'cbow', got 'sg'"):
        draw_model(ax, "sg")
    with pytest.raises(ValueError, match=r"centre: expected a position in \[0, 6\], got 7"):
        draw_model(ax, "cbow", centre=7)
    with pytest.raises(ValueError, match="window: expected an int >= 1, got 0"):
        draw_model(ax, "cbow", window=0)


# --------------------------------------------------------------------------- noise


def test_noise_distribution_bars(ax):
    counts = {"the": 100, "cat": 10, "sat": 1}
    draw_noise_distribution(ax, counts, exponent=0.75)
    assert _labels(ax.get_xticklabels()) == ["the", "cat", "sat"]
    assert _bar_lengths(ax, 0) == pytest.approx([100 / 111, 10 / 111, 1 / 111])
    z = 100**0.75 + 10**0.75 + 1
    noise = [100**0.75 / z, 10**0.75 / z, 1 / z]
    assert _bar_lengths(ax, 1) == pytest.approx(noise)
    # the exponent moves probability from the frequent word to the rare ones
    assert noise[0] < 100 / 111 and noise[2] > 1 / 111
    assert ax.get_title() == "top 3 words: 100% of the text, 100% of the noise samples"


def test_noise_distribution_top_words_and_plain_counts(ax):
    draw_noise_distribution(ax, [1, 100, 10], exponent=0.0, top=2)
    assert _labels(ax.get_xticklabels()) == ["2", "3"]  # ranks of a plain sequence
    assert _bar_lengths(ax, 1) == pytest.approx([1 / 3, 1 / 3])  # exponent 0: uniform
    assert _bar_lengths(ax, 0) == pytest.approx([100 / 111, 10 / 111])
    assert ax.get_title() == "top 2 words: 99% of the text, 67% of the noise samples"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"counts": {}}, ValueError, "counts: expected at least one count"),
        ({"counts": {"a": 0}}, ValueError, "counts: expected positive counts"),
        ({"counts": "abc"}, TypeError, "counts: expected a dict"),
        ({"counts": [1], "exponent": -1}, ValueError, "exponent"),
        ({"counts": [1], "top": 0}, ValueError, "top"),
    ],
)
def test_noise_distribution_bad_input(ax, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_noise_distribution(ax, **kwargs)


# --------------------------------------------------------------------------- subsampling


def test_subsampling_keep_matches_gensim_and_our_word2vec():
    corpus = [["the"] * 40 + ["of"] * 20 + ["cat"] * 5 + ["a", "b", "c", "d", "e"]] * 3
    model = GensimWord2Vec(vector_size=4, min_count=1, sample=0.05)
    model.build_vocab(corpus)
    words = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words], dtype=float)
    gensims = [model.wv.get_vecattr(w, "sample_int") / (2**32 - 1) for w in words]
    ours = subsampling_keep(counts / counts.sum(), sample=0.05)
    np.testing.assert_allclose(ours, gensims, rtol=1e-7)
    np.testing.assert_allclose(ours, keep_probability(torch.from_numpy(counts), 0.05).numpy())
    assert ours[0] < ours[1] < 1 and ours[-1] == 1  # "the" thinned most, rare words kept
    # kept for sure up to f = s (1 + sqrt 5)^2 / 4
    assert subsampling_keep(0.05 * (1 + 5**0.5) ** 2 / 4 * 0.999, 0.05) == 1
    with pytest.raises(ValueError, match="sample: expected a number in \\(0, 1\\)"):
        subsampling_keep(0.1, sample=0)


def test_subsampling_curve_and_marked_words(ax):
    frequencies = {"the": 10_000, "of": 5_000} | {f"w{i:03d}": 200 - i for i in range(150)}
    marked = draw_subsampling(ax, sample=1e-2, frequencies=frequencies)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, np.minimum((np.sqrt(x / 1e-2) + 1) * 1e-2 / x, 1))
    assert ax.get_xscale() == "log"
    # by rank: the, of, w000 (200), ...; rank 50 is w048 and the median (rank 76) w074
    assert marked == ["the", "of", "w048", "w074"]
    assert _labels(ax.texts) == marked
    total = sum(frequencies.values())
    shares = np.array([frequencies[w] / total for w in marked])
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 0], shares)
    np.testing.assert_allclose(points[:, 1], subsampling_keep(shares, 1e-2))
    # thinned: f > 2.62 s = 0.0262, i.e. count > 886 of 33,825 tokens: "the" and "of"
    assert ax.get_title() == "subsampling frequent words: 2 of 152 words are thinned"
    chosen = draw_subsampling(Figure().add_subplot(), 1e-3, frequencies, words=["w001", "dog"])
    assert chosen == ["w001"]
    assert draw_subsampling(Figure().add_subplot(), 1e-3) == []  # the curve alone


# --------------------------------------------------------------------------- neighbours


def test_neighbours_bars_are_the_cosines_from_the_median_word(wv, ax):
    draw_neighbours(ax, wv, "king", topn=3)
    cosines = _cosines("king")
    expected = sorted(cosines.items(), key=lambda item: -item[1])[:3]
    median = float(np.median(list(cosines.values())))  # of the 6 other words
    assert _labels(ax.get_yticklabels()) == [w for w, _ in expected]
    assert _bar_starts(ax) == pytest.approx([median] * 3, abs=1e-6)
    ends = np.add(_bar_starts(ax), _bar_lengths(ax))
    assert ends == pytest.approx([c for _, c in expected], abs=1e-6)
    assert ax.lines[0].get_xdata()[0] == pytest.approx(median, abs=1e-6)  # the dashed line
    assert ax.get_xlim()[0] < median and ax.get_xlim()[1] > max(cosines.values())
    assert f"median word's, {median:.3f}" in ax.get_xlabel()
    assert _labels(ax.texts) == [f"{c:.3f}" for _, c in expected]  # values written out
    assert ax.yaxis_inverted()  # the nearest at the top
    assert ax.get_title() == "nearest neighbours of 'king'"


def test_unknown_word_is_a_message_not_an_error(wv, ax):
    draw_neighbours(ax, wv, "zebra")
    assert not ax.patches
    (text,) = ax.texts
    assert "'zebra' is not in the vocabulary" in text.get_text()
    assert "fewer than min_count=5" in text.get_text()  # our KeyedVectors say why
    gensim_wv = GensimKeyedVectors(4)
    gensim_wv.add_vectors(WORDS, VECTORS.numpy())
    other = Figure().add_subplot()
    draw_neighbours(other, gensim_wv, "zebra")
    assert other.texts[0].get_text() == "the word 'zebra' is not in the vocabulary"
    draw_neighbours(other := Figure().add_subplot(), gensim_wv, "queen", topn=2)
    assert _labels(other.get_yticklabels()) == ["king", "woman"]


# --------------------------------------------------------------------------- analogies


def test_analogy_bars_and_best_answer(wv, ax):
    draw_analogy(ax, wv, "man", "king", "woman", topn=3)
    answers = wv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
    assert answers[0][0] == "queen"
    assert _labels(ax.get_yticklabels()) == [w for w, _ in answers]
    # the baseline: the median cosine with the query of the 4 words other than a, b, c
    candidates = wv.most_similar(positive=["king", "woman"], negative=["man"], topn=10)
    assert len(candidates) == 4
    median = float(np.median([s for _, s in candidates]))
    ends = np.add(_bar_starts(ax), _bar_lengths(ax))
    assert ends == pytest.approx([s for _, s in answers])
    assert _bar_starts(ax) == pytest.approx([median] * 3)
    colours = [p.get_facecolor() for p in ax.patches]
    assert colours[0] != colours[1] == colours[2]
    assert np.allclose(colours[0][:3], [int(PALETTE[3][i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert ax.get_title() == "man : king :: woman : queen"


def test_analogy_unknown_words(wv, ax):
    draw_analogy(ax, wv, "man", "emperor", "zebra")
    text = ax.texts[0].get_text()
    assert "'emperor' is not in the vocabulary" in text and "'zebra'" in text
    assert not ax.patches
    assert ax.get_title() == "man : emperor :: zebra : ?"


# --------------------------------------------------------------------------- map


def test_embedding_map_skips_unknown_words(wv, ax):
    groups = {"royals": ["king", "queen", "prince"], "places": ["paris", "france"]}
    skipped = draw_embedding_map(ax, wv, groups)
    assert skipped == ["prince"]
    assert ax.get_title().endswith("not in the vocabulary: prince")
    assert _labels(ax.texts) == ["king", "queen", "paris", "france"]
    assert [c.get_label() for c in ax.collections] == ["royals", "places"]
    everything = draw_embedding_map(Figure().add_subplot(), wv, {"all": WORDS})
    assert everything == []


def test_embedding_map_labels_do_not_overlap(wv):
    """Two words with almost the same vector: their labels would sit on top of each other."""
    words = ["king", "kings", "queen", "man", "woman", "paris", "france"]
    vectors = VECTORS[[0, 0, 1, 2, 3, 4, 5]] + 1e-3 * torch.arange(7.0)[:, None]
    near = KeyedVectors(words, vectors)
    ax = Figure(figsize=(5, 4)).add_subplot()
    draw_embedding_map(ax, near, {"all": words})
    renderer = ax.get_figure().canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 7
    clashes = [(a, b) for a in range(7) for b in range(a) if boxes[a].overlaps(boxes[b])]
    assert clashes == []
    assert all(ax.bbox.containsx(b.x0) and ax.bbox.containsx(b.x1) for b in boxes)
    offsets = {tuple(t.xyann) for t in ax.texts}
    assert len(offsets) > 1  # some label had to move from the default place


def test_embedding_map_with_too_few_words(wv, ax):
    assert draw_embedding_map(ax, wv, {"x": ["king", "unicorn"]}) == ["unicorn"]
    assert ax.texts[0].get_text() == "need at least two known words to draw a map"
    with pytest.raises(ValueError, match="groups: expected a dict"):
        draw_embedding_map(ax, wv, {})
    with pytest.raises(TypeError, match="groups\\['x'\\]: expected a list of words"):
        draw_embedding_map(ax, wv, {"x": "king"})


# --------------------------------------------------------------------------- explorers


@pytest.mark.filterwarnings("ignore:The `ipykernel.comm.Comm` class:DeprecationWarning")
def test_figures_plug_into_the_explorer(wv):
    noise = explorer.Explorer(
        functools.partial(draw_noise_distribution, counts={"a": 9, "b": 3, "c": 1}),
        {"exponent": (0.0, 1.0, 0.05, 0.75)},
    )
    noise.controls["exponent"].value = 0.5
    assert noise.draws == 2 and noise.png.startswith(b"\x89PNG")
    neighbours = explorer.Explorer(
        functools.partial(draw_neighbours, wv=wv), {"word": ["king", "zebra"], "topn": (1, 6, 1, 3)}
    )
    neighbours.controls["word"].value = "zebra"  # a message, not a traceback
    assert neighbours.draws == 2
