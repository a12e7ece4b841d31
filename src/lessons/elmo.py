"""ELMo from scratch: a character-aware bidirectional language model (Peters et al., 2018).

Used in: notebooks/02_elmo.ipynb, sections 2 to 7 (each docstring names its section).

The pieces, in the order the data flows through them::

    ids = character_ids(sentences)              # (batch, tokens + 2, max_chars), <S> ... </S>
    x = CharCNN(...)(ids)                       # (batch, tokens + 2, token_dim): layer 0
    BiLM: forward LSTM LM and backward LSTM LM, 2 layers each, residual 1 -> 2,
          LSTM-with-projection back to token_dim, one softmax shared by both directions
    ELMo: ScalarMix of the 3 layers (each fwd ++ bwd, width 2 * token_dim), <S>/</S> removed

Names follow the paper and allennlp's implementation (``ELMoCharacterMapper``,
``Highway``, ``ScalarMix``, ``remove_sentence_boundaries``). The original model has
``char_dim=16``, filters ``(1,32) (2,32) (3,64) (4,128) (5,256) (6,512) (7,1024)``, 2
highway layers, ``token_dim=512`` and LSTMs of 4096 cells; the defaults here are small
enough to train on a laptop's CPU.

Simplifications, all deliberate: no cell or projection clipping in the LSTMs, and the
full softmax instead of sampled softmax. Dropout (the paper used 0.1) is applied to the
input of every LSTM layer and to the top layer before the softmax, in training only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from lessons.core import checks
from lessons.core.checkpoint import Checkpointed
from lessons.core.vocab import Vocabulary

__all__ = [
    "BEGIN_OF_SENTENCE",
    "BEGIN_OF_WORD",
    "BiLM",
    "CharCNN",
    "ELMo",
    "ELMoOutput",
    "END_OF_SENTENCE",
    "END_OF_WORD",
    "Highway",
    "NUM_CHARS",
    "PADDING_CHAR",
    "ScalarMix",
    "character_ids",
    "embed_sentences",
    "lm_loss",
    "load_pretrained",
    "make_batch",
    "perplexities",
    "word_character_ids",
    "word_ids",
]

# allennlp's ELMoCharacterMapper: bytes are 0..255, the specials 256..260, and every id is
# shifted by one at the end so that 0 means "padding token" (a whole row of zeros).
BEGIN_OF_SENTENCE = 256 + 1  #: the one character of the <S> token
END_OF_SENTENCE = 257 + 1  #: the one character of the </S> token
BEGIN_OF_WORD = 258 + 1  #: first character of every token
END_OF_WORD = 259 + 1  #: after the last (kept) byte of every token
PADDING_CHAR = 260 + 1  #: fills a token's row after END_OF_WORD
NUM_CHARS = 262  #: ids 0..261: 0 = padding token, 1..256 = bytes + 1, then the specials

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


# --------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------


def _word_row(word_bytes: Sequence[int], max_chars: int) -> list[int]:
    """One token's row: BOW, bytes (at most max_chars - 2), EOW, padding; every id + 1."""
    kept = list(word_bytes)[: max_chars - 2]
    row = [BEGIN_OF_WORD - 1, *kept, END_OF_WORD - 1]
    row += [PADDING_CHAR - 1] * (max_chars - len(row))
    return [c + 1 for c in row]


def word_character_ids(word: str, max_chars: int) -> list[int]:
    """The ``max_chars`` character ids of one word, as `character_ids` writes them.

    Used in: notebooks/02_elmo.ipynb, section 7, exercise 1.
    """
    return _word_row(word.encode("utf-8"), max_chars)


