"""The figures of the attention chapter, and the measurements behind them.

Used in: ``notebooks/03_attention.ipynb`` (and `draw_alignment` in the seq2seq chapter).

Each ``draw_*`` function but `draw_softmax_scale` (which draws on a given ``ax``, for an
explorer) returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`); the figures are not registered with pyplot, so a notebook shows
one exactly when a cell returns it. Every random number comes from a seeded generator:
the same call draws the same figure. The numbers behind the figures are functions of
their own (`dot_product_variance`, `softmax_gradient_norm`), so tests and readers can
check them::

    dot_product_variance(64)                  # ≈ 64: q · k grows with d_k ...
    dot_product_variance(64, scaled=True)     # ≈ 1: ... unless divided by sqrt(d_k)
    explorer.interactive_figure(functools.partial(draw_softmax_scale, scores=s), scale=(0, 10))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE, heatmap, new_axes

__all__ = [
    "plot_accuracy_by_length",
    "plot_attention",
    "DEFAULT_D_KS",
    "dot_product_variance",
    "draw_alignment",
    "draw_dot_product_variance",
    "draw_gradient_vs_dk",
    "draw_heads",
    "draw_softmax_scale",
    "softmax_gradient_norm",
]

#: The key sizes the figures sweep: 1, 4, 16, ..., 1024.
DEFAULT_D_KS = (1, 4, 16, 64, 256, 1024)


def _as_array(values: object, name: str, ndim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(array.shape)}")
    return array


def _figure(figsize: tuple[float, float] | None = None) -> tuple[Figure, Axes]:
    figure = Figure(figsize=figsize, layout="constrained")  # room for the tick labels
    return figure, figure.add_subplot()


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------


def dot_product_variance(
    d_k: int, samples: int = 4_000, seed: int = 0, scaled: bool = False
) -> float:
    """The measured variance of ``q · k`` (``/ sqrt(d_k)`` if ``scaled``) for random
    vectors with independent standard normal entries.

    In theory ``d_k`` unscaled (a sum of ``d_k`` products of variance 1) and 1 scaled;
    the measurement over ``samples`` pairs is within a few ``sqrt(2 / samples)`` of it,
    relatively.
    """
    checks.positive_int("d_k", d_k)
    checks.positive_int("samples", samples, minimum=2)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(samples, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(samples, d_k, generator=g, dtype=torch.float64)
    scores = (q * k).sum(-1)
    if scaled:
        scores = scores / math.sqrt(d_k)
    return float(scores.var())


def softmax_gradient_norm(
    d_k: int, scaled: bool, num_keys: int = 16, samples: int = 500, seed: int = 0
) -> float:
    """How much the attention weights still respond to the scores: the mean Frobenius norm
    of the softmax's Jacobian ``d weights / d scores = diag(p) - p p^T``.

    Each sample scores one random query against ``num_keys`` random keys (standard
    normal entries, size ``d_k``), with or without the ``1 / sqrt(d_k)`` scaling. When
    the softmax saturates (one weight near 1) the Jacobian, and with it every gradient
    that flows back through the scores, goes to 0.
    """
    checks.positive_int("d_k", d_k)
    checks.positive_int("samples", samples)
    checks.positive_int("num_keys", num_keys, minimum=2)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(samples, 1, d_k, generator=g, dtype=torch.float64)
    keys = torch.randn(samples, num_keys, d_k, generator=g, dtype=torch.float64)
    scores = (q * keys).sum(-1)  # (samples, num_keys)
    if scaled:
        scores = scores / math.sqrt(d_k)
    p = torch.softmax(scores, dim=-1)
    jacobian = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
    return float(torch.linalg.matrix_norm(jacobian).mean())


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def draw_softmax_scale(
    ax: Axes,
    scores: Sequence[float] | torch.Tensor,
    scale: float = 1.0,
    labels: Sequence[str] | None = None,
) -> None:
    """Bars of ``softmax(scale * scores)`` on ``ax``: large scales sharpen it towards
    one-hot (argmax), scales near 0 flatten it towards uniform.

    ``ax`` comes first, so it is a draw function for `lessons.core.explorer`, e.g.
    ``interactive_figure(functools.partial(draw_softmax_scale, scores=s), scale=(0, 10))``.
    """
    values = _as_array(scores, "scores", 1)
    if len(values) == 0:
        raise ValueError("scores: expected at least one score, got none")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise ValueError(f"scale: expected a finite number, got {scale!r}")
    if labels is not None and len(labels) != len(values):
        raise ValueError(
            f"labels: expected {len(values)} labels (one per score), got {len(labels)}"
        )
    weights = torch.softmax(torch.from_numpy(values) * scale, dim=0).numpy()
    names = list(labels) if labels is not None else [str(i) for i in range(len(values))]
    ax.bar(names, weights, color=PALETTE[0])
    ax.set_ylim(0, 1)
    ax.set_xlabel("key")
    ax.set_ylabel("attention weight")
    ax.set_title(f"softmax({scale:g} × scores): largest weight {weights.max():.2f}")


def draw_dot_product_variance(
    d_ks: Sequence[int] = DEFAULT_D_KS, samples: int = 4_000, seed: int = 0
) -> Figure:
    """The measured variance of ``q · k`` against ``d_k``, unscaled (it follows the line
    ``y = d_k``) and divided by ``sqrt(d_k)`` (it stays at 1); log-log axes."""
    d_ks = [checks.positive_int("d_ks", d) for d in d_ks]
    unscaled = [dot_product_variance(d, samples, seed) for d in d_ks]
    scaled = [dot_product_variance(d, samples, seed, scaled=True) for d in d_ks]
    with mpl.rc_context(STYLE):
        figure, ax = _figure()
        ax.plot(d_ks, d_ks, "--", color="#888888", label="y = d_k (theory, unscaled)")
        ax.plot(d_ks, unscaled, "o-", color=PALETTE[3], label="q · k")
        ax.plot(d_ks, scaled, "o-", color=PALETTE[0], label="q · k / sqrt(d_k)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("d_k (size of queries and keys)")
        ax.set_ylabel("variance of the score")
        ax.set_title(f"measured over {samples:,} random pairs")
        ax.legend()
    return figure


def draw_gradient_vs_dk(
    d_ks: Sequence[int] = DEFAULT_D_KS, num_keys: int = 16, samples: int = 500, seed: int = 0
) -> Figure:
    """How strongly the softmax passes gradients back to the scores (`softmax_gradient_norm`)
    against ``d_k``, with and without the ``1 / sqrt(d_k)`` scaling; log scale."""
    d_ks = [checks.positive_int("d_ks", d) for d in d_ks]
    unscaled = [softmax_gradient_norm(d, False, num_keys, samples, seed) for d in d_ks]
    scaled = [softmax_gradient_norm(d, True, num_keys, samples, seed) for d in d_ks]
    with mpl.rc_context(STYLE):
        figure, ax = _figure()
        ax.plot(d_ks, unscaled, "o-", color=PALETTE[3], label="softmax(q · k)")
        ax.plot(d_ks, scaled, "o-", color=PALETTE[0], label="softmax(q · k / sqrt(d_k))")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("d_k (size of queries and keys)")
        ax.set_ylabel("‖d weights / d scores‖ (mean)")
        ax.set_title(f"gradient through the softmax, {num_keys} keys")
        ax.legend()
    return figure


def draw_alignment(
    weights: torch.Tensor | np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """An alignment heatmap: ``weights`` ``(target_len, source_len)``, one row per target
    (query) token, one column per source (key) token, as in Bahdanau et al.'s figures.

    Draws on ``ax`` if given (returning its figure), else on a new figure.
    """
    matrix = _as_array(weights, "weights", 2)
    rows, cols = matrix.shape
    if len(source_tokens) != cols or len(target_tokens) != rows:
        raise ValueError(
            f"source_tokens, target_tokens: expected {cols} and {rows} tokens for weights "
            f"of shape (target, source) {matrix.shape}, got {len(source_tokens)} and "
            f"{len(target_tokens)}"
        )
    with mpl.rc_context(STYLE):
        if ax is None:
            _, ax = _figure((max(3.5, 0.45 * cols + 2.0), max(3.0, 0.4 * rows + 1.5)))
        heatmap(matrix, list(source_tokens), list(target_tokens), ax=ax, title=title)
        ax.set_xlabel("source (keys)")
        ax.set_ylabel("target (queries)")
    return ax.figure


def draw_heads(
    weights: torch.Tensor | np.ndarray,
    tokens: Sequence[str],
    query_tokens: Sequence[str] | None = None,
    columns: int = 4,
) -> Figure:
    """A grid of heatmaps, one per head: ``weights`` ``(heads, q_len, k_len)`` (or
    ``(1, heads, q_len, k_len)``, one example of `MultiHeadAttention`'s weights).

    ``tokens`` label the keys, ``query_tokens`` (default ``tokens``, self-attention) the
    queries. All heads share one colour scale, 0 to 1.
    """
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().double().numpy()
    array = np.asarray(weights, dtype=float)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(
            f"weights: expected (heads, q_len, k_len) or (1, heads, q_len, k_len), got shape "
            f"{tuple(np.shape(weights))}"
        )
    heads, q_len, k_len = array.shape
    query_tokens = tokens if query_tokens is None else query_tokens
    if len(tokens) != k_len or len(query_tokens) != q_len:
        raise ValueError(
            f"tokens, query_tokens: expected {k_len} and {q_len} tokens for weights of shape "
            f"{array.shape}, got {len(tokens)} and {len(query_tokens)}"
        )
    columns = min(columns, heads)
    rows = math.ceil(heads / columns)
    side = max(2.2, 0.3 * max(q_len, k_len) + 1.2)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(side * columns + 0.8, side * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False)
        for head, ax in enumerate(axes.flat):
            if head >= heads:
                ax.set_axis_off()
                continue
            image = ax.imshow(array[head], vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
            ax.grid(False)
            ax.set_title(f"head {head}")
            ax.set_xticks(range(k_len), labels=list(tokens), rotation=90, fontsize=8)
            ax.set_yticks(range(q_len), labels=list(query_tokens), fontsize=8)
        figure.colorbar(image, ax=axes, fraction=0.03, label="attention weight")
    return figure


def plot_accuracy_by_length(
    results: Mapping[str, Mapping[int, tuple[float, int]]],
    max_train_len: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per model: exact-match accuracy against source length (`accuracy_by_length`
    results by model name), with the longest training source marked."""
    ax = new_axes(ax)
    for name, by_length in results.items():
        lengths = sorted(by_length)
        ax.plot(lengths, [100 * by_length[n][0] for n in lengths], marker=".", label=name)
    if max_train_len is not None:
        ax.axvline(max_train_len + 0.5, color="#777777", linestyle="--", linewidth=1)
        ax.text(max_train_len + 0.7, 3, "longer than\nin training", fontsize=9, color="#555555")
    ax.set(xlabel="source length (characters)", ylabel="exact match (%)", ylim=(0, 102))
    ax.legend(loc="lower left")
    return ax


def plot_attention(
    weights: torch.Tensor, source: str, prediction: str, ax: Axes | None = None
) -> Axes:
    """The attention weights of one example ``(out_len, in_len)`` (a row of
    `Decoded.attention`) as a heatmap: output characters down, source characters across."""
    rows = [*prediction, "</s>"][: weights.shape[0]]
    return heatmap(weights[: len(rows), : len(source)], list(source), rows, ax=ax)
