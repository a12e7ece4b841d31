"""The figures of the Reformer chapter.

Used in: ``notebooks/06_reformer.ipynb``, in the chapter's order: angular hashing on a
circle, the sort-and-chunk steps of LSH attention, how often two vectors share a bucket
against their angle, and the bucket explorer (section 2); the reversible block's forward
pass and its recomputation (section 3); parameters of axial position embeddings against
a full table (section 5); activation memory against depth, attention cost against
length and the duplication task's learning curves (section 7).

Each ``draw_*`` function returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`), not registered with pyplot, so that a notebook shows one
exactly when a cell returns it; `draw_bucket_explorer` draws on a given ``ax`` instead,
for an explorer. The pictures of section 2 and 5 are computed with `lessons.reformer`
itself (`hash_vectors`, `sort_by_bucket`, `look_adjacent`, `allowed_keys`,
`same_bucket_rate`, `AxialPositionEmbeddings`); the figures of section 7 draw the
measured results they are given, so the tests can check what is drawn. Artists that a
test looks for carry a ``gid`` naming their role (``"sector"``, ``"point"``, ``"crossover"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle, Wedge

from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE, as_array
from lessons.reformer import (
    AxialPositionEmbeddings,
    allowed_keys,
    hash_rotations,
    hash_vectors,
    look_adjacent,
    same_bucket_rate,
    sort_by_bucket,
)

__all__ = [
    "BUCKET_COLOURS",
    "COLOURS",
    "PAIR_GAPS",
    "STEP_DIM",
    "axial_grid",
    "draw_angular_hash",
    "draw_attention_cost",
    "draw_axial_parameters",
    "draw_bucket_explorer",
    "draw_duplication",
    "draw_lsh_steps",
    "draw_memory_vs_depth",
    "draw_reversible_block",
    "draw_same_bucket_rate",
    "lsh_pairs",
]

#: The colour of each bucket in the pictures of LSH (bucket ``i`` gets colour ``i``).
BUCKET_COLOURS = (PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[4], PALETTE[5], PALETTE[3])

#: The colour of each kind of attention and each stack, the same in every figure.
COLOURS = {
    "full": PALETTE[3],
    "sdpa": PALETTE[7],
    "lsh-1": PALETTE[5],
    "lsh-2": PALETTE[0],
    "lsh-4": PALETTE[2],
    "lsh-8": PALETTE[4],
    "plain": PALETTE[3],
    "reversible": PALETTE[0],
    "stored": PALETTE[2],
    "recomputed": PALETTE[1],
    "attention": PALETTE[0],
    "feed_forward": PALETTE[4],
}
_NAMES = {
    "full": "full attention (scores materialised)",
    "sdpa": "F.scaled_dot_product_attention (fused)",
    "lsh-1": "LSH, 1 round",
    "lsh-2": "LSH, 2 rounds",
    "lsh-4": "LSH, 4 rounds",
    "lsh-8": "LSH, 8 rounds",
}
_TRAINED = {
    "full": "trained with full attention",
    "lsh4": "trained with LSH, 4 rounds",
    "lsh2": "trained with LSH, 2 rounds",
    "lsh1": "trained with LSH, 1 round",
}
_GREY, _LIGHT = "#444444", "#e6e6e6"
_MIB = 2**20


def _name(kind: str) -> str:
    return _NAMES.get(kind, kind)


def _colour(kind: str, index: int) -> str:
    return COLOURS.get(kind, PALETTE[index % len(PALETTE)])


def _angle_buckets(degrees: np.ndarray, rotations: torch.Tensor, num_buckets: int) -> np.ndarray:
    """Buckets ``(rounds, n)`` of the unit vectors at ``degrees`` ``(n,)``, hashed by
    `hash_vectors` with ``rotations`` ``(1, 2, rounds, num_buckets // 2)``, without the
    offset that keeps the rounds apart (so every round's ids run from 0)."""
    radians = torch.as_tensor(np.radians(degrees), dtype=torch.float64)
    points = torch.stack([radians.cos(), radians.sin()], dim=-1).view(1, 1, -1, 2)
    rounds = rotations.shape[2]
    buckets = hash_vectors(points, num_buckets, rounds, rotations.double())[0, 0]
    return (buckets - num_buckets * torch.arange(rounds).unsqueeze(1)).numpy()


# --------------------------------------------------------------------------------------
# Section 2: LSH attention
# --------------------------------------------------------------------------------------

#: The angles (degrees) between the two points of each row of `draw_angular_hash`.
PAIR_GAPS = {"close": 20.0, "far": 150.0}


def _sectors(ax: Axes, rotations: torch.Tensor, round_: int, num_buckets: int) -> None:
    """The unit disc cut into the sectors of one round's buckets: one ``Wedge`` per run of
    equal buckets along the circle, found by hashing 3,600 directions (0.1° apart)."""
    degrees = np.arange(3600) / 10
    buckets = _angle_buckets(degrees, rotations, num_buckets)[round_]
    starts = np.flatnonzero(buckets != np.roll(buckets, 1))
    for start, end in zip(starts, np.append(starts[1:], starts[0] + 3600), strict=True):
        ax.add_patch(
            Wedge(
                (0, 0),
                1.0,
                degrees[start] - 0.05,
                end / 10 - 0.05,
                facecolor=mpl.colors.to_rgba(BUCKET_COLOURS[buckets[start]], 0.45),
                edgecolor="white",
                linewidth=1.0,
                gid="sector",
            )
        )


def draw_angular_hash(seed: int = 0) -> Figure:
    """Angular LSH in two dimensions, as the Reformer paper's Figure 1 draws it.

    With ``num_buckets = 4`` and 2-D vectors, a random matrix ``R`` (2 × 2) and
    ``h(x) = argmax([xR; -xR])`` cut the circle into 4 sectors, one per bucket; each
    column is one of three random rotations (`hash_rotations` with ``seed``; the sectors
    are hashed by `hash_vectors` itself). Top row: two points 20° apart; bottom row: two
    points 150° apart, at random places on the circle (``seed``). Each panel's title says
    whether the pair shares a bucket under that rotation: close points usually do, far
    points rarely. Used in: notebooks/06_reformer.ipynb, section 2.
    """
    seed = checks.positive_int("seed", seed, minimum=0)
    rounds, num_buckets = 3, 4
    rotations = hash_rotations(1, 2, rounds, num_buckets, seed=seed, dtype=torch.float64)
    starts = np.random.default_rng(seed).uniform(0, 360, size=2)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(10.0, 7.4), layout="constrained")
        rows = figure.subfigures(2, 1)
        for row, start, (kind, gap) in zip(rows, starts, PAIR_GAPS.items(), strict=True):
            row.suptitle(f"a {kind} pair: two points {gap:g}° apart", fontsize=12)
            pair = np.array([start, start + gap]) % 360
            buckets = _angle_buckets(pair, rotations, num_buckets)
            for r, ax in enumerate(row.subplots(1, rounds)):
                _sectors(ax, rotations, r, num_buckets)
                ax.add_patch(Circle((0, 0), 1.0, fill=False, edgecolor=_GREY, linewidth=1.0))
                x, y = np.cos(np.radians(pair)), np.sin(np.radians(pair))
                ax.plot(
                    x, y, "o", color="black", markersize=8, markeredgecolor="white", gid="point"
                )
                shared = buckets[r, 0] == buckets[r, 1]
                verdict = "same bucket" if shared else "different buckets"
                ax.set_title(f"rotation {r + 1}: {verdict}", fontsize=10.5)
                ax.set(xlim=(-1.12, 1.12), ylim=(-1.12, 1.12), aspect="equal")
                ax.set_axis_off()
        handles = [
            Rectangle((0, 0), 1, 1, color=mpl.colors.to_rgba(BUCKET_COLOURS[b], 0.45))
            for b in range(num_buckets)
        ]
        figure.legend(
            handles,
            [f"bucket {b}" for b in range(num_buckets)],
            loc="outside lower center",
            ncols=num_buckets,
            fontsize=9.5,
        )
    return figure


#: The size of the random vectors `lsh_pairs` hashes.
STEP_DIM = 16


def lsh_pairs(
    seq_len: int = 16,
    num_buckets: int = 4,
    chunk_length: int = 4,
    *,
    causal: bool = False,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """One round of LSH attention's bookkeeping on ``seq_len`` random vectors.

    The vectors ``(1, 1, seq_len, STEP_DIM)`` are standard normal (NumPy, ``seed``); they
    are hashed by `hash_vectors` with `hash_rotations` ``seed`` (as an `LSHSelfAttention`
    with ``hash_seed=seed`` hashes its shared query-keys), sorted by `sort_by_bucket`, cut
    into chunks of ``chunk_length`` that see themselves and the chunk before
    (`look_adjacent`, which wraps around), and masked by `allowed_keys`. Returns
    ``vectors``, ``buckets`` ``(seq_len,)``, ``order`` ``(seq_len,)`` (the token in each
    sorted place) and ``met`` ``(seq_len, seq_len)``, True where query ``i`` scores key
    ``j``. A token's own key is among them; the layer scores it ``SELF_MASKED``, so that
    it counts only when nothing else is allowed. Used in: notebooks/06_reformer.ipynb,
    section 2 (`draw_lsh_steps`).
    """
    seq_len = checks.positive_int("seq_len", seq_len, minimum=2)
    num_buckets = checks.positive_int("num_buckets", num_buckets, minimum=2)
    if num_buckets % 2 or num_buckets > len(BUCKET_COLOURS):
        raise ValueError(
            f"num_buckets: expected an even int from 2 to {len(BUCKET_COLOURS)}, got {num_buckets}"
        )
    chunk_length = checks.positive_int("chunk_length", chunk_length)
    if seq_len % chunk_length or seq_len == chunk_length:
        raise ValueError(
            f"chunk_length: expected a divisor of seq_len ({seq_len}) smaller than it, "
            f"got {chunk_length}"
        )
    causal = bool(checks.one_of("causal", causal, (False, True)))
    seed = checks.positive_int("seed", seed, minimum=0)
    generator = np.random.default_rng(seed)
    vectors = torch.from_numpy(generator.standard_normal((1, 1, seq_len, STEP_DIM))).float()
    rotations = hash_rotations(1, STEP_DIM, 1, num_buckets, seed=seed)
    buckets = hash_vectors(vectors, num_buckets, 1, rotations)  # (1, 1, 1, seq)
    order, _ = sort_by_bucket(buckets.flatten(2))  # (1, 1, seq)
    query_positions = (order % seq_len).unflatten(2, (-1, chunk_length))
    key_positions = look_adjacent(query_positions, before=1, after=0)
    allowed = allowed_keys(query_positions, key_positions, None, causal)  # (1, 1, n, c, 2c)
    queries = query_positions.unsqueeze(-1).expand_as(allowed)
    keys = key_positions.unsqueeze(-2).expand_as(allowed)
    met = torch.zeros(seq_len, seq_len, dtype=torch.bool)
    met[queries[allowed], keys[allowed]] = True
    return {"vectors": vectors, "buckets": buckets.flatten(), "order": order.flatten(), "met": met}


def _strip(
    ax: Axes, y: float, tokens: Sequence[int], buckets: Sequence[int], xs: Sequence[float]
) -> None:
    """A row of squares at height ``y``: token ``tokens[i]`` at ``xs[i]``, coloured by bucket."""
    for token, x in zip(tokens, xs, strict=True):
        colour = BUCKET_COLOURS[buckets[token]]
        ax.add_patch(
            Rectangle(
                (x - 0.45, y - 0.4),
                0.9,
                0.8,
                facecolor=mpl.colors.to_rgba(colour, 0.55),
                edgecolor=colour,
                linewidth=1.0,
                gid="token",
            )
        )
        ax.text(x, y, str(token), ha="center", va="center", fontsize=8.5, gid="token")


def draw_lsh_steps(
    seq_len: int = 16,
    num_buckets: int = 4,
    chunk_length: int = 4,
    *,
    causal: bool = False,
    seed: int = 0,
) -> Figure:
    """LSH attention step by step (the Reformer paper's Figure 2, redrawn) from `lsh_pairs`.

    Left, top to bottom: (a) the tokens in order, coloured by bucket; (b) sorted by bucket
    (and by position within a bucket); (c) the sorted sequence cut into chunks of
    ``chunk_length``; each chunk attends to itself and to the chunk before it (the first
    looks back at the last). Right, (d) the query-key pairs in the original order: dark
    where LSH attention scores a pair of the same bucket, light blue where it scores a
    pair of different buckets that share a chunk or neighbouring chunks, grey where only
    full attention would score the pair (and white, with ``causal``, for the future,
    which neither scores). The matrix is not symmetric even without ``causal``: a chunk
    sees the chunk before it, not the one after, so two tokens of one bucket that land in
    neighbouring chunks meet in one direction only. Used in: notebooks/06_reformer.ipynb,
    section 2.
    """
    steps = lsh_pairs(seq_len, num_buckets, chunk_length, causal=causal, seed=seed)
    buckets = steps["buckets"].tolist()
    order = steps["order"].tolist()
    chunks = seq_len // chunk_length
    same = torch.tensor(buckets).unsqueeze(0) == torch.tensor(buckets).unsqueeze(1)
    states = torch.ones(seq_len, seq_len, dtype=torch.long)  # 1: only full attention
    if causal:
        states = torch.tril(states)  # 0: the future
    states[steps["met"]] = 2
    states[steps["met"] & same] = 3
    gap, rows = 0.6, (3.2, 1.6, 0.0)  # the space between chunks; the height of each step
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.5, 5.2), layout="constrained")
        steps_figure, matrix_figure = figure.subfigures(1, 2, width_ratios=[1.5, 1.0])
        left, right = steps_figure.add_subplot(), matrix_figure.add_subplot()
        chunked_x = [i + gap * (i // chunk_length) for i in range(seq_len)]
        _strip(left, rows[0], list(range(seq_len)), buckets, list(range(seq_len)))
        _strip(left, rows[1], order, buckets, list(range(seq_len)))
        _strip(left, rows[2], order, buckets, chunked_x)
        titles = (
            "(a) the tokens in order, coloured by bucket",
            "(b) sorted by bucket, then by position",
            f"(c) cut into chunks of {chunk_length}: each attends to itself and the one before",
        )
        for y, title in zip(rows, titles, strict=True):
            left.text(-0.5, y + 0.55, title, ha="left", va="bottom", fontsize=10, gid="step")
        width = chunk_length + gap
        for c in range(chunks):
            centre = c * width + (chunk_length - 1) / 2
            left.text(centre, -0.55, f"chunk {c + 1}", ha="center", va="top", fontsize=9)
            if c:
                left.add_patch(
                    FancyArrowPatch(
                        (centre - 0.3, -1.15),
                        (centre - width + 0.3, -1.15),
                        arrowstyle="-|>",
                        mutation_scale=9,
                        connectionstyle="arc3,rad=-0.3",
                        color=_GREY,
                        linewidth=1.0,
                        gid="look_back",
                    )
                )
        left.text(
            (chunked_x[-1] - 0.5) / 2,
            -2.3,
            "each arrow: a chunk looks back at the one before;\n"
            "chunk 1 looks back at the last (the indices wrap around)",
            ha="center",
            va="top",
            fontsize=9,
            color=_GREY,
        )
        left.set(xlim=(-0.7, chunked_x[-1] + 0.7), ylim=(-3.4, rows[0] + 1.1), aspect="equal")
        left.set_axis_off()
        handles = [
            Rectangle((0, 0), 1, 1, color=mpl.colors.to_rgba(BUCKET_COLOURS[b], 0.55))
            for b in range(num_buckets)
        ]
        steps_figure.legend(
            handles,
            [f"bucket {b}" for b in range(num_buckets)],
            loc="outside lower center",
            ncols=num_buckets,
            fontsize=9,
        )
        state_colours = ["white", _LIGHT, "#a6cde8", PALETTE[0]]
        right.imshow(states.numpy(), cmap=mpl.colors.ListedColormap(state_colours), vmin=0, vmax=3)
        right.grid(False)
        ticks = np.arange(seq_len)
        right.set_xticks(ticks, labels=[str(t) for t in ticks], fontsize=8)
        right.set_yticks(ticks, labels=[str(t) for t in ticks], fontsize=8)
        right.set_xticks(np.arange(seq_len + 1) - 0.5, minor=True)
        right.set_yticks(np.arange(seq_len + 1) - 0.5, minor=True)
        right.grid(which="minor", color="white", linewidth=1.0)
        right.tick_params(which="minor", length=0)
        right.set(xlabel="key (position)", ylabel="query (position)")
        computed = int(steps["met"].sum())
        total = int((states > 0).sum())
        right.set_title(
            f"(d) pairs scored: {computed} by LSH, {total} by full attention", fontsize=10.5
        )
        labels = ["LSH: same bucket", "LSH: other bucket", "full attention only"]
        handles = [Rectangle((0, 0), 1, 1, color=c) for c in state_colours[:0:-1]]
        if causal:
            labels.append("the future (masked)")
            handles.append(Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=_GREY))
        matrix_figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    return figure


def draw_same_bucket_rate(
    angles: Sequence[float] | None = None,
    bucket_counts: Sequence[int] = (2, 4, 8, 16),
    rounds: int = 4,
    trials: int = 1000,
    *,
    rounds_buckets: int = 8,
    d_head: int = 64,
    seed: int = 0,
) -> Figure:
    """How often two vectors at a given angle share a bucket, from `same_bucket_rate`.

    One solid curve per number of buckets in ``bucket_counts``: the fraction of
    ``trials`` random draws (a unit vector in ``d_head`` dimensions, a second one at the
    angle, a fresh random rotation) in which one round of hashing puts both in the same
    bucket, against the angle in degrees (``angles``, 0 to 180; every 7.5° by default). A
    dashed curve for ``rounds_buckets`` buckets: ``1 - (1 - rate) ** rounds``, the chance
    of sharing a bucket in at least one of ``rounds`` independent rounds.
    Used in: notebooks/06_reformer.ipynb, section 2.
    """
    degrees = np.linspace(0, 180, 25) if angles is None else as_array(angles, "angles", 1)
    if len(degrees) < 2 or degrees.min() < 0 or degrees.max() > 180:
        raise ValueError(
            f"angles: expected at least 2 angles in degrees from 0 to 180, got {degrees.tolist()}"
        )
    if isinstance(bucket_counts, int | str) or not bucket_counts:
        raise TypeError(
            f"bucket_counts: expected a list of even ints, got {checks.describe(bucket_counts)}"
        )
    counts = [checks.positive_int(f"bucket_counts[{i}]", n, 2) for i, n in enumerate(bucket_counts)]
    for i, count in enumerate(counts):
        if count % 2:
            raise ValueError(f"bucket_counts[{i}]: expected an even int >= 2, got {count}")
    rounds = checks.positive_int("rounds", rounds)
    if rounds_buckets not in counts:
        raise ValueError(
            f"rounds_buckets: expected one of bucket_counts {counts}, got {rounds_buckets!r}"
        )
    radians = torch.as_tensor(np.radians(degrees))
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.8, 4.6), layout="constrained")
        ax = figure.add_subplot()
        for index, count in enumerate(counts):
            rate = same_bucket_rate(radians, d_head, count, trials, seed).numpy()
            colour = PALETTE[index % len(PALETTE)]
            ax.plot(degrees, rate, "-", color=colour, label=f"{count} buckets", gid=f"rate-{count}")
            if count == rounds_buckets:
                at_least_once = 1 - (1 - rate) ** rounds
                ax.plot(
                    degrees,
                    at_least_once,
                    "--",
                    color=colour,
                    label=f"{count} buckets, at least once in {rounds} rounds",
                    gid="rounds",
                )
        ax.set(
            xlabel="angle between the two vectors (degrees)",
            ylabel="P(same bucket)",
            xlim=(0, 180),
            ylim=(0, 1.02),
        )
        ax.set_xticks(np.arange(0, 181, 30))
        ax.set_title(
            f"one round of hashing, $d_k$ = {d_head}, {trials:,} random draws per angle",
            fontsize=10.5,
        )
        ax.legend(fontsize=9, loc="upper right")
    return figure


