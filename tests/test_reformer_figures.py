"""The Reformer chapter's figures draw what `lessons.reformer` computes, and the results
they are given, where they say they do."""

import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from figure_checks import overlapping_texts
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, Wedge

from lessons.core.explorer import Explorer
from lessons.core.results import load_results
from lessons.figures.reformer import (
    BUCKET_COLOURS,
    PAIR_GAPS,
    STEP_DIM,
    axial_grid,
    draw_angular_hash,
    draw_attention_cost,
    draw_axial_parameters,
    draw_bucket_explorer,
    draw_duplication,
    draw_lsh_steps,
    draw_memory_vs_depth,
    draw_reversible_block,
    draw_same_bucket_rate,
    lsh_pairs,
)
from lessons.reformer import (
    AxialPositionEmbeddings,
    LSHSelfAttention,
    hash_rotations,
    hash_vectors,
    same_bucket_rate,
)

pytestmark = pytest.mark.usefixtures("one_thread")

LENGTHS = [512, 1024, 2048, 4096]
ATTENTION = {
    "lengths": LENGTHS,
    "seconds": {
        "full": [0.001, 0.004, 0.016, 0.064],
        "sdpa": [0.0005, 0.002, 0.008, 0.03],
        "lsh-1": [0.003, 0.006, 0.012, 0.024],
        "lsh-2": [0.006, 0.012, 0.024, 0.048],
        "lsh-4": [0.012, 0.024, 0.048, 0.1],
        "lsh-8": [0.024, 0.048, 0.1, 0.2],
    },
    "peak_bytes": {
        "full": [2**20, 2**22, 2**24, 2**26],
        "sdpa": [2**18, 2**19, 2**20, 2**21],
        "lsh-1": [2**20, 2**21, 2**22, 2**23],
        "lsh-2": [2**21, 2**22, 2**23, 2**24],
        "lsh-4": [2**22, 2**23, 2**24, 2**25],
        "lsh-8": [None, None, None, 2**26],
    },
    "slopes": {
        "seconds": {"full": 2.0, "sdpa": 1.95, "lsh-1": 1.0, "lsh-2": 1.0, "lsh-4": 1.02},
        "peak_bytes": {"full": 2.0, "sdpa": 1.0, "lsh-1": 1.0, "lsh-2": 1.0, "lsh-4": 1.0},
    },
    "crossover": {"lsh-1": 2048, "lsh-2": 4096, "lsh-4": None, "lsh-8": None},
}
EVALUATIONS = ("full", "lsh-1", "lsh-2", "lsh-4", "lsh-8")


def _curve(rate: float) -> list[dict]:
    return [
        {"step": step, "minutes": step / 100, "loss": 4.0 / step}
        | {kind: min(1.0, rate * step * (i + 1) / 5) for i, kind in enumerate(EVALUATIONS)}
        for step in (500, 1000, 1500)
    ]


DUPLICATION = {"curves": {"lsh4": _curve(1e-4), "full": _curve(2e-4)}, "chance": 1 / 63}
MEMORY = load_results("reformer_memory")


def _explorer_figure(**values) -> Figure:
    figure = Figure(figsize=(6.0, 3.5), layout="constrained")
    draw_bucket_explorer(figure.add_subplot(), **values)
    return figure


FIGURES = {
    "angular_hash": lambda: draw_angular_hash(),
    "lsh_steps": lambda: draw_lsh_steps(),
    "lsh_steps_causal": lambda: draw_lsh_steps(causal=True),
    "same_bucket_rate": lambda: draw_same_bucket_rate(trials=100),
    "reversible_block": lambda: draw_reversible_block(),
    "axial_parameters": lambda: draw_axial_parameters(),
    "memory_vs_depth": lambda: draw_memory_vs_depth(MEMORY),
    "attention_cost": lambda: draw_attention_cost(ATTENTION),
    "duplication": lambda: draw_duplication(DUPLICATION),
    "bucket_explorer": lambda: _explorer_figure(num_buckets=8, num_hashes=2),
}


def _rgb(colour) -> tuple[float, float, float]:
    return matplotlib.colors.to_rgb(colour)


def _lines(figure_or_ax, gid: str) -> list:
    axes = figure_or_ax.axes if isinstance(figure_or_ax, Figure) else [figure_or_ax]
    return [line for ax in axes for line in ax.lines if line.get_gid() == gid]


