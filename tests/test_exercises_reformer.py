"""Tests of lessons.exercises.reformer: each typical mistake gets the hint written for it,
broken answers become feedback, correct answers written by others (Hugging Face's
Reformer) pass, and the quiz's claims hold for lessons.reformer.

The generic tests (tests/test_exercises.py, tests/test_quiz.py) already prove that every
solution passes its check and every declared wrong answer fails it;
tests/test_exercise_solutions.py proves the solutions equal to the taught module.
"""

from __future__ import annotations

import pickle

import pytest
import torch

from lessons import exercises
from lessons.core.activations import SavedActivations
from lessons.exercises import quiz
from lessons.exercises import reformer as rx
from lessons.exercises.sandbox import Opaque
from lessons.reformer import (
    SELF_MASKED,
    AxialPositionEmbeddings,
    ChunkedFeedForward,
    FeedForwardSublayer,
    LSHSelfAttention,
    ReformerConfig,
    normalise_keys,
)

torch.set_num_threads(1)

IDS = [
    "reformer.angular_hash",
    "reformer.chunked_feed_forward",
    "reformer.combine_rounds",
    "reformer.look_one_back",
    "reformer.reversible_forward",
    "reformer.reversible_inverse",
    "reformer.sort_and_chunk",
]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LESSONS_PROGRESS", "off")


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check answers in this process: those built on transformers would spend the
    worker's time limit importing it."""
    monkeypatch.setenv("LESSONS_CHECK_SANDBOX", "off")


def check(exercise_id: str, answer) -> exercises.CheckResult:
    return exercises.check(exercise_id, answer, display_feedback=False)


def test_chapter_six_has_its_seven_exercises() -> None:
    assert sorted(k for k in exercises.registry() if k.startswith("reformer.")) == IDS


# --- Each mistake gets its hint ---------------------------------------------------------------


#: (exercise, typical mistake, the hint it must get): every declared wrong answer.
MISTAKES = [
    ("reformer.angular_hash", rx._hash_positive_only, 2),
    ("reformer.angular_hash", rx._hash_negative_first, 3),
    ("reformer.angular_hash", rx._hash_argmax_over_vectors, 4),
    ("reformer.sort_and_chunk", rx._sort_ties_reversed, 2),
    ("reformer.sort_and_chunk", rx._sort_descending, 3),
    ("reformer.sort_and_chunk", rx._sort_inverse, 4),
    ("reformer.sort_and_chunk", rx._sort_unsorted, 5),
    ("reformer.sort_and_chunk", rx._sort_chunks_transposed, 6),
    ("reformer.look_one_back", rx._look_no_wrap_zeros, 2),
    ("reformer.look_one_back", rx._look_no_wrap_self, 2),
    ("reformer.look_one_back", rx._look_next, 3),
    ("reformer.look_one_back", rx._look_back_after, 4),
    ("reformer.look_one_back", rx._look_features, 5),
    ("reformer.reversible_forward", rx._forward_g_of_x1, 2),
    ("reformer.reversible_forward", rx._forward_own_stream, 3),
    ("reformer.reversible_forward", rx._forward_swapped, 4),
    ("reformer.reversible_inverse", rx._inverse_x1_first, 2),
    ("reformer.reversible_inverse", rx._inverse_signs_flipped, 3),
    ("reformer.reversible_inverse", rx._inverse_swapped, 4),
    ("reformer.chunked_feed_forward", rx._chunk_all_at_once, 2),
    ("reformer.chunked_feed_forward", rx._chunk_batch, 3),
    ("reformer.chunked_feed_forward", rx._chunk_features, 4),
    ("reformer.chunked_feed_forward", rx._chunk_drop_last, 5),
    ("reformer.combine_rounds", rx._combine_mean, 2),
    ("reformer.combine_rounds", rx._combine_over_positions, 3),
    ("reformer.combine_rounds", rx._combine_naive, 4),
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


def test_a_wrong_dtype_of_bucket_ids_gets_the_dtype_hint() -> None:
    def as_float(vectors, rotation):
        rotated = vectors @ rotation
        return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1).float()

    result = check("reformer.angular_hash", as_float)
    assert len(result.failed_cases) == 6
    assert result.failed_cases[0].problem == "dtype float32 instead of int64"
    assert result.failed_cases[0].hint_number == 5


def test_a_float_buffer_in_the_look_back_gets_the_dtype_hint() -> None:
    """A learner who fills a new tensor made with `torch.empty` turns int64 positions into
    floats."""

    def filled_in(chunks):
        n, c, d = chunks.shape
        out = torch.empty(n, 2 * c, d)
        for j in range(n):
            out[j, :c], out[j, c:] = chunks[j - 1], chunks[j]
        return out

    result = check("reformer.look_one_back", filled_in)
    assert [c.name for c in result.failed_cases] == [
        "positions (int64): the tokens each chunk sees"
    ]
    assert result.failed_cases[0].problem == "dtype float32 instead of int64"
    assert result.failed_cases[0].hint_number == 6


