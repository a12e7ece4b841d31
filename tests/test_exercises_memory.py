"""Tests of lessons.exercises.memory: each typical mistake gets the hint written for it,
broken answers become feedback, correct answers written otherwise pass, the checkpointing
cases' block notices what it claims to notice, and the quiz's claims hold for
lessons.memory and PyTorch.

The generic tests (tests/test_exercises.py, tests/test_quiz.py) already prove that every
solution passes its check and every declared wrong answer fails it;
tests/test_exercise_solutions.py proves the solutions equal to the taught module.
"""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from lessons import exercises
from lessons.core.activations import SavedActivations
from lessons.exercises import memory as mx
from lessons.exercises import quiz
from lessons.exercises.sandbox import Opaque
from lessons.memory import (
    CheckpointedLayer,
    accumulate_gradients,
    autocast_dtypes,
    bytes_per_parameter,
    grad_scaler_trace,
    training_memory,
    transformer_layer_activations,
)
from lessons.transformer import TransformerLM

torch.set_num_threads(1)

IDS = [
    "memory.accumulated_loss",
    "memory.checkpointed_block_forward",
    "memory.korthikanti_bytes",
    "memory.model_state_bytes",
    "memory.token_weighted_loss",
    "memory.zero_bytes_per_device",
]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONS_PROGRESS", "off")


def check(exercise_id: str, answer) -> exercises.CheckResult:
    return exercises.check(exercise_id, answer, display_feedback=False)


def test_chapter_seven_has_its_six_exercises() -> None:
    assert sorted(k for k in exercises.registry() if k.startswith("memory.")) == IDS


# --- Each mistake gets its hint ---------------------------------------------------------------


#: (exercise, typical mistake, the hint it must get): every declared wrong answer.
MISTAKES = [
    ("memory.model_state_bytes", mx._states_without_master, 2),
    ("memory.model_state_bytes", mx._states_in_half, 3),
    ("memory.model_state_bytes", mx._everything_fp32, 4),
    ("memory.zero_bytes_per_device", mx._zero_grads_at_stage_one, 2),
    ("memory.zero_bytes_per_device", mx._zero_params_at_stage_two, 3),
    ("memory.zero_bytes_per_device", mx._zero_everything, 4),
    ("memory.korthikanti_bytes", mx._korthikanti_no_heads, 2),
    ("memory.korthikanti_bytes", mx._korthikanti_linear_in_s, 3),
    ("memory.korthikanti_bytes", mx._korthikanti_no_attention_matrix, 4),
    ("memory.accumulated_loss", mx._accumulated_mean_of_means, 2),
    ("memory.accumulated_loss", mx._accumulated_sum_of_means, 3),
    ("memory.accumulated_loss", mx._accumulated_per_micro_batch, 4),
    ("memory.token_weighted_loss", mx._token_counting_padding, 2),
    ("memory.token_weighted_loss", mx._token_mean_per_sequence, 3),
    ("memory.token_weighted_loss", mx._token_mean_per_micro_batch, 4),
    ("memory.checkpointed_block_forward", mx._block_plain, 2),
    ("memory.checkpointed_block_forward", mx._block_reentrant, 3),
    ("memory.checkpointed_block_forward", mx._block_no_grad, 3),
]


@pytest.mark.parametrize(("exercise_id", "wrong", "hint_number"), MISTAKES)
def test_each_mistake_gets_its_hint(exercise_id: str, wrong, hint_number: int) -> None:
    result = check(exercise_id, wrong)
    assert not result.passed
    assert result.failed_cases[0].hint_number == hint_number, result.report()


def test_every_declared_mistake_has_its_hint_test() -> None:
    """MISTAKES covers every wrong answer the exercises declare, each once."""
    declared = [(i, w.__name__) for i in IDS for w in exercises.get(i).wrong_answers]
    assert sorted(declared) == sorted((i, w.__name__) for i, w, _ in MISTAKES)


