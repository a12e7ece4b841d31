"""Generated sequence-to-sequence tasks: dates (alone or inside a text), copying, reversal.

Used in: notebooks/03_attention.ipynb, sections 1 (the bottleneck), 2 (Bahdanau and
Luong attention) and 6 (when recurrence isn't needed).

Nothing is downloaded: every example is generated from a seed, so the same seed gives the
same lists on every machine. An example is a pair of strings ``(source, target)``:

* **dates**: a date written in one of `DATE_FORMATS` (``"Thursday, the 14th of September
  2023"``, ``"14/09/2023"``, ``"SEP 14, 2023"``, ...) -> the ISO form ``"2023-09-14"``.
  Sources are 10 to 37 characters long; every target is 10 characters.
* **date extraction** (the chapter's main task): the same dates with random filler words
  before and after them, ``"see you after 14 Sep 2023 in the office"`` ->
  ``"2023-09-14"``. Sources of 10 to 120 characters (`date_extraction_splits`).
* **copy**: ``"cabd"`` -> ``"cabd"``; **reversal**: ``"cabd"`` -> ``"dbac"``.

`date_extraction_splits`, `date_splits` and `copy_splits` split by *input length*: the
training set and the in-distribution test set hold sources of at most ``max_train_len``
characters (40 for date extraction, 30 for dates, 20 for copy), the long test set only
sources longer than that (41-120, 31-37 and 21-30), so the models meet those lengths for
the first time at test time.

In date extraction the answer is always one date, wherever it is and however much text
surrounds it. A model with attention can look for it by its content (digits, a month
name); a model without attention must squeeze it into the encoder's final state and keep
it there while the encoder reads the rest of the text: with a small state, the longer
the text, the more often it fails. A copied string carries as much as its length: any
fixed-length summary must run out, which is the bottleneck of section 1.

Models read characters through `CharVocab`: ids 0, 1, 2 are ``<pad>``, ``<s>`` and
``</s>``, then one id per character of `ALPHABET`. `make_batch` turns pairs into the
padded tensors the models of `lessons.seq2seq` take.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import torch

from lessons.core import checks

__all__ = [
    "ALPHABET",
    "BOS",
    "CharVocab",
    "DATE_FORMATS",
    "LengthSplits",
    "EOS",
    "PAD",
    "batches",
    "copy_examples",
    "copy_splits",
    "FILLER_WORDS",
    "date_examples",
    "date_extraction_examples",
    "date_extraction_splits",
    "date_splits",
    "format_date",
    "make_batch",
    "reverse_examples",
]

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
#: Every character a source or target may hold: what the dates need, and the letters
#: that copy and reversal draw their symbols from.
ALPHABET = " ,-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

FIRST_DATE, LAST_DATE = date(1950, 1, 1), date(2049, 12, 31)


# --------------------------------------------------------------------------------------
# The vocabulary
# --------------------------------------------------------------------------------------


class CharVocab:
    """Characters <-> ids: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, then ``characters``.

    One vocabulary serves the sources and the targets. `encode` raises a ValueError for a
    character outside the vocabulary (naming it and where it is); `decode` stops at the
    first ``</s>`` and leaves out ``<pad>`` and ``<s>``.
    """

    specials = (PAD, BOS, EOS)

    def __init__(self, characters: str = ALPHABET):
        if not isinstance(characters, str) or not characters:
            raise ValueError(f"characters: expected a non-empty string, got {characters!r}")
        if len(set(characters)) != len(characters):
            repeated = sorted({c for c in characters if characters.count(c) > 1})
            raise ValueError(f"characters: expected each character once, got {repeated} twice")
        self.characters = characters
        self.index_to_token = [*self.specials, *characters]
        self.token_to_index = {token: i for i, token in enumerate(self.index_to_token)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.index_to_token)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} ids: 3 specials and {self.characters!r})"

    def encode(self, text: str, name: str = "text") -> list[int]:
        """The ids of the characters of ``text`` (no ``<s>`` or ``</s>`` added).

        ``name`` is the argument named in the error message.
        """
        if not isinstance(text, str):
            raise TypeError(f"{name}: expected a string, got {type(text).__name__} {text!r}")
        ids = []
        for position, character in enumerate(text):
            if character not in self.token_to_index or character in self.specials:
                raise ValueError(
                    f"{name}: unknown character {character!r} at position {position} of "
                    f"{text!r}; the vocabulary has {self.characters!r}"
                )
            ids.append(self.token_to_index[character])
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The string of ``ids``, up to the first ``</s>``, without ``<pad>`` and ``<s>``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.index_to_token[i])
        return "".join(out)


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------

MONTHS = (
    "January February March April May June July August September October November December"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def _ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _names(d: date) -> dict[str, str]:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {
        "d": str(d.day),
        "dd": f"{d.day:02d}",
        "mm": f"{d.month:02d}",
        "yyyy": f"{d.year:04d}",
        "month": month,
        "mon": month[:3],
        "weekday": weekday,
        "wkd": weekday[:3],
        "dth": _ordinal(d.day),
    }


#: The written forms of a date, by name: ``format_date(date(2023, 9, 14), name)``.
#: Lengths before a case change, from the shortest date to the longest: 10 for the
#: numeric forms, up to 27-37 for "weekday, the dth of month".
DATE_FORMATS: dict[str, str] = {
    "iso": "{yyyy}-{mm}-{dd}",  # 2023-09-14
    "dots": "{yyyy}.{mm}.{dd}",  # 2023.09.14
    "slashes": "{dd}/{mm}/{yyyy}",  # 14/09/2023 (day first)
    "day_mon": "{d} {mon} {yyyy}",  # 14 Sep 2023
    "mon_day": "{mon} {d}, {yyyy}",  # Sep 14, 2023
    "day_month": "{d} {month} {yyyy}",  # 14 September 2023
    "month_day": "{month} {d}, {yyyy}",  # September 14, 2023
    "dth_of_month": "{dth} of {month} {yyyy}",  # 14th of September 2023
    "wkd_day_mon": "{wkd} {d} {mon} {yyyy}",  # Thu 14 Sep 2023
    "weekday_day_month": "{weekday}, {d} {month} {yyyy}",  # Thursday, 14 September 2023
    "weekday_month_day": "{weekday}, {month} {d}, {yyyy}",  # Thursday, September 14, 2023
    "weekday_the_dth_of": "{weekday}, the {dth} of {month} {yyyy}",  # ..., the 14th of ...
    "weekday_month_the_dth": "{weekday}, {month} the {dth}, {yyyy}",  # ..., September the 14th,
}

#: Cases a source is written in, chosen at random for each example.
CASES: dict[str, Callable[[str], str]] = {"as is": str, "lower": str.lower, "upper": str.upper}


def format_date(d: date, format_name: str, case: str = "as is") -> str:
    """``d`` written in the form ``DATE_FORMATS[format_name]``, in ``case`` (`CASES`)."""
    if not isinstance(d, date):
        raise TypeError(f"d: expected a datetime.date, got {type(d).__name__} {d!r}")
    if format_name not in DATE_FORMATS:
        raise ValueError(
            f"format_name: expected one of {sorted(DATE_FORMATS)}, got {format_name!r}"
        )
    if case not in CASES:
        raise ValueError(f"case: expected one of {sorted(CASES)}, got {case!r}")
    return CASES[case](DATE_FORMATS[format_name].format(**_names(d)))


def _random_date(rng: random.Random) -> date:
    return FIRST_DATE + timedelta(days=rng.randrange((LAST_DATE - FIRST_DATE).days + 1))


def _random_date_example(rng: random.Random) -> tuple[str, str]:
    d = _random_date(rng)
    source = format_date(d, rng.choice(list(DATE_FORMATS)), rng.choice(list(CASES)))
    return source, d.isoformat()


def date_examples(
    n: int, seed: int = 0, min_len: int = 1, max_len: int | None = None
) -> list[tuple[str, str]]:
    """``n`` pairs ``(written date, "YYYY-MM-DD")`` with ``min_len <= len(source) <= max_len``.

    Each example draws a date uniformly from 1950-01-01 to 2049-12-31, a format uniformly
    from `DATE_FORMATS` and a case uniformly from `CASES`; examples outside the length
    range are skipped. Sources may repeat (there are about 1.3 million distinct ones).
    """
    checks.positive_int("n", n)
    max_len = _check_length_range(min_len, max_len, shortest=10, longest=37)
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        source, target = _random_date_example(rng)
        if min_len <= len(source) <= max_len:
            out.append((source, target))
    return out


@dataclass(frozen=True)
class LengthSplits:
    """A task split by input length (see `date_splits` and `copy_splits`)."""

    train: list[tuple[str, str]]
    test: list[tuple[str, str]]  # in distribution: sources as long as the training ones
    long_test: list[tuple[str, str]]  # sources longer than any training source
    max_train_len: int

    def __repr__(self) -> str:
        return (
            f"LengthSplits(train={len(self.train)}, test={len(self.test)}, "
            f"long_test={len(self.long_test)}, max_train_len={self.max_train_len})"
        )


def date_splits(
    train_size: int = 20_000,
    test_size: int = 2_000,
    long_test_size: int = 2_000,
    max_train_len: int = 30,
    seed: int = 0,
) -> LengthSplits:
    """The date task split by the length of the source.

    * ``train``: ``train_size`` examples with sources of at most ``max_train_len``
      characters (10 to 30 with the defaults), drawn as in `date_examples`;
    * ``test``: ``test_size`` more examples of the same lengths, none of whose sources
      is in ``train`` (the in-distribution test);
    * ``long_test``: ``long_test_size`` examples with sources *longer* than
      ``max_train_len`` (31 to 37 with the defaults), none seen in training. Only the
      two longest formats, "Thursday, the 14th of September 2023" and "Thursday,
      September the 14th, 2023", are that long; both occur in training too, with shorter
      weekdays, months or days ("Friday, the 1st of May 2023").

    The three lists are drawn from one random stream: examples are assigned in turn,
    by length, to whichever list still needs them; a source already drawn is skipped,
    so no source occurs twice across or within the lists.
    """
    _check_splits(train_size, test_size, long_test_size, max_train_len, 37, shortest=10)
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    long_test: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(train) < train_size or len(test) < test_size or len(long_test) < long_test_size:
        source, target = _random_date_example(rng)
        if source in seen:
            continue
        if len(source) > max_train_len:
            chosen, size = long_test, long_test_size
        elif len(train) < train_size:
            chosen, size = train, train_size
        else:
            chosen, size = test, test_size
        if len(chosen) < size:
            chosen.append((source, target))
            seen.add(source)
    return LengthSplits(train, test, long_test, max_train_len)


# --------------------------------------------------------------------------------------
# Dates inside a text
# --------------------------------------------------------------------------------------

#: The words of the text around a date in `date_extraction_examples`: lowercase, no
#: digits, and none of them a month or weekday name or their three-letter forms (so the
#: only date in a source is the one to find).
FILLER_WORDS = tuple(
    """a about after again all also and any are as at back be because been before but by
    call can come could did do each even every first for from get give go good great had
    has have he her here him his how i if in into is it its just know last late like
    little long look made make many me meeting more most much must my new next no not now
    of office old on one only or other our out over people please plan report right room
    said same see she should so some still such take team tell than that the their them
    then there these they thing think this those time to too trip two under up us very
    visit want was way we well were what when where which while who will with work would
    year you your""".split()
)


_BY_LENGTH = sorted(FILLER_WORDS, key=lambda word: (len(word), word))
_FITTING = [bisect.bisect_right([len(w) for w in _BY_LENGTH], n) for n in range(16)]


def _filler(rng: random.Random, length: int) -> str:
    """Random `FILLER_WORDS` joined by spaces, at most ``length`` characters (``""`` if
    ``length`` is too short for a word): each word is drawn uniformly from the words
    that still fit."""
    words: list[str] = []
    room = length + 1  # characters left, counting one space before each word
    while room >= 2:  # room for a space and a one-letter word ("a", "i")
        word = _BY_LENGTH[rng.randrange(_FITTING[min(room - 1, 15)])]
        words.append(word)
        room -= 1 + len(word)
    return " ".join(words)


def _random_extraction_example(rng: random.Random, min_len: int, max_len: int) -> tuple[str, str]:
    """A date (as in `date_examples`) between filler words, the whole ``min_len`` to
    ``max_len`` characters long (when a date and filler fit; else the draw is repeated)."""
    while True:
        date_text, target = _random_date_example(rng)
        total = rng.randint(min_len, max_len)
        room = total - len(date_text)
        if room < 0:
            continue
        before = rng.randint(0, room)
        # each side: filler words and one space to the date, or nothing
        left = _filler(rng, before - 1) if before >= 2 else ""
        right = _filler(rng, room - before - 1) if room - before >= 2 else ""
        source = " ".join(part for part in (left, date_text, right) if part)
        if min_len <= len(source) <= max_len:
            return source, target


def date_extraction_examples(
    n: int, seed: int = 0, min_len: int = 10, max_len: int = 40
) -> list[tuple[str, str]]:
    """``n`` pairs ``(text holding a date, "YYYY-MM-DD")``, sources of ``min_len`` to
    ``max_len`` characters.

    Each source is a date written as in `date_examples` (a format of `DATE_FORMATS`, a
    case of `CASES`), with random `FILLER_WORDS` before and after it: ``"see you after
    the 14th of September 2023 in the office"`` -> ``"2023-09-14"``. The length of the
    source is drawn uniformly from ``min_len ... max_len`` (then filled with whole words,
    so it may come out a few characters shorter), the share of filler before the date
    uniformly from all of it to none.
    """
    checks.positive_int("n", n)
    max_len = _check_length_range(min_len, max_len, shortest=10, longest=None)
    rng = random.Random(seed)
    return [_random_extraction_example(rng, min_len, max_len) for _ in range(n)]


def date_extraction_splits(
    train_size: int = 20_000,
    test_size: int = 2_000,
    long_test_size: int = 2_000,
    max_train_len: int = 40,
    max_test_len: int = 120,
    seed: int = 0,
) -> LengthSplits:
    """Find the date in a text: `date_extraction_examples` split by source length.

    * ``train``: ``train_size`` sources of 10 to ``max_train_len`` characters (40 with
      the defaults);
    * ``test``: ``test_size`` more of the same lengths, none of whose sources is in
      ``train`` (the in-distribution test);
    * ``long_test``: ``long_test_size`` sources of ``max_train_len + 1`` to
      ``max_test_len`` characters (41 to 120): longer than any training source, up to
      three times as long, with more filler around the same dates.

    The lists are drawn with the seeds ``seed``, ``seed + 1`` and ``seed + 2``; a test
    source that is also a training source is skipped (and another one drawn).
    """
    _check_splits(train_size, test_size, long_test_size, max_train_len, max_test_len, shortest=10)
    train = date_extraction_examples(train_size, seed, 10, max_train_len)
    seen = {source for source, _ in train}

    def unseen(size: int, stream: int, low: int, high: int) -> list[tuple[str, str]]:
        rng = random.Random(stream)
        out: list[tuple[str, str]] = []
        while len(out) < size:
            source, target = _random_extraction_example(rng, low, high)
            if source not in seen:
                seen.add(source)
                out.append((source, target))
        return out

    test = unseen(test_size, seed + 1, 10, max_train_len)
    long_test = unseen(long_test_size, seed + 2, max_train_len + 1, max_test_len)
    return LengthSplits(train, test, long_test, max_train_len)


# --------------------------------------------------------------------------------------
# Copy and reversal
# --------------------------------------------------------------------------------------


def _symbol_examples(
    n: int, seed: int, min_len: int, max_len: int, symbols: str, reverse: bool
) -> list[tuple[str, str]]:
    checks.positive_int("n", n)
    _check_length_range(min_len, max_len, shortest=1, longest=None)
    if not isinstance(symbols, str) or not symbols:
        raise ValueError(f"symbols: expected a non-empty string, got {symbols!r}")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        source = "".join(rng.choice(symbols) for _ in range(rng.randint(min_len, max_len)))
        out.append((source, source[::-1] if reverse else source))
    return out


def copy_examples(
    n: int, seed: int = 0, min_len: int = 1, max_len: int = 10, symbols: str = "abcdefghij"
) -> list[tuple[str, str]]:
    """``n`` pairs ``(s, s)``: strings of ``symbols``, lengths uniform in the range."""
    return _symbol_examples(n, seed, min_len, max_len, symbols, reverse=False)


def reverse_examples(
    n: int, seed: int = 0, min_len: int = 1, max_len: int = 10, symbols: str = "abcdefghij"
) -> list[tuple[str, str]]:
    """``n`` pairs ``(s, s[::-1])``: strings of ``symbols``, lengths uniform in the range."""
    return _symbol_examples(n, seed, min_len, max_len, symbols, reverse=True)


def copy_splits(
    train_size: int = 20_000,
    test_size: int = 1_000,
    long_test_size: int = 1_000,
    max_train_len: int = 20,
    max_test_len: int = 30,
    seed: int = 0,
) -> LengthSplits:
    """The copy task split by length: strings of the 26 lowercase letters.

    ``train`` and ``test`` have lengths uniform in ``1 ... max_train_len``, ``long_test``
    in ``max_train_len + 1 ... max_test_len``; each list is drawn with its own seed
    (``seed``, ``seed + 1``, ``seed + 2``). Unlike the dates, short strings may occur in
    both ``train`` and ``test`` (there are only 26 strings of length 1); from length 5
    on, a repeat is unlikely (26^5 = 11.9 million strings).
    """
    _check_splits(train_size, test_size, long_test_size, max_train_len, max_test_len, shortest=1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return LengthSplits(
        copy_examples(train_size, seed, 1, max_train_len, letters),
        copy_examples(test_size, seed + 1, 1, max_train_len, letters),
        copy_examples(long_test_size, seed + 2, max_train_len + 1, max_test_len, letters),
        max_train_len,
    )


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------


def make_batch(
    pairs: Sequence[tuple[str, str]] | Sequence[str], vocab: CharVocab
) -> dict[str, torch.Tensor]:
    """Pad a list of ``(source, target)`` pairs (or of sources alone) into tensors.

    Returns a dict (``lessons.core.train.move_to`` moves it to a device) with

    * ``sources`` ``(batch, max source length)``: the characters' ids, padded with 0;
    * ``source_lengths`` ``(batch,)``: the number of real characters of each source;

    and, when targets are given, with ``target_len`` the longest target:

    * ``decoder_inputs`` ``(batch, target_len + 1)``: ``<s>`` then the target (teacher
      forcing: the decoder reads the true previous character), padded with 0;
    * ``decoder_targets`` ``(batch, target_len + 1)``: the target then ``</s>``, padded
      with 0. Position ``t`` of the inputs predicts position ``t`` of the targets.
    """
    if not isinstance(vocab, CharVocab):
        raise TypeError(
            f"vocab: expected a lessons.core.tasks.CharVocab, got {type(vocab).__name__}"
        )
    if isinstance(pairs, str) or not isinstance(pairs, Sequence) or len(pairs) == 0:
        raise ValueError(
            f"pairs: expected a non-empty list of (source, target) pairs or of sources, "
            f"got {type(pairs).__name__} {str(pairs)[:40]!r}"
        )
    with_targets = not isinstance(pairs[0], str)
    sources, targets = [], []
    for i, pair in enumerate(pairs):
        if with_targets:
            if isinstance(pair, str) or len(pair) != 2:
                raise ValueError(f"pairs[{i}]: expected a pair (source, target), got {pair!r}")
            source, target = pair
            targets.append(vocab.encode(target, f"pairs[{i}] target"))
            name = f"pairs[{i}] source"
        else:
            source, name = pair, f"sources[{i}]"
        ids = vocab.encode(source, name)
        if not ids:
            raise ValueError(f"{name}: expected at least one character, got an empty source")
        sources.append(ids)
    batch = {
        "sources": _pad(sources, vocab.pad_id),
        "source_lengths": torch.tensor([len(s) for s in sources]),
    }
    if with_targets:
        batch["decoder_inputs"] = _pad([[vocab.bos_id, *t] for t in targets], vocab.pad_id)
        batch["decoder_targets"] = _pad([[*t, vocab.eos_id] for t in targets], vocab.pad_id)
    return batch


def batches(
    pairs: Sequence[tuple[str, str]],
    vocab: CharVocab,
    batch_size: int = 64,
    seed: int | None = 0,
) -> list[dict[str, torch.Tensor]]:
    """``pairs`` cut into `make_batch` batches of ``batch_size`` (one may be smaller).

    With a ``seed``, the pairs are shuffled, sorted by source length (so a batch holds
    sources of about one length and little padding: an epoch is about twice as fast),
    cut into batches, and the batches shuffled. ``seed=None`` keeps the given order.
    """
    checks.positive_int("batch_size", batch_size)
    order = list(range(len(pairs)))
    if seed is not None:
        rng = random.Random(seed)
        rng.shuffle(order)
        order.sort(key=lambda i: len(pairs[i][0]))
    groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if seed is not None:
        rng.shuffle(groups)
    return [make_batch([pairs[i] for i in group], vocab) for group in groups]


def _pad(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _check_splits(
    train_size: object,
    test_size: object,
    long_test_size: object,
    max_train_len: object,
    max_test_len: object,
    shortest: int,
) -> None:
    """Positive sizes, and ``shortest <= max_train_len < max_test_len``."""
    for name, value in (
        ("train_size", train_size),
        ("test_size", test_size),
        ("long_test_size", long_test_size),
        ("max_train_len", max_train_len),
        ("max_test_len", max_test_len),
    ):
        checks.positive_int(name, value)
    if not shortest <= max_train_len < max_test_len:
        raise ValueError(
            f"max_train_len: expected {shortest} <= max_train_len < max_test_len="
            f"{max_test_len}, got {max_train_len}"
        )


def _check_length_range(
    min_len: object, max_len: object, shortest: int, longest: int | None
) -> int:
    """Check ``min_len <= max_len``; returns ``max_len`` (``longest`` when None)."""
    if max_len is None:
        max_len = longest
    checks.positive_int("min_len", min_len)
    checks.positive_int("max_len", max_len)
    if min_len > max_len:
        raise ValueError(f"min_len: expected at most max_len={max_len}, got {min_len}")
    if max_len < shortest or (longest is not None and min_len > longest):
        raise ValueError(
            f"max_len: no example has a length in [{min_len}, {max_len}]; sources are "
            f"{shortest} to {longest} characters long"
        )
    return max_len
