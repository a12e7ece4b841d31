"""Chapter 6's prose says what its outputs and its saved results show.

Numbers and comparisons that stay in the prose of ``notebooks/06_reformer.ipynb`` are
checked against the committed outputs of the notebook (which nbval compares with a fresh
run where they are deterministic) and against the results the benchmarks saved
(``lessons.core.results``): re-run a benchmark, and a sentence that no longer holds fails
here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import notebook_text
import pytest

from lessons.core.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_reformer.ipynb"
MiB, GiB = 2**20, 2**30


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _paragraph(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``, with line breaks as spaces."""
    cells = [c for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(cells) == 1, (phrase, len(cells))
    return " ".join(cells[0].source.split())


def test_every_decimal_percentage_in_the_prose_is_an_output(notebook):
    outputs, prose = notebook_text.outputs(notebook), notebook_text.prose(notebook)
    percentages = set(re.findall(r"\b\d{1,3}\.\d%", prose))
    assert percentages  # the pattern finds what the chapter quotes
    missing = sorted(number for number in percentages if number not in outputs)
    assert not missing, f"numbers in the prose that no output shows: {missing}"


def test_the_notebook_has_no_placeholders_or_errors(notebook):
    assert "FIXME" not in notebook_text.prose(notebook)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", cell.source[:60]


def test_the_memory_arithmetic(notebook):
    paragraph = _paragraph(notebook, "## 1. The memory problem")
    assert "one head of one sequence is a 16 GiB matrix" in paragraph
    assert 65_536**2 * 4 == 16 * GiB
    assert "2 GB in 32-bit floats" in paragraph and 0.5e9 * 4 == 2e9
    output = notebook_text.output_of(notebook, "length, batch, d_model, d_ff, num_layers")
    assert "one layer's input                                  2.0 GiB" in output


def test_the_memory_against_depth_prose(notebook):
    memory = load_results("reformer_memory")
    paragraph = _paragraph(notebook, "The ordinary stack keeps about")
    per_block = memory["bytes_per_layer"]["plain"] / MiB
    assert f"about {per_block:.1f} MiB more for every block" in paragraph
    assert memory["saved_bytes"]["reversible"][0] == 1 * MiB and "(1 MiB)" in paragraph
    shape = memory["shape"]
    assert shape["heads"] * shape["seq"] ** 2 * 4 == 16 * MiB and "16 MiB" in paragraph
    ratios = memory["step_ratio_reversible_over_plain"]
    assert f"between {min(ratios):.1f} and {max(ratios):.1f} times" in paragraph


def test_the_chunking_prose(notebook):
    paragraph = _paragraph(notebook, "Without chunks, the peak is two copies")
    rows = load_results("reformer_attention")["feed_forward"]["rows"]
    whole, *chunked = rows
    assert whole["peak_bytes"] == 2 * whole["intermediate_bytes"] + whole["output_bytes"]
    smallest = min(row["peak_bytes"] for row in chunked)
    assert smallest >= whole["output_bytes"] and "stays above it" in paragraph


def test_the_attention_cost_prose(notebook):
    cost = load_results("reformer_attention")["attention"]
    paragraph = _paragraph(notebook, "What the measurement shows:")
    slopes = cost["slopes"]["seconds"], cost["slopes"]["peak_bytes"]
    assert "slope close to 2" in paragraph
    assert all(s["full"] > 1.85 for s in slopes)
    assert "Its slopes lie between 1 and 2" in paragraph
    assert all(1 < s[f"lsh-{r}"] < 2 for s in slopes for r in (1, 2, 4, 8))
    assert "One round is faster than materialised full attention from 1,024 tokens" in paragraph
    assert cost["crossover"]["lsh-1"] == 1024
    crossovers = [cost["crossover"][f"lsh-{r}"] for r in (1, 2, 4, 8)]
    assert crossovers == sorted(crossovers)  # more rounds cross later
    # The hash's products and their negations at 16,384 tokens, 512 buckets, 2 heads:
    assert "64 MiB per round" in paragraph and 2 * 16_384 * 512 * 4 == 64 * MiB
    eight_k = cost["lengths"].index(8192)
    fraction = {k: v[eight_k] / cost["peak_bytes"]["full"][eight_k]
                for k, v in cost["peak_bytes"].items()}  # fmt: skip
    assert "less than a tenth" in paragraph and fraction["lsh-1"] < 0.1
    assert "with 2 and 4 rounds more than an eighth" in paragraph
    assert fraction["lsh-2"] > 1 / 8 and fraction["lsh-4"] > 1 / 8
    assert "faster than LSH attention with 4 or 8 rounds at every length below 16,384" in (
        paragraph
    )
    sdpa = cost["seconds"]["sdpa"]
    for kind in ("lsh-4", "lsh-8"):
        below = [i for i, n in enumerate(cost["lengths"]) if n < 16_384]
        assert all(sdpa[i] < cost["seconds"][kind][i] for i in below)


def test_the_duplication_prose(notebook):
    duplication = load_results("reformer_duplication")
    table = duplication["table"]
    agrees = _paragraph(notebook, "What agrees with the paper:")
    assert all(table[t]["full"]["mean"] == 1.0 for t in table)
    assert "all four are perfect" in agrees
    assert all(table[t]["lsh-8"]["mean"] >= table[t]["full"]["mean"] - 0.001 for t in table)
    one_round = {t: table[t]["lsh-1"]["mean"] for t in table}
    two_rounds = {t: table[t]["lsh-2"]["mean"] for t in table}
    assert min(one_round, key=one_round.get) == "full" == min(two_rounds, key=two_rounds.get)
    lsh_trained = [one_round[t] for t in ("lsh1", "lsh2", "lsh4")]
    assert (
        f"({100 * one_round['full']:.1f}% with one round, against "
        f"{100 * min(lsh_trained):.1f}% to {100 * max(lsh_trained):.1f}%" in agrees
    )
    assert "ours rank LSH-2 > LSH-1 > LSH-4" in agrees
    assert one_round["lsh2"] > one_round["lsh1"] > one_round["lsh4"]
    paper = duplication["paper_table"]
    assert f"({paper['lsh4']['full']}%)" in agrees
    assert "3,000 steps instead of 150K" in agrees
    assert all(duplication["training"][t]["steps"] == 3000 for t in table)


def test_the_setting_of_the_duplication_runs(notebook):
    paragraph = _paragraph(notebook, "The paper trains a one-layer model")
    duplication = load_results("reformer_duplication")
    assert duplication["w"] == 63 and "$|w| = 63$ (sequences of 128, 63 symbols)" in paragraph
    assert duplication["test_sequences"] == 1024 and "1,024 new sequences" in paragraph
    assert "for 3,000 steps of 32 sequences" in paragraph


def test_the_time_to_run(notebook):
    assert "**Time to run:** under a minute on one CPU core." in notebook.cells[0].source
