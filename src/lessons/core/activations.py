"""How many bytes autograd keeps for the backward pass: the activation memory of a model.

Every operation that needs its inputs or outputs to compute gradients saves them on the
autograd graph until ``backward()`` runs; that, not the parameters, is what grows with
the batch and the sequence length. `SavedActivations` watches the forward pass through
``torch.autograd.graph.saved_tensors_hooks`` and counts each saved storage once (two
views of one tensor share their memory)::

    with SavedActivations(exclude=model.parameters()) as saved:
        loss = model(inputs).sum()
    saved.bytes            # what backward will read; the parameters are left out

It works the same on a CPU and a GPU, where ``torch.cuda.max_memory_allocated`` is the
other way to look; ``tracemalloc`` does not see torch's allocations at all. The Reformer
(reversible layers) and the memory chapter (checkpointing) measure their savings with it.

Counting saved tensors cannot see a short-lived peak: a large intermediate that is freed
before the forward pass ends is never saved. `peak_memory` finds it with the PyTorch
profiler's memory events: it replays every allocation and free of a call, in order, and
reports the highest point the running total reached above where it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

__all__ = ["SavedActivations", "cuda_peak_memory", "peak_memory"]


def _storage_key(tensor: torch.Tensor) -> tuple[str, int, int]:
    """What identifies the memory of ``tensor``: its device, address and size in bytes."""
    try:
        storage = tensor.untyped_storage()
        return str(tensor.device), storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # e.g. sparse tensors have no single storage
        return str(tensor.device), id(tensor), tensor.numel() * tensor.element_size()


class SavedActivations:
    """A context manager that counts the tensors autograd saves inside its ``with`` block.

    ``exclude``: tensors whose memory should not count, typically ``model.parameters()``
    (they are saved by reference and exist anyway). After the block:

    * ``bytes``: the total size of the distinct storages saved;
    * ``tensors``: how many tensors were saved (views of one storage counted each time);
    * ``by_shape``: bytes per saved tensor shape, largest first, to see what dominates.

    Only the forward pass should run inside the block: backward unpacks, it saves nothing.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._excluded = {_storage_key(t) for t in exclude}
        self._seen: dict[tuple[str, int, int], tuple[int, ...]] = {}
        self.tensors = 0
        self._hooks: torch.autograd.graph.saved_tensors_hooks | None = None

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in self._excluded:
            self._seen.setdefault(key, tuple(tensor.shape))
            self.tensors += 1
        return tensor

    def __enter__(self) -> SavedActivations:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._hooks is not None
        self._hooks.__exit__(*exc_info)
        self._hooks = None

    @property
    def bytes(self) -> int:
        """The total size of the distinct storages autograd saved, in bytes."""
        return sum(size for _, _, size in self._seen)

    @property
    def by_shape(self) -> dict[tuple[int, ...], int]:
        """Bytes saved per tensor shape, largest total first."""
        totals: dict[tuple[int, ...], int] = {}
        for (_, _, size), shape in self._seen.items():
            totals[shape] = totals.get(shape, 0) + size
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def __repr__(self) -> str:
        return f"SavedActivations({self.bytes:,} bytes in {len(self._seen)} storages)"


def peak_memory(fn: Callable[[], Any]) -> int:
    """The peak of the CPU memory torch allocated while ``fn()`` ran, in bytes.

    Measured with ``torch.profiler.profile(profile_memory=True)``: each allocation and
    free is a memory event with a size (positive or negative); summed in time order they
    give the memory held at each moment, counted from zero at the start of the call.
    Memory that existed before the call (the inputs, the parameters) does not count;
    memory that ``fn`` returns does. Allocations on a GPU are not counted (use
    ``torch.cuda.max_memory_allocated`` there).
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a function of no arguments, got {type(fn).__name__}")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
    ]
    held = peak = 0
    for _, nbytes in sorted(events, key=lambda item: item[0]):
        held += nbytes
        peak = max(peak, held)
    return peak


def cuda_peak_memory(fn: Callable[[], Any], device: str | torch.device = "cuda") -> int:
    """The peak of the GPU memory torch allocated while ``fn()`` ran, in bytes.

    From ``torch.cuda.max_memory_allocated``, reset before the call and counted from the
    memory allocated at its start. Guarded: without CUDA, ``max_memory_allocated``
    returns 0 instead of failing, so a measurement (or a test) that trusted it would
    silently report nothing; this raises a RuntimeError instead. On a CPU, use
    `peak_memory`.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a function of no arguments, got {type(fn).__name__}")
    if not torch.cuda.is_available():
        raise RuntimeError(
            "cuda_peak_memory: no CUDA device is available (torch.cuda.max_memory_allocated "
            "would return 0); measure with peak_memory on a CPU"
        )
    device = torch.device(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start
