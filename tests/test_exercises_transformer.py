"""Tests of lessons.exercises.transformer: each typical mistake gets the hint written for
it, correct answers written another way pass, and the quiz's claims hold in PyTorch.

The generic tests (tests/test_exercises.py, tests/test_quiz.py) already prove that every
solution passes its check and every declared wrong answer fails it;
tests/test_exercise_solutions.py proves the solutions equal to the taught module.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons import exercises
from lessons.exercises import quiz
from lessons.exercises import transformer as tx
from lessons.transformer import EncoderLayer, sinusoidal_encoding


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONS_PROGRESS", "off")


# --- Each mistake gets its hint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exercise_id", "wrong", "hint_number"),
    [
        ("transformer.sinusoidal_encoding", tx._sinusoidal_swapped, 2),
        ("transformer.sinusoidal_encoding", tx._sinusoidal_halves, 2),
        ("transformer.sinusoidal_encoding", tx._sinusoidal_exponent_i, 3),
        ("transformer.sinusoidal_encoding", tx._sinusoidal_base_1000, 3),
        ("transformer.sinusoidal_encoding", tx._sinusoidal_float64, 4),
        ("transformer.decoder_mask", tx._decoder_mask_no_head_dimension, 2),
        ("transformer.decoder_mask", tx._decoder_mask_causal_only, 3),
        ("transformer.decoder_mask", tx._decoder_mask_padded_queries, 3),
        ("transformer.decoder_mask", tx._decoder_mask_upper_triangle, 3),
        ("transformer.decoder_mask", tx._decoder_mask_torch_convention, 4),
        ("transformer.encoder_layer", tx._encoder_layer_always_pre_norm, 2),
        ("transformer.encoder_layer", tx._encoder_layer_always_post_norm, 3),
        ("transformer.label_smoothed_cross_entropy", tx._label_smoothing_other_classes, 1),
        ("transformer.label_smoothed_cross_entropy", tx._label_smoothing_zero_log_zero, 3),
        ("transformer.label_smoothed_cross_entropy", tx._label_smoothing_no_ignore, 4),
        ("transformer.label_smoothed_cross_entropy", tx._label_smoothing_mean_over_all, 4),
        ("transformer.label_smoothed_cross_entropy", tx._label_smoothing_sum, 5),
        ("transformer.warmup_schedule", tx._warmup_max, 1),
        ("transformer.warmup_schedule", tx._warmup_no_d_model, 2),
        ("transformer.warmup_schedule", tx._warmup_power_half, 3),
        ("transformer.warmup_schedule", tx._warmup_tensor, 4),
        ("transformer.beam_step", tx._beam_best_token_per_beam, 1),
        ("transformer.beam_step", tx._beam_without_previous_scores, 2),
        ("transformer.beam_step", tx._beam_swapped_indices, 3),
        ("transformer.beam_step", tx._beam_divided_by_beams, 3),
    ],
)
def test_each_mistake_gets_its_hint(exercise_id: str, wrong, hint_number: int) -> None:
    result = exercises.check(exercise_id, wrong, display_feedback=False)
    assert result.failed_cases[0].hint_number == hint_number, result.report()


def test_naive_log_softmax_gets_the_stability_hint() -> None:
    def naive(logits, targets, epsilon=0.1, ignore_index=None):
        keep = torch.ones_like(targets, dtype=torch.bool)
        if ignore_index is not None:
            keep = targets != ignore_index
        log_p = torch.log(torch.softmax(logits[keep], dim=-1))  # log 0 = -inf
        q = torch.full_like(log_p, epsilon / logits.shape[-1])
        q.scatter_(-1, targets[keep][:, None], 1 - epsilon + epsilon / logits.shape[-1])
        return -(q * log_p).sum(-1).mean()

    result = exercises.check(
        "transformer.label_smoothed_cross_entropy", naive, display_feedback=False
    )
    assert [case.name for case in result.failed_cases] == [
        "ε = 0 and a -inf logit (class 2 ruled out)",
        "large logits, in the hundreds",
    ]
    assert [case.hint_number for case in result.failed_cases] == [3, 2]


# --- Correct answers written another way pass --------------------------------------------------


def test_a_float32_encoding_passes() -> None:
    """The common float32 recipe (frequencies through exp and log) is within tolerance."""

    def float32_encoding(length, d_model):
        position = torch.arange(length, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        encoding = torch.zeros(length, d_model)
        encoding[:, 0::2] = torch.sin(position * frequency)
        encoding[:, 1::2] = torch.cos(position * frequency)
        return encoding

    assert exercises.check(
        "transformer.sinusoidal_encoding", float32_encoding, display_feedback=False
    ).passed


def test_pytorchs_label_smoothing_passes() -> None:
    """`F.cross_entropy(label_smoothing=ε)`, which nobody here wrote, agrees on every case."""

    def pytorch_loss(logits, targets, epsilon=0.1, ignore_index=None):
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            label_smoothing=epsilon,
            ignore_index=-100 if ignore_index is None else ignore_index,
        )

    result = exercises.check(
        "transformer.label_smoothed_cross_entropy", pytorch_loss, display_feedback=False
    )
    assert result.passed, result.report()


def test_beam_step_by_sorting_passes() -> None:
    def sorted_step(scores, log_probs, beam_size):
        vocab = log_probs.shape[-1]
        candidates = (scores[:, :, None] + log_probs).flatten(1)
        ranked, order = candidates.sort(dim=-1, descending=True)
        best = order[:, :beam_size]
        return ranked[:, :beam_size], torch.div(best, vocab, rounding_mode="floor"), best % vocab

    assert exercises.check("transformer.beam_step", sorted_step, display_feedback=False).passed


def test_encoder_sublayers_leave_the_global_generator_alone() -> None:
    """The sublayers are built on the meta device: checking an answer draws no random
    numbers, so a notebook's seeded cells give the same numbers with or without a check."""
    params = tx._encoder_params(torch.Generator().manual_seed(0), 8, 16)
    assert tuple(params) == tx._ENCODER_PARAMS == tuple(EncoderLayer(8, 2, 16).state_dict())
    state = torch.get_rng_state()
    tx.encoder_sublayers(params, 2).self_attn(torch.randn(1, 3, 8, generator=torch.Generator()))
    assert torch.equal(torch.get_rng_state(), state)


