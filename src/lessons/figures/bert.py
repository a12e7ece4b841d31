"""The figures of the BERT chapter.

Used in: ``notebooks/05_bert.ipynb``, in the chapter's order: why a deep bidirectional
language model needs masking (section 2); the input representation, why its three
embeddings may be added, and what can be read back from their sum (section 3); the
80/10/10 rule, pre-training then fine-tuning, and the pre-training curves (section 5);
contextual vectors per layer, head scores, `DEPENDENCIES` (short sentences parsed by
hand) and attention maps (section 8); the polarity results (section 9).

Each ``draw_*`` function returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`), not registered with pyplot, so that a notebook shows one
exactly when a cell returns it; `draw_attention_map` and `mark_best_head` draw on a given
``ax`` instead, for an explorer. The figures take plain data (lists, dicts, tensors), so
the chapter passes its measured results and the tests check what is drawn. Artists that
a test looks for carry a ``gid`` naming their role (``"edge"``, ``"leak"``, ``"input"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle

from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE, as_array
from lessons.figures.elmo import draw_probe_results

__all__ = [
    "COLOURS",
    "DEPENDENCIES",
    "PAPER_PAIR",
    "draw_attention_map",
    "draw_attention_maps",
    "draw_embedding_sum",
    "draw_head_scores",
    "draw_input_representation",
    "draw_layer_similarities",
    "draw_masking",
    "draw_polarity",
    "draw_pretrain_finetune",
    "draw_pretraining_curves",
    "draw_read_back",
    "draw_why_mask",
    "mark_best_head",
]

#: The colour of each kind of thing, the same in every figure of the chapter.
COLOURS = {
    "token": PALETTE[0],
    "position": PALETTE[5],
    "segment": PALETTE[1],
    "segment_a": PALETTE[1],
    "segment_b": PALETTE[2],
    "forward": PALETTE[1],
    "backward": PALETTE[2],
    "field": PALETTE[0],
    "target": PALETTE[3],
    "mask": PALETTE[0],
    "random": PALETTE[3],
    "unchanged": PALETTE[2],
    "encoder": PALETTE[4],
    "head": PALETTE[1],
}
_GREY, _LIGHT = "#444444", "#d0d0d0"

#: The sentence pair of the BERT paper's Figure 2, as WordPiece tokens.
PAPER_PAIR = ("[CLS]", "my", "dog", "is", "cute", "[SEP]", "he", "likes", "play", "##ing", "[SEP]")


def _box(
    ax: Axes,
    x: float,
    y: float,
    width: float,
    height: float,
    text: str,
    colour: str,
    *,
    fontsize: float = 9.0,
    alpha: float = 0.28,
    gid: str | None = None,
) -> FancyBboxPatch:
    """A rounded box centred at ``(x, y)`` (data coordinates) with ``text`` inside; the
    box and its text carry ``gid``."""
    box = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=mpl.colors.to_rgba(colour, alpha),
        edgecolor=colour,
        linewidth=1.3,
        zorder=3,
        gid=gid,
    )
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4, gid=gid)
    return box


def _arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    colour: str = _GREY,
    gid: str | None = None,
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=10,
            color=colour,
            linewidth=1.1,
            shrinkA=0,
            shrinkB=0,
            zorder=2,
            gid=gid,
        )
    )


def _math_name(token: str) -> str:
    """``token`` escaped for matplotlib's mathtext, to go inside ``\\text{}``."""
    for char in "\\${}":
        token = token.replace(char, "\\" + char)
    return token


def _check_tokens(name: str, tokens: Sequence[str], minimum: int = 1) -> list[str]:
    if isinstance(tokens, str) or not all(isinstance(token, str) for token in tokens):
        raise TypeError(f"{name}: expected a list of token strings, got {checks.describe(tokens)}")
    if len(tokens) < minimum:
        raise ValueError(f"{name}: expected at least {minimum} tokens, got {len(tokens)}")
    return list(tokens)


# --------------------------------------------------------------------------------------
# Section 2: why a deep bidirectional language model needs masking
# --------------------------------------------------------------------------------------

_PANELS = {
    "gpt": "left to right (GPT)",
    "elmo": "ELMo: two one-way LMs, concatenated",
    "unmasked": "both ways at once, unmasked",
    "masked": "both ways at once, masked (BERT)",
}
_NOTES = {
    "gpt": "each position reads only the words before it\nand predicts the next one",
    "elmo": "each LM reads one side only; ELMo concatenates\n"
    "their states, but no layer reads both sides",
    "unmasked": "word t reaches its own prediction\n(here through layer 1 at t − 1): copy it",
    "masked": "position t reads [MASK]: nothing to copy;\nthe word must come from its context",
}


