"""The figures of the word2vec chapter, as draw functions for `lessons.core.explorer`.

Used in: ``notebooks/01_word2vec.ipynb``.

Every function takes a matplotlib ``ax`` first and keyword values after it, so it can be
drawn once or explored with sliders and dropdowns::

    explorer.interactive_figure(
        functools.partial(draw_noise_distribution, counts=counts), exponent=(0.0, 1.0, 0.05, 0.75)
    )
    explorer.interactive_figure(functools.partial(draw_neighbours, wv=wv), word=["king", "paris"])

Functions that look words up draw a message on the axes instead of raising when a word
is not in the vocabulary, so an explorer never shows a traceback. They work with
`lessons.word2vec.KeyedVectors` and with gensim's ``KeyedVectors`` alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from lessons.core.plot import PALETTE, embedding_scatter
from lessons.word2vec import noise_distribution

__all__ = [
    "draw_analogy",
    "draw_embedding_map",
    "draw_neighbours",
    "draw_noise_distribution",
    "draw_subsampling",
    "subsampling_keep",
]


def _message(ax: Axes, text: str, title: str | None = None) -> None:
    """Write ``text`` in the middle of empty axes (instead of raising in an explorer)."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    if title:
        ax.set_title(title)


def _ranked_counts(counts: Mapping[str, int] | Sequence[int]) -> tuple[list[str], np.ndarray]:
    """Labels and counts, most frequent first (ties alphabetical); rank numbers label a
    plain sequence."""
    if isinstance(counts, Mapping):
        items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    elif isinstance(counts, Sequence | np.ndarray | torch.Tensor) and not isinstance(counts, str):
        values = [float(c) for c in counts]
        order = sorted(range(len(values)), key=lambda i: (-values[i], i))
        items = [(str(i + 1), values[i]) for i in order]
    else:
        raise TypeError(
            f"counts: expected a dict word -> count or a sequence of counts, "
            f"got {type(counts).__name__}"
        )
    if not items:
        raise ValueError("counts: expected at least one count, got none")
    labels = [str(label) for label, _ in items]
    values = np.array([float(value) for _, value in items])
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"counts: expected positive counts, got {values.min()!r}")
    return labels, values


# --------------------------------------------------------------------------- negative sampling


def draw_noise_distribution(
    ax: Axes,
    counts: Mapping[str, int] | Sequence[int],
    exponent: float = 0.75,
    top: int = 30,
) -> None:
    """Bars of the unigram probability and the noise probability of the ``top`` words.

    ``counts`` maps words to corpus counts (or is a plain sequence, labelled by rank).
    The unigram probability is ``count / Σ counts``; the noise distribution of negative
    sampling is ``count^exponent / Σ count^exponent`` over the whole vocabulary
    (`lessons.word2vec.noise_distribution`). An exponent below 1 flattens it: the
    most frequent words lose probability, rarer words gain. The title says how much
    probability the ``top`` words hold under each.
    """
    if isinstance(exponent, bool) or not isinstance(exponent, int | float) or exponent < 0:
        raise ValueError(f"exponent: expected a number >= 0, got {exponent!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top: expected an int >= 1, got {top!r}")
    labels, values = _ranked_counts(counts)
    unigram = values / values.sum()
    noise = noise_distribution(torch.from_numpy(values), exponent).numpy()
    shown = min(top, len(labels))
    positions = np.arange(shown)
    width = 0.42
    ax.bar(positions - width / 2, unigram[:shown], width, color=PALETTE[0], label="unigram")
    ax.bar(
        positions + width / 2,
        noise[:shown],
        width,
        color=PALETTE[1],
        label=f"noise (count^{exponent:.2f})",
    )
    ax.set_xticks(positions, labels=labels[:shown], rotation=90)
    ax.set_xlim(-0.7, shown - 0.3)
    ax.set_ylabel("probability")
    ax.set_title(
        f"top {shown} words: {unigram[:shown].sum():.0%} of the text, "
        f"{noise[:shown].sum():.0%} of the noise samples"
    )
    ax.legend()


# --------------------------------------------------------------------------- subsampling


def subsampling_keep(frequency: np.ndarray | float, sample: float = 1e-3) -> np.ndarray:
    """The probability that subsampling keeps a word that makes up ``frequency`` of the text.

    ``keep(f) = (sqrt(f / s) + 1) * s / f``, clipped to 1, with ``s = sample``: the rule of
    word2vec.c and of gensim 4.4's ``Word2Vec.prepare_vocab`` (gensim/models/word2vec.py,
    line 734: ``word_probability = (np.sqrt(v / threshold_count) + 1) * (threshold_count /
    v)`` with ``threshold_count = sample * retain_total``, line 726). It is 1 up to
    ``f = s (1 + √5)² / 4 ≈ 2.62 s`` and about ``sqrt(s / f)`` for much larger ``f``.
    """
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample < 1:
        raise ValueError(f"sample: expected a number in (0, 1), got {sample!r}")
    f = np.asarray(frequency, dtype=float)
    if (f <= 0).any() or (f > 1).any():
        raise ValueError("frequency: expected fractions in (0, 1]")
    return np.minimum((np.sqrt(f / sample) + 1) * sample / f, 1.0)


