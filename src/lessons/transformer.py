"""The Transformer of Vaswani et al. (2017), built from chapter 3's multi-head attention.

Used in: notebooks/04_transformer.ipynb. The module follows the chapter:

1. Positional encodings (section 2): `sinusoidal_encoding`, `SinusoidalPositions`,
   `LearnedPositions`, and `TokenEmbedding` (embeddings times ``sqrt(d_model)``).
2. The layers (section 3): `FeedForward`, `EncoderLayer`, `DecoderLayer`, `Encoder`,
   `Decoder`. Each layer is post-norm (the paper: ``x = norm(x + sublayer(x))``) or
   pre-norm (``norm_first=True``: ``x = x + sublayer(norm(x))``, as in GPT-2 and most
   later models). Attention is `lessons.attention.MultiHeadAttention`: there is no second
   implementation here.
3. Masks (section 4): inside, chapter 3's convention, a bool mask that is **True where a
   query may attend**. `mask_from_torch` turns PyTorch's masks (True or ``-inf`` =
   blocked) into ours, once, at the boundary.
4. `Transformer` (section 5): the counterpart of ``nn.Transformer(batch_first=True)``,
   with the same ``forward`` arguments and `Transformer.from_torch` to copy its weights.
5. The training recipe (section 6): `label_smoothed_cross_entropy`, `warmup_schedule`
   (the paper's learning rate), `paper_optimizer`.
6. Decoding (section 7): `KVCache`, `TransformerSeq2Seq` (embeddings, positions and the
   output layer around a `Transformer`, for the character tasks of
   `lessons.core.tasks`), `greedy_search` and `beam_search` (batched, with length
   normalisation), both decoding one step at a time from cached keys and values.
7. The decoder-only model (section 9): `TransformerLM`, the same decoder layers with a
   causal mask and no cross-attention, the shape of GPT; `sample` generates text with a
   temperature and top-k.

Argument checks come last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lessons.attention import (
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)
from lessons.core import checks
from lessons.core.checkpoint import Checkpointed, checkpoint_class
from lessons.core.tasks import ALPHABET, CharVocab
from lessons.core.train import History, train
from lessons.core.vocab import Vocabulary

__all__ = [
    "ACTIVATIONS",
    "POSITIONS",
    "SOURCE_POSITIONS",
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "KVCache",
    "LayerCache",
    "LearnedPositions",
    "SinusoidalPositions",
    "TokenEmbedding",
    "Transformer",
    "TransformerLM",
    "TransformerSeq2Seq",
    "beam_search",
    "beam_step",
    "cached_attention",
    "decoder_mask",
    "greedy_search",
    "label_smoothed_cross_entropy",
    "lm_batch",
    "lm_specials",
    "load_lm_vocab",
    "load_model",
    "load_pretrained",
    "mask_from_torch",
    "paper_optimizer",
    "perplexity",
    "pretrained_names",
    "pretrained_path",
    "sample",
    "seq2seq_loss",
    "sinusoidal_encoding",
    "train_transformer",
    "translate",
    "warmup_schedule",
]

#: The ``activation`` argument of the layers, as ``nn.TransformerEncoderLayer`` names them.
ACTIVATIONS = ("relu", "gelu")
#: The ``positions`` argument of `TransformerLM`.
POSITIONS = ("sinusoidal", "learned")
#: The ``source_positions`` argument of `TransformerSeq2Seq` (chapter 3 compares them).
SOURCE_POSITIONS = ("sinusoidal", "convolution", "convolution+sinusoidal")
#: Where the shipped models are: inside the package, so a pip install has them.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


# --------------------------------------------------------------------------------------
# 1. Positional encodings
# --------------------------------------------------------------------------------------


def sinusoidal_encoding(
    length: int,
    d_model: int,
    start: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The paper's positional encodings, ``(length, d_model)``, for positions ``start …
    start + length - 1``:

        PE(pos, 2i) = sin(pos / 10000^(2i / d_model)),
        PE(pos, 2i + 1) = cos(pos / 10000^(2i / d_model)).

    Pair ``i`` turns at the frequency ``ω_i = 10000^(-2i / d_model)``, from one turn
    every ``2π`` positions (``i = 0``) to one every ``2π · 10000``. Because each pair is
    a point on a circle, moving ``k`` positions is a rotation by the angle ``k ω_i``
    whatever the position: ``PE(pos + k) = R(k) PE(pos)`` (section 2 shows it).

    Used in: notebooks/04_transformer.ipynb, section 2.
    """
    checks.positive_int("length", length)
    checks.positive_int("d_model", d_model)
    checks.positive_int("start", start, minimum=0)
    if d_model % 2:
        raise ValueError(f"d_model: expected an even number (sine and cosine pairs), got {d_model}")
    position = torch.arange(start, start + length, dtype=torch.float64, device=device)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)
    frequency = 10000.0 ** (-two_i / d_model)  # ω_i, (d_model / 2,)
    angle = position * frequency  # (length, d_model / 2)
    encoding = torch.empty(length, d_model, dtype=torch.float64, device=device)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle)
    return encoding.to(dtype)


class SinusoidalPositions(nn.Module):
    """Adds `sinusoidal_encoding` to ``x`` ``(batch, seq, d_model)``; no parameters.

    ``start`` is the position of ``x[:, 0]`` (during incremental decoding, the number of
    tokens already written). ``dropout`` follows the sum, as in the paper (§5.4).

    Used in: notebooks/04_transformer.ipynb, section 2.
    """

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.dropout = nn.Dropout(checks.probability("dropout", dropout))

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        encoding = sinusoidal_encoding(x.shape[1], self.d_model, start, x.dtype, x.device)
        return self.dropout(x + encoding)


class LearnedPositions(nn.Module):
    """Adds a learned vector per position (``max_len`` of them) to ``x`` ``(batch, seq,
    d_model)``, as BERT and GPT do; positions past ``max_len`` raise a ValueError.

    Used in: notebooks/04_transformer.ipynb, section 2.
    """

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.max_len = checks.positive_int("max_len", max_len)
        self.embedding = nn.Embedding(max_len, checks.positive_int("d_model", d_model))
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(checks.probability("dropout", dropout))

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        if start + x.shape[1] > self.max_len:
            raise ValueError(
                f"x: positions {start}…{start + x.shape[1] - 1} asked for, but only "
                f"max_len={self.max_len} positions were learned"
            )
        positions = torch.arange(start, start + x.shape[1], device=x.device)
        return self.dropout(x + self.embedding(positions))


class TokenEmbedding(nn.Module):
    """Token ids ``(batch, seq)`` -> vectors ``(batch, seq, d_model)``, times ``sqrt(d_model)``.

    The paper multiplies the embeddings by ``sqrt(d_model)`` (§3.4). The weights start
    with standard deviation ``d_model ** -0.5``, so the scaled vectors have entries of
    variance about 1, the scale of the sinusoidal encodings they are added to. The same
    weight matrix can serve as the output layer (``weight`` tying, §3.4): the logits are
    then ``h @ embedding.weight.T``.

    Used in: notebooks/04_transformer.ipynb, section 2.
    """

    def __init__(self, vocab_size: int, d_model: int, padding_idx: int | None = None):
        super().__init__()
        checks.positive_int("vocab_size", vocab_size)
        self.d_model = checks.positive_int("d_model", d_model)
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        if padding_idx is not None:
            with torch.no_grad():
                self.embedding.weight[padding_idx].zero_()

    @property
    def weight(self) -> nn.Parameter:
        return self.embedding.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        checks.tensor("ids", ids, dims=2, dtype="int", layout="(batch, seq)")
        return self.embedding(ids) * math.sqrt(self.d_model)