def test_the_master_copy_and_half_precision_states_are_told_apart() -> None:
    """On mixed-precision Adam both mistakes give 8 bytes of states; the cases start with
    momentum, where they differ (4 and 6), so each gets its own hint first."""
    assert mx._states_without_master(1, "mixed", "adam") == (2.0, 2.0, 8.0)
    assert mx._states_in_half(1, "mixed", "adam") == (2.0, 2.0, 8.0)
    assert mx._states_without_master(1, "mixed", "momentum")[2] == 4.0
    assert mx._states_in_half(1, "mixed", "momentum")[2] == 6.0
    first_mixed = next(c for c in mx._state_cases() if c.args[1] == "mixed")
    assert first_mixed.args[2] == "momentum"


def test_forgetting_to_divide_by_k_gives_k_times_when_the_micro_batches_are_alike() -> None:
    sums, counts = torch.tensor([10.0, 12.0, 14.0, 8.0]), torch.tensor([5, 5, 5, 5])
    wrong = mx._accumulated_sum_of_means(sums, counts)
    torch.testing.assert_close(wrong, 4 * mx.accumulated_loss(sums, counts))


def test_the_mean_of_means_is_right_only_with_equal_token_counts() -> None:
    result = check("memory.accumulated_loss", mx._accumulated_mean_of_means)
    passed = {c.name for c in result.cases if c.passed}
    assert passed == {
        "2 micro-batches, as many tokens each",
        "one micro-batch: no accumulation",
    }


# --- Broken answers become feedback --------------------------------------------------------


@pytest.mark.parametrize("exercise_id", IDS)
def test_broken_answers_are_feedback_not_crashes(exercise_id: str) -> None:
    def raises(*args):
        raise RuntimeError("not written yet")

    def returns_none(*args):
        return None

    def returns_text(*args):
        return "16 bytes"

    problems = {
        raises: "raised RuntimeError: not written yet",
        returns_none: "your function returned None",
        returns_text: "expected",
    }
    for answer, problem in problems.items():
        result = check(exercise_id, answer)
        assert not result.passed
        assert len(result.failed_cases) == len(result.cases) >= 5
        for case in result.failed_cases:
            assert problem in case.problem, (answer.__name__, case.problem)
            assert case.hint and case.hint_number >= 1
        assert "✗ case 1" in result.report()


@pytest.mark.parametrize(
    "exercise_id",
    ["memory.accumulated_loss", "memory.token_weighted_loss", "memory.checkpointed_block_forward"],
)
def test_tensors_of_the_wrong_shape_or_dtype_are_feedback(exercise_id: str) -> None:
    solution = exercises.get(exercise_id).solution

    def wrong_shape(*args):
        return solution(*args)[None]

    def wrong_dtype(*args):
        return solution(*args).double()

    for answer, problem in ((wrong_shape, "shape"), (wrong_dtype, "dtype")):
        result = check(exercise_id, answer)
        assert len(result.failed_cases) == len(result.cases)
        assert all(problem in case.problem for case in result.failed_cases)


# --- The block of the checkpointing cases -----------------------------------------------------


def _parameter_gradients(module: nn.Module, run, x: torch.Tensor) -> list[torch.Tensor]:
    module.zero_grad(set_to_none=True)
    run(x).pow(2).sum().backward()
    return [p.grad.clone() for p in module.parameters()]


def test_the_solution_saves_less_and_gives_the_same_gradients() -> None:
    """What the exercise teaches, measured: the block's parameters get the same gradients
    with and without checkpointing, and the forward pass saves fewer bytes."""
    for case in exercises.get("memory.checkpointed_block_forward").cases():
        block, x = case.args
        excluded = list(block.module.parameters())
        with SavedActivations(exclude=excluded) as plain:
            block.module(x)
        with SavedActivations(exclude=excluded) as checkpointed:
            mx.checkpointed_block_forward(block, x)
        assert checkpointed.bytes < plain.bytes / 2, case.name
        expected = _parameter_gradients(block.module, block.module, x)
        got = _parameter_gradients(
            block.module, lambda x, block=block: mx.checkpointed_block_forward(block, x), x
        )
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=case.name)


