"""Exercises and quiz of chapter 5, BERT.

`wordpiece` (of `lessons.wordpiece`) and `mean_pooling` (of `lessons.bert`) are the
taught functions themselves. The other solutions are written here as plain functions of
tensors and lists, so that a learner can write them without building a model, and
tests/test_exercise_solutions.py proves each equal to the taught code on every case:

* `mask_tokens_seeded`: `lessons.bert.mask_tokens` with its generator seeded by an int;
* `embedding_sum`: `lessons.bert.BertEmbeddings` before its LayerNorm and dropout;
* `masked_lm_loss`: the masked-LM loss, PyTorch's cross-entropy with ``ignore_index``;
* `nsp_pairs_from_draws`: `lessons.bert.nsp_pairs`, with its random draws given;
* `similarity_matrix`: cosines of the sentence vectors of `lessons.bert.sentence_embeddings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from lessons.bert import IGNORE_INDEX, NSPPair, mean_pooling
from lessons.exercises import quiz
from lessons.exercises.framework import Attempt, Case, Exercise, Hint, register
from lessons.wordpiece import wordpiece

__all__ = [
    "embedding_sum",
    "mask_tokens_seeded",
    "masked_lm_loss",
    "nsp_pairs_from_draws",
    "similarity_matrix",
]


def _close(got: object, expected: torch.Tensor) -> bool:
    """Whether a learner's result ``got`` matches ``expected`` (for hint predicates)."""
    return (
        isinstance(got, torch.Tensor)
        and got.shape == expected.shape
        and torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-5)
    )


def _is_mistake(attempt: Attempt, mistake: Any) -> bool:
    """Whether the learner's result is what ``mistake`` returns on the case."""
    expected = mistake(*attempt.case.args, **attempt.case.kwargs)
    if isinstance(expected, torch.Tensor):
        return _close(attempt.got, expected)
    if isinstance(expected, tuple):
        return isinstance(attempt.got, tuple | list) and all(
            _close(got, want) for got, want in zip(attempt.got, expected, strict=True)
        )
    return attempt.got == expected


# --------------------------------------------------------------------------------------
# Exercise: bert.wordpiece
# --------------------------------------------------------------------------------------

#: A small WordPiece vocabulary: a few words, pieces and single letters.
_PIECES = (
    "[UNK]",
    "a",
    "p",
    "u",
    "un",
    "play",
    "##a",
    "##f",
    "##n",
    "##s",
    "##ff",
    "##aff",
    "##ing",
    "##lay",
    "##able",
)


def _wordpiece_cases() -> list[Case]:
    vocab = {piece: index for index, piece in enumerate(_PIECES)}
    return [
        Case("a word of the vocabulary stays whole: 'play'", ("play", vocab)),
        Case("'unaffable', the example of BERT's code", ("unaffable", vocab)),
        Case("'plays': a word and one continuation", ("plays", vocab)),
        Case("'playx': no piece covers the 'x'", ("playx", vocab)),
        Case("a single character: 'a'", ("a", vocab)),
        Case(
            "a word longer than max_input_chars_per_word (9 characters, at most 8)",
            ("unaffable", vocab),
            {"max_input_chars_per_word": 8},
        ),
    ]


def _wordpiece_shortest_first(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):  # shortest candidate first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_no_hashes(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            if word[start:end] in vocab:  # a continuation looked up without "##"
                break
        else:
            return [unk_token]
        pieces.append(word[start:end])
        start = end
    return pieces