def character_ids(
    sentences: Sequence[Sequence[str]], max_chars: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Character ids of a batch of sentences, with <S> and </S> added, as in ELMo.

    Each token becomes a row of ``max_chars`` ids: begin-of-word (259), the UTF-8 bytes of
    the word plus one (so "a", byte 97, is 98), end-of-word (260), then padding characters
    (261). Words longer than ``max_chars - 2`` bytes are truncated to their first
    ``max_chars - 2`` bytes (the original does the same; it may cut a multi-byte
    character in half). <S> is the row ``259, 257, 260, 261, ...`` and </S> the row
    ``259, 258, 260, 261, ...``. Shorter sentences are padded with padding *tokens*: rows
    of zeros.

    Returns ``(ids, mask)``: ``ids`` a LongTensor ``(batch, tokens + 2, max_chars)`` where
    ``tokens`` is the length of the longest sentence, ``mask`` a bool tensor
    ``(batch, tokens + 2)``, True on <S>, the words and </S>.

    Used in: notebooks/02_elmo.ipynb, section 2, "Why characters".
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 3:
        raise ValueError(
            f"max_chars: expected an int >= 3 (begin-of-word, a byte, end-of-word), "
            f"got {max_chars!r}"
        )
    sentences = checks.sentences(sentences, nonempty=True)
    longest = max(len(s) for s in sentences)
    ids = torch.zeros(len(sentences), longest + 2, max_chars, dtype=torch.long)
    mask = torch.zeros(len(sentences), longest + 2, dtype=torch.bool)
    bos = _word_row([BEGIN_OF_SENTENCE - 1], max_chars)
    eos = _word_row([END_OF_SENTENCE - 1], max_chars)
    for i, sentence in enumerate(sentences):
        rows = [bos, *(word_character_ids(word, max_chars) for word in sentence), eos]
        ids[i, : len(rows)] = torch.tensor(rows)
        mask[i, : len(rows)] = True
    return ids, mask


def word_ids(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> torch.Tensor:
    """The vocabulary ids of the words, ``(batch, tokens)``, padded with 0.

    These are the language model's targets. Padding positions hold 0 (the id of
    ``<unk>``) but are never predicted: the mask of `character_ids` leaves them out.

    Used in: notebooks/02_elmo.ipynb, section 4.
    """
    if not isinstance(vocab, Vocabulary):
        raise TypeError(
            f"vocab: expected a lessons.core.vocab.Vocabulary, got {type(vocab).__name__}"
        )
    sentences = checks.sentences(sentences, nonempty=True)
    out = torch.zeros(len(sentences), max(len(s) for s in sentences), dtype=torch.long)
    for i, sentence in enumerate(sentences):
        out[i, : len(sentence)] = torch.tensor(vocab.encode(sentence))
    return out


def make_batch(
    sentences: Sequence[Sequence[str]], vocab: Vocabulary, max_chars: int = 50
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(char_ids, mask, targets)`` for `BiLM.loss`: `character_ids` and `word_ids`.

    Used in: notebooks/02_elmo.ipynb, section 4.
    """
    char_ids, mask = character_ids(sentences, max_chars)
    return char_ids, mask, word_ids(sentences, vocab)


# --------------------------------------------------------------------------------------
# Token encoder
# --------------------------------------------------------------------------------------


class Highway(nn.Module):
    """Highway layers (Srivastava et al., 2015) in allennlp's form, which ELMo uses.

    Each layer computes ``y = g * x + (1 - g) * relu(W_h x + b_h)`` with the gate
    ``g = sigmoid(W_g x + b_g)``. ``g`` is the *carry* fraction: the share of the input
    ``x`` that passes through unchanged (the paper's "transform gate" is ``1 - g``). The
    gate bias ``b_g`` starts at 1, so at first ``g ≈ sigmoid(1) = 0.731``: the layers
    start mostly copying their input, which makes deep stacks easy to train.

    Input and output: ``(..., dim)``.

    Used in: notebooks/02_elmo.ipynb, section 3, "The character CNN".
    """

    def __init__(self, dim: int, layers: int = 1):
        super().__init__()
        checks.positive_int("dim", dim)
        checks.positive_int("layers", layers, minimum=0)
        self.transform = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.gate = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        for transform, gate in zip(self.transform, self.gate, strict=True):
            nn.init.zeros_(transform.bias)
            nn.init.ones_(gate.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for transform, gate in zip(self.transform, self.gate, strict=True):
            g = torch.sigmoid(gate(x))
            x = g * x + (1 - g) * F.relu(transform(x))
        return x


class CharCNN(nn.Module):
    """ELMo's token encoder: characters -> one vector per token (Kim et al., 2016).

    Character embeddings ``(batch, tokens, max_chars, char_dim)``; for each ``(width,
    number)`` in ``filters`` a 1-D convolution of that width over the character positions,
    max-pooled over time (over the character positions, so a filter says "this
    n-gram occurs somewhere in the word") and passed through ReLU; the pooled features of
    all widths are concatenated (``sum(number)`` features), go through `Highway`, and a
    linear projection to ``output_dim``.

    Input: ``(batch, tokens, max_chars)`` character ids; output
    ``(batch, tokens, output_dim)``. ``max_chars`` must be at least the widest filter.

    Used in: notebooks/02_elmo.ipynb, section 3, "The character CNN".
    """

    def __init__(
        self,
        num_chars: int = NUM_CHARS,
        char_dim: int = 16,
        filters: Sequence[Sequence[int]] = ((1, 32), (2, 32), (3, 64), (4, 128)),
        highway_layers: int = 1,
        output_dim: int = 128,
    ):
        super().__init__()
        checks.positive_int("num_chars", num_chars)
        checks.positive_int("char_dim", char_dim)
        checks.positive_int("output_dim", output_dim)
        filters = _check_filters(filters)
        self.filters = filters
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(char_dim, number, kernel_size=width) for width, number in filters
        )
        features = sum(number for _, number in filters)
        self.highway = Highway(features, highway_layers)
        self.projection = nn.Linear(features, output_dim)

    @property
    def max_width(self) -> int:
        return max(width for width, _ in self.filters)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        _check_char_ids(char_ids, self.embedding.num_embeddings, self.max_width)
        batch, tokens, max_chars = char_ids.shape
        chars = self.embedding(char_ids.reshape(batch * tokens, max_chars))
        chars = chars.transpose(1, 2)  # (batch * tokens, char_dim, max_chars) for Conv1d
        pooled = [conv(chars).max(dim=2).values for conv in self.convolutions]
        features = F.relu(torch.cat(pooled, dim=1))  # (batch * tokens, sum(number))
        out = self.projection(self.highway(features))
        return out.reshape(batch, tokens, -1)


# --------------------------------------------------------------------------------------
# The bidirectional language model
# --------------------------------------------------------------------------------------


def _reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` positions of each row of ``x`` ``(batch, time, ...)``;
    padding stays at the end. Applying it twice gives ``x`` back."""
    time = x.shape[1]
    positions = torch.arange(time, device=x.device).expand(x.shape[0], time)
    reversed_ = lengths[:, None] - 1 - positions
    index = torch.where(positions < lengths[:, None], reversed_, positions)
    index = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class BiLM(Checkpointed):
    """ELMo's bidirectional language model.

    * the token encoder `CharCNN` (shared by both directions) gives ``x`` of width
      ``token_dim``: layer 0;
    * the forward LM: two LSTMs with projection (``lstm_dim`` cells, output projected
      to ``token_dim``, PyTorch's ``nn.LSTM(proj_size=...)``), the second with a residual
      connection: ``h2 = lstm2(h1) + h1``. At position ``t`` it has seen tokens ``<= t``;
    * the backward LM: the same on the reversed sentence; at ``t`` it has seen ``>= t``;
    * one softmax layer (``token_dim -> num_words + 2``) shared by both directions;
    * ``dropout``: in training mode, `logits` and `losses` (language modelling) apply it
      to the input of every LSTM layer and to the top layer before the softmax;
      `forward` (the representations ELMo uses) never drops anything.

    The softmax covers the vocabulary (``num_words`` = ``len(vocab)``, id 0 = ``<unk>``)
    plus two ids: ``num_words`` for <S> and ``num_words + 1`` for </S>. The forward LM
    predicts, from <S> w1 ... wn, the words w1 ... wn and then </S>; the backward LM
    predicts, from </S> wn ... w1, the words wn ... w1 and then <S>.

    ``forward(char_ids, mask=None)`` returns the layers ``(3, batch, tokens + 2,
    2 * token_dim)``: layer 0 is ``x`` twice (``[x, x]``, as in the original, so all
    layers have the same width), layers 1 and 2 are ``[forward, backward]``. Padding
    positions are zero.

    The mask is optional: padding tokens are rows of zero character ids, so the mask is
    ``(char_ids != 0).any(-1)`` (as allennlp derives it). A mask given explicitly must
    agree with it, and real tokens must come before padding.

    Used in: notebooks/02_elmo.ipynb, section 3 (the architecture and its shapes),
    section 4 (training) and section 5 (perplexity); section 6 splits its layers into
    their two directions.
    """

    def __init__(
        self,
        num_words: int,
        *,
        token_dim: int = 64,
        lstm_dim: int = 128,
        max_chars: int = 50,
        char_dim: int = 16,
        filters: Sequence[Sequence[int]] = ((1, 32), (2, 32), (3, 64), (4, 128)),
        highway_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        checks.positive_int("num_words", num_words)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TypeError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        checks.positive_int("token_dim", token_dim)
        checks.positive_int("lstm_dim", lstm_dim)
        if lstm_dim <= token_dim:
            raise ValueError(
                f"lstm_dim: expected more cells than token_dim={token_dim} (the LSTM output "
                f"is projected down to token_dim), got {lstm_dim}"
            )
        filters = _check_filters(filters)
        max_width = max(width for width, _ in filters)
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < max_width:
            raise ValueError(
                f"max_chars: expected an int >= {max_width} (the widest filter), got {max_chars!r}"
            )
        self.config: dict[str, Any] = {
            "num_words": num_words,
            "token_dim": token_dim,
            "lstm_dim": lstm_dim,
            "max_chars": max_chars,
            "char_dim": char_dim,
            "filters": [list(f) for f in filters],
            "highway_layers": highway_layers,
            "dropout": float(dropout),
        }
        self.num_words = num_words
        self.bos_id, self.eos_id = num_words, num_words + 1
        self.token_encoder = CharCNN(NUM_CHARS, char_dim, filters, highway_layers, token_dim)

        def lstm() -> nn.LSTM:
            return nn.LSTM(token_dim, lstm_dim, proj_size=token_dim, batch_first=True)

        self.forward_layers = nn.ModuleList([lstm(), lstm()])
        self.backward_layers = nn.ModuleList([lstm(), lstm()])
        self.softmax = nn.Linear(token_dim, num_words + 2)
        self.dropout = nn.Dropout(dropout)

    @property
    def max_chars(self) -> int:
        return self.config["max_chars"]

    @property
    def output_dim(self) -> int:
        """The width of every layer of `forward`: ``2 * token_dim``."""
        return 2 * self.config["token_dim"]

    def _mask(self, char_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        _check_char_ids(char_ids, NUM_CHARS, self.token_encoder.max_width)
        derived = (char_ids != 0).any(dim=-1)
        if mask is None:
            mask = derived
        else:
            if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(derived.shape):
                got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise ValueError(
                    f"mask: expected shape {tuple(derived.shape)} (batch, tokens + 2), got {got}"
                )
            mask = mask.bool()
            wrong = (mask != derived).nonzero()
            if len(wrong):
                b, t = wrong[0].tolist()
                raise ValueError(
                    f"mask: mask[{b}, {t}] is {bool(mask[b, t])} but char_ids[{b}, {t}] is "
                    f"{'not ' * bool(derived[b, t])}all zeros (padding tokens are rows of zeros)"
                )
        lengths = mask.sum(dim=1)
        prefix = torch.arange(mask.shape[1], device=mask.device) < lengths[:, None]
        if bool((mask != prefix).any()):
            raise ValueError("mask: real tokens must come first in every row, then padding")
        if bool((lengths < 2).any()):
            raise ValueError("char_ids: every sentence needs at least <S> and </S>")
        return mask

    def _run(
        self, char_ids: torch.Tensor, mask: torch.Tensor | None, drop: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """``x``, the forward and backward layers (each ``(batch, time, token_dim)``, in
        sentence order) and the mask; with ``drop``, dropout on every LSTM's input."""
        mask = self._mask(char_ids, mask)
        return self._run_from_tokens(self.token_encoder(char_ids), mask, drop)

    def _run_from_tokens(
        self, x: torch.Tensor, mask: torch.Tensor, drop: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """`_run` from the token vectors ``x`` ``(batch, time, token_dim)`` on, for a
        checked ``mask``: the LSTMs of both directions."""
        keep = mask[..., None].to(x.dtype)
        lengths = mask.sum(dim=1)
        x = x * keep
        outputs = []
        for layers, sequence in (
            (self.forward_layers, x),
            (self.backward_layers, _reverse_padded(x, lengths)),
        ):
            hidden, h = [], sequence
            for i, lstm in enumerate(layers):
                with warnings.catch_warnings():  # PyTorch's notice on CPUs; same numbers
                    warnings.filterwarnings("ignore", message="LSTM with projections is not")
                    out = lstm(self.dropout(h) if drop else h)[0]
                h = (out + h if i > 0 else out) * keep  # residual connection 1 -> 2
                hidden.append(h)
            outputs.append(hidden)
        forward_hidden, backward_hidden = outputs
        backward_hidden = [_reverse_padded(h, lengths) for h in backward_hidden]
        return x, forward_hidden, backward_hidden, mask

    def forward(self, char_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, fwd, bwd, _ = self._run(char_ids, mask, drop=False)
        layers = [torch.cat([x, x], -1)]
        layers += [torch.cat([f, b], -1) for f, b in zip(fwd, bwd, strict=True)]
        return torch.stack(layers)

    def logits(
        self, char_ids: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the next word (forward LM) and of the previous word (backward LM):
        two tensors ``(batch, tokens + 2, num_words + 2)``. Row ``t`` of the first
        predicts token ``t + 1``; row ``t`` of the second predicts token ``t - 1``."""
        _, fwd, bwd, _ = self._run(char_ids, mask, drop=True)
        return self.softmax(self.dropout(fwd[-1])), self.softmax(self.dropout(bwd[-1]))

    def losses(
        self, char_ids: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward and backward LMs' cross-entropies, each the mean over the tokens
        it predicts (the words and </S> forward; the words and <S> backward)."""
        _, fwd, bwd, mask = self._run(char_ids, mask, drop=True)
        batch, time = mask.shape
        if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != (batch, time - 2):
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets)
            raise ValueError(
                f"targets: expected word ids of shape {(batch, time - 2)} (batch, tokens), "
                f"got {got}"
            )
        if targets.dtype != torch.long:
            raise TypeError(f"targets: expected a LongTensor of word ids, got {targets.dtype}")
        lengths = mask.sum(dim=1)
        words_mask = mask[:, 2:]
        if bool(((targets < 0) | (targets >= self.num_words))[words_mask].any()):
            raise ValueError(f"targets: word ids must be in [0, {self.num_words}) (num_words)")
        device = char_ids.device
        full = torch.full((batch, time), -100, dtype=torch.long, device=device)
        full[:, 0] = self.bos_id
        full[:, 1:-1] = torch.where(words_mask, targets.to(device), -100)
        full[torch.arange(batch, device=device), lengths - 1] = self.eos_id
        # forward: row t predicts token t + 1 (-100 after </S>: ignored)
        forward_targets = full[:, 1:]
        # backward: row t predicts token t - 1, but only from real rows t
        backward_targets = torch.where(mask[:, 1:], full[:, :-1], -100)
        forward_loss = F.cross_entropy(
            self.softmax(self.dropout(fwd[-1][:, :-1])).transpose(1, 2),
            forward_targets,
            ignore_index=-100,
        )
        backward_loss = F.cross_entropy(
            self.softmax(self.dropout(bwd[-1][:, 1:])).transpose(1, 2),
            backward_targets,
            ignore_index=-100,
        )
        return forward_loss, backward_loss

    def loss(
        self, char_ids: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> torch.Tensor:
        """The mean of the two directions' cross-entropies (`losses`).

        The paper maximises the sum of both directions' log-likelihoods; the mean of the
        two mean cross-entropies has the same minimum and stays on the scale of one LM's
        loss, so ``exp(loss)`` reads as a perplexity.
        """
        forward_loss, backward_loss = self.losses(char_ids, mask, targets)
        return (forward_loss + backward_loss) / 2


# --------------------------------------------------------------------------------------
# ELMo: a task-specific mix of the layers
# --------------------------------------------------------------------------------------


class ScalarMix(nn.Module):
    """``gamma * sum_j s_j h_j`` with ``s = softmax(w)``: ELMo's learned mix of layers.

    ``w`` starts at zeros (equal weights ``1 / num_layers``) and ``gamma`` at 1, so the
    mix starts as the mean of the layers. With ``layer_norm=True`` each layer is first
    normalised as in allennlp: minus its mean and divided by its standard deviation,
    both taken over all the real (unmasked) positions and features of the batch.

    ``forward(layers, mask=None)``: ``layers`` ``(num_layers, batch, tokens, dim)`` (or a
    list of ``(batch, tokens, dim)``), ``mask`` ``(batch, tokens)``, needed with
    ``layer_norm``; returns ``(batch, tokens, dim)``.

    Used in: notebooks/02_elmo.ipynb, section 3, "The scalar mix", and section 5, where
    the probes learn one per task.
    """

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        checks.positive_int("num_layers", num_layers)
        self.num_layers = num_layers
        self.layer_norm = layer_norm
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(
        self, layers: torch.Tensor | Sequence[torch.Tensor], mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not isinstance(layers, torch.Tensor):
            layers = torch.stack(list(layers))
        if layers.dim() < 2 or layers.shape[0] != self.num_layers:
            raise ValueError(
                f"layers: expected {self.num_layers} layers (num_layers, batch, tokens, dim), "
                f"got shape {tuple(layers.shape)}"
            )
        if self.layer_norm:
            if mask is None or tuple(mask.shape) != tuple(layers.shape[1:-1]):
                got = None if mask is None else tuple(mask.shape)
                raise ValueError(
                    f"mask: layer_norm needs a mask of shape {tuple(layers.shape[1:-1])}, got {got}"
                )
            keep = mask[None, ..., None].to(layers.dtype)
            count = keep.sum() * layers.shape[-1]
            dims = tuple(range(1, layers.dim()))
            mean = (layers * keep).sum(dims, keepdim=True) / count
            variance = (((layers - mean) * keep) ** 2).sum(dims, keepdim=True) / count
            layers = (layers - mean) / torch.sqrt(variance + 1e-12)
        s = torch.softmax(self.weights, dim=0)
        return self.gamma * torch.einsum("l,l...->...", s, layers)


class ELMoOutput(NamedTuple):
    """What `ELMo` returns.

    ``layers``: ``(3, batch, tokens, 2 * token_dim)``; ``mixes``: ``num_mixes`` tensors
    ``(batch, tokens, 2 * token_dim)``; ``mask``: ``(batch, tokens)``, True on words.
    Positions where ``mask`` is False are zero.
    """

    layers: torch.Tensor
    mixes: list[torch.Tensor]
    mask: torch.Tensor

    @property
    def mixed(self) -> torch.Tensor:
        """The first (often the only) mix."""
        return self.mixes[0]


class ELMo(nn.Module):
    """Sentences in, ELMo representations out: the biLM's layers and learned mixes.

    ``ELMo(bilm, num_mixes=1, layer_norm=False, dropout=0.0, freeze=True)``: as in the
    paper, the biLM is frozen by default (its parameters stop requiring gradients) and
    only the `ScalarMix` weights train with the task. ``num_mixes > 1`` gives separate
    mixes, e.g. one for a task model's input and one for its output.

    ``forward(sentences)`` takes a list of token lists and returns an `ELMoOutput`
    without the <S> and </S> positions (allennlp's ``remove_sentence_boundaries``). The
    mixes are computed after removing them, so ``layer_norm`` statistics cover words only.

    Used in: notebooks/02_elmo.ipynb, section 3, "Feature-based, not fine-tuned".
    """

    def __init__(
        self,
        bilm: BiLM,
        num_mixes: int = 1,
        layer_norm: bool = False,
        dropout: float = 0.0,
        freeze: bool = True,
    ):
        super().__init__()
        if not isinstance(bilm, BiLM):
            raise TypeError(f"bilm: expected a lessons.elmo.BiLM, got {type(bilm).__name__}")
        checks.positive_int("num_mixes", num_mixes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.bilm = bilm
        if freeze:
            bilm.requires_grad_(False)
        self.mixes = nn.ModuleList(ScalarMix(3, layer_norm) for _ in range(num_mixes))
        self.dropout = nn.Dropout(dropout)

    def forward(self, sentences: Sequence[Sequence[str]]) -> ELMoOutput:
        char_ids, mask = character_ids(sentences, self.bilm.max_chars)
        char_ids = char_ids.to(self.bilm.softmax.weight.device)
        mask = mask.to(char_ids.device)
        layers = self.bilm(char_ids, mask)
        words = mask.shape[1] - 2
        word_mask = mask[:, 2:].clone()  # word i is real iff position i + 2 (i+1 or </S>) is
        layers = layers[:, :, 1 : 1 + words] * word_mask[None, ..., None]
        keep = word_mask[..., None].to(layers.dtype)  # a layer-normed mix is not 0 at padding
        mixes = [self.dropout(mix(layers, word_mask)) * keep for mix in self.mixes]
        return ELMoOutput(layers, mixes, word_mask)


# --------------------------------------------------------------------------------------
# Training a biLM and using a trained one
# --------------------------------------------------------------------------------------


def lm_loss(model: BiLM, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``loss_fn`` for `lessons.core.train.train`: ``model.loss(*batch)`` for a `make_batch`.

    Used in: notebooks/02_elmo.ipynb, section 4.
    """
    return model.loss(*batch)


def load_pretrained(name: str = "elmo-small") -> tuple[BiLM, Vocabulary]:
    """The biLM that ``scripts/train_elmo.py`` trained on the Wikipedia sample, and its
    vocabulary (the language model's output words), as shipped inside the package.

    The model is returned in eval mode. ``name`` picks ``pretrained/<name>.safetensors``
    and ``pretrained/<name>.vocab.txt``. How the model was trained is in the file's notes:
    ``lessons.core.checkpoint.checkpoint_notes(PRETRAINED_DIR / f"{name}.safetensors")``.

    Used in: notebooks/02_elmo.ipynb, section 3, "Shapes through the biLM", and section 4.
    """
    path = PRETRAINED_DIR / f"{name}.safetensors"
    if not path.is_file():
        shipped = sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))
        raise ValueError(f"name: expected one of {shipped}, got {name!r}")
    model = BiLM.load(path)
    vocab = Vocabulary.load(PRETRAINED_DIR / f"{name}.vocab.txt")
    if len(vocab) != model.num_words:
        raise ValueError(
            f"{name}: the vocabulary file has {len(vocab)} words but the model predicts "
            f"{model.num_words}"
        )
    return model.eval(), vocab


@torch.no_grad()
def embed_sentences(
    bilm: BiLM, sentences: Sequence[Sequence[str]], batch_size: int = 64
) -> list[torch.Tensor]:
    """ELMo's three layers for every word of every sentence (allennlp's
    ``ElmoEmbedder.embed_sentences``): one tensor ``(3, len(sentence), 2 * token_dim)``
    per sentence, without <S> and </S>, on the CPU.

    Layer 0 is the character encoder's vector (the same for a word wherever it occurs);
    layers 1 and 2 are the LSTM layers, forward and backward concatenated, which depend on
    the whole sentence. Sentences are batched by length; the model is left in eval mode.

    Used in: notebooks/02_elmo.ipynb, section 5.
    """
    sentences = checks.sentences(sentences, nonempty=True)
    bilm.eval()
    device = bilm.softmax.weight.device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out: list[torch.Tensor] = [torch.empty(0)] * len(sentences)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        char_ids, mask = character_ids([sentences[i] for i in chosen], bilm.max_chars)
        layers = bilm(char_ids.to(device), mask.to(device)).cpu()
        for row, i in enumerate(chosen):
            out[i] = layers[:, row, 1 : 1 + len(sentences[i])]
    return out


@torch.no_grad()
def perplexities(
    model: BiLM, vocab: Vocabulary, sentences: Sequence[Sequence[str]], batch_size: int = 64
) -> tuple[float, float]:
    """The forward and the backward LM's perplexity on ``sentences``.

    Each is ``exp`` of the mean cross-entropy over the tokens its direction predicts (the
    forward LM: every word and </S>; the backward LM: every word and <S>), words outside
    ``vocab`` counting as ``<unk>``. Sentences are batched by length (less padding). The
    model is left in eval mode.

    Used in: notebooks/02_elmo.ipynb, section 5, "Held-out perplexity".
    """
    sentences = checks.sentences(sentences, nonempty=True)
    model.eval()
    device = model.softmax.weight.device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    forward_nll = backward_nll = 0.0
    count = 0
    for start in range(0, len(order), batch_size):
        group = [sentences[i] for i in order[start : start + batch_size]]
        char_ids, mask, targets = (t.to(device) for t in make_batch(group, vocab, model.max_chars))
        forward_loss, backward_loss = model.losses(char_ids, mask, targets)
        predicted = sum(len(s) + 1 for s in group)  # each loss is a mean over these tokens
        forward_nll += float(forward_loss) * predicted
        backward_nll += float(backward_loss) * predicted
        count += predicted
    return math.exp(forward_nll / count), math.exp(backward_nll / count)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_filters(filters: object) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple((int(w), int(n)) for w, n in filters)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"filters: expected (width, number) pairs such as ((1, 32), (2, 32)), got {filters!r}"
        ) from error
    if not pairs or any(w < 1 or n < 1 for w, n in pairs):
        raise ValueError(
            f"filters: expected at least one (width >= 1, number >= 1), got {filters!r}"
        )
    return pairs


def _check_char_ids(char_ids: object, num_chars: int, min_chars: int) -> None:
    if not isinstance(char_ids, torch.Tensor):
        raise TypeError(f"char_ids: expected a LongTensor, got {type(char_ids).__name__}")
    if char_ids.dim() != 3 or char_ids.dtype != torch.long:
        raise ValueError(
            f"char_ids: expected a LongTensor (batch, tokens, max_chars), got {char_ids.dtype} "
            f"of shape {tuple(char_ids.shape)}"
        )
    if char_ids.shape[2] < min_chars:
        raise ValueError(
            f"char_ids: expected at least {min_chars} characters per token (the widest "
            f"filter), got {char_ids.shape[2]}"
        )
    if char_ids.numel() and (int(char_ids.min()) < 0 or int(char_ids.max()) >= num_chars):
        raise ValueError(
            f"char_ids: expected ids in [0, {num_chars}), got values from "
            f"{int(char_ids.min())} to {int(char_ids.max())}"
        )
