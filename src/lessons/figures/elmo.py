"""The figures and measurements of the ELMo chapter.

Used in: ``notebooks/02_elmo.ipynb``, sections 3 (the architecture), 5 (evidence that it
works, what each layer holds) and 6 (the weak fusion of the two directions, the distance
a word's influence travels).

Measurements return numbers (so tests can check them); ``draw_*`` functions take a
matplotlib ``ax`` first, so they can be drawn once or explored with
`lessons.core.explorer.interactive_figure`. Functions meant for an explorer draw a message
instead of raising when a word is missing, so a learner never sees a traceback there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from lessons.core.plot import PALETTE
from lessons.core.probe import CrossValidation
from lessons.elmo import BiLM, character_ids, embed_sentences

__all__ = [
    "PARTS_OF_SPEECH",
    "WORD_SENSES",
    "LabelledOccurrences",
    "MixWeights",
    "Usage",
    "direction_similarities",
    "draw_architecture",
    "draw_layer_similarity",
    "draw_mix_weights",
    "draw_probe_results",
    "first_word_influence",
    "labelled_occurrences",
    "layer_similarities",
    "mix_weights",
    "nearest_usages",
    "nearest_words",
    "occurrence_layers",
]


def _message(ax: Axes, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)


def _position(sentence: Sequence[str], word: str, name: str) -> int:
    if word not in sentence:
        raise ValueError(f"{name}: the word {word!r} does not occur in {' '.join(sentence)!r}")
    return list(sentence).index(word)


def layer_similarities(
    bilm: BiLM, sentence_a: Sequence[str], sentence_b: Sequence[str], word: str
) -> list[float]:
    """Cosine similarity of ``word``'s ELMo vectors in two sentences, for layers 0, 1, 2.

    The first occurrence of ``word`` in each sentence is used. Layer 0 sees only the
    word's characters, so its similarity is always 1 (up to rounding).
    """
    a, b = embed_sentences(bilm, [sentence_a, sentence_b])
    i = _position(sentence_a, word, "sentence_a")
    j = _position(sentence_b, word, "sentence_b")
    return [float(torch.cosine_similarity(a[k, i], b[k, j], dim=0)) for k in range(3)]


def draw_layer_similarity(
    ax: Axes, bilm: BiLM, sentence_a: str, sentence_b: str, word: str
) -> None:
    """Bars: the similarity of ``word`` in two sentences, per ELMo layer, next to
    word2vec's (always 1: one vector per word). Sentences are strings split on spaces."""
    tokens_a, tokens_b = sentence_a.lower().split(), sentence_b.lower().split()
    word = word.strip().lower()
    for tokens, name in ((tokens_a, "first"), (tokens_b, "second")):
        if word not in tokens:
            _message(ax, f"'{word}' is not a word of the {name} sentence")
            return
    similarities = layer_similarities(bilm, tokens_a, tokens_b, word)
    labels = ["word2vec", "ELMo layer 0", "ELMo layer 1", "ELMo layer 2"]
    values = [1.0, *similarities]
    colors = [PALETTE[7], PALETTE[0], PALETTE[1], PALETTE[3]]
    bars = ax.bar(labels, values, color=colors)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.02, f"{value:.2f}", ha="center")
    ax.set_ylim(min(0.0, *values) - 0.05, 1.15)
    ax.set_ylabel(f"cosine similarity of '{word}'")
    ax.set_title("the same word in two sentences")


class Usage(NamedTuple):
    """One occurrence of a word in a corpus sentence, and how similar it is to the query."""

    similarity: float
    sentence: list[str]
    position: int


