"""lessons.transformer against PyTorch's nn.Transformer and its layers, and the properties
the chapter claims: causality, padding invariance, cached decoding, the training recipe."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lessons.core.tasks import make_batch
from lessons.core.vocab import Vocabulary
from lessons.transformer import (
    Decoder,
    DecoderLayer,
    EncoderLayer,
    LearnedPositions,
    SinusoidalPositions,
    TokenEmbedding,
    Transformer,
    TransformerLM,
    TransformerSeq2Seq,
    beam_search,
    beam_step,
    decoder_mask,
    greedy_search,
    label_smoothed_cross_entropy,
    lm_batch,
    lm_specials,
    mask_from_torch,
    paper_optimizer,
    perplexity,
    sample,
    sinusoidal_encoding,
    translate,
    warmup_schedule,
)

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
# PyTorch's own notices, raised by the reference modules on purpose here: odd head counts
# and norm_first turn off its nested-tensor path, the fast-path test uses nested tensors,
# and the tests mix float and bool masks.
pytestmark = [
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
]


@pytest.fixture(autouse=True)
def _plain_pytorch_path():
    """PyTorch's reference without its inference fast path (nested tensors), except where
    a test turns it back on to show what it does."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(before)


def torch_transformer(dtype=torch.float64, seed=0, **settings) -> nn.Transformer:
    torch.manual_seed(seed)
    config = dict(
        d_model=24,
        nhead=4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=40,
        dropout=0.0,
        batch_first=True,
    )
    config.update(settings)
    return nn.Transformer(**config).to(dtype)


def padding(lengths: list[int], width: int) -> torch.Tensor:
    """PyTorch's key-padding mask: True at padded positions."""
    return torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]


# --------------------------------------------------------------------------------------
# Positional encodings
# --------------------------------------------------------------------------------------


