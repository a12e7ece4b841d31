"""Chapter 3's prose says what its outputs and saved results show.

Numbers that stay in the prose of ``notebooks/03_attention.ipynb`` are checked against
the committed outputs of the notebook (which nbval compares with a fresh run) and
against the results that the benches saved (``lessons.core.results``): change a model,
re-run a bench or re-execute the notebook, and a sentence that no longer holds fails
here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import notebook_text
import pytest

from lessons.core.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_attention.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _paragraph(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``, with line breaks as spaces."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    return " ".join(cell.source.split())


def test_every_measured_percentage_and_small_number_in_the_prose_is_an_output(notebook):
    outputs = notebook_text.outputs(notebook)
    prose = notebook_text.prose(notebook)
    percentages = set(re.findall(r"\b\d{1,3}\.\d%", prose))
    scientific = set(re.findall(r"\b\d\.\de-\d\d\b", prose))
    assert percentages and scientific  # the patterns find what the chapter quotes
    missing = [number for number in percentages | scientific if number not in outputs]
    assert not missing, f"numbers in the prose that no output shows: {sorted(missing)}"


@pytest.mark.parametrize(
    ("phrase", "cell", "shown"),
    [
        ("a weight of 0.983", "def characters(text):", "largest weight 0.983, on character 30 '5'"),
        ("the other 58 reach", "def characters(text):", "'Sunday, September the 29th, 1957"),
        ("one of 6 letters 82% of the time", "fig, ax = plt.subplots()\ncopy_results", "6: 82%"),
        ("from 99% at 21 letters to 0 at\n28", "fig, (left, right)", "21: 99%"),
        ("the mean 1.48", 'print(f"{\'d_k\':>5}" + "".join(f"{name:>22}"', "2.2e-04 (1.48)"),
        ("(0.27 and 0.29 at $d_k = 1024$)", 'print(f"{\'d_k\':>5}" + "".join', "2.7e-01 (0.29)"),
        ("is 0.066 at\n$d_k = 1024$", "print(f\"{'d_k':>5}   largest weight:\"", "0.066"),
        ("62% of the queries", "unscaled = figures.attention_gradients", "62% of the queries"),
        ("11% of the queries", "unscaled = figures.attention_gradients", "11% of the queries"),
        ("receive 78% of all\nthe gradient", "unscaled = figures.attention_", "78% of all"),
        ("took\n151 s and 61 s", "timing = load_results", "convolution: 626 steps in 151 s"),
        ("took\n151 s and 61 s", "timing = load_results", "sinusoidal: 626 steps in 61 s"),
        ("general score took 38 s", "timing = load_results", "extract-general: 626 steps in 38 s"),
        ("additive score 91 s", "timing = load_results", "extract-additive: 626 steps in 91 s"),
    ],
)
def test_quoted_outputs_are_in_the_cell_they_come_from(notebook, phrase, cell, shown):
    assert phrase in notebook_text.prose(notebook)
    output = notebook_text.output_of(notebook, cell)
    assert shown in output, (phrase, output)


def test_the_additive_variance_stays_in_the_quoted_range(notebook):
    assert "between 0.05 and 0.15" in notebook_text.prose(notebook)
    output = notebook_text.output_of(
        notebook, 'for d_k in figures.DEFAULT_D_KS:\n    print(f"d_k = '
    )
    variances = [float(v) for v in re.findall(r"= (\d\.\d{3})", output)]
    assert len(variances) == 6 and all(0.05 <= v <= 0.15 for v in variances), variances
    dot = notebook_text.output_of(notebook, "print(f\"{'d_k':>5} {'Var[q·k]'")
    assert 900 < float(dot.splitlines()[-1].split()[1]) < 1100  # "about 1,000"


def test_the_timing_prose_agrees_with_the_saved_step_times(notebook):
    paragraph = _paragraph(notebook, "is *not* faster per step")
    assert "slower at every length" in paragraph
    assert "the gap narrows as the sources grow" in paragraph
    timing = load_results("seq2seq")["step_ms_by_length"]
    assert timing["lengths"] == [20, 40, 80, 120]
    pairs = zip(timing["extract-additive"], timing["transformer-extract-convolution"], strict=True)
    ratios = [transformer / additive for additive, transformer in pairs]
    assert all(ratio > 1 for ratio in ratios), timing
    assert ratios[-1] < ratios[0], ratios
    output = notebook_text.output_of(notebook, "timing = load_results")
    for ms in timing["transformer-extract-convolution"]:
        assert f"{ms:.0f}" in output  # the notebook shows the saved numbers


def test_the_parity_and_speed_prose_agrees_with_the_saved_bench(notebook):
    paragraph = _paragraph(notebook, "Each error is for what it measures")
    bench = load_results("attention")
    largest = bench["largest_parity_error"]
    assert set(largest) == {"scaled_dot_product_attention", "tiled_attention", "MultiHeadAttention"}
    assert "a few units in the 7th digit" in paragraph
    for function in largest.values():
        assert 1e-8 < function["float32"]["error"] < 1e-6
        assert function["float64"]["error"] < 1e-14
    ms = bench["speed"]["median_ms"]
    assert "slower than `nn.MultiheadAttention`" in paragraph
    for ours, theirs in [
        ("ours MHA, need_weights=True", "torch MHA, need_weights=True"),
        ("ours MHA, need_weights=False", "torch MHA, need_weights=False"),
    ]:
        assert ms[ours] > ms[theirs]
    assert "the fastest by far" in paragraph
    fastest = ms["torch F.scaled_dot_product_attention"]
    assert all(
        fastest < 0.5 * value for name, value in ms.items() if not name.startswith("torch F")
    )
    output = notebook_text.output_of(notebook, "bench = load_results")
    assert f"float32 {largest['scaled_dot_product_attention']['float32']['error']:.1e}" in output


def test_the_position_prose_agrees_with_the_saved_accuracies(notebook):
    models = load_results("seq2seq")["models"]
    convolution = models["transformer-extract-convolution"]
    both = models["transformer-extract-convolution-sinusoidal"]
    alone = models["transformer-extract-sinusoidal"]
    assert convolution["parameters"] == both["parameters"] > alone["parameters"]
    assert convolution["steps"] == both["steps"] and alone["steps"] == 3 * both["steps"]
    paragraph = _paragraph(notebook, "With positions the only change")
    quoted = [f"{100 * m[key]:.1f}%" for m in (both, convolution) for key in ("test", "long_test")]
    assert all(q in paragraph for q in quoted), quoted
    # "cost a little on the longer texts": lower beyond the training lengths, by little
    assert "cost a little on the longer texts" in paragraph
    assert convolution["long_test"] - 0.03 < both["long_test"] < convolution["long_test"]
    assert abs(both["test"] - convolution["test"]) < 0.005  # and nothing within them
    assert f"{100 * alone['test']:.1f}%" in paragraph
    assert f"{100 * alone['long_test']:.1f}%" in paragraph
    assert alone["long_test"] < alone["test"] - 0.5  # "falling with length" beyond training
    falling = list(alone["buckets"].values())[3:]  # 41-60, 61-80, 81-100, 101-120
    assert falling == sorted(falling, reverse=True), alone["buckets"]
    shown = notebook_text.output_of(
        notebook, 'fig, ax = plt.subplots(figsize=(7, 4))\nchosen = {\n    "conv'
    )
    for label in ("convolutions", "convolutions + sinusoidal", "sinusoidal only (3x the steps)"):
        (line,) = [line for line in shown.splitlines() if line.startswith(f"{label}: ")]
        assert line.split(": ")[1].split("%")[0] + "%" in paragraph, line


def test_the_bottleneck_prose_agrees_with_the_saved_accuracies(notebook):
    models = load_results("seq2seq")["models"]
    small, wide = models["extract-none"], models["extract-none-48"]
    paragraph = _paragraph(notebook, "The limit moved with the size of the network")
    for model in (small, wide):
        assert f"{100 * model['test']:.1f}%" in paragraph
    assert f"{100 * wide['long_test']:.1f}%" in paragraph
    assert wide["test"] > small["test"] + 0.2
