"""The BERT chapter's figures draw what they are given, where they say they do."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from figure_checks import overlapping_texts, render
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from lessons.figures.bert import (
    COLOURS,
    DEPENDENCIES,
    PAPER_PAIR,
    draw_attention_map,
    draw_attention_maps,
    draw_embedding_sum,
    draw_head_scores,
    draw_input_representation,
    draw_layer_similarities,
    draw_masking,
    draw_polarity,
    draw_pretrain_finetune,
    draw_pretraining_curves,
    draw_read_back,
    draw_why_mask,
    mark_best_head,
)

TOKENS = ["[CLS]", "the", "dog", "chased", "the", "cat", "[SEP]"]
READ_BACK = {"token identity": (0.99, 0.001), "position": (0.97, 0.008), "segment": (1.0, 0.5)}
CURVE = [
    {"step": 0, "loss": 11.0, "mlm_accuracy": 0.0, "nsp_accuracy": 0.5},
    {"step": 100, "loss": 7.5, "mlm_accuracy": 0.08, "nsp_accuracy": 0.55},
    {"step": 200, "loss": 6.0, "mlm_accuracy": 0.15, "nsp_accuracy": 0.62},
]
BASELINES = {"most frequent word": 0.06, "biLM fill-in": 0.08, "next-sentence chance": 0.5}
POLARITY = {"word2vec": (0.56, 0.035), "MiniLM frozen": (0.8, 0.028), "MiniLM tuned": (0.45, 0.03)}
MINILM = {
    "play, same": [1, 0.9, 0.8, 0.8, 0.7, 0.7, 0.7],
    "play, other": [1, 0.8, 0.6, 0.5, 0.5, 0.4, 0.45],
}
ELMO = {"play, same": [1, 0.8, 0.7], "play, other": [1, 0.7, 0.6]}
SAME = {"play, same": True, "play, other": False}


def _attention(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(len(TOKENS), len(TOKENS), generator=g), dim=-1)


def _texts(ax, gid: str | None = None) -> list[str]:
    return [t.get_text() for t in ax.texts if gid is None or t.get_gid() == gid]


def _edges(ax) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Each line of the network, as ((x, y) below, (x, y) above)."""
    found = []
    for line in ax.lines:
        if line.get_gid() == "edge":
            (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
            found.append(((x0, y0), (x1, y1)) if y0 <= y1 else ((x1, y1), (x0, y0)))
    return found


def _lines(ax):
    return [line for line in ax.lines if line.get_gid() == "edge"]


def _is(line, colour: str) -> bool:
    return matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(
        matplotlib.colors.to_rgb(colour)
    )


FIGURES = {
    "why_mask": lambda: draw_why_mask(),
    "input_representation": lambda: draw_input_representation(),
    "embedding_sum": lambda: draw_embedding_sum(),
    "read_back": lambda: draw_read_back(READ_BACK),
    "masking": lambda: draw_masking(TOKENS, {2: "[MASK]", 3: "table", 5: "cat"}, per_row=4),
    "pretrain_finetune": lambda: draw_pretrain_finetune(),
    "pretraining_curves": lambda: draw_pretraining_curves(CURVE, BASELINES),
    "polarity": lambda: draw_polarity(POLARITY),
    "layer_similarities": lambda: draw_layer_similarities(MINILM, ELMO, SAME),
    "attention_maps": lambda: draw_attention_maps(TOKENS, [("a", _attention(0))]),
    "head_scores": lambda: draw_head_scores(torch.rand(6, 12), "next token"),
}


def test_the_overlap_check_sees_an_overlap():
    figure = Figure()
    ax = figure.add_subplot()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    assert overlapping_texts(figure) == [("another label", "one label")]


@pytest.mark.parametrize("name", FIGURES)
def test_no_two_labels_overlap(name):
    figure = FIGURES[name]()
    assert overlapping_texts(figure) == []


# ---------------------------------------------------------------- section 2
def test_left_to_right_reads_only_the_past_and_the_unmasked_network_reads_the_word():
    figure = draw_why_mask(("my", "dog", "is", "cute"), position=2)
    gpt, elmo, unmasked, masked = figure.axes
    assert [ax.get_title() for ax in figure.axes] == [
        "left to right (GPT)",
        "ELMo: two one-way LMs, concatenated",
        "both ways at once, unmasked",
        "both ways at once, masked (BERT)",
    ]
    edges = _edges(gpt)
    assert len(edges) == 2 * (1 + 2 + 3 + 4)  # two layers; position i reads i + 1 nodes
    assert all(below[0] <= above[0] for below, above in edges)  # never a word to the right
    assert len(_edges(unmasked)) == len(_edges(masked)) == 2 * 4 * 4
    assert len(_edges(elmo)) == 2 * 2 * (4 + 3)  # 2 LSTMs x 2 layers: up, and along
    # the dark lines are those that reach the prediction at position 2: in GPT, none
    # starts right of it; without a mask, one starts at the word itself
    field = COLOURS["field"]
    gpt_field = [e for e, line in zip(edges, _lines(gpt), strict=True) if _is(line, field)]
    assert gpt_field and max(max(b[0], a[0]) for b, a in gpt_field) == 2
    unmasked_field = [
        e for e, line in zip(_edges(unmasked), _lines(unmasked), strict=True) if _is(line, field)
    ]
    assert ((2.0, 0.0), (2.0, 1.0)) in unmasked_field
    assert _texts(gpt, "prediction") == ["predicts\n“cute”"]
    assert _texts(unmasked, "prediction") == ["predicts\n“is”"]
    assert _texts(elmo, "prediction") == ["→ predicts\n“cute”", "← predicts\n“dog”"]
    assert _texts(masked, "input") == ["my", "dog", "[MASK]", "cute"]
    assert _texts(unmasked, "input") == ["my", "dog", "is", "cute"]


def test_the_leak_runs_from_the_word_through_a_neighbour_to_its_own_prediction():
    figure = draw_why_mask(("a", "b", "c", "d", "e"), position=3)
    unmasked = figure.axes[2]
    (leak,) = [line for line in unmasked.lines if line.get_gid() == "leak"]
    points = list(zip(leak.get_xdata(), leak.get_ydata(), strict=True))
    assert points == [(3, 0), (2, 1), (3, 2), (3, 2.3)]  # word 3, layer 1 at 2, layer 2 at 3
    edges = _edges(unmasked)
    assert (points[0], points[1]) in edges and (points[1], points[2]) in edges  # real edges
    assert not [
        line
        for ax in figure.axes[:2] + [figure.axes[3]]
        for line in ax.lines
        if line.get_gid() == "leak"
    ]
    for bad in (0, 4):
        with pytest.raises(ValueError, match="position: expected a position with a word"):
            draw_why_mask(("a", "b", "c", "d", "e"), position=bad)


# ---------------------------------------------------------------- section 3
def test_the_input_representation_has_a_column_per_token_and_the_right_segments():
    figure = draw_input_representation()
    ax = figure.axes[0]
    assert _texts(ax, "input") == list(PAPER_PAIR)
    assert _texts(ax, "token")[9] == "$E_{\\text{##ing}}$"
    assert _texts(ax, "segment") == ["$E_A$"] * 6 + ["$E_B$"] * 5  # A up to the first [SEP]
    assert _texts(ax, "position") == [f"$E_{{{i}}}$" for i in range(11)]
    inputs = [t.get_position()[0] for t in ax.texts if t.get_gid() == "input"]
    for row in ("token", "segment", "position", "sum"):
        boxes = [p for p in ax.patches if p.get_gid() == row]
        centres = [p.get_x() + p.get_width() / 2 for p in boxes]
        assert centres == pytest.approx(inputs), row
    assert _texts(ax, "sign").count("+") == 2 * 11
    given = draw_input_representation(["[CLS]", "a", "$b", "[SEP]"], segments=[0, 0, 1, 1])
    assert _texts(given.axes[0], "segment") == ["$E_A$", "$E_A$", "$E_B$", "$E_B$"]
    render(given)  # a token with mathtext's special characters still draws
    with pytest.raises(ValueError, match="segments: expected 2 values"):
        draw_input_representation(["a", "b"], segments=[0])


def _grid(ax, gid: str) -> list[float]:
    return [float(t.get_text()) for t in ax.texts if t.get_gid() == gid]


def test_the_one_hot_product_picks_one_row_of_each_table_and_equals_their_sum():
    figure = draw_embedding_sum(
        vocab=5, positions=3, segments=2, hidden=4, token=4, position=0, segment=1
    )
    ax = figure.axes[0]
    one_hot = torch.tensor(_grid(ax, "one-hot"))
    assert one_hot.nonzero().flatten().tolist() == [4, 5 + 0, 5 + 3 + 1]
    matrix = torch.tensor([_grid(ax, f"matrix:{k}") for k in range(10)])
    assert matrix.shape == (10, 4)
    total = torch.tensor(_grid(ax, "sum"))
    assert torch.equal(one_hot @ matrix, total)  # the product is the drawn sum
    rows = [torch.tensor(_grid(ax, f"row:{name}")) for name in ("token", "position", "segment")]
    assert torch.equal(rows[0], matrix[4]) and torch.equal(rows[2], matrix[9])
    assert torch.equal(rows[0] + rows[1] + rows[2], total)
    frames = [p for p in ax.patches if p.get_gid() == "selected"]
    top = 10 / 2
    assert sorted(top - p.get_y() - 1 for p in frames) == [4, 5, 9]  # the selected rows
    with pytest.raises(ValueError, match="token: expected an index below vocab=5, got 5"):
        draw_embedding_sum(vocab=5, token=5)


def test_read_back_bars_start_at_zero_and_mark_chance():
    figure = draw_read_back(READ_BACK)
    ax = figure.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == "accuracy"]
    assert [b.get_x() for b in bars] == [0, 0, 0]
    assert [b.get_width() for b in bars] == pytest.approx([0.99, 0.97, 1.0])
    assert [b.get_y() + b.get_height() / 2 for b in bars] == [2, 1, 0]  # first on top
    (chance,) = [line for line in ax.lines if line.get_gid() == "chance"]
    assert list(chance.get_xdata()) == pytest.approx([0.001, 0.008, 0.5])
    assert list(chance.get_ydata()) == [2, 1, 0]
    assert ax.get_xlim() == (0, 1)
    assert ax.get_xlabel().startswith("linear read-back accuracy from the summed embedding")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(READ_BACK)
    assert _texts(ax, "value") == ["0.990", "0.970", "1.000"]
    with pytest.raises(ValueError, match=r"results\['x'\] accuracy: expected a number in"):
        draw_read_back({"x": (1.2, 0.5)})


