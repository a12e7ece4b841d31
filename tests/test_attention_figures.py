"""The attention chapter's figures draw the numbers they claim, and those numbers are right."""

import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lessons.figures.attention import (
    DEFAULT_D_KS,
    dot_product_variance,
    draw_alignment,
    draw_dot_product_variance,
    draw_gradient_vs_dk,
    draw_heads,
    draw_softmax_scale,
    softmax_gradient_norm,
)


@pytest.mark.parametrize("d_k", [1, 16, 256])
def test_dot_product_variance_is_d_k_unscaled_and_one_scaled(d_k):
    # 4,000 samples: the relative standard error of a variance is sqrt(2 / 4000) = 2.2%
    assert dot_product_variance(d_k) == pytest.approx(d_k, rel=0.1)
    assert dot_product_variance(d_k, scaled=True) == pytest.approx(1.0, rel=0.1)
    assert dot_product_variance(d_k, seed=3) == dot_product_variance(d_k, seed=3)
    assert dot_product_variance(d_k, seed=3) != dot_product_variance(d_k, seed=4)  # it is used


def test_unscaled_softmax_gradient_falls_with_d_k_and_scaled_stays():
    unscaled = [softmax_gradient_norm(d, scaled=False) for d in (16, 64, 256, 1024)]
    scaled = [softmax_gradient_norm(d, scaled=True) for d in (16, 64, 256, 1024)]
    assert all(a > b for a, b in zip(unscaled, unscaled[1:], strict=False))
    assert unscaled[-1] < 0.25 * unscaled[0]
    assert max(scaled) < 1.2 * min(scaled)
    assert softmax_gradient_norm(1, scaled=True) == softmax_gradient_norm(1, scaled=False)


def test_softmax_gradient_norm_is_the_norm_of_autograds_jacobian():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 8, generator=g, dtype=torch.float64)
    keys = torch.randn(1, 5, 8, generator=g, dtype=torch.float64)
    scores = (q * keys).sum(-1)[0] / math.sqrt(8)
    jacobian = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), scores)
    measured = softmax_gradient_norm(8, scaled=True, num_keys=5, samples=1, seed=0)
    assert measured == pytest.approx(torch.linalg.matrix_norm(jacobian).item(), rel=1e-12)


def test_softmax_scale_bars_are_the_softmax():
    figure, (ax, flat) = plt.subplots(1, 2)
    draw_softmax_scale(ax, [2.0, 0.0, 1.0], scale=2.0, labels=["a", "b", "c"])
    heights = [p.get_height() for p in ax.patches]
    expected = torch.softmax(torch.tensor([4.0, 0.0, 2.0], dtype=torch.float64), 0)
    assert heights == pytest.approx(expected.tolist())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    draw_softmax_scale(flat, [2.0, 0.0, 1.0], scale=0.0)
    assert [p.get_height() for p in flat.patches] == pytest.approx([1 / 3] * 3)
    plt.close(figure)


def test_variance_figure_plots_the_measurements_and_the_line_y_equals_d_k():
    d_ks = (1, 8, 64)
    ax = draw_dot_product_variance(d_ks, samples=2000).axes[0]
    theory, unscaled, scaled = ax.get_lines()
    assert list(theory.get_ydata()) == list(d_ks)
    assert list(unscaled.get_ydata()) == [dot_product_variance(d, 2000) for d in d_ks]
    assert list(scaled.get_ydata()) == [dot_product_variance(d, 2000, scaled=True) for d in d_ks]
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_gradient_figure_plots_the_measurements_on_a_log_scale():
    ax = draw_gradient_vs_dk((4, 64), samples=50).axes[0]
    unscaled, scaled = ax.get_lines()
    assert list(unscaled.get_ydata()) == [
        softmax_gradient_norm(d, False, samples=50) for d in (4, 64)
    ]
    assert list(scaled.get_ydata()) == [softmax_gradient_norm(d, True, samples=50) for d in (4, 64)]
    assert ax.get_yscale() == "log"


def test_alignment_heatmap_has_target_rows_and_source_columns():
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), -1)
    figure = draw_alignment(weights, ["le", "chat", "noir", "</s>"], ["the", "black", "cat"])
    ax = figure.axes[0]
    assert np.allclose(ax.images[0].get_array(), weights.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["le", "chat", "noir", "</s>"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["the", "black", "cat"]
    shared = Figure().add_subplot()
    assert draw_alignment(weights, list("abcd"), list("xyz"), ax=shared) is shared.figure


def test_heads_grid_draws_one_heatmap_per_head():
    weights = torch.softmax(torch.randn(1, 6, 3, 3, generator=torch.Generator().manual_seed(1)), -1)
    figure = draw_heads(weights, ["a", "b", "c"])
    images = [ax.images[0] for ax in figure.axes if ax.images]
    assert len(images) == 6
    for head, image in enumerate(images):
        assert np.allclose(image.get_array(), weights[0, head].numpy())
        assert image.get_clim() == (0.0, 1.0)
    assert sum(not ax.axison for ax in figure.axes) == 2  # 2 rows of 4: two empty cells


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: draw_softmax_scale(None, [[1.0, 2.0]]), "1 dimensions"),
        (lambda: draw_softmax_scale(None, [1.0, 2.0], scale=math.inf), "scale"),
        (lambda: draw_softmax_scale(None, [1.0, 2.0], labels=["a"]), "2 labels"),
        (lambda: draw_alignment(torch.ones(2, 3), ["a", "b"], ["x", "y"]), "3 and 2 tokens"),
        (lambda: draw_heads(torch.ones(2, 3), ["a", "b", "c"]), "heads, q_len, k_len"),
        (lambda: draw_heads(torch.ones(2, 3, 3), ["a", "b"]), "3 and 3 tokens"),
        (lambda: dot_product_variance(0), "d_k"),
        (lambda: softmax_gradient_norm(4, True, num_keys=1), "num_keys: expected an int >= 2"),
    ],
)
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_figure_is_fast_and_deterministic():
    for draw in (draw_dot_product_variance, draw_gradient_vs_dk):
        start = time.process_time()  # CPU time: the other jobs of a shared machine don't count
        first = draw()
        assert time.process_time() - start < 3.0, draw.__name__
        again = draw()
        for a, b in zip(first.axes[0].get_lines(), again.axes[0].get_lines(), strict=True):
            assert list(a.get_ydata()) == list(b.get_ydata())
        # by default the figures sweep d_k = 1, 4, ..., 1024, as the chapter says
        for line in first.axes[0].get_lines():
            assert list(line.get_xdata()) == [1, 4, 16, 64, 256, 1024] == list(DEFAULT_D_KS)
