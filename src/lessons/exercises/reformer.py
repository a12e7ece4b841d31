"""Exercises and quiz of chapter 6, the Reformer.

The solutions are written here as plain functions of tensors (and of sublayers called
like functions), so that a learner can write each in a few lines, and
tests/test_exercise_solutions.py proves each equal to the taught code on every case:

* `angular_hash`: `lessons.reformer.hash_vectors` for one head and one round;
* `sort_and_chunk`: the order of `lessons.reformer.sort_by_bucket`, cut into chunks;
* `look_one_back`: `lessons.reformer.look_adjacent` with one chunk before, none after;
* `reversible_forward` and `reversible_inverse`: `lessons.reformer.ReversibleBlock`'s
  `forward` and `inverse`;
* `chunked_feed_forward`: `lessons.reformer.ChunkedFeedForward`;
* `combine_rounds`: `lessons.reformer.combine_rounds`.

The sublayers of the cases are the chapter's own modules with seeded weights, wrapped
in `Sublayer`, which the checker can show and compare after a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lessons.exercises import quiz
from lessons.exercises.framework import Attempt, Case, Exercise, Hint, register
from lessons.exercises.sandbox import Opaque
from lessons.reformer import FeedForwardSublayer, SelfAttentionSublayer

__all__ = [
    "Sublayer",
    "TooManyPositions",
    "WrongFeatures",
    "angular_hash",
    "chunked_feed_forward",
    "combine_rounds",
    "look_one_back",
    "reversible_forward",
    "reversible_inverse",
    "sort_and_chunk",
]


def _close(got: object, expected: torch.Tensor) -> bool:
    """Whether a learner's result ``got`` matches ``expected`` (for hint predicates)."""
    return (
        isinstance(got, torch.Tensor)
        and got.shape == expected.shape
        and torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-5)
    )


def _is_mistake(attempt: Attempt, mistake: Callable[..., Any]) -> bool:
    """Whether the learner's result is what ``mistake`` returns on the case."""
    expected = mistake(*attempt.case.args, **attempt.case.kwargs)
    if isinstance(expected, tuple):
        return (
            isinstance(attempt.got, tuple | list)
            and len(attempt.got) == len(expected)
            and all(_close(got, want) for got, want in zip(attempt.got, expected, strict=True))
        )
    return _close(attempt.got, expected)


# --------------------------------------------------------------------------------------
# The sublayers that the cases hand to the learner's function
# --------------------------------------------------------------------------------------


def _positions(count: int) -> str:
    return f"{count} position" if count == 1 else f"{count} positions"


class TooManyPositions(ValueError):
    """A case's feed-forward layer was given more positions at once than it accepts.

    ``args`` are ``(shape, limit)``: the shape of the input it got and the most
    positions (dim 1) it takes in one call.
    """

    def __init__(self, shape: tuple[int, ...], limit: int) -> None:
        super().__init__(tuple(shape), limit)

    def __str__(self) -> str:
        shape, limit = self.args
        return (
            f"feed_forward got {shape[1]} positions at once, input shape {shape}; "
            f"it takes at most chunk_size = {_positions(limit)} (dim 1) per call"
        )


class WrongFeatures(ValueError):
    """A case's sublayer was given vectors of the wrong size (the last dim).

    ``args`` are ``(shape, d_model)``: the shape of the input it got and the size it needs.
    """

    def __init__(self, shape: tuple[int, ...], d_model: int) -> None:
        super().__init__(tuple(shape), d_model)

    def __str__(self) -> str:
        shape, d_model = self.args
        return (
            f"the sublayer got vectors of {shape[-1]} features, input shape {shape}; "
            f"each position needs all of its d_model = {d_model} features (the last dim)"
        )


class Sublayer:
    """One of the chapter's modules with fixed, seeded weights, called like a function.

    ``sublayer(x)`` maps ``(batch, seq, d_model)`` to the same shape, as F (attention)
    and G (feed-forward) of a reversible block do. ``max_positions``, when given, is the
    most positions one call accepts (`TooManyPositions` beyond it): the memory budget
    of the chunked feed-forward exercise. Dropout is off.

    The checker gets back an input it cannot send between processes as a stand-in
    (`Opaque`: its type and repr); a sublayer equals the stand-in made from it, so the
    check of unchanged inputs, which can compare only the stand-in, passes.
    Used in: notebooks/06_reformer.ipynb, exercises.
    """

    def __init__(
        self, name: str, module: nn.Module, d_model: int, max_positions: int | None = None
    ) -> None:
        self.name = name
        self.module = module.eval()
        self.d_model = d_model
        self.max_positions = max_positions

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise WrongFeatures(tuple(x.shape), self.d_model)
        if self.max_positions is not None and x.dim() >= 2 and x.shape[1] > self.max_positions:
            raise TooManyPositions(tuple(x.shape), self.max_positions)
        return self.module(x)

    def __repr__(self) -> str:
        limit = "" if self.max_positions is None else f", at most {_positions(self.max_positions)}"
        return f"{self.name}: {type(self.module).__name__}(d_model={self.d_model}{limit})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Opaque):
            return other == Opaque.of(self)
        if isinstance(other, Sublayer):
            return repr(other) == repr(self) and all(
                torch.equal(a, b)
                for a, b in zip(
                    self.module.state_dict().values(),
                    other.module.state_dict().values(),
                    strict=True,
                )
            )
        return NotImplemented

    __hash__ = object.__hash__


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with its weights drawn after ``torch.manual_seed(seed)``; the global
    generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _attention(d_model: int, num_heads: int, seed: int) -> Sublayer:
    """F: a `SelfAttentionSublayer` (layer norm, then multi-head self-attention)."""
    module = _seeded(seed, lambda: SelfAttentionSublayer(d_model, num_heads))
    return Sublayer("F", module, d_model)


def _feed_forward(
    d_model: int, seed: int, name: str = "G", max_positions: int | None = None
) -> Sublayer:
    """G: a `FeedForwardSublayer` (layer norm, then the position-wise feed-forward layer)."""
    module = _seeded(seed, lambda: FeedForwardSublayer(d_model, 2 * d_model))
    return Sublayer(name, module, d_model, max_positions)


