"""Big models, small GPUs: where the memory of training goes, counted and then measured.

Used in: notebooks/07_big_models.ipynb. The module follows the chapter:

1. Where the memory goes (section 1). The *model states* (parameters, gradients and
   optimiser states) follow from the parameter count, the precision and the optimiser:
   `bytes_per_parameter`, and `training_memory`, which also divides them over devices
   as the stages of ZeRO do (Rajbhandari et al., 2020). The *activations* follow from
   the batch and the sequence: `transformer_layer_activations` is the per-layer count of
   Korthikanti et al. (2022); `measured_layer_activations` measures what autograd really
   saves in one of chapter 4's layers, and `activation_terms` explains the difference
   between the two, term by term.

All sizes are in bytes; a gigabyte here is 10⁹ bytes, as in the ZeRO paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lessons.core import checks
from lessons.core.activations import SavedActivations

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "ZERO_STAGES",
    "ActivationTerm",
    "TrainingMemory",
    "activation_terms",
    "bytes_per_parameter",
    "measured_layer_activations",
    "training_memory",
    "transformer_layer_activations",
]

#: The ``precision`` argument of `training_memory`.
PRECISIONS = ("fp32", "mixed", "bf16")
#: The ``optimizer`` argument of `training_memory`.
OPTIMIZERS = ("sgd", "momentum", "adam")
#: The ``zero_stage`` argument of `training_memory`: 0 (plain data parallelism) to 3.
ZERO_STAGES = (0, 1, 2, 3)

#: Bytes per value of the weights the model computes with, of their gradients, of the
#: fp32 master copy of the weights (0: there is none) and of each optimiser state.
_VALUE_BYTES = {
    "fp32": {"weights": 4, "gradients": 4, "master": 0, "state": 4},
    "mixed": {"weights": 2, "gradients": 2, "master": 4, "state": 4},
    "bf16": {"weights": 2, "gradients": 2, "master": 0, "state": 2},
}
#: How many values each optimiser keeps per parameter: none for plain SGD, a momentum
#: (a running mean of the gradients) for SGD with momentum, and a momentum and a
#: variance (a running mean of the squared gradients) for Adam.
_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


# --------------------------------------------------------------------------------------
# 1. Where the memory goes: the model states
# --------------------------------------------------------------------------------------


def bytes_per_parameter(precision: str = "fp32", optimizer: str = "adam") -> tuple[int, int, int]:
    """The bytes one parameter costs in training: ``(weights, gradients, optimizer states)``.

    ``precision``:

    * ``"fp32"``: weights, gradients and optimiser states in float32, 4 bytes each;
    * ``"mixed"``: mixed-precision training (Micikevicius et al., 2018): fp16 or bf16
      weights and gradients (2 bytes each) for the forward and backward passes, and a
      float32 *master copy* of the weights (4 bytes) that the optimiser updates, with
      float32 states (4 bytes each);
    * ``"bf16"``: everything in bfloat16, 2 bytes each, master copy included (there is
      none).

    ``optimizer``: ``"sgd"`` keeps no state, ``"momentum"`` one (the momentum), ``"adam"``
    two (the momentum and the variance; AdamW alike).

    Following the ZeRO paper (Rajbhandari et al., 2020, section 3.1), the master copy is
    counted among the optimiser states: mixed-precision Adam costs ``2 + 2 + K`` bytes
    with ``K = 4 + 4 + 4 = 12`` (master weights, momentum, variance), 16 bytes in all.

    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    checks.one_of("precision", precision, PRECISIONS)
    checks.one_of("optimizer", optimizer, OPTIMIZERS)
    sizes = _VALUE_BYTES[precision]
    states = sizes["master"] + _STATES[optimizer] * sizes["state"]
    return sizes["weights"], sizes["gradients"], states