#: The explorer's points: how many, and the seed of their angles.
_EXPLORER_POINTS, _EXPLORER_POINTS_SEED = 24, 6


def draw_bucket_explorer(
    ax: Axes, num_buckets: int = 8, num_hashes: int = 1, seed: int = 0
) -> None:
    """24 points on the unit circle (at fixed random angles) hashed into ``num_buckets``
    buckets in each of ``num_hashes`` rounds (`hash_vectors`, `hash_rotations` ``seed``):
    a line joins every pair that shares a bucket in at least one round, the pairs LSH
    attention sets out to bring together; each point is coloured by its bucket in round 1
    (colours repeat after eight buckets). The title counts the pairs that share a bucket,
    and how many of the nearest-neighbour pairs (each point and the point closest to it)
    are among them.
    ``ax`` comes first, so it is a draw function for `lessons.core.explorer`.
    Used in: notebooks/06_reformer.ipynb, section 2, the explorer.
    """
    num_buckets = checks.positive_int("num_buckets", num_buckets, minimum=2)
    if num_buckets % 2:
        raise ValueError(f"num_buckets: expected an even int >= 2, got {num_buckets}")
    num_hashes = checks.positive_int("num_hashes", num_hashes)
    seed = checks.positive_int("seed", seed, minimum=0)
    degrees = np.sort(
        np.random.default_rng(_EXPLORER_POINTS_SEED).uniform(0, 360, _EXPLORER_POINTS)
    )
    rotations = hash_rotations(1, 2, num_hashes, num_buckets, seed=seed, dtype=torch.float64)
    buckets = _angle_buckets(degrees, rotations, num_buckets)  # (rounds, n)
    meet = (buckets[:, :, None] == buckets[:, None, :]).any(axis=0)
    n = len(degrees)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if meet[i, j]]
    xy = np.stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], axis=1)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, edgecolor="#999999", linewidth=1.0))
    ax.add_collection(
        LineCollection(
            [(xy[i], xy[j]) for i, j in pairs],
            colors=PALETTE[0],
            linewidths=0.9,
            alpha=0.45,
            gid="meet",
        )
    )
    colours = [PALETTE[b % len(PALETTE)] for b in buckets[0]]
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        s=36,
        c=colours,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
        gid="point",
    )
    neighbours = _nearest_pairs(degrees)
    caught = sum(meet[i, j] for i, j in neighbours)
    rounds = "round" if num_hashes == 1 else "rounds"
    ax.set_title(
        f"{num_buckets} buckets, {num_hashes} {rounds}: {len(pairs)} of {n * (n - 1) // 2} pairs "
        f"share a bucket,\n{caught} of the {len(neighbours)} nearest-neighbour pairs",
        fontsize=10,
    )
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal")
    ax.set_axis_off()