# --------------------------------------------------------------------------------------
# Exercise: reformer.angular_hash
# --------------------------------------------------------------------------------------


def angular_hash(vectors: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The bucket of each vector under one random rotation: ``argmax([xR, -xR])``.

    ``vectors`` ``(n, d)``, ``rotation`` ``(d, num_buckets // 2)``; returns ``(n,)`` int64
    bucket ids in ``0 .. num_buckets - 1``: `lessons.reformer.hash_vectors` for one
    head and one round. Used in: notebooks/06_reformer.ipynb, exercises.
    """
    rotated = vectors @ rotation  # (n, num_buckets // 2)
    return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)


def _hash_cases() -> list[Case]:
    g = torch.Generator().manual_seed(60)

    def case(n: int, d: int, num_buckets: int, dtype: torch.dtype = torch.float32) -> tuple:
        vectors = torch.randn(n, d, generator=g, dtype=dtype)
        return vectors, torch.randn(d, num_buckets // 2, generator=g, dtype=dtype)

    v, w = torch.randn(2, 5, generator=g)
    opposite = torch.stack([v, -v, w, -w])
    return [
        Case("8 vectors in 4 dimensions, 4 buckets", case(8, 4, 4)),
        Case("2 buckets: the sign of one projection", case(6, 3, 2)),
        Case("16 vectors in 6 dimensions, 8 buckets", case(16, 6, 8)),
        Case(
            "two vectors and their opposites, 8 buckets",
            (opposite, torch.randn(5, 4, generator=g)),
        ),
        Case("float64, 32 buckets", case(10, 8, 32, torch.float64)),
        Case("one vector, 6 buckets", case(1, 4, 6)),
    ]


def _hash_positive_only(vectors, rotation):
    return (vectors @ rotation).argmax(dim=-1)


def _hash_negative_first(vectors, rotation):
    rotated = vectors @ rotation
    return torch.cat([-rotated, rotated], dim=-1).argmax(dim=-1)


def _hash_argmax_over_vectors(vectors, rotation):
    rotated = vectors @ rotation
    return torch.cat([rotated, -rotated], dim=-1).argmax(dim=0)


register(
    Exercise(
        id="reformer.angular_hash",
        chapter="reformer",
        prompt=(
            "Write `angular_hash(vectors, rotation)`: the Reformer's hash of each vector "
            "into one of `num_buckets` buckets. `vectors` is `(n, d)`, `rotation` a random "
            "`(d, num_buckets // 2)` matrix R. Project each vector, `xR`, and take "
            "`h(x) = argmax([xR, -xR])`: the index of the largest of the `num_buckets` "
            "numbers, the `num_buckets // 2` projections followed by their negatives. "
            "Return the `(n,)` int64 bucket ids."
        ),
        signature="def angular_hash(vectors, rotation) -> torch.Tensor",
        solution=angular_hash,
        cases=_hash_cases,
        hints=(
            Hint(
                "Two steps: `rotated = vectors @ rotation` is `(n, num_buckets // 2)`; then "
                "put the negatives beside it and take the index of the largest number in "
                "each row. The bucket names the direction, among the columns of R and their "
                "opposites, that points most like the vector."
            ),
            Hint(
                "Use both signs: `torch.cat([rotated, -rotated], dim=-1)` has "
                "`num_buckets` columns. With `xR` alone, half the buckets stay empty, and a "
                "vector and its opposite share a bucket, although they could not be less "
                "alike.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _hash_positive_only),
            ),
            Hint(
                "The order is `[xR, -xR]`: bucket `i` below `num_buckets // 2` is column `i` "
                "of R, bucket `i + num_buckets // 2` its opposite. The other order is as good "
                "a hash, but its ids differ from `hash_vectors`' and Hugging Face's, and "
                "the ids decide the order of the sort that follows.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _hash_negative_first),
            ),
            Hint(
                "One bucket per vector: the argmax runs over the last dim, the "
                "`num_buckets` candidates (`dim=-1`), and the result is `(n,)`.",
                fits=lambda a: a.problem == "shape",
            ),
            Hint(
                "Bucket ids are indices: `argmax` returns int64; keep it that way.",
                fits=lambda a: a.problem == "dtype",
            ),
        ),
        wrong_answers=(_hash_positive_only, _hash_negative_first, _hash_argmax_over_vectors),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: reformer.sort_and_chunk
# --------------------------------------------------------------------------------------


def sort_and_chunk(buckets: torch.Tensor, chunk_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions sorted by (bucket, position), then cut into chunks.

    ``buckets`` ``(n,)`` int64, ``n`` a multiple of ``chunk_length``. Returns ``order``
    ``(n,)``, the position that goes to each place of the sorted sequence (the ``order``
    of `lessons.reformer.sort_by_bucket`), and ``chunks``
    ``(n // chunk_length, chunk_length)``, the same positions one chunk per row.
    Used in: notebooks/06_reformer.ipynb, exercises.
    """
    order = torch.sort(buckets, stable=True).indices  # ties keep their positions' order
    return order, order.view(-1, chunk_length)


def _sort_cases() -> list[Case]:
    g = torch.Generator().manual_seed(61)

    def buckets(n: int, num_buckets: int) -> torch.Tensor:
        return torch.randint(num_buckets, (n,), generator=g)

    first, second = buckets(6, 4), buckets(6, 4)
    return [
        Case("8 positions, 4 buckets, chunks of 4", (buckets(8, 4), 4)),
        Case("16 positions, 8 buckets, chunks of 2", (buckets(16, 8), 2)),
        Case("already sorted", (torch.tensor([0, 0, 1, 2, 2, 3]), 2)),
        Case("one bucket: the positions keep their order", (torch.zeros(6, dtype=torch.long), 3)),
        Case(
            "two rounds of 6 positions, round 2's buckets offset by 4",
            (torch.cat([first, second + 4]), 4),
        ),
        Case("chunks of 1", (buckets(5, 2), 1)),
    ]


def _sort_ties_reversed(buckets, chunk_length):
    later_first = torch.arange(len(buckets) - 1, -1, -1)
    order = torch.sort(buckets * len(buckets) + later_first, stable=True).indices
    return order, order.view(-1, chunk_length)


def _sort_descending(buckets, chunk_length):
    order = torch.sort(buckets, descending=True, stable=True).indices
    return order, order.view(-1, chunk_length)


def _sort_inverse(buckets, chunk_length):
    undo = torch.argsort(torch.sort(buckets, stable=True).indices)
    return undo, undo.view(-1, chunk_length)


def _sort_unsorted(buckets, chunk_length):
    order = torch.arange(len(buckets))
    return order, order.view(-1, chunk_length)


def _sort_chunks_transposed(buckets, chunk_length):
    order = torch.sort(buckets, stable=True).indices
    return order, order.view(chunk_length, -1)


def _ties_reversed(attempt: Attempt) -> bool:
    """Buckets in order, but positions decreasing within a bucket."""
    return _is_mistake(attempt, _sort_ties_reversed)


register(
    Exercise(
        id="reformer.sort_and_chunk",
        chapter="reformer",
        prompt=(
            "Write `sort_and_chunk(buckets, chunk_length)`. `buckets` is `(n,)` int64, "
            "the bucket of each position 0 .. n - 1 (n a multiple of `chunk_length`). Sort "
            "the positions by bucket, and within a bucket by position. Return "
            "`(order, chunks)`: `order` `(n,)` int64, where `order[j]` is the position that "
            "goes to place `j` of the sorted sequence, and `chunks`, the same positions cut "
            "into `(n // chunk_length, chunk_length)`, one chunk per row."
        ),
        signature=(
            "def sort_and_chunk(buckets, chunk_length) -> tuple[torch.Tensor, torch.Tensor]"
        ),
        solution=sort_and_chunk,
        cases=_sort_cases,
        hints=(
            Hint(
                "`torch.sort(buckets, stable=True)` returns the sorted values and their "
                "`.indices`: the indices are `order`. `order.view(-1, chunk_length)` cuts "
                "it into chunks."
            ),
            Hint(
                "Within a bucket, keep the positions in increasing order: a stable sort "
                "(`stable=True`) leaves ties as they came. The causal mask and the look "
                "one chunk back rely on earlier positions coming first.",
                fits=lambda a: a.problem == "values" and _ties_reversed(a),
            ),
            Hint(
                "Sort the buckets in increasing order, bucket 0 first.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _sort_descending),
            ),
            Hint(
                "`order[j]` is the position that *goes to* place `j`. You returned where "
                "each position *went*, the inverse permutation (`sort_by_bucket`'s "
                "`undo`, which puts the outputs back in place afterwards).",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _sort_inverse),
            ),
            Hint(
                "Sort first: positions in their own order are what local attention "
                "chunks, not LSH attention. LSH gathers each bucket's positions together.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _sort_unsorted),
            ),
            Hint(
                "`chunks` has one row per chunk: `(n // chunk_length, chunk_length)`, "
                "`order.view(-1, chunk_length)`.",
                fits=lambda a: a.problem == "shape",
            ),
        ),
        wrong_answers=(
            _sort_ties_reversed,
            _sort_descending,
            _sort_inverse,
            _sort_unsorted,
            _sort_chunks_transposed,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: reformer.look_one_back
# --------------------------------------------------------------------------------------


def look_one_back(chunks: torch.Tensor) -> torch.Tensor:
    """Each chunk preceded by the chunk before it, the first by the last (it wraps).

    ``(n_chunks, c, d)`` -> ``(n_chunks, 2 c, d)``: `lessons.reformer.look_adjacent`
    with ``before=1, after=0``, on one head of one sequence.
    Used in: notebooks/06_reformer.ipynb, exercises.
    """
    previous = torch.roll(chunks, shifts=1, dims=0)  # row j holds chunk j - 1
    return torch.cat([previous, chunks], dim=1)


def _look_cases() -> list[Case]:
    g = torch.Generator().manual_seed(62)
    return [
        Case("4 chunks of 2 positions, d = 3", (torch.randn(4, 2, 3, generator=g),)),
        Case("2 chunks: each looks back at the other", (torch.randn(2, 3, 2, generator=g),)),
        Case("8 chunks of 1 position, d = 5", (torch.randn(8, 1, 5, generator=g),)),
        Case(
            "positions (int64): the tokens each chunk sees",
            (torch.arange(12).view(3, 4, 1),),
        ),
        Case("one chunk looks back at itself", (torch.randn(1, 4, 2, generator=g),)),
    ]


def _look_no_wrap_zeros(chunks):
    previous = torch.cat([torch.zeros_like(chunks[:1]), chunks[:-1]])
    return torch.cat([previous, chunks], dim=1)


def _look_no_wrap_self(chunks):
    previous = torch.cat([chunks[:1], chunks[:-1]])
    return torch.cat([previous, chunks], dim=1)


def _look_next(chunks):
    return torch.cat([torch.roll(chunks, shifts=-1, dims=0), chunks], dim=1)


def _look_back_after(chunks):
    return torch.cat([chunks, torch.roll(chunks, shifts=1, dims=0)], dim=1)


def _look_features(chunks):
    return torch.cat([torch.roll(chunks, shifts=1, dims=0), chunks], dim=-1)


def _first_chunk_only_wrong(attempt: Attempt) -> bool:
    """Every chunk right except the first: the wrap-around is missing."""
    got, expected = attempt.got, attempt.expected
    return bool(
        got.shape == expected.shape
        and torch.equal(got[1:], expected[1:])
        and not torch.equal(got[:1], expected[:1])
    )


register(
    Exercise(
        id="reformer.look_one_back",
        chapter="reformer",
        prompt=(
            "Write `look_one_back(chunks)`: the keys each chunk of LSH attention sees. "
            "`chunks` is `(n_chunks, c, d)`, chunk `j` in row `j`. Return "
            "`(n_chunks, 2 * c, d)`: row `j` holds chunk `j - 1`, then chunk `j` itself. "
            "The first chunk looks back at the last one (the indices wrap around), as "
            "`look_adjacent` of `lessons.reformer` does. Keep the dtype: the same function "
            "moves positions (int64) as well as vectors."
        ),
        signature="def look_one_back(chunks) -> torch.Tensor",
        solution=look_one_back,
        cases=_look_cases,
        hints=(
            Hint(
                "`torch.roll(chunks, shifts=1, dims=0)` moves every chunk one row down and "
                "the last one to the top: row `j` then holds chunk `j - 1`. Join it with "
                "`chunks` along the positions of a chunk, `dim=1`."
            ),
            Hint(
                "The first chunk looks back at the *last* chunk, not at nothing and not at "
                "itself: the indices wrap around, as `torch.roll` does. (Across hash rounds, "
                "that is the last chunk of the round before.)",
                fits=lambda a: a.problem == "values" and _first_chunk_only_wrong(a),
            ),
            Hint(
                "Look back, not ahead: row `j` needs chunk `j - 1`, so the roll is by "
                "`shifts=1`. With `shifts=-1` each row gets chunk `j + 1`.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _look_next),
            ),
            Hint(
                "The previous chunk comes first, then the chunk itself: "
                "`torch.cat([previous, chunks], dim=1)`, in sequence order.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _look_back_after),
            ),
            Hint(
                "Join along the positions, `dim=1`: each row gets `2 * c` positions of "
                "`d` features, `(n_chunks, 2 * c, d)`.",
                fits=lambda a: a.problem == "shape",
            ),
            Hint(
                "Keep the input's dtype: positions are int64. A new tensor made with "
                "`torch.zeros(...)` or `torch.empty(...)` is float32 unless you pass "
                "`dtype=chunks.dtype`; `torch.roll` and `torch.cat` keep the dtype.",
                fits=lambda a: a.problem == "dtype",
            ),
        ),
        wrong_answers=(
            _look_no_wrap_zeros,
            _look_no_wrap_self,
            _look_next,
            _look_back_after,
            _look_features,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercises: reformer.reversible_forward and reformer.reversible_inverse
# --------------------------------------------------------------------------------------


def reversible_forward(
    x1: torch.Tensor,
    x2: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor],
    g: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One reversible block: ``y1 = x1 + f(x2)``, ``y2 = x2 + g(y1)``.

    ``x1``, ``x2`` ``(batch, seq, d_model)``; ``f`` and ``g`` map that shape to itself.
    Returns ``(y1, y2)``: `lessons.reformer.ReversibleBlock.forward`.
    Used in: notebooks/06_reformer.ipynb, exercises.
    """
    y1 = x1 + f(x2)
    y2 = x2 + g(y1)
    return y1, y2


def reversible_inverse(
    y1: torch.Tensor,
    y2: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor],
    g: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of a reversible block from its outputs: ``x2 = y2 - g(y1)``, then
    ``x1 = y1 - f(x2)``.

    ``y1``, ``y2`` ``(batch, seq, d_model)``. Returns ``(x1, x2)``:
    `lessons.reformer.ReversibleBlock.inverse`.
    Used in: notebooks/06_reformer.ipynb, exercises.
    """
    x2 = y2 - g(y1)  # the last step undone first: it needs only y1
    x1 = y1 - f(x2)
    return x1, x2


def _block_case(
    rng: torch.Generator, batch: int, seq: int, d_model: int, num_heads: int, seed: int
) -> tuple:
    """Two random streams ``(batch, seq, d_model)``, F and G with weights seeded by ``seed``."""
    a = torch.randn(batch, seq, d_model, generator=rng)
    b = torch.randn(batch, seq, d_model, generator=rng)
    return a, b, _attention(d_model, num_heads, seed), _feed_forward(d_model, seed + 1)


def _forward_cases() -> list[Case]:
    rng = torch.Generator().manual_seed(63)
    x, _, f, g = _block_case(rng, 2, 3, 4, 2, seed=630)
    zeros = torch.zeros(1, 4, 6)
    return [
        Case("batch 1, 3 positions, d_model 4", _block_case(rng, 1, 3, 4, 1, seed=631)),
        Case("batch 2, 5 positions, d_model 8, 2 heads", _block_case(rng, 2, 5, 8, 2, seed=632)),
        Case("one position", _block_case(rng, 3, 1, 6, 3, seed=633)),
        Case("x1 = x2, as a stack's first block gets them", (x, x.clone(), f, g)),
        Case(
            "x1 = 0: y1 is F(x2) alone",
            (
                zeros,
                torch.randn(1, 4, 6, generator=rng),
                _attention(6, 2, 634),
                _feed_forward(6, 635),
            ),
        ),
    ]


def _forward_g_of_x1(x1, x2, f, g):
    y1 = x1 + f(x2)
    return y1, x2 + g(x1)


def _forward_own_stream(x1, x2, f, g):
    return x1 + f(x1), x2 + g(x2)


def _forward_swapped(x1, x2, f, g):
    y1 = x1 + g(x2)
    return y1, x2 + f(y1)


register(
    Exercise(
        id="reformer.reversible_forward",
        chapter="reformer",
        prompt=(
            "Write `reversible_forward(x1, x2, f, g)`: one reversible residual block. The "
            "two streams `x1`, `x2` are `(batch, seq, d_model)`; `f` (attention in the "
            "Reformer) and `g` (the feed-forward layer) are functions that map that shape to "
            "itself: call them, `f(x)`. Return `(y1, y2)` with `y1 = x1 + f(x2)` and "
            "`y2 = x2 + g(y1)`."
        ),
        signature="def reversible_forward(x1, x2, f, g) -> tuple[torch.Tensor, torch.Tensor]",
        solution=reversible_forward,
        cases=_forward_cases,
        hints=(
            Hint(
                "Two lines, in this order: first `y1 = x1 + f(x2)`, then "
                "`y2 = x2 + g(y1)`, which needs the new `y1`. Return `y1, y2`."
            ),
            Hint(
                "G reads `y1`, the new first stream, not `x1`: `y2 = x2 + g(y1)`. That is "
                "what makes the block invertible from its outputs alone: from `y1` you can "
                "recompute `g(y1)`, but `x1` is what you do not have yet.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _forward_g_of_x1),
            ),
            Hint(
                "Each sublayer reads the *other* stream: `f(x2)` is added to `x1`, and "
                "`g(y1)` to `x2`. A sublayer that adds to its own input is the ordinary "
                "residual `x + f(x)`, which cannot be undone without storing `x`.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _forward_own_stream),
            ),
            Hint(
                "`f` makes `y1` and `g` makes `y2`: attention first, then the feed-forward "
                "layer, as in a Transformer layer.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _forward_swapped),
            ),
        ),
        wrong_answers=(_forward_g_of_x1, _forward_own_stream, _forward_swapped),
        check_grad=True,
    )
)


def _inverse_cases() -> list[Case]:
    rng = torch.Generator().manual_seed(64)
    x1, x2, f, g = _block_case(rng, 2, 3, 4, 2, seed=640)
    with torch.no_grad():
        y1, y2 = reversible_forward(x1, x2, f, g)
    return [
        Case("batch 1, 3 positions, d_model 4", _block_case(rng, 1, 3, 4, 1, seed=641)),
        Case("batch 2, 5 positions, d_model 8, 2 heads", _block_case(rng, 2, 5, 8, 2, seed=642)),
        Case("the outputs of a forward pass: you get its inputs back", (y1, y2, f, g)),
        Case("one position", _block_case(rng, 3, 1, 6, 3, seed=643)),
        Case("y1 = y2", (y1, y1.clone(), f, g)),
    ]


def _inverse_x1_first(y1, y2, f, g):
    x1 = y1 - f(y2)  # y2 where x2 belongs: x2 is not known yet
    return x1, y2 - g(y1)


def _inverse_signs_flipped(y1, y2, f, g):
    x2 = y2 + g(y1)
    return y1 + f(x2), x2


def _inverse_swapped(y1, y2, f, g):
    x2 = y2 - g(y1)
    return x2, y1 - f(x2)


register(
    Exercise(
        id="reformer.reversible_inverse",
        chapter="reformer",
        prompt=(
            "Write `reversible_inverse(y1, y2, f, g)`: the inputs `(x1, x2)` of the block "
            "of `reversible_forward`, computed from its outputs `y1`, `y2` "
            "`(batch, seq, d_model)` and the same functions `f` and `g`. This is what the "
            "Reformer does in the backward pass instead of storing every layer's "
            "activations. Return `(x1, x2)`."
        ),
        signature="def reversible_inverse(y1, y2, f, g) -> tuple[torch.Tensor, torch.Tensor]",
        solution=reversible_inverse,
        cases=_inverse_cases,
        hints=(
            Hint(
                "Undo the steps of the forward pass in reverse order. The last step was "
                "`y2 = x2 + g(y1)`, and you have `y1`: so `x2 = y2 - g(y1)`. Then "
                "`y1 = x1 + f(x2)` gives `x1`."
            ),
            Hint(
                "Start with `x2 = y2 - g(y1)`: it needs only `y1`, which you have. "
                "`x1 = y1 - f(x2)` needs `x2`, and `y2` is not `x2`.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _inverse_x1_first),
            ),
            Hint(
                "Subtract: the forward pass added `g(y1)` to `x2` and `f(x2)` to `x1`, so "
                "the inverse takes them away.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _inverse_signs_flipped),
            ),
            Hint(
                "Return them in the order of the inputs, `(x1, x2)`.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _inverse_swapped),
            ),
        ),
        wrong_answers=(_inverse_x1_first, _inverse_signs_flipped, _inverse_swapped),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: reformer.chunked_feed_forward
# --------------------------------------------------------------------------------------


def chunked_feed_forward(
    x: torch.Tensor, feed_forward: Callable[[torch.Tensor], torch.Tensor], chunk_size: int
) -> torch.Tensor:
    """``feed_forward`` applied to ``chunk_size`` positions at a time, the last chunk
    possibly shorter: ``(batch, seq, d_model)`` -> the same shape.

    `lessons.reformer.ChunkedFeedForward`. Used in: notebooks/06_reformer.ipynb, exercises.
    """
    return torch.cat([feed_forward(chunk) for chunk in x.split(chunk_size, dim=1)], dim=1)


def _chunk_cases() -> list[Case]:
    g = torch.Generator().manual_seed(65)

    def case(batch: int, seq: int, d_model: int, chunk_size: int, seed: int) -> tuple:
        x = torch.randn(batch, seq, d_model, generator=g)
        return x, _feed_forward(d_model, seed, "feed_forward", chunk_size), chunk_size

    return [
        Case("batch 3, 8 positions, chunks of 2", case(3, 8, 4, 2, seed=650)),
        Case("10 positions, chunks of 4: the last chunk has 2", case(2, 10, 4, 4, seed=651)),
        Case("chunks of 1: one position at a time", case(2, 4, 6, 1, seed=652)),
        Case("chunks as long as the sequence: one call", case(2, 5, 4, 5, seed=653)),
        Case("chunks longer than the sequence", case(1, 3, 4, 8, seed=654)),
        Case("7 positions, chunks of 3", case(1, 7, 6, 3, seed=655)),
    ]


def _chunk_all_at_once(x, feed_forward, chunk_size):
    return feed_forward(x)


def _chunk_batch(x, feed_forward, chunk_size):
    return torch.cat([feed_forward(rows) for rows in x.split(chunk_size, dim=0)], dim=0)


def _chunk_features(x, feed_forward, chunk_size):
    return torch.cat([feed_forward(part) for part in x.split(chunk_size, dim=-1)], dim=-1)


def _chunk_drop_last(x, feed_forward, chunk_size):
    whole = x.shape[1] // chunk_size
    chunks = [x[:, i * chunk_size : (i + 1) * chunk_size] for i in range(whole)]
    return torch.cat([feed_forward(chunk) for chunk in chunks], dim=1)


def _too_many(attempt: Attempt) -> tuple[int, ...] | None:
    """The shape of the input that `TooManyPositions` refused, else None."""
    error = attempt.error
    return tuple(error.args[0]) if isinstance(error, TooManyPositions) else None


register(
    Exercise(
        id="reformer.chunked_feed_forward",
        chapter="reformer",
        prompt=(
            "Write `chunked_feed_forward(x, feed_forward, chunk_size)`: the feed-forward "
            "layer applied to `chunk_size` positions at a time, so that its large "
            "intermediate activation exists for one chunk at a time. `x` is "
            "`(batch, seq, d_model)`; `feed_forward` is a function that maps "
            "`(batch, positions, d_model)` to the same shape, each position on its own. "
            "Cut the sequence into chunks of `chunk_size` positions (the last one may be "
            "shorter), apply `feed_forward` to each, and join the results: "
            "`(batch, seq, d_model)`. In the cases, `feed_forward` refuses more than "
            "`chunk_size` positions per call (it raises `TooManyPositions`), as a layer "
            "with memory for only that many would."
        ),
        signature="def chunked_feed_forward(x, feed_forward, chunk_size) -> torch.Tensor",
        solution=chunked_feed_forward,
        cases=_chunk_cases,
        hints=(
            Hint(
                "`x.split(chunk_size, dim=1)` gives the chunks along the sequence, the last "
                "one shorter when `chunk_size` does not divide `seq`. Apply `feed_forward` "
                "to each and `torch.cat(..., dim=1)` the results."
            ),
            Hint(
                "The whole sequence went into `feed_forward` at once: that is the "
                "unchunked layer. Give it `chunk_size` positions per call.",
                fits=lambda a: _too_many(a) == tuple(a.case.args[0].shape),
            ),
            Hint(
                "Chunk the sequence, `dim=1`, not the batch, `dim=0`: a chunk of whole "
                "sequences still holds every position of each.",
                fits=lambda a: (
                    _too_many(a) is not None and _too_many(a)[0] < a.case.args[0].shape[0]
                ),
            ),
            Hint(
                "Chunk the positions, not the features: the feed-forward layer needs all "
                "`d_model` numbers of a position to compute its output there.",
                fits=lambda a: isinstance(a.error, WrongFeatures),
            ),
            Hint(
                "Keep the last chunk even when it is shorter: `seq` need not be a multiple "
                "of `chunk_size`, and `x.split` hands the remainder over as a last chunk.",
                fits=lambda a: a.problem == "shape" and a.got.shape[1] < a.expected.shape[1],
            ),
        ),
        wrong_answers=(_chunk_all_at_once, _chunk_batch, _chunk_features, _chunk_drop_last),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: reformer.combine_rounds
# --------------------------------------------------------------------------------------


def combine_rounds(outputs: torch.Tensor, logsumexps: torch.Tensor) -> torch.Tensor:
    """Hash rounds ``(batch, heads, rounds, seq, d_head)`` summed with the weights
    ``Z_r / sum_s Z_s`` of their softmax denominators, given as ``logsumexps``
    ``(batch, heads, rounds, seq)`` = ``log Z_r``: ``(batch, heads, seq, d_head)``.

    `lessons.reformer.combine_rounds`. Used in: notebooks/06_reformer.ipynb, exercises.
    """
    # Z_r / sum_s Z_s = exp(log Z_r - log sum_s Z_s): no exp of a large log Z_r alone
    weights = torch.exp(logsumexps - torch.logsumexp(logsumexps, dim=2, keepdim=True))
    return (outputs * weights.unsqueeze(-1)).sum(dim=2)


def _combine_cases() -> list[Case]:
    g = torch.Generator().manual_seed(66)

    def case(batch: int, heads: int, rounds: int, seq: int, d: int, scale: float) -> tuple:
        outputs = torch.randn(batch, heads, rounds, seq, d, generator=g)
        return outputs, scale * torch.randn(batch, heads, rounds, seq, generator=g)

    outputs, _ = case(1, 1, 2, 3, 2, 1.0)
    return [
        Case("4 rounds, batch 2, 2 heads", case(2, 2, 4, 5, 3, 2.0)),
        Case(
            "2 rounds with equal normalisers: the mean",
            (outputs, torch.full((1, 1, 2, 3), 0.5)),
        ),
        Case(
            "one round's normaliser far above the other's",
            (outputs, torch.tensor([[[[0.0, 0.0, 0.0], [30.0, 30.0, 30.0]]]])),
        ),
        Case("normalisers in the hundreds", case(1, 2, 3, 4, 2, 300.0)),
        Case("one round: its output unchanged", case(1, 1, 1, 3, 2, 1.0)),
    ]


def _combine_mean(outputs, logsumexps):
    return outputs.mean(dim=2)


def _combine_over_positions(outputs, logsumexps):
    weights = torch.softmax(logsumexps, dim=-1)
    return (outputs * weights.unsqueeze(-1)).sum(dim=2)


def _combine_naive(outputs, logsumexps):
    normalisers = torch.exp(logsumexps)
    weights = normalisers / normalisers.sum(dim=2, keepdim=True)
    return (outputs * weights.unsqueeze(-1)).sum(dim=2)


register(
    Exercise(
        id="reformer.combine_rounds",
        chapter="reformer",
        prompt=(
            "Write `combine_rounds(outputs, logsumexps)`: the output of LSH attention with "
            "several hash rounds. `outputs` is `(batch, heads, rounds, seq, d_head)`, each "
            "round's attention output, softmax-normalised within its round; `logsumexps` "
            "is `(batch, heads, rounds, seq)`, each round's `log Z_r`, the log of its "
            "softmax denominator. Weight round `r` by `Z_r / sum_s Z_s` and sum over the "
            "rounds: the result, `(batch, heads, seq, d_head)`, is one softmax over the "
            "scores of all the rounds together (a key that several rounds saw counts once "
            "per round)."
        ),
        signature="def combine_rounds(outputs, logsumexps) -> torch.Tensor",
        solution=combine_rounds,
        cases=_combine_cases,
        hints=(
            Hint(
                "The weights `Z_r / sum_s Z_s` with `Z_r = exp(logsumexps[:, :, r])` are a "
                "softmax of `logsumexps` over the rounds, `dim=2`. Multiply each round's "
                "output by its weight (`weights.unsqueeze(-1)` to broadcast over `d_head`) "
                "and sum over `dim=2`."
            ),
            Hint(
                "A plain average counts every round the same. A round whose bucket held "
                "the keys that match the query has a larger denominator `Z_r`: its output "
                "must weigh more, in proportion to `Z_r`.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _combine_mean),
            ),
            Hint(
                "Normalise over the rounds, `dim=2`, for each position separately: the "
                "weights of one position's rounds add up to 1.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _combine_over_positions),
            ),
            Hint(
                "`exp(300)` overflows float32 (the largest float32 is about `exp(88.7)`), "
                "and inf / inf is NaN. Use `torch.softmax(logsumexps, dim=2)`, or subtract "
                "`torch.logsumexp(logsumexps, dim=2, keepdim=True)` before the `exp`.",
                fits=lambda a: a.problem == "values" and bool(torch.isnan(a.got).any()),
            ),
        ),
        wrong_answers=(_combine_mean, _combine_over_positions, _combine_naive),
        check_grad=True,
    )
)


quiz.register(
    "reformer",
    [
        {
            "question": "In shared-QK attention a token's key is its own query scaled to "
            "length 1. Why does LSH attention forbid a token to attend to itself, unless "
            "nothing else is allowed?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "A query's score with its own unit-length key, ||q||, is the "
                    "largest it can have with any unit-length key",
                    "correct": True,
                    "feedback": "Right: q · (q / ||q||) = ||q||, and q · k ≤ ||q|| for "
                    "every unit vector k. Left in, the self score would win the softmax and a "
                    "token would mostly attend to itself. lessons.reformer gives it "
                    "SELF_MASKED = -1e5, applied after the other masks, so a token still "
                    "attends to itself when nothing else is allowed (the first token under "
                    "a causal mask).",
                },
                {
                    "answer": "A token would be counted twice in its bucket, once as a query "
                    "and once as a key",
                    "correct": False,
                    "feedback": "Every token of a bucket is both a query and a key: that is "
                    "what sharing Q and K means, and nothing is counted twice. The trouble "
                    "is the size of the self score.",
                },
                {
                    "answer": "Under the causal mask, attending to itself would let a token "
                    "see the word it must predict",
                    "correct": False,
                    "feedback": "A token's own position is not the future: the causal mask "
                    "allows it, and ordinary causal attention lets a token attend to itself. "
                    "The word to predict is the next one.",
                },
            ],
        },
        {
            "question": "The Reformer divides each shared query-key by its length before "
            "using it as a key. What does that change?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "A score q · k = ||q|| cos θ then ranks the keys by their "
                    "angle to the query, which is what the angular hash groups by",
                    "correct": True,
                    "feedback": "Right: the keys that land in the query's bucket are those "
                    "close to it in angle, and with unit-length keys those are the keys with "
                    "the highest scores. Kitaev et al. report that sharing QK this way does "
                    "not hurt the model.",
                },
                {
                    "answer": "The buckets: argmax([xR, -xR]) would change with the length of x",
                    "correct": False,
                    "feedback": "Scaling x by a positive number scales xR and -xR alike and "
                    "leaves the argmax where it is: the hash sees directions only. The "
                    "normalisation changes the scores, not the buckets.",
                },
                {
                    "answer": "It lets queries and keys share one projection, which would "
                    "not work otherwise",
                    "correct": False,
                    "feedback": "One projection can give both queries and keys with or "
                    "without the normalisation. It changes what their dot products mean.",
                },
            ],
        },
        {
            "question": "LSH attention can hash in several rounds, each with fresh random "
            "rotations. What do n rounds buy, and what do they cost?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Two similar tokens that one round separates by chance get n "
                    "chances to share a bucket; the attention's time and memory grow about "
                    "n times",
                    "correct": True,
                    "feedback": "Right: if one round puts them together with probability p, "
                    "at least one of n independent rounds does with probability "
                    "1 - (1 - p)^n. Each round sorts, chunks and attends over the whole "
                    "sequence on its own: lessons.reformer attends over n × L sorted slots.",
                },
                {
                    "answer": "More buckets in each round, so that a chunk holds fewer "
                    "unrelated keys, at no extra cost",
                    "correct": False,
                    "feedback": "Every round has the same num_buckets; a round repeats the "
                    "hashing with other rotations, and each repetition costs another pass of "
                    "chunked attention.",
                },
                {
                    "answer": "Exact attention, once n reaches the number of buckets",
                    "correct": False,
                    "feedback": "No number of rounds makes it exact: each round still "
                    "attends within chunks, and combine_rounds counts a key once for every "
                    "round that saw it.",
                },
            ],
        },
        {
            "question": "LSH attention sorts the tokens by bucket (and by position within a "
            "bucket), cuts the sorted sequence into chunks of equal length, and lets each "
            "chunk attend to itself and to the chunk before it. Why the chunk before?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Buckets have uneven sizes and do not start at chunk "
                    "boundaries: a bucket cut in two still sees its first part",
                    "correct": True,
                    "feedback": "Right: equal chunks turn attention into a batch of "
                    "equal-sized matrix products, but a bucket can straddle a boundary. "
                    "Looking one chunk back joins the two parts, and sorting by position "
                    "within a bucket puts the earlier tokens first, as the causal mask "
                    "wants. A bucket longer than two chunks still loses some pairs.",
                },
                {
                    "answer": "The causal mask needs the previous tokens to be present",
                    "correct": False,
                    "feedback": "A mask only removes keys; it needs none added. The chunk "
                    "before holds the rest of the query's bucket, masked or not.",
                },
                {
                    "answer": "To make sure each query sees every key of its bucket, however "
                    "large the bucket",
                    "correct": False,
                    "feedback": "One chunk back covers a bucket only as long as it spans at "
                    "most two chunks; a larger bucket loses pairs. And the first chunk "
                    "wraps around to the last one, which may hold another bucket entirely.",
                },
            ],
        },
        {
            "question": "Kitaev et al. give LSH attention a cost of O(L log L) for a "
            "sequence of L tokens. Where does the log L come from?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "From sorting the tokens by bucket; the attention over chunks "
                    "of fixed length c costs O(L c) per round, linear in L",
                    "correct": True,
                    "feedback": "Right: hashing is linear in L, and the chunked attention is "
                    "L / c chunks of c × 2c scores. Only the sort grows as L log L.",
                },
                {
                    "answer": "From the number of hash rounds, which must grow as log L",
                    "correct": False,
                    "feedback": "The number of rounds is a setting (1 to 8 in the paper's "
                    "experiments), chosen for accuracy, not a function of L.",
                },
                {
                    "answer": "From the keys each query attends to: about log L of them",
                    "correct": False,
                    "feedback": "Each query attends to its own chunk and the one before, "
                    "2c keys per round whatever L is.",
                },
            ],
        },
        {
            "question": "A stack of N ordinary residual layers keeps every layer's "
            "activations for the backward pass. What does a stack of N reversible layers "
            "keep, and what does it pay instead?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The last layer's two outputs only; the backward pass "
                    "recomputes each layer's inputs and runs F and G again, about one more "
                    "forward pass per step",
                    "correct": True,
                    "feedback": "Right: x2 = y2 - G(y1), then x1 = y1 - F(x2), layer by "
                    "layer from the top, so the stored activations no longer grow with N "
                    "(ReversibleStack keeps y1, y2 and two generator states per block). "
                    "While it backpropagates through one layer, that layer's own "
                    "activations exist again, one layer at a time.",
                },
                {
                    "answer": "Nothing at all, and for free: the inverse is exact, so "
                    "nothing needs computing again",
                    "correct": False,
                    "feedback": "Computing the inverse is the recomputation: F and G run "
                    "again in the backward pass, and the gradients need their graphs, "
                    "rebuilt one layer at a time.",
                },
                {
                    "answer": "Half of every layer's activations: one of its two streams",
                    "correct": False,
                    "feedback": "Not half per layer: one pair of outputs for the whole "
                    "stack, however many layers it has.",
                },
            ],
        },
        {
            "question": "In the backward pass, a reversible layer runs F and G again. Why "
            "must it replay the random draws of the forward pass: dropout masks, and the "
            "random rotations of LSH attention?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "x2 = y2 - G(y1) holds only if G(y1) is what the forward pass "
                    "added; other draws recover other inputs and give the gradients of "
                    "another function",
                    "correct": True,
                    "feedback": "Right: with another dropout mask, or other buckets, the "
                    "recomputed G(y1) differs from the one added in the forward pass. "
                    "ReversibleStack saves the generators' state before each sublayer and "
                    "restores it before the recomputation (RngState); with "
                    "replay_rng=False and dropout on, the gradients come out wrong. Without "
                    "a hash_seed, the rotations come from the same generator as dropout.",
                },
                {
                    "answer": "For reproducibility: two runs with the same seed should print "
                    "the same losses",
                    "correct": False,
                    "feedback": "That is a different wish. Within one training step, a "
                    "recomputation that draws differently gives wrong gradients even if "
                    "nobody ever compares two runs.",
                },
                {
                    "answer": "Because the backward pass cannot draw random numbers",
                    "correct": False,
                    "feedback": "It can, and without the replay it would: new numbers. The "
                    "problem is that they are not the numbers the forward pass used.",
                },
            ],
        },
        {
            "question": "A chunked feed-forward layer computes its (batch, seq, d_ff) "
            "intermediate activation a chunk of positions at a time. When does that save "
            "memory?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "When the intermediate is not kept for the backward pass: at "
                    "inference, or in the forward pass of a reversible stack, which runs "
                    "without a graph",
                    "correct": True,
                    "feedback": "Right: without a graph each chunk's intermediate is freed "
                    "before the next chunk runs, so only one chunk's exists at a time. "
                    "Under ordinary autograd every chunk's intermediate is saved for the "
                    "backward pass, and together they take as much as the unchunked one.",
                },
                {
                    "answer": "Always: each chunk's intermediate is a fraction of the whole",
                    "correct": False,
                    "feedback": "Each one is smaller, but autograd keeps all of them until "
                    "the backward pass: their sum is the whole intermediate again.",
                },
                {
                    "answer": "Never: the output is the same, so the memory must be the same",
                    "correct": False,
                    "feedback": "The output is the same; what exists at one moment is not. "
                    "Without a graph, the unchunked layer holds all positions' "
                    "intermediates at once, the chunked one a chunk's.",
                },
            ],
        },
        {
            "question": "By default, the ReformerConfig of lessons.reformer has hidden_size "
            "128 and axial position embeddings for a 64 × 64 grid of 4,096 positions, with "
            "axial_pos_embds_dim (64, 64). How many parameters do its position embeddings "
            "hold?",
            "type": "numeric",
            "precision": 5,
            "answers": [
                {
                    "type": "value",
                    "value": 8192,
                    "correct": True,
                    "feedback": "Right: a row table of 64 × 64 and a column table of "
                    "64 × 64, 4,096 + 4,096 = 8,192 numbers. Position p gets "
                    "[E1[p // 64], E2[p % 64]], 128 numbers. A full table for 4,096 "
                    "positions would hold 4,096 × 128 = 524,288, 64 times more.",
                },
                {
                    "type": "value",
                    "value": 524288,
                    "correct": False,
                    "feedback": "That is a full table, one row of 128 numbers for each of "
                    "the 4,096 positions: what the axial embeddings avoid.",
                },
                {
                    "type": "value",
                    "value": 16384,
                    "correct": False,
                    "feedback": "That gives each table rows of the full width, 128. The "
                    "width is split: 64 numbers come from the row table, 64 from the column "
                    "table.",
                },
                {
                    "type": "value",
                    "value": 4096,
                    "correct": False,
                    "feedback": "That is one of the two tables. Add the other, 64 × 64 too.",
                },
                {
                    "type": "default",
                    "feedback": "Count the two tables: 64 rows of 64 numbers, and 64 columns "
                    "of 64 numbers.",
                },
            ],
        },
        {
            "question": "On the paper's duplication task, a model trained with full "
            "attention is evaluated with LSH attention, with the same weights. What do "
            "Kitaev et al. report?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Its accuracy falls, most with a single hash round: a query "
                    "need not share a bucket with the position it must copy from",
                    "correct": True,
                    "feedback": "Right: the model learned to find its key among all "
                    "positions; LSH attention shows it only the keys of its chunks, and "
                    "more rounds give more chances to see the right one.",
                },
                {
                    "answer": "Nothing changes: LSH attention computes the same attention, "
                    "only faster",
                    "correct": False,
                    "feedback": "LSH attention approximates full attention: a key in another "
                    "bucket, or too far away in the sorted order, is not seen at all.",
                },
                {
                    "answer": "Its accuracy rises, since the hash removes distracting keys",
                    "correct": False,
                    "feedback": "The hash removes keys at random as much as by their "
                    "relevance, and sometimes the key the query needs. The paper reports a "
                    "fall.",
                },
            ],
        },
    ],
)
