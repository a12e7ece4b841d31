"""Exercises and quiz of chapter 4, the Transformer.

`sinusoidal_encoding`, `decoder_mask`, `label_smoothed_cross_entropy`,
`warmup_schedule` and `beam_step` are the taught functions of `lessons.transformer`
themselves. One solution is written here, as a plain function of tensors that a learner
can write without building a model, and tests/test_exercise_solutions.py proves it equal
to the taught module on every case: `encoder_layer`, the residual connections and norms
of one `EncoderLayer` around its sublayers (`encoder_sublayers` hands them out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.func import functional_call
from torch.nn import functional as F

from lessons.attention import causal_mask, padding_mask
from lessons.core import checks
from lessons.exercises import quiz
from lessons.exercises.framework import Case, Exercise, Hint, register
from lessons.transformer import (
    EncoderLayer,
    beam_step,
    decoder_mask,
    label_smoothed_cross_entropy,
    sinusoidal_encoding,
    warmup_schedule,
)

__all__ = ["EncoderSublayers", "encoder_layer", "encoder_sublayers"]


def _close(got: object, expected: torch.Tensor) -> bool:
    """Whether a learner's result ``got`` matches ``expected`` (for hint predicates)."""
    return (
        isinstance(got, torch.Tensor)
        and got.shape == expected.shape
        and torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-5)
    )


# --------------------------------------------------------------------------------------
# Exercise: transformer.sinusoidal_encoding
# --------------------------------------------------------------------------------------


def _sinusoidal_cases() -> list[Case]:
    return [
        Case("one position: position 0 is 0, 1, 0, 1, ...", (1, 8)),
        Case("d_model = 2: a single sine and cosine pair", (5, 2)),
        Case("6 positions, d_model = 8", (6, 8)),
        Case("50 positions, d_model = 16", (50, 16)),
        Case("the paper's d_model = 512, 40 positions", (40, 512)),
    ]


