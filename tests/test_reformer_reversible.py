"""Reversible residual layers and chunked feed-forward layers (chapter 6, sections 3-4).

The references are autograd itself, run on the same blocks as an ordinary residual
stack, and the bytes autograd saves (`lessons.core.activations.SavedActivations`).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lessons.core.activations import SavedActivations
from lessons.reformer import (
    ChunkedFeedForward,
    FeedForwardSublayer,
    LSHSelfAttention,
    ReversibleBlock,
    ReversibleStack,
    SelfAttentionSublayer,
)
from lessons.transformer import FeedForward

D_MODEL, HEADS, D_FF = 8, 2, 16


def make_blocks(layers: int, dropout: float = 0.1, seed: int = 0) -> list[ReversibleBlock]:
    """``layers`` Reformer blocks in float64: attention as F, feed-forward as G."""
    torch.manual_seed(seed)
    return [
        ReversibleBlock(
            SelfAttentionSublayer(D_MODEL, HEADS, dropout=dropout),
            FeedForwardSublayer(D_MODEL, D_FF, dropout=dropout),
        ).double()
        for _ in range(layers)
    ]


def inputs(seed: int = 1, batch: int = 2, seq: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, seq, D_MODEL, dtype=torch.float64, generator=generator)


def gradients(stack: ReversibleStack, x: torch.Tensor, seed: int = 7) -> list[torch.Tensor]:
    """The output and the gradients of a fixed weighted sum w.r.t. ``x`` and every parameter."""
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same dropout masks for every stack
    out = stack(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    loss = (out * weights).sum()
    grads = torch.autograd.grad(loss, [x, *stack.parameters()])
    return [out.detach(), *grads]


def test_block_inverse_recovers_inputs():
    torch.manual_seed(0)
    block = make_blocks(1, dropout=0.0)[0]
    x1, x2 = inputs(1), inputs(2)
    with torch.no_grad():
        y1, y2 = block(x1, x2)
        back1, back2 = block.inverse(y1, y2)
    assert (y1 - x1).abs().max() > 0.1  # the block does change its inputs
    assert torch.allclose(back1, x1, rtol=0, atol=1e-12)
    assert torch.allclose(back2, x2, rtol=0, atol=1e-12)


def test_block_is_the_two_residual_equations():
    block = make_blocks(1, dropout=0.0)[0].eval()
    x1, x2 = inputs(1), inputs(2)
    y1, y2 = block(x1, x2)
    assert torch.equal(y1, x1 + block.f(x2))
    assert torch.equal(y2, x2 + block.g(y1))


def test_stack_output_concatenates_the_two_streams():
    blocks = make_blocks(2, dropout=0.0)
    x = inputs()
    out = ReversibleStack(blocks)(x)
    assert out.shape == (2, 5, 2 * D_MODEL)
    y1, y2 = x, x
    for block in blocks:
        y1, y2 = block(y1, y2)
    assert torch.allclose(out, torch.cat([y1, y2], dim=-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("layers", [1, 3])
def test_reversible_gradients_equal_plain_stack_with_dropout(layers):
    blocks = make_blocks(layers, dropout=0.1)
    x = inputs()
    plain = gradients(ReversibleStack(blocks, reversible=False).train(), x)
    reversible = gradients(ReversibleStack(blocks).train(), x)
    assert torch.allclose(reversible[0], plain[0], rtol=0, atol=1e-12)
    for ours, reference in zip(reversible[1:], plain[1:], strict=True):
        assert reference.abs().max() > 0  # every parameter takes part
        assert torch.allclose(ours, reference, rtol=0, atol=1e-10)
    # dropout is on: another seed draws other masks and other gradients
    other = gradients(ReversibleStack(blocks, reversible=False).train(), x, seed=8)
    assert (other[1] - plain[1]).abs().max() > 1e-3


def test_parameters_shared_by_blocks_sum_their_gradients():
    torch.manual_seed(0)
    shared = SelfAttentionSublayer(D_MODEL, HEADS, dropout=0.1).double()
    blocks = [
        ReversibleBlock(shared, FeedForwardSublayer(D_MODEL, D_FF, dropout=0.1).double())
        for _ in range(3)
    ]
    x = inputs()
    plain = gradients(ReversibleStack(blocks, reversible=False).train(), x)
    reversible = gradients(ReversibleStack(blocks).train(), x)
    for ours, reference in zip(reversible, plain, strict=True):
        assert torch.allclose(ours, reference, rtol=0, atol=1e-10)


class _HFAttention(nn.Module):
    """Our F behind the interface Hugging Face's ``ReformerLayer`` calls its attention with."""

    def __init__(self, f: nn.Module):
        super().__init__()
        self.f = f

    def forward(self, hidden_states: torch.Tensor, **_: object) -> SimpleNamespace:
        return SimpleNamespace(
            hidden_states=self.f(hidden_states), attention_probs=None, buckets=None
        )


