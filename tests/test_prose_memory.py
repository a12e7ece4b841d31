"""Chapter 7's prose says what its outputs and its saved results show.

Claims that stay in the prose of ``notebooks/07_big_models.ipynb`` are checked against the
notebook's committed outputs and against the results ``bench/memory.py`` saved
(``lessons.core.results``): re-run the benchmark, and a sentence that no longer holds
fails here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import notebook_text
import pytest

from lessons import memory
from lessons.core.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_big_models.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _paragraph(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``, with line breaks as spaces."""
    cells = [c for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(cells) == 1, (phrase, len(cells))
    return " ".join(cells[0].source.split())


def test_the_notebook_has_no_errors(notebook):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", cell.source[:60]


def test_the_bytes_per_parameter(notebook):
    paragraph = _paragraph(notebook, "## 1. Where the memory goes")
    assert "$4 + 4 + 8 = 16$ bytes" in paragraph and "$2 + 2 + 12 = 16$ bytes" in paragraph
    assert memory.bytes_per_parameter("fp32", "adam") == (4, 4, 8)
    assert memory.bytes_per_parameter("mixed", "adam") == (2, 2, 12)
    assert "needs 24 GB" in _paragraph(notebook, "Before any activation")
    assert memory.training_memory(1.5e9, precision="fp32").total == 24e9


def test_the_measured_model_agrees_with_the_calculator(notebook):
    output = notebook_text.output_of(notebook, "torch.manual_seed(0)\nmodel = TransformerLM")
    rows = {line[:18].strip(): line[18:].split() for line in output.splitlines()[2:]}
    for name in ("parameters", "gradients", "optimizer states"):
        computed, measured = rows[name]
        assert computed == measured
    activations = float(rows["activations"][0])
    states = sum(float(rows[name][1]) for name in ("parameters", "gradients", "optimizer states"))
    assert activations > states  # "they already outweigh everything else"


def test_the_accumulation_prose(notebook):
    output = notebook_text.output_of(notebook, "def gradients_of(")
    differences = {
        line.split("'")[1]: float(line.split(":")[-1])
        for line in output.splitlines()
        if line.startswith("normalised by")
    }
    assert differences["tokens"] < 1e-6
    assert differences["micro-batches"] > 1e-2
    assert differences["none"] > differences["micro-batches"]  # "further off still"


def test_the_table_prose(notebook):
    bench = load_results("memory")
    rows = bench["rows"]
    paragraph = _paragraph(notebook, "Accumulation and checkpointing each cut the peak")
    assert rows["accumulation"]["peak_ratio"] < 0.5 and rows["checkpointing"]["peak_ratio"] < 0.5
    assert 0.2 < rows["checkpointing_accumulation"]["peak_ratio"] < 0.3
    times = [rows[k]["time_ratio"] for k in ("accumulation", "checkpointing",
                                              "checkpointing_accumulation")]  # fmt: skip
    assert "each costs time (the third column), the two together the most" in paragraph
    assert all(t > 1.0 for t in times) and times[2] == max(times)
    assert "bfloat16 saves a third of the activations" in paragraph
    assert rows["bf16"]["saved_ratio"] == pytest.approx(2 / 3, abs=0.05)
    assert "halves the time" in paragraph and rows["bf16"]["time_ratio"] == pytest.approx(
        0.5, abs=0.1
    )
    assert rows["zero_filled"]["peak_ratio"] > 1.0 and rows["offload"]["peak_ratio"] >= 1.0


def test_the_zero_figures(notebook):
    output = notebook_text.output_of(notebook, "for stage in range(4):")
    assert [line.split(":")[1].split()[0] for line in output.splitlines()] == [
        "120.0", "31.4", "16.6", "1.9",
    ]  # fmt: skip


def test_the_time_to_run(notebook):
    assert "**Time to run:** under a minute on one CPU core." in " ".join(
        notebook.cells[0].source.split()
    )
