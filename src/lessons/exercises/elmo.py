"""Exercises and quiz of chapter 2, ELMo.

`elmo.word_character_ids` is the taught function itself. The other solutions are the
taught modules written as plain functions of their weights (`Highway`, one filter bank
of `CharCNN`, `ScalarMix`, the loss of `BiLM`), so that a learner can write them without
building a module; tests/test_elmo.py proves each equal to its module on every case.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lessons.elmo import word_character_ids
from lessons.exercises import quiz
from lessons.exercises.framework import Case, Exercise, Hint, register

# --------------------------------------------------------------------------------------
# Exercise: elmo.word_character_ids
# --------------------------------------------------------------------------------------


def _word_ids_cases() -> list[Case]:
    return [
        Case("'cat' in 8 characters", ("cat", 8)),
        Case("one letter, 5 characters", ("a", 5)),
        Case("a word that exactly fills the row", ("dog", 5)),
        Case("a long word, truncated", ("internationalisation", 10)),
        Case("a non-ASCII word (two bytes per letter)", ("éé", 8)),
    ]


def _word_ids_no_shift(word: str, max_chars: int) -> list[int]:
    row = [258, *list(word.encode("utf-8"))[: max_chars - 2], 259]
    return row + [260] * (max_chars - len(row))


def _word_ids_code_points(word: str, max_chars: int) -> list[int]:
    row = [258, *(ord(c) for c in word)][: max_chars - 1] + [259]
    return [c + 1 for c in row + [260] * (max_chars - len(row))]


def _word_ids_no_truncation(word: str, max_chars: int) -> list[int]:
    row = [258, *word.encode("utf-8"), 259]
    return [c + 1 for c in row + [260] * (max_chars - len(row))]


register(
    Exercise(
        id="elmo.word_character_ids",
        chapter="elmo",
        prompt=(
            "Write `word_character_ids(word, max_chars)`: the list of `max_chars` ints ELMo "
            "feeds its char-CNN for one word. Start with begin-of-word (258), then the UTF-8 "
            "bytes of the word (at most `max_chars - 2` of them: longer words are cut), then "
            "end-of-word (259), then padding characters (260) up to `max_chars`; finally add "
            "1 to every id, so that 0 is free for padding tokens."
        ),
        signature="def word_character_ids(word: str, max_chars: int) -> list[int]",
        solution=word_character_ids,
        cases=_word_ids_cases,
        hints=(
            Hint(
                "Every id is shifted by one at the end: 'a' (byte 97) becomes 98 and "
                "begin-of-word becomes 259.",
                fits=lambda a: a.problem == "values" and isinstance(a.got, list) and 258 in a.got,
            ),
            Hint(
                "Use `word.encode('utf-8')`, not the characters: 'é' is two bytes, 195 and 169.",
                fits=lambda a: "é" in a.case.args[0],
            ),
            Hint(
                "Keep only the first `max_chars - 2` bytes, so that begin- and end-of-word "
                "always fit: the row is exactly `max_chars` long."
            ),
        ),
        wrong_answers=(_word_ids_no_shift, _word_ids_code_points, _word_ids_no_truncation),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.highway
# --------------------------------------------------------------------------------------


def highway(
    x: torch.Tensor,
    w_transform: torch.Tensor,
    b_transform: torch.Tensor,
    w_gate: torch.Tensor,
    b_gate: torch.Tensor,
) -> torch.Tensor:
    """One highway layer as `Highway` computes it: ``g * x + (1 - g) * relu(W_h x + b_h)``."""
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return g * x + (1 - g) * torch.relu(x @ w_transform.T + b_transform)


def _highway_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)

    def case(batch: int, dim: int, gate_bias: float) -> tuple[torch.Tensor, ...]:
        return (
            torch.randn(batch, dim, generator=g),
            torch.randn(dim, dim, generator=g) / dim**0.5,
            torch.randn(dim, generator=g),
            torch.randn(dim, dim, generator=g) / dim**0.5,
            torch.full((dim,), gate_bias),
        )

    return [
        Case("batch 4, dim 3, gate bias 1", case(4, 3, 1.0)),
        Case("one vector of dim 6", case(1, 6, 1.0)),
        Case("gate bias -2 (mostly transform)", case(3, 4, -2.0)),
        Case("gate bias 0", case(5, 2, 0.0)),
    ]


def _highway_swapped(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return (1 - g) * x + g * torch.relu(x @ w_transform.T + b_transform)


def _highway_no_relu(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return g * x + (1 - g) * (x @ w_transform.T + b_transform)


def _highway_untransposed(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate + b_gate)
    return g * x + (1 - g) * torch.relu(x @ w_transform + b_transform)


register(
    Exercise(
        id="elmo.highway",
        chapter="elmo",
        prompt=(
            "Write one highway layer: `g = sigmoid(x W_g^T + b_g)` is the carry gate and the "
            "output is `g * x + (1 - g) * relu(x W_h^T + b_h)`. `x` is `(batch, dim)`, the "
            "weights `(dim, dim)` as in `nn.Linear`, the biases `(dim,)`."
        ),
        signature=("def highway(x, w_transform, b_transform, w_gate, b_gate) -> torch.Tensor"),
        solution=highway,
        cases=_highway_cases,
        hints=(
            Hint(
                "`g` multiplies the input `x` itself (what is carried), `1 - g` the "
                "transformed input: with a gate bias of 1, most of `x` passes unchanged."
            ),
            Hint("The transformed branch goes through ReLU before it is mixed in."),
            Hint("`nn.Linear` computes `x @ W.T + b`: transpose the weight."),
        ),
        wrong_answers=(_highway_swapped, _highway_no_relu, _highway_untransposed),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.conv_max_pool
# --------------------------------------------------------------------------------------


def conv_max_pool(chars: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """One filter bank of `CharCNN`: convolve, max-pool over character positions, ReLU.

    ``chars`` ``(words, char_dim, max_chars)``, ``weight`` ``(filters, char_dim, width)``,
    ``bias`` ``(filters,)``; returns ``(words, filters)``.
    """
    return torch.relu(F.conv1d(chars, weight, bias).max(dim=2).values)


def _pool_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def case(words: int, char_dim: int, max_chars: int, filters: int, width: int):
        return (
            torch.randn(words, char_dim, max_chars, generator=g),
            torch.randn(filters, char_dim, width, generator=g),
            torch.randn(filters, generator=g),
        )

    return [
        Case("3 words, 4 filters of width 2", case(3, 2, 6, 4, 2)),
        Case("filters of width 1", case(2, 3, 5, 3, 1)),
        Case("width 3, one word", case(1, 4, 7, 5, 3)),
        Case("filter as wide as the word", case(4, 2, 4, 2, 4)),
    ]


def _pool_mean(chars, weight, bias):
    return torch.relu(F.conv1d(chars, weight, bias).mean(dim=2))


def _pool_over_filters(chars, weight, bias):
    out = F.conv1d(chars, weight, bias)
    return torch.relu(out.max(dim=1).values[:, : weight.shape[0]])


def _pool_no_bias(chars, weight, bias):
    return torch.relu(F.conv1d(chars, weight).max(dim=2).values)


register(
    Exercise(
        id="elmo.conv_max_pool",
        chapter="elmo",
        prompt=(
            "Write one filter bank of the char-CNN: a 1-D convolution of the characters "
            "(`torch.nn.functional.conv1d(chars, weight, bias)`), max-pooled over time, that "
            "is over the character positions, then ReLU. `chars` is "
            "`(words, char_dim, max_chars)`; return `(words, filters)`."
        ),
        signature="def conv_max_pool(chars, weight, bias) -> torch.Tensor",
        solution=conv_max_pool,
        cases=_pool_cases,
        hints=(
            Hint(
                "The convolution gives `(words, filters, positions)`: pool over the last "
                "dimension, the positions, so each filter keeps its strongest match.",
                fits=lambda a: a.problem == "shape",
            ),
            Hint("Max-pooling, not the mean: a filter fires if its n-gram is *anywhere*."),
            Hint("Pass the bias to the convolution."),
        ),
        wrong_answers=(_pool_mean, _pool_over_filters, _pool_no_bias),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.scalar_mix
# --------------------------------------------------------------------------------------


def scalar_mix(layers: torch.Tensor, weights: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``gamma * sum_j softmax(weights)_j layers[j]``: layers ``(L, ...)`` -> ``(...)``."""
    s = torch.softmax(weights, dim=0)
    return gamma * (s.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


def _mix_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case(
            "3 layers, equal weights, gamma 1",
            (torch.randn(3, 2, 4, 5, generator=g), torch.zeros(3), torch.tensor(1.0)),
        ),
        Case(
            "3 layers, different weights",
            (
                torch.randn(3, 2, 3, 4, generator=g),
                torch.tensor([0.5, -1.0, 2.0]),
                torch.tensor(1.0),
            ),
        ),
        Case(
            "gamma 0.5",
            (
                torch.randn(3, 1, 2, 3, generator=g),
                torch.tensor([1.0, 0.0, -1.0]),
                torch.tensor(0.5),
            ),
        ),
        Case(
            "2 layers of shape (4, 6)",
            (torch.randn(2, 4, 6, generator=g), torch.tensor([3.0, 1.0]), torch.tensor(2.0)),
        ),
    ]