def nearest_usages(
    bilm: BiLM,
    query: Sequence[str],
    word: str,
    corpus: Sequence[Sequence[str]],
    layer: int = 2,
    topn: int = 5,
) -> list[Usage]:
    """The corpus occurrences of ``word`` whose ELMo vector (``layer``) is closest to its
    vector in ``query``, most similar first, as in Peters et al.'s table for "play".

    Only sentences that contain ``word`` are embedded; a sentence identical to ``query``
    is skipped (it would trivially come first).
    """
    if layer not in (0, 1, 2):
        raise ValueError(f"layer: expected 0, 1 or 2, got {layer!r}")
    position = _position(query, word, "query")
    candidates = [list(s) for s in corpus if word in s and list(s) != list(query)]
    if not candidates:
        raise ValueError(f"corpus: no other sentence contains {word!r}")
    vectors = embed_sentences(bilm, [query, *candidates])
    target = vectors[0][layer, position]
    usages = []
    for sentence, layers in zip(candidates, vectors[1:], strict=True):
        for i, token in enumerate(sentence):
            if token == word:
                similarity = float(torch.cosine_similarity(target, layers[layer, i], dim=0))
                usages.append(Usage(similarity, sentence, i))
    usages.sort(key=lambda usage: -usage.similarity)
    return usages[:topn]


@torch.no_grad()
def nearest_words(
    bilm: BiLM, words: Sequence[str], candidates: Sequence[str], topn: int = 5
) -> dict[str, list[tuple[str, float]]]:
    """For each of ``words``, the ``topn`` ``candidates`` closest by layer 0 (the
    character encoder alone: no context), with their cosine similarities.

    ``words`` need not be in any vocabulary: misspellings and invented words get a
    vector from their characters like every other word. A candidate equal to the word
    itself is skipped. The candidates' mean vector is subtracted from every vector first:
    the character encoder's vectors all share a large common component, which would make
    every cosine close to 1.
    """
    bilm.eval()

    def encode(tokens: Sequence[str]) -> torch.Tensor:
        ids, _ = character_ids([[token] for token in tokens], bilm.max_chars)
        device = bilm.softmax.weight.device
        return bilm.token_encoder(ids[:, 1:2].to(device))[:, 0].cpu()  # skip <S>, </S>

    chunks = [encode(candidates[i : i + 4096]) for i in range(0, len(candidates), 4096)]
    table = torch.cat(chunks)
    mean = table.mean(dim=0)  # every vector shares a common direction: remove it first
    table = torch.nn.functional.normalize(table - mean, dim=1)
    queries = torch.nn.functional.normalize(encode(words) - mean, dim=1)
    result = {}
    for word, similarities in zip(words, queries @ table.T, strict=True):
        ranked = [
            (candidates[i], float(similarities[i]))
            for i in similarities.argsort(descending=True).tolist()
            if candidates[i] != word
        ]
        result[word] = ranked[:topn]
    return result


def draw_probe_results(
    ax: Axes,
    results: Mapping[str, CrossValidation],
    baseline: float = 0.5,
    baseline_label: str = "chance",
) -> None:
    """Horizontal bars from ``baseline`` to each feature set's mean held-out accuracy, with
    error bars of one binomial standard error; the baseline (chance: the share of the
    commonest class) is drawn and named, so a bar to its left is a result below chance.

    The accuracy axis spans the results and the baseline with a margin, and its label says
    where the bars start.
    """
    names = list(results)
    means = np.array([results[name].mean for name in names])
    errors = np.array([results[name].standard_error for name in names])
    positions = np.arange(len(names))[::-1]
    ax.barh(positions, means - baseline, left=baseline, xerr=errors, color=PALETTE[0], capsize=4)
    low = min(baseline, float((means - errors).min())) - 0.05
    high = max(baseline, float((means + errors).max())) + 0.08
    for y, mean, error in zip(positions, means, errors, strict=True):
        ax.text(max(mean + error, baseline) + 0.01, y, f"{mean:.2f}", va="center")
    ax.axvline(baseline, color=PALETTE[7], linestyle="--", linewidth=1)
    ax.set_yticks(positions, labels=names)
    ax.set_xlim(low, high)
    ax.set_xlabel(
        f"held-out accuracy (± 1 standard error); bars start at {baseline_label}, {baseline:.2f}"
    )
    ax.grid(axis="y", visible=False)
    ax.set_axisbelow(True)


