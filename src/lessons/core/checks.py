"""Argument checks shared by every module, with errors that say what went wrong.

Each check returns the value it accepted (converted where that is harmless, e.g. a
NumPy integer to an ``int``) and otherwise raises an error whose message names the
argument, what was expected and what came::

    epochs: expected an int >= 1, got 0
    query: expected a floating-point tensor with 3 dimensions (batch, q_len, d_k), got
        torch.int64 of shape (2, 5)

A value of the wrong kind raises `TypeError`; a value of the right kind outside its
range raises `ValueError`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "describe",
    "nonempty_str",
    "number",
    "one_of",
    "positive_int",
    "probability",
    "sentences",
    "tensor",
]


def describe(value: object, limit: int = 40) -> str:
    """A short description of ``value`` for an error message: its type, and a preview."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} of shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if value is None or isinstance(value, str):
        return text
    return f"{type(value).__name__} {text}"


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int``, which must be at least ``minimum`` (1 by default)."""
    if not _is_int(value):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def number(name: str, value: object, *, low: float | None = None, positive: bool = False) -> float:
    """``value`` as a ``float``; ``positive`` asks for > 0, ``low`` for >= ``low``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    if positive and not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    if low is not None and not value >= low:
        raise ValueError(f"{name}: expected a number >= {low:g}, got {value!r}")
    return float(value)


def probability(name: str, value: object, *, allow_one: bool = False) -> float:
    """``value`` as a ``float`` in [0, 1) (or [0, 1] with ``allow_one``), e.g. a dropout rate."""
    interval = "[0, 1]" if allow_one else "[0, 1)"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number in {interval}, got {describe(value)}")
    if not (0 <= value <= 1 if allow_one else 0 <= value < 1):
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return float(value)


def one_of(name: str, value: object, choices: Iterable[object]) -> object:
    """``value``, which must be one of ``choices``."""
    choices = tuple(choices)
    listed = ", ".join(repr(c) for c in choices)
    if not any(isinstance(value, type(choice)) for choice in choices):
        raise TypeError(f"{name}: expected one of {listed}; got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name}: expected one of {listed}; got {describe(value)}")
    return value


def nonempty_str(name: str, value: object) -> str:
    """``value``, which must be a non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a non-empty str, got {describe(value)}")
    if not value:
        raise ValueError(f"{name}: expected a non-empty str, got ''")
    return value


#: What a ``dtype`` of `tensor` may be besides a ``torch.dtype``.
_DTYPE_KINDS = {
    "float": ("a floating-point tensor", torch.Tensor.is_floating_point),
    "int": ("an integer tensor", lambda t: not t.is_floating_point() and not t.is_complex()),
}


def tensor(
    name: str,
    value: object,
    *,
    dims: int | Sequence[int] | None = None,
    dtype: torch.dtype | str | None = None,
    layout: str = "",
) -> torch.Tensor:
    """``value``, which must be a tensor with ``dims`` dimensions and the given ``dtype``.

    ``dims`` is a number or a sequence of allowed numbers; ``dtype`` is a ``torch.dtype``,
    ``"float"`` (any floating-point type) or ``"int"`` (any integer type, bool included);
    ``layout`` names the dimensions in the message, e.g. ``"(batch, seq, d_model)"``.
    """
    if dtype is None:
        wanted = "a tensor"
    elif isinstance(dtype, str):
        wanted = _DTYPE_KINDS[dtype][0]
    else:
        wanted = f"a {str(dtype).removeprefix('torch.')} tensor"
    allowed = None if dims is None else (dims,) if isinstance(dims, int) else tuple(dims)
    if allowed is not None:
        count = " or ".join(map(str, allowed))
        wanted += f" with {count} dimension{'' if allowed == (1,) else 's'}"
    if layout:
        wanted += f" {layout}"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected {wanted}, got {describe(value)}")
    if isinstance(dtype, str):
        dtype_ok = _DTYPE_KINDS[dtype][1](value)
    else:
        dtype_ok = dtype is None or value.dtype == dtype
    if not dtype_ok:
        raise TypeError(f"{name}: expected {wanted}, got {describe(value)}")
    if allowed is not None and value.dim() not in allowed:
        raise ValueError(f"{name}: expected {wanted}, got {describe(value)}")
    return value


def sentences(
    value: object, *, name: str = "sentences", nonempty: bool = False
) -> list[Sequence[str]]:
    """``value`` as a list, after checking it is a corpus: a list of lists of string tokens.

    Every module that learns from text calls this first, so that a learner's mistake (a
    string instead of a list of words, a number among the tokens, an empty corpus) gets
    the same clear error everywhere. With ``nonempty``, every sentence and every token
    must be non-empty too (a model that reads each sentence needs at least one token).
    """
    if isinstance(value, str):
        raise TypeError(
            f"{name}: expected a list of token lists, got one string "
            f"{value[:40]!r} (split the text into sentences and words first)"
        )
    if not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected a list of token lists, got {describe(value)}")
    corpus = list(value)
    for i, sentence in enumerate(corpus):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(
                f"{name}[{i}]: expected a list of string tokens, got {describe(sentence)} "
                "(split it into words first)"
            )
        if nonempty and len(sentence) == 0:
            raise ValueError(f"{name}[{i}]: expected at least one token, got an empty sentence")
        for j, token in enumerate(sentence):
            if not isinstance(token, str):
                raise TypeError(f"{name}[{i}][{j}]: expected a string token, got {describe(token)}")
            if nonempty and not token:
                raise ValueError(f"{name}[{i}][{j}]: expected a non-empty token, got ''")
    if not any(corpus):
        raise ValueError(f"{name}: got an empty corpus ({len(corpus)} sentences, no tokens)")
    return corpus
