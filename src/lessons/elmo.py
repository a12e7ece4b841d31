"""ELMo from scratch: a character-aware bidirectional language model (Peters et al., 2018).

Used in: notebooks/02_elmo.ipynb (to be written; the sections will be named here).

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

import inspect
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from lessons import quiz
from lessons.checkpoint import check_checkpoint, read_checkpoint
from lessons.exercises import Case, Exercise, Hint, register
from lessons.vocab import Vocabulary

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

CONFIG_KEY = "lessons.elmo.BiLM"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


# --------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------


def _check_sentences(sentences: object) -> list[Sequence[str]]:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(
            f"sentences: expected a list of sentences (lists of string tokens), got "
            f"{type(sentences).__name__} {str(sentences)[:40]!r}"
        )
    if len(sentences) == 0:
        raise ValueError("sentences: expected at least one sentence, got an empty list")
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(
                f"sentences[{i}]: expected a list of string tokens, got "
                f"{type(sentence).__name__} {str(sentence)[:40]!r} (split it into words first)"
            )
        if len(sentence) == 0:
            raise ValueError(f"sentences[{i}]: expected at least one token, got an empty sentence")
        for j, token in enumerate(sentence):
            if not isinstance(token, str):
                raise TypeError(
                    f"sentences[{i}][{j}]: expected a string token, got "
                    f"{type(token).__name__} {token!r}"
                )
            if not token:
                raise ValueError(f"sentences[{i}][{j}]: expected a non-empty token, got ''")
    return list(sentences)


def _word_row(word_bytes: Sequence[int], max_chars: int) -> list[int]:
    """One token's row: BOW, bytes (at most max_chars - 2), EOW, padding; every id + 1."""
    kept = list(word_bytes)[: max_chars - 2]
    row = [BEGIN_OF_WORD - 1, *kept, END_OF_WORD - 1]
    row += [PADDING_CHAR - 1] * (max_chars - len(row))
    return [c + 1 for c in row]


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

    Used in: notebooks/02_elmo.ipynb (the notebook is not written yet).
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 3:
        raise ValueError(
            f"max_chars: expected an int >= 3 (begin-of-word, a byte, end-of-word), "
            f"got {max_chars!r}"
        )
    sentences = _check_sentences(sentences)
    longest = max(len(s) for s in sentences)
    ids = torch.zeros(len(sentences), longest + 2, max_chars, dtype=torch.long)
    mask = torch.zeros(len(sentences), longest + 2, dtype=torch.bool)
    bos = _word_row([BEGIN_OF_SENTENCE - 1], max_chars)
    eos = _word_row([END_OF_SENTENCE - 1], max_chars)
    for i, sentence in enumerate(sentences):
        rows = [bos, *(_word_row(w.encode("utf-8"), max_chars) for w in sentence), eos]
        ids[i, : len(rows)] = torch.tensor(rows)
        mask[i, : len(rows)] = True
    return ids, mask


