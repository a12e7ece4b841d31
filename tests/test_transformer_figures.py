"""The Transformer chapter's figures draw the numbers they are given, and those are right."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch

from lessons.figures.transformer import (
    draw_architecture,
    draw_attention_grid,
    draw_confidence,
    draw_masks,
    draw_norm_placement,
    draw_perplexity_curve,
    draw_position_similarity,
    draw_positional_encoding,
    draw_step_times,
    draw_warmup,
    draw_warmup_ablation,
    draw_warmup_schedules,
    position_dot_products,
)
from lessons.transformer import sinusoidal_encoding, warmup_schedule


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def _boxes(ax) -> dict[str, tuple[float, float]]:
    """The centre of each rounded box, by the text drawn at that centre."""
    centres = {}
    for patch in ax.patches:
        if isinstance(patch, FancyBboxPatch):
            x = patch.get_x() + patch.get_width() / 2
            y = patch.get_y() + patch.get_height() / 2
            for text in ax.texts:
                if np.allclose(text.get_position(), (x, y)):
                    centres.setdefault(text.get_text(), (x, y))
    return centres


def test_the_architecture_has_every_block_of_the_paper_and_pytorchs_final_norms():
    figure = draw_architecture()
    texts = _texts(figure)
    for block in (
        "multi-head self-attention\n(padding mask)",
        "masked multi-head\nself-attention\n(causal + padding mask)",
        "multi-head cross-attention\n(memory padding mask)",
        "token embedding × √d_model",
        "N × encoder layer",
        "N × decoder layer",
    ):
        assert block in texts, block
    assert sum("feed-forward" in t for t in texts) == 2
    # post-norm: one LayerNorm after each sublayer, 2 in the encoder, 3 in the decoder,
    # plus the final LayerNorm that nn.Transformer adds to each stack
    assert texts.count("LayerNorm") == 5
    assert sum(t.startswith("final LayerNorm") for t in texts) == 2


def test_the_memory_goes_into_the_cross_attention_from_the_encoders_top():
    figure = draw_architecture()
    ax = figure.axes[0]
    boxes = _boxes(ax)
    cross_x, cross_y = boxes["multi-head cross-attention\n(memory padding mask)"]
    final_x, final_y = boxes["final LayerNorm\n(nn.Transformer)"]  # the encoder's (first)
    lines = [line for line in ax.lines if len(line.get_xdata()) == 5]
    (memory,) = lines
    xs, ys = memory.get_xdata(), memory.get_ydata()
    assert (xs[0], ys[0]) == pytest.approx((final_x, final_y + 0.25))  # leaves the encoder
    assert ys[-1] == pytest.approx(cross_y)  # at the cross-attention's height
    assert xs[-1] == pytest.approx(cross_x - 1.35)  # at its left edge


def test_norm_placement_puts_the_norm_on_the_stream_or_on_the_branch():
    figure = draw_norm_placement()
    post, pre = figure.axes
    assert _boxes(post)["LayerNorm"][0] == pytest.approx(0.6)  # on the stream
    assert _boxes(pre)["LayerNorm"][0] == pytest.approx(2.9)  # on the branch
    assert "LayerNorm(x + Sublayer(x))" in post.get_title()
    assert "x + Sublayer(LayerNorm(x))" in pre.get_title()


def test_the_positional_encoding_figure_draws_the_encoding():
    figure = draw_positional_encoding(length=30, d_model=16, dimensions=(0, 5))
    left, right = figure.axes[0], figure.axes[1]
    expected = sinusoidal_encoding(30, 16, dtype=torch.float64).numpy()
    np.testing.assert_allclose(left.images[0].get_array(), expected)
    np.testing.assert_allclose(right.lines[0].get_ydata(), expected[:, 0])
    np.testing.assert_allclose(right.lines[1].get_ydata(), expected[:, 5])
    # dimension 5 is the cosine of pair 2: period 2π · 10000^(4/16) = 2π · 10
    assert "cos, period 62.8" in right.lines[1].get_label()
    with pytest.raises(ValueError, match="dimensions"):
        draw_positional_encoding(length=30, d_model=16, dimensions=(16,))


def test_position_dot_products_depend_on_the_offset_alone():
    dots = position_dot_products(length=40, d_model=16)
    frequencies = 10000.0 ** (-np.arange(0, 16, 2) / 16)
    for p, q in [(0, 0), (3, 10), (25, 7), (39, 0)]:
        expected = sum(math.cos(w * (p - q)) for w in frequencies)
        assert dots[p, q].item() == pytest.approx(expected, abs=1e-12)
    for k in (1, 5, 17):
        diagonal = torch.diagonal(dots, offset=k)
        assert (diagonal.max() - diagonal.min()).item() < 1e-12
    assert dots[0, 0].item() == pytest.approx(8.0)  # d_model / 2


def test_the_similarity_figure_draws_the_same_curve_from_every_position():
    figure = draw_position_similarity(length=40, d_model=16, positions=(5, 20))
    right = figure.axes[1]  # the heat map, the curves, then the colour bar
    dots = position_dot_products(40, 16).numpy()
    first, second = right.lines[0], right.lines[1]
    np.testing.assert_array_equal(first.get_xdata(), np.arange(-5, 35))
    np.testing.assert_allclose(first.get_ydata(), dots[5, :])
    np.testing.assert_allclose(second.get_ydata(), dots[20, :])
    shared = np.intersect1d(first.get_xdata(), second.get_xdata())
    a = first.get_ydata()[np.isin(first.get_xdata(), shared)]
    b = second.get_ydata()[np.isin(second.get_xdata(), shared)]
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_masks_are_drawn_cell_by_cell():
    causal = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    padding = torch.tensor([[True, True, False]]).expand(3, 3)
    figure = draw_masks(
        [
            ("causal", causal, list("abc"), list("abc")),
            ("padding", padding, list("abc"), list("xy_")),
        ],
        columns=2,
    )
    for ax, mask in zip(figure.axes, (causal, padding), strict=True):
        np.testing.assert_array_equal(ax.images[0].get_array(), mask.numpy().astype(float))
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["x", "y", "_"]
    with pytest.raises(ValueError, match="labels"):
        draw_masks([("bad", causal, list("ab"), list("abc"))])
    with pytest.raises(ValueError, match="panels"):
        draw_masks([])


def test_the_warmup_figure_draws_the_schedule_and_its_peak():
    figure = Figure()
    ax = figure.add_subplot()
    draw_warmup(ax, d_model=64, warmup=100, steps=300)
    curve, peak = ax.lines
    assert curve.get_ydata()[0] == pytest.approx(warmup_schedule(1, 64, 100))
    assert curve.get_ydata()[-1] == pytest.approx(warmup_schedule(300, 64, 100))
    assert int(np.argmax(curve.get_ydata())) + 1 == 100
    assert peak.get_xdata()[0] == 100
    assert peak.get_ydata()[0] == pytest.approx((64 * 100) ** -0.5)


def test_the_schedules_figure_draws_one_line_per_setting():
    figure = draw_warmup_schedules(settings=((512, 4000), (256, 1000)), steps=5000)
    lines = figure.axes[0].lines
    assert len(lines) == 2
    assert max(lines[1].get_ydata()) == pytest.approx((256 * 1000) ** -0.5)
    assert lines[0].get_ydata()[3999] == pytest.approx((512 * 4000) ** -0.5)


def test_the_confidence_figure_marks_each_mean():
    values = {"a": np.array([0.5, 0.9, 1.0]), "b": np.array([0.2, 0.4])}
    figure = draw_confidence(values)
    ax = figure.axes[0]
    means = [line.get_xdata()[0] for line in ax.lines]
    assert means == pytest.approx([0.8, 0.3])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a (mean 0.800)", "b (mean 0.300)"]
    with pytest.raises(ValueError):
        draw_confidence({})


def test_the_warmup_ablation_draws_the_runs():
    figure = draw_warmup_ablation(
        {"x": [1e-2, 1e-3], "y": [1e-4, 1e-3]}, {"x": [3, 2], "y": [4, 1]}
    )
    left, right = figure.axes
    np.testing.assert_allclose(left.lines[1].get_ydata(), [1e-4, 1e-3])
    np.testing.assert_allclose(right.lines[0].get_ydata(), [3, 2])  # the raw loss of x
    with pytest.raises(ValueError, match="same runs"):
        draw_warmup_ablation({"x": [1.0]}, {"y": [1.0]})


def test_the_attention_grid_draws_every_head_of_every_layer():
    g = torch.Generator().manual_seed(0)
    maps = {
        "encoder": [torch.rand(2, 3, 4, 4, generator=g) for _ in range(2)],
        "decoder": [torch.rand(2, 3, 5, 5, generator=g) for _ in range(2)],
        "cross": [torch.rand(2, 3, 5, 4, generator=g) for _ in range(2)],
    }
    figure = draw_attention_grid(maps, list("abcd"), ["<s>", *"abcd"], example=1)
    heatmaps = [ax for ax in figure.axes if ax.images]
    assert len(heatmaps) == 3 * 2 * 3  # kinds × layers × heads
    titles = [ax.get_title() for ax in heatmaps]
    assert titles[0] == "encoder self-attention, layer 1, head 1"
    assert titles[-1] == "cross-attention, layer 2, head 3"
    np.testing.assert_allclose(heatmaps[4].images[0].get_array(), maps["encoder"][1][1, 1].numpy())
    np.testing.assert_allclose(heatmaps[-1].images[0].get_array(), maps["cross"][1][1, 2].numpy())
    with pytest.raises(ValueError, match="maps"):
        draw_attention_grid({}, ["a"], ["b"])


def test_the_perplexity_figure_draws_each_curve_by_epoch_and_the_references():
    figure = draw_perplexity_curve({"a": [300, 250, 200], "b": [400, 350]}, {"trigram": 237.1})
    ax = figure.axes[0]
    a, b, reference = ax.lines
    np.testing.assert_array_equal(a.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(b.get_ydata(), [400, 350])
    assert reference.get_ydata()[0] == pytest.approx(237.1)
    assert "trigram: 237.1" in _texts(figure)
    with pytest.raises(ValueError):
        draw_perplexity_curve({}, {})


def test_the_step_times_figure_draws_one_line_per_model():
    ax = draw_step_times([16, 32, 64], {"a": [1.0, 2.0, 4.0], "b": [3.0, 3.0, 3.0]})
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="one per length"):
        draw_step_times([16, 32], {"a": [1.0]})
    assert isinstance(ax.lines[0], Line2D)
