"""Why BERT's three embeddings may be added, and the model's insides (notebooks/05_bert.ipynb,
sections 3 and 8): the one-hot identity, and every layer's vectors and attention weights
against Hugging Face's ``output_hidden_states`` / ``output_attentions``."""

from __future__ import annotations

import pytest
import torch

from lessons.bert import (
    BertConfig,
    BertEmbeddings,
    BertModel,
    head_accuracy,
    internals,
    linear_read_back,
    one_hot_inputs,
    stacked_embeddings,
)
from lessons.wordpiece import WordPieceTokenizer, minilm_path

TINY = BertConfig(
    vocab_size=50,
    hidden_size=12,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=20,
    max_position_embeddings=16,
)


#: One torch thread for every test here (the shared fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def minilm() -> BertModel:
    return BertModel.from_minilm()


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    tokenizer = WordPieceTokenizer.from_minilm()
    return tokenizer(
        ["the cat sat on the mat .", "a longer sentence, with a comma and more words in it"],
        ["it was tired .", "short"],
    )


def test_the_sum_of_three_embeddings_is_one_linear_layer_on_one_hots() -> None:
    torch.manual_seed(0)
    embeddings = BertEmbeddings(TINY).double()
    ids = torch.randint(TINY.vocab_size, (3, 7))
    types = torch.randint(2, (3, 7))
    x = one_hot_inputs(ids, types, TINY, dtype=torch.float64)
    assert x.shape == (3, 7, TINY.vocab_size + TINY.max_position_embeddings + 2)
    assert torch.equal(x.sum(-1), torch.full((3, 7), 3.0, dtype=torch.float64))
    # The ones sit at the token, at vocab_size + position and at vocab_size + 16 + segment.
    assert x[1, 4, ids[1, 4]] == 1 and x[1, 4, TINY.vocab_size + 4] == 1
    assert x[1, 4, TINY.vocab_size + TINY.max_position_embeddings + types[1, 4]] == 1
    linear = x @ stacked_embeddings(embeddings)
    summed = embeddings.summed(ids, types)
    assert (linear - summed).abs().max() < 1e-12
    # and forward is LayerNorm (+ dropout, off in eval) of that sum
    embeddings.eval()
    assert torch.allclose(embeddings(ids, types), embeddings.norm(summed), atol=1e-12)


def test_the_identity_holds_for_the_real_minilm_embeddings(minilm, batch) -> None:
    ids, types = batch["input_ids"], batch["token_type_ids"]
    x = one_hot_inputs(ids, types, minilm.bert_config)
    linear = x @ stacked_embeddings(minilm.embeddings)
    assert (linear - minilm.embeddings.summed(ids, types)).abs().max() < 1e-6


def test_one_hot_inputs_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_position_embeddings"):
        one_hot_inputs(torch.zeros(1, 17, dtype=torch.long), None, TINY)
    with pytest.raises(TypeError, match="embeddings: expected a BertEmbeddings"):
        stacked_embeddings(torch.zeros(3, 3))


