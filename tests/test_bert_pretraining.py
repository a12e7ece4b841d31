"""The pre-training data of chapter 5: masking by the 80/10/10 rule and NSP pairs.

Masking is checked by its statistics on about 200k eligible tokens (binomial tolerance of
4 standard deviations) and against Hugging Face's ``DataCollatorForLanguageModeling``.
"""

from __future__ import annotations

import math

import pytest
import torch

from lessons.bert import IGNORE_INDEX, NSPPair, mask_tokens, nsp_pairs
from lessons.core.data import wikipedia_articles
from lessons.wordpiece import WordPieceTokenizer, minilm_path

torch.set_num_threads(1)

SIGMAS = 4


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_minilm()


@pytest.fixture(scope="module")
def batch(tokenizer: WordPieceTokenizer) -> dict[str, torch.Tensor]:
    """Random ordinary tokens in sequences of varied lengths, with [CLS], [SEP] and padding:
    3200 x 128 positions, about 214k of them eligible."""
    vocab = tokenizer.vocab
    specials = {vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    ordinary = torch.tensor(sorted(set(vocab.values()) - specials))
    g = torch.Generator().manual_seed(1)
    rows, seq = 3200, 128
    lengths = torch.randint(10, seq + 1, (rows,), generator=g)
    ids = ordinary[torch.randint(len(ordinary), (rows, seq), generator=g)]
    positions = torch.arange(seq)
    ids[:, 0] = vocab["[CLS]"]
    ids[positions >= lengths[:, None] - 1] = vocab["[PAD]"]
    ids[torch.arange(rows), lengths - 1] = vocab["[SEP]"]
    special = torch.isin(ids, torch.tensor(sorted(specials)))
    return {"input_ids": ids, "special_tokens_mask": special}


def masked(batch, tokenizer, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return mask_tokens(
        batch["input_ids"],
        batch["special_tokens_mask"],
        mask_id=tokenizer.vocab["[MASK]"],
        vocab_size=len(tokenizer.vocab),
        generator=g,
    )


def rates(ids: torch.Tensor, out: torch.Tensor, labels: torch.Tensor, eligible, mask_id: int):
    """Selected fraction of the eligible tokens; [MASK], changed-to-another-token and
    unchanged fractions of the selected ones."""
    selected = labels != IGNORE_INDEX
    n = int(selected.sum())
    return {
        "selected": n / int(eligible.sum()),
        "mask": int((out[selected] == mask_id).sum()) / n,
        "random": int(((out[selected] != mask_id) & (out[selected] != ids[selected])).sum()) / n,
        "unchanged": int((out[selected] == ids[selected]).sum()) / n,
        "n_selected": n,
        "n_eligible": int(eligible.sum()),
    }


def within_binomial(rate: float, p: float, n: int) -> bool:
    return abs(rate - p) <= SIGMAS * math.sqrt(p * (1 - p) / n)


def test_masking_statistics_follow_the_80_10_10_rule(batch, tokenizer):
    out, labels = masked(batch, tokenizer)
    eligible = ~batch["special_tokens_mask"]
    r = rates(batch["input_ids"], out, labels, eligible, tokenizer.vocab["[MASK]"])
    assert r["n_eligible"] > 200_000
    assert within_binomial(r["selected"], 0.15, r["n_eligible"]), r
    # A random draw equals [MASK] or the original token with probability 1/V each.
    v = len(tokenizer.vocab)
    assert within_binomial(r["mask"], 0.8 + 0.1 / v, r["n_selected"]), r
    assert within_binomial(r["random"], 0.1 * (1 - 2 / v), r["n_selected"]), r
    assert within_binomial(r["unchanged"], 0.1 + 0.1 / v, r["n_selected"]), r


def test_special_tokens_and_padding_are_never_selected_or_changed(batch, tokenizer):
    for seed in range(5):
        out, labels = masked(batch, tokenizer, seed)
        special = batch["special_tokens_mask"]
        assert (labels[special] == IGNORE_INDEX).all()
        assert torch.equal(out[special], batch["input_ids"][special])


def test_labels_are_the_original_ids_exactly_where_selected(batch, tokenizer):
    out, labels = masked(batch, tokenizer)
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], batch["input_ids"][selected])
    assert (labels[~selected] == IGNORE_INDEX).all()
    # Tokens that were not selected are never changed.
    assert torch.equal(out[~selected], batch["input_ids"][~selected])


def test_masking_is_deterministic_and_leaves_its_input_alone(batch, tokenizer):
    before = batch["input_ids"].clone()
    first, second, other = (masked(batch, tokenizer, seed) for seed in (3, 3, 4))
    assert torch.equal(batch["input_ids"], before)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_probability_zero_and_one(batch, tokenizer):
    ids, special = batch["input_ids"][:50], batch["special_tokens_mask"][:50]
    mask_id = tokenizer.vocab["[MASK]"]
    out, labels = mask_tokens(ids, special, mask_id, len(tokenizer.vocab), probability=0.0)
    assert torch.equal(out, ids) and (labels == IGNORE_INDEX).all()
    out, labels = mask_tokens(ids, special, mask_id, len(tokenizer.vocab), probability=1.0)
    assert torch.equal(labels != IGNORE_INDEX, ~special)


