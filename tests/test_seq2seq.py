"""lessons.seq2seq: shapes, attention weights over the real source positions, padding,
greedy decoding, a tiny model that learns to copy, metrics, files and bad inputs.

Chapter 3's model without recurrence is chapter 4's ``TransformerSeq2Seq``: its tests are
in tests/test_transformer_seq2seq.py."""

import math
from datetime import date

import pytest
import torch

from lessons.core.checkpoint import checkpoint_notes
from lessons.core.tasks import (
    DATE_FORMATS,
    batches,
    copy_examples,
    copy_splits,
    date_extraction_splits,
    format_date,
    make_batch,
)
from lessons.seq2seq import (
    RNNSeq2Seq,
    accuracy_by_length,
    exact_match,
    greedy_decode,
    load_model,
    load_pretrained,
    predict,
    pretrained_names,
    pretrained_path,
    seq2seq_loss,
    train_seq2seq,
)

torch.set_num_threads(1)

SOURCES = ["14 Sep 2023", "Thursday, the 14th of Sep 2023", "1/2"]
NONE_GAP = 0.05  # how far below the attention model the model without it must be
KINDS = [None, "additive", "dot", "general"]


def tiny(kind: str | None, seed: int = 0, **changes) -> RNNSeq2Seq:
    torch.manual_seed(seed)
    return RNNSeq2Seq(attention=kind, **{"embedding_dim": 8, "hidden_dim": 12, **changes})


@pytest.mark.parametrize("kind", KINDS)
def test_logits_shape_and_loss_at_initialisation(kind):
    model = tiny(kind).requires_grad_(False)
    batch = make_batch([("14 Sep 2023", "2023-09-14"), ("1/2", "x")], model.vocab)
    logits = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    assert logits.shape == (2, 11, len(model.vocab)) and logits.dtype == torch.float32
    # an untrained model is close to uniform over the 70 ids: loss about log(70)
    assert abs(seq2seq_loss(model, batch).item() - math.log(70)) < 0.6


@pytest.mark.parametrize("kind", KINDS[1:])
def test_attention_weights_sum_to_one_over_real_positions_and_zero_on_padding(kind):
    model = tiny(kind).eval()
    batch = make_batch(SOURCES, model.vocab)
    ids, weights = model.greedy(batch["sources"], batch["source_lengths"], max_len=6)
    assert ids.shape == (3, 6) and weights.shape == (3, 6, 30)
    for b, length in enumerate(batch["source_lengths"].tolist()):
        assert torch.allclose(weights[b, :, :length].sum(-1), torch.ones(6), atol=1e-6)
        assert weights[b, :, length:].eq(0).all()
        assert weights[b, :, :length].gt(0).all()


def test_dot_attention_is_the_softmax_of_state_times_encoder_states():
    model = tiny("dot").eval()
    batch = make_batch(SOURCES[:2], model.vocab)
    keys, mask, final, state = model.encode(batch["sources"], batch["source_lengths"])
    _, _, weights = model.step(torch.tensor([1, 1]), state, keys, mask, final)
    by_hand = torch.softmax(keys[1, :30] @ state[1], dim=0)
    assert torch.allclose(weights[1], by_hand, atol=1e-6)
    by_hand = torch.softmax(keys[0, :11] @ state[0], dim=0)
    assert torch.allclose(weights[0, :11], by_hand, atol=1e-6)


