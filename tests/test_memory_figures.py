"""The figures of chapter 7 draw what `lessons.memory` computes and measures, where they
say they do."""

import functools
import math
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from figure_checks import overlapping_texts, render
from matplotlib.figure import Figure

from lessons.core.explorer import Explorer
from lessons.figures.memory import (
    COLOURS,
    DEFAULT_CONFIGS,
    PARTS,
    draw_activation_terms,
    draw_grad_scaler,
    draw_memory_bar,
    draw_memory_bars,
    draw_precision_curves,
    draw_segments,
    draw_zero_stages,
)
from lessons.memory import (
    activation_terms,
    deep_stack,
    grad_scaler_trace,
    measured_layer_activations,
    precision_curves,
    segment_costs,
    training_memory,
    transformer_layer_activations,
)
from lessons.transformer import EncoderLayer

pytestmark = pytest.mark.usefixtures("one_thread")

#: The activation sizes of the tests: s, b, h, a (f = 4h), small enough to measure fast.
SIZES = (16, 2, 32, 4)


@functools.cache
def _costs() -> tuple:
    torch.manual_seed(0)
    stack = deep_stack(16, 32)
    x = torch.randn(8, 32, requires_grad=True)
    return tuple(segment_costs(stack, x, [1, 2, 4, 8, 16], repeats=1))


@functools.cache
def _curves() -> dict:
    return precision_curves(6, progress=False)


@functools.cache
def _trace() -> tuple:
    return tuple(grad_scaler_trace(12))


def _bar_figure(n_params: float = 1.5e9, **settings) -> Figure:
    figure = Figure(figsize=(6.0, 3.5), layout="constrained")
    draw_memory_bar(figure.add_subplot(), n_params, **settings)
    return figure


FIGURES = {
    "memory_bar": lambda: _bar_figure(),
    "memory_bar_huge": lambda: _bar_figure(1e11, precision="fp32"),
    "memory_bars": lambda: draw_memory_bars(),
    "activation_terms": lambda: draw_activation_terms(activation_terms(*SIZES, causal=True)),
    "segments": lambda: draw_segments(list(_costs())),
    "precision_curves": lambda: draw_precision_curves(_curves()),
    "grad_scaler": lambda: draw_grad_scaler(list(_trace())),
    "zero_stages": lambda: draw_zero_stages(),
}


def _patches(ax, gid: str) -> list:
    return [p for p in ax.patches if p.get_gid() == gid]


def _lines(ax, gid: str) -> list:
    return [line for line in ax.lines if line.get_gid() == gid]


def _texts(ax, gid: str) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().texts]


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_builds_fast_outside_pyplot_and_no_two_labels_overlap(name):
    FIGURES[name]()  # the measurements behind it, once
    before = plt.get_fignums()
    start = time.perf_counter()
    figure = FIGURES[name]()
    render(figure)
    assert time.perf_counter() - start < 2.0
    assert isinstance(figure, Figure)
    assert plt.get_fignums() == before
    assert overlapping_texts(figure) == []


def test_the_overlap_check_sees_an_overlap():
    figure = Figure()
    ax = figure.add_subplot()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    assert overlapping_texts(figure) == [("another label", "one label")]


# ---------------------------------------------------------------- section 1: the bar
@pytest.mark.parametrize(
    "settings",
    [
        {"precision": "mixed"},
        {"precision": "fp32", "optimizer": "momentum", "activation_bytes": 5e9},
        {"precision": "mixed", "zero_stage": 3, "n_devices": 64, "activation_bytes": 3e9},
    ],
)
def test_the_bar_stacks_training_memorys_parts_and_the_activations(settings):
    n_params = 7.5e9
    ax = _bar_figure(n_params, **settings).axes[0]
    keywords = {k: v for k, v in settings.items() if k != "activation_bytes"}
    memory = training_memory(n_params, **{"optimizer": "adam"} | keywords)
    expected = {
        "parameters": memory.parameters / 1e9,
        "gradients": memory.gradients / 1e9,
        "optimizer_states": memory.optimizer_states / 1e9,
        "activations": settings.get("activation_bytes", 0) / 1e9,
    }
    bottom = 0.0
    for part in PARTS:  # bottom to top, each on the one below
        (patch,) = _patches(ax, part)
        assert patch.get_height() == pytest.approx(expected[part])
        assert patch.get_y() == pytest.approx(bottom)
        assert patch.get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb(COLOURS[part]))
        bottom += expected[part]
    total = sum(expected.values())
    assert ax.get_title().startswith(f"{total:,.1f} GB per device: fits")
    assert _legend(ax) == [
        f"activations: {expected['activations']:,.1f} GB",
        f"optimizer states: {expected['optimizer_states']:,.1f} GB",
        f"gradients: {expected['gradients']:,.1f} GB",
        f"parameters: {expected['parameters']:,.1f} GB",
    ]
    assert [line.get_ydata()[0] for line in _lines(ax, "gpu")] == [16, 24, 80]
    assert _texts(ax, "gpu") == ["16 GB", "24 GB", "80 GB"]
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylabel() == "GB per device"