def _legend_texts(figure: Figure) -> list[str]:
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes)]
    return [t.get_text() for legend in legends if legend is not None for t in legend.texts]


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_builds_outside_pyplot_and_no_two_labels_overlap(name):
    before = plt.get_fignums()
    figure = FIGURES[name]()
    assert isinstance(figure, Figure)
    assert plt.get_fignums() == before
    assert overlapping_texts(figure) == []


def test_the_overlap_check_sees_an_overlap():
    figure = Figure()
    ax = figure.add_subplot()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    assert overlapping_texts(figure) == [("another label", "one label")]


# ---------------------------------------------------------------- section 2: hashing
def _paper_buckets(degrees: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The paper's h(x) = argmax([xR; -xR]) on unit vectors at ``degrees``, in NumPy."""
    x = np.stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], axis=-1)
    rotated = x @ matrix
    return np.concatenate([rotated, -rotated], axis=-1).argmax(axis=-1)


@pytest.mark.parametrize("seed", [0, 3])
def test_each_sector_has_the_colour_of_its_bucket_under_the_papers_formula(seed):
    figure = draw_angular_hash(seed=seed)
    rotations = hash_rotations(1, 2, 3, 4, seed=seed, dtype=torch.float64)[0].numpy()
    axes = figure.axes
    assert len(axes) == 6
    for index, ax in enumerate(axes):
        matrix = rotations[:, index % 3, :]  # (2, 2): this column's rotation
        wedges = [p for p in ax.patches if isinstance(p, Wedge) and p.get_gid() == "sector"]
        assert 4 <= len(wedges) <= 8
        assert sum(w.theta2 - w.theta1 for w in wedges) == pytest.approx(360.0)
        for wedge in wedges:
            inside = np.linspace(wedge.theta1 + 0.2, wedge.theta2 - 0.2, 25)
            buckets = set(_paper_buckets(inside, matrix).tolist())
            assert len(buckets) == 1  # one bucket all along the wedge
            colour = matplotlib.colors.to_rgba(BUCKET_COLOURS[buckets.pop()], 0.45)
            assert wedge.get_facecolor() == pytest.approx(colour)