def test_without_attention_the_decoder_sees_only_the_final_state():
    model = tiny(None).eval()
    batch = make_batch(SOURCES[:1], model.vocab)
    keys, mask, final, state = model.encode(batch["sources"], batch["source_lengths"])
    previous = torch.tensor([1])
    logits, _, weights = model.step(previous, state, keys, mask, final)
    assert weights is None and model.score is None
    scrambled = torch.randn_like(keys)  # the encoder states other than `final` are unused
    assert torch.equal(model.step(previous, state, scrambled, mask, final)[0], logits)
    assert greedy_decode(model, SOURCES).attention is None


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_a_sequence_output(kind):
    model = tiny(kind).eval()
    pairs = [("14 Sep 2023", "2023-09-14"), ("Thursday, the 14th of Sep 2023", "2023-09-14x")]
    alone = make_batch(pairs[:1], model.vocab)
    padded = make_batch(pairs, model.vocab)
    assert padded["sources"].shape[1] > alone["sources"].shape[1]
    with torch.no_grad():
        one = model(alone["sources"], alone["source_lengths"], alone["decoder_inputs"])
        both = model(padded["sources"], padded["source_lengths"], padded["decoder_inputs"])
    assert torch.allclose(both[0, :11], one[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["additive", "general"])
def test_greedy_writes_the_argmax_of_the_teacher_forced_model(kind):
    model = tiny(kind).eval()
    batch = make_batch(SOURCES, model.vocab)
    ids, _ = model.greedy(batch["sources"], batch["source_lengths"], max_len=7)
    inputs = torch.cat([torch.ones(3, 1, dtype=torch.long), ids[:, :-1]], dim=1)
    with torch.no_grad():
        logits = model(batch["sources"], batch["source_lengths"], inputs)
    assert torch.equal(logits.argmax(-1), ids)


def test_a_tiny_model_learns_to_copy_three_symbols():
    pairs = copy_examples(1500, seed=0, min_len=3, max_len=3, symbols="abcd")
    model = tiny("additive", hidden_dim=16)
    history = train_seq2seq(
        model, batches(pairs, model.vocab, 32), epochs=3, lr=1e-2, progress=False
    )
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    test = copy_examples(200, seed=1, min_len=3, max_len=3, symbols="abcd")
    decoded = greedy_decode(model, [s for s, _ in test], max_len=6)
    assert exact_match(decoded.predictions, [t for _, t in test]) >= 0.95
    # ids: the three symbols, then </s>, then padding; attention rows after </s> are 0
    right = [
        i for i, (p, (_, t)) in enumerate(zip(decoded.predictions, test, strict=True)) if p == t
    ]
    assert decoded.ids[right, 3].eq(2).all() and decoded.ids[right, 4:].eq(0).all()
    assert decoded.attention[right, 4:].eq(0).all()
    assert torch.allclose(decoded.attention[right, :4].sum(-1), torch.ones(len(right), 4))


def test_exact_match_and_accuracy_by_length():
    assert exact_match(["ab", "c", "d"], ["ab", "c", "x"]) == pytest.approx(2 / 3)
    pairs = [("aa", "aa"), ("bb", "bb"), ("ccc", "ccc")]
    assert accuracy_by_length(pairs, ["aa", "b", "ccc"]) == {2: (0.5, 2), 3: (1.0, 1)}
    with pytest.raises(ValueError, match="predictions and targets"):
        exact_match(["a"], ["a", "b"])


@pytest.mark.parametrize("kind", [None, "general"])
def test_save_load_round_trip(kind, tmp_path):
    model = tiny(kind).eval()
    path = tmp_path / "model.safetensors"
    model.save(path, notes={"task": "dates", "seconds": 1.5})
    assert checkpoint_notes(path) == {"task": "dates", "seconds": 1.5}
    loaded = load_model(path).eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    batch = make_batch([("14 Sep 2023", "2023-09-14")], model.vocab)
    with torch.no_grad():
        expected = model(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
        got = loaded(batch["sources"], batch["source_lengths"], batch["decoder_inputs"])
    assert torch.equal(expected, got)
    assert path.read_bytes()[8:10] == b'{"'  # safetensors (a JSON header), not a pickle


def test_loading_another_configuration_or_class_fails_clearly(tmp_path):
    path = tmp_path / "model.safetensors"
    tiny("additive").save(path)
    with pytest.raises(ValueError, match=r"attention='additive' \(this model: 'dot'\)"):
        tiny("dot").load_weights(path)
    with pytest.raises(ValueError, match=r"hidden_dim=12 \(this model: 16\)"):
        tiny("additive", hidden_dim=16).load_weights(path)
    with pytest.raises(FileNotFoundError, match="path: no checkpoint"):
        load_model(tmp_path / "missing.safetensors")


def test_bad_inputs_name_the_argument():
    model = tiny("dot")
    with pytest.raises(ValueError, match=r"sources\[1\]: unknown character '!' at position 3"):
        greedy_decode(model, ["abc", "abc!"])
    with pytest.raises(ValueError, match=r"sources\[0\]: expected at least one character"):
        greedy_decode(model, [""])
    with pytest.raises(TypeError, match="sources: expected a list of strings"):
        greedy_decode(model, "abc")
    with pytest.raises(
        ValueError,
        match=r"attention: expected one of None, 'additive', 'dot', 'general'; got 'luong'",
    ):
        RNNSeq2Seq(attention="luong")
    with pytest.raises(ValueError, match="source_lengths: expected lengths in"):
        model(torch.ones(1, 3, dtype=torch.long), torch.tensor([0]), torch.ones(1, 2).long())
    with pytest.raises(
        TypeError,
        match="model: expected an encoder-decoder .* got Linear, which "
        "has no `vocab` \\(a CharVocab\\) and has no `greedy` method",
    ):
        greedy_decode(torch.nn.Linear(2, 2), ["abc"])
    with pytest.raises(TypeError, match="got str, which is not a torch.nn.Module"):
        predict("extract-additive", ["abc"])


def test_accuracy_plot_draws_the_numbers_it_is_given():
    import matplotlib

    matplotlib.use("Agg")
    from lessons.figures.attention import plot_accuracy_by_length

    results = {"none": {10: (1.0, 5), 31: (0.25, 4)}, "additive": {10: (1.0, 5), 31: (1.0, 4)}}
    ax = plot_accuracy_by_length(results, max_train_len=30)
    lines = [line for line in ax.get_lines() if line.get_label() in results]
    assert [list(line.get_ydata()) for line in lines] == [[100.0, 25.0], [100.0, 100.0]]


def test_the_shipped_models_do_what_the_chapter_says():
    # the defaults that scripts/train_seq2seq.py trains on; 200 sources of 41-80
    # characters, longer than any training source (10-40)
    long = date_extraction_splits().long_test[:200]
    scores = {}
    for name in ("extract-none", "extract-additive"):
        model = load_pretrained(name)
        assert not model.training
        predictions = predict(model, [s for s, _ in long])
        scores[name] = exact_match(predictions, [t for _, t in long])
    assert scores["extract-additive"] >= 0.9, scores
    assert scores["extract-none"] <= scores["extract-additive"] - NONE_GAP, scores
    assert checkpoint_notes(pretrained_path("extract-none"))["task"] == "extract"
    copies = [pair for pair in copy_splits().test if 11 <= len(pair[0]) <= 20][:100]
    scores = {}
    for name in ("copy-none", "copy-additive"):
        predictions = predict(load_pretrained(name), [s for s, _ in copies], max_len=32)
        scores[name] = exact_match(predictions, [t for _, t in copies])
    assert scores["copy-none"] < 0.1 and scores["copy-additive"] > 0.9  # the bottleneck


def test_load_pretrained_names_the_shipped_models():
    names = pretrained_names()
    assert {"extract-none", "extract-additive", "extract-dot", "extract-general"} <= set(names)
    # chapter 3's models without recurrence are lessons.transformer's, ELMo is chapter 2's
    assert all(
        not name.startswith(("elmo", "transformer", "extract-transformer")) for name in names
    )
    with pytest.raises(ValueError, match=r"name: expected one of \['copy-additive', "):
        load_pretrained("dates-additive")
    total = sum(pretrained_path(name).stat().st_size for name in names)
    assert total < 5e6  # all shipped seq2seq weights together


def test_the_shipped_attention_model_looks_at_the_date():
    # a date (every format) after and before filler, 52 to 85 characters in all: the
    # additive model writes each ISO character mostly from the date's own characters
    left = "please see the report we made for the team"
    right = "and tell them when you can come to the office"
    sources, spans, targets = [], [], []
    for i, name in enumerate(DATE_FORMATS):
        day = date(1960 + 5 * i, 1 + i % 12, 3 + 2 * i)
        written = format_date(day, name)
        for before, after in ((left, right), (left[:12], right), (left, right[:8])):
            sources.append(f"{before} {written} {after}")
            spans.append((len(before) + 1, len(before) + 1 + len(written)))
            targets.append(day.isoformat())
    decoded = greedy_decode(load_pretrained("extract-additive"), sources)
    assert exact_match(decoded.predictions, targets) >= 0.9
    on_date = [decoded.attention[b, :10, s:e].sum(-1).mean() for b, (s, e) in enumerate(spans)]
    assert sum(on_date) / len(on_date) > 0.8
