"""Saving and loading the book's models as safetensors files, checked before loading.

A model class inherits `Checkpointed` and keeps the arguments of its constructor in
``self.config``; then ``model.save(path, notes)`` writes its weights, and its class name,
configuration and ``notes`` (how it was trained) as JSON in the file's metadata;
``Class.load(path)`` rebuilds the model from that configuration and loads the weights;
``model.load_weights(path)`` loads them into an existing model. Nothing is loaded
unless the file is a checkpoint of this class and every tensor's name and shape match;
otherwise the error names what differs.

Used by `lessons.elmo.BiLM`, the encoder-decoders of `lessons.seq2seq` and the models of
`lessons.transformer`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["CONFIG_KEY", "NOTES_KEY", "Checkpointed", "checkpoint_class", "checkpoint_notes"]

#: The metadata field that holds ``{"class": ..., "config": ...}`` as JSON.
CONFIG_KEY = "lessons.checkpoint"
#: The metadata field that holds the ``notes`` given to `Checkpointed.save`, as JSON.
NOTES_KEY = "lessons.checkpoint.notes"

Model = TypeVar("Model", bound="Checkpointed")


def _read(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of the safetensors file ``path``; errors say what is wrong."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    if CONFIG_KEY not in metadata:
        raise ValueError(
            f"{path}: not a checkpoint of this book (no {CONFIG_KEY!r} in its metadata)"
        )
    return metadata, tensors


def _header(metadata: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    header = json.loads(metadata[CONFIG_KEY])
    return header["class"], header["config"]


def checkpoint_class(path: str | Path) -> str:
    """The name of the model class whose checkpoint ``path`` is, e.g. ``"BiLM"``."""
    metadata, _ = _read(path)
    return _header(metadata)[0]


def checkpoint_notes(path: str | Path) -> dict[str, Any]:
    """The ``notes`` given to `Checkpointed.save` for the checkpoint ``path`` (``{}`` if none)."""
    metadata, _ = _read(path)
    return json.loads(metadata.get(NOTES_KEY, "{}"))


class Checkpointed(nn.Module):
    """``save``, ``load`` and ``load_weights`` for a model whose ``config`` holds the
    keyword arguments of its constructor."""

    config: dict[str, Any]

    def save(self, path: str | Path, notes: Mapping[str, Any] | None = None) -> None:
        """Write the weights to a safetensors file; the class name, the configuration and
        ``notes`` (e.g. how the model was trained) go in its metadata as JSON."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        header = json.dumps({"class": type(self).__name__, "config": self.config})
        metadata = {CONFIG_KEY: header, NOTES_KEY: json.dumps(dict(notes or {}))}
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls: type[Model], path: str | Path) -> Model:
        """A new model built from the configuration stored in ``path``, with its weights."""
        metadata, _ = _read(path)
        name, config = _header(metadata)
        if name != cls.__name__:
            raise ValueError(f"{path}: holds a {name}, not a {cls.__name__}")
        expected = set(inspect.signature(cls).parameters)
        if set(config) != expected:
            raise ValueError(
                f"{path}: the stored configuration has the fields {sorted(config)}, "
                f"expected {sorted(expected)}"
            )
        model = cls(**config)
        model.load_weights(path)
        return model

    def load_weights(self, path: str | Path) -> None:
        """Load the weights of ``path`` into this model.

        A checkpoint of another class or configuration raises a ValueError that names
        every differing setting; so does a missing, unexpected or differently shaped
        tensor (with both shapes).
        """
        metadata, tensors = _read(path)
        name, config = _header(metadata)
        if name != type(self).__name__:
            raise ValueError(f"{path}: holds a {name}, not a {type(self).__name__}")
        _check_fits(path, config, self.config, tensors, self.state_dict())
        self.load_state_dict(tensors)


def _check_fits(
    path: str | Path,
    stored_config: Mapping[str, Any],
    own_config: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    own_state: Mapping[str, torch.Tensor],
) -> None:
    """Raise a ValueError unless ``tensors`` (read from ``path``) fit ``own_state``.

    A missing, unexpected or differently shaped tensor is named (with both shapes), and
    the message adds every configuration setting that differs, which usually explains it;
    a checkpoint whose tensors fit but whose configuration differs is refused too.
    """
    differences = [
        f"{key}={stored_config.get(key)!r} (this model: {value!r})"
        for key, value in own_config.items()
        if stored_config.get(key) != value
    ]
    note = f"; the configurations differ: {', '.join(differences)}" if differences else ""
    for key, value in own_state.items():
        if key not in tensors:
            raise ValueError(f"{path}: the checkpoint has no tensor {key!r}{note}")
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{path}: {key!r} has shape {tuple(tensors[key].shape)} in the checkpoint "
                f"but {tuple(value.shape)} in this model{note}"
            )
    extra = sorted(set(tensors) - set(own_state))
    if extra:
        raise ValueError(f"{path}: unexpected tensor {extra[0]!r} in the checkpoint{note}")
    if differences:
        raise ValueError(f"{path}: the configurations differ: {', '.join(differences)}")