def _nearest_pairs(degrees: np.ndarray) -> list[tuple[int, int]]:
    """Each point with the point nearest to it along the circle, as sorted index pairs,
    without repeats."""
    gaps = np.abs(degrees[:, None] - degrees[None, :])
    gaps = np.minimum(gaps, 360 - gaps)
    np.fill_diagonal(gaps, np.inf)
    return sorted({tuple(sorted((i, int(j)))) for i, j in enumerate(gaps.argmin(axis=1))})


# --------------------------------------------------------------------------------------
# Section 3: reversible layers
# --------------------------------------------------------------------------------------


def _box(
    ax: Axes, x: float, y: float, text: str, colour: str, *, dashed: bool = False, gid: str = "box"
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - 0.45, y - 0.28),
            0.9,
            0.56,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=mpl.colors.to_rgba(colour, 0.22),
            edgecolor=colour,
            linewidth=1.2 if dashed else 2.2,
            linestyle="--" if dashed else "-",
            zorder=3,
            gid=gid,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4, gid=gid)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=11,
            color=_GREY,
            linewidth=1.2,
            zorder=2,
            gid="arrow",
        )
    )


def _node(ax: Axes, x: float, y: float, sign: str) -> None:
    ax.add_patch(Circle((x, y), 0.2, facecolor="white", edgecolor=_GREY, linewidth=1.2, zorder=3))
    ax.text(x, y, sign, ha="center", va="center", fontsize=13, zorder=4, gid="node")


