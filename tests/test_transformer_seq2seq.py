"""Chapter 3's encoder-decoder without recurrence, which is chapter 4's
``lessons.transformer.TransformerSeq2Seq``: PyTorch's ``nn.Transformer`` as the reference,
padding, what convolutions and sinusoidal positions give the encoder, chapter 3's
training and decoding functions on it, files, the shipped models and bad inputs.

Chapter 3 uses it pre-norm without dropout (``norm_first=True, dropout=0.0``), the
setting ``scripts/train_seq2seq.py`` trains; chapter 4's date model
(``scripts/train_transformer.py``) is post-norm with dropout, as in the paper.
"""

import math

import pytest
import torch
from torch import nn

from lessons import seq2seq, transformer
from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import load_results
from lessons.core.tasks import batches, copy_examples, date_extraction_splits, make_batch
from lessons.transformer import SOURCE_POSITIONS, TransformerSeq2Seq, sinusoidal_encoding

torch.set_num_threads(1)

SOURCES = ["14 Sep 2023", "Thursday, the 14th of Sep 2023", "1/2"]
#: chapter 3's three models without recurrence, as lessons.transformer.load_pretrained names them
SHIPPED = ("extract-convolution", "extract-convolution-sinusoidal", "extract-sinusoidal")


def tiny(
    source_positions: str = "convolution", norm_first: bool = True, seed: int = 0, **changes
) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    settings = {"d_model": 16, "num_heads": 2, "num_layers": 2, "ff_dim": 24, "dropout": 0.0}
    return TransformerSeq2Seq(
        **{**settings, **changes}, source_positions=source_positions, norm_first=norm_first
    )


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positions", SOURCE_POSITIONS)
def test_logits_shape_and_loss_at_initialisation(positions, norm_first):
    model = tiny(positions, norm_first).requires_grad_(False)
    batch = make_batch([("14 Sep 2023", "2023-09-14"), ("1/2", "x")], model.vocab)
    logits = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    assert logits.shape == (2, 11, len(model.vocab)) and logits.dtype == torch.float32
    # an untrained model is close to uniform over the 70 ids: loss about log(70)
    assert abs(seq2seq.seq2seq_loss(model, batch).item() - math.log(70)) < 0.6


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [True, False])
def test_the_model_is_pytorchs_transformer_with_embeddings_and_positions_around_it(norm_first):
    # nn.Transformer with the same weights, fed the scaled embeddings plus the sinusoidal
    # encodings, with PyTorch's masks (True = blocked), gives the same logits
    model = tiny("sinusoidal", norm_first).double()
    theirs = nn.Transformer(
        d_model=16,
        nhead=2,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=24,
        dropout=0.0,
        batch_first=True,
        norm_first=norm_first,
    ).double()  # in training mode: PyTorch's inference fast path zeroes padded positions
    model.transformer = transformer.Transformer.from_torch(theirs)
    batch = make_batch(
        [("Thursday, the 14th of Sep 2023", "2023-09-14"), ("1/2", "x")], model.vocab
    )
    sources, targets = batch["sources"], batch["decoder_inputs"]
    src = model.source_embedding(sources) + sinusoidal_encoding(
        sources.shape[1], 16, dtype=torch.float64
    )
    tgt = model.target_embedding(targets) + sinusoidal_encoding(
        targets.shape[1], 16, dtype=torch.float64
    )
    padding = sources == 0
    with torch.no_grad():
        expected = model.output(
            theirs(
                src,
                tgt,
                tgt_mask=nn.Transformer.generate_square_subsequent_mask(
                    targets.shape[1], dtype=torch.float64
                ),
                src_key_padding_mask=padding,
                memory_key_padding_mask=padding,
            )
        )
        got = model(sources, batch["source_lengths"], targets)
    assert padding[1].any()  # the second source is padded
    assert torch.allclose(got, expected, atol=1e-12, rtol=0), (got - expected).abs().max()