@pytest.mark.parametrize(
    ("n_params", "verdict"),
    [
        (0.5e9, "8.0 GB per device: fits in 16, 24 and 80 GB"),  # 16 bytes a parameter
        (1.5e9, "24.0 GB per device: fits in 24 and 80 GB, not in 16 GB"),
        (2e9, "32.0 GB per device: fits in 80 GB, not in 16 or 24 GB"),
        (7.5e9, "120.0 GB per device: fits in none of 16, 24 or 80 GB"),
    ],
)
def test_the_bars_title_says_which_gpus_hold_it(n_params, verdict):
    assert _bar_figure(n_params).axes[0].get_title() == verdict


def test_close_gpu_labels_are_nudged_apart_and_stay_in_order():
    ax = _bar_figure(1e11, precision="fp32").axes[0]  # 1,600 GB: 16 and 24 GB nearly meet
    places = [t.get_position()[1] for t in ax.texts if t.get_gid() == "gpu"]
    assert places == sorted(places)
    assert min(np.diff(places)) >= 0.075 - 1e-12
    assert overlapping_texts(ax.figure) == []


def test_the_bar_redraws_fast_in_an_explorer():
    def draw(ax, billions: float, zero_stage: int) -> None:
        draw_memory_bar(ax, billions * 1e9, zero_stage=zero_stage, n_devices=8)

    view = Explorer(draw, {"billions": (0.5, 20.0, 0.5, 1.5), "zero_stage": (0, 3, 1, 0)})
    start = time.perf_counter()
    view.controls["zero_stage"].value = 3
    assert time.perf_counter() - start < 0.5
    assert view.draws == 2 and view.png.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"precision": "fp8"}, ValueError, "precision: expected one of 'fp32'"),
        ({"optimizer": "adagrad"}, ValueError, "optimizer: expected one of 'sgd'"),
        ({"zero_stage": 4}, ValueError, "zero_stage: expected one of 0, 1, 2, 3"),
        ({"n_devices": 0}, ValueError, "n_devices: expected an int >= 1, got 0"),
        ({"activation_bytes": -1}, ValueError, "activation_bytes: expected a number >= 0"),
        ({"gpus": ()}, TypeError, "gpus: expected a list of GPU memories in GB"),
        ({"gpus": (16, 0)}, ValueError, r"gpus\[1\]: expected a positive number, got 0"),
    ],
)
def test_the_bar_checks_its_arguments(settings, error, message):
    with pytest.raises(error, match=message):
        _bar_figure(**settings)
    with pytest.raises(ValueError, match="n_params: expected a positive number"):
        _bar_figure(0)
    with pytest.raises(TypeError, match="ax: expected a matplotlib Axes, got Figure"):
        draw_memory_bar(Figure(), 1e9)


