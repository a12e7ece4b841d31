"""Tests of lessons.exercises.quiz: every question of the book is well formed, and shows."""

from __future__ import annotations

import copy

import pytest

from lessons.exercises import quiz


def multiple_choice(*correct: bool) -> dict:
    return {
        "question": "Which?",
        "type": "multiple_choice",
        "answers": [
            {"answer": f"option {i}", "correct": c, "feedback": f"because {i}"}
            for i, c in enumerate(correct)
        ],
    }


NUMERIC = {
    "question": "How much?",
    "type": "numeric",
    "precision": 3,
    "answers": [
        {"type": "value", "value": 0.881, "correct": True, "feedback": "Right."},
        {"type": "range", "range": [0, 0.5], "correct": False, "feedback": "Too small."},
        {"type": "default", "feedback": "Compute it."},
    ],
}


@pytest.mark.parametrize("chapter", quiz.chapters())
def test_every_question_of_the_book_is_valid(chapter: str) -> None:
    questions = quiz.questions(chapter)
    assert questions
    for number, question in enumerate(questions, 1):
        assert quiz.validate(question) == [], f"{chapter} question {number}"


def test_practice_quiz_has_both_kinds_of_question() -> None:
    kinds = [q["type"] for q in quiz.questions("basics")]
    assert "multiple_choice" in kinds and "numeric" in kinds


def test_valid_questions_pass() -> None:
    assert quiz.validate(multiple_choice(False, True, False)) == []
    assert quiz.validate({**multiple_choice(True, True, False), "type": "many_choice"}) == []
    assert quiz.validate(NUMERIC) == []


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        (multiple_choice(True, True), "multiple_choice needs exactly one correct answer, has 2"),
        (multiple_choice(False, False), "multiple_choice needs exactly one correct answer, has 0"),
        (multiple_choice(True), "fewer than two answers to choose from"),
        ({**multiple_choice(True, False), "type": "many_choice"}, "many_choice needs at least"),
        ({**multiple_choice(True, False), "question": " "}, "no question text"),
        ({**multiple_choice(True, False), "type": "essay"}, "unknown type 'essay'"),
        ({"question": "Q?", "type": "numeric", "answers": []}, "no answers"),
        ({**NUMERIC, "precision": None}, "a correct value needs the question's precision"),
        ({**NUMERIC, "answers": NUMERIC["answers"][1:]}, "no correct answer"),
        ({**NUMERIC, "answers": NUMERIC["answers"][:2]}, "no default feedback"),
    ],
)
def test_invalid_questions_are_caught(question: dict, problem: str) -> None:
    assert any(p.startswith(problem) for p in quiz.validate(question)), quiz.validate(question)


def test_every_answer_needs_feedback() -> None:
    question = multiple_choice(True, False)
    del question["answers"][1]["feedback"]
    assert quiz.validate(question) == ["answer 1 has no feedback (explanation)"]
    numeric = copy.deepcopy(NUMERIC)
    numeric["answers"][1]["range"] = [1, 0]
    numeric["answers"][2]["feedback"] = ""
    assert quiz.validate(numeric) == [
        "answer 1 needs a range [low, high] with low < high",
        "answer 2 has no feedback (explanation)",
    ]


def test_register_rejects_invalid_questions() -> None:
    with pytest.raises(ValueError, match="toy question 1: multiple_choice needs exactly one"):
        quiz.register("toy", [multiple_choice(True, True)])
    assert "toy" not in quiz.chapters()


def test_questions_are_a_copy() -> None:
    quiz.questions("basics")[0]["question"] = "changed"
    assert quiz.questions("basics")[0]["question"] != "changed"


def test_unknown_chapter_lists_close_matches() -> None:
    with pytest.raises(KeyError, match="No quiz for chapter 'basic'. Did you mean 'basics'?"):
        quiz.questions("basic")


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch):
    """An IPython shell that counts as a kernel, so that `quiz.show` displays the quiz."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(quiz, "in_kernel", lambda: True)
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_show_renders_with_jupyterquiz(monkeypatch: pytest.MonkeyPatch, shell) -> None:
    calls = []
    monkeypatch.setattr("jupyterquiz.display_quiz", lambda ref, **kw: calls.append((ref, kw)))
    quiz.show("basics")
    quiz.show("basics", max_width=800)
    assert calls[0] == (quiz.questions("basics"), {"shuffle_answers": False})
    assert calls[1][1] == {"shuffle_answers": False, "max_width": 800}


def test_show_emits_balanced_html_and_robust_javascript(shell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        quiz.show("basics")
    html, script = (output.data for output in captured.outputs)
    assert html["text/html"].count("<div") == html["text/html"].count("</div>")
    javascript = script["application/javascript"]
    assert "Adding the same constant c to every score" in javascript
    assert "var version = MathJax.version || '';" in javascript
    assert "var version = MathJax.version;" not in javascript


def test_show_prints_the_questions_outside_jupyter(capsys: pytest.CaptureFixture[str]) -> None:
    quiz.show("basics")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "1. Adding the same constant c to every score, what happens to softmax?"
    assert printed[1] == "   - Nothing: softmax(x + c) = softmax(x)"
    assert "   (a number)" in printed
    assert not any("Right" in line for line in printed)
