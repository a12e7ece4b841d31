"""Exercises and quiz of the practice notebook: softmax and cosine similarity.

Each solution is the taught function of `lessons.basics` itself.
"""

from __future__ import annotations

import torch

from lessons.basics import cosine_similarity, softmax
from lessons.exercises import quiz
from lessons.exercises.framework import Attempt, Case, Exercise, Hint, register

# --------------------------------------------------------------------------------------
# Exercise: basics.softmax
# --------------------------------------------------------------------------------------


def _softmax_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("random 2x5, over the last dim", (torch.randn(2, 5, generator=g),)),
        Case("3-D input, over dim=1", (torch.randn(2, 3, 4, generator=g),), {"dim": 1}),
        Case("over dim=0", (torch.randn(3, 2, generator=g),), {"dim": 0}),
        Case("batch of one, odd length", (torch.randn(1, 7, generator=g),)),
        Case("large values (around 1000)", (torch.tensor([[1000.0, 999.0, 998.0, 0.0]]),)),
        Case("large negative values", (torch.tensor([[-800.0, -801.0, -1000.0]]),)),
        Case("float64", (torch.randn(2, 3, generator=g, dtype=torch.float64),)),
    ]


def _sums_to_one_elsewhere(attempt: Attempt) -> bool:
    """The output is a distribution, but along another dim than asked."""
    got, case = attempt.got, attempt.case
    dim = case.kwargs.get("dim", -1) % got.dim()
    return any(
        torch.allclose(got.sum(d), torch.ones(()), atol=1e-4) for d in range(got.dim()) if d != dim
    )


def _has_nan(attempt: Attempt) -> bool:
    return bool(torch.isnan(attempt.got).any() or torch.isinf(attempt.got).any())


def _naive_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return x.exp() / x.exp().sum(dim=dim, keepdim=True)


def _softmax_wrong_axis(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=0, keepdim=True)