@dataclass(frozen=True)
class TrainingMemory:
    """The model states of a training run, in bytes **per device**.

    ``parameters``, ``gradients`` and ``optimizer_states`` (the fp32 master weights
    included, as in the ZeRO paper), for ``n_params`` parameters trained in
    ``precision`` with ``optimizer`` under ZeRO stage ``zero_stage`` over ``n_devices``.
    ``total`` is their sum; ``table()`` lays them out in gigabytes (10⁹ bytes).

    Used in: notebooks/07_big_models.ipynb, section 1.
    """

    parameters: float
    gradients: float
    optimizer_states: float
    n_params: float
    precision: str
    optimizer: str
    zero_stage: int
    n_devices: int

    @property
    def total(self) -> float:
        """Parameters, gradients and optimiser states together, in bytes per device."""
        return self.parameters + self.gradients + self.optimizer_states

    def table(self) -> str:
        """The three parts and the total per device, in gigabytes to one decimal."""
        rows = [
            ("parameters", self.parameters),
            ("gradients", self.gradients),
            ("optimizer states", self.optimizer_states),
            ("total", self.total),
        ]
        title = (
            f"{self.n_params:,.0f} parameters, {self.precision}, {self.optimizer}, ZeRO stage "
            f"{self.zero_stage} over {self.n_devices} device(s): GB per device"
        )
        return "\n".join([title, *(f"  {name:<17}{size / 1e9:>9.1f}" for name, size in rows)])


