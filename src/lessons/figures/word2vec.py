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
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from lessons.core.plot import PALETTE, embedding_scatter
from lessons.word2vec import noise_distribution

__all__ = [
    "draw_model",
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


# --------------------------------------------------------------------------- the two models

#: The example of the model figure: "france" in the centre, two words on each side.
EXAMPLE_SENTENCE = ("the", "capital", "of", "france", "is", "paris", "today")


def _box(ax: Axes, x: float, y: float, text: str, color: str, dashed: bool = False) -> None:
    """A rounded box of fixed size centred on (x, y), in data coordinates."""
    width, height = 0.9, 0.5
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.04",
            facecolor=color,
            edgecolor="0.25",
            linestyle="--" if dashed else "-",
            alpha=0.9,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=9, color="0.35", shrinkA=0, shrinkB=0
        )
    )


def _vector(letter: str, word: str) -> str:
    """``$\\mathbf{v}_{word}$`` as matplotlib mathtext: the notation of the chapter."""
    return rf"$\mathbf{{{letter}}}_{{\mathrm{{{word}}}}}$"


def draw_model(
    ax: Axes,
    kind: str,
    sentence: Sequence[str] = EXAMPLE_SENTENCE,
    centre: int = 3,
    window: int = 2,
    noise: Sequence[str] = ("music", "river"),
) -> list[str]:
    """Skip-gram (``kind="skip-gram"``) or CBOW (``"cbow"``) with negative sampling on one
    window of ``sentence``, as boxes and arrows; returns the context words.

    Bottom row: the sentence, the centre word ``sentence[centre]`` in orange and the
    ``window`` words on each side (its context) in blue. Skip-gram looks up the centre
    word's input vector v and scores it against the output vector u of every context
    word, each (centre, context) pair being one example; CBOW looks up the input vectors
    of the context words, averages them into h and scores h against the centre word's
    output vector. Either way, the true word's score is pushed towards σ(u·v) = 1 and
    the scores of the ``noise`` words (dashed, drawn from the noise distribution) towards
    0.

    Used in: notebooks/01_word2vec.ipynb, section 2.
    """
    if kind not in ("skip-gram", "cbow"):
        raise ValueError(f"kind: expected 'skip-gram' or 'cbow', got {kind!r}")
    words = [str(w) for w in sentence]
    if isinstance(centre, bool) or not isinstance(centre, int) or not 0 <= centre < len(words):
        raise ValueError(f"centre: expected a position in [0, {len(words) - 1}], got {centre!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window: expected an int >= 1, got {window!r}")
    context = [i for i in range(max(0, centre - window), min(len(words), centre + window + 1))]
    context.remove(centre)
    orange, blue, grey = PALETTE[1], PALETTE[5], "#dddddd"
    ax.set_axis_off()
    for i, word in enumerate(words):
        color = orange if i == centre else blue if i in context else "white"
        _box(ax, i, 0, word, color)
    ax.text(
        (context[0] + context[-1]) / 2,
        -0.55,
        f"window: {window} words on each side of {words[centre]!r}",
        ha="center",
        va="top",
        fontsize=9,
        color="0.3",
    )
    noise_x = [len(words) + 0.5 + i for i in range(len(noise))]
    centre_word = words[centre]
    if kind == "skip-gram":
        hidden_y, output_y = 1.5, 3.0
        _box(ax, centre, hidden_y, _vector("v", centre_word), orange)
        _arrow(ax, (centre, 0.3), (centre, hidden_y - 0.3))
        outputs = [(i, _vector("u", words[i]), blue) for i in context]
        title = "skip-gram: the centre word predicts each context word"
    else:
        hidden_y, output_y = 2.2, 3.4
        for i in context:
            _box(ax, i, 1.1, _vector("v", words[i]), blue)
            _arrow(ax, (i, 0.3), (i, 0.8))
            _arrow(ax, (i, 1.4), (centre, hidden_y - 0.3))
        _box(ax, centre, hidden_y, r"$\mathbf{h}$ = mean", "#f2f2f2")
        outputs = [(centre, _vector("u", centre_word), orange)]
        title = "CBOW: the mean of the context predicts the centre word"
    for x, label, color in outputs:
        _box(ax, x, output_y, label, color)
        _arrow(ax, (centre, hidden_y + 0.3), (x, output_y - 0.3))
        ax.text(x, output_y + 0.35, "σ → 1", ha="center", va="bottom", fontsize=9)
    for x, word in zip(noise_x, noise, strict=True):
        _box(ax, x, output_y, _vector("u", word), grey, dashed=True)
        _arrow(ax, (centre, hidden_y + 0.3), (x, output_y - 0.3))
        ax.text(x, output_y + 0.35, "σ → 0", ha="center", va="bottom", fontsize=9)
    ax.text(
        (noise_x[0] + noise_x[-1]) / 2 if noise_x else len(words),
        output_y - 0.55,
        f"K = {len(noise)} noise words" + (" per pair" if kind == "skip-gram" else ""),
        ha="center",
        va="top",
        fontsize=9,
        color="0.3",
    )
    rows = {"sentence": 0, "input vectors": 1.5 if kind == "skip-gram" else 1.1}
    rows["output vectors"] = output_y
    for label, y in rows.items():
        ax.text(-0.65, y, label, ha="right", va="center", fontsize=9, color="0.3")
    ax.set_title(title)
    ax.set_xlim(-2.2, max([len(words) - 0.4, *[x + 0.6 for x in noise_x]]))
    ax.set_ylim(-1.0, output_y + 0.9)
    return [words[i] for i in context]


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
    """Bars of the ``topn`` cosine neighbours of ``word`` (``wv.most_similar``), the
    nearest at the top, starting at the median cosine of ``word`` with every other word
    of the vocabulary (see `_similarity_bars`). An unknown word gives a message."""
    title = f"nearest neighbours of {word!r}"
    if word not in wv:
        _message(ax, _unknown_text(wv, word), title)
        return
    everyone = wv.most_similar(word, topn=len(wv))
    _similarity_bars(ax, everyone[:topn], highlight=None, everyone=everyone)
    ax.set_title(title)


