"""Chapter 6, sections 2 and 6: gradients of LSH attention, the whole `ReformerLM` against
Hugging Face's ``ReformerModel``, and the duplication task's functions."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from lessons import reformer

transformers = pytest.importorskip("transformers")
from transformers.models.reformer import modeling_reformer as hf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, SEQ = 50, 32


def hf_config(layers: tuple[str, ...], causal: bool, **overrides) -> transformers.ReformerConfig:
    """A small HF Reformer: 32 tokens, chunks of 8, 4 buckets, 2 rounds, axial 4 x 8."""
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_attention_heads=2,
        attention_head_size=16,
        attn_layers=list(layers),
        feed_forward_size=64,
        num_buckets=4,
        num_hashes=2,
        lsh_attn_chunk_length=8,
        local_attn_chunk_length=8,
        axial_pos_shape=(4, 8),
        axial_pos_embds_dim=(16, 16),
        max_position_embeddings=SEQ,
        is_decoder=causal,
        hash_seed=3,
        hidden_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0,
        hidden_act="relu",
    )
    settings.update(overrides)
    return transformers.ReformerConfig(**settings)


def ids(batch: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_ff", [0, 8], ids=["ff-whole", "ff-chunked"])
@pytest.mark.parametrize(
    "layers", [("local", "lsh"), ("lsh", "lsh", "local")], ids=["local-lsh", "lsh-lsh-local"]
)
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_hidden_states_match_hugging_face(causal: bool, layers, chunk_ff: int) -> None:
    """Measured: 2.4e-7 at most in float32 (hidden states of size up to about 3)."""
    torch.manual_seed(0)
    theirs = hf.ReformerModel(hf_config(layers, causal, chunk_size_feed_forward=chunk_ff)).eval()
    ours = reformer.ReformerLM.from_hf(theirs).eval()
    assert ours.reformer_config.chunk_size_feed_forward == chunk_ff
    with torch.no_grad():
        expected = theirs(ids()).last_hidden_state
        got = ours.encode(ids())
    assert got.shape == (3, SEQ, 64)
    assert (got - expected).abs().max() < 1e-5
    assert expected.abs().max() > 1.0  # not a comparison of near-zeros


def test_hidden_states_match_in_float64() -> None:
    torch.manual_seed(0)
    theirs = hf.ReformerModel(hf_config(("local", "lsh"), True)).double().eval()
    ours = reformer.ReformerLM.from_hf(theirs).eval()
    with torch.no_grad():
        difference = (ours.encode(ids()) - theirs(ids()).last_hidden_state).abs().max()
    assert difference < 1e-12


def test_logits_match_hugging_faces_lm_head() -> None:
    torch.manual_seed(0)
    theirs = hf.ReformerModelWithLMHead(hf_config(("local", "lsh"), True)).eval()
    ours = reformer.ReformerLM.from_hf(theirs).eval()
    with torch.no_grad():
        assert (ours(ids()) - theirs(ids()).logits).abs().max() < 1e-5


def test_learned_position_table_matches_hugging_face() -> None:
    torch.manual_seed(0)
    config = hf_config(("lsh",), True, axial_pos_embds=False)
    theirs = hf.ReformerModel(config).eval()
    ours = reformer.ReformerLM.from_hf(theirs).eval()
    assert not ours.reformer_config.axial_pos_embds
    with torch.no_grad():
        assert (ours.encode(ids()) - theirs(ids()).last_hidden_state).abs().max() < 1e-5


def test_a_changed_weight_breaks_parity() -> None:
    """The comparison can fail: perturbing one feed-forward weight moves the output."""
    torch.manual_seed(0)
    theirs = hf.ReformerModel(hf_config(("local", "lsh"), True)).eval()
    ours = reformer.ReformerLM.from_hf(theirs).eval()
    with torch.no_grad():
        ours.layers.blocks[1].g.feed_forward.linear2.weight[0, 0] += 0.1
        assert (ours.encode(ids()) - theirs(ids()).last_hidden_state).abs().max() > 1e-3


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_lsh_gradients_match_hugging_face(causal: bool) -> None:
    """Gradients w.r.t. the input and both weights, float64, through HF's custom backward."""
    config = hf_config(("lsh",), causal, num_buckets=4, num_hashes=2)
    torch.manual_seed(0)
    theirs = hf.LSHSelfAttention(config).double().eval()
    ours = reformer.LSHSelfAttention.from_hf(theirs).eval()
    x = torch.randn(2, SEQ, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    weight = torch.randn(
        2, SEQ, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    grads = []
    for module, call in (
        (theirs, lambda v: theirs(v).hidden_states),
        (ours, lambda v: ours(v)),
    ):
        v = x.clone().requires_grad_()
        (call(v) * weight).sum().backward()
        grads.append([v.grad, module.query_key.weight.grad, module.value.weight.grad])
    for theirs_grad, our_grad in zip(*grads, strict=True):
        assert theirs_grad.abs().max() > 1e-3
        assert (theirs_grad - our_grad).abs().max() < 1e-10


def test_reversible_model_gradients_equal_the_plain_models() -> None:
    """With dropout on and LSH attention drawing new rotations every call."""
    config = reformer.ReformerConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_attention_heads=2,
        attention_head_size=8,
        attn_layers=("lsh", "local", "lsh"),
        feed_forward_size=32,
        num_buckets=4,
        num_hashes=2,
        lsh_attn_chunk_length=8,
        local_attn_chunk_length=8,
        axial_pos_shape=(4, 8),
        axial_pos_embds_dim=(8, 8),
        chunk_size_feed_forward=8,
        hidden_dropout_prob=0.2,
        lsh_attention_probs_dropout_prob=0.2,
    )
    torch.manual_seed(0)
    reversible = reformer.ReformerLM(config).double().train()
    plain = reformer.ReformerLM(config, reversible=False).double().train()
    plain.load_state_dict(reversible.state_dict())
    grads = []
    for model in (reversible, plain):
        torch.manual_seed(7)
        F.cross_entropy(model(ids()).flatten(0, 1), ids(seed=2).flatten()).backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    for name, grad in grads[0].items():
        assert (grad - grads[1][name]).abs().max() < 1e-10, name
    assert max(g.abs().max() for g in grads[0].values()) > 1e-3


# --------------------------------------------------------------------------------------
# Full attention with the same weights
# --------------------------------------------------------------------------------------


def dense_shared_qk(layer: reformer.LSHSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Full shared-QK attention written out: unit keys (Hugging Face's eps in the norm),
    causal mask, a token's own key only as a last resort."""
    batch, seq, _ = x.shape
    qk = layer.query_key(x).view(batch, seq, layer.num_heads, layer.d_head).transpose(1, 2)
    values = layer.value(x).view(batch, seq, layer.num_heads, layer.d_head).transpose(1, 2)
    keys = qk * torch.rsqrt(qk.pow(2).mean(-1, keepdim=True) + 1e-6) / layer.d_head**0.5
    scores = qk @ keys.transpose(-1, -2)
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, -1e9).masked_fill(torch.eye(seq, dtype=torch.bool), -1e5)
    out = scores.softmax(-1) @ values
    return out.transpose(1, 2).reshape(batch, seq, -1)


def test_full_attention_switch() -> None:
    torch.manual_seed(0)
    layer = reformer.LSHSelfAttention(16, 2, 8, num_buckets=4, chunk_length=8, causal=True)
    x = torch.randn(2, SEQ, 16, dtype=torch.float64)
    layer = layer.double()
    with torch.no_grad():
        hashed = layer(x)
        layer.full_attention = True
        full = layer(x)
    assert (full - dense_shared_qk(layer, x)).abs().max() < 1e-12
    assert (full - hashed).abs().max() > 1e-2


def test_use_attention_sets_every_lsh_layer() -> None:
    config = reformer.ReformerConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_attention_heads=2,
        attention_head_size=8,
        attn_layers=("lsh", "local", "lsh"),
        feed_forward_size=32,
        axial_pos_shape=(4, 8),
        axial_pos_embds_dim=(8, 8),
    )
    model = reformer.ReformerLM(config)
    assert len(model.lsh_layers()) == 2
    model.use_attention("full")
    assert all(layer.full_attention for layer in model.lsh_layers())
    model.use_attention("lsh", num_hashes=8)
    assert [(layer.full_attention, layer.num_hashes) for layer in model.lsh_layers()] == [
        (False, 8),
        (False, 8),
    ]
    with pytest.raises(ValueError, match="kind"):
        model.use_attention("sparse")


# --------------------------------------------------------------------------------------
# Configuration and checkpoints
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"attn_layers": ()}, "attn_layers"),
        ({"attn_layers": ("lsh", "full")}, r"attn_layers\[1\]"),
        ({"attn_layers": "lsh"}, "attn_layers"),
        ({"num_buckets": 5}, "num_buckets"),
        ({"axial_pos_embds_dim": (64, 32)}, "axial_pos_embds_dim"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
        ({"vocab_size": 0}, "vocab_size"),
    ],
)
def test_config_errors_name_the_setting(overrides, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        reformer.ReformerConfig(**overrides)


def test_input_errors_name_the_argument() -> None:
    model = reformer.ReformerLM(reformer.ReformerConfig(axial_pos_shape=(8, 8)))
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.full((1, 64), 400))
    with pytest.raises(TypeError, match="input_ids"):
        model(torch.zeros(1, 64))
    with pytest.raises(TypeError, match="config"):
        reformer.ReformerLM("small")