def test_sinusoidal_encoding_is_the_papers_formula():
    length, d_model = 7, 10
    encoding = sinusoidal_encoding(length, d_model, dtype=torch.float64)
    for pos, i in itertools.product(range(length), range(d_model // 2)):
        angle = pos / 10000 ** (2 * i / d_model)
        assert encoding[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
        assert encoding[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)
    shifted = sinusoidal_encoding(3, d_model, start=4, dtype=torch.float64)
    torch.testing.assert_close(shifted, encoding[4:7])


def test_a_shift_is_a_rotation_whatever_the_position():
    d_model, k = 16, 5
    encoding = sinusoidal_encoding(40, d_model, dtype=torch.float64)
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    for pos in (0, 7, 30):
        for i, omega in enumerate(frequency.tolist()):
            c, s = math.cos(k * omega), math.sin(k * omega)
            rotation = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
            pair = encoding[pos, 2 * i : 2 * i + 2]
            torch.testing.assert_close(rotation @ pair, encoding[pos + k, 2 * i : 2 * i + 2])


def test_position_modules_add_their_encodings():
    x = torch.zeros(2, 5, 8)
    torch.testing.assert_close(SinusoidalPositions(8)(x, start=3)[1], sinusoidal_encoding(5, 8, 3))
    learned = LearnedPositions(6, 8)
    torch.testing.assert_close(learned(x, start=1)[0], learned.embedding.weight[1:6])
    with pytest.raises(ValueError, match="max_len=6"):
        learned(x, start=2)
    with pytest.raises(ValueError, match="d_model: expected an even number"):
        sinusoidal_encoding(4, 7)


def test_token_embedding_is_scaled_by_sqrt_d_model():
    embedding = TokenEmbedding(10, 16, padding_idx=0)
    ids = torch.tensor([[0, 3, 9]])
    torch.testing.assert_close(embedding(ids), embedding.weight[ids] * 4.0)
    assert embedding(ids)[0, 0].abs().sum() == 0
    with pytest.raises(TypeError, match="ids"):
        embedding(ids.float())


# --------------------------------------------------------------------------------------
# Layers against nn.TransformerEncoderLayer / nn.TransformerDecoderLayer
# --------------------------------------------------------------------------------------

LAYER_SETTINGS = [
    dict(norm_first=False, activation="relu"),
    dict(norm_first=True, activation="gelu"),
    dict(norm_first=False, activation="gelu", bias=False, layer_norm_eps=1e-6),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("settings", LAYER_SETTINGS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_encoder_layer_equals_pytorchs(dtype, settings, mode):
    torch.manual_seed(1)
    reference = nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, batch_first=True, **settings).to(
        dtype
    )
    reference.train(mode == "train")
    ours = EncoderLayer.from_torch(reference)
    assert ours.training == (mode == "train")
    x = torch.randn(3, 6, 16, dtype=dtype)
    key_padding = padding([6, 4, 5], 6)
    attn_mask = torch.randn(6, 6) > 0.8  # True = blocked
    attn_mask.fill_diagonal_(False)
    theirs = reference(x, src_mask=attn_mask, src_key_padding_mask=key_padding)
    mine = ours(x, mask_from_torch(attn_mask, key_padding, 3, 4, 6, 6))
    torch.testing.assert_close(mine, theirs, atol=TOLERANCE[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("settings", LAYER_SETTINGS)
def test_decoder_layer_equals_pytorchs(dtype, settings):
    torch.manual_seed(2)
    reference = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True, **settings).to(
        dtype
    )
    ours = DecoderLayer.from_torch(reference)
    y, memory = torch.randn(2, 5, 16, dtype=dtype), torch.randn(2, 7, 16, dtype=dtype)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=dtype)  # float -inf/0
    memory_padding = padding([7, 3], 7)
    theirs = reference(y, memory, tgt_mask=tgt_mask, memory_key_padding_mask=memory_padding)
    mine = ours(
        y,
        memory,
        mask_from_torch(tgt_mask, None, 2, 2, 5, 5),
        mask_from_torch(None, memory_padding, 2, 2, 5, 7),
    )
    torch.testing.assert_close(mine, theirs, atol=TOLERANCE[dtype], rtol=0)


def test_from_torch_copies_and_does_not_share():
    reference = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    ours = EncoderLayer.from_torch(reference)
    with torch.no_grad():
        ours.feed_forward.linear1.weight.zero_()
    assert reference.linear1.weight.abs().sum() > 0


def test_from_torch_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="batch_first=True"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16))
    with pytest.raises(TypeError, match="TransformerDecoderLayer"):
        DecoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True))
    silu = nn.TransformerEncoderLayer(8, 2, 16, activation=F.silu, batch_first=True)
    with pytest.raises(ValueError, match="only ReLU and GELU"):
        EncoderLayer.from_torch(silu)


# --------------------------------------------------------------------------------------
# The whole Transformer against nn.Transformer
# --------------------------------------------------------------------------------------