def test_a_naive_exp_fails_only_on_the_large_normalisers() -> None:
    result = check("reformer.combine_rounds", rx._combine_naive)
    assert [c.name for c in result.failed_cases] == ["normalisers in the hundreds"]
    assert "NaN" in result.failed_cases[0].problem


# --- Broken answers become feedback --------------------------------------------------------


def _each_tensor(output, change):
    if isinstance(output, tuple):
        return tuple(change(t) for t in output)
    return change(output)


def _other_dtype(t: torch.Tensor) -> torch.Tensor:
    return t.double() if not t.is_floating_point() or t.dtype == torch.float32 else t.float()


@pytest.mark.parametrize("exercise_id", IDS)
def test_broken_answers_are_feedback_not_crashes(exercise_id: str) -> None:
    solution = exercises.get(exercise_id).solution

    def raises(*args):
        raise RuntimeError("not written yet")

    def returns_none(*args):
        return None

    def wrong_shape(*args):
        return _each_tensor(solution(*args), lambda t: t[None])

    def wrong_dtype(*args):
        return _each_tensor(solution(*args), _other_dtype)

    problems = {
        raises: "raised RuntimeError: not written yet",
        returns_none: "your function returned None",
        wrong_shape: "shape",
        wrong_dtype: "dtype",
    }
    for answer, problem in problems.items():
        result = check(exercise_id, answer)
        assert not result.passed
        assert len(result.failed_cases) == len(result.cases) >= 5
        for case in result.failed_cases:
            assert problem in case.problem, (answer.__name__, case.problem)
            assert case.hint and case.hint_number >= 1
        assert "✗ case 1" in result.report()


# --- The sublayers of the cases ------------------------------------------------------------


def test_a_sublayer_equals_its_stand_in_and_only_that() -> None:
    f = rx._attention(4, 2, seed=1)
    assert f == Opaque.of(f)
    assert f == rx._attention(4, 2, seed=1)
    assert f != rx._attention(4, 2, seed=2)
    assert f != Opaque.of(rx._feed_forward(4, seed=1))
    assert f != "F"
    assert repr(f) == "F: SelfAttentionSublayer(d_model=4)"


def test_the_feed_forward_of_the_cases_refuses_too_many_positions() -> None:
    feed_forward = rx._feed_forward(4, seed=3, name="feed_forward", max_positions=2)
    x = torch.randn(3, 5, 4)
    torch.testing.assert_close(feed_forward(x[:, :2]), feed_forward.module(x[:, :2]))
    with pytest.raises(rx.TooManyPositions) as error:
        feed_forward(x)
    assert str(error.value) == (
        "feed_forward got 5 positions at once, input shape (3, 5, 4); "
        "it takes at most chunk_size = 2 positions (dim 1) per call"
    )
    with pytest.raises(rx.WrongFeatures, match="vectors of 3 features"):
        feed_forward(x[:, :2, :3])