def test_reversible_stack_matches_hugging_face_reversible_function():
    """Output and gradients equal those of HF's ``_ReversibleFunction`` on the same F, G."""
    modeling = pytest.importorskip("transformers.models.reformer.modeling_reformer")
    blocks = make_blocks(3, dropout=0.0)
    layers = []
    for block in blocks:  # a ReformerLayer holding our sublayers (its own need a config)
        layer = modeling.ReformerLayer.__new__(modeling.ReformerLayer)
        nn.Module.__init__(layer)
        layer.attention, layer.feed_forward = _HFAttention(block.f), block.g
        layer.attention_seed = layer.feed_forward_seed = None
        layers.append(layer.train())
    x = inputs().requires_grad_()
    out = modeling._ReversibleFunction.apply(
        torch.cat([x, x], dim=-1), layers, None, None, [], [], None, False, None, False, False
    )
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weights).sum().backward()
    stack = ReversibleStack(blocks).train()
    ours = gradients(stack, x.detach())
    assert torch.allclose(ours[0], out.detach(), rtol=0, atol=1e-12)
    assert torch.allclose(ours[1], x.grad, rtol=0, atol=1e-10)
    for parameter, grad in zip(stack.parameters(), ours[2:], strict=True):
        assert torch.allclose(grad, parameter.grad, rtol=0, atol=1e-10)


def test_without_replaying_the_rng_gradients_are_wrong():
    blocks = make_blocks(3, dropout=0.1)
    x = inputs()
    plain = gradients(ReversibleStack(blocks, reversible=False).train(), x)
    unreplayed = gradients(ReversibleStack(blocks, replay_rng=False).train(), x)
    assert torch.allclose(unreplayed[0], plain[0], rtol=0, atol=1e-12)  # forward is fine
    worst = max((a - b).abs().max().item() for a, b in zip(unreplayed, plain, strict=True))
    assert worst > 1e-3


class RandomRotation(nn.Module):
    """A sublayer that draws a fresh random rotation each call, as LSH attention does."""

    def __init__(self, d_model: int):
        super().__init__()
        self.linear = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rotation = torch.randn(x.shape[-1], x.shape[-1], dtype=x.dtype)
        return torch.tanh(self.linear(x) @ rotation)


def test_replay_covers_random_draws_beyond_dropout():
    torch.manual_seed(0)
    blocks = [
        ReversibleBlock(RandomRotation(D_MODEL), FeedForwardSublayer(D_MODEL, D_FF)).double()
        for _ in range(2)
    ]
    x = inputs()
    plain = gradients(ReversibleStack(blocks, reversible=False), x)
    reversible = gradients(ReversibleStack(blocks), x)
    for ours, reference in zip(reversible, plain, strict=True):
        assert torch.allclose(ours, reference, rtol=0, atol=1e-10)
    unreplayed = gradients(ReversibleStack(blocks, replay_rng=False), x)
    assert max((a - b).abs().max().item() for a, b in zip(unreplayed, plain, strict=True)) > 1e-3


def test_replay_covers_lsh_attention_hashing_with_new_rotations():
    """F = LSH attention without ``hash_seed``: each call draws new rotations and buckets."""
    torch.manual_seed(0)
    blocks = [
        ReversibleBlock(
            nn.Sequential(
                nn.LayerNorm(D_MODEL),
                LSHSelfAttention(
                    D_MODEL,
                    HEADS,
                    D_MODEL // HEADS,
                    num_buckets=4,
                    num_hashes=2,
                    chunk_length=4,
                    dropout=0.1,
                ),
                nn.Linear(D_MODEL, D_MODEL),
            ),
            FeedForwardSublayer(D_MODEL, D_FF, dropout=0.1),
        ).double()
        for _ in range(2)
    ]
    x = inputs(seq=16)
    plain = gradients(ReversibleStack(blocks, reversible=False).train(), x)
    reversible = gradients(ReversibleStack(blocks).train(), x)
    for ours, reference in zip(reversible, plain, strict=True):
        assert torch.allclose(ours, reference, rtol=0, atol=1e-10)
    other = gradients(ReversibleStack(blocks, reversible=False).train(), x, seed=8)
    assert (other[0] - plain[0]).abs().max() > 1e-3  # other rotations, other outputs
    unreplayed = gradients(ReversibleStack(blocks, replay_rng=False).train(), x)
    assert max((a - b).abs().max().item() for a, b in zip(unreplayed, plain, strict=True)) > 1e-3


def test_backward_leaves_the_global_rng_as_it_was():
    stack = ReversibleStack(make_blocks(2)).train()
    x = inputs().requires_grad_()
    out = stack(x)
    state = torch.get_rng_state()
    out.sum().backward()
    assert torch.equal(torch.get_rng_state(), state)