def _reversible_panel(ax: Axes, forward: bool) -> None:
    """One panel of `draw_reversible_block`: the left stream at x = 0, the right at
    x = 3; F joins them at height 1.5, G at height 3.0."""
    bottom, top, f_y, g_y = 0.0, 4.5, 1.5, 3.0
    sign = "+" if forward else "−"
    if forward:
        _box(ax, 0, bottom, "$x_1$", COLOURS["recomputed"], dashed=True, gid="input")
        _box(ax, 3, bottom, "$x_2$", COLOURS["recomputed"], dashed=True, gid="input")
        _box(ax, 0, top, "$y_1$", COLOURS["stored"], gid="stored")
        _box(ax, 3, top, "$y_2$", COLOURS["stored"], gid="stored")
        _arrow(ax, (0, bottom + 0.28), (0, f_y - 0.2))
        _arrow(ax, (0, f_y + 0.2), (0, top - 0.28))
        _arrow(ax, (3, bottom + 0.28), (3, g_y - 0.2))
        _arrow(ax, (3, g_y + 0.2), (3, top - 0.28))
    else:
        _box(ax, 0, top, "$y_1$", COLOURS["stored"], gid="stored")
        _box(ax, 3, top, "$y_2$", COLOURS["stored"], gid="stored")
        _box(ax, 0, bottom, "$x_1$", COLOURS["recomputed"], gid="recomputed")
        _box(ax, 3, bottom, "$x_2$", COLOURS["recomputed"], gid="recomputed")
        _arrow(ax, (0, top - 0.28), (0, f_y + 0.2))
        _arrow(ax, (0, f_y - 0.2), (0, bottom + 0.28))
        _arrow(ax, (3, top - 0.28), (3, g_y + 0.2))
        _arrow(ax, (3, g_y - 0.2), (3, bottom + 0.28))
    _node(ax, 0, f_y, sign)
    _node(ax, 3, g_y, sign)
    _box(ax, 1.5, f_y, "$F$", COLOURS["attention"], gid="F")
    _box(ax, 1.5, g_y, "$G$", COLOURS["feed_forward"], gid="G")
    _arrow(ax, (3, f_y), (1.95, f_y))  # the right stream feeds F
    _arrow(ax, (1.05, f_y), (0.2, f_y))
    _arrow(ax, (0, g_y), (1.05, g_y))  # the left stream feeds G
    _arrow(ax, (1.95, g_y), (2.8, g_y))
    for x, y in ((3, f_y), (0, g_y)):
        ax.plot([x], [y], "o", color=_GREY, markersize=4, zorder=3)
    if forward:
        left, right = "$y_1 = x_1 + F(x_2)$", "$y_2 = x_2 + G(y_1)$"
        ax.set_title("forward: compute $y_1$, then $y_2$", fontsize=11.5)
        above = (
            "stored for the backward pass: only $y_1$, $y_2$\n(in a stack, only the top block's)"
        )
        below = "inputs: not stored, freed once the block has run"
    else:
        left, right = "$x_1 = y_1 - F(x_2)$", "$x_2 = y_2 - G(y_1)$"
        ax.set_title("backward: recompute $x_2$, then $x_1$", fontsize=11.5)
        above = "known: stored at the top of the stack,\nor recomputed by the block above"
        below = "recomputed, then handed to the block below"
    ax.text(-0.3, f_y, left, ha="right", va="center", fontsize=11, gid="equation")
    ax.text(3.3, g_y, right, ha="left", va="center", fontsize=11, gid="equation")
    ax.text(
        1.5,
        top + 0.4,
        above,
        ha="center",
        va="bottom",
        fontsize=9.5,
        color=COLOURS["stored"],
        gid="note",
    )
    ax.text(
        1.5,
        bottom - 0.45,
        below,
        ha="center",
        va="top",
        fontsize=9.5,
        color=COLOURS["recomputed"],
        gid="note",
    )
    ax.set(xlim=(-2.6, 5.6), ylim=(bottom - 0.9, top + 1.25), aspect="equal")
    ax.set_axis_off()


