"""Chapter 6, section 5: axial positional embeddings against Hugging Face's."""

from __future__ import annotations

import pytest
import torch

from lessons import reformer

transformers = pytest.importorskip("transformers")
from transformers.models.reformer import modeling_reformer as hf  # noqa: E402


def hf_axial(shape: tuple[int, int], dims: tuple[int, int], seed: int = 0) -> torch.nn.Module:
    """HF's module in eval mode, without dropout, its weights drawn from a standard normal."""
    config = transformers.ReformerConfig(
        hidden_size=sum(dims),
        axial_pos_shape=shape,
        axial_pos_embds_dim=dims,
        hidden_dropout_prob=0.0,
        attn_layers=["local"],
        local_attn_chunk_length=4,
    )
    module = hf.AxialPositionEmbeddings(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in module.weights:  # HF initialises them to ones; make the axes differ
            weight.copy_(torch.randn(weight.shape, generator=generator))
    return module


@pytest.mark.parametrize(
    ("shape", "dims", "seq"),
    [((4, 8), (6, 10), 32), ((8, 4), (3, 5), 32), ((4, 8), (6, 10), 13), ((16, 16), (8, 24), 100)],
)
def test_matches_hugging_face(shape: tuple[int, int], dims: tuple[int, int], seq: int) -> None:
    theirs = hf_axial(shape, dims)
    ours = reformer.AxialPositionEmbeddings.from_hf(theirs)
    positions = torch.arange(seq).expand(2, seq)
    expected = theirs(positions)
    got = ours(positions)
    assert got.shape == (2, seq, sum(dims))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours(seq), expected[:1], rtol=0, atol=1e-6)


def test_matches_hugging_face_on_any_positions() -> None:
    theirs = hf_axial((4, 8), (6, 10))
    ours = reformer.AxialPositionEmbeddings.from_hf(theirs)
    positions = torch.tensor([[31, 0, 9, 9, 17], [8, 7, 24, 1, 30]])
    torch.testing.assert_close(ours(positions), theirs(positions), rtol=0, atol=1e-6)


def test_matches_hugging_face_in_training_mode() -> None:
    """HF's training mode ignores the ids and asks for exactly n1 * n2 positions."""
    theirs = hf_axial((4, 8), (6, 10)).train()
    ours = reformer.AxialPositionEmbeddings.from_hf(theirs)
    positions = torch.arange(32).expand(3, 32)
    torch.testing.assert_close(ours(positions), theirs(positions), rtol=0, atol=1e-6)


def test_concat_layout_with_known_tables() -> None:
    embeddings = reformer.AxialPositionEmbeddings((2, 3), (1, 2))
    with torch.no_grad():
        embeddings.weights[0].copy_(torch.tensor([10.0, 20.0]).view(2, 1, 1))  # E1: rows
        embeddings.weights[1].copy_(torch.tensor([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])[None])
    expected = torch.tensor(
        [
            [10.0, 1.0, -1.0],  # p = 0: row 0, column 0
            [10.0, 2.0, -2.0],
            [10.0, 3.0, -3.0],
            [20.0, 1.0, -1.0],  # p = 3: row 1, column 0
            [20.0, 2.0, -2.0],
            [20.0, 3.0, -3.0],
        ]
    )
    torch.testing.assert_close(embeddings(6)[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(embeddings(torch.tensor([[5, 1]])), expected[[5, 1]][None])


def test_parameter_counts() -> None:
    embeddings = reformer.AxialPositionEmbeddings((64, 64), (64, 192))  # HF's defaults
    assert sum(p.numel() for p in embeddings.parameters()) == 64 * 64 + 64 * 192 == 16_384
    assert embeddings.full_table_size == 64 * 64 * 256 == 1_048_576
    assert (embeddings.num_positions, embeddings.d_model) == (4096, 256)
    theirs = hf_axial((16, 16), (8, 24))
    ours = reformer.AxialPositionEmbeddings.from_hf(theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_gradients_reach_both_tables() -> None:
    embeddings = reformer.AxialPositionEmbeddings((2, 3), (1, 2))
    embeddings(torch.tensor([[4]])).sum().backward()
    row_grad, column_grad = (w.grad for w in embeddings.weights)
    torch.testing.assert_close(row_grad.flatten(), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(column_grad[0], torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (((4,), (2, 2)), ValueError, "axial_shape: expected a pair"),
        (((4, 0), (2, 2)), ValueError, r"axial_shape\[1\]: expected an int >= 1"),
        (((4, 4), (2, 2.5)), TypeError, r"axial_dims\[1\]: expected an int"),
        (((4, 4), 3), ValueError, "axial_dims: expected a pair"),
    ],
)
def test_constructor_errors_name_the_argument(args: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        reformer.AxialPositionEmbeddings(*args)


def test_forward_errors_name_the_argument() -> None:
    embeddings = reformer.AxialPositionEmbeddings((2, 3), (1, 2))
    with pytest.raises(ValueError, match=r"positions: expected positions in \[0, 6\)"):
        embeddings(7)
    with pytest.raises(ValueError, match=r"positions: expected positions in \[0, 6\)"):
        embeddings(torch.tensor([[0, -1]]))
    with pytest.raises(ValueError, match="positions: expected an integer tensor with 2"):
        embeddings(torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="positions: expected an integer tensor"):
        embeddings(torch.zeros(1, 2))
    with pytest.raises(TypeError, match="positions: expected an integer tensor .* got bool"):
        embeddings(torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="positions: expected an int >= 1"):
        embeddings(0)
    with pytest.raises(TypeError, match="module: expected a Hugging Face AxialPositionEmbeddings"):
        reformer.AxialPositionEmbeddings.from_hf(torch.nn.Linear(2, 2))
