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
2. A training step, one trick per argument (section 2). `train_step` makes one
   optimiser step over ``k`` micro-batches (gradient accumulation, the loss divided by
   the real tokens of all of them: `accumulate_gradients`), with activation
   checkpointing (`checkpointed_layers`), autocast, gradient clipping and a
   ``GradScaler`` each turned on by one argument. Beside it, each trick measured:
   checkpointing's segments (`deep_stack`, `segment_costs`: Chen et al., 2016), the
   dtypes autocast picks (`autocast_dtypes`), float32 against bfloat16 training
   (`precision_curves`), the loss scale of float16 training (`grad_scaler_trace`) and
   the gradients' memory (`gradient_bytes`).
3. From one process to many (section 3). The same training step in ``N`` processes
   started by ``torchrun``: `setup_process_group` joins them, `shard_batch` gives each
   its share of the batch, `distribute` hands the model to PyTorch's engines
   (``DistributedDataParallel``, or FSDP2's ``fully_shard``, ZeRO stage 3), and
   `local_parameter_bytes` and `full_parameters` show what each process holds.
4. Offloading and freeing early (section 6 of the chapter, the smaller tricks):
   `OffloadedAdam` keeps Adam's states (and a float32 master copy) on another device,
   `optimizer_state_bytes` shows where an optimiser's states live, and `backward_step`
   drops the logits before the backward pass.

All sizes are in bytes; a gigabyte here is 10⁹ bytes, as in the ZeRO paper.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint_sequential
from tqdm.auto import tqdm

from lessons.core import checks
from lessons.core.activations import SavedActivations
from lessons.core.timing import median_times
from lessons.core.train import move_to, set_seed
from lessons.transformer import TransformerLM

__all__ = [
    "IGNORE_INDEX",
    "NORMALISATIONS",
    "OPTIMIZERS",
    "PRECISIONS",
    "STRATEGIES",
    "ZERO_STAGES",
    "ActivationTerm",
    "CheckpointedLayer",
    "OffloadedAdam",
    "ScalerStep",
    "SegmentCost",
    "StepResult",
    "TrainingMemory",
    "accumulate_gradients",
    "activation_terms",
    "autocast_dtypes",
    "backward_step",
    "bytes_per_parameter",
    "checkpointed_layers",
    "deep_stack",
    "distribute",
    "full_parameters",
    "grad_scaler_trace",
    "gradient_bytes",
    "local_parameter_bytes",
    "measured_layer_activations",
    "optimizer_state_bytes",
    "precision_curves",
    "real_tokens",
    "repeating_batches",
    "segment_costs",
    "setup_process_group",
    "shard_batch",
    "summed_token_loss",
    "train_step",
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


# --------------------------------------------------------------------------------------
# 2. A training step, one trick per argument
# --------------------------------------------------------------------------------------

#: The target that marks a padded position: ``F.cross_entropy`` leaves it out.
IGNORE_INDEX = -100
#: The ``normalise`` argument of `accumulate_gradients`.
NORMALISATIONS = ("tokens", "micro-batches", "none")


def summed_token_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The cross-entropy of ``model`` on ``batch``, **summed** over its real tokens.

    ``batch`` is ``(inputs, targets)``: ``inputs`` ``(batch, seq)`` token ids for
    ``model`` (chapter 4's `lessons.transformer.TransformerLM`, say, which returns
    ``(batch, seq, vocab)`` logits) and ``targets`` ``(batch, seq)``, with `IGNORE_INDEX`
    at the padded positions, as `lessons.transformer.lm_batch` makes them. The logits are
    taken in float32, so that the loss is summed in float32 under autocast too.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    inputs, targets = batch
    logits = model(inputs)
    return F.cross_entropy(
        logits.flatten(0, -2).float(),
        targets.flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def real_tokens(batch: tuple[torch.Tensor, torch.Tensor]) -> int:
    """How many targets of ``batch = (inputs, targets)`` are real (not `IGNORE_INDEX`).

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    _, targets = batch
    return int((targets != IGNORE_INDEX).sum())


class CheckpointedLayer(nn.Module):
    """``layer``, run under activation checkpointing: its forward pass saves only its inputs.

    ``forward(*args, **kwargs)`` returns ``layer(*args, **kwargs)`` through
    ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``: the tensors ``layer``
    would save for the backward pass are dropped, and the backward pass runs ``layer``'s
    forward again to get them back. The random state is saved and replayed
    (``preserve_rng_state=True``, the default), so dropout draws the same masks twice and
    the gradients are the ones without checkpointing.

    Why ``use_reentrant=False``: the older, reentrant implementation (``True``, long
    PyTorch's default) runs the layer inside a custom autograd function that only sees
    its tensor inputs. When none of them requires grad (a layer fed directly with data,
    or with frozen embeddings), its output does not require grad either: PyTorch warns
    "None of the inputs have requires_grad=True", and the parameters inside the layer get
    no gradient, so the optimiser leaves them as they are. The non-reentrant
    implementation records the graph as usual and has no such trap.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer: expected an nn.Module, got {checks.describe(layer)}")
        self.layer = layer

    def forward(self, *args: object, **kwargs: object) -> object:
        return torch.utils.checkpoint.checkpoint(self.layer, *args, use_reentrant=False, **kwargs)


@contextmanager
def checkpointed_layers(model: nn.Module) -> Iterator[None]:
    """Inside the ``with`` block, every layer of ``model.decoder.layers`` is checkpointed.

    ``model``: chapter 4's `lessons.transformer.TransformerLM` (or any model whose layers
    are ``model.decoder.layers``, an ``nn.ModuleList``). Each layer is wrapped in a
    `CheckpointedLayer` for the block and unwrapped after it: chapter 4's module is not
    changed, its parameters stay the same objects (so the optimiser sees no difference),
    and the backward pass may run after the block.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    layers = getattr(getattr(model, "decoder", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(
            "model: expected a model whose layers are model.decoder.layers (chapter 4's "
            f"TransformerLM), got {type(model).__name__}"
        )
    originals = list(layers)
    for i, layer in enumerate(originals):
        layers[i] = CheckpointedLayer(layer)
    try:
        yield
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer


def accumulate_gradients(
    model: nn.Module,
    micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor] = (
        summed_token_loss
    ),
    normalise: str = "tokens",
    checkpoint: bool = False,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Forward and backward over each micro-batch, the gradients adding up in ``.grad``.

    ``micro_batches``: ``(inputs, targets)`` pairs, with `IGNORE_INDEX` at padded
    targets; ``loss_fn(model, batch)`` returns the loss **summed** over the real tokens
    (`summed_token_loss`). Returns the mean loss per real token over all micro-batches.

    ``normalise`` says what each micro-batch's summed loss is divided by:

    * ``"tokens"`` (right): the real tokens of *all* micro-batches together, so the
      gradient is that of the mean over every real token, as one big batch gives;
    * ``"micro-batches"``: its own real tokens times the number of micro-batches ``k``
      (a mean per micro-batch, then the mean of the means, as nanoGPT does). Right only
      when every micro-batch holds as many real tokens; with padding it weighs the tokens
      of a short micro-batch more;
    * ``"none"``: its own real tokens only (the mean per micro-batch, forgetting to
      divide by ``k``): ``k`` times the gradient when the micro-batches are alike.

    ``checkpoint`` runs the forward passes under `checkpointed_layers`;
    ``autocast_dtype`` (e.g. ``torch.bfloat16``) under
    ``torch.autocast(device_type=<the model's device>, dtype=autocast_dtype)``; with a
    ``scaler`` (``torch.amp.GradScaler``), the backward pass starts from the scaled loss.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    checks.one_of("normalise", normalise, NORMALISATIONS)
    if not micro_batches:
        raise ValueError("micro_batches: expected at least one (inputs, targets) pair, got none")
    device = next(model.parameters()).device
    micro_batches = [move_to(batch, device) for batch in micro_batches]
    counts = [real_tokens(batch) for batch in micro_batches]
    if min(counts) == 0:
        raise ValueError(f"micro_batches: every micro-batch needs a real target, got {counts}")
    total, k = sum(counts), len(micro_batches)
    divisors = {
        "tokens": [total] * k,
        "micro-batches": [count * k for count in counts],
        "none": counts,
    }[normalise]
    summed = 0.0
    with checkpointed_layers(model) if checkpoint else nullcontext():
        for batch, divisor in zip(micro_batches, divisors, strict=True):
            with torch.autocast(
                device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
            ):
                loss = loss_fn(model, batch)
            summed += loss.item()
            loss = loss / divisor
            (loss if scaler is None else scaler.scale(loss)).backward()
    return summed / total


@dataclass(frozen=True)
class StepResult:
    """What `train_step` did: ``loss``, the mean loss per real token; ``grad_norm``, the
    norm of the accumulated gradient before clipping (``inf`` or ``nan`` when fp16
    overflowed); ``tokens``, the real tokens; ``skipped``, whether the ``GradScaler``
    skipped the optimiser step because the gradients held an ``inf`` or a ``nan``."""

    loss: float
    grad_norm: float
    tokens: int
    skipped: bool


def train_step(
    model: nn.Module,
    micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor] = (
        summed_token_loss
    ),
    checkpoint: bool = False,
    autocast_dtype: torch.dtype | None = None,
    clip_grad_norm: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> StepResult:
    """One optimiser step over ``micro_batches``, each trick turned on by one argument.

    Gradient accumulation is the list itself: ``k`` micro-batches make one step, the
    loss of each summed over its real tokens and divided by the real tokens of all of
    them (`accumulate_gradients`), so the step is the step one big batch would make.
    ``checkpoint`` recomputes each layer in the backward pass (`checkpointed_layers`);
    ``autocast_dtype`` runs the forward passes under ``torch.autocast``;
    ``clip_grad_norm`` clips the total gradient norm once, on the accumulated gradient;
    ``scaler`` (``torch.amp.GradScaler``, for float16) scales the loss, unscales the
    gradients before clipping, and skips the step when they overflowed. The gradients
    are set to ``None`` first (``zero_grad(set_to_none=True)``), which frees them rather
    than filling them with zeros. Returns a `StepResult`.

    The anchor is the training loop of Karpathy's nanoGPT (``train.py``).

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    if clip_grad_norm is not None:
        checks.number("clip_grad_norm", clip_grad_norm, positive=True)
    optimizer.zero_grad(set_to_none=True)
    loss = accumulate_gradients(
        model,
        micro_batches,
        loss_fn=loss_fn,
        checkpoint=checkpoint,
        autocast_dtype=autocast_dtype,
        scaler=scaler,
    )
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    max_norm = math.inf if clip_grad_norm is None else clip_grad_norm
    grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
    skipped = False
    if scaler is None:
        optimizer.step()
    else:
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skipped when the gradients hold an inf or a nan
        scaler.update()  # backs the scale off after a skipped step
        skipped = scaler.get_scale() < scale
    return StepResult(loss, grad_norm, sum(real_tokens(b) for b in micro_batches), skipped)


# --------------------------------------------------------------------------------------
# 2. Every trick measured: checkpointing's segments
# --------------------------------------------------------------------------------------


def deep_stack(n_layers: int, width: int) -> nn.Sequential:
    """``n_layers`` blocks ``Linear(width, width)`` then ``tanh``: Chen et al.'s setting.

    In such a stack each block saves one tensor as large as the activations that flow
    between blocks (``Linear`` saves its input; ``tanh`` saves its output, the next
    block's input), so the count of Chen et al. (2016) holds to the byte: ``n`` blocks
    save ``n + 1`` tensors ``(batch, width)`` without checkpointing.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    n_layers = checks.positive_int("n_layers", n_layers)
    width = checks.positive_int("width", width)
    return nn.Sequential(
        *(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(n_layers))
    )


@dataclass(frozen=True)
class SegmentCost:
    """One row of `segment_costs`: the stack cut into ``segments``; the bytes its forward
    pass saves; the median seconds of a forward and backward pass."""

    segments: int
    saved_bytes: int
    seconds: float


def segment_costs(
    stack: nn.Sequential,
    x: torch.Tensor,
    segments: Sequence[int],
    *,
    repeats: int = 5,
) -> list[SegmentCost]:
    """The memory and the time of ``stack(x)`` checkpointed in each number of ``segments``.

    ``torch.utils.checkpoint.checkpoint_sequential(stack, k, x, use_reentrant=False)``
    cuts the ``n`` blocks of ``stack`` into ``k`` segments; the first ``k - 1`` keep only
    their input, and the last runs as usual (its activations are needed first anyway).
    The forward pass then saves ``k - 1`` segment inputs and one segment's activations:
    for `deep_stack`, ``k + n/k`` tensors ``(batch, width)``, least at ``k = √n``, the
    rule of Chen et al. (2016). Each checkpointed block runs forward twice, so the time
    grows towards that of two forward passes and one backward pass. The bytes are
    counted by `lessons.core.activations.SavedActivations` (parameters left out); the
    seconds are medians over ``repeats`` (`lessons.core.timing.median_times`).

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    if not isinstance(stack, nn.Sequential):
        raise TypeError(f"stack: expected an nn.Sequential, got {type(stack).__name__}")
    repeats = checks.positive_int("repeats", repeats)
    for k in segments:
        if checks.positive_int("segments", k) > len(stack):
            raise ValueError(f"segments: expected at most {len(stack)} (the blocks), got {k}")

    def run(k: int) -> torch.Tensor:
        return checkpoint_sequential(stack, k, x, use_reentrant=False)

    costs = []
    for k in segments:
        with SavedActivations(exclude=stack.parameters()) as saved:
            run(k)
        seconds = median_times({"step": lambda k=k: run(k).sum().backward()}, repeats)["step"]
        costs.append(SegmentCost(int(k), saved.bytes, seconds))
    stack.zero_grad(set_to_none=True)
    return costs


# --------------------------------------------------------------------------------------
# 2. Every trick measured: mixed precision
# --------------------------------------------------------------------------------------

#: The operations `autocast_dtypes` tries, each a function of one float tensor
#: ``(4, 8)``; the matrix, the targets and the normalised shape are fixed.
_AUTOCAST_OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda a: F.linear(a, torch.ones(8, 8, device=a.device)),
    "matmul": lambda a: a @ torch.ones(8, 8, device=a.device),
    "softmax": lambda a: F.softmax(a, dim=-1),
    "log_softmax": lambda a: F.log_softmax(a, dim=-1),
    "layer_norm": lambda a: F.layer_norm(a, (8,)),
    "gelu": F.gelu,
    "exp": torch.exp,
    "sum": torch.sum,
    "cross_entropy": lambda a: F.cross_entropy(
        a, torch.zeros(4, dtype=torch.long, device=a.device)
    ),
    "mse_loss": lambda a: F.mse_loss(a, torch.zeros_like(a)),
}


def autocast_dtypes(
    device_type: str = "cpu", dtype: torch.dtype = torch.bfloat16
) -> dict[str, tuple[str, str]]:
    """Which dtype each operation returns under ``torch.autocast(device_type, dtype)``.

    Each operation of a small set (matrix products, softmax, layer norm, activations,
    reductions, losses) runs twice under autocast: on a float32 tensor (as the model's
    input or a parameter) and on a ``dtype`` tensor (as the output of a matrix product
    before it). Returns ``{operation: (dtype from float32, dtype from dtype)}``, dtypes
    by name (``"float32"``, ``"bfloat16"``). Autocast keeps three lists: operations cast
    *down* (matrix products: ``dtype`` from either input), operations cast *up* to
    float32 (from either input), and the rest, which follow their input. The lists are
    not the same on every device: measured on a CPU (PyTorch 2.13), ``softmax``,
    ``log_softmax`` and ``layer_norm`` follow their input (so they run in bfloat16 after
    a matrix product), where PyTorch's documentation puts them on CUDA's float32 list.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    table = {}
    low = torch.randn(4, 8, device=device_type).to(dtype)
    with torch.autocast(device_type, dtype=dtype):
        for name, op in _AUTOCAST_OPS.items():
            a = torch.randn(4, 8, device=device_type)
            table[name] = (_dtype_name(op(a)), _dtype_name(op(low)))
    return table


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def repeating_batches(
    n_batches: int,
    *,
    batch: int = 8,
    seq: int = 32,
    vocab_size: int = 16,
    period: int = 4,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` language-modelling batches ``(inputs, targets)``, each ``(batch, seq)``,
    of random patterns of ``period`` tokens repeated: learnable by copying from
    ``period`` positions back, so a small model's loss falls within a few dozen steps.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randint(vocab_size, (n_batches, batch, period), generator=generator)
    tokens = patterns.repeat(1, 1, (seq + 1) // period + 1)[..., : seq + 1]
    return [(ids[:, :-1], ids[:, 1:]) for ids in tokens]


def precision_curves(
    steps: int = 50,
    *,
    dtype: torch.dtype = torch.bfloat16,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """The training losses of one small language model trained twice: in float32, and
    under ``torch.autocast`` with ``dtype`` (``"float32"`` and ``"bfloat16"``, say).

    The model is chapter 4's `lessons.transformer.TransformerLM` (2 layers, ``d_model``
    32, 2 heads, no dropout) with the same initial weights both times, trained with Adam
    by `train_step` on `repeating_batches`, ``steps`` steps of one batch each, on a CPU.
    Returns ``{dtype name: losses per step}``.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    steps = checks.positive_int("steps", steps)
    batches = repeating_batches(steps, seed=seed)
    set_seed(seed)
    initial = _small_lm()
    curves = {}
    for autocast_dtype in (None, dtype):
        model = copy.deepcopy(initial)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        name = _dtype_name(torch.empty(0, dtype=autocast_dtype or torch.float32))
        bar = tqdm(batches, desc=name, unit="step", disable=not progress)
        curves[name] = [
            train_step(model, [batch], optimizer, autocast_dtype=autocast_dtype).loss
            for batch in bar
        ]
    return curves


def _small_lm() -> TransformerLM:
    """The model of `precision_curves` and `grad_scaler_trace`: 2 layers, no dropout."""
    return TransformerLM(
        16, d_model=32, num_heads=2, num_layers=2, ff_dim=64, max_len=32, dropout=0.0
    )


@dataclass(frozen=True)
class ScalerStep:
    """One row of `grad_scaler_trace`: the loss scale a step used, whether the step was
    skipped (its gradients overflowed in float16), and the scale after it."""

    step: int
    scale: float
    skipped: bool
    next_scale: float


def grad_scaler_trace(
    steps: int = 12,
    *,
    init_scale: float = 2.0**24,
    growth_interval: int = 3,
    seed: int = 0,
) -> list[ScalerStep]:
    """A float16 training run with ``torch.amp.GradScaler``, step by step.

    The same small model as `precision_curves`, trained by `train_step` under
    ``torch.autocast(..., dtype=torch.float16)`` on a CPU with a scaler started at
    ``init_scale``: a scale so large that the float16 backward pass overflows (float16
    stops at 65,504). Each overflowing step is skipped (the parameters stay as they
    were) and the scale is multiplied by ``backoff_factor`` (0.5); after
    ``growth_interval`` steps in a row without overflow it is multiplied by
    ``growth_factor`` (2). Returns one `ScalerStep` per step.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    steps = checks.positive_int("steps", steps)
    set_seed(seed)
    model = _small_lm()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    trace = []
    for step, batch in enumerate(repeating_batches(steps, seed=seed), start=1):
        scale = scaler.get_scale()
        result = train_step(model, [batch], optimizer, autocast_dtype=torch.float16, scaler=scaler)
        trace.append(ScalerStep(step, scale, result.skipped, scaler.get_scale()))
    return trace


# --------------------------------------------------------------------------------------
# 2. Every trick measured: the smaller ones
# --------------------------------------------------------------------------------------


def gradient_bytes(model: nn.Module) -> int:
    """The bytes the ``.grad`` tensors of ``model``'s parameters hold (0 when all are None).

    ``optimizer.zero_grad(set_to_none=True)`` (PyTorch's default since 2.0) frees them
    between steps; ``set_to_none=False`` keeps them, filled with zeros, as large as the
    parameters.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    return sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )


# --------------------------------------------------------------------------------------
# 3. From one process to many
# --------------------------------------------------------------------------------------

#: The ``strategy`` argument of `distribute`: ``"ddp"`` (every process keeps the whole
#: model) or ``"fsdp"`` (each keeps ``1 / N`` of it, as ZeRO stage 3 does).
STRATEGIES = ("ddp", "fsdp")


def setup_process_group(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the processes that ``torchrun`` started: returns ``(rank, world_size, device)``.

    ``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of the script and tells
    each one who it is through environment variables: ``RANK`` (0 to ``WORLD_SIZE - 1``,
    over all machines), ``WORLD_SIZE``, ``LOCAL_RANK`` (its number on this machine, which
    picks its GPU), and ``MASTER_ADDR`` and ``MASTER_PORT`` (where rank 0 waits for the
    others). ``backend``: ``None`` picks ``"nccl"`` (NVIDIA's collectives, GPU to GPU)
    when CUDA is available and ``"gloo"`` (on CPUs) otherwise. The device is
    ``cuda:LOCAL_RANK`` with ``"nccl"`` and the CPU with ``"gloo"``, so the same script
    runs unchanged on a laptop and on a GPU server.

    Used in: notebooks/07_big_models.ipynb, section 3.
    """
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    checks.one_of("backend", backend, ("gloo", "nccl"))
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"environment: expected the variables torchrun sets ({', '.join(names)}), "
            f"got none for {', '.join(missing)}; run under torchrun --nproc_per_node=N"
        )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    return rank, world_size, device


def shard_batch(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Process ``rank``'s share of a global ``batch``: ``(batch_size / world_size, ...)``.

    Every process draws the same global batch and keeps rows ``rank · n`` to
    ``(rank + 1) · n - 1``, with ``n = batch_size / world_size`` (what
    ``torch.utils.data.DistributedSampler`` does to a data set). The shares must be equal:
    ``DistributedDataParallel`` *averages* the processes' gradients, and the average of
    ``N`` mean losses over ``n`` rows each is the mean loss over all ``N · n`` rows; over
    unequal shares it would not be.

    Used in: notebooks/07_big_models.ipynb, section 3.
    """
    batch = checks.tensor("batch", batch)
    world_size = checks.positive_int("world_size", world_size)
    rank = checks.positive_int("rank", rank, 0)
    if rank >= world_size:
        raise ValueError(f"rank: expected 0 to world_size - 1 = {world_size - 1}, got {rank}")
    if batch.dim() == 0 or len(batch) % world_size:
        raise ValueError(
            f"batch: expected a batch size divisible by world_size={world_size}, got shape "
            f"{tuple(batch.shape)}"
        )
    share = len(batch) // world_size
    return batch[rank * share : (rank + 1) * share]


def distribute(
    model: nn.Module,
    strategy: str = "ddp",
    device: torch.device | str = "cpu",
    units: Iterable[nn.Module] = (),
) -> nn.Module:
    """``model`` made ready to train in every process of the group, by PyTorch's engines.

    * ``"ddp"``: ``DistributedDataParallel`` (Li et al., 2020). Each process keeps the
      whole model; during the backward pass the gradients are averaged over the
      processes (an all-reduce, bucket by bucket, overlapping the rest of the backward
      pass), so every process takes the same optimiser step. Returns the wrapper; its
      ``no_sync()`` skips the averaging, for the micro-batches of gradient accumulation
      but the last.
    * ``"fsdp"``: FSDP2's ``fully_shard`` (Zhao et al., 2023), ZeRO stage 3: each
      process keeps ``1 / N`` of every parameter, its gradient and its optimiser state;
      the parameters of a unit are gathered just before the unit runs and freed after,
      and the gradients are reduce-scattered, each process keeping the average of its
      own slice. ``units`` (e.g. a model's layers) are sharded one by one before the
      whole model, so that only one unit is gathered at a time. Returns ``model``
      itself, its parameters now ``DTensor`` s; ``set_requires_gradient_sync(False)``
      plays the part of ``no_sync()``.

    Every process must build the same initial weights (the same seed): DDP copies rank
    0's weights to the others, but ``fully_shard`` keeps each process's own slice.

    Used in: notebooks/07_big_models.ipynb, section 3.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {checks.describe(model)}")
    checks.one_of("strategy", strategy, STRATEGIES)
    device = torch.device(device)
    model = model.to(device)
    if strategy == "ddp":
        device_ids = [device] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)
    from torch.distributed.fsdp import fully_shard  # FSDP2; imported only when used

    for unit in units:
        fully_shard(unit)
    fully_shard(model)
    return model


def local_parameter_bytes(model: nn.Module) -> int:
    """The bytes of the parameters this process holds: its own slices under FSDP.

    A sharded parameter (a ``DTensor``) counts its local shard only; any other parameter
    counts whole. Under ``"ddp"`` every process holds the whole model; under ``"fsdp"``
    the processes' counts add up to the whole model, about ``1 / N`` each.

    Used in: notebooks/07_big_models.ipynb, section 3.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {checks.describe(model)}")
    total = 0
    for parameter in model.parameters():
        local = parameter.to_local() if hasattr(parameter, "to_local") else parameter
        total += local.numel() * local.element_size()
    return total


def full_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter whole, by name (as the unwrapped model names them), on the CPU.

    Sharded parameters are gathered from every process (``DTensor.full_tensor``, a
    collective: every process of the group must call this too). Used to compare a
    distributed run with a run in one process.

    Used in: notebooks/07_big_models.ipynb, section 3.
    """
    if isinstance(model, DistributedDataParallel):
        model = model.module
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {checks.describe(model)}")
    full = {}
    for name, parameter in model.named_parameters():
        whole = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
        full[name] = whole.detach().cpu().clone()
    return full


# --------------------------------------------------------------------------------------
# 4. Offloading and freeing early
# --------------------------------------------------------------------------------------


class OffloadedAdam:
    """Adam whose optimiser states live on another device (the CPU), as ZeRO-Offload's do.

    ``params``: the model's parameters, on the device that computes (a GPU, say);
    ``offload_device``: where the optimiser works (``"cpu"``). There it keeps a float32
    copy of every parameter that requires grad (the master weights) and an ordinary
    ``torch.optim.Adam`` over the copies (``lr``, ``betas``, ``eps``, ``weight_decay`` as
    there), whose two states per parameter, ``exp_avg`` (the momentum) and ``exp_avg_sq``
    (the variance), are therefore made on ``offload_device`` too. `step` copies each
    gradient to ``offload_device``, lets that Adam step the copies, and copies them back
    into the parameters. The computing device then holds only the parameters and their
    gradients: 8 of the 16 bytes per parameter of float32 Adam (`training_memory`). The
    parameters come out as plain Adam's would: the same arithmetic on the same numbers.
    With bfloat16 parameters, Adam steps the float32 master copy, as mixed precision does.

    The price is time: two copies per step between the devices (the gradients one way,
    the parameters back) and Adam's arithmetic on the CPU. ZeRO-Offload (Ren et al., 2021)
    hides part of it by overlapping the copies with the backward pass.

    `zero_grad` and `step` are an optimiser's, so `train_step` takes an `OffloadedAdam`
    in place of ``torch.optim.Adam`` (not with a ``GradScaler``, which needs a
    ``torch.optim.Optimizer``).

    What a machine without a GPU can check is the bookkeeping: which device holds which
    state (`optimizer_state_bytes`) and that the parameters equal plain Adam's. There the
    model and the optimiser share the CPU, so offloading saves nothing (the master copy
    even adds 4 bytes per parameter). How much GPU memory it saves, and what the copies
    cost in time, only a GPU can measure: ``scripts/gpu_memory_check.py`` does.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        offload_device: torch.device | str = "cpu",
    ) -> None:
        params = [checks.tensor("params", p, dtype="float") for p in params]
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("params: expected at least one parameter that requires grad, got none")
        self.offload_device = torch.device(offload_device)
        self.masters = [
            p.detach().to(self.offload_device, torch.float32, copy=True) for p in self.params
        ]
        self.optimizer = torch.optim.Adam(
            self.masters, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Free the parameters' gradients (``set_to_none``) or fill them with zeros."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Gradients to ``offload_device``, one Adam step there, parameters back.

        A parameter without a gradient is left as it is, as ``torch.optim.Adam`` leaves it.
        """
        for p, master in zip(self.params, self.masters, strict=True):
            master.grad = None if p.grad is None else p.grad.to(self.offload_device, torch.float32)
        self.optimizer.step()
        for p, master in zip(self.params, self.masters, strict=True):
            if master.grad is not None:
                p.copy_(master)
            master.grad = None  # the copied gradient is not needed until the next step

    def state_tensors(self) -> list[torch.Tensor]:
        """The tensors this optimiser keeps between steps: the master copies and Adam's
        states (``step``, ``exp_avg``, ``exp_avg_sq`` of each copy that has stepped)."""
        return [*self.masters, *_state_tensors(self.optimizer)]


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors in ``optimizer.state``: a torch optimiser's states, per parameter."""
    return [
        value
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    ]


def optimizer_state_bytes(optimizer: torch.optim.Optimizer | OffloadedAdam) -> dict[str, int]:
    """The bytes of the optimiser's states, per device: ``{"cpu": ..., "cuda:0": ...}``.

    For a ``torch.optim`` optimiser, the tensors of its ``state`` (for Adam: each
    parameter's ``exp_avg`` and ``exp_avg_sq``, on the parameter's device, and ``step``, a
    one-value tensor on the CPU unless ``capturable``); for an `OffloadedAdam`, its
    master copies too. Empty before the first step: ``torch.optim`` makes the states then.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    if isinstance(optimizer, OffloadedAdam):
        tensors = optimizer.state_tensors()
    elif isinstance(optimizer, torch.optim.Optimizer):
        tensors = _state_tensors(optimizer)
    else:
        raise TypeError(
            "optimizer: expected a torch.optim.Optimizer or an OffloadedAdam, got "
            f"{checks.describe(optimizer)}"
        )
    by_device: dict[str, int] = {}
    for tensor in tensors:
        device = str(tensor.device)
        by_device[device] = by_device.get(device, 0) + tensor.numel() * tensor.element_size()
    return by_device


def backward_step(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *, free_logits: bool = True
) -> float:
    """Forward and backward over ``batch``; returns the mean cross-entropy per real token.

    ``batch`` is ``(inputs, targets)`` as in `summed_token_loss`; ``model`` returns logits
    ``(batch, seq, vocab)``; the gradients add up in ``.grad``. ``free_logits`` drops
    the name ``logits`` before the backward pass. Autograd does not need the logits
    themselves (the cross-entropy saves its log-softmax, as large, and the output layer
    its input), so once no name refers to them their memory is returned before the
    backward pass allocates the gradients. Kept (as by a loop that writes
    ``logits, loss = model(x, y)`` and then ``loss.backward()``, nanoGPT's), they live
    until the step ends. Whether the peak of the step falls depends on where it is:
    when it is at the start of the backward pass, as with a large vocabulary, it falls
    by the logits' bytes (measured with `lessons.core.activations.peak_memory` in the
    tests). The gradients are the same either way: only a reference changes.

    Used in: notebooks/07_big_models.ipynb, section 2.
    """
    inputs, targets = batch
    logits = model(inputs)
    loss = F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX)
    if free_logits:
        del logits  # autograd keeps what it saved; nothing keeps the rest
    loss.backward()
    return loss.item()