def _wordpiece_characters(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:  # no piece fits: keep the single character and go on
            end = start + 1
            piece = word[start] if start == 0 else "##" + word[start]
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_unk_rest(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:  # only the uncovered rest becomes [UNK]
            return [*pieces, unk_token]
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_no_length_limit(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
    return wordpiece(word, vocab, unk_token=unk_token)


def _unk_expected_but_pieces(attempt: Attempt) -> bool:
    """Whether the whole word should be [UNK] and the answer kept some pieces instead."""
    return (
        attempt.expected == ["[UNK]"]
        and isinstance(attempt.got, list)
        and len(attempt.got) > 1
        and len(attempt.case.args[0]) <= attempt.case.kwargs.get("max_input_chars_per_word", 100)
    )


register(
    Exercise(
        id="bert.wordpiece",
        chapter="bert",
        prompt=(
            "Write `wordpiece(word, vocab, *, unk_token='[UNK]', max_input_chars_per_word=100)`: "
            "one word, already lower-cased and split from its punctuation, as WordPiece "
            "pieces. Take the longest prefix of the word that is in `vocab` (a dict token -> "
            "id), then the longest piece of the rest, written with `##` in front (`##` means "
            "'continues the word'), and so on to the end of the word. A word that no "
            "sequence of pieces covers to its end, or one longer than "
            "`max_input_chars_per_word` characters, becomes `[unk_token]`, the whole word. "
            "Return a list of str: with a vocabulary that holds these pieces, `'unaffable'` "
            "-> `['un', '##aff', '##able']`."
        ),
        signature=(
            "def wordpiece(word: str, vocab: dict[str, int], *, unk_token: str = '[UNK]', "
            "max_input_chars_per_word: int = 100) -> list[str]"
        ),
        solution=wordpiece,
        cases=_wordpiece_cases,
        hints=(
            Hint(
                "Walk a `start` index along the word. At each start, try the end positions "
                "from the end of the word backwards, `for end in range(len(word), start, "
                "-1)`, and keep the first candidate found in `vocab`; then `start = end`."
            ),
            Hint(
                "Every piece after the first is looked up, and returned, with `##` in front: "
                "`'##' + word[start:end]` when `start > 0`. 'aff' and '##aff' are different "
                "entries: the first starts a word, the second continues one.",
                fits=lambda a: (
                    isinstance(a.got, list)
                    and any(piece.startswith("##") for piece in a.expected)
                    and not any(str(piece).startswith("##") for piece in a.got)
                ),
            ),
            Hint(
                "Longest match first: 'play' is in the vocabulary, so it stays one piece, "
                "even though 'p' and '##lay' are there too. Try the long candidates before "
                "the short ones.",
                fits=lambda a: _is_mistake(a, _wordpiece_shortest_first),
            ),
            Hint(
                "When no piece fits at some position, the whole word becomes `[unk_token]`, "
                "a list of one item: return `[unk_token]` at once, and drop the pieces found "
                "so far. BERT never spells an unknown word letter by letter.",
                fits=_unk_expected_but_pieces,
            ),
            Hint(
                "Check the length first: a word longer than `max_input_chars_per_word` "
                "characters is `[unk_token]` without any search (BERT's guard against very "
                "long strings).",
                fits=lambda a: (
                    len(a.case.args[0]) > a.case.kwargs.get("max_input_chars_per_word", 100)
                ),
            ),
        ),
        wrong_answers=(
            _wordpiece_shortest_first,
            _wordpiece_no_hashes,
            _wordpiece_characters,
            _wordpiece_unk_rest,
            _wordpiece_no_length_limit,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.mask_tokens
# --------------------------------------------------------------------------------------

#: The special ids of the exercise's small vocabulary of 30 tokens.
_PAD, _CLS, _SEP, _MASK, _VOCAB = 0, 2, 3, 4, 30


def mask_tokens_seeded(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 rule, as `lessons.bert.mask_tokens` with the generator seeded by
    ``seed``: ``(masked_input_ids, labels)``, both ``(batch, seq)``.

    Used in: notebooks/05_bert.ipynb, section 11 (exercises).
    """
    g = torch.Generator().manual_seed(seed)
    shape = input_ids.shape
    chance = torch.full(shape, probability).masked_fill(special_tokens_mask, 0.0)
    selected = torch.bernoulli(chance, generator=g).bool()
    to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=g).bool()
    to_random = torch.bernoulli(torch.full(shape, 0.5), generator=g).bool()
    random_ids = torch.randint(vocab_size, shape, generator=g)

    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)  # -100: not in the loss
    to_mask &= selected  # 80% of the selected tokens
    to_random &= selected & ~to_mask  # half of the other 20%
    masked = input_ids.masked_fill(to_mask, mask_id)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def _batch(*lengths: int, first: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``[CLS] words [SEP]`` rows of these lengths (specials included), the
    words ``first, first + 1, ...``, and their special-tokens mask."""
    width = max(lengths)
    ids = torch.full((len(lengths), width), _PAD)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.tensor([_CLS, *range(first, first + length - 2), _SEP])
    special = (ids == _PAD) | (ids == _CLS) | (ids == _SEP)
    return ids, special


def _mask_cases() -> list[Case]:
    def case(name: str, lengths: tuple[int, ...], probability: float, seed: int) -> Case:
        ids, special = _batch(*lengths)
        return Case(name, (ids, special, _MASK, _VOCAB, probability, seed))

    return [
        case("one sentence of 10 tokens, probability 0.5", (10,), 0.5, 1),
        case("padding: lengths 10 and 5, probability 0.5", (10, 5), 0.5, 2),
        case("probability 1: every real token is selected", (14, 14), 1.0, 3),
        case("probability 0: nothing is selected", (8, 6), 0.0, 4),
        case("a single real token, probability 1", (3,), 1.0, 5),
        case("BERT's 15% on a padded batch of 4", (16, 12, 16, 7), 0.15, 6),
    ]


def _mask_special_too(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
    no_special = torch.zeros_like(special_tokens_mask)
    return mask_tokens_seeded(input_ids, no_special, mask_id, vocab_size, probability, seed)


def _mask_labels_everywhere(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
    masked, _ = mask_tokens_seeded(
        input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed
    )
    return masked, input_ids.clone()


def _mask_always(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
    _, labels = mask_tokens_seeded(
        input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed
    )
    return input_ids.masked_fill(labels != IGNORE_INDEX, mask_id), labels


def _mask_random_without_specials(
    input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed
):
    g = torch.Generator().manual_seed(seed)
    shape = input_ids.shape
    chance = torch.full(shape, probability).masked_fill(special_tokens_mask, 0.0)
    selected = torch.bernoulli(chance, generator=g).bool()
    to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=g).bool() & selected
    to_random = torch.bernoulli(torch.full(shape, 0.5), generator=g).bool() & selected & ~to_mask
    random_ids = torch.randint(mask_id + 1, vocab_size, shape, generator=g)  # after [MASK]
    masked = torch.where(to_random, random_ids, input_ids.masked_fill(to_mask, mask_id))
    return masked, input_ids.masked_fill(~selected, IGNORE_INDEX)


def _labels_right(attempt: Attempt) -> bool:
    got_labels = attempt.got[1]
    return isinstance(got_labels, torch.Tensor) and torch.equal(got_labels, attempt.expected[1])


def _random_positions(attempt: Attempt) -> torch.Tensor:
    """Where the reference puts a random token on the case: its draws, replayed."""
    input_ids, special_tokens_mask, _, vocab_size, probability, seed = attempt.case.args
    g = torch.Generator().manual_seed(seed)
    shape = input_ids.shape
    chance = torch.full(shape, probability).masked_fill(special_tokens_mask, 0.0)
    selected = torch.bernoulli(chance, generator=g).bool()
    to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=g).bool()
    to_random = torch.bernoulli(torch.full(shape, 0.5), generator=g).bool()
    return to_random & selected & ~to_mask


def _only_random_tokens_differ(attempt: Attempt) -> bool:
    """Labels right, and the input differs only where the reference put a random token."""
    differ = attempt.got[0] != attempt.expected[0]
    return (
        _labels_right(attempt)
        and bool(differ.any())
        and not bool((differ & ~_random_positions(attempt)).any())
    )


def _labels_kept_unselected(attempt: Attempt) -> bool:
    """Whether no ordinary token that the reference left unselected has the label -100."""
    unselected = (attempt.expected[1] == IGNORE_INDEX) & ~attempt.case.args[1]
    return bool(unselected.any()) and bool((attempt.got[1] != IGNORE_INDEX)[unselected].all())


def _special_selected(attempt: Attempt) -> bool:
    """Special tokens selected, and everything else as the reference has it."""
    special = attempt.case.args[1]
    labels, expected = attempt.got[1], attempt.expected[1]
    return bool((labels != IGNORE_INDEX)[special].any()) and torch.equal(
        labels[~special], expected[~special]
    )


register(
    Exercise(
        id="bert.mask_tokens",
        chapter="bert",
        prompt=(
            "Write `mask_tokens(input_ids, special_tokens_mask, mask_id, vocab_size, "
            "probability, seed)`, BERT's masked-LM input. `input_ids` is `(batch, seq)` int64, "
            "`special_tokens_mask` bool `(batch, seq)`, True at `[CLS]`, `[SEP]` and padding, "
            "which are never selected. Each other token is selected with `probability`; of "
            "the selected tokens 80% become `mask_id`, 10% a random id of the whole "
            "vocabulary `0 … vocab_size - 1`, 10% stay as they are. To be checkable, make "
            "exactly these draws, in this order, all of shape `input_ids.shape`: "
            "`g = torch.Generator().manual_seed(seed)`; "
            "`selected = torch.bernoulli(chance, generator=g)` (`chance` is `probability` "
            "everywhere except 0.0 at special tokens); "
            "`to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=g)`; "
            "`to_random = torch.bernoulli(torch.full(shape, 0.5), generator=g)` (it counts "
            "only where a selected token was not masked: half of the 20%); "
            "`random_ids = torch.randint(vocab_size, shape, generator=g)`. Return "
            "`(masked_input_ids, labels)`: the labels hold the original id at the selected "
            "positions and -100 everywhere else."
        ),
        signature=(
            "def mask_tokens(input_ids, special_tokens_mask, mask_id, vocab_size, probability, "
            "seed) -> tuple[torch.Tensor, torch.Tensor]"
        ),
        solution=mask_tokens_seeded,
        cases=_mask_cases,
        hints=(
            Hint(
                "Make all four draws first, in the order given and on the full shape, "
                "whatever was selected: each draw moves the generator on, so one draw more "
                "or less, or another order, changes every later number. Then combine them "
                "with `&` and `~` on bool tensors."
            ),
            Hint(
                "`[CLS]`, `[SEP]` and padding are never selected: set their chance to 0 "
                "before the first draw, `torch.full(shape, probability)."
                "masked_fill(special_tokens_mask, 0.0)`. Their label stays -100.",
                fits=lambda a: a.problem == "values" and _special_selected(a),
            ),
            Hint(
                "The loss must count the selected tokens only: the labels are -100 wherever "
                "a token was not selected, `input_ids.masked_fill(~selected, -100)`.",
                fits=lambda a: a.problem == "values" and _labels_kept_unselected(a),
            ),
            Hint(
                "Not every selected token becomes `[MASK]`: only where `to_mask` is also "
                "True (80%). Of the others, those with `to_random` get `random_ids`, and "
                "the rest keep their own id. Always masking would teach the model that a "
                "real word in the input never needs predicting, and fine-tuning text has "
                "no `[MASK]` at all.",
                fits=lambda a: (
                    a.problem == "values"
                    and _labels_right(a)
                    and bool((a.got[0][a.expected[1] != IGNORE_INDEX] == a.case.args[2]).all())
                ),
            ),
            Hint(
                "The random ids come from the whole vocabulary, special tokens included: "
                "`torch.randint(vocab_size, shape, generator=g)`, as BERT and Hugging Face "
                "draw them. Another range gives other numbers from the same generator.",
                fits=lambda a: a.problem == "values" and _only_random_tokens_differ(a),
            ),
        ),
        wrong_answers=(
            _mask_special_too,
            _mask_labels_everywhere,
            _mask_always,
            _mask_random_without_specials,
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.embedding_sum
# --------------------------------------------------------------------------------------


def embedding_sum(
    input_ids: torch.Tensor,
    token_type_ids: torch.Tensor,
    word_embeddings: torch.Tensor,
    position_embeddings: torch.Tensor,
    token_type_embeddings: torch.Tensor,
) -> torch.Tensor:
    """BERT's input representation before LayerNorm: the token, position and segment
    embeddings of each position, summed, ``(batch, seq, hidden)``.

    ``input_ids`` and ``token_type_ids`` are ``(batch, seq)``; the three tables are
    ``(vocab, hidden)``, ``(max_positions, hidden)`` and ``(type_vocab, hidden)``.
    Used in: notebooks/05_bert.ipynb, section 11 (exercises).
    """
    positions = torch.arange(input_ids.shape[1])  # 0, 1, ..., seq - 1 in every sequence
    return (
        word_embeddings[input_ids]
        + position_embeddings[positions]  # (seq, hidden), broadcast over the batch
        + token_type_embeddings[token_type_ids]
    )


def _embedding_cases() -> list[Case]:
    g = torch.Generator().manual_seed(50)

    def case(ids: list[list[int]], types: list[list[int]], hidden: int) -> tuple:
        tables = (torch.randn(n, hidden, generator=g) for n in (20, 32, 2))
        return (torch.tensor(ids), torch.tensor(types), *tables)

    return [
        Case("one sequence of 4 tokens, segment 0", case([[2, 7, 9, 3]], [[0, 0, 0, 0]], 6)),
        Case(
            "a pair: segment 0, then segment 1",
            case([[2, 7, 3, 11, 12, 3]], [[0, 0, 0, 1, 1, 1]], 6),
        ),
        Case(
            "a padded batch of 3",
            case(
                [[2, 5, 6, 7, 3], [2, 8, 3, 0, 0], [2, 9, 3, 10, 3]],
                [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]],
                4,
            ),
        ),
        Case("a single token", case([[2]], [[0]], 5)),
        Case(
            "two pairs of 8 tokens, hidden 16",
            case(
                [[2, 4, 5, 6, 3, 7, 8, 3], [2, 9, 3, 10, 11, 12, 13, 3]],
                [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]],
                16,
            ),
        ),
    ]


def _embedding_positions_run_on(input_ids, token_type_ids, word, position, token_type):
    batch, seq = input_ids.shape
    positions = torch.arange(batch * seq).view(batch, seq)  # not reset per sequence
    return word[input_ids] + position[positions] + token_type[token_type_ids]


def _embedding_positions_from_one(input_ids, token_type_ids, word, position, token_type):
    positions = torch.arange(1, input_ids.shape[1] + 1)
    return word[input_ids] + position[positions] + token_type[token_type_ids]


def _embedding_no_segment(input_ids, token_type_ids, word, position, token_type):
    return word[input_ids] + position[torch.arange(input_ids.shape[1])]


def _embedding_concatenated(input_ids, token_type_ids, word, position, token_type):
    positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
    return torch.cat([word[input_ids], position[positions], token_type[token_type_ids]], dim=-1)


register(
    Exercise(
        id="bert.embedding_sum",
        chapter="bert",
        prompt=(
            "Write `embedding_sum(input_ids, token_type_ids, word_embeddings, "
            "position_embeddings, token_type_embeddings)`: BERT's input representation "
            "before its LayerNorm. Each position `t` of each sequence gets the sum of three "
            "rows: its token's row of `word_embeddings` `(vocab, hidden)`, row `t` of "
            "`position_embeddings` `(max_positions, hidden)` (positions count from 0 in "
            "every sequence), and its segment's row of `token_type_embeddings` "
            "`(2, hidden)`. `input_ids` and `token_type_ids` are `(batch, seq)` int64; "
            "return `(batch, seq, hidden)`."
        ),
        signature=(
            "def embedding_sum(input_ids, token_type_ids, word_embeddings, "
            "position_embeddings, token_type_embeddings) -> torch.Tensor"
        ),
        solution=embedding_sum,
        cases=_embedding_cases,
        hints=(
            Hint(
                "Indexing a table with a tensor of ids looks up a row per id: "
                "`word_embeddings[input_ids]` is `(batch, seq, hidden)`. Do the same for the "
                "segments, and add the positions' rows."
            ),
            Hint(
                "The three embeddings are added, not concatenated: each is `(batch, seq, "
                "hidden)` and so is the sum. (Adding them is the same as one linear map "
                "of the three one-hot vectors placed side by side.)",
                fits=lambda a: a.problem == "shape",
            ),
            Hint(
                "Every sequence starts at position 0: the positions are `torch.arange(seq)`, "
                "the same for each row of the batch, not a count running on through the "
                "batch, and not from 1.",
                fits=lambda a: (
                    isinstance(a.error, IndexError)
                    or _is_mistake(a, _embedding_positions_run_on)
                    or _is_mistake(a, _embedding_positions_from_one)
                ),
            ),
            Hint(
                "Add the segment embedding too: `token_type_embeddings[token_type_ids]` tells "
                "the model which sentence of a pair each token belongs to, even for a single "
                "sentence (segment 0 has its own learned row).",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _embedding_no_segment),
            ),
        ),
        wrong_answers=(
            _embedding_positions_run_on,
            _embedding_positions_from_one,
            _embedding_no_segment,
            _embedding_concatenated,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.mean_pooling
# --------------------------------------------------------------------------------------


def _pooling_cases() -> list[Case]:
    g = torch.Generator().manual_seed(51)

    def hidden(batch: int, seq: int, size: int) -> torch.Tensor:
        return 2.0 * torch.randn(batch, seq, size, generator=g) + 0.5

    def mask(*lengths: int, width: int) -> torch.Tensor:
        return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()

    return [
        Case("one sentence, no padding", (hidden(1, 4, 6), mask(4, width=4))),
        Case("padding: lengths 5 and 2", (hidden(2, 5, 6), mask(5, 2, width=5))),
        Case("a bool mask: lengths 3, 6 and 1", (hidden(3, 6, 4), mask(3, 6, 1, width=6).bool())),
        Case("a single token in each of 2 rows", (hidden(2, 1, 5), mask(1, 1, width=1))),
        Case(
            "a row of padding only gives zeros: lengths 3 and 0",
            (hidden(2, 4, 3), mask(3, 0, width=4)),
        ),
    ]


def _pooling_with_padding(last_hidden_state, attention_mask):
    return last_hidden_state.mean(dim=1)


def _pooling_over_seq_length(last_hidden_state, attention_mask):
    weights = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    return (last_hidden_state * weights).sum(dim=1) / last_hidden_state.shape[1]


def _pooling_over_batch(last_hidden_state, attention_mask):
    weights = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    return (last_hidden_state * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1e-9)


def _pooling_cls(last_hidden_state, attention_mask):
    return last_hidden_state[:, 0]


register(
    Exercise(
        id="bert.mean_pooling",
        chapter="bert",
        prompt=(
            "Write `mean_pooling(last_hidden_state, attention_mask)`: one vector per sentence, "
            "the mean of its token vectors over the real tokens only. `last_hidden_state` is "
            "`(batch, seq, hidden)`, `attention_mask` `(batch, seq)`, 1 (or True) at real "
            "tokens, 0 at padding; `[CLS]` and `[SEP]` count as real tokens. Return "
            "`(batch, hidden)`. A row without any real token gives a vector of zeros, not "
            "NaN: divide by the number of real tokens clamped to at least `1e-9`, as "
            "sentence-transformers does."
        ),
        signature="def mean_pooling(last_hidden_state, attention_mask) -> torch.Tensor",
        solution=mean_pooling,
        cases=_pooling_cases,
        hints=(
            Hint(
                "Turn the mask into weights `(batch, seq, 1)` of the hidden state's dtype, "
                "`attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)`: multiply, sum "
                "over the sequence (`dim=1`), and divide by the sum of the weights."
            ),
            Hint(
                "Padding must not count: `last_hidden_state.mean(dim=1)` averages the "
                "padded positions in, and a sentence's vector would change with the length "
                "of the longest sentence of its batch.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _pooling_with_padding),
            ),
            Hint(
                "Divide by the number of real tokens of each sentence, `weights.sum(dim=1)`, "
                "not by `seq`, the padded length shared by the batch.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _pooling_over_seq_length),
            ),
            Hint(
                "The result has one vector per sentence, `(batch, hidden)`: sum over the "
                "tokens, `dim=1`, not over the sentences of the batch, `dim=0`.",
                fits=lambda a: a.problem == "shape",
            ),
            Hint(
                "Mean pooling averages every real token, `[CLS]` included; the vector at "
                "position 0 alone is the `[CLS]` representation, another pooling (the one "
                "BERT's next-sentence head reads).",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _pooling_cls),
            ),
            Hint(
                "NaN for a row of padding only? Its count of real tokens is 0, and 0 / 0 is "
                "NaN: clamp the count, `.clamp(min=1e-9)`, so that the row gives zeros.",
                fits=lambda a: a.problem == "values" and bool(torch.isnan(a.got).any()),
            ),
        ),
        wrong_answers=(
            _pooling_with_padding,
            _pooling_over_seq_length,
            _pooling_over_batch,
            _pooling_cls,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.masked_lm_loss
# --------------------------------------------------------------------------------------


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The masked-LM loss: the cross-entropy of ``logits`` ``(batch, seq, vocab)`` against
    ``labels`` ``(batch, seq)`` at the positions whose label is not -100, averaged over
    those positions only; a 0-d tensor.

    Used in: notebooks/05_bert.ipynb, section 11 (exercises).
    """
    keep = labels != IGNORE_INDEX  # (batch, seq): the selected positions
    log_p = F.log_softmax(logits[keep], dim=-1)  # (selected, vocab)
    return -log_p.gather(1, labels[keep][:, None]).mean()


def _mlm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(52)

    def logits(batch: int, seq: int, vocab: int, scale: float = 2.0) -> torch.Tensor:
        return scale * torch.randn(batch, seq, vocab, generator=g)

    def labels(rows: list[list[int]]) -> torch.Tensor:
        return torch.tensor([[IGNORE_INDEX if x is None else x for x in row] for row in rows])

    ignore = None
    return [
        Case(
            "every position labelled: 3 positions, 5 classes",
            (logits(1, 3, 5), labels([[4, 0, 2]])),
        ),
        Case(
            "-100 at the positions not selected",
            (logits(2, 5, 7), labels([[ignore, 3, ignore, 6, ignore], [1, ignore, ignore, 0, 5]])),
        ),
        Case(
            "one labelled position in the whole batch",
            (logits(2, 4, 6), labels([[ignore] * 4, [ignore, ignore, 2, ignore]])),
        ),
        Case(
            "a row with no labelled position",
            (logits(3, 3, 5), labels([[1, ignore, 4], [ignore] * 3, [ignore, 0, ignore]])),
        ),
        Case(
            "large logits, in the hundreds",
            (logits(1, 4, 5, scale=300.0), labels([[2, ignore, 0, 3]])),
        ),
    ]


def _mlm_mean_over_all(logits, labels):
    keep = labels != IGNORE_INDEX
    log_p = F.log_softmax(logits[keep], dim=-1)
    return -log_p.gather(1, labels[keep][:, None]).sum() / labels.numel()


def _mlm_minus_100_as_class_0(logits, labels):
    targets = labels.masked_fill(labels == IGNORE_INDEX, 0)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def _mlm_sum(logits, labels):
    keep = labels != IGNORE_INDEX
    log_p = F.log_softmax(logits[keep], dim=-1)
    return -log_p.gather(1, labels[keep][:, None]).sum()


def _mlm_softmax_over_sequence(logits, labels):
    keep = labels != IGNORE_INDEX
    log_p = F.log_softmax(logits, dim=1)[keep]
    return -log_p.gather(1, labels[keep][:, None]).mean()


register(
    Exercise(
        id="bert.masked_lm_loss",
        chapter="bert",
        prompt=(
            "Write `masked_lm_loss(logits, labels)`: the masked-LM loss of a batch. `logits` "
            "is `(batch, seq, vocab)`, `labels` `(batch, seq)` int64, the original token id "
            "at the selected positions and -100 everywhere else. The loss is the "
            "cross-entropy `-log softmax(logits)[label]` of each selected position, averaged "
            "over the selected positions only (the batch holds at least one). Return a 0-d "
            "tensor."
        ),
        signature="def masked_lm_loss(logits, labels) -> torch.Tensor",
        solution=masked_lm_loss,
        cases=_mlm_cases,
        hints=(
            Hint(
                "Select first: `keep = labels != -100`, then `logits[keep]` is `(selected, "
                "vocab)` and `labels[keep]` `(selected,)`. Their cross-entropy, averaged, is "
                "the loss. (`F.cross_entropy` with `ignore_index=-100` does all of it at once "
                "on the flattened batch.)"
            ),
            Hint(
                "Use `F.log_softmax(..., dim=-1)`, never `torch.log(torch.softmax(...))`: "
                "with logits in the hundreds a probability rounds to 0 and its log is -inf.",
                fits=lambda a: a.problem == "values" and bool(torch.isinf(a.got).any()),
            ),
            Hint(
                "Average over the selected positions only, `(labels != -100).sum()` of "
                "them, not over every position of the batch: with 15% selected, dividing by "
                "all positions makes the loss about 7 times too small.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _mlm_mean_over_all),
            ),
            Hint(
                "-100 is not a class: those positions are left out of the loss. Replacing "
                "-100 by a real id (0, say) trains the model to predict that id at every "
                "unselected position.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _mlm_minus_100_as_class_0),
            ),
            Hint(
                "Return the mean, not the sum: the loss must not grow with the number of "
                "selected tokens.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _mlm_sum),
            ),
            Hint(
                "The softmax runs over the vocabulary, the last axis (`dim=-1`): each "
                "position is a distribution over the words, not over the positions.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _mlm_softmax_over_sequence),
            ),
        ),
        wrong_answers=(
            _mlm_mean_over_all,
            _mlm_minus_100_as_class_0,
            _mlm_sum,
            _mlm_softmax_over_sequence,
        ),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.nsp_pairs
# --------------------------------------------------------------------------------------


def nsp_pairs_from_draws(
    documents: Sequence[Sequence[Any]],
    is_next: Sequence[bool],
    picks: Sequence[tuple[int, int]],
) -> list[NSPPair]:
    """Next-sentence pairs as `lessons.bert.nsp_pairs` builds them, with its random draws
    given: pair ``k`` (one per sentence that has a next one in its document, in document
    order) is real when ``is_next[k]``, label 0; otherwise its second sentence is
    ``picks[k] = (r, j)``, sentence ``j`` of the ``r``-th document other than its own,
    label 1. Returns a list of `NSPPair` ``(first, second, label)``.

    Used in: notebooks/05_bert.ipynb, section 11 (exercises).
    """
    starts = [(d, i) for d, document in enumerate(documents) for i in range(len(document) - 1)]
    pairs = []
    for (d, i), real, (r, j) in zip(starts, is_next, picks, strict=True):
        first = documents[d][i]
        if real:
            pairs.append(NSPPair(first, documents[d][i + 1], 0))
        else:
            other = r if r < d else r + 1  # the documents other than d, in order
            pairs.append(NSPPair(first, documents[other][j], 1))
    return pairs


def _documents(*lengths: int) -> list[list[str]]:
    """Documents of sentences named by document and place: ``a1, a2, ...``, ``b1, ...``."""
    return [[f"{'abcdefgh'[d]}{i + 1}" for i in range(n)] for d, n in enumerate(lengths)]


def _nsp_cases() -> list[Case]:
    return [
        Case(
            "two documents of two sentences: a real pair, then a random one",
            (_documents(2, 2), [True, False], [(0, 0), (0, 1)]),
        ),
        Case(
            "three documents, every pair real",
            (_documents(3, 2, 4), [True] * 6, [(0, 0)] * 6),
        ),
        Case(
            "every pair random",
            (_documents(3, 3), [False] * 4, [(0, 2), (0, 0), (0, 1), (0, 2)]),
        ),
        Case(
            "three documents, real and random pairs mixed",
            (
                _documents(4, 2, 3),
                [True, False, True, False, True, False],
                [(0, 0), (1, 1), (0, 0), (0, 2), (0, 0), (1, 0)],
            ),
        ),
        Case(
            "a long document and a short one",
            (_documents(6, 2), [False, True, True, False, True, False], [(0, 1)] * 6),
        ),
    ]


def _nsp_same_document(documents, is_next, picks):
    starts = [(d, i) for d, document in enumerate(documents) for i in range(len(document) - 1)]
    pairs = []
    for (d, i), real, (r, j) in zip(starts, is_next, picks, strict=True):
        second = documents[d][i + 1] if real else documents[r][j]  # r may be d itself
        pairs.append((documents[d][i], second, 0 if real else 1))
    return pairs


def _nsp_labels_swapped(documents, is_next, picks):
    return [
        (first, second, 1 - label)
        for first, second, label in nsp_pairs_from_draws(documents, is_next, picks)
    ]


def _nsp_across_documents(documents, is_next, picks):
    sentences = [(d, s) for d, document in enumerate(documents) for s in document]
    pairs = []
    for k, (real, (r, j)) in enumerate(zip(is_next, picks, strict=True)):
        d, first = sentences[k]  # every sentence starts a pair, the last of a document too
        if real:
            pairs.append((first, sentences[k + 1][1], 0))
        else:
            pairs.append((first, documents[r if r < d else r + 1][j], 1))
    return pairs


def _document_of(documents: Sequence[Sequence[Any]], sentence: Any) -> int:
    return next(d for d, document in enumerate(documents) if sentence in document)


def _random_from_own_document(attempt: Attempt) -> bool:
    documents = attempt.case.args[0]
    return any(
        label == 1 and _document_of(documents, first) == _document_of(documents, second)
        for first, second, label in attempt.got
    )


def _pair_across_documents(attempt: Attempt) -> bool:
    documents = attempt.case.args[0]
    lasts = {document[-1] for document in documents}
    return any(pair[0] in lasts for pair in attempt.got)


def _labels_flipped(attempt: Attempt) -> bool:
    return len(attempt.got) == len(attempt.expected) and all(
        tuple(got[:2]) == tuple(want[:2]) and got[2] == 1 - want[2]
        for got, want in zip(attempt.got, attempt.expected, strict=True)
    )


register(
    Exercise(
        id="bert.nsp_pairs",
        chapter="bert",
        prompt=(
            "Write `nsp_pairs(documents, is_next, picks)`: the sentence pairs of BERT's "
            "next-sentence prediction, with the random draws given to you. `documents` is a "
            "list of documents, each a list of at least two sentences. Every sentence that "
            "has a next one *in its own document* starts one pair, in document order: "
            "pair `k` starts with the k-th such sentence. If `is_next[k]`, its second "
            "sentence is the real next one, label 0 ('is next'). Otherwise `picks[k] = "
            "(r, j)` names sentence `j` of the `r`-th document *other than* the pair's own "
            "document `d` (document `r` if `r < d`, else `r + 1`), label 1 ('random'). "
            "Return a list of `(first, second, label)` tuples, one per pair."
        ),
        signature=(
            "def nsp_pairs(documents: list[list[str]], is_next: list[bool], "
            "picks: list[tuple[int, int]]) -> list[tuple[str, str, int]]"
        ),
        solution=nsp_pairs_from_draws,
        cases=_nsp_cases,
        hints=(
            Hint(
                "List the starts first: `starts = [(d, i) for d, doc in enumerate(documents) "
                "for i in range(len(doc) - 1)]`, then walk `zip(starts, is_next, picks)`."
            ),
            Hint(
                "A pair never runs across documents: the last sentence of a document starts "
                "no pair, since what follows it in the corpus belongs to another text. "
                "Loop over each document's sentences `0 … len(doc) - 2`.",
                fits=lambda a: a.problem in ("values", "type") and _pair_across_documents(a),
            ),
            Hint(
                "Label 0 means 'is next', label 1 'random', as in Google's code and "
                "Hugging Face's `BertForPreTraining`: the classes are numbered the other "
                "way round from `is_next`.",
                fits=lambda a: a.problem == "values" and _labels_flipped(a),
            ),
            Hint(
                "A random second sentence comes from *another* document: `r` counts the "
                "documents other than `d`, so document `r + 1` when `r >= d`. From the same "
                "document, a 'random' sentence is often about the same thing, and the task "
                "gets muddled.",
                fits=lambda a: a.problem == "values" and _random_from_own_document(a),
            ),
        ),
        wrong_answers=(_nsp_same_document, _nsp_labels_swapped, _nsp_across_documents),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: bert.similarity_matrix
# --------------------------------------------------------------------------------------


def similarity_matrix(
    last_hidden_state: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """The cosine similarity of every pair of sentences of a batch: mean pooling over the
    real tokens, L2 normalisation, then all dot products, ``(batch, batch)``.

    ``last_hidden_state`` ``(batch, seq, hidden)``, ``attention_mask`` ``(batch, seq)``.
    Used in: notebooks/05_bert.ipynb, section 11 (exercises).
    """
    embeddings = F.normalize(mean_pooling(last_hidden_state, attention_mask), p=2, dim=1)
    return embeddings @ embeddings.T  # unit vectors: the dot product is the cosine


def _similarity_cases() -> list[Case]:
    g = torch.Generator().manual_seed(53)

    def hidden(batch: int, seq: int, size: int) -> torch.Tensor:
        return torch.randn(batch, seq, size, generator=g) + 0.3 * torch.randn(size, generator=g)

    def mask(*lengths: int, width: int) -> torch.Tensor:
        return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()

    return [
        Case("two sentences, no padding", (hidden(2, 3, 5), mask(3, 3, width=3))),
        Case("padding: lengths 4, 2 and 3", (hidden(3, 4, 6), mask(4, 2, 3, width=4))),
        Case("one sentence: its similarity with itself", (hidden(1, 5, 4), mask(5, width=5))),
        Case("single tokens", (hidden(3, 1, 8), mask(1, 1, 1, width=1))),
        Case("4 sentences of up to 7 tokens", (hidden(4, 7, 16), mask(7, 3, 5, 1, width=7))),
    ]


def _similarity_dot(last_hidden_state, attention_mask):
    embeddings = mean_pooling(last_hidden_state, attention_mask)
    return embeddings @ embeddings.T


def _similarity_with_padding(last_hidden_state, attention_mask):
    embeddings = F.normalize(last_hidden_state.mean(dim=1), dim=1)
    return embeddings @ embeddings.T


def _similarity_cls(last_hidden_state, attention_mask):
    embeddings = F.normalize(last_hidden_state[:, 0], dim=1)
    return embeddings @ embeddings.T


def _similarity_normalised_over_batch(last_hidden_state, attention_mask):
    embeddings = F.normalize(mean_pooling(last_hidden_state, attention_mask), dim=0)
    return embeddings @ embeddings.T


def _diagonal_not_one(attempt: Attempt) -> bool:
    return not torch.allclose(attempt.got.diagonal(), torch.ones(len(attempt.got)), atol=1e-4)


register(
    Exercise(
        id="bert.similarity_matrix",
        chapter="bert",
        prompt=(
            "Write `similarity_matrix(last_hidden_state, attention_mask)`: the cosine "
            "similarity of every pair of sentences of a batch, as all-MiniLM-L6-v2 scores "
            "them. Pool each sentence by the mean of its real tokens (`mean_pooling` of "
            "`lessons.bert` is yours to use), scale each sentence vector to length 1, then "
            "take all the dot products. `last_hidden_state` is `(batch, seq, hidden)`, "
            "`attention_mask` `(batch, seq)`; return `(batch, batch)`, entry `[i, j]` the "
            "cosine of sentences `i` and `j`."
        ),
        signature="def similarity_matrix(last_hidden_state, attention_mask) -> torch.Tensor",
        solution=similarity_matrix,
        cases=_similarity_cases,
        hints=(
            Hint(
                "Three steps: `e = mean_pooling(last_hidden_state, attention_mask)`, "
                "`e = F.normalize(e, p=2, dim=1)`, and `e @ e.T`."
            ),
            Hint(
                "Each sentence's vector must have length 1 before the dot products: then "
                "the diagonal, a sentence with itself, is exactly 1. Normalise each row, "
                "`dim=1`, not each feature across the batch.",
                fits=lambda a: a.problem == "values" and _diagonal_not_one(a),
            ),
            Hint(
                "Leave the padding out of the mean, as `mean_pooling` does: a padded "
                "position's vector says nothing about the sentence.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _similarity_with_padding),
            ),
            Hint(
                "all-MiniLM-L6-v2 was trained with mean pooling: the `[CLS]` vector alone is "
                "not the sentence vector it learned to compare.",
                fits=lambda a: a.problem == "values" and _is_mistake(a, _similarity_cls),
            ),
        ),
        wrong_answers=(
            _similarity_dot,
            _similarity_with_padding,
            _similarity_cls,
            _similarity_normalised_over_batch,
        ),
        check_grad=True,
    )
)


quiz.register(
    "bert",
    [
        {
            "question": "Why does BERT mask some input words and predict them, rather than "
            "train its bidirectional encoder to predict each next word, as a language model "
            "does?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Attending in both directions costs too much to predict every word "
                    "at once; masking 15% of them keeps training affordable",
                    "correct": False,
                    "feedback": "Speed is not the obstacle: the encoder computes every "
                    "position at once either way, and predicting only 15% of the tokens makes "
                    "BERT converge a little slower than a left-to-right model (Appendix C.1). "
                    "The problem is what each position can see.",
                },
                {
                    "answer": "Without a causal mask each position sees the whole input, the word "
                    "to predict included: it could copy it",
                    "correct": True,
                    "feedback": "Right: without a causal mask, every layer lets a word see "
                    "itself (and, after one layer, see itself through its neighbours). "
                    "Masking takes the answer out of the input while keeping both contexts.",
                },
                {
                    "answer": "Next-word prediction needs labelled text; masking makes its own "
                    "labels from raw text",
                    "correct": False,
                    "feedback": "Neither needs labels: both take their targets from the text "
                    "itself. The difference is which context the model may use.",
                },
            ],
        },
        {
            "question": "Of the 15% of tokens selected for prediction, BERT replaces 80% "
            "by [MASK], 10% by a random token and leaves 10% unchanged. Why not always "
            "[MASK]?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "[MASK] never appears when fine-tuning; a model that predicts only "
                    "at [MASK] need not represent the real words it sees",
                    "correct": True,
                    "feedback": "Right: this is the pre-training/fine-tuning mismatch "
                    "Devlin et al. name. The model cannot tell which visible words are "
                    "targets, so it must model all of them (§3.1, Appendix C.2).",
                },
                {
                    "answer": "The random tokens regularise the model, like dropout, and the "
                    "unchanged 10% saves the cost of predicting them",
                    "correct": False,
                    "feedback": "The unchanged tokens are predicted as well and cost the "
                    "same; the point is that any input word may be a target, so none can be "
                    "ignored.",
                },
                {
                    "answer": "With 100% [MASK] the model sees no real word at the selected "
                    "positions, and the loss there is undefined",
                    "correct": False,
                    "feedback": "The loss is defined either way: the label is the original "
                    "token. The paper's ablation trains with 100% [MASK] too (Appendix "
                    "C.2): fine-tuned, it comes close to the 80/10/10 mix; its features used "
                    "without fine-tuning do worse on named entities.",
                },
            ],
        },
        {
            "question": "In next-sentence prediction, BERT's label 0 means 'B follows A in "
            "the text' and 1 means 'B is a random sentence'. What did RoBERTa "
            "(Liu et al., 2019) find about this objective?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "It is essential: without it, question answering and inference get "
                    "worse",
                    "correct": False,
                    "feedback": "That is what BERT's own ablation reported (Devlin et al., "
                    "§5.1). RoBERTa, training longer on inputs filled with full sentences, "
                    "found the opposite.",
                },
                {
                    "answer": "Dropping it, with inputs of full sentences up to 512 tokens, "
                    "matched or slightly improved the downstream results",
                    "correct": True,
                    "feedback": "Right: removing the NSP loss matched or slightly improved "
                    "the downstream results (Liu et al., 2019, §4.2). ALBERT (Lan et al., "
                    "2020) later gave a reason: the negatives come from another document, so "
                    "the task can be solved by spotting a change of topic.",
                },
                {
                    "answer": "It should be replaced by a left-to-right language-model loss on "
                    "the second segment",
                    "correct": False,
                    "feedback": "RoBERTa keeps masked-LM training alone; it does not add a "
                    "left-to-right objective.",
                },
            ],
        },
        {
            "question": "all-MiniLM-L6-v2 has a vocabulary of 30,522 WordPieces, 512 "
            "positions, 2 segments and hidden size 384. How many parameters do its three "
            "embedding tables hold together (the LayerNorm after the sum not counted)?",
            "type": "numeric",
            "precision": 8,
            "answers": [
                {
                    "type": "value",
                    "value": 11917824,
                    "correct": True,
                    "feedback": "Right: (30,522 + 512 + 2) × 384 = 31,036 × 384 = "
                    "11,917,824. The word table is 98% of it; the whole model has about 22.7 "
                    "million parameters, so the embeddings are half of them.",
                },
                {
                    "type": "value",
                    "value": 11720448,
                    "correct": False,
                    "feedback": "That is the word embeddings alone, 30,522 × 384. Add the "
                    "512 position rows and the 2 segment rows, 384 numbers each.",
                },
                {
                    "type": "value",
                    "value": 11918592,
                    "correct": False,
                    "feedback": "768 too many: that counts the LayerNorm's gain and shift "
                    "(2 × 384), which is not an embedding table.",
                },
                {
                    "type": "value",
                    "value": 23835648,
                    "correct": False,
                    "feedback": "That is hidden size 768, BERT-base's. all-MiniLM-L6-v2's "
                    "vectors have 384 numbers.",
                },
                {
                    "type": "default",
                    "feedback": "Each table has one row of 384 numbers per entry: add the "
                    "rows of the three tables, 30,522 + 512 + 2, and multiply by 384.",
                },
            ],
        },
        {
            "question": "ELMo and BERT are both used on a new task with a small labelled "
            "set. What is the difference between the two ways the papers use them?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "ELMo's biLM stays frozen and a task model learns to mix its "
                    "layers; BERT gets one output layer and all its weights are trained",
                    "correct": True,
                    "feedback": "Right: the two strategies Devlin et al. contrast (§1). "
                    "BERT's paper also tries it feature-based (§5.3), a little below "
                    "fine-tuning on named entities.",
                },
                {
                    "answer": "ELMo is fine-tuned end to end with a new output layer; BERT's "
                    "layers are frozen and averaged into features",
                    "correct": False,
                    "feedback": "The other way round: ELMo's biLM stays frozen and only its "
                    "scalar mix and the task model learn; BERT's weights are all updated.",
                },
                {
                    "answer": "There is none: both are frozen, and a linear probe reads their "
                    "last layer",
                    "correct": False,
                    "feedback": "A linear probe on frozen features is how chapter 2 "
                    "measures what the layers hold, not how either paper reaches its best "
                    "task results.",
                },
            ],
        },
        {
            "question": "BERT adds its token, position and segment embeddings instead of "
            "concatenating them. Why is a sum enough?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "A sum of three looked-up rows is one linear map of the three "
                    "one-hot vectors placed side by side",
                    "correct": True,
                    "feedback": "Right: [one-hot(w); one-hot(t); one-hot(s)] times [E_w; "
                    "E_t; E_s] is E_w[w] + E_t[t] + E_s[s]. Concatenating the three rows "
                    "and projecting back to the width with [W_w W_t W_s] gives W_w E_w[w] + "
                    "W_t E_t[t] + W_s E_s[s]: again a sum of three learned lookups.",
                },
                {
                    "answer": "The sum is an approximation: it blurs the position, which "
                    "attention later recovers",
                    "correct": False,
                    "feedback": "Nothing is lost that the model could not keep: the tables "
                    "are learned together, so the model can place the three kinds of "
                    "information in different directions of the 384 (or 768) dimensions.",
                },
                {
                    "answer": "The position embeddings are sinusoids, orthogonal to the word "
                    "embeddings, so nothing mixes",
                    "correct": False,
                    "feedback": "BERT learns its position table, one row per position, "
                    "unlike the fixed sinusoids of chapter 4; nothing forces orthogonality.",
                },
            ],
        },
        {
            "question": "The WordPiece vocabulary of all-MiniLM-L6-v2 cuts 'embeddings' "
            "into 'em', '##bed', '##ding', '##s'. What does '##' mark?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "A rare piece, which the model should down-weight when it pools a "
                    "sentence",
                    "correct": False,
                    "feedback": "'##' says nothing about how rare a piece is: the "
                    "vocabulary holds both 's' and '##s', the plural ending.",
                },
                {
                    "answer": "A piece that continues the word of the piece before it: 'bed' and "
                    "'##bed' are different entries",
                    "correct": True,
                    "feedback": "Right: so the tokens can be glued back into words, and "
                    "the model knows where words begin. Decoding removes the ' ##' between "
                    "pieces.",
                },
                {
                    "answer": "A piece outside the vocabulary, spelled out letter by letter",
                    "correct": False,
                    "feedback": "Pieces not in the vocabulary never appear: a word that no "
                    "sequence of pieces covers becomes [UNK] whole.",
                },
            ],
        },
        {
            "question": "What is the [CLS] token at the start of every BERT input for?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "It marks the start of the input, so that the position embeddings "
                    "can count from 1",
                    "correct": False,
                    "feedback": "Positions count from 0 at [CLS] itself; the position "
                    "embeddings need no marker.",
                },
                {
                    "answer": "Its final hidden state stands for the whole input: the pooler and "
                    "the sentence-level heads read it",
                    "correct": True,
                    "feedback": "Right: attention lets it gather from every token, and the "
                    "sentence-level objectives train it to. Without fine-tuning it makes a "
                    "poor sentence vector (Reimers and Gurevych, 2019); sentence-transformers "
                    "models such as all-MiniLM-L6-v2 use the mean of all tokens instead.",
                },
                {
                    "answer": "It separates the two segments of a pair",
                    "correct": False,
                    "feedback": "That is [SEP], together with the segment embeddings.",
                },
            ],
        },
    ],
)
