"""The ELMo chapter's measurements and figures, on a tiny untrained biLM."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
from torch.nn import functional as F

from lessons.core.probe import CrossValidation
from lessons.elmo import BiLM, character_ids
from lessons.figures.elmo import (
    draw_architecture,
    draw_layer_similarity,
    draw_probe_results,
    layer_similarities,
    nearest_usages,
    nearest_words,
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
    ax.clear()
    results = {
        "word2vec": CrossValidation([0.6, 0.7], 2, 1, 200),
        "ELMo": CrossValidation([0.8, 0.8], 2, 1, 200),
    }
    draw_probe_results(ax, results)
    assert sorted(round(p.get_width(), 3) for p in ax.patches) == [0.65, 0.8]
    ax.clear()
    draw_architecture(ax)
    assert any("char-CNN" in t.get_text() for t in ax.texts)
