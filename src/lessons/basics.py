"""Foundations used throughout the book: a stable softmax and cosine similarity.

Used in: notebooks/00_practice.ipynb, where the reader writes both as exercises
(`lessons.exercises.basics`) and explores the softmax temperature
(`lessons.figures.basics`).
"""

from __future__ import annotations

import torch

__all__ = ["cosine_similarity", "softmax"]


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along ``dim``, stable for large inputs.

    softmax(x) = softmax(x - c) for any c; subtracting the maximum makes the largest
    exponent exp(0) = 1, so nothing overflows.
    """
    shifted = x - x.amax(dim=dim, keepdim=True)
    exponentials = shifted.exp()
    return exponentials / exponentials.sum(dim=dim, keepdim=True)


def cosine_similarity(
    a: torch.Tensor, b: torch.Tensor, dim: int = -1, eps: float = 1e-8
) -> torch.Tensor:
    """Cosine of the angle between ``a`` and ``b`` along ``dim``.

    Each norm is clamped to at least ``eps``, so a zero vector gives 0, not NaN.
    """
    dot = (a * b).sum(dim=dim)
    return dot / (a.norm(dim=dim).clamp_min(eps) * b.norm(dim=dim).clamp_min(eps))
