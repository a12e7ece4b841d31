"""Exercises and quiz of chapter 3, attention.

Each solution is the taught function of `lessons.attention` itself, except
`additive_score`: `AdditiveScore` written as a plain function of its weights, which
tests/test_attention.py proves equal to the module on every case.
"""

from __future__ import annotations

import torch

from lessons.attention import (
    causal_mask,
    masked_softmax,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)
from lessons.exercises import quiz
from lessons.exercises.framework import Case, Exercise, Hint, register

# --------------------------------------------------------------------------------------
# Exercise: attention.masked_softmax
# --------------------------------------------------------------------------------------


def _masked_softmax_cases() -> list[Case]:
    g = torch.Generator().manual_seed(30)
    padding = torch.tensor([[True, True, True, False, False]])
    return [
        Case("nothing masked", (torch.randn(2, 4, generator=g), torch.ones(2, 4, dtype=bool))),
        Case("padding: the last two keys masked", (torch.randn(3, 5, generator=g), padding)),
        Case("causal mask, 4 x 4", (torch.randn(4, 4, generator=g), causal_mask(4))),
        Case(
            "large scores (a naive exp overflows)",
            (100 * torch.randn(2, 5, generator=g), padding.expand(2, 5)),
        ),
        Case(
            "the second row fully masked",
            (
                torch.randn(3, 4, generator=g),
                torch.tensor([[True, False, True, True], [False] * 4, [False, True, False, True]]),
            ),
        ),
        Case(
            "batch of 2 x 3 queries, mask per key",
            (
                torch.randn(2, 3, 4, generator=g),
                torch.tensor([[[1, 1, 0, 1]], [[0, 1, 1, 1]]]) == 1,
            ),
        ),
    ]


def _softmax_ignoring_mask(scores, mask):
    return torch.softmax(scores, dim=-1)


def _softmax_times_mask(scores, mask):
    return torch.softmax(scores, dim=-1) * mask