def test_same_rates_as_hugging_face_collator(batch, tokenizer):
    transformers = pytest.importorskip("transformers")
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(str(minilm_path()))
    assert len(hf_tokenizer) == len(tokenizer.vocab)
    collator = transformers.DataCollatorForLanguageModeling(hf_tokenizer, mlm_probability=0.15)
    ids, special = batch["input_ids"], batch["special_tokens_mask"]
    mask_id = tokenizer.vocab["[MASK]"]
    collator.generator = torch.Generator().manual_seed(0)
    hf_out, hf_labels = collator.torch_mask_tokens(ids.clone(), special.long())
    ours = rates(ids, *masked(batch, tokenizer, seed=5), ~special, mask_id)
    theirs = rates(ids, hf_out, hf_labels, ~special, mask_id)
    assert (hf_labels[special] == IGNORE_INDEX).all()
    for key, p in {"selected": 0.15, "mask": 0.8, "random": 0.1, "unchanged": 0.1}.items():
        n = ours["n_eligible"] if key == "selected" else ours["n_selected"]
        # Two independent estimates: their difference has variance 2 p (1 - p) / n.
        assert abs(ours[key] - theirs[key]) <= SIGMAS * math.sqrt(2 * p * (1 - p) / n), key


def test_same_draws_as_hugging_face_collator_with_the_same_generator(batch, tokenizer):
    transformers = pytest.importorskip("transformers")
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(str(minilm_path()))
    collator = transformers.DataCollatorForLanguageModeling(hf_tokenizer, mlm_probability=0.15)
    ids, special = batch["input_ids"][:200], batch["special_tokens_mask"][:200]
    collator.generator = torch.Generator().manual_seed(7)
    hf_out, hf_labels = collator.torch_mask_tokens(ids.clone(), special.long())
    out, labels = mask_tokens(
        ids,
        special,
        tokenizer.vocab["[MASK]"],
        len(tokenizer.vocab),
        generator=torch.Generator().manual_seed(7),
    )
    assert torch.equal(out, hf_out) and torch.equal(labels, hf_labels)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_ids": [[1, 2]]}, TypeError, "input_ids"),
        ({"special_tokens_mask": torch.zeros(2, 3, dtype=torch.bool)}, ValueError, "shape"),
        ({"mask_id": 10}, ValueError, "mask_id"),
        ({"mask_id": -1}, ValueError, "mask_id"),
        ({"vocab_size": 0}, ValueError, "vocab_size"),
        ({"probability": 1.5}, ValueError, "probability"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_mask_tokens_rejects_bad_arguments(kwargs, error, message):
    arguments = {
        "input_ids": torch.ones(2, 4, dtype=torch.long),
        "special_tokens_mask": torch.zeros(2, 4, dtype=torch.bool),
        "mask_id": 3,
        "vocab_size": 10,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        mask_tokens(**arguments)


# ---------------------------------------------------------------------------------------
# Next-sentence prediction pairs
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def documents() -> list[tuple[tuple[str, ...], ...]]:
    return [a.sentences for a in wikipedia_articles("train") if len(a.sentences) >= 2]


def test_nsp_pairs_are_half_real_half_random(documents):
    pairs = nsp_pairs(documents, seed=0)
    assert len(pairs) == sum(len(d) - 1 for d in documents)
    assert sum(p.label for p in pairs) == len(pairs) // 2
    where = {}  # sentence -> the documents it occurs in
    for d, document in enumerate(documents):
        for sentence in document:
            where.setdefault(sentence, set()).add(d)
    starts = [(d, i) for d, document in enumerate(documents) for i in range(len(document) - 1)]
    for (d, i), pair in zip(starts, pairs, strict=True):
        assert pair.first is documents[d][i]
        if pair.label == 0:
            assert pair.second is documents[d][i + 1]
        else:
            assert where[pair.second] - {d}, "a negative must come from another document"
    assert all(isinstance(p, NSPPair) for p in pairs)


def test_nsp_negatives_come_from_other_documents_exactly():
    documents = [[f"d{d}s{i}" for i in range(5)] for d in range(4)]
    pairs = nsp_pairs(documents, seed=1)
    assert len(pairs) == 16 and sum(p.label for p in pairs) == 8
    for pair in pairs:
        d, i = (int(x) for x in pair.first[1:].split("s"))
        if pair.label == 0:
            assert pair.second == f"d{d}s{i + 1}"
        else:
            assert not pair.second.startswith(f"d{d}s")


def test_nsp_pairs_are_deterministic(documents):
    assert nsp_pairs(documents, seed=3) == nsp_pairs(documents, seed=3)
    assert nsp_pairs(documents, seed=3) != nsp_pairs(documents, seed=4)


@pytest.mark.parametrize(
    ("documents", "error", "message"),
    [
        ([], ValueError, "at least 2 documents"),
        ([["a", "b"]], ValueError, "at least 2 documents"),
        ([["a", "b"], ["c"]], ValueError, r"documents\[1\]: expected at least 2 sentences"),
        ([["a", "b"], []], ValueError, r"documents\[1\]"),
        ("a text", TypeError, "documents"),
        ([["a", "b"], "cd"], TypeError, r"documents\[1\]"),
    ],
)
def test_nsp_pairs_rejects_bad_documents(documents, error, message):
    with pytest.raises(error, match=message):
        nsp_pairs(documents)


def test_nsp_pairs_rejects_a_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        nsp_pairs([["a", "b"], ["c", "d"]], seed=-1)
