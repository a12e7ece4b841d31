"""The figures of the chapter on big models and small GPUs.

Used in: ``notebooks/07_big_models.ipynb``, in the chapter's order: where the memory of
training goes, as stacked bars of parameters, gradients, optimiser states and
activations against the memory of common GPUs (`draw_memory_bar`, for the explorer, and
`draw_memory_bars`), and the formula's activations beside those chapter 4's layer saves
(`draw_activation_terms`) (section 1); checkpointing's memory and time against the
number of segments (`draw_segments`, section 4); float32 against bfloat16 training and
the loss scale of float16 training (`draw_precision_curves`, `draw_grad_scaler`, section
5); the model states per device under ZeRO's stages (`draw_zero_stages`, section 7).

Each ``draw_*`` function returns a matplotlib ``Figure`` in the book's style
(`lessons.core.plot.STYLE`), not registered with pyplot, so that a notebook shows one
exactly when a cell returns it; `draw_memory_bar` draws on a given ``ax`` instead, for an
explorer. The bytes of the model states come from `lessons.memory.training_memory`; the
other figures draw what `lessons.memory` measured (`activation_terms`, `segment_costs`,
`precision_curves`, `grad_scaler_trace`), as returned or as saved results (dicts with the
same fields), so the tests can check what is drawn. Artists that a test looks for carry a
``gid`` naming their role (``"parameters"``, ``"gpu"``, ``"total"``, ``"skipped"``).
A gigabyte is 10⁹ bytes, as in `lessons.memory` and the ZeRO paper.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lessons.core import checks
from lessons.core.plot import PALETTE, STYLE
from lessons.memory import bytes_per_parameter, training_memory

__all__ = [
    "COLOURS",
    "DEFAULT_CONFIGS",
    "GPUS",
    "PARTS",
    "draw_activation_terms",
    "draw_grad_scaler",
    "draw_memory_bar",
    "draw_memory_bars",
    "draw_precision_curves",
    "draw_segments",
    "draw_zero_stages",
]

#: The parts of a stacked bar, bottom to top, as `lessons.memory.TrainingMemory` names
#: them (activations last: they are not part of it).
PARTS = ("parameters", "gradients", "optimizer_states", "activations")
#: The colour of each part of the memory, and of each curve, the same in every figure.
COLOURS = {
    "parameters": PALETTE[0],
    "gradients": PALETTE[1],
    "optimizer_states": PALETTE[2],
    "activations": PALETTE[4],
    "formula": PALETTE[5],
    "layer": PALETTE[3],
    "float32": PALETTE[0],
    "low": PALETTE[3],
    "clean": PALETTE[0],
    "skipped": PALETTE[3],
}
#: The memory of common GPUs, in GB: 16 (V100, T4), 24 (RTX 3090 and 4090, A10), 80 (A100
#: and H100); the lines of `draw_memory_bar` and `draw_memory_bars`.
GPUS = (16, 24, 80)
#: The configurations `draw_memory_bars` draws by default: GPT-2's 1.5 billion
#: parameters (the ZeRO paper's example of section 3.1) trained with Adam on 8 devices.
DEFAULT_CONFIGS = {
    "float32\nAdam": {"precision": "fp32"},
    "mixed precision\nAdam": {"precision": "mixed"},
    "mixed precision\nAdam, ZeRO 1": {"precision": "mixed", "zero_stage": 1},
    "mixed precision\nAdam, ZeRO 2": {"precision": "mixed", "zero_stage": 2},
    "mixed precision\nAdam, ZeRO 3": {"precision": "mixed", "zero_stage": 3},
}
_PART_NAMES = {
    "parameters": "parameters",
    "gradients": "gradients",
    "optimizer_states": "optimizer states",
    "activations": "activations",
}
#: How the figures name `lessons.memory.PRECISIONS` and `lessons.memory.OPTIMIZERS`.
_NAMES = {
    "fp32": "float32",
    "mixed": "mixed-precision",
    "bf16": "bfloat16",
    "sgd": "SGD",
    "momentum": "SGD with momentum",
    "adam": "Adam",
}
_GREY = "#444444"
_GB = 1e9
#: The smallest gap, in axes fraction, between two GPU labels on the right of the axes.
_LABEL_GAP = 0.075


# --------------------------------------------------------------------------------------
# Section 1: where the memory goes
# --------------------------------------------------------------------------------------


def _gpus(gpus: Sequence[float]) -> list[float]:
    """``gpus``, memories in GB, checked and sorted from the smallest."""
    if isinstance(gpus, str) or not isinstance(gpus, Sequence) or not gpus:
        raise TypeError(f"gpus: expected a list of GPU memories in GB, got {checks.describe(gpus)}")
    sizes = [checks.number(f"gpus[{i}]", g, positive=True) for i, g in enumerate(gpus)]
    return sorted(sizes)


def _parts(
    n_params: float,
    precision: str,
    optimizer: str,
    zero_stage: int,
    n_devices: int,
    activation_bytes: float,
) -> dict[str, float]:
    """The GB per device of each of `PARTS`: `training_memory`'s, and the activations."""
    activation_bytes = checks.number("activation_bytes", activation_bytes, low=0)
    memory = training_memory(
        n_params,
        precision=precision,
        optimizer=optimizer,
        zero_stage=zero_stage,
        n_devices=n_devices,
    )
    return {
        "parameters": memory.parameters / _GB,
        "gradients": memory.gradients / _GB,
        "optimizer_states": memory.optimizer_states / _GB,
        "activations": activation_bytes / _GB,
    }


