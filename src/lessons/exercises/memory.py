"""Exercises and quiz of chapter 7, big models on small GPUs.

The solutions are plain functions a learner writes in a few lines, and
tests/test_exercise_solutions.py proves each equal to the taught code on every case:

* `model_state_bytes`: `lessons.memory.bytes_per_parameter` times the parameters;
* `zero_bytes_per_device`: `lessons.memory.training_memory` for mixed-precision Adam;
* `korthikanti_bytes`: `lessons.memory.transformer_layer_activations` with its defaults;
* `accumulated_loss`: the loss `lessons.memory.accumulate_gradients` returns;
* `token_weighted_loss`: `lessons.memory.summed_token_loss` over every micro-batch,
  divided by their `lessons.memory.real_tokens`;
* `checkpointed_block_forward`: what `lessons.memory.CheckpointedLayer` does to a layer.

The blocks of the checkpointing cases are chapter 4's encoder layers with seeded weights,
wrapped in `Block`, which notices whether the backward pass recomputed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from lessons.core.activations import SavedActivations
from lessons.exercises import quiz
from lessons.exercises.framework import Attempt, Case, Exercise, Hint, register
from lessons.exercises.sandbox import Opaque
from lessons.transformer import EncoderLayer

__all__ = [
    "Block",
    "KeptActivations",
    "NoGraph",
    "accumulated_loss",
    "checkpointed_block_forward",
    "korthikanti_bytes",
    "model_state_bytes",
    "token_weighted_loss",
    "zero_bytes_per_device",
]


def _same_numbers(got: object, expected: object) -> bool:
    """Whether ``got`` is ``expected`` (a number or a tuple of numbers), within 1e-9."""
    if isinstance(expected, tuple):
        return (
            isinstance(got, tuple | list)
            and len(got) == len(expected)
            and all(_same_numbers(g, e) for g, e in zip(got, expected, strict=True))
        )
    if isinstance(expected, torch.Tensor):
        return (
            isinstance(got, torch.Tensor)
            and got.shape == expected.shape
            and torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-6)
        )
    return isinstance(got, int | float) and abs(got - expected) <= 1e-9 * max(1.0, abs(expected))


def _is_mistake(attempt: Attempt, mistake: Callable[..., Any]) -> bool:
    """Whether the learner's result is what ``mistake`` returns on the case."""
    return _same_numbers(attempt.got, mistake(*attempt.case.args, **attempt.case.kwargs))


# --------------------------------------------------------------------------------------
# Exercise: memory.model_state_bytes
# --------------------------------------------------------------------------------------

#: Bytes per value: (weights, gradients, fp32 master copy, each optimiser state).
_BYTES = {"fp32": (4, 4, 0, 4), "mixed": (2, 2, 4, 4), "bf16": (2, 2, 0, 2)}
#: Optimiser states per parameter.
_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


