"""The attention chapter's figures draw the numbers they claim, and those numbers are right."""

import time

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lessons.attention import kernel_regression
from lessons.figures.attention import (
    DEFAULT_D_KS,
    SCALINGS,
    additive_score_variance,
    attention_gradients,
    dot_product_variance,
    draw_alignment,
    draw_decoder_step,
    draw_dot_product_variance,
    draw_gradient_distribution,
    draw_gradient_histogram,
    draw_kernel_regression,
    draw_qkv_lookup,
    draw_split_merge_heads,
    plot_accuracy_by_length,
)


@pytest.mark.parametrize("d_k", [1, 16, 256])
def test_dot_product_variance_is_d_k_unscaled_and_one_scaled(d_k):
    # 4,000 samples: the relative standard error of a variance is sqrt(2 / 4000) = 2.2%
    assert dot_product_variance(d_k) == pytest.approx(d_k, rel=0.1)
    assert dot_product_variance(d_k, scaled=True) == pytest.approx(1.0, rel=0.1)
    assert dot_product_variance(d_k, seed=3) == dot_product_variance(d_k, seed=3)
    assert dot_product_variance(d_k, seed=3) != dot_product_variance(d_k, seed=4)  # it is used


def test_attention_gradients_are_the_softmax_chain_rule_written_out():
    # the same draws as attention_gradients: float32 normals, then float64 arithmetic
    d_k, num_keys, exponent = 8, 5, 0.5
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 1, d_k, generator=g).double()
    keys = torch.randn(2, num_keys, d_k, generator=g).double()
    upstream = torch.randn(2, 1, num_keys, generator=g).double()
    measured = attention_gradients(d_k, exponent, num_keys, samples=2, seed=3)
    for b in range(2):
        scores = keys[b] @ q[b, 0] / d_k**exponent
        p = torch.softmax(scores, 0)
        d_scores = p * (upstream[b, 0] - p @ upstream[b, 0])  # (diag(p) - p p^T) g
        d_query = keys[b].T @ d_scores / d_k**exponent
        d_keys = torch.outer(d_scores, q[b, 0]) / d_k**exponent
        assert measured.query[b].item() == pytest.approx(d_query.norm().item(), rel=1e-10)
        assert measured.keys[b].item() == pytest.approx(d_keys.norm().item(), rel=1e-10)
        assert measured.largest_weight[b].item() == pytest.approx(p.max().item(), rel=1e-12)
        top = scores.topk(2).values
        assert measured.top_gap[b].item() == pytest.approx((top[0] - top[1]).item(), rel=1e-10)


def test_unscaled_gradients_are_mostly_nothing_and_occasionally_a_spike():
    # the chapter's claim at d_k = 1024: a tiny median, a large mean, carried by near-ties
    unscaled = attention_gradients(1024, exponent=0.0)
    scaled = attention_gradients(1024, exponent=0.5)
    assert unscaled.query.median() < 1e-2 < 0.2 < scaled.query.median() < 0.35
    assert unscaled.query.mean() > 0.5 > 0.35 > scaled.query.mean()
    assert unscaled.query.mean() > 100 * unscaled.query.median()
    assert scaled.query.mean() < 1.2 * scaled.query.median()
    assert unscaled.largest_weight.mean() > 0.9 and scaled.largest_weight.mean() < 0.3
    near_ties = unscaled.top_gap < 2.0
    assert near_ties.float().mean() < 0.2  # rare ...
    assert unscaled.query[near_ties].sum() > 0.6 * unscaled.query.sum()  # ... and they carry it


def test_dividing_by_d_k_makes_the_weights_uniform_and_the_gradients_shrink():
    medians = [attention_gradients(d, exponent=1.0).query.median().item() for d in (64, 1024)]
    assert medians[1] == pytest.approx(medians[0] / 4, rel=0.15)  # like 1 / sqrt(d_k)
    assert attention_gradients(1024, exponent=1.0).largest_weight.mean() < 0.08  # ~ 1 / 16