def _stack(ax: Axes, x: float, parts: Mapping[str, float], width: float) -> None:
    """One stacked bar at ``x``: the ``parts`` given, in the order of `PARTS`, bottom to
    top, each labelled for the legend."""
    bottom = 0.0
    for part in (part for part in PARTS if part in parts):
        ax.bar(
            x,
            parts[part],
            width,
            bottom=bottom,
            color=COLOURS[part],
            edgecolor="white",
            linewidth=0.6,
            label=_PART_NAMES[part],
            gid=part,
        )
        bottom += parts[part]


def _gpu_lines(ax: Axes, gpus: Sequence[float], top: float) -> None:
    """A dashed line at each GPU's memory, labelled on the right of the axes; labels closer
    than `_LABEL_GAP` (axes fraction) to the one below are nudged up. Sets ``ylim`` to
    ``(0, top)`` first, so the labels' places are known."""
    ax.set_ylim(0, top)
    previous = -math.inf
    for gb in gpus:
        ax.axhline(gb, color=_GREY, linestyle="--", linewidth=1.0, zorder=2.5, gid="gpu")
        where = max(gb / top, previous + _LABEL_GAP)
        previous = where
        ax.text(
            1.01,
            where,
            f"{gb:g} GB",
            transform=ax.transAxes,
            ha="left",
            va="center",
            fontsize=9,
            color=_GREY,
            clip_on=False,
            gid="gpu",
        )


def _listed(sizes: Sequence[float], word: str) -> str:
    """``[16, 24, 80]`` as ``"16, 24 and 80"`` (with ``word="and"``)."""
    names = [f"{g:g}" for g in sizes]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def _fits(total: float, gpus: Sequence[float]) -> str:
    """Which of ``gpus`` (GB) hold ``total`` GB: "fits in 24 and 80 GB, not in 16 GB"."""
    fit = [g for g in gpus if total <= g]
    miss = [g for g in gpus if total > g]
    if not fit:
        return f"fits in none of {_listed(miss, 'or')} GB"
    if not miss:
        return f"fits in {_listed(fit, 'and')} GB"
    return f"fits in {_listed(fit, 'and')} GB, not in {_listed(miss, 'or')} GB"