@pytest.mark.parametrize("seed", [0, 3])
def test_each_title_says_whether_the_pair_shares_a_bucket(seed):
    figure = draw_angular_hash(seed=seed)
    rotations = hash_rotations(1, 2, 3, 4, seed=seed, dtype=torch.float64)
    verdicts = []
    for index, ax in enumerate(figure.axes):
        (points,) = _lines(ax, "point")
        x, y = points.get_xdata(), points.get_ydata()
        degrees = np.degrees(np.arctan2(y, x))
        gap = abs((degrees[1] - degrees[0] + 180) % 360 - 180)
        assert gap == pytest.approx(list(PAIR_GAPS.values())[index // 3])
        vectors = torch.tensor(np.stack([x, y], axis=-1)).view(1, 1, 2, 2)
        buckets = hash_vectors(vectors, 4, 3, rotations)[0, 0, index % 3]
        shared = bool(buckets[0] == buckets[1])
        verdict = "same bucket" if shared else "different buckets"
        assert ax.get_title() == f"rotation {index % 3 + 1}: {verdict}"
        verdicts.append(shared)
    assert verdicts != [verdicts[0]] * 6  # the figure shows both outcomes


def _layer_weights(seed: int, causal: bool) -> torch.Tensor:
    """The attention weights ``(seq, seq)`` of a real `LSHSelfAttention` on `lsh_pairs`'
    vectors: its shared query-keys are the vectors, its values the one-hot positions, so
    that its output is its weight matrix in the original order."""
    vectors = lsh_pairs(seed=seed)["vectors"][0, 0]  # (16, STEP_DIM)
    seq = vectors.shape[0]
    layer = LSHSelfAttention(
        STEP_DIM + seq,
        num_heads=1,
        d_head=STEP_DIM,
        num_buckets=4,
        chunk_length=4,
        causal=causal,
        hash_seed=seed,
    )
    with torch.no_grad():
        eye = torch.eye(STEP_DIM)
        layer.query_key.weight.copy_(torch.cat([eye, torch.zeros(STEP_DIM, seq)], dim=1))
        layer.value.weight.copy_(torch.cat([torch.zeros(seq, STEP_DIM), torch.eye(seq)], dim=1))
        x = torch.cat([vectors, torch.eye(seq)], dim=1).unsqueeze(0)
        return layer(x)[0]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_pairs_drawn_are_the_pairs_a_real_lsh_layer_weighs(seed, causal):
    met = lsh_pairs(causal=causal, seed=seed)["met"]
    weights = _layer_weights(seed, causal)
    assert torch.allclose(weights.sum(-1), torch.ones(16))
    # A token's own key is scored but masked (SELF_MASKED) unless it is all it may see.
    alone = met.sum(-1) == 1
    expected = met & ~torch.eye(16, dtype=torch.bool)
    expected[alone] = met[alone]
    assert torch.equal(weights > 0, expected)
    assert not met.all()  # hashing leaves pairs out: the test compares something
    if causal:
        assert not torch.triu(met, diagonal=1).any()


@pytest.mark.parametrize("causal", [False, True])
def test_the_steps_figure_draws_the_sorted_tokens_and_the_pairs(causal):
    steps = lsh_pairs(causal=causal, seed=2)
    figure = draw_lsh_steps(causal=causal, seed=2)
    strips, matrix = figure.axes
    tokens = [t for t in strips.texts if t.get_gid() == "token"]
    rows = {}
    for text in tokens:
        rows.setdefault(round(text.get_position()[1], 3), []).append(text)
    in_order, by_bucket, chunked = (rows[y] for y in sorted(rows, reverse=True))
    order = steps["order"].tolist()
    assert [int(t.get_text()) for t in in_order] == list(range(16))
    assert [int(t.get_text()) for t in by_bucket] == order
    assert [int(t.get_text()) for t in chunked] == order
    buckets = steps["buckets"]
    assert torch.equal(buckets.sort(stable=True).indices, steps["order"])
    boxes = [p for p in strips.patches if isinstance(p, Rectangle) and p.get_gid() == "token"]
    for box, token in zip(boxes[:16], range(16), strict=True):
        assert box.get_edgecolor()[:3] == pytest.approx(_rgb(BUCKET_COLOURS[buckets[token]]))
    image = matrix.images[0].get_array()
    same = buckets.unsqueeze(0) == buckets.unsqueeze(1)
    met = steps["met"].numpy()
    assert np.array_equal(image == 3, met & same.numpy())
    assert np.array_equal(image == 2, met & ~same.numpy())
    assert np.array_equal(
        image == 0, np.triu(np.ones((16, 16), bool), 1) if causal else np.zeros((16, 16), bool)
    )
    assert matrix.get_title() == (
        f"(d) pairs scored: {met.sum()} by LSH, {(image > 0).sum()} by full attention"
    )


def test_lsh_pairs_checks_its_arguments():
    with pytest.raises(ValueError, match="num_buckets: expected an even int from 2 to 6"):
        lsh_pairs(num_buckets=3)
    with pytest.raises(ValueError, match=r"chunk_length: expected a divisor of seq_len \(16\)"):
        lsh_pairs(chunk_length=5)
    with pytest.raises(ValueError, match="chunk_length"):
        lsh_pairs(chunk_length=16)
    with pytest.raises(TypeError, match="seed"):
        draw_lsh_steps(seed="0")


def test_the_rate_curves_are_same_bucket_rate_and_the_rounds_curve_follows():
    angles = [0, 30, 60, 90, 120, 150, 180]
    figure = draw_same_bucket_rate(angles, (2, 8), rounds=3, trials=200, rounds_buckets=8)
    radians = torch.tensor(np.radians(angles))
    for count in (2, 8):
        (line,) = _lines(figure, f"rate-{count}")
        assert list(line.get_xdata()) == angles
        expected = same_bucket_rate(radians, 64, count, 200, 0).numpy()
        assert np.array_equal(line.get_ydata(), expected)
        assert line.get_label() == f"{count} buckets"
    (rounds,) = _lines(figure, "rounds")
    expected = 1 - (1 - same_bucket_rate(radians, 64, 8, 200, 0).numpy()) ** 3
    assert np.allclose(rounds.get_ydata(), expected)
    assert rounds.get_label() == "8 buckets, at least once in 3 rounds"
    assert "200 random draws per angle" in figure.axes[0].get_title()
    two = _lines(figure, "rate-2")[0].get_ydata()
    assert two[0] == 1.0 and two[-1] == 0.0  # the same vector always; the opposite never


def test_the_rate_figure_checks_its_arguments():
    with pytest.raises(ValueError, match="angles: expected at least 2 angles in degrees"):
        draw_same_bucket_rate([0, 200])
    with pytest.raises(ValueError, match=r"bucket_counts\[1\]: expected an even int"):
        draw_same_bucket_rate(bucket_counts=(2, 5), trials=10)
    with pytest.raises(TypeError, match="bucket_counts"):
        draw_same_bucket_rate(bucket_counts=8)
    with pytest.raises(ValueError, match="rounds_buckets: expected one of bucket_counts"):
        draw_same_bucket_rate(bucket_counts=(2, 4), rounds_buckets=8)
    with pytest.raises(ValueError, match="rounds: expected an int >= 1"):
        draw_same_bucket_rate(rounds=0)


def _meeting_pairs(degrees: np.ndarray, num_buckets: int, num_hashes: int, seed: int) -> set:
    vectors = torch.tensor(np.stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], 1))
    rotations = hash_rotations(1, 2, num_hashes, num_buckets, seed=seed, dtype=torch.float64)
    buckets = hash_vectors(vectors.view(1, 1, -1, 2), num_buckets, num_hashes, rotations)[0, 0]
    n = len(degrees)
    return {
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if bool((buckets[:, i] == buckets[:, j]).any())
    }