def draw_reversible_block() -> Figure:
    """A reversible residual block (Gomez et al., 2017), as the Reformer uses it.

    Left, the forward pass: ``y1 = x1 + F(x2)``, then ``y2 = x2 + G(y1)`` (``F`` the
    attention layer, ``G`` the feed-forward layer). Only ``y1`` and ``y2`` (green) are
    kept; the inputs (dashed) are freed. Right, the backward pass: from the stored
    outputs, ``x2 = y2 - G(y1)``, then ``x1 = y1 - F(x2)`` (orange), which the block
    below needs in turn. Used in: notebooks/06_reformer.ipynb, section 3.
    """
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.6), layout="constrained")
        for ax, forward in zip(figure.subplots(1, 2), (True, False), strict=True):
            _reversible_panel(ax, forward)
    return figure


# --------------------------------------------------------------------------------------
# Section 5: axial positional embeddings
# --------------------------------------------------------------------------------------


def axial_grid(num_positions: int) -> tuple[int, int]:
    """The most nearly square grid ``(rows, columns)`` with ``rows * columns ==
    num_positions`` and ``rows <= columns``. Used in: notebooks/06_reformer.ipynb,
    section 5 (`draw_axial_parameters`)."""
    num_positions = checks.positive_int("num_positions", num_positions)
    rows = max(r for r in range(1, math.isqrt(num_positions) + 1) if num_positions % r == 0)
    return rows, num_positions // rows