# ---------------------------------------------------------------- section 5
def test_masking_colours_each_selected_token_by_its_fate_and_labels_it():
    became = {2: "[MASK]", 3: "table", 5: "cat", 1: "[MASK]"}
    figure = draw_masking(TOKENS, became)
    ax = figure.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    fates = [p.get_gid().removeprefix("input:") for p in boxes]
    assert fates == ["kept", "mask", "mask", "random", "kept", "unchanged", "kept"]
    shown = [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("input:")]
    assert shown == ["[CLS]", "[MASK]", "[MASK]", "table", "the", "cat", "[SEP]"]
    assert _texts(ax, "label") == ["the", "dog", "chased", "cat"]  # the originals
    colour = boxes[3].get_edgecolor()[:3]
    assert colour == pytest.approx(matplotlib.colors.to_rgb(COLOURS["random"]))
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[0].endswith(": 2") and legend[-1] == "not selected (no loss): 3"
    with pytest.raises(ValueError, match="became: expected positions below 7"):
        draw_masking(TOKENS, {7: "[MASK]"})


def test_pretraining_heads_sit_on_their_positions_and_the_tuned_head_on_cls():
    figure = draw_pretrain_finetune(masked={2: "cat", 5: "it"})
    ax = figure.axes[0]
    heads = {
        p.get_gid(): p.get_x() + p.get_width() / 2
        for p in ax.patches
        if (p.get_gid() or "").startswith("head:")
    }
    right = 8 + 2.2  # the fine-tuned stack starts after the 8 pre-training tokens
    assert heads == pytest.approx({"head:0": right, "head:2": 2.0, "head:5": 5.0})
    names = [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("head:")]
    assert names.count("MLM") == 2 and "NSP" in names and "new task head" in names
    assert "IsNext /\nNotNext" in names and "“cat”" in names
    assert [p for p in ax.patches if p.get_gid() == "copy"]
    assert len([p for p in ax.patches if p.get_gid() == "bert"]) == 2
    assert "all weights fine-tuned" in _texts(ax, "note")[0]
    with pytest.raises(ValueError, match="masked: expected positions 1 to 7"):
        draw_pretrain_finetune(masked={8: "x"})


