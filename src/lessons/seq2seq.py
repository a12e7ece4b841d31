"""Recurrent encoder-decoders for the generated tasks of `lessons.core.tasks`, with and
without attention, and the functions that train, decode and measure them.

Used in: notebooks/03_attention.ipynb, sections 1 (the fixed-length bottleneck),
2 (Bahdanau and Luong attention), 5 (heads look at different places), 6 (when
recurrence isn't needed) and 7 (the explorer).

`RNNSeq2Seq` is a bidirectional GRU encoder and a GRU decoder (Cho et al., 2014;
Bahdanau et al., 2015). ``attention=None`` gives the decoder only the encoder's final
state: one fixed-length vector, whatever the length of the source. ``"additive"``
(Bahdanau), ``"dot"`` or ``"general"`` (Luong et al., 2015) let it look back at every
encoder state at every step, through the score functions of `lessons.attention`.

Training uses teacher forcing (the decoder reads the true previous character, see
`lessons.core.tasks.make_batch`) and `lessons.core.train.train` with `seq2seq_loss`;
`greedy_decode` writes the most likely character at each step and returns the attention
weights for plotting. `exact_match` and `accuracy_by_length` measure the results.

These functions take any `Seq2SeqModel`: a module with ``vocab``, ``greedy`` and
``model(sources, source_lengths, decoder_inputs)`` -> logits. Section 6 passes them the
model without recurrence of chapter 4 (``lessons.transformer.TransformerSeq2Seq``),
which has that interface; this module does not import it, since a chapter only builds on
the chapters before it.

The recurrent models the chapter uses are trained by ``scripts/train_seq2seq.py`` and
shipped inside the package: ``load_pretrained("extract-additive")`` (names:
`pretrained_names`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm.auto import tqdm

from lessons.attention import (
    AdditiveScore,
    DotScore,
    GeneralScore,
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
    "Seq2SeqModel",
    "accuracy_by_length",
    "check_model",
    "exact_match",
    "greedy_decode",
    "load_model",
    "load_pretrained",
    "predict",
    "pretrained_names",
    "pretrained_path",
    "seq2seq_loss",
    "train_seq2seq",
]

#: The ``attention`` argument of `RNNSeq2Seq`.
ATTENTION_TYPES = (None, "additive", "dot", "general")
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
# Training, decoding, measuring
# --------------------------------------------------------------------------------------


class Seq2SeqModel(Protocol):
    """What the functions below need of an encoder-decoder: an ``nn.Module`` with

    * ``vocab``, the `lessons.core.tasks.CharVocab` of its sources and targets;
    * ``model(sources, source_lengths, decoder_inputs)`` -> logits ``(batch, target_len,
      vocab_size)``, with the tensors of `lessons.core.tasks.make_batch`;
    * ``greedy(sources, source_lengths, max_len)`` -> ids ``(batch, max_len)`` and the
      attention to the source ``(batch, max_len, source_len)``, or None.

    `RNNSeq2Seq` is one; chapter 4's ``lessons.transformer.TransformerSeq2Seq`` is
    another (section 6). `check_model` says what is missing from anything else.
    """

    vocab: CharVocab

    def __call__(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, decoder_inputs: torch.Tensor
    ) -> torch.Tensor: ...

    def greedy(
        self, sources: torch.Tensor, source_lengths: torch.Tensor, max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


def check_model(model: object) -> Seq2SeqModel:
    """``model`` if it is a `Seq2SeqModel`; otherwise a TypeError naming what it lacks."""
    missing = [
        what
        for what, ok in (
            ("is not a torch.nn.Module", isinstance(model, nn.Module)),
            ("has no `vocab` (a CharVocab)", isinstance(getattr(model, "vocab", None), CharVocab)),
            ("has no `greedy` method", callable(getattr(model, "greedy", None))),
        )
        if not ok
    ]
    if missing:
        raise TypeError(
            f"model: expected an encoder-decoder (an nn.Module with `vocab` and `greedy`, "
            f"such as RNNSeq2Seq or lessons.transformer.TransformerSeq2Seq), got "
            f"{type(model).__name__}, which {' and '.join(missing)}"
        )
    return model  # type: ignore[return-value]


def seq2seq_loss(model: Seq2SeqModel, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the next character over the real target positions (the
    target characters and ``</s>``; padding is ignored): ``loss_fn`` for
    `lessons.core.train.train`, with batches of `lessons.core.tasks.make_batch`."""
    logits = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    return F.cross_entropy(
        logits.transpose(1, 2), batch["decoder_targets"], ignore_index=model.vocab.pad_id
    )


def train_seq2seq(
    model: Seq2SeqModel,
    batched: Sequence[Mapping[str, torch.Tensor]],
    epochs: int = 1,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train with teacher forcing: `lessons.core.train.train` with `seq2seq_loss`, Adam at
    ``lr``, gradient norms clipped to 1. ``batched``: `lessons.core.tasks.batches`.
    ``history.seconds / epochs`` is the wall time of one epoch. ``model``: any
    `Seq2SeqModel`."""
    check_model(model)
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


def greedy_decode(model: Seq2SeqModel, sources: Sequence[str], max_len: int = 12) -> Decoded:
    """Translate ``sources`` by writing, at each step, the most likely next character.

    The decoder takes ``max_len`` steps (``</s>`` included); each output is kept up to
    its first ``</s>``, and ``ids`` and ``attention`` are cut to the longest output.
    Used in: notebooks/03_attention.ipynb, sections 1, 2, 5, 6 and 7.
    """
    check_model(model)
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
    model: Seq2SeqModel,
    sources: Sequence[str],
    max_len: int = 12,
    batch_size: int = 500,
    progress: bool = False,
) -> list[str]:
    """`greedy_decode` predictions for many sources, ``batch_size`` at a time."""
    check_model(model)
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


def load_pretrained(name: str) -> RNNSeq2Seq:
    """A model that ``scripts/train_seq2seq.py`` trained, as shipped inside the package
    (``lessons/pretrained/seq2seq-<name>.safetensors``), in eval mode.

    ``name`` is one of `pretrained_names`: ``"<task>-<model>"``, e.g. ``"extract-none"``
    or ``"extract-additive"``. How it was trained (task, epochs, seconds, ...) is in
    ``lessons.core.checkpoint.checkpoint_notes(pretrained_path(name))``. The models
    without recurrence of section 6 are ``lessons.transformer.load_pretrained("extract-…")``.

    Used in: notebooks/03_attention.ipynb, sections 1, 2, 6 and 7.
    """
    return load_model(pretrained_path(name)).eval()


def pretrained_path(name: str) -> Path:
    """The file of the shipped model ``name`` (a ValueError lists the names if unknown)."""
    shipped = pretrained_names()
    if not isinstance(name, str) or name not in shipped:
        raise ValueError(f"name: expected one of {shipped}, got {name!r}")
    return PRETRAINED_DIR / f"seq2seq-{name}.safetensors"


def load_model(path: str | Path) -> RNNSeq2Seq:
    """The `RNNSeq2Seq` saved in ``path`` (with ``model.save``). The attention-only models
    of section 6 load with ``lessons.transformer.load_model``."""
    name = checkpoint_class(path)
    if name != RNNSeq2Seq.__name__:
        raise ValueError(
            f"{path}: holds a {name}, expected an RNNSeq2Seq; a TransformerSeq2Seq loads "
            f"with lessons.transformer.load_model"
        )
    return RNNSeq2Seq.load(path)


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