def _grid_picture(ax: Axes, side: int = 4) -> None:
    """Positions ``0 .. side**2 - 1`` laid out row by row; each cell says ``p`` and its
    ``(row, column)``, which pick the row table's and the column table's entries."""
    for p in range(side * side):
        row, column = divmod(p, side)
        ax.add_patch(
            Rectangle(
                (column, -row), 0.94, -0.94, facecolor="#f2f2f2", edgecolor="#999999", gid="cell"
            )
        )
        ax.text(
            column + 0.47,
            -row - 0.47,
            f"p = {p}\n({row}, {column})",
            ha="center",
            va="center",
            fontsize=8,
            gid="cell",
        )
    for i in range(side):
        ax.text(
            -0.12,
            -i - 0.47,
            f"$E_1[{i}]$",
            ha="right",
            va="center",
            fontsize=9,
            color=PALETTE[0],
            gid="row",
        )
        ax.text(
            i + 0.47,
            0.12,
            f"$E_2[{i}]$",
            ha="center",
            va="bottom",
            fontsize=9,
            color=PALETTE[1],
            gid="column",
        )
    ax.set_title(
        f"{side} × {side} positions: $e_p = [E_1[\\mathrm{{row}}];\\ E_2[\\mathrm{{column}}]]$",
        fontsize=10,
    )
    ax.set(xlim=(-1.0, side + 0.1), ylim=(-side - 0.1, 0.75), aspect="equal")
    ax.set_axis_off()