@pytest.mark.parametrize("positions", SOURCE_POSITIONS)
def test_attention_weights_sum_to_one_over_real_positions_and_zero_on_padding(positions):
    model = tiny(positions).eval()
    batch = make_batch(SOURCES, model.vocab)
    ids, weights = model.greedy(batch["sources"], batch["source_lengths"], max_len=6)
    assert ids.shape == (3, 6) and weights.shape == (3, 6, 30)
    for b, length in enumerate(batch["source_lengths"].tolist()):
        assert torch.allclose(weights[b, :, :length].sum(-1), torch.ones(6), atol=1e-6)
        assert weights[b, :, length:].eq(0).all()
        assert weights[b, :, :length].gt(0).all()


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positions", SOURCE_POSITIONS)
def test_padding_does_not_change_a_sequence_output(positions, norm_first):
    model = tiny(positions, norm_first).eval()
    pairs = [("14 Sep 2023", "2023-09-14"), ("Thursday, the 14th of Sep 2023", "2023-09-14x")]
    alone = make_batch(pairs[:1], model.vocab)
    padded = make_batch(pairs, model.vocab)
    assert padded["sources"].shape[1] > alone["sources"].shape[1]
    with torch.no_grad():
        one = model(alone["sources"], alone["source_lengths"], alone["decoder_inputs"])
        both = model(padded["sources"], padded["source_lengths"], padded["decoder_inputs"])
    assert torch.allclose(both[0, :11], one[0], atol=1e-5)
    # and chapter 3's greedy decoding writes the same, alone or beside a longer source
    decoded_alone = seq2seq.greedy_decode(model, ["14 Sep 2023"], max_len=8)
    decoded_both = seq2seq.greedy_decode(model, ["14 Sep 2023", pairs[1][0]], max_len=8)
    assert decoded_alone.predictions[0] == decoded_both.predictions[0]


@pytest.mark.parametrize("positions", SOURCE_POSITIONS)
def test_greedy_writes_the_argmax_of_the_teacher_forced_model(positions):
    model = tiny(positions).eval()
    batch = make_batch(SOURCES, model.vocab)
    ids, _ = model.greedy(batch["sources"], batch["source_lengths"], max_len=7)
    inputs = torch.cat([torch.ones(3, 1, dtype=torch.long), ids[:, :-1]], dim=1)
    with torch.no_grad():
        logits = model(batch["sources"], batch["source_lengths"], inputs)
    assert torch.equal(logits.argmax(-1), ids)


def _before_self_attention(model, batch) -> torch.Tensor:
    """What the model's own encoder hands its first self-attention layer."""
    seen = []
    first = model.transformer.encoder.layers[0]
    hook = first.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            model.encode(batch["sources"], batch["source_lengths"])
    finally:
        hook.remove()
    return seen[0]


def test_the_convolutional_encoder_does_not_depend_on_absolute_positions():
    # the convolutions see 2 x 2 characters either side: the date's characters get the
    # same vectors after 4 z's as after 8, wherever they are
    model = tiny("convolution").eval()
    date = "14/09/2023"
    batch = make_batch(["zzzz" + date, "zzzzzzzz" + date], model.vocab)
    embedded = _before_self_attention(model, batch)
    assert embedded.shape == (2, 18, 16)
    assert torch.allclose(embedded[0, 4:14], embedded[1, 8:], atol=1e-6)
    assert not torch.allclose(embedded[0, :4], embedded[1, :4], atol=1e-3)
    assert embedded[0, 14:].eq(0).all()  # padding stays zero
    # with sinusoidal positions the same characters do get different vectors
    sinusoidal = tiny("sinusoidal").eval()
    embedded = _before_self_attention(sinusoidal, batch)
    assert not torch.allclose(embedded[0, 4:14], embedded[1, 8:], atol=1e-3)
    assert len(sinusoidal.convolutions) == 0 and len(model.convolutions) == 2


def test_convolution_plus_sinusoidal_differs_from_convolution_only_by_the_positions():
    convolution = tiny("convolution").eval()
    both = tiny("convolution+sinusoidal").eval()
    # the same parameters, and under the same seed the same initial values
    assert both.state_dict().keys() == convolution.state_dict().keys()
    for name, value in convolution.state_dict().items():
        assert torch.equal(both.state_dict()[name], value), name
    date = "14/09/2023"
    batch = make_batch(["zzzz" + date, "zzzzzzzz" + date], both.vocab)
    embedded = _before_self_attention(both, batch)
    assert not torch.allclose(embedded[0, 4:14], embedded[1, 8:], atol=1e-3)  # positions count
    plain = both.source_embedding.embedding(batch["sources"]) * 4  # sqrt(d_model = 16)
    real = batch["sources"][..., None] != 0
    expected = (plain + sinusoidal_encoding(18, 16)) * real  # padding is 0 before ...
    for convolution_layer in both.convolutions:  # ... and after each convolution
        step = torch.relu(convolution_layer(expected.transpose(1, 2)).transpose(1, 2))
        expected = (expected + step) * real
    assert torch.allclose(embedded, expected, atol=1e-5)