def _sinusoidal(length: int, d_model: int, base: float, pair_exponent: bool) -> torch.Tensor:
    """The angles ``pos / base^(2i / d_model)`` (or ``i / d_model`` without
    ``pair_exponent``), ``(length, d_model / 2)``, in float64: the wrong answers' start."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    i = torch.arange(d_model // 2, dtype=torch.float64)
    exponent = (2 * i if pair_exponent else i) / d_model
    return position / base**exponent


def _interleave(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    return torch.stack([even, odd], dim=-1).flatten(-2).float()


def _sinusoidal_swapped(length, d_model):
    angle = _sinusoidal(length, d_model, 10000.0, pair_exponent=True)
    return _interleave(torch.cos(angle), torch.sin(angle))


def _sinusoidal_exponent_i(length, d_model):
    angle = _sinusoidal(length, d_model, 10000.0, pair_exponent=False)
    return _interleave(torch.sin(angle), torch.cos(angle))


def _sinusoidal_halves(length, d_model):
    angle = _sinusoidal(length, d_model, 10000.0, pair_exponent=True)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).float()


def _sinusoidal_base_1000(length, d_model):
    angle = _sinusoidal(length, d_model, 1000.0, pair_exponent=True)
    return _interleave(torch.sin(angle), torch.cos(angle))


def _sinusoidal_float64(length, d_model):
    angle = _sinusoidal(length, d_model, 10000.0, pair_exponent=True)
    return _interleave(torch.sin(angle), torch.cos(angle)).double()


register(
    Exercise(
        id="transformer.sinusoidal_encoding",
        chapter="transformer",
        prompt=(
            "Write `sinusoidal_encoding(length, d_model)`: the paper's positional encodings "
            "for positions `0 … length - 1`, a float32 tensor `(length, d_model)` (`d_model` "
            "is even). Column `2i` holds `sin(pos / 10000^(2i / d_model))` and column "
            "`2i + 1` holds `cos` of the same angle: pair `i` turns at its own frequency, "
            "from once every `2π` positions (`i = 0`) to nearly ten thousand times slower."
        ),
        signature="def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor",
        solution=sinusoidal_encoding,
        cases=_sinusoidal_cases,
        hints=(
            Hint(
                "Build the angles as a table: positions as a column `(length, 1)` times the "
                "frequencies as a row `(d_model / 2,)`. `torch.arange(0, d_model, 2)` gives "
                "the `2i` of each pair, so the frequencies are `10000 ** (-two_i / d_model)`."
            ),
            Hint(
                "Sines and cosines alternate: `encoding[:, 0::2] = torch.sin(angle)` and "
                "`encoding[:, 1::2] = torch.cos(angle)`. Position 0 must read 0, 1, 0, 1, …: "
                "sin 0 = 0 in the even columns, cos 0 = 1 in the odd ones.",
                fits=lambda a: a.problem == "values" and not _close(a.got[0], a.expected[0]),
            ),
            Hint(
                "Position 0 right, the rest wrong? Then the frequencies are. Check the slowest "
                "pair, the "
                "last two columns: its angle is `pos / 10000^((d_model - 2) / d_model)`, "
                "nearly `pos / 10000`. The exponent uses `2i`, not the pair number `i`, and "
                "the base is 10000.",
                fits=lambda a: a.problem == "values",
            ),
            Hint(
                "Return float32, the dtype of the embeddings the encodings are added to: "
                "`.float()` at the end if you computed in float64.",
                fits=lambda a: a.problem == "dtype",
            ),
        ),
        wrong_answers=(
            _sinusoidal_swapped,
            _sinusoidal_exponent_i,
            _sinusoidal_halves,
            _sinusoidal_base_1000,
            _sinusoidal_float64,
        ),
        # float32 angles of positions up to 50 are off by a few 1e-6: a correct answer in
        # float32 passes; every mistake above is off by more than 0.01.
        rtol=1e-5,
        atol=1e-5,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: transformer.decoder_mask
# --------------------------------------------------------------------------------------


def _decoder_mask_cases() -> list[Case]:
    left_padded = torch.tensor([[False, False, True, True], [True, True, True, True]])
    return [
        Case("no padding, 3 positions", (torch.ones(1, 3, dtype=torch.bool),)),
        Case("right padding: lengths 4 and 2", (padding_mask([4, 2])[:, 0],)),
        Case("left padding (as for batched generation)", (left_padded,)),
        Case("one position", (torch.ones(2, 1, dtype=torch.bool),)),
        Case("three lengths, 1, 5 and 3", (padding_mask([1, 5, 3])[:, 0],)),
        Case(
            "a row of padding only",
            (torch.tensor([[True, True, False], [False, False, False]]),),
        ),
    ]


def _decoder_mask_causal_only(real):
    tgt_len = real.shape[1]
    return causal_mask(tgt_len).expand(real.shape[0], 1, tgt_len, tgt_len)


def _decoder_mask_padded_queries(real):
    return causal_mask(real.shape[1]) & real[:, None, :, None]


def _decoder_mask_upper_triangle(real):
    tgt_len = real.shape[1]
    future = torch.ones(tgt_len, tgt_len, dtype=torch.bool).triu()
    return future & real[:, None, None, :]


def _decoder_mask_torch_convention(real):
    return ~decoder_mask(real)


def _decoder_mask_no_head_dimension(real):
    return causal_mask(real.shape[1]) & real[:, None, :]


register(
    Exercise(
        id="transformer.decoder_mask",
        chapter="transformer",
        prompt=(
            "Write `decoder_mask(real)`: the mask of a decoder's self-attention over a "
            "batch of padded targets. `real` is bool `(batch, tgt_len)`, True at real tokens "
            "and False at padding (left or right). Return a bool tensor `(batch, 1, "
            "tgt_len, tgt_len)`, True where query `i` may attend key `j` (chapter 3's "
            "convention): when `j` is not in the future of `i` and `j` is a real token. The "
            "1 broadcasts over the heads. `causal_mask` and `padding_mask` of "
            "`lessons.attention` are yours to use. (With right padding the causal part "
            "alone already hides the padding from every real token; with left padding it "
            "does not.)"
        ),
        signature="def decoder_mask(real: torch.Tensor) -> torch.Tensor",
        solution=decoder_mask,
        cases=_decoder_mask_cases,
        hints=(
            Hint(
                "Two conditions, both needed: `causal_mask(tgt_len)` `(tgt_len, tgt_len)` "
                "for the future, and `real` for the padding. Combine them with `&`, which "
                "broadcasts once the dimensions line up.",
            ),
            Hint(
                "The shape is `(batch, 1, tgt_len, tgt_len)`: batch, heads (1, shared by "
                "all), queries, keys. Index `real[:, None, None, :]` to put its positions "
                "on the keys' axis.",
                fits=lambda a: a.problem in ("shape", "type", "exception"),
            ),
            Hint(
                "Padding hides *keys*: no query may read a padded position. `real` goes on "
                "the last axis (keys), not on the queries' axis; and the causal part is the "
                "lower triangle with its diagonal, `j <= i`.",
                fits=lambda a: a.problem == "values" and bool((a.got != ~a.expected).any()),
            ),
            Hint(
                "Here a mask is bool and True means *may attend*. PyTorch's "
                "`nn.MultiheadAttention` and `nn.Transformer` read a bool mask the other way "
                "round (True = blocked), and some code adds float masks of 0 and -inf to the "
                "scores; neither is this book's convention.",
                fits=lambda a: (
                    a.problem == "dtype"
                    or (a.problem == "values" and bool((a.got == ~a.expected).all()))
                ),
            ),
        ),
        wrong_answers=(
            _decoder_mask_causal_only,
            _decoder_mask_padded_queries,
            _decoder_mask_upper_triangle,
            _decoder_mask_torch_convention,
            _decoder_mask_no_head_dimension,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: transformer.encoder_layer
# --------------------------------------------------------------------------------------


#: The names of an `EncoderLayer`'s weights, as in its ``state_dict``.
_ENCODER_PARAMS = (
    *(
        f"self_attn.{p}.{w}"
        for p in ("q_proj", "k_proj", "v_proj", "out_proj")
        for w in ("weight", "bias")
    ),
    *(f"feed_forward.{p}.{w}" for p in ("linear1", "linear2") for w in ("weight", "bias")),
    *(f"{p}.{w}" for p in ("norm1", "norm2") for w in ("weight", "bias")),
)


class EncoderSublayers(NamedTuple):
    """The four parts of one encoder layer, as functions of ``(batch, seq, d_model)``."""

    #: ``self_attn(h, mask=None)``: multi-head self-attention of ``h`` (mask: True = may
    #: attend, ``(seq, seq)`` or ``(batch, 1, seq)``).
    self_attn: Callable[..., torch.Tensor]
    #: ``feed_forward(h)``: the position-wise feed-forward network.
    feed_forward: Callable[[torch.Tensor], torch.Tensor]
    #: ``norm1(h)``, ``norm2(h)``: the two LayerNorms.
    norm1: Callable[[torch.Tensor], torch.Tensor]
    norm2: Callable[[torch.Tensor], torch.Tensor]


def encoder_sublayers(params: dict[str, torch.Tensor], nhead: int) -> EncoderSublayers:
    """The sublayers of an `EncoderLayer` whose weights are ``params`` (its ``state_dict``):
    the taught modules themselves, run with these weights; dropout is off.

    Used in: notebooks/04_transformer.ipynb, exercises (for `encoder_layer`).
    """
    checks.positive_int("nhead", nhead)
    names = set(_ENCODER_PARAMS)
    if not isinstance(params, dict) or set(params) != names:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"params: expected the state_dict of an EncoderLayer, a dict with keys "
            f"{sorted(names)}, got {got}"
        )
    d_model = params["norm1.weight"].shape[0]
    dim_feedforward = params["feed_forward.linear1.weight"].shape[0]
    with torch.device("meta"):  # the modules' shapes only; their weights come from params
        layer = EncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0).eval()

    def part(name: str) -> Callable[..., torch.Tensor]:
        """The module ``layer.<name>``, run with the weights of ``params`` named after it."""
        prefix = f"{name}."
        weights = {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}

        def run(*args, **kwargs):
            return functional_call(getattr(layer, name), weights, args, kwargs)

        return run

    attention = part("self_attn")
    return EncoderSublayers(
        self_attn=lambda h, mask=None: attention(h, h, h, mask, need_weights=False)[0],
        feed_forward=part("feed_forward"),
        norm1=part("norm1"),
        norm2=part("norm2"),
    )


def encoder_layer(
    x: torch.Tensor,
    params: dict[str, torch.Tensor],
    nhead: int,
    mask: torch.Tensor | None = None,
    norm_first: bool = False,
) -> torch.Tensor:
    """One encoder layer, post-norm (the paper) or pre-norm (``norm_first``), around the
    sublayers of `encoder_sublayers`: ``(batch, seq, d_model) -> (batch, seq, d_model)``."""
    sub = encoder_sublayers(params, nhead)
    if norm_first:
        x = x + sub.self_attn(sub.norm1(x), mask)
        return x + sub.feed_forward(sub.norm2(x))
    x = sub.norm1(x + sub.self_attn(x, mask))
    return sub.norm2(x + sub.feed_forward(x))


def _encoder_params(g: torch.Generator, d_model: int, d_ff: int) -> dict[str, torch.Tensor]:
    """Random weights for an `EncoderLayer`, by its ``state_dict`` names: matrices of
    scale ``1 / sqrt(fan_in)``, small biases, norm gains near 1."""

    def matrix(rows: int, columns: int) -> torch.Tensor:
        return torch.randn(rows, columns, generator=g) / math.sqrt(columns)

    def vector(size: int, mean: float = 0.0) -> torch.Tensor:
        return mean + 0.1 * torch.randn(size, generator=g)

    params = {}
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        params[f"self_attn.{name}.weight"] = matrix(d_model, d_model)
        params[f"self_attn.{name}.bias"] = vector(d_model)
    params["feed_forward.linear1.weight"] = matrix(d_ff, d_model)
    params["feed_forward.linear1.bias"] = vector(d_ff)
    params["feed_forward.linear2.weight"] = matrix(d_model, d_ff)
    params["feed_forward.linear2.bias"] = vector(d_model)
    for name in ("norm1", "norm2"):
        params[f"{name}.weight"] = vector(d_model, mean=1.0)
        params[f"{name}.bias"] = vector(d_model)
    return params


def _encoder_layer_cases() -> list[Case]:
    g = torch.Generator().manual_seed(40)

    def case(batch: int, seq: int, d_model: int, nhead: int, d_ff: int) -> tuple:
        # inputs far from normalised, so that a missing norm or residual shows
        x = 2.0 * torch.randn(batch, seq, d_model, generator=g) + 0.5
        return x, _encoder_params(g, d_model, d_ff), nhead

    return [
        Case("post-norm: batch 2, 4 positions, d_model 8, 2 heads", case(2, 4, 8, 2, 16)),
        Case(
            "post-norm, padding: lengths 3 and 5",
            case(2, 5, 8, 2, 16),
            {"mask": padding_mask([3, 5])},
        ),
        Case("post-norm, one position, one head", case(1, 1, 6, 1, 12)),
        Case("pre-norm (norm_first=True)", case(2, 4, 8, 2, 16), {"norm_first": True}),
        Case(
            "pre-norm with a causal mask, 4 heads",
            case(1, 5, 12, 4, 24),
            {"mask": causal_mask(5), "norm_first": True},
        ),
    ]


def _encoder_layer_always_pre_norm(x, params, nhead, mask=None, norm_first=False):
    return encoder_layer(x, params, nhead, mask, norm_first=True)


def _encoder_layer_always_post_norm(x, params, nhead, mask=None, norm_first=False):
    return encoder_layer(x, params, nhead, mask, norm_first=False)


def _encoder_layer_no_residual(x, params, nhead, mask=None, norm_first=False):
    sub = encoder_sublayers(params, nhead)
    if norm_first:
        x = sub.self_attn(sub.norm1(x), mask)
        return sub.feed_forward(sub.norm2(x))
    x = sub.norm1(sub.self_attn(x, mask))
    return sub.norm2(sub.feed_forward(x))


def _encoder_layer_one_residual(x, params, nhead, mask=None, norm_first=False):
    sub = encoder_sublayers(params, nhead)
    if norm_first:
        return x + sub.feed_forward(sub.norm2(sub.self_attn(sub.norm1(x), mask)))
    return sub.norm2(x + sub.feed_forward(sub.norm1(sub.self_attn(x, mask))))


register(
    Exercise(
        id="transformer.encoder_layer",
        chapter="transformer",
        prompt=(
            "Write `encoder_layer(x, params, nhead, mask=None, norm_first=False)`, one "
            "encoder layer around its two sublayers. `sub = encoder_sublayers(params, nhead)` "
            "(from `lessons.exercises.transformer`) hands them to you: `sub.self_attn(h, "
            "mask)`, `sub.feed_forward(h)` and the LayerNorms `sub.norm1(h)` and "
            "`sub.norm2(h)`. Each sublayer sits in a residual connection. Post-norm (the "
            "paper, `norm_first=False`) normalises after each residual sum; pre-norm "
            "(`norm_first=True`) normalises each sublayer's input and leaves the residual "
            "stream as it is. `x` and the result are `(batch, seq, d_model)`."
        ),
        signature=(
            "def encoder_layer(x, params, nhead, mask=None, norm_first=False) -> torch.Tensor"
        ),
        solution=encoder_layer,
        cases=_encoder_layer_cases,
        hints=(
            Hint(
                "Each sublayer adds to what came in: `x + sublayer(...)`, once around the "
                "attention and once around the feed-forward network, one after the other. "
                "Without the residual a layer must re-create its input to keep it."
            ),
            Hint(
                "Post-norm, as in the paper: `x = norm1(x + self_attn(x, mask))`, then "
                "`norm2(x + feed_forward(x))`. The norm comes after the sum.",
                fits=lambda a: a.problem == "values" and not a.case.kwargs.get("norm_first"),
            ),
            Hint(
                "Pre-norm (`norm_first=True`), as in GPT-2: `x = x + self_attn(norm1(x), "
                "mask)`, then `x + feed_forward(norm2(x))`. The norm comes before the "
                "sublayer; the sum is not normalised.",
                fits=lambda a: a.problem == "values" and a.case.kwargs.get("norm_first"),
            ),
        ),
        wrong_answers=(
            _encoder_layer_always_pre_norm,
            _encoder_layer_always_post_norm,
            _encoder_layer_no_residual,
            _encoder_layer_one_residual,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: transformer.label_smoothed_cross_entropy
# --------------------------------------------------------------------------------------


def _label_smoothing_cases() -> list[Case]:
    g = torch.Generator().manual_seed(41)
    padded_targets = torch.tensor([[3, 1, 4, 0, 0], [2, 5, 0, 0, 0]])
    banned = torch.randn(4, 5, generator=g)
    banned[:, 2] = -math.inf  # a class the model rules out, and no target is 2
    pytorch_padding = torch.tensor([1, -100, 3, -100, 0, 4])
    return [
        Case(
            "ε = 0.1, 4 positions, 5 classes",
            (torch.randn(4, 5, generator=g), torch.tensor([0, 3, 1, 4]), 0.1, None),
        ),
        Case(
            "ε = 0: the ordinary cross-entropy",
            (torch.randn(3, 6, generator=g), torch.tensor([5, 0, 2]), 0.0, None),
        ),
        Case(
            "a batch (2, 5) of targets, padding id 0 ignored",
            (torch.randn(2, 5, 6, generator=g), padded_targets, 0.1, 0),
        ),
        Case(
            "ignore_index=-100, as in PyTorch",
            (torch.randn(6, 5, generator=g), pytorch_padding, 0.2, -100),
        ),
        Case(
            "ε = 0 and a -inf logit (class 2 ruled out)",
            (banned, torch.tensor([0, 1, 3, 4]), 0.0, None),
        ),
        Case(
            "large logits, in the hundreds",
            (300 * torch.randn(3, 4, generator=g), torch.tensor([1, 2, 0]), 0.1, None),
        ),
    ]


def _smoothed_terms(logits, targets, epsilon, ignore_index):
    """``(log p, q)`` for the kept positions, ``(n, K)`` each, with ε / K smoothing."""
    keep = torch.ones_like(targets, dtype=torch.bool)
    if ignore_index is not None:
        keep = targets != ignore_index
    log_p = F.log_softmax(logits[keep], dim=-1)
    classes = logits.shape[-1]
    q = torch.full_like(log_p, epsilon / classes)
    q.scatter_(1, targets[keep][:, None], 1 - epsilon + epsilon / classes)
    return log_p, q


def _label_smoothing_other_classes(logits, targets, epsilon=0.1, ignore_index=None):
    keep = torch.ones_like(targets, dtype=torch.bool)
    if ignore_index is not None:
        keep = targets != ignore_index
    log_p = F.log_softmax(logits[keep], dim=-1)
    q = torch.full_like(log_p, epsilon / (logits.shape[-1] - 1))
    q.scatter_(1, targets[keep][:, None], 1 - epsilon)
    return -(q * log_p).sum(-1).mean()


def _label_smoothing_no_ignore(logits, targets, epsilon=0.1, ignore_index=None):
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), label_smoothing=epsilon
    )


def _label_smoothing_mean_over_all(logits, targets, epsilon=0.1, ignore_index=None):
    log_p, q = _smoothed_terms(logits, targets, epsilon, ignore_index)
    return -(q * log_p).sum() / targets.numel()


def _label_smoothing_sum(logits, targets, epsilon=0.1, ignore_index=None):
    log_p, q = _smoothed_terms(logits, targets, epsilon, ignore_index)
    return -(q * log_p).sum()


def _label_smoothing_zero_log_zero(logits, targets, epsilon=0.1, ignore_index=None):
    log_p, q = _smoothed_terms(logits, targets, epsilon, ignore_index)
    return -(q * log_p).sum(-1).mean()


def _padding_mistake(attempt) -> bool:
    """Whether the answer counts padding: in the loss, or in the number averaged over."""
    args = attempt.case.args
    return args[3] is not None and any(
        _close(attempt.got, mistake(*args))
        for mistake in (_label_smoothing_no_ignore, _label_smoothing_mean_over_all)
    )


register(
    Exercise(
        id="transformer.label_smoothed_cross_entropy",
        chapter="transformer",
        prompt=(
            "Write `label_smoothed_cross_entropy(logits, targets, epsilon, ignore_index)`: "
            "the cross-entropy of the predictions `p = softmax(logits)` against the smoothed "
            "target `q = (1 - ε) · one_hot(target) + ε / K` over the `K` classes, "
            "`-Σ_k q_k log p_k`, averaged over the positions. `logits` is `(..., K)`, "
            "`targets` `(...)` (class ids). Positions whose target is `ignore_index` "
            "(padding; with None, none is) count for nothing. A class with `q_k = 0` adds "
            "nothing, even if `p_k = 0`. Return a 0-d tensor."
        ),
        signature=(
            "def label_smoothed_cross_entropy(logits, targets, epsilon=0.1, ignore_index=None) "
            "-> torch.Tensor"
        ),
        solution=label_smoothed_cross_entropy,
        cases=_label_smoothing_cases,
        hints=(
            Hint(
                "The smoothed target gives `1 - ε + ε / K` to the true class and `ε / K` to "
                "each of the others: ε is spread over all K classes, the true one "
                "included, so that `q` sums to 1. With `log_p = F.log_softmax(logits, "
                "dim=-1)`, a position's loss is `-(q * log_p).sum(-1)`."
            ),
            Hint(
                "Use `F.log_softmax(logits, dim=-1)`, never `torch.log(torch.softmax(...))`, "
                "which gives log 0 = -inf for logits in the hundreds.",
                fits=lambda a: a.problem == "values" and bool(a.got.isinf().any()),
            ),
            Hint(
                "With ε = 0 a ruled-out class has `q_k = 0` and `log p_k = -inf`, and "
                "0 · (-inf) is NaN: keep only the terms where `q_k > 0` (`torch.where`), or "
                "use `F.cross_entropy(..., label_smoothing=ε)`, which does it for you.",
                fits=lambda a: a.problem == "values" and bool(a.got.isnan().any()),
            ),
            Hint(
                "Drop the positions whose target is `ignore_index` first (`keep = targets "
                "!= ignore_index`), then take the mean over the kept positions: padding "
                "neither adds to the loss nor counts in the average.",
                fits=lambda a: a.problem == "values" and _padding_mistake(a),
            ),
            Hint(
                "Return the mean over positions, not the sum: the loss must not grow with "
                "the size of the batch.",
                fits=lambda a: a.problem == "values" and float(a.got) > 1.5 * float(a.expected),
            ),
        ),
        wrong_answers=(
            _label_smoothing_other_classes,
            _label_smoothing_no_ignore,
            _label_smoothing_mean_over_all,
            _label_smoothing_sum,
            _label_smoothing_zero_log_zero,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: transformer.warmup_schedule
# --------------------------------------------------------------------------------------


def _warmup_cases() -> list[Case]:
    return [
        Case("the first step", (1, 512, 4000)),
        Case("in the warm-up: step 1000 of 4000", (1000, 512, 4000)),
        Case("the peak: step = warmup", (4000, 512, 4000)),
        Case("after the warm-up: step 100 000", (100_000, 512, 4000)),
        Case("a small model: d_model 64, warm-up 400, step 50", (50, 64, 400)),
        Case("a small model, step 2000", (2000, 64, 400)),
    ]


def _warmup_max(step, d_model, warmup=4000):
    return d_model**-0.5 * max(step**-0.5, step * warmup**-1.5)


def _warmup_power_half(step, d_model, warmup=4000):
    return d_model**-0.5 * min(step**-0.5, step * warmup**-0.5)


def _warmup_no_d_model(step, d_model, warmup=4000):
    return min(step**-0.5, step * warmup**-1.5)


def _warmup_tensor(step, d_model, warmup=4000):
    step = torch.tensor(float(step))
    return d_model**-0.5 * torch.minimum(step**-0.5, step * warmup**-1.5)


register(
    Exercise(
        id="transformer.warmup_schedule",
        chapter="transformer",
        prompt=(
            "Write `warmup_schedule(step, d_model, warmup=4000)`, the paper's learning rate "
            "at `step` (counted from 1): `d_model^-0.5 · min(step^-0.5, step · "
            "warmup^-1.5)`. It rises linearly for `warmup` steps, then falls as "
            "`1 / sqrt(step)`. Return a Python float."
        ),
        signature="def warmup_schedule(step: int, d_model: int, warmup: int = 4000) -> float",
        solution=warmup_schedule,
        cases=_warmup_cases,
        hints=(
            Hint(
                "Two curves meet at `step = warmup`: the warm-up `step · warmup^-1.5`, a "
                "straight line from 0, and the decay `step^-0.5`. Before the peak the line "
                "is the smaller of the two, after it the decay: take the `min`, not the "
                "`max`."
            ),
            Hint(
                "A value `sqrt(d_model)` times too large? `d_model^-0.5` multiplies both "
                "terms, so that wider models take smaller steps.",
                fits=lambda a: (
                    a.problem == "values"
                    and math.isclose(a.got / a.expected, a.case.args[1] ** 0.5, rel_tol=1e-6)
                ),
            ),
            Hint(
                "A value `warmup` times too large during the warm-up? The line is `step · "
                "warmup^-1.5`, which reaches `warmup^-0.5`, the decay's value, exactly at "
                "`step = warmup`.",
                fits=lambda a: (
                    a.problem == "values"
                    and math.isclose(a.got / a.expected, a.case.args[2], rel_tol=1e-6)
                ),
            ),
            Hint(
                "Return a plain Python float (`float(...)`): a learning rate for "
                "`LambdaLR`, not a tensor.",
                fits=lambda a: a.problem == "type",
            ),
        ),
        wrong_answers=(_warmup_max, _warmup_power_half, _warmup_no_d_model, _warmup_tensor),
        rtol=1e-9,
        atol=0.0,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: transformer.beam_step
# --------------------------------------------------------------------------------------


def _beam_cases() -> list[Case]:
    g = torch.Generator().manual_seed(42)

    def log_probs(batch: int, beams: int, vocab: int) -> torch.Tensor:
        return F.log_softmax(2 * torch.randn(batch, beams, vocab, generator=g), dim=-1)

    def scores(batch: int, beams: int) -> torch.Tensor:
        return -3 * torch.rand(batch, beams, generator=g)

    first = torch.tensor([[0.0, -math.inf, -math.inf], [0.0, -math.inf, -math.inf]])
    return [
        Case("batch 1, 2 beams, 5 tokens", (scores(1, 2), log_probs(1, 2, 5), 2)),
        Case(
            "the first step, as beam_search starts it: scores 0, -inf, -inf",
            (first, log_probs(2, 3, 6), 3),
        ),
        Case("one prefix, beam size 3", (scores(2, 1), log_probs(2, 1, 6), 3)),
        Case("batch 2, 3 beams, 7 tokens", (scores(2, 3), log_probs(2, 3, 7), 3)),
        Case("beam size 1: greedy search", (scores(3, 1), log_probs(3, 1, 5), 1)),
        Case("batch 3, 4 beams, 10 tokens", (scores(3, 4), log_probs(3, 4, 10), 4)),
    ]


def _best_tokens(attempt) -> torch.Tensor:
    """The ``beam_size`` best log-probabilities of a case, ignoring the prefixes' scores."""
    scores, log_probs, beam_size = attempt.case.args
    return log_probs.flatten(1).topk(beam_size, dim=-1).values