def test_checkpoint_round_trip(tmp_path) -> None:
    config = reformer.ReformerConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_attention_heads=2,
        attention_head_size=8,
        attn_layers=("lsh",),
        feed_forward_size=32,
        lsh_attn_chunk_length=8,
        axial_pos_embds=False,
        max_position_embeddings=SEQ,
        hash_seed=1,
    )
    model = reformer.ReformerLM(config).eval()
    model.save(tmp_path / "m.safetensors", notes={"steps": 3})
    loaded = reformer.ReformerLM.load(tmp_path / "m.safetensors").eval()
    assert loaded.reformer_config == config
    with torch.no_grad():
        assert torch.equal(model(ids()), loaded(ids()))


# --------------------------------------------------------------------------------------
# The duplication task
# --------------------------------------------------------------------------------------


def test_duplication_batch_is_0w0w() -> None:
    batch = reformer.duplication_batch(16, 7, 10, torch.Generator().manual_seed(0))
    assert batch.shape == (16, 16)
    assert (batch[:, 0] == 0).all() and (batch[:, 8] == 0).all()
    assert torch.equal(batch[:, 1:8], batch[:, 9:])
    assert batch[:, 1:8].min() >= 1 and batch[:, 1:8].max() <= 9
    assert len(batch[:, 1:8].unique()) == 9  # every symbol drawn