# --------------------------------------------------------------------------------------
# 2. The layers
# --------------------------------------------------------------------------------------


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``linear2(dropout(activation(linear1(x))))``.

    ``(..., d_model) -> (..., dim_feedforward) -> (..., d_model)``, the same two linear
    maps at every position (§3.3). The names are ``nn.TransformerEncoderLayer``'s.

    Used in: notebooks/04_transformer.ipynb, section 3.
    """

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        activation: str = "relu",
        bias: bool = True,
    ):
        super().__init__()
        checks.one_of("activation", activation, ACTIVATIONS)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.activation = nn.ReLU() if activation == "relu" else nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


@dataclass
class LayerCache:
    """One decoder layer's cached keys and values, each ``(batch, heads, len, d_head)``.

    ``self_key`` / ``self_value`` grow by one position per decoding step; ``cross_key`` /
    ``cross_value`` are the projected encoder output, computed at the first step.
    """

    self_key: torch.Tensor | None = None
    self_value: torch.Tensor | None = None
    cross_key: torch.Tensor | None = None
    cross_value: torch.Tensor | None = None


@dataclass
class KVCache:
    """The keys and values an incremental decoder has computed so far, one `LayerCache`
    per layer, and ``length``, the number of positions they cover.

    Writing token ``t`` then costs one new key and value per layer instead of recomputing
    the whole prefix: ``O(t)`` work per step instead of ``O(t²)``.

    Used in: notebooks/04_transformer.ipynb, section 7.
    """

    layers: list[LayerCache] = field(default_factory=list)
    length: int = 0

    @classmethod
    def empty(cls, num_layers: int) -> KVCache:
        return cls([LayerCache() for _ in range(num_layers)], 0)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` ``(new_batch,)`` of every cached tensor (beam search)."""
        for layer in self.layers:
            for name in ("self_key", "self_value", "cross_key", "cross_value"):
                tensor = getattr(layer, name)
                if tensor is not None:
                    setattr(layer, name, tensor.index_select(0, index))


