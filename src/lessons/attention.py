"""Attention from scratch: score functions, masks, scaled dot-product and multi-head attention.

Used in: notebooks/03_attention.ipynb (the sections are named in each docstring).

The pieces, in the order the data flows through them::

    scores = score(query, keys)                  # (batch, q_len, k_len): how well each
                                                 #   query matches each key
    weights = masked_softmax(scores, mask)       # each row a distribution over the keys
    output = weights @ values                    # (batch, q_len, d_v): a weighted average

Score functions, oldest first: `AdditiveScore` (Bahdanau et al., 2015, "concat" in Luong
et al.), `DotScore` and `GeneralScore` (Luong et al., 2015) and `ScaledDotScore`
(Vaswani et al., 2017). `kernel_regression` is the oldest attention of all, Nadaraya and
Watson's (1964), with a fixed Gaussian score. `scaled_dot_product_attention` is the
Transformer's score with the softmax and the weighted average, as
``torch.nn.functional.scaled_dot_product_attention``; `tiled_attention` computes the same
output one block of keys at a time with an online softmax, the core of FlashAttention
(Dao et al., 2022). `MultiHeadAttention` runs several attentions side by side on learned
projections, as ``torch.nn.MultiheadAttention`` (and `MultiHeadAttention.from_torch`
copies one).

One mask convention throughout: a **bool** tensor, **True where attention is allowed**,
as the boolean ``attn_mask`` of ``F.scaled_dot_product_attention``. Beware:
``nn.MultiheadAttention``'s ``key_padding_mask`` and boolean ``attn_mask`` mean the
opposite (True = *not* allowed); convert them with ``~``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lessons.core import checks

__all__ = [
    "AdditiveScore",
    "DotScore",
    "GeneralScore",
    "MultiHeadAttention",
    "ScaledDotScore",
    "causal_mask",
    "kernel_regression",
    "merge_heads",
    "masked_softmax",
    "padding_mask",
    "scaled_dot_product_attention",
    "split_heads",
    "tiled_attention",
]


# --------------------------------------------------------------------------------------
# Score functions
# --------------------------------------------------------------------------------------


class DotScore(nn.Module):
    """Luong's "dot" score: ``score(q, k) = q · k``. No parameters.

    ``forward(query, keys)``: query ``(batch, q_len, d)``, keys ``(batch, k_len, d)``
    -> scores ``(batch, q_len, k_len)``. Query and keys need the same size ``d``.

    Used in: notebooks/03_attention.ipynb, sections 2 and 3.
    """

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query, keys = _check_query_keys(query, keys)
        return query @ keys.transpose(-2, -1)


class ScaledDotScore(nn.Module):
    """The Transformer's score: ``score(q, k) = q · k / sqrt(d_k)``. No parameters.

    For query and key entries of mean 0 and variance 1, ``q · k`` has variance ``d_k``;
    dividing by ``sqrt(d_k)`` brings it back to 1, so the softmax does not saturate as
    ``d_k`` grows. Shapes as `DotScore`.

    Used in: notebooks/03_attention.ipynb, section 3.
    """

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query, keys = _check_query_keys(query, keys)
        return query @ keys.transpose(-2, -1) / math.sqrt(keys.shape[-1])


class GeneralScore(nn.Module):
    """Luong's "general" (bilinear) score: ``score(q, k) = q^T W k``.

    ``W`` is ``(query_dim, key_dim)``, stored as an ``nn.Linear(key_dim, query_dim)``
    without bias (``self.linear``), so query and keys may have different sizes.
    ``forward(query, keys)``: query ``(batch, q_len, query_dim)``, keys
    ``(batch, k_len, key_dim)`` -> scores ``(batch, q_len, k_len)``.

    Used in: notebooks/03_attention.ipynb, sections 2 and 3.
    """

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.query_dim = checks.positive_int("query_dim", query_dim)
        self.key_dim = checks.positive_int("key_dim", key_dim)
        self.linear = nn.Linear(key_dim, query_dim, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query, keys = _check_query_keys(query, keys, self.query_dim, self.key_dim)
        return query @ self.linear(keys).transpose(-2, -1)  # q · (W k)


class AdditiveScore(nn.Module):
    """Bahdanau's additive ("concat") score: ``score(q, k) = v^T tanh(W_q q + W_k k)``.

    A one-hidden-layer network on the pair: ``W_q`` is ``(hidden_dim, query_dim)``,
    ``W_k`` ``(hidden_dim, key_dim)`` and ``v`` ``(hidden_dim,)``, stored as
    ``nn.Linear`` layers without bias (``query_proj``, ``key_proj``, ``v``). The key
    projections do not depend on the query, so they are computed once per sequence.
    Shapes as `GeneralScore`; the intermediate ``(batch, q_len, k_len, hidden_dim)``
    tensor makes it the most memory-hungry of the scores.

    It needs no ``1 / sqrt(d_k)``: each sum over the query's or the key's features goes
    through a learned matrix that PyTorch initialises with variance ``1 / (3 * fan_in)``,
    the ``tanh`` bounds every hidden unit in (-1, 1) and ``v`` starts with variance
    ``1 / (3 * hidden_dim)``, so the scores start with the same small variance for every
    size (measured in section 4).

    Used in: notebooks/03_attention.ipynb, sections 2, 3 and 4.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.query_dim = checks.positive_int("query_dim", query_dim)
        self.key_dim = checks.positive_int("key_dim", key_dim)
        checks.positive_int("hidden_dim", hidden_dim)
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query, keys = _check_query_keys(query, keys, self.query_dim, self.key_dim)
        q = self.query_proj(query).unsqueeze(2)  # (batch, q_len, 1, hidden)
        k = self.key_proj(keys).unsqueeze(1)  # (batch, 1, k_len, hidden)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (batch, q_len, k_len)


