"""One small training loop for every chapter.

Used in: ``notebooks/00_getting_started.ipynb`` (section "Training a tiny model") and
every later chapter that trains something.

The loop is the textbook one, written out so a reader can follow it line by line::

    for each epoch:
        for each batch:
            loss = loss of the model on the batch
            optimizer.zero_grad(); loss.backward()
            (clip the gradient norm)
            optimizer.step()
        (measure the model on the validation data)

Two ways to say what "the loss of the model on a batch" is:

* ``criterion=nn.CrossEntropyLoss()`` when every batch is a pair ``(inputs, targets)``:
  the loss is ``criterion(model(inputs), targets)``;
* ``loss_fn=my_loss`` for anything else: ``my_loss(model, batch)`` returns the loss.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lessons.core import checks

__all__ = [
    "History",
    "default_device",
    "evaluate",
    "move_to",
    "set_seed",
    "train",
]

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
Metric = Callable[[torch.Tensor, torch.Tensor], float | torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random number generators.

    Re-running a cell after ``set_seed(seed)`` gives the same numbers on the same machine.
    """
    checks.positive_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: CUDA if present, then Apple's MPS, then the CPU.

    An explicit ``device`` wins, then the environment variable ``LESSONS_DEVICE``
    (for example ``LESSONS_DEVICE=cpu`` to keep a GPU free).
    """
    chosen = device if device is not None else os.environ.get("LESSONS_DEVICE") or None
    if chosen is not None:
        try:
            return torch.device(chosen)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"device: expected 'cpu', 'cuda', 'cuda:0', 'mps' or a torch.device, got {chosen!r}"
            ) from error
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def move_to(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in ``batch`` (a tensor, or tuples, lists, dicts of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: move_to(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(move_to(value, device) for value in batch)
    return batch


@dataclass
class History:
    """What happened during training.

    ``step_loss[i]`` is the training loss at optimizer step ``i + 1``; ``grad_norm`` the
    gradient norm before clipping at that step. ``epochs`` holds one dict per epoch with
    ``train_loss`` (the epoch's mean) and, when there is validation data, ``val_loss``
    and one entry per metric.
    """

    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def metric(self, name: str) -> list[float]:
        """The per-epoch values of ``name`` (``"train_loss"``, ``"val_loss"`` or a metric)."""
        known = sorted({key for epoch in self.epochs for key in epoch})
        if name not in known:
            raise KeyError(f"metric {name!r} was not recorded; recorded: {known}")
        return [epoch[name] for epoch in self.epochs if name in epoch]

    def plot(self, ax=None):
        """Plot the training curve and any validation loss (`lessons.core.plot.training_curves`)."""
        from lessons.core.plot import training_curves

        return training_curves(self, ax=ax)


def _batch_size(batch: Batch) -> int:
    """The number of examples in ``batch``: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else 1
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, tuple | list):
        for value in batch:
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                return int(value.shape[0])
    return 1


def _make_loss_fn(criterion: Callable | None, loss_fn: LossFn | None) -> LossFn:
    """Turn ``criterion`` or ``loss_fn`` (exactly one of them) into a ``loss_fn(model, batch)``."""
    if (criterion is None) == (loss_fn is None):
        raise ValueError(
            "give exactly one of criterion= (batches are (inputs, targets)) or "
            "loss_fn= (called as loss_fn(model, batch))"
        )
    if loss_fn is not None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn: expected a function, got {type(loss_fn).__name__}")
        return loss_fn
    if not callable(criterion):
        raise TypeError(f"criterion: expected a loss module or function, got {type(criterion)}")

    def supervised_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        if not (isinstance(batch, tuple | list) and len(batch) == 2):
            raise ValueError(
                "with criterion=, every batch must be a pair (inputs, targets); got "
                f"{type(batch).__name__} {tuple(getattr(batch, 'shape', ()))}"
                " (use loss_fn= for other batches)"
            )
        inputs, targets = batch
        return criterion(model(inputs), targets)

    return supervised_loss


def _check_loss(loss: Any, step: int) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"the loss must be a tensor with one element; at step {step} got {what}")
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"the loss became {loss.item()} at step {step}; try a smaller learning rate "
            "or gradient clipping (clip_grad_norm=1.0)"
        )
    return loss