def _softmax_in_place(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    x -= x.amax(dim=dim, keepdim=True)
    return x.exp() / x.exp().sum(dim=dim, keepdim=True)


def _softmax_without_keepdim(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=dim)


register(
    Exercise(
        id="basics.softmax",
        chapter="basics",
        prompt=(
            "Write `softmax(x, dim=-1)`: exponentiate `x` and normalise along `dim`, so "
            "that every slice along `dim` is a probability distribution. It must stay "
            "exact for large inputs such as 1000 (where `exp` overflows), keep the shape "
            "and dtype of `x`, and leave `x` unchanged. Use torch operations, not "
            "`torch.softmax`."
        ),
        signature="def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor",
        solution=softmax,
        cases=_softmax_cases,
        hints=(
            Hint(
                "Divide `x.exp()` by its sum along `dim`. Keep that dimension "
                "(`keepdim=True`) so that the division broadcasts slice by slice.",
                fits=lambda a: a.problem in ("exception", "shape"),
            ),
            Hint(
                "Sum along `dim`, the argument, not along a fixed axis: every slice along "
                "`dim` must add up to 1.",
                fits=_sums_to_one_elsewhere,
            ),
            Hint(
                "`exp(1000)` overflows to inf, and inf / inf is NaN. Subtract the maximum "
                "along `dim` first: softmax(x) = softmax(x - max(x)), and the largest "
                "exponent becomes exp(0) = 1.",
                fits=_has_nan,
            ),
            Hint(
                "Do not change `x` in place (`x -= m`): the caller still needs it. "
                "`x - m` makes a new tensor.",
                fits=lambda a: a.problem == "modified",
            ),
        ),
        wrong_answers=(
            _naive_softmax,
            _softmax_wrong_axis,
            _softmax_in_place,
            _softmax_without_keepdim,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: basics.cosine_similarity
# --------------------------------------------------------------------------------------


def _cosine_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def pair(*shape: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)

    return [
        Case("random 4x8 pairs", pair(4, 8)),
        Case(
            "lengths far from 1",
            (30 * torch.randn(3, 5, generator=g), torch.rand(3, 5, generator=g)),
        ),
        Case("batch of one, odd length", pair(1, 7)),
        Case("over dim=0", pair(6, 2), {"dim": 0}),
        Case("a zero vector", (torch.zeros(2, 3), torch.randn(2, 3, generator=g))),
    ]


def _scale_mistake(attempt: Attempt) -> bool:
    """Values off by a factor: some length was not divided out."""
    return attempt.problem == "values" and not torch.isnan(attempt.got).any()


def _cosine_dot_only(
    a: torch.Tensor, b: torch.Tensor, dim: int = -1, eps: float = 1e-8
) -> torch.Tensor:
    return (a * b).sum(dim=dim)


def _cosine_one_side(
    a: torch.Tensor, b: torch.Tensor, dim: int = -1, eps: float = 1e-8
) -> torch.Tensor:
    return (a * b).sum(dim=dim) / a.norm(dim=dim).clamp_min(eps)


def _cosine_no_eps(
    a: torch.Tensor, b: torch.Tensor, dim: int = -1, eps: float = 1e-8
) -> torch.Tensor:
    return (a * b).sum(dim=dim) / (a.norm(dim=dim) * b.norm(dim=dim))


register(
    Exercise(
        id="basics.cosine_similarity",
        chapter="basics",
        prompt=(
            "Write `cosine_similarity(a, b, dim=-1, eps=1e-8)`: the cosine of the angle "
            "between the vectors along `dim`, a number in [-1, 1] that does not change "
            "when either vector is scaled. Clamp each length to at least `eps`, so that a "
            "zero vector gives 0 rather than NaN."
        ),
        signature=(
            "def cosine_similarity(a: torch.Tensor, b: torch.Tensor, dim: int = -1, "
            "eps: float = 1e-8) -> torch.Tensor"
        ),
        solution=cosine_similarity,
        cases=_cosine_cases,
        hints=(
            Hint(
                "Cosine similarity is the dot product divided by both lengths: "
                "(a · b) / (|a| |b|). Scaling a or b must not change the result.",
                fits=_scale_mistake,
            ),
            Hint(
                "Reduce over `dim` only: the result has the shape of the inputs without "
                "that dimension.",
                fits=lambda a: a.problem in ("shape", "exception"),
            ),
            Hint(
                "A zero vector has length 0 and 0 / 0 is NaN: clamp each length with "
                "`.clamp_min(eps)` before dividing.",
                fits=_has_nan,
            ),
        ),
        wrong_answers=(_cosine_dot_only, _cosine_one_side, _cosine_no_eps),
    )
)


# --------------------------------------------------------------------------------------
# Quiz of the practice notebook
# --------------------------------------------------------------------------------------

quiz.register(
    "basics",
    [
        {
            "question": "Adding the same constant c to every score, what happens to softmax?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Nothing: softmax(x + c) = softmax(x)",
                    "correct": True,
                    "feedback": "Right: every exponential is multiplied by exp(c), and the "
                    "normalisation divides it out. That is why subtracting the maximum is safe.",
                },
                {
                    "answer": "Every probability grows",
                    "correct": False,
                    "feedback": "No: the probabilities always sum to 1, so they cannot all "
                    "grow. The factor exp(c) cancels in the division.",
                },
                {
                    "answer": "The largest probability grows, the others shrink",
                    "correct": False,
                    "feedback": "That is what dividing by a temperature below 1 does. "
                    "Adding a constant changes nothing: exp(c) cancels.",
                },
            ],
        },
        {
            "question": "Scores [2, 0] at temperature 1: what probability does softmax give "
            "the first score? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.881,
                    "correct": True,
                    "feedback": "Right: e² / (e² + e⁰) = 7.389 / 8.389 ≈ 0.881.",
                },
                {
                    "type": "value",
                    "value": 1,
                    "correct": False,
                    "feedback": "Softmax never gives exactly 1 to one of two finite scores: "
                    "the other score keeps e⁰ = 1 in the denominator.",
                },
                {
                    "type": "range",
                    "range": [0, 0.5],
                    "correct": False,
                    "feedback": "The first score is the larger one, so it gets more than half.",
                },
                {
                    "type": "default",
                    "feedback": "Compute e² / (e² + e⁰), with e² ≈ 7.389.",
                },
            ],
        },
    ],
)