def _network(ax: Axes, tokens: Sequence[str], t: int, kind: str) -> None:
    """One panel of `draw_why_mask`: inputs (row 0), two layers (rows 1, 2), the
    prediction(s) at position ``t`` above; the edges that lead to a prediction are dark."""
    n = len(tokens)
    sides = {"elmo": (("f", -0.22), ("b", 0.22))}.get(kind, (("h", 0.0),))
    xy = {("x", 0, i): (float(i), 0.0) for i in range(n)}
    for stack, shift in sides:
        for layer in (1, 2):
            for i in range(n):
                xy[(stack, layer, i)] = (i + shift, float(layer))
    edges = []
    for stack, _ in sides:
        for layer in (1, 2):
            for i in range(n):
                below = ("x", 0, i) if layer == 1 else (stack, 1, i)
                if kind == "elmo":  # an LSTM: the state below, and the neighbour's state
                    edges.append((below, (stack, layer, i)))
                    previous = i - 1 if stack == "f" else i + 1
                    if 0 <= previous < n:
                        edges.append(((stack, layer, previous), (stack, layer, i)))
                    continue
                for j in range(n):
                    if kind != "gpt" or j <= i:
                        source = ("x", 0, j) if layer == 1 else (stack, 1, j)
                        edges.append((source, (stack, layer, i)))
    predictors = {stack: (stack, 2, t) for stack, _ in sides}
    colour_of = {"h": COLOURS["field"], "f": COLOURS["forward"], "b": COLOURS["backward"]}
    reaches: dict[tuple, str] = {}  # node -> the colour of the prediction it reaches
    for stack, node in predictors.items():
        frontier = [node]
        while frontier:
            current = frontier.pop()
            reaches.setdefault(current, colour_of[stack])
            frontier += [a for a, b in edges if b == current and a not in reaches]
    for source, target in edges:
        (x0, y0), (x1, y1) = xy[source], xy[target]
        reached = target in reaches
        ax.plot(
            [x0, x1],
            [y0, y1],
            color=reaches[target] if reached else _LIGHT,
            linewidth=1.1 if reached else 0.8,
            alpha=0.8 if reached else 1.0,
            zorder=1 if reached else 0,
            gid="edge",
        )
    for node, (x, y) in xy.items():
        masked = kind == "masked" and node == ("x", 0, t)
        ax.add_patch(
            Circle(
                (x, y),
                0.11 if kind == "elmo" and node[0] != "x" else 0.13,
                facecolor="#bbbbbb" if masked else "white",
                edgecolor=reaches.get(node, "#999999"),
                linewidth=1.4,
                zorder=3,
            )
        )
    targets = {"gpt": {"h": t + 1}, "elmo": {"f": t + 1, "b": t - 1}}.get(kind, {"h": t})
    for i, token in enumerate(tokens):
        shown = "[MASK]" if kind == "masked" and i == t else token
        is_target = i in targets.values() and not (kind == "masked" and i == t)
        ax.text(
            i,
            -0.3,
            shown,
            ha="center",
            va="top",
            fontsize=9.5,
            color=COLOURS["target"] if is_target else "#222222",
            fontweight="bold" if is_target else "normal",
            gid="input",
        )
    for stack, target in targets.items():
        x, _ = xy[(stack, 2, t)]
        arrow = {"f": "→ ", "b": "← "}.get(stack, "")
        ha = {"f": "right", "b": "left"}.get(stack, "center")
        ax.plot([x, x], [2.13, 2.3], color=COLOURS["target"], linewidth=1.4)
        ax.text(
            x + {"f": 0.12, "b": -0.12}.get(stack, 0.0),
            2.32,
            f"{arrow}predicts\n“{tokens[target]}”",
            ha=ha,
            va="bottom",
            fontsize=9,
            color=COLOURS["target"],
            gid="prediction",
        )
    if kind == "unmasked":
        via = t - 1
        ax.plot(
            [t, via, t, t],
            [0.0, 1.0, 2.0, 2.3],
            color=COLOURS["target"],
            linewidth=2.6,
            zorder=2,
            gid="leak",
        )
    ax.text((n - 1) / 2, -0.95, _NOTES[kind], ha="center", va="top", fontsize=9, gid="note")
    ax.set_title(_PANELS[kind], fontsize=11)


def draw_why_mask(tokens: Sequence[str] = ("my", "dog", "is", "cute"), position: int = 2) -> Figure:
    """Four two-layer networks over ``tokens``, each predicting a word at ``position`` t.

    Row 0 holds the inputs, rows 1 and 2 the layers; a line joins a node to each node
    below it that it reads. The lines that lead to the prediction at t are dark (its
    receptive field), the others light; the word to predict is in red. Top left, left to
    right (GPT): t reads positions up to t and predicts word t + 1, which it never sees.
    Top right, ELMo: a forward LSTM (orange) predicts word t + 1 and a backward one
    (green) word t − 1; each reads one side, and they are only concatenated at the top.
    Bottom left, both directions at once without a mask: asked for word t, the network
    reads word t itself; the red path shows the word reaching its own prediction even
    through a neighbour (layer 1 at t − 1), so leaving out a position's own input would
    not help. Bottom right, the masked LM: position t holds ``[MASK]``, so the word can
    come only from its context.

    Used in: notebooks/05_bert.ipynb, section 2.
    """
    tokens = _check_tokens("tokens", tokens, minimum=3)
    checks.positive_int("position", position, minimum=0)
    if not 1 <= position <= len(tokens) - 2:
        raise ValueError(
            f"position: expected a position with a word on each side, 1 to {len(tokens) - 2}, "
            f"got {position}"
        )
    n = len(tokens)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(1.9 * n + 1.8, 8.0), layout="constrained")
        axes = figure.subplots(2, 2)
        for ax, kind in zip(axes.ravel(), _PANELS, strict=True):
            _network(ax, tokens, position, kind)
            ax.set_axis_off()
            ax.set_xlim(-0.9, n - 0.1)
            ax.set_ylim(-1.75, 3.0)
            ax.set_aspect("equal")
        for ax in axes[:, 0]:
            for y, label in ((0, "input"), (1, "layer 1"), (2, "layer 2")):
                ax.text(-0.55, y, label, ha="right", va="center", fontsize=9, color="#555555")
            ax.set_xlim(-1.6, n - 0.1)
    return figure


# --------------------------------------------------------------------------------------
# Section 3: the input representation
# --------------------------------------------------------------------------------------


def _segments_of(tokens: Sequence[str], sep: str) -> list[int]:
    """Segment 0 up to and including the first ``sep``, segment 1 after it."""
    first = tokens.index(sep) if sep in tokens else len(tokens)
    return [0 if i <= first else 1 for i in range(len(tokens))]


