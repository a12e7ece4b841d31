"""Attention from scratch: the scores, kernel regression, masks, scaled dot-product, tiled
and multi-head attention, checked value by value against PyTorch, and every bad input."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lessons import exercises
from lessons.attention import (
    AdditiveScore,
    DotScore,
    GeneralScore,
    MultiHeadAttention,
    ScaledDotScore,
    causal_mask,
    kernel_regression,
    masked_softmax,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
    tiled_attention,
)
from lessons.exercises import quiz
from lessons.figures.attention import attention_gradients, dot_product_variance

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = [torch.float64, torch.float32]


def randn(*shape, seed=0, dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(requires_grad)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------- scores


def test_score_modules_compute_their_formulas():
    torch.manual_seed(0)
    q, k = randn(2, 3, 5, seed=1), randn(2, 4, 5, seed=2)
    expected_dot = torch.einsum("bqd,bkd->bqk", q, k)
    assert max_error(DotScore()(q, k), expected_dot) < 1e-12
    assert max_error(ScaledDotScore()(q, k), expected_dot / math.sqrt(5)) < 1e-12

    general = GeneralScore(5, 6).double()
    k6 = randn(2, 4, 6, seed=3)
    w = general.linear.weight  # (query_dim, key_dim)
    assert max_error(general(q, k6), torch.einsum("bqi,ij,bkj->bqk", q, w, k6)) < 1e-12

    additive = AdditiveScore(5, 6, 7).double()
    for b in range(2):
        for i in range(3):
            for j in range(4):
                hidden = additive.query_proj.weight @ q[b, i] + additive.key_proj.weight @ k6[b, j]
                value = additive.v.weight[0] @ torch.tanh(hidden)
                assert abs(additive(q, k6)[b, i, j].item() - value.item()) < 1e-12


def test_general_score_with_identity_is_the_dot_score():
    general = GeneralScore(4, 4).double()
    with torch.no_grad():
        general.linear.weight.copy_(torch.eye(4))
    q, k = randn(3, 2, 4, seed=1), randn(3, 5, 4, seed=2)
    assert max_error(general(q, k), DotScore()(q, k)) < 1e-12


@pytest.mark.parametrize(
    "score", [DotScore(), ScaledDotScore(), GeneralScore(5, 5), AdditiveScore(5, 5, 3)]
)
def test_score_modules_pass_gradcheck(score):
    score = score.double()
    q = randn(2, 3, 5, seed=1, requires_grad=True)
    k = randn(2, 4, 5, seed=2, requires_grad=True)
    assert torch.autograd.gradcheck(score, (q, k))


@pytest.mark.parametrize("score", [DotScore(), ScaledDotScore()])
def test_dot_scores_name_both_shapes_on_a_size_mismatch(score):
    with pytest.raises(ValueError, match=r"query \(2, 3, 5\), keys \(2, 4, 6\)"):
        score(torch.randn(2, 3, 5), torch.randn(2, 4, 6))


def test_parametrised_scores_check_the_declared_sizes():
    with pytest.raises(ValueError, match=r"expected 6 features \(key_dim\).*keys \(2, 4, 5\)"):
        GeneralScore(5, 6)(torch.randn(2, 3, 5), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"expected 4 features \(query_dim\)"):
        AdditiveScore(4, 5, 3)(torch.randn(2, 3, 5), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="batch size"):
        DotScore()(torch.randn(2, 3, 5), torch.randn(3, 4, 5))
    with pytest.raises(ValueError, match="3 dimensions"):
        DotScore()(torch.randn(3, 5), torch.randn(4, 5))
    with pytest.raises(TypeError, match="floating-point"):
        DotScore()(torch.ones(2, 3, 5, dtype=torch.long), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="hidden_dim"):
        AdditiveScore(4, 5, 0)


# --------------------------------------------------------------------------- masks


def test_masked_softmax_without_mask_is_softmax():
    scores = randn(3, 5)
    assert max_error(masked_softmax(scores), torch.softmax(scores, -1)) < 1e-15
    assert max_error(masked_softmax(scores, dim=0), torch.softmax(scores, 0)) < 1e-15


def test_masked_keys_get_exactly_zero_and_the_rest_sum_to_one():
    scores = randn(2, 3, 5) * 10
    mask = padding_mask([3, 5])  # (2, 1, 5)
    weights = masked_softmax(scores, mask)
    assert (weights[0, :, 3:] == 0).all()
    assert (weights[0, :, :3] > 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, dtype=torch.float64), atol=1e-14)
    # the allowed part equals a softmax over the allowed scores alone
    assert max_error(weights[0, :, :3], torch.softmax(scores[0, :, :3], -1)) < 1e-15


def test_masked_softmax_does_not_overflow_on_large_scores():
    scores = torch.tensor([[1000.0, 999.0, -1000.0]])
    weights = masked_softmax(scores, torch.tensor([[True, True, False]]))
    expected = torch.tensor([[1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0]])
    assert torch.allclose(weights, expected, atol=1e-6)


def test_fully_masked_row_gives_zeros_and_finite_gradients():
    scores = randn(3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False] * 4, [False, False, True, False]])
    weights = masked_softmax(scores, mask)
    assert weights[1].tolist() == [0.0] * 4
    assert weights[2].tolist() == [0.0, 0.0, 1.0, 0.0]
    (weights * randn(3, 4, seed=5)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[1].tolist() == [0.0] * 4
    assert scores.grad[2].abs().max() < 1e-15  # a single allowed key: weight 1 whatever it is
    assert torch.isnan(torch.softmax(scores.masked_fill(~mask, -math.inf), -1)[1]).all()


def test_masked_softmax_passes_gradcheck_with_masked_and_fully_masked_rows():
    scores = randn(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True, True, True, True]])
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask), (scores,))


def test_padding_mask_marks_real_positions():
    mask = padding_mask(torch.tensor([2, 0, 3]), max_len=4)
    assert mask.dtype == torch.bool and mask.shape == (3, 1, 4)
    assert mask[:, 0].tolist() == [
        [True, True, False, False],
        [False, False, False, False],
        [True, True, True, False],
    ]
    assert padding_mask([1, 2]).shape == (2, 1, 2)


def test_causal_mask_is_the_lower_triangle_as_in_pytorch():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True] * 3]
    assert causal_mask(2, 4).tolist() == [[True, False, False, False], [True, True, False, False]]
    q, k, v = randn(1, 3, 4, seed=1), randn(1, 5, 4, seed=2), randn(1, 5, 2, seed=3)
    ours, _ = scaled_dot_product_attention(q, k, v, causal_mask(3, 5))
    assert max_error(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True)) < 1e-12


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: masked_softmax(torch.randn(2, 3), torch.ones(2, 3)), TypeError, "bool"),
        (
            lambda: masked_softmax(torch.randn(2, 3), torch.ones(2, 3, dtype=torch.long)),
            TypeError,
            "torch.int64",
        ),
        (
            lambda: masked_softmax(torch.randn(2, 3), torch.ones(3, 3, dtype=torch.bool)),
            ValueError,
            r"scores \(2, 3\), got \(3, 3\)",
        ),
        (  # broadcasting must not grow the scores
            lambda: masked_softmax(torch.randn(2, 3), torch.ones(4, 2, 3, dtype=torch.bool)),
            ValueError,
            r"got \(4, 2, 3\)",
        ),
        (lambda: masked_softmax(torch.randn(2, 3), [[True] * 3] * 2), TypeError, "list"),
        (lambda: padding_mask([2, 5], max_len=4), ValueError, "max_len=4"),
        (lambda: padding_mask([-1, 2]), ValueError, "lengths"),
        (lambda: padding_mask([[1, 2]]), ValueError, "1-D"),
        (lambda: padding_mask([1.5, 2.0]), ValueError, "ints"),
        (lambda: causal_mask(0), ValueError, "q_len"),
        (lambda: causal_mask(3, 0), ValueError, "k_len"),
    ],
)
def test_bad_mask_arguments_are_explained(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------- sdpa


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", ["none", "bool", "causal"])
def test_scaled_dot_product_attention_matches_pytorch(dtype, mask_kind):
    q = randn(2, 3, 5, 8, seed=1, dtype=dtype)  # (batch, heads, q_len, d_k)
    k = randn(2, 3, 7, 8, seed=2, dtype=dtype)
    v = randn(2, 3, 7, 6, seed=3, dtype=dtype)
    if mask_kind == "none":
        ours, weights = scaled_dot_product_attention(q, k, v)
        theirs = F.scaled_dot_product_attention(q, k, v)
    elif mask_kind == "bool":
        mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(4)) > 0.4
        mask[..., 0] = True  # no fully masked row: PyTorch would give NaN there
        ours, weights = scaled_dot_product_attention(q, k, v, mask)
        theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()
    else:
        ours, weights = scaled_dot_product_attention(q, k, v, causal_mask(5, 7))
        theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert ours.dtype == dtype and ours.shape == (2, 3, 5, 6)
    assert weights.shape == (2, 3, 5, 7)
    assert max_error(ours, theirs) < TOLERANCE[dtype]
    assert max_error(weights.sum(-1), torch.ones(2, 3, 5, dtype=dtype)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_without_weights_the_output_is_the_same(dtype):
    q, k, v = (
        randn(2, 3, 5, 8, seed=1, dtype=dtype),
        randn(2, 3, 7, 8, seed=2, dtype=dtype),
        randn(2, 3, 7, 6, seed=3, dtype=dtype),
    )
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(4)) > 0.4
    mask[0, 0, 2] = False  # a fully masked query: zeros on both paths
    for m in (None, mask, causal_mask(5, 7)):
        with_weights, _ = scaled_dot_product_attention(q, k, v, m)
        output, weights = scaled_dot_product_attention(q, k, v, m, need_weights=False)
        assert weights is None
        assert max_error(output, with_weights) < TOLERANCE[dtype]
    output, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    assert (output[0, :, 2] == 0).all()
    dropped = [
        scaled_dot_product_attention(
            q, k, v, mask, 0.3, torch.Generator().manual_seed(7), need_weights=flag
        )[0]
        for flag in (True, False)
    ]
    assert max_error(*dropped) < TOLERANCE[dtype]


def test_the_path_without_weights_passes_gradcheck():
    q = randn(2, 3, 4, seed=1, requires_grad=True)
    k = randn(2, 5, 4, seed=2, requires_grad=True)
    v = randn(2, 5, 3, seed=3, requires_grad=True)
    mask = padding_mask([5, 3]) & torch.tensor([True, True, False]).view(1, 3, 1)
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, need_weights=False)[0],
        (q, k, v),
    )


def test_causal_attention_output_at_t_ignores_later_positions():
    q, k, v = randn(1, 6, 4, seed=1), randn(1, 6, 4, seed=2), randn(1, 6, 3, seed=3)
    before, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    changed = [t.clone() for t in (q, k, v)]
    for t in changed:
        t[:, 4:] = randn(1, 2, t.shape[-1], seed=9)
    after, _ = scaled_dot_product_attention(*changed, causal_mask(6))
    assert torch.equal(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_fully_masked_query_gets_a_zero_output():
    q, k, v = randn(1, 2, 4, seed=1), randn(1, 3, 4, seed=2), randn(1, 3, 5, seed=3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    assert output[0, 1].tolist() == [0.0] * 5 and weights[0, 1].tolist() == [0.0] * 3


def test_attention_dropout_rescales_the_kept_weights():
    q, k, v = randn(2, 4, 3, seed=1), randn(2, 5, 3, seed=2), torch.eye(5).expand(2, 5, 5)
    g = torch.Generator().manual_seed(0)
    output, weights = scaled_dot_product_attention(q, k, v.double(), dropout_p=0.5, generator=g)
    # with the identity as values the output is the weights after dropout: 0 or 2 x weights
    kept = output != 0
    assert 0 < kept.float().mean() < 1
    assert torch.allclose(output[kept], 2 * weights[kept])
    again, _ = scaled_dot_product_attention(
        q, k, v.double(), dropout_p=0.5, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(output, again)


def test_scaled_dot_product_attention_passes_gradcheck():
    q = randn(2, 3, 4, seed=1, requires_grad=True)
    k = randn(2, 5, 4, seed=2, requires_grad=True)
    v = randn(2, 5, 3, seed=3, requires_grad=True)
    mask = padding_mask([5, 3])
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v)
    )


@pytest.mark.parametrize(
    ("shapes", "mask", "error", "message"),
    [
        (
            [(2, 3, 4), (2, 5, 6), (2, 5, 3)],
            None,
            ValueError,
            r"d_k, got query \(2, 3, 4\), key \(2, 5, 6\)",
        ),
        ([(2, 3, 4), (2, 5, 4), (2, 6, 3)], None, ValueError, r"k_len.*value \(2, 6, 3\)"),
        ([(2, 3, 4), (3, 5, 4), (3, 5, 3)], None, ValueError, "leading dimensions"),
        ([(4,), (5, 4), (5, 3)], None, ValueError, "query"),
        (
            [(2, 3, 4), (2, 5, 4), (2, 5, 3)],
            torch.ones(3, 4, dtype=torch.bool),
            ValueError,
            r"scores \(2, 3, 5\), got \(3, 4\)",
        ),
        ([(2, 3, 4), (2, 5, 4), (2, 5, 3)], torch.zeros(3, 5), TypeError, "float32"),
        ([(2, 3, 4), (2, 5, 4), (2, 5, 3)], torch.ones(3, 5, dtype=torch.int32), TypeError, "int"),
    ],
)
def test_scaled_dot_product_attention_explains_bad_inputs(shapes, mask, error, message):
    q, k, v = (torch.randn(*shape) for shape in shapes)
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(q, k, v, mask)


def test_scaled_dot_product_attention_rejects_mixed_dtypes_and_bad_dropout():
    q, k, v = torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.randn(1, 2, 3)
    with pytest.raises(TypeError, match="one dtype"):
        scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)


# --------------------------------------------------------------------------- kernel regression


def test_kernel_regression_is_the_normalised_gaussian_kernel_written_out():
    keys, values = randn(7, seed=1), randn(7, seed=2)
    queries = torch.tensor([-1.0, 0.2, 3.0], dtype=torch.float64)
    predictions, weights = kernel_regression(queries, keys, values, bandwidth=0.7)
    for i, x in enumerate(queries.tolist()):
        kernel = [math.exp(-((x - k) ** 2) / (2 * 0.7**2)) for k in keys.tolist()]
        expected = sum(w * y for w, y in zip(kernel, values.tolist(), strict=True)) / sum(kernel)
        assert predictions[i].item() == pytest.approx(expected, rel=1e-12)
        assert weights[i].tolist() == pytest.approx([w / sum(kernel) for w in kernel], rel=1e-12)


def test_kernel_regression_goes_from_nearest_neighbour_to_the_mean():
    keys = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
    values = torch.tensor([3.0, -1.0, 5.0, 2.0], dtype=torch.float64)
    queries = torch.tensor([0.9, 3.6], dtype=torch.float64)
    narrow, _ = kernel_regression(queries, keys, values, bandwidth=0.01)
    wide, _ = kernel_regression(queries, keys, values, bandwidth=1e4)
    assert narrow.tolist() == pytest.approx([-1.0, 2.0])  # the values of keys 1 and 4
    assert wide.tolist() == pytest.approx([values.mean().item()] * 2, rel=1e-6)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((torch.zeros(2), torch.zeros(3), torch.zeros(2), 1.0), ValueError, "one value per key"),
        ((torch.zeros(2, 1), torch.zeros(3), torch.zeros(3), 1.0), ValueError, "queries"),
        ((torch.zeros(2), torch.zeros(3), torch.zeros(3), 0.0), ValueError, "bandwidth"),
        ((torch.zeros(2).double(), torch.zeros(3), torch.zeros(3), 1.0), TypeError, "one dtype"),
    ],
)
def test_kernel_regression_explains_bad_inputs(args, error, message):
    with pytest.raises(error, match=message):
        kernel_regression(*args)


# --------------------------------------------------------------------------- tiled attention


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_size", [1, 3, 4, 11, 64])
def test_tiled_attention_matches_pytorch_and_ours_with_every_mask(dtype, block_size):
    q = randn(2, 3, 9, 8, seed=1, dtype=dtype)
    k = randn(2, 3, 11, 8, seed=2, dtype=dtype)
    v = randn(2, 3, 11, 5, seed=3, dtype=dtype)
    causal = causal_mask(9, 11)
    padding = padding_mask([11, 4], 11)[:, None]  # (batch, 1, 1, k_len)
    for mask in (None, causal, padding, padding & causal):
        tiled = tiled_attention(q, k, v, mask, block_size=block_size)
        theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert tiled.shape == (2, 3, 9, 5) and tiled.dtype == dtype
        assert max_error(tiled, theirs) < TOLERANCE[dtype]


def test_tiled_attention_handles_a_query_masked_in_every_block():
    q, k, v = randn(1, 3, 4, seed=1), randn(1, 10, 4, seed=2), randn(1, 10, 2, seed=3)
    mask = torch.rand(1, 3, 10, generator=torch.Generator().manual_seed(5)) > 0.5
    mask[0, 1] = False  # the second query may attend nothing
    mask[0, 2, :4] = False  # the third nothing in its first block
    mask[0, 2, 4] = True
    tiled = tiled_attention(q, k, v, mask, block_size=4)
    ours, _ = scaled_dot_product_attention(q, k, v, mask)
    assert tiled[0, 1].tolist() == [0.0, 0.0]
    assert max_error(tiled, ours) < 1e-12


def test_tiled_attention_survives_scores_that_overflow_a_naive_exp():
    q, k, v = 100 * randn(1, 4, 8, seed=1), 100 * randn(1, 9, 8, seed=2), randn(1, 9, 3, seed=3)
    tiled = tiled_attention(q, k, v, block_size=2)
    assert torch.isfinite(tiled).all()
    assert max_error(tiled, F.scaled_dot_product_attention(q, k, v)) < 1e-10


def test_tiled_attention_passes_gradcheck():
    q = randn(2, 3, 4, seed=1, requires_grad=True)
    k = randn(2, 5, 4, seed=2, requires_grad=True)
    v = randn(2, 5, 3, seed=3, requires_grad=True)
    mask = padding_mask([5, 3])
    assert torch.autograd.gradcheck(
        lambda q, k, v: tiled_attention(q, k, v, mask, block_size=2), (q, k, v)
    )


def test_tiled_attention_never_scores_more_than_one_block_at_a_time():
    q, k, v = randn(2, 6, 4, seed=1), randn(2, 10, 4, seed=2), randn(2, 10, 3, seed=3)
    widths = []

    class Spy(torch.Tensor):  # records the shape of every matrix product's result
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            result = super().__torch_function__(func, types, args, kwargs or {})
            if getattr(func, "__name__", "") == "matmul":
                widths.append(result.shape[-1])
            return result

    tiled_attention(q.as_subclass(Spy), k.as_subclass(Spy), v.as_subclass(Spy), block_size=4)
    # scores (..., 6, 4), (..., 6, 4), (..., 6, 2) and outputs (..., 6, 3) for each block
    assert sorted(widths) == [2, 3, 3, 3, 4, 4]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: tiled_attention(*(torch.randn(2, 3, 4),) * 3, block_size=0), ValueError, "block"),
        (
            lambda: tiled_attention(
                torch.randn(2, 3, 4), torch.randn(2, 5, 6), torch.randn(2, 5, 3)
            ),
            ValueError,
            "query and key: expected the same feature size d_k",
        ),
        (
            lambda: tiled_attention(
                torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 3)
            ),
            ValueError,
            "leading dimensions",
        ),
        (
            lambda: tiled_attention(*(torch.randn(2, 3, 4),) * 2, torch.randn(2, 3, 4).double()),
            TypeError,
            "one dtype",
        ),
        (
            lambda: tiled_attention(*(torch.randn(2, 3, 4),) * 3, torch.ones(4, 3).bool()),
            ValueError,
            "broadcasts to the scores",
        ),
    ],
)
def test_tiled_attention_explains_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------- multi-head


def torch_mha(d_model=16, heads=4, batch_first=True, dtype=torch.float64, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = nn.MultiheadAttention(d_model, heads, batch_first=batch_first, **kwargs)
    with torch.no_grad():  # non-zero biases, so that copying them is tested
        for name, p in module.named_parameters():
            if "bias" in name:
                p.normal_()
    return module.to(dtype).eval()


def test_split_and_merge_heads_are_inverse_and_cut_consecutive_blocks():
    x = torch.arange(2 * 5 * 12.0).reshape(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[1, 2, 3], x[1, 3, 8:12])
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match=r"divisible by num_heads=3, got \(2, 5, 10\)"):
        split_heads(torch.zeros(2, 5, 10), 3)
    with pytest.raises(ValueError, match=r"4 dimensions \(batch, heads, seq, d_head\), got "):
        merge_heads(torch.zeros(2, 4, 5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "key_padding", "attn", "both"])
def test_multi_head_attention_matches_pytorch(dtype, batch_first, masks):
    module = torch_mha(batch_first=batch_first, dtype=dtype)
    ours = MultiHeadAttention.from_torch(module).eval()
    batch, q_len, k_len = 3, 5, 6
    query = randn(batch, q_len, 16, seed=1, dtype=dtype)
    key = randn(batch, k_len, 16, seed=2, dtype=dtype)
    value = randn(batch, k_len, 16, seed=3, dtype=dtype)
    key_padding_mask = attn_mask = None  # PyTorch's convention: True = may NOT attend
    if masks in ("key_padding", "both"):
        key_padding_mask = ~padding_mask([6, 4, 2])[:, 0]
    if masks in ("attn", "both"):
        attn_mask = ~causal_mask(q_len, k_len)
    ours_mask = None
    if key_padding_mask is not None or attn_mask is not None:
        ours_mask = torch.ones(batch, q_len, k_len, dtype=torch.bool)
        if key_padding_mask is not None:
            ours_mask &= ~key_padding_mask[:, None, :]
        if attn_mask is not None:
            ours_mask &= ~attn_mask

    def theirs(average: bool) -> tuple[torch.Tensor, torch.Tensor]:
        args = (
            (query, key, value) if batch_first else (t.transpose(0, 1) for t in (query, key, value))
        )
        out, weights = module(
            *args,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            average_attn_weights=average,
        )
        return (out if batch_first else out.transpose(0, 1)), weights

    output, weights = ours(query, key, value, mask=ours_mask)
    expected, expected_average = theirs(True)
    _, expected_per_head = theirs(False)
    assert output.shape == (batch, q_len, 16) and weights.shape == (batch, 4, q_len, k_len)
    assert max_error(output, expected) < TOLERANCE[dtype]
    assert max_error(weights.mean(1), expected_average) < TOLERANCE[dtype]
    assert max_error(weights, expected_per_head) < TOLERANCE[dtype]


def test_multi_head_attention_without_weights_matches_pytorchs_fast_path():
    module = torch_mha(dtype=torch.float32)
    ours = MultiHeadAttention.from_torch(module).eval()
    x = randn(2, 7, 16, seed=1, dtype=torch.float32)
    with torch.no_grad():
        expected, none = module(x, x, x, need_weights=False)
        output, weights = ours(x, x, x, need_weights=False)
    assert none is None and weights is None
    assert max_error(output, expected) < 1e-5


@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_copies_separate_projections_when_kdim_and_vdim_differ(bias):
    module = torch_mha(kdim=5, vdim=3, bias=bias)
    assert not module._qkv_same_embed_dim
    ours = MultiHeadAttention.from_torch(module)
    assert (ours.kdim, ours.vdim, ours.k_proj.bias is None) == (5, 3, not bias)
    query, key, value = randn(2, 4, 16, seed=1), randn(2, 6, 5, seed=2), randn(2, 6, 3, seed=3)
    mask = padding_mask([6, 3])
    expected, expected_weights = module(query, key, value, key_padding_mask=~mask[:, 0])
    output, weights = ours(query, key, value, mask=mask)
    assert max_error(output, expected) < 1e-10
    assert max_error(weights.mean(1), expected_weights) < 1e-10


def test_from_torch_copies_rather_than_shares_and_keeps_the_mode():
    module = torch_mha().train()
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    ours = MultiHeadAttention.from_torch(module)
    assert ours.training and ours.q_proj.weight.dtype == torch.float64
    with torch.no_grad():
        for p in ours.parameters():
            p.zero_()
    # every parameter of the original is unchanged, not only some rows of in_proj_weight
    for name, p in module.named_parameters():
        assert torch.equal(p, before[name]), name
    # the mode is copied: a new module starts in training mode, so test eval as well
    assert not MultiHeadAttention.from_torch(torch_mha()).training


def test_from_torch_rejects_what_it_cannot_copy():
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True))
    with pytest.raises(TypeError, match="MultiheadAttention, got Linear"):
        MultiHeadAttention.from_torch(nn.Linear(8, 8))


def test_multi_head_masks_per_head_and_shared():
    mha = MultiHeadAttention(8, 2).double().eval()
    x = randn(2, 4, 8, seed=1)
    per_head = torch.ones(2, 2, 4, 4, dtype=torch.bool)
    per_head[:, 1] = causal_mask(4)
    _, weights = mha(x, x, x, mask=per_head)
    future = ~causal_mask(4)
    assert (weights[:, 1, future] == 0).all() and (weights[:, 0, future] > 0).all()
    _, shared = mha(x, x, x, mask=causal_mask(4))
    assert torch.allclose(shared[:, 1], weights[:, 1])


def test_multi_head_attention_passes_gradcheck():
    mha = MultiHeadAttention(6, 2).double()
    x = randn(2, 3, 6, seed=1, requires_grad=True)
    mask = padding_mask([3, 2])
    assert torch.autograd.gradcheck(lambda x: mha(x, x, x, mask=mask)[0], (x,))
    output, _ = mha(x, x, x, mask=mask)
    output.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


def test_multi_head_dropout_only_in_training():
    mha = MultiHeadAttention(8, 2, dropout=0.5).double()
    x = randn(1, 5, 8, seed=1)
    torch.manual_seed(0)
    train_a, _ = mha(x, x, x)
    train_b, _ = mha(x, x, x)
    assert not torch.allclose(train_a, train_b)
    mha.eval()
    assert torch.equal(mha(x, x, x)[0], mha(x, x, x)[0])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MultiHeadAttention(10, 3), ValueError, r"d_model \(10\).*num_heads \(3\)"),
        (lambda: MultiHeadAttention(8, 0), ValueError, "num_heads"),
        (lambda: MultiHeadAttention(8, 2, dropout=1.5), ValueError, "dropout"),
        (lambda: MultiHeadAttention(8, 2, kdim=0), ValueError, "kdim"),
    ],
)
def test_multi_head_attention_rejects_bad_sizes(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("shapes", "mask", "error", "message"),
    [
        (
            [(2, 3, 8), (2, 4, 6), (2, 4, 8)],
            None,
            ValueError,
            r"key: expected 8 features.*\(2, 4, 6\)",
        ),
        ([(2, 3, 8), (2, 4, 8), (2, 5, 8)], None, ValueError, "same length"),
        ([(2, 3, 8), (3, 4, 8), (3, 4, 8)], None, ValueError, "batch size"),
        ([(3, 8), (4, 8), (4, 8)], None, ValueError, "3 dimensions"),
        (
            [(2, 3, 8), (2, 4, 8), (2, 4, 8)],
            torch.ones(3, 3, dtype=torch.bool),
            ValueError,
            r"scores \(2, 2, 3, 4\), got \(3, 3\)",
        ),
        (
            [(2, 3, 8), (2, 4, 8), (2, 4, 8)],
            torch.ones(2, 3, 4),
            TypeError,
            "bool tensor",
        ),
    ],
)
def test_multi_head_attention_explains_bad_inputs(shapes, mask, error, message):
    mha = MultiHeadAttention(8, 2)
    q, k, v = (torch.randn(*shape) for shape in shapes)
    with pytest.raises(error, match=message):
        mha(q, k, v, mask=mask)


# --------------------------------------------------------------------------- exercises, quiz

ATTENTION_EXERCISES = [i for i, e in exercises.registry().items() if e.chapter == "attention"]


def test_the_chapter_declares_its_exercises():
    assert set(ATTENTION_EXERCISES) >= {
        "attention.masked_softmax",
        "attention.additive_score",
        "attention.scaled_dot_product_attention",
        "attention.split_heads",
        "attention.merge_heads",
        "attention.causal_mask",
    }


@pytest.mark.parametrize("exercise_id", ATTENTION_EXERCISES)
def test_reference_passes_and_every_wrong_answer_fails(exercise_id):
    exercise = exercises.get(exercise_id)
    assert exercises.evaluate(exercise, exercise.solution).passed
    assert len(exercise.wrong_answers) >= 2
    for wrong in exercise.wrong_answers:
        assert not exercises.evaluate(exercise, wrong).passed, wrong.__name__


def test_softmax_with_inf_fill_gets_the_fully_masked_row_hint():
    exercise = exercises.get("attention.masked_softmax")
    naive = exercise.wrong_answers[2]
    result = exercises.evaluate(exercise, naive)
    assert [c.name for c in result.failed_cases] == ["the second row fully masked"]
    assert "fully masked row" in result.failed_cases[0].hint


def test_quiz_has_numeric_and_multiple_choice_questions():
    questions = quiz.questions("attention")
    kinds = [q["type"] for q in questions]
    assert len(questions) >= 6 and "numeric" in kinds and "multiple_choice" in kinds
    variance = next(q for q in questions if "variance of the score" in q["question"])
    correct = next(a for a in variance["answers"] if a.get("correct"))
    assert correct["value"] == 64
    assert abs(dot_product_variance(64) - 64) < 0.1 * 64  # what the figure measures


def test_quiz_answers_agree_with_the_measurements_and_the_online_softmax():
    questions = quiz.questions("attention")
    gradient = next(q for q in questions if "gradient that reaches a query" in q["question"])
    correct = next(a for a in gradient["answers"] if a["correct"])
    assert "Almost nothing for most queries" in correct["answer"]
    unscaled = attention_gradients(1024, exponent=0.0)  # what section 4 measures
    assert unscaled.query.median() < 1e-2 and unscaled.query.mean() > 100 * unscaled.query.median()
    online = next(q for q in questions if "online softmax" in q["question"])
    correct = next(a for a in online["answers"] if a.get("correct"))
    # the running sum after rescaling equals the sum taken from scratch with the new maximum
    seen = torch.tensor([2.0, 1.2, 0.7], dtype=torch.float64)
    running = torch.exp(seen - 2).sum()
    assert (running * correct["value"]).item() == pytest.approx(
        torch.exp(seen - 3).sum().item(), rel=1e-3
    )
    assert not any("(2, 0)" in q["question"] for q in questions)  # the practice page's question