def test_internals_equal_hugging_face_hidden_states_and_attentions(minilm, batch) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertModel.from_pretrained(
        str(minilm_path()), attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        ours = internals(minilm, **batch)
        theirs = reference(**batch, output_hidden_states=True, output_attentions=True)
        last = minilm(**batch).last_hidden_state
    layers, heads = minilm.bert_config.num_hidden_layers, minilm.bert_config.num_attention_heads
    seq = batch["input_ids"].shape[1]
    assert ours.hidden_states.shape == (layers + 1, 2, seq, 384)
    assert ours.attentions.shape == (layers, 2, heads, seq, seq)
    # the same model; keeping the weights takes the explicit softmax path, not the fused one
    real = batch["attention_mask"].bool()
    assert (ours.hidden_states[-1] - last)[real].abs().max() < 1e-5
    for k in range(layers + 1):  # padding positions are not compared: neither model uses them
        difference = (ours.hidden_states[k] - theirs.hidden_states[k])[real].abs().max()
        assert difference < 1e-5, k
    for k in range(layers):
        assert (ours.attentions[k] - theirs.attentions[k]).abs().max() < 1e-5, k
    # every row of weights sums to one over the real keys, and padding gets nothing
    assert torch.allclose(ours.attentions.sum(-1), torch.ones(()), atol=1e-5)
    assert (~real[0]).any() and ours.attentions[:, 0][..., ~real[0]].abs().max() == 0
    # the layers are left as they were found
    assert not any(layer.keep_weights or layer.weights for layer in minilm.encoder.layers)


def test_head_accuracy_counts_where_each_head_looks_most() -> None:
    # 1 layer, 1 sentence of 4 tokens, 2 heads: head 0 looks at the next token,
    # head 1 always at position 0.
    attention = torch.zeros(1, 1, 2, 4, 4)
    for query in range(4):
        attention[0, 0, 0, query, min(query + 1, 3)] = 1.0
        attention[0, 0, 1, query, 0] = 1.0
    next_token = torch.tensor([[1, 2, 3, -1]])
    scores = head_accuracy(attention, next_token)
    assert scores.shape == (1, 2)
    assert scores.tolist() == [[1.0, 0.0]]
    first = torch.tensor([[0, 0, -1, 0]])
    assert head_accuracy(attention, first).tolist() == [[0.0, 1.0]]
    # a tie goes to the first position with the largest weight
    tied = torch.full((1, 1, 1, 2, 2), 0.5)
    assert head_accuracy(tied, torch.tensor([[0, 1]])).tolist() == [[0.5]]


def test_head_accuracy_checks_its_arguments() -> None:
    attention = torch.rand(1, 2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"targets: expected shape \(2, 4\)"):
        head_accuracy(attention, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="targets: expected key positions"):
        head_accuracy(attention, torch.full((2, 4), 4))
    with pytest.raises(ValueError, match="nothing to score"):
        head_accuracy(attention, torch.full((2, 4), -1))
    with pytest.raises(ValueError, match="attentions"):
        head_accuracy(torch.rand(2, 3, 4, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="model: expected a BertModel"):
        internals(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long))


def test_linear_read_back_reads_what_is_linearly_there_and_nothing_else() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 8, generator=g) * 4
    labels = torch.randint(5, (500,), generator=g)
    features = centres[labels] + 0.1 * torch.randn(500, 8, generator=g)
    result = linear_read_back(features, labels)
    assert result.accuracy == 1.0 and len(result.labels) == 100
    assert result.penalty in (1e-4, 1e-3, 1e-2, 1e-1)
    # labels unrelated to the features are read back at about chance (1/5)
    noise = torch.randint(5, (500,), generator=g)
    assert linear_read_back(features, noise).accuracy < 0.35
    # the test fifth is held out: the same seed gives the same split
    assert torch.equal(
        linear_read_back(features, labels, seed=3).labels,
        linear_read_back(features, noise * 0 + labels, seed=3).labels,
    )


def test_the_minilm_sum_keeps_the_token_and_blurs_the_position(minilm) -> None:
    """The measurement of section 3, smaller: 2,000 random (token, position, segment)
    triples of whole-word tokens, positions 0-127. Token identity comes back almost
    always; the exact position far less often, yet far above chance (1/128)."""
    g = torch.Generator().manual_seed(0)
    n = 2000
    tokens = torch.randint(1997, 29612, (n,), generator=g)
    tokens = tokens % 200 + 1997  # 200 distinct words, so each is seen in training
    positions = torch.randint(128, (n,), generator=g)
    segments = torch.randint(2, (n,), generator=g)
    e = minilm.embeddings
    with torch.no_grad():
        summed = (
            e.word_embeddings.weight[tokens]
            + e.position_embeddings.weight[positions]
            + e.token_type_embeddings.weight[segments]
        )
    assert linear_read_back(summed, tokens - 1997).accuracy > 0.9
    position = linear_read_back(summed, positions).accuracy
    assert 0.05 < position < 0.9


def test_linear_read_back_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="labels: expected 20 labels"):
        linear_read_back(torch.zeros(20, 3), torch.zeros(19, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 10 examples"):
        linear_read_back(torch.zeros(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="penalties"):
        linear_read_back(torch.zeros(20, 3), torch.zeros(20, dtype=torch.long), penalties=())
