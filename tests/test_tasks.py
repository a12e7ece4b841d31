"""lessons.core.tasks: every date format parses back to its target, the split is by length,
generators are deterministic, and the vocabulary and batches hold the right ids."""

import re
from collections import Counter
from datetime import date, datetime
from itertools import pairwise

import pytest
import torch

from lessons.core.tasks import (
    ALPHABET,
    DATE_FORMATS,
    FILLER_WORDS,
    MONTHS,
    WEEKDAYS,
    CharVocab,
    batches,
    copy_examples,
    copy_splits,
    date_examples,
    date_extraction_examples,
    date_extraction_splits,
    date_splits,
    format_date,
    make_batch,
    reverse_examples,
)

# Each format as a strptime pattern, written independently of lessons.core.tasks. strptime
# matches names case-insensitively; ordinal suffixes are checked and removed first.
STRPTIME = {
    "iso": "%Y-%m-%d",
    "dots": "%Y.%m.%d",
    "slashes": "%d/%m/%Y",
    "day_mon": "%d %b %Y",
    "mon_day": "%b %d, %Y",
    "day_month": "%d %B %Y",
    "month_day": "%B %d, %Y",
    "dth_of_month": "%d of %B %Y",
    "wkd_day_mon": "%a %d %b %Y",
    "weekday_day_month": "%A, %d %B %Y",
    "weekday_month_day": "%A, %B %d, %Y",
    "weekday_the_dth_of": "%A, the %d of %B %Y",
    "weekday_month_the_dth": "%A, %B the %d, %Y",
}
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b", re.IGNORECASE)


def parse(source: str, pattern: str) -> date:
    """The date written in ``source``, checking the ordinal suffix and the weekday."""
    match = ORDINAL.search(source)
    if match:
        day = int(match.group(1))
        assert match.group(2).lower() == SUFFIX.get(day, "th"), source
        source = ORDINAL.sub(r"\1", source)
    parsed = datetime.strptime(source, pattern).date()
    if "%A" in pattern or "%a" in pattern:  # strptime does not check the weekday
        assert parsed.strftime("%A").lower()[:3] in source.lower(), source
        assert source.lower().startswith(parsed.strftime("%a").lower()), source
    return parsed


def parse_any(source: str) -> date:
    dates = set()
    for pattern in STRPTIME.values():
        try:
            dates.add(parse(source, pattern))
        except ValueError:
            continue
    assert len(dates) == 1, (source, dates)
    return dates.pop()


def test_the_formats_are_the_ones_parsed_here():
    assert set(DATE_FORMATS) == set(STRPTIME)


@pytest.mark.parametrize("format_name", sorted(DATE_FORMATS))
def test_every_format_and_case_parses_back_to_the_date(format_name):
    days = [date(2023, 9, d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 30)]
    days += [date(2024, 2, 29), date(1950, 1, 1), date(2049, 12, 31), date(2000, 5, 31)]
    for d in days:
        for case in ("as is", "lower", "upper"):
            source = format_date(d, format_name, case)
            assert parse(source, STRPTIME[format_name]) == d, source
    assert format_date(date(2023, 9, 14), "weekday_the_dth_of") == (
        "Thursday, the 14th of September 2023"
    )
    assert format_date(date(2023, 9, 14), "mon_day", "upper") == "SEP 14, 2023"


def test_every_generated_target_is_the_iso_form_of_its_source():
    splits = date_splits(train_size=600, test_size=200, long_test_size=200, seed=4)
    for source, target in splits.train + splits.test + splits.long_test:
        assert target == parse_any(source).isoformat(), (source, target)
    lengths = [len(s) for s, _ in date_examples(2000, seed=1)]
    assert min(lengths) == 10 and max(lengths) >= 35  # short to long inputs


def test_generators_are_deterministic_for_a_seed():
    assert date_examples(50, seed=3) == date_examples(50, seed=3)
    assert date_examples(50, seed=3) != date_examples(50, seed=4)
    assert copy_examples(20, seed=2) == copy_examples(20, seed=2)
    assert copy_examples(20, seed=2) != copy_examples(20, seed=3)
    assert reverse_examples(20, seed=2) == reverse_examples(20, seed=2)
    assert reverse_examples(20, seed=2) != reverse_examples(20, seed=3)
    a, b = date_splits(300, 100, 100, seed=7), date_splits(300, 100, 100, seed=7)
    assert (a.train, a.test, a.long_test) == (b.train, b.test, b.long_test)
    assert date_splits(300, 100, 100, seed=8).train != a.train


