"""Chapter 6, section 2: LSH attention against Hugging Face's ``LSHSelfAttention``."""

from __future__ import annotations

import pytest
import torch

from lessons import reformer

transformers = pytest.importorskip("transformers")
from transformers.models.reformer import modeling_reformer as hf  # noqa: E402

SEQ, D_MODEL, HEADS, D_HEAD = 64, 32, 2, 8


def hf_attention(num_hashes: int = 2, causal: bool = False, seed: int = 0) -> torch.nn.Module:
    """A small HF LSH layer: 64 tokens in chunks of 8, 8 buckets, so hashing really happens."""
    config = transformers.ReformerConfig(
        hidden_size=D_MODEL,
        num_attention_heads=HEADS,
        attention_head_size=D_HEAD,
        attn_layers=["lsh"],
        num_buckets=8,
        num_hashes=num_hashes,
        lsh_attn_chunk_length=8,
        lsh_num_chunks_before=1,
        lsh_num_chunks_after=0,
        hash_seed=3,
        lsh_attention_probs_dropout_prob=0.0,
        is_decoder=causal,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    return hf.LSHSelfAttention(config).eval()


def inputs(seq: int = SEQ, padded: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, seq, D_MODEL, generator=generator)
    if not padded:
        return x, None
    mask = torch.ones(2, seq, dtype=torch.bool)
    mask[1, seq - 13 :] = False
    return x, mask


def both(reference: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None):
    ours = reformer.LSHSelfAttention.from_hf(reference).eval()
    with torch.no_grad():
        theirs = reference(x, attention_mask=None if mask is None else mask.long())
        mine = ours(x, padding_mask=mask)
    return ours, theirs, mine


@pytest.mark.parametrize("padded", [False, True], ids=["no-padding", "padding"])
@pytest.mark.parametrize("num_hashes", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_matches_hugging_face(causal: bool, num_hashes: int, padded: bool) -> None:
    x, mask = inputs(padded=padded)
    ours, theirs, mine = both(hf_attention(num_hashes, causal), x, mask)
    assert (mine - theirs.hidden_states).abs().max().item() < 1e-5
    with torch.no_grad():
        buckets = ours.buckets(x, mask)
    assert torch.equal(buckets, theirs.buckets)
    # Hashing is not trivial: round r uses buckets r*8 .. r*8+7 (+1 for padding), many of them.
    width = 9 if padded else 8
    for r in range(num_hashes):
        ids = buckets[:, :, r]
        assert ids.min() >= r * width and ids.max() < (r + 1) * width
        assert ids.unique().numel() >= 6


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_full_attention_when_one_chunk(causal: bool) -> None:
    x, mask = inputs(seq=8, padded=True)
    _, theirs, mine = both(hf_attention(2, causal), x, mask)
    assert (mine - theirs.hidden_states).abs().max().item() < 1e-5


def test_rotations_are_hugging_faces_draw() -> None:
    torch.manual_seed(3)
    expected = torch.randn(HEADS, D_HEAD, 4, 4)
    assert torch.equal(reformer.hash_rotations(HEADS, D_HEAD, 4, 8, seed=3), expected)
    unseeded = [reformer.hash_rotations(HEADS, D_HEAD, 4, 8) for _ in range(2)]
    assert not torch.equal(*unseeded)


def test_hash_is_argmax_of_rotation_and_its_negation() -> None:
    # One head, 2-d vectors, rotation = identity (4 buckets): the bucket is the argmax of
    # [x1, x2, -x1, -x2], round 1 offset by 4.
    vectors = torch.tensor([[1.0, 0.2], [0.1, 2.0], [-3.0, 1.0], [0.5, -1.0]]).view(1, 1, 4, 2)
    rotations = torch.eye(2).view(1, 2, 1, 2).repeat(1, 1, 2, 1)
    buckets = reformer.hash_vectors(vectors, 4, 2, rotations)
    assert buckets.tolist() == [[[[0, 1, 2, 3], [4, 5, 6, 7]]]]


def test_sort_by_bucket_is_stable_and_undone() -> None:
    buckets = torch.tensor([[[2, 0, 2, 1, 0, 5, 4, 4]]])
    order, undo = reformer.sort_by_bucket(buckets)
    assert order.tolist() == [[[1, 4, 3, 0, 2, 6, 7, 5]]]
    assert torch.equal(buckets.gather(-1, order).gather(-1, undo), buckets)


def test_look_adjacent_wraps_to_the_last_chunk() -> None:
    chunks = torch.arange(6).view(1, 1, 3, 2)  # chunks [0 1] [2 3] [4 5]
    assert reformer.look_adjacent(chunks).tolist() == [[[[4, 5, 0, 1], [0, 1, 2, 3], [2, 3, 4, 5]]]]
    both_sides = reformer.look_adjacent(chunks, before=1, after=1)
    assert both_sides[0, 0, 0].tolist() == [4, 5, 0, 1, 2, 3]


def test_combined_rounds_are_one_softmax_over_all_their_keys() -> None:
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(1, 1, 3, 5, 6, generator=generator)  # 3 rounds, 5 queries, 6 keys
    values = torch.randn(1, 1, 3, 6, 4, generator=generator)
    per_round = torch.softmax(scores, dim=-1) @ values
    combined = reformer.combine_rounds(per_round, torch.logsumexp(scores, dim=-1))
    together = torch.softmax(scores.transpose(2, 3).flatten(3), dim=-1)  # (1, 1, 5, 18)
    expected = together @ values.flatten(2, 3)
    assert torch.allclose(combined, expected, atol=1e-6)


@pytest.mark.parametrize("seq", [8, SEQ], ids=["one-chunk", "chunked"])
def test_self_attention_only_when_nothing_else(seq: int) -> None:
    x, _ = inputs(seq=seq)
    ours = reformer.LSHSelfAttention.from_hf(hf_attention(1, causal=True)).eval()
    with torch.no_grad():
        out = ours(x)
        values = ours.value(x)
    # Causal: the first token can see only itself, so it attends to itself.
    assert torch.allclose(out[:, 0], values[:, 0], atol=1e-6)
    if seq == 8:
        # The second token sees itself and the first: the self mask leaves only the first.
        assert torch.allclose(out[:, 1], values[:, 0], atol=1e-6)


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("normalise_keys", lambda keys, eps=1e-6: keys / keys.shape[-1] ** 0.5),
        ("combine_rounds", lambda outputs, logsumexps: outputs.mean(dim=2)),
    ],
    ids=["keys-not-normalised", "rounds-averaged"],
)
def test_parity_fails_for_a_wrong_variant(monkeypatch, name: str, wrong) -> None:
    x, _ = inputs()
    monkeypatch.setattr(reformer, name, wrong)
    _, theirs, mine = both(hf_attention(4, causal=False), x, None)
    assert (mine - theirs.hidden_states).abs().max().item() > 1e-3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: reformer.hash_vectors(torch.zeros(1, 1, 4, 2), 5, 1), "num_buckets"),
        (lambda: reformer.hash_vectors(torch.zeros(1, 4, 2), 4, 1), "vectors"),
        (lambda: reformer.hash_vectors(torch.zeros(1, 1, 4, 2), 4, 0), "num_hashes"),
        (
            lambda: reformer.hash_vectors(torch.zeros(1, 1, 4, 2), 4, 1, torch.zeros(1, 2, 1, 4)),
            "rotations",
        ),
        (lambda: reformer.sort_by_bucket(torch.zeros(1, 4)), "buckets"),
        (lambda: reformer.look_adjacent(torch.zeros(1, 1, 2, 2), before=-1), "before"),
        (lambda: reformer.LSHSelfAttention(8, 2, 4, num_buckets=8, chunk_length=0), "chunk_length"),
        (lambda: reformer.LSHSelfAttention(8, 2, 4, num_buckets=8, dropout=1.5), "dropout"),
        (
            lambda: reformer.LSHSelfAttention(8, 2, 4, num_buckets=8, chunk_length=4)(
                torch.zeros(1, 6, 8)
            ),
            "multiple of chunk_length",
        ),
        (
            lambda: reformer.LSHSelfAttention(8, 2, 4, num_buckets=8)(
                torch.zeros(1, 6, 8), padding_mask=torch.ones(1, 5, dtype=torch.bool)
            ),
            "padding_mask",
        ),
    ],
)
def test_argument_errors_name_the_argument(call, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def hf_local_attention(causal: bool, after: int) -> torch.nn.Module:
    config = transformers.ReformerConfig(
        hidden_size=D_MODEL,
        num_attention_heads=HEADS,
        attention_head_size=D_HEAD,
        attn_layers=["local"],
        local_attn_chunk_length=8,
        local_num_chunks_before=1,
        local_num_chunks_after=after,
        local_attention_probs_dropout_prob=0.0,
        is_decoder=causal,
    )
    torch.manual_seed(0)
    return hf.LocalSelfAttention(config).eval()


@pytest.mark.parametrize("after", [0, 1])
@pytest.mark.parametrize("seq", [8, SEQ], ids=["one-chunk", "chunked"])
@pytest.mark.parametrize("padded", [False, True], ids=["no-padding", "padding"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_local_attention_matches_hugging_face(
    causal: bool, padded: bool, seq: int, after: int
) -> None:
    reference = hf_local_attention(causal, after)
    ours = reformer.LocalSelfAttention.from_hf(reference).eval()
    x, mask = inputs(seq=seq, padded=padded)
    with torch.no_grad():
        theirs = reference(x, attention_mask=None if mask is None else mask.long())
        mine = ours(x, padding_mask=mask)
    assert (mine - theirs.hidden_states).abs().max().item() < 1e-5


def test_local_attention_sees_only_adjacent_chunks() -> None:
    ours = reformer.LocalSelfAttention.from_hf(hf_local_attention(False, 0)).eval()
    x, _ = inputs()
    far, wrapped = x.clone(), x.clone()
    far[:, 24:32] += 1.0  # chunk 3: neither chunk 0 nor the one before it
    wrapped[:, 56:64] += 1.0  # chunk 7: the chunk before chunk 0, by wrapping around
    with torch.no_grad():
        out, out_far, out_wrapped = ours(x), ours(far), ours(wrapped)
    assert torch.equal(out[:, :8], out_far[:, :8])
    assert (out[:, :8] - out_wrapped[:, :8]).abs().max().item() > 1e-3
