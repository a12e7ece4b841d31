"""Reading and checking the safetensors checkpoints of the models in this package.

Used by `lessons.elmo.BiLM` and `lessons.seq2seq` (``load`` and ``load_weights``): a
checkpoint is loaded only when it is a file of the right kind and its configuration and
every tensor's name and shape match the model; otherwise the error names what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_checkpoint", "read_checkpoint"]


def read_checkpoint(
    path: str | Path, config_key: str, kind: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of the safetensors file ``path``.

    ``config_key`` is the metadata field every checkpoint of this ``kind`` (for example
    ``"lessons.elmo.BiLM"``) stores its configuration in; a missing file, or a file
    without that field, raises an error that says so.
    """
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    if config_key not in metadata:
        raise ValueError(f"{path}: not a {kind} checkpoint (no {config_key!r} in its metadata)")
    return metadata, tensors


def check_checkpoint(
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