def test_the_split_is_by_source_length_without_repeats():
    splits = date_splits(train_size=2000, test_size=300, long_test_size=300, max_train_len=30)
    assert (len(splits.train), len(splits.test), len(splits.long_test)) == (2000, 300, 300)
    train_lengths = [len(s) for s, _ in splits.train]
    assert max(train_lengths) == 30 < min(len(s) for s, _ in splits.long_test)
    assert max(len(s) for s, _ in splits.test) <= 30
    sources = [s for s, _ in splits.train + splits.test + splits.long_test]
    assert len(set(sources)) == len(sources)
    # the long sources come from the two longest formats, which training holds too
    for words in (", the ", " the "):  # "..., the 14th of ..." and "..., September the 14th"
        in_train = [s for s, _ in splits.train if words in s.lower()]
        in_long = [s for s, _ in splits.long_test if words in s.lower()]
        assert len(in_train) > 20 and len(in_long) > 50, words
    assert all(" the " in s.lower() for s, _ in splits.long_test)
    lengths = Counter(len(s) for s, _ in date_splits(2000, 10, 500).long_test)
    assert min(lengths) == 31 and max(lengths) >= 36


def test_copy_split_is_by_length():
    splits = copy_splits(train_size=300, test_size=50, long_test_size=50, max_train_len=8)
    assert max(len(s) for s, _ in splits.train + splits.test) == 8
    assert {len(s) for s, _ in splits.long_test} <= set(range(9, 31))
    assert all(s == t for s, t in splits.train + splits.long_test)
    assert splits.train != copy_splits(300, 50, 50, 8, seed=1).train


def test_copy_and_reversal():
    for source, target in copy_examples(30, min_len=2, max_len=5, symbols="xyz"):
        assert source == target and 2 <= len(source) <= 5 and set(source) <= set("xyz")
    pairs = reverse_examples(30, min_len=4, max_len=4)
    assert all(t == s[::-1] and len(s) == 4 for s, t in pairs)
    assert any(s != t for s, t in pairs)


def test_vocabulary_round_trip_and_special_ids():
    vocab = CharVocab()
    assert len(vocab) == 3 + len(ALPHABET) == 70
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2)
    text = "Thursday, the 14th of SEPTEMBER 2023-09/14."
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text and min(ids) >= 3
    assert vocab.encode(" ,a") == [3, 4, 3 + ALPHABET.index("a")]
    assert vocab.decode([1, *vocab.encode("ab"), 2, *vocab.encode("cd"), 0]) == "ab"
    assert vocab.decode(torch.tensor([*vocab.encode("x"), 0, 0])) == "x"


def test_make_batch_pads_and_adds_start_and_end_markers():
    vocab = CharVocab("abc")
    batch = make_batch([("ab", "ba"), ("c", "abc")], vocab)
    assert batch["sources"].tolist() == [[3, 4], [5, 0]]
    assert batch["source_lengths"].tolist() == [2, 1]
    assert batch["decoder_inputs"].tolist() == [[1, 4, 3, 0], [1, 3, 4, 5]]
    assert batch["decoder_targets"].tolist() == [[4, 3, 2, 0], [3, 4, 5, 2]]
    assert set(make_batch(["ab"], vocab)) == {"sources", "source_lengths"}
    pairs = copy_examples(10, symbols="abc")
    in_order = batches(pairs, vocab, batch_size=4, seed=None)
    assert [len(b["sources"]) for b in in_order] == [4, 4, 2]
    assert [vocab.decode(r) for b in in_order for r in b["sources"]] == [s for s, _ in pairs]
    shuffled = batches(pairs, vocab, batch_size=4, seed=1)
    assert sorted(len(b["sources"]) for b in shuffled) == [2, 4, 4]
    sources = [vocab.decode(row) for b in shuffled for row in b["sources"]]
    assert sorted(sources) == sorted(s for s, _ in pairs) and sources != [s for s, _ in pairs]
    # batches of similar lengths: sorted by length before cutting
    spans = sorted((min(b["source_lengths"]), max(b["source_lengths"])) for b in shuffled)
    assert all(high <= low for (_, high), (low, _) in pairwise(spans))


