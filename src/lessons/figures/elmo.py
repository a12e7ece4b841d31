"""The figures and measurements of the ELMo chapter.

Used in: ``notebooks/02_elmo.ipynb``.

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
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from lessons.core.plot import PALETTE
from lessons.core.probe import CrossValidation
from lessons.elmo import BiLM, character_ids, embed_sentences

__all__ = [
    "Usage",
    "draw_architecture",
    "draw_layer_similarity",
    "draw_probe_results",
    "first_word_influence",
    "layer_similarities",
    "nearest_usages",
    "nearest_words",
]

LAYER_NAMES = ("layer 0: characters", "layer 1: first LSTM", "layer 2: second LSTM")


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


def draw_probe_results(ax: Axes, results: Mapping[str, CrossValidation]) -> None:
    """Horizontal bars: mean held-out accuracy of each feature set, with error bars of
    one binomial standard error, and chance (the majority class share) marked at 0.5."""
    names = list(results)
    means = [results[name].mean for name in names]
    errors = [results[name].standard_error for name in names]
    positions = np.arange(len(names))[::-1]
    ax.barh(positions, means, xerr=errors, color=PALETTE[0], capsize=4)
    for y, mean in zip(positions, means, strict=True):
        ax.text(mean + 0.015, y + 0.2, f"{mean:.2f}", va="center")
    ax.axvline(0.5, color=PALETTE[7], linestyle="--", linewidth=1, label="chance")
    ax.set_yticks(positions, labels=names)
    ax.set_xlim(0.3, 1.0)
    ax.set_xlabel("held-out accuracy (± 1 standard error)")
    ax.legend(loc="lower right")


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
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
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="0.3"))


def draw_architecture(ax: Axes, words: Sequence[str] = ("<S>", "the", "play", "ended", "</S>")):
    """ELMo's biLM as boxes and arrows: characters -> char-CNN (layer 0) -> two LSTM
    layers, each a forward (→) and a backward (←) LSTM -> one shared softmax.

    Horizontal arrows are the recurrences: the forward LSTMs pass their state to the
    right, the backward ones to the left.
    """
    ax.set_axis_off()
    columns = np.linspace(0.14, 0.9, len(words))
    spacing = columns[1] - columns[0]
    width, height = 0.62 * spacing, 0.065
    rows = {"chars": 0.03, "cnn": 0.15, "f1": 0.33, "b1": 0.42, "f2": 0.6, "b2": 0.69}
    rows["soft"] = 0.87
    for x, word in zip(columns, words, strict=True):
        ax.text(x, rows["chars"], word, ha="center", va="center", family="monospace")
        _box(ax, x, rows["cnn"], width, 0.09, "char-CNN\n+ highway", PALETTE[5])
        for layer in (1, 2):
            _box(ax, x, rows[f"f{layer}"], width, height, f"→ LSTM {layer}", PALETTE[1])
            _box(ax, x, rows[f"b{layer}"], width, height, f"← LSTM {layer}", PALETTE[2])
        _box(ax, x, rows["soft"], width, 0.07, "softmax", PALETTE[4])
        _arrow(ax, (x, rows["chars"] + 0.03), (x, rows["cnn"] - 0.055))
        _arrow(ax, (x, rows["cnn"] + 0.055), (x, rows["f1"] - 0.04))
        _arrow(ax, (x, rows["b1"] + 0.04), (x, rows["f2"] - 0.04))
        _arrow(ax, (x, rows["b2"] + 0.04), (x, rows["soft"] - 0.045))
    gap = (spacing - width) / 2
    for a, b in zip(columns[:-1], columns[1:], strict=True):
        for layer in (1, 2):
            _arrow(
                ax,
                (a + width / 2 + 0.2 * gap, rows[f"f{layer}"]),
                (b - width / 2 - 0.2 * gap, rows[f"f{layer}"]),
            )
            _arrow(
                ax,
                (b - width / 2 - 0.2 * gap, rows[f"b{layer}"]),
                (a + width / 2 + 0.2 * gap, rows[f"b{layer}"]),
            )
    for label, row in (
        ("layer 0", rows["cnn"]),
        ("layer 1", (rows["f1"] + rows["b1"]) / 2),
        ("layer 2", (rows["f2"] + rows["b2"]) / 2),
    ):
        ax.text(0.0, row, label, ha="left", va="center", fontsize=10, color="0.3")
    ax.text(
        0.52,
        0.97,
        "→ predicts the next word, ← the previous one; both share the char-CNN and the softmax",
        ha="center",
        va="center",
        fontsize=9,
    )
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(-0.02, 1.0)
