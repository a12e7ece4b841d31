"""The figures of the attention chapter, and the measurements behind them.

Used in: ``notebooks/03_attention.ipynb``, in the chapter's order: accuracy against
source length (sections 1, 2 and 6), one decoder step and the alignments (section 2),
attention as a lookup and kernel regression (section 3), the variance of the scores and
the gradients that reach the queries (section 4), splitting and merging heads
(section 5).

Each ``draw_*`` function returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`), not registered with pyplot, so a notebook shows one exactly
when a cell returns it; `draw_gradient_histogram` draws on a given ``ax`` instead, for an
explorer. Every random number comes from a seeded generator: the same call draws the
same figure. The numbers behind the figures are functions of their own
(`dot_product_variance`, `attention_gradients`, `additive_score_variance`), so tests
and readers can check them::

    dot_product_variance(64)                       # ≈ 64: q · k grows with d_k ...
    dot_product_variance(64, scaled=True)          # ≈ 1: ... unless divided by sqrt(d_k)
    attention_gradients(1024, exponent=0).query    # ‖dL/dq‖ of 2,000 random queries
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from lessons.attention import AdditiveScore, kernel_regression
from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE, as_array, heatmap, new_axes

__all__ = [
    "DEFAULT_D_KS",
    "GradientNorms",
    "SCALINGS",
    "additive_score_variance",
    "attention_gradients",
    "dot_product_variance",
    "draw_alignment",
    "draw_decoder_step",
    "draw_dot_product_variance",
    "draw_gradient_distribution",
    "draw_gradient_histogram",
    "draw_kernel_regression",
    "draw_qkv_lookup",
    "draw_split_merge_heads",
    "plot_accuracy_by_length",
]

#: The key sizes the figures sweep: 1, 4, 16, ..., 1024.
DEFAULT_D_KS = (1, 4, 16, 64, 256, 1024)

#: The scalings the gradient measurements compare: the scores are ``q · k / d_k ** exponent``.
SCALINGS: dict[str, float] = {"q · k": 0.0, "q · k / √d_k": 0.5, "q · k / d_k": 1.0}
_SCALING_COLOURS = {0.0: PALETTE[3], 0.5: PALETTE[0], 1.0: PALETTE[2]}


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
    relatively. Used in section 4.
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


class GradientNorms(NamedTuple):
    """What `attention_gradients` measures, one entry per sample, each ``(samples,)``."""

    #: ``‖dL/dq‖``: the gradient that reaches the query (and, times ``‖x‖``, ``W^Q``).
    query: torch.Tensor
    #: ``‖dL/dK‖``: the gradient that reaches the keys (Frobenius norm over all keys).
    keys: torch.Tensor
    #: The largest attention weight.
    largest_weight: torch.Tensor
    #: The largest score minus the second largest, after scaling.
    top_gap: torch.Tensor


_CHUNK = 250  # samples per autograd pass: bounds the memory at d_k = 1024


def attention_gradients(
    d_k: int, exponent: float = 0.5, num_keys: int = 16, samples: int = 2_000, seed: int = 0
) -> GradientNorms:
    """The gradients that flow back through one attention softmax, sample by sample.

    Each sample draws a query ``q`` ``(d_k,)`` and ``num_keys`` keys with independent
    standard normal entries, scores them as ``q · k_j / d_k ** exponent`` (0: unscaled,
    0.5: the Transformer's ``sqrt(d_k)``, 1: divided by ``d_k``), takes the softmax
    ``p``, and backpropagates the loss ``L = sum_j g_j p_j`` with a standard normal
    upstream gradient ``g`` on the weights. Autograd gives ``dL/dq`` and ``dL/dK``; since
    ``q = x W^Q``, the gradient of ``W^Q`` is ``x^T dL/dq``, the same norms times
    ``‖x‖``. The same seed gives the same draws for every ``exponent``, so scalings are
    compared on the same queries and keys. Draws in float32, arithmetic in float64, in
    chunks of 250 samples; results are cached. Used in section 4.
    """
    checks.positive_int("d_k", d_k)
    exponent = checks.number("exponent", exponent, low=0.0)
    checks.positive_int("num_keys", num_keys, minimum=2)
    checks.positive_int("samples", samples)
    measured = _attention_gradients(d_k, exponent, num_keys, samples, seed)
    return GradientNorms(*(column.clone() for column in measured))


@functools.lru_cache(maxsize=64)
def _attention_gradients(
    d_k: int, exponent: float, num_keys: int, samples: int, seed: int
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, samples, _CHUNK):
        n = min(_CHUNK, samples - start)
        q = torch.randn(n, 1, d_k, generator=g).double().requires_grad_()
        k = torch.randn(n, num_keys, d_k, generator=g).double().requires_grad_()
        upstream = torch.randn(n, 1, num_keys, generator=g).double()
        scores = q @ k.transpose(1, 2) / d_k**exponent  # (n, 1, num_keys)
        weights = torch.softmax(scores, dim=-1)
        q_grad, k_grad = torch.autograd.grad((weights * upstream).sum(), (q, k))
        top = scores.detach().topk(2, dim=-1).values[:, 0]  # (n, 2)
        parts.append(
            (
                q_grad.norm(dim=(1, 2)),
                k_grad.norm(dim=(1, 2)),
                weights.detach().amax(dim=(1, 2)),
                top[:, 0] - top[:, 1],
            )
        )
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def additive_score_variance(
    d_k: int, hidden_dim: int = 64, samples: int = 4_000, seed: int = 0
) -> float:
    """The variance of `lessons.attention.AdditiveScore` at initialisation, for queries
    and keys ``(d_k,)`` with standard normal entries: it does not grow with ``d_k``.

    The module is built with PyTorch's default initialisation under ``seed`` (without
    touching the global random state) and scores ``samples`` random pairs. Used in
    section 4.
    """
    checks.positive_int("d_k", d_k)
    checks.positive_int("hidden_dim", hidden_dim)
    checks.positive_int("samples", samples, minimum=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        score = AdditiveScore(d_k, d_k, hidden_dim).double()
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(samples, 1, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(samples, 1, d_k, generator=g, dtype=torch.float64)
    with torch.no_grad():
        return float(score(q, k).var())


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def plot_accuracy_by_length(
    results: Mapping[str, Mapping[int | float, tuple[float, int]]],
    max_train_len: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per model: exact-match accuracy against source length (`accuracy_by_length`
    results by model name), with the longest training source marked.

    The lengths beyond training are shaded and labelled in a band above 100%, where no
    line can go, so that neither the lines nor the legend (lower left) hide the label.
    Used in sections 1, 2 and 6.
    """
    ax = new_axes(ax)
    for name, by_length in results.items():
        lengths = sorted(by_length)
        ax.plot(lengths, [100 * by_length[n][0] for n in lengths], marker=".", label=name)
    if max_train_len is not None:
        edge = max_train_len + 0.5
        low, high = ax.get_xlim()
        ax.axvline(edge, color="#777777", linestyle="--", linewidth=1)
        ax.axvspan(edge, max(edge, high), color="#777777", alpha=0.08, linewidth=0)
        ax.set_xlim(low, max(edge, high))
        ax.text(edge, 106, "  longer than in training →", fontsize=9, color="#444444", va="center")
    ax.set(xlabel="source length (characters)", ylabel="exact match (%)", ylim=(0, 112))
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="lower left")
    return ax


