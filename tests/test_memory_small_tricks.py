"""The smaller tricks of chapter 7 (lessons.memory, section 4) change nothing but the memory:
Adam with its states offloaded to another device steps the parameters exactly as
torch.optim.Adam does, and keeps no state on the computing device; freeing the logits before
the backward pass lowers the peak of a step by their bytes and leaves the gradients as they
were. The references are PyTorch's own: torch.optim.Adam and the profiler's memory events
(lessons.core.activations.peak_memory). Without a GPU the model and the optimiser share the
CPU, so the offloading tests check the bookkeeping (which device holds which tensor); the GPU
memory it saves is measured by scripts/gpu_memory_check.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lessons.core.activations import peak_memory
from lessons.memory import (
    IGNORE_INDEX,
    OffloadedAdam,
    backward_step,
    optimizer_state_bytes,
    repeating_batches,
    train_step,
)
from lessons.transformer import TransformerLM

pytestmark = pytest.mark.usefixtures("one_thread")


def small_lm(vocab_size: int = 16, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(
        vocab_size, d_model=32, num_heads=2, num_layers=2, ff_dim=64, max_len=32, dropout=0.0
    )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------
# Optimiser states offloaded
# --------------------------------------------------------------------------------------


def train(model: nn.Module, optimizer, steps: int = 6) -> list[float]:
    return [train_step(model, [batch], optimizer).loss for batch in repeating_batches(steps)]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_offloaded_adam_steps_the_parameters_as_torch_adam_does(weight_decay):
    plain, offloaded = small_lm(), small_lm()
    losses = train(plain, torch.optim.Adam(plain.parameters(), lr=3e-3, weight_decay=weight_decay))
    offloaded_losses = train(
        offloaded,
        OffloadedAdam(offloaded.parameters(), lr=3e-3, weight_decay=weight_decay),
    )
    assert offloaded_losses == pytest.approx(losses, abs=1e-6)
    assert losses[-1] < losses[0] - 0.1  # it trains: the parameters did change
    for (name, p), q in zip(plain.named_parameters(), offloaded.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6), name


def test_offloaded_adam_keeps_every_state_on_the_offload_device():
    """Plain Adam keeps its two states beside each parameter (8 bytes per float32 parameter)
    and a one-value ``step`` per parameter on the CPU; the offloaded one keeps the master
    copy too (12 bytes per parameter) and all of it on ``offload_device``, in tensors of its
    own: none shares memory with the model, so the computing device holds no state."""
    n = parameter_count(small_lm())
    plain_model, offloaded_model = small_lm(), small_lm()
    plain = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    offloaded = OffloadedAdam(offloaded_model.parameters(), lr=1e-3, offload_device="cpu")
    tensors = len(list(plain_model.parameters()))
    assert optimizer_state_bytes(plain) == {}  # torch.optim makes its states at the first step
    assert optimizer_state_bytes(offloaded) == {"cpu": 4 * n}  # the master copies, at once
    train(plain_model, plain, steps=1)
    train(offloaded_model, offloaded, steps=1)
    assert optimizer_state_bytes(plain) == {"cpu": 8 * n + 4 * tensors}
    assert optimizer_state_bytes(offloaded) == {"cpu": 12 * n + 4 * tensors}
    states = offloaded.state_tensors()
    assert {t.device for t in states} == {offloaded.offload_device} == {torch.device("cpu")}
    model_memory = {p.untyped_storage().data_ptr() for p in offloaded_model.parameters()}
    model_memory |= {p.grad.untyped_storage().data_ptr() for p in offloaded_model.parameters()}
    assert not model_memory & {t.untyped_storage().data_ptr() for t in states}
    assert all(master.grad is None for master in offloaded.masters)  # the copies are freed


def test_offloaded_adam_keeps_float32_masters_of_bfloat16_parameters():
    torch.manual_seed(0)
    layer = nn.Linear(8, 8).to(torch.bfloat16)
    optimizer = OffloadedAdam(layer.parameters(), lr=1e-3)
    assert [m.dtype for m in optimizer.masters] == [torch.float32, torch.float32]
    layer(torch.randn(4, 8, dtype=torch.bfloat16)).float().pow(2).sum().backward()
    optimizer.step()
    for p, master in zip(layer.parameters(), optimizer.masters, strict=True):
        assert p.dtype == torch.bfloat16
        assert torch.equal(p, master.to(torch.bfloat16))  # the master, rounded
        # a step of 1e-3 is finer than bfloat16's spacing (2⁻⁹ near 0.3): only the master has it
        assert not torch.equal(p.float(), master)


def test_offloaded_adam_leaves_parameters_without_gradients_and_zeroes_or_frees():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = OffloadedAdam(model.parameters(), lr=0.1)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    model.bias.grad = torch.ones(2)
    optimizer.step()
    assert torch.equal(model.weight, weight)
    # Adam's first step is lr times the gradient's sign (m / √v = 1), up to eps
    assert torch.allclose(model.bias.detach(), bias - 0.1, rtol=0, atol=1e-6)
    optimizer.zero_grad(set_to_none=False)
    assert torch.equal(model.bias.grad, torch.zeros(2)) and model.weight.grad is None
    optimizer.zero_grad()
    assert model.bias.grad is None


def test_offloading_checks_its_arguments():
    with pytest.raises(TypeError, match="params: expected a floating-point tensor, got"):
        OffloadedAdam([torch.zeros(2, dtype=torch.long)])
    with pytest.raises(ValueError, match="params: expected at least one parameter"):
        OffloadedAdam([torch.zeros(2)])
    with pytest.raises(TypeError, match="optimizer: expected a torch.optim.Optimizer"):
        optimizer_state_bytes("adam")


# --------------------------------------------------------------------------------------
# Freeing references before the backward pass
# --------------------------------------------------------------------------------------

VOCAB, BATCH, SEQ = 512, 4, 32


def big_vocabulary_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(VOCAB, (BATCH, SEQ), generator=generator)
    targets = torch.randint(VOCAB, (BATCH, SEQ), generator=generator)
    targets[0, 20:] = IGNORE_INDEX  # padding, left out of the mean
    return inputs, targets


def test_freeing_the_logits_lowers_the_peak_by_their_bytes_and_changes_no_gradient():
    batch = big_vocabulary_batch()
    logits_bytes = BATCH * SEQ * VOCAB * 4
    peaks, grads, losses = {}, {}, {}
    for free_logits in (False, True):
        model = small_lm(VOCAB)
        peaks[free_logits] = peak_memory(
            lambda model=model, free=free_logits: losses.setdefault(
                free, backward_step(model, batch, free_logits=free)
            )
        )
        grads[free_logits] = [p.grad for p in model.parameters()]
    assert peaks[False] - peaks[True] == logits_bytes
    assert peaks[True] > logits_bytes  # the rest of the step is still there
    assert losses[False] == losses[True]
    for kept, freed in zip(grads[False], grads[True], strict=True):
        assert torch.equal(kept, freed)


def test_backward_step_is_pytorchs_mean_cross_entropy_over_the_real_tokens():
    inputs, targets = batch = big_vocabulary_batch()
    model, reference_model = small_lm(VOCAB), small_lm(VOCAB)
    loss = backward_step(model, batch)
    reference = F.cross_entropy(reference_model(inputs).flatten(0, 1), targets.flatten())
    reference.backward()
    assert loss == pytest.approx(reference.item(), abs=1e-6)
    for p, q in zip(model.parameters(), reference_model.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, rtol=0, atol=1e-7)