def training_memory(
    n_params: float,
    *,
    precision: str = "fp32",
    optimizer: str = "adam",
    zero_stage: int = 0,
    n_devices: int = 1,
) -> TrainingMemory:
    """The bytes per device that ``n_params`` parameters cost in training: a `TrainingMemory`.

    Each part is ``n_params`` times its bytes from `bytes_per_parameter`. Plain data
    parallelism (``zero_stage=0``) keeps a full copy of every part on each of the
    ``n_devices``. ZeRO's stages (Rajbhandari et al., 2020, section 5) partition them
    instead, each device keeping ``1 / n_devices`` of: the optimiser states (stage 1,
    P_os), the gradients too (stage 2, P_os+g), the parameters too (stage 3, P_os+g+p).
    With one device every stage costs what stage 0 does.

    The ZeRO paper's Figure 1, reproduced exactly: 7.5 billion parameters, mixed-precision
    Adam (16 bytes per parameter), 64 devices: 120 GB per device without ZeRO, then
    ``2Ψ + 2Ψ + 12Ψ/64`` = 31.4 GB (stage 1), ``2Ψ + 14Ψ/64`` = 16.6 GB (stage 2) and
    ``16Ψ/64`` = 1.9 GB (stage 3), for ``Ψ = 7.5e9`` and 1 GB = 10⁹ bytes.

    What the model leaves out: the activations (`transformer_layer_activations`), which
    grow with the batch and the sequence; temporary buffers (e.g. the gradient buckets of
    ``DistributedDataParallel``, ZeRO-3's gathered parameters, a fused kernel's
    workspace); the fragmentation of the allocator's cache; and the CUDA context, several
    hundred megabytes on a GPU before any tensor exists.

    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    n_params = checks.number("n_params", n_params, positive=True)
    checks.one_of("zero_stage", zero_stage, ZERO_STAGES)
    n_devices = checks.positive_int("n_devices", n_devices)
    weights, gradients, states = bytes_per_parameter(precision, optimizer)
    return TrainingMemory(
        parameters=n_params * weights / (n_devices if zero_stage >= 3 else 1),
        gradients=n_params * gradients / (n_devices if zero_stage >= 2 else 1),
        optimizer_states=n_params * states / (n_devices if zero_stage >= 1 else 1),
        n_params=n_params,
        precision=precision,
        optimizer=optimizer,
        zero_stage=int(zero_stage),
        n_devices=n_devices,
    )


# --------------------------------------------------------------------------------------
# 1. Where the memory goes: the activations
# --------------------------------------------------------------------------------------


def transformer_layer_activations(
    seq: int,
    batch: int,
    hidden: int,
    heads: int,
    *,
    bytes_per_value: int = 2,
    mask_bytes: int = 1,
    ffn_hidden: int | None = None,
) -> int:
    """The bytes one Transformer layer saves for the backward pass, counted by Korthikanti
    et al. (2022), equation (1): ``s·b·h·(34 + 5·a·s/h)`` with the defaults.

    ``seq`` (s), ``batch`` (b), ``hidden`` (h) and ``heads`` (a) are the sizes; no
    tensor, sequence or pipeline parallelism and no recomputation. Their assumptions: a
    GPT layer (pre-norm, attention then a feed-forward network of hidden size
    ``ffn_hidden = 4h`` with GeLU), activations stored in 16 bits (``bytes_per_value=2``)
    and dropout masks in one byte each (``mask_bytes=1``); only the tensors that the
    main blocks save count, not the small ones (each LayerNorm's mean and variance, with
    ``sb`` values each).

    Term by term (section 4.1 of the paper), with ``p = bytes_per_value``,
    ``m = mask_bytes`` and ``f = ffn_hidden``:

    * attention, ``(5p + m)·sbh + (2p + m)·as²b``: the input of the Q, K, V projections
      (p·sbh, one tensor shared by three), Q and K for ``QKᵀ`` (2p·sbh), the softmax
      output (p·as²b), the dropout mask on it (m·as²b), the dropout output and V for the
      product with V (p·as²b + p·sbh), the input of the output projection (p·sbh) and
      the dropout mask after it (m·sbh);
    * feed-forward, ``p·sbh + 2p·sbf + m·sbh``: the input of the first linear map, the
      GeLU's input, the second linear map's input (GeLU's output), the dropout mask;
    * two LayerNorms, ``2p·sbh``: their inputs.

    With ``p = 2``, ``m = 1``, ``f = 4h`` that is ``34·sbh + 5·as²b``, equation (1).

    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    terms = _formula_terms(seq, batch, hidden, heads, bytes_per_value, mask_bytes, ffn_hidden)
    return sum(terms.values())


def _formula_terms(
    seq: int,
    batch: int,
    hidden: int,
    heads: int,
    bytes_per_value: int,
    mask_bytes: int,
    ffn_hidden: int | None,
) -> dict[str, int]:
    """Korthikanti et al.'s terms, name -> bytes, after checking the arguments."""
    s = checks.positive_int("seq", seq)
    b = checks.positive_int("batch", batch)
    h = checks.positive_int("hidden", hidden)
    a = checks.positive_int("heads", heads)
    p = checks.positive_int("bytes_per_value", bytes_per_value)
    m = checks.positive_int("mask_bytes", mask_bytes)
    f = 4 * h if ffn_hidden is None else checks.positive_int("ffn_hidden", ffn_hidden)
    if h % a:
        raise ValueError(f"hidden: expected a multiple of heads={a}, got {h}")
    sbh, sbf, as2b = s * b * h, s * b * f, a * s * s * b
    return {
        "LayerNorm inputs (2)": 2 * p * sbh,
        "Q, K, V projections' input": p * sbh,
        "Q and K for QKᵀ": 2 * p * sbh,
        "softmax output": p * as2b,
        "attention dropout mask": m * as2b,
        "attention dropout output": p * as2b,
        "V": p * sbh,
        "output projection's input": p * sbh,
        "dropout mask after attention": m * sbh,
        "first linear map's input": p * sbh,
        "activation's input": p * sbf,
        "second linear map's input": p * sbf,
        "dropout mask after the feed-forward network": m * sbh,
    }


def measured_layer_activations(layer: nn.Module, x: torch.Tensor, **inputs: object) -> int:
    """The bytes autograd saves for the backward pass of ``layer(x, **inputs)``.

    ``layer``: one of chapter 4's layers, in the mode it should be measured in
    (``train()`` for dropout, as the formula assumes); ``x`` ``(batch, seq, d_model)``,
    which should require grad, as the output of a layer below it would; ``inputs``: the
    layer's other arguments, e.g. ``mask=causal_mask(seq)`` for an
    `lessons.transformer.EncoderLayer` or ``self_mask=...`` for a
    `lessons.transformer.DecoderLayer`. Counted with
    `lessons.core.activations.SavedActivations` during the forward pass only, each
    storage once, the layer's parameters left out (they exist anyway).
    `activation_terms` explains the number.

    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer: expected an nn.Module, got {checks.describe(layer)}")
    checks.tensor("x", x, dims=3, dtype="float", layout="(batch, seq, d_model)")
    with SavedActivations(exclude=layer.parameters()) as saved:
        layer(x, **inputs)
    return saved.bytes


@dataclass(frozen=True)
class ActivationTerm:
    """One line of `activation_terms`: a tensor (or group of tensors) a layer saves.

    ``formula``: its bytes in Korthikanti et al.'s count (0 where the formula has no such
    term); ``layer``: its bytes in chapter 4's layer, as autograd saves them; ``why``:
    where the two differ, and why.
    """

    name: str
    formula: int
    layer: int
    why: str


def activation_terms(
    seq: int,
    batch: int,
    hidden: int,
    heads: int,
    *,
    ffn_hidden: int | None = None,
    bytes_per_value: int = 4,
    dropout_mask_bytes: int | None = None,
    causal: bool = False,
) -> list[ActivationTerm]:
    """Korthikanti et al.'s count beside what chapter 4's layer saves, term by term.

    The layer is `lessons.transformer.EncoderLayer` in training mode with dropout > 0
    (pre-norm or post-norm, GeLU or ReLU: each saves as many bytes), called with
    ``need_weights=False`` as it is by default, on ``(batch, seq, hidden)`` inputs of
    ``bytes_per_value`` bytes (4 for float32), without a mask or, with ``causal``, with
    a ``(seq, seq)`` causal mask (`lessons.transformer.DecoderLayer` without
    cross-attention, the layer of chapter 4's language model, saves the same). The
    ``layer`` column is measured for float32 on a CPU (``bytes_per_value=4``); at other
    sizes it is an estimate. The ``formula`` column is `transformer_layer_activations`
    at the same ``bytes_per_value`` and 1-byte masks; the ``layer`` column is what
    `measured_layer_activations` measures: their sums equal the formula and the
    measurement exactly. The differences:

    * float32 doubles every 2-byte term of the paper;
    * ``nn.Dropout`` on a CPU saves its mask as a tensor of the input's dtype (the
      scaled keep-mask it multiplies by; 4 bytes a value in float32), where CUDA saves a
      1-byte bool mask: ``dropout_mask_bytes`` (default ``bytes_per_value``, the CPU case;
      1 on a GPU). The attention weights' dropout is the book's own
      (`lessons.attention.scaled_dot_product_attention`) and saves a bool mask: 1 byte;
    * PyTorch's layer has one more dropout, after the feed-forward activation, which
      Megatron's GPT does not: its mask, and a second tensor of the second linear map's
      size (the dropout's output, which that map saves; GeLU's output is then not kept);
    * chapter 3's attention normalises *after* the product with V
      (``exp(s - max) @ V / sum``), so it saves the unnormalised output and the row sums
      (and a 1-byte mask of the empty rows) for the division;
    * small tensors the formula leaves out: each LayerNorm's mean and inverse standard
      deviation (float32, 4 bytes per position each); the row maxima of the scores,
      saved by a branch of the graph that ``.detach()`` cuts off (the backward pass never
      reads them, but autograd saved them, so the hook counts them);
    * with ``causal``, the mask: one byte per query-key pair, shared by the batch.

    Used in: notebooks/07_big_models.ipynb, section 1.
    """
    p = checks.positive_int("bytes_per_value", bytes_per_value)
    d = (
        p
        if dropout_mask_bytes is None
        else checks.positive_int("dropout_mask_bytes", dropout_mask_bytes)
    )
    formula = _formula_terms(seq, batch, hidden, heads, p, 1, ffn_hidden)
    s, b, h, a = seq, batch, hidden, heads
    f = 4 * h if ffn_hidden is None else ffn_hidden
    sbh, sbf, as2b, rows = s * b * h, s * b * f, a * s * s * b, a * s * b
    same = "the same"
    wider = f"{d} bytes per element, not 1: on a CPU the mask has the input's dtype"
    wider = same if d == 1 else wider
    lines = [
        ("LayerNorm inputs (2)", 2 * p * sbh, same),
        ("Q, K, V projections' input", p * sbh, same),
        ("Q and K for QKᵀ", 2 * p * sbh, same),
        ("softmax output", p * as2b, "the unnormalised exp(s - max), as large"),
        ("attention dropout mask", as2b, "the same: a bool mask"),
        ("attention dropout output", p * as2b, same),
        ("V", p * sbh, same),
        ("output projection's input", p * sbh, same),
        ("dropout mask after attention", d * sbh, wider),
        ("first linear map's input", p * sbh, same),
        ("activation's input", p * sbf, "the same (ReLU saves its output instead, as large)"),
        ("second linear map's input", p * sbf, "the output of the dropout after the activation"),
        ("dropout mask after the feed-forward network", d * sbh, wider),
        ("dropout mask after the activation", d * sbf, "not in Megatron's GPT layer"),
        ("attention output before normalising", p * sbh, "normalised after the product with V"),
        ("row sums and empty-row mask", (p + 1) * rows, "normalised after the product with V"),
        ("row maxima of the scores", p * rows, "saved by a branch that .detach() cuts off"),
        ("LayerNorm means and inverse deviations", 2 * 2 * 4 * s * b, "left out by the formula"),
    ]
    if causal:
        lines.append(("causal mask", s * s, "left out by the formula: a constant"))
    return [ActivationTerm(name, formula.get(name, 0), size, why) for name, size, why in lines]
