"""The Reformer (Kitaev, Kaiser and Levskaya, 2020) on chapter 4's blocks.

Used in: notebooks/06_reformer.ipynb. The module follows the chapter:

0. The memory problem (section 1): the paper's estimate of where a Transformer's memory
   goes.
1. LSH attention (section 2): angular locality-sensitive hashing with random rotations,
   sorting by bucket and chunking, shared-QK attention over a chunk and the one before
   it, several hash rounds combined by their log-sum-exp weights.
2. Reversible residual layers (section 3), after Gomez et al. (2017): a block whose
   inputs are recomputed from its outputs in the backward pass.
3. Chunked feed-forward layers (section 4).
4. Axial positional embeddings (section 5): a position's embedding built from a row
   table and a column table, far smaller than one full table.
5. A Reformer language model (section 6): the pieces stacked, loadable from Hugging
   Face's ``ReformerModel``.
6. The duplication task (section 7): the paper's synthetic test of LSH attention, and
   the models trained on it.

Hugging Face's ``transformers`` is never imported here: it is the reference the tests
compare with, not a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lessons.attention import MultiHeadAttention
from lessons.core import checks
from lessons.core.checkpoint import Checkpointed
from lessons.transformer import FeedForward

# --------------------------------------------------------------------------------------
# 0. The memory problem
# --------------------------------------------------------------------------------------


def memory_estimate(
    length: int,
    *,
    batch: int = 1,
    d_model: int = 1024,
    d_ff: int = 4096,
    num_layers: int = 16,
    num_heads: int = 1,
    bytes_per_number: int = 4,
) -> dict[str, int]:
    """The paper's back-of-the-envelope memory of a Transformer, in bytes, by source.

    * ``"one layer's input"``: ``batch * length * d_model`` numbers, what a single layer
      must hold (the paper's 2 GB at 64K tokens, width 1,024, batch 8);
    * ``"every layer's input, kept for backward"``: that, ``num_layers`` times;
    * ``"feed-forward activations, kept for backward"``: ``batch * length * d_ff`` per
      layer, ``num_layers`` times;
    * ``"attention scores of one layer"``: ``batch * num_heads * length ** 2``.

    Reversible layers remove the ``num_layers`` factor, chunking the ``d_ff`` one, and
    LSH attention the ``length ** 2``. Used in: notebooks/06_reformer.ipynb, section 1.
    """
    length = checks.positive_int("length", length)
    numbers = {
        "batch": batch,
        "d_model": d_model,
        "d_ff": d_ff,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "bytes_per_number": bytes_per_number,
    }
    for name, value in numbers.items():
        checks.positive_int(name, value)
    one_layer = batch * length * d_model * bytes_per_number
    return {
        "one layer's input": one_layer,
        "every layer's input, kept for backward": one_layer * num_layers,
        "feed-forward activations, kept for backward": (
            batch * length * d_ff * num_layers * bytes_per_number
        ),
        "attention scores of one layer": batch * num_heads * length**2 * bytes_per_number,
    }


# --------------------------------------------------------------------------------------
# 1. LSH attention
# --------------------------------------------------------------------------------------

#: The score a query gives its own key while any other key is allowed (Kitaev et al.,
#: 2020): low enough to vanish beside a real score, yet above `MASKED`.
SELF_MASKED = -1e5
#: The score of a key a query may not see (padding, or the future under a causal mask).
MASKED = -1e9


def hash_rotations(
    num_heads: int,
    d_head: int,
    num_hashes: int,
    num_buckets: int,
    *,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random rotations for angular LSH: ``(num_heads, d_head, num_hashes, num_buckets // 2)``.

    One Gaussian matrix per head and hash round. With ``seed`` they are drawn from a fresh
    generator seeded with it (the same numbers as ``torch.manual_seed(seed); torch.randn``,
    as Hugging Face draws them); without, from the global generator, so each call hashes
    with new rotations. Used in: notebooks/06_reformer.ipynb, section 2.
    """
    num_heads = checks.positive_int("num_heads", num_heads)
    d_head = checks.positive_int("d_head", d_head)
    num_hashes = checks.positive_int("num_hashes", num_hashes)
    num_buckets = _even_buckets(num_buckets)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    shape = (num_heads, d_head, num_hashes, num_buckets // 2)
    return torch.randn(shape, generator=generator, dtype=dtype)


def hash_vectors(
    vectors: torch.Tensor,
    num_buckets: int,
    num_hashes: int,
    rotations: torch.Tensor | None = None,
    *,
    padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bucket ids ``(batch, heads, num_hashes, seq)`` of ``vectors`` ``(batch, heads, seq, d)``.

    Round ``r`` rotates each vector with its own matrix ``R`` and takes
    ``h(x) = argmax([xR; -xR])``: nearby directions tend to land in the same bucket. Round
    ``r``'s ids are then offset by ``r * num_buckets``, so that rounds never share a bucket.
    ``rotations`` is ``(heads, d_head, num_hashes, num_buckets // 2)`` (`hash_rotations`
    draws them when it is None). ``padding_mask`` ``(batch, seq)``, True at real tokens:
    when it hides a token, padding gets a bucket of its own, ``num_buckets``, and the
    offsets grow to ``num_buckets + 1``, as Hugging Face does.
    Used in: notebooks/06_reformer.ipynb, section 2.
    """
    vectors = checks.tensor(
        "vectors", vectors, dims=4, dtype="float", layout="(batch, heads, seq, d_head)"
    )
    num_buckets = _even_buckets(num_buckets)
    num_hashes = checks.positive_int("num_hashes", num_hashes)
    batch, heads, seq, d_head = vectors.shape
    if rotations is None:
        rotations = hash_rotations(heads, d_head, num_hashes, num_buckets, dtype=vectors.dtype)
    expected = (heads, d_head, num_hashes, num_buckets // 2)
    if tuple(rotations.shape) != expected:
        raise ValueError(
            f"rotations: expected shape {expected} (heads, d_head, num_hashes, "
            f"num_buckets // 2), got {tuple(rotations.shape)}"
        )
    rotated = torch.einsum("bhsd,hdrk->bhrsk", vectors.detach(), rotations.to(vectors))
    buckets = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)  # (batch, heads, rounds, seq)
    if padding_mask is not None:
        padding_mask = _check_padding_mask(padding_mask, batch, seq)
        if not padding_mask.all():
            buckets = buckets.masked_fill(~padding_mask[:, None, None, :], num_buckets)
            num_buckets += 1
    offsets = torch.arange(num_hashes, device=vectors.device) * num_buckets
    return buckets + offsets.view(1, 1, num_hashes, 1)


def same_bucket_rate(
    angles: Sequence[float] | torch.Tensor,
    d_head: int = 64,
    num_buckets: int = 8,
    trials: int = 2000,
    seed: int = 0,
) -> torch.Tensor:
    """How often two vectors at a given angle share a bucket: ``(len(angles),)`` rates.

    For each angle (radians) and each of ``trials`` draws: a random unit vector ``x`` in
    ``d_head`` dimensions, a vector ``y`` at that angle from it, a fresh random rotation,
    and one round of `hash_vectors`' angular hash; the rate is the fraction of draws in
    which ``x`` and ``y`` got the same bucket. With ``n`` independent rounds, the chance
    of sharing a bucket at least once is ``1 - (1 - rate) ** n``.
    Used in: notebooks/06_reformer.ipynb, section 2.
    """
    angles = torch.as_tensor(angles, dtype=torch.float64).flatten()
    d_head = checks.positive_int("d_head", d_head, minimum=2)
    num_buckets = _even_buckets(num_buckets)
    trials = checks.positive_int("trials", trials)
    generator = torch.Generator().manual_seed(checks.positive_int("seed", seed, 0))
    shape = (len(angles), trials, d_head)
    x = F.normalize(torch.randn(shape, generator=generator, dtype=torch.float64), dim=-1)
    other = torch.randn(shape, generator=generator, dtype=torch.float64)
    other = F.normalize(other - (other * x).sum(-1, keepdim=True) * x, dim=-1)  # u ⟂ x
    cos, sin = angles.cos().view(-1, 1, 1), angles.sin().view(-1, 1, 1)
    y = cos * x + sin * other
    rotations = torch.randn(
        (len(angles), trials, d_head, num_buckets // 2), generator=generator, dtype=torch.float64
    )

    def bucket(v: torch.Tensor) -> torch.Tensor:
        rotated = (v.unsqueeze(-2) @ rotations).squeeze(-2)
        return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)

    return (bucket(x) == bucket(y)).double().mean(dim=1)


def sort_by_bucket(buckets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The order that sorts ``buckets`` ``(batch, heads, num_hashes * seq)``, and its inverse.

    Slot ``i`` of round ``r`` sits at index ``r * seq + i``; a stable sort orders by bucket,
    then by that index, so within a bucket tokens keep their order and the rounds follow
    one another (their buckets are offset). ``order[..., j]`` is the index that goes to
    place ``j``; ``undo[..., i]`` is where index ``i`` went, so ``sorted.gather(undo)``
    restores the original order. Used in: notebooks/06_reformer.ipynb, section 2.
    """
    buckets = checks.tensor(
        "buckets", buckets, dims=3, dtype="int", layout="(batch, heads, num_hashes * seq)"
    )
    order = torch.sort(buckets, dim=-1, stable=True).indices
    undo = torch.argsort(order, dim=-1)
    return order, undo


def look_adjacent(chunks: torch.Tensor, before: int = 1, after: int = 0) -> torch.Tensor:
    """Chunks with their neighbours: ``(b, h, n, c, ...)`` -> ``(b, h, n, (1+before+after)c, ...)``.

    Chunk ``j`` is joined, in order, by chunks ``j - before`` to ``j + after``; indices wrap
    around, so the first chunk of a round looks back at the last chunk of the round before
    (and the very first chunk at the very last one), as Hugging Face does.
    Used in: notebooks/06_reformer.ipynb, section 2.
    """
    before = checks.positive_int("before", before, minimum=0)
    after = checks.positive_int("after", after, minimum=0)
    shifted = [
        chunks if offset == 0 else torch.roll(chunks, shifts=-offset, dims=2)
        for offset in range(-before, after + 1)
    ]
    return torch.cat(shifted, dim=3)


def normalise_keys(keys: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Shared-QK keys ``(..., d_head)`` scaled to unit length, as Hugging Face computes it.

    ``k = x / rms(x) / sqrt(d_head) = x / ||x||`` (up to ``eps``): the usual
    ``1/sqrt(d_head)`` times a key of length ``sqrt(d_head)``. A score ``q . k`` is then
    ``q . x / ||x||``. Used in: notebooks/06_reformer.ipynb, section 2.
    """
    rms = torch.rsqrt(keys.pow(2).mean(dim=-1, keepdim=True) + eps)
    return keys * rms / math.sqrt(keys.shape[-1])


def combine_rounds(outputs: torch.Tensor, logsumexps: torch.Tensor) -> torch.Tensor:
    """Hash rounds ``(b, h, rounds, seq, d_head)`` summed with weights from their normalisers.

    ``logsumexps`` ``(b, h, rounds, seq)`` is each round's log of the softmax denominator,
    ``log Z_r``. Round ``r`` gets weight ``Z_r / sum_s Z_s``: the result is the softmax over
    all the rounds' scores together, as one softmax over every key any round saw (a key
    that several rounds saw counts once per round).
    Used in: notebooks/06_reformer.ipynb, section 2.
    """
    weights = torch.exp(logsumexps - torch.logsumexp(logsumexps, dim=2, keepdim=True))
    return (outputs * weights.unsqueeze(-1)).sum(dim=2)


def allowed_keys(
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    padding_mask: torch.Tensor | None,
    causal: bool,
) -> torch.Tensor:
    """Which key each query may see, from the tokens they hold: bool ``(b, h, ..., q, k)``.

    ``query_positions`` ``(b, h, ..., q)`` and ``key_positions`` ``(b, h, ..., k)`` are token
    positions (after sorting and chunking, any order); ``padding_mask`` ``(b, seq)`` is
    True at real tokens. A key is hidden when it is padding, or, if ``causal``, when it
    comes after the query. Used in: notebooks/06_reformer.ipynb, section 2.
    """
    shape = (*query_positions.shape, key_positions.shape[-1])
    allowed = torch.ones(shape, dtype=torch.bool, device=query_positions.device)
    if padding_mask is not None:
        flat = key_positions.reshape(padding_mask.shape[0], -1)
        real_keys = padding_mask.gather(1, flat).view_as(key_positions)
        allowed = allowed & real_keys.unsqueeze(-2)
    if causal:
        allowed = allowed & (query_positions.unsqueeze(-1) >= key_positions.unsqueeze(-2))
    return allowed


def _even_buckets(num_buckets: object) -> int:
    num_buckets = checks.positive_int("num_buckets", num_buckets, minimum=2)
    if num_buckets % 2:
        raise ValueError(f"num_buckets: expected an even int >= 2, got {num_buckets}")
    return num_buckets


def _check_padding_mask(padding_mask: object, batch: int, seq: int) -> torch.Tensor:
    padding_mask = checks.tensor(
        "padding_mask", padding_mask, dims=2, dtype=torch.bool, layout="(batch, seq)"
    )
    if tuple(padding_mask.shape) != (batch, seq):
        raise ValueError(
            f"padding_mask: expected shape {(batch, seq)} (batch, seq), "
            f"got {tuple(padding_mask.shape)}"
        )
    return padding_mask


class LSHSelfAttention(nn.Module):
    """Shared-QK attention over LSH buckets (Kitaev et al., 2020): ``(b, seq, d_model)`` in,
    ``(b, seq, heads * d_head)`` out (the output projection comes after, as in
    Hugging Face's ``ReformerAttention``).

    One projection gives queries and keys; keys are normalised (`normalise_keys`). Each
    round hashes them (`hash_vectors`), sorts by bucket (`sort_by_bucket`), cuts the sorted
    sequence into chunks of ``chunk_length`` and lets each chunk attend to itself and to
    ``num_chunks_before``/``num_chunks_after`` neighbours (`look_adjacent`). Padding and
    the causal mask score ``MASKED``; a token's own key scores ``SELF_MASKED``, applied
    last, so that a token attends to itself only when nothing else is allowed. Rounds are
    combined by `combine_rounds`. When the sequence fits in one chunk, hashing would gain
    nothing: the layer attends over the whole sequence, with the same masks, as Hugging
    Face does; setting ``full_attention = True`` does the same at any length (the
    full-attention baseline of the duplication task, with the same weights).
    ``hash_seed`` fixes the rotations (the same every call); without it each call draws
    new ones. Used in: notebooks/06_reformer.ipynb, section 2.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_head: int,
        *,
        num_buckets: int,
        num_hashes: int = 1,
        chunk_length: int = 64,
        num_chunks_before: int = 1,
        num_chunks_after: int = 0,
        causal: bool = False,
        hash_seed: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.d_head = checks.positive_int("d_head", d_head)
        self.num_buckets = _even_buckets(num_buckets)
        self.num_hashes = checks.positive_int("num_hashes", num_hashes)
        self.chunk_length = checks.positive_int("chunk_length", chunk_length)
        self.num_chunks_before = checks.positive_int("num_chunks_before", num_chunks_before, 0)
        self.num_chunks_after = checks.positive_int("num_chunks_after", num_chunks_after, 0)
        self.causal = bool(checks.one_of("causal", causal, (False, True)))
        self.hash_seed = (
            None if hash_seed is None else checks.positive_int("hash_seed", hash_seed, 0)
        )
        self.dropout = checks.probability("dropout", dropout)
        self.full_attention = False  # True: attend over the whole sequence, no hashing
        self.query_key = nn.Linear(d_model, num_heads * d_head, bias=False)
        self.value = nn.Linear(d_model, num_heads * d_head, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_hashes: int | None = None,
    ) -> torch.Tensor:
        """``x`` ``(batch, seq, d_model)`` -> ``(batch, seq, heads * d_head)``.

        ``padding_mask`` ``(batch, seq)``: True at real tokens. ``num_hashes`` overrides the
        number of rounds for this call. ``seq`` must be a multiple of ``chunk_length``
        when it is longer than one chunk.
        """
        x = checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        batch, seq, _ = x.shape
        if padding_mask is not None:
            padding_mask = _check_padding_mask(padding_mask, batch, seq)
        rounds = self.num_hashes if num_hashes is None else num_hashes
        rounds = checks.positive_int("num_hashes", rounds)
        qk = self._split_heads(self.query_key(x))  # (batch, heads, seq, d_head)
        values = self._split_heads(self.value(x))
        if self.full_attention or seq <= self.chunk_length:
            positions = torch.arange(seq, device=x.device).expand(batch, self.num_heads, seq)
            out, _ = self._attend(
                qk, normalise_keys(qk), values, positions, positions, padding_mask
            )
            return self._merge_heads(out)
        if seq % self.chunk_length:
            raise ValueError(
                f"x: expected a sequence length that is a multiple of chunk_length "
                f"({self.chunk_length}) or at most it, got {seq}"
            )
        buckets = self.buckets(x, padding_mask, rounds, qk=qk).flatten(2)
        order, undo = sort_by_bucket(buckets)  # (batch, heads, rounds * seq)
        positions = order % seq  # the token each sorted slot holds

        def chunked(t: torch.Tensor) -> torch.Tensor:  # (b, h, rounds * seq, ...) in chunks
            return t.unflatten(2, (-1, self.chunk_length))

        index = positions.unsqueeze(-1).expand(-1, -1, -1, self.d_head)
        queries = chunked(qk.gather(2, index))
        keys = look_adjacent(normalise_keys(queries), self.num_chunks_before, self.num_chunks_after)
        values = look_adjacent(
            chunked(values.gather(2, index)), self.num_chunks_before, self.num_chunks_after
        )
        query_positions = chunked(positions)
        key_positions = look_adjacent(
            query_positions, self.num_chunks_before, self.num_chunks_after
        )
        out, logsumexp = self._attend(
            queries, keys, values, query_positions, key_positions, padding_mask
        )
        out = out.flatten(2, 3).gather(2, undo.unsqueeze(-1).expand(-1, -1, -1, self.d_head))
        logsumexp = logsumexp.flatten(2, 3).gather(2, undo)
        out = combine_rounds(out.unflatten(2, (rounds, seq)), logsumexp.unflatten(2, (rounds, seq)))
        return self._merge_heads(out)

    def rotations(
        self, num_hashes: int | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The rotations a call hashes with: ``(heads, d_head, num_hashes, num_buckets // 2)``."""
        rounds = self.num_hashes if num_hashes is None else num_hashes
        return hash_rotations(
            self.num_heads, self.d_head, rounds, self.num_buckets, seed=self.hash_seed, dtype=dtype
        )

    def buckets(
        self,
        x: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_hashes: int | None = None,
        *,
        qk: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Bucket ids ``(batch, heads, num_hashes, seq)`` of the shared query-keys of ``x``."""
        if qk is None:
            qk = self._split_heads(self.query_key(x))
        rounds = self.num_hashes if num_hashes is None else num_hashes
        rotations = self.rotations(rounds, dtype=qk.dtype).to(qk.device)
        return hash_vectors(qk, self.num_buckets, rounds, rotations, padding_mask=padding_mask)

    def _attend(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        padding_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked attention in blocks: queries ``(..., q, d_head)``, keys and values
        ``(..., k, d_head)``, positions ``(..., q)`` and ``(..., k)`` (the tokens they hold);
        leading dims ``(batch, heads, ...)``. Returns the outputs ``(..., q, d_head)`` and
        each query's log-sum-exp of scores ``(..., q)``."""
        scores = queries @ keys.transpose(-1, -2)
        # The masks are applied in place: the scores are the largest tensor here.
        if padding_mask is not None or self.causal:  # otherwise every key is allowed
            allowed = allowed_keys(query_positions, key_positions, padding_mask, self.causal)
            scores.masked_fill_(allowed.logical_not_(), MASKED)
        is_self = query_positions.unsqueeze(-1) == key_positions.unsqueeze(-2)
        scores.masked_fill_(is_self, SELF_MASKED)  # last: only when nothing else
        logsumexp = torch.logsumexp(scores, dim=-1, keepdim=True)
        # exp(scores - logsumexp), not softmax(scores): Hugging Face's rounding, which
        # differs (by up to 2e-3) for a query that sees nothing but itself
        weights = F.dropout((scores - logsumexp).exp_(), self.dropout, self.training)
        return weights @ values, logsumexp.squeeze(-1)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.num_heads, self.d_head)).transpose(1, 2)

    def _merge_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).flatten(2)

    @classmethod
    def from_hf(cls, module: nn.Module) -> LSHSelfAttention:
        """Ours, with the weights and settings of a ``transformers`` ``LSHSelfAttention``.

        Its ``config`` must give an int ``num_buckets`` (not a factorised list, nor None).
        """
        config = module.config
        if not isinstance(config.num_buckets, int):
            raise ValueError(
                f"module: expected a config with an int num_buckets, got {config.num_buckets!r}"
            )
        ours = cls(
            config.hidden_size,
            config.num_attention_heads,
            config.attention_head_size,
            num_buckets=config.num_buckets,
            num_hashes=config.num_hashes,
            chunk_length=config.lsh_attn_chunk_length,
            num_chunks_before=config.lsh_num_chunks_before,
            num_chunks_after=config.lsh_num_chunks_after,
            causal=bool(config.is_decoder),
            hash_seed=config.hash_seed,
            dropout=config.lsh_attention_probs_dropout_prob,
        )
        ours.load_state_dict(
            {"query_key.weight": module.query_key.weight, "value.weight": module.value.weight}
        )
        return ours.to(module.query_key.weight)


class LocalSelfAttention(nn.Module):
    """Attention within fixed chunks of the sequence: ``(b, seq, d_model)`` in,
    ``(b, seq, heads * d_head)`` out, the Reformer's cheaper companion to LSH attention.

    Separate query, key and value projections; the sequence, in its own order, is cut into
    chunks of ``chunk_length``, and each chunk attends to itself and to
    ``num_chunks_before``/``num_chunks_after`` neighbours (`look_adjacent`, which wraps
    around: without a causal mask the first chunk also sees the last one, as in Hugging
    Face). Scores are scaled by ``1/sqrt(d_head)``; padding and the causal mask score
    ``MASKED``; there is no self mask. A sequence that fits in one chunk gets full
    attention. Used in: notebooks/06_reformer.ipynb, section 2.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_head: int,
        *,
        chunk_length: int = 64,
        num_chunks_before: int = 1,
        num_chunks_after: int = 0,
        causal: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_model = checks.positive_int("d_model", d_model)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.d_head = checks.positive_int("d_head", d_head)
        self.chunk_length = checks.positive_int("chunk_length", chunk_length)
        self.num_chunks_before = checks.positive_int("num_chunks_before", num_chunks_before, 0)
        self.num_chunks_after = checks.positive_int("num_chunks_after", num_chunks_after, 0)
        self.causal = bool(checks.one_of("causal", causal, (False, True)))
        self.dropout = checks.probability("dropout", dropout)
        self.query = nn.Linear(d_model, num_heads * d_head, bias=False)
        self.key = nn.Linear(d_model, num_heads * d_head, bias=False)
        self.value = nn.Linear(d_model, num_heads * d_head, bias=False)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(batch, seq, d_model)`` -> ``(batch, seq, heads * d_head)``.

        ``padding_mask`` ``(batch, seq)``: True at real tokens. ``seq`` must be a multiple
        of ``chunk_length`` when it is longer than one chunk.
        """
        x = checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        batch, seq, _ = x.shape
        if padding_mask is not None:
            padding_mask = _check_padding_mask(padding_mask, batch, seq)
        queries = self._split_heads(self.query(x))  # (batch, heads, seq, d_head)
        keys = self._split_heads(self.key(x)) / math.sqrt(self.d_head)
        values = self._split_heads(self.value(x))
        positions = torch.arange(seq, device=x.device).expand(batch, self.num_heads, seq)
        query_positions = key_positions = positions
        if seq > self.chunk_length:
            if seq % self.chunk_length:
                raise ValueError(
                    f"x: expected a sequence length that is a multiple of chunk_length "
                    f"({self.chunk_length}) or at most it, got {seq}"
                )
            before, after = self.num_chunks_before, self.num_chunks_after
            queries, keys, values, query_positions = (
                t.unflatten(2, (-1, self.chunk_length)) for t in (queries, keys, values, positions)
            )
            keys = look_adjacent(keys, before, after)
            values = look_adjacent(values, before, after)
            key_positions = look_adjacent(query_positions, before, after)
        scores = queries @ keys.transpose(-1, -2)
        allowed = allowed_keys(query_positions, key_positions, padding_mask, self.causal)
        scores = scores.masked_fill(~allowed, MASKED)
        weights = F.dropout(torch.softmax(scores, dim=-1), self.dropout, self.training)
        out = (weights @ values).reshape(batch, self.num_heads, seq, self.d_head)
        return out.transpose(1, 2).flatten(2)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.num_heads, self.d_head)).transpose(1, 2)

    @classmethod
    def from_hf(cls, module: nn.Module) -> LocalSelfAttention:
        """Ours, with the weights and settings of a ``transformers`` ``LocalSelfAttention``."""
        ours = cls(
            module.hidden_size,
            module.num_attention_heads,
            module.attention_head_size,
            chunk_length=module.chunk_length,
            num_chunks_before=module.num_chunks_before,
            num_chunks_after=module.num_chunks_after,
            causal=bool(module.is_decoder),
            dropout=module.dropout,
        )
        weights = {name: getattr(module, name).weight for name in ("query", "key", "value")}
        ours.load_state_dict({f"{name}.weight": w for name, w in weights.items()})
        return ours.to(module.query.weight)


# --------------------------------------------------------------------------------------
# 2. Reversible residual layers
# --------------------------------------------------------------------------------------


class SelfAttentionSublayer(nn.Module):
    """F of a Reformer layer: a layer norm, then self-attention.

    ``(batch, seq, d_model) -> (batch, seq, d_model)``: ``attention(norm(x))`` with
    chapter 3's `MultiHeadAttention` attending from every position to every position.
    The residual connection is not here: the reversible block adds it.

    Used in: notebooks/06_reformer.ipynb, section 3.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        return self.attention(normed, normed, normed, need_weights=False)[0]


class FeedForwardSublayer(nn.Module):
    """G of a Reformer layer: a layer norm, then chapter 4's position-wise `FeedForward`.

    ``(batch, seq, d_model) -> (batch, seq, d_model)``. ``dropout`` acts after the
    activation and again on the output, as in the Reformer's feed-forward sublayer.

    Used in: notebooks/06_reformer.ipynb, section 3.
    """

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, dim_feedforward, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.feed_forward(self.norm(x)))


class RngState:
    """The state of torch's random number generators on one device, to replay a draw.

    Captured before a sublayer runs and restored before it runs again in the backward
    pass, so that the recomputation draws the same dropout masks (and the same random
    rotations of LSH attention, which draws from the same generator) as the forward
    pass. The CPU generator is always kept; on a GPU, that device's generator too.

    Used in: notebooks/06_reformer.ipynb, section 3.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        """Set the generators back to the captured state."""
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class ReversibleBlock(nn.Module):
    """A reversible residual block (Gomez et al., 2017): two streams, two sublayers.

    On ``x1, x2`` of shape ``(batch, seq, d_model)`` each::

        y1 = x1 + F(x2)        # F: attention in the Reformer
        y2 = x2 + G(y1)        # G: the feed-forward layer

    and the inputs come back from the outputs, exactly up to rounding::

        x2 = y2 - G(y1)
        x1 = y1 - F(x2)

    ``f`` and ``g`` are any modules mapping ``(batch, seq, d_model)`` to the same shape.

    Used in: notebooks/06_reformer.ipynb, section 3.
    """

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        for name, module in (("f", f), ("g", g)):
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"{name}: expected a torch.nn.Module, got {checks.describe(module)}"
                )
        self.f = f
        self.g = g

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y1, y2)`` from ``(x1, x2)``, each ``(batch, seq, d_model)``."""
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return y1, y2

    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x1, x2)`` from ``(y1, y2)``: the inputs `forward` was given.

        With dropout on, F and G must draw the masks of the forward pass again; in the
        backward pass of `ReversibleStack` the captured `RngState` sees to that.
        """
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return x1, x2