def test_the_bars_side_by_side_are_training_memory_for_each_configuration():
    figure = draw_memory_bars()
    ax = figure.axes[0]
    totals = []
    for x, (label, config) in enumerate(DEFAULT_CONFIGS.items()):
        settings = {"precision": "mixed", "optimizer": "adam", "n_devices": 8} | config
        memory = training_memory(1.5e9, **settings)
        for part in PARTS[:3]:
            patch = _patches(ax, part)[x]
            assert patch.get_x() + patch.get_width() / 2 == pytest.approx(x)
            assert patch.get_height() == pytest.approx(getattr(memory, part) / 1e9)
        totals.append(f"{memory.total / 1e9:,.1f} GB")
        assert ax.get_xticklabels()[x].get_text() == label
    assert _texts(ax, "total") == totals
    assert totals == ["24.0 GB", "24.0 GB", "8.2 GB", "5.6 GB", "3.0 GB"]
    assert all(p.get_height() == 0 for p in _patches(ax, "activations"))
    assert _legend(ax) == ["optimizer states", "gradients", "parameters"]  # no empty part
    assert ax.get_title() == "1.5 billion parameters on 8 devices"
    assert [line.get_ydata()[0] for line in _lines(ax, "gpu")] == [16, 24, 80]


def test_the_bars_take_their_own_settings_and_show_activations_when_there_are_some():
    configs = {"SGD": {"precision": "fp32", "optimizer": "sgd", "activation_bytes": 2e9}}
    ax = draw_memory_bars(configs, n_params=1e9, n_devices=1, gpus=(40,)).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([4.0, 4.0, 0.0, 2.0])
    assert _texts(ax, "total") == ["10.0 GB"]
    assert _legend(ax) == ["activations", "gradients", "parameters"]
    assert _texts(ax, "gpu") == ["40 GB"]


def test_the_bars_check_their_configurations():
    with pytest.raises(TypeError, match="configs: expected a dict label -> keyword arguments"):
        draw_memory_bars([{"precision": "fp32"}])
    with pytest.raises(ValueError, match=r"configs\['a'\]: expected a dict with keys among"):
        draw_memory_bars({"a": {"dtype": "fp32"}})
    with pytest.raises(ValueError, match="zero_stage: expected one of"):
        draw_memory_bars({"a": {"zero_stage": 5}})


# ---------------------------------------------------------------- section 1: activations
@pytest.mark.parametrize("causal", [False, True])
def test_the_term_bars_are_activation_terms_and_the_sums_are_measured(causal):
    s, b, h, a = SIZES
    terms = activation_terms(s, b, h, a, causal=causal)
    ax = draw_activation_terms(terms).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [term.name for term in terms]
    for field in ("formula", "layer"):
        bars = _patches(ax, field)
        assert [bar.get_width() for bar in bars] == pytest.approx(
            [getattr(term, field) / 1e3 for term in terms]
        )
        assert all(bar.get_x() == 0 for bar in bars)
    assert ax.get_xlabel() == "kB saved for the backward pass"
    # The title's sums: the formula's count, and what a real layer saves, measured.
    torch.manual_seed(0)
    layer = EncoderLayer(h, a, dim_feedforward=4 * h, dropout=0.1, norm_first=True).train()
    x = torch.randn(b, s, h, requires_grad=True)
    mask = {"mask": torch.ones(s, s, dtype=torch.bool).tril()} if causal else {}
    measured = measured_layer_activations(layer, x, **mask)
    formula = transformer_layer_activations(s, b, h, a, bytes_per_value=4)
    assert ax.get_title() == (
        f"in all: the formula counts {formula / 1e3:,.2f} kB, "
        f"the layer saves {measured / 1e3:,.2f} kB"
    )
    assert _legend(ax) == ["Korthikanti et al.'s count", "chapter 4's layer, as autograd saves it"]


def test_the_term_bars_pick_their_units_and_check_their_rows():
    terms = [{"name": "scores", "formula": 3e9, "layer": 6e9}]
    ax = draw_activation_terms(terms).axes[0]
    assert ax.get_xlabel() == "GB saved for the backward pass"
    assert [p.get_width() for p in ax.patches] == [3.0, 6.0]
    with pytest.raises(ValueError, match=r"terms\[0\]: expected a field 'layer'"):
        draw_activation_terms([{"name": "scores", "formula": 1}])
    with pytest.raises(ValueError, match=r"terms\[0\]\.formula: expected a number >= 0"):
        draw_activation_terms([{"name": "scores", "formula": -1, "layer": 1}])
    with pytest.raises(TypeError, match="terms: expected a non-empty list of rows"):
        draw_activation_terms([])