def test_bad_inputs_name_the_argument():
    vocab = CharVocab()
    with pytest.raises(ValueError, match=r"text: unknown character '!' at position 2"):
        vocab.encode("ab!")
    with pytest.raises(ValueError, match=r"pairs\[1\] source: unknown character 'é'"):
        make_batch([("a", "a"), ("é", "e")], vocab)
    with pytest.raises(ValueError, match=r"sources\[0\]: expected at least one character"):
        make_batch([""], vocab)
    with pytest.raises(ValueError, match="format_name: expected one of"):
        format_date(date(2023, 1, 1), "american")
    with pytest.raises(ValueError, match="expected 10 <= max_train_len < max_test_len=37, got 40"):
        date_splits(max_train_len=40)
    with pytest.raises(ValueError, match="min_len: expected at most max_len=3"):
        copy_examples(5, min_len=4, max_len=3)
    with pytest.raises(ValueError, match="characters: expected each character once"):
        CharVocab("abca")


# --------------------------------------------------------------------------------------
# Finding the date in a text
# --------------------------------------------------------------------------------------

YEAR = re.compile(r"\d{4}")


def parse_in_text(source: str) -> date:
    """The one date in ``source``: every format ends with the only 4-digit token (the
    year), so try the spans of one to six words that end there."""
    tokens = source.split(" ")
    years = [i for i, token in enumerate(tokens) if YEAR.search(token)]
    assert len(years) == 1, source
    end = years[0] + 1
    dates = set()
    for start in range(max(0, end - 6), end):
        span = " ".join(tokens[start:end])
        for pattern in STRPTIME.values():
            try:
                dates.add(parse(span, pattern))
            except ValueError:
                continue
    assert len(dates) == 1, (source, dates)
    return dates.pop()


def test_filler_words_hold_no_date():
    names = {n.lower() for n in MONTHS + WEEKDAYS} | {n.lower()[:3] for n in MONTHS + WEEKDAYS}
    assert not names & set(FILLER_WORDS)
    assert all(word.isalpha() and word.islower() for word in FILLER_WORDS)


def test_every_extraction_target_is_the_date_in_its_source():
    splits = date_extraction_splits(
        train_size=400, test_size=100, long_test_size=300, max_train_len=40, max_test_len=80
    )
    assert max(len(s) for s, _ in splits.long_test) <= 80
    for source, target in splits.train + splits.test + splits.long_test:
        assert target == parse_in_text(source).isoformat(), (source, target)
        assert source == source.strip() and "  " not in source, source
    # filler before, after, both or neither
    sources = [s for s, _ in splits.train + splits.long_test]
    assert any(YEAR.search(s.split(" ")[-1]) for s in sources)  # the date last
    assert any(s[:4].isdigit() or s[:2].isdigit() for s in sources)  # the date first
    assert sum(not YEAR.search(s.split(" ")[-1]) for s, _ in splits.long_test) > 200


def test_extraction_split_is_by_length_deterministic_and_without_repeats():
    splits = date_extraction_splits(train_size=3000, test_size=300, long_test_size=500)
    assert (len(splits.train), len(splits.test), len(splits.long_test)) == (3000, 300, 500)
    assert splits.max_train_len == 40
    train_lengths = [len(s) for s, _ in splits.train + splits.test]
    assert min(train_lengths) == 10 and max(train_lengths) == 40
    long_lengths = [len(s) for s, _ in splits.long_test]
    assert min(long_lengths) == 41 and max(long_lengths) == 120
    # lengths spread over the range: every 20 characters of the long test are well filled
    spans = Counter((n - 41) // 20 for n in long_lengths)
    assert sorted(spans) == [0, 1, 2, 3] and min(spans.values()) > 80
    sources = [s for s, _ in splits.train]
    held_out = [s for s, _ in splits.test + splits.long_test]
    assert len(set(held_out)) == len(held_out) and not set(held_out) & set(sources)
    again = date_extraction_splits(train_size=3000, test_size=300, long_test_size=500)
    assert (again.train, again.test, again.long_test) == (
        splits.train,
        splits.test,
        splits.long_test,
    )
    assert date_extraction_splits(300, 10, 10, seed=1).train != splits.train[:300]
    assert date_extraction_examples(20, seed=5) == date_extraction_examples(20, seed=5)
    assert date_extraction_examples(20, seed=5) != date_extraction_examples(20, seed=6)
    examples = date_extraction_examples(200, seed=5, min_len=50, max_len=60)
    assert all(50 <= len(s) <= 60 for s, _ in examples)


def test_extraction_bad_arguments():
    with pytest.raises(ValueError, match="max_train_len: expected 10 <= max_train_len"):
        date_extraction_splits(max_train_len=130)
    with pytest.raises(ValueError, match="min_len: expected at most max_len=20"):
        date_extraction_examples(5, min_len=30, max_len=20)