def cached_attention(
    attention: MultiHeadAttention,
    query: torch.Tensor,
    key_value: torch.Tensor | None,
    cached: tuple[torch.Tensor | None, torch.Tensor | None],
    mask: torch.Tensor | None,
    append: bool,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``attention`` (a `MultiHeadAttention`) run with cached keys and values.

    ``query`` ``(batch, q_len, d_model)`` are the new positions. For self-attention
    (``append=True``) the new positions' keys and values, projected from ``key_value``,
    are appended to the ``cached`` ones; for cross-attention (``append=False``) the
    cached ones are used as they are, or projected from ``key_value`` (the encoder
    output) the first time. ``mask`` (True = may attend) is ``(batch, 1 or heads, q_len,
    all keys)``. Returns ``(output, weights, keys, values)``: the attention output
    ``(batch, q_len, d_model)``, the weights ``(batch, heads, q_len, k_len)`` (None unless
    ``need_weights``) and the keys and values to cache ``(batch, heads, k_len, d_head)``.

    The projections and `scaled_dot_product_attention` are those of ``attention``, so the
    numbers are the same as calling ``attention`` on the whole sequence.

    Used in: notebooks/04_transformer.ipynb, section 7.
    """
    heads = attention.num_heads
    key, value = cached
    if key is None or append:
        new_key = split_heads(attention.k_proj(key_value), heads)
        new_value = split_heads(attention.v_proj(key_value), heads)
        if key is None:
            key, value = new_key, new_value
        else:
            key, value = torch.cat([key, new_key], dim=2), torch.cat([value, new_value], dim=2)
    q = split_heads(attention.q_proj(query), heads)
    attended, weights = scaled_dot_product_attention(q, key, value, mask, need_weights=need_weights)
    return attention.out_proj(merge_heads(attended)), weights, key, value


def _inner_dropouts(
    dropout: float, attention: float | None, activation: float | None
) -> tuple[float, float]:
    """The dropout on the attention weights and after the activation: ``dropout`` unless
    given."""
    attention = dropout if attention is None else checks.probability("attention_dropout", attention)
    activation = (
        dropout if activation is None else checks.probability("activation_dropout", activation)
    )
    return attention, activation


class EncoderLayer(nn.Module):
    """Self-attention, then the feed-forward network, each in a residual connection.

    Post-norm (``norm_first=False``, the paper)::

        x = norm1(x + dropout1(self_attn(x, x, x)))
        x = norm2(x + dropout2(feed_forward(x)))

    Pre-norm (``norm_first=True``)::

        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(feed_forward(norm2(x)))

    ``dropout`` goes where the paper puts it (§5.4: on each sublayer's output before the
    residual sum) and where PyTorch adds it (on the attention weights and after the
    feed-forward activation). Same arguments and defaults as
    ``nn.TransformerEncoderLayer(batch_first=True)``; `from_torch` copies one.
    ``attention_dropout`` and ``activation_dropout`` (default: ``dropout``) set those two
    apart, as BERT does (chapter 5: dropout on the attention weights, none after GELU).

    ``forward(x, mask=None)``: ``x`` ``(batch, seq, d_model)``; ``mask`` bool, True =
    may attend, ``(seq, seq)`` or ``(batch, 1 or seq, seq)``. Returns ``(batch, seq,
    d_model)``.

    Used in: notebooks/04_transformer.ipynb, section 3.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        attention_dropout: float | None = None,
        activation_dropout: float | None = None,
    ):
        super().__init__()
        checks.probability("dropout", dropout)
        checks.positive_int("dim_feedforward", dim_feedforward)
        attention_dropout, activation_dropout = _inner_dropouts(
            dropout, attention_dropout, activation_dropout
        )
        self.norm_first = bool(norm_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=attention_dropout, bias=bias)
        self.feed_forward = FeedForward(
            d_model, dim_feedforward, activation_dropout, activation, bias
        )
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        #: Set to True to keep the attention weights of the last forward in ``weights``.
        self.keep_weights = False
        self.weights: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), mask)
            return x + self.dropout2(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self._self_attention(x, mask))
        return self.norm2(x + self.dropout2(self.feed_forward(x)))

    def _self_attention(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out, weights = self.self_attn(x, x, x, mask, need_weights=self.keep_weights)
        if self.keep_weights:
            self.weights["self"] = weights.detach()
        return self.dropout1(out)

    @classmethod
    def from_torch(cls, module: nn.TransformerEncoderLayer) -> EncoderLayer:
        """An `EncoderLayer` with the weights and settings of ``module``, an
        ``nn.TransformerEncoderLayer`` (``batch_first=True``; copies, does not share)."""
        _check_torch_layer("module", module, nn.TransformerEncoderLayer)
        # in the module's dtype before copying, so that nothing is rounded on the way
        ours = cls(**_torch_layer_settings(module)).to(module.linear1.weight.dtype)
        ours.self_attn = MultiHeadAttention.from_torch(module.self_attn)
        _copy_feed_forward(ours.feed_forward, module)
        _copy_norms(ours, module, ("norm1", "norm2"))
        return ours.train(module.training)


class DecoderLayer(nn.Module):
    """Masked self-attention, attention to the encoder's output, then the feed-forward
    network, each in a residual connection (post-norm, or pre-norm with ``norm_first``)::

        y = norm1(y + dropout1(self_attn(y, y, y, self_mask)))          # post-norm
        y = norm2(y + dropout2(cross_attn(y, memory, memory, memory_mask)))
        y = norm3(y + dropout3(feed_forward(y)))

    With ``cross_attention=False`` there is no second sublayer (``cross_attn`` and
    ``norm2`` are None): a decoder-only model such as GPT (`TransformerLM`).

    ``forward(y, memory=None, self_mask=None, memory_mask=None, cache=None)``: ``y``
    ``(batch, tgt_len, d_model)``, ``memory`` ``(batch, src_len, d_model)``, masks bool
    (True = may attend) that broadcast to ``(batch, heads, tgt_len, tgt_len)`` and
    ``(batch, heads, tgt_len, src_len)``. With a `LayerCache`, ``y`` holds only the new
    positions; their keys and values are appended to the cache (``self_mask`` must then
    cover the cached positions too). Returns ``(batch, tgt_len, d_model)``.

    Same arguments and defaults as ``nn.TransformerDecoderLayer(batch_first=True)``;
    `from_torch` copies one.

    Used in: notebooks/04_transformer.ipynb, sections 3 and 7.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
        cross_attention: bool = True,
        attention_dropout: float | None = None,
        activation_dropout: float | None = None,
    ):
        super().__init__()
        checks.probability("dropout", dropout)
        checks.positive_int("dim_feedforward", dim_feedforward)
        attention_dropout, activation_dropout = _inner_dropouts(
            dropout, attention_dropout, activation_dropout
        )
        self.norm_first = bool(norm_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=attention_dropout, bias=bias)
        self.cross_attn = (
            MultiHeadAttention(d_model, nhead, dropout=attention_dropout, bias=bias)
            if cross_attention
            else None
        )
        self.feed_forward = FeedForward(
            d_model, dim_feedforward, activation_dropout, activation, bias
        )
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = (
            nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if cross_attention else None
        )
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        #: Set to True to keep the attention weights of the last forward in ``weights``
        #: (``"self"`` and ``"cross"``, each ``(batch, heads, tgt_len, keys)``).
        self.keep_weights = False
        self.weights: dict[str, torch.Tensor] = {}

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        if (memory is None) != (self.cross_attn is None):
            raise ValueError(
                "memory: a layer with cross-attention needs the encoder's output, a layer "
                f"without it takes none; cross_attention={self.cross_attn is not None}, "
                f"memory {'None' if memory is None else tuple(memory.shape)}"
            )
        if self.norm_first:
            y = y + self._self_attention(self.norm1(y), self_mask, cache)
            if self.cross_attn is not None:
                y = y + self._cross_attention(self.norm2(y), memory, memory_mask, cache)
            return y + self.dropout3(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self._self_attention(y, self_mask, cache))
        if self.cross_attn is not None:
            y = self.norm2(y + self._cross_attention(y, memory, memory_mask, cache))
        return self.norm3(y + self.dropout3(self.feed_forward(y)))

    def _self_attention(
        self, y: torch.Tensor, mask: torch.Tensor | None, cache: LayerCache | None
    ) -> torch.Tensor:
        if cache is None:
            out, weights = self.self_attn(y, y, y, mask, need_weights=self.keep_weights)
        else:
            cached = (cache.self_key, cache.self_value)
            out, weights, cache.self_key, cache.self_value = cached_attention(
                self.self_attn, y, y, cached, mask, append=True, need_weights=self.keep_weights
            )
        if self.keep_weights:
            self.weights["self"] = weights.detach()
        return self.dropout1(out)

    def _cross_attention(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor | None,
        cache: LayerCache | None,
    ) -> torch.Tensor:
        if cache is None:
            out, weights = self.cross_attn(y, memory, memory, mask, need_weights=self.keep_weights)
        else:
            cached = (cache.cross_key, cache.cross_value)
            out, weights, cache.cross_key, cache.cross_value = cached_attention(
                self.cross_attn,
                y,
                memory,
                cached,
                mask,
                append=False,
                need_weights=self.keep_weights,
            )
        if self.keep_weights:
            self.weights["cross"] = weights.detach()
        return self.dropout2(out)

    @classmethod
    def from_torch(cls, module: nn.TransformerDecoderLayer) -> DecoderLayer:
        """A `DecoderLayer` with the weights and settings of ``module``, an
        ``nn.TransformerDecoderLayer`` (``batch_first=True``; copies, does not share)."""
        _check_torch_layer("module", module, nn.TransformerDecoderLayer)
        # in the module's dtype before copying, so that nothing is rounded on the way
        ours = cls(**_torch_layer_settings(module)).to(module.linear1.weight.dtype)
        ours.self_attn = MultiHeadAttention.from_torch(module.self_attn)
        ours.cross_attn = MultiHeadAttention.from_torch(module.multihead_attn)
        _copy_feed_forward(ours.feed_forward, module)
        _copy_norms(ours, module, ("norm1", "norm2", "norm3"))
        return ours.train(module.training)


class Encoder(nn.Module):
    """``num_layers`` `EncoderLayer` s, then a final LayerNorm (``final_norm``).

    PyTorch's ``nn.Transformer`` ends its encoder and decoder stacks with a LayerNorm in
    both the post-norm and the pre-norm setting; the paper has none (its post-norm
    layers already end with one). A pre-norm stack needs it: without it the residual
    stream leaves the stack unnormalised.

    ``forward(x, mask=None)``: ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``;
    ``mask`` as in `EncoderLayer`.

    Used in: notebooks/04_transformer.ipynb, section 3.
    """

    def __init__(self, num_layers: int, d_model: int, nhead: int, final_norm: bool = True, **layer):
        super().__init__()
        checks.positive_int("num_layers", num_layers)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, nhead, **layer) for _ in range(num_layers)
        )
        eps, bias = layer.get("layer_norm_eps", 1e-5), layer.get("bias", True)
        self.norm = nn.LayerNorm(d_model, eps=eps, bias=bias) if final_norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x if self.norm is None else self.norm(x)


class Decoder(nn.Module):
    """``num_layers`` `DecoderLayer` s, then a final LayerNorm (``final_norm``; see `Encoder`).

    ``forward(y, memory=None, self_mask=None, memory_mask=None, cache=None)`` as in
    `DecoderLayer`, with a `KVCache` (one `LayerCache` per layer) for incremental
    decoding; returns ``(batch, tgt_len, d_model)``.

    Used in: notebooks/04_transformer.ipynb, sections 3 and 7.
    """

    def __init__(self, num_layers: int, d_model: int, nhead: int, final_norm: bool = True, **layer):
        super().__init__()
        checks.positive_int("num_layers", num_layers)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, nhead, **layer) for _ in range(num_layers)
        )
        eps, bias = layer.get("layer_norm_eps", 1e-5), layer.get("bias", True)
        self.norm = nn.LayerNorm(d_model, eps=eps, bias=bias) if final_norm else None

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            y = layer(y, memory, self_mask, memory_mask, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.length += y.shape[1]
        return y if self.norm is None else self.norm(y)


# --------------------------------------------------------------------------------------
# 3. Masks: PyTorch's convention at the boundary, ours inside
# --------------------------------------------------------------------------------------


def mask_from_torch(
    attn_mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
    batch: int,
    num_heads: int,
    q_len: int,
    k_len: int,
    names: tuple[str, str] = ("attn_mask", "key_padding_mask"),
) -> torch.Tensor | None:
    """PyTorch's two attention masks as one of ours: bool, **True = may attend**.

    PyTorch (``nn.MultiheadAttention``, ``nn.Transformer``) takes

    * ``attn_mask`` ``(q_len, k_len)`` or ``(batch * num_heads, q_len, k_len)``: bool with
      **True = blocked**, or float, **added to the scores** (``-inf`` blocks, 0 allows);
    * ``key_padding_mask`` ``(batch, k_len)``: bool with **True = blocked** (a padded
      key), or float, added.

    Ours is one bool mask, True where a query may attend a key. A float mask converts
    exactly when it holds only 0 and ``-inf``; any other value is a learned or chosen
    bias, which chapter 3's attention does not take, and raises a ValueError.

    Returns ``(batch, 1 or num_heads, q_len, k_len)``, or None if both masks are None.

    Used in: notebooks/04_transformer.ipynb, section 4.
    """
    allowed = None
    if attn_mask is not None:
        allowed = _allowed(names[0], attn_mask)
        if allowed.dim() == 2:
            _check_shape(names[0], allowed, [(q_len, k_len)])
            allowed = allowed[None, None]
        else:
            _check_shape(names[0], allowed, [(q_len, k_len), (batch * num_heads, q_len, k_len)])
            allowed = allowed.reshape(batch, num_heads, q_len, k_len)
    if key_padding_mask is not None:
        real = _allowed(names[1], key_padding_mask)
        _check_shape(names[1], real, [(batch, k_len)])
        real = real[:, None, None, :]
        allowed = real if allowed is None else allowed & real
    return allowed


def decoder_mask(real: torch.Tensor) -> torch.Tensor:
    """The mask of a decoder's self-attention over padded targets: bool ``(batch, 1,
    tgt_len, tgt_len)``, True where query ``i`` may attend key ``j``, that is when ``j <=
    i`` (`causal_mask`: no peeking at the future) and ``j`` is a real token.

    ``real`` is bool ``(batch, tgt_len)``, False at padding; the 1 broadcasts over the
    heads. With right padding the causal part alone already hides the padding from every
    real token (padding comes after it); with left padding it does not.

    Used in: notebooks/04_transformer.ipynb, section 4.
    """
    real = checks.tensor("real", real, dims=2, dtype=torch.bool, layout="(batch, tgt_len)")
    no_future = causal_mask(real.shape[1], device=real.device)  # (tgt_len, tgt_len)
    return no_future & real[:, None, None, :]  # real keys, for every query and head


def _allowed(name: str, mask: object) -> torch.Tensor:
    """``~mask`` for a bool PyTorch mask; ``mask == 0`` for a 0 / -inf float mask."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"{name}: expected a bool or float tensor or None, got {type(mask).__name__}"
        )
    if mask.dtype == torch.bool:
        return ~mask
    if not mask.is_floating_point():
        raise TypeError(
            f"{name}: expected a bool mask (True = blocked) or a float mask (added to the "
            f"scores), got {mask.dtype}"
        )
    blocked = mask == -math.inf
    if not bool(((mask == 0) | blocked).all()):
        raise ValueError(
            f"{name}: a float mask must hold only 0 (attend) and -inf (blocked) here; other "
            f"values are an additive bias on the scores, which chapter 3's attention does "
            f"not take; got values such as {mask[(mask != 0) & ~blocked][:3].tolist()}"
        )
    return ~blocked