# ---------------------------------------------------------------- section 4
def test_the_segment_figure_draws_the_measured_bytes_and_times_and_marks_root_n():
    costs = list(_costs())
    figure = draw_segments(costs)
    memory, timing = figure.axes
    (saved,) = _lines(memory, "saved")
    assert list(saved.get_xdata()) == [1, 2, 4, 8, 16]
    assert list(saved.get_ydata()) == pytest.approx([c.saved_bytes / 1e3 for c in costs])
    (seconds,) = _lines(timing, "seconds")
    assert list(seconds.get_ydata()) == pytest.approx([1e3 * c.seconds for c in costs])
    for ax in (memory, timing):
        (root,) = _lines(ax, "root")
        assert list(root.get_xdata()) == [4.0, 4.0]  # √16
        assert _texts(ax, "root") == ["√n = 4"]
        assert ax.get_ylim()[0] == 0
    (least,) = _lines(memory, "least")
    assert (least.get_xdata()[0], least.get_ydata()[0]) == (4, costs[2].saved_bytes / 1e3)
    assert memory.get_title() == "least memory measured at k = 4"
    assert timing.get_title() == "16 blocks; a checkpointed block runs forward twice"
    assert memory.get_ylabel() == "kB saved for the backward pass"


def test_the_segment_figure_takes_saved_rows_without_times():
    rows = [{"segments": k, "saved_bytes": (k + 9 // k) * 1000} for k in (1, 3, 9)]
    figure = draw_segments(rows, n_layers=9)
    (ax,) = figure.axes  # no time panel
    assert list(_lines(ax, "saved")[0].get_ydata()) == [10.0, 6.0, 10.0]
    assert list(_lines(ax, "root")[0].get_xdata()) == [3.0, 3.0]
    assert ax.get_title() == "least memory measured at k = 3"


def test_the_segment_figure_checks_its_arguments():
    rows = [{"segments": 1, "saved_bytes": 10}, {"segments": 4, "saved_bytes": 5}]
    with pytest.raises(ValueError, match="n_layers: expected at least the largest number"):
        draw_segments(rows, n_layers=2)
    with pytest.raises(ValueError, match=r"costs\[1\]: expected a field 'saved_bytes'"):
        draw_segments([rows[0], {"segments": 2}])
    with pytest.raises(ValueError, match=r"costs\[0\]\.segments: expected an int >= 1, got 0"):
        draw_segments([{"segments": 0, "saved_bytes": 1}])
    with pytest.raises(TypeError, match="costs: expected a non-empty list of rows"):
        draw_segments({"segments": 1, "saved_bytes": 1})


# ---------------------------------------------------------------- section 5
def test_the_precision_figure_draws_both_curves_and_their_difference():
    curves = _curves()
    figure = draw_precision_curves(curves)
    top, bottom = figure.axes
    steps = list(range(1, 7))
    for name in ("float32", "bfloat16"):
        (line,) = _lines(top, name)
        assert list(line.get_xdata()) == steps
        assert list(line.get_ydata()) == curves[name]
    (difference,) = _lines(bottom, "difference")
    expected = np.array(curves["bfloat16"]) - np.array(curves["float32"])
    assert np.array_equal(difference.get_ydata(), expected)
    assert expected.any()  # bfloat16 changed the arithmetic: the panel shows something
    assert bottom.get_title() == f"largest difference: {np.abs(expected).max():.4f} nats"
    assert _legend(top) == ["float32", "bfloat16 autocast"]
    assert bottom.get_ylabel() == "bfloat16 − float32"
    low, high = bottom.get_ylim()
    assert low < expected.min() and expected.max() < high


def test_the_precision_figure_checks_its_curves():
    with pytest.raises(ValueError, match="curves: expected a dict with two curves, 'float32'"):
        draw_precision_curves({"bfloat16": [1.0], "float16": [1.0]})
    with pytest.raises(ValueError, match=r"curves\['bfloat16'\]: expected 2 losses"):
        draw_precision_curves({"float32": [1.0, 0.5], "bfloat16": [1.0]})
    with pytest.raises(TypeError, match=r"curves\['float32'\]: expected a list of losses"):
        draw_precision_curves({"float32": "1.0", "bfloat16": [1.0]})


def test_the_scaler_figure_draws_each_steps_scale_and_marks_the_skipped_ones():
    trace = list(_trace())
    ax = draw_grad_scaler(trace).axes[0]
    (scale,) = _lines(ax, "scale")
    assert list(scale.get_xdata()) == [row.step for row in trace]
    assert list(scale.get_ydata()) == [row.scale for row in trace]
    for gid, wanted in (("skipped", True), ("clean", False)):
        (marks,) = _lines(ax, gid)
        chosen = [row for row in trace if row.skipped == wanted]
        assert list(marks.get_xdata()) == [row.step for row in chosen]
        assert list(marks.get_ydata()) == [row.scale for row in chosen]
    skipped = sum(row.skipped for row in trace)
    assert 0 < skipped < len(trace)  # both kinds of step are drawn
    assert ax.get_title() == f"{skipped} of 12 steps skipped: float16 gradients overflowed"
    assert ax.get_yscale() == "log"
    exponents = [round(math.log2(v)) for v in ax.get_yticks()]
    low, high = (round(math.log2(f(r.scale for r in trace))) for f in (min, max))
    assert exponents == list(range(low, high + 1))
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"$2^{{{e}}}$" for e in exponents]


def test_the_scaler_figure_takes_saved_rows_and_checks_them():
    rows = [{"step": 1, "scale": 4.0, "skipped": True}, {"step": 2, "scale": 2.0, "skipped": False}]
    ax = draw_grad_scaler(rows).axes[0]
    assert ax.get_title() == "1 of 2 steps skipped: float16 gradients overflowed"
    with pytest.raises(ValueError, match=r"trace\[1\].scale: expected a positive number"):
        draw_grad_scaler([rows[0], {"step": 2, "scale": 0.0, "skipped": False}])
    with pytest.raises(ValueError, match=r"trace\[0\]: expected a field 'skipped'"):
        draw_grad_scaler([{"step": 1, "scale": 4.0}])


# ---------------------------------------------------------------- section 7
def test_the_zero_figure_gives_the_papers_totals_and_formulas():
    ax = draw_zero_stages().axes[0]
    assert _texts(ax, "total") == ["120.0 GB", "31.4 GB", "16.6 GB", "1.9 GB"]
    for stage in range(4):
        memory = training_memory(7.5e9, precision="mixed", zero_stage=stage, n_devices=64)
        bottom = 0.0
        for part in PARTS[:3]:
            patch = _patches(ax, part)[stage]
            assert patch.get_height() == pytest.approx(getattr(memory, part) / 1e9)
            assert patch.get_y() == pytest.approx(bottom)
            bottom += getattr(memory, part) / 1e9
    assert _patches(ax, "activations") == []
    assert [t.get_text().split("\n")[1] for t in ax.get_xticklabels()] == [
        "2Ψ + 2Ψ + 12Ψ",
        "2Ψ + 2Ψ + 12Ψ/$N_d$",
        "2Ψ + 2Ψ/$N_d$ + 12Ψ/$N_d$",
        "2Ψ/$N_d$ + 2Ψ/$N_d$ + 12Ψ/$N_d$",
    ]
    assert ax.get_title() == (
        "Ψ = 7.5 billion parameters, $N_d$ = 64 devices, mixed-precision Adam"
    )
    assert _legend(ax) == ["optimizer states", "gradients", "parameters"]
    assert ax.get_ylim()[0] == 0


def test_the_zero_figure_follows_the_precision_and_the_optimizer():
    ax = draw_zero_stages(1e9, 4, precision="fp32", optimizer="sgd").axes[0]
    assert _texts(ax, "total") == ["8.0 GB", "8.0 GB", "5.0 GB", "2.0 GB"]
    assert ax.get_xticklabels()[2].get_text().split("\n")[1] == "4Ψ + 4Ψ/$N_d$"  # no states
    with pytest.raises(ValueError, match="n_devices: expected an int >= 1"):
        draw_zero_stages(n_devices=0)
    with pytest.raises(ValueError, match="precision: expected one of"):
        draw_zero_stages(precision="fp16")