SIZES = [
    dict(d_model=24, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=40),
    dict(d_model=16, nhead=1, num_encoder_layers=1, num_decoder_layers=3, dim_feedforward=8),
    dict(d_model=30, nhead=5, num_encoder_layers=3, num_decoder_layers=1, dim_feedforward=64),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_equals_nn_transformer(dtype, size, norm_first, activation):
    reference = torch_transformer(dtype, norm_first=norm_first, activation=activation, **size)
    ours = Transformer.from_torch(reference)
    d_model = size["d_model"]
    src, tgt = torch.randn(3, 7, d_model, dtype=dtype), torch.randn(3, 5, d_model, dtype=dtype)
    masks = dict(
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(5, dtype=dtype),
        src_key_padding_mask=padding([7, 5, 2], 7),
        tgt_key_padding_mask=padding([5, 5, 3], 5),
        memory_key_padding_mask=padding([7, 5, 2], 7),
    )
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        ours.train(mode == "train")
        torch.testing.assert_close(
            ours(src, tgt, **masks), reference(src, tgt, **masks), atol=TOLERANCE[dtype], rtol=0
        )


def test_a_module_built_in_float64_is_copied_without_rounding():
    torch.manual_seed(10)
    settings = dict(dim_feedforward=16, dropout=0.0, batch_first=True, dtype=torch.float64)
    reference = nn.Transformer(8, 2, 1, 1, **settings)
    ours = Transformer.from_torch(reference)
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    for (name, theirs), (_, mine) in zip(
        sorted(reference.state_dict().items()), sorted(_as_torch_names(ours).items()), strict=True
    ):
        assert torch.equal(theirs, mine), name
    src, tgt = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
    torch.testing.assert_close(ours(src, tgt), reference(src, tgt), atol=1e-13, rtol=0)


def _as_torch_names(ours: Transformer) -> dict[str, torch.Tensor]:
    """Our parameters under nn.Transformer's names (in_proj_weight = [W_q; W_k; W_v])."""
    out = {}
    for stack in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(ours, stack).layers):
            prefix = f"{stack}.layers.{i}."
            attentions = {"self_attn": layer.self_attn}
            if stack == "decoder":
                attentions["multihead_attn"] = layer.cross_attn
            for name, attention in attentions.items():
                projections = (attention.q_proj, attention.k_proj, attention.v_proj)
                out[prefix + name + ".in_proj_weight"] = torch.cat([p.weight for p in projections])
                out[prefix + name + ".in_proj_bias"] = torch.cat([p.bias for p in projections])
                out[prefix + name + ".out_proj.weight"] = attention.out_proj.weight
                out[prefix + name + ".out_proj.bias"] = attention.out_proj.bias
            for name in ("linear1", "linear2"):
                for kind in ("weight", "bias"):
                    out[prefix + f"{name}.{kind}"] = getattr(
                        getattr(layer.feed_forward, name), kind
                    )
            norms = ("norm1", "norm2", "norm3") if stack == "decoder" else ("norm1", "norm2")
            for name in norms:
                for kind in ("weight", "bias"):
                    out[prefix + f"{name}.{kind}"] = getattr(getattr(layer, name), kind)
        for kind in ("weight", "bias"):
            out[f"{stack}.norm.{kind}"] = getattr(getattr(ours, stack).norm, kind)
    return {k: v.detach() for k, v in out.items()}


def test_every_mask_argument_has_pytorchs_meaning():
    reference = torch_transformer()
    ours = Transformer.from_torch(reference)
    src, tgt = (
        torch.randn(2, 6, 24, dtype=torch.float64),
        torch.randn(2, 4, 24, dtype=torch.float64),
    )
    generator = torch.Generator().manual_seed(3)

    def blocked(*shape):  # True = blocked, never a whole row
        mask = torch.rand(*shape, generator=generator) > 0.7
        mask[..., 0] = False
        return mask

    masks = dict(
        src_mask=blocked(6, 6),
        tgt_mask=blocked(2 * 4, 4, 4),  # per batch row and head, PyTorch's 3-D form
        memory_mask=torch.zeros(4, 6, dtype=torch.float64).masked_fill(blocked(4, 6), -math.inf),
        src_key_padding_mask=padding([6, 4], 6),
        tgt_key_padding_mask=padding([4, 3], 4),
        memory_key_padding_mask=padding([6, 5], 6),
    )
    masks["memory_mask"][:, 0] = 0.0
    torch.testing.assert_close(
        ours(src, tgt, **masks), reference(src, tgt, **masks), atol=1e-10, rtol=0
    )


def test_pytorchs_fast_path_zeroes_padded_positions_and_ours_agrees_elsewhere():
    torch.backends.mha.set_fastpath_enabled(True)
    reference = torch_transformer(torch.float32, d_model=16, nhead=2).eval()
    ours = Transformer.from_torch(reference).eval()
    src = torch.randn(2, 6, 16)
    src_padding = padding([6, 3], 6)
    with torch.no_grad():
        theirs = reference.encoder(src, src_key_padding_mask=src_padding)
        mine = ours.encoder(src, mask_from_torch(None, src_padding, 2, 2, 6, 6))
    assert theirs[1, 3:].abs().max() == 0  # the fast path returns zeros at padding
    assert mine[1, 3:].abs().min() > 0  # we compute padded positions like any other
    torch.testing.assert_close(mine[~src_padding], theirs[~src_padding], atol=1e-5, rtol=0)


