"""Chapter 5's prose says what its outputs and its saved results show.

Numbers that stay in the prose of ``notebooks/05_bert.ipynb`` are checked against the
committed outputs of the notebook (which nbval compares with a fresh run where they are
deterministic) and against the results that the scripts saved (``lessons.core.results``):
re-run a script or re-execute the notebook, and a sentence that no longer holds fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import notebook_text
import pytest

from lessons.core.results import load_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_bert.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def _paragraph(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``, with line breaks as spaces."""
    cells = [c for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(cells) == 1, (phrase, len(cells))
    return " ".join(cells[0].source.split())


def _rows(output: str, width: int) -> dict[str, list[str]]:
    """A printed table as {label (the first ``width`` characters, stripped): the rest split}."""
    return {line[:width].strip(): line[width:].split() for line in output.splitlines() if line}


def test_every_decimal_percentage_in_the_prose_is_an_output(notebook):
    outputs, prose = notebook_text.outputs(notebook), notebook_text.prose(notebook)
    percentages = set(re.findall(r"\b\d{1,3}\.\d%", prose))
    assert percentages  # the pattern finds what the chapter quotes
    missing = sorted(number for number in percentages if number not in outputs)
    assert not missing, f"numbers in the prose that no output shows: {missing}"


def test_the_notebook_has_no_placeholders_or_errors(notebook):
    assert "FIXME" not in notebook_text.prose(notebook)
    for cell in notebook.cells:
        assert "FIXME" not in cell.source
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", cell.source[:60]


def test_the_read_back_prose_agrees(notebook):
    paragraph = _paragraph(notebook, "For positions 0 to 127, the length of most sentences")
    output = notebook_text.output_of(notebook, "def read_back(")
    short, long = output.split("positions 0-511:")
    for name, value in [("token", "96.4%"), ("segment", "99.6%"), ("position", "72.4%")]:
        assert f"{name}: {value}" in short and value in paragraph
    assert "within 2 places: 98.0%" in short and "(98.0% within two places)" in paragraph
    assert "position: 30.7%" in long and "segment: 92.4%" in long
    assert "drops to 30.7% and the segment to 92.4%" in paragraph


def test_the_vocabulary_prose_agrees(notebook):
    paragraph = _paragraph(notebook, "A smaller vocabulary cuts more words")
    output = notebook_text.output_of(notebook, 'vocabularies = load_results("wordpiece")')
    assert "'photosynthesis': 7, 'photosynthetic': 8, 'wikipedia': 0" in output
    assert "*photosynthesis* 7 times and *photosynthetic* 8 times" in paragraph
    assert "photosynth ##esis" in output and "photos ##yn ##thesis" in output
    assert "w ##ik ##ip ##ed ##ia" in output
    assert re.search(r"wikipedia: .+\s+wikipedia\n", output)  # MiniLM keeps it whole
    assert re.search(r"neuroscience: .+\s+neuroscience\n", output)


def test_the_contextual_prose_agrees(notebook):
    paragraph = _paragraph(notebook, "MiniLM's layer 0 is not 1.00, unlike ELMo's")
    output = notebook_text.output_of(
        notebook, "from lessons.figures.elmo import layer_similarities"
    )
    rows = {line[:46].strip(): line[46:].split() for line in output.splitlines()[1:] if line}
    top = {label: (values[6], values[-1]) for label, values in rows.items()}  # MiniLM 6, ELMo 2
    quoted = {"play": 0, "power": 2, "plant": 4}
    for word in quoted:
        same, other = [top[label] for label in top if label.startswith(word)]
        assert f"{same[0]} against {other[0]}, and {same[1]} against {other[1]}" in paragraph
        assert float(same[0]) > float(other[0])  # "falls below ... in every pair"
    assert all(float(values[0]) < 1.0 for values in rows.values())
    assert all(values[7] == "1.00" for values in rows.values())  # ELMo's layer 0


def test_the_word_sense_prose_agrees(notebook):
    paragraph = _paragraph(notebook, "Here the two models part ways")
    output = notebook_text.output_of(notebook, "from lessons.figures.elmo import WORD_SENSES")
    accuracy = {
        line.split(":")[0].strip(): float(line.split(":")[1].split()[0])
        for line in output.splitlines()
        if line.strip()
    }
    elmo = [accuracy[f"ELMo layer {k}"] for k in range(3)]
    minilm = [accuracy[f"MiniLM layer {k}"] for k in range(7)]
    assert "about two times in three" in paragraph and 0.6 < max(elmo) < 0.72
    assert "more than nine times in ten" in paragraph and min(minilm[1:]) > 0.9
    assert "the middle layers best" in paragraph
    assert max(minilm) in minilm[2:6] and max(minilm) > minilm[6] and max(minilm) > minilm[1]
    assert "near one half" in paragraph and abs(minilm[0] - 0.5) < 0.1 and abs(elmo[0] - 0.5) < 0.1


def test_the_head_prose_agrees(notebook):
    positional = _paragraph(notebook, "One head of layer 1 attends to the previous token")
    output = notebook_text.output_of(notebook, 'texts = [" ".join(s)')
    assert "previous token  layer 1 head  3: 1.00" in output
    assert "next token  layer 2 head  9: 0.80" in output and "(the best, 0.80)" in positional
    assert re.search(r"\[CLS\]  layer \d head +\d+: 1.00 +20\n", output)
    assert "20 of the 72 heads" in positional

    syntax = _paragraph(notebook, "Some heads follow grammar far better than position does")
    table = notebook_text.output_of(notebook, "parsed = [[item.split")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    head = {name: round(100 * float(row[3])) for name, row in rows.items()}
    offset = {name: round(100 * float(row[-1])) for name, row in rows.items()}
    for name, sentence in [
        (
            "det",
            f"noun {head['det']}% of the time, where the best fixed offset (the next word) "
            f"manages {offset['det']}%",
        ),
        ("nsubj", f"verb {head['nsubj']}% of the time against {offset['nsubj']}%"),
        ("obj", f"verb {head['obj']}% of the time against {offset['obj']}%"),
        ("any", f"reaches {head['any']}% against {offset['any']}%"),
    ]:
        assert sentence in syntax, name
    assert rows["det"][2].startswith("L3H9") and "layer 3 head 4" in syntax
    assert rows["nsubj"][2] == "L3H4/L3H4" and rows["obj"][2] == "L3H1/L3H1"
    assert head["amod"] == offset["amod"] == 100  # "matches the offset and cannot beat it"
    assert head["obl"] < offset["obl"]  # "do worse than the best offset"
    words = [int(row[1]) for row in rows.values() if row[0] != "any"]
    assert "With 14 to 46 words per relation" in syntax and (min(words), max(words)) == (14, 46)
    errors = [float(row[5]) for row in rows.values()]
    assert "reach 12 points" in syntax and max(errors) == 0.12


def test_the_pretraining_prose_agrees(notebook):
    paragraph = _paragraph(notebook, "This is a negative result. After its half hour")
    saved = load_results("bert_pretraining")
    accuracy = saved["blanks"]["accuracy"]
    assert abs(accuracy["bert"] - accuracy["most_frequent"]) < 0.01  # "about as often"
    assert 2.2 < accuracy["bilm"] / accuracy["bert"] < 2.7  # "two and a half times"
    assert abs(saved["nsp"]["nsp_accuracy"] - 0.5) < 0.02  # "at chance on held-out pairs"
    assert max(point["nsp_accuracy"] for point in saved["curve"]) > 0.6  # "rose above chance"
    assert "tens of thousands of times more tokens" in _paragraph(notebook, "Three things to keep")
    ratio = notebook_text.output_of(notebook, 'tiny, tiny_tokenizer = bert.load_pretrained("tiny")')
    share = int(re.search(r"that is 1/([\d,]+) of BERT-base", ratio)[1].replace(",", ""))
    assert 10_000 < share < 100_000
    assert "on twice the threads" in paragraph
    output = notebook_text.output_of(notebook, "blanks, held_out = ")
    assert "the biLM 31.1 minutes on 2 threads, the small BERT 30 minutes on 1" in output


def test_the_polarity_prose_agrees(notebook):
    saved = load_results("bert_polarity")
    methods = {name: method["mean"] for name, method in saved["methods"].items()}
    frozen = methods["MiniLM frozen, mean-pooled (sentence embedding)"]
    paired = saved["paired_differences"]
    bullets = _paragraph(notebook, "Read the table from the bottom of chapter 2 up")
    assert "right about seven times in ten" in bullets and 0.65 < frozen < 0.75
    assert all(methods[f"ELMo layer {k}"] < 0.55 for k in range(3))  # "near chance"
    against_word2vec = paired["MiniLM frozen, mean-pooled (sentence embedding) - word2vec (mean)"]
    assert against_word2vec["difference"] > 3 * against_word2vec["standard_error"]  # "several"
    assert methods["MiniLM frozen, [CLS] last layer"] < frozen - 0.1
    assert methods["MiniLM frozen, pooled output"] < frozen - 0.1
    cls = paired[
        "MiniLM fine-tuned, [CLS] pooled (BERT's head) - MiniLM frozen, mean-pooled "
        "(sentence embedding)"
    ]
    assert cls["difference"] < -2 * cls["standard_error"]  # "more than two standard errors"
    mean3 = paired[
        "MiniLM fine-tuned, mean-pooled - MiniLM frozen, mean-pooled (sentence embedding)"
    ]
    assert mean3["difference"] < 0
    longer = paired[
        "MiniLM fine-tuned, mean-pooled, 10 epochs (post hoc) - MiniLM frozen, mean-pooled "
        "(sentence embedding)"
    ]
    assert 1.8 < longer["difference"] / longer["standard_error"] < 3  # "about two"
    assert "only 36 updates" in bullets
    assert (
        "36 optimiser steps"
        in saved["methods"]["MiniLM fine-tuned, mean-pooled, 10 epochs (post hoc)"]["post_hoc"]
    )
    assert saved["hyperparameters"]["epochs"] == 3 and "3 epochs" in bullets


def test_the_sentence_similarity_prose_agrees(notebook):
    """Each pair (music, markets) is the closest in its row; recomputed, since the matrix
    is a figure."""
    torch = pytest.importorskip("torch")
    from lessons import bert, wordpiece

    source = next(c.source for c in notebook.cells if c.source.startswith("texts = [\n"))
    texts = re.findall(r'"([^"]+\.)"', source)
    assert len(texts) == 5
    tokenizer, model = wordpiece.WordPieceTokenizer.from_minilm(), bert.BertModel.from_minilm()
    with torch.no_grad():
        vectors = bert.sentence_embeddings(model, **tokenizer(texts))
    similarity = vectors @ vectors.T - 2 * torch.eye(5)
    assert similarity.argmax(dim=1)[:4].tolist() == [1, 0, 3, 2]
    content = [
        set(re.findall(r"[a-z]+", t.lower())) - {"a", "is", "on", "the", "in"} for t in texts
    ]
    assert not content[0] & content[1] and not content[2] & content[3]  # "share no content word"