def _check_shape(name: str, mask: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> None:
    if tuple(mask.shape) not in [tuple(s) for s in shapes]:
        expected = " or ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(mask.shape)}")


# --------------------------------------------------------------------------------------
# 4. The Transformer, the counterpart of nn.Transformer
# --------------------------------------------------------------------------------------


class Transformer(nn.Module):
    """The encoder-decoder of Vaswani et al. (2017), as ``nn.Transformer(batch_first=True)``.

    Inputs are already embedded (``src`` ``(batch, src_len, d_model)``, ``tgt``
    ``(batch, tgt_len, d_model)``); `TransformerSeq2Seq` adds token embeddings, positions
    and the output layer. The constructor takes ``nn.Transformer``'s arguments and
    defaults (the paper's base model), and ``forward`` takes its six masks **with
    PyTorch's meaning** (bool True or float ``-inf`` = blocked; key-padding masks
    ``(batch, len)``, True = padding), converted once by `mask_from_torch`. Inside,
    ``encoder`` and ``decoder`` take chapter 3's masks (True = may attend).

    Differences from PyTorch, all on purpose and all written up in section 5:

    * a query with every key masked gets a zero output here, as from
      ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` gives NaN whenever
      it computes the weights (and in eval mode), so PyTorch's layers may too;
    * a float mask may only hold 0 and ``-inf`` (`mask_from_torch`);
    * no fast path: PyTorch's inference fast path (eval mode, no grad, a padding mask)
      returns 0 at padded positions of the encoder output, while this module computes
      them like any other position. The real positions agree.

    Used in: notebooks/04_transformer.ipynb, section 5.
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        self.d_model, self.nhead = d_model, nhead
        layer = dict(
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            norm_first=norm_first,
            bias=bias,
        )
        self.encoder = Encoder(num_encoder_layers, d_model, nhead, **layer)
        self.decoder = Decoder(num_decoder_layers, d_model, nhead, **layer)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(batch, tgt_len, d_model)``: the decoder's output for every target position.

        ``src_mask`` ``(src_len, src_len)``, ``tgt_mask`` ``(tgt_len, tgt_len)`` (e.g.
        ``nn.Transformer.generate_square_subsequent_mask(tgt_len)``), ``memory_mask``
        ``(tgt_len, src_len)``, each also ``(batch * nhead, …)``; the key-padding masks
        ``(batch, src_len)``, ``(batch, tgt_len)`` and ``(batch, src_len)``. PyTorch's
        meaning: True (or ``-inf``) = blocked.
        """
        checks.tensor("src", src, dims=3, dtype="float", layout="(batch, src_len, d_model)")
        checks.tensor("tgt", tgt, dims=3, dtype="float", layout="(batch, tgt_len, d_model)")
        if (
            src.shape[0] != tgt.shape[0]
            or src.shape[2] != self.d_model
            or tgt.shape[2] != self.d_model
        ):
            raise ValueError(
                f"src and tgt: expected (batch, len, {self.d_model}) with one batch size, got "
                f"src {tuple(src.shape)} and tgt {tuple(tgt.shape)}"
            )
        batch, src_len, tgt_len = src.shape[0], src.shape[1], tgt.shape[1]
        h = self.nhead
        encoder_mask = mask_from_torch(
            src_mask,
            src_key_padding_mask,
            batch,
            h,
            src_len,
            src_len,
            ("src_mask", "src_key_padding_mask"),
        )
        self_mask = mask_from_torch(
            tgt_mask,
            tgt_key_padding_mask,
            batch,
            h,
            tgt_len,
            tgt_len,
            ("tgt_mask", "tgt_key_padding_mask"),
        )
        cross_mask = mask_from_torch(
            memory_mask,
            memory_key_padding_mask,
            batch,
            h,
            tgt_len,
            src_len,
            ("memory_mask", "memory_key_padding_mask"),
        )
        memory = self.encoder(src, encoder_mask)
        return self.decoder(tgt, memory, self_mask, cross_mask)

    @classmethod
    def from_torch(cls, module: nn.Transformer) -> Transformer:
        """A `Transformer` with the weights and settings of ``module``, an
        ``nn.Transformer(batch_first=True)`` built from its own layers (any sizes,
        ``norm_first`` True or False, ReLU or GELU). Copies, does not share."""
        if not isinstance(module, nn.Transformer):
            raise TypeError(f"module: expected a torch.nn.Transformer, got {type(module).__name__}")
        first = module.encoder.layers[0]
        _check_torch_layer("module", first, nn.TransformerEncoderLayer)
        settings = _torch_layer_settings(first)
        ours = cls(
            d_model=first.self_attn.embed_dim,
            nhead=first.self_attn.num_heads,
            num_encoder_layers=len(module.encoder.layers),
            num_decoder_layers=len(module.decoder.layers),
            **{k: v for k, v in settings.items() if k not in ("d_model", "nhead")},
        )
        ours.to(first.linear1.weight.dtype)  # before copying: nothing rounded on the way
        ours.encoder.layers = nn.ModuleList(
            EncoderLayer.from_torch(m) for m in module.encoder.layers
        )
        ours.decoder.layers = nn.ModuleList(
            DecoderLayer.from_torch(m) for m in module.decoder.layers
        )
        for stack, theirs in ((ours.encoder, module.encoder), (ours.decoder, module.decoder)):
            if theirs.norm is None:
                stack.norm = None
            else:
                stack.norm.load_state_dict(theirs.norm.state_dict())
        return ours.train(module.training)


def _check_torch_layer(name: str, module: object, kind: type) -> None:
    if not isinstance(module, kind):
        raise TypeError(f"{name}: expected a torch.nn.{kind.__name__}, got {type(module).__name__}")
    if not module.self_attn.batch_first:
        raise ValueError(
            f"{name}: expected batch_first=True (ours is batch first: (batch, seq, d_model)); "
            f"build the PyTorch module with batch_first=True"
        )


