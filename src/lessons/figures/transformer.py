"""The figures of the Transformer chapter.

Used in: ``notebooks/04_transformer.ipynb``, in the chapter's order: the architecture and
where the LayerNorm goes (section 1), the positional encodings and the dot products
between them (section 2), the three masks (section 4), the warm-up schedule and the two
training ablations (section 6), every head of a trained model, the language model's
training curve and the time per step against length (section 8).

Each ``draw_*`` function returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`), not registered with pyplot, so that a notebook shows one
exactly when a cell returns it; `draw_warmup` draws on a given ``ax`` instead, for an
explorer. The figures draw numbers they are given (or, for the positional encodings,
`lessons.transformer.sinusoidal_encoding` itself), so tests can check what is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE, as_array, new_axes, smooth
from lessons.transformer import sinusoidal_encoding, warmup_schedule

__all__ = [
    "COLOURS",
    "draw_architecture",
    "draw_attention_grid",
    "draw_confidence",
    "draw_masks",
    "draw_norm_placement",
    "draw_perplexity_curve",
    "draw_position_similarity",
    "draw_positional_encoding",
    "draw_step_times",
    "draw_warmup",
    "draw_warmup_ablation",
    "draw_warmup_schedules",
    "position_dot_products",
]

#: The colour of each kind of block in the schematic figures.
COLOURS = {
    "attention": PALETTE[0],
    "feed_forward": PALETTE[2],
    "norm": PALETTE[1],
    "embedding": PALETTE[4],
    "positions": PALETTE[5],
    "output": PALETTE[3],
}
_STREAM = "#d9d9d9"  # the residual stream: a wide grey band under the blocks
_ALLOWED, _BLOCKED = PALETTE[2], "#eeeeee"


# --------------------------------------------------------------------------------------
# Section 1: the architecture
# --------------------------------------------------------------------------------------


def _final_norm(ax: Axes, x: float, y: float) -> None:
    """The LayerNorm that nn.Transformer adds at the top of each stack (dashed: not the
    paper's)."""
    text = "final LayerNorm\n(nn.Transformer)"
    _block(ax, x, y, 2.3, 0.5, text, COLOURS["norm"], fontsize=8, dashed=True)


def _layer_frame(
    ax: Axes, left: float, height: float, label: str, label_xy: tuple[float, float], ha: str
) -> None:
    """The dashed frame around one layer of a stack (from y = 2.25), and its label."""
    frame = FancyBboxPatch(
        (left, 2.25),
        4.95,
        height,
        boxstyle="round,pad=0.05,rounding_size=0.2",
        facecolor="none",
        edgecolor="#888888",
        linestyle="--",
        zorder=0,
    )
    ax.add_patch(frame)
    ax.text(*label_xy, label, fontsize=10, ha=ha, fontweight="bold")


def _block(
    ax: Axes,
    x: float,
    y: float,
    width: float,
    height: float,
    text: str,
    colour: str,
    fontsize: float = 9.0,
    dashed: bool = False,
) -> None:
    """A rounded box centred at ``(x, y)`` (data coordinates) with ``text`` inside."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=mpl.colors.to_rgba(colour, 0.28),
            edgecolor=colour,
            linewidth=1.4,
            linestyle="--" if dashed else "-",
            zorder=3,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4)


def _line(ax: Axes, points: Sequence[tuple[float, float]], arrow: bool = True) -> None:
    """A polyline through ``points``, with an arrowhead at the last one."""
    xs, ys = zip(*points, strict=True)
    ax.plot(xs[:-1] + (xs[-1],), ys[:-1] + (ys[-1],), color="#444444", linewidth=1.2, zorder=2)
    if arrow:
        ax.add_patch(
            FancyArrowPatch(
                points[-2],
                points[-1],
                arrowstyle="-|>",
                mutation_scale=11,
                color="#444444",
                linewidth=1.2,
                zorder=2,
            )
        )


def _plus(ax: Axes, x: float, y: float, radius: float = 0.2) -> None:
    ax.add_patch(Circle((x, y), radius, facecolor="white", edgecolor="#444444", zorder=4))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11, zorder=5)


def _stream(ax: Axes, x: float, bottom: float, top: float) -> None:
    """The residual stream: a grey band from ``bottom`` to ``top`` with arrowheads."""
    ax.add_patch(Rectangle((x - 0.09, bottom), 0.18, top - bottom, color=_STREAM, zorder=1))
    for y in np.linspace(bottom + 0.6, top - 0.2, 4):
        ax.add_patch(
            FancyArrowPatch(
                (x, y - 0.3), (x, y), arrowstyle="-|>", mutation_scale=9, color="#9a9a9a", zorder=1
            )
        )


def _sublayer(
    ax: Axes,
    stream_x: float,
    y: float,
    box_x: float,
    text: str,
    colour: str,
    norm: str = "post",
    inputs: str = "",
) -> float:
    """One residual sublayer on the stream at ``stream_x``, starting at height ``y``.

    The stream branches at ``y``; the branch goes through the sublayer (a box centred at
    ``box_x``) and is added back (+). ``norm="post"``: LayerNorm on the stream after the
    sum (the paper); ``"pre"``: LayerNorm on the branch before the sublayer; ``None``:
    none. ``inputs`` labels the branch (e.g. "Q K V"). Returns the height where the next
    sublayer may start.
    """
    width, height = 2.7, 0.8
    branch = [(stream_x, y), (box_x, y)]
    box_bottom = y + 0.35
    if norm == "pre":
        _block(ax, box_x, y + 0.4, 1.5, 0.36, "LayerNorm", COLOURS["norm"], fontsize=8.5)
        _line(ax, [*branch, (box_x, y + 0.22)])
        _line(ax, [(box_x, y + 0.58), (box_x, y + 0.75)])
        box_bottom = y + 0.75
    else:
        _line(ax, [*branch, (box_x, box_bottom)])
    centre = box_bottom + height / 2
    _block(ax, box_x, centre, width, height, text, colour)
    if inputs:
        side = 0.12 if box_x > stream_x else -0.12
        ax.text(
            (stream_x + box_x) / 2 + side,
            y + 0.08,
            inputs,
            ha="center",
            va="bottom",
            fontsize=8,
            color="#444444",
        )
    plus_y = box_bottom + height + 0.35
    _line(ax, [(box_x, box_bottom + height), (box_x, plus_y), (stream_x, plus_y)])
    _plus(ax, stream_x, plus_y)
    if norm == "post":
        _block(ax, stream_x, plus_y + 0.55, 1.5, 0.36, "LayerNorm", COLOURS["norm"], fontsize=8.5)
        return plus_y + 0.95
    return plus_y + 0.45


def draw_architecture() -> Figure:
    """The encoder-decoder Transformer, post-norm as in the paper, with its residual streams.

    Left, the encoder: source tokens, their embeddings times ``sqrt(d_model)`` plus the
    positional encodings, then ``N`` layers of self-attention and a feed-forward network,
    each a branch off the residual stream (the grey band) added back to it and followed
    by a LayerNorm. Right, the decoder: masked self-attention, cross-attention whose keys
    and values come from the encoder's output (the memory), a feed-forward network, and
    the output layer. The dashed boxes are the final LayerNorms that ``nn.Transformer``
    adds to both stacks. Used in section 1.
    """
    enc_x, dec_x = 1.7, 10.5  # the two residual streams
    enc_box, dec_box = 3.9, 8.3  # the sublayers' centres
    memory_x = 6.1
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(10.5, 11.0), layout="constrained")
        ax = figure.add_subplot()
        ax.set_axis_off()
        ax.set_xlim(-0.2, 12.2)
        ax.set_ylim(-0.3, 13.4)

        # inputs, embeddings, positions
        for x, label in (
            (enc_x, "source tokens  x₁ … xₙ"),
            (dec_x, "target tokens, shifted right:\n<s> y₁ … yₜ₋₁"),
        ):
            ax.text(x, 0.05, label, ha="center", va="center", fontsize=9.5)
            _line(ax, [(x, 0.35), (x, 0.72)])
            _block(ax, x, 1.0, 2.2, 0.5, "token embedding × √d_model", COLOURS["embedding"])
            _line(ax, [(x, 1.25), (x, 1.55)])
            _plus(ax, x, 1.75)
            wave_x = x + (0.55 if x == enc_x else -1.45)
            t = np.linspace(0, 2 * np.pi, 40)
            ax.plot(wave_x + 0.9 * t / (2 * np.pi), 1.75 + 0.15 * np.sin(t), color=PALETTE[5])
            ax.text(
                wave_x + 0.45,
                2.05,
                "positional encoding",
                ha="center",
                va="bottom",
                fontsize=8,
                color="#444444",
            )

        # the encoder
        _stream(ax, enc_x, 1.95, 8.5)
        _layer_frame(ax, 0.55, 5.55, "N × encoder layer", (5.45, 7.85), "right")
        y = _sublayer(
            ax,
            enc_x,
            2.55,
            enc_box,
            "multi-head self-attention\n(padding mask)",
            COLOURS["attention"],
            inputs="Q K V",
        )
        _sublayer(
            ax,
            enc_x,
            y + 0.25,
            enc_box,
            "feed-forward\nmax(0, xW₁ + b₁)W₂ + b₂",
            COLOURS["feed_forward"],
        )
        _final_norm(ax, enc_x, 8.25)
        ax.text(
            enc_x - 0.32,
            3.25,
            "residual stream",
            rotation=90,
            ha="center",
            va="center",
            fontsize=8.5,
            color="#666666",
        )

        # the decoder
        _stream(ax, dec_x, 1.95, 11.45)
        _layer_frame(ax, 6.7, 8.35, "N × decoder layer", (6.75, 10.65), "left")
        y = _sublayer(
            ax,
            dec_x,
            2.55,
            dec_box,
            "masked multi-head\nself-attention\n(causal + padding mask)",
            COLOURS["attention"],
            inputs="Q K V",
        )
        cross_y = y + 0.25
        y = _sublayer(
            ax,
            dec_x,
            cross_y,
            dec_box,
            "multi-head cross-attention\n(memory padding mask)",
            COLOURS["attention"],
            inputs="Q",
        )
        _sublayer(
            ax,
            dec_x,
            y + 0.25,
            dec_box,
            "feed-forward\nmax(0, xW₁ + b₁)W₂ + b₂",
            COLOURS["feed_forward"],
        )
        _final_norm(ax, dec_x, 10.95)
        _block(
            ax,
            dec_x,
            11.85,
            2.3,
            0.45,
            "linear + softmax\n(tied to the embedding)",
            COLOURS["output"],
            fontsize=8.5,
        )
        _line(ax, [(dec_x, 12.08), (dec_x, 12.55)])
        ax.text(dec_x, 12.75, "P(yₜ | y₁ … yₜ₋₁, x)", ha="center", va="center", fontsize=10)

        # the memory: the encoder's output, keys and values of every cross-attention
        cross_centre = cross_y + 0.35 + 0.4
        _line(
            ax,
            [
                (enc_x, 8.5),
                (enc_x, 9.3),
                (memory_x, 9.3),
                (memory_x, cross_centre),
                (dec_box - 1.35, cross_centre),
            ],
        )
        ax.text(enc_x + 0.12, 9.4, "memory: the encoder's output", fontsize=9, va="bottom")
        ax.text(
            memory_x - 0.1,
            cross_centre + 0.1,
            "K V",
            fontsize=8,
            ha="right",
            va="bottom",
            color="#444444",
        )
    return figure


def draw_norm_placement() -> Figure:
    """One residual sublayer, post-norm (the paper: ``x ← LayerNorm(x + Sublayer(x))``)
    beside pre-norm (``x ← x + Sublayer(LayerNorm(x))``, GPT-2 and most later models):
    post-norm puts a LayerNorm on the stream itself, pre-norm only on the branch, so the
    stream runs from the embeddings to the output with nothing but additions on it.
    Used in section 3.
    """
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(10.0, 4.0), layout="constrained")
        for ax, norm, title in zip(
            figure.subplots(1, 2),
            ("post", "pre"),
            (
                "post-norm (the paper):\nx ← LayerNorm(x + Sublayer(x))",
                "pre-norm (GPT-2, most later models):\nx ← x + Sublayer(LayerNorm(x))",
            ),
            strict=True,
        ):
            ax.set_axis_off()
            ax.set_xlim(-0.5, 5.0)
            ax.set_ylim(-0.2, 3.4)
            _stream(ax, 0.6, 0.0, 3.3)
            _sublayer(
                ax,
                0.6,
                0.3,
                2.9,
                "Sublayer\n(attention or feed-forward)",
                COLOURS["attention"],
                norm=norm,
            )
            ax.text(0.45, 0.0, "x", ha="right", va="bottom", fontsize=11)
            ax.set_title(title, fontsize=11)
    return figure


# --------------------------------------------------------------------------------------
# Section 2: positional encodings
# --------------------------------------------------------------------------------------


def draw_positional_encoding(
    length: int = 100, d_model: int = 64, dimensions: Sequence[int] = (0, 12, 24, 40)
) -> Figure:
    """Left: `sinusoidal_encoding` ``(length, d_model)`` as a heat map, one row per
    position. Right: the columns ``dimensions`` against the position, the fast sine and
    cosine of pair 0 and slower ones. Used in section 2."""
    checks.positive_int("length", length)
    checks.positive_int("d_model", d_model)
    for d in dimensions:
        checks.positive_int("dimensions", d, minimum=0)
        if d >= d_model:
            raise ValueError(f"dimensions: expected columns below d_model={d_model}, got {d}")
    encoding = sinusoidal_encoding(length, d_model, dtype=torch.float64).numpy()
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.4), layout="constrained")
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.3]})
        image = left.imshow(encoding, aspect="auto", cmap="PuOr", vmin=-1, vmax=1)
        left.grid(False)
        left.set(
            xlabel="dimension (even: sine, odd: cosine)",
            ylabel="position",
            title=f"PE, {length} positions × d_model = {d_model}",
        )
        figure.colorbar(image, ax=left, fraction=0.05, label="value")
        positions = np.arange(length)
        for colour, d in zip(PALETTE, dimensions, strict=False):
            kind = "sin" if d % 2 == 0 else "cos"
            period = 2 * np.pi * 10000 ** ((d - d % 2) / d_model)
            right.plot(
                positions,
                encoding[:, d],
                color=colour,
                label=f"dimension {d} ({kind}, period {period:,.1f})",
            )
        right.set(
            xlabel="position",
            ylabel="PE(position, dimension)",
            ylim=(-1.15, 1.6),
            title="each pair turns at its own frequency",
        )
        right.legend(fontsize=8, loc="upper right", ncols=2)
    return figure


def position_dot_products(length: int = 100, d_model: int = 64) -> torch.Tensor:
    """``PE PE^T`` ``(length, length)``, float64: the dot product of every two positions'
    encodings. It is ``sum_i cos(ω_i (p - q))``, a function of the offset ``p - q`` only.
    Used in section 2."""
    encoding = sinusoidal_encoding(length, d_model, dtype=torch.float64)
    return encoding @ encoding.T


def draw_position_similarity(
    length: int = 100, d_model: int = 64, positions: Sequence[int] = (10, 50, 80)
) -> Figure:
    """Left: `position_dot_products` as a heat map. Right: ``PE(p) · PE(p + k)`` against
    the offset ``k`` for a few positions ``p``: the curves lie on top of each other,
    because the dot product depends on the offset alone; it peaks at ``k = 0``
    (``d_model / 2``) and falls, not monotonically, with ``|k|``. Used in section 2."""
    dots = position_dot_products(length, d_model).numpy()
    for p in positions:
        checks.positive_int("positions", p, minimum=0)
        if p >= length:
            raise ValueError(f"positions: expected positions below length={length}, got {p}")
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.4), layout="constrained")
        left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.3]})
        image = left.imshow(dots, cmap="viridis")
        left.grid(False)
        left.set(xlabel="position q", ylabel="position p", title="PE(p) · PE(q)")
        figure.colorbar(image, ax=left, fraction=0.05)
        styles = ["-", "--", ":"]
        for index, p in enumerate(positions):
            offsets = np.arange(-p, length - p)
            right.plot(
                offsets,
                dots[p, p + offsets],
                color=PALETTE[index % len(PALETTE)],
                linestyle=styles[index % len(styles)],
                linewidth=2.2 - 0.5 * index,
                label=f"p = {p}",
            )
        right.axvline(0, color="#888888", linewidth=0.8)
        right.set(
            xlabel="offset k",
            ylabel="PE(p) · PE(p + k)",
            title="the same curve from every position: it depends on k alone",
        )
        right.legend(fontsize=9)
    return figure


# --------------------------------------------------------------------------------------
# Section 4: masks
# --------------------------------------------------------------------------------------


def draw_masks(
    panels: Sequence[tuple[str, object, Sequence[str], Sequence[str]]], columns: int = 3
) -> Figure:
    """Masks as grids: each panel is ``(title, mask, query_tokens, key_tokens)`` with a
    bool ``mask`` ``(queries, keys)``, True (green) where the query may attend the key,
    False (grey) where it may not. Rows are queries, columns keys. Used in section 4."""
    if not panels:
        raise ValueError("panels: expected at least one (title, mask, queries, keys)")
    checks.positive_int("columns", columns)
    rows = -(-len(panels) // columns)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(4.0 * min(columns, len(panels)), 3.6 * rows), layout="constrained")
        axes = np.atleast_1d(figure.subplots(rows, min(columns, len(panels)))).ravel()
        colours = mpl.colors.ListedColormap([_BLOCKED, _ALLOWED])
        for ax, (title, mask, queries, keys) in zip(axes, panels, strict=False):
            matrix = as_array(mask, "mask", 2)
            if matrix.shape != (len(queries), len(keys)):
                raise ValueError(
                    f"{title}: a mask of shape {matrix.shape} needs {matrix.shape[0]} query "
                    f"and {matrix.shape[1]} key labels, got {len(queries)} and {len(keys)}"
                )
            ax.imshow(matrix, cmap=colours, vmin=0, vmax=1)
            ax.grid(False)
            turn = 90 if max(len(str(k)) for k in keys) > 2 else 0  # labels side by side
            ax.set_xticks(np.arange(len(keys)), labels=list(keys), fontsize=9, rotation=turn)
            ax.set_yticks(np.arange(len(queries)), labels=list(queries), fontsize=9)
            ax.set_xticks(np.arange(len(keys) + 1) - 0.5, minor=True)
            ax.set_yticks(np.arange(len(queries) + 1) - 0.5, minor=True)
            ax.grid(which="minor", color="white", linewidth=1.5)
            ax.tick_params(which="minor", length=0)
            ax.set_xlabel("key")
            ax.set_ylabel("query")
            ax.set_title(title, fontsize=10)
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        handles = [
            Rectangle((0, 0), 1, 1, color=_ALLOWED, label="may attend (True)"),
            Rectangle((0, 0), 1, 1, color=_BLOCKED, label="blocked (False)"),
        ]
        figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9)
    return figure


# --------------------------------------------------------------------------------------
# Section 6: the training recipe
# --------------------------------------------------------------------------------------


def draw_warmup(ax: Axes, d_model: int = 512, warmup: int = 4000, steps: int = 20_000) -> None:
    """`warmup_schedule` for one ``d_model`` and ``warmup`` over ``steps`` steps, its peak
    ``(d_model · warmup)^-0.5`` at step ``warmup`` marked. ``ax`` comes first, so it is a
    draw function for `lessons.core.explorer`. Used in section 6 and its explorer."""
    checks.positive_int("steps", steps)
    x = np.arange(1, steps + 1)
    y = np.array([warmup_schedule(int(s), d_model, warmup) for s in x])
    ax.plot(x, y, color=PALETTE[0])
    peak = warmup_schedule(min(warmup, steps), d_model, warmup)
    ax.plot([min(warmup, steps)], [peak], "o", color=PALETTE[3])
    ax.annotate(
        f"peak {peak:.2e} at step {min(warmup, steps):,}",
        (min(warmup, steps), peak),
        xytext=(8, -4),
        textcoords="offset points",
        va="top",
        fontsize=9,
    )
    ax.set(
        xlabel="step",
        ylabel="learning rate",
        ylim=(0, 1.15 * peak),
        title=f"d_model = {d_model}, warmup = {warmup:,}",
    )


def draw_warmup_schedules(
    settings: Sequence[tuple[int, int]] = ((512, 4000), (512, 8000), (1024, 4000), (256, 4000)),
    steps: int = 20_000,
) -> Figure:
    """`warmup_schedule` for several ``(d_model, warmup)``, one line each: a linear rise
    for ``warmup`` steps, then a fall as ``1 / sqrt(step)``. Used in section 6."""
    checks.positive_int("steps", steps)
    x = np.arange(1, steps + 1)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 4.2), layout="constrained")
        ax = figure.add_subplot()
        for colour, (d_model, warmup) in zip(PALETTE, settings, strict=False):
            y = [warmup_schedule(int(s), d_model, warmup) for s in x]
            ax.plot(x, y, color=colour, label=f"d_model = {d_model}, warmup = {warmup:,}")
        ax.set(xlabel="step", ylabel="learning rate", ylim=(0, None))
        ax.set_title("lr = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)")
        ax.legend(fontsize=9)
    return figure


def draw_confidence(max_probabilities: Mapping[str, object], bins: int = 40) -> Figure:
    """Histograms of the probability a model gives its own prediction (the largest of
    each softmax), one per model, e.g. trained with and without label smoothing; the
    mean of each is a dashed line. Used in section 6."""
    if not max_probabilities:
        raise ValueError("max_probabilities: expected at least one model")
    edges = np.linspace(0.0, 1.0, bins + 1)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 4.0), layout="constrained")
        ax = figure.add_subplot()
        for colour, (name, values) in zip(PALETTE, max_probabilities.items(), strict=False):
            array = as_array(values, name, 1)
            weights = np.full(len(array), 100.0 / len(array))
            ax.hist(
                array,
                bins=edges,
                weights=weights,
                histtype="step",
                linewidth=1.8,
                color=colour,
                label=f"{name} (mean {array.mean():.3f})",
            )
            ax.axvline(array.mean(), color=colour, linestyle="--", linewidth=1.0)
        ax.set_yscale("log")
        ax.set(
            xlabel="probability of the predicted character (the largest of the softmax)",
            ylabel="% of the predictions (log scale)",
            xlim=(0, 1.0),
        )
        ax.legend(fontsize=9, loc="upper left")
    return figure


def draw_warmup_ablation(
    update_sizes: Mapping[str, Sequence[float]],
    losses: Mapping[str, Sequence[float]],
) -> Figure:
    """Left: the size of each optimizer step, ``‖Δθ‖ / ‖θ‖`` (log scale), for each run;
    right: their training losses per step (raw, faint, and smoothed). Used in section 6."""
    if set(update_sizes) != set(losses):
        raise ValueError(
            f"update_sizes and losses: expected the same runs, got {sorted(update_sizes)} and "
            f"{sorted(losses)}"
        )
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 4.2), layout="constrained")
        left, right = figure.subplots(1, 2)
        for colour, name in zip(PALETTE, update_sizes, strict=False):
            sizes = as_array(update_sizes[name], name, 1)
            left.plot(np.arange(1, len(sizes) + 1), sizes, color=colour, label=name)
            loss = as_array(losses[name], name, 1)
            steps = np.arange(1, len(loss) + 1)
            right.plot(steps, loss, color=colour, alpha=0.25, linewidth=1)
            right.plot(steps, smooth(loss), color=colour, label=name)
        left.set_yscale("log")
        left.set(xlabel="optimizer step", ylabel="‖Δθ‖ / ‖θ‖", title="the size of each update")
        right.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
        left.legend(fontsize=9)
        right.legend(fontsize=9)
    return figure


# --------------------------------------------------------------------------------------
# Section 8: experiments
# --------------------------------------------------------------------------------------

_KINDS = {
    "encoder": "encoder self-attention",
    "decoder": "decoder self-attention",
    "cross": "cross-attention",
}


def draw_attention_grid(
    maps: Mapping[str, Sequence[torch.Tensor]],
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    example: int = 0,
) -> Figure:
    """Every head of every layer of a trained encoder-decoder, for one ``example`` of the
    batch: ``maps`` is `TransformerSeq2Seq.attention_maps` (``"encoder"``, ``"decoder"``
    and ``"cross"``, each a list with one ``(batch, heads, queries, keys)`` tensor per
    layer). One row per kind and layer, one column per head; weights from 0 (white) to 1
    (dark). ``target_tokens`` label the decoder's queries (its inputs, ``<s>`` first).
    Used in section 8.
    """
    kinds = [kind for kind in _KINDS if kind in maps]
    if not kinds:
        raise ValueError(f"maps: expected the keys {list(_KINDS)}, got {list(maps)}")
    rows = [(kind, layer) for kind in kinds for layer in range(len(maps[kind]))]
    heads = maps[kinds[0]][0].shape[1]
    n_src, n_tgt = len(source_tokens), len(target_tokens)
    labels = {
        "encoder": (source_tokens, source_tokens),
        "decoder": (target_tokens, target_tokens),
        "cross": (target_tokens, source_tokens),
    }
    size = max(n_src, n_tgt)
    with mpl.rc_context(STYLE):
        figure = Figure(
            figsize=(2.9 * heads, 2.5 * len(rows) * max(1.0, size / 14)), layout="constrained"
        )
        axes = np.atleast_2d(figure.subplots(len(rows), heads, squeeze=False))
        image = None
        for r, (kind, layer) in enumerate(rows):
            weights = maps[kind][layer]
            queries, keys = labels[kind]
            for h in range(heads):
                ax = axes[r, h]
                matrix = as_array(weights[example, h, : len(queries), : len(keys)], kind, 2)
                image = ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1, aspect="auto")
                ax.grid(False)
                ax.set_xticks(np.arange(len(keys)), labels=list(keys), fontsize=7)
                ax.set_yticks(np.arange(len(queries)), labels=list(queries), fontsize=7)
                ax.set_title(f"{_KINDS[kind]}, layer {layer + 1}, head {h + 1}", fontsize=8.5)
        figure.colorbar(image, ax=axes, fraction=0.02, label="attention weight")
    return figure


def draw_perplexity_curve(
    curves: Mapping[str, Sequence[float]],
    references: Mapping[str, float],
) -> Figure:
    """Perplexity after each epoch, one line per entry of ``curves`` (epoch ``1 … n`` for
    a list of ``n`` values; models may have trained for different numbers of epochs), and
    a dotted horizontal line for each of ``references`` (a model without epochs, such as
    an n-gram model), labelled at the right end. The y axis is logarithmic, so that the
    first epochs' large perplexities do not flatten the rest. Used in section 8."""
    if not curves:
        raise ValueError("curves: expected at least one curve")
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 4.3), layout="constrained")
        ax = figure.add_subplot()
        styles = ["o-", "s--", "^-", "d:"]
        for index, (name, values) in enumerate(curves.items()):
            y = as_array(values, name, 1)
            ax.plot(
                np.arange(1, len(y) + 1),
                y,
                styles[index % len(styles)],
                color=PALETTE[index % len(PALETTE)],
                label=name,
            )
        for name, value in references.items():
            ax.axhline(value, color="#666666", linestyle=":", linewidth=1.2)
            ax.annotate(
                f"{name}: {value:.1f}",
                (1.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 4),
                textcoords="offset points",
                ha="right",
                fontsize=8.5,
                color="#444444",
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(mpl.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set(xlabel="epoch", ylabel="perplexity (log scale)")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=9, loc="upper right")
    return figure


def draw_step_times(
    lengths: Sequence[int],
    milliseconds: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "ms per training step",
) -> Axes:
    """Time per step against sequence length, one line per model, on log-log axes (a
    cost that grows like ``n`` or ``n²`` is then a straight line of slope 1 or 2).
    Used in section 8."""
    x = as_array(lengths, "lengths", 1)
    ax = new_axes(ax)
    for colour, (name, values) in zip(PALETTE, milliseconds.items(), strict=False):
        y = as_array(values, name, 1)
        if len(y) != len(x):
            raise ValueError(f"{name}: expected {len(x)} times (one per length), got {len(y)}")
        ax.plot(x, y, "o-", color=colour, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(x, labels=[f"{int(n)}" for n in x])
    ax.set(xlabel="sequence length", ylabel=ylabel)
    ax.legend(fontsize=9)
    return ax
