"""check_environment: a report a learner can paste into a bug report.

The tests pretend to be a machine of their choosing (torch's CUDA and MPS checks patched,
``LESSONS_DEVICE`` unset), so they pass alike on a CPU, with CUDA, on Apple's MPS and
with ``LESSONS_DEVICE`` exported by the caller.
"""

import re
from importlib import metadata

import pytest
import torch

import lessons
from lessons import check_environment
from lessons.core import data


@pytest.fixture(autouse=True)
def machine(monkeypatch):
    """A CPU-only machine, and ``machine(cuda=..., mps=...)`` to pretend to have more."""

    def pretend(*, cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Pretend GPU")
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    monkeypatch.delenv("LESSONS_DEVICE", raising=False)
    pretend()
    return pretend


def test_report_lists_versions_device_and_data():
    report = check_environment()
    assert report.packages["torch"] == metadata.version("torch")
    assert report.packages["ipywidgets"] == metadata.version("ipywidgets")
    assert report.lessons == lessons.__version__
    assert report.device == "cpu"
    assert report.data_ok and report.ok
    assert str(data.cache_dir()) in report.data_message
    text = str(report)
    assert re.search(rf"^torch +{re.escape(metadata.version('torch'))}$", text, re.MULTILINE)
    assert re.search(r"^device +cpu$", text, re.MULTILINE)
    assert text.endswith("everything looks fine")


@pytest.mark.parametrize(
    ("cuda", "mps", "device", "accelerator"),
    [
        (False, False, "cpu", "none (the CPU is enough for every notebook)"),
        (False, True, "mps", "Apple MPS"),
        (True, False, "cuda", f"CUDA {torch.version.cuda}: Pretend GPU"),
        (True, True, "cuda", f"CUDA {torch.version.cuda}: Pretend GPU"),
    ],
    ids=["cpu", "mps", "cuda", "cuda-before-mps"],
)
def test_report_names_the_device_the_training_loop_uses(machine, cuda, mps, device, accelerator):
    machine(cuda=cuda, mps=mps)
    report = check_environment()
    assert report.device == device
    assert report.accelerator == accelerator


def test_report_names_missing_data(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "bundled_files", lambda: {"wikipedia": tmp_path / "missing.bz2"})
    report = check_environment()
    assert not report.ok and not report.data_ok
    assert "missing bundled files: wikipedia" in str(report)


def test_report_says_when_the_device_is_overridden(machine, monkeypatch):
    machine(cuda=True)  # the variable wins over the GPU
    monkeypatch.setenv("LESSONS_DEVICE", "cpu")
    assert check_environment().device == "cpu (set by LESSONS_DEVICE)"


def test_report_names_a_device_torch_does_not_know(monkeypatch):
    monkeypatch.setenv("LESSONS_DEVICE", "gpu0")
    report = check_environment()  # a report, not an exception: it is what a bug report needs
    assert not report.ok
    assert report.device.startswith("unknown: device: expected 'cpu', 'cuda'")
    assert any(problem.startswith("LESSONS_DEVICE is not a device") for problem in report.problems)


def test_report_survives_a_broken_check(monkeypatch):
    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data, "cache_dir", broken)
    report = check_environment()
    assert "disk on fire" in report.data_message and not report.ok