# --- The quiz: its numbers and claims, checked ------------------------------------------------


def _question(text: str) -> dict:
    (question,) = [q for q in quiz.questions("transformer") if text in q["question"]]
    return question


def test_the_quiz_has_at_least_six_questions_of_both_kinds() -> None:
    questions = quiz.questions("transformer")
    assert len(questions) >= 6
    assert {q["type"] for q in questions} == {"multiple_choice", "numeric"}


def test_parameter_count_is_the_modules() -> None:
    question = _question("How many parameters does one encoder layer have?")
    values = {a["value"]: a["correct"] for a in question["answers"] if a["type"] == "value"}
    (correct,) = [value for value, right in values.items() if right]
    d, d_ff = 512, 2048
    ours = sum(p.numel() for p in EncoderLayer(d, 8, d_ff).parameters())
    pytorch = sum(p.numel() for p in nn.TransformerEncoderLayer(d, 8, d_ff).parameters())
    attention, feed_forward, norms = 4 * d * d + 4 * d, 2 * d * d_ff + d_ff + d, 2 * 2 * d
    assert correct == ours == pytorch == attention + feed_forward + norms == 3_152_384
    # the wrong answers are the mistakes their feedback names
    assert set(values) - {correct} == {
        4 * d * d + 2 * d * d_ff,  # weight matrices only
        correct - 2 * 2 * d,  # no LayerNorms (or no attention biases, 4 d)
        8 * attention + feed_forward + norms,  # attention counted once per head
    }


def test_pytorch_masks_mean_what_the_quiz_says() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    lower = torch.ones(4, 4, dtype=torch.bool).tril()
    attention = nn.MultiheadAttention(8, 1, batch_first=True)
    _, weights = attention(x, x, x, attn_mask=lower)
    assert torch.equal(weights[0, :3] > 0, ~lower[:3])  # only the future, strictly
    assert weights[0, 3].isnan().all()  # the last query has nothing left
    causal = F.scaled_dot_product_attention(x, x, x, is_causal=True)
    torch.testing.assert_close(F.scaled_dot_product_attention(x, x, x, attn_mask=lower), causal)


def test_a_shift_is_a_rotation_of_each_pair() -> None:
    """PE(pos + k) = R(k) PE(pos), R(k) rotating pair i by k ω_i, whatever pos."""
    d_model, k = 16, 3
    encoding = sinusoidal_encoding(40, d_model, dtype=torch.float64)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    cos, sin = torch.cos(k * omega), torch.sin(k * omega)
    rotation = torch.stack([torch.stack([cos, sin]), torch.stack([-sin, cos])])  # (2, 2, pairs)
    pairs = encoding.view(40, d_model // 2, 2)  # (sin, cos) of each pair
    shifted = torch.einsum("abp,npb->npa", rotation, pairs)
    torch.testing.assert_close(shifted[:-k].reshape(-1, d_model), encoding[k:])