def test_a_fully_masked_query_gives_zeros_not_nan():
    """Ours gives a fully masked query a zero attention output. So does PyTorch's
    scaled_dot_product_attention, which nn.Transformer's layers use (they ask for no
    weights); nn.MultiheadAttention asked for its weights (the default) gives NaN."""
    reference = torch_transformer()
    ours = Transformer.from_torch(reference)
    src, tgt = (
        torch.randn(1, 3, 24, dtype=torch.float64),
        torch.randn(1, 2, 24, dtype=torch.float64),
    )
    memory_mask = torch.tensor([[True, True, True], [False, True, True]])  # row 0: all blocked
    mine = ours(src, tgt, memory_mask=memory_mask)
    assert not mine.isnan().any()
    torch.testing.assert_close(
        mine, reference(src, tgt, memory_mask=memory_mask), atol=1e-10, rtol=0
    )
    attention = reference.decoder.layers[0].multihead_attn
    output, weights = attention(tgt, src, src, attn_mask=memory_mask)
    assert output[0, 0].isnan().all() and weights[0, 0].isnan().all()
    assert not output[0, 1].isnan().any()


def test_mask_from_torch():
    causal = nn.Transformer.generate_square_subsequent_mask(3)
    allowed = mask_from_torch(causal, None, 2, 4, 3, 3)
    assert allowed.shape == (1, 1, 3, 3)
    torch.testing.assert_close(allowed[0, 0], torch.ones(3, 3, dtype=torch.bool).tril())
    both = mask_from_torch(causal == -math.inf, padding([3, 2], 3), 2, 4, 3, 3)
    assert both.shape == (2, 1, 3, 3)
    assert not both[1, 0, 2, 2] and both[1, 0, 1, 1] and both[0, 0, 2, 2]
    assert mask_from_torch(None, None, 2, 4, 3, 3) is None
    with pytest.raises(ValueError, match="only 0 \\(attend\\) and -inf"):
        mask_from_torch(torch.full((3, 3), -1.0), None, 2, 4, 3, 3)
    with pytest.raises(ValueError, match=r"key_padding_mask: expected shape \(2, 3\)"):
        mask_from_torch(None, torch.zeros(3, 2, dtype=torch.bool), 2, 4, 3, 3)
    with pytest.raises(TypeError, match="attn_mask: expected a bool mask"):
        mask_from_torch(torch.zeros(3, 3, dtype=torch.long), None, 2, 4, 3, 3)


def test_decoder_mask_is_pytorchs_causal_and_padding_masks_converted():
    real = torch.tensor([[True, True, True, False], [False, True, True, True]])  # right, left
    future = nn.Transformer.generate_square_subsequent_mask(4)
    expected = mask_from_torch(future, ~real, 2, 1, 4, 4)
    torch.testing.assert_close(decoder_mask(real), expected, atol=0, rtol=0)
    with pytest.raises(TypeError, match="real"):
        decoder_mask(real.long())


def test_beam_step_ranks_every_extension_of_every_prefix_together():
    """The second prefix's two extensions beat the first prefix's second best."""
    scores = torch.tensor([[-1.0, -2.0]])
    log_probs = torch.log(torch.tensor([[[0.1, 0.9, 1e-9], [0.6, 0.4, 1e-9]]]))
    new_scores, beam, token = beam_step(scores, log_probs, 3)
    assert beam.tolist() == [[0, 1, 1]] and token.tolist() == [[1, 0, 1]]
    expected = torch.tensor([[-1 + math.log(0.9), -2 + math.log(0.6), -2 + math.log(0.4)]])
    torch.testing.assert_close(new_scores, expected)