def draw_input_representation(
    tokens: Sequence[str] = PAPER_PAIR, segments: Sequence[int] | None = None, sep: str = "[SEP]"
) -> Figure:
    """BERT's input for a pair of segments: for each token (bottom row), its token
    embedding, its segment embedding (A or B) and its position embedding, added into
    the vector that goes, after LayerNorm, to the first layer.

    ``segments`` gives each token's segment, 0 (A) or 1 (B); by default A runs up to and
    including the first ``sep`` and B after it, as in ``[CLS] A [SEP] B [SEP]``.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    tokens = _check_tokens("tokens", tokens)
    segments = _segments_of(tokens, sep) if segments is None else list(segments)
    if len(segments) != len(tokens) or any(s not in (0, 1) for s in segments):
        raise ValueError(
            f"segments: expected {len(tokens)} values, each 0 or 1, got {checks.describe(segments)}"
        )
    n = len(tokens)
    rows = {"token": 1.0, "segment": 2.0, "position": 3.0, "sum": 4.15}
    labels = {
        "token": "token embeddings",
        "segment": "segment embeddings",
        "position": "position embeddings",
        "sum": "sum (then LayerNorm)",
    }
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(1.0 * n + 2.2, 4.0), layout="constrained")
        ax = figure.add_subplot()
        ax.set_axis_off()
        for i, (token, segment) in enumerate(zip(tokens, segments, strict=True)):
            ax.text(i, 0.3, token, ha="center", va="center", fontsize=10, gid="input")
            name = _math_name(token)
            _box(
                ax,
                i,
                rows["token"],
                0.88,
                0.5,
                f"$E_{{\\text{{{name}}}}}$",
                COLOURS["token"],
                gid="token",
            )
            letter = "AB"[segment]
            colour = COLOURS["segment_a" if segment == 0 else "segment_b"]
            _box(ax, i, rows["segment"], 0.88, 0.5, f"$E_{letter}$", colour, gid="segment")
            _box(
                ax,
                i,
                rows["position"],
                0.88,
                0.5,
                f"$E_{{{i}}}$",
                COLOURS["position"],
                gid="position",
            )
            _box(
                ax,
                i,
                rows["sum"],
                0.88,
                0.5,
                f"$\\mathbf{{x}}_{{{i}}}$",
                "#888888",
                alpha=0.15,
                gid="sum",
            )
            for y, sign in ((1.5, "+"), (2.5, "+"), (3.55, "=")):
                ax.text(i, y, sign, ha="center", va="center", fontsize=12, gid="sign")
        for row, y in rows.items():
            ax.text(-0.6, y, labels[row], ha="right", va="center", fontsize=10)
        ax.text(-0.6, 0.3, "input", ha="right", va="center", fontsize=10)
        ax.set_xlim(-2.9, n - 0.45)
        ax.set_ylim(0.0, 4.5)
    return figure


_BLOCKS = (("token", "tok", "V"), ("position", "pos", "P"), ("segment", "seg", "S"))


def draw_embedding_sum(
    vocab: int = 6,
    positions: int = 4,
    segments: int = 2,
    hidden: int = 3,
    token: int = 2,
    position: int = 1,
    segment: int = 0,
    seed: int = 0,
) -> Figure:
    """Why the three embeddings may be added: the concatenated one-hot vector
    ``[one-hot(token) | one-hot(position) | one-hot(segment)]`` (length ``vocab +
    positions + segments``) times the stacked matrix ``[E_tok; E_pos; E_seg]`` (one row
    per entry, ``hidden`` columns) picks one row of each block, so it equals
    ``E_tok[token] + E_pos[position] + E_seg[segment]``. The matrix holds small integers
    drawn with ``seed``, so the reader can check the sum by hand.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    sizes = {
        "token": checks.positive_int("vocab", vocab),
        "position": checks.positive_int("positions", positions),
        "segment": checks.positive_int("segments", segments),
    }
    checks.positive_int("hidden", hidden)
    chosen = {"token": token, "position": position, "segment": segment}
    for (name, size), argument in zip(
        sizes.items(), ("vocab", "positions", "segments"), strict=True
    ):
        checks.positive_int(name, chosen[name], minimum=0)
        if chosen[name] >= size:
            raise ValueError(
                f"{name}: expected an index below {argument}={size}, got {chosen[name]}"
            )
    total = sum(sizes.values())
    starts = dict(zip(sizes, np.cumsum([0, *sizes.values()])[:-1].tolist(), strict=True))
    ones = [starts[name] + chosen[name] for name in sizes]
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randint(-2, 3, (total, hidden), generator=generator).tolist()
    block_of = [name for name in sizes for _ in range(sizes[name])]
    matrix_x, top = total + 2.0, total / 2  # the matrix's left edge; rows run down from top
    with mpl.rc_context(STYLE):
        figure = Figure(
            figsize=(0.42 * (total + 3 * hidden + 12), 0.42 * total + 1.6), layout="constrained"
        )
        ax = figure.add_subplot()
        ax.set_axis_off()
        ax.set_aspect("equal")
        # the one-hot vector, one cell per entry, at height 0
        for k in range(total):
            on = k in ones
            colour = COLOURS[block_of[k]]
            ax.add_patch(
                Rectangle(
                    (k, -0.5),
                    1,
                    1,
                    facecolor=mpl.colors.to_rgba(colour, 0.9 if on else 0.15),
                    edgecolor="white",
                    gid="one-hot",
                )
            )
            ax.text(
                k + 0.5,
                0,
                "1" if on else "0",
                ha="center",
                va="center",
                fontsize=9,
                fontweight="bold" if on else "normal",
                gid="one-hot",
            )
            ax.text(
                k + 0.5,
                0.6,
                str(k),
                ha="center",
                va="bottom",
                fontsize=7,
                color="#222222" if on else "#999999",
                gid="index",
            )
        for name, _, letter in _BLOCKS:
            middle = starts[name] + sizes[name] / 2
            ax.text(
                middle,
                -0.75,
                f"one-hot\n({name})\n{letter} = {sizes[name]}",
                ha="center",
                va="top",
                fontsize=8.5,
                color=COLOURS[name],
            )
        ax.text(total + 1.0, 0, "×", ha="center", va="center", fontsize=16)
        # the stacked matrix, one row per entry of the one-hot vector
        for k, row in enumerate(matrix):
            on = k in ones
            colour = COLOURS[block_of[k]]
            y = top - k - 1
            ax.text(
                matrix_x - 0.15,
                y + 0.5,
                str(k),
                ha="right",
                va="center",
                fontsize=7,
                color="#222222" if on else "#999999",
                gid="row-index",
            )
            for j, value in enumerate(row):
                ax.add_patch(
                    Rectangle(
                        (matrix_x + j, y),
                        1,
                        1,
                        facecolor=mpl.colors.to_rgba(colour, 0.75 if on else 0.15),
                        edgecolor="white",
                        gid=f"matrix:{k}",
                    )
                )
                ax.text(
                    matrix_x + j + 0.5,
                    y + 0.5,
                    f"{value}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    gid=f"matrix:{k}",
                )
            if on:
                ax.add_patch(
                    Rectangle(
                        (matrix_x, y),
                        hidden,
                        1,
                        facecolor="none",
                        edgecolor="black",
                        linewidth=1.6,
                        gid="selected",
                    )
                )
        for name, symbol, letter in _BLOCKS:
            middle = top - starts[name] - sizes[name] / 2
            ax.text(
                matrix_x + hidden + 0.2,
                middle,
                f"$\\mathbf{{E}}_{{\\mathrm{{{symbol}}}}}$\n({letter} × H)",
                ha="left",
                va="center",
                fontsize=9,
                color=COLOURS[name],
            )
        # the three selected rows and their sum
        result_x = matrix_x + hidden + 3.2
        ax.text(result_x - 0.6, 0, "=", ha="center", va="center", fontsize=16)
        rows = [matrix[k] for k in ones]
        heights = (2.7, 0.0, -2.7)
        for (name, symbol, _), row, y in zip(_BLOCKS, rows, heights, strict=True):
            index = chosen[name]
            for j, value in enumerate(row):
                ax.add_patch(
                    Rectangle(
                        (result_x + j, y - 0.5),
                        1,
                        1,
                        facecolor=mpl.colors.to_rgba(COLOURS[name], 0.75),
                        edgecolor="white",
                    )
                )
                ax.text(
                    result_x + j + 0.5,
                    y,
                    f"{value}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    gid=f"row:{name}",
                )
            ax.text(
                result_x + hidden / 2,
                y - 0.6,
                f"$\\mathbf{{E}}_{{\\mathrm{{{symbol}}}}}[{index}]$",
                ha="center",
                va="top",
                fontsize=8.5,
            )
        for y in heights[:2]:
            ax.text(result_x + hidden / 2, y - 1.6, "+", ha="center", va="center", fontsize=12)
        sum_x = result_x + hidden + 1.2
        ax.text(sum_x - 0.6, 0, "=", ha="center", va="center", fontsize=16)
        for j, value in enumerate(np.sum(rows, axis=0).tolist()):
            ax.add_patch(Rectangle((sum_x + j, -0.5), 1, 1, facecolor="#cccccc", edgecolor="white"))
            ax.text(
                sum_x + j + 0.5, 0, f"{value}", ha="center", va="center", fontsize=8.5, gid="sum"
            )
        ax.text(
            sum_x + hidden / 2,
            -0.75,
            "the sum of\nthe three\nembeddings",
            ha="center",
            va="top",
            fontsize=8.5,
        )
        ax.set_xlim(-0.3, sum_x + hidden + 0.3)
        ax.set_ylim(top - total - 0.3, top + 0.3)
    return figure


