"""Figures of the practice notebook: the softmax at different temperatures.

Used in: notebooks/00_practice.ipynb (the temperature explorer).
"""

from __future__ import annotations

import torch
from matplotlib.axes import Axes

from lessons.basics import softmax

__all__ = ["draw_softmax_temperature"]


def draw_softmax_temperature(
    ax: Axes, temperature: float = 1.0, scores: str = "2, 1, 0.5, 0, -1"
) -> None:
    """Bar chart of softmax(scores / temperature): the explorer of the practice notebook."""
    values = torch.tensor([float(s) for s in scores.split(",")])
    probabilities = softmax(values / temperature)
    labels = [f"{v:g}" for v in values.tolist()]
    ax.bar(labels, probabilities.tolist(), color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_xlabel("score")
    ax.set_ylabel("probability")
    ax.set_title(f"softmax(scores / T), T = {temperature:.2f}")