def test_transformer_forward_checks_its_inputs():
    ours = Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1)
    with pytest.raises(ValueError, match=r"src and tgt: expected \(batch, len, 8\)"):
        ours(torch.randn(2, 3, 8), torch.randn(3, 3, 8))
    with pytest.raises(ValueError, match="src: expected a floating-point tensor with 3 dimensions"):
        ours(torch.randn(3, 8), torch.randn(1, 3, 8))


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_of_tiny_layers(norm_first):
    torch.manual_seed(4)
    encoder = EncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first).double()
    decoder = DecoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first).double()
    x = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    assert torch.autograd.gradcheck(lambda x: encoder(x), (x,))
    assert torch.autograd.gradcheck(lambda x, m: decoder(x, m, causal), (x, memory))


# --------------------------------------------------------------------------------------
# The model: causality, padding, decoding with a cache
# --------------------------------------------------------------------------------------


def tiny_seq2seq(seed: int = 0, **changes) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    config = dict(characters="abcde", d_model=16, num_heads=2, num_layers=2, ff_dim=24)
    return TransformerSeq2Seq(**{**config, **changes}).eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_changing_a_future_target_never_changes_an_earlier_output(norm_first):
    model = tiny_seq2seq(norm_first=norm_first)
    batch = make_batch([("abcde", "edcba")], model.vocab)
    inputs = batch["decoder_inputs"]
    changed = inputs.clone()
    changed[0, 3:] = torch.tensor(model.vocab.encode("aaa"))
    before = model(batch["sources"], batch["source_lengths"], inputs)
    after = model(batch["sources"], batch["source_lengths"], changed)
    torch.testing.assert_close(before[:, :3], after[:, :3], atol=0, rtol=0)
    assert (before[:, 3:] - after[:, 3:]).abs().max() > 1e-3