def draw_analogy(ax: Axes, wv: Any, a: str, b: str, c: str, topn: int = 5) -> None:
    """ "a is to b as c is to ?": bars of ``wv.most_similar(positive=[b, c], negative=[a])``,
    starting at the median cosine of every candidate word with the query (see
    `_similarity_bars`), the best answer highlighted and named in the title. Unknown
    words give a message."""
    missing = _unknown(wv, [a, b, c])
    if missing:
        text = "\n".join(_unknown_text(wv, w) for w in dict.fromkeys(missing))
        _message(ax, text, f"{a} : {b} :: {c} : ?")
        return
    everyone = wv.most_similar(positive=[b, c], negative=[a], topn=len(wv))
    _similarity_bars(ax, everyone[:topn], highlight=0, everyone=everyone)
    ax.set_title(f"{a} : {b} :: {c} : {everyone[0][0]}")


def _unknown_text(wv: Any, word: str) -> str:
    """Our KeyedVectors explain why a word is missing; otherwise say it plainly."""
    try:
        wv.get_index(word)
    except KeyError as error:
        return getattr(error, "message", f"the word {word!r} is not in the vocabulary")
    return f"the word {word!r} is in the vocabulary"


def _similarity_bars(
    ax: Axes,
    pairs: list[tuple[str, float]],
    highlight: int | None,
    everyone: list[tuple[str, float]] | None = None,
) -> float:
    """Horizontal bars of the cosines of ``pairs``, the first at the top, that start at
    a baseline: the median cosine over ``everyone`` (every candidate word of the
    vocabulary; by default ``pairs`` itself). Returns the baseline.

    Word vectors trained on a small corpus share a common direction, so that even two
    unrelated words can have a cosine of 0.8 and neighbours differ in the second decimal;
    bars from 0 would all look alike. Bars from the median candidate show how much closer
    than a typical word each one is; the dashed line marks the baseline and the axis
    label says what it is. The cosines are written beside the bars."""
    words = [w for w, _ in pairs]
    values = np.array([float(v) for _, v in pairs])
    baseline = float(np.median([float(v) for _, v in (everyone or pairs)]))
    colors = [PALETTE[3] if i == highlight else PALETTE[0] for i in range(len(pairs))]
    positions = np.arange(len(pairs))
    ax.barh(positions, values - baseline, left=baseline, color=colors)
    for value, y in zip(values, positions, strict=True):
        ax.annotate(
            f"{value:.3f}",
            (max(value, baseline), y),
            textcoords="offset points",
            xytext=(4, 0),
            va="center",
            fontsize=9,
        )
    ax.axvline(baseline, color="0.3", linestyle="--", linewidth=1)
    ax.set_yticks(positions, labels=words)
    ax.set_ylim(len(pairs) - 0.5, -0.5)  # the nearest at the top
    low, high = min(baseline, values.min()), max(baseline, values.max())
    spread = max(high - low, 0.01)
    ax.set_xlim(low - 0.05 * spread, min(high + 0.25 * spread, 1.0))  # no cosine above 1
    ax.set_xlabel(f"cosine similarity (bars start at the median word's, {baseline:.3f})")
    return baseline


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
    _separate_labels(ax)
    return skipped


#: Where a point's label may go, in points from the point, tried in this order:
#: right and up (the default), right and down, left and up, left and down, then further.
_LABEL_PLACES = [(4, 3, "left"), (4, -11, "left"), (-4, 3, "right"), (-4, -11, "right")]
_LABEL_PLACES += [(4, 15, "left"), (-4, 15, "right"), (4, -23, "left"), (-4, -23, "right")]


def _separate_labels(ax: Axes) -> None:
    """Move the point labels of ``ax`` (its annotations) so that no two overlap: each
    label takes the first place of `_LABEL_PLACES` that is clear of the dots and of the
    labels placed before it (top to bottom), inside the axes. A label with no clear place
    keeps the least crowded one."""
    figure = ax.get_figure()
    if type(figure.canvas) is FigureCanvasBase:
        FigureCanvasAgg(figure)  # a bare Figure() has no renderer to measure text with
    renderer = figure.canvas.get_renderer()
    ax.autoscale_view()  # fix the limits now: the places are measured with them
    labels = [t for t in ax.texts if isinstance(t, Annotation)]
    labels.sort(key=lambda t: -ax.transData.transform(t.xy)[1])
    dots = [ax.transData.transform(t.xy) for t in labels]
    placed = [Bbox.from_bounds(x - 3, y - 3, 6, 6) for x, y in dots]  # labels avoid the dots
    for label in labels:
        best, fewest = _LABEL_PLACES[0], None
        for dx, dy, align in _LABEL_PLACES:
            label.xyann = (dx, dy)
            label.set_horizontalalignment(align)
            box = label.get_window_extent(renderer).padded(1)
            clashes = sum(box.overlaps(other) for other in placed)
            clashes += not ax.bbox.containsx(box.x0) or not ax.bbox.containsx(box.x1)
            if fewest is None or clashes < fewest:
                best, fewest = (dx, dy, align), clashes
            if not clashes:
                break
        label.xyann = best[:2]
        label.set_horizontalalignment(best[2])
        placed.append(label.get_window_extent(renderer))
