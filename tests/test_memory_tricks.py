"""Every trick of lessons.memory's training step (chapter 7, section 2) changes nothing but the
memory: gradient accumulation against one big batch (padding included, and the two ways to get
it wrong), clipping once, activation checkpointing against no checkpointing with dropout on,
Chen et al.'s segment rule counted to the byte, what CPU autocast runs in bfloat16, float32
against bfloat16 training, float16's loss scale, and the smaller tricks. The references are
PyTorch's own: F.cross_entropy's mean over the real tokens, nn.utils.clip_grad_norm_,
torch.utils.checkpoint, torch.autocast and torch.amp.GradScaler."""

from __future__ import annotations

import contextlib
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lessons.core.activations import SavedActivations, peak_memory
from lessons.memory import (
    IGNORE_INDEX,
    CheckpointedLayer,
    accumulate_gradients,
    autocast_dtypes,
    checkpointed_layers,
    deep_stack,
    grad_scaler_trace,
    gradient_bytes,
    precision_curves,
    real_tokens,
    repeating_batches,
    segment_costs,
    summed_token_loss,
    train_step,
)
from lessons.transformer import TransformerLM

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, SEQ, ROWS = 16, 12, 3


def small_lm(dropout: float = 0.0, num_layers: int = 2, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(
        VOCAB, d_model=32, num_heads=2, num_layers=num_layers, ff_dim=64, dropout=dropout
    )


def padded_batch(real_lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of ``SEQ`` positions, with ``IGNORE_INDEX`` targets after each
    row's real length (as `lessons.transformer.lm_batch` pads)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(VOCAB, (len(real_lengths), SEQ), generator=generator)
    targets = torch.randint(VOCAB, (len(real_lengths), SEQ), generator=generator)
    for row, length in enumerate(real_lengths):
        targets[row, length:] = IGNORE_INDEX
    return inputs, targets


# Three micro-batches holding 36, 9 and 20 real tokens: very different, as padding makes them.
UNEVEN = [padded_batch([12, 12, 12], 1), padded_batch([4, 3, 2], 2), padded_batch([12, 6, 2], 3)]
# Three micro-batches holding 24 real tokens each.
EVEN = [padded_batch([8, 8, 8], 4), padded_batch([12, 10, 2], 5), padded_batch([6, 6, 12], 6)]


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def big_batch_gradients(model: nn.Module, micro_batches) -> dict[str, torch.Tensor]:
    """The reference: one batch of every row, PyTorch's mean over its non-ignored targets."""
    inputs = torch.cat([inputs for inputs, _ in micro_batches])
    targets = torch.cat([targets for _, targets in micro_batches])
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).backward()
    return gradients(model)


def accumulated(model: nn.Module, micro_batches, **options) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, micro_batches, **options)
    return gradients(model)


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[name] - b[name]).abs().max()) for name in a)


# --------------------------------------------------------------------------------------
# Gradient accumulation
# --------------------------------------------------------------------------------------


def test_the_micro_batches_hold_different_numbers_of_real_tokens():
    assert [real_tokens(batch) for batch in UNEVEN] == [36, 9, 20]
    assert [real_tokens(batch) for batch in EVEN] == [24, 24, 24]


def test_summed_token_loss_is_pytorchs_mean_times_the_real_tokens():
    model = small_lm()
    inputs, targets = UNEVEN[2]
    mean = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
    summed = summed_token_loss(model, UNEVEN[2])
    assert summed.item() == pytest.approx(mean.item() * 20, rel=1e-6)


@pytest.mark.parametrize("micro_batches", [UNEVEN, EVEN], ids=["uneven", "even"])
def test_accumulation_divided_by_all_real_tokens_equals_one_big_batch(micro_batches):
    model = small_lm()
    reference = big_batch_gradients(model, micro_batches)
    ours = accumulated(model, micro_batches, normalise="tokens")
    assert max_difference(ours, reference) < 1e-6
    assert max(float(g.abs().max()) for g in reference.values()) > 1e-2  # not all zero


