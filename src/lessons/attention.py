"""Attention from scratch: score functions, masks, scaled dot-product and multi-head attention.

Used in: notebooks/03_attention.ipynb (the sections are named in each docstring).

The pieces, in the order the data flows through them::

    scores = score(query, keys)                  # (batch, q_len, k_len): how well each
                                                 #   query matches each key
    weights = masked_softmax(scores, mask)       # each row a distribution over the keys
    output = weights @ values                    # (batch, q_len, d_v): a weighted average

Score functions, oldest first: `AdditiveScore` (Bahdanau et al., 2015, "concat" in Luong
et al.), `DotScore` and `GeneralScore` (Luong et al., 2015) and `ScaledDotScore`
(Vaswani et al., 2017). `scaled_dot_product_attention` is the last one with the softmax
and the weighted average, as ``torch.nn.functional.scaled_dot_product_attention``;
`MultiHeadAttention` runs several of them side by side on learned projections, as
``torch.nn.MultiheadAttention`` (and `MultiHeadAttention.from_torch` copies one).

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

from lessons import quiz
from lessons.exercises import Case, Exercise, Hint, register

__all__ = [
    "AdditiveScore",
    "DotScore",
    "GeneralScore",
    "MultiHeadAttention",
    "ScaledDotScore",
    "causal_mask",
    "masked_softmax",
    "padding_mask",
    "scaled_dot_product_attention",
]


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_tensor(name: str, value: object, dims: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {value.dtype}")
    if dims is not None and value.dim() != dims:
        raise ValueError(f"{name}: expected {dims} dimensions, got shape {tuple(value.shape)}")
    return value


def _check_query_keys(
    query: object, keys: object, query_dim: int | None = None, key_dim: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both ``(batch, len, features)``, same batch and dtype, feature sizes as declared."""
    query = _check_tensor("query", query, 3)
    keys = _check_tensor("keys", keys, 3)
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


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# Score functions
# --------------------------------------------------------------------------------------


class DotScore(nn.Module):
    """Luong's "dot" score: ``score(q, k) = q · k``. No parameters.

    ``forward(query, keys)``: query ``(batch, q_len, d)``, keys ``(batch, k_len, d)``
    -> scores ``(batch, q_len, k_len)``. Query and keys need the same size ``d``.

    Used in: notebooks/03_attention.ipynb, section 2.
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

    Used in: notebooks/03_attention.ipynb, section 2.
    """

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.query_dim = _check_positive("query_dim", query_dim)
        self.key_dim = _check_positive("key_dim", key_dim)
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

    Used in: notebooks/03_attention.ipynb, section 2.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.query_dim = _check_positive("query_dim", query_dim)
        self.key_dim = _check_positive("key_dim", key_dim)
        _check_positive("hidden_dim", hidden_dim)
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        query, keys = _check_query_keys(query, keys, self.query_dim, self.key_dim)
        q = self.query_proj(query).unsqueeze(2)  # (batch, q_len, 1, hidden)
        k = self.key_proj(keys).unsqueeze(1)  # (batch, 1, k_len, hidden)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (batch, q_len, k_len)


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
    _check_tensor("scores", scores)
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
    _check_positive("q_len", q_len)
    k_len = q_len if k_len is None else _check_positive("k_len", k_len)
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


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

    Used in: notebooks/03_attention.ipynb, section 3.
    """
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        _check_tensor(name, tensor)
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
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, int | float):
        raise TypeError(f"dropout_p: expected a number in [0, 1), got {dropout_p!r}")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p: expected a number in [0, 1), got {dropout_p!r}")

    if mask is not None:
        _check_mask(mask, (*query.shape[:-1], key.shape[-2]))

    # Scaling the queries rather than the scores gives the same numbers up to rounding and
    # touches q_len * d_k values instead of q_len * k_len.
    scores = (query / math.sqrt(query.shape[-1])) @ key.transpose(-2, -1)  # (..., q_len, k_len)
    if need_weights:
        weights = masked_softmax(scores, mask)
        return _dropout(weights, dropout_p, generator) @ value, weights

    # Without the weights, normalise at the end, as FlashAttention does:
    #     softmax(s) @ V = (exp(s - max) @ V) / sum(exp(s - max)).
    # Dividing the (q_len, d_v) output instead of the (q_len, k_len) weights, and working
    # in place on `scores` (a new tensor that nothing else holds; autograd allows these
    # in-place steps), saves a pass over the largest tensor here and a copy of it. Fused
    # kernels go further and never store the scores at all.
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
# Multi-head attention
# --------------------------------------------------------------------------------------


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
        _check_positive("d_model", d_model)
        _check_positive("num_heads", num_heads)
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}): each "
                f"head gets d_model // num_heads features"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TypeError(f"dropout: expected a number in [0, 1), got {dropout!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.dropout = float(dropout)
        self.kdim = d_model if kdim is None else _check_positive("kdim", kdim)
        self.vdim = d_model if vdim is None else _check_positive("vdim", vdim)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(self.kdim, d_model, bias=bias)
        self.v_proj = nn.Linear(self.vdim, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model)`` -> ``(batch, heads, seq, d_head)``.

        Head ``h`` gets features ``h * d_head … (h + 1) * d_head - 1`` of each position.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x: expected (batch, seq, d_model={self.d_model}), got {tuple(x.shape)}"
            )
        batch, seq, _ = x.shape
        return x.reshape(batch, seq, self.num_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, heads, seq, d_head)`` -> ``(batch, seq, d_model)``: `split_heads` undone."""
        expected = (self.num_heads, self.d_head)
        if x.dim() != 4 or (x.shape[1], x.shape[3]) != expected:
            raise ValueError(
                f"x: expected (batch, heads={self.num_heads}, seq, d_head={self.d_head}), "
                f"got {tuple(x.shape)}"
            )
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.d_model)

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
        q = self.split_heads(self.q_proj(query))
        k = self.split_heads(self.k_proj(key))
        v = self.split_heads(self.v_proj(value))
        dropout_p = self.dropout if self.training else 0.0
        attended, weights = scaled_dot_product_attention(
            q, k, v, mask, dropout_p, need_weights=need_weights
        )
        return self.out_proj(self.merge_heads(attended)), weights

    def _check_inputs(self, query: object, key: object, value: object) -> None:
        sizes = {"query": self.d_model, "key": self.kdim, "value": self.vdim}
        tensors = {"query": query, "key": key, "value": value}
        for name, tensor in tensors.items():
            _check_tensor(name, tensor, 3)
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
# Exercise: attention.masked_softmax
# --------------------------------------------------------------------------------------