def model_state_bytes(n_params: int, precision: str, optimizer: str) -> tuple[float, float, float]:
    """The bytes of ``(parameters, gradients, optimizer states)`` for ``n_params`` parameters.

    ``precision`` in ``"fp32"``, ``"mixed"``, ``"bf16"``; ``optimizer`` in ``"sgd"``,
    ``"momentum"``, ``"adam"``. In mixed precision the fp32 master copy of the weights
    counts among the optimiser states, as in the ZeRO paper: Adam costs 2 + 2 + 12 bytes.
    `lessons.memory.bytes_per_parameter` times ``n_params``.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    weights, gradients, master, state = _BYTES[precision]
    states = master + _STATES[optimizer] * state
    return float(n_params * weights), float(n_params * gradients), float(n_params * states)


def _state_cases() -> list[Case]:
    return [
        Case("1 million parameters, fp32, Adam", (1_000_000, "fp32", "adam")),
        Case("mixed precision, SGD with momentum", (10_000, "mixed", "momentum")),
        Case("1,000 parameters, mixed precision, Adam", (1000, "mixed", "adam")),
        Case("7.5 billion parameters, mixed precision, Adam", (7_500_000_000, "mixed", "adam")),
        Case("mixed precision, plain SGD", (10_000, "mixed", "sgd")),
        Case("bf16 throughout, Adam", (4096, "bf16", "adam")),
        Case("fp32, plain SGD", (500, "fp32", "sgd")),
    ]


def _states_without_master(n_params, precision, optimizer):
    weights, gradients, _, state = _BYTES[precision]
    states = _STATES[optimizer] * state
    return float(n_params * weights), float(n_params * gradients), float(n_params * states)


def _states_in_half(n_params, precision, optimizer):
    weights, gradients, master, state = _BYTES[precision]
    state = 2 if precision == "mixed" else state
    states = master + _STATES[optimizer] * state
    return float(n_params * weights), float(n_params * gradients), float(n_params * states)


def _everything_fp32(n_params, precision, optimizer):
    return float(n_params * 4), float(n_params * 4), float(n_params * 4 * _STATES[optimizer])


register(
    Exercise(
        id="memory.model_state_bytes",
        chapter="memory",
        prompt=(
            "Write `model_state_bytes(n_params, precision, optimizer)`: the bytes that "
            "`n_params` parameters cost in training, as a tuple `(parameters, gradients, "
            "optimizer_states)` of three numbers. `precision` is `'fp32'` (every value "
            "4 bytes), `'mixed'` (2-byte weights and gradients for the passes, plus a 4-byte "
            "fp32 master copy of the weights that the optimiser updates, and 4-byte optimiser "
            "states) or `'bf16'` (every value 2 bytes, no master copy). `optimizer` is "
            "`'sgd'` (no state), `'momentum'` (one state per parameter) or `'adam'` (two: "
            "the momentum and the variance). Count the master copy among the optimiser "
            "states, as the ZeRO paper does."
        ),
        signature=(
            "def model_state_bytes(n_params, precision, optimizer) -> tuple[float, float, float]"
        ),
        solution=model_state_bytes,
        cases=_state_cases,
        hints=(
            Hint(
                "Per parameter: weights and gradients are 4 bytes each in fp32, 2 in mixed "
                "and bf16. The optimiser states are the master copy (4 bytes, mixed only) "
                "plus one value per state (0, 1 or 2 of them) of 4 bytes (2 in bf16). "
                "Multiply each by `n_params`. Mixed-precision Adam: 2 + 2 + 12 = 16."
            ),
            Hint(
                "In mixed precision the optimiser cannot update 2-byte weights: tiny updates "
                "would round away. It keeps a 4-byte fp32 master copy of every weight, "
                "counted among the optimiser states: 4 + 4 + 4 = 12 bytes for Adam, not 8.",
                fits=lambda a: _is_mistake(a, _states_without_master),
            ),
            Hint(
                "Mixed precision keeps the optimiser states in fp32, 4 bytes each: Adam's "
                "variance of small gradients would underflow in 2 bytes. Only the weights "
                "and gradients used by the forward and backward passes are 2 bytes.",
                fits=lambda a: _is_mistake(a, _states_in_half),
            ),
            Hint(
                "`precision` changes the numbers: in `'mixed'` and `'bf16'` the weights and "
                "gradients take 2 bytes each, not 4.",
                fits=lambda a: _is_mistake(a, _everything_fp32),
            ),
        ),
        wrong_answers=(_states_without_master, _states_in_half, _everything_fp32),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: memory.zero_bytes_per_device
# --------------------------------------------------------------------------------------


def zero_bytes_per_device(
    n_params: float, stage: int, n_devices: int
) -> tuple[float, float, float]:
    """``(parameters, gradients, optimizer states)`` bytes per device for mixed-precision
    Adam (2 + 2 + 12 bytes per parameter) under ZeRO stage ``stage`` (0 to 3) over
    ``n_devices``: stage 1 partitions the optimiser states, stage 2 the gradients too,
    stage 3 the parameters too. `lessons.memory.training_memory`.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    parameters, gradients, states = 2 * n_params, 2 * n_params, 12 * n_params
    return (
        parameters / (n_devices if stage >= 3 else 1),
        gradients / (n_devices if stage >= 2 else 1),
        states / (n_devices if stage >= 1 else 1),
    )


def _zero_cases() -> list[Case]:
    return [
        Case("the ZeRO paper: 7.5 B parameters, stage 0, 64 devices", (7.5e9, 0, 64)),
        Case("the ZeRO paper: stage 1", (7.5e9, 1, 64)),
        Case("the ZeRO paper: stage 2", (7.5e9, 2, 64)),
        Case("the ZeRO paper: stage 3", (7.5e9, 3, 64)),
        Case("1 B parameters, stage 2, 8 devices", (1e9, 2, 8)),
        Case("stage 3 on one device: nothing to share", (1e6, 3, 1)),
    ]


def _zero_grads_at_stage_one(n_params, stage, n_devices):
    return (
        2 * n_params / (n_devices if stage >= 3 else 1),
        2 * n_params / (n_devices if stage >= 1 else 1),
        12 * n_params / (n_devices if stage >= 1 else 1),
    )


def _zero_params_at_stage_two(n_params, stage, n_devices):
    return (
        2 * n_params / (n_devices if stage >= 2 else 1),
        2 * n_params / (n_devices if stage >= 2 else 1),
        12 * n_params / (n_devices if stage >= 1 else 1),
    )


def _zero_everything(n_params, stage, n_devices):
    share = n_devices if stage >= 1 else 1
    return 2 * n_params / share, 2 * n_params / share, 12 * n_params / share