def test_the_mean_of_micro_batch_means_is_wrong_with_padding():
    """nanoGPT's division (each micro-batch's mean, divided by k) weighs the 9 tokens of the
    short micro-batch as much as the 36 of the long one: far from the big batch."""
    model = small_lm()
    reference = big_batch_gradients(model, UNEVEN)
    wrong = accumulated(model, UNEVEN, normalise="micro-batches")
    assert max_difference(wrong, reference) > 1e-3


def test_the_mean_of_micro_batch_means_is_right_without_padding():
    model = small_lm()
    reference = big_batch_gradients(model, EVEN)
    assert max_difference(accumulated(model, EVEN, normalise="micro-batches"), reference) < 1e-6


def test_forgetting_to_divide_by_k_gives_k_times_the_gradients():
    model = small_lm()
    right = accumulated(model, EVEN, normalise="tokens")
    forgot = accumulated(model, EVEN, normalise="none")
    k = len(EVEN)
    for name, gradient in right.items():
        torch.testing.assert_close(forgot[name], k * gradient, rtol=1e-5, atol=1e-7)


def test_clipping_once_on_the_accumulated_gradient_equals_clipping_the_big_batch():
    """With SGD at learning rate 1 the update is minus the (clipped) gradient; clip_grad_norm_
    on the big batch's gradient is the reference."""
    max_norm = 0.5
    model = small_lm()
    reference = big_batch_gradients(model, UNEVEN)
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in reference.values()))
    assert norm > 2 * max_norm  # the clipping really rescales
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.grad = reference[name].clone()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    clipped = gradients(model)

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    result = train_step(model, UNEVEN, optimizer, clip_grad_norm=max_norm)
    assert result.grad_norm == pytest.approx(norm, rel=1e-5)
    assert result.tokens == 65 and not result.skipped
    for name, p in model.named_parameters():
        torch.testing.assert_close(before[name] - p.detach(), clipped[name], rtol=0, atol=1e-6)


def test_train_step_reports_the_mean_loss_per_real_token():
    model = small_lm()
    inputs = torch.cat([inputs for inputs, _ in UNEVEN])
    targets = torch.cat([targets for _, targets in UNEVEN])
    with torch.no_grad():
        mean = float(F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()))
    result = train_step(model, UNEVEN, torch.optim.SGD(model.parameters(), lr=0.1))
    assert result.loss == pytest.approx(mean, rel=1e-6)


def test_accumulation_checks_its_arguments():
    model = small_lm()
    with pytest.raises(ValueError, match="normalise"):
        accumulate_gradients(model, EVEN, normalise="mean")
    with pytest.raises(ValueError, match="micro_batches"):
        accumulate_gradients(model, [])
    with pytest.raises(ValueError, match="micro_batches"):
        accumulate_gradients(model, [padded_batch([0, 0], 7)])


# --------------------------------------------------------------------------------------
# Activation checkpointing
# --------------------------------------------------------------------------------------