def draw_read_back(results: Mapping[str, tuple[float, float]]) -> Figure:
    """Horizontal bars, from 0, of how well each property can be read back linearly from
    the summed embedding: ``results`` maps a property (token identity, position,
    segment) to ``(accuracy, chance)``; chance, the accuracy of always guessing the
    commonest class, is a black tick on each bar's row.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    if not results:
        raise ValueError("results: expected at least one property -> (accuracy, chance)")
    names = list(results)
    for name in names:
        pair = results[name]
        if len(pair) != 2:
            raise ValueError(f"results[{name!r}]: expected (accuracy, chance), got {pair!r}")
        for what, value in zip(("accuracy", "chance"), pair, strict=True):
            checks.probability(f"results[{name!r}] {what}", value, allow_one=True)
    accuracies = [float(results[name][0]) for name in names]
    chances = [float(results[name][1]) for name in names]
    rows = np.arange(len(names))[::-1]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 0.65 * len(names) + 1.4), layout="constrained")
        ax = figure.add_subplot()
        ax.barh(rows, accuracies, height=0.6, color=COLOURS["token"], gid="accuracy")
        ax.plot(
            chances,
            rows,
            linestyle="none",
            marker="|",
            markersize=22,
            markeredgewidth=2.5,
            color=PALETTE[7],
            label="chance (the commonest class)",
            gid="chance",
        )
        for y, accuracy in zip(rows, accuracies, strict=True):
            inside = accuracy >= 0.2
            ax.text(
                accuracy - 0.01 if inside else accuracy + 0.01,
                y,
                f"{accuracy:.3f}",
                ha="right" if inside else "left",
                va="center",
                fontsize=9.5,
                color="white" if inside else "#222222",
                gid="value",
            )
        ax.set_yticks(rows, labels=names)
        ax.set_xlim(0, 1)
        ax.set_xlabel("linear read-back accuracy from the summed embedding (bars start at 0)")
        ax.grid(axis="y", visible=False)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)
    return figure


# --------------------------------------------------------------------------------------
# Section 5: pre-training
# --------------------------------------------------------------------------------------

_FATES = {
    "mask": "[MASK] (80% of the selected)",
    "random": "a random token (10%)",
    "unchanged": "unchanged (10%)",
}


def _fitting(token: str, size: float = 9.5, room: int = 10) -> float:
    """A font size at which ``token`` fits a box made for ``room`` characters."""
    return min(size, size * room / max(len(token), 1))


def draw_masking(
    tokens: Sequence[str],
    became: Mapping[int, str],
    mask_token: str = "[MASK]",
    per_row: int = 10,
) -> Figure:
    """The 80/10/10 rule on one sequence: each box is what the model reads; the selected
    positions (the keys of ``became``, each mapped to the token it became) are coloured by
    their fate (``mask_token``, a random token, or unchanged), with the label, the
    original token the loss asks for, under them. Unselected positions have no label and
    count in no loss. A random draw that happens to be ``mask_token`` or the original
    token is drawn as what it looks like, as the model sees it. Boxes wrap after
    ``per_row`` tokens.

    Used in: notebooks/05_bert.ipynb, section 5.
    """
    tokens = _check_tokens("tokens", tokens)
    checks.positive_int("per_row", per_row)
    for i, token in became.items():
        checks.positive_int("became", i, minimum=0)
        if i >= len(tokens):
            raise ValueError(f"became: expected positions below {len(tokens)}, got {i}")
        if not isinstance(token, str):
            raise TypeError(f"became[{i}]: expected a token string, got {checks.describe(token)}")
    fates = {}
    for i, token in became.items():
        fates[i] = (
            "mask" if token == mask_token else "unchanged" if token == tokens[i] else "random"
        )
    lines = -(-len(tokens) // per_row)
    with mpl.rc_context(STYLE):
        figure = Figure(
            figsize=(0.9 * min(per_row, len(tokens)) + 1.6, 1.3 * lines + 0.9), layout="constrained"
        )
        ax = figure.add_subplot()
        ax.set_axis_off()
        for i, token in enumerate(tokens):
            x, y = i % per_row, -1.5 * (i // per_row)
            fate = fates.get(i)
            shown = became.get(i, token)
            colour = COLOURS[fate] if fate else "#999999"
            _box(
                ax,
                x,
                y,
                0.9,
                0.5,
                shown,
                colour,
                alpha=0.35 if fate else 0.0,
                fontsize=_fitting(shown),
                gid=f"input:{fate or 'kept'}",
            )
            if fate:
                ax.text(
                    x,
                    y - 0.45,
                    token,
                    ha="center",
                    va="top",
                    fontsize=_fitting(token),
                    style="italic",
                    color=colour,
                    gid="label",
                )
        for line in range(lines):
            y = -1.5 * line
            ax.text(-0.6, y, "input", ha="right", va="center", fontsize=9.5, color="#555555")
            ax.text(-0.6, y - 0.6, "label", ha="right", va="center", fontsize=9.5, color="#555555")
        counts = {fate: sum(f == fate for f in fates.values()) for fate in _FATES}
        handles = [
            Patch(
                facecolor=mpl.colors.to_rgba(COLOURS[fate], 0.35),
                edgecolor=COLOURS[fate],
                label=f"{text}: {counts[fate]}",
            )
            for fate, text in _FATES.items()
        ]
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="#999999",
                label=f"not selected (no loss): {len(tokens) - len(fates)}",
            )
        )
        figure.legend(
            handles=handles, loc="outside lower center", ncols=2, fontsize=9, frameon=False
        )
        ax.set_xlim(-1.7, min(per_row, len(tokens)) - 0.45)
        ax.set_ylim(-1.5 * (lines - 1) - 1.0, 0.4)
    return figure


def _bert_stack(
    ax: Axes,
    tokens: Sequence[str],
    left: float,
    label: str,
    heads: Mapping[int, tuple[str, str]],
) -> None:
    """The inputs, BERT as one box over them, an output vector per token, and the
    ``heads`` (position -> (name, what it predicts)) above their outputs."""
    centre = left + (len(tokens) - 1) / 2
    for i, token in enumerate(tokens):
        x = left + i
        ax.text(x, 0.0, token, ha="center", va="center", fontsize=9.5, gid="input")
        _arrow(ax, (x, 0.25), (x, 0.6))
        _arrow(ax, (x, 2.0), (x, 2.35))
        output = "C" if i == 0 else f"$T_{{{i}}}$"
        _box(ax, x, 2.6, 0.7, 0.45, output, "#888888", alpha=0.15, fontsize=9.5)
    _box(
        ax, centre, 1.3, len(tokens) - 0.2, 1.3, label, COLOURS["encoder"], fontsize=10, gid="bert"
    )
    for i, (name, text) in heads.items():
        x = left + i
        _arrow(ax, (x, 2.85), (x, 3.25))
        _box(ax, x, 3.55, 0.9, 0.55, text, COLOURS["head"], fontsize=8.5, gid=f"head:{i}")
        ax.text(x, 3.9, name, ha="center", va="bottom", fontsize=8.5, gid=f"head:{i}")


def draw_pretrain_finetune(
    pretraining_tokens: Sequence[str] = (
        "[CLS]",
        "the",
        "[MASK]",
        "sat",
        "[SEP]",
        "it",
        "[MASK]",
        "[SEP]",
    ),
    masked: Mapping[int, str] | None = None,
    finetuning_tokens: Sequence[str] = ("[CLS]", "a", "gripping", "film", "[SEP]"),
    task: str = "positive /\nnegative",
) -> Figure:
    """Pre-training, then fine-tuning, as one schematic. Left: BERT pre-trained on
    unlabelled pairs ``[CLS] A [SEP] B [SEP]``: the masked-LM head (MLM) predicts the
    original word at each masked position (``masked`` maps a position to its word; by
    default those of the default tokens) and the next-sentence head (NSP) reads the
    output ``C`` at ``[CLS]``. Right: the same network, initialised with the pre-trained
    weights, and a new head for the ``task`` on ``C``; all the weights are fine-tuned on
    the labelled task.

    Used in: notebooks/05_bert.ipynb, section 5.
    """
    pretraining_tokens = _check_tokens("pretraining_tokens", pretraining_tokens, minimum=2)
    finetuning_tokens = _check_tokens("finetuning_tokens", finetuning_tokens, minimum=2)
    if masked is None:
        defaults = {2: "cat", 6: "purred"}
        masked = {i: w for i, w in defaults.items() if i < len(pretraining_tokens)}
    for i in masked:
        checks.positive_int("masked", i)
        if i >= len(pretraining_tokens):
            raise ValueError(
                f"masked: expected positions 1 to {len(pretraining_tokens) - 1}, got {i}"
            )
    n_pre, n_fine = len(pretraining_tokens), len(finetuning_tokens)
    right = n_pre + 2.2
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(0.7 * (n_pre + n_fine + 2.4), 4.4), layout="constrained")
        ax = figure.add_subplot()
        ax.set_axis_off()
        heads = {0: ("NSP", "IsNext /\nNotNext")}
        heads |= {i: ("MLM", f"“{word}”") for i, word in sorted(masked.items())}
        _bert_stack(ax, pretraining_tokens, 0.0, "BERT\n(embeddings +\nN encoder layers)", heads)
        _bert_stack(
            ax,
            finetuning_tokens,
            right,
            "BERT\n(starts from the\npre-trained weights)",
            {0: ("new task head", task)},
        )
        _arrow(ax, (n_pre - 0.45, 1.3), (right - 0.55, 1.3), gid="copy")
        ax.text(
            (n_pre - 1 + right) / 2, 1.4, "copy the\nweights", ha="center", va="bottom", fontsize=9
        )
        for x, title in (
            ((n_pre - 1) / 2, "pre-training: unlabelled text"),
            (right + (n_fine - 1) / 2, "fine-tuning: a labelled task"),
        ):
            ax.text(x, 4.45, title, ha="center", va="bottom", fontsize=10.5, fontweight="bold")
        ax.text(
            right + (n_fine - 1) / 2,
            -0.45,
            "all weights fine-tuned,\nBERT's and the head's",
            ha="center",
            va="top",
            fontsize=9.5,
            color=COLOURS["target"],
            gid="note",
        )
        ax.text(
            (n_pre - 1) / 2,
            -0.45,
            "MLM: masked language model\nNSP: next sentence prediction",
            ha="center",
            va="top",
            fontsize=9.5,
            color="#555555",
        )
        ax.set_xlim(-0.7, right + n_fine - 0.3)
        ax.set_ylim(-1.2, 4.9)
    return figure


def draw_pretraining_curves(
    curve: Sequence[Mapping[str, float]], baselines: Mapping[str, float] | None = None
) -> Figure:
    """Pre-training as it went: left, the loss against the step; right, the masked-LM
    and next-sentence accuracies against the step, with each of ``baselines`` (name ->
    accuracy, e.g. the most frequent word, chance for next-sentence prediction) as a
    labelled dotted line. ``curve`` is a list of points ``{"step", "loss",
    "mlm_accuracy", "nsp_accuracy"}``; an accuracy missing from the points is not drawn.
    A baseline is comparable with a curve only if both were measured the same way (on
    the same kind of masked words): the caption must say how each was measured.

    Used in: notebooks/05_bert.ipynb, section 5.
    """
    if not curve:
        raise ValueError("curve: expected at least one point {step, loss, ...}")
    for index, point in enumerate(curve):
        missing = {"step", "loss"} - set(point)
        if missing:
            raise ValueError(f"curve[{index}]: expected the keys step and loss, missing {missing}")
    baselines = dict(baselines or {})
    for name, value in baselines.items():
        checks.probability(f"baselines[{name!r}]", value, allow_one=True)
    steps = np.array([point["step"] for point in curve], dtype=float)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(11.0, 4.0), layout="constrained")
        left, right = figure.subplots(1, 2)
        left.plot(steps, [point["loss"] for point in curve], "-", color=PALETTE[0], gid="loss")
        left.set(xlabel="optimizer step", ylabel="training loss (masked LM + next sentence)")
        names = {"mlm_accuracy": "masked LM", "nsp_accuracy": "next sentence"}
        for colour, (key, name) in zip((PALETTE[0], PALETTE[1]), names.items(), strict=True):
            if all(key in point for point in curve):
                right.plot(
                    steps, [point[key] for point in curve], "-", color=colour, label=name, gid=key
                )
        for value in baselines.values():
            right.axhline(value, color="#666666", linestyle=":", linewidth=1.3, gid="baseline")
        right.set(xlabel="optimizer step", ylabel="accuracy", ylim=(0, 1))
        placed: list[float] = []
        for name, value in sorted(baselines.items(), key=lambda item: item[1]):
            y = max(value, placed[-1] + 0.07) if placed else value  # no two labels on top
            placed.append(y)
            right.annotate(
                f"{name}: {value:.3f}",
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=8.5,
                color="#444444",
                gid="baseline",
            )
        if right.lines:
            right.legend(fontsize=9, loc="upper left")
    return figure


# --------------------------------------------------------------------------------------
# Section 8: what the layers and the heads hold
# --------------------------------------------------------------------------------------


def draw_layer_similarities(
    minilm: Mapping[str, Sequence[float]],
    elmo: Mapping[str, Sequence[float]],
    same: Mapping[str, bool],
    groups: Mapping[str, str] | None = None,
) -> Figure:
    """The cosine similarity of a word's vectors in two sentences, layer by layer: left
    MiniLM (the embeddings, then layers 1 to 6), right ELMo (layers 0 to 2), the y axis
    shared. ``minilm`` and ``elmo`` map a label (a word and its two sentences) to one
    similarity per layer; ``same[label]`` says whether the two uses have the same sense
    (solid line) or not (dashed). Lines of one of ``groups`` (label -> group, e.g. the
    word) share a colour; by default each label has its own. The legend sits outside the
    axes.

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    labels = list(dict.fromkeys([*minilm, *elmo]))
    if not labels:
        raise ValueError("minilm, elmo: expected at least one label with similarities")
    missing = [label for label in labels if label not in same]
    if missing:
        raise ValueError(f"same: expected a True/False flag for every label, missing {missing}")
    groups = dict(groups or {label: label for label in labels})
    order = list(dict.fromkeys(groups.get(label, label) for label in labels))
    colour_of = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(order)}
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(11.0, 4.2), layout="constrained")
        axes = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [7, 3]})
        panels = (
            (axes[0], minilm, "MiniLM (all-MiniLM-L6-v2)", ["emb.", *map(str, range(1, 7))]),
            (axes[1], elmo, "ELMo (chapter 2)", ["0", "1", "2"]),
        )
        for ax, values, title, ticks in panels:
            for label, similarities in values.items():
                y = as_array(similarities, label, 1)
                if len(y) != len(ticks):
                    raise ValueError(
                        f"{label}: expected {len(ticks)} similarities for {title}, got {len(y)}"
                    )
                ax.plot(
                    np.arange(len(y)),
                    y,
                    marker="o",
                    markersize=4,
                    linestyle="-" if same[label] else "--",
                    color=colour_of[groups.get(label, label)],
                    label=label,
                )
            ax.set_xticks(np.arange(len(ticks)), labels=ticks)
            ax.set_title(title)
        axes[0].set(xlabel="layer (emb.: the embeddings)", ylabel="cosine similarity")
        axes[1].set_xlabel("layer (0: the characters)")
        handles = {}
        for ax in axes:
            for line in ax.lines:
                handles.setdefault(line.get_label(), line)
        figure.legend(
            handles.values(),
            handles.keys(),
            loc="outside right upper",
            fontsize=9,
            title="solid: same sense\ndashed: different senses",
            title_fontsize=9,
        )
    return figure


