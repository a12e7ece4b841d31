"""Data parallelism with PyTorch's own engine (chapter 7, section 3), proven to change
nothing but where the work is done.

Two processes on the gloo backend (CPU), started by the tests themselves, train chapter
4's language model on the duplication task with ``DistributedDataParallel`` and with
FSDP2's ``fully_shard``; one process trains the same model on the whole batch. The
gradients and the parameters after three steps of SGD with momentum must agree within
1e-6; with AdamW, all but the parameters whose true gradient is zero. Gradient
accumulation with ``no_sync()`` must agree too, and the trap of switching
``require_backward_grad_sync`` after the forward pass is reproduced and measured.
Finally ``scripts/train_ddp.py`` runs under ``torchrun`` with one and with two processes
and must print the same losses.

All the distributed runs happen in one group of two processes (`distributed_results`),
one thread each, so that starting Python and torch is paid once.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lessons.memory import (
    distribute,
    full_parameters,
    local_parameter_bytes,
    setup_process_group,
    shard_batch,
)
from lessons.reformer import duplication_batch, duplication_loss
from lessons.transformer import TransformerLM

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed"),
    pytest.mark.skipif(
        dist.is_available() and not dist.is_gloo_available(),
        reason="this torch build has no gloo backend",
    ),
    pytest.mark.usefixtures("one_thread"),
]

WORLD_SIZE = 2
BATCH_SIZE = 12  # global: 6 sequences per process, 2 or 3 micro-batches of equal size
STEPS = 3
W, VOCAB_SIZE = 4, 8  # sequences 0 w 0 w of length 10
#: Gradients and parameters of the data-parallel runs against one process (float32).
TOLERANCE = 1e-6


def make_model() -> TransformerLM:
    """A tiny chapter-4 language model, the same weights every time, dropout off (each
    process would draw its own masks)."""
    torch.manual_seed(0)
    return TransformerLM(
        VOCAB_SIZE, d_model=16, num_heads=2, num_layers=2, ff_dim=32, max_len=2 * W + 2, dropout=0
    )


def global_batches() -> list[torch.Tensor]:
    """The ``STEPS`` global batches, the same in every process."""
    generator = torch.Generator().manual_seed(1)
    return [duplication_batch(BATCH_SIZE, W, VOCAB_SIZE, generator) for _ in range(STEPS)]


def unwrapped(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every gradient whole, by name (sharded gradients are gathered: a collective)."""
    grads = {}
    for name, parameter in unwrapped(model).named_parameters():
        grad = parameter.grad
        grads[name] = (grad.full_tensor() if hasattr(grad, "full_tensor") else grad).clone()
    return grads


def no_sync(model: nn.Module, sync: bool):
    """DDP's context that skips the all-reduce, or FSDP2's switch that skips the
    reduce-scatter, for every micro-batch but the last."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return nullcontext() if sync else model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(sync)
    return nullcontext()


def train(
    model: nn.Module, batches: list[torch.Tensor], accumulate: int = 1, adam: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Steps of SGD with momentum (or of AdamW) on ``batches``, each split into
    ``accumulate`` micro-batches (the loss divided by ``accumulate``): the gradients of the
    first step and the final parameters."""
    parameters = model.parameters()
    optimizer = (
        torch.optim.AdamW(parameters, lr=1e-2)
        if adam
        else torch.optim.SGD(parameters, lr=0.1, momentum=0.9)
    )
    first = {}
    for step, batch in enumerate(batches):
        for i, micro_batch in enumerate(batch.chunk(accumulate)):
            with no_sync(model, sync=i == accumulate - 1):
                (duplication_loss(model, micro_batch) / accumulate).backward()
        if step == 0:
            first = gradients(model)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return first, full_parameters(model)


def flag_after_forward(model: nn.Module, batch: torch.Tensor, micro_batches: int) -> None:
    """The trap: accumulation by switching ``require_backward_grad_sync`` off after the
    forward pass of every micro-batch but the last (and on after the last one's)."""
    for i, micro_batch in enumerate(batch.chunk(micro_batches)):
        loss = duplication_loss(model, micro_batch) / micro_batches
        model.require_backward_grad_sync = i == micro_batches - 1  # too late: see the test
        loss.backward()


def flag_before_forward(model: nn.Module, batch: torch.Tensor, micro_batches: int) -> None:
    """The same switch before each forward pass: what ``no_sync()`` does."""
    for i, micro_batch in enumerate(batch.chunk(micro_batches)):
        model.require_backward_grad_sync = i == micro_batches - 1
        (duplication_loss(model, micro_batch) / micro_batches).backward()