def _torch_layer_settings(module: nn.Module) -> dict[str, Any]:
    """The constructor arguments of a PyTorch encoder or decoder layer."""
    activation = module.activation
    if activation is F.relu or isinstance(activation, nn.ReLU):
        name = "relu"
    elif activation is F.gelu or isinstance(activation, nn.GELU):
        name = "gelu"
    else:
        raise ValueError(f"module: only ReLU and GELU layers are supported, got {activation!r}")
    return {
        "d_model": module.self_attn.embed_dim,
        "nhead": module.self_attn.num_heads,
        "dim_feedforward": module.linear1.out_features,
        "dropout": module.dropout.p,
        "activation": name,
        "layer_norm_eps": module.norm1.eps,
        "norm_first": module.norm_first,
        "bias": module.linear1.bias is not None,
    }


def _copy_feed_forward(ours: FeedForward, module: nn.Module) -> None:
    ours.linear1.load_state_dict(module.linear1.state_dict())
    ours.linear2.load_state_dict(module.linear2.state_dict())


def _copy_norms(ours: nn.Module, module: nn.Module, names: Sequence[str]) -> None:
    for name in names:
        getattr(ours, name).load_state_dict(getattr(module, name).state_dict())


# --------------------------------------------------------------------------------------
# 5. The training recipe
# --------------------------------------------------------------------------------------


def label_smoothed_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    epsilon: float = 0.1,
    ignore_index: int | None = None,
) -> torch.Tensor:
    """Cross-entropy against the smoothed target ``q = (1 - ε) · one_hot + ε / K``.

    ``logits`` ``(..., K)``, ``targets`` ``(...)`` (class ids); positions whose target is
    ``ignore_index`` (padding) count for nothing, and the loss is the mean over the
    others. The paper uses ``ε = 0.1`` (§5.4, after Szegedy et al., 2016): the model is
    taught to leave a little probability everywhere, which "hurts perplexity … but
    improves accuracy and BLEU". ``ε = 0`` is the ordinary cross-entropy. The same as
    ``F.cross_entropy(logits, targets, label_smoothing=ε, ignore_index=…)``.

    The loss is ``-Σ_k q_k log p_k``. A class with ``q_k = 0`` adds nothing, even where
    ``p_k`` is exactly 0 (a ``-inf`` logit), so that ``0 · log 0`` never makes a NaN.

    Used in: notebooks/04_transformer.ipynb, section 6.
    """
    checks.tensor("logits", logits, dtype="float", layout="(..., classes)")
    checks.tensor("targets", targets, dtype="int", layout="(...)")
    checks.probability("epsilon", epsilon)
    if logits.dim() == 0 or tuple(logits.shape[:-1]) != tuple(targets.shape):
        raise ValueError(
            f"logits and targets: expected logits (..., classes) and targets (...), got "
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        )
    classes = logits.shape[-1]
    keep = (
        torch.ones_like(targets, dtype=torch.bool)
        if ignore_index is None
        else targets != ignore_index
    )
    if not bool(keep.any()):
        raise ValueError(f"targets: every target is ignore_index={ignore_index}; nothing to learn")
    log_p = F.log_softmax(logits[keep], dim=-1)  # (n, K)
    true = targets[keep]
    if bool(((true < 0) | (true >= classes)).any()):
        raise ValueError(
            f"targets: expected class ids in [0, {classes}), got {true.unique().tolist()[:5]}"
        )
    q = torch.full_like(log_p, epsilon / classes)
    q.scatter_(1, true[:, None], 1 - epsilon + epsilon / classes)
    terms = torch.where(q > 0, q * log_p, torch.zeros_like(log_p))
    return -terms.sum(dim=-1).mean()