def draw_axial_parameters(
    axial_dims: Sequence[int] = (64, 64), lengths: Sequence[int] | None = None
) -> Figure:
    """Parameters of position embeddings against the number of positions, log-log.

    Left: a full table (`AxialPositionEmbeddings.full_table_size`, one row of
    ``d1 + d2`` numbers per position) against axial embeddings on the most nearly
    square grid (`axial_grid`), whose row and column tables hold ``n1 * d1 + n2 * d2``
    numbers (the parameters of an `AxialPositionEmbeddings`); ``lengths`` are the
    numbers of positions (64 to 1,048,576, every factor 4, by default), ``axial_dims``
    is ``(d1, d2)``. Right: a 4 x 4 grid, each position ``p`` at ``(p // 4, p % 4)``.
    Used in: notebooks/06_reformer.ipynb, section 5.
    """
    lengths = [4**k for k in range(3, 11)] if lengths is None else lengths
    if isinstance(lengths, int | str) or len(lengths) < 2:
        raise ValueError(
            f"lengths: expected at least 2 numbers of positions, got {checks.describe(lengths)}"
        )
    lengths = [checks.positive_int(f"lengths[{i}]", n) for i, n in enumerate(lengths)]
    full, axial = [], []
    for n in lengths:
        embeddings = AxialPositionEmbeddings(axial_grid(n), axial_dims)
        full.append(embeddings.full_table_size)
        axial.append(sum(p.numel() for p in embeddings.parameters()))
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(11.5, 4.6), layout="constrained")
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1.0]})
        d_model = sum(axial_dims)
        left.plot(
            lengths,
            full,
            "o-",
            color=PALETTE[3],
            label=f"full table: $n \\times {d_model}$",
            gid="full",
        )
        d1, d2 = axial_dims
        left.plot(
            lengths,
            axial,
            "s-",
            color=PALETTE[0],
            label=f"axial: $n_1 \\times {d1} + n_2 \\times {d2}$",
            gid="axial",
        )
        left.set_xscale("log", base=2)
        left.set_yscale("log")
        left.set_xticks(lengths, labels=[f"{n:,}" for n in lengths], fontsize=8.5, rotation=30)
        left.set(
            xlabel="positions $n = n_1 n_2$ (the most nearly square grid)", ylabel="parameters"
        )
        left.annotate(
            f"{full[-1] / axial[-1]:,.0f}× fewer",
            (lengths[-1], math.sqrt(full[-1] * axial[-1])),
            xytext=(-8, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=9.5,
            gid="ratio",
        )
        left.plot([lengths[-1]] * 2, [axial[-1], full[-1]], ":", color=_GREY, linewidth=1.2)
        left.legend(fontsize=9.5, loc="upper left")
        _grid_picture(right)
    return figure


# --------------------------------------------------------------------------------------
# Section 7: the claims, measured
# --------------------------------------------------------------------------------------


def _check_keys(name: str, mapping: object, keys: Sequence[str]) -> Mapping:
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{name}: expected a dict with the keys {list(keys)}, got {checks.describe(mapping)}"
        )
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise ValueError(f"{name}: expected the keys {list(keys)}, missing {missing}")
    return mapping