def _worker(rank: int, world_size: int, port: int, folder: str) -> None:
    """One process of the group: every distributed run, its results saved to a file."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    rank, world_size, device = setup_process_group("gloo")
    shares = [shard_batch(batch, rank, world_size) for batch in global_batches()]
    results: dict[str, object] = {"device": str(device)}
    results["ddp"] = train(distribute(make_model(), "ddp"), shares)
    results["ddp_adamw"] = train(distribute(make_model(), "ddp"), shares, adam=True)
    results["ddp_no_sync"] = train(distribute(make_model(), "ddp"), shares, accumulate=2)
    model = distribute(make_model(), "ddp")
    with model.no_sync():
        duplication_loss(model, shares[0]).backward()
    results["inside_no_sync"] = gradients(model)
    for name, loop in (("flag_after", flag_after_forward), ("flag_before", flag_before_forward)):
        model = distribute(make_model(), "ddp")
        loop(model, shares[0], micro_batches=3)
        results[name] = gradients(model)
    try:  # FSDP2: public from torch 2.6, on CPUs with gloo in the pinned torch
        model = make_model()
        sharded = distribute(model, "fsdp", units=model.decoder.layers)
        results["fsdp_bytes"] = local_parameter_bytes(sharded)
        results["fsdp"] = train(sharded, shares)
        model = make_model()
        results["fsdp_no_sync"] = train(
            distribute(model, "fsdp", units=model.decoder.layers), shares, accumulate=2
        )
    except (ImportError, NotImplementedError, RuntimeError) as error:
        results["fsdp_missing"] = f"FSDP2's fully_shard on gloo: {error!r}"
    torch.save(results, Path(folder) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The results of `_worker` in each of the two processes, rank by rank."""
    folder = tmp_path_factory.mktemp("distributed")
    context = mp.start_processes(
        _worker,
        args=(WORLD_SIZE, _free_port(), str(folder)),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two gloo processes did not finish within 180 s")
    return [torch.load(folder / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def one_process() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The reference: the same steps in one process, on the whole batches."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(make_model(), global_batches())
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_process_adamw() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The same with AdamW."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(make_model(), global_batches(), adam=True)
    finally:
        torch.set_num_threads(threads)


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[name] - b[name]).abs().max().item() for name in a)


# --------------------------------------------------------------------------------------
# The helpers, in one process
# --------------------------------------------------------------------------------------


def test_shard_batch_gives_equal_consecutive_shares():
    batch = torch.arange(12).reshape(6, 2)
    shares = [shard_batch(batch, rank, 3) for rank in range(3)]
    assert [share[:, 0].tolist() for share in shares] == [[0, 2], [4, 6], [8, 10]]
    assert torch.equal(torch.cat(shares), batch)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.zeros(5, 2), 0, 2), "divisible by world_size=2"),
        ((torch.zeros(4), 2, 2), "rank: expected 0 to world_size - 1 = 1, got 2"),
        ((torch.zeros(4), -1, 2), "rank: expected an int >= 0"),
        (([1, 2], 0, 2), "batch: expected a tensor"),
    ],
)
def test_shard_batch_checks(args, message):
    with pytest.raises((ValueError, TypeError), match=message):
        shard_batch(*args)


def test_setup_process_group_names_the_missing_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match="WORLD_SIZE, LOCAL_RANK.*torchrun"):
        setup_process_group("gloo")
    with pytest.raises(ValueError, match="backend"):
        setup_process_group("mpi")


def test_distribute_checks_its_arguments():
    with pytest.raises(ValueError, match="strategy"):
        distribute(nn.Linear(2, 2), "zero")
    with pytest.raises(TypeError, match="model: expected an nn.Module"):
        distribute("model")


def test_local_parameter_bytes_of_a_plain_model():
    """Not sharded: every parameter counts whole (4 + 2 values of float32 here)."""
    assert local_parameter_bytes(nn.Linear(2, 2)) == 6 * 4


# --------------------------------------------------------------------------------------
# DistributedDataParallel against one process
# --------------------------------------------------------------------------------------


def test_processes_ran_on_the_cpu_with_gloo(distributed_results):
    assert [result["device"] for result in distributed_results] == ["cpu", "cpu"]


def test_ddp_gradients_equal_one_process(distributed_results, one_process):
    """After the all-reduce both processes hold the mean gradient over the whole batch:
    each process's loss is the mean over its share, and DDP averages over processes."""
    grads, _ = one_process
    for result in distributed_results:
        assert max_difference(result["ddp"][0], grads) < TOLERANCE
    assert max(g.abs().max().item() for g in grads.values()) > 1e-3  # not trivially zero


