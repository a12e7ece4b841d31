"""The few figures every chapter shares: training curves, labelled heatmaps, embedding maps.

Used in: ``notebooks/00_getting_started.ipynb`` and every later chapter.

All figures use one style (`STYLE`): a white background with dark text, so they read
the same on the book's site, in a light notebook and in a dark-mode notebook, and a
colour cycle that colour-blind readers can tell apart (Okabe and Ito's palette).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

__all__ = [
    "PALETTE",
    "STYLE",
    "as_array",
    "embedding_scatter",
    "heatmap",
    "new_axes",
    "project_2d",
    "smooth",
    "training_curves",
    "use_style",
]

#: Okabe–Ito colours, safe for the common kinds of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#222222",
    "text.color": "#222222",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "font.size": 11,
    "axes.titlesize": 12,
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's figure style to every figure drawn afterwards."""
    mpl.rcParams.update(STYLE)


def new_axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    """``ax`` itself, or new axes in the book's style when ``ax`` is None."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    with mpl.rc_context(STYLE):
        _, ax = plt.subplots(figsize=figsize)
    return ax


def as_array(values, name: str, ndim: int) -> np.ndarray:
    """``values`` (tensor, array or nested lists) as a float array with ``ndim`` dimensions."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: expected numbers, got {type(values).__name__}") from error
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(array.shape)}")
    return array


def smooth(values: Sequence[float], weight: float = 0.9) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard draws noisy curves).

    ``smoothed[t] = (weight * m[t-1] + (1 - weight) * values[t]) / (1 - weight ** (t + 1))``.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"weight: expected a number in [0, 1), got {weight!r}")
    values = as_array(values, "values", 1)
    smoothed = np.empty_like(values)
    mean = 0.0
    for t, value in enumerate(values):
        mean = weight * mean + (1 - weight) * value
        smoothed[t] = mean / (1 - weight ** (t + 1))
    return smoothed


def training_curves(history, ax: Axes | None = None, log_scale: bool = False) -> Axes:
    """Training loss per step (raw and smoothed) and, if recorded, validation loss per epoch.

    Validation points sit at the step where their epoch ended.
    """
    if not hasattr(history, "step_loss") or not hasattr(history, "epochs"):
        raise TypeError(
            "history: expected a lessons.core.train.History (with step_loss and epochs), "
            f"got {type(history).__name__}"
        )
    if not history.step_loss:
        raise ValueError("history: it has no recorded steps; train first")
    ax = new_axes(ax)
    steps = np.arange(1, len(history.step_loss) + 1)
    ax.plot(steps, history.step_loss, color=PALETTE[0], alpha=0.3, linewidth=1)
    ax.plot(steps, smooth(history.step_loss), color=PALETTE[0], label="training loss (smoothed)")
    val = [(epoch["epoch"], epoch["val_loss"]) for epoch in history.epochs if "val_loss" in epoch]
    if val:
        steps_per_epoch = len(history.step_loss) / len(history.epochs)
        ends = [round(epoch * steps_per_epoch) for epoch, _ in val]
        ax.plot(ends, [loss for _, loss in val], "o-", color=PALETTE[3], label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if log_scale:
        ax.set_yscale("log")
    ax.legend()
    return ax


def heatmap(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool = False,
    cmap: str = "viridis",
) -> Axes:
    """Draw a matrix, e.g. attention weights of shape ``(queries, keys)``, with token labels.

    Rows are labelled by ``y_labels`` (one per row), columns by ``x_labels`` (one per column).
    ``annotate=True`` writes each value in its cell (for small matrices).
    """
    matrix = as_array(weights, "weights", 2)
    rows, cols = matrix.shape
    for name, labels, expected in (("x_labels", x_labels, cols), ("y_labels", y_labels, rows)):
        if labels is not None and len(labels) != expected:
            raise ValueError(
                f"{name}: expected {expected} labels for weights of shape {matrix.shape}, "
                f"got {len(labels)}"
            )
    ax = new_axes(ax, figsize=(max(3.0, 0.45 * cols + 1.5), max(2.5, 0.4 * rows + 1.0)))
    image = ax.imshow(matrix, cmap=cmap, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.grid(False)
    if x_labels is not None:
        ax.set_xticks(range(cols), labels=list(x_labels), rotation=60, ha="right")
    if y_labels is not None:
        ax.set_yticks(range(rows), labels=list(y_labels))
    if annotate:
        middle = (np.nanmax(matrix) + np.nanmin(matrix)) / 2
        for i in range(rows):
            for j in range(cols):
                color = "black" if matrix[i, j] > middle else "white"
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color=color)
    if title:
        ax.set_title(title)
    return ax


def project_2d(vectors) -> np.ndarray:
    """Project ``(n, d)`` vectors onto their first two principal components: ``(n, 2)``."""
    matrix = as_array(vectors, "vectors", 2)
    if matrix.shape[0] < 2:
        raise ValueError(f"vectors: expected at least 2 rows to project, got shape {matrix.shape}")
    centred = matrix - matrix.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    if projected.shape[1] < 2:  # one-dimensional input: pad with zeros
        projected = np.hstack([projected, np.zeros((projected.shape[0], 1))])
    return projected


def embedding_scatter(
    vectors,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Scatter ``(n, d)`` vectors in 2-D (PCA, `project_2d`) with a text label per point.

    ``groups`` (one name per point) colours the points and adds a legend, e.g. to show
    countries and their capitals as two groups.
    """
    points = project_2d(vectors)
    if len(labels) != len(points):
        raise ValueError(
            f"labels: expected {len(points)} labels (one per vector), got {len(labels)}"
        )
    if groups is not None and len(groups) != len(points):
        raise ValueError(f"groups: expected {len(points)} group names, got {len(groups)}")
    ax = new_axes(ax, figsize=(6.4, 5.0))
    group_names = list(dict.fromkeys(groups)) if groups is not None else [None]
    for index, group in enumerate(group_names):
        chosen = [i for i in range(len(points)) if groups is None or groups[i] == group]
        ax.scatter(
            points[chosen, 0], points[chosen, 1], color=PALETTE[index % len(PALETTE)], label=group
        )
    for (x, y), label in zip(points, labels, strict=True):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=10)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    if groups is not None:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax
