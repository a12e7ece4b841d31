"""lessons.wordpiece.train_wordpiece against Hugging Face ``tokenizers``' WordPieceTrainer
(the reference), with BertNormalizer (lower-case, accents stripped) and BertPreTokenizer
on the same texts.

The reference is not deterministic: it gives the ``##`` form of each character its id in
the order of a Rust hash map, which changes from run to run, and a tie between equally
frequent pairs goes to the pair with the smaller ids, so some ties (and the vocabulary
that follows them) change from run to run too. Our trainer lists the ``##`` characters by
code point. Given the reference's own order for them (read from its output), our
vocabulary is the reference's, entry for entry and in order, which checks every other
step: the alphabet, the counts, the merges and their tie-breaking, and the stop rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

import lessons.wordpiece as wordpiece_module
from lessons.core import data
from lessons.core.results import load_results
from lessons.wordpiece import SPECIAL_TOKENS, WordPieceTokenizer, basic_tokenize, train_wordpiece

PRETRAINED_VOCAB = Path(wordpiece_module.__file__).parent / "pretrained" / "bert-tiny.vocab.txt"


@pytest.fixture(scope="module")
def wiki_texts() -> list[str]:
    """The first 2,000 sentences of the Wikipedia sample's training split, as text."""
    return [" ".join(sentence) for sentence in data.wikipedia("train")[:2000]]


@pytest.fixture(scope="module")
def lee_texts() -> list[str]:
    return [" ".join(sentence) for sentence in data.lee("sentences")]


def reference_vocab(texts: list[str], vocab_size: int, min_frequency: int) -> list[str]:
    """The reference's vocabulary, in id order."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


@pytest.mark.parametrize(
    ("corpus", "vocab_size", "min_frequency"),
    [
        ("wiki_texts", 200, 2),
        ("wiki_texts", 1000, 2),
        ("wiki_texts", 3000, 2),
        ("wiki_texts", 3000, 10),  # stops early: no pair occurs 10 times any more
        ("lee_texts", 2000, 2),
        ("lee_texts", 2000, 1),
    ],
)
def test_equal_to_reference_given_its_order_of_the_continuing_alphabet(
    corpus: str,
    vocab_size: int,
    min_frequency: int,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = request.getfixturevalue(corpus)
    reference = reference_vocab(texts, vocab_size, min_frequency)
    continuing = [token for token in reference if token.startswith("##") and len(token) == 3]
    ours_sorted = train_wordpiece(texts, vocab_size, min_frequency)
    # Our own order of the ## characters: the same set, by code point.
    assert [t for t in ours_sorted if t.startswith("##") and len(t) == 3] == sorted(continuing)
    monkeypatch.setattr(wordpiece_module, "_continuing_alphabet", lambda word_counts: continuing)
    ours = train_wordpiece(texts, vocab_size, min_frequency)
    assert ours == reference
    if min_frequency == 10:
        assert len(ours) < vocab_size  # the stop rule, not the size, ended learning


def test_layout_and_determinism(wiki_texts: list[str]) -> None:
    vocab = train_wordpiece(wiki_texts, 600)
    assert len(vocab) == 600 == len(set(vocab))
    assert vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    words = {word for text in wiki_texts for word in basic_tokenize(text)}
    alphabet = sorted({char for word in words for char in word})
    inner = sorted({char for word in words for char in word[1:]})
    start = len(SPECIAL_TOKENS)
    assert vocab[start : start + len(alphabet)] == alphabet
    start += len(alphabet)
    assert vocab[start : start + len(inner)] == ["##" + char for char in inner]
    learned = vocab[start + len(inner) :]
    assert learned[:3] == ["th", "##er", "the"]  # the most frequent pairs of English text
    assert all(len(token.removeprefix("##")) >= 2 for token in learned)
    assert train_wordpiece(wiki_texts, 600) == vocab


def test_every_word_of_the_corpus_tokenises_without_unk(lee_texts: list[str]) -> None:
    vocab = train_wordpiece(lee_texts, 1500)
    tokenizer = WordPieceTokenizer({token: index for index, token in enumerate(vocab)})
    words = {word for text in lee_texts for word in basic_tokenize(text)}
    pieces = {word: tokenizer.tokenize(word) for word in words}
    assert all("[UNK]" not in tokens for tokens in pieces.values())
    assert all("".join(t.removeprefix("##") for t in tokens) == w for w, tokens in pieces.items())
    # Frequent words are learned whole; the vocabulary does compress the text.
    assert pieces["the"] == ["the"]
    assert sum(map(len, pieces.values())) < sum(map(len, words)) / 2


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(TypeError, match="texts: expected a list of str, got 'a text'"):
        train_wordpiece("a text", 100)
    with pytest.raises(ValueError, match="texts: expected at least one word"):
        train_wordpiece([], 100)
    with pytest.raises(ValueError, match="texts: expected at least one word"):
        train_wordpiece(["  ", "\t"], 100)
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a str, got int"):
        train_wordpiece(["a", 1], 100)
    # specials (5) + alphabet a b c (3) + ##b ##c (2) = 10 entries before any merge
    with pytest.raises(ValueError, match="vocab_size: expected at least 10 .*got 9"):
        train_wordpiece(["abc abc"], 9)
    assert train_wordpiece(["abc abc"], 10) == [*SPECIAL_TOKENS, "a", "b", "c", "##b", "##c"]
    with pytest.raises(ValueError, match="min_frequency: expected an int >= 0, got -1"):
        train_wordpiece(["abc"], 100, -1)


def test_case_is_kept_when_asked() -> None:
    vocab = train_wordpiece(["Abc abc"], 20, 1, do_lower_case=False)
    assert vocab[5:9] == ["A", "a", "b", "c"]  # by code point: upper case first
    assert "abc" in vocab and "Abc" in vocab


def test_shipped_vocabulary_is_what_the_script_learns() -> None:
    """scripts/train_wordpiece.py's call, repeated: the 8,000 entries of the shipped
    ``bert-tiny.vocab.txt``, in order, and the size its saved results report."""
    texts = [" ".join(sentence) for sentence in data.wikipedia("train")]
    shipped = PRETRAINED_VOCAB.read_text(encoding="utf-8").split("\n")[:-1]
    assert train_wordpiece(texts, 8000, 2) == shipped
    results = load_results("wordpiece")
    assert results["vocab_size"] == len(shipped) == 8000
    # Only a character never seen in training makes [UNK]: 1 validation word in 34,868.
    assert 0 < results["validation"]["tiny"]["unk_share"] < 1e-4