def test_every_scaling_sees_the_same_draws():
    # d_k = 1: every exponent divides by 1, so the measurements are identical
    first, *others = (attention_gradients(1, exponent, samples=300) for exponent in (0, 0.5, 1))
    for other in others:
        assert torch.equal(first.query, other.query)
    again = attention_gradients(1, 0.0, samples=300)
    again.query.zero_()  # a caller's change does not reach the cache
    assert torch.equal(attention_gradients(1, 0.0, samples=300).query, first.query)
    assert not torch.equal(first.query, attention_gradients(1, 0.0, samples=300, seed=1).query)


def test_additive_scores_do_not_grow_with_d_k_where_dot_products_do():
    variances = [additive_score_variance(d) for d in DEFAULT_D_KS]
    assert all(0.03 < v < 0.34 for v in variances), variances
    assert max(variances) < 4 * min(variances)
    assert dot_product_variance(1024) > 100 * max(variances)


def test_variance_figure_plots_the_measurements_and_the_line_y_equals_d_k():
    d_ks = (1, 8, 64)
    ax = draw_dot_product_variance(d_ks, samples=2000).axes[0]
    theory, unscaled, scaled = ax.get_lines()
    assert list(theory.get_ydata()) == list(d_ks)
    assert list(unscaled.get_ydata()) == [dot_product_variance(d, 2000) for d in d_ks]
    assert list(scaled.get_ydata()) == [dot_product_variance(d, 2000, scaled=True) for d in d_ks]
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_gradient_figure_plots_medians_bands_and_means_on_log_axes():
    d_ks = (4, 64)
    figure = draw_gradient_distribution(d_ks, samples=300)
    left, right = figure.axes[:2]
    lines = {line.get_label(): line for line in left.get_lines()}
    for name in ("q · k", "q · k / √d_k"):
        norms = [attention_gradients(d, SCALINGS[name], samples=300).query for d in d_ks]
        median = lines[f"{name}: median, 10–90% band"].get_ydata()
        mean = lines[f"{name}: mean"].get_ydata()
        assert list(median) == pytest.approx([n.quantile(0.5).item() for n in norms], rel=1e-12)
        assert list(mean) == pytest.approx([n.mean().item() for n in norms], rel=1e-12)
    assert left.get_yscale() == "log" and right.get_xscale() == "log"
    assert len(left.collections) == 2  # one 10-90% band per scaling
    assert "d_k = 64" in right.get_title()


def test_gradient_histogram_counts_every_query_once_per_scaling():
    figure = Figure()
    ax = figure.add_subplot()
    draw_gradient_histogram(ax, 256, samples=400)
    assert len(ax.patches) == len(SCALINGS)
    for patch in ax.patches:  # a step histogram: its outline's heights sum to the count
        heights = patch.get_path().vertices[1:-1:2, 1]
        assert heights.sum() == pytest.approx(400)
    with pytest.raises(ValueError, match="scalings"):
        draw_gradient_histogram(ax, 4, scalings=("q · k / 2",))


def test_alignment_heatmap_has_target_rows_and_source_columns():
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), -1)
    figure = draw_alignment(weights, ["le", "chat", "noir", "</s>"], ["the", "black", "cat"])
    ax = figure.axes[0]
    assert np.allclose(ax.images[0].get_array(), weights.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["le", "chat", "noir", "</s>"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["the", "black", "cat"]
    shared = Figure().add_subplot()
    assert draw_alignment(weights, list("abcd"), list("xyz"), ax=shared) is shared.figure


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: draw_alignment(torch.ones(2, 3), ["a", "b"], ["x", "y"]), "3 and 2 tokens"),
        (lambda: dot_product_variance(0), "d_k"),
        (lambda: attention_gradients(4, num_keys=1), "num_keys: expected an int >= 2"),
        (lambda: attention_gradients(4, exponent=-1.0), "exponent"),
        (lambda: draw_qkv_lookup(scores=(1.0, 2.0), values=(1.0,)), "one score per value"),
        (lambda: draw_split_merge_heads(d_model=10, num_heads=4), "multiple of num_heads"),
        (
            lambda: draw_decoder_step(
                list("ab"), torch.ones(3, 4), torch.ones(3), torch.ones(3), ""
            ),
            "expected 3 each",
        ),
    ],
)
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_decoder_step_draws_states_scores_weights_and_their_context():
    g = torch.Generator().manual_seed(0)
    states, scores = torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    weights = torch.softmax(scores, 0)
    figure = draw_decoder_step(list("abcdef"), states, scores, weights, written="19")
    top, middle, bottom, last = figure.axes[:4]
    assert np.allclose(top.images[0].get_array(), states.numpy().T)
    assert [p.get_height() for p in middle.patches] == pytest.approx(scores.tolist())
    assert [p.get_height() for p in bottom.patches] == pytest.approx(weights.tolist())
    assert np.allclose(last.images[0].get_array(), (weights @ states).numpy()[None, :], atol=1e-6)
    assert [t.get_text() for t in middle.get_xticklabels()] == list("abcdef")
    assert "'19'" in middle.get_title(loc="left")