def test_chapter_3_decoding_agrees_with_chapter_4_greedy_search():
    # seq2seq.greedy_decode runs the model's own greedy; transformer.translate runs
    # beam_search with one beam: two implementations of one search
    model = tiny("convolution", seed=3).eval()
    decoded = seq2seq.greedy_decode(model, SOURCES, max_len=8)
    assert decoded.predictions == transformer.translate(model, SOURCES, beam_size=1, max_len=8)
    assert seq2seq.predict(model, SOURCES, max_len=8, batch_size=2) == decoded.predictions
    assert decoded.attention.shape[:2] == decoded.ids.shape


def test_chapter_3_training_teaches_it_to_copy_three_symbols():
    pairs = copy_examples(1500, seed=0, min_len=3, max_len=3, symbols="abcd")
    model = tiny("sinusoidal")
    history = seq2seq.train_seq2seq(
        model, batches(pairs, model.vocab, 32), epochs=3, lr=3e-3, progress=False
    )
    assert history.epochs[-1]["train_loss"] < 0.5 * history.epochs[0]["train_loss"]
    test = copy_examples(200, seed=1, min_len=3, max_len=3, symbols="abcd")
    predictions = seq2seq.predict(model, [s for s, _ in test], max_len=6)
    assert seq2seq.exact_match(predictions, [t for _, t in test]) >= 0.95