def test_the_case_errors_survive_pickling() -> None:
    """The worker sends the learner's exception back pickled; the hints read its args."""
    for error in (rx.TooManyPositions((3, 5, 4), 2), rx.WrongFeatures((3, 2, 3), 4)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and copy.args == error.args
        assert str(copy) == str(error)


def test_inverse_of_forward_gives_the_inputs_back() -> None:
    for case in exercises.get("reformer.reversible_forward").cases():
        x1, x2, f, g = case.args
        with torch.no_grad():
            back = rx.reversible_inverse(*rx.reversible_forward(x1, x2, f, g), f, g)
        torch.testing.assert_close(back, (x1, x2), rtol=0, atol=1e-5, msg=case.name)


# --- Correct answers written by others pass -----------------------------------------------


def test_hugging_faces_stable_argsort_passes(in_process: None) -> None:
    reformer = pytest.importorskip("transformers.models.reformer.modeling_reformer")

    def hugging_face(buckets, chunk_length):
        order = reformer._stable_argsort(buckets[None, None], dim=-1)[0, 0]
        return order, order.view(-1, chunk_length)

    assert check("reformer.sort_and_chunk", hugging_face).passed


def test_hugging_faces_look_adjacent_passes(in_process: None) -> None:
    reformer = pytest.importorskip("transformers.models.reformer.modeling_reformer")

    def hugging_face(chunks):
        look = reformer.EfficientAttentionMixin._look_adjacent
        return look(None, chunks[None, None], num_chunks_before=1, num_chunks_after=0)[0, 0]

    assert check("reformer.look_one_back", hugging_face).passed


def test_other_correct_answers_pass() -> None:
    def look_by_index(chunks):
        return torch.cat([chunks[torch.arange(len(chunks)) - 1], chunks], dim=1)

    def hash_by_where(vectors, rotation):
        rotated = vectors @ rotation
        best = rotated.abs().argmax(dim=-1)
        negative = rotated.gather(1, best[:, None])[:, 0] < 0
        return torch.where(negative, best + rotation.shape[1], best)

    def rounds_by_softmax(outputs, logsumexps):
        weights = torch.softmax(logsumexps, dim=2)
        return torch.einsum("bhrsd,bhrs->bhsd", outputs, weights)

    def chunked_by_module(x, feed_forward, chunk_size):
        return ChunkedFeedForward(feed_forward.module, chunk_size)(x)

    assert check("reformer.look_one_back", look_by_index).passed
    assert check("reformer.angular_hash", hash_by_where).passed
    assert check("reformer.combine_rounds", rounds_by_softmax).passed
    assert check("reformer.chunked_feed_forward", chunked_by_module).passed


# --- The quiz: its claims, checked on lessons.reformer -------------------------------------


def _question(text: str) -> dict:
    (question,) = [q for q in quiz.questions("reformer") if text in q["question"]]
    return question


def _correct(question: dict) -> list[dict]:
    return [a for a in question["answers"] if a.get("correct") is True]


def test_the_quiz_has_ten_valid_questions_each_with_one_right_answer() -> None:
    questions = quiz.questions("reformer")
    assert len(questions) == 10
    assert {q["type"] for q in questions} == {"multiple_choice", "numeric"}
    for question in questions:
        assert quiz.validate(question) == []
        assert len(_correct(question)) == 1
        assert all(a["feedback"].strip() for a in question["answers"])


def test_a_tokens_own_unit_key_gives_its_largest_score() -> None:
    """The self-mask question: q . (q / ||q||) = ||q|| beats every other unit key."""
    queries = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scores = queries @ normalise_keys(queries).T
    assert torch.equal(scores.argmax(dim=1), torch.arange(50))
    torch.testing.assert_close(scores.diagonal(), queries.norm(dim=1), rtol=1e-5, atol=0)
    assert SELF_MASKED == -1e5
    feedback = _correct(_question("forbid a token to attend to itself"))[0]["feedback"]
    assert "SELF_MASKED = -1e5" in feedback


def test_the_first_causal_token_attends_to_itself() -> None:
    """'...so a token still attends to itself when nothing else is allowed (the first token
    under a causal mask)'."""
    torch.manual_seed(0)
    layer = LSHSelfAttention(6, 1, 4, num_buckets=2, chunk_length=8, causal=True).eval()
    x = torch.randn(1, 5, 6)
    out = layer(x)
    torch.testing.assert_close(out[:, 0], layer.value(x)[:, 0])
    assert not torch.allclose(out[:, 1], layer.value(x)[:, 1])


def test_the_hash_ignores_the_length_of_a_vector() -> None:
    """A distractor of the normalisation question: scaling x leaves its bucket."""
    g = torch.Generator().manual_seed(1)
    vectors, rotation = torch.randn(40, 6, generator=g), torch.randn(6, 4, generator=g)
    lengths = torch.rand(40, 1, generator=g) * 10 + 0.1
    assert torch.equal(
        rx.angular_hash(vectors * lengths, rotation), rx.angular_hash(vectors, rotation)
    )


def test_chunking_saves_nothing_under_autograd() -> None:
    """The chunked feed-forward question: with a graph, the chunks' intermediates are all
    kept, together as large as the unchunked one."""
    torch.manual_seed(0)
    module = FeedForwardSublayer(8, 64)
    x = torch.randn(2, 32, 8, requires_grad=True)
    saved = {}
    for chunk_size in (32, 4):
        with SavedActivations(exclude=module.parameters()) as counter:
            ChunkedFeedForward(module, chunk_size)(x)
        saved[chunk_size] = counter.bytes
    intermediate = 2 * 32 * 64 * 4  # one (batch, seq, d_ff) float32 tensor
    assert saved[32] > intermediate
    assert saved[4] == saved[32]
    with torch.no_grad(), SavedActivations(exclude=module.parameters()) as counter:
        ChunkedFeedForward(module, 4)(x)
    assert counter.bytes == 0  # without a graph, autograd keeps nothing


def test_axial_parameter_count_is_the_default_configs() -> None:
    question = _question("How many parameters do its position embeddings hold?")
    values = {a["value"]: a["correct"] for a in question["answers"] if a["type"] == "value"}
    (correct,) = [value for value, right in values.items() if right]
    config = ReformerConfig()
    assert config.hidden_size == 128
    assert config.axial_pos_shape == (64, 64) and config.axial_pos_embds_dim == (64, 64)
    embeddings = AxialPositionEmbeddings(config.axial_pos_shape, config.axial_pos_embds_dim)
    count = sum(p.numel() for p in embeddings.parameters())
    assert correct == count == 8192
    assert embeddings.full_table_size == 524_288 == 64 * count
    # the wrong answers are the mistakes their feedback names
    assert set(values) - {correct} == {
        embeddings.full_table_size,  # a full table
        2 * 64 * config.hidden_size,  # each table of the full width
        64 * 64,  # one table only
    }


def test_the_quiz_renders_as_html_and_javascript(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the book's site: jupyterquiz's HTML, balanced, and its script with every
    question of the chapter."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    monkeypatch.setattr(quiz, "in_kernel", lambda: True)
    InteractiveShell.instance()
    try:
        with capture_output() as captured:
            quiz.show("reformer")
    finally:
        InteractiveShell.clear_instance()
    html, script = (output.data for output in captured.outputs)
    assert html["text/html"].count("<div") == html["text/html"].count("</div")
    javascript = script["application/javascript"]
    for question in quiz.questions("reformer"):
        assert question["question"][:40] in javascript