def draw_memory_bar(
    ax: Axes,
    n_params: float,
    *,
    precision: str = "mixed",
    optimizer: str = "adam",
    zero_stage: int = 0,
    n_devices: int = 1,
    activation_bytes: float = 0,
    gpus: Sequence[float] = GPUS,
) -> None:
    """The memory of training on one device, as one stacked bar, against common GPUs.

    Bottom to top: parameters, gradients and optimiser states (GB per device, from
    `lessons.memory.training_memory` with ``n_params``, ``precision``, ``optimizer``,
    ``zero_stage`` and ``n_devices``), then ``activation_bytes`` (bytes per device, e.g.
    ``layers`` times `lessons.memory.transformer_layer_activations`). A dashed line marks
    each of ``gpus`` (GB, 10⁹ bytes; 16, 24 and 80 by default), and the title says which
    hold the total. "Fits" counts only what the bar holds: the CUDA context, temporary
    buffers and the allocator's fragmentation come on top (`training_memory`).
    ``ax`` comes first, so it is a draw function for `lessons.core.explorer`.
    Used in: notebooks/07_big_models.ipynb, section 1, and the explorer.
    """
    if not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes, got {checks.describe(ax)}")
    sizes = _gpus(gpus)
    parts = _parts(n_params, precision, optimizer, zero_stage, n_devices, activation_bytes)
    total = sum(parts.values())
    _stack(ax, 0.0, parts, 0.4)
    ax.set_xlim(-0.6, 0.6)
    devices = "1 device" if n_devices == 1 else f"{n_devices} devices"
    ax.set_xticks(
        [0.0],
        labels=[f"{_NAMES[precision]} {_NAMES[optimizer]}, ZeRO stage {zero_stage}, {devices}"],
    )
    ax.grid(axis="x", visible=False)
    _gpu_lines(ax, sizes, 1.12 * max(total, sizes[-1]))
    ax.set_ylabel("GB per device")
    ax.set_title(f"{total:,.1f} GB per device: {_fits(total, sizes)}", fontsize=10.5)
    labels = [f"{_PART_NAMES[part]}: {parts[part]:,.1f} GB" for part in reversed(PARTS)]
    handles = ax.get_legend_handles_labels()[0][::-1]
    ax.legend(handles, labels, fontsize=8.5, loc="upper left")