@pytest.mark.parametrize("positions", SOURCE_POSITIONS)
def test_save_load_round_trip(positions, tmp_path):
    model = tiny(positions).eval()
    path = tmp_path / "model.safetensors"
    model.save(path, notes={"task": "extract", "seconds": 1.5})
    assert checkpoint_notes(path) == {"task": "extract", "seconds": 1.5}
    loaded = transformer.load_model(path).eval()
    assert type(loaded) is TransformerSeq2Seq and loaded.config == model.config
    batch = make_batch([("14 Sep 2023", "2023-09-14")], model.vocab)
    with torch.no_grad():
        expected = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
        got = loaded(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    assert torch.equal(expected, got)
    assert path.read_bytes()[8:10] == b'{"'  # safetensors (a JSON header), not a pickle


def test_each_chapter_loads_its_own_models_and_says_where_the_other_is(tmp_path):
    ours, theirs = tmp_path / "transformer.safetensors", tmp_path / "rnn.safetensors"
    tiny().save(ours)
    seq2seq.RNNSeq2Seq(attention="dot").save(theirs)
    with pytest.raises(
        ValueError, match="holds a TransformerSeq2Seq, expected an RNNSeq2Seq; a Transformer"
    ):
        seq2seq.load_model(ours)
    with pytest.raises(ValueError, match="holds a RNNSeq2Seq, not a TransformerSeq2Seq"):
        TransformerSeq2Seq.load(theirs)
    with pytest.raises(ValueError, match="source_positions='convolution' \\(this model: 'sin"):
        tiny("sinusoidal").load_weights(ours)


def test_bad_inputs_name_the_argument():
    model = tiny()
    with pytest.raises(ValueError, match=r"sources\[1\]: unknown character '!' at position 3"):
        seq2seq.greedy_decode(model, ["abc", "abc!"])
    with pytest.raises(ValueError, match="source_lengths: expected lengths in"):
        model(torch.ones(1, 3, dtype=torch.long), torch.tensor([0]), torch.ones(1, 2).long())
    with pytest.raises(ValueError, match="d_model: expected an even multiple of num_heads=3"):
        TransformerSeq2Seq(d_model=16, num_heads=3)
    with pytest.raises(
        ValueError,
        match="source_positions: expected one of 'sinusoidal', 'convolution', "
        "'convolution\\+sinusoidal'; got 'learned'",
    ):
        TransformerSeq2Seq(source_positions="learned")
    with pytest.raises(TypeError, match="got Module, which has no `vocab`"):
        seq2seq.train_seq2seq(nn.Module(), [], progress=False)


# --------------------------------------------------------------------------------------
# The shipped models
# --------------------------------------------------------------------------------------


def test_the_shipped_models_are_in_chapter_4s_module_only():
    names = transformer.pretrained_names()
    assert set(SHIPPED) <= set(names) and "dates" in names
    assert not [name for name in seq2seq.pretrained_names() if "transformer" in name]
    for name in SHIPPED:
        model = transformer.load_pretrained(name)
        assert isinstance(model, TransformerSeq2Seq) and not model.training
        # chapter 3's setting: pre-norm, no dropout, trained by scripts/train_seq2seq.py
        assert model.config["norm_first"] is True and model.config["dropout"] == 0.0
        notes = checkpoint_notes(transformer.pretrained_path(name))
        assert notes["task"] == "extract" and notes["threads"] == 1
        assert notes["command"].startswith(f"scripts/train_seq2seq.py --only transformer-{name}")


def test_the_shipped_models_do_what_chapter_3_says():
    # 200 sources of 41-80 characters, longer than any training source (10-40): the
    # convolutional encoders carry over, the one with absolute positions alone does not
    long = date_extraction_splits().long_test[:200]
    scores = {}
    for name in SHIPPED:
        predictions = seq2seq.predict(transformer.load_pretrained(name), [s for s, _ in long])
        scores[name] = seq2seq.exact_match(predictions, [t for _, t in long])
    assert scores["extract-convolution"] >= 0.9, scores
    assert scores["extract-convolution-sinusoidal"] >= 0.9, scores
    assert scores["extract-sinusoidal"] <= scores["extract-convolution"] - 0.3, scores


def test_the_shipped_position_models_compare_like_with_like():
    # extract-convolution-sinusoidal is extract-convolution with sinusoidal positions
    # added, nothing else changed; chapter 3 compares the two
    pair = ("extract-convolution", "extract-convolution-sinusoidal")
    models = [transformer.load_pretrained(name) for name in pair]
    notes = [checkpoint_notes(transformer.pretrained_path(name)) for name in pair]
    same = ("epochs", "lr", "batch_size", "seed", "train_examples", "steps")
    assert {k: notes[0][k] for k in same} == {k: notes[1][k] for k in same}
    configs = [dict(model.config) for model in models]
    assert configs[0].pop("source_positions") == "convolution"
    assert configs[1].pop("source_positions") == "convolution+sinusoidal"
    assert configs[0] == configs[1]
    counts = [sum(p.numel() for p in model.parameters()) for model in models]
    assert counts[0] == counts[1]


def test_the_shipped_date_transformer_follows_the_paper_and_finds_the_dates():
    model = transformer.load_pretrained("dates")
    config = model.config
    assert config["norm_first"] is False and config["source_positions"] == "sinusoidal"
    assert config["dropout"] == 0.1
    notes = checkpoint_notes(transformer.pretrained_path("dates"))
    assert notes["label_smoothing"] == 0.1 and notes["threads"] == 1 and notes["seed"] == 0
    assert notes["command"].startswith("scripts/train_transformer.py")
    test = date_extraction_splits().test[:200]  # the training lengths
    predictions = transformer.translate(model, [s for s, _ in test], max_len=12)
    assert seq2seq.exact_match(predictions, [t for _, t in test]) >= 0.95


def test_the_two_benches_agree_on_the_models_they_share():
    # bench/transformer_dates.py and bench/seq2seq.py decode the same shipped models on
    # the same test sets: stale results in either one show up here
    dates = load_results("transformer_dates")
    chapter_3 = load_results("seq2seq")["models"]
    shared = [name for name in dates["models"] if name in chapter_3]
    assert set(shared) == {
        "extract-additive",
        "extract-none",
        "transformer-extract-convolution",
        "transformer-extract-convolution-sinusoidal",
        "transformer-extract-sinusoidal",
    }
    for name in shared:
        for key in ("parameters", "steps", "train_seconds", "test", "long_test", "buckets"):
            assert dates["models"][name][key] == chapter_3[name][key], (name, key)
    assert dates["greedy_agreement"] == 1.0  # model.greedy and translate(beam_size=1)
    shipped = checkpoint_notes(transformer.pretrained_path("dates"))
    assert dates["transformer_dates_notes"] == shipped  # measured on the shipped weights