def warmup_schedule(step: int, d_model: int, warmup: int = 4000) -> float:
    """The paper's learning rate at ``step`` (counted from 1), eq. (3)::

        lr = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)

    It rises linearly for ``warmup`` steps, peaks at ``(d_model · warmup)^-0.5``, then
    falls as ``1 / sqrt(step)``. The warm-up keeps Adam's first steps small while its
    estimate of the gradients' variance is still poor (section 6 shows why).

    Used in: notebooks/04_transformer.ipynb, section 6.
    """
    checks.positive_int("step", step)
    checks.positive_int("d_model", d_model)
    checks.positive_int("warmup", warmup)
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def paper_optimizer(
    model: nn.Module, d_model: int, warmup: int = 4000, factor: float = 1.0
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with β = (0.9, 0.98), ε = 1e-9 and `warmup_schedule` (times ``factor``), §5.3.

    Call ``scheduler.step()`` after each ``optimizer.step()``: the optimizer's first step
    uses step 1 of the schedule.

    Used in: notebooks/04_transformer.ipynb, section 6.
    """
    checks.number("factor", factor, positive=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: factor * warmup_schedule(done + 1, d_model, warmup)
    )
    return optimizer, scheduler


# --------------------------------------------------------------------------------------
# 6. A whole model, and decoding with a cache
# --------------------------------------------------------------------------------------


class TransformerSeq2Seq(Checkpointed):
    """Embeddings, positions and an output layer around a `Transformer`, for the character
    tasks of `lessons.core.tasks` (copy, reversal, dates).

    * Source and target characters go through a `TokenEmbedding` (times ``sqrt(d_model)``)
      and `SinusoidalPositions`; the `Transformer` (``num_layers`` encoder and decoder
      layers, post-norm as in the paper or pre-norm with ``norm_first=True``) maps them
      to one vector per target position, and a linear layer to the logits. With
      ``tie_weights`` the output layer is the target embedding's matrix (§3.4).
    * ``source_positions`` is how the encoder learns the order of the source:
      ``"sinusoidal"`` (the Transformer), ``"convolution"`` (no positions; two residual
      1-D convolutions of width 5 over the embeddings, as in Gehring et al., 2017) or
      ``"convolution+sinusoidal"`` (both). Chapter 3 compares the three.

    The interface is chapter 3's (``lessons.seq2seq``): ``model(sources, source_lengths,
    decoder_inputs)`` -> logits ``(batch, target_len, vocab)``, ``model.greedy(...)``,
    ``model.vocab``; and `encode` / `decode` for the decoding functions below.

    Used in: notebooks/03_attention.ipynb, sections 5 and 6, and
    notebooks/04_transformer.ipynb, sections 7 and 8.
    """

    def __init__(
        self,
        characters: str = ALPHABET,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        ff_dim: int = 128,
        dropout: float = 0.0,
        source_positions: str = "sinusoidal",
        norm_first: bool = False,
        activation: str = "relu",
        tie_weights: bool = False,
    ):
        super().__init__()
        for name, value in (
            ("d_model", d_model),
            ("num_heads", num_heads),
            ("num_layers", num_layers),
            ("ff_dim", ff_dim),
        ):
            checks.positive_int(name, value)
        if d_model % num_heads or d_model % 2:
            raise ValueError(
                f"d_model: expected an even multiple of num_heads={num_heads}, got {d_model}"
            )
        checks.one_of("source_positions", source_positions, SOURCE_POSITIONS)
        self.vocab = CharVocab(characters)
        self.config: dict[str, Any] = {
            "characters": characters,
            "d_model": d_model,
            "num_heads": num_heads,
            "num_layers": num_layers,
            "ff_dim": ff_dim,
            "dropout": dropout,
            "source_positions": source_positions,
            "norm_first": norm_first,
            "activation": activation,
            "tie_weights": tie_weights,
        }
        self.source_embedding = TokenEmbedding(len(self.vocab), d_model, padding_idx=0)
        self.target_embedding = TokenEmbedding(len(self.vocab), d_model, padding_idx=0)
        self.positions = SinusoidalPositions(d_model, dropout)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(d_model, d_model, kernel_size=5, padding=2)
            for _ in range(2 if "convolution" in source_positions else 0)
        )
        self.transformer = Transformer(
            d_model,
            num_heads,
            num_layers,
            num_layers,
            ff_dim,
            dropout,
            activation,
            norm_first=norm_first,
        )
        self.output = None if tie_weights else nn.Linear(d_model, len(self.vocab))

    def encode(
        self, sources: torch.Tensor, source_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(memory, mask)``: the encoder's output ``(batch, src_len, d_model)`` and the
        source `padding_mask` ``(batch, 1, src_len)`` (True = a real character)."""
        sources, source_lengths = _check_sources(sources, source_lengths)
        mask = padding_mask(source_lengths.to(sources.device), sources.shape[1])
        x = self.source_embedding(sources)
        if "sinusoidal" in self.config["source_positions"]:
            x = self.positions(x)
        real = mask.transpose(1, 2).to(x.dtype)  # (batch, src_len, 1)
        if self.convolutions:  # padding is 0 before each convolution
            x = x * real
        for convolution in self.convolutions:
            x = (x + F.relu(convolution(x.transpose(1, 2)).transpose(1, 2))) * real
        return self.transformer.encoder(x, mask), mask

    def decode(
        self,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        decoder_inputs: torch.Tensor,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits ``(batch, new, vocab)`` for ``decoder_inputs`` ``(batch, new)``.

        Without a cache, ``decoder_inputs`` is the whole prefix and attends causally to
        itself. With a `KVCache`, it holds only the ``new`` positions after the
        ``cache.length`` already decoded, whose keys and values the cache keeps.
        """
        checks.tensor(
            "decoder_inputs", decoder_inputs, dims=2, dtype="int", layout="(batch, tgt_len)"
        )
        start = 0 if cache is None else cache.length
        new = decoder_inputs.shape[1]
        y = self.positions(self.target_embedding(decoder_inputs), start=start)
        # new position i (absolute start + i) sees keys 0 … start + i
        self_mask = causal_mask(start + new, device=decoder_inputs.device)[start:]
        y = self.transformer.decoder(y, memory, self_mask, memory_mask.unsqueeze(1), cache)
        return self.logits(y)

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        """The output layer: ``(batch, len, d_model)`` -> ``(batch, len, vocab)``."""
        if self.output is None:
            return y @ self.target_embedding.weight.T
        return self.output(y)

    def forward(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        memory, mask = self.encode(sources, source_lengths)
        return self.decode(memory, mask, decoder_inputs)

    def new_cache(self) -> KVCache:
        """An empty `KVCache` for this model's decoder."""
        return KVCache.empty(len(self.transformer.decoder.layers))

    @torch.no_grad()
    def greedy(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``max_len`` greedy steps with a `KVCache`, as chapter 3's models do them: ids
        ``(batch, max_len)`` and the last decoder layer's attention to the source,
        mean over heads, ``(batch, max_len, src_len)``."""
        memory, mask = self.encode(sources, source_lengths)
        last = self.transformer.decoder.layers[-1]
        last.keep_weights = True
        cache = self.new_cache()
        token = torch.full((sources.shape[0], 1), self.vocab.bos_id, device=sources.device)
        ids, attention = [], []
        try:
            for _ in range(max_len):
                token = self.decode(memory, mask, token, cache)[:, -1].argmax(-1, keepdim=True)
                ids.append(token)
                attention.append(last.weights["cross"].mean(dim=1))
        finally:
            last.keep_weights = False
            last.weights = {}
        return torch.cat(ids, dim=1), torch.cat(attention, dim=1)

    @torch.no_grad()
    def attention_maps(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> dict[str, list[torch.Tensor]]:
        """Every head's attention weights for one teacher-forced pass, by layer:
        ``{"encoder": [(batch, heads, src, src)], "decoder": [(batch, heads, tgt, tgt)],
        "cross": [(batch, heads, tgt, src)]}``.

        Used in: notebooks/04_transformer.ipynb, section 8.
        """
        layers = [*self.transformer.encoder.layers, *self.transformer.decoder.layers]
        for layer in layers:
            layer.keep_weights = True
        try:
            self(sources, source_lengths, decoder_inputs)
            return {
                "encoder": [layer.weights["self"] for layer in self.transformer.encoder.layers],
                "decoder": [layer.weights["self"] for layer in self.transformer.decoder.layers],
                "cross": [layer.weights["cross"] for layer in self.transformer.decoder.layers],
            }
        finally:
            for layer in layers:
                layer.keep_weights = False
                layer.weights = {}


def seq2seq_loss(
    model: TransformerSeq2Seq, batch: Mapping[str, torch.Tensor], epsilon: float = 0.1
) -> torch.Tensor:
    """`label_smoothed_cross_entropy` of a `TransformerSeq2Seq` on a batch of
    `lessons.core.tasks.make_batch` (teacher forcing; padded targets ignored).

    Used in: notebooks/04_transformer.ipynb, sections 6 and 8.
    """
    logits = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    return label_smoothed_cross_entropy(
        logits, batch["decoder_targets"], epsilon, ignore_index=model.vocab.pad_id
    )


def train_transformer(
    model: TransformerSeq2Seq,
    batched: Sequence[Mapping[str, torch.Tensor]],
    epochs: int = 1,
    warmup: int = 400,
    factor: float = 1.0,
    epsilon: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train with the paper's recipe: `seq2seq_loss` with label smoothing ``epsilon``, and
    `paper_optimizer` (Adam, β = (0.9, 0.98), ε = 1e-9, `warmup_schedule` times
    ``factor``), through `lessons.core.train.train`. ``batched``:
    `lessons.core.tasks.batches`.

    Used in: notebooks/04_transformer.ipynb, section 6.
    """
    checks.probability("epsilon", epsilon)
    optimizer, scheduler = paper_optimizer(model, model.config["d_model"], warmup, factor)
    return train(
        model,
        list(batched),
        loss_fn=lambda m, batch: seq2seq_loss(m, batch, epsilon),
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )


def greedy_search(
    model: TransformerSeq2Seq,
    sources: torch.Tensor,
    source_lengths: torch.Tensor,
    max_len: int,
    use_cache: bool = True,
) -> torch.Tensor:
    """Write the most likely next token until every row has written ``</s>`` (at most
    ``max_len`` tokens): ids ``(batch, steps)``, padding (0) after each ``</s>``.

    With ``use_cache=False`` the decoder reruns on the whole prefix at every step; the
    tokens are the same (a test checks it), only slower.

    Used in: notebooks/04_transformer.ipynb, section 7.
    """
    ids, _ = beam_search(
        model, sources, source_lengths, beam_size=1, max_len=max_len, use_cache=use_cache
    )
    return ids[:, 0]


def beam_step(
    scores: torch.Tensor, log_probs: torch.Tensor, beam_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of beam search: the ``beam_size`` best one-token extensions of each row.

    ``scores`` ``(batch, beams)``: the total log-probability of each prefix (-inf for an
    empty slot); ``log_probs`` ``(batch, beams, vocab)``: each next token's
    log-probability after each prefix. The ``beams × vocab`` candidates of a row (a
    prefix and one more token) are ranked together, so the best may all extend the same
    prefix. Returns ``(scores, beam, token)``, each ``(batch, beam_size)``, best first:
    the candidates' scores, the prefix each extends and the token it adds.

    Used in: notebooks/04_transformer.ipynb, section 7.
    """
    batch, beams, vocab = log_probs.shape
    candidates = (scores[..., None] + log_probs).reshape(batch, beams * vocab)
    new_scores, best = candidates.topk(beam_size, dim=-1)  # flat index: beam · vocab + token
    return new_scores, best // vocab, best % vocab


@torch.no_grad()
def beam_search(
    model: TransformerSeq2Seq,
    sources: torch.Tensor,
    source_lengths: torch.Tensor,
    beam_size: int = 4,
    max_len: int = 20,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched beam search: keep the ``beam_size`` most likely prefixes of each source.

    At each step every live prefix is extended by every token; of the ``beam_size ×
    vocab`` candidates of a source, the ``beam_size`` with the highest total
    log-probability survive, and the `KVCache` is reordered to follow them. A prefix that
    wrote ``</s>`` is finished: it stays in the beam with its score frozen. The search
    stops when every beam of every source is finished, or after ``max_len`` tokens.

    Longer outputs collect more negative log-probabilities, so the finished hypotheses
    are ranked by ``score / length ** length_penalty`` (length normalisation; 0 ranks
    by the raw score, 1 by the mean log-probability per token).

    ``<s>`` and ``<pad>`` are never written. Returns ``ids`` ``(batch, beam_size,
    steps)`` (padding 0 after ``</s>``) and their
    normalised ``scores`` ``(batch, beam_size)``, best first. ``beam_size=1`` is greedy
    search.

    Used in: notebooks/04_transformer.ipynb, section 7.
    """
    checks.positive_int("beam_size", beam_size)
    checks.positive_int("max_len", max_len)
    checks.number("length_penalty", length_penalty, low=0.0)
    was_training = model.training
    model.eval()
    vocab = model.vocab
    memory, mask = model.encode(sources, source_lengths)
    batch, k = sources.shape[0], beam_size
    memory = memory.repeat_interleave(k, dim=0)  # (batch * k, src_len, d_model)
    mask = mask.repeat_interleave(k, dim=0)
    device = memory.device
    tokens = torch.full((batch * k, 1), vocab.bos_id, dtype=torch.long, device=device)
    scores = torch.zeros(batch, k, device=device, dtype=memory.dtype)
    scores[:, 1:] = -math.inf  # at first all beams hold the same prefix: keep one
    lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    cache = model.new_cache() if use_cache else None
    for _ in range(max_len):
        inputs = tokens[:, -1:] if use_cache else tokens
        log_p = F.log_softmax(model.decode(memory, mask, inputs, cache)[:, -1], dim=-1)
        log_p = log_p.view(batch, k, -1)
        # <s> is never written; a finished prefix can only be followed by padding, at no
        # cost, and an unfinished one never is
        log_p[..., vocab.bos_id] = -math.inf
        log_p = log_p.masked_fill(finished[..., None], -math.inf)
        log_p[..., vocab.pad_id] = torch.where(finished, 0.0, -math.inf)
        scores, beam, token = beam_step(scores, log_p, k)  # each (batch, k)
        rows = (torch.arange(batch, device=device)[:, None] * k + beam).view(-1)
        tokens = torch.cat([tokens[rows], token.view(-1, 1)], dim=1)
        if cache is not None:
            cache.reorder(rows)
        was_finished = finished.gather(1, beam)
        lengths = lengths.gather(1, beam) + (~was_finished).long()
        finished = was_finished | (token == vocab.eos_id)
        if bool(finished.all()):
            break
    normalised = scores / lengths.clamp(min=1).to(scores.dtype) ** length_penalty
    normalised, order = normalised.sort(dim=-1, descending=True)
    ids = tokens[:, 1:].view(batch, k, -1)
    ids = ids.gather(1, order[..., None].expand_as(ids))
    model.train(was_training)
    return ids, normalised


def translate(
    model: TransformerSeq2Seq,
    sources: Sequence[str],
    beam_size: int = 1,
    max_len: int = 20,
    **options,
) -> list[str]:
    """The best output string for each of ``sources``: greedy (``beam_size=1``) or
    `beam_search` (``options``: ``length_penalty``, ``use_cache``).

    Used in: notebooks/04_transformer.ipynb, sections 7 and 8.
    """
    if not isinstance(model, TransformerSeq2Seq):
        raise TypeError(f"model: expected a TransformerSeq2Seq, got {type(model).__name__}")
    if isinstance(sources, str) or not isinstance(sources, Sequence) or not sources:
        raise TypeError(
            f"sources: expected a non-empty list of strings, got {checks.describe(sources)}"
        )
    device = next(model.parameters()).device
    encoded = [model.vocab.encode(s, name=f"sources[{i}]") for i, s in enumerate(sources)]
    lengths = torch.tensor([len(e) for e in encoded])  # an empty source: encode says so
    padded = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
    for i, e in enumerate(encoded):
        padded[i, : len(e)] = torch.tensor(e, dtype=torch.long)
    ids, _ = beam_search(
        model, padded.to(device), lengths.to(device), beam_size, max_len, **options
    )
    return [model.vocab.decode(row.tolist()) for row in ids[:, 0].cpu()]


# --------------------------------------------------------------------------------------
# 7. The decoder-only model: GPT's shape
# --------------------------------------------------------------------------------------


class TransformerLM(Checkpointed):
    """A decoder-only Transformer language model: the shape of GPT (Radford et al., 2018).

    Token embeddings (`TokenEmbedding`) plus positions (``"learned"``, as GPT, or
    ``"sinusoidal"``), ``num_layers`` `DecoderLayer` s without cross-attention under a
    causal mask (position ``t`` sees tokens ``<= t``), a final LayerNorm, and an output
    layer tied to the embeddings (its matrix is the embedding matrix, plus a bias).

    ``forward(ids, cache=None)``: ``ids`` ``(batch, seq)`` -> logits ``(batch, seq,
    vocab_size)``, the distribution of the token after each position. With a `KVCache`,
    ``ids`` are only the new tokens (generation, `sample`).

    Right padding needs no mask: under the causal mask a real token never sees the
    padding after it, and padded positions are left out of the loss (`lm_batch`).

    Used in: notebooks/04_transformer.ipynb, section 9.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        num_heads: int = 4,
        num_layers: int = 4,
        ff_dim: int = 1024,
        max_len: int = 128,
        positions: str = "learned",
        dropout: float = 0.1,
        norm_first: bool = True,
        activation: str = "gelu",
    ):
        super().__init__()
        checks.one_of("positions", positions, POSITIONS)
        self.config: dict[str, Any] = {
            "vocab_size": vocab_size,
            "d_model": d_model,
            "num_heads": num_heads,
            "num_layers": num_layers,
            "ff_dim": ff_dim,
            "max_len": max_len,
            "positions": positions,
            "dropout": dropout,
            "norm_first": norm_first,
            "activation": activation,
        }
        self.max_len = checks.positive_int("max_len", max_len)
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.positions = (
            LearnedPositions(max_len, d_model, dropout)
            if positions == "learned"
            else SinusoidalPositions(d_model, dropout)
        )
        self.decoder = Decoder(
            num_layers,
            d_model,
            num_heads,
            dim_feedforward=ff_dim,
            dropout=dropout,
            activation=activation,
            norm_first=norm_first,
            cross_attention=False,
        )
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        checks.tensor("ids", ids, dims=2, dtype="int", layout="(batch, seq)")
        start = 0 if cache is None else cache.length
        new = ids.shape[1]
        if start + new > self.max_len:
            raise ValueError(
                f"ids: {start + new} positions, more than max_len={self.max_len}; cut the "
                f"text into pieces of at most {self.max_len} tokens"
            )
        x = self.positions(self.embedding(ids), start=start)
        mask = causal_mask(start + new, device=ids.device)[start:]
        h = self.decoder(x, self_mask=mask, cache=cache)
        return h @ self.embedding.weight.T + self.output_bias

    def new_cache(self) -> KVCache:
        """An empty `KVCache` for `sample`."""
        return KVCache.empty(len(self.decoder.layers))


def lm_specials(vocab: Vocabulary) -> dict[str, int]:
    """The ids a `TransformerLM` over ``vocab`` uses beyond its words (``0 …
    len(vocab) - 1``, 0 being ``<unk>``): ``<S>``, ``</S>`` and ``<pad>``, as chapter 2's
    biLM numbers its softmax (``<S>`` = ``len(vocab)``, ``</S>`` = ``len(vocab) + 1``).
    The model's ``vocab_size`` is ``len(vocab) + 3``.

    Used in: notebooks/04_transformer.ipynb, section 9.
    """
    if not isinstance(vocab, Vocabulary):
        raise TypeError(
            f"vocab: expected a lessons.core.vocab.Vocabulary, got {type(vocab).__name__}"
        )
    n = len(vocab)
    return {"<S>": n, "</S>": n + 1, "<pad>": n + 2}


def lm_batch(
    sentences: Sequence[Sequence[str]], vocab: Vocabulary
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``, each ``(batch, longest + 1)``, for a `TransformerLM`.

    ``inputs`` is ``<S> w1 … wn`` and ``targets`` is ``w1 … wn </S>``: position ``t``
    predicts the word after it, as chapter 2's forward LM does, so the two perplexities
    count the same tokens. Words outside ``vocab`` are ``<unk>``; ``inputs`` are padded
    with ``<pad>``, ``targets`` with -100 (ignored by ``F.cross_entropy``).

    Used in: notebooks/04_transformer.ipynb, section 9.
    """
    specials = lm_specials(vocab)
    sentences = checks.sentences(sentences, nonempty=True)
    width = max(len(s) for s in sentences) + 1
    inputs = torch.full((len(sentences), width), specials["<pad>"], dtype=torch.long)
    targets = torch.full((len(sentences), width), -100, dtype=torch.long)
    for i, sentence in enumerate(sentences):
        words = vocab.encode(sentence)
        inputs[i, : len(words) + 1] = torch.tensor([specials["<S>"], *words])
        targets[i, : len(words) + 1] = torch.tensor([*words, specials["</S>"]])
    return inputs, targets


@torch.no_grad()
def perplexity(
    model: TransformerLM,
    vocab: Vocabulary,
    sentences: Sequence[Sequence[str]],
    batch_size: int = 64,
) -> float:
    """``exp`` of the mean cross-entropy over every word and ``</S>`` of ``sentences``,
    words outside ``vocab`` counting as ``<unk>``: chapter 2's forward perplexity
    (``lessons.elmo.perplexities``) for a `TransformerLM`. Leaves the model in eval mode.

    Used in: notebooks/04_transformer.ipynb, section 9.
    """
    sentences = checks.sentences(sentences, nonempty=True)
    checks.positive_int("batch_size", batch_size)
    model.eval()
    device = model.output_bias.device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        inputs, targets = lm_batch([sentences[i] for i in order[start : start + batch_size]], vocab)
        logits = model(inputs.to(device))
        total += float(F.cross_entropy(logits.transpose(1, 2), targets.to(device), reduction="sum"))
        count += int((targets != -100).sum())
    return math.exp(total / count)


@torch.no_grad()
def sample(
    model: TransformerLM,
    vocab: Vocabulary,
    prompt: Sequence[str] = (),
    max_new_tokens: int = 30,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Continue ``prompt`` (a list of words) one word at a time until ``</S>``.

    Each next word is drawn from ``softmax(logits / temperature)`` restricted to the
    ``top_k`` most likely words (all of them if None): a temperature below 1 sharpens the
    distribution (towards greedy), above 1 flattens it. Keys and values are cached, so
    each step runs the model on one token. ``<S>``, ``<pad>`` and ``<unk>`` are never
    drawn. Returns the new words.

    Used in: notebooks/04_transformer.ipynb, section 9.
    """
    if not isinstance(model, TransformerLM):
        raise TypeError(f"model: expected a TransformerLM, got {type(model).__name__}")
    if isinstance(prompt, str):
        raise TypeError(
            f"prompt: expected a list of words, got the string {prompt!r}; try prompt.split()"
        )
    checks.positive_int("max_new_tokens", max_new_tokens)
    checks.number("temperature", temperature, positive=True)
    if top_k is not None:
        checks.positive_int("top_k", top_k)
    specials = lm_specials(vocab)
    model.eval()
    device = model.output_bias.device
    ids = torch.tensor([[specials["<S>"], *vocab.encode(list(prompt))]], device=device)
    cache = model.new_cache()
    words: list[str] = []
    for _ in range(min(max_new_tokens, model.max_len - ids.shape[1])):
        logits = model(ids, cache)[0, -1] / temperature
        for banned in (specials["<S>"], specials["<pad>"], 0):
            logits[banned] = -math.inf
        if top_k is not None and top_k < logits.numel():
            threshold = logits.topk(top_k).values[-1]
            logits = logits.masked_fill(logits < threshold, -math.inf)
        next_id = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
        if next_id == specials["</S>"]:
            break
        words.append(vocab.index_to_key[next_id])
        ids = torch.tensor([[next_id]], device=device)
    return words


# --------------------------------------------------------------------------------------
# The shipped models
# --------------------------------------------------------------------------------------


def pretrained_names() -> list[str]:
    """The names `load_pretrained` accepts: the ``pretrained/transformer-<name>.safetensors``
    files shipped inside the package, sorted."""
    return sorted(
        p.name.removeprefix("transformer-").removesuffix(".safetensors")
        for p in PRETRAINED_DIR.glob("transformer-*.safetensors")
    )


def pretrained_path(name: str) -> Path:
    """The file of the shipped model ``name`` (a ValueError lists the names if unknown)."""
    shipped = pretrained_names()
    if not isinstance(name, str) or name not in shipped:
        raise ValueError(f"name: expected one of {shipped}, got {name!r}")
    return PRETRAINED_DIR / f"transformer-{name}.safetensors"


def load_pretrained(name: str) -> TransformerSeq2Seq | TransformerLM:
    """A model that a script trained, as shipped inside the package, in eval mode and
    float32: ``"extract-…"`` (chapter 3's date extraction, ``scripts/train_seq2seq.py``),
    ``"dates"`` (chapter 4, ``scripts/train_transformer.py``) or ``"lm"`` (the word-level
    language model, ``scripts/train_transformer_lm.py``; its vocabulary: `load_lm_vocab`).
    How each was trained is in ``checkpoint_notes(pretrained_path(name))``.

    Used in: notebooks/03_attention.ipynb, sections 5 and 6, and
    notebooks/04_transformer.ipynb, sections 8 and 9.
    """
    return load_model(pretrained_path(name)).float().eval()


def load_lm_vocab() -> Vocabulary:
    """The vocabulary of the shipped ``"lm"`` model: chapter 2's (the 10,000 most frequent
    words of the Wikipedia training split and ``<unk>``)."""
    return Vocabulary.load(PRETRAINED_DIR / "transformer-lm.vocab.txt")


def load_model(path: str | Path) -> TransformerSeq2Seq | TransformerLM:
    """The `TransformerSeq2Seq` or `TransformerLM` saved in ``path`` (with ``model.save``)."""
    name = checkpoint_class(path)
    classes = {cls.__name__: cls for cls in (TransformerSeq2Seq, TransformerLM)}
    if name not in classes:
        raise ValueError(f"{path}: unknown model class {name!r}, expected one of {list(classes)}")
    return classes[name].load(path)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_sources(sources: object, source_lengths: object) -> tuple[torch.Tensor, torch.Tensor]:
    sources = checks.tensor("sources", sources, dims=2, dtype="int", layout="(batch, src_len)")
    source_lengths = checks.tensor(
        "source_lengths", source_lengths, dims=1, dtype="int", layout="(batch,)"
    )
    if source_lengths.shape[0] != sources.shape[0]:
        raise ValueError(
            f"source_lengths: expected {sources.shape[0]} lengths (one per source), got "
            f"{source_lengths.shape[0]}"
        )
    if bool((source_lengths < 1).any()) or int(source_lengths.max()) > sources.shape[1]:
        raise ValueError(
            f"source_lengths: expected lengths in [1, {sources.shape[1]}] (an empty source "
            f"has nothing to encode), got {source_lengths.tolist()}"
        )
    return sources, source_lengths
