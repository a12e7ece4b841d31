"""Chapter 4's prose says what its outputs, its models' notes and its saved results show.

Numbers that stay in the prose of ``notebooks/04_transformer.ipynb`` are checked against
the committed outputs of the notebook (which nbval compares with a fresh run where they
are deterministic), against the notes of the shipped language models and against the
results that the benches saved (``lessons.core.results``): change a model, re-run a
bench or re-execute the notebook, and a sentence that no longer holds fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import notebook_text
import pytest

from lessons import elmo, transformer
from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_transformer.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _paragraph(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``, with line breaks as spaces."""
    cells = [c for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(cells) == 1, (phrase, len(cells))
    return " ".join(cells[0].source.split())


def test_every_decimal_percentage_and_small_number_in_the_prose_is_an_output(notebook):
    outputs, prose = notebook_text.outputs(notebook), notebook_text.prose(notebook)
    percentages = set(re.findall(r"\b\d{1,3}\.\d%", prose))
    scientific = set(re.findall(r"\b\d\.\de-\d\d\b", prose))
    assert percentages and scientific  # the patterns find what the chapter quotes
    missing = [number for number in percentages | scientific if number not in outputs]
    assert not missing, f"numbers in the prose that no output shows: {sorted(missing)}"


def test_the_notebook_ran_without_placeholders(notebook):
    prose = notebook_text.prose(notebook)
    assert not re.search(r"\b[A-Z_]{2,}(VERDICT|PLACEHOLDER)\b", prose)
    assert "TIME_TO_RUN" not in prose


@pytest.mark.parametrize(
    ("phrase", "cell", "shown"),
    [
        ("its\nloss is still 3.453", "def train_steps(", "3.453"),
        ("it is at 1.233", "def train_steps(", "1.233"),
        ("found a more\nlikely one for 439", "model = smoothing_models[0.1]", "for 439 of 1000"),
        ("got 67 answers right", "greedy_outputs, beam_outputs", "greedy was wrong: 67;"),
        ("and 15 wrong", "greedy_outputs, beam_outputs", "greedy was right: 15"),
        (
            "of -10.130",
            "greedy_outputs, beam_outputs",
            "greedy:  'jbfhgjjefjge' log-probability -10.130",
        ),
        (
            "at -6.636",
            "greedy_outputs, beam_outputs",
            "beam 1:  'jbfhfjgej'    log-probability -6.636",
        ),
        ("copies 42% of the strings of 21 letters", "copy_by_length = {", "greedy: 21: 42% 22: 0%"),
        ("copies 99% at 21 letters", "copy_by_length = {", "attention: 21: 99%"),
        ("to 49% at 24 and 0% at 28", "copy_by_length = {", "24: 49% 25: 17% 26: 3% 27: 1% 28: 0%"),
        ("the repeated\n`p` at the start", "example = [pair", "'ppedqyzkcqvf'"),
    ],
)
def test_quoted_outputs_are_in_the_cell_they_come_from(notebook, phrase, cell, shown):
    assert phrase in notebook_text.prose(notebook), phrase
    output = notebook_text.output_of(notebook, cell)
    assert shown in output, (phrase, output)


def test_the_parity_prose_agrees_with_the_outputs(notebook):
    assert "Agreement to the last digits of float64, for all four" in notebook_text.prose(notebook)
    output = notebook_text.output_of(notebook, "def lengths_to_padding")
    assert output.count("< 1e-12: True") == 4 and "False" not in output
    largest = float(notebook_text.output_of(notebook, 'print("largest difference:"').split()[-1])
    assert largest < 1e-14
    fast = notebook_text.output_of(notebook, "theirs = torch_transformer()\nours")
    assert "real positions agree (< 1e-12): True" in fast
    assert "fast path all zero: True" in fast and "fast path off == ours (< 1e-12): True" in fast


def test_the_fully_masked_row_prose_counts_the_paths(notebook):
    assert "NaN on three of its paths and zeros on the other two" in notebook_text.prose(notebook)
    output = notebook_text.output_of(notebook, "torch.manual_seed(0)\nmha = nn.MultiheadAttention")
    lines = output.splitlines()
    ours = [line for line in lines if line.startswith("ours")]
    theirs = [line for line in lines if not line.startswith("ours")]
    assert len(ours) == 1 and "nan" not in ours[0]
    assert sum("nan" in line for line in theirs) == 3
    assert sum("tensor([0., 0., 0., 0.])" in line for line in theirs) == 2


def test_the_embedding_scale_prose_agrees(notebook):
    assert "their variance is a little less" in notebook_text.prose(notebook)
    output = notebook_text.output_of(notebook, "show_source(transformer.TokenEmbedding.forward)")
    variance = float(re.search(r"positional encoding:\s+variance (\d\.\d+)", output)[1])
    assert 0.4 < variance < 0.5


def test_the_adam_prose_agrees_with_the_first_step(notebook):
    output = notebook_text.output_of(notebook, "copy = tasks.copy_splits()")
    total = int(re.search(r"of ([\d,]+) parameters", output)[1].replace(",", ""))
    moved = int(re.search(r"([\d,]+) moved by the learning rate", output)[1].replace(",", ""))
    assert moved > 0.95 * total  # "nearly every parameter"
    names = output.split("rows of:")[1].split(",")
    assert {name.strip() for name in names} <= {
        "source_embedding.embedding.weight",
        "target_embedding.embedding.weight",
    }


def test_the_warmup_prose_agrees_with_the_ablation(notebook):
    paragraph = _paragraph(notebook, "Without warm-up the first update is a hundred times larger")
    output = notebook_text.output_of(notebook, "def train_steps(")
    rows = {line[:28].strip(): line[28:].split() for line in output.splitlines()[1:] if line}
    first = {name: float(values[0]) for name, values in rows.items()}
    assert 80 < first["post-norm, no warm-up"] / first["post-norm, warm-up 100"] < 125
    assert 0.1 < first["post-norm, no warm-up"] < 0.15  # "an eighth of its size"
    exact = {name: values[2] for name, values in rows.items()}
    for name, quoted in [
        ("post-norm, warm-up 100", "43.0%"),
        ("post-norm, no warm-up", "0.0%"),
        ("pre-norm, warm-up 100", "74.4%"),
        ("pre-norm, no warm-up", "7.0%"),
    ]:
        assert exact[name] == quoted and quoted in paragraph


def test_the_copy_prose_agrees_with_the_live_model(notebook):
    paragraph = _paragraph(notebook, "With its last weights the model copies")
    output = notebook_text.output_of(notebook, "def exact_match(")
    rows = {line[:43].strip(): line[43:].split() for line in output.splitlines()[1:] if line}
    assert rows["last weights, greedy"][0] == "97.8%" and "97.8%" in paragraph
    averaged = rows["average of the last 3 passes, greedy"]
    assert averaged[0] == rows["average of the last 3 passes, beam 4"][0] == "99.6%"
    assert float(averaged[0].rstrip("%")) >= 99.0
    assert averaged[1] == "4.2%" and "4.2% of the\nlong test" in notebook_text.prose(notebook)


def test_the_date_prose_agrees_with_the_saved_results():
    models = load_results("transformer_dates")["models"]
    greedy, beam = models["transformer-dates, greedy"], models["transformer-dates, beam 4"]
    quoted = {
        "98.6%": greedy["test"],
        "40.3%": greedy["long_test"],
        "25.1%": greedy["buckets"]["101-120"],
        "99.9%": models["extract-additive"]["long_test"],
        "100.0%": models["transformer-extract-convolution"]["long_test"],
        "37.4%": models["transformer-extract-sinusoidal"]["long_test"],
    }
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    paragraph = _paragraph(notebook, "Within the training lengths the Transformer trained")
    for text, value in quoted.items():
        assert text == f"{100 * value:.1f}%" and text in paragraph, text
    assert "Beam search changes almost nothing" in paragraph
    assert abs(beam["long_test"] - greedy["long_test"]) < 0.005
    assert abs(beam["test"] - greedy["test"]) < 0.005
    buckets = list(greedy["buckets"].values())
    assert buckets[-1] < buckets[3] < buckets[2]  # "falling with length"
    assert "past 40 characters it finds fewer dates than chapter 3's GRU without" in paragraph
    without = models["extract-none"]["buckets"]
    longer = [b for b in greedy["buckets"] if int(b.split("-")[0]) > 40]
    assert longer and all(greedy["buckets"][b] < without[b] for b in longer)


def test_the_language_model_prose_agrees_with_the_notes_and_chapter_2():
    notes = checkpoint_notes(transformer.pretrained_path("lm"))
    bilm = checkpoint_notes(elmo.PRETRAINED_DIR / "elmo-small.safetensors")
    chapter2 = load_results("elmo")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    paragraph = _paragraph(notebook, "The Transformer's validation perplexity is")
    forward = chapter2["bilm_validation_perplexity"]["forward"]
    trigram = chapter2["trigram_validation_perplexity"]["0.75"]["forward"]
    validation = notes["validation_perplexity_per_epoch"]
    best = min(validation)
    for text in (
        f"{notes['validation_perplexity']:.1f} after {notes['epochs']} epochs",
        f"({forward:.1f})",
        f"({trigram:.1f})",
        f"same {notes['minutes']} minutes on the same {notes['threads']} threads",
        f"{notes['parameters']:,}",
        f"{chapter2['bilm_parameters']:,}",
        f"after epoch {validation.index(best) + 1} ({best:.1f})",
        f"to {notes['train_perplexity']:.1f} at the end",
        f"On {chapter2['train_words']:,} training words",
    ):
        assert text in paragraph, text
    assert notes["validation_perplexity"] < forward < trigram  # "lower than"
    assert notes["minutes"] == bilm["minutes"] and notes["threads"] == bilm["threads"]
    assert validation[-1] > best  # "rose a little after"
    train = notes["train_perplexity_per_epoch"]
    assert all(b < a for a, b in zip(train, train[1:], strict=False))  # "kept falling"
    bilm_curve = bilm["validation_perplexity_per_epoch"]["forward"]
    assert bilm_curve[-1] < bilm_curve[-2]  # "still improving when its time ran out"
    output = notebook_text.output_of(notebook, "validation = data.wikipedia")
    assert f"measured now: {notes['validation_perplexity']:.1f}" in output


def test_the_speed_prose_agrees_with_the_saved_bench():
    speed = load_results("transformer_speed")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    layer = _paragraph(notebook, "Our layer, written to be read")
    ratios = speed["layer"]["ratio_ours_over_torch"]
    for mode, text in [
        ("forward (train)", "1.29 times"),
        ("forward + backward", "1.09 times"),
        ("forward (eval, no_grad)", "1.13 times"),
    ]:
        assert f"{ratios[mode]:.2f} times" == text and text in layer
    kernels = speed["layer"]["torch_kernels"]
    assert kernels["eval no_grad: aten::_transformer_encoder_layer_fwd"]
    assert kernels["train: aten::_scaled_dot_product_flash_attention_for_cpu"]

    paragraph = _paragraph(notebook, "Up to 128 positions the Transformer's step")
    recurrence = speed["recurrence"]
    lengths = recurrence["lengths"]
    lstm = recurrence["ratio_over_transformer"]["LSTM"]
    projection = recurrence["ratio_over_transformer"]["LSTM, projection"]
    up_to_128 = [i for i, n in enumerate(lengths) if 32 <= n <= 128]
    assert all(0.95 <= lstm[i] <= 1.05 for i in up_to_128)  # "within 5%"
    assert lstm[0] > 1  # "less at 16"
    assert all(projection[i] > 1 for i, n in enumerate(lengths) if n <= 128)
    assert 1.8 < 1 / lstm[-1] < 2.3 and projection[-1] < 1  # at 512
    slopes = recurrence["loglog_slope"]
    assert f"slope {slopes['transformer']['from 64']:.2f}" in paragraph
    assert f"against {slopes['LSTM']['from 64']:.2f} for the plain" in paragraph
    steps = recurrence["step_ms"]
    assert steps["nn.TransformerEncoder"][-1] < steps["transformer"][-1]
    assert steps["nn.TransformerEncoder"][-1] > steps["LSTM"][-1]

    path = _paragraph(notebook, "What the Transformer changes is the path")
    matmuls = speed["path_length"]["matmuls"]
    assert set(matmuls["transformer"]) == {12} and "12 matrix multiplications" in path
    assert matmuls["LSTM, by position"] == [n + 1 for n in lengths]
    assert matmuls["LSTM, projection, by position"] == [2 * (n + 1) for n in lengths]
    assert f"({matmuls['LSTM, by position'][-1]} at {lengths[-1]} positions)" in path