def draw_memory_bars(
    configs: Mapping[str, Mapping] | None = None,
    *,
    n_params: float = 1.5e9,
    n_devices: int = 8,
    gpus: Sequence[float] = GPUS,
) -> Figure:
    """Several ways of training the same model, side by side as stacked bars.

    ``configs`` maps each bar's label to the keyword arguments of `draw_memory_bar` that
    differ from the defaults: ``precision`` (mixed precision by default), ``optimizer``
    (Adam by default), ``zero_stage``, ``n_devices``, ``n_params``, ``activation_bytes``.
    By default, `DEFAULT_CONFIGS`: float32 Adam, mixed-precision Adam, and
    mixed-precision Adam under ZeRO's stages 1 to 3, for ``n_params`` (1.5 billion) over
    ``n_devices`` (8). Each bar is labelled with its total (GB per device); the dashed
    lines are ``gpus``.
    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    configs = DEFAULT_CONFIGS if configs is None else configs
    if not isinstance(configs, Mapping) or not configs:
        raise TypeError(
            f"configs: expected a dict label -> keyword arguments, got {checks.describe(configs)}"
        )
    sizes = _gpus(gpus)
    allowed = {"n_params", "precision", "optimizer", "zero_stage", "n_devices", "activation_bytes"}
    bars = {}
    for label, config in configs.items():
        if not isinstance(config, Mapping) or not set(config) <= allowed:
            raise ValueError(
                f"configs[{label!r}]: expected a dict with keys among {sorted(allowed)}, "
                f"got {checks.describe(config)}"
            )
        settings = {"n_params": n_params, "n_devices": n_devices} | dict(config)
        bars[label] = _parts(
            settings["n_params"],
            settings.get("precision", "mixed"),
            settings.get("optimizer", "adam"),
            settings.get("zero_stage", 0),
            settings["n_devices"],
            settings.get("activation_bytes", 0),
        )
    totals = [sum(parts.values()) for parts in bars.values()]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(1.5 * len(bars) + 2.6, 4.6), layout="constrained")
        ax = figure.add_subplot()
        for x, parts in enumerate(bars.values()):
            _stack(ax, x, parts, 0.6)
        for x, total in enumerate(totals):
            ax.annotate(
                f"{total:,.1f} GB",
                (x, total),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
                gid="total",
            )
        ax.set_xticks(range(len(bars)), labels=list(bars), fontsize=9)
        ax.set_xlim(-0.6, len(bars) - 0.4)
        ax.grid(axis="x", visible=False)
        _gpu_lines(ax, sizes, 1.15 * max(*totals, sizes[-1]))
        ax.set_ylabel("GB per device")
        ax.set_title(f"{n_params / 1e9:g} billion parameters on {n_devices} devices", fontsize=10.5)
        handles = ax.get_legend_handles_labels()[0][: len(PARTS)]
        shown = [
            (handle, _PART_NAMES[part])
            for handle, part in zip(handles, PARTS, strict=True)
            if any(parts[part] > 0 for parts in bars.values())
        ][::-1]
        ax.legend(*zip(*shown, strict=True), fontsize=9, loc="upper right")
    return figure


def _units(largest: float) -> tuple[str, float]:
    """Decimal units for bytes up to ``largest``: ``(name, bytes per unit)``."""
    for name, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if largest >= size:
            return name, size
    return "bytes", 1.0


def _rows(
    name: str, rows: object, fields: Sequence[str], optional: Sequence[str] = ()
) -> list[dict]:
    """``rows`` (the module's dataclasses, or dicts with the same fields, as saved
    results hold them) as dicts of ``fields`` and ``optional`` fields (None if absent)."""
    if isinstance(rows, str | Mapping) or not isinstance(rows, Sequence) or not rows:
        raise TypeError(f"{name}: expected a non-empty list of rows, got {checks.describe(rows)}")
    found = []
    for index, row in enumerate(rows):
        values = {}
        for field in (*fields, *optional):
            value = row.get(field) if isinstance(row, Mapping) else getattr(row, field, None)
            values[field] = value
            if value is None and field not in optional:
                raise ValueError(f"{name}[{index}]: expected a field {field!r}, got {row!r}")
        found.append(values)
    return found


def draw_activation_terms(terms: Sequence) -> Figure:
    """The activations of one Transformer layer, term by term: Korthikanti et al.'s count
    beside what chapter 4's layer saves. ``terms``: `lessons.memory.activation_terms`
    (or dicts with its fields ``name``, ``formula`` and ``layer``, in bytes). One row per
    term, in the function's order, two bars from 0 (in kB, MB or GB, whichever suits the
    largest); a term the formula leaves out has no formula bar; the title gives both sums.
    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    rows = _rows("terms", terms, ("name", "formula", "layer"))
    for index, row in enumerate(rows):
        for field in ("formula", "layer"):
            checks.number(f"terms[{index}].{field}", row[field], low=0)
    unit, size = _units(max(max(row["formula"], row["layer"]) for row in rows))
    y = np.arange(len(rows))
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(9.0, 0.3 * len(rows) + 1.6), layout="constrained")
        ax = figure.add_subplot()
        height = 0.4
        for shift, field, label in (
            (-height / 2, "formula", "Korthikanti et al.'s count"),
            (height / 2, "layer", "chapter 4's layer, as autograd saves it"),
        ):
            ax.barh(
                y + shift,
                [row[field] / size for row in rows],
                height,
                color=COLOURS[field],
                label=label,
                gid=field,
            )
        ax.set_yticks(y, labels=[row["name"] for row in rows], fontsize=8.5)
        ax.invert_yaxis()
        ax.set_xlim(left=0)
        ax.set_xlabel(f"{unit} saved for the backward pass")
        ax.grid(axis="y", visible=False)
        formula = sum(row["formula"] for row in rows) / size
        layer = sum(row["layer"] for row in rows) / size
        ax.set_title(
            f"in all: the formula counts {formula:,.2f} {unit}, "
            f"the layer saves {layer:,.2f} {unit}",
            fontsize=10.5,
        )
        ax.legend(fontsize=9, loc="lower right")
    return figure