def _marked_words(ranked: list[str]) -> list[str]:
    """'the' and 'of' (or the two most frequent words), a mid-frequency and a rare word."""
    chosen = [w for w in ("the", "of") if w in ranked] or ranked[:2]
    for rank in (min(50, len(ranked) // 2), len(ranked) // 2):
        if ranked[rank] not in chosen:
            chosen.append(ranked[rank])
    return chosen


def draw_subsampling(
    ax: Axes,
    sample: float = 1e-3,
    frequencies: Mapping[str, int] | None = None,
    words: Sequence[str] | None = None,
) -> list[str]:
    """Keep probability against a word's share of the text (log x axis), see `subsampling_keep`.

    With ``frequencies`` (word -> corpus count) the points of ``words`` are marked on the
    curve, by default "the", "of", the 50th most frequent word and the median word, and
    the title says how many words are thinned (kept with probability < 1). Pass the
    counts of the vocabulary (the words kept by ``min_count``) to get gensim's numbers
    exactly: it divides by the total of the kept words.
    Returns the marked words.
    """
    grid = np.logspace(-7, 0, 400)
    keep = subsampling_keep(grid, sample)
    ax.plot(grid, keep, color=PALETTE[0], label=f"keep(f), sample = {sample:g}")
    ax.axvline(sample, color="#888888", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("f: the word's share of all tokens")
    ax.set_ylabel("probability of keeping a token")
    title = "subsampling frequent words"
    marked: list[str] = []
    if frequencies is not None:
        ranked, values = _ranked_counts(frequencies)
        shares = dict(zip(ranked, values / values.sum(), strict=True))
        thinned = int((subsampling_keep(values / values.sum(), sample) < 1).sum())
        title += f": {thinned} of {len(ranked):,} words are thinned"
        wanted = list(words) if words is not None else _marked_words(ranked)
        marked = [w for w in wanted if w in shares]
        points = np.array([shares[w] for w in marked])
        if marked:
            ax.scatter(points, subsampling_keep(points, sample), color=PALETTE[3], zorder=3)
            for word, share in zip(marked, points, strict=True):
                ax.annotate(
                    word,
                    (share, float(subsampling_keep(share, sample))),
                    textcoords="offset points",
                    xytext=(4, 4),
                )
    ax.set_title(title)
    ax.legend(loc="lower left")
    return marked


# --------------------------------------------------------------------------- word vectors


def _unknown(wv: Any, words: Sequence[str]) -> list[str]:
    return [w for w in words if w not in wv]


def draw_neighbours(ax: Axes, wv: Any, word: str, topn: int = 10) -> None:
    """Horizontal bars of the ``topn`` cosine neighbours of ``word`` (``wv.most_similar``),
    the nearest at the top. An unknown word gives a message on the axes."""
    title = f"nearest neighbours of {word!r}"
    if word not in wv:
        _message(ax, _unknown_text(wv, word), title)
        return
    neighbours = wv.most_similar(word, topn=topn)
    _similarity_bars(ax, neighbours, highlight=None)
    ax.set_title(title)


def draw_analogy(ax: Axes, wv: Any, a: str, b: str, c: str, topn: int = 5) -> None:
    """ "a is to b as c is to ?": bars of ``wv.most_similar(positive=[b, c], negative=[a])``,
    the best answer highlighted and named in the title. Unknown words give a message."""
    missing = _unknown(wv, [a, b, c])
    if missing:
        text = "\n".join(_unknown_text(wv, w) for w in dict.fromkeys(missing))
        _message(ax, text, f"{a} : {b} :: {c} : ?")
        return
    answers = wv.most_similar(positive=[b, c], negative=[a], topn=topn)
    _similarity_bars(ax, answers, highlight=0)
    ax.set_title(f"{a} : {b} :: {c} : {answers[0][0]}")


def _unknown_text(wv: Any, word: str) -> str:
    """Our KeyedVectors explain why a word is missing; otherwise say it plainly."""
    try:
        wv.get_index(word)
    except KeyError as error:
        return getattr(error, "message", f"the word {word!r} is not in the vocabulary")
    return f"the word {word!r} is in the vocabulary"


def _similarity_bars(ax: Axes, pairs: list[tuple[str, float]], highlight: int | None) -> None:
    words = [w for w, _ in pairs]
    values = [float(s) for _, s in pairs]
    colors = [PALETTE[3] if i == highlight else PALETTE[0] for i in range(len(pairs))]
    positions = np.arange(len(pairs))
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, labels=words)
    ax.invert_yaxis()  # the nearest at the top
    ax.set_xlim(min(0.0, *values) - 0.02, 1.0)
    ax.set_xlabel("cosine similarity")


def draw_embedding_map(ax: Axes, wv: Any, groups: Mapping[str, Sequence[str]]) -> list[str]:
    """A 2-D PCA map of word groups (``{"countries": [...], "capitals": [...]}``), one colour
    per group (`lessons.core.plot.embedding_scatter`). Words not in the vocabulary are left
    out and named in the title; they are also returned."""
    if not isinstance(groups, Mapping) or not groups:
        raise ValueError(f"groups: expected a dict group name -> list of words, got {groups!r}")
    words, names, skipped = [], [], []
    for name, members in groups.items():
        if isinstance(members, str):
            raise TypeError(f"groups[{name!r}]: expected a list of words, got the string")
        for word in members:
            if word in wv:
                words.append(word)
                names.append(name)
            else:
                skipped.append(word)
    title = "word vectors, first two principal components"
    if skipped:
        title += "\nnot in the vocabulary: " + ", ".join(skipped)
    if len(words) < 2:
        _message(ax, "need at least two known words to draw a map", title)
        return skipped
    vectors = np.stack([np.asarray(wv[w], dtype=float) for w in words])
    embedding_scatter(vectors, words, groups=names, ax=ax, title=title)
    return skipped
