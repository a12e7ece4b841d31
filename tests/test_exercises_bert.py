"""Tests of lessons.exercises.bert: each typical mistake gets the hint written for it,
correct answers written by others (Hugging Face, sentence-transformers, PyTorch) pass,
and the quiz's numbers and claims hold on the real all-MiniLM-L6-v2.

The generic tests (tests/test_exercises.py, tests/test_quiz.py) already prove that every
solution passes its check and every declared wrong answer fails it;
tests/test_exercise_solutions.py proves the solutions equal to the taught module.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lessons import exercises
from lessons.bert import BertConfig, BertEmbeddings, BertModel, mean_pooling, sentence_embeddings
from lessons.exercises import bert as bx
from lessons.exercises import quiz
from lessons.wordpiece import load_vocab, minilm_path, wordpiece

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONS_PROGRESS", "off")


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check answers in this process: those built on transformers or sentence-transformers
    would spend the worker's time limit importing them."""
    monkeypatch.setenv("LESSONS_CHECK_SANDBOX", "off")


def check(exercise_id: str, answer) -> exercises.CheckResult:
    return exercises.check(exercise_id, answer, display_feedback=False)


# --- Each mistake gets its hint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exercise_id", "wrong", "hint_number"),
    [
        ("bert.wordpiece", bx._wordpiece_no_hashes, 2),
        ("bert.wordpiece", bx._wordpiece_shortest_first, 3),
        ("bert.wordpiece", bx._wordpiece_characters, 4),
        ("bert.wordpiece", bx._wordpiece_unk_rest, 4),
        ("bert.wordpiece", bx._wordpiece_no_length_limit, 5),
        ("bert.mask_tokens", bx._mask_special_too, 2),
        ("bert.mask_tokens", bx._mask_labels_everywhere, 3),
        ("bert.mask_tokens", bx._mask_always, 4),
        ("bert.mask_tokens", bx._mask_random_without_specials, 5),
        ("bert.embedding_sum", bx._embedding_concatenated, 2),
        ("bert.embedding_sum", bx._embedding_positions_run_on, 3),
        ("bert.embedding_sum", bx._embedding_positions_from_one, 3),
        ("bert.embedding_sum", bx._embedding_no_segment, 4),
        ("bert.mean_pooling", bx._pooling_with_padding, 2),
        ("bert.mean_pooling", bx._pooling_over_seq_length, 3),
        ("bert.mean_pooling", bx._pooling_over_batch, 4),
        ("bert.mean_pooling", bx._pooling_cls, 5),
        ("bert.masked_lm_loss", bx._mlm_mean_over_all, 3),
        ("bert.masked_lm_loss", bx._mlm_minus_100_as_class_0, 4),
        ("bert.masked_lm_loss", bx._mlm_sum, 5),
        ("bert.masked_lm_loss", bx._mlm_softmax_over_sequence, 6),
        ("bert.nsp_pairs", bx._nsp_across_documents, 2),
        ("bert.nsp_pairs", bx._nsp_labels_swapped, 3),
        ("bert.nsp_pairs", bx._nsp_same_document, 4),
        ("bert.similarity_matrix", bx._similarity_dot, 2),
        ("bert.similarity_matrix", bx._similarity_normalised_over_batch, 2),
        ("bert.similarity_matrix", bx._similarity_with_padding, 3),
        ("bert.similarity_matrix", bx._similarity_cls, 4),
    ],
)
def test_each_mistake_gets_its_hint(exercise_id: str, wrong, hint_number: int) -> None:
    result = check(exercise_id, wrong)
    assert not result.passed
    assert result.failed_cases[0].hint_number == hint_number, result.report()


def test_chapter_five_has_its_seven_exercises() -> None:
    assert sorted(k for k in exercises.registry() if k.startswith("bert.")) == [
        "bert.embedding_sum",
        "bert.mask_tokens",
        "bert.masked_lm_loss",
        "bert.mean_pooling",
        "bert.nsp_pairs",
        "bert.similarity_matrix",
        "bert.wordpiece",
    ]


def test_unclamped_division_gets_the_nan_hint() -> None:
    def unclamped(last_hidden_state, attention_mask):
        weights = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
        return (last_hidden_state * weights).sum(1) / weights.sum(1)

    result = check("bert.mean_pooling", unclamped)
    assert [case.name for case in result.failed_cases] == [
        "a row of padding only gives zeros: lengths 3 and 0"
    ]
    assert result.failed_cases[0].hint_number == 6