class CopyOracle(torch.nn.Module):
    """Logits that put the symbol w positions back first: a perfect duplication model."""

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        w = sequences.shape[1] // 2 - 1
        next_symbol = torch.roll(sequences, shifts=w, dims=1)  # position t holds t - w
        return F.one_hot(next_symbol, VOCAB).double() * 20


def test_duplication_loss_counts_only_the_second_copy() -> None:
    batch = reformer.duplication_batch(4, 5, VOCAB, torch.Generator().manual_seed(0))
    logits = torch.randn(4, 12, VOCAB, dtype=torch.float64)

    class Fixed(torch.nn.Module):
        def forward(self, sequences):
            return logits

    by_hand = F.cross_entropy(logits[:, 6:11].reshape(-1, VOCAB), batch[:, 7:].reshape(-1))
    assert torch.allclose(reformer.duplication_loss(Fixed(), batch), by_hand)
    assert reformer.duplication_loss(CopyOracle(), batch) < 1e-3
    with pytest.raises(ValueError, match="sequences"):
        reformer.duplication_loss(Fixed(), batch[:, :-1])


def small_lm() -> reformer.ReformerLM:
    config = reformer.ReformerConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_attention_heads=2,
        attention_head_size=8,
        attn_layers=("lsh",),
        feed_forward_size=32,
        num_buckets=4,
        lsh_attn_chunk_length=8,
        axial_pos_embds=False,
        max_position_embeddings=SEQ,
    )
    torch.manual_seed(0)
    return reformer.ReformerLM(config)


def test_duplication_accuracy_is_seeded_and_leaves_the_model_as_it_was() -> None:
    model = small_lm().train()
    batch = reformer.duplication_batch(64, 15, VOCAB, torch.Generator().manual_seed(0))
    first = reformer.duplication_accuracy(model, batch, "lsh", 1, seed=5)
    assert first == reformer.duplication_accuracy(model, batch, "lsh", 1, seed=5)
    assert model.training
    assert [(lay.full_attention, lay.num_hashes) for lay in model.lsh_layers()] == [(False, 1)]
    model.eval()
    with torch.no_grad():
        model.use_attention("full")
        predicted = model(batch)[:, 16:31].argmax(-1)
        model.use_attention("lsh")
    by_hand = (predicted == batch[:, 17:]).double().mean().item()
    assert reformer.duplication_accuracy(model, batch, "full") == pytest.approx(by_hand)
    with pytest.raises(TypeError, match="model"):
        reformer.duplication_accuracy(CopyOracle(), batch)