@pytest.mark.parametrize(("num_buckets", "num_hashes"), [(8, 1), (8, 4), (16, 2)])
def test_the_explorer_joins_the_pairs_that_share_a_bucket_in_some_round(num_buckets, num_hashes):
    figure = _explorer_figure(num_buckets=num_buckets, num_hashes=num_hashes, seed=1)
    ax = figure.axes[0]
    points = next(c for c in ax.collections if c.get_gid() == "point").get_offsets()
    degrees = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    expected = _meeting_pairs(degrees, num_buckets, num_hashes, seed=1)
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    drawn = set()
    for segment in lines.get_segments():
        ends = [int(np.argmin(np.hypot(*(points - end).T))) for end in segment]
        drawn.add(tuple(sorted(ends)))
    assert drawn == expected
    gaps = np.abs(degrees[:, None] - degrees[None, :])
    gaps = np.minimum(gaps, 360 - gaps) + np.diag(np.full(24, np.inf))
    nearest = {tuple(sorted((i, int(j)))) for i, j in enumerate(gaps.argmin(1))}
    rounds = "round" if num_hashes == 1 else "rounds"
    assert ax.get_title() == (
        f"{num_buckets} buckets, {num_hashes} {rounds}: "
        f"{len(expected)} of 276 pairs share a bucket,\n"
        f"{len(nearest & expected)} of the {len(nearest)} nearest-neighbour pairs"
    )


def test_more_rounds_let_more_pairs_meet_in_the_explorer():
    counts = []
    for num_hashes in (1, 2, 4):
        title = _explorer_figure(num_buckets=8, num_hashes=num_hashes).axes[0].get_title()
        counts.append(int(title.split(": ")[1].split(" of")[0]))
    assert counts[0] < counts[1] < counts[2]


def test_the_explorer_redraws_fast_and_works_in_an_explorer():
    view = Explorer(draw_bucket_explorer, {"num_buckets": (2, 16, 2, 8), "num_hashes": (1, 8, 1)})
    start = time.perf_counter()
    view.controls["num_hashes"].value = 4
    assert time.perf_counter() - start < 0.5
    assert view.draws == 2 and view.png.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="num_buckets: expected an even int"):
        draw_bucket_explorer(Figure().add_subplot(), num_buckets=5)


# ---------------------------------------------------------------- section 3
def test_the_reversible_block_shows_both_passes_and_what_is_stored():
    figure = draw_reversible_block()
    forward, backward = figure.axes
    for ax, sign, equations in (
        (forward, "+", {"$y_1 = x_1 + F(x_2)$", "$y_2 = x_2 + G(y_1)$"}),
        (backward, "−", {"$x_1 = y_1 - F(x_2)$", "$x_2 = y_2 - G(y_1)$"}),
    ):
        texts = {gid: [t.get_text() for t in ax.texts if t.get_gid() == gid] for gid in ("node",)}
        assert texts["node"] == [sign, sign]
        assert {t.get_text() for t in ax.texts if t.get_gid() == "equation"} == equations
        stored = [t.get_text() for t in ax.texts if t.get_gid() == "stored"]
        assert stored == ["$y_1$", "$y_2$"]
    assert [t.get_text() for t in forward.texts if t.get_gid() == "input"] == ["$x_1$", "$x_2$"]
    assert [t.get_text() for t in backward.texts if t.get_gid() == "recomputed"] == [
        "$x_1$",
        "$x_2$",
    ]
    notes = " ".join(t.get_text() for t in forward.texts if t.get_gid() == "note")
    assert "only $y_1$, $y_2$" in notes and "not stored" in notes


