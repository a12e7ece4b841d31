"""Code exercises that check the learner's function at once, and the chapters' quizzes.

A learner works on an exercise in a notebook::

    from lessons import exercises
    exercises.show("basics.softmax")          # the task; hints and solution behind clicks
    exercises.check("basics.softmax", my_softmax)

The package holds the framework and, one module per chapter, what the chapters ask:

* `framework` declares exercises (`Exercise`, `Case`, `Hint`) and keeps the registry;
* `checking` runs an answer on every case and compares it with the reference;
* `sandbox` runs the learner's code in a separate process, so that an endless loop,
  a crash or a flood of prints ends as feedback and never takes the kernel down;
* `feedback` shows tasks and reports; `progress` remembers passed exercises;
* `quiz` renders multiple-choice and numeric questions that need no kernel;
* ``basics``, ``word2vec``, ``elmo``, ``attention``, ``transformer``, ``bert``,
  ``reformer``, ``memory``: each chapter's exercises and quiz.
"""

from __future__ import annotations

from typing import Any

from lessons.exercises.checking import CaseResult, CheckResult, evaluate
from lessons.exercises.feedback import FeedbackControls, show, show_feedback, task_html, task_text
from lessons.exercises.framework import (
    Attempt,
    Case,
    Exercise,
    Hint,
    UnknownExerciseError,
    get,
    register,
    registry,
)
from lessons.exercises.progress import Progress, progress, progress_file, record_pass

__all__ = [
    "Attempt",
    "Case",
    "CaseResult",
    "CheckResult",
    "Exercise",
    "FeedbackControls",
    "Hint",
    "Progress",
    "UnknownExerciseError",
    "check",
    "evaluate",
    "get",
    "progress",
    "progress_file",
    "register",
    "registry",
    "show",
    "task_html",
    "task_text",
]


def check(exercise_id: str, answer: Any, *, display_feedback: bool = True) -> CheckResult:
    """Check the learner's function against exercise ``exercise_id``.

    Shows the feedback (a widget in Jupyter and Colab, a text report elsewhere) unless
    ``display_feedback`` is false, records a pass in the progress file, and returns the
    `CheckResult`. An unknown id raises `UnknownExerciseError`; anything wrong with the
    answer becomes feedback.
    """
    exercise = get(exercise_id)
    result = evaluate(exercise, answer)
    if result.passed:
        record_pass(exercise.id)
    if display_feedback:
        show_feedback(exercise, result)
    return result
