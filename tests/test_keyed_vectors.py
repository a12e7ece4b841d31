"""KeyedVectors' files: word2vec.c's text and binary formats, read and written both ways
against gensim (which reads and writes the files of the original C tool)."""

import struct

import gensim
import numpy as np
import pytest
import torch

from lessons.core.keyed_vectors import KeyedVectors

# Accents, Greek, Cyrillic, CJK and an emoji: one to four bytes per character in UTF-8.
WORDS = ["the", "café", "naïve", "Ελλάδα", "москва", "東京", "🙂", "end"]


@pytest.fixture
def ours() -> KeyedVectors:
    g = torch.Generator().manual_seed(0)
    vectors = torch.randn(len(WORDS), 7, generator=g) * torch.logspace(-3, 3, 7)
    return KeyedVectors(WORDS, vectors)


@pytest.fixture
def theirs(ours) -> gensim.models.KeyedVectors:
    keyed = gensim.models.KeyedVectors(ours.vector_size)
    keyed.add_vectors(ours.index_to_key, ours.vectors.numpy())
    return keyed


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_what_we_write(tmp_path, ours, binary):
    path = tmp_path / "ours.bin"
    ours.save_word2vec_format(path, binary=binary)
    loaded = gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert loaded.index_to_key == WORDS
    assert np.array_equal(loaded.vectors, ours.vectors.numpy())  # float32 exactly


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_what_gensim_writes(tmp_path, theirs, binary):
    path = tmp_path / "theirs.bin"
    theirs.save_word2vec_format(str(path), binary=binary)
    loaded = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert loaded.index_to_key == WORDS
    assert torch.equal(loaded.vectors, torch.from_numpy(theirs.vectors))


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_through_our_own_files(tmp_path, ours, binary):
    ours.save_word2vec_format(tmp_path / "v", binary=binary)
    back = KeyedVectors.load_word2vec_format(tmp_path / "v", binary=binary)
    assert back.index_to_key == ours.index_to_key
    assert torch.equal(back.vectors, ours.vectors)


def test_binary_bytes_are_word2vec_c_records(tmp_path):
    """The header line, then per word: UTF-8 bytes, a space, little-endian float32s and a
    newline (word2vec.c's ``fwrite`` of each number followed by ``fprintf(fo, "\\n")``)."""
    KeyedVectors(["é", "b"], torch.tensor([[1.0, -2.5], [0.125, 3.0]])).save_word2vec_format(
        tmp_path / "v.bin", binary=True
    )
    expected = (
        b"2 2\n"
        + b"\xc3\xa9 " + struct.pack("<ff", 1.0, -2.5) + b"\n"
        + b"b " + struct.pack("<ff", 0.125, 3.0) + b"\n"
    )  # fmt: skip
    assert (tmp_path / "v.bin").read_bytes() == expected


def test_binary_records_without_newlines_are_read(tmp_path):
    """gensim writes no newline after a vector; a vector's last byte may itself be 0x0a."""
    newline_byte = struct.unpack("<f", b"\x00\x00\x80\x0a")[0]  # a float32 ending in b"\n"
    body = b"x " + struct.pack("<ff", 2.0, newline_byte) + b"y " + struct.pack("<ff", 4.0, 5.0)
    (tmp_path / "v.bin").write_bytes(b"2 2\n" + body)
    loaded = KeyedVectors.load_word2vec_format(tmp_path / "v.bin", binary=True)
    assert loaded.index_to_key == ["x", "y"]
    assert loaded.vectors.tolist() == [[2.0, newline_byte], [4.0, 5.0]]


def test_text_numbers_read_back_to_the_same_float32(tmp_path):
    values = torch.tensor([[1 / 3, -2e-8, 3.4028e38, 1.17549435e-38]])
    KeyedVectors(["w"], values).save_word2vec_format(tmp_path / "v.txt")
    assert torch.equal(KeyedVectors.load_word2vec_format(tmp_path / "v.txt").vectors, values)


def test_the_wrong_variant_says_which_to_use(tmp_path, ours):
    ours.save_word2vec_format(tmp_path / "v.bin", binary=True)
    with pytest.raises(ValueError, match=r"not UTF-8 text.*binary=True"):
        KeyedVectors.load_word2vec_format(tmp_path / "v.bin")
    ours.save_word2vec_format(tmp_path / "v.txt")
    with pytest.raises(ValueError, match=r"text format \(binary=False\)"):
        KeyedVectors.load_word2vec_format(tmp_path / "v.txt", binary=True)


def test_damaged_files_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="white space"):
        KeyedVectors(["new york"], torch.zeros(1, 2)).save_word2vec_format(tmp_path / "x.txt")
    (tmp_path / "short.txt").write_text("2 3\na 1 2 3\n")
    with pytest.raises(ValueError, match="announces 2 words but the file has 1"):
        KeyedVectors.load_word2vec_format(tmp_path / "short.txt")
    (tmp_path / "header.txt").write_text("a 1 2 3\n")
    with pytest.raises(ValueError, match="first line must be"):
        KeyedVectors.load_word2vec_format(tmp_path / "header.txt")
    (tmp_path / "numbers.txt").write_text("1 3\na 1 2\n")
    with pytest.raises(ValueError, match=r"line 2: expected 3 numbers after the word 'a', got 2"):
        KeyedVectors.load_word2vec_format(tmp_path / "numbers.txt")
    record = b"a " + struct.pack("<f", 1.0) + b"\n"
    (tmp_path / "cut.bin").write_bytes(b"2 1\n" + record)
    with pytest.raises(
        ValueError, match="announces 2 words of 1 numbers but the file ends after 1"
    ):
        KeyedVectors.load_word2vec_format(tmp_path / "cut.bin", binary=True)
    (tmp_path / "latin1.bin").write_bytes(b"1 1\ncaf\xe9 " + struct.pack("<f", 1.0))
    with pytest.raises(ValueError, match=r"word 1 .* is not UTF-8"):
        KeyedVectors.load_word2vec_format(tmp_path / "latin1.bin", binary=True)
    (tmp_path / "extra.bin").write_bytes(b"1 1\na " + struct.pack("<f", 1.0) + b"b junk")
    with pytest.raises(ValueError, match="6 bytes follow the 1 words"):
        KeyedVectors.load_word2vec_format(tmp_path / "extra.bin", binary=True)
    with pytest.raises(TypeError, match="binary: expected True or False, got str"):
        KeyedVectors.load_word2vec_format(tmp_path / "short.txt", binary="yes")
