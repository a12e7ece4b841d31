"""scripts/gpu_memory_check.py on a machine without a GPU: it says so, exits with status 0 and
writes nothing; its parts that need no GPU (the model, the calculator's prediction, the
training step of each trick, the report) are run on the CPU with a tiny model. The
prediction is checked against the bytes of the tensors a float32 Adam step leaves behind,
the CPU's version of the GPU script's check; every float32 trick is checked to train exactly
as the baseline does, against torch.optim.Adam on the whole batch."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lessons.core.results import RESULTS_DIR
from lessons.memory import OffloadedAdam, optimizer_state_bytes

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_memory_check.py"
TINY = dict(vocab_size=32, d_model=16, num_heads=2, num_layers=2, ff_dim=32, batch=4, seq=8)


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_memory_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def snapshot(path: Path) -> tuple[bool, bytes]:
    return (path.exists(), path.read_bytes() if path.exists() else b"")


def test_without_cuda_it_says_so_exits_0_and_writes_nothing(script):
    outputs = [script.REPORT, RESULTS_DIR / "gpu_memory.json"]
    before = [snapshot(path) for path in outputs]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here; nothing measured, nothing written" in done.stdout
    assert [snapshot(path) for path in outputs] == before
    assert not list(RESULTS_DIR.glob(".gpu_memory.*"))  # no half-written file either


def test_the_model_has_about_168_million_parameters_as_the_docstring_says(script):
    with torch.device("meta"):  # shapes only: no memory, no time
        model = script.build_model(script.CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    assert 167.5e6 < n_params < 168.5e6
    assert script.static_prediction(model) == 16 * n_params


def test_the_prediction_is_the_bytes_a_float32_adam_step_leaves(script):
    """After one step: weights, gradients, Adam's two states, 16 bytes per parameter; the
    only other state is Adam's one-value ``step`` per parameter tensor (on the CPU, so the
    GPU script's measurement does not see it)."""
    model = script.build_model(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    trick = script.Trick("no zero_grad", set_to_none=False)
    script.run_step(model, script.random_batch(TINY, torch.device("cpu")), optimizer, trick)
    parameters = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in parameters)
    gradients = sum(p.grad.numel() * p.grad.element_size() for p in parameters)
    states = optimizer_state_bytes(optimizer)["cpu"] - 4 * len(parameters)
    assert weights + gradients + states == script.static_prediction(model)
    assert gradients == weights  # zeroed, not freed: set_to_none=False keeps them


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that keeps a copy of the gradients of every step it takes."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model.parameters(), lr=0.1)
        self.gradients: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        self.gradients.append([p.grad.clone() for p in params])
        return super().step(closure)


def train(script, trick, *, steps: int = 3, dropout: float = 0.0, optimizer=None):
    """``steps`` steps of `run_step` on the tiny model: ``(parameters, losses, optimizer)``."""
    model = script.build_model(TINY, dropout=dropout)
    optimizer = (optimizer or (lambda m: script.make_optimizer(m, trick)))(model)
    scaler = torch.amp.GradScaler("cpu") if trick.scaler else None
    losses = [
        script.run_step(
            model, script.random_batch(TINY, torch.device("cpu"), seed), optimizer, trick, scaler
        )[0]
        for seed in range(steps)
    ]
    return [p.detach().clone() for p in model.parameters()], losses, optimizer


def named(script, name: str):
    return next(t for t in script.TRICKS if t.name == name)


def test_the_first_row_is_the_baseline_and_the_names_are_unique(script):
    assert script.TRICKS[0] == script.Trick("fp32 Adam")
    assert len({t.name for t in script.TRICKS}) == len(script.TRICKS) == 7


@pytest.mark.parametrize(
    ("name", "dropout"),
    [
        ("accumulation 4", 0.0),  # with dropout, micro-batches of another shape draw other masks
        ("checkpointing", 0.0),
        ("checkpointing", 0.1),  # the random state is replayed
        ("set_to_none=False", 0.0),
        ("set_to_none=False", 0.1),
    ],
)
def test_each_float32_trick_gives_the_baselines_gradients_at_every_step(script, name, dropout):
    """Three SGD steps of the baseline and of the trick: the same gradients at each."""
    _, losses, baseline = train(script, script.TRICKS[0], dropout=dropout, optimizer=RecordingSGD)
    _, other_losses, other = train(
        script, named(script, name), dropout=dropout, optimizer=RecordingSGD
    )
    assert other_losses == pytest.approx(losses, abs=1e-6)
    for step, (grads, other_grads) in enumerate(
        zip(baseline.gradients, other.gradients, strict=True)
    ):
        for g, h in zip(grads, other_grads, strict=True):
            assert torch.allclose(g, h, rtol=0, atol=1e-6), (name, step)