def test_pretraining_curves_draw_every_point_and_each_baseline():
    figure = draw_pretraining_curves(CURVE, BASELINES)
    left, right = figure.axes
    (loss,) = left.lines
    assert list(loss.get_xdata()) == [0, 100, 200] and list(loss.get_ydata()) == [11, 7.5, 6]
    by_gid = {line.get_gid(): line for line in right.lines if line.get_gid() != "baseline"}
    assert list(by_gid["mlm_accuracy"].get_ydata()) == [0.0, 0.08, 0.15]
    assert list(by_gid["nsp_accuracy"].get_ydata()) == [0.5, 0.55, 0.62]
    baselines = [line.get_ydata()[0] for line in right.lines if line.get_gid() == "baseline"]
    assert baselines == pytest.approx(list(BASELINES.values()))
    labels = sorted(_texts(right, "baseline"))
    assert labels == [
        "biLM fill-in: 0.080",
        "most frequent word: 0.060",
        "next-sentence chance: 0.500",
    ]
    assert right.get_ylim() == (0, 1)
    without_nsp = [{k: v for k, v in p.items() if k != "nsp_accuracy"} for p in CURVE]
    gids = [line.get_gid() for line in draw_pretraining_curves(without_nsp).axes[1].lines]
    assert gids == ["mlm_accuracy"]
    with pytest.raises(ValueError, match="curve\\[0\\]: expected the keys step and loss"):
        draw_pretraining_curves([{"loss": 1.0}])


