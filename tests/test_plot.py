"""Figure helpers: they draw what they are given and refuse mismatched labels."""

import matplotlib
import numpy as np
import pytest
import torch

from lessons.core.plot import (
    STYLE,
    embedding_scatter,
    heatmap,
    project_2d,
    smooth,
    training_curves,
    use_style,
)
from lessons.core.train import History


def test_smooth_is_a_bias_corrected_moving_average():
    assert smooth([5.0, 5.0, 5.0]).tolist() == pytest.approx([5.0, 5.0, 5.0])
    values = smooth([0.0, 10.0], weight=0.5)
    # t=0: 0; t=1: (0.5*0 + 0.5*10) / (1 - 0.25) = 6.667
    assert values.tolist() == pytest.approx([0.0, 20 / 3])
    with pytest.raises(ValueError, match="weight: expected a number in \\[0, 1\\), got 1"):
        smooth([1.0], weight=1)


def test_heatmap_shows_the_matrix_and_labels():
    weights = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    ax = heatmap(weights, x_labels=["a", "b", "c"], y_labels=["x", "y"], annotate=True, title="t")
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_array(), weights.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    assert "0.90" in [t.get_text() for t in ax.texts]
    assert ax.get_title() == "t"


@pytest.mark.parametrize(
    ("weights", "kwargs", "error", "match"),
    [
        (
            np.ones((2, 3)),
            {"x_labels": ["a", "b"]},
            ValueError,
            "x_labels: expected 3 labels .* got 2",
        ),
        (np.ones((2, 3)), {"y_labels": ["a"]}, ValueError, "y_labels: expected 2 labels"),
        (np.ones(3), {}, ValueError, "weights: expected 2 dimensions, got shape \\(3,\\)"),
        ("hello", {}, TypeError, "weights: expected numbers, got str"),
        (np.ones((2, 2)), {"ax": "axes"}, TypeError, "ax: expected a matplotlib Axes"),
    ],
)
def test_heatmap_bad_input(weights, kwargs, error, match):
    with pytest.raises(error, match=match):
        heatmap(weights, **kwargs)


def test_project_2d_keeps_the_main_directions():
    # points spread along x (variance 100) and y (variance 1): PCA must keep that order
    rng = np.random.default_rng(0)
    points = np.c_[10 * rng.standard_normal(200), rng.standard_normal(200), np.zeros(200)]
    projected = project_2d(points)
    assert projected.shape == (200, 2)
    spread = projected.std(axis=0)
    assert spread[0] == pytest.approx(10, rel=0.15) and spread[1] == pytest.approx(1, rel=0.15)
    with pytest.raises(ValueError, match="at least 2 rows"):
        project_2d(np.ones((1, 4)))


def test_embedding_scatter_labels_every_point_and_groups():
    vectors = torch.eye(4)
    ax = embedding_scatter(
        vectors,
        ["paris", "france", "rome", "italy"],
        groups=["capital", "country", "capital", "country"],
    )
    assert [t.get_text() for t in ax.texts] == ["paris", "france", "rome", "italy"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["capital", "country"]
    with pytest.raises(ValueError, match="labels: expected 4 labels"):
        embedding_scatter(vectors, ["a"])
    with pytest.raises(ValueError, match="groups: expected 4 group names"):
        embedding_scatter(vectors, list("abcd"), groups=["x"])


def test_training_curves_bad_input():
    with pytest.raises(
        TypeError,
        match=r"history: expected a lessons.core.train.History \(with step_loss and epochs\), "
        "got dict",
    ):
        training_curves({})
    with pytest.raises(ValueError, match="no recorded steps"):
        training_curves(History())


def test_use_style_sets_a_white_background():
    # matplotlib's default is white already: start from another style, so that a
    # use_style() that changed nothing would fail
    with matplotlib.rc_context({"figure.facecolor": "black", "axes.spines.top": True}):
        use_style()
        assert matplotlib.rcParams["figure.facecolor"] == STYLE["figure.facecolor"] == "white"
        assert matplotlib.rcParams["axes.spines.top"] is False