def _grads(
    output: torch.Tensor,
    inputs: tuple[torch.Tensor, ...],
    grad_output: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The gradients of ``(output * grad_output).sum()`` w.r.t. ``inputs``; zeros if unused."""
    grads = torch.autograd.grad(output, inputs, grad_output, allow_unused=True)
    return tuple(
        torch.zeros_like(tensor) if grad is None else grad
        for tensor, grad in zip(inputs, grads, strict=True)
    )


class _ReversibleFunction(torch.autograd.Function):
    """The backward pass of a `ReversibleStack` that recomputes instead of remembering.

    ``forward`` runs the blocks without building a graph, captures the generators' state
    before each sublayer and saves only the last outputs ``(y1, y2)``. ``backward`` walks
    the blocks from the last to the first: it restores the state, recomputes ``G(y1)``
    with a graph, backpropagates through it, recovers ``x2 = y2 - G(y1)``, then the same
    for ``F(x2)`` and ``x1``. The parameters are inputs of the function so that their
    gradients come back through autograd (``loss.backward()`` and ``torch.autograd.grad``
    both work). Double backward is not supported. Besides ``(y1, y2)`` it keeps two
    generator states per block (5,056 bytes each for the CPU's), whatever the batch and
    the sequence length.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x1: torch.Tensor,
        x2: torch.Tensor,
        stack: ReversibleStack,
        *parameters: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states = []
        with torch.no_grad():
            for block in stack.blocks:
                f_state = RngState(x2.device)
                y1 = x1 + block.f(x2)
                g_state = RngState(x2.device)
                y2 = x2 + block.g(y1)
                states.append((f_state, g_state))
                x1, x2 = y1, y2
        ctx.stack = stack
        ctx.states = states
        ctx.save_for_backward(x1, x2)
        return x1, x2

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_y1: torch.Tensor, grad_y2: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        stack: ReversibleStack = ctx.stack
        y1, y2 = ctx.saved_tensors
        parameters = list(stack.parameters())
        index = {id(p): i for i, p in enumerate(parameters)}
        grad_parameters = [torch.zeros_like(p) for p in parameters]
        devices = [y1.device] if y1.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # leave the generators as they were
            for block, (f_state, g_state) in zip(
                reversed(stack.blocks), reversed(ctx.states), strict=True
            ):
                g_parameters = tuple(block.g.parameters())
                f_parameters = tuple(block.f.parameters())
                with torch.enable_grad():
                    y1 = y1.detach().requires_grad_()
                    if stack.replay_rng:
                        g_state.restore()
                    g_y1 = block.g(y1)
                    grad_through_g, *g_grads = _grads(g_y1, (y1, *g_parameters), grad_y2)
                with torch.no_grad():
                    x2 = y2 - g_y1
                    grad_x1 = grad_y1 + grad_through_g  # y1 feeds y2 through G as well
                with torch.enable_grad():
                    x2 = x2.detach().requires_grad_()
                    if stack.replay_rng:
                        f_state.restore()
                    f_x2 = block.f(x2)
                    grad_through_f, *f_grads = _grads(f_x2, (x2, *f_parameters), grad_x1)
                with torch.no_grad():
                    x1 = y1 - f_x2
                    grad_x2 = grad_y2 + grad_through_f
                for parameter, grad in zip(
                    (*g_parameters, *f_parameters), (*g_grads, *f_grads), strict=True
                ):
                    grad_parameters[index[id(parameter)]] += grad
                y1, y2, grad_y1, grad_y2 = x1.detach(), x2.detach(), grad_x1, grad_x2
        return (grad_y1, grad_y2, None, *grad_parameters)


class ReversibleStack(nn.Module):
    """Reversible blocks in a row, which keep no activations for the backward pass.

    ``forward`` maps ``x`` ``(batch, seq, d_model)`` to ``(batch, seq, 2 d_model)``: the
    input feeds both streams (``x1 = x2 = x``), the blocks run in turn and the two final
    streams are concatenated, ``[y1, y2]``, as in Hugging Face's ``ReformerModel`` (whose
    final layer norm then acts on the ``2 d_model`` features).

    With ``reversible=True`` (the default) the backward pass recomputes each block's
    inputs from its outputs (`_ReversibleFunction`), so the memory autograd keeps does
    not grow with the number of blocks; with ``reversible=False`` the same blocks run as
    an ordinary residual stack that autograd remembers layer by layer. ``replay_rng=False``
    skips restoring the random generators before a recomputation: with dropout on, the
    gradients are then wrong, which is the pitfall the default avoids.

    Used in: notebooks/06_reformer.ipynb, section 3.
    """

    def __init__(
        self, blocks: Sequence[ReversibleBlock], reversible: bool = True, replay_rng: bool = True
    ):
        super().__init__()
        if not isinstance(blocks, (list, tuple, nn.ModuleList)) or len(blocks) == 0:
            got = checks.describe(blocks)
            raise TypeError(f"blocks: expected a non-empty list of ReversibleBlock, got {got}")
        for i, block in enumerate(blocks):
            if not isinstance(block, ReversibleBlock):
                raise TypeError(
                    f"blocks[{i}]: expected a ReversibleBlock, got {type(block).__name__}"
                )
        self.blocks = nn.ModuleList(blocks)
        self.reversible = bool(reversible)
        self.replay_rng = bool(replay_rng)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model) -> (batch, seq, 2 d_model)``: ``[y1, y2]``."""
        checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        if self.reversible and torch.is_grad_enabled():
            y1, y2 = _ReversibleFunction.apply(x, x, self, *self.parameters())
        else:
            y1, y2 = x, x
            for block in self.blocks:
                y1, y2 = block(y1, y2)
        return torch.cat([y1, y2], dim=-1)


# --------------------------------------------------------------------------------------
# 3. Chunked feed-forward layers
# --------------------------------------------------------------------------------------


class ChunkedFeedForward(nn.Module):
    """A position-wise module applied to ``chunk_size`` positions at a time.

    ``(batch, seq, d_model) -> (batch, seq, d_model)``: ``module`` runs on
    ``x[:, i : i + chunk_size]`` for each chunk in turn and the pieces are concatenated
    (the last chunk may be shorter). A position-wise module gives the same output and
    the same gradients as on the whole sequence; only the intermediate
    ``(batch, chunk_size, dim_feedforward)`` activation is smaller. The saving is real
    where that intermediate is not kept for the backward pass: without a graph (the
    forward pass of `ReversibleStack`, or inference). With dropout, each chunk draws its
    own mask, so the masks differ from the unchunked ones (their distribution does not).

    Used in: notebooks/06_reformer.ipynb, section 4.
    """

    def __init__(self, module: nn.Module, chunk_size: int):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected a torch.nn.Module, got {checks.describe(module)}")
        self.module = module
        self.chunk_size = checks.positive_int("chunk_size", chunk_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
        return torch.cat([self.module(chunk) for chunk in x.split(self.chunk_size, dim=1)], dim=1)


# --------------------------------------------------------------------------------------
# 4. Axial positional embeddings
# --------------------------------------------------------------------------------------


class AxialPositionEmbeddings(nn.Module):
    """Learned position embeddings factored over two axes, as Hugging Face's Reformer has them.

    ``axial_shape`` ``(n1, n2)`` lays the ``n1 * n2`` positions out as a grid of ``n1``
    rows and ``n2`` columns; ``axial_dims`` ``(d1, d2)`` splits ``d_model = d1 + d2``.
    Position ``p`` sits in row ``p // n2`` and column ``p % n2``, and its embedding is the
    concatenation ``[E1[p // n2], E2[p % n2]]`` of a row table ``E1`` ``(n1, d1)`` and a
    column table ``E2`` ``(n2, d2)``: Hugging Face's ``AxialPositionEmbeddings`` with
    ``axial_pos_shape=(n1, n2)`` and ``axial_pos_embds_dim=(d1, d2)``, in the same layout.
    The two tables hold ``n1 * d1 + n2 * d2`` numbers, where a full table would hold
    ``n1 * n2 * d_model`` (`full_table_size`). With Hugging Face's default configuration,
    ``(n1, n2) = (64, 64)`` and ``(d1, d2) = (64, 192)``, that is 16,384 numbers instead of
    1,048,576 for 4,096 positions.

    The weights are stored as Hugging Face stores them, ``weights[0]`` ``(n1, 1, d1)`` and
    ``weights[1]`` ``(1, n2, d2)``, and drawn from a standard normal (its default
    ``axial_norm_std=1``). There is no dropout. The output equals Hugging Face's in eval
    mode for any positions below ``n1 * n2``, a sequence shorter than the grid included,
    and in training mode without dropout, where Hugging Face asks for exactly ``n1 * n2``
    positions. Used in: notebooks/06_reformer.ipynb, section 5.
    """

    def __init__(self, axial_shape: Sequence[int], axial_dims: Sequence[int]) -> None:
        super().__init__()
        self.axial_shape = _int_pair("axial_shape", axial_shape)
        self.axial_dims = _int_pair("axial_dims", axial_dims)
        (n1, n2), (d1, d2) = self.axial_shape, self.axial_dims
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(n1, 1, d1)), nn.Parameter(torch.randn(1, n2, d2))]
        )

    @property
    def num_positions(self) -> int:
        """``n1 * n2``: the positions the grid holds."""
        return self.axial_shape[0] * self.axial_shape[1]

    @property
    def d_model(self) -> int:
        """``d1 + d2``: the size of one position's embedding."""
        return sum(self.axial_dims)

    @property
    def full_table_size(self) -> int:
        """``n1 * n2 * d_model``: the parameters of a full table for as many positions."""
        return self.num_positions * self.d_model

    def forward(self, positions: torch.Tensor | int) -> torch.Tensor:
        """Embeddings of ``positions`` ``(batch, seq)`` -> ``(batch, seq, d_model)``.

        An int ``seq`` stands for positions ``0 .. seq - 1`` and gives ``(1, seq, d_model)``.
        Every position must lie in ``[0, n1 * n2)``.
        """
        if isinstance(positions, torch.Tensor):
            positions = checks.tensor(
                "positions", positions, dims=2, dtype="int", layout="(batch, seq)"
            )
            if positions.dtype == torch.bool:
                raise TypeError("positions: expected an integer tensor (batch, seq), got bool")
        else:
            seq = checks.positive_int("positions", positions)
            positions = torch.arange(seq, device=self.weights[0].device).unsqueeze(0)
        if positions.numel() and (positions.min() < 0 or positions.max() >= self.num_positions):
            raise ValueError(
                f"positions: expected positions in [0, {self.num_positions}) (axial_shape "
                f"{self.axial_shape}), got values from {int(positions.min())} to "
                f"{int(positions.max())}"
            )
        n2 = self.axial_shape[1]
        rows = self.weights[0][:, 0][positions // n2]  # (batch, seq, d1)
        columns = self.weights[1][0][positions % n2]  # (batch, seq, d2)
        return torch.cat([rows, columns], dim=-1)

    @classmethod
    def from_hf(cls, module: nn.Module) -> AxialPositionEmbeddings:
        """A copy of Hugging Face's ``AxialPositionEmbeddings`` ``module`` (two axes)."""
        needed = ("weights", "axial_pos_shape", "axial_pos_embds_dim")
        if not all(hasattr(module, attribute) for attribute in needed):
            raise TypeError(
                "module: expected a Hugging Face AxialPositionEmbeddings, "
                f"got {type(module).__name__}"
            )
        embeddings = cls(module.axial_pos_shape, module.axial_pos_embds_dim)
        with torch.no_grad():
            for ours, theirs in zip(embeddings.weights, module.weights, strict=True):
                ours.copy_(theirs)
        return embeddings


def _int_pair(name: str, value: object) -> tuple[int, int]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name}: expected a pair of positive ints, got {checks.describe(value)}")
    first = checks.positive_int(f"{name}[0]", value[0])
    return first, checks.positive_int(f"{name}[1]", value[1])


# --------------------------------------------------------------------------------------
# 5. A Reformer language model
# --------------------------------------------------------------------------------------


@dataclass
class ReformerConfig:
    """The sizes and settings of a `ReformerLM`, with the names of Hugging Face's
    ``ReformerConfig``.

    ``attn_layers`` names each layer's attention, ``"lsh"`` or ``"local"``; its length is
    the number of layers. ``axial_pos_shape`` and ``axial_pos_embds_dim`` set the axial
    position embeddings (section 5); with ``axial_pos_embds=False`` a full learned table
    of ``max_position_embeddings`` rows is used instead. ``chunk_size_feed_forward`` > 0
    runs the feed-forward layers in chunks of that many positions (section 4). The
    defaults are a small causal model of two layers.

    Used in: notebooks/06_reformer.ipynb, section 6.
    """

    vocab_size: int = 320
    hidden_size: int = 128
    num_attention_heads: int = 2
    attention_head_size: int = 64
    attn_layers: tuple[str, ...] = ("local", "lsh")
    feed_forward_size: int = 512
    num_buckets: int = 8
    num_hashes: int = 1
    lsh_attn_chunk_length: int = 64
    local_attn_chunk_length: int = 64
    lsh_num_chunks_before: int = 1
    lsh_num_chunks_after: int = 0
    local_num_chunks_before: int = 1
    local_num_chunks_after: int = 0
    is_decoder: bool = True
    axial_pos_embds: bool = True
    axial_pos_shape: tuple[int, int] = (64, 64)
    axial_pos_embds_dim: tuple[int, int] = (64, 64)
    max_position_embeddings: int = 4096
    chunk_size_feed_forward: int = 0
    hash_seed: int | None = None
    hidden_dropout_prob: float = 0.0
    lsh_attention_probs_dropout_prob: float = 0.0
    local_attention_probs_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_attention_heads",
            "attention_head_size",
            "feed_forward_size",
            "num_hashes",
            "lsh_attn_chunk_length",
            "local_attn_chunk_length",
            "max_position_embeddings",
        ):
            checks.positive_int(name, getattr(self, name))
        self.num_buckets = _even_buckets(self.num_buckets)
        if isinstance(self.attn_layers, str) or not isinstance(self.attn_layers, Sequence):
            raise TypeError(
                "attn_layers: expected a list of 'lsh' or 'local', "
                f"got {checks.describe(self.attn_layers)}"
            )
        if not self.attn_layers:
            raise ValueError("attn_layers: expected at least one layer, got an empty list")
        for i, kind in enumerate(self.attn_layers):
            checks.one_of(f"attn_layers[{i}]", kind, ("lsh", "local"))
        self.attn_layers = tuple(self.attn_layers)
        self.axial_pos_shape = _int_pair("axial_pos_shape", self.axial_pos_shape)
        self.axial_pos_embds_dim = _int_pair("axial_pos_embds_dim", self.axial_pos_embds_dim)
        if self.axial_pos_embds and sum(self.axial_pos_embds_dim) != self.hidden_size:
            raise ValueError(
                f"axial_pos_embds_dim: expected two sizes adding up to hidden_size "
                f"({self.hidden_size}), got {self.axial_pos_embds_dim}"
            )
        checks.positive_int("chunk_size_feed_forward", self.chunk_size_feed_forward, 0)
        for name in (
            "hidden_dropout_prob",
            "lsh_attention_probs_dropout_prob",
            "local_attention_probs_dropout_prob",
        ):
            checks.probability(name, getattr(self, name))
        checks.number("layer_norm_eps", self.layer_norm_eps, positive=True)

    @property
    def num_hidden_layers(self) -> int:
        """The number of layers: one per entry of ``attn_layers``."""
        return len(self.attn_layers)

    @classmethod
    def from_hf(cls, config: Any) -> ReformerConfig:
        """The same settings as a ``transformers.ReformerConfig`` (with an int
        ``num_buckets`` and a ReLU feed-forward layer)."""
        if not isinstance(config.num_buckets, int):
            raise ValueError(f"config: expected an int num_buckets, got {config.num_buckets!r}")
        if config.hidden_act != "relu":
            raise ValueError(
                f"config: hidden_act is {config.hidden_act!r}; this Reformer has ReLU only"
            )
        names = [name for name in cls.__dataclass_fields__ if name != "attn_layers"]
        settings = {name: getattr(config, name) for name in names}
        settings["is_decoder"] = bool(config.is_decoder)
        return cls(attn_layers=tuple(config.attn_layers), **settings)


class ReformerAttention(nn.Module):
    """F of a Reformer layer: ``dropout(output(attention(norm(x))))``.

    ``(batch, seq, d_model) -> (batch, seq, d_model)``. ``attention`` is an
    `LSHSelfAttention` or a `LocalSelfAttention`; the output projection has no bias, as
    in Hugging Face's ``ReformerSelfOutput``. The residual connection is the reversible
    block's. Used in: notebooks/06_reformer.ipynb, section 6.
    """

    def __init__(
        self,
        attention: LSHSelfAttention | LocalSelfAttention,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if not isinstance(attention, (LSHSelfAttention, LocalSelfAttention)):
            raise TypeError(
                "attention: expected an LSHSelfAttention or a LocalSelfAttention, "
                f"got {checks.describe(attention)}"
            )
        self.norm = nn.LayerNorm(attention.d_model, eps=layer_norm_eps)
        self.attention = attention
        self.output = nn.Linear(
            attention.num_heads * attention.d_head, attention.d_model, bias=False
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.output(self.attention(self.norm(x))))


class ReformerLM(Checkpointed):
    """A Reformer language model: ``(batch, seq)`` token ids -> ``(batch, seq, vocab)`` logits.

    Token embeddings plus position embeddings (axial or a full table) feed a
    `ReversibleStack` of `ReformerAttention` (F) and `FeedForwardSublayer` (G) blocks,
    the feed-forward layer chunked when ``chunk_size_feed_forward`` > 0; the two final
    streams are concatenated, ``(batch, seq, 2 d_model)``, normalised, and a linear map
    gives the logits. `encode` stops before that map: it equals the
    ``last_hidden_state`` of Hugging Face's ``ReformerModel`` with the same weights
    (`from_hf`). ``seq`` must be a multiple of the chunk lengths (or fit in one chunk).

    `use_attention` switches the LSH layers between hashing (with any number of rounds)
    and full attention over the whole sequence, with the same weights.

    Used in: notebooks/06_reformer.ipynb, section 6.
    """

    def __init__(self, config: ReformerConfig | Mapping[str, Any], reversible: bool = True) -> None:
        super().__init__()
        if isinstance(config, Mapping):
            config = ReformerConfig(**config)
        if not isinstance(config, ReformerConfig):
            raise TypeError(f"config: expected a ReformerConfig, got {checks.describe(config)}")
        self.reformer_config = c = config
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(c).items()}
        self.config = {"config": settings, "reversible": bool(reversible)}  # as JSON stores it
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        if c.axial_pos_embds:
            self.position_embeddings: nn.Module = AxialPositionEmbeddings(
                c.axial_pos_shape, c.axial_pos_embds_dim
            )
        else:
            self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        blocks = []
        for kind in c.attn_layers:
            attention = ReformerAttention(
                self._attention_layer(kind), c.hidden_dropout_prob, c.layer_norm_eps
            )
            feed_forward: nn.Module = FeedForwardSublayer(
                c.hidden_size, c.feed_forward_size, c.hidden_dropout_prob
            )
            feed_forward.norm.eps = c.layer_norm_eps
            if c.chunk_size_feed_forward:
                feed_forward = ChunkedFeedForward(feed_forward, c.chunk_size_feed_forward)
            blocks.append(ReversibleBlock(attention, feed_forward))
        self.layers = ReversibleStack(blocks, reversible=reversible)
        self.norm = nn.LayerNorm(2 * c.hidden_size, eps=c.layer_norm_eps)
        self.lm_head = nn.Linear(2 * c.hidden_size, c.vocab_size)

    def _attention_layer(self, kind: str) -> LSHSelfAttention | LocalSelfAttention:
        c = self.reformer_config
        if kind == "lsh":
            return LSHSelfAttention(
                c.hidden_size,
                c.num_attention_heads,
                c.attention_head_size,
                num_buckets=c.num_buckets,
                num_hashes=c.num_hashes,
                chunk_length=c.lsh_attn_chunk_length,
                num_chunks_before=c.lsh_num_chunks_before,
                num_chunks_after=c.lsh_num_chunks_after,
                causal=c.is_decoder,
                hash_seed=c.hash_seed,
                dropout=c.lsh_attention_probs_dropout_prob,
            )
        return LocalSelfAttention(
            c.hidden_size,
            c.num_attention_heads,
            c.attention_head_size,
            chunk_length=c.local_attn_chunk_length,
            num_chunks_before=c.local_num_chunks_before,
            num_chunks_after=c.local_num_chunks_after,
            causal=c.is_decoder,
            dropout=c.local_attention_probs_dropout_prob,
        )

    def lsh_layers(self) -> list[LSHSelfAttention]:
        """The model's LSH attention layers, first to last."""
        return [module for module in self.modules() if isinstance(module, LSHSelfAttention)]

    def use_attention(self, kind: str, num_hashes: int | None = None) -> None:
        """Make every LSH layer hash (``kind="lsh"``, with ``num_hashes`` rounds if given)
        or attend over the whole sequence (``kind="full"``)."""
        checks.one_of("kind", kind, ("lsh", "full"))
        if num_hashes is not None:
            num_hashes = checks.positive_int("num_hashes", num_hashes)
        for layer in self.lsh_layers():
            layer.full_attention = kind == "full"
            if num_hashes is not None:
                layer.num_hashes = num_hashes

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` token ids -> ``(batch, seq, 2 d_model)`` final hidden states."""
        input_ids = checks.tensor(
            "input_ids", input_ids, dims=2, dtype="int", layout="(batch, seq)"
        )
        seq = input_ids.shape[1]
        if input_ids.numel() and (
            input_ids.min() < 0 or input_ids.max() >= self.reformer_config.vocab_size
        ):
            raise ValueError(
                f"input_ids: expected ids in [0, {self.reformer_config.vocab_size}), got "
                f"values from {int(input_ids.min())} to {int(input_ids.max())}"
            )
        if (
            not self.reformer_config.axial_pos_embds
            and seq > self.reformer_config.max_position_embeddings
        ):
            raise ValueError(
                f"input_ids: expected at most max_position_embeddings "
                f"({self.reformer_config.max_position_embeddings}) positions, got {seq}"
            )
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        x = self.dropout(self.word_embeddings(input_ids)) + self.position_embeddings(positions)
        return self.dropout(self.norm(self.layers(x)))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` token ids -> ``(batch, seq, vocab_size)`` logits."""
        return self.lm_head(self.encode(input_ids))

    @classmethod
    def from_hf(cls, model: nn.Module) -> ReformerLM:
        """Ours, with the weights of a ``transformers`` ``ReformerModel`` or
        ``ReformerModelWithLMHead`` (whose LM head comes too)."""
        base = getattr(model, "reformer", model)
        if not hasattr(base, "encoder") or not hasattr(base, "embeddings"):
            raise TypeError(
                f"model: expected a Hugging Face ReformerModel, got {type(model).__name__}"
            )
        ours = cls(ReformerConfig.from_hf(base.config))
        with torch.no_grad():
            ours.word_embeddings.weight.copy_(base.embeddings.word_embeddings.weight)
            theirs_positions = base.embeddings.position_embeddings
            if ours.reformer_config.axial_pos_embds:
                for mine, theirs in zip(
                    ours.position_embeddings.weights, theirs_positions.weights, strict=True
                ):
                    mine.copy_(theirs)
            else:
                ours.position_embeddings.weight.copy_(theirs_positions.embedding.weight)
            for block, layer in zip(ours.layers.blocks, base.encoder.layers, strict=True):
                _copy_layer(block, layer)
            ours.norm.load_state_dict(base.encoder.layer_norm.state_dict())
            if hasattr(model, "lm_head"):
                ours.lm_head.load_state_dict(
                    {
                        "weight": model.lm_head.decoder.weight,
                        "bias": model.lm_head.decoder.bias,
                    }
                )
        return ours.to(base.embeddings.word_embeddings.weight)


def _copy_layer(block: ReversibleBlock, layer: nn.Module) -> None:
    """Copy one Hugging Face ``ReformerLayer`` into ``block`` (under ``torch.no_grad``)."""
    attention, theirs = block.f, layer.attention
    attention.norm.load_state_dict(theirs.layer_norm.state_dict())
    mine = attention.attention
    for name in ("query_key", "query", "key", "value"):
        if hasattr(mine, name):
            getattr(mine, name).weight.copy_(getattr(theirs.self_attention, name).weight)
    attention.output.weight.copy_(theirs.output.dense.weight)
    feed_forward = block.g.module if isinstance(block.g, ChunkedFeedForward) else block.g
    ff = layer.feed_forward
    feed_forward.norm.load_state_dict(ff.layer_norm.state_dict())
    feed_forward.feed_forward.linear1.load_state_dict(ff.dense.dense.state_dict())
    feed_forward.feed_forward.linear2.load_state_dict(ff.output.dense.state_dict())


# --------------------------------------------------------------------------------------
# 6. The duplication task
# --------------------------------------------------------------------------------------


def duplication_batch(
    batch_size: int, w: int, vocab_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sequences ``0 w 0 w`` of the paper's duplication task: ``(batch_size, 2 w + 2)``.

    ``w`` random symbols from ``1 .. vocab_size - 1`` (0 is the separator), then a 0 and
    the same symbols again. A language model can predict the second copy only by
    finding, ``w`` positions back, the symbol that comes next.
    Used in: notebooks/06_reformer.ipynb, section 7.
    """
    batch_size = checks.positive_int("batch_size", batch_size)
    w = checks.positive_int("w", w)
    vocab_size = checks.positive_int("vocab_size", vocab_size, 2)
    symbols = torch.randint(1, vocab_size, (batch_size, w), generator=generator)
    zeros = torch.zeros(batch_size, 1, dtype=torch.long)
    return torch.cat([zeros, symbols, zeros, symbols], dim=1)


def duplication_logits(model: nn.Module, sequences: torch.Tensor) -> torch.Tensor:
    """The predictions of the second copy: ``(batch, w, vocab)`` logits whose targets are
    ``sequences[:, w + 2:]``. The model reads the whole ``(batch, 2 w + 2)`` sequence
    (a causal model sees only the past), and the logits at positions ``w + 1 .. 2 w``
    predict the next symbol."""
    sequences = checks.tensor("sequences", sequences, dims=2, dtype="int", layout="(batch, 2w+2)")
    length = sequences.shape[1]
    if length < 4 or length % 2:
        raise ValueError(f"sequences: expected an even length 2 w + 2 >= 4 (0 w 0 w), got {length}")
    w = length // 2 - 1
    return model(sequences)[:, w + 1 : 2 * w + 1]


def duplication_loss(model: nn.Module, sequences: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the second copy's symbols (the loss of the paper's task)."""
    logits = duplication_logits(model, sequences)
    w = logits.shape[1]
    return F.cross_entropy(logits.flatten(0, 1), sequences[:, w + 2 :].flatten())


@torch.no_grad()
def duplication_accuracy(
    model: ReformerLM,
    sequences: torch.Tensor,
    attention: str = "lsh",
    num_hashes: int | None = None,
    seed: int = 0,
) -> float:
    """The fraction of the second copy's symbols ``model`` predicts right, with full
    attention (``attention="full"``) or LSH attention with ``num_hashes`` rounds.

    The model is evaluated in eval mode and left as it was found (its attention settings
    included); the random rotations are drawn after seeding with ``seed``, so the same
    call gives the same number. Used in: notebooks/06_reformer.ipynb, section 7.
    """
    if not isinstance(model, ReformerLM):
        raise TypeError(f"model: expected a ReformerLM, got {checks.describe(model)}")
    saved = [(layer.full_attention, layer.num_hashes) for layer in model.lsh_layers()]
    was_training = model.training
    model.eval()
    model.use_attention(attention, num_hashes)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            predicted = duplication_logits(model, sequences).argmax(-1)
    finally:
        for layer, (full, rounds) in zip(model.lsh_layers(), saved, strict=True):
            layer.full_attention, layer.num_hashes = full, rounds
        model.train(was_training)
    w = predicted.shape[1]
    return (predicted == sequences[:, w + 2 :]).float().mean().item()


#: Where the duplication-task models trained by ``scripts/train_reformer_duplication.py``
#: are shipped.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"

#: The duplication-task models shipped in the package: name -> file stem.
PRETRAINED = {
    "duplication-full": "reformer-duplication-full",
    "duplication-lsh1": "reformer-duplication-lsh1",
    "duplication-lsh2": "reformer-duplication-lsh2",
    "duplication-lsh4": "reformer-duplication-lsh4",
}


def load_pretrained(name: str) -> ReformerLM:
    """A one-layer `ReformerLM` trained on the duplication task, in eval mode.

    ``"duplication-full"`` was trained with full attention, ``"duplication-lsh1"`` /
    ``"-lsh2"`` / ``"-lsh4"`` with LSH attention of 1, 2 or 4 rounds, by
    ``scripts/train_reformer_duplication.py`` (``w = 63``, sequences of 128, chunks of
    16, 8 buckets). How each was trained, with its learning curve, is in
    ``lessons.core.checkpoint.checkpoint_notes(pretrained_path(name))``.
    Used in: notebooks/06_reformer.ipynb, section 7.
    """
    return ReformerLM.load(pretrained_path(name)).eval()


def pretrained_path(name: str) -> Path:
    """The safetensors file of the shipped model ``name`` (see `PRETRAINED`)."""
    stem = PRETRAINED[checks.one_of("name", name, PRETRAINED)]
    return PRETRAINED_DIR / f"{stem}.safetensors"