def _beam_best_token_per_beam(scores, log_probs, beam_size):
    best, token = log_probs.max(dim=-1)  # each prefix keeps its own best token
    beam = torch.arange(scores.shape[1]).expand_as(token)
    return scores + best, beam, token


def _beam_without_previous_scores(scores, log_probs, beam_size):
    batch, beams, vocab = log_probs.shape
    new_scores, best = log_probs.reshape(batch, beams * vocab).topk(beam_size, dim=-1)
    return new_scores, best // vocab, best % vocab


def _beam_swapped_indices(scores, log_probs, beam_size):
    new_scores, beam, token = beam_step(scores, log_probs, beam_size)
    vocab = log_probs.shape[-1]
    flat = beam * vocab + token
    return new_scores, flat % vocab, flat // vocab


def _beam_divided_by_beams(scores, log_probs, beam_size):
    batch, beams, vocab = log_probs.shape
    candidates = (scores[..., None] + log_probs).reshape(batch, beams * vocab)
    new_scores, best = candidates.topk(beam_size, dim=-1)
    return new_scores, best // beams, best % beams


register(
    Exercise(
        id="transformer.beam_step",
        chapter="transformer",
        prompt=(
            "Write `beam_step(scores, log_probs, beam_size)`, one step of beam search. "
            "`scores` `(batch, beams)` is the total log-probability of each prefix kept so "
            "far (-inf for an empty slot), `log_probs` `(batch, beams, vocab)` the "
            "log-probability of each next token after each prefix. A candidate is a prefix "
            "plus one token, scored `scores[b, beam] + log_probs[b, beam, token]`. Return "
            "`(new_scores, beam, token)`, each `(batch, beam_size)`, for the `beam_size` best "
            "candidates of each batch row among all `beams × vocab`, best first."
        ),
        signature=(
            "def beam_step(scores, log_probs, beam_size) "
            "-> tuple[torch.Tensor, torch.Tensor, torch.Tensor]"
        ),
        solution=beam_step,
        cases=_beam_cases,
        hints=(
            Hint(
                "The best candidates may all extend the same prefix: rank all `beams × "
                "vocab` candidates of a row together. Flatten the candidate scores to "
                "`(batch, beams * vocab)` and take `.topk(beam_size, dim=-1)`."
            ),
            Hint(
                "A candidate's score is the prefix's total plus the token's log-probability: "
                "`scores[..., None] + log_probs`, `(batch, beams, vocab)`. Without the "
                "prefix's score, a weak prefix with one good token would win.",
                fits=lambda a: a.problem == "values" and _close(a.got[0], _best_tokens(a)),
            ),
            Hint(
                "Scores right but indices wrong? The flat index is `f = beam · vocab + "
                "token`, so `beam = f // vocab` and `token = f % vocab`: divide by the "
                "vocabulary size, not by the number of beams.",
                fits=lambda a: a.problem == "values" and _close(a.got[0], a.expected[0]),
            ),
            Hint(
                "Return three tensors, `(new_scores, beam, token)`, each `(batch, "
                "beam_size)`; `beam` and `token` are int64 indices.",
                fits=lambda a: a.problem in ("type", "shape", "dtype"),
            ),
        ),
        wrong_answers=(
            _beam_best_token_per_beam,
            _beam_without_previous_scores,
            _beam_swapped_indices,
            _beam_divided_by_beams,
        ),
        check_grad=True,
    )
)