def dropout_gradients(checkpoint: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    model = small_lm(dropout=0.3).train()
    torch.manual_seed(seed)
    accumulate_gradients(model, EVEN, checkpoint=checkpoint)
    return gradients(model)


def test_checkpointing_gives_the_same_gradients_with_dropout_on():
    plain = dropout_gradients(checkpoint=False)
    checkpointed = dropout_gradients(checkpoint=True)
    assert max_difference(checkpointed, plain) < 1e-6
    # dropout really draws: another seed gives other gradients
    assert max_difference(dropout_gradients(checkpoint=False, seed=1), plain) > 1e-3


def test_without_replaying_the_random_state_dropout_draws_other_masks():
    """What preserve_rng_state=True (CheckpointedLayer's default) prevents: recomputed without
    the saved random state, dropout draws new masks and the gradients are wrong."""
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    x = torch.randn(16, 8)
    grads = {}
    for preserve in (True, False):
        layer.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        plain = layer(x).sum()
        plain.backward()
        expected = layer[0].weight.grad.clone()
        layer.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        torch.utils.checkpoint.checkpoint(
            layer, x, use_reentrant=False, preserve_rng_state=preserve
        ).sum().backward()
        grads[preserve] = float((layer[0].weight.grad - expected).abs().max())
    assert grads[True] == 0.0
    assert grads[False] > 1e-2


def saved_bytes(model: nn.Module, checkpoint: bool) -> int:
    ids = torch.randint(VOCAB, (4, 24), generator=torch.Generator().manual_seed(0))
    with checkpointed_layers(model) if checkpoint else contextlib.nullcontext():
        with SavedActivations(exclude=model.parameters()) as saved:
            model(ids)
    return saved.bytes


def test_checkpointing_saves_one_input_per_layer_instead_of_its_activations():
    """Measured on batch 4, 24 tokens, d_model 32, dropout 0.1: each layer added to the model
    saves 254,208 bytes without checkpointing, and only its input, (4, 24, 32) in float32
    (12,288 bytes), with it."""
    plain = [saved_bytes(small_lm(0.1, layers), checkpoint=False) for layers in (2, 3)]
    checkpointed = [saved_bytes(small_lm(0.1, layers), checkpoint=True) for layers in (2, 3)]
    assert plain == [547_008, 801_216]
    assert checkpointed == [63_744, 76_032]
    assert plain[1] - plain[0] == 254_208
    assert checkpointed[1] - checkpointed[0] == 4 * 24 * 32 * 4


def test_checkpointed_layers_leaves_chapter_4s_model_as_it_was():
    model = small_lm()
    layers = list(model.decoder.layers)
    keys = list(model.state_dict())
    with checkpointed_layers(model):
        assert all(isinstance(layer, CheckpointedLayer) for layer in model.decoder.layers)
    assert list(model.decoder.layers) == layers
    assert list(model.state_dict()) == keys
    with pytest.raises(TypeError, match="model: expected a model whose layers"):
        with checkpointed_layers(nn.Linear(2, 2)):
            pass


def test_reentrant_checkpointing_leaves_the_parameters_without_gradients():
    """The trap CheckpointedLayer's docstring names: with use_reentrant=True and an input that
    does not require grad, PyTorch warns and the checkpointed layer's parameters get no
    gradient; use_reentrant=False (CheckpointedLayer) gives them theirs."""
    torch.manual_seed(0)
    first, second = nn.Linear(4, 4), nn.Linear(4, 1)
    x = torch.randn(3, 4)  # data: does not require grad
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        hidden = torch.utils.checkpoint.checkpoint(first, x, use_reentrant=True)
    second(hidden).sum().backward()
    assert first.weight.grad is None and second.weight.grad is not None

    second.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second(CheckpointedLayer(first)(x)).sum().backward()
    assert first.weight.grad is not None and float(first.weight.grad.abs().sum()) > 0


# --------------------------------------------------------------------------------------
# Chen et al.'s √n segments
# --------------------------------------------------------------------------------------


def test_segments_save_k_plus_n_over_k_activations_least_at_root_n():
    n, batch, width = 16, 8, 32
    torch.manual_seed(0)
    stack = deep_stack(n, width)
    x = torch.randn(batch, width, requires_grad=True)
    costs = segment_costs(stack, x, [1, 2, 4, 8, 16], repeats=1)
    tensor = batch * width * 4
    assert [cost.saved_bytes for cost in costs] == [(k + n // k) * tensor for k in (1, 2, 4, 8, 16)]
    assert [cost.saved_bytes // tensor for cost in costs] == [17, 10, 8, 10, 17]
    assert min(costs, key=lambda cost: cost.saved_bytes).segments == 4  # √16
    assert all(cost.seconds > 0 for cost in costs)


def test_segments_leave_the_gradients_unchanged():
    torch.manual_seed(0)
    stack = deep_stack(8, 16)
    x = torch.randn(4, 16, requires_grad=True)
    stack(x).sum().backward()
    plain = [p.grad.clone() for p in stack.parameters()]
    stack.zero_grad(set_to_none=True)
    torch.utils.checkpoint.checkpoint_sequential(stack, 4, x, use_reentrant=False).sum().backward()
    for reference, p in zip(plain, stack.parameters(), strict=True):
        torch.testing.assert_close(p.grad, reference, rtol=0, atol=1e-6)


def test_segment_costs_checks_its_arguments():
    stack = deep_stack(4, 8)
    x = torch.randn(2, 8, requires_grad=True)
    with pytest.raises(ValueError, match="segments: expected at most 4"):
        segment_costs(stack, x, [8])
    with pytest.raises(TypeError, match="stack: expected an nn.Sequential"):
        segment_costs(nn.Linear(8, 8), x, [1])


# --------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------


def test_cpu_autocast_runs_matrix_products_in_bfloat16_and_losses_in_float32():
    """Measured on a CPU: matrix products are cast down, losses up, and softmax, layer norm
    and the rest follow their input (CUDA's autocast would run softmax, log_softmax and
    layer_norm in float32 whatever their input)."""
    table = autocast_dtypes("cpu", torch.bfloat16)
    low, high = "bfloat16", "float32"
    assert table["linear"] == table["matmul"] == (low, low)
    assert table["cross_entropy"] == table["mse_loss"] == (high, high)
    for name in ("softmax", "log_softmax", "layer_norm", "gelu", "exp", "sum"):
        assert table[name] == (high, low), name


def test_bfloat16_training_follows_float32_within_0_01_nats():
    """50 steps of the same small model, float32 against bfloat16 autocast on a CPU:
    measured, the losses never differ by more than 0.0015 nats; the test allows 0.01."""
    curves = precision_curves(50, progress=False)
    full, half = curves["float32"], curves["bfloat16"]
    assert len(full) == len(half) == 50
    assert max(abs(a - b) for a, b in zip(full, half, strict=True)) < 0.01
    assert full[-1] < 0.6 * full[0] and half[-1] < 0.6 * half[0]  # both learned
    assert full != half  # bfloat16 did change the arithmetic


def test_an_overflowing_float16_step_is_skipped_and_backs_the_scale_off():
    model = small_lm()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24, backoff_factor=0.5)
    result = train_step(model, EVEN, optimizer, autocast_dtype=torch.float16, scaler=scaler)
    assert result.skipped and not math.isfinite(result.grad_norm)
    assert scaler.get_scale() == 2.0**23
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), before[name]), name


def test_the_scaler_unscales_before_clipping():
    """A clean float16 step at scale 2¹⁰ reports the true gradient norm (float32's, within
    float16's precision), not 1,024 times it: clip_grad_norm clips the true gradients."""
    model = small_lm()
    float32 = accumulated(model, EVEN)
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in float32.values()))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = train_step(
        model, EVEN, optimizer, autocast_dtype=torch.float16, scaler=scaler, clip_grad_norm=0.1
    )
    assert not result.skipped and scaler.get_scale() == 2.0**10
    assert result.grad_norm == pytest.approx(norm, rel=1e-2)


