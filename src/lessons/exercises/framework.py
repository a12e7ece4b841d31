"""Declaring exercises: cases, hints, wrong answers, and the registry of the whole book.

A chapter's exercises live in this package, one module per chapter (``basics.py``,
``word2vec.py``, ...), and declare each exercise once::

    register(Exercise(id="basics.softmax", chapter="basics", prompt=..., signature=...,
                      solution=softmax, cases=softmax_cases, hints=(...), wrong_answers=(...)))

`registry` finds those modules itself: it imports every module of this package, so a
new chapter's exercises appear as soon as its file exists.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Attempt",
    "Case",
    "Exercise",
    "Hint",
    "UnknownExerciseError",
    "get",
    "load_chapters",
    "register",
    "registry",
]

#: Seconds a learner's function may run on one case before the checker stops it.
DEFAULT_TIMEOUT_S = 5.0

_REGISTRY: dict[str, Exercise] = {}


@dataclass(frozen=True)
class Case:
    """One input to run both the reference and the learner's function on."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    """What went wrong on one case; hint predicates look at it to pick a hint.

    ``problem`` is one of "exception", "timeout", "type", "shape", "dtype", "values",
    "modified" (the learner changed an input) and "grad".
    """

    case: Case
    expected: Any
    got: Any
    problem: str
    error: BaseException | None = None


@dataclass(frozen=True)
class Hint:
    """A hint, and optionally the mistakes it fits (``fits(attempt) -> bool``)."""

    text: str
    fits: Callable[[Attempt], bool] | None = None


@dataclass(frozen=True)
class Exercise:
    """A code exercise: the task, the reference solution and how to check an answer.

    ``cases`` is a function returning the cases (seeded, so always the same ones).
    ``hints`` are ordered from gentle to telling. ``wrong_answers`` are typical
    mistakes that the check must fail: a test enforces it for every exercise.
    Values must agree within ``rtol``/``atol`` (as in `torch.allclose`); with
    ``check_grad`` the gradients of ``sum(output * w)`` for a fixed random ``w``
    with respect to every floating-point input must agree too.
    """

    id: str
    chapter: str
    prompt: str
    signature: str
    solution: Callable[..., Any]
    cases: Callable[[], Sequence[Case]]
    hints: tuple[Hint, ...]
    wrong_answers: tuple[Callable[..., Any], ...]
    rtol: float = 1e-5
    atol: float = 1e-6
    check_grad: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", self.id):
            raise ValueError(f"exercise id {self.id!r} is not of the form '<topic>.<name>'")
        if not self.hints:
            raise ValueError(f"exercise {self.id!r} declares no hints")

    def solution_source(self) -> str:
        """The source code of the reference solution."""
        return inspect.getsource(self.solution)

    def hint_for(self, attempt: Attempt) -> Hint:
        """The first hint that fits the mistake, else the first hint."""
        for hint in self.hints:
            if hint.fits is not None and _safe_predicate(hint.fits, attempt):
                return hint
        return self.hints[0]


class UnknownExerciseError(KeyError):
    """Raised for an exercise id that no chapter declares."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the book's registry; ids must be unique."""
    known = _REGISTRY.get(exercise.id)
    if known is not None and known is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is declared twice")
    _REGISTRY[exercise.id] = exercise
    return exercise


def load_chapters() -> None:
    """Import every module of `lessons.exercises`, so that their exercises and quizzes register.

    The modules are found on the package's path, not in a hand-kept list: a new
    chapter's file is picked up as it is.
    """
    package = importlib.import_module("lessons.exercises")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def registry() -> dict[str, Exercise]:
    """Every exercise of the book, by id, sorted by id."""
    load_chapters()
    return dict(sorted(_REGISTRY.items()))


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; an unknown id raises, naming close matches."""
    exercises = registry()
    if exercise_id in exercises:
        return exercises[exercise_id]
    close = difflib.get_close_matches(str(exercise_id), exercises, n=3, cutoff=0.8)
    if close:
        raise UnknownExerciseError(
            f"No exercise {exercise_id!r}. Did you mean {' or '.join(map(repr, close))}?"
        )
    raise UnknownExerciseError(f"No exercise {exercise_id!r}. Known: {', '.join(exercises)}.")


def _safe_predicate(predicate: Callable[[Attempt], bool], attempt: Attempt) -> bool:
    try:
        return bool(predicate(attempt))
    except Exception:  # noqa: BLE001 - a predicate that cannot judge does not fit
        return False
