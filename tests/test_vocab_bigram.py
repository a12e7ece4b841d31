"""Vocabulary and the tiny bigram language model of the getting-started chapter."""

import math

import pytest
import torch
from torch import nn

from lessons.bigram import BigramLanguageModel, bigram_dataset, unigram_perplexity
from lessons.core.train import evaluate, train
from lessons.core.vocab import UNK, Vocabulary

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]


def test_vocabulary_orders_by_frequency_then_alphabet():
    vocab = Vocabulary.from_sentences(SENTENCES)
    # the:2 cat:2 sat:2 (alphabetical among ties), then a:1 dog:1
    assert vocab.index_to_key == [UNK, "cat", "sat", "the", "a", "dog"]
    assert vocab["cat"] == 1 and vocab["zebra"] == 0
    assert vocab.encode(["the", "zebra"]) == [3, 0]
    assert vocab.decode([3, 1, 0]) == ["the", "cat", UNK]
    assert "dog" in vocab and "zebra" not in vocab
    assert len(vocab) == 6


def test_vocabulary_limits_and_counts_unknown_tokens():
    vocab = Vocabulary.from_sentences(SENTENCES, max_size=2)
    assert vocab.index_to_key == [UNK, "cat", "sat"]
    assert vocab.counts == {"cat": 2, "sat": 2, UNK: 4}  # the, the, a, dog
    assert Vocabulary.from_sentences(SENTENCES, min_count=2).index_to_key == [
        UNK,
        "cat",
        "sat",
        "the",
    ]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: Vocabulary.from_sentences([]), ValueError, "empty corpus"),
        (lambda: Vocabulary.from_sentences(42), TypeError, "list of token lists, got int"),
        (lambda: Vocabulary.from_sentences("a b"), TypeError, "got one string"),
        (
            lambda: Vocabulary.from_sentences([{"a"}]),
            TypeError,
            r"sentences\[0\]: expected a list of string tokens, got set",
        ),
        (lambda: Vocabulary.from_sentences([[]]), ValueError, "empty corpus"),
        (
            lambda: Vocabulary.from_sentences(["the cat"]),
            TypeError,
            r"sentences\[0\]: .*, got 'the cat'",
        ),
        (
            lambda: Vocabulary.from_sentences([["a", 3]]),
            TypeError,
            r"sentences\[0\]\[1\]: expected a string token, got int 3",
        ),
        (lambda: Vocabulary.from_sentences(SENTENCES, min_count=5), ValueError, "min_count=5"),
        (lambda: Vocabulary.from_sentences(SENTENCES, max_size=0), ValueError, "max_size"),
        (lambda: Vocabulary.from_sentences(SENTENCES).encode("cat"), TypeError, "tokens"),
        (
            lambda: Vocabulary.from_sentences(SENTENCES).decode([99]),
            IndexError,
            "99 is out of range",
        ),
    ],
)
def test_vocabulary_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bigram_dataset_pairs_neighbours():
    vocab = Vocabulary.from_sentences(SENTENCES)
    dataset = bigram_dataset(SENTENCES, vocab)
    pairs = [vocab.decode([int(a), int(b)]) for a, b in zip(*dataset.tensors, strict=True)]
    assert pairs == [["the", "cat"], ["cat", "sat"], ["the", "dog"], ["dog", "sat"], ["a", "cat"]]
    with pytest.raises(ValueError, match="two or more words"):
        bigram_dataset([["alone"]], vocab)


def test_unigram_perplexity_of_a_uniform_corpus():
    # targets 0..3 once each, add-one smoothing: every word has probability 1/4
    data = torch.utils.data.TensorDataset(torch.zeros(4, dtype=torch.long), torch.arange(4))
    assert unigram_perplexity(data, data, vocab_size=4) == pytest.approx(4.0)


def test_unigram_perplexity_by_hand():
    # a uniform corpus gives 4 whatever is counted; here the counts matter. Training
    # targets 0, 0, 0, 1 in a vocabulary of 3: counts + 1 = 4, 2, 1, so p = 4/7, 2/7, 1/7.
    # Test targets 0 and 2: exp(-(log 4/7 + log 1/7) / 2) = sqrt(7/4 * 7) = 3.5
    train_targets, test_targets = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 2])
    train_data = torch.utils.data.TensorDataset(torch.zeros_like(train_targets), train_targets)
    test_data = torch.utils.data.TensorDataset(torch.zeros_like(test_targets), test_targets)
    assert unigram_perplexity(train_data, test_data, vocab_size=3) == pytest.approx(3.5)


def test_bigram_model_learns_a_deterministic_language():
    # "a b c d a b c d ...": the next word is fully determined, so perplexity -> 1
    sentences = [["a", "b", "c", "d"] * 5] * 20
    vocab = Vocabulary.from_sentences(sentences)
    dataset = bigram_dataset(sentences, vocab)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32)
    model = BigramLanguageModel(len(vocab), dim=8)
    train(model, loader, criterion=nn.CrossEntropyLoss(), lr=0.05, epochs=20, progress=False)
    loss = evaluate(model, loader, criterion=nn.CrossEntropyLoss())["loss"]
    assert math.exp(loss) < 1.05
    assert unigram_perplexity(dataset, dataset, len(vocab)) > 3.5  # four words, equally frequent
    prediction = model(torch.tensor(vocab.encode(["a", "d"]))).argmax(dim=-1)
    assert vocab.decode(prediction) == ["b", "a"]


def test_bigram_model_bad_input():
    with pytest.raises(ValueError, match="vocab_size: expected an int >= 2, got 1"):
        BigramLanguageModel(1)
    with pytest.raises(ValueError, match="dim"):
        BigramLanguageModel(10, dim=0)
    with pytest.raises(
        TypeError, match="words: expected word ids of dtype torch.long, got torch.float32"
    ):
        BigramLanguageModel(10)(torch.zeros(3))


def test_vocabulary_file_round_trip_keeps_every_id(tmp_path):
    vocab = Vocabulary.from_sentences(SENTENCES)
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.index_to_key == vocab.index_to_key
    assert [loaded[w] for w in vocab.index_to_key] == list(range(len(vocab)))


@pytest.mark.parametrize(
    ("text", "message"),
    [("cat\n<unk>\n", "first line"), ("", "first line"), ("<unk>\ncat\ncat\n", "repeated")],
)
def test_vocabulary_load_rejects_other_files(tmp_path, text, message):
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Vocabulary.load(path)