# ---------------------------------------------------------------- section 8
def test_polarity_bars_start_at_chance_with_one_standard_error():
    figure = draw_polarity(POLARITY)
    ax = figure.axes[0]
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_x() for b in bars] == pytest.approx([0.5] * 3)
    assert [b.get_x() + b.get_width() for b in bars] == pytest.approx([0.56, 0.8, 0.45])
    segments = bars.errorbar.lines[2][0].get_segments()
    spans = [x for segment in segments for x in (segment[0][0], segment[1][0])]
    assert spans == pytest.approx([0.525, 0.595, 0.772, 0.828, 0.42, 0.48])
    assert "bars start at chance, 0.50" in ax.get_xlabel()
    with pytest.raises(ValueError, match="standard error: expected a number >= 0"):
        draw_polarity({"x": (0.6, -0.1)})


def test_layer_similarities_share_y_mark_the_sense_and_keep_the_legend_outside():
    groups = {"play, same": "play", "play, other": "play"}
    figure = draw_layer_similarities(MINILM, ELMO, SAME, groups)
    minilm, elmo = figure.axes
    assert minilm.get_shared_y_axes().joined(minilm, elmo)
    same, other = minilm.lines
    assert list(same.get_ydata()) == MINILM["play, same"] and same.get_linestyle() == "-"
    assert list(other.get_ydata()) == MINILM["play, other"] and other.get_linestyle() == "--"
    assert same.get_color() == other.get_color()  # one group, one colour
    assert [list(line.get_ydata()) for line in elmo.lines] == list(ELMO.values())
    assert [t.get_text() for t in minilm.get_xticklabels()] == ["emb.", *"123456"]
    assert [t.get_text() for t in elmo.get_xticklabels()] == ["0", "1", "2"]
    renderer = render(figure)
    legend = figure.legends[0].get_window_extent(renderer)
    for ax in figure.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))
    with pytest.raises(ValueError, match="expected 7 similarities"):
        draw_layer_similarities({"x": [1, 2]}, {}, {"x": True})
    with pytest.raises(ValueError, match="same: expected a True/False flag"):
        draw_layer_similarities(MINILM, ELMO, {"play, same": True})