def _series(name: str, values: object, length: int) -> np.ndarray:
    """``values`` as floats, one per length; ``None`` (not measured) becomes NaN."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(
            f"{name}: expected a list of {length} numbers, got {checks.describe(values)}"
        )
    if len(values) != length:
        raise ValueError(f"{name}: expected {length} values (one per length), got {len(values)}")
    return np.array([np.nan if v is None else float(v) for v in values])


def draw_memory_vs_depth(results: Mapping) -> Figure:
    """MiB of activations saved for the backward pass against the number of blocks, a
    plain stack beside a reversible one, each bar labelled with its value; bars start at
    0. ``results`` is ``load_results("reformer_memory")``: ``depths`` and
    ``saved_bytes`` ``{"plain": [...], "reversible": [...]}`` (bytes, one per depth), and
    optionally ``shape`` (batch, seq, d_model, ...) for the title.
    Used in: notebooks/06_reformer.ipynb, section 7.
    """
    _check_keys("results", results, ("depths", "saved_bytes"))
    saved = _check_keys("results['saved_bytes']", results["saved_bytes"], ("plain", "reversible"))
    depths = [
        checks.positive_int(f"results['depths'][{i}]", d) for i, d in enumerate(results["depths"])
    ]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.8, 4.6), layout="constrained")
        ax = figure.add_subplot()
        x = np.arange(len(depths))
        width = 0.38
        for shift, kind in ((-width / 2, "plain"), (width / 2, "reversible")):
            mib = _series(f"results['saved_bytes'][{kind!r}]", saved[kind], len(depths)) / _MIB
            bars = ax.bar(
                x + shift, mib, width, color=COLOURS[kind], label=f"{kind} stack", gid=kind
            )
            ax.bar_label(bars, labels=[f"{v:.1f}" for v in mib], padding=2, fontsize=9)
        ax.set_xticks(x, labels=[str(d) for d in depths])
        ax.set(xlabel="blocks (attention + feed-forward)", ylabel="MiB saved for the backward pass")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
        shape = results.get("shape")
        if isinstance(shape, Mapping) and {"batch", "seq", "d_model"} <= set(shape):
            ax.set_title(
                f"one forward pass: batch {shape['batch']}, length {shape['seq']:,}, "
                f"d_model {shape['d_model']}",
                fontsize=10.5,
            )
        ax.legend(fontsize=9.5, loc="upper left")
    return figure


def draw_attention_cost(results: Mapping) -> Figure:
    """Time (left) and peak memory (right) of attention against sequence length, log-log.

    One line per kind in ``results["seconds"]`` and ``results["peak_bytes"]``: full
    attention (scores materialised), PyTorch's fused ``F.scaled_dot_product_attention``
    and LSH attention with 1 to 8 rounds. The legend, below both panels, gives each
    kind's fitted slopes (``results["slopes"]``; 2 for a quadratic cost, 1 for a linear
    one) and, where ``results["crossover"]`` gives one, the first length at which an LSH
    kind is faster than full attention, which an open circle marks on the left. A value
    of ``None`` (not measured) is left out. ``results`` is
    ``load_results("reformer_attention")``.
    Used in: notebooks/06_reformer.ipynb, section 7.
    """
    _check_keys("results", results, ("lengths", "seconds", "peak_bytes"))
    lengths = [
        checks.positive_int(f"results['lengths'][{i}]", n) for i, n in enumerate(results["lengths"])
    ]
    measures = {"seconds": ("time (s)", 1.0), "peak_bytes": ("peak memory (MiB)", 1 / _MIB)}
    for measure in measures:
        if not isinstance(results[measure], Mapping):
            raise TypeError(
                f"results[{measure!r}]: expected a dict kind -> values, "
                f"got {checks.describe(results[measure])}"
            )
    slopes = results.get("slopes") or {}
    crossover = results.get("crossover") or {}
    kinds = list(dict.fromkeys([*results["seconds"], *results["peak_bytes"]]))
    for kind, length in crossover.items():
        if length is not None and length not in lengths:
            raise ValueError(
                f"results['crossover'][{kind!r}]: expected one of the lengths {lengths} or None, "
                f"got {length!r}"
            )
    handles = {}
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 5.6), layout="constrained")
        axes = figure.subplots(1, 2)
        for ax, (measure, (ylabel, scale)) in zip(axes, measures.items(), strict=True):
            for index, kind in enumerate(kinds):
                if kind not in results[measure]:
                    continue
                where = f"results[{measure!r}][{kind!r}]"
                y = _series(where, results[measure][kind], len(lengths)) * scale
                if np.isnan(y).all():
                    continue
                colour = _colour(kind, index)
                (line,) = ax.plot(
                    lengths,
                    y,
                    "o--" if kind == "sdpa" else "o-",
                    color=colour,
                    markersize=4,
                    gid=kind,
                )
                handles.setdefault(kind, line)
                at = crossover.get(kind) if measure == "seconds" else None
                if at is not None:
                    ax.plot(
                        [at],
                        [y[lengths.index(at)]],
                        "o",
                        markersize=11,
                        markerfacecolor="none",
                        markeredgecolor=colour,
                        markeredgewidth=1.6,
                        gid="crossover",
                    )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(lengths, labels=[f"{n:,}" for n in lengths], fontsize=8.5)
            ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
            ax.set(xlabel="sequence length L", ylabel=f"{ylabel}, log scale")
        figure.legend(
            list(handles.values()),
            [_cost_label(kind, slopes, crossover.get(kind)) for kind in handles],
            loc="outside lower center",
            ncols=2,
            fontsize=9,
        )
    return figure


def _cost_label(kind: str, slopes: Mapping, crossover: int | None) -> str:
    """A legend entry of `draw_attention_cost`: the kind, its slopes, its crossover."""
    found = {
        name: (slopes.get(measure) or {}).get(kind)
        for measure, name in (("seconds", "time"), ("peak_bytes", "memory"))
    }
    parts = [f"{value:.2f} ({name})" for name, value in found.items() if value is not None]
    label = _name(kind)
    if parts:
        label += f": slope {', '.join(parts)}"
    if crossover is not None:
        label += f"; faster than full from L = {crossover:,}"
    return label


def draw_duplication(results: Mapping) -> Figure:
    """Learning curves of the duplication task: accuracy on held-out sequences against
    the training step, one panel per trained model (``results["curves"]``, e.g.
    ``"lsh4"`` and ``"full"``), one line per way of evaluating it (full attention, LSH with
    1, 2, 4 and 8 rounds; whichever the points hold), and chance (``results["chance"]``)
    as a dotted line. Each curve is a list of points ``{"step", "full", "lsh-1", ...}``;
    an evaluation missing from some points is drawn through the points that have it.
    Used in: notebooks/06_reformer.ipynb, section 7.
    """
    _check_keys("results", results, ("curves", "chance"))
    curves = results["curves"]
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(
            f"results['curves']: expected a dict model -> points, got {checks.describe(curves)}"
        )
    chance = checks.probability("results['chance']", results["chance"], allow_one=True)
    columns = min(2, len(curves))
    rows = -(-len(curves) // columns)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(5.4 * columns + 0.6, 3.2 * rows + 0.9), layout="constrained")
        grid = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
        axes = grid.flatten()
        for ax in axes[len(curves) :]:
            ax.set_visible(False)
        for ax, (model, points) in zip(axes, curves.items(), strict=False):
            if isinstance(points, str) or not isinstance(points, Sequence) or not points:
                raise ValueError(
                    f"results['curves'][{model!r}]: expected a list of points, "
                    f"got {checks.describe(points)}"
                )
            for index, point in enumerate(points):
                if "step" not in point:
                    raise ValueError(
                        f"results['curves'][{model!r}][{index}]: expected a key 'step'"
                    )
            kinds = [k for k in _NAMES if k != "sdpa" and any(k in p for p in points)]
            for index, kind in enumerate(kinds):
                measured = [point for point in points if kind in point]
                ax.plot(
                    [point["step"] for point in measured],
                    [point[kind] for point in measured],
                    "o-",
                    markersize=3.5,
                    color=_colour(kind, index),
                    label=_name(kind).replace(" (scores materialised)", ""),
                    gid=kind,
                )
            ax.axhline(chance, color=_GREY, linestyle=":", linewidth=1.3, gid="chance")
            ax.annotate(
                f"chance: {chance:.3f}",
                (1.0, chance),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=8.5,
                color=_GREY,
                gid="chance",
            )
            ax.set(ylim=(0, 1.02), title=_TRAINED.get(model, f"trained as {model}"))
        for ax in grid[-1]:
            ax.set_xlabel("training step")
        for ax in grid[:, 0]:
            ax.set_ylabel("accuracy (held out)")
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, title="evaluated with", loc="outside lower center", ncols=5)
    return figure
