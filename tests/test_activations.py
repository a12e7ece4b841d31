"""lessons.core.activations: counting the bytes autograd saves for backward."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lessons.core.activations import SavedActivations, cuda_peak_memory, peak_memory


def test_each_saved_storage_counts_once_with_its_size() -> None:
    x = torch.randn(10, 20, requires_grad=True)  # 800 bytes in float32
    with SavedActivations() as saved:
        y = torch.exp(x)  # exp saves its result: 800 bytes
        z = y * y.view(200).view(10, 20)  # mul saves both factors: one storage, seen twice
    assert saved.bytes == 800  # y's storage, counted once
    assert saved.tensors == 3  # exp's result, then y and a view of it for mul
    z.sum().backward()
    assert torch.allclose(x.grad, 2 * torch.exp(2 * x))


def test_parameters_can_be_left_out() -> None:
    layer = nn.Linear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)  # its gradient needs the weight
    with SavedActivations() as everything:
        layer(x)
    with SavedActivations(exclude=layer.parameters()) as activations:
        layer(x)
    assert activations.bytes == x.nelement() * 4  # the input, for the weight's gradient
    assert everything.bytes == activations.bytes + layer.weight.nelement() * 4


def test_checkpointing_saves_only_the_block_input() -> None:
    """Against torch.utils.checkpoint: a checkpointed block keeps only its input."""
    block = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32), nn.Tanh())
    x = torch.randn(8, 32, requires_grad=True)
    with SavedActivations(exclude=block.parameters()) as plain:
        block(x)
    with SavedActivations(exclude=block.parameters()) as checkpointed:
        checkpoint(block, x, use_reentrant=False)
    assert checkpointed.bytes == x.nelement() * 4
    # plain: x, the ReLU's output (used by ReLU's backward and by Linear 2), tanh's output
    assert plain.bytes == (8 * 32 + 8 * 64 + 8 * 32) * 4
    assert plain.by_shape == {(8, 32): 2 * 8 * 32 * 4, (8, 64): 8 * 64 * 4}


def test_nothing_is_counted_without_grad() -> None:
    layer = nn.Linear(4, 4)
    with torch.no_grad(), SavedActivations() as saved:
        layer(torch.randn(2, 4))
    assert saved.bytes == 0 and saved.tensors == 0
    assert repr(saved) == "SavedActivations(0 bytes in 0 storages)"


def test_peak_memory_sees_a_short_lived_intermediate() -> None:
    """Three 1,000 x 1,000 float32 tensors are alive at once, then two are freed: the peak
    is 12 MB although the call ends holding one 4 MB tensor (and a scalar)."""

    def three_then_one() -> torch.Tensor:
        a = torch.randn(1000, 1000)
        b = a @ a
        c = b.softmax(-1)
        del a, b
        return c.sum()

    assert peak_memory(three_then_one) == 3 * 1000 * 1000 * 4


def test_peak_memory_counts_nothing_that_existed_before() -> None:
    x = torch.randn(500, 500)
    assert peak_memory(lambda: x.view(-1)) == 0
    added = peak_memory(lambda: x + 1)  # the sum, and a few bytes for the scalar 1
    assert 500 * 500 * 4 <= added < 500 * 500 * 4 + 1024
    with pytest.raises(TypeError, match="fn"):
        peak_memory(x)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the guard of a machine without CUDA")
def test_cuda_peak_memory_refuses_to_measure_without_a_gpu() -> None:
    """The trap it guards against: without CUDA, torch reports a peak of 0, not an error."""
    assert torch.cuda.max_memory_allocated() == 0
    with pytest.raises(RuntimeError, match="no CUDA device"):
        cuda_peak_memory(lambda: torch.zeros(1000))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_memory_sees_a_short_lived_tensor() -> None:
    def three_then_one() -> torch.Tensor:
        a = torch.ones(1024, 1024, device="cuda")  # 4 MiB each
        b = a + 1
        c = b * 2
        del a, b
        return c

    assert cuda_peak_memory(three_then_one) >= 3 * 4 * 2**20
