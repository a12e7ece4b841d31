"""Encoder-decoder models for the generated tasks of `lessons.core.tasks`, with and without
attention.

Used in: notebooks/03_attention.ipynb, sections 1 (the fixed-length bottleneck),
2 (Bahdanau and Luong attention), 5 (heads look at different places) and 6 (when
recurrence isn't needed).

Two models, one interface (``model(sources, source_lengths, decoder_inputs)`` -> logits,
``model.greedy(...)``, ``model.vocab``, ``model.save`` / ``load``):

* `RNNSeq2Seq`: a bidirectional GRU encoder and a GRU decoder (Cho et al., 2014;
  Bahdanau et al., 2015). ``attention=None`` gives the decoder only the encoder's final
  state: one fixed-length vector, whatever the length of the source. ``"additive"``
  (Bahdanau), ``"dot"`` or ``"general"`` (Luong et al., 2015) let it look back at every
  encoder state at every step, through the score functions of `lessons.attention`.
* `TransformerSeq2Seq`: no recurrence at all. Convolutions and/or sinusoidal positions,
  self-attention and feed-forward layers read every position of the source at once;
  the decoder attends to its own past (`causal_mask`) and to the source
  (`MultiHeadAttention`), as in Vaswani et al. (2017).

Training uses teacher forcing (the decoder reads the true previous character, see
`lessons.core.tasks.make_batch`) and `lessons.core.train.train` with `seq2seq_loss`; `greedy_decode`
writes the most likely character at each step and returns the attention weights for
plotting. `exact_match` and `accuracy_by_length` measure the results.

The models the chapter uses are trained by ``scripts/train_seq2seq.py`` and shipped inside
the package: ``load_pretrained("extract-additive")`` (names: `pretrained_names`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm.auto import tqdm

from lessons.attention import (
    AdditiveScore,
    DotScore,
    GeneralScore,
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
    padding_mask,
)
from lessons.core import checks
from lessons.core.checkpoint import Checkpointed, checkpoint_class
from lessons.core.tasks import ALPHABET, CharVocab, make_batch
from lessons.core.train import History, train

__all__ = [
    "ATTENTION_TYPES",
    "Decoded",
    "Encoder",
    "RNNSeq2Seq",
    "SOURCE_POSITIONS",
    "TransformerSeq2Seq",
    "accuracy_by_length",
    "exact_match",
    "greedy_decode",
    "load_model",
    "load_pretrained",
    "predict",
    "pretrained_names",
    "pretrained_path",
    "seq2seq_loss",
    "sinusoidal_positions",
    "train_seq2seq",
]

#: The ``attention`` argument of `RNNSeq2Seq`.
ATTENTION_TYPES = (None, "additive", "dot", "general")
#: The ``source_positions`` argument of `TransformerSeq2Seq`.
SOURCE_POSITIONS = ("convolution", "sinusoidal", "convolution+sinusoidal")
#: Where the shipped models are: inside the package, so a pip install has them.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


# --------------------------------------------------------------------------------------
# The recurrent encoder-decoder
# --------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """A bidirectional GRU over the characters of the source (Bahdanau et al., 2015).

    ``forward(sources, source_lengths)`` returns

    * ``outputs`` ``(batch, source_len, 2 * hidden_dim)``: at each position the forward
      GRU's state (it has read the source up to there) next to the backward GRU's (it
      has read from the end back to there); zeros at padding positions;
    * ``final`` ``(batch, 2 * hidden_dim)``: the forward GRU's state after the last real
      character next to the backward GRU's after the first: each has read everything.

    Sequences are packed (``pack_padded_sequence``), so padding never enters a GRU:
    a source gives the same numbers alone or in a padded batch.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)

    def forward(
        self, sources: torch.Tensor, source_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(
            self.embedding(sources), source_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, final = self.gru(packed)  # final: (2 directions, batch, hidden_dim)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=sources.shape[1])
        return outputs, torch.cat([final[0], final[1]], dim=-1)


class RNNSeq2Seq(Checkpointed):
    """A GRU encoder-decoder, with or without attention.

    The encoder is an `Encoder` (bidirectional GRU, ``hidden_dim`` per direction), whose
    states ``h_j`` ``(2 * hidden_dim)`` are the keys and values of attention. The decoder
    is a GRU cell of ``2 * hidden_dim`` units, started from ``s_0 = tanh(W [final])``.
    At output step ``i``, with ``y_{i-1}`` the previous character (``<s>`` first)::

        c_i = context(s_{i-1}, h_1 ... h_n)                  # (batch, 2 * hidden_dim)
        s_i = GRUCell([embed(y_{i-1}); c_i], s_{i-1})
        logits_i = W_out [s_i; c_i; embed(y_{i-1})]

    which is Bahdanau et al.'s decoder (without its maxout layer). The context is

    * ``attention=None``: the encoder's ``final`` state at every step: the decoder sees
      the source only through this one fixed-length vector (Cho et al., 2014);
    * otherwise ``c_i = sum_j a_ij h_j`` with ``a_i = masked_softmax(score(s_{i-1}, h))``
      over the real source positions, the score being ``"additive"``
      (`AdditiveScore`, Bahdanau), ``"dot"`` (`DotScore`) or ``"general"``
      (`GeneralScore`, both Luong et al.).

    Luong et al. also query with the *new* state ``s_i`` and add a layer after
    attention; here all three scores share one decoder, so the score is the only
    difference between them.

    ``forward(sources, source_lengths, decoder_inputs)``: LongTensors ``(batch,
    source_len)``, ``(batch,)`` and ``(batch, target_len)`` (see
    `lessons.core.tasks.make_batch`) -> logits ``(batch, target_len, vocab_size)``.

    Used in: notebooks/03_attention.ipynb, sections 1 and 2.
    """

    def __init__(
        self,
        characters: str = ALPHABET,
        attention: str | None = None,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
    ):
        super().__init__()
        checks.one_of("attention", attention, ATTENTION_TYPES)
        checks.positive_int("embedding_dim", embedding_dim)
        checks.positive_int("hidden_dim", hidden_dim)
        self.vocab = CharVocab(characters)
        self.config: dict[str, Any] = {
            "characters": characters,
            "attention": attention,
            "embedding_dim": embedding_dim,
            "hidden_dim": hidden_dim,
        }
        vocab_size, state_dim = len(self.vocab), 2 * hidden_dim
        self.encoder = Encoder(vocab_size, embedding_dim, hidden_dim)
        self.bridge = nn.Linear(state_dim, state_dim)
        self.score: nn.Module | None = None
        if attention == "additive":
            self.score = AdditiveScore(state_dim, state_dim, hidden_dim)
        elif attention == "dot":
            self.score = DotScore()
        elif attention == "general":
            self.score = GeneralScore(state_dim, state_dim)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.cell = nn.GRUCell(embedding_dim + state_dim, state_dim)
        self.output = nn.Linear(2 * state_dim + embedding_dim, vocab_size)

    def encode(
        self, sources: torch.Tensor, source_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(keys, mask, final, s_0)``: encoder states ``(batch, source_len, 2 *
        hidden_dim)``, the `padding_mask` ``(batch, 1, source_len)``, the encoder's final
        state and the decoder's first state, both ``(batch, 2 * hidden_dim)``."""
        sources, source_lengths = _check_sources(sources, source_lengths)
        keys, final = self.encoder(sources, source_lengths)
        mask = padding_mask(source_lengths.to(sources.device), sources.shape[1])
        return keys, mask, final, torch.tanh(self.bridge(final))

    def step(
        self,
        previous: torch.Tensor,
        state: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        final: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One decoder step: ``previous`` ids ``(batch,)`` and ``state`` ``s_{i-1}``
        -> ``(logits (batch, vocab_size), s_i, weights (batch, source_len) or None)``."""
        if self.score is None:
            context, weights = final, None
        else:
            scores = self.score(state.unsqueeze(1), keys)  # (batch, 1, source_len)
            weights = masked_softmax(scores, mask)
            context = (weights @ keys).squeeze(1)
            weights = weights.squeeze(1)
        embedded = self.embedding(previous)
        state = self.cell(torch.cat([embedded, context], dim=-1), state)
        logits = self.output(torch.cat([state, context, embedded], dim=-1))
        return logits, state, weights

    def forward(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        keys, mask, final, state = self.encode(sources, source_lengths)
        logits = []
        for i in range(decoder_inputs.shape[1]):
            step_logits, state, _ = self.step(decoder_inputs[:, i], state, keys, mask, final)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``max_len`` greedy steps: ids ``(batch, max_len)`` and attention weights
        ``(batch, max_len, source_len)`` (None without attention). See `greedy_decode`."""
        keys, mask, final, state = self.encode(sources, source_lengths)
        previous = torch.full_like(source_lengths, self.vocab.bos_id, device=sources.device)
        ids, weights = [], []
        for _ in range(max_len):
            logits, state, step_weights = self.step(previous, state, keys, mask, final)
            previous = logits.argmax(dim=-1)
            ids.append(previous)
            weights.append(step_weights)
        return torch.stack(ids, 1), None if self.score is None else torch.stack(weights, 1)


# --------------------------------------------------------------------------------------
# The non-recurrent encoder-decoder
# --------------------------------------------------------------------------------------


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s positional encodings ``(length, dim)``: ``sin(p / 10000^(2k /
    dim))`` in even columns, ``cos`` of the same in odd ones. Fixed, not learned, so they
    exist for positions never seen in training."""
    positions = torch.arange(length, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -math.log(1e4) / dim)
    out = torch.zeros(length, dim)
    out[:, 0::2] = torch.sin(positions * frequencies)
    out[:, 1::2] = torch.cos(positions * frequencies)[:, : dim // 2]
    return out


class _FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ff_dim: int):
        super().__init__(nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Linear(ff_dim, d_model))


class _EncoderLayer(nn.Module):
    """Pre-norm: ``x + self_attention(norm(x))``, then ``x + feed_forward(norm(x))``."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attention = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = _FeedForward(d_model, ff_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attention(h, h, h, mask, need_weights=False)[0]
        return x + self.feed_forward(self.norm2(x))


class _DecoderLayer(nn.Module):
    """Pre-norm: masked self-attention, then attention to the encoder, then feed-forward."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attention = MultiHeadAttention(d_model, num_heads)
        self.cross_attention = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = _FeedForward(d_model, ff_dim)

    def forward(
        self, y: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor, memory_mask
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm1(y)
        y = y + self.self_attention(h, h, h, self_mask, need_weights=False)[0]
        attended, weights = self.cross_attention(self.norm2(y), memory, memory, memory_mask)
        y = y + attended
        return y + self.feed_forward(self.norm3(y)), weights


class TransformerSeq2Seq(Checkpointed):
    """An encoder-decoder without recurrence: attention, convolution and feed-forward layers.

    * Encoder: character embeddings (scaled by ``sqrt(d_model)``), then the order of
      the characters (``source_positions``, below), then ``num_layers`` layers of
      self-attention over the real source positions and a position-wise feed-forward
      network. Every position is computed at once: no step waits for the previous one.
    * Decoder: embeddings plus `sinusoidal_positions` of the characters written so far,
      then ``num_layers`` layers of masked self-attention (`causal_mask`: step ``i``
      sees steps ``<= i``), attention to the encoder's output (``cross_attention``) and
      a feed-forward network, as in Vaswani et al. (2017).

    ``source_positions`` says how the encoder learns where each character is:

    * ``"convolution"`` (default): no positions; two residual 1-D convolutions (width 5,
      ReLU) over the embeddings give each character its neighbourhood, as in the
      convolutional models of Gehring et al. (2017). Nothing depends on the absolute
      position, so longer sources hold nothing new;
    * ``"sinusoidal"``: no convolutions; add `sinusoidal_positions`, as the Transformer
      does. Order then comes only from absolute positions, and a source longer than all
      training sources brings positions the model never saw;
    * ``"convolution+sinusoidal"``: both, the sinusoidal positions added before the
      convolutions. The same parameters as ``"convolution"`` (the positions have none)
      and, under the same seed, the same initial weights: the absolute positions are the
      only change.

    All layers are pre-norm (LayerNorm before each sublayer, inside the residual
    connection), which trains without a learning-rate warm-up; a final LayerNorm and a
    linear layer give the logits. Same ``forward`` and ``greedy`` as `RNNSeq2Seq`;
    `greedy` returns the last decoder layer's attention to the source, averaged over
    the heads.

    Used in: notebooks/03_attention.ipynb, sections 5 and 6.
    """

    def __init__(
        self,
        characters: str = ALPHABET,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        ff_dim: int = 128,
        source_positions: str = "convolution",
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
            "source_positions": source_positions,
        }
        self.convolutions = nn.ModuleList(
            nn.Conv1d(d_model, d_model, kernel_size=5, padding=2)
            for _ in range(2 if "convolution" in source_positions else 0)
        )
        self.source_embedding = nn.Embedding(len(self.vocab), d_model, padding_idx=0)
        self.target_embedding = nn.Embedding(len(self.vocab), d_model, padding_idx=0)
        for embedding in (self.source_embedding, self.target_embedding):
            # entries of variance 1 / d_model, times sqrt(d_model) in _embed: variance 1,
            # the scale of the positional encodings
            nn.init.normal_(embedding.weight[1:], std=d_model**-0.5)
        self.encoder_layers = nn.ModuleList(
            _EncoderLayer(d_model, num_heads, ff_dim) for _ in range(num_layers)
        )
        self.decoder_layers = nn.ModuleList(
            _DecoderLayer(d_model, num_heads, ff_dim) for _ in range(num_layers)
        )
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, len(self.vocab))

    def _embed(
        self, embedding: nn.Embedding, ids: torch.Tensor, positions: bool = True
    ) -> torch.Tensor:
        d_model = self.config["d_model"]
        x = embedding(ids) * math.sqrt(d_model)
        return x + sinusoidal_positions(ids.shape[1], d_model).to(ids.device) if positions else x

    def encode(
        self, sources: torch.Tensor, source_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(memory, mask)``: the encoder's output ``(batch, source_len, d_model)`` and
        the `padding_mask` ``(batch, 1, source_len)``."""
        sources, source_lengths = _check_sources(sources, source_lengths)
        mask = padding_mask(source_lengths.to(sources.device), sources.shape[1])
        sinusoidal = "sinusoidal" in self.config["source_positions"]
        x = self._embed(self.source_embedding, sources, positions=sinusoidal)
        real = mask.transpose(1, 2).to(x.dtype)  # (batch, source_len, 1)
        if self.convolutions:  # padding is 0 before each convolution, positions or not
            x = x * real
        for convolution in self.convolutions:
            x = (x + F.relu(convolution(x.transpose(1, 2)).transpose(1, 2))) * real
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def decode(
        self, memory: torch.Tensor, mask: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(batch, target_len, vocab_size)`` and the last layer's attention to
        the source ``(batch, heads, target_len, source_len)``."""
        y = self._embed(self.target_embedding, decoder_inputs)
        self_mask = causal_mask(decoder_inputs.shape[1], device=decoder_inputs.device)
        for layer in self.decoder_layers:
            y, weights = layer(y, memory, self_mask, mask)
        return self.output(self.decoder_norm(y)), weights

    def forward(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor:
        memory, mask = self.encode(sources, source_lengths)
        return self.decode(memory, mask, decoder_inputs)[0]

    @torch.no_grad()
    def greedy(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``max_len`` greedy steps: ids ``(batch, max_len)`` and the last layer's
        attention to the source, mean over heads, ``(batch, max_len, source_len)``."""
        memory, mask = self.encode(sources, source_lengths)
        written = torch.full_like(source_lengths, self.vocab.bos_id, device=sources.device)[:, None]
        for _ in range(max_len):  # the decoder reruns on the whole prefix at each step
            logits, weights = self.decode(memory, mask, written)
            written = torch.cat([written, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
        return written[:, 1:], weights.mean(dim=1)


# --------------------------------------------------------------------------------------
# Training, decoding, measuring
# --------------------------------------------------------------------------------------


def seq2seq_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the next character over the real target positions (the
    target characters and ``</s>``; padding is ignored): ``loss_fn`` for
    `lessons.core.train.train`, with batches of `lessons.core.tasks.make_batch`."""
    logits = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    return F.cross_entropy(
        logits.transpose(1, 2), batch["decoder_targets"], ignore_index=model.vocab.pad_id
    )


def train_seq2seq(
    model: RNNSeq2Seq | TransformerSeq2Seq,
    batched: Sequence[Mapping[str, torch.Tensor]],
    epochs: int = 1,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train with teacher forcing: `lessons.core.train.train` with `seq2seq_loss`, Adam at
    ``lr``, gradient norms clipped to 1. ``batched``: `lessons.core.tasks.batches`.
    ``history.seconds / epochs`` is the wall time of one epoch."""
    return train(
        model,
        list(batched),
        loss_fn=seq2seq_loss,
        lr=lr,
        epochs=epochs,
        clip_grad_norm=1.0,
        seed=seed,
        progress=progress,
    )


@dataclass
class Decoded:
    """What `greedy_decode` returns.

    ``predictions``: one string per source, the characters before the first ``</s>``.
    ``ids`` ``(batch, out_len)``: the ids written, ``</s>`` included, padding (0) after
    it. ``attention`` ``(batch, out_len, in_len)``: row ``i`` is the distribution over
    the source characters when writing output ``i`` (rows after ``</s>`` are 0;
    columns past a source's length are padding, always 0); None for a model without
    attention.
    """

    predictions: list[str]
    ids: torch.Tensor
    attention: torch.Tensor | None


def greedy_decode(
    model: RNNSeq2Seq | TransformerSeq2Seq, sources: Sequence[str], max_len: int = 12
) -> Decoded:
    """Translate ``sources`` by writing, at each step, the most likely next character.

    The decoder takes ``max_len`` steps (``</s>`` included); each output is kept up to
    its first ``</s>``, and ``ids`` and ``attention`` are cut to the longest output.
    Used in: notebooks/03_attention.ipynb, sections 1, 2, 5, 6 and 7.
    """
    if not isinstance(model, RNNSeq2Seq | TransformerSeq2Seq):
        raise TypeError(
            f"model: expected an RNNSeq2Seq or a TransformerSeq2Seq, got {type(model).__name__}"
        )
    if isinstance(sources, str):
        raise TypeError(f"sources: expected a list of strings, got the string {sources!r}")
    checks.positive_int("max_len", max_len)
    batch = make_batch(list(sources), model.vocab)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids, attention = model.greedy(
        batch["sources"].to(device), batch["source_lengths"].to(device), max_len
    )
    model.train(was_training)
    ids, attention = ids.cpu(), None if attention is None else attention.cpu()
    # everything after the first </s> is padding
    ended = (ids == model.vocab.eos_id).long().cumsum(dim=1)
    after = (ended - (ids == model.vocab.eos_id).long()) > 0
    ids = ids.masked_fill(after, model.vocab.pad_id)
    if attention is not None:
        attention = attention.masked_fill(after[..., None], 0.0)
    written = int((~after).sum(dim=1).max())
    ids = ids[:, :written]
    attention = None if attention is None else attention[:, :written]
    return Decoded([model.vocab.decode(row) for row in ids], ids, attention)


def predict(
    model: RNNSeq2Seq | TransformerSeq2Seq,
    sources: Sequence[str],
    max_len: int = 12,
    batch_size: int = 500,
    progress: bool = False,
) -> list[str]:
    """`greedy_decode` predictions for many sources, ``batch_size`` at a time."""
    checks.positive_int("batch_size", batch_size)
    starts = range(0, len(sources), batch_size)
    out: list[str] = []
    for start in tqdm(starts, desc="decoding", unit="batch", disable=not progress):
        out += greedy_decode(model, sources[start : start + batch_size], max_len).predictions
    return out


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """The fraction of predictions equal to their target, character for character."""
    if len(predictions) != len(targets) or not targets:
        raise ValueError(
            f"predictions and targets: expected two non-empty lists of one length, got "
            f"{len(predictions)} and {len(targets)}"
        )
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def accuracy_by_length(
    pairs: Sequence[tuple[str, str]], predictions: Sequence[str]
) -> dict[int, tuple[float, int]]:
    """``{source length: (exact-match accuracy, number of examples)}``, sorted by length."""
    if len(pairs) != len(predictions):
        raise ValueError(
            f"pairs and predictions: expected one prediction per pair, got {len(pairs)} "
            f"pairs and {len(predictions)} predictions"
        )
    groups: dict[int, list[bool]] = {}
    for (source, target), prediction in zip(pairs, predictions, strict=True):
        groups.setdefault(len(source), []).append(prediction == target)
    return {n: (sum(hits) / len(hits), len(hits)) for n, hits in sorted(groups.items())}


# --------------------------------------------------------------------------------------
# The shipped models
# --------------------------------------------------------------------------------------


def pretrained_names() -> list[str]:
    """The names `load_pretrained` accepts: the ``pretrained/seq2seq-<name>.safetensors``
    files shipped inside the package, sorted."""
    return sorted(
        p.name.removeprefix("seq2seq-").removesuffix(".safetensors")
        for p in PRETRAINED_DIR.glob("seq2seq-*.safetensors")
    )


def load_pretrained(name: str) -> RNNSeq2Seq | TransformerSeq2Seq:
    """A model that ``scripts/train_seq2seq.py`` trained, as shipped inside the package
    (``lessons/pretrained/seq2seq-<name>.safetensors``), in eval mode.

    ``name`` is one of `pretrained_names`: ``"<task>-<model>"``, e.g. ``"extract-none"``
    or ``"extract-additive"``. How it was trained (task, epochs, seconds, ...) is in
    ``lessons.core.checkpoint.checkpoint_notes(pretrained_path(name))``.

    Used in: notebooks/03_attention.ipynb, sections 1, 2, 5, 6 and 7.
    """
    return load_model(pretrained_path(name)).eval()


def pretrained_path(name: str) -> Path:
    """The file of the shipped model ``name`` (a ValueError lists the names if unknown)."""
    shipped = pretrained_names()
    if not isinstance(name, str) or name not in shipped:
        raise ValueError(f"name: expected one of {shipped}, got {name!r}")
    return PRETRAINED_DIR / f"seq2seq-{name}.safetensors"


def load_model(path: str | Path) -> RNNSeq2Seq | TransformerSeq2Seq:
    """The `RNNSeq2Seq` or `TransformerSeq2Seq` saved in ``path`` (with ``model.save``)."""
    name = checkpoint_class(path)
    classes = {cls.__name__: cls for cls in (RNNSeq2Seq, TransformerSeq2Seq)}
    if name not in classes:
        raise ValueError(f"{path}: unknown model class {name!r}, expected one of {list(classes)}")
    return classes[name].load(path)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_sources(sources: object, source_lengths: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(sources, torch.Tensor) or sources.dim() != 2 or sources.dtype != torch.long:
        got = (
            f"{sources.dtype} of shape {tuple(sources.shape)}"
            if isinstance(sources, torch.Tensor)
            else type(sources).__name__
        )
        raise ValueError(f"sources: expected a LongTensor (batch, source_len), got {got}")
    if (
        not isinstance(source_lengths, torch.Tensor)
        or tuple(source_lengths.shape) != (sources.shape[0],)
        or source_lengths.is_floating_point()
    ):
        got = (
            f"shape {tuple(source_lengths.shape)}"
            if isinstance(source_lengths, torch.Tensor)
            else type(source_lengths).__name__
        )
        raise ValueError(
            f"source_lengths: expected {sources.shape[0]} integer lengths (batch,), got {got}"
        )
    if bool((source_lengths < 1).any()) or int(source_lengths.max()) > sources.shape[1]:
        raise ValueError(
            f"source_lengths: expected lengths in [1, {sources.shape[1]}] (an empty source "
            f"has nothing to encode), got {source_lengths.tolist()}"
        )
    return sources, source_lengths