def word_ids(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> torch.Tensor:
    """The vocabulary ids of the words, ``(batch, tokens)``, padded with 0.

    These are the language model's targets. Padding positions hold 0 (the id of
    ``<unk>``) but are never predicted: the mask of `character_ids` leaves them out.
    """
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab: expected a lessons.vocab.Vocabulary, got {type(vocab).__name__}")
    sentences = _check_sentences(sentences)
    out = torch.zeros(len(sentences), max(len(s) for s in sentences), dtype=torch.long)
    for i, sentence in enumerate(sentences):
        out[i, : len(sentence)] = torch.tensor(vocab.encode(sentence))
    return out


def make_batch(
    sentences: Sequence[Sequence[str]], vocab: Vocabulary, max_chars: int = 50
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(char_ids, mask, targets)`` for `BiLM.loss`: `character_ids` and `word_ids`."""
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
    """

    def __init__(self, dim: int, layers: int = 1):
        super().__init__()
        _check_positive("dim", dim)
        _check_positive("layers", layers, allow_zero=True)
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
        _check_positive("num_chars", num_chars)
        _check_positive("char_dim", char_dim)
        _check_positive("output_dim", output_dim)
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


class BiLM(nn.Module):
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
        _check_positive("num_words", num_words)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TypeError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        _check_positive("token_dim", token_dim)
        _check_positive("lstm_dim", lstm_dim)
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

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        """Write the weights to a safetensors file, the configuration in its metadata."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata={CONFIG_KEY: json.dumps(self.config)})

    @classmethod
    def load(cls, path: str | Path) -> BiLM:
        """A new `BiLM` built from the configuration stored in ``path`` with its weights."""
        config, _ = _read_checkpoint(path)
        expected = {"num_words", *inspect.signature(cls).parameters} - {"self"}
        if set(config) != expected:
            raise ValueError(
                f"{path}: the stored configuration has the fields {sorted(config)}, "
                f"expected {sorted(expected)}"
            )
        model = cls(config.pop("num_words"), **config)
        model.load_weights(path)
        return model

    def load_weights(self, path: str | Path) -> None:
        """Load the weights of ``path`` into this model.

        Every key and shape is checked first: a missing, unexpected or differently
        shaped tensor raises a ValueError naming it (and both shapes); so does a
        checkpoint of another configuration.
        """
        config, tensors = _read_checkpoint(path)
        check_checkpoint(path, config, self.config, tensors, self.state_dict())
        self.load_state_dict(tensors)


def _read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    metadata, tensors = read_checkpoint(path, CONFIG_KEY, "lessons.elmo.BiLM")
    return json.loads(metadata[CONFIG_KEY]), tensors


def load_pretrained(name: str = "elmo-small") -> tuple[BiLM, Vocabulary]:
    """The biLM that ``scripts/train_elmo.py`` trained on the Wikipedia sample, and its
    vocabulary (the language model's output words), as shipped inside the package.

    The model is returned in eval mode. ``name`` picks ``pretrained/<name>.safetensors``
    and ``pretrained/<name>.vocab.txt``.
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
    """
    sentences = _check_sentences(sentences)
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
    """
    sentences = _check_sentences(sentences)
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


def lm_loss(model: BiLM, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``loss_fn`` for `lessons.train.train`: ``model.loss(*batch)`` for a `make_batch`."""
    return model.loss(*batch)


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
    """

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        _check_positive("num_layers", num_layers)
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
        _check_positive("num_mixes", num_mixes)
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
        mixes = [self.dropout(mix(layers, word_mask)) for mix in self.mixes]
        return ELMoOutput(layers, mixes, word_mask)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _check_positive(name: str, value: object, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")


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


# --------------------------------------------------------------------------------------
# Exercise: elmo.word_character_ids
# --------------------------------------------------------------------------------------


def word_character_ids(word: str, max_chars: int) -> list[int]:
    """The ``max_chars`` character ids of one word, as `character_ids` writes them."""
    return _word_row(word.encode("utf-8"), max_chars)


def _word_ids_cases() -> list[Case]:
    return [
        Case("'cat' in 8 characters", ("cat", 8)),
        Case("one letter, 5 characters", ("a", 5)),
        Case("a word that exactly fills the row", ("dog", 5)),
        Case("a long word, truncated", ("internationalisation", 10)),
        Case("a non-ASCII word (two bytes per letter)", ("éé", 8)),
    ]


def _word_ids_no_shift(word: str, max_chars: int) -> list[int]:
    row = [258, *list(word.encode("utf-8"))[: max_chars - 2], 259]
    return row + [260] * (max_chars - len(row))


def _word_ids_code_points(word: str, max_chars: int) -> list[int]:
    row = [258, *(ord(c) for c in word)][: max_chars - 1] + [259]
    return [c + 1 for c in row + [260] * (max_chars - len(row))]


def _word_ids_no_truncation(word: str, max_chars: int) -> list[int]:
    row = [258, *word.encode("utf-8"), 259]
    return [c + 1 for c in row + [260] * (max_chars - len(row))]


register(
    Exercise(
        id="elmo.word_character_ids",
        chapter="elmo",
        prompt=(
            "Write `word_character_ids(word, max_chars)`: the list of `max_chars` ints ELMo "
            "feeds its char-CNN for one word. Start with begin-of-word (258), then the UTF-8 "
            "bytes of the word (at most `max_chars - 2` of them: longer words are cut), then "
            "end-of-word (259), then padding characters (260) up to `max_chars`; finally add "
            "1 to every id, so that 0 is free for padding tokens."
        ),
        signature="def word_character_ids(word: str, max_chars: int) -> list[int]",
        solution=word_character_ids,
        cases=_word_ids_cases,
        hints=(
            Hint(
                "Every id is shifted by one at the end: 'a' (byte 97) becomes 98 and "
                "begin-of-word becomes 259.",
                fits=lambda a: a.problem == "values" and isinstance(a.got, list) and 258 in a.got,
            ),
            Hint(
                "Use `word.encode('utf-8')`, not the characters: 'é' is two bytes, 195 and 169.",
                fits=lambda a: "é" in a.case.args[0],
            ),
            Hint(
                "Keep only the first `max_chars - 2` bytes, so that begin- and end-of-word "
                "always fit: the row is exactly `max_chars` long."
            ),
        ),
        wrong_answers=(_word_ids_no_shift, _word_ids_code_points, _word_ids_no_truncation),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.highway
# --------------------------------------------------------------------------------------


def highway(
    x: torch.Tensor,
    w_transform: torch.Tensor,
    b_transform: torch.Tensor,
    w_gate: torch.Tensor,
    b_gate: torch.Tensor,
) -> torch.Tensor:
    """One highway layer as `Highway` computes it: ``g * x + (1 - g) * relu(W_h x + b_h)``."""
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return g * x + (1 - g) * torch.relu(x @ w_transform.T + b_transform)


def _highway_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)

    def case(batch: int, dim: int, gate_bias: float) -> tuple[torch.Tensor, ...]:
        return (
            torch.randn(batch, dim, generator=g),
            torch.randn(dim, dim, generator=g) / dim**0.5,
            torch.randn(dim, generator=g),
            torch.randn(dim, dim, generator=g) / dim**0.5,
            torch.full((dim,), gate_bias),
        )

    return [
        Case("batch 4, dim 3, gate bias 1", case(4, 3, 1.0)),
        Case("one vector of dim 6", case(1, 6, 1.0)),
        Case("gate bias -2 (mostly transform)", case(3, 4, -2.0)),
        Case("gate bias 0", case(5, 2, 0.0)),
    ]


def _highway_swapped(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return (1 - g) * x + g * torch.relu(x @ w_transform.T + b_transform)


def _highway_no_relu(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate.T + b_gate)
    return g * x + (1 - g) * (x @ w_transform.T + b_transform)


def _highway_untransposed(x, w_transform, b_transform, w_gate, b_gate):
    g = torch.sigmoid(x @ w_gate + b_gate)
    return g * x + (1 - g) * torch.relu(x @ w_transform + b_transform)


register(
    Exercise(
        id="elmo.highway",
        chapter="elmo",
        prompt=(
            "Write one highway layer: `g = sigmoid(x W_g^T + b_g)` is the carry gate and the "
            "output is `g * x + (1 - g) * relu(x W_h^T + b_h)`. `x` is `(batch, dim)`, the "
            "weights `(dim, dim)` as in `nn.Linear`, the biases `(dim,)`."
        ),
        signature=("def highway(x, w_transform, b_transform, w_gate, b_gate) -> torch.Tensor"),
        solution=highway,
        cases=_highway_cases,
        hints=(
            Hint(
                "`g` multiplies the input `x` itself (what is carried), `1 - g` the "
                "transformed input: with a gate bias of 1, most of `x` passes unchanged."
            ),
            Hint("The transformed branch goes through ReLU before it is mixed in."),
            Hint("`nn.Linear` computes `x @ W.T + b`: transpose the weight."),
        ),
        wrong_answers=(_highway_swapped, _highway_no_relu, _highway_untransposed),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.conv_max_pool
# --------------------------------------------------------------------------------------


def conv_max_pool(chars: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """One filter bank of `CharCNN`: convolve, max-pool over character positions, ReLU.

    ``chars`` ``(words, char_dim, max_chars)``, ``weight`` ``(filters, char_dim, width)``,
    ``bias`` ``(filters,)``; returns ``(words, filters)``.
    """
    return torch.relu(F.conv1d(chars, weight, bias).max(dim=2).values)


def _pool_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def case(words: int, char_dim: int, max_chars: int, filters: int, width: int):
        return (
            torch.randn(words, char_dim, max_chars, generator=g),
            torch.randn(filters, char_dim, width, generator=g),
            torch.randn(filters, generator=g),
        )

    return [
        Case("3 words, 4 filters of width 2", case(3, 2, 6, 4, 2)),
        Case("filters of width 1", case(2, 3, 5, 3, 1)),
        Case("width 3, one word", case(1, 4, 7, 5, 3)),
        Case("filter as wide as the word", case(4, 2, 4, 2, 4)),
    ]


def _pool_mean(chars, weight, bias):
    return torch.relu(F.conv1d(chars, weight, bias).mean(dim=2))


def _pool_over_filters(chars, weight, bias):
    out = F.conv1d(chars, weight, bias)
    return torch.relu(out.max(dim=1).values[:, : weight.shape[0]])


def _pool_no_bias(chars, weight, bias):
    return torch.relu(F.conv1d(chars, weight).max(dim=2).values)


register(
    Exercise(
        id="elmo.conv_max_pool",
        chapter="elmo",
        prompt=(
            "Write one filter bank of the char-CNN: a 1-D convolution of the characters "
            "(`torch.nn.functional.conv1d(chars, weight, bias)`), max-pooled over time, that "
            "is over the character positions, then ReLU. `chars` is "
            "`(words, char_dim, max_chars)`; return `(words, filters)`."
        ),
        signature="def conv_max_pool(chars, weight, bias) -> torch.Tensor",
        solution=conv_max_pool,
        cases=_pool_cases,
        hints=(
            Hint(
                "The convolution gives `(words, filters, positions)`: pool over the last "
                "dimension, the positions, so each filter keeps its strongest match.",
                fits=lambda a: a.problem == "shape",
            ),
            Hint("Max-pooling, not the mean: a filter fires if its n-gram is *anywhere*."),
            Hint("Pass the bias to the convolution."),
        ),
        wrong_answers=(_pool_mean, _pool_over_filters, _pool_no_bias),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.scalar_mix
# --------------------------------------------------------------------------------------


def scalar_mix(layers: torch.Tensor, weights: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``gamma * sum_j softmax(weights)_j layers[j]``: layers ``(L, ...)`` -> ``(...)``."""
    s = torch.softmax(weights, dim=0)
    return gamma * (s.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


def _mix_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case(
            "3 layers, equal weights, gamma 1",
            (torch.randn(3, 2, 4, 5, generator=g), torch.zeros(3), torch.tensor(1.0)),
        ),
        Case(
            "3 layers, different weights",
            (
                torch.randn(3, 2, 3, 4, generator=g),
                torch.tensor([0.5, -1.0, 2.0]),
                torch.tensor(1.0),
            ),
        ),
        Case(
            "gamma 0.5",
            (
                torch.randn(3, 1, 2, 3, generator=g),
                torch.tensor([1.0, 0.0, -1.0]),
                torch.tensor(0.5),
            ),
        ),
        Case(
            "2 layers of shape (4, 6)",
            (torch.randn(2, 4, 6, generator=g), torch.tensor([3.0, 1.0]), torch.tensor(2.0)),
        ),
    ]


def _mix_raw_weights(layers, weights, gamma):
    return gamma * (weights.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


def _mix_mean(layers, weights, gamma):
    return gamma * layers.mean(0)


def _mix_no_gamma(layers, weights, gamma):
    s = torch.softmax(weights, dim=0)
    return (s.reshape(-1, *([1] * (layers.dim() - 1))) * layers).sum(0)


register(
    Exercise(
        id="elmo.scalar_mix",
        chapter="elmo",
        prompt=(
            "Write ELMo's scalar mix: normalise the layer weights with a softmax, "
            "`s = softmax(weights)`, and return `gamma * sum_j s_j * layers[j]`. `layers` "
            "is `(L, ...)`, `weights` `(L,)`, `gamma` a scalar tensor."
        ),
        signature="def scalar_mix(layers, weights, gamma) -> torch.Tensor",
        solution=scalar_mix,
        cases=_mix_cases,
        hints=(
            Hint(
                "Equal weights must give the mean of the layers times gamma: the weights "
                "go through a softmax first, so they are positive and sum to 1."
            ),
            Hint("Don't forget the scale `gamma`."),
        ),
        wrong_answers=(_mix_raw_weights, _mix_mean, _mix_no_gamma),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: elmo.bidirectional_loss
# --------------------------------------------------------------------------------------


def bidirectional_loss(
    forward_logits: torch.Tensor, backward_logits: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """The biLM's loss for unpadded sentences ``tokens`` ``(batch, time)`` (<S> ... </S>):
    the mean of the forward LM's cross-entropy (row ``t`` predicts token ``t + 1``) and the
    backward LM's (row ``t`` predicts token ``t - 1``); logits ``(batch, time, vocab)``."""
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, 1:].transpose(1, 2), tokens[:, :-1])
    return (forward_loss + backward_loss) / 2


def _bidirectional_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)

    def case(batch: int, time: int, vocab: int):
        return (
            torch.randn(batch, time, vocab, generator=g),
            torch.randn(batch, time, vocab, generator=g),
            torch.randint(0, vocab, (batch, time), generator=g),
        )

    return [
        Case("batch 2, 5 tokens, vocabulary 7", case(2, 5, 7)),
        Case("one sentence of 3 tokens", case(1, 3, 4)),
        Case("batch 4, 6 tokens, vocabulary 10", case(4, 6, 10)),
        Case("two tokens only (<S> </S>)", case(3, 2, 5)),
    ]


def _bidirectional_same_shift(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    return (forward_loss + backward_loss) / 2


def _bidirectional_no_shift(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits.transpose(1, 2), tokens)
    backward_loss = F.cross_entropy(backward_logits.transpose(1, 2), tokens)
    return (forward_loss + backward_loss) / 2


def _bidirectional_sum(forward_logits, backward_logits, tokens):
    forward_loss = F.cross_entropy(forward_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    backward_loss = F.cross_entropy(backward_logits[:, 1:].transpose(1, 2), tokens[:, :-1])
    return forward_loss + backward_loss


register(
    Exercise(
        id="elmo.bidirectional_loss",
        chapter="elmo",
        prompt=(
            "Combine the two language models' losses. `tokens` `(batch, time)` are the ids "
            "of <S> w1 ... wn </S>; row `t` of `forward_logits` `(batch, time, vocab)` "
            "predicts token `t + 1`, row `t` of `backward_logits` predicts token `t - 1`. "
            "Return the mean of the two mean cross-entropies "
            "(`torch.nn.functional.cross_entropy`)."
        ),
        signature="def bidirectional_loss(forward_logits, backward_logits, tokens)",
        solution=bidirectional_loss,
        cases=_bidirectional_cases,
        hints=(
            Hint(
                "The forward LM drops its last row (nothing after </S>) and its targets are "
                "`tokens[:, 1:]`; the backward LM drops its *first* row and its targets are "
                "`tokens[:, :-1]`."
            ),
            Hint(
                "Average the two directions, `(forward + backward) / 2`, so the loss stays "
                "on the scale of one language model."
            ),
        ),
        wrong_answers=(_bidirectional_same_shift, _bidirectional_no_shift, _bidirectional_sum),
        check_grad=True,
    )
)


quiz.register(
    "elmo",
    [
        {
            "question": "With `max_chars=6`, what are the character ids of the word 'ab' "
            "('a' is byte 97)?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "259, 98, 99, 260, 261, 261",
                    "correct": True,
                    "feedback": "Right: begin-of-word 258, the bytes 97 and 98, end-of-word "
                    "259, padding 260, and every id plus one.",
                },
                {
                    "answer": "258, 97, 98, 259, 260, 260",
                    "correct": False,
                    "feedback": "That forgets the final + 1, which frees id 0 for padding "
                    "tokens (rows of zeros).",
                },
                {
                    "answer": "98, 99, 0, 0, 0, 0",
                    "correct": False,
                    "feedback": "ELMo marks where a word begins and ends (259 and 260) and "
                    "pads inside a word with its own padding character (261).",
                },
            ],
        },
        {
            "question": "A highway layer's gate bias starts at 1 and its weights are "
            "near zero. What fraction of its input does it carry through unchanged at "
            "first? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.731,
                    "correct": True,
                    "feedback": "Right: the carry gate is σ(1) ≈ 0.731.",
                },
                {
                    "type": "value",
                    "value": 0.269,
                    "correct": False,
                    "feedback": "That is 1 - σ(1), the share of the transformed branch.",
                },
                {
                    "type": "value",
                    "value": 0.5,
                    "correct": False,
                    "feedback": "σ(0) = 0.5 would be a gate bias of 0; with bias 1 it is σ(1).",
                },
                {"type": "default", "feedback": "The gate is σ(1 + W x) with W x ≈ 0."},
            ],
        },
        {
            "question": "Why can ELMo represent a word it never saw in training?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Its token encoder reads characters, not a word id",
                    "correct": True,
                    "feedback": "Right: the char-CNN builds a vector from the word's bytes, "
                    "so every word has one; only the softmax has a fixed vocabulary.",
                },
                {
                    "answer": "Unknown words are mapped to <unk>, which has its own vector",
                    "correct": False,
                    "feedback": "That is how the *targets* of the softmax handle them; the "
                    "input side never looks a word up in a vocabulary.",
                },
                {
                    "answer": "The backward LM fills it in from the following words",
                    "correct": False,
                    "feedback": "Both LMs see the word itself through the char-CNN; context "
                    "only refines that.",
                },
            ],
        },
        {
            "question": "The forward LM's state at position t depends on which tokens?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Tokens 0 … t, that is <S> up to the word itself",
                    "correct": True,
                    "feedback": "Right: it predicts token t + 1 from them, so it must not "
                    "see t + 1 or later. The backward LM sees t … n + 1.",
                },
                {
                    "answer": "Every token of the sentence",
                    "correct": False,
                    "feedback": "Then predicting the next word would be copying it. Only the "
                    "concatenation of both directions sees the whole sentence.",
                },
                {
                    "answer": "Tokens 0 … t - 1",
                    "correct": False,
                    "feedback": "The LSTM reads token t before its output at t, which then "
                    "predicts token t + 1.",
                },
            ],
        },
        {
            "question": "A `ScalarMix` over 3 layers has all weights 0 and γ = 2. What "
            "weight does each layer get in the output? (three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.667,
                    "correct": True,
                    "feedback": "Right: softmax(0, 0, 0) = 1/3 each, times γ = 2.",
                },
                {
                    "type": "value",
                    "value": 0.333,
                    "correct": False,
                    "feedback": "That is softmax's share; the output is also scaled by γ.",
                },
                {
                    "type": "value",
                    "value": 0,
                    "correct": False,
                    "feedback": "The weights go through a softmax: e^0 = 1, not 0.",
                },
                {"type": "default", "feedback": "Compute γ · softmax(0, 0, 0)."},
            ],
        },
    ],
)