register(
    Exercise(
        id="memory.zero_bytes_per_device",
        chapter="memory",
        prompt=(
            "Write `zero_bytes_per_device(n_params, stage, n_devices)`: the bytes each of "
            "`n_devices` devices holds for mixed-precision Adam (2 bytes of weights, 2 of "
            "gradients and 12 of optimiser states per parameter) under ZeRO stage `stage`, "
            "as a tuple `(parameters, gradients, optimizer_states)`. Stage 0 (plain data "
            "parallelism) keeps a full copy of everything on every device. Each stage "
            "splits one more part evenly over the devices: stage 1 the optimiser states, "
            "stage 2 the gradients too, stage 3 the parameters too."
        ),
        signature=(
            "def zero_bytes_per_device(n_params, stage, n_devices) -> tuple[float, float, float]"
        ),
        solution=zero_bytes_per_device,
        cases=_zero_cases,
        hints=(
            Hint(
                "Start from `2 * n_params`, `2 * n_params` and `12 * n_params`. Divide the "
                "optimiser states by `n_devices` from stage 1 on, the gradients from stage 2 "
                "on, the parameters at stage 3 only. The paper's 7.5 B parameters on 64 "
                "devices: 120 GB, then 31.4, 16.6 and 1.9 GB in total."
            ),
            Hint(
                "Stage 1 splits the optimiser states only: every device still keeps all the "
                "gradients (the all-reduce of plain data parallelism leaves each device "
                "with the whole average). The gradients are split from stage 2 on.",
                fits=lambda a: _is_mistake(a, _zero_grads_at_stage_one),
            ),
            Hint(
                "Stage 2 keeps the parameters whole on every device: each device runs the "
                "whole forward and backward pass with them. Only stage 3 splits them, "
                "gathering each layer's parameters just before it runs.",
                fits=lambda a: _is_mistake(a, _zero_params_at_stage_two),
            ),
            Hint(
                "The stages add one part at a time: stage 1 divides the optimiser states "
                "alone, stage 2 the gradients too, stage 3 the parameters too.",
                fits=lambda a: _is_mistake(a, _zero_everything),
            ),
        ),
        wrong_answers=(_zero_grads_at_stage_one, _zero_params_at_stage_two, _zero_everything),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: memory.korthikanti_bytes
# --------------------------------------------------------------------------------------


def korthikanti_bytes(s: int, b: int, h: int, a: int) -> float:
    """The bytes one Transformer layer keeps for the backward pass, by Korthikanti et al.
    (2022), equation (1): ``s·b·h·(34 + 5·a·s/h)`` (16-bit activations, 1-byte dropout
    masks). `lessons.memory.transformer_layer_activations` with its defaults.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    return s * b * h * (34 + 5 * a * s / h)


def _korthikanti_cases() -> list[Case]:
    return [
        Case("GPT-3 sizes: s 2048, b 1, h 12288, 96 heads", (2048, 1, 12288, 96)),
        Case("s 512, b 8, h 768, 12 heads (BERT-base sizes)", (512, 8, 768, 12)),
        Case("s 128, b 32, h 256, 4 heads", (128, 32, 256, 4)),
        Case("one head", (64, 2, 64, 1)),
        Case("long sequences: s 8192, b 1, h 1024, 16 heads", (8192, 1, 1024, 16)),
    ]


def _korthikanti_no_heads(s, b, h, a):
    return s * b * h * (34 + 5 * s / h)


def _korthikanti_linear_in_s(s, b, h, a):
    return s * b * h * (34 + 5 * a / h)


def _korthikanti_no_attention_matrix(s, b, h, a):
    return s * b * h * 34


register(
    Exercise(
        id="memory.korthikanti_bytes",
        chapter="memory",
        prompt=(
            "Write `korthikanti_bytes(s, b, h, a)`: the bytes one Transformer layer keeps "
            "for the backward pass, by Korthikanti et al.'s count, `s·b·h·(34 + 5·a·s/h)`, "
            "for sequences of `s` tokens, a batch of `b`, hidden size `h` and `a` attention "
            "heads. The 34 counts the tensors as large as the input, `(s, b, h)`, in "
            "16-bit values (plus 1-byte dropout masks); the `5·a·s/h` counts the attention "
            "matrices, `(b, a, s, s)`: the softmax output, its dropout mask and the "
            "dropout's output. Return a number."
        ),
        signature="def korthikanti_bytes(s, b, h, a) -> float",
        solution=korthikanti_bytes,
        cases=_korthikanti_cases,
        hints=(
            Hint(
                "One line: `s * b * h * (34 + 5 * a * s / h)`. Multiplied out, that is "
                "`34·sbh + 5·a·s²·b`: the second term grows with the square of the length."
            ),
            Hint(
                "Each of the `a` heads has its own `(s, s)` attention matrix for each "
                "sequence: the term is `5 * a * s / h`, with the number of heads.",
                fits=lambda a: _is_mistake(a, _korthikanti_no_heads),
            ),
            Hint(
                "An attention matrix is `s × s`: the term is `5 * a * s / h` inside the "
                "bracket, which times `s·b·h` gives `5·a·s²·b`, quadratic in the length.",
                fits=lambda a: _is_mistake(a, _korthikanti_linear_in_s),
            ),
            Hint(
                "The 34 is only the part as large as the input. Add the attention "
                "matrices: `5 * a * s / h` inside the bracket. At long lengths they "
                "dominate.",
                fits=lambda a: _is_mistake(a, _korthikanti_no_attention_matrix),
            ),
        ),
        wrong_answers=(
            _korthikanti_no_heads,
            _korthikanti_linear_in_s,
            _korthikanti_no_attention_matrix,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: memory.accumulated_loss
# --------------------------------------------------------------------------------------


def accumulated_loss(loss_sums: torch.Tensor, token_counts: torch.Tensor) -> torch.Tensor:
    """The mean loss per real token over ``k`` micro-batches, from each micro-batch's
    **summed** loss ``loss_sums`` ``(k,)`` and its real tokens ``token_counts`` ``(k,)``
    int64: a 0-dim tensor, what one big batch would report (the loss
    `lessons.memory.accumulate_gradients` returns).
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    return loss_sums.sum() / token_counts.sum()


def _accumulated_cases() -> list[Case]:
    g = torch.Generator().manual_seed(70)

    def case(counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.tensor(counts)
        return tokens * (2.0 + torch.rand(len(counts), generator=g)), tokens

    return [
        Case("4 micro-batches with different numbers of real tokens", case([120, 64, 97, 30])),
        Case("one short micro-batch, one long one", case([5, 500])),
        Case("2 micro-batches, as many tokens each", case([64, 64])),
        Case("one micro-batch: no accumulation", case([77])),
        Case("8 micro-batches", case([16, 9, 32, 31, 1, 12, 25, 40])),
    ]


def _accumulated_mean_of_means(loss_sums, token_counts):
    return (loss_sums / token_counts).mean()


def _accumulated_sum_of_means(loss_sums, token_counts):
    return (loss_sums / token_counts).sum()


def _accumulated_per_micro_batch(loss_sums, token_counts):
    return loss_sums.sum() / len(loss_sums)


register(
    Exercise(
        id="memory.accumulated_loss",
        chapter="memory",
        prompt=(
            "Write `accumulated_loss(loss_sums, token_counts)`. Gradient accumulation ran "
            "`k` micro-batches; for each, `loss_sums` `(k,)` holds its cross-entropy "
            "*summed* over its real tokens, and `token_counts` `(k,)` (int64) how many real "
            "tokens it had (padding left out). Return, as a 0-dim tensor, the mean loss per "
            "real token over all the micro-batches: the loss one big batch holding all of "
            "them would report."
        ),
        signature="def accumulated_loss(loss_sums, token_counts) -> torch.Tensor",
        solution=accumulated_loss,
        cases=_accumulated_cases,
        hints=(
            Hint(
                "All the losses over all the tokens: `loss_sums.sum() / token_counts.sum()`. "
                "One big batch averages over its real tokens, wherever they sit."
            ),
            Hint(
                "The mean of the micro-batches' means weighs every micro-batch the same, so "
                "a token of a short micro-batch counts more than one of a long micro-batch. "
                "It is right only when every micro-batch holds as many real tokens. Divide "
                "the total loss by the total number of tokens.",
                fits=lambda a: _is_mistake(a, _accumulated_mean_of_means),
            ),
            Hint(
                "Adding the micro-batches' means forgets to divide by their number `k`: "
                "about `k` times the loss (and, in training, `k` times the gradient).",
                fits=lambda a: _is_mistake(a, _accumulated_sum_of_means),
            ),
            Hint(
                "`loss_sums` are sums over tokens: divide by the number of tokens, "
                "`token_counts.sum()`, not by the number of micro-batches.",
                fits=lambda a: _is_mistake(a, _accumulated_per_micro_batch),
            ),
        ),
        wrong_answers=(
            _accumulated_mean_of_means,
            _accumulated_sum_of_means,
            _accumulated_per_micro_batch,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: memory.token_weighted_loss
# --------------------------------------------------------------------------------------

#: The target of a padded position, as in `lessons.memory.IGNORE_INDEX`.
_PAD = -100


def token_weighted_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The cross-entropy per real token over ``k`` micro-batches: ``logits``
    ``(k, batch, seq, vocab)``, ``targets`` ``(k, batch, seq)`` int64 with -100 at padded
    positions. Summed over the real tokens of all micro-batches, divided by their number:
    `lessons.memory.summed_token_loss` over the micro-batches, over their
    `lessons.memory.real_tokens`. A 0-dim tensor.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=_PAD)


def _token_cases() -> list[Case]:
    g = torch.Generator().manual_seed(71)

    def case(k: int, batch: int, seq: int, vocab: int, lengths: list[int]) -> tuple:
        logits = torch.randn(k, batch, seq, vocab, generator=g)
        targets = torch.randint(vocab, (k, batch, seq), generator=g)
        positions = torch.arange(seq).expand(k * batch, seq)
        padded = positions >= torch.tensor(lengths)[:, None]
        return logits, targets.masked_fill(padded.view(k, batch, seq), _PAD)

    return [
        Case(
            "2 micro-batches of 2 sequences, padded to 6",
            case(2, 2, 6, 5, [6, 2, 3, 5]),
        ),
        Case(
            "3 micro-batches, one of short sequences",
            case(3, 2, 8, 7, [8, 7, 1, 2, 6, 8]),
        ),
        Case("no padding at all", case(2, 3, 4, 6, [4] * 6)),
        Case("one micro-batch, one sequence mostly padding", case(1, 3, 5, 4, [5, 1, 4])),
        Case("4 micro-batches of one sequence each", case(4, 1, 6, 5, [6, 3, 2, 5])),
    ]


def _token_counting_padding(logits, targets):
    summed = F.cross_entropy(
        logits.flatten(0, -2), targets.flatten(), ignore_index=_PAD, reduction="sum"
    )
    return summed / targets.numel()


def _token_mean_per_sequence(logits, targets):
    vocab = logits.shape[-1]
    losses = F.cross_entropy(
        logits.reshape(-1, vocab), targets.flatten(), ignore_index=_PAD, reduction="none"
    ).view(-1, targets.shape[-1])
    real = (targets != _PAD).view(-1, targets.shape[-1])
    return (losses.sum(dim=1) / real.sum(dim=1)).mean()


def _token_mean_per_micro_batch(logits, targets):
    means = [
        F.cross_entropy(batch_logits.flatten(0, -2), batch_targets.flatten(), ignore_index=_PAD)
        for batch_logits, batch_targets in zip(logits, targets, strict=True)
    ]
    return torch.stack(means).mean()


register(
    Exercise(
        id="memory.token_weighted_loss",
        chapter="memory",
        prompt=(
            "Write `token_weighted_loss(logits, targets)`: the language-modelling loss of "
            "`k` micro-batches, as one big batch would compute it. `logits` is "
            "`(k, batch, seq, vocab)`, `targets` `(k, batch, seq)` int64, with -100 at the "
            "padded positions. Return the cross-entropy summed over every real (not "
            "padded) token of every micro-batch, divided by the number of real tokens: a "
            "0-dim tensor."
        ),
        signature="def token_weighted_loss(logits, targets) -> torch.Tensor",
        solution=token_weighted_loss,
        cases=_token_cases,
        hints=(
            Hint(
                "Flatten everything but the vocabulary: `logits.flatten(0, -2)` is "
                "`(k·batch·seq, vocab)` and `targets.flatten()` matches it. "
                "`F.cross_entropy(..., ignore_index=-100)` leaves the padded positions out "
                "of both the sum and the count."
            ),
            Hint(
                "The padded positions count in your denominator. Divide by the real tokens, "
                "`(targets != -100).sum()`, or let the default `reduction='mean'` of "
                "`F.cross_entropy(..., ignore_index=-100)` do it.",
                fits=lambda a: _is_mistake(a, _token_counting_padding),
            ),
            Hint(
                "A mean per sequence, then the mean of those, gives a token of a short "
                "sequence more weight than a token of a long one. Pool every real token of "
                "every sequence, then divide once.",
                fits=lambda a: _is_mistake(a, _token_mean_per_sequence),
            ),
            Hint(
                "The mean of the micro-batches' means weighs a micro-batch with few real "
                "tokens as much as one with many. Sum over all real tokens and divide by "
                "their total number.",
                fits=lambda a: _is_mistake(a, _token_mean_per_micro_batch),
            ),
        ),
        wrong_answers=(
            _token_counting_padding,
            _token_mean_per_sequence,
            _token_mean_per_micro_batch,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: memory.checkpointed_block_forward
# --------------------------------------------------------------------------------------


class KeptActivations(RuntimeError):
    """The block of a checkpointing case was not recomputed in the backward pass: autograd
    kept its activations from the forward pass. ``args`` are ``(bytes,)``: how many bytes
    the block keeps when it runs without checkpointing, measured."""

    def __init__(self, kept: int) -> None:
        super().__init__(int(kept))

    def __str__(self) -> str:
        return (
            f"the block ran forward once and autograd kept its activations, {self.args[0]:,} "
            "bytes, for the backward pass: it was not checkpointed, so the backward pass "
            "never ran it again"
        )


class NoGraph(RuntimeError):
    """The block of a checkpointing case ran without autograd while its input needed no
    gradient, so its parameters would get none."""

    def __str__(self) -> str:
        return (
            "the block ran without autograd recording it (grad mode off) and its input does "
            "not require grad: its output needs no gradient, and its parameters would get "
            "none"
        )


class _Watch(torch.autograd.Function):
    """The identity on the block's input; in the backward pass it checks that the block
    was run again since the call that made it (the recomputation of checkpointing)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, block: Block, call: int) -> torch.Tensor:
        ctx.block, ctx.call, ctx.shape = block, call, tuple(x.shape)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        block = ctx.block
        if block.calls == ctx.call and not block.recomputing(ctx.call):
            raise KeptActivations(block.kept_bytes(ctx.shape))
        return grad, None, None


class Block:
    """One of chapter 4's encoder layers with fixed, seeded weights, called like a function.

    ``block(x)`` maps ``(batch, seq, d_model)`` to the same shape (dropout off). It
    counts its calls and watches its input: if the backward pass reaches the input
    without the block having run again since the forward pass, its activations were kept,
    and it raises `KeptActivations`; if it runs without autograd on an input that needs
    no gradient, it raises `NoGraph`. ``module`` is the layer itself.

    The checker gets back a stand-in (`Opaque`) for a block sent to the worker; a block
    equals the stand-in made from it, so the check of unchanged inputs passes.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """

    def __init__(self, d_model: int, num_heads: int, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = EncoderLayer(d_model, num_heads, 2 * d_model, dropout=0.0).eval()
        self.d_model, self.num_heads, self.seed = d_model, num_heads, seed
        self.calls = 0
        self._with_graph: list[bool] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and not x.requires_grad:
            raise NoGraph()
        self.calls += 1
        self._with_graph.append(torch.is_grad_enabled())
        return self.module(_Watch.apply(x, self, self.calls))

    def recomputing(self, call: int) -> bool:
        """Whether call number ``call`` was the recomputation of a forward pass that ran
        without autograd (reentrant checkpointing runs the block so, then again)."""
        return call >= 2 and not self._with_graph[call - 2]

    def kept_bytes(self, shape: tuple[int, ...]) -> int:
        """The bytes autograd keeps for the block on an input of ``shape``, measured."""
        x = torch.zeros(shape, requires_grad=True)
        with torch.enable_grad(), SavedActivations(exclude=self.module.parameters()) as saved:
            self.module(x)
        return saved.bytes

    def __repr__(self) -> str:
        return f"EncoderLayer(d_model={self.d_model}, nhead={self.num_heads})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Opaque):
            return other == Opaque.of(self)
        if isinstance(other, Block):
            return repr(other) == repr(self) and other.seed == self.seed
        return NotImplemented

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "calls": 0, "_with_graph": []}

    __hash__ = object.__hash__


def checkpointed_block_forward(
    block: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``block(x)`` under activation checkpointing: the forward pass keeps only ``x``, and
    the backward pass runs ``block`` again. ``x`` ``(batch, seq, d_model)``; returns the
    same shape. What `lessons.memory.CheckpointedLayer` does to a layer.
    Used in: notebooks/07_big_models.ipynb, exercises.
    """
    return checkpoint(block, x, use_reentrant=False)


def _block_cases() -> list[Case]:
    g = torch.Generator().manual_seed(72)
    return [
        Case(
            "batch 2, 5 positions, d_model 8",
            (Block(8, 2, seed=720), torch.randn(2, 5, 8, generator=g)),
        ),
        Case(
            "batch 1, 3 positions, d_model 4",
            (Block(4, 1, seed=721), torch.randn(1, 3, 4, generator=g)),
        ),
        Case(
            "batch 4, 6 positions, d_model 8",
            (Block(8, 4, seed=722), torch.randn(4, 6, 8, generator=g)),
        ),
        Case("one position", (Block(6, 3, seed=723), torch.randn(3, 1, 6, generator=g))),
        Case(
            "batch 2, 16 positions, d_model 16",
            (Block(16, 2, seed=724), torch.randn(2, 16, 16, generator=g)),
        ),
    ]


def _block_plain(block, x):
    return block(x)


def _block_reentrant(block, x):
    return checkpoint(block, x, use_reentrant=True)


def _block_no_grad(block, x):
    with torch.no_grad():
        return block(x)


register(
    Exercise(
        id="memory.checkpointed_block_forward",
        chapter="memory",
        prompt=(
            "Write `checkpointed_block_forward(block, x)`: run `block` on `x` "
            "`(batch, seq, d_model)` under activation checkpointing, with "
            "`torch.utils.checkpoint.checkpoint`, and return its output. The forward pass "
            "should keep only the block's input; the backward pass then runs the block "
            "again to get its activations back. Use the non-reentrant implementation. In "
            "the cases, `block` is one of chapter 4's encoder layers: it notices when the "
            "backward pass finds its activations kept (`KeptActivations`) and when it runs "
            "without autograd on an input that needs no gradient (`NoGraph`); `x` is data, "
            "which does not require grad, as for a model's first layer."
        ),
        signature="def checkpointed_block_forward(block, x) -> torch.Tensor",
        solution=checkpointed_block_forward,
        cases=_block_cases,
        hints=(
            Hint(
                "One line: `torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)`. "
                "It runs `block(x)` without keeping what `block` saves, and replays it in "
                "the backward pass."
            ),
            Hint(
                "Your output is right, but the backward pass found the block's activations "
                "kept from the forward pass. Call it through "
                "`torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)` instead "
                "of `block(x)`: the values and the gradients stay the same, and the memory "
                "falls.",
                fits=lambda a: a.problem == "grad",
            ),
            Hint(
                "The block ran without autograd. Under `torch.no_grad()` nothing is "
                "recorded at all. `use_reentrant=True` runs the block so too and builds the "
                "graph only in the backward pass, through the inputs: when no input requires "
                "grad (here `x` is data), the output needs no gradient and the block's "
                "parameters never get one. Pass `use_reentrant=False`.",
                fits=lambda a: isinstance(a.error, NoGraph),
            ),
        ),
        wrong_answers=(_block_plain, _block_reentrant, _block_no_grad),
        check_grad=True,
    )
)


quiz.register(
    "memory",
    [
        {
            "question": "Training with Adam in mixed precision costs 16 bytes per parameter "
            "before any activation. Where do they go?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "2 for the fp16 weights, 2 for their gradients, and 12 for the "
                    "optimiser: a 4-byte fp32 master copy of the weights, Adam's momentum "
                    "and its variance, 4 bytes each",
                    "correct": True,
                    "feedback": "Right: 2 + 2 + (4 + 4 + 4), the ZeRO paper's count "
                    "(lessons.memory.bytes_per_parameter('mixed', 'adam') is (2, 2, 12)). "
                    "The optimiser updates the fp32 copy, because an update much smaller "
                    "than a weight rounds away in 16 bits.",
                },
                {
                    "answer": "4 for the weights, 4 for the gradients and 8 for Adam's two "
                    "states: mixed precision changes the speed, not the memory",
                    "correct": False,
                    "feedback": "That is fp32 training without a master copy: 4 + 4 + 8 is "
                    "16 too, but the parts differ. In mixed precision the weights and "
                    "gradients of the passes take 2 bytes, and the fp32 master copy joins "
                    "the optimiser's 12.",
                },
                {
                    "answer": "2 for the weights, 2 for the gradients, 4 for each of Adam's "
                    "states, and 4 for the activations of each parameter",
                    "correct": False,
                    "feedback": "Activations are not per parameter: they grow with the batch "
                    "and the sequence, and the 16 bytes leave them out. The last 4 bytes are "
                    "the fp32 master copy of the weights.",
                },
            ],
        },
        {
            "question": "7.5 billion parameters are trained with Adam in mixed precision on "
            "64 devices under ZeRO stage 1. How many gigabytes (10⁹ bytes) of model "
            "states does each device hold?",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 31.4,
                    "correct": True,
                    "feedback": "Right: 2Ψ + 2Ψ + 12Ψ/64 with Ψ = 7.5e9 is 15 + 15 + 1.4 "
                    "GB, the ZeRO paper's Figure 1. The weights and gradients stay whole on "
                    "every device; only the optimiser states are split.",
                },
                {
                    "type": "value",
                    "value": 120,
                    "correct": False,
                    "feedback": "That is stage 0, plain data parallelism: 16 bytes times "
                    "7.5e9 on every device. Stage 1 splits the optimiser states.",
                },
                {
                    "type": "value",
                    "value": 16.6,
                    "correct": False,
                    "feedback": "That is stage 2, which splits the gradients too.",
                },
                {
                    "type": "value",
                    "value": 1.88,
                    "correct": False,
                    "feedback": "That is stage 3, everything split: 120 GB / 64.",
                },
                {
                    "type": "default",
                    "feedback": "Keep 2 + 2 bytes per parameter whole on each device, "
                    "and divide the 12 bytes of optimiser states by 64.",
                },
            ],
        },
        {
            "question": "What does each device keep whole, and what does it keep only a "
            "1/N slice of, under ZeRO stage 2?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The parameters whole; a slice of the gradients and of the "
                    "optimiser states",
                    "correct": True,
                    "feedback": "Right: stage 1 splits the optimiser states, stage 2 the "
                    "gradients too (each device reduces only the slice it updates), stage 3 "
                    "the parameters too. Every device still runs the whole model on its own "
                    "micro-batch.",
                },
                {
                    "answer": "Everything whole; stage 2 splits the activations",
                    "correct": False,
                    "feedback": "ZeRO's stages split the model states. Activations belong to "
                    "each device's own batch and are never shared.",
                },
                {
                    "answer": "A slice of everything: parameters, gradients and optimiser states",
                    "correct": False,
                    "feedback": "That is stage 3, which FSDP implements: the parameters "
                    "are gathered layer by layer just before they are used.",
                },
            ],
        },
        {
            "question": "Gradient accumulation over k micro-batches: each micro-batch's "
            "cross-entropy is summed over its real (not padded) tokens. What should the "
            "sum be divided by before backward()?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The number of real tokens in all k micro-batches together",
                    "correct": True,
                    "feedback": "Right: then the accumulated gradient is the gradient of the "
                    "mean over every real token, what one big batch gives "
                    "(accumulate_gradients with normalise='tokens').",
                },
                {
                    "answer": "Its own real tokens, times k: the mean of the micro-batches' means",
                    "correct": False,
                    "feedback": "Right only when every micro-batch holds as many real "
                    "tokens. With padding, a token of a short micro-batch weighs more than "
                    "one of a long micro-batch, and the gradient is not the big batch's.",
                },
                {
                    "answer": "Its own real tokens: each micro-batch's mean loss",
                    "correct": False,
                    "feedback": "Then the gradients of k means add up: about k times the "
                    "big batch's gradient (exactly k times when the micro-batches are "
                    "alike), as if the learning rate were k times larger.",
                },
            ],
        },
        {
            "question": "A layer runs under activation checkpointing. What does that cost, "
            "and what does it save?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "It keeps only the layer's input in the forward pass and runs "
                    "the layer forward once more in the backward pass: less memory, about "
                    "one extra forward pass of time",
                    "correct": True,
                    "feedback": "Right: the tensors the layer would save for the backward "
                    "pass are dropped and recomputed when needed. The gradients are the "
                    "same, dropout included: the random state is saved and replayed.",
                },
                {
                    "answer": "It writes the activations to disk and reads them back in the "
                    "backward pass",
                    "correct": False,
                    "feedback": "That is offloading. Checkpointing keeps nothing but the "
                    "input and computes the rest again.",
                },
                {
                    "answer": "It saves the memory of the parameters and their gradients",
                    "correct": False,
                    "feedback": "The parameters and gradients stay as they were; "
                    "checkpointing trades the activations, which grow with batch and length, "
                    "for compute.",
                },
            ],
        },
        {
            "question": "Why does the chapter call torch.utils.checkpoint.checkpoint with "
            "use_reentrant=False?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The reentrant version runs the layer without autograd and "
                    "rebuilds the graph only through its inputs: when no input requires "
                    "grad, the layer's parameters get no gradient",
                    "correct": True,
                    "feedback": "Right: a first layer fed with data, or with frozen "
                    "embeddings, then trains not at all, and PyTorch only warns. The "
                    "non-reentrant version records the graph as usual and has no such trap.",
                },
                {
                    "answer": "The reentrant version gives different gradients whenever the "
                    "layer has dropout",
                    "correct": False,
                    "feedback": "Both versions save the random state and replay it "
                    "(preserve_rng_state=True), so dropout draws the same masks twice.",
                },
                {
                    "answer": "The non-reentrant version keeps all activations, so nothing "
                    "needs recomputing",
                    "correct": False,
                    "feedback": "Both versions drop the layer's activations and recompute "
                    "them; they differ in how they rebuild the graph.",
                },
            ],
        },
        {
            "question": "Under torch.autocast('cpu', dtype=torch.bfloat16), a linear layer's "
            "output goes into a softmax, and logits go into F.cross_entropy. Measured with "
            "lessons.memory.autocast_dtypes on a CPU, in which dtypes do they come out?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Linear: bfloat16. Softmax: bfloat16, since on a CPU it "
                    "follows its input. Cross-entropy: float32",
                    "correct": True,
                    "feedback": "Right: matrix products are cast down, losses up to float32, "
                    "and on a CPU softmax and layer_norm follow their input. PyTorch's "
                    "documentation puts softmax on CUDA's float32 list: the lists differ by "
                    "device, so measure them where you train.",
                },
                {
                    "answer": "Everything in bfloat16: that is what autocast is for",
                    "correct": False,
                    "feedback": "Autocast casts only the operations on its lists: losses run "
                    "in float32, whatever their input.",
                },
                {
                    "answer": "Linear: bfloat16. Softmax and cross-entropy: float32, as on CUDA",
                    "correct": False,
                    "feedback": "Not on a CPU: there, softmax follows its input, so after a "
                    "bfloat16 matrix product it runs in bfloat16.",
                },
            ],
        },
        {
            "question": "Training in float16 with torch.amp.GradScaler, a step's scaled "
            "gradients overflow to inf. What does the scaler do?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "It skips that optimiser step and halves the scale; after a "
                    "run of steps without overflow it doubles the scale again",
                    "correct": True,
                    "feedback": "Right: the parameters stay as they were on the skipped "
                    "step (lessons.memory.grad_scaler_trace counts such steps); the "
                    "backoff_factor is 0.5 and, after growth_interval good steps, the "
                    "growth_factor 2.",
                },
                {
                    "answer": "It clips the infinite gradients to float16's largest value "
                    "and takes the step",
                    "correct": False,
                    "feedback": "An inf carries no direction to clip to. The scaler takes no "
                    "step at all with such gradients.",
                },
                {
                    "answer": "It redoes the backward pass in float32",
                    "correct": False,
                    "feedback": "Nothing is recomputed: the step is skipped, the scale "
                    "lowered, and the next batch tried with it.",
                },
            ],
        },
        {
            "question": "With DistributedDataParallel and gradient accumulation, what is "
            "no_sync() for?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Inside it, backward() skips the all-reduce: the gradients of "
                    "all micro-batches but the last add up locally, and the last backward, "
                    "outside it, averages their sum over the processes once",
                    "correct": True,
                    "feedback": "Right: one all-reduce per optimiser step instead of one per "
                    "micro-batch, and the same result, since averaging is linear.",
                },
                {
                    "answer": "It stops the processes from waiting for each other at the "
                    "optimiser step, so a slow process does not hold the others up",
                    "correct": False,
                    "feedback": "Every process still needs the averaged gradient before "
                    "stepping; no_sync only postpones the averaging to the last "
                    "micro-batch.",
                },
                {
                    "answer": "It turns off the gradient synchronisation for good, for "
                    "models that fit on one device",
                    "correct": False,
                    "feedback": "Without any synchronisation the processes' models would "
                    "drift apart. no_sync applies only inside its with block.",
                },
            ],
        },
        {
            "question": "What does fully sharded data parallelism (FSDP2's fully_shard) "
            "split over the N processes?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "The parameters, their gradients and the optimiser states: "
                    "each process keeps about 1/N of each, and gathers a unit's parameters "
                    "just before the unit runs",
                    "correct": True,
                    "feedback": "Right: ZeRO stage 3. lessons.memory.local_parameter_bytes "
                    "shows each process holding its own slices; the gradients are "
                    "reduce-scattered, each process keeping the average of its slice.",
                },
                {
                    "answer": "The batch only: each process keeps the whole model, as with "
                    "DistributedDataParallel",
                    "correct": False,
                    "feedback": "Both split the batch; DDP keeps the whole model on every "
                    "process, FSDP does not.",
                },
                {
                    "answer": "The layers: process i keeps and runs layers of its own, and "
                    "passes the activations on",
                    "correct": False,
                    "feedback": "That is pipeline parallelism. Under FSDP every process runs "
                    "every layer on its own share of the batch.",
                },
            ],
        },
    ],
)