# --------------------------------------------------------------------------------------
# Section 4: checkpointing
# --------------------------------------------------------------------------------------


def draw_segments(costs: Sequence, n_layers: int | None = None) -> Figure:
    """Checkpointing a stack of ``n_layers`` blocks in ``k`` segments: the bytes the
    forward pass saves (left) and the time of a forward and backward pass (right)
    against ``k``, both axes from 0. ``costs``: `lessons.memory.segment_costs` (or dicts
    with its fields ``segments``, ``saved_bytes`` and ``seconds``); without ``seconds``
    in every row, the time panel is left out. ``k = 1`` is the stack without
    checkpointing. A dotted line marks ``k = √n``, the least memory by Chen et al.'s
    count (``n_layers``, by default the largest ``k`` in ``costs``: a sweep up to one
    block per segment), and an open circle the least memory measured.
    Used in: notebooks/07_big_models.ipynb, section 4.
    """
    rows = _rows("costs", costs, ("segments", "saved_bytes"), optional=("seconds",))
    segments = [
        checks.positive_int(f"costs[{i}].segments", r["segments"]) for i, r in enumerate(rows)
    ]
    saved = [
        checks.number(f"costs[{i}].saved_bytes", r["saved_bytes"], low=0)
        for i, r in enumerate(rows)
    ]
    seconds = [row["seconds"] for row in rows]
    timed = all(s is not None for s in seconds)
    n = max(segments) if n_layers is None else checks.positive_int("n_layers", n_layers)
    if n < max(segments):
        raise ValueError(
            f"n_layers: expected at least the largest number of segments, {max(segments)}; got {n}"
        )
    unit, size = _units(max(saved))
    best = int(np.argmin(saved))
    panels = [("saved", [b / size for b in saved], f"{unit} saved for the backward pass")]
    if timed:
        times = [
            1e3 * checks.number(f"costs[{i}].seconds", s, low=0) for i, s in enumerate(seconds)
        ]
        panels.append(("seconds", times, "ms per forward and backward pass (median)"))
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(5.0 * len(panels) + 0.6, 4.2), layout="constrained")
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        for ax, (gid, values, ylabel) in zip(axes, panels, strict=True):
            ax.plot(segments, values, "o-", color=PALETTE[0], gid=gid)
            ax.axvline(math.sqrt(n), color=_GREY, linestyle=":", linewidth=1.3, gid="root")
            ax.set_xscale("log", base=2)
            ax.set_xticks(segments, labels=[str(k) for k in segments])
            ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
            ax.set_ylim(0, 1.15 * max(values))
            ax.set(xlabel="segments k (k = 1: no checkpointing)", ylabel=ylabel)
            ax.annotate(
                f"√n = {math.sqrt(n):.3g}",
                (math.sqrt(n), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=9,
                color=_GREY,
                gid="root",
            )
        left = axes[0]
        left.plot(
            [segments[best]],
            [saved[best] / size],
            "o",
            markersize=12,
            markerfacecolor="none",
            markeredgecolor=PALETTE[3],
            markeredgewidth=1.6,
            gid="least",
        )
        left.set_title(f"least memory measured at k = {segments[best]}", fontsize=10.5)
        if timed:
            axes[1].set_title(f"{n} blocks; a checkpointed block runs forward twice", fontsize=10.5)
    return figure


# --------------------------------------------------------------------------------------
# Section 5: mixed precision
# --------------------------------------------------------------------------------------


def draw_precision_curves(curves: Mapping[str, Sequence[float]]) -> Figure:
    """The same model trained in float32 and under autocast in a lower precision: the
    training loss against the step (top), and the lower precision's loss minus float32's
    (bottom, with the largest difference in its title). ``curves``:
    `lessons.memory.precision_curves`, ``{"float32": losses, "bfloat16": losses}`` (one
    loss per step, as many steps each).
    Used in: notebooks/07_big_models.ipynb, section 5.
    """
    if not isinstance(curves, Mapping) or len(curves) != 2 or "float32" not in curves:
        raise ValueError(
            "curves: expected a dict with two curves, 'float32' and one lower precision, "
            f"got {checks.describe(curves)}"
        )
    low = next(name for name in curves if name != "float32")
    losses = {}
    for name in ("float32", low):
        values = curves[name]
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise TypeError(
                f"curves[{name!r}]: expected a list of losses, got {checks.describe(values)}"
            )
        losses[name] = np.array(
            [checks.number(f"curves[{name!r}][{i}]", v) for i, v in enumerate(values)]
        )
    if len(losses[low]) != len(losses["float32"]):
        raise ValueError(
            f"curves[{low!r}]: expected {len(losses['float32'])} losses (as many as float32), "
            f"got {len(losses[low])}"
        )
    steps = np.arange(1, len(losses["float32"]) + 1)
    difference = losses[low] - losses["float32"]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.8, 5.4), layout="constrained")
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.0, 1.2]})
        top.plot(steps, losses["float32"], color=COLOURS["float32"], label="float32", gid="float32")
        top.plot(
            steps,
            losses[low],
            color=COLOURS["low"],
            linestyle="--",
            label=f"{low} autocast",
            gid=low,
        )
        top.set_ylabel("training loss (nats per token)")
        top.legend(fontsize=9.5)
        bottom.axhline(0.0, color=_GREY, linewidth=0.8)
        bottom.plot(steps, difference, color=COLOURS["low"], gid="difference")
        bottom.set(xlabel="step", ylabel=f"{low} − float32")
        bottom.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        bottom.set_title(f"largest difference: {np.abs(difference).max():.4f} nats", fontsize=10)
        limit = 1.25 * max(np.abs(difference).max(), 1e-6)
        bottom.set_ylim(-limit, limit)
    return figure