def draw_head_scores(
    scores,
    title: str,
    label: str = "score",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    annotate: bool | None = None,
) -> Figure:
    """A score per head, ``(layers, heads)`` (e.g. `lessons.bert.head_accuracy`), as a
    heat map: layer 1 at the top, head 1 at the left, the colour scale from ``vmin`` to
    ``vmax`` (None: the scores' own range) labelled ``label``. Each value is written in
    its cell when ``annotate`` is True, or, by default, when there are at most 120 cells.
    The best head is framed in red (`mark_best_head`) and named under the title.

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    matrix = as_array(scores, "scores", 2)
    layers, heads = matrix.shape
    annotate = matrix.size <= 120 if annotate is None else annotate
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(0.55 * heads + 2.4, 0.5 * layers + 1.4), layout="constrained")
        ax = figure.add_subplot()
        image = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.grid(False)
        ax.set_xticks(np.arange(heads), labels=[str(h + 1) for h in range(heads)])
        ax.set_yticks(np.arange(layers), labels=[str(layer + 1) for layer in range(layers)])
        ax.set(xlabel="head", ylabel="layer (1 at the top)")
        figure.colorbar(image, ax=ax, label=label)
        if annotate:
            for (i, j), value in np.ndenumerate(matrix):
                red, green, blue, _ = image.cmap(image.norm(value))
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="black" if light else "white",
                    gid="value",
                )
        layer, head = mark_best_head(ax, matrix)
        best = f"framed: the best, layer {layer + 1}, head {head + 1} ({matrix[layer, head]:.2f})"
        ax.set_title(f"{title}\n{best}", fontsize=11)
    return figure


def mark_best_head(ax: Axes, scores) -> tuple[int, int]:
    """Frame the highest of ``scores`` ``(layers, heads)`` in red on a heat map drawn on
    ``ax`` (cell ``(layer, head)`` at x = head, y = layer); returns its ``(layer, head)``,
    counted from 0 (the first of a tie).

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    matrix = as_array(scores, "scores", 2)
    layer, head = np.unravel_index(int(np.nanargmax(matrix)), matrix.shape)
    ax.add_patch(
        Rectangle(
            (head - 0.5, layer - 0.5),
            1,
            1,
            facecolor="none",
            edgecolor=COLOURS["target"],
            linewidth=2.5,
            gid="best",
        )
    )
    return int(layer), int(head)