# --------------------------------------------------------------------------------------
# What each layer holds: word senses against parts of speech
# --------------------------------------------------------------------------------------

#: Occurrences in ``data.wikipedia("train")`` of three ambiguous nouns (and "plants"),
#: labelled by sense by hand: word -> sense -> ``(sentence index, word position)`` pairs.
#: Each word has as many occurrences of one sense as of the other: every occurrence of
#: the rarer sense, and the first ones of the commoner sense in corpus order ("state":
#: spread over the corpus instead, since its first hundred political uses all come from
#: one article). Occurrences that fit neither sense (statistical power, the power of a
#: lens, a "state of the art") are left out.
# fmt: off
WORD_SENSES: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "power": {
        "authority": (
            (30, 24), (39, 23), (48, 17), (69, 15), (154, 18), (281, 15), (874, 1),
            (1025, 11), (1309, 7), (1309, 14), (1319, 4), (1365, 5), (1973, 18), (1984, 5),
            (2013, 15), (2161, 6), (2166, 22), (2169, 8), (3749, 6), (3769, 5), (3771, 2),
        ),
        "energy": (
            (6039, 5), (7248, 8), (7250, 13), (7251, 4), (9556, 38), (10431, 20),
            (11755, 9), (11755, 19), (15695, 7), (15699, 33), (15701, 16), (15702, 10),
            (15703, 11), (15703, 17), (15703, 26), (17866, 15), (17870, 7), (17872, 3),
            (17872, 13), (17873, 5), (18102, 23),
        ),
    },
    "plant": {
        "living": (
            (1114, 10), (1250, 9), (2599, 6), (2599, 13), (2599, 25), (2604, 15), (4538, 22),
            (4744, 7), (5438, 6), (5543, 3), (6564, 14), (6862, 7), (7552, 2), (7674, 6),
            (7708, 12), (7709, 3), (7710, 16),
        ),
        "industrial": (
            (1270, 12), (1271, 6), (1273, 4), (1276, 10), (1277, 9), (1279, 8), (1282, 2),
            (1301, 16), (9498, 3), (10431, 21), (11518, 40), (12604, 13), (14204, 5),
            (15699, 34), (15701, 17), (15703, 18), (15703, 23),
        ),
    },
    "plants": {
        "living": ((892, 11), (893, 21), (2462, 40), (2604, 22)),
        "industrial": ((7811, 12), (14232, 23), (15702, 11), (15703, 12)),
    },
    "state": {
        "polity": (
            (118, 0), (208, 12), (239, 35), (876, 5), (934, 21), (1351, 4), (1772, 15),
            (1835, 23), (2334, 5), (3778, 2), (4124, 5), (5333, 40), (7005, 6), (7182, 27),
            (10862, 7), (12455, 32), (12821, 15), (13342, 15), (15549, 23), (16117, 30),
        ),
        "condition": (
            (2714, 11), (2731, 8), (2735, 8), (3287, 13), (3937, 11), (4827, 21), (5931, 5),
            (6498, 3), (6791, 20), (8575, 33), (10331, 17), (10468, 26), (10575, 14),
            (10610, 38), (11756, 35), (11996, 19), (14736, 13), (14788, 31), (17887, 4),
            (18195, 13),
        ),
    },
}