def test_naive_log_softmax_gets_the_stability_hint() -> None:
    def naive(logits, labels):
        keep = labels != -100
        probabilities = torch.softmax(logits[keep], dim=-1)
        return -torch.log(probabilities.gather(1, labels[keep][:, None])).mean()

    result = check("bert.masked_lm_loss", naive)
    assert [case.name for case in result.failed_cases] == ["large logits, in the hundreds"]
    assert result.failed_cases[0].hint_number == 2


def test_masking_with_draws_in_another_order_gets_the_first_hint() -> None:
    def reordered(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
        g = torch.Generator().manual_seed(seed)
        shape = input_ids.shape
        random_ids = torch.randint(vocab_size, shape, generator=g)  # drawn first
        chance = torch.full(shape, probability).masked_fill(special_tokens_mask, 0.0)
        selected = torch.bernoulli(chance, generator=g).bool()
        to_mask = torch.bernoulli(torch.full(shape, 0.8), generator=g).bool() & selected
        to_random = torch.bernoulli(torch.full(shape, 0.5), generator=g).bool()
        to_random &= selected & ~to_mask
        masked = torch.where(to_random, random_ids, input_ids.masked_fill(to_mask, mask_id))
        return masked, input_ids.masked_fill(~selected, -100)

    result = check("bert.mask_tokens", reordered)
    assert not result.passed
    assert result.failed_cases[0].hint_number == 1, result.report()


def test_a_crashing_answer_is_feedback() -> None:
    def crashing(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
        return vocab[word + "!"]  # KeyError

    result = check("bert.wordpiece", crashing)
    assert not result.passed and len(result.failed_cases) == 6
    assert result.failed_cases[0].problem.startswith("raised KeyError")
    assert result.failed_cases[0].hint_number == 1


def test_an_index_error_in_the_embedding_sum_gets_the_positions_hint() -> None:
    def positions_too_far(input_ids, token_type_ids, word, position, token_type):
        positions = torch.arange(input_ids.shape[1]) + 40  # past the table's 32 rows
        return word[input_ids] + position[positions] + token_type[token_type_ids]

    result = check("bert.embedding_sum", positions_too_far)
    assert result.failed_cases[0].problem.startswith("raised IndexError")
    assert result.failed_cases[0].hint_number == 3


# --- Correct answers written by others pass ---------------------------------------------------


def test_hugging_faces_wordpiece_passes(in_process: None) -> None:
    """Hugging Face's Python WordPiece (the reference of BertTokenizerLegacy) passes."""
    legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")

    def hugging_face(word, vocab, *, unk_token="[UNK]", max_input_chars_per_word=100):
        tokenizer = legacy.WordpieceTokenizer(vocab, unk_token, max_input_chars_per_word)
        return tokenizer.tokenize(word)

    assert check("bert.wordpiece", hugging_face).passed


def test_hugging_faces_collator_passes(in_process: None) -> None:
    """`DataCollatorForLanguageModeling.torch_mask_tokens`, seeded, passes the masking
    exercise: the draws the prompt prescribes are Hugging Face's."""
    transformers = pytest.importorskip("transformers")

    class Tokenizer:  # what torch_mask_tokens asks of a tokenizer
        mask_token = "[MASK]"

        def __init__(self, size: int, mask_id: int) -> None:
            self.size, self.mask_id = size, mask_id

        def __len__(self) -> int:
            return self.size

        def convert_tokens_to_ids(self, token: str) -> int:
            return self.mask_id

    def hugging_face(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
        collator = SimpleNamespace(
            tokenizer=Tokenizer(vocab_size, mask_id),
            mlm_probability=probability,
            mask_replace_prob=0.8,
            random_replace_prob=0.1,
            whole_word_mask=False,
            generator=torch.Generator().manual_seed(seed),
        )
        collate = transformers.DataCollatorForLanguageModeling.torch_mask_tokens
        return collate(collator, input_ids.clone(), special_tokens_mask)

    result = check("bert.mask_tokens", hugging_face)
    assert result.passed, result.report()


def test_sentence_transformers_pooling_passes(in_process: None) -> None:
    models = pytest.importorskip("sentence_transformers.models")

    def pooling(last_hidden_state, attention_mask):
        module = models.Pooling(last_hidden_state.shape[-1], pooling_mode="mean")
        features = {"token_embeddings": last_hidden_state, "attention_mask": attention_mask}
        return module(features)["sentence_embedding"]

    assert check("bert.mean_pooling", pooling).passed


def test_pytorchs_cross_entropy_passes() -> None:
    def pytorch(logits, labels):
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    assert check("bert.masked_lm_loss", pytorch).passed


def test_cosine_similarity_passes() -> None:
    def cosines(last_hidden_state, attention_mask):
        pooled = mean_pooling(last_hidden_state, attention_mask)
        return F.cosine_similarity(pooled[:, None, :], pooled[None, :, :], dim=-1)

    assert check("bert.similarity_matrix", cosines).passed


def test_embedding_sum_with_nn_embedding_passes() -> None:
    def modules(input_ids, token_type_ids, word, position, token_type):
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        return (
            F.embedding(input_ids, word)
            + F.embedding(positions, position)
            + F.embedding(token_type_ids, token_type)
        )

    assert check("bert.embedding_sum", modules).passed


def test_similarity_matrix_is_what_sentence_embeddings_compare() -> None:
    """On a real (small, random) BertModel: the exercise's matrix of its last hidden state
    is the dot products of `sentence_embeddings`."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=12,
    )  # fmt: skip
    model = BertModel(config).eval()
    ids = torch.randint(5, 40, (3, 6))
    mask = (torch.arange(6)[None, :] < torch.tensor([[6], [4], [2]])).long()
    with torch.no_grad():
        vectors = sentence_embeddings(model, ids, mask)
        hidden = model(ids, mask).last_hidden_state
    torch.testing.assert_close(bx.similarity_matrix(hidden, mask), vectors @ vectors.T)


# --- The quiz: its numbers and claims, checked on all-MiniLM-L6-v2 ------------------------------


def _question(text: str) -> dict:
    (question,) = [q for q in quiz.questions("bert") if text in q["question"]]
    return question


def _minilm_config() -> BertConfig:
    return BertConfig.from_json(minilm_path() / "config.json")


def test_the_quiz_has_at_least_six_questions_of_both_kinds() -> None:
    questions = quiz.questions("bert")
    assert len(questions) >= 6
    assert {q["type"] for q in questions} == {"multiple_choice", "numeric"}


def test_embedding_parameter_count_is_minilms() -> None:
    question = _question("How many parameters do its three embedding tables hold")
    values = {a["value"]: a["correct"] for a in question["answers"] if a["type"] == "value"}
    (correct,) = [value for value, right in values.items() if right]
    config = _minilm_config()
    assert (config.vocab_size, config.max_position_embeddings, config.type_vocab_size) == (
        30522,
        512,
        2,
    )
    assert config.hidden_size == 384
    embeddings = BertEmbeddings(config)
    tables = sum(p.numel() for name, p in embeddings.named_parameters() if "norm" not in name)
    assert correct == tables == (30522 + 512 + 2) * 384 == 11_917_824
    # the wrong answers are the mistakes their feedback names
    norm = sum(p.numel() for p in embeddings.norm.parameters())
    assert set(values) - {correct} == {
        30522 * 384,  # the word table alone
        tables + norm,  # the LayerNorm counted
        (30522 + 512 + 2) * 768,  # BERT-base's width
    }


def test_embedding_feedback_shares_are_minilms() -> None:
    """'The word table is 98% of it; ... about 22.7 million parameters, so the embeddings
    are half of them.'"""
    feedback = next(
        a["feedback"]
        for a in _question("embedding tables hold")["answers"]
        if a.get("correct") is True
    )
    assert "98%" in feedback and "22.7 million" in feedback and "half" in feedback
    with torch.device("meta"):  # the shapes are enough to count
        model = BertModel(_minilm_config())
    total = sum(p.numel() for p in model.parameters())
    assert round(total / 1e6, 1) == 22.7
    assert round(100 * 30522 / (30522 + 512 + 2)) == 98
    assert 0.45 < 11_917_824 / total < 0.55


def test_minilm_vocabulary_has_both_s_and_hash_s() -> None:
    """The '##' question's feedback: the vocabulary holds both 's' and '##s'."""
    vocab = load_vocab(minilm_path() / "vocab.txt")
    assert {"s", "##s"} <= set(vocab)
    feedback = " ".join(a["feedback"] for a in _question("What does '##' mark?")["answers"])
    assert "both 's' and '##s'" in feedback


def test_wordpiece_example_in_the_quiz_is_minilms() -> None:
    """'embeddings' -> 'em', '##bed', '##ding', '##s' with the real vocabulary, which holds
    'bed' and '##bed' as two entries."""
    vocab = load_vocab(minilm_path() / "vocab.txt")
    assert wordpiece("embeddings", vocab) == ["em", "##bed", "##ding", "##s"]
    assert {"bed", "##bed"} <= set(vocab)
    question = _question("What does '##' mark?")
    assert "'em', '##bed', '##ding', '##s'" in question["question"]
    assert any("'bed' and '##bed'" in a["answer"] for a in question["answers"])