def masked_softmax_solution(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension where ``mask`` is True; fully masked rows give 0."""
    scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True).detach()
    row_max = row_max.masked_fill(row_max == float("-inf"), 0.0)
    exp = torch.exp(scores - row_max)
    total = exp.sum(dim=-1, keepdim=True)
    return exp / total.masked_fill(total == 0, 1.0)


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
    return masked_softmax_solution(scores, ~mask)


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
        solution=masked_softmax_solution,
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


def attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d_k)) V`` with a bool mask (True = may attend)."""
    scores = query @ key.transpose(-2, -1) / key.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(32)

    def qkv(leading, q_len, k_len, d_k, d_v):
        return (
            torch.randn(*leading, q_len, d_k, generator=g),
            torch.randn(*leading, k_len, d_k, generator=g),
            torch.randn(*leading, k_len, d_v, generator=g),
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
    ]


def _attention_unscaled(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


def _attention_scaled_by_d_k(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / key.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


def _attention_scaled_by_d_v(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / value.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value


def _attention_softmax_over_queries(query, key, value, mask=None):
    scores = query @ key.transpose(-2, -1) / key.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-2) @ value


register(
    Exercise(
        id="attention.scaled_dot_product_attention",
        chapter="attention",
        prompt=(
            "Write scaled dot-product attention, `softmax(Q K^T / sqrt(d_k)) V`. `query` "
            "is `(..., q_len, d_k)`, `key` `(..., k_len, d_k)`, `value` `(..., k_len, d_v)`; "
            "`mask` (optional) is bool and True where a query may attend a key. Return the "
            "output `(..., q_len, d_v)`."
        ),
        signature="def attention(query, key, value, mask=None) -> torch.Tensor",
        solution=attention,
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
                "Use `key.transpose(-2, -1)`, not `.T`, so that leading batch and head "
                "dimensions stay in place; fill masked scores with `-inf` before the softmax."
            ),
        ),
        wrong_answers=(
            _attention_unscaled,
            _attention_scaled_by_d_k,
            _attention_scaled_by_d_v,
            _attention_softmax_over_queries,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercises: attention.split_heads and attention.merge_heads
# --------------------------------------------------------------------------------------


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, heads, seq, d_model // heads)``."""
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, seq, d_head)`` -> ``(batch, seq, heads * d_head)``."""
    batch, heads, seq, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * d_head)


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


def causal_mask_solution(q_len: int, k_len: int) -> torch.Tensor:
    """Bool ``(q_len, k_len)``: query ``i`` may attend keys ``0 … i``."""
    return torch.ones(q_len, k_len, dtype=torch.bool).tril()


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
        solution=causal_mask_solution,
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
            "question": "Scores (2, 0) go through a softmax. What weight does the first key "
            "get? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.881,
                    "correct": True,
                    "feedback": "Right: e² / (e² + 1) ≈ 0.881. With scores 20 and 0 it would "
                    "be 1.000 to three digits: large scores make the softmax one-hot.",
                },
                {
                    "type": "value",
                    "value": 1,
                    "correct": False,
                    "feedback": "The second key still gets e^0 / (e² + 1) ≈ 0.119.",
                },
                {"type": "default", "feedback": "Compute e² / (e² + e⁰)."},
            ],
        },
    ],
)