def draw_decoder_step(
    source_tokens: Sequence[str],
    states: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray,
    written: str,
) -> Figure:
    """One step of an attention decoder, from top to bottom: the encoder states ``h_j``
    ``(source_len, state_dim)`` (one column per source token), the scores ``e_ij``
    ``(source_len,)`` of the decoder's state against each of them, the weights
    ``α_ij = softmax(e_i)`` ``(source_len,)``, and the context ``c_i = sum_j α_ij h_j``
    ``(state_dim,)``, computed here from ``weights`` and ``states``. ``written`` is the
    output written so far (it labels the step). Used in section 2.
    """
    states = as_array(states, "states", 2)
    scores = as_array(scores, "scores", 1)
    weights = as_array(weights, "weights", 1)
    n, state_dim = states.shape
    if not len(source_tokens) == len(scores) == len(weights) == n:
        raise ValueError(
            f"source_tokens, scores, weights: expected {n} each (one per encoder state), got "
            f"{len(source_tokens)}, {len(scores)} and {len(weights)}"
        )
    context = weights @ states
    limit = max(np.abs(states).max(), np.abs(context).max())
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(max(7.0, 0.2 * n + 2.5), 8.0), layout="constrained")
        top, middle, bottom, last = figure.subplots(
            4, 1, gridspec_kw={"height_ratios": [3.0, 1.6, 1.6, 0.9]}
        )
        image = top.imshow(states.T, aspect="auto", cmap="PuOr", vmin=-limit, vmax=limit)
        top.grid(False)
        top.set_title(f"1. encoder states h_j: {n} columns of {state_dim} numbers", loc="left")
        top.set_ylabel("feature")
        positions = np.arange(n)
        for ax in (top, middle, bottom):
            ax.set_xlim(-0.5, n - 0.5)
            ax.set_xticks(positions, labels=list(source_tokens), fontsize=8)
        middle.bar(positions, scores, color=PALETTE[1])
        middle.axhline(0, color="#555555", linewidth=0.8)
        middle.set_title(
            f"2. scores e_ij = score(s_i-1, h_j), with the decoder's state after writing "
            f"{written!r}",
            loc="left",
        )
        middle.set_ylabel("score")
        bottom.bar(positions, weights, color=PALETTE[0])
        bottom.set_ylim(0, 1)
        bottom.set_title(
            "3. weights α_ij = softmax over j of the scores (they sum to 1)", loc="left"
        )
        bottom.set_ylabel("weight")
        last.imshow(context[None, :], aspect="auto", cmap="PuOr", vmin=-limit, vmax=limit)
        last.grid(False)
        last.set_yticks([])
        last.set_xlabel("feature")
        last.set_title(
            "4. context c_i = Σ_j α_ij h_j: one vector, the decoder's input for the next character",
            loc="left",
        )
        figure.colorbar(image, ax=[top, last], fraction=0.02, label="value")
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

    Draws on ``ax`` if given (returning its figure), else on a new figure. Used in
    sections 2 and 5 and in the alignment explorer of section 7.
    """
    matrix = as_array(weights, "weights", 2)
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


def draw_qkv_lookup(
    scores: Sequence[float] = (2.0, 0.6, -0.4, -1.2),
    values: Sequence[float] = (10.0, 20.0, 30.0, 40.0),
) -> Figure:
    """Attention as a lookup, beside a dictionary. Left: a dictionary compares the query
    with every key, and exactly one matches; its value is the answer. Right: attention
    scores the query against every key, turns the ``scores`` into weights with a
    softmax, and answers with the weighted average of the ``values``; line widths are
    the weights. Used in section 3.
    """
    scores_array = as_array(scores, "scores", 1)
    values_array = as_array(values, "values", 1)
    if len(scores_array) != len(values_array) or len(scores_array) < 2:
        raise ValueError(
            f"scores and values: expected one score per value, at least 2, got "
            f"{len(scores_array)} and {len(values_array)}"
        )
    weights = torch.softmax(torch.from_numpy(scores_array), dim=0).numpy()
    n = len(values_array)
    rows = np.linspace(0.85, 0.15, n)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.2), layout="constrained")
        for ax, soft in zip(figure.subplots(1, 2), (False, True), strict=True):
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_axis_off()
            chosen = np.eye(n)[0] if not soft else weights
            query = "q" if soft else "'k₁'"
            _box(ax, 0.08, 0.5, f"query\n{query}", PALETTE[1])
            for j, (y, weight) in enumerate(zip(rows, chosen, strict=True)):
                key = f"k{_subscript(j + 1)}"
                _box(ax, 0.42, y, f"key {key}" if soft else f"key '{key}'", PALETTE[5])
                _box(ax, 0.68, y, f"value {values_array[j]:g}", PALETTE[2])
                width = 0.6 + 6 * weight
                style = "-" if weight > 0 else ":"
                ax.add_patch(
                    FancyArrowPatch(
                        (0.15, 0.5),
                        (0.35, y),
                        arrowstyle="-",
                        linewidth=width if weight > 0 else 1.0,
                        linestyle=style,
                        color="#444444" if weight > 0 else "#aaaaaa",
                    )
                )
                label = f"α = {weight:.2f}" if soft else ("match" if weight else "no match")
                ax.text(0.54, y, label, fontsize=9, ha="center", va="center")
                if weight > 0:
                    ax.add_patch(
                        FancyArrowPatch(
                            (0.75, y),
                            (0.85, 0.5),
                            arrowstyle="-|>",
                            mutation_scale=10,
                            linewidth=width,
                            color="#444444",
                        )
                    )
            answer = float(chosen @ values_array)
            text = f"Σ α_j v_j\n= {answer:.1f}" if soft else f"answer\n{answer:g}"
            _box(ax, 0.92, 0.5, text, PALETTE[4])
            title = (
                "attention: every key matches a little; the answer is the weighted average"
                if soft
                else "a dictionary: one key matches exactly; its value is the answer"
            )
            ax.set_title(title, fontsize=11)
    return figure


def _box(ax: Axes, x: float, y: float, text: str, colour: str) -> None:
    """A rounded box of ``text`` centred at ``(x, y)`` in axes coordinates."""
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=10,
        bbox={"boxstyle": "round,pad=0.4", "facecolor": colour, "alpha": 0.25, "edgecolor": colour},
    )


def _subscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def draw_kernel_regression(
    bandwidths: Sequence[float] = (0.1, 0.5, 2.0),
    query: float = 2.5,
    num_points: int = 40,
    seed: int = 0,
) -> Figure:
    """Nadaraya-Watson kernel regression (`lessons.attention.kernel_regression`) on
    ``num_points`` noisy samples of ``f(x) = sin(2x) + x / 2`` on [0, 5].

    Left: the samples (keys ``x_j``, values ``y_j``), ``f`` and the predictions for each
    bandwidth. Right: the weights of one ``query`` over the keys, one line per
    bandwidth: a distribution over the samples, as every row of attention weights is.
    Used in section 3.
    """
    bandwidths = [checks.number("bandwidths", b, positive=True) for b in bandwidths]
    checks.number("query", query)
    checks.positive_int("num_points", num_points, minimum=2)
    g = torch.Generator().manual_seed(seed)
    keys = torch.sort(5 * torch.rand(num_points, generator=g, dtype=torch.float64)).values
    values = torch.sin(2 * keys) + keys / 2 + 0.3 * torch.randn(num_points, generator=g)
    grid = torch.linspace(0, 5, 201, dtype=torch.float64)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.0), layout="constrained")
        left, right = figure.subplots(1, 2)
        left.plot(grid, torch.sin(2 * grid) + grid / 2, color="#888888", linestyle="--")
        left.lines[-1].set_label("f(x) = sin(2x) + x/2")
        left.scatter(keys, values, s=14, color="#333333", label="samples (x_j, y_j)", zorder=3)
        for colour, bandwidth in zip(PALETTE, bandwidths, strict=False):
            predictions, _ = kernel_regression(grid, keys, values, bandwidth)
            left.plot(grid, predictions, color=colour, label=f"bandwidth σ = {bandwidth:g}")
            _, weights = kernel_regression(
                torch.tensor([float(query)]).double(), keys, values, bandwidth
            )
            right.plot(
                keys, weights[0], "o-", markersize=3, color=colour, label=f"σ = {bandwidth:g}"
            )
        left.axvline(query, color="#777777", linewidth=0.8)
        left.set(xlabel="x (query, and the keys x_j)", ylabel="y", title="predictions")
        left.legend(fontsize=8, loc="upper left")
        right.axvline(query, color="#777777", linewidth=0.8)
        right.set(
            xlabel="key x_j",
            ylabel="weight α_j",
            title=f"the weights of the query x = {query:g} (they sum to 1)",
        )
        right.legend(fontsize=8)
    return figure


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


def draw_gradient_histogram(
    ax: Axes,
    d_k: int,
    num_keys: int = 16,
    samples: int = 2_000,
    seed: int = 0,
    scalings: Sequence[str] = tuple(SCALINGS),
) -> None:
    """Histograms of ``‖dL/dq‖`` (`attention_gradients`) at one ``d_k``, one per scaling
    of `SCALINGS`, on a log axis, with each median (solid line) and mean (dashed).
    Values below 1e-12 are counted in the first bin.

    ``ax`` comes first, so it is a draw function for `lessons.core.explorer`, e.g.
    ``interactive_figure(draw_gradient_histogram, d_k=[1, 16, 1024])``. Used in section 4
    and its explorer.
    """
    for name in scalings:
        checks.one_of("scalings", name, tuple(SCALINGS))
    bins = np.logspace(-12, 2, 57)
    for name in scalings:
        exponent = SCALINGS[name]
        norms = attention_gradients(d_k, exponent, num_keys, samples, seed).query.numpy()
        colour = _SCALING_COLOURS[exponent]
        ax.hist(
            np.clip(norms, bins[0], bins[-1]),
            bins=bins,
            histtype="step",
            color=colour,
            linewidth=1.6,
            label=name,
        )
        if (norms < bins[0]).any():
            clipped = (norms < bins[0]).mean()
            ax.annotate(
                f"{100 * clipped:.0f}% below 1e-12",
                (bins[0], (norms < bins[1]).sum()),
                xytext=(6, 4),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
        ax.axvline(np.median(norms), color=colour, linewidth=1.2)
        ax.axvline(norms.mean(), color=colour, linewidth=1.2, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("‖dL/dq‖, the gradient that reaches the query")
    ax.set_ylabel(f"queries (of {samples:,})")
    ax.set_title(f"d_k = {d_k}, {num_keys} keys: median (solid) and mean (dashed)")
    ax.legend(fontsize=9, loc="upper left")


def draw_gradient_distribution(
    d_ks: Sequence[int] = DEFAULT_D_KS,
    num_keys: int = 16,
    samples: int = 2_000,
    seed: int = 0,
) -> Figure:
    """The distribution of ``‖dL/dq‖`` (`attention_gradients`) against ``d_k``, unscaled
    and divided by ``sqrt(d_k)``.

    Left: for each scaling, the median (solid, dots), the band from the 10th to the 90th
    percentile, and the mean (dashed, crosses), on log axes. Right:
    `draw_gradient_histogram` at the largest ``d_k``. Used in section 4.
    """
    d_ks = [checks.positive_int("d_ks", d) for d in d_ks]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.3), layout="constrained")
        left, right = figure.subplots(1, 2)
        for name in ("q · k", "q · k / √d_k"):
            exponent = SCALINGS[name]
            colour = _SCALING_COLOURS[exponent]
            norms = [attention_gradients(d, exponent, num_keys, samples, seed).query for d in d_ks]
            low, median, high = ([float(n.quantile(q)) for n in norms] for q in (0.1, 0.5, 0.9))
            left.fill_between(d_ks, low, high, color=colour, alpha=0.15, linewidth=0)
            left.plot(d_ks, median, "o-", color=colour, label=f"{name}: median, 10–90% band")
            left.plot(
                d_ks, [float(n.mean()) for n in norms], "x--", color=colour, label=f"{name}: mean"
            )
        left.set_xscale("log", base=2)
        left.set_yscale("log")
        left.set_xlabel("d_k (size of queries and keys)")
        left.set_ylabel("‖dL/dq‖")
        left.set_title(f"the gradient that reaches the query, {samples:,} random queries")
        left.legend(fontsize=8, loc="lower left")
        draw_gradient_histogram(
            right, max(d_ks), num_keys, samples, seed, scalings=("q · k", "q · k / √d_k")
        )
    return figure


def draw_split_merge_heads(seq_len: int = 5, d_model: int = 16, num_heads: int = 4) -> Figure:
    """`split_heads` and `merge_heads` as pictures: a ``(seq_len, d_model)`` matrix whose
    columns are coloured by the head that gets them, cut into ``num_heads`` matrices
    ``(seq_len, d_head)`` (one attention each), and the heads' outputs put back side by
    side, ``(seq_len, d_model)``, for ``W^O`` to mix. One example of a batch. Used in
    section 5.
    """
    checks.positive_int("seq_len", seq_len)
    checks.positive_int("num_heads", num_heads)
    checks.positive_int("d_model", d_model)
    if d_model % num_heads:
        raise ValueError(f"d_model: expected a multiple of num_heads={num_heads}, got {d_model}")
    d_head = d_model // num_heads
    cell = 0.3
    gap = 0.35
    stack_height = num_heads * seq_len * cell + (num_heads - 1) * gap
    wide_y = (stack_height - seq_len * cell) / 2
    left_x, middle_x = 0.0, d_model * cell + 2.6
    right_x = middle_x + d_head * cell + 3.4
    with mpl.rc_context(STYLE):
        figure, ax = _figure((12.0, max(3.5, 0.55 * stack_height + 1.0)))
        ax.set_axis_off()
        ax.set_aspect("equal")

        def matrix(x: float, y: float, columns: Sequence[int]) -> None:
            for column, head in enumerate(columns):
                for row in range(seq_len):
                    ax.add_patch(
                        Rectangle(
                            (x + column * cell, y + (seq_len - 1 - row) * cell),
                            cell,
                            cell,
                            facecolor=PALETTE[head % len(PALETTE)],
                            alpha=0.55,
                            edgecolor="white",
                            linewidth=1.0,
                        )
                    )

        owners = [column // d_head for column in range(d_model)]
        matrix(left_x, wide_y, owners)
        matrix(right_x, wide_y, owners)
        for head in range(num_heads):
            y = stack_height - (head + 1) * seq_len * cell - head * gap
            matrix(middle_x, y, [head] * d_head)
            ax.text(
                middle_x + d_head * cell + 0.15,
                y + seq_len * cell / 2,
                f"head {head}",
                va="center",
                fontsize=9,
            )
        for head in range(num_heads):
            centre = left_x + (head + 0.5) * d_head * cell
            ax.text(
                centre,
                wide_y + seq_len * cell + 0.1,
                f"head {head}",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        top_label = wide_y - 0.25
        ax.text(
            left_x + d_model * cell / 2,
            top_label,
            f"Q = X W^Q\n(batch, seq, d_model) = (·, {seq_len}, {d_model})",
            ha="center",
            va="top",
            fontsize=9,
        )
        ax.text(
            middle_x + d_head * cell / 2,
            -0.25,
            f"(batch, heads, seq, d_head) = (·, {num_heads}, {seq_len}, {d_head}):\n"
            "each head attends on its own",
            ha="center",
            va="top",
            fontsize=9,
        )
        ax.text(
            right_x + d_model * cell / 2,
            top_label,
            f"merged head outputs (·, {seq_len}, {d_model});\nthen W^O mixes the heads",
            ha="center",
            va="top",
            fontsize=9,
        )
        middle_y = wide_y + seq_len * cell / 2
        for start, stop, label in (
            (left_x + d_model * cell + 0.15, middle_x - 0.15, "split_heads\nreshape, transpose"),
            (middle_x + d_head * cell + 1.0, right_x - 0.15, "merge_heads\ntranspose, reshape"),
        ):
            ax.add_patch(
                FancyArrowPatch(
                    (start, middle_y),
                    (stop, middle_y),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#444444",
                )
            )
            ax.text((start + stop) / 2, middle_y + 0.2, label, ha="center", va="bottom", fontsize=9)
        ax.set_xlim(-0.3, right_x + d_model * cell + 0.3)
        ax.set_ylim(-1.2, stack_height + 0.6)
    return figure