quiz.register(
    "transformer",
    [
        {
            "question": "A decoder is trained with teacher forcing: the whole target is fed "
            "at once, and position t must predict token t + 1. What does the causal mask "
            "prevent?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Attention to padding tokens",
                    "correct": False,
                    "feedback": "That is the padding mask's job; the causal mask hides the "
                    "future, padded or not. A decoder over padded targets needs both.",
                },
                {
                    "answer": "Position t reading tokens t + 1, t + 2, …, among them the very "
                    "token it must predict",
                    "correct": True,
                    "feedback": "Right: the input holds the answer one step ahead. Without "
                    "the mask the model can learn to copy it: a low training loss, and "
                    "nothing to go on at generation, where the future is not written yet.",
                },
                {
                    "answer": "Position t attending to itself",
                    "correct": False,
                    "feedback": "The diagonal is allowed: position t reads token t, the last "
                    "token written, and predicts token t + 1.",
                },
            ],
        },
        {
            "question": "You have a bool mask `m`, True on and below the diagonal (the causal "
            "pattern). You pass it as `attn_mask` to `nn.MultiheadAttention` and to "
            "`F.scaled_dot_product_attention`. What happens?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Both attend causally: a bool mask means the same everywhere "
                    "in PyTorch",
                    "correct": False,
                    "feedback": "It does not: the two functions read True in opposite ways, "
                    "which is why this book converts masks at one place only.",
                },
                {
                    "answer": "Both raise an error: attention masks must be float",
                    "correct": False,
                    "feedback": "Both take bool masks (and float masks, added to the "
                    "scores); the error here is silent.",
                },
                {
                    "answer": "scaled_dot_product_attention attends causally; "
                    "MultiheadAttention blocks the past and the diagonal, so each query sees "
                    "only the future, and the last query, with nothing left, gets NaN",
                    "correct": True,
                    "feedback": "Right: for `F.scaled_dot_product_attention` True means "
                    "'takes part in attention'; for `nn.MultiheadAttention` and "
                    "`nn.Transformer` True means 'not allowed'. `lessons.transformer."
                    "mask_from_torch` converts PyTorch's masks into ours (True = may attend) "
                    "once, at the boundary.",
                },
            ],
        },
        {
            "question": "Shifting positions by k turns the sinusoidal encoding of position "
            "pos into that of pos + k: PE(pos + k) = R(k) PE(pos). What is R(k)?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "A rotation of each (sin, cos) pair by the angle k ω_i, the same "
                    "for every position",
                    "correct": True,
                    "feedback": "Right: each pair is a point on a circle turning at its own "
                    "frequency ω_i, so moving k steps is a rotation that depends on k only. "
                    "A linear map of the encodings can therefore express 'k positions "
                    "back' wherever the query is.",
                },
                {
                    "answer": "A matrix that depends on pos as well as on k",
                    "correct": False,
                    "feedback": "The angle added to every pair is k ω_i, whatever the "
                    "starting angle pos ω_i: the addition formulas for sin and cos give a "
                    "rotation by k ω_i.",
                },
                {
                    "answer": "There is none: the encodings of different positions are unrelated",
                    "correct": False,
                    "feedback": "Sines and cosines of pos ω_i are tied by the addition "
                    "formulas; that link is the reason the paper gives for choosing them.",
                },
            ],
        },
        {
            "question": "The paper's base encoder layer: d_model = 512, 8 heads, d_ff = 2048, "
            "with biases and two LayerNorms. How many parameters does one encoder layer have?",
            "type": "numeric",
            "precision": 7,
            "answers": [
                {
                    "type": "value",
                    "value": 3152384,
                    "correct": True,
                    "feedback": "Right: attention 4 · 512² + 4 · 512 = 1,050,624 (four "
                    "projections with biases; the heads split d_model and add nothing), "
                    "feed-forward 2 · 512 · 2048 + 2048 + 512 = 2,099,712, and the two "
                    "LayerNorms 2 · 2 · 512 = 2,048. Two thirds of the layer is the "
                    "feed-forward network.",
                },
                {
                    "type": "value",
                    "value": 3145728,
                    "correct": False,
                    "feedback": "That is the weight matrices alone, 4 d² + 2 d d_ff. Add the "
                    "biases of the six linear maps and the gains and shifts of the two "
                    "LayerNorms.",
                },
                {
                    "type": "value",
                    "value": 3150336,
                    "correct": False,
                    "feedback": "2,048 short: the two LayerNorms each have a gain and a shift "
                    "of 512 entries (or, the same number, the four attention biases).",
                },
                {
                    "type": "value",
                    "value": 10506752,
                    "correct": False,
                    "feedback": "That counts the attention once per head. The heads share "
                    "the four 512 × 512 projections: each head gets d_model / 8 = 64 of their "
                    "output features, so more heads add no parameters.",
                },
                {
                    "type": "default",
                    "feedback": "Count part by part: four d × d projections with biases, two "
                    "linear maps d → d_ff → d with biases, and two LayerNorms of 2 d "
                    "parameters each.",
                },
            ],
        },
        {
            "question": "Self-attention and a recurrent network over n tokens: how many "
            "sequential steps does information need to travel from the first token to the "
            "last, within one layer?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Both n - 1: the causal mask makes attention sequential too",
                    "correct": False,
                    "feedback": "The mask hides the future but not the distance: the last "
                    "position still reads the first in one step, and all positions are "
                    "computed at once in training.",
                },
                {
                    "answer": "Self-attention: 1 (every position reads every other directly); "
                    "the RNN: n - 1, one step per token",
                    "correct": True,
                    "feedback": "Right: the paper's maximum path length, O(1) against O(n) "
                    "(Table 1). Short paths make long-range dependencies easier to learn, "
                    "and the n positions of a layer are computed in parallel.",
                },
                {
                    "answer": "Self-attention: log n, as in a tree",
                    "correct": False,
                    "feedback": "log n is the path of dilated convolutions; attention "
                    "connects every pair of positions directly.",
                },
            ],
        },
        {
            "question": "Generating token t with a decoder-only model: what does a key-value "
            "cache save in each self-attention layer?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The attention itself: cached weights are reused at every step",
                    "correct": False,
                    "feedback": "The new query differs at every step, so its weights over the "
                    "keys are new; only the keys and values are reused.",
                },
                {
                    "answer": "Nothing during generation; it only speeds up training",
                    "correct": False,
                    "feedback": "In training the whole target is processed at once and there "
                    "is nothing to cache. The cache is for generation, one token at a time.",
                },
                {
                    "answer": "Recomputing the keys and values of the t - 1 earlier "
                    "positions: one new query attends t cached keys, O(t) work instead of "
                    "O(t²) for the whole prefix",
                    "correct": True,
                    "feedback": "Right: earlier positions' keys and values never change (the "
                    "causal mask hides later tokens from them), so they are computed once. "
                    "The memory grows by one key and one value per layer and step.",
                },
            ],
        },
        {
            "question": "The paper trains with label smoothing, ε = 0.1. Compared with "
            "ε = 0, what does it do?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "It raises perplexity, as the model learns to be less sure, "
                    "but it improved accuracy and BLEU in the paper",
                    "correct": True,
                    "feedback": "Right, in the paper's words (§5.4). The target keeps ε "
                    "spread over all classes, so the model never pushes one probability "
                    "to 1; perplexity, measured against one-hot truth, pays for that "
                    "hedge.",
                },
                {
                    "answer": "It lowers perplexity, since smoother predictions are better "
                    "calibrated",
                    "correct": False,
                    "feedback": "Perplexity rewards putting probability on the true token; "
                    "a model taught to leave ε / K on every other class puts less there.",
                },
                {
                    "answer": "Nothing measurable: with ε = 0.1 the target is still mostly one-hot",
                    "correct": False,
                    "feedback": "The loss changes everywhere: with 10 % of the target spread "
                    "over the other classes, pushing any of their probabilities towards 0 "
                    "costs without bound, so the model stops short of certainty.",
                },
            ],
        },
        {
            "question": "Why does the paper's post-norm Transformer use a learning-rate warm-up?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Adam's bias correction needs the learning rate to start at 0, "
                    "and the warm-up raises it slowly from there",
                    "correct": False,
                    "feedback": "Bias correction rescales Adam's moment estimates, which "
                    "start at 0, and works from the first step at any learning rate; it does "
                    "not ask for a small one.",
                },
                {
                    "answer": "Its first updates would be too large: the gradients near the "
                    "output are large at initialisation and Adam's estimate of their "
                    "variance is still poor; pre-norm layers train with little or no "
                    "warm-up",
                    "correct": True,
                    "feedback": "Right: warm-up keeps the first steps small until the "
                    "optimiser's statistics settle. Pre-norm leaves the residual stream "
                    "unnormalised, which keeps gradients well scaled at the start (Xiong et "
                    "al., 2020).",
                },
                {
                    "answer": "Because the sinusoidal encodings must be learned first",
                    "correct": False,
                    "feedback": "The sinusoidal encodings are fixed: they have no parameters "
                    "to learn.",
                },
            ],
        },
        {
            "question": "Beam search with length normalisation ranks finished outputs by "
            "score / length^α. Why divide at all?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "To turn the scores into probabilities that sum to 1",
                    "correct": False,
                    "feedback": "Dividing by a length does not normalise over outputs; it "
                    "removes the penalty each extra token carries.",
                },
                {
                    "answer": "Long outputs have higher scores and would always win",
                    "correct": False,
                    "feedback": "The opposite: adding log-probabilities, all ≤ 0, makes long "
                    "outputs score lower.",
                },
                {
                    "answer": "Every token adds a negative log-probability, so raw scores "
                    "favour short outputs, even one that ends too early",
                    "correct": True,
                    "feedback": "Right: a log-probability is never positive, so each token "
                    "can only lower the total. With α = 1 the ranking is by the mean "
                    "log-probability per token; α = 0 keeps the raw score.",
                },
            ],
        },
    ],
)