#: Occurrences in ``data.wikipedia("train")`` of seven words that are both nouns and
#: verbs, labelled by hand: word -> part of speech -> ``(sentence index, word position)``
#: pairs, the first ten of each in corpus order that could be labelled with certainty
#: (a noun used as a modifier, as in "control characters", is left out).
PARTS_OF_SPEECH: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "use": {
        "noun": (
            (11, 3), (15, 35), (38, 7), (39, 14), (47, 22), (196, 28), (313, 9), (528, 12),
            (652, 34), (825, 10),
        ),
        "verb": (
            (13, 31), (16, 5), (30, 14), (42, 15), (46, 78), (110, 42), (409, 25), (495, 4),
            (543, 11), (856, 4),
        ),
    },
    "work": {
        "noun": (
            (27, 14), (34, 31), (35, 27), (44, 20), (46, 63), (218, 22), (258, 2), (295, 3),
            (341, 11), (687, 13),
        ),
        "verb": (
            (673, 31), (1007, 19), (1022, 14), (2025, 17), (2720, 6), (2722, 15), (3314, 23),
            (3522, 5), (3528, 6), (4072, 4),
        ),
    },
    "study": {
        "noun": (
            (303, 16), (465, 9), (500, 18), (611, 2), (616, 7), (617, 32), (617, 50),
            (636, 13), (711, 1), (712, 19),
        ),
        "verb": (
            (2881, 35), (2882, 8), (2893, 21), (3272, 13), (4415, 28), (4417, 6), (4508, 8),
            (5744, 18), (7324, 5), (8315, 5),
        ),
    },
    "support": {
        "noun": (
            (83, 12), (337, 5), (561, 24), (608, 5), (633, 6), (1409, 7), (1773, 5),
            (1915, 22), (1962, 14), (1991, 31),
        ),
        "verb": (
            (171, 22), (301, 26), (440, 18), (897, 13), (1973, 15), (2037, 12), (2048, 4),
            (2095, 22), (2329, 8), (2531, 31),
        ),
    },
    "change": {
        "noun": (
            (55, 7), (263, 12), (283, 13), (342, 22), (740, 6), (741, 9), (760, 14),
            (784, 14), (1751, 45), (2198, 25),
        ),
        "verb": (
            (448, 16), (781, 22), (786, 8), (1012, 3), (1325, 10), (2538, 13), (4342, 22),
            (5155, 14), (6656, 16), (6708, 6),
        ),
    },
    "control": {
        "noun": (
            (129, 12), (156, 19), (159, 8), (208, 15), (243, 15), (749, 17), (918, 3),
            (975, 10), (1029, 24), (1328, 8),
        ),
        "verb": (
            (2119, 22), (4975, 24), (5159, 18), (6302, 27), (7730, 16), (8992, 15),
            (10113, 3), (10776, 11), (12281, 18), (12535, 9),
        ),
    },
    "play": {
        "noun": (
            (425, 8), (1577, 7), (1745, 17), (1748, 10), (2341, 12), (2342, 19), (3154, 24),
            (3442, 3), (3493, 11), (3495, 5),
        ),
        "verb": (
            (480, 6), (2937, 11), (2937, 28), (3034, 43), (3035, 28), (3157, 6), (4790, 14),
            (5492, 4), (5517, 12), (6221, 6),
        ),
    },
}
# fmt: on


class LabelledOccurrences(NamedTuple):
    """A table such as `WORD_SENSES` flattened: one entry per occurrence.

    ``occurrences``: ``(sentence index, word position)`` pairs; ``words``: the word at
    each; ``labels``: a LongTensor of class ids; ``classes``: the class names, sorted.
    Classes are the label names, shared by the words that use the same name ("noun" for
    every word; "living" for both "plant" and "plants").
    """

    occurrences: list[tuple[int, int]]
    words: list[str]
    labels: torch.Tensor
    classes: list[str]


def labelled_occurrences(
    table: Mapping[str, Mapping[str, Sequence[tuple[int, int]]]],
) -> LabelledOccurrences:
    """`LabelledOccurrences` of ``table`` (word -> label -> occurrences), in table order."""
    classes = sorted({label for senses in table.values() for label in senses})
    occurrences, words, labels = [], [], []
    for word, senses in table.items():
        for label, places in senses.items():
            for sentence, position in places:
                occurrences.append((sentence, position))
                words.append(word)
                labels.append(classes.index(label))
    return LabelledOccurrences(occurrences, words, torch.tensor(labels), classes)


