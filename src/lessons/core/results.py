"""Measured results that the chapters quote, shipped inside the package.

A benchmark or training script measures something once (``bench/*.py``,
``scripts/*.py``) and saves the numbers with `save_results`; a chapter reads them with
`load_results` in a cell the reader can see, so a number in the prose always comes from
an output, never from memory, and the notebook works where only the package is
installed (on Colab, say). The human-readable report of each benchmark stays in
``bench/results/``::

    save_results("attention", {"float32_max_error": 3.6e-7}, command="bench/attention.py")
    load_results("attention")["float32_max_error"]      # 3.6e-07
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lessons.core import checks

__all__ = ["RESULTS_DIR", "load_results", "result_names", "save_results"]

#: Where the results live: inside the installed package, so a pip install has them.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def result_names() -> list[str]:
    """The names `load_results` accepts, sorted."""
    return sorted(path.stem for path in RESULTS_DIR.glob("*.json"))


def save_results(name: str, results: Mapping[str, Any], *, command: str) -> Path:
    """Write ``results`` (JSON-serialisable) as ``<name>.json``, with the ``command`` that
    produced them, the date and the Python and torch versions; returns the file's path.

    The file is replaced atomically, so a reader never sees half of it.
    """
    import torch

    checks.nonempty_str("name", name)
    checks.nonempty_str("command", command)
    record = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "results": dict(results),
    }
    text = json.dumps(record, indent=1, sort_keys=False, allow_nan=False) + "\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    descriptor, part = tempfile.mkstemp(dir=RESULTS_DIR, prefix=f".{name}.", suffix=".part")
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(part, path)
    return path


def load_results(name: str) -> dict[str, Any]:
    """The ``results`` saved under ``name``; the command, date and versions are under
    the key ``"_about"``. An unknown name raises a ValueError that lists the known ones."""
    checks.nonempty_str("name", name)
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"name: expected one of {result_names()}, got {name!r}")
    record = json.loads(path.read_text(encoding="utf-8"))
    about = {key: value for key, value in record.items() if key != "results"}
    return {**record["results"], "_about": about}