# ---------------------------------------------------------------- section 5
def test_axial_grid_is_the_most_nearly_square_factorisation():
    assert axial_grid(4096) == (64, 64)
    assert axial_grid(128) == (8, 16)
    assert axial_grid(12) == (3, 4)
    assert axial_grid(13) == (1, 13)
    with pytest.raises(ValueError, match="num_positions: expected an int >= 1"):
        axial_grid(0)


def test_the_axial_figure_draws_the_parameter_counts_of_the_module():
    lengths = [64, 128, 4096]
    figure = draw_axial_parameters((32, 96), lengths)
    (full,) = _lines(figure, "full")
    (axial,) = _lines(figure, "axial")
    assert list(full.get_xdata()) == lengths
    assert list(full.get_ydata()) == [n * 128 for n in lengths]  # n x d_model
    assert list(axial.get_ydata()) == [8 * 32 + 8 * 96, 8 * 32 + 16 * 96, 64 * 32 + 64 * 96]
    embeddings = AxialPositionEmbeddings((64, 64), (32, 96))
    assert full.get_ydata()[-1] == embeddings.full_table_size
    assert axial.get_ydata()[-1] == sum(p.numel() for p in embeddings.parameters())
    (ratio,) = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "ratio"]
    assert ratio == f"{4096 * 128 // (64 * 128)}× fewer"


def test_the_grid_picture_puts_position_p_at_its_row_and_column():
    figure = draw_axial_parameters()
    grid = figure.axes[1]
    cells = [t.get_text() for t in grid.texts if t.get_gid() == "cell"]
    assert cells == [f"p = {p}\n({p // 4}, {p % 4})" for p in range(16)]
    embeddings = AxialPositionEmbeddings((4, 4), (2, 3))
    table = embeddings(16)[0]
    for p in range(16):  # the module's embedding of p is [E1[p // 4]; E2[p % 4]]
        row, column = divmod(p, 4)
        expected = torch.cat([embeddings.weights[0][row, 0], embeddings.weights[1][0, column]])
        assert torch.equal(table[p], expected)


def test_the_axial_figure_checks_its_arguments():
    with pytest.raises(ValueError, match="lengths: expected at least 2"):
        draw_axial_parameters(lengths=[64])
    with pytest.raises(ValueError, match=r"lengths\[1\]: expected an int >= 1"):
        draw_axial_parameters(lengths=[64, 0])
    with pytest.raises(ValueError, match="axial_dims"):
        draw_axial_parameters(axial_dims=(64,))


# ---------------------------------------------------------------- section 7
def test_the_memory_bars_are_the_measured_mebibytes_from_zero():
    figure = draw_memory_vs_depth(MEMORY)
    ax = figure.axes[0]
    for kind in ("plain", "reversible"):
        bars = [p for p in ax.patches if p.get_gid() == kind]
        heights = [bar.get_height() for bar in bars]
        expected = [b / 2**20 for b in MEMORY["saved_bytes"][kind]]
        assert heights == pytest.approx(expected)
        assert all(bar.get_y() == 0 for bar in bars)
    labels = [t.get_text() for t in ax.texts]
    expected_labels = [
        f"{b / 2**20:.1f}" for k in ("plain", "reversible") for b in MEMORY["saved_bytes"][k]
    ]
    assert labels == expected_labels
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in MEMORY["depths"]]
    assert ax.get_ylim()[0] == 0


def test_the_memory_figure_checks_its_results():
    with pytest.raises(ValueError, match=r"results: expected the keys \['depths', 'saved_bytes'\]"):
        draw_memory_vs_depth({"depths": [2]})
    with pytest.raises(ValueError, match=r"results\['saved_bytes'\]\['plain'\]: expected 2 values"):
        draw_memory_vs_depth(
            {"depths": [2, 4], "saved_bytes": {"plain": [1], "reversible": [1, 1]}}
        )
    with pytest.raises(TypeError, match="results: expected a dict"):
        draw_memory_vs_depth([2, 4])