def occurrence_layers(
    bilm: BiLM, corpus: Sequence[Sequence[str]], occurrences: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """ELMo's three layers at each ``(sentence index, word position)`` of ``corpus``:
    ``(occurrences, 3, 2 * token_dim)``. Each sentence is read whole, once."""
    ids = sorted({sentence for sentence, _ in occurrences})
    layers = dict(zip(ids, embed_sentences(bilm, [corpus[i] for i in ids]), strict=True))
    return torch.stack([layers[sentence][:, position] for sentence, position in occurrences])


class MixWeights(NamedTuple):
    """The scalar mixes learned by the probes of a `CrossValidation`, one row per fold of
    every repeat: ``s`` ``(fits, layers)`` (each row a softmax, summing to 1) and ``gamma``
    ``(fits,)``."""

    s: torch.Tensor
    gamma: torch.Tensor


def mix_weights(result: CrossValidation) -> MixWeights:
    """The layer weights ``s_j = softmax(w)_j`` and the scale ``gamma`` of every probe of
    ``result`` (a `cross_validate` with ``make_mix=lessons.elmo.ScalarMix``)."""
    mixes = [probe.mix for probe in result.probes]
    if not mixes or any(mix is None for mix in mixes):
        raise ValueError(
            "result: expected a cross-validation with make_mix=ScalarMix (probes that mix "
            "layers), got probes without a mix"
        )
    with torch.no_grad():
        s = torch.stack([torch.softmax(mix.weights, dim=0) for mix in mixes])
        gamma = torch.stack([mix.gamma for mix in mixes])
    return MixWeights(s.float(), gamma.float())


def draw_mix_weights(ax: Axes, results: Mapping[str, CrossValidation]) -> None:
    """Grouped bars: each task's learned layer weights ``s_0, s_1, s_2`` (mean over the
    probes of its cross-validation, error bars one standard deviation across them), with
    the starting value 1/3 (equal weights) marked."""
    names = list(results)
    weights = [mix_weights(results[name]).s for name in names]
    layers = weights[0].shape[1]
    width = 0.8 / layers
    positions = np.arange(len(names))
    for k in range(layers):
        ax.bar(
            positions + (k - (layers - 1) / 2) * width,
            [float(w[:, k].mean()) for w in weights],
            width,
            yerr=[float(w[:, k].std()) for w in weights],
            capsize=3,
            color=(PALETTE[5], PALETTE[1], PALETTE[3])[k % 3],
            label=f"$s_{k}$ (layer {k})",
        )
    ax.axhline(
        1 / layers, color=PALETTE[7], linestyle="--", linewidth=1, label="equal weights (the start)"
    )
    ax.set_xticks(positions, labels=names)
    ax.set_ylim(0, 1.35)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("learned weight $s_j$ (bars start at 0)")
    ax.legend(loc="upper left", ncols=2)


def direction_similarities(
    bilm: BiLM, sentence_a: Sequence[str], sentence_b: Sequence[str], word: str
) -> dict[str, list[float]]:
    """The cosine similarity of ``word``'s vectors in two sentences, each direction apart:
    ``{"forward": [layer 1, layer 2], "backward": [layer 1, layer 2]}``.

    Layers 1 and 2 are ``[forward, backward]`` (`lessons.elmo.BiLM.forward`); the forward
    half at a word has read only the words up to it, the backward half only the words from
    it to the end. The first occurrence of ``word`` in each sentence is used.
    """
    a, b = embed_sentences(bilm, [sentence_a, sentence_b])
    i = _position(sentence_a, word, "sentence_a")
    j = _position(sentence_b, word, "sentence_b")
    half = a.shape[-1] // 2
    halves = {"forward": slice(0, half), "backward": slice(half, None)}
    return {
        name: [float(torch.cosine_similarity(a[k, i, part], b[k, j, part], dim=0)) for k in (1, 2)]
        for name, part in halves.items()
    }


def first_word_influence(bilm: BiLM, sentence: Sequence[str]) -> list[float]:
    """How much the forward LM's top layer at each word still depends on the first word.

    Entry ``t`` (0 for the first word itself) is the norm of the gradient of
    ``||h_2(t)||``, the forward LM's layer-2 state at word ``t``, with respect to the first
    word's character vector (layer 0). The forward LM runs left to right, so the first
    word reaches word ``t`` only through ``t`` updates of the LSTM states.
    """
    bilm.eval()
    ids, mask = character_ids([sentence], bilm.max_chars)
    device = bilm.softmax.weight.device
    x = bilm.token_encoder(ids.to(device)).detach().requires_grad_(True)
    _, forward_layers, _, _ = bilm._run_from_tokens(x, mask.to(device))
    top = forward_layers[-1][0]  # (tokens + 2, token_dim)
    influence = []
    for t in range(1, len(sentence) + 1):  # position 0 is <S>; the words are 1..n
        (gradient,) = torch.autograd.grad(top[t].norm(), x, retain_graph=True)
        influence.append(float(gradient[0, 1].norm()))
    return influence


def _box(
    ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str, fontsize: float = 9
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.005",
            facecolor=color,
            edgecolor="black",
            alpha=0.85,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=10, color="0.3", shrinkA=0, shrinkB=0
        )
    )