def test_qkv_lookup_answers_with_the_weighted_average_of_the_values():
    figure = draw_qkv_lookup(scores=(1.0, 0.0, -1.0), values=(10.0, 20.0, 40.0))
    dictionary, attention = figure.axes
    weights = torch.softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64), 0)
    expected = float(weights @ torch.tensor([10.0, 20.0, 40.0], dtype=torch.float64))
    texts = [t.get_text() for t in attention.texts]
    assert f"Σ α_j v_j\n= {expected:.1f}" in texts
    assert [f"α = {w:.2f}" for w in weights.tolist()] == [t for t in texts if t.startswith("α")]
    assert "answer\n10" in [t.get_text() for t in dictionary.texts]


def test_kernel_regression_figure_draws_what_kernel_regression_predicts():
    figure = draw_kernel_regression(bandwidths=(0.3, 1.0), query=2.0, num_points=12)
    left, right = figure.axes
    keys, values = (torch.from_numpy(a) for a in left.collections[0].get_offsets().data.T)
    fits = [line for line in left.get_lines() if line.get_label().startswith("bandwidth")]
    grid = torch.from_numpy(fits[0].get_xdata())
    for line, bandwidth in zip(fits, (0.3, 1.0), strict=True):
        predicted, _ = kernel_regression(grid, keys, values, bandwidth)
        assert np.allclose(line.get_ydata(), predicted.numpy())
    for line in right.get_lines()[:2]:
        assert line.get_ydata().sum() == pytest.approx(1.0)  # one distribution per bandwidth


def test_split_merge_figure_colours_each_feature_by_its_head():
    figure = draw_split_merge_heads(seq_len=2, d_model=6, num_heads=3)
    ax = figure.axes[0]
    assert len(ax.patches) - 2 == 3 * 2 * 6  # three matrices of 2 x 6 cells, two arrows
    cells = [p for p in ax.patches if isinstance(p, Rectangle)]
    first_row = sorted((p for p in cells if p.get_y() == cells[0].get_y()), key=lambda p: p.get_x())
    colours = [p.get_facecolor() for p in first_row[:6]]  # the matrix Q, left to right
    assert colours[0] == colours[1] != colours[2] == colours[3] != colours[4] == colours[5]


def test_accuracy_label_sits_above_the_lines_and_clear_of_the_legend():
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.add_subplot()
    results = {"a": {10: (1.0, 5), 50: (0.1, 5), 120: (0.0, 5)}, "b": {10: (0.0, 5), 120: (1.0, 5)}}
    plot_accuracy_by_length(results, max_train_len=40, ax=ax)
    (label,) = [t for t in ax.texts if "longer than in training" in t.get_text()]
    assert label.get_position()[1] > 100 >= max(ax.get_yticks())
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = label.get_window_extent(renderer)
    assert not box.overlaps(ax.get_legend().get_window_extent(renderer))
    assert ax.get_xlim()[1] >= 120 and ax.get_ylim() == (0, 112)


def test_every_figure_is_fast_and_deterministic():
    for draw in (draw_dot_product_variance, draw_gradient_distribution):
        start = time.process_time()  # CPU time: the other jobs of a shared machine don't count
        first = draw()
        assert time.process_time() - start < 15.0, draw.__name__
        again = draw()
        for a, b in zip(first.axes[0].get_lines(), again.axes[0].get_lines(), strict=True):
            assert list(a.get_ydata()) == list(b.get_ydata())
        # by default the figures sweep d_k = 1, 4, ..., 1024, as the chapter says
        for line in first.axes[0].get_lines()[-2:]:
            assert list(line.get_xdata()) == [1, 4, 16, 64, 256, 1024] == list(DEFAULT_D_KS)
