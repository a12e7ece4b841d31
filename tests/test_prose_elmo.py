"""Chapter 2 (ELMo): every number its prose quotes agrees with an output the reader sees
or with the measured results it comes from, and the prose keeps to the subject.

The notebook is read as committed (executed, with outputs). A quoted number must match an
output number to the decimals it is written with; numbers taken from the paper are listed
where they occur, and checked for consistency where two of them are related.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import load_results
from lessons.elmo import PRETRAINED_DIR

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_elmo.ipynb"
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def markdown(notebook, phrase: str) -> str:
    """The one markdown cell that contains ``phrase``."""
    found = [c.source for c in notebook.cells if c.cell_type == "markdown" and phrase in c.source]
    assert len(found) == 1, f"{len(found)} markdown cells contain {phrase!r}"
    return found[0]


def output(notebook, phrase: str) -> str:
    """The printed output of the one code cell whose source contains ``phrase``."""
    found = [c for c in notebook.cells if c.cell_type == "code" and phrase in c.source]
    assert len(found) == 1, f"{len(found)} code cells contain {phrase!r}"
    text = "".join(o.get("text", "") for o in found[0].outputs if o.output_type == "stream")
    assert text, f"the cell with {phrase!r} printed nothing"
    return text


def decimals(text: str) -> list[str]:
    return NUMBER.findall(text)


def shown(number: str, printed: str) -> bool:
    """``number`` is one of the numbers ``printed``, written to fewer or equal decimals."""
    places = len(number.split(".")[1])
    return any(
        len(other.split(".")[1]) >= places
        and abs(float(other) - float(number)) <= 0.5 * 10**-places
        for other in decimals(printed)
    )


def assert_quoted(prose: str, printed: str, exempt: tuple[str, ...] = ()) -> None:
    quoted = [n for n in decimals(prose) if n not in exempt]
    assert quoted, "the prose quotes no number: the test would check nothing"
    missing = [n for n in quoted if not shown(n, printed)]
    assert not missing, f"quoted but not in the output: {missing}"


def test_the_helpers_catch_a_number_that_drifted():
    assert shown("0.84", "s2 0.84 ± 0.06") and shown("0.31", "median 0.307")
    assert not shown("0.85", "s2 0.84 ± 0.06") and not shown("0.307", "median 0.31")
    with pytest.raises(AssertionError, match=r"\['0.52'\]"):
        assert_quoted("falls to 0.52", "0.53 0.84")


def test_the_time_to_run_is_a_measurement_within_the_budget(notebook):
    title = notebook.cells[0].source
    match = re.search(r"\*\*Time to run:\*\* (\d+) s of CPU time, measured", title)
    assert match, "the title cell should give the measured time to run"
    assert int(match[1]) <= 240  # the book's budget: 4 minutes on a 2-core laptop CPU


def test_the_word_counts_and_the_same_word_table(notebook):
    printed = output(notebook, "layer_similarities(bilm, a.split()")
    assert_quoted(markdown(notebook, "Read the rows in pairs"), printed)


def test_the_polarity_result(notebook):
    printed = output(notebook, "cross_validate(f, labels")
    prose = markdown(notebook, "This is a negative result")
    assert "one standard error is 3.5 percentage\npoints" in prose and "± 0.035" in printed
    # 0.50 is chance; 3.5 (points) is checked above; 3.3 and 4,096 are the paper's
    assert_quoted(prose, printed, exempt=("0.50", "3.5", "3.3"))


def test_the_layer_probes(notebook):
    printed = output(notebook, 'probes["ELMo layer 2"].paired_difference')
    prose = markdown(notebook, "The paper's order does not show up")
    # the paper's differences (section 5.3): 69.0 - 67.4 and 97.3 - 96.8 F1 / accuracy
    paper = markdown(notebook, "### What each layer holds")
    for number in ("69.0", "67.4", "97.3", "96.8"):
        assert number in paper
    assert "(0.016 and 0.005)" in prose
    assert round((69.0 - 67.4) / 100, 3) == 0.016 and round((97.3 - 96.8) / 100, 3) == 0.005
    assert_quoted(prose, printed, exempt=("0.016", "0.005"))
    for count in re.findall(r"With (\d+) and (\d+) hand-labelled", prose)[0]:
        assert f"({count} occurrences)" in printed


def test_the_learned_mixes(notebook):
    printed = output(notebook, "mix_weights(result)")
    assert_quoted(markdown(notebook, "how far each task moved its weights"), printed)


def test_the_first_word_influence(notebook):
    printed = output(notebook, "for t in (1, 5, 10, 20, 30, 39)")
    assert_quoted(markdown(notebook, "The dependence falls fastest"), printed)


def test_the_perplexity_claims_follow_from_the_measured_results(notebook):
    results = load_results("elmo")
    prose = markdown(notebook, "The biLM beats both trigrams in both directions")
    bilm, train = results["bilm_validation_perplexity"], results["bilm_train_perplexity"]
    for direction in ("forward", "backward"):
        trigrams = [row[direction] for row in results["trigram_validation_perplexity"].values()]
        assert bilm[direction] < min(trigrams)  # "beats both trigrams in both directions"
        assert train[direction] >= bilm[direction]  # "no better on the text it was trained on"
    assert "39.7 {cite:p}`peters2018deep`" in prose  # the paper's number, cited
    notes = checkpoint_notes(PRETRAINED_DIR / "elmo-small.safetensors")
    assert "still falling after the last epoch" in markdown(notebook, "still falling")
    for curve in notes["validation_perplexity_per_epoch"].values():
        assert curve[-1] < curve[-2]


def test_the_sports_noun_is_not_among_the_nearest_usages(notebook):
    printed = output(notebook, "nearest_usages(bilm, query")
    sports_query = printed.split("query: ")[2]
    assert sports_query.startswith("the shortstop made a spectacular play")
    assert "afl began play" not in sports_query
    assert "the afl began play in 1960" in markdown(notebook, "built like the paper's, finds")


def test_the_prose_is_about_the_subject(notebook):
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown").lower()
    for phrase in ("honest", "machine", "13.5 minutes", "docstring", "our session", "this book's"):
        assert phrase not in prose, phrase