def draw_grad_scaler(trace: Sequence) -> Figure:
    """The loss scale of float16 training, step by step, on a log₂ axis: each step's
    scale as a dot, a cross where the step was skipped (its gradients overflowed, so the
    scale was halved), a line through the scales. ``trace``:
    `lessons.memory.grad_scaler_trace` (or dicts with its fields ``step``, ``scale`` and
    ``skipped``). The title counts the skipped steps.
    Used in: notebooks/07_big_models.ipynb, section 5.
    """
    rows = _rows("trace", trace, ("step", "scale", "skipped"))
    steps = [checks.positive_int(f"trace[{i}].step", r["step"]) for i, r in enumerate(rows)]
    scales = [
        checks.number(f"trace[{i}].scale", r["scale"], positive=True) for i, r in enumerate(rows)
    ]
    skipped = [bool(r["skipped"]) for r in rows]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(7.8, 4.2), layout="constrained")
        ax = figure.add_subplot()
        ax.plot(steps, scales, color=_GREY, linewidth=1.0, zorder=1, gid="scale")
        for gid, marker, label in (("clean", "o", "step taken"), ("skipped", "X", "step skipped")):
            chosen = [i for i, s in enumerate(skipped) if s == (gid == "skipped")]
            ax.plot(
                [steps[i] for i in chosen],
                [scales[i] for i in chosen],
                marker,
                linestyle="none",
                markersize=8,
                color=COLOURS[gid],
                label=label,
                gid=gid,
            )
        ax.set_yscale("log", base=2)
        exponents = range(math.floor(math.log2(min(scales))), math.ceil(math.log2(max(scales))) + 1)
        ax.set_yticks([2.0**e for e in exponents], labels=[f"$2^{{{e}}}$" for e in exponents])
        ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
        ax.set_xticks(steps)
        ax.set(xlabel="step", ylabel="loss scale (log₂ axis)")
        ax.set_title(
            f"{sum(skipped)} of {len(steps)} steps skipped: float16 gradients overflowed",
            fontsize=10.5,
        )
        ax.legend(fontsize=9.5, loc="upper right")
    return figure


