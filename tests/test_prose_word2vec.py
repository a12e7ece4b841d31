"""Chapter 1's prose says what its outputs show: every number and comparison in the text
of notebooks/01_word2vec.ipynb is checked against the executed notebook's outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_word2vec.ipynb"
NUMBER_WORDS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twenty": 20}


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def prose(nb) -> str:
    """All markdown, one string, whitespace collapsed (sentences break across lines)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.sub(r"\s+", " ", text)


def output(nb, marker: str) -> str:
    """The printed output of the one code cell whose source contains ``marker``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"{len(cells)} code cells contain {marker!r}"
    texts = [o.get("text", "") for o in cells[0].outputs if o.output_type == "stream"]
    texts += [
        o.data["text/plain"]
        for o in cells[0].outputs
        if o.output_type in ("execute_result", "display_data") and "text/plain" in o.data
    ]
    return "".join(texts)


def table(text: str) -> dict[str, list[float]]:
    """Rows of a printed table: the row name, then its numbers."""
    rows = {}
    for line in text.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        try:
            rows[parts[0]] = [float(p) for p in parts[1:]]
        except ValueError:
            continue
    return rows


def test_subsampling_keeps_the_said_share_of_the(nb):
    said = re.search(r"survives about one occurrence in (\w+)", prose(nb))
    shown = re.search(r"the: f = [\d.]+, kept with probability [\d.]+, one in ([\d.]+)",
                      output(nb, "subsampling_keep(share"))  # fmt: skip
    assert said and shown
    assert NUMBER_WORDS[said.group(1)] == round(float(shown.group(1)))


def test_rare_words_are_as_rare_as_said(nb):
    said = re.search(r"\*rome\* and \*queen\* occur fewer than (\w+) times each", prose(nb))
    counts = dict(re.findall(r"(\w+): +(\d+) times", output(nb, "{vocab.counts[word]:>4} times")))
    assert said and {"rome", "queen"} <= set(counts)
    assert max(int(counts["rome"]), int(counts["queen"])) < NUMBER_WORDS[said.group(1)]


def test_corpus_and_vocabulary_sizes(nb):
    text = prose(nb)
    words = int(re.search(r"([\d,]+) words of Wikipedia", output(nb, "words of Wikipedia"))
                .group(1).replace(",", ""))  # fmt: skip
    assert "385,000" in text and round(words, -3) == 385_000
    vocabulary = re.search(r"(\d+) words, vector_size", output(nb, "model = Word2Vec("))
    assert f"{int(vocabulary.group(1)):,}-word vocabulary" in text


def test_out_of_vocabulary_shares(nb):
    said = re.search(
        r"About (\d+)% of the WordSim-353 pairs and (\d+)% of the SimLex-999 pairs", prose(nb)
    )
    rows = table(output(nb, "results = {"))
    assert said
    *_, wordsim_oov, simlex_oov = rows["PPMI + SVD"]
    assert (round(wordsim_oov), round(simlex_oov)) == (int(said[1]), int(said[2]))


def test_fifteen_epochs_against_ppmi(nb):
    text = prose(nb)
    assert (
        "still trails PPMI on WordSim-353 and on the analogies; it passes PPMI on SimLex-999 only"
        in text
    )
    shown = output(nb, "15 epochs minus PPMI")
    gaps = {name: float(gap) for name, gap in re.findall(r"(\S+): ([+-][\d.]+)", shown)}
    assert gaps["WordSim-353"] < 0 and gaps["analogies"] < 0 and gaps["SimLex-999"] > 0
    rows = table(shown)
    assert "Three times the passes double skip-gram's WordSim-353 correlation" in text
    ratio = rows["ours, skip-gram, 15 epochs"][0] / rows["ours, skip-gram"][0]
    assert 1.75 <= ratio <= 2.25


def test_right_family_answers_are_mostly_pronouns(nb):
    assert "in the family section nearly every right answer is *she* or *her*" in prose(nb)
    shown = output(nb, "right_family")
    listed = shown.split("right in 'family':")[1].replace("\n", " ")
    answers = [question.split()[-1] for question in listed.split(",")]
    assert len(answers) >= 5
    assert sum(a in {"she", "her"} for a in answers) >= 0.8 * len(answers)


def test_batch_limits_in_prose_are_the_codes():
    from lessons.word2vec import MAX_BATCH_SIZE, MAX_ROW_LOAD

    said = re.search(
        r"it holds at most ([\d,]+) pairs, fewer where the most frequent word would "
        r"receive more than ([\d,]+) gradient terms",
        prose(nb_text := nbformat.read(NOTEBOOK, as_version=4)),
    )
    assert nb_text and said
    assert (said[1], said[2]) == (f"{MAX_BATCH_SIZE:,}", f"{MAX_ROW_LOAD:,}")


#: Numbers the prose may state without an output: small counts and settings the code
#: cells pass, facts about the papers and data sets cited, arithmetic done in the text.
STATED = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "14", "15", "17", "50", "100", "100,000",
    "19,544", "0.75", "0.025", "0.05",
}  # fmt: skip
#: Numbers that the tests above check against the outputs or the code.
CHECKED = {"385,000", "41", "56", "4,096", "1,024", "0.03", "28"}


def _numbers(markdown: str) -> list[str]:
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", markdown, flags=re.DOTALL)  # maths
    text = re.sub(r"`[^`]*`", " ", text)  # code and citation keys
    text = re.sub(r"\[[^\]]*\]|\(https?://[^)]*\)", " ", text)  # links
    text = re.sub(r"[\d,]+-word|-\d+|[A-Za-z]+\d+", " ", text)  # 7,947-word, WordSim-353
    numbers = re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])", text)
    return [n.rstrip(",") for n in numbers]


def test_every_number_in_the_prose_is_shown_or_stated(nb):
    outputs = " ".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    shown = set(re.findall(r"\d[\d,]*(?:\.\d+)?", outputs))
    shown |= {n.replace(",", "") for n in shown}
    unexplained = [
        n
        for c in nb.cells
        if c.cell_type == "markdown"
        for n in _numbers(c.source)
        if n not in STATED | CHECKED | shown
    ]
    assert unexplained == []


def test_cbow_learning_rates_read_as_said(nb):
    text = prose(nb)
    assert "both WordSim-353 correlations are small, with p-values far above 0.05" in text
    assert "to correlations within 0.03 of each other" in text
    rows = re.findall(
        r"^ *([\d.]+) +(\d+) +([-\d.]+) \(p = ([\d.e-]+)\)"
        r" +([-\d.]+) \(p = ([\d.e-]+)\) +([\d.]+) +([\d.]+)$",
        output(nb, 'bench["cbow_learning_rate"]'),
        flags=re.MULTILINE,
    )
    assert len(rows) == 4
    for alpha, epochs, ours, p_ours, theirs, p_theirs, norm_ours, norm_theirs in rows:
        assert abs(float(norm_ours) / float(norm_theirs) - 1) < 0.05  # about equally far
        if (alpha, epochs) == ("0.025", "5"):
            assert float(p_ours) > 0.1 and float(p_theirs) > 0.1
        else:
            assert abs(float(ours) - float(theirs)) < 0.03
            assert float(p_ours) < 0.05 and float(p_theirs) < 0.05


def test_ablation_reads_as_said(nb):
    text = prose(nb)
    rows = {}
    for line in output(nb, 'load_results("word2vec_ablation")').splitlines()[1:]:
        name, numbers = re.match(r"(.+?)\s{2,}(\d.*)$", line).groups()
        values = [float(v.replace(",", "")) for v in re.findall(r"[\d,]*\.?\d+", numbers)]
        rows[name] = dict(zip(("ws", "ws_sd", "sl", "sl_sd", "an", "an_sd", "pairs", "batch"),
                              values, strict=True))  # fmt: skip
    default = rows["K=5, 3/4 power, subsampling (default)"]

    def same(a, b, key):  # within the spread over seeds
        return abs(a[key] - b[key]) <= a[f"{key}_sd"] + b[f"{key}_sd"]

    assert "From $K = 2$ to $K = 15$ WordSim-353 does not move" in text
    k2, k15 = rows["K=2"], rows["K=15"]
    assert same(k2, k15, "ws") and k15["sl"] > k2["sl"] and k15["an"] > k2["an"]

    said = "every $K$ scores higher on WordSim-353 and on the analogies, and a little lower"
    assert said + " on SimLex-999" in text
    for k in ("K=2", "K=5, 3/4 power, subsampling (default)", "K=15"):
        kept = rows[k]
        dropped = rows[k.split(",")[0] + ", no subsampling"]
        assert dropped["ws"] > kept["ws"] and dropped["an"] > kept["an"]
        assert dropped["sl"] < kept["sl"] and same(dropped, kept, "sl")
    assert "on WordSim-353 the gain exceeds the spread for $K = 5$ and $K = 15$" in text
    for k in ("K=5", "K=15"):
        kept = default if k == "K=5" else rows[k]
        assert not same(rows[k + ", no subsampling"], kept, "ws")
    assert same(rows["K=2, no subsampling"], rows["K=2"], "ws")
    control = rows["default settings, batches of 590 pairs"]
    assert control["batch"] <= min(r["batch"] for r in rows.values())
    assert all(same(control, default, key) for key in ("ws", "sl", "an"))
    fewer = re.search(r"about (\d+)% fewer pairs per epoch", text)
    saved = 1 - default["pairs"] / rows["K=5, no subsampling"]["pairs"]
    assert fewer and int(fewer[1]) == round(100 * saved)

    uniform, unigram = rows["uniform noise (power 0)"], rows["unigram noise (power 1)"]
    assert (
        "Uniform noise scores far lower on WordSim-353 and SimLex-999, and lower on the analogies"
        in text
    )
    assert all(uniform[k] + 2 * uniform[f"{k}_sd"] < default[k] for k in ("ws", "sl"))
    assert uniform["an"] < default["an"]
    assert same(unigram, default, "ws") and same(unigram, default, "an")
    assert unigram["sl"] > default["sl"] + default["sl_sd"]