def test_checkpointing_under_autocast_replays_autocast_too():
    """The tricks combine: checkpointed layers recomputed under bfloat16 autocast give the
    gradients of bfloat16 autocast without checkpointing."""
    model = small_lm(dropout=0.3).train()
    runs = []
    for checkpoint in (False, True):
        torch.manual_seed(0)
        runs.append(accumulated(model, EVEN, checkpoint=checkpoint, autocast_dtype=torch.bfloat16))
    assert max_difference(runs[1], runs[0]) < 1e-6
    torch.manual_seed(0)
    float32 = accumulated(model, EVEN)  # the same dropout masks, without autocast
    assert max_difference(runs[0], float32) > 1e-4  # bfloat16 did change the gradients


def test_the_loss_scale_backs_off_on_overflow_and_grows_after_clean_steps():
    """Measured: from 2²⁴, seven steps overflow and halve the scale down to 2¹⁷; three clean
    steps double it to 2¹⁸, which overflows again: 8 of 12 steps skipped."""
    growth_interval = 3
    trace = grad_scaler_trace(12, init_scale=2.0**24, growth_interval=growth_interval)
    clean_in_a_row = 0
    for row in trace:
        if row.skipped:
            clean_in_a_row = 0
            assert row.next_scale == row.scale * 0.5
        else:
            clean_in_a_row += 1
            grows = clean_in_a_row == growth_interval
            clean_in_a_row %= growth_interval
            assert row.next_scale == row.scale * (2.0 if grows else 1.0)
    assert [row.skipped for row in trace] == [True] * 7 + [False] * 3 + [True, False]
    assert sum(row.skipped for row in trace) == 8
    assert trace[7].scale == 2.0**17 and trace[10].scale == 2.0**18


