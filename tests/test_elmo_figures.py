"""The ELMo chapter's measurements and figures, on a tiny untrained biLM."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
from torch.nn import functional as F

from lessons.core.probe import CrossValidation, cross_validate
from lessons.elmo import BiLM, ScalarMix, character_ids, embed_sentences
from lessons.figures.elmo import (
    PARTS_OF_SPEECH,
    WORD_SENSES,
    direction_similarities,
    draw_architecture,
    draw_layer_similarity,
    draw_mix_weights,
    draw_probe_results,
    labelled_occurrences,
    layer_similarities,
    mix_weights,
    nearest_usages,
    nearest_words,
    occurrence_layers,
)

CORPUS = [
    "the play was a great success".split(),
    "children play in the park".split(),
    "we saw the play last night".split(),
    "a dog ran".split(),
]


@pytest.fixture(scope="module")
def bilm():
    torch.manual_seed(0)
    return BiLM(20, token_dim=8, lstm_dim=12, max_chars=10, filters=((1, 4), (2, 4), (3, 8)))


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_layer_zero_ignores_context_and_the_lstm_layers_do_not(bilm):
    a, b = CORPUS[0], CORPUS[1]
    similarities = layer_similarities(bilm, a, b, "play")
    assert similarities[0] == pytest.approx(1.0, abs=1e-5)
    assert similarities[1] < 0.999 and similarities[2] < 0.999
    assert layer_similarities(bilm, a, list(a), "play") == pytest.approx([1.0] * 3, abs=1e-5)
    # by hand from the biLM's layers: "play" is word 1 of CORPUS[0] and word 3 of CORPUS[2],
    # positions 2 and 4 after <S>
    with torch.no_grad():
        layers = bilm(*character_ids([CORPUS[0], CORPUS[2]], max_chars=10))
    by_hand = [F.cosine_similarity(layer[0, 2], layer[1, 4], dim=0).item() for layer in layers]
    assert layer_similarities(bilm, CORPUS[0], CORPUS[2], "play") == pytest.approx(
        by_hand, abs=1e-5
    )
    with pytest.raises(ValueError, match="sentence_b: the word 'play' does not occur"):
        layer_similarities(bilm, a, CORPUS[3], "play")


def test_nearest_usages_are_sorted_skip_the_query_and_agree_with_layer_similarities(bilm):
    usages = nearest_usages(bilm, CORPUS[0], "play", CORPUS, layer=2, topn=5)
    assert [u.sentence for u in usages if u.sentence == CORPUS[0]] == []
    assert len(usages) == 2
    assert usages[0].similarity >= usages[1].similarity
    for usage in usages:
        assert usage.sentence[usage.position] == "play"
        expected = layer_similarities(bilm, CORPUS[0], usage.sentence, "play")[2]
        assert usage.similarity == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="corpus: no other sentence contains 'play'"):
        nearest_usages(bilm, CORPUS[0], "play", CORPUS[:1])
    with pytest.raises(ValueError, match="layer: expected 0, 1 or 2, got 3"):
        nearest_usages(bilm, CORPUS[0], "play", CORPUS, layer=3)


def test_nearest_words_ranks_by_centred_cosine_and_skips_the_word_itself(bilm):
    candidates = ["play", "plays", "dog", "park", "night"]
    result = nearest_words(bilm, ["play", "plya"], candidates, topn=3)
    assert len(result["play"]) == 3 and "play" not in dict(result["play"])
    similarities = [s for _, s in result["plya"]]
    assert similarities == sorted(similarities, reverse=True) and len(similarities) == 3
    assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in similarities)
    # by hand: layer 0 of each word alone (the char-CNN's vector, twice), centred on the
    # candidates' mean, then the cosine
    with torch.no_grad():
        layer0 = bilm(*character_ids([[w] for w in candidates + ["plya"]], max_chars=10))[0]
    vectors = dict(zip(candidates + ["plya"], layer0[:, 1], strict=True))
    mean = torch.stack([vectors[w] for w in candidates]).mean(0)
    query = vectors["plya"] - mean
    cosines = {w: F.cosine_similarity(query, vectors[w] - mean, dim=0).item() for w in candidates}
    expected = sorted(cosines.items(), key=lambda item: -item[1])[:3]
    assert [w for w, _ in result["plya"]] == [w for w, _ in expected]
    assert similarities == pytest.approx([c for _, c in expected], abs=1e-5)


def test_draw_functions_draw_and_explain_missing_words(bilm, ax):
    draw_layer_similarity(ax, bilm, "the play ended", "children play outside", "play")
    assert [round(p.get_height(), 4) for p in ax.patches][:2] == [1.0, 1.0]  # word2vec, layer 0
    layers = layer_similarities(
        bilm, ["the", "play", "ended"], ["children", "play", "outside"], "play"
    )
    assert [p.get_height() for p in ax.patches] == pytest.approx([1.0, *layers])
    ax.clear()
    draw_layer_similarity(ax, bilm, "the play ended", "a dog ran", "play")
    assert "not a word of the second sentence" in ax.texts[0].get_text()


def test_probe_bars_start_at_the_baseline_and_the_axis_shows_every_result(ax):
    results = {
        "word2vec": CrossValidation([0.6, 0.7], 2, 1, 200),
        "ELMo": CrossValidation([0.4, 0.4], 2, 1, 200),
    }
    draw_probe_results(ax, results, baseline=0.5)
    bars = sorted((round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in ax.patches)
    assert bars == [(0.5, 0.4), (0.5, 0.65)]  # each bar runs from chance to its accuracy
    low, high = ax.get_xlim()
    error = (0.4 * 0.6 / 200) ** 0.5  # the binomial standard error of 0.4 on 200 examples
    assert low == pytest.approx(0.4 - error - 0.05) and high > 0.65
    assert "bars start at chance, 0.50" in ax.get_xlabel()
    assert [t.get_text() for t in ax.texts] == ["0.65", "0.40"]


def test_the_architecture_shows_both_directions_the_softmax_and_the_scalar_mix(ax):
    draw_architecture(ax, words=("<S>", "a", "b", "</S>"), word="a")
    texts = [t.get_text() for t in ax.texts]
    assert sum("char-CNN\n+ highway" in t for t in texts) == 4
    assert sum(t.startswith("→ LSTM") for t in texts) == 2 * 4 + 2  # 2 per token, 2 in the mix
    # the forward LM predicts the next token, the backward LM the previous one
    assert "softmax\n→ a" in texts and "softmax\n→ </S>" in texts
    assert "softmax\n→ <S>" in texts and "softmax\n→ b" in texts
    assert "ELMo vector\nof 'a'" in texts and "Σ" in texts
    with pytest.raises(ValueError, match="word: expected one of"):
        draw_architecture(ax, words=("<S>", "a", "</S>"), word="play")


def test_direction_halves_see_one_side_each(bilm):
    before = "we saw the play last night".split()
    after_changed = "we saw the play on sunday".split()
    before_changed = "they liked the play last night".split()
    one = direction_similarities(bilm, before, after_changed, "play")
    assert one["forward"] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert max(one["backward"]) < 0.9999
    other = direction_similarities(bilm, before, before_changed, "play")
    assert other["backward"] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert max(other["forward"]) < 0.9999
    # by hand: the forward half is the first token_dim numbers of layers 1 and 2
    a, b = embed_sentences(bilm, [before, before_changed])
    by_hand = [F.cosine_similarity(a[k, 3, :8], b[k, 3, :8], dim=0).item() for k in (1, 2)]
    assert other["forward"] == pytest.approx(by_hand, abs=1e-6)


def test_labelled_occurrences_share_classes_across_words():
    table = {
        "plant": {"living": ((0, 1), (2, 3)), "industrial": ((4, 5),)},
        "plants": {"industrial": ((6, 7),)},
    }
    task = labelled_occurrences(table)
    assert task.classes == ["industrial", "living"]
    assert task.occurrences == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert task.words == ["plant", "plant", "plant", "plants"]
    assert task.labels.tolist() == [1, 1, 0, 0]


def test_occurrence_layers_pick_the_word_from_its_whole_sentence(bilm):
    layers = occurrence_layers(bilm, CORPUS, [(2, 3), (0, 1), (2, 3)])
    assert layers.shape == (3, 3, 16)
    whole = embed_sentences(bilm, [CORPUS[0], CORPUS[2]])
    assert torch.equal(layers[1], whole[0][:, 1]) and torch.equal(layers[0], whole[1][:, 3])
    assert torch.equal(layers[0], layers[2])


@pytest.mark.parametrize("table", [WORD_SENSES, PARTS_OF_SPEECH], ids=["senses", "pos"])
def test_the_hand_labels_point_at_their_word_and_are_balanced_per_word(table):
    from lessons.core import data

    train = data.wikipedia("train")
    task = labelled_occurrences(table)
    assert len(set(task.occurrences)) == len(task.occurrences)  # no occurrence twice
    for (sentence, position), word in zip(task.occurrences, task.words, strict=True):
        assert train[sentence][position] == word, (sentence, position, word)
    for word, labels in table.items():
        assert len(labels) == 2, word
        assert len({len(places) for places in labels.values()}) == 1, word  # as many of each
    assert len(task.classes) == (6 if table is WORD_SENSES else 2)


def test_mix_weights_are_each_probes_softmax_and_are_drawn(ax):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 2
    layered = torch.randn(60, 3, 4, generator=g, dtype=torch.float64)
    layered[:, 2, 0] += 3.0 * (2 * labels - 1)  # only layer 2 carries the label
    result = cross_validate(layered, labels, folds=3, repeats=2, make_mix=ScalarMix)
    s, gamma = mix_weights(result)
    assert s.shape == (6, 3) and gamma.shape == (6,)
    assert s.sum(dim=1) == pytest.approx(torch.ones(6), abs=1e-6)
    first = torch.softmax(result.probes[0].mix.weights.detach(), dim=0).float()
    assert torch.allclose(s[0], first)
    assert (s[:, 2] > s[:, 0]).all() and (s[:, 2] > s[:, 1]).all()
    draw_mix_weights(ax, {"task": result})
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx(s.mean(dim=0).tolist(), abs=1e-6)
    assert ax.get_ylim() == (0.0, 1.35)
    without_mix = cross_validate(layered[:, 2], labels, folds=3, repeats=1)
    with pytest.raises(ValueError, match="result: expected a cross-validation with make_mix"):
        mix_weights(without_mix)