def test_adam_on_the_cpu_steps_as_torch_adam_does(script):
    reference, losses, _ = train(script, script.TRICKS[0])
    parameters, other_losses, optimizer = train(script, named(script, "Adam on the CPU"))
    assert isinstance(optimizer, OffloadedAdam)
    assert other_losses == pytest.approx(losses, abs=1e-6)
    for p, q in zip(reference, parameters, strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)
    assert not torch.equal(reference[0], script.build_model(TINY).embedding.weight)


@pytest.mark.parametrize("name", ["bf16 autocast", "fp16 autocast + GradScaler"])
def test_mixed_precision_tricks_follow_float32_within_0_02_nats(script, name):
    _, reference, _ = train(script, script.TRICKS[0])
    _, losses, _ = train(script, named(script, name))
    assert losses == pytest.approx(reference, abs=0.02)


def test_the_report_lays_out_the_check_and_each_trick_against_the_first(script):
    static = {
        "n_params": 1_000,
        "predicted_bytes": 16_000,
        "measured_bytes": 16_800,
        "relative_difference": 0.05,
    }
    rows = [
        {
            "trick": name,
            "peak_bytes": peak,
            "held_bytes": 4e9,
            "state_bytes_on_gpu": states,
            "median_seconds": seconds,
            "skipped_steps": skipped,
        }
        for name, peak, states, seconds, skipped in [
            ("fp32 Adam", 10e9, 2e9, 0.1, 0),
            ("Adam on the CPU", 8e9, 0, 0.4, 0),
            ("fp16 autocast + GradScaler", 5e9, 2e9, 0.05, 1),
        ]
    ]
    report = script.format_report(["title", "GPU: a test"], static, rows)
    lines = report.splitlines()
    assert lines[:2] == ["title", "GPU: a test"]
    assert "   difference +5.00% (within 15%)" in lines
    assert lines[lines.index("2. one training step with each trick") + 2].split() == [
        "fp32",
        "Adam",
        "10.00",
        "1.00",
        "4.00",
        "2.00",
        "100",
        "1.00",
        "0",
    ]
    assert lines[lines.index("2. one training step with each trick") + 3].split()[-6:] == [
        "0.80",
        "4.00",
        "0.00",
        "400",
        "4.00",
        "0",
    ]
    assert report.endswith("\n")
    off = script.format_report([], {**static, "relative_difference": -0.2}, rows)
    assert "   difference -20.00% (NOT within 15%)" in off.splitlines()


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not")
def test_the_measuring_path_runs_with_cudas_counters_stubbed(script, monkeypatch):
    """The GPU path on the CPU, CUDA's memory counters replaced by fixed numbers: every trick
    runs through `measure_trick`, the rows are JSON without inf or nan, and the report is
    laid out. The numbers themselves need a GPU."""
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *args: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *args: 1_000)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *args: 3_000)
    cpu = torch.device("cpu")
    static = script.measure_static(TINY, cpu)
    assert static["measured_bytes"] == 0 and static["relative_difference"] == -1
    rows = [script.measure_trick(t, TINY, cpu, steps=2, warmup=1) for t in script.TRICKS]
    json.dumps(rows, allow_nan=False)
    assert [row["trick"] for row in rows] == [t.name for t in script.TRICKS]
    assert {(row["peak_bytes"], row["held_bytes"]) for row in rows} == {(2_000, 0)}
    assert all(len(row["losses"]) == 2 and row["median_seconds"] > 0 for row in rows)
    states = {row["trick"]: row["state_bytes_on_gpu"] for row in rows}
    parameters = list(script.build_model(TINY).parameters())
    n_params = sum(p.numel() for p in parameters)
    # on the CPU the "GPU" is the CPU: Adam's states beside the weights, the master copies too
    assert states["fp32 Adam"] == 8 * n_params + 4 * len(parameters)
    assert states["Adam on the CPU"] == 12 * n_params + 4 * len(parameters)
    report = script.format_report([], static, rows).splitlines()
    assert [line[:28].rstrip() for line in report[10:17]] == [t.name for t in script.TRICKS]