def draw_architecture(
    ax: Axes,
    words: Sequence[str] = ("<S>", "the", "play", "ended", "</S>"),
    word: str = "play",
) -> None:
    """ELMo's biLM and its scalar mix, as boxes and arrows.

    Left, the biLM on ``words``: in the middle row the shared char-CNN (layer 0) reads each
    token; the forward LM's two LSTM layers grow upward from it and pass their states to
    the right, the backward LM's grow downward and pass them to the left; the softmax
    (one, shared) above predicts the next token from the forward LM's top layer, the one
    below the previous token from the backward LM's. Right, ELMo for ``word`` (its column
    is shaded): the three layers at that word, each forward and backward side by side, are
    weighted by ``s_j``, summed and scaled by ``gamma``.
    """
    if word not in words:
        raise ValueError(f"word: expected one of {list(words)}, got {word!r}")
    ax.set_axis_off()
    colors = {"cnn": PALETTE[5], "f": PALETTE[1], "b": PALETTE[2], "softmax": PALETTE[4]}
    columns = np.linspace(0.1, 0.74, len(words))
    spacing = columns[1] - columns[0]
    width, height = 0.68 * spacing, 0.075
    rows = {"soft_f": 0.91, "f2": 0.76, "f1": 0.625, "cnn": 0.475, "b1": 0.325, "b2": 0.19}
    rows["soft_b"] = 0.045
    focus = columns[list(words).index(word)]
    ax.add_patch(
        Rectangle(
            (focus - spacing / 2 + 0.004, 0.115),
            spacing - 0.008,
            0.725,
            facecolor="0.93",
            edgecolor="none",
            zorder=0,
        )
    )
    half = height / 2
    for i, (x, token) in enumerate(zip(columns, words, strict=True)):
        _box(ax, x, rows["cnn"], width, 0.11, f"{token}\nchar-CNN\n+ highway", colors["cnn"])
        for layer in (1, 2):
            _box(ax, x, rows[f"f{layer}"], width, height, f"→ LSTM {layer}", colors["f"])
            _box(ax, x, rows[f"b{layer}"], width, height, f"← LSTM {layer}", colors["b"])
        _arrow(ax, (x, rows["cnn"] + 0.055), (x, rows["f1"] - half))
        _arrow(ax, (x, rows["f1"] + half), (x, rows["f2"] - half))
        _arrow(ax, (x, rows["cnn"] - 0.055), (x, rows["b1"] + half))
        _arrow(ax, (x, rows["b1"] - half), (x, rows["b2"] + half))
        if i < len(words) - 1:  # the forward LM predicts the next token
            text = f"softmax\n→ {words[i + 1]}"
            _box(ax, x, rows["soft_f"], width, height, text, colors["softmax"], fontsize=8)
            _arrow(ax, (x, rows["f2"] + half), (x, rows["soft_f"] - half))
        if i > 0:  # the backward LM predicts the previous token
            text = f"softmax\n→ {words[i - 1]}"
            _box(ax, x, rows["soft_b"], width, height, text, colors["softmax"], fontsize=8)
            _arrow(ax, (x, rows["b2"] - half), (x, rows["soft_b"] + half))
    gap = 0.15 * (spacing - width) / 2
    for a, b in zip(columns[:-1], columns[1:], strict=True):
        for layer in (1, 2):
            y_forward, y_backward = rows[f"f{layer}"], rows[f"b{layer}"]
            _arrow(ax, (a + width / 2 + gap, y_forward), (b - width / 2 - gap, y_forward))
            _arrow(ax, (b - width / 2 - gap, y_backward), (a + width / 2 + gap, y_backward))
    side = {
        "soft_f": "predicts the\nnext token",
        "f2": "forward LM\nlayer 2",
        "f1": "forward LM\nlayer 1",
        "cnn": "layer 0\n(characters)",
        "b1": "backward LM\nlayer 1",
        "b2": "backward LM\nlayer 2",
        "soft_b": "predicts the\nprevious token",
    }
    for row, text in side.items():
        ax.text(-0.01, rows[row], text, ha="right", va="center", fontsize=9, color="0.25")
    ax.text(
        (columns[0] + columns[-1]) / 2,
        0.99,
        "the two directions share only the char-CNN and the softmax",
        ha="center",
        va="center",
        fontsize=9,
    )
    _draw_scalar_mix(ax, word, colors)
    ax.set_xlim(-0.13, 1.42)
    ax.set_ylim(0.0, 1.0)