# --------------------------------------------------------------------------------------
# Section 7: ZeRO
# --------------------------------------------------------------------------------------


def draw_zero_stages(
    n_params: float = 7.5e9,
    n_devices: int = 64,
    *,
    precision: str = "mixed",
    optimizer: str = "adam",
) -> Figure:
    """The model states per device under ZeRO's stages, the idea of the ZeRO paper's
    Figure 1 redrawn: one stacked bar (parameters, gradients, optimiser states, GB per
    device, from `lessons.memory.training_memory`) for plain data parallelism (stage 0)
    and for stages 1 to 3, each labelled with its total, and under each its formula
    with ``Ψ`` the parameters, ``N_d`` the devices and the bytes per parameter of
    `lessons.memory.bytes_per_parameter` (``2Ψ + 2Ψ + 12Ψ/N_d`` for stage 1 of
    mixed-precision Adam). With the defaults (7.5 billion parameters, 64 devices) the
    totals are the paper's: 120.0, 31.4, 16.6 and 1.9 GB.
    Used in: notebooks/07_big_models.ipynb, section 7.
    """
    weights, gradients, states = bytes_per_parameter(precision, optimizer)
    memories = [
        training_memory(
            n_params,
            precision=precision,
            optimizer=optimizer,
            zero_stage=stage,
            n_devices=n_devices,
        )
        for stage in range(4)
    ]
    n_devices = memories[0].n_devices

    def term(value: int, split: bool) -> str:
        return f"{value}Ψ/$N_d$" if split else f"{value}Ψ"

    names = ["no ZeRO", "stage 1: $P_{os}$", "stage 2: $P_{os+g}$", "stage 3: $P_{os+g+p}$"]
    labels = [
        f"{name}\n"
        + " + ".join(
            term(value, stage >= level)
            for value, level in ((weights, 3), (gradients, 2), (states, 1))
            if value
        )
        for stage, name in enumerate(names)
    ]
    with mpl.rc_context(STYLE):
        figure = Figure(figsize=(8.4, 4.8), layout="constrained")
        ax = figure.add_subplot()
        for x, memory in enumerate(memories):
            parts = {
                "parameters": memory.parameters / _GB,
                "gradients": memory.gradients / _GB,
                "optimizer_states": memory.optimizer_states / _GB,
            }
            _stack(ax, x, parts, 0.6)
            ax.annotate(
                f"{memory.total / _GB:,.1f} GB",
                (x, memory.total / _GB),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=10,
                gid="total",
            )
        ax.set_xticks(range(4), labels=labels, fontsize=9)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(0, 1.12 * memories[0].total / _GB)
        ax.set_ylabel("GB per device")
        ax.set_title(
            f"Ψ = {n_params / 1e9:g} billion parameters, $N_d$ = {n_devices} devices, "
            f"{_NAMES[precision]} {_NAMES[optimizer]}",
            fontsize=10.5,
        )
        handles, names = ax.get_legend_handles_labels()
        ax.legend(handles[:3][::-1], names[:3][::-1], fontsize=9.5)
    return figure