def test_the_cost_figure_draws_every_measurement_with_slopes_and_crossovers():
    figure = draw_attention_cost(ATTENTION)
    time_ax, memory_ax = figure.axes
    for ax, measure, scale in ((time_ax, "seconds", 1.0), (memory_ax, "peak_bytes", 2**-20)):
        for kind, values in ATTENTION[measure].items():
            (line,) = _lines(ax, kind)
            assert list(line.get_xdata()) == LENGTHS
            expected = [np.nan if v is None else v * scale for v in values]
            assert np.allclose(line.get_ydata(), expected, equal_nan=True)
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    marks = {
        (float(m.get_xdata()[0]), float(m.get_ydata()[0])) for m in _lines(time_ax, "crossover")
    }
    assert marks == {(2048.0, 0.012), (4096.0, 0.048)}
    legend = _legend_texts(figure)
    assert (
        "LSH, 1 round: slope 1.00 (time), 1.00 (memory); faster than full from L = 2,048" in legend
    )
    assert "full attention (scores materialised): slope 2.00 (time), 2.00 (memory)" in legend
    assert "LSH, 8 rounds" in legend
    assert len(legend) == 6


def test_the_cost_figure_checks_its_results():
    broken = {**ATTENTION, "seconds": {**ATTENTION["seconds"], "full": [1.0, 2.0]}}
    with pytest.raises(ValueError, match=r"results\['seconds'\]\['full'\]: expected 4 values"):
        draw_attention_cost(broken)
    with pytest.raises(ValueError, match="results: expected the keys"):
        draw_attention_cost({"lengths": LENGTHS, "seconds": {}})
    with pytest.raises(ValueError, match=r"results\['crossover'\]\['lsh-4'\]: expected one of"):
        draw_attention_cost({**ATTENTION, "crossover": {"lsh-4": 3000}})
    with pytest.raises(TypeError, match=r"results\['peak_bytes'\]: expected a dict"):
        draw_attention_cost({**ATTENTION, "peak_bytes": [1, 2]})


def test_the_duplication_figure_draws_each_evaluation_of_each_model():
    figure = draw_duplication(DUPLICATION)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles == ["trained with LSH, 4 rounds", "trained with full attention"]
    for ax, points in zip(figure.axes, DUPLICATION["curves"].values(), strict=True):
        for kind in EVALUATIONS:
            (line,) = _lines(ax, kind)
            assert list(line.get_xdata()) == [p["step"] for p in points]
            assert list(line.get_ydata()) == [p[kind] for p in points]
        (chance,) = _lines(ax, "chance")
        assert list(chance.get_ydata()) == [1 / 63, 1 / 63]
        assert [t.get_text() for t in ax.texts] == ["chance: 0.016"]
        assert ax.get_ylim() == (0, 1.02)
    (legend,) = figure.legends  # one legend for every panel
    labels = [t.get_text() for t in legend.texts]
    assert labels == [
        "full attention",
        "LSH, 1 round",
        "LSH, 2 rounds",
        "LSH, 4 rounds",
        "LSH, 8 rounds",
    ]


def test_an_evaluation_made_at_some_steps_only_is_drawn_at_those_steps():
    points = [{"step": 100, "full": 0.1}, {"step": 200, "full": 0.2, "lsh-8": 0.3}]
    figure = draw_duplication({"curves": {"full": points}, "chance": 0.5})
    (full,) = _lines(figure, "full")
    (lsh8,) = _lines(figure, "lsh-8")
    assert list(full.get_xdata()) == [100, 200] and list(full.get_ydata()) == [0.1, 0.2]
    assert list(lsh8.get_xdata()) == [200] and list(lsh8.get_ydata()) == [0.3]


def test_the_duplication_figure_checks_its_results():
    with pytest.raises(ValueError, match=r"results: expected the keys \['curves', 'chance'\]"):
        draw_duplication({"curves": DUPLICATION["curves"]})
    with pytest.raises(ValueError, match=r"results\['chance'\]: expected a number in \[0, 1\]"):
        draw_duplication({**DUPLICATION, "chance": 2.0})
    with pytest.raises(
        ValueError, match=r"results\['curves'\]\['full'\]\[0\]: expected a key 'step'"
    ):
        draw_duplication({**DUPLICATION, "curves": {"full": [{"full": 0.5}]}})
    with pytest.raises(ValueError, match=r"results\['curves'\]: expected a dict"):
        draw_duplication({**DUPLICATION, "curves": {}})