def test_the_block_reports_the_bytes_a_plain_forward_keeps() -> None:
    block = mx.Block(8, 2, seed=1)
    x = torch.randn(2, 5, 8, requires_grad=True)
    with SavedActivations(exclude=block.module.parameters()) as saved:
        block.module(x)
    assert block.kept_bytes((2, 5, 8)) == saved.bytes > 0
    with pytest.raises(mx.KeptActivations) as error:
        block(x).sum().backward()
    assert error.value.args == (saved.bytes,)
    assert f"{saved.bytes:,} bytes" in str(error.value)


def test_the_block_accepts_both_checkpointing_implementations_when_x_requires_grad() -> None:
    """The reentrant implementation is right when an input requires grad: the block must
    not object to it then, nor to a plain forward run afterwards be missed."""
    block = mx.Block(8, 2, seed=2)
    x = torch.randn(2, 5, 8, requires_grad=True)
    for reentrant in (False, True):
        checkpoint(block, x, use_reentrant=reentrant).sum().backward()
    with pytest.raises(mx.KeptActivations):
        block(x).sum().backward()


def test_the_block_refuses_to_run_without_a_graph_on_data() -> None:
    block = mx.Block(4, 1, seed=3)
    with torch.no_grad(), pytest.raises(mx.NoGraph, match="parameters would get"):
        block(torch.randn(1, 3, 4))
    with torch.no_grad():  # with an input that requires grad, the caller knows best
        block(torch.randn(1, 3, 4, requires_grad=True))


def test_the_reentrant_trap_is_real() -> None:
    """What the block's NoGraph stands for, on the plain layer: reentrant checkpointing of
    an input that needs no gradient leaves the parameters without one."""
    module = mx.Block(8, 2, seed=4).module
    x = torch.randn(2, 5, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "None of the inputs have requires_grad=True"
        out = checkpoint(module, x, use_reentrant=True)
    assert not out.requires_grad
    out = checkpoint(module, x, use_reentrant=False)
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters())


def test_a_block_equals_its_stand_in_and_survives_pickling() -> None:
    block = mx.Block(8, 2, seed=5)
    block(torch.randn(1, 2, 8))
    assert block == Opaque.of(block)
    assert block == mx.Block(8, 2, seed=5)
    assert block != mx.Block(8, 2, seed=6)
    assert repr(block) == "EncoderLayer(d_model=8, nhead=2)"
    copy_ = pickle.loads(pickle.dumps(block))
    assert copy_ == block and copy_.calls == 0
    for error in (mx.KeptActivations(1234), mx.NoGraph()):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)


# --- Correct answers written otherwise pass ----------------------------------------------------


def test_other_correct_answers_pass() -> None:
    def states_from_memory(n_params, precision, optimizer):
        return tuple(n_params * b for b in bytes_per_parameter(precision, optimizer))

    def zero_from_memory(n_params, stage, n_devices):
        parts = training_memory(
            n_params, precision="mixed", optimizer="adam", zero_stage=stage, n_devices=n_devices
        )
        return parts.parameters, parts.gradients, parts.optimizer_states

    def korthikanti_multiplied_out(s, b, h, a):
        return 34 * s * b * h + 5 * a * s * s * b

    def loss_by_dot(loss_sums, token_counts):
        weights = token_counts / token_counts.sum()
        return torch.dot(loss_sums / token_counts, weights.float())

    def loss_by_gather(logits, targets):
        real = targets != -100
        log_probs = F.log_softmax(logits, dim=-1)
        picked = log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
        return -(picked * real).sum() / real.sum()

    def block_by_checkpointed_layer(block, x):
        return CheckpointedLayer(block)(x)

    assert check("memory.model_state_bytes", states_from_memory).passed
    assert check("memory.zero_bytes_per_device", zero_from_memory).passed
    assert check("memory.korthikanti_bytes", korthikanti_multiplied_out).passed
    assert check("memory.korthikanti_bytes", transformer_layer_activations).passed
    assert check("memory.accumulated_loss", loss_by_dot).passed
    assert check("memory.token_weighted_loss", loss_by_gather).passed