def test_the_parsed_sentences_are_trees_over_single_wordpieces():
    from lessons.wordpiece import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_minilm()
    relations_used = set()
    assert len(DEPENDENCIES) == 24
    for sentence in DEPENDENCIES:
        words, relations, heads = zip(*(item.split("/") for item in sentence.split()), strict=True)
        heads = [int(h) for h in heads]
        relations_used |= set(relations)
        assert tokenizer.tokenize(" ".join(words)) == list(words), sentence  # word i: token i + 1
        assert relations.count("root") == 1 and heads[relations.index("root")] == 0, sentence
        assert all(0 <= h <= len(words) and h != i for i, h in enumerate(heads, start=1))
        for i in range(1, len(words) + 1):  # every word reaches the root: a tree, no cycle
            seen = set()
            while i != 0:
                assert i not in seen, sentence
                seen.add(i)
                i = heads[i - 1]
        for i, (relation, head) in enumerate(zip(relations, heads, strict=True), start=1):
            if relation in ("det", "case", "amod", "nummod", "nmod:poss"):
                assert head > i, (sentence, words[i - 1])  # English puts these before the head
    assert {"det", "nsubj", "obj", "case", "root"} <= relations_used


def test_attention_maps_label_queries_and_keys_on_one_scale_from_0_to_1():
    maps = [("head a", _attention(0)), ("head b", _attention(1))]
    figure = draw_attention_maps(TOKENS, maps)
    heatmaps = [ax for ax in figure.axes if ax.images]
    assert len(heatmaps) == 2 and len(figure.axes) == 3  # and one colour bar
    for ax, (title, weights) in zip(heatmaps, maps, strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), weights.numpy(), rtol=1e-6)
        assert ax.images[0].get_clim() == (0, 1)
        assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
        assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
        assert ax.get_title() == title
    assert heatmaps[0].get_ylabel() == "query (attending)"
    assert heatmaps[0].get_xlabel() == "key (attended to)"
    figure = Figure()
    ax = figure.add_subplot()
    with pytest.raises(ValueError, match=r"weights: expected shape \(7, 7\)"):
        draw_attention_map(ax, torch.ones(3, 3), TOKENS)


def test_head_scores_put_layer_1_on_top_and_frame_the_best_head():
    scores = torch.zeros(6, 12)
    scores[4, 10] = 0.9
    scores[1, 3] = 0.7
    figure = draw_head_scores(scores, "next token", "share of tokens")
    ax = figure.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), scores.numpy())
    assert ax.images[0].get_clim() == (0, 1)
    assert ax.yaxis_inverted()  # row 0, layer 1, at the top
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in range(1, 7)]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(1, 13)]
    (frame,) = [p for p in ax.patches if p.get_gid() == "best"]
    assert (frame.get_x(), frame.get_y()) == (10 - 0.5, 4 - 0.5)
    assert ax.get_title() == "next token\nframed: the best, layer 5, head 11 (0.90)"
    values = _texts(ax, "value")
    assert len(values) == 72 and values[4 * 12 + 10] == "0.90"
    assert _texts(draw_head_scores(scores, "t", annotate=False).axes[0], "value") == []
    assert figure.axes[1].get_ylabel() == "share of tokens"  # the colour bar
    other = Figure().add_subplot()
    assert mark_best_head(other, scores) == (4, 10)