def _mix_raw_weights(layers, weights, gamma):
    return gamma * (weights.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


def _mix_mean(layers, weights, gamma):
    return gamma * layers.mean(0)


def _mix_no_gamma(layers, weights, gamma):
    s = torch.softmax(weights, dim=0)
    return (s.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


register(
    Exercise(
        id="elmo.scalar_mix",
        chapter="elmo",
        prompt=(
            "Write ELMo's scalar mix: normalise the layer weights with a softmax, "
            "`s = softmax(weights)`, and return `gamma * sum_j s_j * layers[j]`. `layers` "
            "is `(L, ...)`, `weights` `(L,)`, `gamma` a scalar tensor."
        ),
        signature="def scalar_mix(layers, weights, gamma) -> torch.Tensor",
        solution=scalar_mix,
        cases=_mix_cases,
        hints=(
            Hint(
                "Equal weights must give the mean of the layers times gamma: the weights "
                "go through a softmax first, so they are positive and sum to 1."
            ),
            Hint("Don't forget the scale `gamma`."),
        ),
        wrong_answers=(_mix_raw_weights, _mix_mean, _mix_no_gamma),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.bidirectional_loss
# --------------------------------------------------------------------------------------


def bidirectional_loss(
    forward_logits: torch.Tensor, backward_logits: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """The biLM's loss for unpadded sentences ``tokens`` ``(batch, time)`` (<S> ... </S>):
    the mean of the forward LM's cross-entropy (row ``t`` predicts token ``t + 1``) and the
    backward LM's (row ``t`` predicts token ``t - 1``); logits ``(batch, time, vocab)``."""
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, 1:].transpose(1, 2), tokens[:, :-1])
    return (forward_loss + backward_loss) / 2


def _bidirectional_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)

    def case(batch: int, time: int, vocab: int):
        return (
            torch.randn(batch, time, vocab, generator=g),
            torch.randn(batch, time, vocab, generator=g),
            torch.randint(0, vocab, (batch, time), generator=g),
        )

    return [
        Case("batch 2, 5 tokens, vocabulary 7", case(2, 5, 7)),
        Case("one sentence of 3 tokens", case(1, 3, 4)),
        Case("batch 4, 6 tokens, vocabulary 10", case(4, 6, 10)),
        Case("two tokens only (<S> </S>)", case(3, 2, 5)),
    ]


def _bidirectional_same_shift(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    return (forward_loss + backward_loss) / 2


def _bidirectional_no_shift(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits.transpose(1, 2), tokens)
    backward_loss = F.cross_entropy(backward_logits.transpose(1, 2), tokens)
    return (forward_loss + backward_loss) / 2


def _bidirectional_sum(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, 1:].transpose(1, 2), tokens[:, :-1])
    return forward_loss + backward_loss


register(
    Exercise(
        id="elmo.bidirectional_loss",
        chapter="elmo",
        prompt=(
            "Combine the two language models' losses. `tokens` `(batch, time)` are the ids "
            "of <S> w1 ... wn </S>; row `t` of `forward_logits` `(batch, time, vocab)` "
            "predicts token `t + 1`, row `t` of `backward_logits` predicts token `t - 1`. "
            "Return the mean of the two mean cross-entropies "
            "(`torch.nn.functional.cross_entropy`)."
        ),
        signature="def bidirectional_loss(forward_logits, backward_logits, tokens)",
        solution=bidirectional_loss,
        cases=_bidirectional_cases,
        hints=(
            Hint(
                "The forward LM drops its last row (nothing after </S>) and its targets are "
                "`tokens[:, 1:]`; the backward LM drops its *first* row and its targets are "
                "`tokens[:, :-1]`."
            ),
            Hint(
                "Average the two directions, `(forward + backward) / 2`, so the loss stays "
                "on the scale of one language model."
            ),
        ),
        wrong_answers=(_bidirectional_same_shift, _bidirectional_no_shift, _bidirectional_sum),
        check_grad=True,
    )
)


quiz.register(
    "elmo",
    [
        {
            "question": "With `max_chars=6`, what are the character ids of the word 'ab' "
            "('a' is byte 97)?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "259, 98, 99, 260, 261, 261",
                    "correct": True,
                    "feedback": "Right: begin-of-word 258, the bytes 97 and 98, end-of-word "
                    "259, padding 260, and every id plus one.",
                },
                {
                    "answer": "258, 97, 98, 259, 260, 260",
                    "correct": False,
                    "feedback": "That forgets the final + 1, which frees id 0 for padding "
                    "tokens (rows of zeros).",
                },
                {
                    "answer": "98, 99, 0, 0, 0, 0",
                    "correct": False,
                    "feedback": "ELMo marks where a word begins and ends (259 and 260) and "
                    "pads inside a word with its own padding character (261).",
                },
            ],
        },
        {
            "question": "A highway layer's gate bias starts at 1 and its weights are "
            "near zero. What fraction of its input does it carry through unchanged at "
            "first? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.731,
                    "correct": True,
                    "feedback": "Right: the carry gate is σ(1) ≈ 0.731.",
                },
                {
                    "type": "value",
                    "value": 0.269,
                    "correct": False,
                    "feedback": "That is 1 - σ(1), the share of the transformed branch.",
                },
                {
                    "type": "value",
                    "value": 0.5,
                    "correct": False,
                    "feedback": "σ(0) = 0.5 would be a gate bias of 0; with bias 1 it is σ(1).",
                },
                {"type": "default", "feedback": "The gate is σ(1 + W x) with W x ≈ 0."},
            ],
        },
        {
            "question": "Why can ELMo represent a word it never saw in training?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Its token encoder reads characters, not a word id",
                    "correct": True,
                    "feedback": "Right: the char-CNN builds a vector from the word's bytes, "
                    "so every word has one; only the softmax has a fixed vocabulary.",
                },
                {
                    "answer": "Unknown words are mapped to <unk>, which has its own vector",
                    "correct": False,
                    "feedback": "That is how the *targets* of the softmax handle them; the "
                    "input side never looks a word up in a vocabulary.",
                },
                {
                    "answer": "The backward LM fills it in from the following words",
                    "correct": False,
                    "feedback": "Both LMs see the word itself through the char-CNN; context "
                    "only refines that.",
                },
            ],
        },
        {
            "question": "ELMo is used feature-based: a task model reads the vectors of a "
            "frozen biLM. Which parameters learn from the task's labelled examples?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The scalar mix (the weights s_j and γ) and the task model",
                    "correct": True,
                    "feedback": "Right: the biLM's weights stay as pre-training left them. "
                    "Fine-tuning, as in GPT and BERT, would train them too.",
                },
                {
                    "answer": "Every parameter, the biLM's included",
                    "correct": False,
                    "feedback": "That is fine-tuning. ELMo's recipe freezes the biLM and "
                    "learns only how to mix its layers, with the task model.",
                },
                {
                    "answer": "Only the task model: the layer weights stay at 1/3 each",
                    "correct": False,
                    "feedback": "The scalar mix is learned for each task: that is how a task "
                    "chooses its blend of layers.",
                },
            ],
        },
        {
            "question": "Layer 2 of ELMo at a word is [forward state; backward state]. You "
            "change only the words *after* it. Which half of its vector can change?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Only the backward half",
                    "correct": True,
                    "feedback": "Right: the forward LM has read only the words up to this "
                    "one. The two halves are read apart and joined afterwards, which is "
                    "the weak fusion BERT's masked language model removes.",
                },
                {
                    "answer": "Only the forward half",
                    "correct": False,
                    "feedback": "The forward LM reads left to right: at this word it has "
                    "not yet seen the words after it.",
                },
                {
                    "answer": "Both halves",
                    "correct": False,
                    "feedback": "Each direction sees one side only; no layer combines "
                    "both sides before the concatenation.",
                },
            ],
        },
    ],
)