def test_the_taught_checkpointed_layer_passes_on_the_block() -> None:
    """lessons.memory.CheckpointedLayer wraps modules; the same function on the block."""
    block = mx.Block(8, 2, seed=7)
    x = torch.randn(2, 5, 8)
    with SavedActivations(exclude=block.module.parameters()) as saved:
        out = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    out.sum().backward()  # recomputed: no KeptActivations
    torch.testing.assert_close(out, CheckpointedLayer(block.module)(x))
    assert saved.bytes < block.kept_bytes((2, 5, 8))


# --- The quiz: its claims, checked on lessons.memory and PyTorch ------------------------------


def _question(text: str) -> dict:
    (question,) = [q for q in quiz.questions("memory") if text in q["question"]]
    return question


def _correct(question: dict) -> list[dict]:
    return [a for a in question["answers"] if a.get("correct") is True]


def test_the_quiz_has_ten_valid_questions_each_with_one_right_answer() -> None:
    questions = quiz.questions("memory")
    assert len(questions) == 10
    assert {q["type"] for q in questions} == {"multiple_choice", "numeric"}
    for question in questions:
        assert quiz.validate(question) == []
        assert len(_correct(question)) == 1
        assert all(a["feedback"].strip() for a in question["answers"])


def test_sixteen_bytes_per_parameter() -> None:
    assert bytes_per_parameter("mixed", "adam") == (2, 2, 12)
    assert bytes_per_parameter("fp32", "adam") == (4, 4, 8)  # the distractor: 16 too
    feedback = _correct(_question("16 bytes per parameter"))[0]["feedback"]
    assert "bytes_per_parameter('mixed', 'adam') is (2, 2, 12)" in feedback


def test_the_zero_numbers_are_training_memorys() -> None:
    question = _question("under ZeRO stage 1")
    values = {a["value"]: a["correct"] for a in question["answers"] if a["type"] == "value"}
    totals = [
        training_memory(7.5e9, precision="mixed", zero_stage=stage, n_devices=64).total / 1e9
        for stage in range(4)
    ]
    rounded = [float(f"{total:.3g}") for total in totals]
    assert rounded == [120, 31.4, 16.6, 1.88]
    assert values == dict.fromkeys(rounded, False) | {31.4: True}


def test_stage_two_keeps_the_parameters_whole() -> None:
    whole = training_memory(1e9, precision="mixed", zero_stage=0, n_devices=8)
    stage2 = training_memory(1e9, precision="mixed", zero_stage=2, n_devices=8)
    assert stage2.parameters == whole.parameters
    assert stage2.gradients == whole.gradients / 8
    assert stage2.optimizer_states == whole.optimizer_states / 8


def _padded_micro_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    batches = []
    for real in (12, 3, 7):
        inputs = torch.randint(16, (2, 6), generator=g)
        targets = torch.randint(16, (2, 6), generator=g)
        targets.view(-1)[real:] = -100
        batches.append((inputs, targets))
    return batches


def _gradients(model: nn.Module, micro_batches, normalise: str) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    accumulate_gradients(model, micro_batches, normalise=normalise)
    return [p.grad.clone() for p in model.parameters()]