def test_loss_backward_fills_parameter_grads():
    blocks = make_blocks(2, dropout=0.0)
    x = inputs()
    reference = gradients(ReversibleStack(blocks, reversible=False), x)
    stack = ReversibleStack(blocks)
    out = stack(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weights).sum().backward()
    for parameter, grad in zip(stack.parameters(), reference[2:], strict=True):
        assert torch.allclose(parameter.grad, grad, rtol=0, atol=1e-10)


def saved_bytes(layers: int, reversible: bool) -> int:
    stack = ReversibleStack(make_blocks(layers, dropout=0.1), reversible=reversible).train()
    x = inputs(batch=2, seq=16).requires_grad_()
    with SavedActivations(exclude=stack.parameters()) as saved:
        stack(x).sum()
    return saved.bytes


def test_reversible_stack_saves_the_same_bytes_at_any_depth():
    reversible = [saved_bytes(n, reversible=True) for n in (2, 4, 8)]
    plain = [saved_bytes(n, reversible=False) for n in (2, 4, 8)]
    assert reversible[0] == reversible[1] == reversible[2]  # flat: only the last outputs
    assert reversible[0] == 2 * 2 * 16 * D_MODEL * 8  # y1 and y2, float64
    # the plain stack grows by the same amount for each added layer: linear in depth
    assert plain[1] - plain[0] > 0
    assert plain[2] - plain[1] == 2 * (plain[1] - plain[0])
    assert plain[0] > 4 * reversible[0]


def test_no_grad_runs_the_plain_path():
    blocks = make_blocks(2, dropout=0.0)
    x = inputs()
    with torch.no_grad():
        out = ReversibleStack(blocks)(x)
    reference = ReversibleStack(blocks, reversible=False)(x)
    assert torch.allclose(out, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 50])
def test_chunked_feed_forward_equals_unchunked(chunk_size):
    torch.manual_seed(0)
    module = FeedForward(D_MODEL, D_FF).double()
    chunked = ChunkedFeedForward(module, chunk_size)
    x = inputs(seq=7).requires_grad_()
    full = module(x)
    pieces = chunked(x)
    assert torch.allclose(pieces, full, rtol=0, atol=1e-12)
    weights = torch.linspace(-1, 1, full.numel(), dtype=full.dtype).reshape(full.shape)
    expected = torch.autograd.grad((full * weights).sum(), [x, *module.parameters()])
    got = torch.autograd.grad((pieces * weights).sum(), [x, *module.parameters()])
    for ours, reference in zip(got, expected, strict=True):
        assert reference.abs().max() > 0
        assert torch.allclose(ours, reference, rtol=0, atol=1e-12)


def test_chunked_feed_forward_matches_hugging_face_chunking():
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    torch.manual_seed(0)
    module = FeedForward(D_MODEL, D_FF).double()
    x = inputs(seq=8)
    reference = pytorch_utils.apply_chunking_to_forward(module.forward, 4, 1, x)
    assert torch.allclose(ChunkedFeedForward(module, 4)(x), reference, rtol=0, atol=1e-12)


def test_chunked_feed_forward_runs_on_chunks():
    sizes = []
    module = FeedForward(D_MODEL, D_FF)
    module.register_forward_hook(lambda _m, args, _out: sizes.append(args[0].shape[1]))
    ChunkedFeedForward(module, 3)(torch.randn(1, 7, D_MODEL))
    assert sizes == [3, 3, 1]


def test_argument_errors():
    with pytest.raises(TypeError, match=r"f: expected a torch.nn.Module, got"):
        ReversibleBlock(lambda x: x, nn.Identity())
    with pytest.raises(TypeError, match=r"g: expected a torch.nn.Module, got"):
        ReversibleBlock(nn.Identity(), 3)
    with pytest.raises(TypeError, match=r"blocks: expected a non-empty list"):
        ReversibleStack([])
    with pytest.raises(TypeError, match=r"blocks\[1\]: expected a ReversibleBlock, got Linear"):
        ReversibleStack([ReversibleBlock(nn.Identity(), nn.Identity()), nn.Linear(2, 2)])
    stack = ReversibleStack([ReversibleBlock(nn.Identity(), nn.Identity())])
    with pytest.raises(ValueError, match=r"x: expected a floating-point tensor with 3 dim"):
        stack(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor"):
        stack(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"chunk_size: expected an int >= 1, got 0"):
        ChunkedFeedForward(nn.Identity(), 0)
    with pytest.raises(TypeError, match=r"module: expected a torch.nn.Module"):
        ChunkedFeedForward("relu", 2)
    with pytest.raises(ValueError, match=r"x: expected a floating-point tensor with 3 dim"):
        ChunkedFeedForward(nn.Identity(), 2)(torch.zeros(4))
