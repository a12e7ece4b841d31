"""A short report on the reader's environment, to check a set-up or paste into a bug report.

Used in: ``notebooks/00_getting_started.ipynb`` ("Check your environment") and ``book/setup.md``.
``import lessons`` re-exports `check_environment`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata

import torch

from lessons.core.train import default_device

__all__ = ["EnvironmentReport", "check_environment"]

#: The packages whose versions matter when something goes wrong.
PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "gensim", "jupyterquiz")


@dataclass(frozen=True)
class EnvironmentReport:
    """Versions, the device the training loop will use, and whether the data can be read."""

    python: str
    platform: str
    lessons: str
    packages: dict[str, str]
    device: str
    accelerator: str
    data_ok: bool
    data_message: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing in the report needs the reader's attention."""
        return not self.problems

    def __str__(self) -> str:
        width = max(len(name) for name in (*self.packages, "accelerator"))
        lines = [
            f"{'python':<{width}}  {self.python}",
            f"{'platform':<{width}}  {self.platform}",
            f"{'lessons':<{width}}  {self.lessons}",
        ]
        lines += [f"{name:<{width}}  {version}" for name, version in self.packages.items()]
        lines += [
            f"{'device':<{width}}  {self.device}",
            f"{'accelerator':<{width}}  {self.accelerator}",
            f"{'data':<{width}}  {self.data_message}",
        ]
        verdict = "everything looks fine" if self.ok else "problems: " + "; ".join(self.problems)
        return "\n".join([*lines, verdict])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _accelerator() -> str:
    if torch.cuda.is_available():
        return f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}"
    if torch.backends.mps.is_available():
        return "Apple MPS"
    return "none (the CPU is enough for every notebook)"


def _check_data() -> tuple[bool, str]:
    """Can the bundled corpora be found and the cache directory be written?"""
    from lessons.core import data

    missing = [name for name, path in data.bundled_files().items() if not path.is_file()]
    if missing:
        return False, f"missing bundled files: {', '.join(missing)} (reinstall gensim)"
    cache = data.cache_dir()
    try:
        with tempfile.NamedTemporaryFile(dir=cache):
            pass
    except OSError as error:
        return False, f"cache {cache} is not writable ({error}); set LESSONS_DATA_DIR"
    return True, f"bundled corpora found; cache in {cache}"


def check_environment() -> EnvironmentReport:
    """Collect the report; ``print(check_environment())`` shows it as text."""
    packages = {name: _version(name) for name in PACKAGES}
    problems = [f"{name} is not installed" for name, v in packages.items() if v == "not installed"]
    try:
        data_ok, data_message = _check_data()
    except Exception as error:  # the report must still come out, whatever broke
        data_ok, data_message = False, f"could not check the data: {error!r}"
    if not data_ok:
        problems.append(data_message)
    try:
        device = default_device()
    except ValueError as error:  # a LESSONS_DEVICE torch does not know
        device_text = f"unknown: {error}"
        problems.append(f"LESSONS_DEVICE is not a device: {error}")
    else:
        if os.environ.get("LESSONS_DEVICE"):
            device_text = f"{device} (set by LESSONS_DEVICE)"
        else:
            device_text = str(device)
    return EnvironmentReport(
        python=f"{platform.python_version()} ({sys.executable})",
        platform=platform.platform(),
        lessons=_version("lessons"),
        packages=packages,
        device=device_text,
        accelerator=_accelerator(),
        data_ok=data_ok,
        data_message=data_message,
        problems=problems,
    )