def test_the_accumulation_question_on_accumulate_gradients() -> None:
    """Dividing by all real tokens gives the big batch's gradient; the mean of means does
    not with padding; forgetting k gives exactly k times with alike micro-batches."""
    torch.manual_seed(0)
    model = TransformerLM(16, d_model=16, num_heads=2, num_layers=1, ff_dim=32, max_len=8)
    model.eval()
    micro = _padded_micro_batches()
    big = (torch.cat([b[0] for b in micro]), torch.cat([b[1] for b in micro]))
    expected = _gradients(model, [big], "tokens")
    torch.testing.assert_close(_gradients(model, micro, "tokens"), expected, rtol=0, atol=1e-6)
    means = _gradients(model, micro, "micro-batches")
    assert max((g - e).abs().max() for g, e in zip(means, expected, strict=True)) > 1e-3
    alike = [(big[0][:2], big[1][:2].clamp(min=0)), (big[0][2:4], big[1][2:4].clamp(min=0))]
    once = _gradients(model, alike, "tokens")
    twice = _gradients(model, alike, "none")
    torch.testing.assert_close(twice, [2 * g for g in once], rtol=1e-5, atol=1e-7)


def test_checkpointing_costs_one_more_forward_and_saves_memory() -> None:
    layer = mx.Block(16, 2, seed=8).module
    calls = []
    layer.register_forward_pre_hook(lambda *_: calls.append(1))  # the recomputation stops
    # as soon as it has every saved tensor back, before a forward hook would run
    x = torch.randn(2, 8, 16)
    saved, runs = {}, {}
    for name, wrapped in (("plain", layer), ("checkpointed", CheckpointedLayer(layer))):
        calls.clear()
        with SavedActivations(exclude=layer.parameters()) as counter:
            out = wrapped(x)
        out.sum().backward()
        saved[name], runs[name] = counter.bytes, len(calls)
    assert runs == {"plain": 1, "checkpointed": 2}
    assert saved["checkpointed"] < saved["plain"] / 2


def test_the_autocast_question_is_what_autocast_dtypes_measures() -> None:
    table = autocast_dtypes("cpu", torch.bfloat16)
    assert table["linear"] == ("bfloat16", "bfloat16")
    assert table["softmax"][1] == "bfloat16"  # follows its bfloat16 input on a CPU
    assert table["cross_entropy"] == ("float32", "float32")
    answer = _correct(_question("torch.autocast('cpu'"))[0]["answer"]
    assert "Softmax: bfloat16" in answer and "Cross-entropy: float32" in answer


def test_the_scaler_skips_and_halves_then_doubles() -> None:
    scaler = torch.amp.GradScaler("cpu")
    assert scaler.get_backoff_factor() == 0.5 and scaler.get_growth_factor() == 2.0
    trace = grad_scaler_trace(12, growth_interval=3)
    skipped = [step for step in trace if step.skipped]
    assert skipped and all(step.next_scale == step.scale * 0.5 for step in skipped)
    run = 0
    for step in trace:
        run = 0 if step.skipped else run + 1
        grew = step.next_scale == 2 * step.scale
        assert grew == (run > 0 and run % 3 == 0), step


def test_ddp_has_no_sync_and_fsdp_splits_all_three_states() -> None:
    """The mechanics are tested in tests/test_distributed.py; here the names the quiz uses."""
    from torch.nn.parallel import DistributedDataParallel

    assert callable(DistributedDataParallel.no_sync)
    stage3 = training_memory(1e9, precision="mixed", zero_stage=3, n_devices=4)
    whole = training_memory(1e9, precision="mixed", zero_stage=0, n_devices=4)
    assert stage3.total == whole.total / 4


def test_the_quiz_renders_as_html_and_javascript(monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    monkeypatch.setattr(quiz, "in_kernel", lambda: True)
    InteractiveShell.instance()
    try:
        with capture_output() as captured:
            quiz.show("memory")
    finally:
        InteractiveShell.clear_instance()
    html, script = (output.data for output in captured.outputs)
    assert html["text/html"].count("<div") == html["text/html"].count("</div")
    javascript = script["application/javascript"]
    for question in quiz.questions("memory"):
        assert question["question"][:40] in javascript