def test_ddp_parameters_equal_one_process_after_several_steps(distributed_results, one_process):
    _, parameters = one_process
    initial = dict(make_model().named_parameters())
    for result in distributed_results:
        assert max_difference(result["ddp"][1], parameters) < TOLERANCE
    moved = max((parameters[n] - initial[n]).abs().max().item() for n in parameters)
    assert moved > 1e-3  # the steps did change the weights


def test_adamw_turns_rounding_into_steps_where_the_gradient_is_zero(
    distributed_results, one_process_adamw
):
    """With AdamW every parameter agrees but the key projections' biases. Their true
    gradient is zero: a key bias adds ``q · b_k`` to every score of a query, and the
    softmax ignores what is added to all of a row. The computed gradient is rounding
    noise (at most about 1e-9, and not the same noise when the sum is split over two
    processes), and Adam divides it by its own root mean square: the noise becomes a
    step of up to ``lr``. The weights differ (measured: 1.5e-3 after three steps) where
    the model does not care; its outputs, which those biases cannot change, do not."""
    grads, parameters = one_process_adamw
    biases = {name for name in parameters if name.endswith("self_attn.k_proj.bias")}
    assert len(biases) == 2  # one per layer
    for result in distributed_results:
        first, final = result["ddp_adamw"]
        assert max_difference(first, grads) < TOLERANCE
        assert max(grads[name].abs().max().item() for name in biases) < 1e-8
        rest = {name: final[name] for name in final if name not in biases}
        assert max_difference(rest, {name: parameters[name] for name in rest}) < TOLERANCE
        assert (
            max_difference({n: final[n] for n in biases}, {n: parameters[n] for n in biases}) > 1e-5
        )


def test_ddp_accumulation_with_no_sync_equals_one_process(distributed_results, one_process):
    """Two micro-batches per process, the first under ``no_sync()``, the loss divided
    by 2: the same gradients and parameters as one process on the whole batch."""
    grads, parameters = one_process
    for result in distributed_results:
        first, final = result["ddp_no_sync"]
        assert max_difference(first, grads) < TOLERANCE
        assert max_difference(final, parameters) < TOLERANCE


def local_gradients(batch: torch.Tensor, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """The gradients of ``scale`` times the loss on ``batch``, in this process alone."""
    model = make_model()
    (duplication_loss(model, batch) * scale).backward()
    return gradients(model)


def test_no_sync_keeps_the_gradients_local(distributed_results):
    """Inside ``no_sync()`` nothing is communicated: each process holds the gradient of
    its own share, and the two differ. (So the accumulation test above does show that
    the synchronisation after the last micro-batch carries the first one's gradients.)"""
    first = global_batches()[0]
    ranks = [result["inside_no_sync"] for result in distributed_results]
    assert max_difference(ranks[0], ranks[1]) > 1e-3
    for rank, result in enumerate(ranks):
        expected = local_gradients(shard_batch(first, rank, WORLD_SIZE))
        assert max_difference(result, expected) < TOLERANCE


def test_flag_before_the_forward_pass_synchronises(distributed_results, one_process):
    """``require_backward_grad_sync`` switched before each forward pass: what
    ``no_sync()`` does, and the gradients are the whole batch's."""
    grads, _ = one_process
    for result in distributed_results:
        assert max_difference(result["flag_before"], grads) < TOLERANCE


def test_flag_after_the_forward_pass_is_the_trap(distributed_results):
    """The trap, measured on torch's DDP: DDP reads ``require_backward_grad_sync`` in the
    *forward* pass, where it prepares the reducer for the backward pass to come (the
    autograd hooks that all-reduce the buckets do nothing unless it did). Switching the
    flag after the forward pass therefore acts one micro-batch late. With three
    micro-batches and the flag set to ``i == 2`` after each forward pass:

    * micro-batch 0 ran its forward pass with the flag still on (its initial value), so
      its gradients *are* averaged over the processes, although the flag was off by the
      time of its backward pass;
    * micro-batches 1 and 2 ran theirs with the flag off, so their gradients stay local,
      the last one's included, although the flag was on for its backward pass.

    No error, no warning: the two processes end the step with different gradients, and
    each holds exactly ``mean over processes of g₀ + its own g₁ + g₂``. The test rebuilds
    that sum in one process and checks it to the tolerance. (The docstring of torch's
    ``no_sync()`` warns of half of this: the forward pass must run inside the context.)
    """
    ranks = [result["flag_after"] for result in distributed_results]
    assert max_difference(ranks[0], ranks[1]) > 1e-3  # silently not synchronised

    share = [shard_batch(global_batches()[0], rank, WORLD_SIZE) for rank in range(WORLD_SIZE)]
    micro = [batch.chunk(3) for batch in share]
    g0 = [local_gradients(micro[rank][0], 1 / 3) for rank in range(WORLD_SIZE)]
    for rank, result in enumerate(ranks):
        own = [local_gradients(micro[rank][i], 1 / 3) for i in (1, 2)]
        expected = {
            name: sum(g[name] for g in g0) / WORLD_SIZE + own[0][name] + own[1][name]
            for name in result
        }
        assert max_difference(result, expected) < TOLERANCE


# --------------------------------------------------------------------------------------
# FSDP2 (fully_shard): ZeRO stage 3
# --------------------------------------------------------------------------------------


@pytest.fixture
def fsdp_results(distributed_results: list[dict]) -> list[dict]:
    """The FSDP runs; skipped where this torch cannot run them (older than the pinned
    2.13, which can: there a failure fails)."""
    missing = distributed_results[0].get("fsdp_missing")
    if missing and torch.__version__ >= "2.13":  # a TorchVersion: compared as a version
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)
    return distributed_results