# fmt: off
#: Short sentences labelled by hand with Universal Dependencies relations: each word is
#: ``word/relation/head``, the head a 1-based word index (0 for the root). Every word is
#: one WordPiece of all-MiniLM-L6-v2's vocabulary, so word i is token i + 1 after [CLS].
#: Used in: notebooks/05_bert.ipynb, section 8, to score heads against syntax.
DEPENDENCIES: tuple[str, ...] = (
    "the/det/2 cat/nsubj/3 chased/root/0 a/det/6 small/amod/6 mouse/obj/3",
    "my/nmod:poss/2 brother/nsubj/3 plays/root/0 the/det/5 piano/obj/3 every/det/7 "
    "evening/obl:tmod/3",
    "the/det/3 old/amod/3 man/nsubj/4 sold/root/0 his/nmod:poss/6 house/obj/4 to/case/9 a/det/9 "
    "doctor/obl/4",
    "she/nsubj/3 has/aux/3 written/root/0 three/nummod/5 books/obj/3 about/case/8 the/det/8 "
    "war/nmod/5",
    "the/det/2 children/nsubj/5 were/aux/5 not/advmod/5 sleeping/root/0 in/case/8 "
    "their/nmod:poss/8 beds/obl/5",
    "a/det/3 young/amod/3 woman/nsubj/4 opened/root/0 the/det/7 heavy/amod/7 door/obj/4 "
    "slowly/advmod/4",
    "the/det/2 government/nsubj/4 will/aux/4 build/root/0 a/det/7 new/amod/7 bridge/obj/4 "
    "across/case/10 the/det/10 river/obl/4",
    "we/nsubj/2 visited/root/0 the/det/4 museum/obj/2 with/case/7 our/nmod:poss/7 friends/obl/2 "
    "last/amod/9 week/obl:tmod/2",
    "the/det/2 dog/nsubj/3 ate/root/0 the/det/5 bread/obj/3 on/case/8 the/det/8 table/obl/3",
    "his/nmod:poss/2 father/nsubj/3 taught/root/0 history/obj/3 at/case/8 a/det/8 small/amod/8 "
    "school/obl/3",
    "they/nsubj/3 had/aux/3 lost/root/0 the/det/5 game/obj/3 by/case/8 two/nummod/8 points/obl/3",
    "the/det/2 students/nsubj/3 read/root/0 a/det/6 long/amod/6 story/obj/3 about/case/9 a/det/9 "
    "king/nmod/6",
    "the/det/3 red/amod/3 car/nsubj/4 stopped/root/0 near/case/7 the/det/7 station/obl/4",
    "the/det/2 company/nsubj/4 has/aux/4 hired/root/0 five/nummod/7 new/amod/7 engineers/obj/4 "
    "this/det/9 year/obl:tmod/4",
    "an/det/3 angry/amod/3 crowd/nsubj/4 filled/root/0 the/det/6 streets/obj/4 of/case/9 the/det/9 "
    "city/nmod/6",
    "the/det/2 teacher/nsubj/3 gave/root/0 the/det/5 class/iobj/3 a/det/8 difficult/amod/8 "
    "test/obj/3",
    "my/nmod:poss/2 sister/nsubj/4 can/aux/4 speak/root/0 four/nummod/6 languages/obj/4",
    "the/det/2 river/nsubj/3 flows/root/0 through/case/7 a/det/7 green/amod/7 valley/obl/3",
    "the/det/2 police/nsubj/3 found/root/0 the/det/6 stolen/amod/6 money/obj/3 in/case/9 a/det/9 "
    "bag/obl/3",
    "a/det/2 bird/nsubj/4 was/aux/4 singing/root/0 outside/case/7 our/nmod:poss/7 window/obl/4",
    "the/det/2 president/nsubj/3 signed/root/0 the/det/5 law/obj/3 after/case/8 a/det/8 "
    "debate/obl/3",
    "the/det/3 small/amod/3 boat/nsubj/4 crossed/root/0 the/det/7 cold/amod/7 sea/obj/4 at/case/9 "
    "night/obl/4",
    "her/nmod:poss/2 parents/nsubj/3 bought/root/0 a/det/5 farm/obj/3 in/case/7 france/obl/3",
    "the/det/2 scientists/nsubj/4 have/aux/4 discovered/root/0 a/det/7 new/amod/7 star/obj/4",
)
# fmt: on