def _softmax_with_inf_fill(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _softmax_inverted_mask(scores, mask):
    return masked_softmax(scores, ~mask)


register(
    Exercise(
        id="attention.masked_softmax",
        chapter="attention",
        prompt=(
            "Write `masked_softmax(scores, mask)`: the softmax of `scores` over the last "
            "dimension, but only over the positions where the bool `mask` is True (it "
            "broadcasts to `scores`). Masked positions get weight exactly 0, the others sum "
            "to 1. A row where every position is masked must give all zeros, not NaN."
        ),
        signature="def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor",
        solution=masked_softmax,
        cases=_masked_softmax_cases,
        hints=(
            Hint(
                "Multiplying the softmax by the mask leaves rows that no longer sum to 1: "
                "mask the *scores* before the softmax, so the masked positions take no share.",
                fits=lambda a: a.problem == "values" and not a.got.isnan().any(),
            ),
            Hint(
                "`scores.masked_fill(~mask, float('-inf'))` gives masked positions e^-inf = 0. "
                "True in the mask means *may attend*: fill where it is False."
            ),
            Hint(
                "A fully masked row is all -inf, and softmax computes 0 / 0 = NaN there. Write "
                "the softmax yourself: subtract the row maximum (use 0 where it is -inf), "
                "exponentiate, and divide by the sum where the sum is not 0.",
                fits=lambda a: a.problem == "values" and a.got.isnan().any(),
            ),
        ),
        wrong_answers=(
            _softmax_ignoring_mask,
            _softmax_times_mask,
            _softmax_with_inf_fill,
            _softmax_inverted_mask,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: attention.additive_score
# --------------------------------------------------------------------------------------


def additive_score(
    query: torch.Tensor,
    keys: torch.Tensor,
    w_query: torch.Tensor,
    w_keys: torch.Tensor,
    v: torch.Tensor,
) -> torch.Tensor:
    """Bahdanau's ``v^T tanh(W_q q + W_k k)`` for every query-key pair: ``(batch, q_len,
    k_len)``."""
    q = (query @ w_query.T).unsqueeze(2)  # (batch, q_len, 1, hidden)
    k = (keys @ w_keys.T).unsqueeze(1)  # (batch, 1, k_len, hidden)
    return torch.tanh(q + k) @ v


def _additive_cases() -> list[Case]:
    g = torch.Generator().manual_seed(31)

    def case(batch, q_len, k_len, d_q, d_k, hidden):
        return (
            torch.randn(batch, q_len, d_q, generator=g),
            torch.randn(batch, k_len, d_k, generator=g),
            torch.randn(hidden, d_q, generator=g) / d_q**0.5,
            torch.randn(hidden, d_k, generator=g) / d_k**0.5,
            torch.randn(hidden, generator=g),
        )

    return [
        Case("one decoder state, 5 encoder states", case(2, 1, 5, 3, 4, 6)),
        Case("3 queries, 4 keys, different sizes", case(1, 3, 4, 5, 2, 7)),
        Case("as many queries as keys", case(2, 4, 4, 3, 3, 5)),
        Case("one key", case(3, 2, 1, 4, 6, 3)),
    ]


def _additive_no_tanh(query, keys, w_query, w_keys, v):
    return ((query @ w_query.T).unsqueeze(2) + (keys @ w_keys.T).unsqueeze(1)) @ v


def _additive_tanh_each(query, keys, w_query, w_keys, v):
    q = torch.tanh(query @ w_query.T).unsqueeze(2)
    return (q + torch.tanh(keys @ w_keys.T).unsqueeze(1)) @ v


def _additive_position_by_position(query, keys, w_query, w_keys, v):
    return torch.tanh(query @ w_query.T + keys @ w_keys.T) @ v


register(
    Exercise(
        id="attention.additive_score",
        chapter="attention",
        prompt=(
            "Write Bahdanau's additive score for every pair of a query and a key: "
            "`score[b, i, j] = v · tanh(W_q query[b, i] + W_k keys[b, j])`. `query` is "
            "`(batch, q_len, d_q)`, `keys` `(batch, k_len, d_k)`, `w_query` "
            "`(hidden, d_q)`, `w_keys` `(hidden, d_k)`, `v` `(hidden,)`; return "
            "`(batch, q_len, k_len)`. Use broadcasting rather than loops."
        ),
        signature="def additive_score(query, keys, w_query, w_keys, v) -> torch.Tensor",
        solution=additive_score,
        cases=_additive_cases,
        hints=(
            Hint(
                "Project first, `query @ w_query.T` and `keys @ w_keys.T`, then add every "
                "query to every key: `unsqueeze(2)` on the queries and `unsqueeze(1)` on the "
                "keys give `(batch, q_len, 1, hidden) + (batch, 1, k_len, hidden)`.",
                fits=lambda a: a.problem in ("shape", "exception"),
            ),
            Hint(
                "The tanh comes after the sum, `tanh(W_q q + W_k k)`: it is the hidden layer "
                "of a small network that looks at both vectors together."
            ),
            Hint("Finish with `@ v`, which sums over the hidden units."),
        ),
        wrong_answers=(_additive_no_tanh, _additive_tanh_each, _additive_position_by_position),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: attention.scaled_dot_product_attention
# --------------------------------------------------------------------------------------


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(32)

    def qkv(leading, q_len, k_len, d_k, d_v):
        return (
            torch.randn(*leading, q_len, d_k, generator=g),
            torch.randn(*leading, k_len, d_k, generator=g),
            torch.randn(*leading, k_len, d_v, generator=g),
        )

    # (batch 2, q_len 2, k_len 3): the first query of the second sequence may attend nothing.
    one_query_blind = torch.tensor(
        [[[True, True, False], [True, True, True]], [[False, False, False], [True, False, True]]]
    )
    return [
        Case("self-attention, d_k = d_v = 4", qkv((2,), 3, 3, 4, 4)),
        Case("d_k = 16, d_v = 2 (different sizes)", qkv((2,), 2, 5, 16, 2)),
        Case("with a causal mask", qkv((1,), 4, 4, 8, 3), {"mask": causal_mask(4)}),
        Case(
            "with padding: the last key of the second sequence masked",
            qkv((2,), 2, 3, 4, 4),
            {"mask": padding_mask([3, 2])},
        ),
        Case("batch 2, 3 heads: (2, 3, len, d)", qkv((2, 3), 4, 4, 6, 5)),
        Case(
            "a query that may attend nothing (its weights and output are 0)",
            qkv((2,), 2, 3, 4, 2),
            {"mask": one_query_blind},
        ),
    ]


def _attention_with(scale, softmax_dim: int = -1):
    """A typical mistake: the scores divided by ``scale(query, key, value)``, or the
    softmax taken over another dimension; masked scores filled with -inf."""

    def attention(query, key, value, mask=None):
        scores = query @ key.transpose(-2, -1) / scale(query, key, value)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=softmax_dim)
        return weights @ value, weights

    return attention


def _attention_unscaled(query, key, value, mask=None):
    return _attention_with(lambda q, k, v: 1.0)(query, key, value, mask)


def _attention_scaled_by_d_k(query, key, value, mask=None):
    return _attention_with(lambda q, k, v: k.shape[-1])(query, key, value, mask)


def _attention_scaled_by_d_v(query, key, value, mask=None):
    return _attention_with(lambda q, k, v: v.shape[-1] ** 0.5)(query, key, value, mask)


def _attention_softmax_over_queries(query, key, value, mask=None):
    return _attention_with(lambda q, k, v: k.shape[-1] ** 0.5, -2)(query, key, value, mask)


def _attention_nan_when_nothing_allowed(query, key, value, mask=None):
    return _attention_with(lambda q, k, v: k.shape[-1] ** 0.5)(query, key, value, mask)


register(
    Exercise(
        id="attention.scaled_dot_product_attention",
        chapter="attention",
        prompt=(
            "Write scaled dot-product attention, `softmax(Q K^T / sqrt(d_k)) V`, returning "
            "`(output, weights)`. `query` is `(..., q_len, d_k)`, `key` `(..., k_len, d_k)`, "
            "`value` `(..., k_len, d_v)`; `mask` (optional) is bool and True where a query "
            "may attend a key. `output` is `(..., q_len, d_v)` and `weights` "
            "`(..., q_len, k_len)`. A query that may attend nothing gets zero weights and "
            "a zero output, not NaN: your `masked_softmax` of exercise 1 does exactly that."
        ),
        signature=(
            "def scaled_dot_product_attention(query, key, value, mask=None) "
            "-> tuple[torch.Tensor, torch.Tensor]"
        ),
        solution=scaled_dot_product_attention,
        cases=_attention_cases,
        hints=(
            Hint(
                "Divide the scores by `sqrt(d_k)`, the square root of the query/key size "
                "(`key.shape[-1]`), not by `d_k` and not by the value size."
            ),
            Hint(
                "Each query's weights are a distribution over the *keys*: softmax over the "
                "last dimension of the `(..., q_len, k_len)` scores.",
            ),
            Hint(
                "A query whose mask is all False gets NaN from `torch.softmax` of a row of "
                "-inf: use `masked_softmax(scores, mask)` instead, which gives zeros.",
                fits=lambda a: any(t.isnan().any() for t in a.got),
            ),
            Hint(
                "Use `key.transpose(-2, -1)`, not `.T`, so that leading batch and head "
                "dimensions stay in place; return the weights too: `(weights @ value, weights)`."
            ),
        ),
        wrong_answers=(
            _attention_unscaled,
            _attention_scaled_by_d_k,
            _attention_scaled_by_d_v,
            _attention_softmax_over_queries,
            _attention_nan_when_nothing_allowed,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercises: attention.split_heads and attention.merge_heads
# --------------------------------------------------------------------------------------


def _split_cases() -> list[Case]:
    g = torch.Generator().manual_seed(33)
    return [
        Case("batch 2, 3 positions, d_model 8, 2 heads", (torch.randn(2, 3, 8, generator=g), 2)),
        Case("4 heads of size 3", (torch.arange(2 * 5 * 12.0).reshape(2, 5, 12), 4)),
        Case("one head", (torch.randn(1, 4, 6, generator=g), 1)),
        Case("as many heads as features", (torch.randn(3, 2, 4, generator=g), 4)),
    ]


def _split_reshape_only(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, num_heads, seq, d_model // num_heads)


def _split_interleaved(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, d_model // num_heads, num_heads).permute(0, 3, 1, 2)


def _split_no_transpose(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads)


register(
    Exercise(
        id="attention.split_heads",
        chapter="attention",
        prompt=(
            "Write `split_heads(x, num_heads)`: cut the `d_model` features of each position "
            "into `num_heads` consecutive blocks of `d_head = d_model // num_heads` (head 0 "
            "gets features `0 … d_head - 1`) and move the heads in front of the positions: "
            "`(batch, seq, d_model)` -> `(batch, heads, seq, d_head)`."
        ),
        signature="def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor",
        solution=split_heads,
        cases=_split_cases,
        hints=(
            Hint(
                "A reshape alone to `(batch, heads, seq, d_head)` mixes positions into the "
                "heads: first reshape to `(batch, seq, heads, d_head)`, which only cuts the "
                "last dimension, then swap dimensions 1 and 2.",
                fits=lambda a: a.problem == "values",
            ),
            Hint("The result has the heads in dimension 1: `.transpose(1, 2)`."),
        ),
        wrong_answers=(_split_reshape_only, _split_interleaved, _split_no_transpose),
        check_grad=True,
    )
)


def _merge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(34)
    return [
        Case("batch 2, 2 heads, 3 positions, d_head 4", (torch.randn(2, 2, 3, 4, generator=g),)),
        Case("4 heads of size 3", (torch.arange(2 * 4 * 5 * 3.0).reshape(2, 4, 5, 3),)),
        Case("one head", (torch.randn(1, 1, 4, 6, generator=g),)),
        Case("heads of size 1", (torch.randn(3, 4, 2, 1, generator=g),)),
    ]


def _merge_reshape_only(x):
    batch, heads, seq, d_head = x.shape
    return x.reshape(batch, seq, heads * d_head)


def _merge_interleaved(x):
    batch, heads, seq, d_head = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, seq, heads * d_head)


register(
    Exercise(
        id="attention.merge_heads",
        chapter="attention",
        prompt=(
            "Write `merge_heads(x)`, the inverse of `split_heads`: `(batch, heads, seq, "
            "d_head)` -> `(batch, seq, heads * d_head)`, head 0's features first, then head "
            "1's, and so on."
        ),
        signature="def merge_heads(x: torch.Tensor) -> torch.Tensor",
        solution=merge_heads,
        cases=_merge_cases,
        hints=(
            Hint(
                "Bring the positions next to the batch first, `x.transpose(1, 2)`, so that "
                "each position's heads are side by side, then reshape.",
                fits=lambda a: a.problem == "values",
            ),
            Hint("After a transpose the tensor is not contiguous: use `reshape`, not `view`."),
        ),
        wrong_answers=(_merge_reshape_only, _merge_interleaved),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: attention.causal_mask
# --------------------------------------------------------------------------------------


def _causal_cases() -> list[Case]:
    return [
        Case("4 x 4", (4, 4)),
        Case("one position", (1, 1)),
        Case("more keys than queries", (2, 5)),
        Case("more queries than keys", (5, 3)),
    ]


def _causal_upper(q_len, k_len):
    return torch.ones(q_len, k_len, dtype=torch.bool).triu()


def _causal_strict(q_len, k_len):
    return torch.ones(q_len, k_len, dtype=torch.bool).tril(-1)


def _causal_float(q_len, k_len):
    return torch.ones(q_len, k_len).tril()


def _causal_additive(q_len, k_len):
    return torch.full((q_len, k_len), float("-inf")).triu(1)


register(
    Exercise(
        id="attention.causal_mask",
        chapter="attention",
        prompt=(
            "Write `causal_mask(q_len, k_len)`: a bool tensor `(q_len, k_len)` that is True "
            "where query `i` may attend key `j`, that is for `j <= i` (a position sees "
            "itself and the past, never the future)."
        ),
        signature="def causal_mask(q_len: int, k_len: int) -> torch.Tensor",
        solution=causal_mask,
        cases=_causal_cases,
        hints=(
            Hint(
                "Our masks are bool, True = may attend; not 0/1 floats and not the additive "
                "-inf/0 masks of some libraries.",
                fits=lambda a: a.problem == "dtype",
            ),
            Hint(
                "Row `i` is True in columns `0 … i`: the lower triangle *with* the diagonal, "
                "`torch.ones(q_len, k_len, dtype=torch.bool).tril()`."
            ),
        ),
        wrong_answers=(_causal_upper, _causal_strict, _causal_float, _causal_additive),
    )
)


quiz.register(
    "attention",
    [
        {
            "question": "The entries of a query q and a key k are independent, with mean 0 "
            "and variance 1, and d_k = 64. What is the variance of the score q · k?",
            "type": "numeric",
            "precision": 2,
            "answers": [
                {
                    "type": "value",
                    "value": 64,
                    "correct": True,
                    "feedback": "Right: q · k is a sum of 64 products, each of mean 0 and "
                    "variance 1, so the variance is d_k = 64 (standard deviation 8). Dividing "
                    "by sqrt(d_k) = 8 brings it back to 1.",
                },
                {
                    "type": "value",
                    "value": 8,
                    "correct": False,
                    "feedback": "8 = sqrt(64) is the standard deviation; the variance is its "
                    "square.",
                },
                {
                    "type": "value",
                    "value": 1,
                    "correct": False,
                    "feedback": "That is the variance *after* dividing by sqrt(d_k). Each of "
                    "the 64 products adds variance 1.",
                },
                {
                    "type": "default",
                    "feedback": "Variances of independent terms add up: how many products "
                    "does q · k sum, and what is the variance of each?",
                },
            ],
        },
        {
            "question": "Why do Transformers divide the scores by sqrt(d_k) before the softmax?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Without it, large d_k gives large scores, the softmax saturates "
                    "to nearly one-hot and its gradients vanish",
                    "correct": True,
                    "feedback": "Right: the scores' standard deviation grows as sqrt(d_k); "
                    "dividing keeps it near 1, where the softmax still has useful gradients.",
                },
                {
                    "answer": "To make the attention weights sum to one",
                    "correct": False,
                    "feedback": "The softmax does that whatever the scale of its inputs.",
                },
                {
                    "answer": "To avoid overflow in exp",
                    "correct": False,
                    "feedback": "A stable softmax subtracts the row maximum, so exp never "
                    "overflows; the problem is saturation, which no shift removes.",
                },
            ],
        },
        {
            "question": "Self-attention over a sequence of n tokens with d features: how do "
            "the time and memory of the score matrix grow with n?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "O(n² d) time and O(n²) memory",
                    "correct": True,
                    "feedback": "Right: every token is scored against every token, n² dot "
                    "products of length d, and the n × n weights are stored (per head). "
                    "Doubling the length quadruples the cost.",
                },
                {
                    "answer": "O(n d²) time and O(n d) memory, like an RNN",
                    "correct": False,
                    "feedback": "That is the cost of the projections; the scores compare all "
                    "pairs of positions.",
                },
                {
                    "answer": "O(n log n d) time",
                    "correct": False,
                    "feedback": "Plain attention does no sorting or divide and conquer: it "
                    "scores all n² pairs.",
                },
            ],
        },
        {
            "question": "In a decoder with a causal mask, which keys may the query at "
            "position 3 (counting from 0) attend?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Positions 0, 1, 2 and 3",
                    "correct": True,
                    "feedback": "Right: itself and the past. Its output is then used to "
                    "predict token 4, which it must not see.",
                },
                {
                    "answer": "Positions 0, 1 and 2",
                    "correct": False,
                    "feedback": "The diagonal is allowed: a position reads its own token.",
                },
                {
                    "answer": "Positions 3 and later",
                    "correct": False,
                    "feedback": "That is the upper triangle, the future: exactly what the "
                    "mask hides.",
                },
            ],
        },
        {
            "question": "Multi-head attention with d_model = 512 and 8 heads: how many "
            "features does each head's query have?",
            "type": "numeric",
            "precision": 2,
            "answers": [
                {
                    "type": "value",
                    "value": 64,
                    "correct": True,
                    "feedback": "Right: d_head = 512 / 8 = 64. The heads split d_model, so "
                    "the cost is about that of one head of size 512.",
                },
                {
                    "type": "value",
                    "value": 512,
                    "correct": False,
                    "feedback": "Each head works in its own d_model / num_heads dimensional "
                    "subspace; merge_heads concatenates them back to 512.",
                },
                {
                    "type": "default",
                    "feedback": "split_heads cuts d_model into num_heads equal blocks.",
                },
            ],
        },
        {
            "question": "What distinguishes Bahdanau's attention from Luong's 'dot' and "
            "'general' scores?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Bahdanau scores with a small network, v · tanh(W_q q + W_k k); "
                    "Luong with a (bilinear) product, q · k or q · W k",
                    "correct": True,
                    "feedback": "Right: the additive score has a hidden layer and works for any "
                    "query and key sizes; the multiplicative ones are cheaper, a matrix product.",
                },
                {
                    "answer": "Only Luong's attention uses a softmax",
                    "correct": False,
                    "feedback": "Both normalise the scores with a softmax over the source "
                    "positions.",
                },
                {
                    "answer": "Bahdanau's attention has no parameters",
                    "correct": False,
                    "feedback": "It is the one with the most: W_q, W_k and v. Luong's 'dot' "
                    "has none.",
                },
            ],
        },
        {
            "question": "A query is padding, so the mask hides every key from it. What does "
            "`masked_softmax` give for its row, where `torch.softmax` of -inf scores gives "
            "NaN?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "All zeros, so its output is the zero vector",
                    "correct": True,
                    "feedback": "Right: there is nothing to attend to. softmax would compute "
                    "0 / 0; NaN would then spread into the loss and every gradient.",
                },
                {
                    "answer": "A uniform distribution over the keys",
                    "correct": False,
                    "feedback": "That would let a padding query attend to keys it was "
                    "told to ignore.",
                },
                {
                    "answer": "An error",
                    "correct": False,
                    "feedback": "Padding queries are normal in a batch; their outputs are "
                    "simply ignored later by the loss mask.",
                },
            ],
        },
        {
            "question": "Queries and keys with d_k = 1024 and standard normal entries, scored "
            "without the 1 / sqrt(d_k). What does the gradient that reaches a query look like "
            "across many queries?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Almost nothing for most queries, and a large spike for the few "
                    "whose two best keys nearly tie",
                    "correct": True,
                    "feedback": "Right: the softmax is one-hot on one key, at initialisation a "
                    "random one, and passes back almost nothing; only near-ties let gradient "
                    "through, and then a lot of it. The median is tiny, the mean large: "
                    "saturation, plus heavy-tailed, erratic gradients.",
                },
                {
                    "answer": "The same tiny gradient for every query",
                    "correct": False,
                    "feedback": "The typical (median) gradient is tiny, but not every one: a few "
                    "near-ties get huge gradients, which is why the mean is far larger than "
                    "the median.",
                },
                {
                    "answer": "A larger gradient than with scaling for every query, so "
                    "unscaled attention learns faster",
                    "correct": False,
                    "feedback": "Only the rare near-ties get more; most queries get almost "
                    "nothing, so learning which key should win stalls, interrupted by spikes.",
                },
            ],
        },
        {
            "question": "An online softmax has read one block of scores: running maximum "
            "m = 2, running sum l = sum of exp(s - 2) = 1.5. The next block's largest score "
            "is 3. By what factor must l be multiplied before the new block's terms are "
            "added? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.368,
                    "correct": True,
                    "feedback": "Right: exp(m - m') = exp(2 - 3) = 0.368. Every term exp(s - 2) "
                    "becomes exp(s - 3); the running output is rescaled by the same factor, "
                    "and nothing already read is read again.",
                },
                {
                    "type": "value",
                    "value": 2.72,
                    "correct": False,
                    "feedback": "That is exp(m' - m): the new maximum is larger, so the old "
                    "terms shrink relative to it.",
                },
                {
                    "type": "value",
                    "value": 1,
                    "correct": False,
                    "feedback": "The old terms were exp(s - 2), relative to the old maximum; "
                    "they must be made relative to the new one, 3.",
                },
                {"type": "default", "feedback": "Compute exp(m - m') with m = 2 and m' = 3."},
            ],
        },
    ],
)