def kernel_regression(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bandwidth: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya-Watson kernel regression (1964), attention with a fixed score.

    The prediction at a query ``x`` is a weighted average of the observed ``values``
    ``y_j``, weighted by how close their ``keys`` ``x_j`` are::

        f(x) = sum_j softmax_j(-(x - x_j)^2 / (2 * bandwidth^2)) * y_j

    which is a Gaussian kernel, normalised. ``queries`` ``(n_q,)``, ``keys`` and
    ``values`` ``(n_k,)``, one dtype; returns ``(predictions (n_q,), weights (n_q, n_k))``,
    each row of ``weights`` a distribution over the keys. A small ``bandwidth`` gives
    (nearly) the value of the nearest key, a large one (nearly) the mean of all values.

    Used in: notebooks/03_attention.ipynb, section 3.
    """
    for name, tensor in (("queries", queries), ("keys", keys), ("values", values)):
        checks.tensor(name, tensor, dims=1, dtype="float", layout="(n,)")
    if keys.shape != values.shape:
        raise ValueError(
            f"keys and values: expected one value per key, got {tuple(keys.shape)} and "
            f"{tuple(values.shape)}"
        )
    if not queries.dtype == keys.dtype == values.dtype:
        raise TypeError(
            f"queries, keys and values: expected one dtype, got {queries.dtype}, {keys.dtype} "
            f"and {values.dtype}"
        )
    checks.number("bandwidth", bandwidth, positive=True)
    scores = -((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2)  # (n_q, n_k)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


# --------------------------------------------------------------------------------------
# Scaled dot-product attention
# --------------------------------------------------------------------------------------


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    generator: torch.Generator | None = None,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(Q K^T / sqrt(d_k)) V``, returning ``(output, weights)``.

    ``query`` ``(..., q_len, d_k)``, ``key`` ``(..., k_len, d_k)``, ``value``
    ``(..., k_len, d_v)``, with the same leading dimensions ``...`` (e.g. batch and
    heads). ``mask``: bool, True where a query may attend a key, broadcastable to
    ``(..., q_len, k_len)``; a fully masked query gets zero weights and a zero output.

    Returns ``output`` ``(..., q_len, d_v)`` and ``weights`` ``(..., q_len, k_len)``, the
    attention distribution of each query (before dropout). ``dropout_p > 0`` drops
    weights at random (with ``generator``) and rescales the rest by ``1 / (1 - p)``, as
    ``F.scaled_dot_product_attention`` does whenever ``dropout_p > 0``: pass 0 when
    evaluating. With ``need_weights=False`` the weights are not returned (None), which
    lets the function skip normalising them (see the comment in the code).

    Used in: notebooks/03_attention.ipynb, sections 4 and 5.
    """
    _check_query_key_value(query, key, value)
    checks.probability("dropout_p", dropout_p)

    if mask is not None:
        _check_mask(mask, (*query.shape[:-1], key.shape[-2]))

    # Scaling the queries rather than the scores gives the same numbers up to rounding and
    # touches q_len * d_k values instead of q_len * k_len.
    scores = (query / math.sqrt(query.shape[-1])) @ key.transpose(-2, -1)  # (..., q_len, k_len)
    if need_weights:
        weights = masked_softmax(scores, mask)
        return _dropout(weights, dropout_p, generator) @ value, weights

    # Without the weights, normalise at the end:
    #     softmax(s) @ V = (exp(s - max) @ V) / sum(exp(s - max)).
    # Dividing the (q_len, d_v) output instead of the (q_len, k_len) weights, and working
    # in place on `scores` (a new tensor that nothing else holds; autograd allows these
    # in-place steps), saves a pass over the largest tensor here and a copy of it. This
    # deferred normalisation is one ingredient of FlashAttention; its core, tiling with
    # an online softmax so that the scores are never stored whole, is `tiled_attention`.
    if mask is not None:
        scores.masked_fill_(~mask, -math.inf)
    row_max = scores.amax(dim=-1, keepdim=True).detach()
    row_max.masked_fill_(row_max == -math.inf, 0.0)  # fully masked rows
    unnormalised = scores.sub_(row_max).exp_()
    total = unnormalised.sum(dim=-1, keepdim=True)
    output = _dropout(unnormalised, dropout_p, generator) @ value
    return output / total.masked_fill(total == 0, 1.0), None


def _dropout(weights: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Zero each weight with probability ``p``, scale the rest by ``1 / (1 - p)``."""
    if p == 0:
        return weights
    keep = torch.rand(weights.shape, generator=generator, device=weights.device) >= p
    return weights * keep / (1 - p)


# --------------------------------------------------------------------------------------
# Masks and the masked softmax
# --------------------------------------------------------------------------------------


def masked_softmax(
    scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1
) -> torch.Tensor:
    """Softmax of ``scores`` along ``dim`` over the allowed positions only.

    ``mask`` is a bool tensor that broadcasts to ``scores``, **True where attention is
    allowed** (the convention of the boolean ``attn_mask`` of
    ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention``'s ``key_padding_mask``
    is the opposite, True = ignore). Masked positions get weight exactly 0 and the
    allowed ones sum to 1.

    A row where *everything* is masked (e.g. a padding query) gets all zeros, not NaN,
    and its gradients are zero: ``softmax`` with ``-inf`` fills would compute 0 / 0
    there. The computation is the stable softmax written out: subtract the row maximum
    (over allowed positions), exponentiate, divide by the sum, which is at least 1 in
    a row with an allowed position and 0 only in a fully masked one.

    Used in: notebooks/03_attention.ipynb, section 4.
    """
    checks.tensor("scores", scores, dtype="float")
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = _check_mask(mask, scores.shape)
    scores = scores.masked_fill(~mask, -math.inf)
    row_max = scores.amax(dim=dim, keepdim=True).detach()  # softmax ignores any shift
    row_max = row_max.masked_fill(row_max == -math.inf, 0.0)  # fully masked rows
    exp = torch.exp(scores - row_max)  # exactly 0 where masked
    total = exp.sum(dim=dim, keepdim=True)
    return exp / total.masked_fill(total == 0, 1.0)  # 0 / 1 in fully masked rows


def padding_mask(lengths: Sequence[int] | torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Which key positions hold real tokens: bool ``(batch, 1, max_len)``, True for
    positions ``< lengths[b]``.

    The middle dimension of size 1 broadcasts over the queries, so the result is a
    ``mask`` for scores ``(batch, q_len, max_len)``. ``max_len`` defaults to the longest
    length. (``nn.MultiheadAttention`` wants ``key_padding_mask = ~padding_mask(...)[:, 0]``.)

    Used in: notebooks/03_attention.ipynb, section 4.
    """
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(list(lengths))
    if lengths.dim() != 1 or lengths.numel() == 0 or lengths.is_floating_point():
        raise ValueError(
            f"lengths: expected a non-empty 1-D sequence of ints, got {lengths.dtype} of "
            f"shape {tuple(lengths.shape)}"
        )
    longest = int(lengths.max())
    if max_len is None:
        max_len = longest
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len: expected an int >= 1, got {max_len!r}")
    if int(lengths.min()) < 0 or longest > max_len:
        raise ValueError(
            f"lengths: expected values in [0, max_len={max_len}], got {lengths.tolist()}"
        )
    positions = torch.arange(max_len, device=lengths.device)
    return (positions < lengths[:, None]).unsqueeze(1)


def causal_mask(
    q_len: int, k_len: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Query ``i`` may attend keys ``0 … i``: bool ``(q_len, k_len)``, lower-triangular.

    With ``k_len`` (default ``q_len``) different from ``q_len`` the triangle starts at
    the top left, as ``is_causal=True`` of ``F.scaled_dot_product_attention``.

    Used in: notebooks/03_attention.ipynb, section 4.
    """
    checks.positive_int("q_len", q_len)
    k_len = q_len if k_len is None else checks.positive_int("k_len", k_len)
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


def tiled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    block_size: int = 64,
) -> torch.Tensor:
    """The output of `scaled_dot_product_attention`, one block of keys at a time.

    The keys and values are read in blocks of ``block_size``; for each block the scores
    ``(..., q_len, block_size)`` are computed, folded into a running maximum ``m``, a
    running sum ``l`` of ``exp(score - m)`` and a running output ``o``, then dropped.
    When a block raises the maximum from ``m`` to ``m'``, what was summed so far is
    rescaled by ``exp(m - m')`` (the *online softmax*); at the end ``o / l`` is exactly
    ``softmax(Q K^T / sqrt(d_k)) V``. The full ``(q_len, k_len)`` scores never exist at
    once: the tiling and online softmax at the core of FlashAttention (Dao et al.,
    2022), here in plain PyTorch (a fused kernel does the same inside fast on-chip
    memory; under autograd PyTorch keeps every block for the backward pass, which
    FlashAttention instead recomputes).

    Shapes and ``mask`` (bool, True = may attend) as `scaled_dot_product_attention`;
    returns the output ``(..., q_len, d_v)``; a fully masked query gets zeros.

    Used in: notebooks/03_attention.ipynb, section 4.
    """
    _check_query_key_value(query, key, value)
    checks.positive_int("block_size", block_size)
    k_len = key.shape[-2]
    if mask is not None:
        scores_shape = (*query.shape[:-1], k_len)
        mask = torch.broadcast_to(_check_mask(mask, scores_shape), scores_shape)

    query = query / math.sqrt(query.shape[-1])
    running_max = query.new_full((*query.shape[:-1], 1), -math.inf)  # (..., q_len, 1)
    running_sum = torch.zeros_like(running_max)
    output = query.new_zeros(*query.shape[:-1], value.shape[-1])  # (..., q_len, d_v)
    for start in range(0, k_len, block_size):
        block = slice(start, start + block_size)
        scores = query @ key[..., block, :].transpose(-2, -1)  # (..., q_len, block_size)
        if mask is not None:
            scores = scores.masked_fill(~mask[..., block], -math.inf)
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        shift = new_max.masked_fill(new_max == -math.inf, 0.0)  # rows masked so far
        rescale = torch.exp(running_max - shift)  # exp(m - m'): 0 at the first block
        exponentials = torch.exp(scores - shift)
        running_sum = running_sum * rescale + exponentials.sum(dim=-1, keepdim=True)
        output = output * rescale + exponentials @ value[..., block, :]
        running_max = new_max
    return output / running_sum.masked_fill(running_sum == 0, 1.0)


# --------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, heads, seq, d_head)``, ``d_head = d_model // heads``.

    Head ``h`` gets features ``h * d_head … (h + 1) * d_head - 1`` of each position: the
    reshape cuts the last dimension into consecutive blocks, the transpose moves the
    heads in front of the positions.

    Used in: notebooks/03_attention.ipynb, section 5.
    """
    checks.tensor("x", x, dims=3, layout="(batch, seq, d_model)")
    checks.positive_int("num_heads", num_heads)
    batch, seq, d_model = x.shape
    if d_model % num_heads != 0:
        raise ValueError(
            f"x: expected d_model divisible by num_heads={num_heads}, got {tuple(x.shape)}"
        )
    return x.reshape(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, seq, d_head)`` -> ``(batch, seq, heads * d_head)``: `split_heads` undone.

    Used in: notebooks/03_attention.ipynb, section 5.
    """
    checks.tensor("x", x, dims=4, layout="(batch, heads, seq, d_head)")
    batch, heads, seq, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * d_head)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al., 2017), batch first, as ``nn.MultiheadAttention``.

    ``num_heads`` heads each attend in their own ``d_head = d_model // num_heads``
    dimensional subspace::

        Q, K, V = q_proj(query), k_proj(key), v_proj(value)    # (batch, len, d_model)
        Q, K, V = split_heads(Q), split_heads(K), split_heads(V)  # (batch, heads, len, d_head)
        O, weights = scaled_dot_product_attention(Q, K, V, mask)
        output = out_proj(merge_heads(O))                      # (batch, q_len, d_model)

    The three input projections are separate ``nn.Linear`` layers (``q_proj``,
    ``k_proj``, ``v_proj``) so that each is easy to find and read; PyTorch packs them in
    one ``in_proj_weight`` of shape ``(3 d_model, d_model)`` (rows: query, key, value),
    which is the same three matrices stacked. `from_torch` unpacks it. ``kdim`` and
    ``vdim`` (default ``d_model``) are the feature sizes of ``key`` and ``value``.

    ``dropout`` drops attention weights in training mode only.

    Used in: notebooks/03_attention.ipynb, section 5.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
    ):
        super().__init__()
        checks.positive_int("d_model", d_model)
        checks.positive_int("num_heads", num_heads)
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}): each "
                f"head gets d_model // num_heads features"
            )
        checks.probability("dropout", dropout)
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.dropout = float(dropout)
        self.kdim = d_model if kdim is None else checks.positive_int("kdim", kdim)
        self.vdim = d_model if vdim is None else checks.positive_int("vdim", vdim)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(self.kdim, d_model, bias=bias)
        self.v_proj = nn.Linear(self.vdim, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` ``(batch, q_len, d_model)`` to ``key`` ``(batch, k_len,
        kdim)`` and ``value`` ``(batch, k_len, vdim)``.

        ``mask`` (bool, True = may attend) is one of ``(q_len, k_len)`` (e.g.
        `causal_mask`), ``(batch, q_len or 1, k_len)`` (e.g. `padding_mask`), both shared
        by all heads, or ``(batch, heads, q_len, k_len)``; dimensions of size 1
        broadcast. ``nn.MultiheadAttention``'s masks mean the opposite: its
        ``key_padding_mask`` ``(batch, k_len)`` becomes ``~key_padding_mask[:, None, :]``
        here, and its boolean ``attn_mask`` ``(q_len, k_len)`` becomes ``~attn_mask``.

        Returns ``(output, weights)``: ``output`` ``(batch, q_len, d_model)``, ``weights``
        ``(batch, heads, q_len, k_len)`` per head (``weights.mean(1)`` is what
        ``nn.MultiheadAttention`` returns by default), or None if not ``need_weights``.
        """
        self._check_inputs(query, key, value)
        batch, q_len, k_len = query.shape[0], query.shape[1], key.shape[1]
        if mask is not None:
            scores_shape = (batch, self.num_heads, q_len, k_len)
            if isinstance(mask, torch.Tensor) and mask.dim() == 3:
                mask = mask.unsqueeze(1)  # the same mask for every head
            mask = _check_mask(mask, scores_shape)
        q = split_heads(self.q_proj(query), self.num_heads)
        k = split_heads(self.k_proj(key), self.num_heads)
        v = split_heads(self.v_proj(value), self.num_heads)
        dropout_p = self.dropout if self.training else 0.0
        attended, weights = scaled_dot_product_attention(
            q, k, v, mask, dropout_p, need_weights=need_weights
        )
        return self.out_proj(merge_heads(attended)), weights

    def _check_inputs(self, query: object, key: object, value: object) -> None:
        sizes = {"query": self.d_model, "key": self.kdim, "value": self.vdim}
        tensors = {"query": query, "key": key, "value": value}
        for name, tensor in tensors.items():
            checks.tensor(name, tensor, dims=3, dtype="float", layout="(batch, seq, features)")
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        for name, tensor in tensors.items():
            if tensor.shape[-1] != sizes[name]:
                raise ValueError(
                    f"{name}: expected {sizes[name]} features (batch, seq, {sizes[name]}), "
                    f"got {shapes}"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(f"query, key and value: expected one batch size, got {shapes}")
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value: expected the same length, got {shapes}")

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """A `MultiHeadAttention` with the weights of ``module``, an ``nn.MultiheadAttention``.

        Works for both of its ``batch_first`` settings (ours is always batch first:
        transpose inputs of a ``batch_first=False`` module), for the packed
        ``in_proj_weight`` and for separate ``q/k/v_proj_weight`` (when ``kdim`` or
        ``vdim`` differ from ``embed_dim``). ``add_bias_kv`` and ``add_zero_attn`` are
        not supported. Copies, does not share: the two modules train independently.
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(
                f"module: expected a torch.nn.MultiheadAttention, got {type(module).__name__}"
            )
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError(
                "module: add_bias_kv=True and add_zero_attn=True are not supported "
                "(they append a learned or a zero key and value to every sequence)"
            )
        bias = module.in_proj_bias is not None
        ours = cls(
            module.embed_dim,
            module.num_heads,
            dropout=module.dropout,
            bias=bias,
            kdim=module.kdim,
            vdim=module.vdim,
        )
        if module._qkv_same_embed_dim:
            q_weight, k_weight, v_weight = module.in_proj_weight.chunk(3)
        else:
            q_weight, k_weight, v_weight = (
                module.q_proj_weight,
                module.k_proj_weight,
                module.v_proj_weight,
            )
        reference = q_weight
        ours.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            for linear, weight in zip(
                (ours.q_proj, ours.k_proj, ours.v_proj), (q_weight, k_weight, v_weight), strict=True
            ):
                linear.weight.copy_(weight)
            ours.out_proj.weight.copy_(module.out_proj.weight)
            if bias:
                for linear, b in zip(
                    (ours.q_proj, ours.k_proj, ours.v_proj),
                    module.in_proj_bias.chunk(3),
                    strict=True,
                ):
                    linear.bias.copy_(b)
                ours.out_proj.bias.copy_(module.out_proj.bias)
        return ours.train(module.training)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_query_keys(
    query: object, keys: object, query_dim: int | None = None, key_dim: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both ``(batch, len, features)``, same batch and dtype, feature sizes as declared."""
    query = checks.tensor("query", query, dims=3, dtype="float", layout="(batch, q_len, features)")
    keys = checks.tensor("keys", keys, dims=3, dtype="float", layout="(batch, k_len, features)")
    shapes = f"query {tuple(query.shape)}, keys {tuple(keys.shape)}"
    if query.shape[0] != keys.shape[0]:
        raise ValueError(f"query and keys: expected the same batch size, got {shapes}")
    if query.dtype != keys.dtype:
        raise TypeError(
            f"query and keys: expected the same dtype, got {query.dtype} and {keys.dtype}"
        )
    if query_dim is not None and query.shape[-1] != query_dim:
        raise ValueError(f"query: expected {query_dim} features (query_dim), got {shapes}")
    if key_dim is not None and keys.shape[-1] != key_dim:
        raise ValueError(f"keys: expected {key_dim} features (key_dim), got {shapes}")
    if query_dim is None and query.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"query and keys: a dot product needs as many query features as key features, "
            f"got {shapes}"
        )
    return query, keys


def _check_query_key_value(query: object, key: object, value: object) -> None:
    """``(..., q_len, d_k)``, ``(..., k_len, d_k)``, ``(..., k_len, d_v)``: one dtype, the
    same leading dimensions, one ``d_k`` for queries and keys, one value per key."""
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        checks.tensor(name, tensor, dtype="float")
        if tensor.dim() < 2:
            raise ValueError(f"{name}: expected (..., length, features), got {tuple(tensor.shape)}")
    shapes = f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(
            f"query, key and value: expected one dtype, got {query.dtype}, {key.dtype} and "
            f"{value.dtype}"
        )
    if not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        raise ValueError(
            f"query, key and value: expected the same leading dimensions, got {shapes}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key: expected the same feature size d_k, got {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value: expected one value per key (k_len), got {shapes}")


def _check_mask(mask: object, scores_shape: Sequence[int], name: str = "mask") -> torch.Tensor:
    """A bool tensor that broadcasts to ``scores_shape`` without growing it."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name}: expected a bool tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name}: expected a bool tensor (True = may attend), got {mask.dtype}; "
            f"a 0/1 or -inf/0 mask is ambiguous, turn it into bool first (e.g. mask == 1)"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, tuple(scores_shape)) == tuple(scores_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: expected a shape that broadcasts to the scores {tuple(scores_shape)}, "
            f"got {tuple(mask.shape)}"
        )
    return mask