def test_a_source_gives_the_same_output_alone_or_padded_in_a_batch():
    model = tiny_seq2seq(source_positions="sinusoidal")
    pairs = [("ab", "ba"), ("abcdeab", "baedcba")]
    together = make_batch(pairs, model.vocab)
    alone = make_batch(pairs[:1], model.vocab)
    logits = model(together["sources"], together["source_lengths"], together["decoder_inputs"])
    single = model(alone["sources"], alone["source_lengths"], alone["decoder_inputs"])
    torch.testing.assert_close(logits[0, : single.shape[1]], single[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoding_with_the_cache_equals_decoding_without(norm_first):
    model = tiny_seq2seq(seed=5, norm_first=norm_first)
    batch = make_batch([("abc", "cba"), ("deabcd", "dcbaed")], model.vocab)
    memory, mask = model.encode(batch["sources"], batch["source_lengths"])
    full = model.decode(memory, mask, batch["decoder_inputs"])
    cache = model.new_cache()
    steps = [
        model.decode(memory, mask, batch["decoder_inputs"][:, t : t + 1], cache)
        for t in range(batch["decoder_inputs"].shape[1])
    ]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    assert cache.length == batch["decoder_inputs"].shape[1]
    sources, lengths = batch["sources"], batch["source_lengths"]
    for beam_size in (1, 3):
        cached = beam_search(model, sources, lengths, beam_size, max_len=8)
        uncached = beam_search(model, sources, lengths, beam_size, max_len=8, use_cache=False)
        torch.testing.assert_close(cached[0], uncached[0], atol=0, rtol=0)
        torch.testing.assert_close(cached[1], uncached[1], atol=1e-5, rtol=0)


def test_greedy_search_writes_the_argmax_tokens():
    """Greedy search against a plain loop that reruns the decoder on the whole prefix and
    takes the most likely token other than <pad> and <s> (never written)."""
    model = tiny_seq2seq(seed=6)
    vocab = model.vocab
    batch = make_batch(["abc", "eeda"], vocab)
    ids = greedy_search(model, batch["sources"], batch["source_lengths"], max_len=6)
    memory, mask = model.encode(batch["sources"], batch["source_lengths"])
    for row in range(2):
        written = [vocab.bos_id]
        while len(written) <= 6 and written[-1] != vocab.eos_id:
            logits = model.decode(
                memory[row : row + 1], mask[row : row + 1], torch.tensor([written])
            )
            logits[0, -1, [vocab.pad_id, vocab.bos_id]] = -math.inf
            written.append(int(logits[0, -1].argmax()))
        expected = written[1:] + [vocab.pad_id] * (ids.shape[1] - len(written) + 1)
        assert ids[row].tolist() == expected


def test_beam_search_finds_the_best_sequence_when_the_beam_holds_every_prefix():
    """With a beam as wide as the number of prefixes, beam search is exhaustive: compare
    it with scoring every output of at most 3 tokens by brute force."""
    model = tiny_seq2seq(seed=7, characters="ab")  # 5 ids: <pad> <s> </s> a b
    vocab = model.vocab
    batch = make_batch(["ab"], vocab)
    memory, mask = model.encode(batch["sources"], batch["source_lengths"])

    def log_probability(tokens: list[int]) -> float:
        inputs = torch.tensor([[vocab.bos_id, *tokens[:-1]]])
        log_p = F.log_softmax(model.decode(memory, mask, inputs)[0], dim=-1)
        return sum(log_p[t, token].item() for t, token in enumerate(tokens))

    letters = vocab.encode("ab")  # <s> and <pad> are never written
    candidates = [
        [*p, vocab.eos_id] for n in range(3) for p in itertools.product(letters, repeat=n)
    ]
    candidates += [list(p) for p in itertools.product(letters, repeat=3)]  # max_len reached
    for penalty in (0.0, 1.0):
        best = max(candidates, key=lambda c: log_probability(c) / len(c) ** penalty)
        ids, scores = beam_search(
            model, batch["sources"], batch["source_lengths"], 125, 3, length_penalty=penalty
        )
        found = [t for t in ids[0, 0].tolist()]
        found = found[: found.index(vocab.eos_id) + 1] if vocab.eos_id in found else found
        assert found == best
        assert scores[0, 0].item() == pytest.approx(log_probability(best) / len(best) ** penalty)
        assert (scores[0, :-1] >= scores[0, 1:]).all()


def test_translate_and_its_errors():
    model = tiny_seq2seq()
    outputs = translate(model, ["abc", "de"], beam_size=2, max_len=5)
    assert len(outputs) == 2 and all(set(o) <= set("abcde") for o in outputs)
    with pytest.raises(TypeError, match="sources: expected a non-empty list"):
        translate(model, "abc")
    with pytest.raises(ValueError, match="unknown character 'z'"):
        translate(model, ["abz"])
    with pytest.raises(ValueError, match="source_lengths: expected lengths in"):
        translate(model, ["abc", ""])


def test_attention_maps_are_distributions_over_real_positions():
    model = tiny_seq2seq()
    batch = make_batch([("abc", "cba"), ("a", "a")], model.vocab)
    maps = model.attention_maps(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    assert [len(maps[k]) for k in ("encoder", "decoder", "cross")] == [2, 2, 2]
    cross = maps["cross"][0]
    torch.testing.assert_close(cross.sum(-1), torch.ones(cross.shape[:-1]))
    assert cross[1, :, :, 1:].abs().max() == 0  # the second source has one character
    assert maps["decoder"][1][0, 0].triu(1).abs().max() == 0  # causal
    assert not any(layer.keep_weights for layer in model.transformer.decoder.layers)


def test_save_and_load_round_trip_with_tied_weights(tmp_path):
    model = tiny_seq2seq(tie_weights=True, dropout=0.1)
    assert model.output is None
    model.save(tmp_path / "m.safetensors", notes={"epochs": 1})
    loaded = TransformerSeq2Seq.load(tmp_path / "m.safetensors").eval()
    batch = make_batch([("abc", "cba")], model.vocab)
    args = (batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    torch.testing.assert_close(loaded(*args), model(*args), atol=0, rtol=0)


def test_seq2seq_constructor_errors():
    with pytest.raises(ValueError, match="d_model: expected an even multiple of num_heads=3"):
        TransformerSeq2Seq(d_model=16, num_heads=3)
    with pytest.raises(ValueError, match="source_positions"):
        TransformerSeq2Seq(source_positions="learned")
    with pytest.raises(ValueError, match="activation"):
        TransformerSeq2Seq(activation="tanh")


# --------------------------------------------------------------------------------------
# The training recipe
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_label_smoothing_equals_pytorchs(epsilon):
    generator = torch.Generator().manual_seed(8)
    logits = torch.randn(3, 4, 7, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 7, (3, 4), generator=generator)
    targets[0, 2:] = 0  # padding
    ours = label_smoothed_cross_entropy(logits, targets, epsilon, ignore_index=0)
    theirs = F.cross_entropy(
        logits.transpose(1, 2), targets, label_smoothing=epsilon, ignore_index=0
    )
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


def test_label_smoothing_never_makes_a_nan():
    logits = torch.tensor([[0.0, -math.inf, 1.0], [2.0, 0.0, -math.inf]])
    targets = torch.tensor([0, 1])
    loss = label_smoothed_cross_entropy(logits, targets, epsilon=0.0)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))
    assert math.isfinite(loss.item())
    # with smoothing, a class of probability 0 that the target wants a share of: +inf
    assert label_smoothed_cross_entropy(logits, targets, epsilon=0.1).item() == math.inf
    with pytest.raises(ValueError, match="every target is ignore_index=0"):
        label_smoothed_cross_entropy(logits, torch.tensor([0, 0]), ignore_index=0)
    with pytest.raises(ValueError, match="logits and targets"):
        label_smoothed_cross_entropy(logits, torch.tensor([0, 1, 2]))


def test_warmup_schedule_is_equation_3():
    assert warmup_schedule(1, 512, 4000) == pytest.approx(512**-0.5 * 4000**-1.5)
    peak = warmup_schedule(4000, 512, 4000)
    assert peak == pytest.approx((512 * 4000) ** -0.5)
    assert warmup_schedule(3999, 512) < peak and warmup_schedule(4001, 512) < peak
    assert warmup_schedule(16000, 512) == pytest.approx(512**-0.5 * 16000**-0.5)
    with pytest.raises(ValueError, match="step"):
        warmup_schedule(0, 512)


def test_paper_optimizer_follows_the_schedule():
    model = nn.Linear(3, 2)
    optimizer, scheduler = paper_optimizer(model, d_model=64, warmup=10, factor=2.0)
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["eps"] == 1e-9
    seen = []
    for _ in range(15):
        seen.append(optimizer.param_groups[0]["lr"])
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    expected = [2.0 * warmup_schedule(step, 64, 10) for step in range(1, 16)]
    assert seen == pytest.approx(expected)


# --------------------------------------------------------------------------------------
# The decoder-only language model
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vocab() -> Vocabulary:
    return Vocabulary.from_sentences([["the", "cat", "sat"], ["the", "dog", "ran"]])


def tiny_lm(vocab: Vocabulary, **changes) -> TransformerLM:
    torch.manual_seed(9)
    config = dict(d_model=16, num_heads=2, num_layers=2, ff_dim=32, max_len=12, dropout=0.0)
    return TransformerLM(len(vocab) + 3, **{**config, **changes}).eval()


def test_lm_batch_layout(tiny_vocab):
    specials = lm_specials(tiny_vocab)
    inputs, targets = lm_batch([["the", "cat"], ["dog"]], tiny_vocab)
    the, cat, dog = tiny_vocab.encode(["the", "cat", "dog"])
    assert inputs.tolist() == [
        [specials["<S>"], the, cat],
        [specials["<S>"], dog, specials["<pad>"]],
    ]
    assert targets.tolist() == [[the, cat, specials["</S>"]], [dog, specials["</S>"], -100]]


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_lm_is_causal_and_its_cache_gives_the_same_logits(tiny_vocab, positions):
    model = tiny_lm(tiny_vocab, positions=positions)
    ids = torch.tensor([[7, 1, 2, 3, 4, 5]])
    full = model(ids)
    changed = ids.clone()
    changed[0, 4:] = 6
    torch.testing.assert_close(model(changed)[:, :4], full[:, :4], atol=0, rtol=0)
    cache = model.new_cache()
    steps = torch.cat([model(ids[:, t : t + 1], cache) for t in range(6)], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="max_len=12"):
        model(torch.zeros(1, 13, dtype=torch.long))


def test_perplexity_is_exp_of_the_mean_cross_entropy(tiny_vocab):
    model = tiny_lm(tiny_vocab)
    sentences = [["the", "cat", "sat"], ["a", "dog"], ["ran"]]
    total, count = 0.0, 0
    for sentence in sentences:
        inputs, targets = lm_batch([sentence], tiny_vocab)
        total += F.cross_entropy(model(inputs)[0], targets[0], reduction="sum").item()
        count += len(sentence) + 1
    assert perplexity(model, tiny_vocab, sentences, batch_size=2) == pytest.approx(
        math.exp(total / count), rel=1e-5
    )


def test_sample_is_seeded_and_top_1_is_greedy(tiny_vocab):
    model = tiny_lm(tiny_vocab)
    draw = lambda seed, **kw: sample(  # noqa: E731
        model, tiny_vocab, ["the"], 8, generator=torch.Generator().manual_seed(seed), **kw
    )
    assert draw(0) == draw(0)
    greedy, ids = [], [lm_specials(tiny_vocab)["<S>"], *tiny_vocab.encode(["the"])]
    for _ in range(8):
        logits = model(torch.tensor([ids]))[0, -1]
        logits[[lm_specials(tiny_vocab)["<S>"], lm_specials(tiny_vocab)["<pad>"], 0]] = -math.inf
        best = int(logits.argmax())
        if best == lm_specials(tiny_vocab)["</S>"]:
            break
        greedy.append(tiny_vocab.index_to_key[best])
        ids.append(best)
    assert draw(1, top_k=1) == greedy == draw(2, temperature=1e-4)
    with pytest.raises(TypeError, match="prompt: expected a list of words"):
        sample(model, tiny_vocab, "the cat")


def test_decoder_layer_without_cross_attention_refuses_memory():
    layer = DecoderLayer(8, 2, 16, cross_attention=False)
    assert layer.cross_attn is None and layer.norm2 is None
    with pytest.raises(ValueError, match="memory"):
        layer(torch.randn(1, 2, 8), torch.randn(1, 3, 8))
    decoder = Decoder(1, 8, 2, dim_feedforward=16)
    with pytest.raises(ValueError, match="memory"):
        decoder(torch.randn(1, 2, 8))


# --------------------------------------------------------------------------------------
# The shipped language model
# --------------------------------------------------------------------------------------


def test_the_shipped_lm_has_chapter_2s_vocabulary_and_the_perplexity_its_notes_claim():
    """The float16 weights give the validation perplexity the training run measured in
    float32 (its notes round to 0.1), on chapter 2's tokens and vocabulary."""
    from lessons.core import data
    from lessons.core.checkpoint import checkpoint_notes
    from lessons.elmo import load_pretrained as load_elmo
    from lessons.transformer import load_lm_vocab, load_pretrained, pretrained_path

    vocab = load_lm_vocab()
    assert vocab.index_to_key == load_elmo()[1].index_to_key
    model = load_pretrained("lm")
    assert model.output_bias.dtype == torch.float32 and not model.training
    notes = checkpoint_notes(pretrained_path("lm"))
    measured = perplexity(model, vocab, data.wikipedia("validation"))
    assert measured == pytest.approx(notes["validation_perplexity"], abs=0.1)
    assert notes["minutes"] <= 31.1 and notes["threads"] == 2


def test_attention_and_activation_dropout_can_be_set_apart():
    layer = EncoderLayer(8, 2, 16, dropout=0.1, attention_dropout=0.3, activation_dropout=0.0)
    assert layer.self_attn.dropout == 0.3 and layer.feed_forward.dropout.p == 0.0
    assert layer.dropout1.p == layer.dropout2.p == 0.1
    default = DecoderLayer(8, 2, 16, dropout=0.2)
    assert default.self_attn.dropout == default.cross_attn.dropout == 0.2
    assert default.feed_forward.dropout.p == 0.2
    with pytest.raises(ValueError, match="attention_dropout"):
        EncoderLayer(8, 2, 16, attention_dropout=1.5)