def draw_attention_map(
    ax: Axes, weights, tokens: Sequence[str], title: str = "", colourbar: bool = False
) -> None:
    """One head's attention weights ``(seq, seq)`` on ``ax``: queries on the y axis, keys on
    the x axis, both labelled with ``tokens``, from 0 (white) to 1 (black). ``ax`` comes
    first, so it can draw for an explorer.

    Used in: notebooks/05_bert.ipynb, section 8, and its explorer.
    """
    tokens = _check_tokens("tokens", tokens)
    matrix = as_array(weights, "weights", 2)
    if matrix.shape != (len(tokens), len(tokens)):
        raise ValueError(
            f"weights: expected shape ({len(tokens)}, {len(tokens)}) for {len(tokens)} tokens, "
            f"got {matrix.shape}"
        )
    image = ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1)
    ax.grid(False)
    ax.set_xticks(np.arange(len(tokens)), labels=tokens, rotation=90, fontsize=9)
    ax.set_yticks(np.arange(len(tokens)), labels=tokens, fontsize=9)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title, fontsize=10)
    if colourbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, label="attention weight")


def draw_attention_maps(tokens: Sequence[str], maps: Sequence[tuple[str, object]]) -> Figure:
    """A row of attention maps over the same ``tokens``: ``maps`` is a list of ``(title,
    weights)``, each ``weights`` ``(seq, seq)`` (a head of `lessons.bert.internals`);
    queries on the y axis, keys on the x axis, one colour scale from 0 to 1 for all.

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    if not maps:
        raise ValueError("maps: expected at least one (title, weights)")
    size = max(3.2, 0.32 * len(tokens) + 1.4)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(size * len(maps) + 1.0, size + 0.4), layout="constrained")
        axes = np.atleast_1d(figure.subplots(1, len(maps)))
        for ax, (title, weights) in zip(axes, maps, strict=True):
            draw_attention_map(ax, weights, tokens, title)
        for ax in axes[1:]:
            ax.set_ylabel("")
        figure.colorbar(axes[0].images[0], ax=list(axes), fraction=0.02, label="attention weight")
    return figure


# --------------------------------------------------------------------------------------
# Section 9: fine-tuning, against frozen features
# --------------------------------------------------------------------------------------


class _Score(NamedTuple):
    """A mean accuracy and its standard error, as `draw_probe_results` reads them."""

    mean: float
    standard_error: float


def draw_polarity(
    results: Mapping[str, tuple[float, float]], chance: float = 0.5, chance_label: str = "chance"
) -> Figure:
    """Held-out polarity accuracy of each method: ``results`` maps a method to ``(mean
    accuracy, standard error)``; horizontal bars start at ``chance`` and carry an error
    bar of one standard error (chapter 2's `lessons.figures.elmo.draw_probe_results`).

    Used in: notebooks/05_bert.ipynb, section 9.
    """
    if not results:
        raise ValueError("results: expected at least one method -> (mean, standard error)")
    scores = {}
    for name, pair in results.items():
        if len(pair) != 2:
            raise ValueError(f"results[{name!r}]: expected (mean, standard error), got {pair!r}")
        mean = checks.probability(f"results[{name!r}] mean", pair[0], allow_one=True)
        error = checks.number(f"results[{name!r}] standard error", pair[1], low=0.0)
        scores[name] = _Score(mean, error)
    checks.probability("chance", chance, allow_one=True)
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.5, 0.55 * len(scores) + 1.3), layout="constrained")
        draw_probe_results(figure.add_subplot(), scores, chance, chance_label)
    return figure
