"""Re-execute the book's notebooks in place, so that the committed outputs are fresh.

Usage (what ``make execute`` runs)::

    .venv/bin/python scripts/execute_notebooks.py notebooks/*.ipynb

With ``--no-write`` the notebooks are executed and nothing is written: an error in any
cell fails the run, while outputs that differ from the committed ones do not (what the
CI job on Colab's versions runs).

Each notebook runs top to bottom with nbclient in a fresh kernel of *this*
interpreter (``sys.executable``, i.e. the venv's Python, whatever kernelspecs the
machine has installed), in the notebook's own folder. Each notebook records the
exercises it passes in a progress file of its own, in a temporary folder, so that the
page shows what a reader sees and nothing is written to the user's real progress.
Widget state is stored in the notebook so that the site can render the widgets.
Seeding is the notebooks' own job.

After a successful run the notebook is normalised (kernelspec ``python3``, no
per-cell ``execution`` timing metadata) and written back with its outputs; all
other cell metadata is kept, notably the tags that nbval (``nbval-skip``,
``nbval-check-output``) and the site (``hide-cell``) read. A
notebook that fails is left untouched; the script goes on with the others, then
exits with status 1 naming each failed notebook and cell.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal, CellExecutionError, DeadKernelError

KERNEL_NAME = "python3"
KERNELSPEC_METADATA = {
    "name": KERNEL_NAME,
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}
DEFAULT_CELL_TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ThisPythonKernelSpecs(KernelSpecManager):
    """Resolves the ``python3`` kernel to an ipykernel of the running interpreter.

    A user- or system-wide ``python3`` kernelspec may point at another Python; the
    notebooks must run in the environment that has ``lessons`` and the pinned
    versions, so that one is never consulted.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != KERNEL_NAME:
            return super().get_kernel_spec(kernel_name)
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=KERNELSPEC_METADATA["display_name"],
            language="python",
            metadata={"debugger": True},
        )


@dataclass
class Failure:
    notebook: Path
    cell_index: int | None
    message: str

    def __str__(self) -> str:
        where = f"cell {self.cell_index}" if self.cell_index is not None else "kernel"
        return f"{self.notebook}: {where}: {self.message}"


def normalise(nb: nbformat.NotebookNode) -> None:
    """Set the kernelspec to python3 and drop per-cell execution timing metadata."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC_METADATA)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def _first_line(source: str) -> str:
    lines = [line for line in source.strip().splitlines() if line.strip()]
    return lines[0][:80] if lines else ""


def execute_notebook(path: Path, cell_timeout_s: int, write: bool = True) -> Failure | None:
    """Execute one notebook (in place if ``write``); returns the failure, or None on success."""
    nb = nbformat.read(path, as_version=4)
    current: dict[str, int | None] = {"index": None}

    def on_cell_start(cell: nbformat.NotebookNode, cell_index: int) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=cell_timeout_s,
        kernel_name=KERNEL_NAME,
        km=KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ThisPythonKernelSpecs()),
        resources={"metadata": {"path": str(path.parent.resolve())}},
        store_widget_state=True,
        record_timing=False,
        allow_errors=False,
        on_cell_start=on_cell_start,
    )
    try:
        client.execute()
    except (CellExecutionError, CellControlSignal, DeadKernelError, TimeoutError) as error:
        index = current["index"]
        summary = ANSI_ESCAPE.sub("", str(error)).strip().splitlines()
        detail = next((line for line in reversed(summary) if line.strip()), type(error).__name__)
        if index is not None:
            detail = f"{_first_line(nb.cells[index].source)!r}: {detail}"
        return Failure(path, index, detail)

    if write:
        normalise(nb)
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to execute in place")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_CELL_TIMEOUT_S,
        help=f"per-cell timeout in seconds (default {DEFAULT_CELL_TIMEOUT_S})",
    )
    parser.add_argument(
        "--no-write",
        dest="write",
        action="store_false",
        help="execute only: fail on a cell's error, write nothing, compare no outputs",
    )
    args = parser.parse_args(argv)

    os.environ.pop("LESSONS_PROGRESS", None)  # progress on, in a throwaway file (below)
    scratch = tempfile.TemporaryDirectory(prefix="lessons-progress-")
    mode = "" if args.write else "; executing only, nothing is written"
    print(f"Kernel: {sys.executable} (ipykernel), per-cell timeout {args.timeout} s{mode}")

    failures: list[Failure] = []
    start_all = time.perf_counter()
    for path in args.notebooks:
        if not path.is_file():
            failures.append(Failure(path, None, "no such notebook"))
            continue
        # inherited by this notebook's kernel: a fresh progress file per notebook
        os.environ["LESSONS_PROGRESS_FILE"] = str(Path(scratch.name) / f"{path.stem}.json")
        start = time.perf_counter()
        failure = execute_notebook(path, args.timeout, args.write)
        elapsed = time.perf_counter() - start
        status = "ok" if failure is None else "FAILED"
        print(f"{status:>6}  {elapsed:7.1f} s  {path}", flush=True)
        if failure is not None:
            failures.append(failure)

    scratch.cleanup()
    total = time.perf_counter() - start_all
    print(f"{len(args.notebooks)} notebook(s) in {total:.1f} s, {len(failures)} failed")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