def evaluate(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    criterion: Callable | None = None,
    loss_fn: LossFn | None = None,
    metrics: Mapping[str, Metric] | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss (and metrics) of ``model`` on ``data``, weighted by batch size, without gradients.

    Metrics are functions ``metric(outputs, targets)`` and need ``criterion=``-style batches.
    Returns ``{"loss": ..., "<metric>": ...}``. The model's train/eval mode is restored.
    """
    compute_loss = _make_loss_fn(criterion, loss_fn)
    metrics = dict(metrics or {})
    if metrics and criterion is None:
        raise ValueError("metrics need criterion= and batches of (inputs, targets)")
    device = default_device(device) if device is not None else _model_device(model)
    totals = {"loss": 0.0, **{name: 0.0 for name in metrics}}
    count = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in data:
            batch = move_to(batch, device)
            size = _batch_size(batch)
            totals["loss"] += float(compute_loss(model, batch)) * size
            if metrics:
                inputs, targets = batch
                outputs = model(inputs)
                for name, metric in metrics.items():
                    totals[name] += float(metric(outputs, targets)) * size
            count += size
    model.train(was_training)
    if count == 0:
        raise ValueError("data: expected at least one batch, got none")
    return {name: total / count for name, total in totals.items()}


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def train(
    model: nn.Module,
    train_data: Iterable[Batch],
    *,
    criterion: Callable | None = None,
    loss_fn: LossFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    lr: float = 1e-3,
    epochs: int = 1,
    max_steps: int | None = None,
    val_data: Iterable[Batch] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    clip_grad_norm: float | None = None,
    device: str | torch.device | None = None,
    seed: int | None = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train_data`` and return its `History`.

    Args:
        model: the network; moved to ``device``.
        train_data: batches, e.g. a ``DataLoader``; it is iterated once per epoch, so it
            must be re-iterable (a list or a DataLoader, not a generator) when ``epochs > 1``.
        criterion: ``criterion(model(inputs), targets)`` for batches ``(inputs, targets)``.
        loss_fn: ``loss_fn(model, batch)`` for any other batch; give this or ``criterion``.
        optimizer: defaults to Adam over the model's parameters with learning rate ``lr``.
        scheduler: a learning-rate scheduler of ``optimizer``, stepped after every
            optimizer step (e.g. the warm-up of `lessons.transformer.paper_optimizer`).
        epochs: passes over ``train_data``.
        max_steps: stop after this many optimizer steps, even within an epoch.
        val_data: measured with `evaluate` after each epoch (``val_loss`` and ``metrics``).
        clip_grad_norm: rescale gradients whose total norm exceeds this value.
        device: see `default_device`.
        seed: passed to `set_seed` before training; ``None`` leaves the generators alone.
        progress: show a tqdm progress bar with the running loss.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    checks.positive_int("epochs", epochs)
    if max_steps is not None:
        checks.positive_int("max_steps", max_steps)
    checks.number("lr", lr, positive=True)
    if clip_grad_norm is not None:
        checks.number("clip_grad_norm", clip_grad_norm, positive=True)
    if metrics and val_data is None:
        raise ValueError("metrics are measured on val_data; give val_data= as well")
    if epochs > 1 and iter(train_data) is train_data:
        raise TypeError(
            "train_data: a one-shot iterator (such as a generator) can only be read once, but "
            f"epochs={epochs}; pass a list or a DataLoader"
        )
    compute_loss = _make_loss_fn(criterion, loss_fn)
    if seed is not None:
        set_seed(seed)
    device = default_device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = History()
    start = time.perf_counter()
    total = _total_steps(train_data, epochs, max_steps)
    bar = tqdm(total=total, desc="training", unit="step", disable=not progress)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_loss, epoch_batches = 0.0, 0
        for batch in train_data:
            step += 1
            batch = move_to(batch, device)
            loss = _check_loss(compute_loss(model, batch), step)
            optimizer.zero_grad()
            loss.backward()
            max_norm = clip_grad_norm if clip_grad_norm is not None else math.inf
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

            history.step_loss.append(loss.item())
            history.grad_norm.append(float(grad_norm))
            epoch_loss += loss.item()
            epoch_batches += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{epoch_loss / epoch_batches:.4f}")
            if max_steps is not None and step >= max_steps:
                break
        if epoch_batches == 0:
            bar.close()
            raise ValueError("train_data: expected at least one batch, got none")
        record = {"epoch": float(epoch), "train_loss": epoch_loss / epoch_batches}
        if val_data is not None:
            scores = evaluate(
                model,
                val_data,
                criterion=criterion,
                loss_fn=loss_fn,
                metrics=metrics,
                device=device,
            )
            record["val_loss"] = scores.pop("loss")
            record.update(scores)
            bar.set_postfix(
                epoch=epoch, loss=f"{record['train_loss']:.4f}", val=f"{record['val_loss']:.4f}"
            )
        history.epochs.append(record)
        if max_steps is not None and step >= max_steps:
            break
    bar.close()
    history.seconds = time.perf_counter() - start
    return history


def _total_steps(train_data: Iterable[Batch], epochs: int, max_steps: int | None) -> int | None:
    """The number of steps the progress bar should expect, when it can be known."""
    try:
        per_epoch = len(train_data)  # type: ignore[arg-type]
    except TypeError:
        return max_steps
    total = per_epoch * epochs
    return min(total, max_steps) if max_steps is not None else total
