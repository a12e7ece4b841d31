"""Quizzes: multiple-choice and numeric questions with an explanation for every answer.

Questions are data in jupyterquiz's JSON format, declared per chapter beside the
chapter's code with `register`. `show` renders them with jupyterquiz, as HTML and
JavaScript: they work on the static site, in Jupyter and on Colab, without a kernel.

A multiple-choice question::

    {"question": "...", "type": "multiple_choice",
     "answers": [{"answer": "...", "correct": True, "feedback": "Yes: ..."},
                 {"answer": "...", "correct": False, "feedback": "No: ..."}]}

A numeric question (answers compared after rounding to ``precision`` significant
digits; ranges are half-open ``[low, high)``)::

    {"question": "...", "type": "numeric", "precision": 3,
     "answers": [{"type": "value", "value": 0.881, "correct": True, "feedback": "..."},
                 {"type": "range", "range": [0.0, 0.5], "correct": False, "feedback": "..."},
                 {"type": "default", "feedback": "..."}]}
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from lessons.core.source import in_kernel
from lessons.exercises.framework import load_chapters

__all__ = ["chapters", "questions", "register", "show", "text", "validate"]

Question = dict[str, Any]

_QUESTIONS: dict[str, list[Question]] = {}


def validate(question: Question) -> list[str]:
    """The problems with one question; an empty list when it is well formed.

    Every question needs text and answers; every answer an explanation (``feedback``).
    A ``multiple_choice`` question has exactly one correct answer, a ``many_choice``
    question at least two. A ``numeric`` question needs a correct answer given as a
    range or as a value with the question's ``precision``, and default feedback.
    """
    problems: list[str] = []
    kind = question.get("type")
    if not str(question.get("question", "")).strip():
        problems.append("no question text")
    answers = question.get("answers")
    if not isinstance(answers, list) or not answers:
        return [*problems, "no answers"]
    if kind in ("multiple_choice", "many_choice"):
        if len(answers) < 2:
            problems.append("fewer than two answers to choose from")
        for index, answer in enumerate(answers):
            if not str(answer.get("answer", answer.get("code", ""))).strip():
                problems.append(f"answer {index} has no text")
            if not isinstance(answer.get("correct"), bool):
                problems.append(f"answer {index} does not say whether it is correct")
            if not str(answer.get("feedback", "")).strip():
                problems.append(f"answer {index} has no feedback (explanation)")
        correct = sum(a.get("correct") is True for a in answers)
        if kind == "multiple_choice" and correct != 1:
            problems.append(f"multiple_choice needs exactly one correct answer, has {correct}")
        if kind == "many_choice" and correct < 2:
            problems.append(f"many_choice needs at least two correct answers, has {correct}")
    elif kind == "numeric":
        problems += _validate_numeric(question, answers)
    else:
        problems.append(f"unknown type {kind!r} (multiple_choice, many_choice or numeric)")
    return problems


def _validate_numeric(question: Question, answers: list[dict[str, Any]]) -> list[str]:
    problems = []
    for index, answer in enumerate(answers):
        kind = answer.get("type")
        if kind not in ("value", "range", "default"):
            problems.append(f"answer {index} has unknown type {kind!r}")
        if not str(answer.get("feedback", "")).strip():
            problems.append(f"answer {index} has no feedback (explanation)")
        if kind == "value" and not isinstance(answer.get("value"), int | float):
            problems.append(f"answer {index} has no numeric value")
        if kind == "range":
            bounds = answer.get("range")
            if not (isinstance(bounds, list) and len(bounds) == 2 and bounds[0] < bounds[1]):
                problems.append(f"answer {index} needs a range [low, high] with low < high")
        if kind in ("value", "range") and not isinstance(answer.get("correct"), bool):
            problems.append(f"answer {index} does not say whether it is correct")
    correct = [a for a in answers if a.get("correct") is True]
    if not correct:
        problems.append("no correct answer")
    if any(a.get("type") == "value" for a in correct) and not question.get("precision"):
        problems.append("a correct value needs the question's precision (significant digits)")
    if not any(a.get("type") == "default" for a in answers):
        problems.append("no default feedback for answers that match nothing")
    return problems


def register(chapter: str, chapter_questions: list[Question]) -> None:
    """Declare the questions of a chapter; each must pass `validate`."""
    for number, question in enumerate(chapter_questions, 1):
        problems = validate(question)
        if problems:
            raise ValueError(f"{chapter} question {number}: {'; '.join(problems)}")
    _QUESTIONS[chapter] = copy.deepcopy(chapter_questions)


def chapters() -> list[str]:
    """The chapters that have questions."""
    load_chapters()
    return sorted(_QUESTIONS)


def questions(chapter: str) -> list[Question]:
    """A copy of a chapter's questions; an unknown chapter raises, naming close matches."""
    known = chapters()
    if chapter not in known:
        close = difflib.get_close_matches(str(chapter), known, n=3, cutoff=0.5)
        suggestion = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"No quiz for chapter {chapter!r}.{suggestion} Known: {', '.join(known)}.")
    return copy.deepcopy(_QUESTIONS[chapter])


def show(chapter: str, **options: Any) -> None:
    """Display the chapter's quiz with jupyterquiz's `display_quiz` (options go to it).

    Two repairs to what jupyterquiz emits, so the quiz behaves on the book's pages:
    its container ``<div>`` is closed (left open, it swallows the rest of the page's
    layout), and its scripts tolerate a page where MathJax is configured but not (yet)
    loaded, where they would otherwise throw on ``MathJax.version[0]``.
    """
    from IPython.display import display
    from IPython.utils.capture import capture_output
    from jupyterquiz import display_quiz

    if not in_kernel():
        print(text(chapter))
        return
    with capture_output(stdout=False, stderr=False) as captured:
        display_quiz(questions(chapter), **{"shuffle_answers": False, **options})
    for output in captured.outputs:
        display(_repair(dict(output.data)), raw=True, metadata=output.metadata)


def text(chapter: str) -> str:
    """The questions and their choices as plain text, without the answers."""
    lines = []
    for number, question in enumerate(questions(chapter), 1):
        lines.append(f"{number}. {question['question']}")
        if question["type"] == "numeric":
            lines.append("   (a number)")
        lines += [
            f"   - {answer['answer']}" for answer in question["answers"] if "answer" in answer
        ]
    lines.append(
        "The quiz itself, with explanations, runs in Jupyter, Colab or on the book's site."
    )
    return "\n".join(lines)


def _repair(data: dict[str, Any]) -> dict[str, Any]:
    """Close jupyterquiz's container div; guard its reads of ``MathJax.version``."""
    if "text/html" in data:
        markup = data["text/html"]
        missing = markup.count("<div") - markup.count("</div")
        data["text/html"] = markup + "</div>" * max(missing, 0)
    if "application/javascript" in data:
        data["application/javascript"] = re.sub(
            r"\b(var version|const v) = MathJax\.version;",
            r"\1 = MathJax.version || '';",
            data["application/javascript"],
        )
    return data