def test_repeating_batches_repeat_their_pattern():
    (inputs, targets), *_ = repeating_batches(1, batch=2, seq=12, period=4)
    assert inputs.shape == targets.shape == (2, 12)
    torch.testing.assert_close(inputs[:, 4:], inputs[:, :-4])
    torch.testing.assert_close(targets, torch.cat([inputs[:, 1:], inputs[:, 8:9]], dim=1))


# --------------------------------------------------------------------------------------
# The smaller tricks
# --------------------------------------------------------------------------------------


def test_zero_grad_set_to_none_frees_the_gradients_and_trains_the_same():
    n_params = sum(p.numel() for p in small_lm().parameters())
    finals = []
    for set_to_none in (False, True):
        model = small_lm()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for batch in EVEN:
            optimizer.zero_grad(set_to_none=set_to_none)
            (summed_token_loss(model, batch) / real_tokens(batch)).backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=set_to_none)
        assert gradient_bytes(model) == (0 if set_to_none else 4 * n_params)
        finals.append([p.detach().clone() for p in model.parameters()])
    for kept, freed in zip(*finals, strict=True):
        assert torch.equal(kept, freed)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_evaluation_without_autograd_saves_nothing_and_gives_the_same_outputs(context):
    model = small_lm(dropout=0.1).eval()
    ids = torch.randint(VOCAB, (4, 24), generator=torch.Generator().manual_seed(0))
    with SavedActivations(exclude=model.parameters()) as tracked:
        reference = model(ids)
    with context(), SavedActivations(exclude=model.parameters()) as untracked:
        output = model(ids)
    assert tracked.bytes == 390_336 and untracked.bytes == 0  # eval: no dropout masks
    assert torch.equal(output, reference)
    assert not output.requires_grad


def mlp(inplace: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(inplace=inplace), nn.Linear(256, 64))


def test_in_place_relu_lowers_the_forward_peak_by_one_hidden_tensor():
    """ReLU saves its output either way (the same bytes for backward); in place, the hidden
    tensor (32, 256) and its ReLU never exist together. Measured, the forward pass peaks at
    both of them (65,536 bytes) out of place, and at the hidden tensor and the output
    (40,960 bytes) in place."""
    x = torch.randn(32, 64, requires_grad=True)
    hidden, out = 32 * 256 * 4, 32 * 64 * 4
    peaks, saved, grads = {}, {}, {}
    for inplace in (False, True):
        model = mlp(inplace)
        peaks[inplace] = peak_memory(lambda model=model: model(x))
        with SavedActivations(exclude=model.parameters()) as activations:
            y = model(x)
        saved[inplace] = activations.bytes
        y.pow(2).sum().backward()
        grads[inplace] = [p.grad for p in model.parameters()]
    assert peaks == {False: 2 * hidden, True: hidden + out}
    assert saved[False] == saved[True] == 32 * 64 * 4 + hidden
    for plain, in_place in zip(grads[False], grads[True], strict=True):
        assert torch.equal(plain, in_place)