def _draw_scalar_mix(ax: Axes, word: str, colors: Mapping[str, str]) -> None:
    """The right part of `draw_architecture`: ``gamma * sum_j s_j h_j`` for ``word``."""
    x, bar, total_x, total_y = 0.98, 0.24, 1.21, 0.53
    halves = {
        2: ("→ LSTM 2", "← LSTM 2", colors["f"], colors["b"]),
        1: ("→ LSTM 1", "← LSTM 1", colors["f"], colors["b"]),
        0: ("char-CNN", "char-CNN", colors["cnn"], colors["cnn"]),
    }
    ax.text(x, 0.8, f"ELMo for '{word}':\nits three layers", ha="center", va="center")
    for layer, y in ((2, 0.69), (1, 0.53), (0, 0.37)):
        left, right, left_color, right_color = halves[layer]
        for start, text, color in ((x - bar / 2, left, left_color), (x, right, right_color)):
            ax.add_patch(
                Rectangle(
                    (start, y - 0.035),
                    bar / 2,
                    0.07,
                    facecolor=color,
                    edgecolor="black",
                    alpha=0.85,
                )
            )
            ax.text(start + bar / 4, y, text, ha="center", va="center", fontsize=8.5)
        ax.text(x - bar / 2 - 0.01, y, f"$\\mathbf{{h}}_{layer}$", ha="right", va="center")
        _arrow(ax, (x + bar / 2, y), (total_x - 0.03, total_y + (y - total_y) * 0.25))
        ax.text(1.15, total_y + (y - total_y) * 0.62 + 0.02, f"$s_{layer}$", ha="center")
    ax.add_patch(Circle((total_x, total_y), 0.03, facecolor="white", edgecolor="black"))
    ax.text(total_x, total_y, "Σ", ha="center", va="center", fontsize=12)
    _arrow(ax, (total_x + 0.03, total_y), (total_x + 0.07, total_y))
    ax.text(total_x + 0.08, total_y, "× γ", ha="left", va="center")
    _arrow(ax, (1.31, total_y - 0.04), (1.31, 0.38))
    _box(ax, 1.31, 0.32, 0.17, 0.09, f"ELMo vector\nof '{word}'", "white")
    ax.text(
        1.15,
        0.17,
        "$s_j$ (a softmax) and γ are learned\nwith the task; the biLM stays frozen",
        ha="center",
        va="center",
        fontsize=8.5,
    )