def test_fsdp_equals_one_process(fsdp_results, one_process):
    """Gathered whole, the sharded gradients and the parameters after the steps agree
    with one process's (measured: below 1e-7 in float32)."""
    grads, parameters = one_process
    for result in fsdp_results:
        first, final = result["fsdp"]
        assert max_difference(first, grads) < TOLERANCE
        assert max_difference(final, parameters) < TOLERANCE


def test_fsdp_accumulation_without_sync_equals_one_process(fsdp_results, one_process):
    """``set_requires_gradient_sync(False)`` on the first of two micro-batches."""
    grads, parameters = one_process
    for result in fsdp_results:
        first, final = result["fsdp_no_sync"]
        assert max_difference(first, grads) < TOLERANCE
        assert max_difference(final, parameters) < TOLERANCE


def test_fsdp_holds_one_nth_of_the_parameters(fsdp_results):
    """Each process holds its slice of every parameter (split along the first dimension,
    ``ceil(rows / N)`` rows each, the last slice shorter): together exactly the whole
    model, and each about half of it."""
    model = make_model()
    whole = sum(p.numel() * p.element_size() for p in model.parameters())
    largest_slice = sum(
        math.ceil(len(p) / WORLD_SIZE) * p[0].numel() * p.element_size() for p in model.parameters()
    )
    held = [result["fsdp_bytes"] for result in fsdp_results]
    assert sum(held) == whole
    assert max(held) <= largest_slice
    assert max(held) / whole == pytest.approx(1 / WORLD_SIZE, abs=0.01)


# --------------------------------------------------------------------------------------
# The script, under torchrun
# --------------------------------------------------------------------------------------


def run_script(tmp_path: Path, processes: int, *options: str) -> dict:
    """``torchrun --standalone --nproc_per_node=processes scripts/train_ddp.py``: its JSON."""
    output = tmp_path / f"losses-{processes}-{'-'.join(options) or 'default'}.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        str(ROOT / "scripts" / "train_ddp.py"),
        "--steps=3",
        "--batch-size=8",
        "--d-model=32",
        f"--output={output}",
        *options,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LESSONS_PROGRESS": "off"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step    3  loss" in done.stdout
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def script_one_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_script(tmp_path_factory.mktemp("script"), 1)


def test_script_under_torchrun_two_processes_equals_one(tmp_path, script_one_process):
    two = run_script(tmp_path, 2, "--accumulate=2")
    assert (two["world_size"], two["backend"], two["strategy"]) == (2, "gloo", "ddp")
    assert len(two["losses"]) == 3
    assert two["losses"] == pytest.approx(script_one_process["losses"], abs=1e-5)
    assert two["losses"][-1] < two["losses"][0]  # it learns
    assert two["parameter_bytes"] == script_one_process["parameter_bytes"] * 2


def test_script_under_torchrun_with_fsdp(tmp_path, script_one_process):
    sharded = run_script(tmp_path, 2, "--strategy=fsdp")
    assert sharded["losses"] == pytest.approx(script_one_process["losses"], abs=1e-5)
    assert sum(sharded["parameter_bytes"]) == script_one_process["parameter_bytes"][0]
